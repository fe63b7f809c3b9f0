"""fit drops JAX's compiled programs before the process runs out of memory mappings."""

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skbnn import BayesianMLPClassifier
from skbnn.utils import _compile

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="reads /proc/self/maps"
)


@pytest.fixture
def fresh_state(monkeypatch):
    monkeypatch.setattr(_compile, "_state", {"limit": None, "floor": None})


def test_release_frees_mappings_above_the_threshold(fresh_state):
    f = jax.jit(lambda x: jnp.sin(x) * 2.0)
    for n in range(1, 40):  # forty compiled programs, about ten mappings each
        f(jnp.ones(n))
    assert f._cache_size() > 0
    before = _compile._count_mappings()
    assert _compile.release_compiled_programs(share=0.0)
    assert f._cache_size() == 0
    assert _compile._count_mappings() < before
    # the next call compiles again and gives the same answer
    np.testing.assert_allclose(f(jnp.ones(3)), 2.0 * np.sin(1.0), rtol=1e-6)


def test_no_release_below_the_threshold(fresh_state):
    f = jax.jit(lambda x: x + 1.0)
    f(jnp.ones(2))
    assert not _compile.release_compiled_programs(share=1.0)
    assert f._cache_size() == 1


def test_no_release_again_until_mappings_grow(fresh_state):
    assert _compile.release_compiled_programs(share=0.0)
    f = jax.jit(lambda x: x * 3.0)
    f(jnp.ones(2))
    # still far below the floor left by the last release plus MIN_GROWTH
    assert not _compile.release_compiled_programs(share=0.0)
    assert f._cache_size() == 1


def test_fit_releases_when_the_process_is_near_its_limit(fresh_state, monkeypatch):
    f = jax.jit(lambda x: x - 1.0)
    f(jnp.ones(2))
    monkeypatch.setitem(_compile._state, "limit", 1)  # every count is over half of it
    X = np.random.RandomState(0).normal(size=(30, 3))
    BayesianMLPClassifier((4,), inference="map", max_iter=2).fit(X, X[:, 0] > 0)
    assert f._cache_size() == 0
