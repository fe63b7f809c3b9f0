"""``sample_weight`` as frequency weights: a weighted fit has the posterior of
the fit on repeated rows, for every strategy, checked on the conjugate model
(the exact posterior of the repeated rows is known).

Each strategy runs at the settings of its own conjugate test in
``tests/inference`` and is held to that test's tolerance, whose reasoning
(seed sweeps, effective sample sizes) is given there: weights change the data,
not what the strategy can reach.
"""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPRegressor
from skbnn.inference import MAP, NUTS, PSGLD, VI, Laplace

from ._conjugate import linear_draws, linear_gaussian_problem


def _weighted_problem():
    """60 distinct rows with weights 1-3, and the exact posterior of the ~120 rows they
    repeat."""
    base = linear_gaussian_problem(n_samples=60)
    weights = np.random.RandomState(1).randint(1, 4, size=60)
    X, y = np.repeat(base.X, weights, axis=0), np.repeat(base.y, weights)
    phi = np.hstack([X, np.ones((len(X), 1))])
    precision = base.alpha * np.eye(4) + phi.T @ phi / base.noise_std**2
    cov = np.linalg.inv(precision)
    mean = cov @ phi.T @ y / base.noise_std**2
    return base, weights, mean, cov


def _fit(inference, **params):
    base, weights, mean, cov = _weighted_problem()
    reg = BayesianMLPRegressor((), inference=inference, noise_std=base.noise_std,
                               normalize_y=False, alpha=base.alpha, random_state=0, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(base.X, base.y, sample_weight=weights)
    return reg, mean, np.sqrt(np.diag(cov)), cov


def _theta(tree):
    layer = tree["network"]["dense_0"]
    return np.concatenate([np.asarray(layer["kernel"])[:, 0], np.asarray(layer["bias"])])


def test_weighted_map_is_the_mode_of_the_repeated_rows():
    reg, mean, sd, _ = _fit(MAP(learning_rate_schedule="constant"), solver="lbfgs",
                            max_iter=200)
    np.testing.assert_array_less(np.abs(_theta(reg.posterior_.mean_params()) - mean) / sd, 0.01)


def test_weighted_laplace_is_the_exact_posterior_of_the_repeated_rows():
    # full curvature on the linear model is exact (tests/inference/test_laplace.py)
    reg, mean, sd, cov = _fit(Laplace(subset_of_weights="all", hessian_structure="full",
                                      optimize_prior_precision=False, temperature=1.0),
                              solver="lbfgs", max_iter=200)
    np.testing.assert_array_less(np.abs(_theta(reg.posterior_.mean_params()) - mean) / sd, 0.01)
    var = reg.posterior_.marginal_variance()["dense_0"]
    got = np.concatenate([np.asarray(var["kernel"])[:, 0], np.asarray(var["bias"])])
    np.testing.assert_allclose(got, np.diag(cov), rtol=1e-4)


def test_weighted_vi_is_the_mean_field_optimum_of_the_repeated_rows():
    # the settings and bounds of tests/inference/test_vi.py's conjugate test
    reg, mean, sd, cov = _fit(VI(n_mc=8, learning_rate=3e-3, kl_weight=1.0), batch_size=60,
                              tol=0.0, n_iter_no_change=3000, max_iter=3000)
    got_mean = _theta(reg.posterior_.mean)
    scale = _theta(reg.posterior_.factors["scale"])
    np.testing.assert_array_less(np.abs(got_mean - mean) / sd, 0.1)
    mean_field_sd = 1.0 / np.sqrt(np.diag(np.linalg.inv(cov)))
    np.testing.assert_allclose(scale, mean_field_sd, rtol=0.05)


def test_weighted_psgld_samples_the_posterior_of_the_repeated_rows():
    # the settings and bounds of tests/inference/test_psgld.py's conjugate test
    reg, mean, sd, _ = _fit(PSGLD(n_chains=8, n_draws=500, step_size=2e-3, temperature=1.0),
                            batch_size=15, max_iter=8000)
    theta = linear_draws(reg.posterior_.flatten())
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - mean) / sd, 0.1)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.15)


def test_weighted_nuts_samples_the_posterior_of_the_repeated_rows():
    # the settings and bounds of tests/inference/test_nuts.py's conjugate test
    reg, mean, sd, _ = _fit(NUTS(n_chains=4, n_warmup=300, n_draws=500))
    theta = linear_draws(reg.posterior_.flatten())
    assert reg.min_ess_ >= 1000
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - mean) / sd, 0.1)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.1)


@pytest.mark.parametrize("inference", ["map", "vi", "laplace", "psgld", "ensemble"])
def test_zero_weight_rows_change_nothing(inference):
    # a row of weight 0 is a row that is not there: the same fit as without it, on the
    # same minibatch sequence (full batches, so that the rows seen per step agree)
    base = linear_gaussian_problem(n_samples=40)
    X_extra = np.vstack([base.X, 50 * np.ones((1, 3))])
    y_extra = np.append(base.y, 1e3)
    weights = np.append(np.ones(40), 0.0)
    kw = dict(noise_std=base.noise_std, normalize_y=False, alpha=base.alpha, max_iter=30,
              random_state=0, inference=inference)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        weighted = BayesianMLPRegressor((), batch_size=41, **kw).fit(X_extra, y_extra,
                                                                     sample_weight=weights)
        plain = BayesianMLPRegressor((), batch_size=40, **kw).fit(base.X, base.y)
    a, b = _theta(weighted.posterior_.mean_params()), _theta(plain.posterior_.mean_params())
    # not equal draws (another row count changes the random streams of the samplers),
    # but nowhere near the outlier the zero-weight row would pull towards
    np.testing.assert_allclose(a, b, atol=0.2)
