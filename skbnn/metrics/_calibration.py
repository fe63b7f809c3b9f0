"""Calibration metrics for predicted class probabilities (numpy only).

They take ``y_prob`` from any classifier's ``predict_proba``, with columns in
the order of the sorted labels (``classes_``).
"""

import numpy as np
from sklearn.preprocessing import LabelEncoder

__all__ = ["brier_score", "expected_calibration_error"]


def _encode(y_true, n_classes):
    y_true = np.asarray(y_true)
    if y_true.dtype.kind in "iu" and y_true.size and y_true.min() >= 0 \
            and y_true.max() < n_classes:
        return y_true.astype(int)
    return LabelEncoder().fit_transform(y_true)


def _check_proba(y_prob):
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim == 1:  # probability of the positive class
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.ndim != 2:
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {y_prob.shape}.")
    if not np.all(np.isfinite(y_prob)):
        raise ValueError("y_prob contains NaN or infinity.")
    return y_prob


def expected_calibration_error(y_true, y_prob, *, n_bins=15, strategy="uniform"):
    """Expected calibration error of the top-label confidence.

    The top probability of each row is binned (``n_bins`` equal-width bins on
    [0, 1] with ``strategy="uniform"``, or bins of equal counts with
    ``"quantile"``); ECE is the count-weighted mean over bins of
    ``|accuracy - mean confidence|``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities; a 1-D array is the positive-class probability.
    n_bins : int, default=15
    strategy : {"uniform", "quantile"}, default="uniform"

    Returns
    -------
    float
    """
    y_prob = _check_proba(y_prob)
    y = _encode(y_true, y_prob.shape[1])
    confidence = y_prob.max(axis=1)
    correct = (y_prob.argmax(axis=1) == y).astype(float)
    if strategy == "uniform":
        edges = np.linspace(0.0, 1.0, n_bins + 1)
    elif strategy == "quantile":
        edges = np.quantile(confidence, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
    else:
        raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    gap = np.abs(np.bincount(bins, weights=correct - confidence, minlength=n_bins))
    return float(gap.sum() / max(counts.sum(), 1))


def brier_score(y_true, y_prob):
    """Multiclass Brier score: mean over rows of ``sum_k (p_k - 1[y = k])^2``."""
    y_prob = _check_proba(y_prob)
    y = _encode(y_true, y_prob.shape[1])
    onehot = np.eye(y_prob.shape[1])[y]
    return float(np.mean(np.sum((y_prob - onehot) ** 2, axis=1)))
