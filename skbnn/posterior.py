"""Posterior containers and the posterior predictive.

Two containers, both immutable pytrees holding only arrays and static
metadata, so a fitted estimator pickles and saves as plain data:

- :class:`SamplePosterior`: stacked draws, shape ``(n_chains, n_draws_per_chain, ...)``
  per parameter leaf (the chain axis is kept for diagnostics; :meth:`SamplePosterior.flatten`
  merges it).
- :class:`GaussianPosterior`: a mean and a covariance of a named ``structure``
  (``"diag"``, ``"kron"``, ``"lowrank"`` or ``"full"``: one class each in
  :mod:`skbnn.structures`, so a new one is a new class there), over all
  parameters or over one sub-tree of them (``subset``, e.g. the last layer),
  the rest held at the mean. Its ``predictive`` is Monte Carlo over the network
  (``"network"``) or over the network linearised at the mean (``"glm"``, with a
  closed form, and ``"glm_mc"``), as Laplace approximations use.

Both satisfy the :class:`Posterior` protocol the estimators use. Draws go
through ``predictive``: a compiled loop over draws, in fixed-size chunks of rows.
"""

import weakref
from functools import partial
from typing import Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import struct

from ._types import Params
from .structures import STRUCTURES, dense_probe, get_structure, row_jacobians
from .utils._eager import to_device, wrap_key
from .utils._io import serializable
from .utils._host import HostRows
from .utils._sparse import SparseRows, densify
from .utils._tree import get_path, set_path

__all__ = [
    "Posterior",
    "STRUCTURES",
    "GaussianPosterior",
    "SamplePosterior",
    "predictive",
    "row_jacobians",
    "rows_per_chunk",
]


