"""skbnn's fast normal draws are standard normal, independent, and repeatable."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from skbnn.utils._random import normal, normal_like


def test_draws_are_standard_normal():
    z = np.asarray(normal(jax.random.key(0), (200_000,)))
    assert z.dtype == np.float32
    assert abs(z.mean()) < 4 / np.sqrt(z.size)
    assert abs(z.std() - 1.0) < 0.01
    assert stats.kstest(z, "norm").pvalue > 0.01
    # tails: the share beyond 2 and 3 sds is the normal's, within Monte Carlo error
    for t in (2.0, 3.0):
        expected = 2 * stats.norm.sf(t)
        assert abs(np.mean(np.abs(z) > t) - expected) < 5 * np.sqrt(expected / z.size)


def test_neighbours_keys_and_positions_are_uncorrelated():
    z = np.asarray(normal(jax.random.key(1), (100_000,)))
    other = np.asarray(normal(jax.random.key(2), (100_000,)))
    bound = 4 / np.sqrt(z.size)
    assert abs(np.corrcoef(z[:-1], z[1:])[0, 1]) < bound
    assert abs(np.corrcoef(z, other)[0, 1]) < bound
    # one position over many keys (how a chain sees one parameter's noise over steps)
    keys = jax.random.split(jax.random.key(3), 4000)
    per_key = np.asarray(jax.vmap(lambda k: normal(k, (64,)))(keys))
    column = per_key[:, 17]
    assert stats.kstest(column, "norm").pvalue > 0.01
    assert abs(np.corrcoef(column[:-1], column[1:])[0, 1]) < 4 / np.sqrt(column.size)


def test_same_key_same_draws_and_shapes():
    key = jax.random.key(5)
    a = normal(key, (3, 4))
    assert a.shape == (3, 4)
    np.testing.assert_array_equal(a, normal(key, (3, 4)))
    assert not np.array_equal(a, normal(jax.random.key(6), (3, 4)))
    tree = {"w": jnp.zeros((5, 2)), "b": jnp.zeros(2)}
    noise = normal_like(key, tree)
    assert jax.tree.map(jnp.shape, noise) == {"w": (5, 2), "b": (2,)}
    flat = np.concatenate([np.ravel(x) for x in jax.tree.leaves(noise)])
    assert len(np.unique(flat)) == flat.size


def test_float64_goes_through_jax():
    with jax.enable_x64(True):
        z = normal(jax.random.key(0), (1000,), jnp.float64)
        assert z.dtype == jnp.float64
        np.testing.assert_array_equal(z, jax.random.normal(jax.random.key(0), (1000,),
                                                           jnp.float64))


@pytest.mark.parametrize("shape", [(0,), (1,), (7, 0, 3)])
def test_empty_and_tiny_shapes(shape):
    assert normal(jax.random.key(0), shape).shape == shape


def test_erf_inv_matches_scipy_over_the_float32_range():
    """The single-precision erfinv behind ``normal`` is accurate to float32 rounding, tails included."""
    from scipy.special import erfinv

    from skbnn.utils._random import _erf_inv_f32

    u = np.concatenate([
        np.linspace(-1 + 2**-24, 1 - 2**-24, 200_001),
        1 - np.logspace(-7.2, -1, 1001),  # the tail branch (w >= 5)
    ]).astype(np.float32)
    got = np.asarray(jax.jit(_erf_inv_f32)(u), np.float64)
    exact = erfinv(u.astype(np.float64))
    np.testing.assert_allclose(got, exact, rtol=1e-6, atol=1e-7)
