"""Priors on network weights."""

import math

import jax
import jax.numpy as jnp
from flax import struct

from .utils._io import serializable

__all__ = ["GaussianPrior", "LaplacePrior"]


def _per_leaf(value, params):
    """``value`` as a list with one entry per leaf of ``params``: a pytree like ``params``
    gives its leaves, a scalar is repeated."""
    leaves = jax.tree.leaves(params)
    if jax.tree.structure(value).num_leaves == 1 and not isinstance(value, dict):
        return [value] * len(leaves)
    values = jax.tree.leaves(value)
    if len(values) != len(leaves):
        raise ValueError(
            f"The prior has {len(values)} arrays where the network has {len(leaves)}.")
    return values


@serializable
@struct.dataclass
class GaussianPrior:
    """Gaussian prior ``N(mean, 1/alpha)`` on every network parameter, independent.

    ``alpha`` is the precision: one number (the estimators' ``alpha``) or a
    pytree like the network's parameters (one precision per parameter);
    ``mean`` is None (zero) or such a pytree. The estimators build the
    isotropic ``N(0, 1/alpha)``. The MAP objective then carries the penalty
    ``alpha/2 * ||theta||^2``: exactly the L2 penalty of scikit-learn's
    ``MLPClassifier`` (whose per-sample loss divides it by ``n_samples``),
    except that the intercepts are penalised too, which a proper prior needs.
    ``partial_fit`` with ``inference="vi"`` builds the per-parameter form
    from the previous variational posterior (its means and variances), so the
    posterior after one batch is the prior for the next.

    ``alpha`` and ``mean`` are pytree leaves, so fits with other values reuse
    the compiled program.
    """

    alpha: jax.Array = 1.0
    mean: object = None

    def precisions(self, net_params):
        """The precision of each leaf of ``net_params`` (a scalar or the leaf's shape)."""
        return [jnp.asarray(a) for a in _per_leaf(self.alpha, net_params)]

    def means(self, net_params):
        """The mean of each leaf of ``net_params`` (0 or the leaf's shape)."""
        if self.mean is None:
            return [jnp.zeros((), jnp.result_type(float))] * len(jax.tree.leaves(net_params))
        return [jnp.asarray(m) for m in _per_leaf(self.mean, net_params)]

    def log_prob(self, net_params):
        total = jnp.zeros((), jnp.result_type(float))
        for x, a, m in zip(jax.tree.leaves(net_params), self.precisions(net_params),
                           self.means(net_params)):
            log_a = jnp.broadcast_to(jnp.log(a), x.shape)
            total = total + (-0.5 * jnp.sum(a * jnp.square(x - m))
                             + 0.5 * jnp.sum(log_a) - 0.5 * x.size * math.log(2 * math.pi))
        return total


@serializable
@struct.dataclass
class LaplacePrior:
    """A Laplace posterior as the prior of the next batch (``partial_fit``).

    The previous posterior over the covered weights (``subset``, a path in the
    full parameter tree) is the Gaussian ``N(mean, (alpha I + H)^-1)``: its
    mode ``mean`` and the prior precision ``alpha`` plus ``H``, the curvature
    of the rows seen (``curvature`` summed over ``n_eff`` rows, in the terms of
    the covariance ``structure``). That Gaussian is this prior, so a MAP under
    it is the mode of all rows so far and the new curvature is ``H`` plus the
    new rows': on a linear-Gaussian model, exactly the posterior of one fit on
    all rows. Weights outside ``subset`` have the isotropic ``N(0, 1/alpha)``.
    """

    alpha: jax.Array
    mean: object
    curvature: object
    n_eff: jax.Array
    structure: str = struct.field(pytree_node=False, default="kron")
    subset: tuple = struct.field(pytree_node=False, default=())

    def log_prob(self, net_params):
        from .structures import get_structure
        from .utils._tree import get_path, set_path

        covered = get_path({"network": net_params}, self.subset)
        anchor = get_path({"network": self.mean}, self.subset)
        diff = jax.tree.map(jnp.subtract, covered, anchor)
        quadratic = get_structure(self.structure).quadratic(self.curvature, diff, self.n_eff)
        # alpha I around the previous mode on the covered weights, around 0 elsewhere
        zeros = jax.tree.map(jnp.zeros_like, {"network": net_params})
        centre = set_path(zeros, self.subset, anchor)["network"]
        return GaussianPrior(self.alpha, centre).log_prob(net_params) - 0.5 * quadratic
