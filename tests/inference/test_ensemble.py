"""The deep ensemble: vmapped MAP networks, each exactly the MAP run from its start."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import Ensemble
from skbnn.inference import ensemble as ensemble_
from skbnn.inference import map as map_
from skbnn.inference.base import Training, device_data
from skbnn.likelihoods import Categorical
from skbnn.model import Model
from skbnn.networks import build_mlp
from skbnn.priors import GaussianPrior

from .._conjugate import linear_draws, linear_gaussian_problem


def test_each_member_is_the_map_run_from_its_own_start():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(48, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int32) + (X[:, 2] > 0.5)
    model = Model(build_mlp((8,), "tanh", 3), Categorical(3), GaussianPrior(np.float32(1.0)))
    data = device_data(X, y, np.ones(48, np.float32))
    training = Training(max_iter=5, batch_size=8, learning_rate=1e-2)
    key = jax.random.key(3)
    strategy = Ensemble(n_members=3)
    result = strategy.run(model, data, key, training=training)
    draws = result.posterior.draws
    assert jax.tree.leaves(draws)[0].shape[:2] == (3, 1)
    # the members' starts: the ensemble's own initialisation
    key_init, _ = jax.random.split(key)
    starts = ensemble_._init(model, strategy.config(model, training), key_init, (4,), None,
                             3).params
    for k in range(3):
        start = jax.tree.map(lambda x: x[k], starts)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            alone = map_.run(model, data, strategy.config(model, training), key,
                             training=training, init_params=start)
        for got, want in zip(jax.tree.leaves(draws), jax.tree.leaves(alone.posterior.draws)):
            np.testing.assert_allclose(got[k, 0], want[0, 0], rtol=1e-5, atol=1e-6)
    # and the members differ
    kernels = draws["network"]["dense_0"]["kernel"][:, 0]
    assert not np.allclose(kernels[0], kernels[1])


def test_on_a_linear_model_every_member_finds_the_exact_mode():
    # a convex problem has one mode: the ensemble collapses onto it, so its
    # spread says nothing about the posterior's (which is why it is a baseline)
    p = linear_gaussian_problem(n_samples=60)
    reg = BayesianMLPRegressor((), inference="ensemble", noise_std=p.noise_std,
                               normalize_y=False, alpha=p.alpha, random_state=0).fit(p.X, p.y)
    theta = linear_draws(reg.posterior_.flatten())
    sd = np.sqrt(np.diag(p.cov))
    assert theta.shape == (5, 4)
    # the cosine's last steps leave each member within 0.04 sd of the mode here
    # (one-row minibatches; a single MAP lands within 0.002 sd)
    np.testing.assert_array_less(np.abs(theta - p.mean) / sd, 0.06)
    assert reg.predict_uncertainty(p.X).epistemic.max() < 0.02 * p.noise_std


def test_members_disagree_off_the_data_on_a_network():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(200, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=200)
    reg = BayesianMLPRegressor((32,), activation="tanh", inference=Ensemble(n_members=4),
                               max_iter=100, random_state=0).fit(X, y)
    u = reg.predict_uncertainty(np.array([[0.0], [3.0]]))
    assert u.epistemic[1] > 3 * u.epistemic[0]


def test_early_stopping_is_refused():
    X = np.random.RandomState(0).normal(size=(40, 3))
    with pytest.raises(ValueError, match="early_stopping=True is not supported"):
        BayesianMLPClassifier((4,), inference="ensemble", early_stopping=True).fit(
            X, X[:, 0] > 0)
