"""Metrics for probabilistic predictions: calibration and out-of-distribution detection.

Plain numpy functions that work with any classifier's ``predict_proba``.
"""

from ._calibration import brier_score, expected_calibration_error
from ._ood import ood_auroc

__all__ = ["brier_score", "expected_calibration_error", "ood_auroc"]
