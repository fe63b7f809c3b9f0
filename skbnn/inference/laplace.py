"""Laplace approximation around the MAP (MacKay 1992; Daxberger et al. 2021).

Train the MAP with the ``"map"`` strategy, then put a Gaussian around it whose
precision is the prior precision plus the generalised Gauss-Newton (GGN)
matrix of the negative log-likelihood at the MAP,
``sum_n w_n J_n^T H_n J_n`` (``J_n``: Jacobian of the network outputs of row
``n`` with respect to the covered weights; ``H_n``: Hessian of the negative
log-likelihood with respect to those outputs).

The GGN is taken in one pass over the data in fixed-size chunks (one
``lax.scan`` inside one jitted function), never as the Jacobian of the whole
data set. With ``H_n = A_n A_n^T`` (the likelihood's ``hessian_factor``), the structures
are:

- ``"diag"`` and ``"kron"`` (K-FAC) for dense layers, from each covered
  layer's inputs ``a_n`` and the back-propagated columns of ``A_n`` at its
  outputs ``g_nc``: the exact diagonal ``sum_n a_n^2 (sum_c g_nc^2)^T``, and
  ``(sum_n w_n a_n a_n^T) ⊗ (sum_nc g_nc g_nc^T / sum_n w_n)``; ``"diag"``
  also for any other layer (a convolution, whose weights are shared across
  positions), as ``sum_n sum_c (J_n^T A_n[:, c])^2`` from one
  vector-Jacobian product per row and column;
- ``"full"``: ``M^T M`` with ``M`` the per-row Jacobian of one chunk times
  ``A_n`` (small covered sets only);
- ``"lowrank"``: the top eigenpairs of the GGN by Lanczos iteration on
  GGN-vector products (one ``jvp`` and one ``vjp`` per chunk), for networks
  whose GGN cannot be stored.

The prior precision is chosen by maximising the Laplace approximation to the
marginal likelihood (:func:`log_marginal_likelihood`), for all covered weights
together or per layer. The posterior's mean stays at the MAP.
"""

import math
import time
from functools import partial
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

from ..posterior import GaussianPosterior, rows_per_chunk
from ..priors import LaplacePrior
from ..structures import STRUCTURES, Block, get_structure, hessian_factor, layers
from ..utils._eager import fold_in, is_nan, split_key, to_device
from ..utils._host import HostRows
from ..utils._tree import get_path, set_path
from ..utils._io import serializable
from ..utils._sklearn_compat import HasMethods, Interval, StrOptions
from . import map as map_strategy
from .base import (
    MIN_SCORED_ROWS,
    TEMPERATURE_LADDER,
    BaseStrategy,
    Data,
    InferenceResult,
    Training,
    check_finite,
    choose_temperature,
    evidence_needed,
    holdout_rows,
    posterior_log_density,
    split_rows,
)
from .map import MAP

__all__ = [
    "Laplace",
    "LaplaceConfig",
    "LaplaceInfo",
    "LaplaceState",
    "init",
    "log_marginal_likelihood",
    "run",
    "step",
]

#: Which weights the Gaussian covers.
SUBSETS = ("last_layer", "all")
#: Predictive of the fitted posterior (see ``GaussianPosterior.predictive``).
PREDICTIVES = ("glm", "glm_mc", "network")



class LaplaceState(NamedTuple):
    """Running sums over the chunks of data seen so far."""

    curvature: dict  # the structure's GGN sums
    loglik: jax.Array  # weighted log-likelihood
    n_eff: jax.Array  # sum of row weights


class LaplaceInfo(NamedTuple):
    loglik: jax.Array  # weighted log-likelihood of this chunk


@struct.dataclass
class LaplaceConfig:
    """Frozen settings of ``run``: the prior precision is a leaf, the rest static."""

    prior_precision: jax.Array
    temperature: jax.Array = 1.0  # NaN: "auto"
    subset_of_weights: str = struct.field(pytree_node=False, default="last_layer")
    hessian_structure: str = struct.field(pytree_node=False, default="kron")
    optimize_prior_precision: bool = struct.field(pytree_node=False, default=True)
    per_layer: bool = struct.field(pytree_node=False, default=False)
    predictive: str = struct.field(pytree_node=False, default="glm")
    n_predictive_draws: int = struct.field(pytree_node=False, default=100)
    rank: int = struct.field(pytree_node=False, default=20)


