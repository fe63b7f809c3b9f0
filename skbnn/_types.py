"""Type aliases shared by the pure-JAX layers of skbnn."""

from typing import Any

import jax

__all__ = ["Array", "PRNGKey", "Params"]

#: A JAX array (or anything ``jnp.asarray`` accepts where a function says so).
Array = jax.Array

#: A typed JAX PRNG key, as made by ``jax.random.key``.
PRNGKey = jax.Array

#: A parameter pytree: nested ``dict`` of arrays. The model's parameters are
#: ``{"network": <flax params>, "likelihood": {...}}``.
Params = Any
