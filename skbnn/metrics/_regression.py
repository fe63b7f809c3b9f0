"""Scores of Gaussian predictive distributions ``N(y_mean, y_std^2)`` (numpy + scipy).

``y_mean`` and ``y_std`` are what ``predict(X, return_std=True)`` returns on
skbnn's regressors, ``BayesianRidge`` and ``GaussianProcessRegressor``.
"""

import numpy as np
from scipy.special import ndtr, ndtri

__all__ = ["crps_gaussian", "gaussian_nll", "interval_coverage", "mean_interval_width"]


def check_finite_arrays(named, purpose="score"):
    """``{name: array}`` as float64 arrays, each 1-D or 2-D, non-empty and finite;
    a ``ValueError`` names the first that is not."""
    arrays = [np.asarray(a, dtype=np.float64) for a in named.values()]
    for name, a in zip(named, arrays):
        if a.ndim not in (1, 2):
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {a.shape}.")
        if a.size == 0:
            raise ValueError(f"{name} is empty: there is nothing to {purpose}.")
        if not np.all(np.isfinite(a)):
            raise ValueError(f"{name} contains NaN or infinity.")
    return arrays


def _check_gaussian(y_true, y_mean, y_std):
    arrays = check_finite_arrays({"y_true": y_true, "y_mean": y_mean, "y_std": y_std})
    if not arrays[0].shape == arrays[1].shape == arrays[2].shape:
        raise ValueError(
            "y_true, y_mean and y_std must have the same shape, got "
            f"{arrays[0].shape}, {arrays[1].shape} and {arrays[2].shape}."
        )
    if np.any(arrays[2] <= 0):
        raise ValueError("y_std must be positive (a predictive standard deviation).")
    return arrays


def _check_level(level):
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), e.g. 0.95, got {level!r}.")
    return ndtri(0.5 + level / 2)  # half-width of the central interval in std units


def gaussian_nll(y_true, y_mean, y_std):
    """Mean negative log density of ``y_true`` under ``N(y_mean, y_std^2)``, in nats.

    Averaged over samples and outputs.

    Examples
    --------
    >>> round(gaussian_nll([0.0], [0.0], [1.0]), 6)  # log(2 pi) / 2
    0.918939
    """
    y, mean, std = _check_gaussian(y_true, y_mean, y_std)
    z = (y - mean) / std
    return float(np.mean(0.5 * z**2 + np.log(std) + 0.5 * np.log(2 * np.pi)))


def interval_coverage(y_true, y_mean, y_std, *, level=0.95):
    """Share of ``y_true`` inside the central ``level`` interval ``y_mean +- z * y_std``.

    Close to ``level`` for calibrated uncertainty; lower when overconfident.
    """
    half = _check_level(level)
    y, mean, std = _check_gaussian(y_true, y_mean, y_std)
    return float(np.mean(np.abs(y - mean) <= half * std))


def mean_interval_width(y_mean, y_std, *, level=0.95):
    """Mean width ``2 z y_std`` of the central ``level`` interval (in units of y).

    Report it next to :func:`interval_coverage`: wide intervals cover easily.
    """
    half = _check_level(level)
    _, _, std = _check_gaussian(y_mean, y_mean, y_std)
    return float(np.mean(2 * half * std))


def crps_gaussian(y_true, y_mean, y_std):
    """Mean continuous ranked probability score of ``N(y_mean, y_std^2)`` (lower is better).

    The closed form of Gneiting & Raftery (2007): with ``z = (y - mu) / sigma``,
    ``CRPS = sigma * (z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi))``. In units of y;
    it reduces to the absolute error as ``y_std`` goes to 0.
    """
    y, mean, std = _check_gaussian(y_true, y_mean, y_std)
    z = (y - mean) / std
    pdf = np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    crps = std * (z * (2 * ndtr(z) - 1) + 2 * pdf - 1 / np.sqrt(np.pi))
    return float(np.mean(crps))
