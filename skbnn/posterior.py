"""Posterior containers and the posterior predictive.

Two containers, both immutable pytrees holding only arrays and static
metadata, so a fitted estimator pickles and saves as plain data:

- :class:`SamplePosterior`: stacked draws, shape ``(n_chains, n_draws_per_chain, ...)``
  per parameter leaf (the chain axis is kept for diagnostics; :meth:`SamplePosterior.flatten`
  merges it).
- :class:`GaussianPosterior`: a mean and a covariance of a named ``structure``
  (``"diag"`` or ``"full"`` here; the structures are dispatched through plain
  dicts, so a new one is a new entry), over all parameters or over one
  sub-tree of them (``subset``, e.g. the last layer), the rest held at the mean.

The protocol the estimators use, which every posterior container offers:

- ``mean_params()``, ``warm_start_params()``, ``n_predictive_draws``;
- ``predict_draws(model, X, chunk_size=...)``: the likelihood's predictive
  quantities under each draw, each ``(n_draws, n_samples, ...)`` (probabilities
  for classification, ``(mean, noise_std)`` for regression), computed by
  ``predictive``: vmapped over draws, in fixed-size chunks of rows;
- ``predict_moments(model, X, chunk_size=...)``: a closed-form predictive
  (e.g. Laplace's probit approximation) with the shapes of one draw, or None
  when the estimator should average the draws.
"""

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

from ._types import Params
from .utils._io import serializable

__all__ = [
    "STRUCTURES",
    "GaussianPosterior",
    "SamplePosterior",
    "predictive",
]


@serializable
@struct.dataclass
class SamplePosterior:
    """Posterior draws, each leaf of shape ``(n_chains, n_draws_per_chain, ...)``.

    A point estimate (the MAP) is the one-chain, one-draw case.
    """

    draws: Params

    @property
    def _lead_shape(self):
        return jax.tree.leaves(self.draws)[0].shape[:2]

    @property
    def n_chains(self) -> int:
        return int(self._lead_shape[0])

    @property
    def n_draws_per_chain(self) -> int:
        return int(self._lead_shape[1])

    @property
    def n_draws(self) -> int:
        """Total number of draws, all chains together."""
        return self.n_chains * self.n_draws_per_chain

    def flatten(self) -> Params:
        """Draws with the chain axis merged: leaves ``(n_chains * n_draws_per_chain, ...)``."""
        return jax.tree.map(lambda x: x.reshape((-1, *x.shape[2:])), self.draws)

    def mean_params(self) -> Params:
        """Posterior mean of every parameter."""
        return jax.tree.map(lambda x: x.mean(axis=(0, 1)), self.draws)

    def warm_start_params(self) -> Params:
        """Last draw of each chain, leaves ``(n_chains, ...)``: where a warm start resumes."""
        return jax.tree.map(lambda x: x[:, -1], self.draws)

    @property
    def n_predictive_draws(self) -> int:
        return self.n_draws

    def predictive_draws(self, rng_key=None) -> Params:
        """Parameter draws the predictive averages over (all stored draws)."""
        return self.flatten()

    def predict_draws(self, model, X, *, chunk_size=256):
        """The likelihood's predictive quantities under every draw: see ``predictive``."""
        return predictive(model, self.predictive_draws(), X, chunk_size=chunk_size)

    def predict_moments(self, model, X, *, chunk_size=256):
        """Closed-form predictive, where the posterior has one; None: average the draws."""
        return None


# ---------------------------------------------------------------------------
# Gaussian posteriors: one function per structure and operation, in dicts.

#: Covariance structures a :class:`GaussianPosterior` can name.
STRUCTURES = ("diag", "kron", "lowrank", "full")


def _sample_diag(rng_key, mean, factors, n):
    scale = factors["scale"]
    leaves, treedef = jax.tree.flatten(mean)
    keys = jax.random.split(rng_key, len(leaves))
    eps = [jax.random.normal(k, (n, *m.shape), m.dtype) for k, m in zip(keys, leaves)]
    return jax.tree.map(
        lambda m, s, e: m + s * e, mean, scale, jax.tree.unflatten(treedef, eps)
    )


def _sample_full(rng_key, mean, factors, n):
    flat, unravel = ravel_pytree(mean)
    tril = factors["scale_tril"]
    eps = jax.random.normal(rng_key, (n, flat.shape[0]), flat.dtype)
    return jax.vmap(unravel)(flat + eps @ tril.T)


def _log_det_diag(mean, factors):
    return 2.0 * sum(jnp.sum(jnp.log(s)) for s in jax.tree.leaves(factors["scale"]))


def _log_det_full(mean, factors):
    return 2.0 * jnp.sum(jnp.log(jnp.diag(factors["scale_tril"])))


def _variance_diag(mean, factors):
    return jax.tree.map(jnp.square, factors["scale"])


def _variance_full(mean, factors):
    _, unravel = ravel_pytree(mean)
    return unravel(jnp.sum(jnp.square(factors["scale_tril"]), axis=1))