def rows_per_chunk(values_per_row, *, budget=1 << 24, low=1, high=1024):
    """Rows per compiled chunk: the largest power of two whose chunk holds at most
    ``budget`` values at ``values_per_row`` each, within ``[low, high]``.

    It depends on the architecture, never on the number of rows, so every row
    goes through the same compiled program (and a row's result does not
    depend on which other rows are predicted with it).
    """
    rows = max(1, budget // max(1, int(values_per_row)))
    return int(np.clip(1 << (rows.bit_length() - 1), low, high))


@runtime_checkable
class Posterior(Protocol):
    """What the estimators need of a posterior: every strategy returns one.

    - ``mean_params()``: the posterior mean of every parameter (``coefs_``);
    - ``warm_start_params()``: where ``warm_start=True`` resumes (one point,
      or one per chain on a leading axis);
    - ``n_predictive_draws`` and ``predictive_draws(rng_key=None)``: the
      parameter draws the predictive averages over, leaves ``(n_draws, ...)``;
    - ``predict_draws(model, X, *, chunk_size)``: the likelihood's predictive
      quantities under each draw, each ``(n_draws, n_samples, ...)``;
    - ``predict_moments(model, X, *, chunk_size)``: a closed-form predictive
      with the shapes of one draw, or None when the draws are to be averaged.

    Posteriors are immutable pytrees of arrays and static metadata, so a fitted
    estimator pickles and saves as plain data.
    """

    n_predictive_draws: int

    def mean_params(self) -> Params: ...

    def warm_start_params(self) -> Params: ...

    def predictive_draws(self, rng_key=None) -> Params: ...

    def predict_draws(self, model, X, *, chunk_size=256): ...

    def predict_moments(self, model, X, *, chunk_size=256): ...


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
        return predictive(model, _on_device(self), X, chunk_size=chunk_size)

    def predict_moments(self, model, X, *, chunk_size=256):
        """Closed-form predictive, where the posterior has one; None: average the draws."""
        return None


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
    temperature : float
        The covariance is ``temperature`` times the one ``factors`` describe:
        the Gaussian of a tempered posterior ``p(theta | data)^(1/T)`` (the
        curvature divided by ``T``), so that a strategy can choose ``T``
        after building the factors once.
    curvature, n_eff : pytree and float, or None
        Laplace's summed curvature of the covered weights (in the structure's
        terms) and the rows it sums over, kept so that ``partial_fit`` can
        carry the posterior to the next batch (``skbnn.priors.LaplacePrior``);
        None for other Gaussians.
    predictive : {"network", "glm", "glm_mc"}
        ``"network"``: the draws go through the network. ``"glm"`` and
        ``"glm_mc"``: through the network linearised at the mean in the covered
        parameters (the generalised linear model of the Laplace approximation,
        Immer et al. 2021); ``"glm"`` also has a closed form
        (:meth:`predict_moments`): the probit approximation for classification
        and the Gaussian for regression. Needs ``subset`` inside ``"network"``.
    """

    mean: Params
    factors: dict
    key_data: jax.Array
    temperature: jax.Array = 1.0
    curvature: object = None
    n_eff: object = None
    structure: str = struct.field(pytree_node=False, default="diag")
    subset: tuple = struct.field(pytree_node=False, default=())
    n_predictive_draws: int = struct.field(pytree_node=False, default=100)
    predictive: str = struct.field(pytree_node=False, default="network")

    def _covered_mean(self):
        return get_path(self.mean, self.subset)

    def mean_params(self) -> Params:
        """Posterior mean of every parameter."""
        return self.mean

    def warm_start_params(self) -> Params:
        """Where a warm start resumes: the mean."""
        return self.mean

    @property
    def covariance(self):
        """The :class:`~skbnn.structures.Structure` the factors are in."""
        return get_structure(self.structure)

    def sample(self, rng_key, n) -> Params:
        """``n`` parameter draws: leaves ``(n, ...)``."""
        mean = self._covered_mean()
        covered = self.covariance.sample(rng_key, mean, self.factors, n)
        root = jnp.sqrt(jnp.asarray(self.temperature))
        covered = jax.tree.map(lambda d, m: m + root * (d - m), covered, mean)
        full = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), self.mean)
        return set_path(full, self.subset, covered)

    def log_det(self):
        """Log-determinant of the covariance of the covered parameters."""
        mean = self._covered_mean()
        n_covered = sum(x.size for x in jax.tree.leaves(mean))
        return (self.covariance.log_det(mean, self.factors)
                + n_covered * jnp.log(jnp.asarray(self.temperature)))

    def marginal_variance(self) -> Params:
        """Marginal variances of the covered parameters (a pytree like the covered sub-tree)."""
        variance = self.covariance.variance(self._covered_mean(), self.factors)
        return jax.tree.map(lambda v: v * self.temperature, variance)

    def predictive_draws(self, rng_key=None) -> Params:
        """``n_predictive_draws`` draws, from ``rng_key`` or else from the stored key."""
        if rng_key is None:
            rng_key = wrap_key(to_device(self.key_data))
        return _sample(self, rng_key, self.n_predictive_draws)

    def predict_draws(self, model, X, *, chunk_size=256):
        """The likelihood's predictive quantities under every predictive draw."""
        draws = self.predictive_draws()
        if self.predictive == "network":
            return predictive(model, draws, X, chunk_size=chunk_size)
        if self.predictive not in ("glm", "glm_mc"):
            raise ValueError(
                f"predictive={self.predictive!r} is not available; "
                "choose 'network', 'glm' or 'glm_mc'."
            )
        covered = get_path(draws, self.subset)
        return _map_chunks(lambda chunk: _glm_draws_chunk(model, self, covered, chunk),
                           X, chunk_size, row_axis=1)

    def predict_moments(self, model, X, *, chunk_size=256):
        """Closed-form predictive, where the posterior has one; None: average the draws.

        With ``predictive="glm"``: the linearised model's outputs have mean
        ``f(x)`` and covariance ``J(x) Sigma J(x)^T``; classification returns
        ``(probabilities,)`` by the probit approximation
        ``softmax(f / sqrt(1 + pi/8 diag(cov)))`` (MacKay 1992), regression
        ``(mean, total_std)`` with ``total_std**2 = noise**2 + diag(cov)``
        (a Poisson: the mean and standard deviation of its lognormal rate's
        mixture; each likelihood's ``linearized_predictive``).
        """
        if self.predictive != "glm":
            return None
        n_outputs = model.likelihood.n_network_outputs
        if self.structure in DENSE_SHORTCUT:
            # the dense-layer path holds n_outputs gradients of each activation
            per_row = n_outputs * model.network.activation_size(np.shape(X)[1:])
        else:
            # the Jacobian of one chunk holds rows * n_outputs * n_covered values
            per_row = n_outputs * sum(
                int(np.prod(np.shape(x))) for x in jax.tree.leaves(self._covered_mean()))
        rows = rows_per_chunk(per_row, high=int(chunk_size))
        return _map_chunks(lambda chunk: _glm_moments_chunk(model, self, chunk),
                           X, rows, row_axis=0)