def subset_path(model, subset_of_weights) -> tuple:
    """Path of the covered sub-tree of the parameters."""
    if subset_of_weights == "last_layer":
        return ("network", model.network.last_layer)
    if subset_of_weights == "all":
        return ("network",)
    raise ValueError(
        f"subset_of_weights must be one of {list(SUBSETS)}, got {subset_of_weights!r}."
    )


def init(covered, structure) -> LaplaceState:
    """Zero sums for the covered sub-tree ``covered``."""
    dtype = jax.tree.leaves(covered)[0].dtype
    zero = jnp.zeros((), dtype)
    return LaplaceState(get_structure(structure).zeros(covered), zero, zero)


def step(rng_key, state: LaplaceState, batch, *, model, params, subset, structure):
    """Add one chunk of rows to the GGN and the log-likelihood."""
    del rng_key  # deterministic given the chunk
    covariance = get_structure(structure)
    if covariance.summed:
        outputs, increment = covariance.accumulate(model, params, subset, batch)
        curvature = jax.tree.map(jnp.add, state.curvature, increment)
    else:  # the GGN is only used through products, see _lanczos
        outputs = model.network.apply(params["network"], batch.X)
        curvature = state.curvature
    loglik = model.likelihood.log_likelihood(params["likelihood"], outputs, batch.y)
    value = jnp.sum(batch.weight * loglik)
    state = LaplaceState(curvature, state.loglik + value, state.n_eff + jnp.sum(batch.weight))
    return state, LaplaceInfo(value)


def _chunks(data: Data, chunk_size: int) -> Data:
    """Rows as ``(n_chunks, chunk_size, ...)``, the last chunk padded with weight-0 rows.

    Host rows (:class:`~skbnn.utils._host.HostRows`) stay on the host: ``X``
    is then each chunk's row indices, and :func:`_rows` fetches them.
    """
    n = data.X.shape[0]
    n_chunks = -(-n // chunk_size)
    pad = n_chunks * chunk_size - n

    def split(x):
        x = jnp.pad(x, [(0, pad)] + [(0, 0)] * (x.ndim - 1))
        return x.reshape(n_chunks, chunk_size, *x.shape[1:])

    if isinstance(data.X, HostRows):
        return jax.tree.map(split, data._replace(X=jnp.arange(n)))
    return jax.tree.map(split, data)


def _rows(batch: Data, host) -> Data:
    """A chunk of :func:`_chunks` with its rows: from the host when ``host`` is the
    :class:`~skbnn.utils._host.HostRows` they come from, else as they are."""
    return batch if host is None else batch._replace(X=host.fetch(batch.X))


def _host(data: Data):
    return data.X if isinstance(data.X, HostRows) else None


@partial(jax.jit, static_argnames=("subset", "structure", "chunk_size"))
def _accumulate(model, params, data, subset, structure, chunk_size):
    state = init(get_path(params, subset), structure)

    def body(state, batch):
        state, _ = step(None, state, _rows(batch, _host(data)), model=model, params=params,
                        subset=subset, structure=structure)
        return state, None

    state, _ = jax.lax.scan(body, state, _chunks(data, chunk_size))
    return state


# ---------------------------------------------------------------------------
# Low rank: Lanczos on GGN-vector products


def _ggn_vp(model, params, subset, chunks, v, host=None):
    """``sum_n w_n J_n^T H_n J_n v`` over all chunks, for raveled covered weights
    (``host``: the host rows the chunks index, see :func:`_chunks`)."""
    flat, unravel = ravel_pytree(get_path(params, subset))

    def body(acc, batch):
        batch = _rows(batch, host)
        def outputs(theta):
            full = set_path(params, subset, unravel(theta))
            return model.network.apply(full["network"], batch.X)

        out, jv = jax.jvp(outputs, (flat,), (v,))
        a = hessian_factor(model, params, out, batch.weight)
        hjv = jnp.einsum("bkc,blc,bl->bk", a, a, jv)
        _, vjp = jax.vjp(outputs, flat)
        return acc + vjp(hjv)[0], None

    acc, _ = jax.lax.scan(body, jnp.zeros_like(flat), chunks)
    return acc


@partial(jax.jit, static_argnames=("subset", "chunk_size", "n_iter", "rank"))
def _lanczos(model, params, data, rng_key, subset, chunk_size, n_iter, rank):
    """Top ``rank`` eigenpairs of the GGN from ``n_iter`` Lanczos steps with full
    re-orthogonalisation; returns ``(eigvecs (P, rank), eigvals (rank,))``.

    Hand-written rather than SciPy's ``eigsh`` (ARPACK) on the same GGN-vector
    product: one compiled loop with no host round trip per product, which
    measures faster with the same top eigenvalues (``benchmarks/handwritten.py``).
    """
    chunks = _chunks(data, chunk_size)
    flat, _ = ravel_pytree(get_path(params, subset))
    v0 = jax.random.normal(rng_key, flat.shape, flat.dtype)
    basis = jnp.zeros((n_iter + 1, flat.shape[0]), flat.dtype).at[0].set(v0 / jnp.linalg.norm(v0))
    tiny = jnp.finfo(flat.dtype).tiny

    def body(i, carry):
        basis, alphas, betas = carry
        w = _ggn_vp(model, params, subset, chunks, basis[i], _host(data))
        alpha = w @ basis[i]
        for _ in range(2):  # twice is enough (Parlett's "twice is enough")
            w = w - basis.T @ (basis @ w)
        beta = jnp.linalg.norm(w)
        basis = basis.at[i + 1].set(jnp.where(beta > tiny, w / jnp.maximum(beta, tiny), 0.0))
        return basis, alphas.at[i].set(alpha), betas.at[i].set(beta)

    zeros = jnp.zeros((n_iter,), flat.dtype)
    basis, alphas, betas = jax.lax.fori_loop(0, n_iter, body, (basis, zeros, zeros))
    tri = jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1)
    vals, vecs = jnp.linalg.eigh(tri)
    top = jnp.argsort(vals)[::-1][:rank]
    return basis[:n_iter].T @ vecs[:, top], jnp.maximum(vals[top], 0.0)