_SAMPLE = {"diag": _sample_diag, "full": _sample_full}
_LOG_DET = {"diag": _log_det_diag, "full": _log_det_full}
_VARIANCE = {"diag": _variance_diag, "full": _variance_full}


def _dispatch(table, structure):
    try:
        return table[structure]
    except KeyError:
        raise ValueError(
            f"Covariance structure {structure!r} is not available; "
            f"available: {sorted(table)}."
        ) from None


def _get_path(tree, path):
    for name in path:
        tree = tree[name]
    return tree


def _set_path(tree, path, value):
    if not path:
        return value
    head, *rest = path
    return {**tree, head: _set_path(tree[head], tuple(rest), value)}


@serializable
@struct.dataclass
class GaussianPosterior:
    """Gaussian posterior with a named covariance ``structure``.

    Parameters
    ----------
    mean : pytree
        Mean of every parameter (the full parameter pytree).
    factors : dict
        The covariance in the structure's own terms: ``{"scale": pytree}`` of
        standard deviations for ``"diag"``; ``{"scale_tril": (P, P)}``, the
        lower Cholesky factor of the covariance of the raveled covered
        parameters (``jax.flatten_util.ravel_pytree`` order), for ``"full"``.
    key_data : array of uint32
        Raw PRNG key for the predictive draws, so repeated predictions (and
        predictions on subsets of rows) use the same draws.
    structure : str
        One of ``STRUCTURES``.
    subset : tuple of str
        Path of the sub-tree the Gaussian covers, e.g. ``("network", "dense_2")``;
        empty for all parameters. Parameters outside it stay at ``mean``.
    n_predictive_draws : int
        Number of draws the predictive averages over.
    """

    mean: Params
    factors: dict
    key_data: jax.Array
    structure: str = struct.field(pytree_node=False, default="diag")
    subset: tuple = struct.field(pytree_node=False, default=())
    n_predictive_draws: int = struct.field(pytree_node=False, default=100)

    def _covered_mean(self):
        return _get_path(self.mean, self.subset)

    def mean_params(self) -> Params:
        """Posterior mean of every parameter."""
        return self.mean

    def warm_start_params(self) -> Params:
        """Where a warm start resumes: the mean."""
        return self.mean

    def sample(self, rng_key, n) -> Params:
        """``n`` parameter draws: leaves ``(n, ...)``."""
        covered = _dispatch(_SAMPLE, self.structure)(
            rng_key, self._covered_mean(), self.factors, n
        )
        full = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), self.mean)
        return _set_path(full, self.subset, covered)

    def log_det(self):
        """Log-determinant of the covariance of the covered parameters."""
        return _dispatch(_LOG_DET, self.structure)(self._covered_mean(), self.factors)

    def marginal_variance(self) -> Params:
        """Marginal variances of the covered parameters (a pytree like the covered sub-tree)."""
        return _dispatch(_VARIANCE, self.structure)(self._covered_mean(), self.factors)

    def predictive_draws(self, rng_key=None) -> Params:
        """``n_predictive_draws`` draws, from ``rng_key`` or else from the stored key."""
        if rng_key is None:
            rng_key = jax.random.wrap_key_data(jnp.asarray(self.key_data))
        return _sample(self, rng_key, self.n_predictive_draws)

    def predict_draws(self, model, X, *, chunk_size=256):
        """The likelihood's predictive quantities under every predictive draw."""
        return predictive(model, self.predictive_draws(), X, chunk_size=chunk_size)

    def predict_moments(self, model, X, *, chunk_size=256):
        """Closed-form predictive, where the posterior has one; None: average the draws."""
        return None


@partial(jax.jit, static_argnums=2)
def _sample(posterior, rng_key, n):
    return posterior.sample(rng_key, n)


# ---------------------------------------------------------------------------
# Posterior predictive


@jax.jit
def _predict_chunk(model, draws, X):
    return jax.vmap(model.predict, in_axes=(0, None))(draws, X)


def predictive(model, draws, X, *, chunk_size=256):
    """Evaluate ``model.predict`` for every draw on every row of ``X``.

    Rows go through in chunks of exactly ``chunk_size`` (the last one padded),
    so memory stays bounded and every row is computed by the same compiled
    program whatever the number of rows: predictions on a subset of rows equal
    the corresponding rows of predictions on the whole.

    Returns
    -------
    tuple of ndarray
        The likelihood's predictive quantities, each of shape
        ``(n_draws, n_samples, ...)``.
    """
    X = np.asarray(X)
    n_rows = X.shape[0]
    draws = jax.device_put(draws)
    parts = []
    for start in range(0, n_rows, chunk_size):
        chunk = X[start : start + chunk_size]
        n_valid = chunk.shape[0]
        if n_valid < chunk_size:
            pad = np.zeros((chunk_size - n_valid, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        out = _predict_chunk(model, draws, jnp.asarray(chunk))
        parts.append(tuple(np.asarray(o)[:, :n_valid] for o in out))
    return tuple(np.concatenate(group, axis=1) for group in zip(*parts))
