"""Random numbers: fast normal draws and row permutations from JAX PRNG keys."""

import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

__all__ = ["normal", "normal_like", "permutation"]


def _mix32(x):
    """Chris Wellons' ``lowbias32``: a bijective 32-bit integer hash of low bias."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def _keyed_hashes(rng_key, n):
    """``mix(mix(i ^ s0) + s1)`` for ``i < n``, with ``s0, s1`` two Threefry words of ``rng_key``.

    Both maps are bijective, so the ``n`` values are distinct.
    """
    seed = jax.random.bits(rng_key, (2,), jnp.uint32)
    return _mix32(_mix32(lax.iota(jnp.uint32, n) ^ seed[0]) + seed[1])


def normal(rng_key, shape, dtype=None):
    """Standard normal draws, like ``jax.random.normal``, at a fraction of its cost on a CPU.

    The noise of Langevin dynamics and of variational sampling needs a fresh
    normal for every parameter or activation at every step; with JAX's
    Threefry generator, making them costs more than the network's gradient on
    a CPU. Here Threefry makes only two 32-bit seeds per call; each entry's
    bits come from a counter-based hash of its index, ``mix(mix(i ^ s0) + s1)``
    (both maps bijective, so the entries of one call are distinct), and its
    top 24 bits become a uniform in (-1, 1) that the inverse error function
    turns into a normal, as ``jax.random.normal`` does with Threefry's bits.
    Float64 (with ``jax_enable_x64``) goes through ``jax.random.normal``, whose
    53-bit uniforms a 32-bit hash cannot supply.

    Kept over ``jax.random.normal`` because it measures faster on a CPU with
    the same distribution: ``benchmarks/handwritten.py`` times both and
    compares their quantiles (results in ``benchmarks/results/handwritten.json``,
    shown in the API reference's extension points).
    """
    dtype = jnp.result_type(float) if dtype is None else jnp.dtype(dtype)
    if dtype.itemsize > 4:
        return jax.random.normal(rng_key, shape, dtype)
    size = math.prod(shape)
    if size >= 2**32:
        raise ValueError(f"normal draws {size} numbers at a time at most 2**32 - 1.")
    bits = _keyed_hashes(rng_key, size)
    # the top 24 bits, centred in their cells: u in [-1 + 2**-24, 1 - 2**-24]
    u = (bits >> 8).astype(jnp.float32) * (2.0**-23) + (2.0**-24 - 1.0)
    z = np.float32(np.sqrt(2.0)) * _erf_inv_f32(u)
    return z.astype(dtype).reshape(shape)


# Giles (2010), "Approximating the erfinv function", single precision: two
# degree-8 polynomials in w = -log(1 - u^2), relative error below 4e-7.
_ERFINV_CENTRAL = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06,
                   0.00021858087, -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERFINV_TAIL = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844,
                0.00573950773, -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


def _erf_inv_f32(u):
    """Inverse error function for float32 ``u`` in (-1, 1), ~20% cheaper than ``lax.erf_inv`` on a CPU."""
    w = -jnp.log((1.0 - u) * (1.0 + u))
    central, tail = w - 2.5, jnp.sqrt(w) - 3.0
    p, q = jnp.float32(_ERFINV_CENTRAL[0]), jnp.float32(_ERFINV_TAIL[0])
    for a, b in zip(_ERFINV_CENTRAL[1:], _ERFINV_TAIL[1:]):
        p, q = a + p * central, b + q * tail
    return jnp.where(w < 5.0, p, q) * u


def normal_like(rng_key, tree):
    """A pytree of standard normals shaped like ``tree``, from one call of :func:`normal`."""
    leaves, treedef = jax.tree.flatten(tree)
    if not leaves:  # nothing to draw (e.g. a linear network's only layer left out)
        return tree
    sizes = [math.prod(jnp.shape(x)) for x in leaves]
    dtype = jnp.result_type(*leaves)
    flat = normal(rng_key, (sum(sizes),), dtype)
    parts = jnp.split(flat, np.cumsum(sizes)[:-1].tolist()) if len(sizes) > 1 else [flat]
    return jax.tree.unflatten(
        treedef, [p.reshape(jnp.shape(x)).astype(x.dtype) for p, x in zip(parts, leaves)]
    )


@partial(jax.jit, static_argnums=1)
def permutation(rng_key, n: int):
    """A random permutation of ``range(n)``, for shuffling rows each epoch.

    ``jnp.argsort`` of one distinct hash per index (the bijective hash of
    :func:`normal`, keyed by two Threefry words): no ties, so one sort does
    what ``jax.random.permutation`` needs several rounds of sorting for, and
    it compiles in a fraction of the time.
    """
    return jnp.argsort(_keyed_hashes(rng_key, n)).astype(jnp.int32)

