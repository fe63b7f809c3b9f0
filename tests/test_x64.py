"""With JAX's x64 mode on (``jax.config.update("jax_enable_x64", True)``, or
numpyro's ``enable_x64()``), every strategy fits and predicts, in float64."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPRegressor
from skbnn.inference import MAP, NUTS, PSGLD, VI, Laplace

STRATEGIES = {
    "map": lambda: MAP(),
    "psgld": lambda: PSGLD(n_draws=5),
    "vi": lambda: VI(n_mc=2, n_predictive_draws=10),
    "laplace": lambda: Laplace(n_predictive_draws=10),
    "nuts": lambda: NUTS(n_chains=1, n_warmup=20, n_draws=10, max_tree_depth=4),
}


def _float_leaves(tree):
    leaves = [np.asarray(x) for x in jax.tree.leaves(tree)]
    return [x for x in leaves if np.issubdtype(x.dtype, np.floating)]


@pytest.mark.parametrize("name", STRATEGIES)
def test_every_strategy_fits_and_predicts_in_float64(name):
    # flax creates parameters in float32 whatever the inputs; with x64 on, the
    # data, prior and settings are float64, and an optimiser state that came
    # out float64 from a float32 start used to stop every fit with a scan
    # type error. The parameters now follow JAX's float dtype.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + 0.1 * rng.normal(size=60)
    with jax.enable_x64(True), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = BayesianMLPRegressor((8,), inference=STRATEGIES[name](), max_iter=300,
                                   learning_rate_init=1e-2, random_state=0).fit(X, y)
        mean, std = reg.predict(X, return_std=True)
        floats = _float_leaves(reg.posterior_)
    assert floats and all(x.dtype == np.float64 for x in floats)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    assert np.corrcoef(mean, y)[0, 1] > 0.9  # it learnt the linear trend