# ---------------------------------------------------------------------------
# Eigen-decomposition per block, the marginal likelihood, the factors


def _block_evidence(block: Block, delta):
    """One block's share of :func:`log_marginal_likelihood`; the log-determinant
    terms of eigenvalues not listed (zero curvature) cancel."""
    lam, u = block.lam, block.u
    return -0.5 * delta * jnp.sum(u**2) + 0.5 * jnp.sum(jnp.log(delta) - jnp.log(lam + delta))


def log_marginal_likelihood(loglik, blocks, delta):
    """Laplace approximation to ``log p(D | delta)`` at the MAP ``m``.

        log Z = loglik(m) + log N(m; 0, I/delta) + P/2 log 2π - 1/2 log|GGN + delta I|
              = loglik(m) - delta/2 |m|^2 + 1/2 sum_i log(delta / (lam_i + delta)),

    with ``lam_i`` the GGN's eigenvalues (MacKay 1992; Immer et al. 2021). Its
    maximiser satisfies MacKay's ``delta |m|^2 = sum_i lam_i / (lam_i + delta)``
    (the effective number of parameters); when ``m`` is the MAP under that same
    ``delta`` the point is a stationary point of the exact evidence of a linear
    network with Gaussian noise. ``blocks``: a dict of :class:`~skbnn.structures.Block`;
    ``delta``: a scalar or a dict of scalars per block.
    """
    total = loglik
    for name, block in blocks.items():
        d = delta[name] if isinstance(delta, dict) else delta
        total = total + _block_evidence(block, d)
    return total


