"""Posterior containers and the posterior predictive.

Two containers, both immutable pytrees holding only arrays and static
metadata, so a fitted estimator pickles and saves as plain data:

- :class:`SamplePosterior`: stacked draws, shape ``(n_chains, n_draws_per_chain, ...)``
  per parameter leaf (the chain axis is kept for diagnostics; :meth:`SamplePosterior.flatten`
  merges it).
- :class:`GaussianPosterior`: a mean and a covariance of a named ``structure``
  (``"diag"``, ``"kron"``, ``"lowrank"`` or ``"full"``; the structures are
  dispatched through plain dicts, so a new one is a new entry), over all
  parameters or over one sub-tree of them (``subset``, e.g. the last layer),
  the rest held at the mean. Its ``predictive`` is Monte Carlo over the network
  (``"network"``) or over the network linearised at the mean (``"glm"``, with a
  closed form, and ``"glm_mc"``), as Laplace approximations use.

The protocol the estimators use, which every posterior container offers:

- ``mean_params()``, ``warm_start_params()``, ``n_predictive_draws``;
- ``predict_draws(model, X, chunk_size=...)``: the likelihood's predictive
  quantities under each draw, each ``(n_draws, n_samples, ...)`` (probabilities
  for classification, ``(mean, noise_std)`` for regression), computed by
  ``predictive``: a compiled loop over draws, in fixed-size chunks of rows;
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


# "kron": one block per dense layer over the matrix ``[kernel; bias]`` of shape
# ``(fan_in + 1, fan_out)`` (the bias is the last row), raveled row-major. The
# precision of a block is ``kron(Q, G) + prior_precision * I`` with
# ``Q = vecs_in diag(vals_in) vecs_in^T`` and ``G = vecs_out diag(vals_out) vecs_out^T``,
# so its eigenvalues are ``outer(vals_in, vals_out) + prior_precision`` and its
# eigenvectors ``kron(vecs_in, vecs_out)``. Factors: ``{block_name: {"vecs_in",
# "vals_in", "vecs_out", "vals_out", "prior_precision"}}``; the covered sub-tree is
# either one layer ``{"kernel", "bias"}`` (block name ``""``) or a dict of layers.


def _kron_layers(covered):
    return {"": covered} if "kernel" in covered else covered


def _kron_unlayers(covered, layers):
    return layers[""] if "kernel" in covered else layers


def _kron_matrix(layer):
    return jnp.concatenate([layer["kernel"], layer["bias"][None]], axis=0)


def _kron_inv_eigvals(f):
    return 1.0 / (jnp.outer(f["vals_in"], f["vals_out"]) + f["prior_precision"])


def _sample_kron(rng_key, mean, factors, n):
    layers = _kron_layers(mean)
    keys = jax.random.split(rng_key, len(layers))
    drawn = {}
    for key, name in zip(keys, sorted(layers)):
        layer, f = layers[name], factors[name]
        scale = jnp.sqrt(_kron_inv_eigvals(f))
        eps = jax.random.normal(key, (n, *scale.shape), scale.dtype) * scale
        delta = jnp.einsum("ia,nab,jb->nij", f["vecs_in"], eps, f["vecs_out"])
        drawn[name] = {"kernel": layer["kernel"] + delta[:, :-1],
                       "bias": layer["bias"] + delta[:, -1]}
    return _kron_unlayers(mean, drawn)


def _log_det_kron(mean, factors):
    return sum(jnp.sum(jnp.log(_kron_inv_eigvals(f))) for f in factors.values())


def _variance_kron(mean, factors):
    out = {}
    for name, f in factors.items():
        var = jnp.square(f["vecs_in"]) @ _kron_inv_eigvals(f) @ jnp.square(f["vecs_out"]).T
        out[name] = {"kernel": var[:-1], "bias": var[-1]}
    return _kron_unlayers(mean, out)


# "lowrank": precision ``U diag(eigvals) U^T + prior_precision * I`` with ``U``
# of shape ``(P, rank)`` orthonormal, over the raveled covered parameters.


def _lowrank_gap(factors):
    """Covariance in the span of ``eigvecs`` minus the isotropic part: ``1/(λ+δ) - 1/δ``."""
    delta = factors["prior_precision"]
    return 1.0 / (factors["eigvals"] + delta) - 1.0 / delta


def _sample_lowrank(rng_key, mean, factors, n):
    flat, unravel = ravel_pytree(mean)
    u, lam, delta = factors["eigvecs"], factors["eigvals"], factors["prior_precision"]
    z = jax.random.normal(rng_key, (n, flat.shape[0]), flat.dtype)
    # (I/sqrt(δ) + U diag(c) U^T) is a symmetric square root of the covariance
    c = 1.0 / jnp.sqrt(lam + delta) - 1.0 / jnp.sqrt(delta)
    x = z / jnp.sqrt(delta) + ((z @ u) * c) @ u.T
    return jax.vmap(unravel)(flat + x)


def _log_det_lowrank(mean, factors):
    lam, delta = factors["eigvals"], factors["prior_precision"]
    n_params = factors["eigvecs"].shape[0]
    return -jnp.sum(jnp.log(lam + delta)) - (n_params - lam.shape[0]) * jnp.log(delta)


def _variance_lowrank(mean, factors):
    _, unravel = ravel_pytree(mean)
    var = 1.0 / factors["prior_precision"] + jnp.square(factors["eigvecs"]) @ _lowrank_gap(factors)
    return unravel(var)


_SAMPLE = {"diag": _sample_diag, "full": _sample_full, "kron": _sample_kron,
           "lowrank": _sample_lowrank}
_LOG_DET = {"diag": _log_det_diag, "full": _log_det_full, "kron": _log_det_kron,
            "lowrank": _log_det_lowrank}
_VARIANCE = {"diag": _variance_diag, "full": _variance_full, "kron": _variance_kron,
             "lowrank": _variance_lowrank}


# Covariance of the linearised outputs ``J Sigma J^T``, shape ``(n, K, K)``, from
# the Jacobian ``J`` of the outputs with respect to the covered parameters: a
# pytree like the covered sub-tree whose leaves have two leading axes ``(n, K)``.


def _flat_jacobian(jac):
    return jnp.concatenate(
        [x.reshape(x.shape[:2] + (-1,)) for x in jax.tree.leaves(jac)], axis=-1
    )


def _output_cov_diag(mean, factors, jac):
    j = _flat_jacobian(jac)
    var, _ = ravel_pytree(jax.tree.map(jnp.square, factors["scale"]))
    return jnp.einsum("bkp,p,blp->bkl", j, var, j)


def _output_cov_full(mean, factors, jac):
    js = _flat_jacobian(jac) @ factors["scale_tril"]
    return jnp.einsum("bkp,blp->bkl", js, js)


def _output_cov_kron(mean, factors, jac):
    cov = 0.0
    for name, j in _kron_layers(jac).items():
        f = factors[name]
        jm = jnp.concatenate([j["kernel"], j["bias"][:, :, None]], axis=2)
        m = jnp.einsum("ia,bkij,jc->bkac", f["vecs_in"], jm, f["vecs_out"])
        cov = cov + jnp.einsum("bkac,ac,blac->bkl", m, _kron_inv_eigvals(f), m)
    return cov


def _output_cov_lowrank(mean, factors, jac):
    j = _flat_jacobian(jac)
    ju = j @ factors["eigvecs"]
    iso = jnp.einsum("bkp,blp->bkl", j, j) / factors["prior_precision"]
    return iso + jnp.einsum("bkr,r,blr->bkl", ju, _lowrank_gap(factors), ju)


_OUTPUT_COV = {"diag": _output_cov_diag, "full": _output_cov_full, "kron": _output_cov_kron,
               "lowrank": _output_cov_lowrank}


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
    temperature : float
        The covariance is ``temperature`` times the one ``factors`` describe:
        the Gaussian of a tempered posterior ``p(theta | data)^(1/T)`` (the
        curvature divided by ``T``), so that a strategy can choose ``T``
        after building the factors once.
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
    structure: str = struct.field(pytree_node=False, default="diag")
    subset: tuple = struct.field(pytree_node=False, default=())
    n_predictive_draws: int = struct.field(pytree_node=False, default=100)
    predictive: str = struct.field(pytree_node=False, default="network")

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
        mean = self._covered_mean()
        covered = _dispatch(_SAMPLE, self.structure)(rng_key, mean, self.factors, n)
        root = jnp.sqrt(jnp.asarray(self.temperature))
        covered = jax.tree.map(lambda d, m: m + root * (d - m), covered, mean)
        full = jax.tree.map(lambda x: jnp.broadcast_to(x, (n, *x.shape)), self.mean)
        return _set_path(full, self.subset, covered)

    def log_det(self):
        """Log-determinant of the covariance of the covered parameters."""
        mean = self._covered_mean()
        n_covered = sum(x.size for x in jax.tree.leaves(mean))
        return (_dispatch(_LOG_DET, self.structure)(mean, self.factors)
                + n_covered * jnp.log(jnp.asarray(self.temperature)))

    def marginal_variance(self) -> Params:
        """Marginal variances of the covered parameters (a pytree like the covered sub-tree)."""
        variance = _dispatch(_VARIANCE, self.structure)(self._covered_mean(), self.factors)
        return jax.tree.map(lambda v: v * self.temperature, variance)

    def predictive_draws(self, rng_key=None) -> Params:
        """``n_predictive_draws`` draws, from ``rng_key`` or else from the stored key."""
        if rng_key is None:
            rng_key = jax.random.wrap_key_data(jnp.asarray(self.key_data))
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
        covered = _get_path(draws, self.subset)
        return _map_chunks(lambda chunk: _glm_draws_chunk(model, self, covered, chunk),
                           X, chunk_size, row_axis=1)

    def predict_moments(self, model, X, *, chunk_size=256):
        """Closed-form predictive, where the posterior has one; None: average the draws.

        With ``predictive="glm"``: the linearised model's outputs have mean
        ``f(x)`` and covariance ``J(x) Sigma J(x)^T``; classification returns
        ``(probabilities,)`` by the probit approximation
        ``softmax(f / sqrt(1 + pi/8 diag(cov)))`` (MacKay 1992), regression
        ``(mean, total_std)`` with ``total_std**2 = noise**2 + diag(cov)``.
        """
        if self.predictive != "glm":
            return None
        n_outputs = model.likelihood.n_network_outputs
        if self.structure in ("diag", "kron"):
            # the dense-layer path holds n_outputs gradients of each activation
            per_row = n_outputs * model.network.activation_size(np.shape(X)[1:])
        else:
            # the Jacobian of one chunk holds rows * n_outputs * n_covered values
            per_row = n_outputs * sum(
                int(np.prod(np.shape(x))) for x in jax.tree.leaves(self._covered_mean()))
        # keep it near 2**24 values, in a power of two that does not depend on X
        rows = max(1, (1 << 24) // max(1, per_row))
        rows = min(int(chunk_size), 1 << (rows.bit_length() - 1))
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
        params = _set_path(posterior.mean, posterior.subset, covered)
        return model.network.apply(params["network"], X)

    return outputs


def _dense_output_cov(model, posterior, X):
    """``(outputs, J Sigma J^T)`` for "diag" and "kron" over dense layers, or None.

    A dense layer's Jacobian for output ``k`` is ``a ⊗ g_k`` (``a``: the layer's
    input with a 1 appended, ``g_k``: the gradient of output ``k`` with respect
    to the layer's output), so with a diagonal or Kronecker covariance
    ``J Sigma J^T = sum_j g_kj g_lj s_j`` with ``s = a^2 @ variances`` (in the
    Kronecker eigenbases for "kron"): ``n_outputs`` backward passes per chunk and
    nothing of the size of the covered weights per row.
    """
    if posterior.structure not in ("diag", "kron") or not posterior.subset \
            or posterior.subset[0] != "network":
        return None
    layers = _kron_layers(posterior._covered_mean())
    prefix = "/".join(posterior.subset[1:])
    names = {name: "/".join(p for p in (prefix, name) if p) for name in layers}
    record = set(names.values())
    net = posterior.mean["network"]
    _, _, shapes = jax.eval_shape(lambda: model.network.apply_with_probes(net, X, None, record))
    if set(shapes) != record:
        return None  # not all dense: the generic Jacobian path
    probes = {k: jnp.zeros(v.shape, v.dtype) for k, v in shapes.items()}

    def f(probes):
        out, inputs, _ = model.network.apply_with_probes(net, X, probes, record)
        return out, inputs

    out, vjp, inputs = jax.vjp(f, probes, has_aux=True)
    eye = jnp.eye(out.shape[1], dtype=out.dtype)
    grads = jax.vmap(lambda e: vjp(jnp.broadcast_to(e, out.shape))[0])(eye)
    ones = jnp.ones((X.shape[0], 1), out.dtype)
    cov = 0.0
    for name, full in names.items():
        a = jnp.concatenate([inputs[full], ones], axis=1)
        g = grads[full]  # (K, n, fan_out)
        if posterior.structure == "diag":
            scale = _kron_layers(posterior.factors["scale"])[name]
            var = jnp.concatenate([scale["kernel"], scale["bias"][None]], axis=0) ** 2
        else:
            f_ = posterior.factors[name]
            a = a @ f_["vecs_in"]
            g = jnp.einsum("kbj,jc->kbc", g, f_["vecs_out"])
            var = _kron_inv_eigvals(f_)
        cov = cov + jnp.einsum("kbj,lbj,bj->bkl", g, g, (a**2) @ var)
    return out, cov


def row_jacobians(fn, theta, X):
    """Jacobian of each row of ``fn(theta, X)`` (shape ``(n, K)``) w.r.t. ``theta``.

    Leaves ``(n, K, *shape)``. Rows are independent, so each row's Jacobian is
    taken on that row alone (vmapped): ``n * K`` backward passes through one
    row, where ``jax.jacrev`` of the whole chunk would take ``n * K`` passes
    through all ``n`` rows.
    """
    def one(x):
        return jax.tree.map(lambda j: j[0], jax.jacrev(fn)(theta, x[None]))

    return jax.vmap(one)(X)


@jax.jit
def _glm_moments_chunk(model, posterior, X):
    dense = _dense_output_cov(model, posterior, X)
    if dense is not None:
        mean, cov = dense
    else:
        covered = posterior._covered_mean()
        mean = _outputs_fn(model, posterior, X)(covered)
        jac = row_jacobians(lambda theta, x: _outputs_fn(model, posterior, x)(theta), covered, X)
        cov = _dispatch(_OUTPUT_COV, posterior.structure)(covered, posterior.factors, jac)
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


def _map_chunks(fn, X, chunk_size, *, row_axis):
    """``fn`` over rows of ``X`` in chunks of exactly ``chunk_size`` (the last one
    padded, so every row goes through one compiled program), outputs concatenated along
    ``row_axis``."""
    X = np.asarray(X)
    parts = []
    for start in range(0, X.shape[0], chunk_size):
        chunk = X[start : start + chunk_size]
        n_valid = chunk.shape[0]
        if n_valid < chunk_size:
            pad = np.zeros((chunk_size - n_valid, *chunk.shape[1:]), dtype=chunk.dtype)
            chunk = np.concatenate([chunk, pad])
        out = fn(jnp.asarray(chunk))
        parts.append(tuple(np.take(np.asarray(o), np.arange(n_valid), axis=row_axis)
                           for o in out))
    return tuple(np.concatenate(group, axis=row_axis) for group in zip(*parts))


# ---------------------------------------------------------------------------
# Posterior predictive


def map_draws(fn, draws):
    """``fn`` over the leading (draw) axis of ``draws``, inside the compiled program.

    On CPU one draw after another (``lax.map``): each step runs the network on
    a whole chunk of rows as plain matrix products, where ``vmap`` would batch
    the products over draws, two to three times slower with XLA's CPU
    backend. On an accelerator, 8 draws at a time (vmapped), to fill it.
    """
    batch_size = 1 if jax.default_backend() == "cpu" else 8
    return jax.lax.map(fn, draws, batch_size=batch_size)


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
