"""The conjugate model every strategy is checked against.

A network without hidden layer is ``y = X W + b``; with Gaussian noise of fixed
scale ``sigma`` and the prior ``N(0, 1/alpha)`` on ``W`` and ``b``, the
posterior over ``theta = (W, b)`` is Gaussian with precision
``alpha I + Phi^T Phi / sigma^2`` and mean ``cov Phi^T y / sigma^2``, where
``Phi = [X, 1]`` (Bayesian linear regression).
"""

from typing import NamedTuple

import numpy as np


class LinearGaussianProblem(NamedTuple):
    X: np.ndarray
    y: np.ndarray
    noise_std: float
    alpha: float
    mean: np.ndarray  # exact posterior mean of (W, b), shape (n_features + 1,)
    cov: np.ndarray  # exact posterior covariance


def linear_gaussian_problem(n_samples=200, n_features=3, noise_std=0.5, alpha=1.0, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n_samples, n_features))
    w = rng.normal(size=n_features)
    y = X @ w + 0.3 + noise_std * rng.normal(size=n_samples)
    phi = np.hstack([X, np.ones((n_samples, 1))])
    precision = alpha * np.eye(n_features + 1) + phi.T @ phi / noise_std**2
    cov = np.linalg.inv(precision)
    mean = cov @ phi.T @ y / noise_std**2
    return LinearGaussianProblem(X, y, noise_std, alpha, mean, cov)


def linear_draws(params):
    """Stack a linear network's parameter draws into ``theta`` rows ``(n_draws, n_features + 1)``."""
    layer = params["network"]["dense_0"]
    return np.hstack([np.asarray(layer["kernel"])[..., 0], np.asarray(layer["bias"])])