def _argmax_log(fn, n_grid=81, n_golden=40):
    """Maximise ``fn(delta)`` over ``delta`` in [1e-8, 1e8]: a grid in log delta,
    then golden-section search between the grid neighbours of the best point."""
    grid = jnp.linspace(math.log(1e-8), math.log(1e8), n_grid)
    values = jax.vmap(lambda t: fn(jnp.exp(t)))(grid)
    values = jnp.where(jnp.isfinite(values), values, -jnp.inf)
    i = jnp.argmax(values)
    lo, hi = grid[jnp.maximum(i - 1, 0)], grid[jnp.minimum(i + 1, n_grid - 1)]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0

    def body(_, bounds):
        lo, hi = bounds
        a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
        better_a = fn(jnp.exp(a)) >= fn(jnp.exp(b))
        return jnp.where(better_a, lo, a), jnp.where(better_a, b, hi)

    lo, hi = jax.lax.fori_loop(0, n_golden, body, (lo, hi))
    return jnp.exp(0.5 * (lo + hi))


@partial(jax.jit, static_argnames=("config_static", "subset"))
def _fit_gaussian(state: LaplaceState, params, delta0, config_static, subset):
    structure, optimize, per_layer = config_static
    covariance = get_structure(structure)
    covered = get_path(params, subset)
    blocks, eig = covariance.eigen(state.curvature, covered, state.n_eff)
    if not optimize:
        delta = {name: delta0 for name in blocks}
    elif per_layer:
        delta = {name: _argmax_log(partial(_block_evidence, block))
                 for name, block in blocks.items()}
    else:
        best = _argmax_log(lambda d: log_marginal_likelihood(state.loglik, blocks, d))
        delta = {name: best for name in blocks}
    log_marglik = log_marginal_likelihood(state.loglik, blocks, delta)
    return covariance.factors(covered, eig, delta), delta, log_marglik


# ---------------------------------------------------------------------------
# run


def _chunk_size(model, params, subset, structure, input_shape):
    """Rows per curvature chunk: about 2**24 values in the largest per-chunk array."""
    return rows_per_chunk(get_structure(structure).values_per_row(
        model.likelihood.n_network_outputs, model.network.activation_size(input_shape),
        get_path(params, subset)))


def _check_combination(covered, structure, config):
    """Raise ``ValueError`` for settings that do not fit the covered weights."""
    if structure not in STRUCTURES:
        raise ValueError(
            f"hessian_structure must be one of {sorted(STRUCTURES)}, got {structure!r}."
        )
    if config.predictive not in PREDICTIVES:
        raise ValueError(
            f"predictive must be one of {list(PREDICTIVES)}, got {config.predictive!r}."
        )
    get_structure(structure).check(covered)
    if config.per_layer and config.optimize_prior_precision and len(layers(covered)) > 1 \
            and structure not in ("diag", "kron"):
        raise ValueError(
            f"A per-layer prior precision needs a structure that is block-diagonal by "
            f"layer ('diag' or 'kron'), got hessian_structure={structure!r}."
        )


def _fit(model, data: Data, params, config: LaplaceConfig, subset, key_lanczos, key_predict):
    """The Gaussian around ``params`` from the curvature on ``data``, and its diagnostics."""
    t0 = time.perf_counter()
    structure = config.hessian_structure
    params = jax.device_put(params)
    n_covered = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(get_path(params, subset)))
    chunk_size = _chunk_size(model, params, subset, structure, data.X.shape[1:])
    state = _accumulate(model, params, data, subset, structure, chunk_size)
    carried = isinstance(model.prior, LaplacePrior)
    if carried:  # partial_fit: the curvature of the rows of the previous batches
        state = state._replace(
            curvature=jax.tree.map(jnp.add, state.curvature, model.prior.curvature),
            n_eff=state.n_eff + model.prior.n_eff)
    if structure == "lowrank":
        rank = min(config.rank, n_covered)
        n_iter = min(n_covered, 2 * rank)
        vecs, vals = _lanczos(model, params, data, key_lanczos, subset, chunk_size, n_iter, rank)
        state = state._replace(curvature={"eigvecs": vecs, "eigvals": vals})
    factors, delta, log_marglik = _fit_gaussian(
        state, params, config.prior_precision,
        (structure, bool(config.optimize_prior_precision), bool(config.per_layer)), subset,
    )
    check_finite(factors, strategy="laplace", advice=(
        "The curvature or the prior precision is degenerate: raise alpha, or set "
        "prior_precision and optimize_prior_precision=False."
    ))
    temperature = 1.0 if is_nan(config.temperature) else config.temperature
    posterior = GaussianPosterior(
        mean=jax.device_get(params),
        factors=jax.device_get(factors),
        key_data=np.asarray(jax.random.key_data(key_predict)),
        temperature=to_device(temperature, jnp.result_type(float)),
        structure=structure,
        subset=subset,
        n_predictive_draws=int(config.n_predictive_draws),
        predictive=config.predictive,
        curvature=(jax.device_get(state.curvature) if get_structure(structure).summed
                   else None),
        n_eff=np.asarray(state.n_eff),
    )
    delta = np.asarray([delta[name] for name in sorted(delta)])
    diagnostics = {
        "prior_precision": delta if config.per_layer and delta.size > 1 else float(delta[0]),
        "log_marginal_likelihood": float(log_marglik),
        "laplace_seconds": time.perf_counter() - t0,
    }
    return posterior, diagnostics


