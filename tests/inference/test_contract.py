"""The contract every strategy honours, checked on each of them.

``run(model, data, key, training=...)`` returns a finite posterior of the
declared shape, equal for the same key and different for another key, and a
second run on same-shaped data compiles nothing.
"""

import jax
import numpy as np
import pytest

from skbnn.inference import STRATEGIES, InferenceResult, Training
from skbnn.inference.base import device_data
from skbnn.likelihoods import Categorical
from skbnn.model import Model
from skbnn.networks import build_mlp
from skbnn.posterior import predictive
from skbnn.priors import GaussianPrior

from .._compile import count_compilations


def _problem(seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(64, 5)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 1).astype(np.int32)
    model = Model(build_mlp((8,), "tanh", 3), Categorical(3), GaussianPrior(np.float32(1.0)))
    return model, device_data(X, y, np.ones(64, np.float32)), X


TRAINING = Training(max_iter=20, batch_size=16, learning_rate=1e-2)


def _leaves(posterior):
    return [np.asarray(x) for x in jax.tree.leaves(posterior)]


@pytest.fixture(params=sorted(STRATEGIES))
def strategy(request):
    return STRATEGIES[request.param]()


def test_run_returns_finite_posterior_of_declared_shape(strategy):
    model, data, X = _problem()
    result = strategy.run(model, data, jax.random.key(0), training=TRAINING)
    assert isinstance(result, InferenceResult)
    draws = result.posterior.predictive_draws()
    n_draws = jax.tree.leaves(draws)[0].shape[0]
    reference = model.init(jax.random.key(0), X.shape[1:])
    for d, r in zip(jax.tree.leaves(draws), jax.tree.leaves(reference)):
        assert d.shape == (n_draws, *r.shape)
    assert all(np.isfinite(x).all() for x in _leaves(result.posterior))
    (probs,) = predictive(model, draws, X)
    assert probs.shape == (n_draws, 64, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    assert len(result.loss_curve) == result.n_iter >= 1


def test_same_key_same_posterior_other_key_other_posterior(strategy):
    model, data, _ = _problem()
    a = strategy.run(model, data, jax.random.key(1), training=TRAINING).posterior
    b = strategy.run(model, data, jax.random.key(1), training=TRAINING).posterior
    c = strategy.run(model, data, jax.random.key(2), training=TRAINING).posterior
    for x, y in zip(_leaves(a), _leaves(b)):
        np.testing.assert_array_equal(x, y)
    assert any(not np.allclose(x, y) for x, y in zip(_leaves(a), _leaves(c)))


def test_second_run_on_same_shapes_compiles_nothing(strategy):
    model, data, _ = _problem()
    strategy.run(model, data, jax.random.key(0), training=TRAINING)
    # new data values, new key, new numeric settings: same compiled programs
    model2, data2, _ = _problem(seed=1)
    model2 = model2.replace(prior=GaussianPrior(np.float32(3.0)))
    training2 = TRAINING._replace(learning_rate=3e-3)
    with count_compilations() as compiled:
        strategy.run(model2, data2, jax.random.key(5), training=training2)
    assert compiled == []


def test_every_strategy_and_its_posterior_satisfy_the_declared_protocols(strategy):
    import inspect

    from skbnn.inference.base import Strategy
    from skbnn.posterior import Posterior

    assert isinstance(strategy, Strategy)
    assert strategy.name in STRATEGIES and STRATEGIES[strategy.name] is type(strategy)
    # the signatures, not only the names, are the protocol's
    for method in ("config", "run"):
        declared = inspect.signature(getattr(Strategy, method))
        actual = inspect.signature(getattr(type(strategy), method))
        assert list(actual.parameters) == list(declared.parameters), method
    model, data, X = _problem()
    posterior = strategy.run(model, data, jax.random.key(0), training=TRAINING).posterior
    assert isinstance(posterior, Posterior)
    for method in ("predict_draws", "predict_moments", "predictive_draws"):
        declared = inspect.signature(getattr(Posterior, method))
        actual = inspect.signature(getattr(type(posterior), method))
        assert list(actual.parameters) == list(declared.parameters), method
    # what the protocol promises of the methods' results
    draws = posterior.predict_draws(model, X, chunk_size=32)
    assert draws[0].shape == (posterior.n_predictive_draws, 64, 3)
    moments = posterior.predict_moments(model, X, chunk_size=32)
    assert moments is None or moments[0].shape == (64, 3)
    reference = model.init(jax.random.key(0), X.shape[1:])
    assert jax.tree.structure(posterior.mean_params()) == jax.tree.structure(reference)


def test_a_strategy_missing_the_protocol_is_refused():
    from skbnn import BayesianMLPClassifier

    class NotAStrategy:
        def fit(self, X, y):
            return self

    X = np.random.RandomState(0).normal(size=(20, 3))
    with pytest.raises((TypeError, ValueError), match="inference"):
        BayesianMLPClassifier((4,), inference=NotAStrategy()).fit(X, X[:, 0] > 0)
