"""Metrics for probabilistic predictions: calibration, regression uncertainty,
selective prediction, out-of-distribution detection and posterior fidelity,
and scorers for them.

Plain numpy functions that work with any classifier's ``predict_proba`` (or
any regressor's ``predict(X, return_std=True)``), not only skbnn's.
"""

from ._calibration import (
    ReliabilityCurve,
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)
from ._fidelity import (
    fidelity,
    predictive_agreement,
    total_variation,
    wasserstein2,
    wasserstein2_gaussian,
)
from ._ood import ood_aupr, ood_auroc
from ._regression import crps_gaussian, gaussian_nll, interval_coverage, mean_interval_width
from ._scorer import get_scorer, get_scorer_names, make_fidelity_scorer, make_std_scorer
from ._selective import SelectiveCurve, accuracy_certainty_curve, accuracy_coverage_curve

__all__ = [
    "ReliabilityCurve",
    "SelectiveCurve",
    "accuracy_certainty_curve",
    "accuracy_coverage_curve",
    "brier_score",
    "crps_gaussian",
    "expected_calibration_error",
    "fidelity",
    "gaussian_nll",
    "get_scorer",
    "get_scorer_names",
    "interval_coverage",
    "make_fidelity_scorer",
    "make_std_scorer",
    "maximum_calibration_error",
    "mean_interval_width",
    "negative_log_likelihood",
    "ood_aupr",
    "ood_auroc",
    "predictive_agreement",
    "reliability_curve",
    "total_variation",
    "wasserstein2",
    "wasserstein2_gaussian",
]
