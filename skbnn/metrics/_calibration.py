"""Calibration metrics for predicted class probabilities (numpy only).

They take ``y_prob`` from any classifier's ``predict_proba``, with columns in
the order of the sorted labels (``classes_``), as scikit-learn's ``log_loss``
does.
"""

from typing import NamedTuple

import numpy as np

__all__ = [
    "ReliabilityCurve",
    "brier_score",
    "expected_calibration_error",
    "maximum_calibration_error",
    "negative_log_likelihood",
    "reliability_curve",
]


def _check_proba(y_prob):
    """``y_prob`` as a float 2-D array with rows on the simplex; 1-D = positive class."""
    y_prob = np.asarray(y_prob, dtype=np.float64)
    if y_prob.ndim == 1:  # probability of the positive class
        y_prob = np.column_stack([1.0 - y_prob, y_prob])
    if y_prob.ndim != 2:
        raise ValueError(f"y_prob must be 1-D or 2-D, got shape {y_prob.shape}.")
    if y_prob.shape[0] == 0:
        raise ValueError("y_prob is empty: there is nothing to score.")
    if y_prob.shape[1] < 2:
        raise ValueError(
            f"y_prob must have at least 2 columns (one per class), got {y_prob.shape[1]}."
        )
    if not np.all(np.isfinite(y_prob)):
        raise ValueError("y_prob contains NaN or infinity.")
    if y_prob.min() < 0 or y_prob.max() > 1:
        raise ValueError("y_prob must be probabilities in [0, 1].")
    if not np.allclose(y_prob.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(
            "The rows of y_prob must sum to 1 (the output of predict_proba); "
            f"row sums range from {y_prob.sum(axis=1).min():.4g} to "
            f"{y_prob.sum(axis=1).max():.4g}."
        )
    return y_prob


def _encode(y_true, n_classes, labels):
    """Column index of each label: labels are ``labels`` (sorted as ``classes_``) or y's own."""
    y_true = np.ravel(np.asarray(y_true))
    classes = np.unique(y_true) if labels is None else np.asarray(labels)
    if labels is not None and not np.array_equal(classes, np.unique(classes)):
        raise ValueError("labels must be sorted and unique, as an estimator's classes_ are.")
    if classes.size != n_classes:
        hint = "" if labels is not None else (
            " Pass the classes explicitly with labels= (e.g. labels=estimator.classes_)."
        )
        raise ValueError(
            f"y_prob has {n_classes} columns but there are {classes.size} classes "
            f"({'labels' if labels is not None else 'in y_true'}).{hint}"
        )
    index = np.searchsorted(classes, y_true)
    unknown = (index >= n_classes) | (classes[np.minimum(index, n_classes - 1)] != y_true)
    if np.any(unknown):
        raise ValueError(f"y_true contains labels not in labels: {np.unique(y_true[unknown])}.")
    return index


def _check_inputs(y_true, y_prob, labels):
    y_prob = _check_proba(y_prob)
    y_true = np.ravel(np.asarray(y_true))
    if y_true.shape[0] != y_prob.shape[0]:
        raise ValueError(
            f"y_true and y_prob have different numbers of samples: "
            f"{y_true.shape[0]} and {y_prob.shape[0]}."
        )
    return _encode(y_true, y_prob.shape[1], labels), y_prob


def _bin_edges(values, n_bins, strategy):
    if not (isinstance(n_bins, (int, np.integer)) and n_bins >= 1):
        raise ValueError(f"n_bins must be a positive integer, got {n_bins!r}.")
    if strategy == "uniform":
        return np.linspace(0.0, 1.0, n_bins + 1)
    if strategy == "quantile":  # equal-mass bins
        edges = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1))
        edges[0], edges[-1] = 0.0, 1.0
        return edges
    raise ValueError(f"strategy must be 'uniform' or 'quantile', got {strategy!r}.")


def _binned(confidence, outcome, n_bins, strategy):
    """Per bin: count, summed confidence, summed outcome. Bins are ``(e_i, e_{i+1}]``."""
    edges = _bin_edges(confidence, n_bins, strategy)
    bins = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    conf = np.bincount(bins, weights=confidence, minlength=n_bins)
    acc = np.bincount(bins, weights=outcome, minlength=n_bins)
    return count, conf, acc


def _top_label(y, y_prob):
    return y_prob.max(axis=1), (y_prob.argmax(axis=1) == y).astype(np.float64)