def run(model, data: Data, config: LaplaceConfig, key, *, training: Training,
        map_config, init_params=None, validation: Data | None = None) -> InferenceResult:
    """Train the MAP, then fit the Laplace approximation around it.

    ``map_config`` is the :class:`~skbnn.inference.map.MAPConfig` of the MAP
    fit. The result's ``diagnostics`` hold ``prior_precision`` (one value per
    covered layer when ``per_layer``, else one), ``log_marginal_likelihood``,
    ``temperature`` and ``laplace_seconds`` (time of the Laplace steps alone).

    ``config.temperature`` NaN (``"auto"``): a first MAP is trained without
    ``validation_fraction`` of the rows, the Gaussian fitted around it, and
    the temperature chosen on the held-back rows; then the MAP is trained on
    all rows, and the Gaussian around it, from the curvature of all rows,
    takes the chosen temperature. The MAP is trained twice.
    """
    subset = subset_path(model, config.subset_of_weights)
    structure = config.hessian_structure
    if isinstance(model.prior, LaplacePrior):  # partial_fit after the first batch
        if (model.prior.structure, model.prior.subset) != (structure, subset):
            raise ValueError(
                f"partial_fit continues a Laplace posterior over {model.prior.subset} with "
                f"hessian_structure={model.prior.structure!r}, but the strategy now covers "
                f"{subset} with {structure!r}. Call fit to start again.")
        # the prior precision was chosen on the first batch; the curvature carries the rest
        config = config.replace(optimize_prior_precision=False)
    # check the combination on the shapes alone, before training anything
    shapes = jax.eval_shape(lambda k: model.init(k, data.X.shape[1:]), key)
    _check_combination(get_path(shapes, subset), structure, config)
    key_lanczos, key_predict = split_key(fold_in(key, 1))
    scores = None
    key_rows, key_map = split_key(fold_in(key, 2))
    held = holdout_rows(key_rows, data.X.shape[0], training.validation_fraction)
    if is_nan(config.temperature) and held.size < MIN_SCORED_ROWS:
        config = config.replace(temperature=to_device(1.0, config.prior_precision.dtype))
    if is_nan(config.temperature):  # "auto"
        fit, val = split_rows(data, held)
        first = map_strategy.run(model, fit, map_config, key_map, training=training,
                                 init_params=init_params, validation=validation,
                                 name="laplace")
        posterior, _ = _fit(model, fit, first.posterior.mean_params(), config, subset,
                            key_lanczos, key_predict)
        scores = {t: posterior_log_density(model, posterior.replace(temperature=t), val.X, val.y)
                  for t in TEMPERATURE_LADDER}
        temperature, means = choose_temperature(scores, np.asarray(val.weight),
                                                evidence_needed(model.likelihood))
        config = config.replace(temperature=to_device(temperature, config.prior_precision.dtype))
        # the MAP on all rows is the one inference=map_strategy finds with the same
        # random_state
        result = map_strategy.run(model, data, map_config, key, training=training,
                                  init_params=init_params, validation=validation,
                                  name="laplace")
    else:
        # the MAP gets the whole key, so it is the MAP inference=map_strategy finds
        # with the same random_state
        result = map_strategy.run(model, data, map_config, key, training=training,
                                  init_params=init_params, validation=validation,
                                  name="laplace")
    posterior, diagnostics = _fit(model, data, result.posterior.mean_params(), config, subset,
                                  key_lanczos, key_predict)
    diagnostics["temperature"] = float(posterior.temperature)
    if scores is not None:
        diagnostics["temperature_scores"] = {str(t): v for t, v in means.items()}
    return result._replace(posterior=posterior, diagnostics=diagnostics)


