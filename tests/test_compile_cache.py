"""Compile once per configuration: a cloned refit on same-shaped data compiles nothing."""

import numpy as np
import pytest
from sklearn.base import clone

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import PSGLD

from ._compile import count_compilations


@pytest.mark.parametrize("inference", ["map", PSGLD(n_draws=5, n_chains=2)])
@pytest.mark.parametrize("Estimator", [BayesianMLPClassifier, BayesianMLPRegressor])
def test_cloned_refit_and_predict_compile_nothing(Estimator, inference):
    rng = np.random.RandomState(0)
    X, X2 = rng.normal(size=(2, 80, 6))
    y = (X[:, 0] > 0).astype(int)
    y2 = (X2[:, 1] > 0).astype(int)
    est = Estimator((8,), inference=inference, max_iter=12, random_state=0).fit(X, y)
    est.predict(X[:7])
    # a grid search changes numeric settings, data values and seeds, not shapes
    other = clone(est).set_params(alpha=0.5, learning_rate_init=3e-3, random_state=1)
    with count_compilations() as compiled:
        other.fit(X2, y2)
        other.predict(X2[:7])
    assert compiled == []