@partial(jax.jit, static_argnums=2)
def _sample(posterior, rng_key, n):
    return posterior.sample(rng_key, n)


# ---------------------------------------------------------------------------
# The linearised (GLM) predictive of a Gaussian posterior


def _outputs_fn(model, posterior, X):
    """Network outputs on ``X`` as a function of the covered parameters."""
    if not posterior.subset or posterior.subset[0] != "network":
        raise ValueError(
            f"The linearised predictive needs a subset inside the network parameters, "
            f"got subset={posterior.subset!r}."
        )

    def outputs(covered):
        params = set_path(posterior.mean, posterior.subset, covered)
        return model.network.apply(params["network"], X)

    return outputs


#: Structures with a dense-layer shortcut for the output covariance.
DENSE_SHORTCUT = ("diag", "kron")


def _dense_output_cov(model, posterior, X):
    """``(outputs, J Sigma J^T)`` over dense layers for structures with a shortcut, or None.

    A dense layer's Jacobian for output ``k`` is ``a ⊗ g_k`` (``a``: the layer's
    input with a 1 appended, ``g_k``: the gradient of output ``k`` with respect
    to the layer's output), so with a diagonal or Kronecker covariance
    ``J Sigma J^T`` needs ``n_outputs`` backward passes per chunk and nothing
    of the size of the covered weights per row
    (:meth:`~skbnn.structures.Structure.dense_layer_cov`).
    """
    if posterior.structure not in DENSE_SHORTCUT or not posterior.subset \
            or posterior.subset[0] != "network":
        return None
    probed = dense_probe(model, posterior.mean, posterior.subset, X)
    if probed is None:
        return None  # not all dense: the generic Jacobian path
    out, vjp, a = probed
    eye = jnp.eye(out.shape[1], dtype=out.dtype)
    grads = jax.vmap(lambda e: vjp(jnp.broadcast_to(e, out.shape)))(eye)
    cov = 0.0
    for name in a:
        cov = cov + posterior.covariance.dense_layer_cov(posterior.factors, name, a[name],
                                                         grads[name])
    return out, cov


@jax.jit
def _glm_moments_chunk(model, posterior, X):
    dense = _dense_output_cov(model, posterior, X)
    if dense is not None:
        mean, cov = dense
    else:
        covered = posterior._covered_mean()
        mean = _outputs_fn(model, posterior, X)(covered)
        jac = row_jacobians(lambda theta, x: _outputs_fn(model, posterior, x)(theta), covered, X)
        cov = posterior.covariance.output_cov(covered, posterior.factors, jac)
    cov = cov * posterior.temperature
    return model.likelihood.linearized_predictive(posterior.mean["likelihood"], mean, cov)


@jax.jit
def _glm_draws_chunk(model, posterior, covered_draws, X):
    covered = posterior._covered_mean()
    mean, jvp = jax.linearize(_outputs_fn(model, posterior, X), covered)

    def one(draw):
        outputs = mean + jvp(jax.tree.map(jnp.subtract, draw, covered))
        return model.likelihood.predict(posterior.mean["likelihood"], outputs)

    return jax.vmap(one)(covered_draws)


#: Device bytes of chunk outputs that prediction lets pile up before it copies them
#: to the host: the chunks are dispatched without waiting for each other.
PENDING_BYTES = 1 << 28

_DEVICE_DRAWS = {}  # id(posterior) -> (weak reference to it, its flattened draws on the device)