@serializable
class Laplace(BaseStrategy):
    """Laplace approximation around the MAP, with a GGN curvature.

    Trains the MAP as ``inference="map"`` does (see ``map_strategy``), then
    fits a Gaussian whose precision is the prior precision plus the
    generalised Gauss-Newton matrix of the negative log-likelihood at the
    MAP, divided by the temperature.

    Parameters
    ----------
    subset_of_weights : {"last_layer", "all"}, default="last_layer"
        Weights the Gaussian covers; the others stay at the MAP. The
        likelihood's own parameters (a learned noise scale) stay at the MAP.
    hessian_structure : {"kron", "diag", "lowrank", "full"}, default="kron"
        ``"kron"``: K-FAC, one Kronecker product per dense layer; ``"diag"``:
        the exact diagonal of the GGN, for any layer (convolutions cost one
        backward pass per row and output); ``"lowrank"``: its top ``rank``
        eigenpairs by Lanczos iteration, for networks whose GGN cannot be
        stored; ``"full"``: the whole matrix (at most 10,000 covered weights).
    prior_precision : float or None, default=None
        Prior precision of the covered weights when
        ``optimize_prior_precision=False``; None uses the estimator's
        ``alpha``, the precision the MAP was trained with. (The optimisation
        searches 1e-8 to 1e8 and needs no start.)
    optimize_prior_precision : bool, default=True
        Choose the prior precision that maximises the Laplace approximation to
        the marginal likelihood (MacKay 1992; Immer et al. 2021). The value
        chosen is ``diagnostics_["prior_precision"]`` of the fitted estimator.
    prior_precision_per_layer : bool, default=False
        One prior precision per covered layer (``"diag"`` and ``"kron"``).
    predictive : {"glm", "glm_mc", "network"}, default="glm"
        ``"glm"``: the network linearised in the covered weights, with the
        probit approximation for classification and the closed-form Gaussian
        for regression (for a Poisson: the lognormal rate's mean and
        variance); ``"glm_mc"``: Monte Carlo over the linearised network;
        ``"network"``: Monte Carlo over the network itself.
        ``predict_uncertainty`` and ``sample_predictions`` use draws in every
        case.
    n_predictive_draws : int, default=100
        Draws for the Monte Carlo predictives and ``sample_predictions``.
    temperature : float or "auto", default="auto"
        The posterior's temperature ``T``: the covariance is ``T`` times the
        inverse of the prior precision plus GGN (the Laplace approximation
        of ``p(theta | data)^(1/T)``). "auto" chooses it from 1, 1/4, 1/16
        and 1/64 on ``validation_fraction`` of the rows held back from a
        first MAP fit: the warmest whose held-back log predictive density is
        within two standard errors of the best, one for class labels (1, the
        Bayes posterior, unless
        the data say otherwise); the MAP is then trained again on all rows
        (twice the cost of the MAP). With fewer than 50 held-back rows, 1.
        The chosen value is in ``diagnostics_["temperature"]``.
    rank : int, default=20
        Eigenpairs kept by ``"lowrank"`` (from ``2 * rank`` Lanczos steps,
        each one pass over the data).
    map_strategy : MAP or None, default=None
        Settings of the MAP fit. None: ``MAP()``, the fit ``inference="map"``
        makes (Adam, its step size falling along a cosine). Around the sharp
        mode the cosine reaches, the untempered Laplace posterior tends to be
        underconfident on image data; ``temperature="auto"`` corrects that.

    Notes
    -----
    ``max_iter``, ``batch_size``, ``learning_rate_init`` and the stopping rule
    come from the estimator and drive the MAP fit. The fitted estimator's
    ``diagnostics_`` hold ``prior_precision``, ``log_marginal_likelihood`` and
    ``laplace_seconds``. The posterior mean stays at the MAP whatever prior
    precision is chosen.

    References
    ----------
    MacKay, "A practical Bayesian framework for backpropagation networks", 1992.
    Ritter, Botev and Barber, "A scalable Laplace approximation for neural
    networks", ICLR 2018. Immer, Korzepa and Bauer, "Improving predictions of
    Bayesian neural nets via local linearization", AISTATS 2021. Daxberger et
    al., "Laplace Redux", NeurIPS 2021.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skbnn import BayesianMLPClassifier
    >>> from skbnn.inference import Laplace
    >>> X, y = load_iris(return_X_y=True)
    >>> clf = BayesianMLPClassifier((16,), inference=Laplace(hessian_structure="diag"),
    ...                             max_iter=300, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:2]).shape
    (2, 3)
    """

    name = "laplace"

    @property
    def streaming(self):
        """``partial_fit``: "curvature" (the posterior is the next batch's prior, see
        ``skbnn.priors.LaplacePrior``), except where the structure keeps no summed
        curvature ("lowrank") or the prior precision is per layer."""
        if self.hessian_structure == "lowrank" or self.prior_precision_per_layer:
            return None
        return "curvature"

    @property
    def streaming_refusal(self):
        if self.prior_precision_per_layer:
            return ("prior_precision_per_layer=True chooses one precision per layer, which "
                    "the isotropic part of the next batch's prior cannot carry; set it False")
        return ("hessian_structure='lowrank' keeps no summed curvature to carry to the next "
                "batch (its Lanczos iteration works on the rows at hand); use 'kron' (the "
                "default), 'diag' or 'full'")

    _parameter_constraints = {
        "subset_of_weights": [StrOptions(set(SUBSETS))],
        "hessian_structure": [StrOptions(set(STRUCTURES))],
        "prior_precision": [Interval(Real, 0, None, closed="neither"), None],
        "optimize_prior_precision": ["boolean"],
        "prior_precision_per_layer": ["boolean"],
        "predictive": [StrOptions(set(PREDICTIVES))],
        "n_predictive_draws": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "rank": [Interval(Integral, 1, None, closed="left")],
        "map_strategy": [HasMethods(["config"]), None],
    }

    def __init__(self, *, subset_of_weights="last_layer", hessian_structure="kron",
                 prior_precision=None, optimize_prior_precision=True,
                 prior_precision_per_layer=False, predictive="glm", n_predictive_draws=100,
                 temperature="auto", rank=20, map_strategy=None):
        self.subset_of_weights = subset_of_weights
        self.hessian_structure = hessian_structure
        self.prior_precision = prior_precision
        self.optimize_prior_precision = optimize_prior_precision
        self.prior_precision_per_layer = prior_precision_per_layer
        self.predictive = predictive
        self.n_predictive_draws = n_predictive_draws
        self.temperature = temperature
        self.rank = rank
        self.map_strategy = map_strategy

    def config(self, model, training: Training) -> LaplaceConfig:
        dtype = jnp.result_type(float)
        delta = model.prior.alpha if self.prior_precision is None else self.prior_precision
        if isinstance(model.prior, LaplacePrior):  # partial_fit: the first batch's choice
            delta = model.prior.alpha
        temperature = np.nan if self.temperature == "auto" else self.temperature
        return LaplaceConfig(
            prior_precision=to_device(delta, dtype),
            temperature=to_device(temperature, dtype),
            subset_of_weights=self.subset_of_weights,
            hessian_structure=self.hessian_structure,
            optimize_prior_precision=bool(self.optimize_prior_precision),
            per_layer=bool(self.prior_precision_per_layer),
            predictive=self.predictive,
            n_predictive_draws=int(self.n_predictive_draws),
            rank=int(self.rank),
        )

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        map_object = MAP() if self.map_strategy is None else self.map_strategy
        return run(model, data, self.config(model, training), key, training=training,
                   map_config=map_object.config(model, training), init_params=init_params,
                   validation=validation)
