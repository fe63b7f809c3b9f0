"""Work outside ``jit`` that compiles nothing, or one program for every call.

Outside a jitted function, JAX runs each operation as a small program of its
own, compiled on its first use in a process for each shape and dtype:
``jnp.asarray(0.5, dtype)`` and ``jnp.asarray(numpy_array)`` (a conversion),
``jax.random.split`` and ``fold_in``, ``x[rows]``. A first fit of a small
network compiled about sixty of them, a third of its compile time, and a
cold search or a fresh worker process pays that again. These helpers do the
same work as a transfer (:func:`to_device`, no program) or as one compiled
program shared by every call.
"""

from functools import partial

import jax
import numpy as np

__all__ = ["fold_in", "is_nan", "key", "split_key", "to_device", "wrap_key"]


def to_device(x, dtype=None):
    """``jnp.asarray(x, dtype)`` for a host value, as a transfer (nothing compiled)."""
    return jax.device_put(np.asarray(x, dtype=dtype))


def is_nan(x) -> bool:
    """Whether the scalar ``x`` (a host or device value) is NaN, read on the host."""
    return bool(np.isnan(np.asarray(x)))


@jax.jit
def key(seed):
    """``jax.random.key(seed)``."""
    return jax.random.key(seed)


@jax.jit
def wrap_key(key_data):
    """``jax.random.wrap_key_data(key_data)``."""
    return jax.random.wrap_key_data(key_data)


@partial(jax.jit, static_argnums=1)
def split_key(rng_key, num: int = 2):
    """``jax.random.split(rng_key, num)``."""
    return jax.random.split(rng_key, num)


@jax.jit
def fold_in(rng_key, data):
    """``jax.random.fold_in(rng_key, data)``."""
    return jax.random.fold_in(rng_key, data)