def _on_device(posterior):
    """``posterior.predictive_draws()`` on the device, put there once per posterior (not
    once per prediction call) and dropped with it."""
    entry = _DEVICE_DRAWS.get(id(posterior))
    if entry is None or entry[0]() is not posterior:
        entry = (weakref.ref(posterior), jax.device_put(posterior.predictive_draws()))
        _DEVICE_DRAWS[id(posterior)] = entry
        weakref.finalize(posterior, _DEVICE_DRAWS.pop, id(posterior), None)
    return entry[1]


def _map_chunks(fn, X, chunk_size, *, row_axis):
    """``fn`` over rows of ``X`` in chunks of exactly ``chunk_size`` (the last one
    padded, so every row goes through one compiled program), outputs concatenated along
    ``row_axis``. The chunks are dispatched one after another without waiting; their
    outputs come to the host together (every ``PENDING_BYTES``)."""
    sparse = isinstance(X, SparseRows) or sp.issparse(X)
    X = X if sparse or isinstance(X, HostRows) else np.asarray(X)
    parts, pending = [], []

    def collect():
        for out, n_valid in jax.device_get(pending):
            parts.append(tuple(np.take(np.asarray(o), np.arange(n_valid), axis=row_axis)
                               for o in out))
        pending.clear()

    for start in range(0, X.shape[0], chunk_size):
        chunk = X[start : start + chunk_size]
        if sparse:  # sparse rows are densified a chunk at a time
            chunk = np.asarray(densify(chunk)) if isinstance(chunk, SparseRows) \
                else chunk.toarray()
        n_valid = chunk.shape[0]
        if n_valid < chunk_size:
            pad = np.zeros((chunk_size - n_valid, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        pending.append((fn(chunk if isinstance(chunk, jax.Array) else to_device(chunk)), n_valid))
        if sum(o.nbytes for out, _ in pending for o in out) >= PENDING_BYTES:
            collect()
    collect()
    return tuple(np.concatenate(group, axis=row_axis) for group in zip(*parts))


# ---------------------------------------------------------------------------
# Posterior predictive


def map_draws(fn, draws):
    """``fn`` over the leading (draw) axis of ``draws``, inside the compiled program.

    On CPU one draw after another (``lax.map``): each step runs the network on
    a whole chunk of rows as plain matrix products, where ``vmap`` would batch
    the products over draws, two to three times slower with XLA's CPU
    backend. On an accelerator, 8 draws at a time (vmapped), to fill it.

    With several devices the draws are split into one equal share per device
    (the last share padded with copies of the first draw, whose outputs are
    dropped), the shares sharded over the devices, and each device maps ``fn``
    over its own: every draw's outputs are computed as on one device.
    """
    batch_size = 1 if jax.default_backend() == "cpu" else 8
    n_devices = jax.device_count()
    n_draws = jax.tree.leaves(draws)[0].shape[0]
    if n_devices < 2 or n_draws < 2:
        return jax.lax.map(fn, draws, batch_size=batch_size)
    n_shares = min(n_devices, n_draws)
    per = -(-n_draws // n_shares)
    pad = n_shares * per - n_draws
    mesh = jax.sharding.Mesh(np.array(jax.devices()[:n_shares]), ("draws",))
    shares = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("draws"))

    def split(x):
        x = jnp.concatenate([x, jnp.repeat(x[:1], pad, axis=0)]) if pad else x
        return jax.lax.with_sharding_constraint(x.reshape(n_shares, per, *x.shape[1:]), shares)

    out = jax.vmap(lambda share: jax.lax.map(fn, share, batch_size=batch_size))(
        jax.tree.map(split, draws))
    return jax.tree.map(lambda y: y.reshape(n_shares * per, *y.shape[2:])[:n_draws], out)


@jax.jit
def _predict_chunk(model, draws, X):
    return map_draws(lambda params: model.predict(params, X), draws)


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
    draws = jax.device_put(draws)
    return _map_chunks(lambda chunk: _predict_chunk(model, draws, chunk), X, chunk_size,
                       row_axis=1)
