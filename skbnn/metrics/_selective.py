"""Selective prediction: accuracy when the model may abstain on uncertain inputs (numpy)."""

from typing import NamedTuple

import numpy as np

__all__ = ["SelectiveCurve", "accuracy_certainty_curve", "accuracy_coverage_curve"]


class SelectiveCurve(NamedTuple):
    """Accuracy on the retained inputs at each threshold, each of shape ``(n_thresholds,)``."""

    threshold: np.ndarray  #: inputs with certainty >= threshold are retained
    accuracy: np.ndarray  #: accuracy on the retained inputs (NaN never: see ``retained``)
    retained: np.ndarray  #: share of inputs retained (the coverage)


def _check(y_true, y_pred, certainty):
    arrays = [np.ravel(np.asarray(a)) for a in (y_true, y_pred)]
    certainty = np.ravel(np.asarray(certainty, dtype=np.float64))
    if not arrays[0].size == arrays[1].size == certainty.size:
        raise ValueError(
            "y_true, y_pred and certainty must have one entry per sample, got "
            f"{arrays[0].size}, {arrays[1].size} and {certainty.size}."
        )
    if certainty.size == 0:
        raise ValueError("There are no samples to score.")
    if not np.all(np.isfinite(certainty)):
        raise ValueError("certainty contains NaN or infinity.")
    return (arrays[0] == arrays[1]).astype(np.float64), certainty


def accuracy_certainty_curve(y_true, y_pred, certainty, *, thresholds=None):
    """Accuracy and share retained when only inputs with ``certainty >= threshold`` are kept.

    ``certainty`` is any per-input score where higher means more certain: the
    top ``predict_proba`` (the confidence), or :meth:`skbnn.SampleEnsemble.certainty`
    (the share of posterior draws that agree with the vote). Thresholds at which
    no input is retained are dropped, so every accuracy is defined.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    certainty : array-like of shape (n_samples,)
    thresholds : array-like, default=None
        Default: the distinct values of ``certainty``, ascending.

    Returns
    -------
    SelectiveCurve
        ``(threshold, accuracy, retained)``.
    """
    correct, certainty = _check(y_true, y_pred, certainty)
    thresholds = (np.unique(certainty) if thresholds is None
                  else np.sort(np.ravel(np.asarray(thresholds, dtype=np.float64))))
    kept = certainty[None, :] >= thresholds[:, None]
    n_kept = kept.sum(axis=1)
    some = n_kept > 0
    accuracy = (kept[some] * correct).sum(axis=1) / n_kept[some]
    return SelectiveCurve(thresholds[some], accuracy, n_kept[some] / certainty.size)


def accuracy_coverage_curve(y_true, y_pred, certainty):
    """Accuracy on the ``k`` most certain inputs against the coverage ``k / n``, ``k = 1..n``.

    Ties in ``certainty`` are broken by input order (a stable sort).

    Returns
    -------
    coverage, accuracy : ndarrays of shape (n_samples,)
        Coverage ascending from ``1/n`` to 1.
    """
    correct, certainty = _check(y_true, y_pred, certainty)
    order = np.argsort(-certainty, kind="stable")
    k = np.arange(1, certainty.size + 1)
    return k / certainty.size, np.cumsum(correct[order]) / k
