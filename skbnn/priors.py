"""Priors on network weights."""

import math

import jax
import jax.numpy as jnp
from flax import struct

from .utils._io import serializable

__all__ = ["GaussianPrior"]


@serializable
@struct.dataclass
class GaussianPrior:
    """Isotropic Gaussian prior ``N(0, 1/alpha)`` on every network parameter.

    ``alpha`` is the precision. The MAP objective then carries the penalty
    ``alpha/2 * ||theta||^2``: exactly the L2 penalty of scikit-learn's
    ``MLPClassifier`` (whose per-sample loss divides it by ``n_samples``),
    except that the intercepts are penalised too, which a proper prior needs.
    ``alpha`` is a pytree leaf, so fits with other values reuse the compiled
    program.
    """

    alpha: jax.Array = 1.0

    def log_prob(self, net_params):
        leaves = jax.tree.leaves(net_params)
        sq = sum(jnp.sum(jnp.square(x)) for x in leaves)
        size = sum(x.size for x in leaves)
        alpha = jnp.asarray(self.alpha)
        return -0.5 * alpha * sq + 0.5 * size * (jnp.log(alpha) - math.log(2 * math.pi))