def _check_kind(kind):
    if kind not in ("top_label", "classwise"):
        raise ValueError(f"kind must be 'top_label' or 'classwise', got {kind!r}.")


def expected_calibration_error(y_true, y_prob, *, n_bins=15, strategy="uniform",
                               kind="top_label", labels=None):
    """Expected calibration error (ECE).

    With ``kind="top_label"`` the top probability of each row (the confidence)
    is binned and ECE is the count-weighted mean over bins of
    ``|accuracy - mean confidence|``. With ``kind="classwise"`` the same is done
    for the probability of every class against the indicator of that class,
    and the per-class errors are averaged (Kull et al., 2019).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels.
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted probabilities, columns in the order of the sorted labels; a
        1-D array is the probability of the positive (larger) label.
    n_bins : int, default=15
    strategy : {"uniform", "quantile"}, default="uniform"
        Equal-width bins on [0, 1], or bins holding equal numbers of samples.
    kind : {"top_label", "classwise"}, default="top_label"
    labels : array-like of shape (n_classes,), default=None
        The classes in column order (an estimator's ``classes_``). Needed when
        ``y_true`` does not contain every class.

    Returns
    -------
    float
        In [0, 1]; 0 for a calibrated predictor.

    Examples
    --------
    >>> from skbnn.metrics import expected_calibration_error
    >>> expected_calibration_error([0, 1, 1, 0], [[0.8, 0.2], [0.2, 0.8], [0.4, 0.6], [0.6, 0.4]])
    0.3
    """
    _check_kind(kind)
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    if kind == "top_label":
        count, conf, acc = _binned(*_top_label(y, y_prob), n_bins, strategy)
        return float(np.abs(acc - conf).sum() / count.sum())
    per_class = []
    for k in range(y_prob.shape[1]):
        count, conf, acc = _binned(y_prob[:, k], (y == k).astype(np.float64), n_bins, strategy)
        per_class.append(np.abs(acc - conf).sum() / count.sum())
    return float(np.mean(per_class))


def maximum_calibration_error(y_true, y_prob, *, n_bins=15, strategy="uniform", labels=None):
    """Maximum calibration error: the largest ``|accuracy - confidence|`` over non-empty bins.

    Top-label confidence, binned as in :func:`expected_calibration_error`.
    """
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    count, conf, acc = _binned(*_top_label(y, y_prob), n_bins, strategy)
    full = count > 0
    return float(np.max(np.abs(acc[full] - conf[full]) / count[full]))


class ReliabilityCurve(NamedTuple):
    """Reliability-curve data over the non-empty bins, each of shape ``(n_nonempty_bins,)``."""

    confidence: np.ndarray  #: mean top-label confidence in the bin
    accuracy: np.ndarray  #: share of correct predictions in the bin
    count: np.ndarray  #: number of samples in the bin
    bin_edges: np.ndarray  #: all ``n_bins + 1`` edges, empty bins included


def reliability_curve(y_true, y_prob, *, n_bins=15, strategy="uniform", labels=None):
    """Per-bin mean confidence, accuracy and count of the top-label prediction.

    Like :func:`sklearn.calibration.calibration_curve`, but for the top label
    of a multiclass prediction, and with the bin counts. Empty bins are left
    out.

    Returns
    -------
    ReliabilityCurve
        ``(confidence, accuracy, count, bin_edges)``.
    """
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    confidence, correct = _top_label(y, y_prob)
    count, conf, acc = _binned(confidence, correct, n_bins, strategy)
    full = count > 0
    return ReliabilityCurve(conf[full] / count[full], acc[full] / count[full], count[full],
                            _bin_edges(confidence, n_bins, strategy))


def negative_log_likelihood(y_true, y_prob, *, labels=None):
    """Mean negative log probability of the true class (scikit-learn's ``log_loss``).

    Probabilities are clipped below at the float64 machine epsilon, so one
    confident mistake costs about 36 nats rather than infinity.
    """
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    p = y_prob[np.arange(y.size), y]
    return float(-np.mean(np.log(np.maximum(p, np.finfo(np.float64).eps))))


def brier_score(y_true, y_prob, *, labels=None):
    """Multiclass Brier score: mean over rows of ``sum_k (p_k - 1[y = k])^2``.

    In [0, 2]; for two classes it is twice scikit-learn's ``brier_score_loss``
    of the positive class.
    """
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    onehot = np.eye(y_prob.shape[1])[y]
    return float(np.mean(np.sum((y_prob - onehot) ** 2, axis=1)))
