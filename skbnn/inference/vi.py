"""Mean-field variational inference (Bayes by Backprop with local reparameterisation).

The variational family is a diagonal Gaussian ``q(theta) = N(mu, diag(sigma^2))``
over every parameter: network weights and the likelihood's own parameters
(the Gaussian noise's ``log_noise``). ``mu`` and ``log sigma`` are trained with
optax's Adam on the minibatch estimate of the negative evidence lower bound

    -ELBO = - data_size * mean over the batch of E_q[weight * log p(y | x, theta)]
            + kl_weight * KL(q || prior),

where the KL to the network's ``GaussianPrior`` is in closed form and the
likelihood parameters' part (their prior is not Gaussian) is the closed-form
entropy of ``q`` minus a Monte Carlo estimate of ``E_q[log prior]``. With
``kl_weight = T`` the optimum is the mean-field approximation of the tempered
posterior ``p(theta | data)^(1/T)`` (pSGLD's ``temperature``).

The expectation is estimated with ``n_mc`` reparameterised samples per step:

- every ``flax.linen.Dense`` layer uses the local reparameterisation trick
  (Kingma, Salimans & Welling, 2015): its pre-activations are Gaussian given
  the inputs, with mean ``x mu_W + mu_b`` and variance ``x^2 sigma_W^2 +
  sigma_b^2``, so one draw per example costs two matrix products instead of
  one weight sample per example, and the gradient's variance drops;
- every other parameter (convolution kernels, the likelihood's) is drawn once
  per minibatch (plain reparameterisation).

The Dense layers are found and replaced through the network's
:meth:`~skbnn.networks.Network.dense_calls` and
:meth:`~skbnn.networks.Network.apply_replacing_dense`, so any network built
from flax modules works unchanged; a first trace (``jax.eval_shape``) lists them, so the
parameters they read are not drawn and one call of the noise generator
serves the whole step.

Each step's gradient is JAX's automatic differentiation of :func:`neg_elbo`.
A hand-written gradient (the Dense variances computed once per step, the
KL's gradient in closed form) gave the same numbers and measured no faster
than automatic differentiation on a 784-300-100-10 network
(``benchmarks/handwritten.py``), so it was dropped for the dependency's.

``loss_curve`` holds, per epoch, the mean over its minibatches of the negative
ELBO estimate divided by the data size (total sample weight): the scale of
MAP's loss, which it equals when every ``sigma`` is zero, plus the KL term.
The result is a :class:`~skbnn.posterior.GaussianPosterior` with the ``"diag"``
structure; the predictive averages ``n_predictive_draws`` draws. By default
(``local_predictive=True``) it is a :class:`~skbnn.inference.vi.MeanFieldPosterior`, which predicts
with the local reparameterisation of the first Dense layer: see there.
"""

import dataclasses
import math
import warnings
from functools import partial
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from sklearn.exceptions import ConvergenceWarning

from ..posterior import GaussianPosterior, _map_chunks, map_draws
from ..utils._eager import fold_in, is_nan, split_key, to_device, wrap_key
from ..utils._io import serializable
from ..utils._random import normal, normal_like
from ..utils._sklearn_compat import Interval, StrOptions
from ..utils._tree import drop_path, flatten, get_path, set_path, unflatten
from . import map as map_
from .base import (
    LEARNING_RATE_SCHEDULES,
    MIN_SCORED_ROWS,
    TEMPERATURE_LADDER,
    BaseStrategy,
    Data,
    EpochMonitor,
    InferenceResult,
    Training,
    check_finite,
    choose_temperature,
    evidence_needed,
    holdout_rows,
    loss_settled,
    make_optimizer,
    optimizer_settings,
    posterior_log_density,
    run_epochs,
    scan_minibatches,
    single_start,
    split_rows,
    with_decay_steps,
)

__all__ = [
    "MeanFieldPosterior",
    "VI",
    "VIConfig",
    "VIInfo",
    "VIState",
    "gaussian_kl",
    "init",
    "neg_elbo",
    "run",
    "sample_log_likelihood",
    "step",
]


class VIState(NamedTuple):
    variational: dict  # {"mean": params, "log_scale": params}
    opt_state: optax.OptState


class VIInfo(NamedTuple):
    loss: jax.Array  # minibatch negative ELBO per data point
    kl: jax.Array  # KL(q || prior) (network part closed form, likelihood part estimated)


@struct.dataclass
class VIConfig:
    """Frozen settings of ``run``.

    Numeric settings are pytree leaves (new values reuse the compiled
    program); the sample counts fix array shapes and are static.
    """

    learning_rate: jax.Array
    beta_1: jax.Array
    beta_2: jax.Array
    epsilon: jax.Array
    kl_weight: jax.Array
    init_scale: jax.Array
    decay_steps: jax.Array = 1.0  # the cosine's length in steps; ``run`` sets it
    momentum: jax.Array = 0.9
    power_t: jax.Array = 0.5
    patience: jax.Array = 10.0  # solver="sgd", learning_rate="adaptive": epochs
    steps_per_epoch: jax.Array = 1.0  # ``run`` sets it
    batch_rows: jax.Array = 1.0  # ``run`` sets it
    learning_rate_schedule: str = struct.field(pytree_node=False, default="constant")
    solver: str = struct.field(pytree_node=False, default="adam")
    mlp_learning_rate: str = struct.field(pytree_node=False, default="constant")
    nesterov: bool = struct.field(pytree_node=False, default=True)
    plateau_tol: float = struct.field(pytree_node=False, default=1e-4)  # "adaptive"'s tol
    n_mc: int = struct.field(pytree_node=False, default=1)
    n_predictive_draws: int = struct.field(pytree_node=False, default=100)
    map_epochs: int = struct.field(pytree_node=False, default=0)
    local_predictive: bool = struct.field(pytree_node=False, default=True)


def _optimizer(config: VIConfig):
    return make_optimizer(config)


def init(params, config: VIConfig) -> VIState:
    """Means at ``params``, every standard deviation at ``init_scale``."""
    log_scale = jax.tree.map(
        lambda p: jnp.full_like(p, jnp.log(config.init_scale)), params
    )
    variational = {"mean": params, "log_scale": log_scale}
    return VIState(variational, _optimizer(config).init(variational))


def _dense_calls(model, X_shape, dtype=jnp.float32):
    """Every Dense call the network makes on inputs of ``X_shape``, in call order."""
    params = jax.eval_shape(lambda: model.init(jax.random.key(0), tuple(X_shape[1:])))
    return model.network.dense_calls(params["network"], X_shape, dtype)


def _dense_leaves(calls):
    """Flattened keys (:func:`~skbnn.utils._tree.flatten`) of the parameters Dense layers read."""
    keys = set()
    for call in calls:
        keys.add((*call.path, "kernel"))
        if call.use_bias:
            keys.add((*call.path, "bias"))
    return keys


def _draw_keys(rng_key, n_mc):
    """The key of each Monte Carlo draw of a step: the step's own key when there is one draw."""
    return rng_key[None] if n_mc == 1 else jax.random.split(rng_key, n_mc)


def _local_log_likelihood(rng_key, model, mean, var, scale, batch: Data, calls=None):
    """One reparameterised draw of the per-row log-likelihood, and the parameter draw.

    Each Dense layer draws its outputs from ``N(x mean_W + mean_b, x^2 var_W +
    var_b)`` row by row (local reparameterisation); every other parameter (the
    network's other leaves, the likelihood's) is drawn once for the batch as
    ``mean + scale * eps``. ``var`` (network leaves) is read only for Dense
    layers' parameters, ``scale`` only for the others, so callers may pass
    either in any form the other needs (the VI step passes ``var = exp(2 log
    sd)`` and ``scale = exp(log sd)``, and only the leaves read are computed).
    All of the draw's noise comes from one call of :func:`~skbnn.utils._random.normal`.
    ``calls``: :func:`_dense_calls` for ``batch.X``, when the caller has them.
    Returns ``(loglik (n,), sample)``, where the sample's Dense leaves hold
    their means (the layers never read them).
    """
    if calls is None:
        calls = _dense_calls(model, batch.X.shape, batch.X.dtype)
    dense = _dense_leaves(calls)
    flat_mean = flatten(mean["network"])
    flat_scale = flatten(scale["network"])
    drawn = {"network": {k: v for k, v in flat_mean.items() if k not in dense},
             "likelihood": mean["likelihood"]}
    drawn_scale = {"network": {k: flat_scale[k] for k in drawn["network"]},
                   "likelihood": scale["likelihood"]}
    sizes = [math.prod(call.shape) for call in calls]
    sizes += [math.prod(jnp.shape(x)) for x in jax.tree.leaves(drawn)]
    dtype = jnp.result_type(*jax.tree.leaves(mean))
    flat_eps = normal(rng_key, (sum(sizes),), dtype)
    pieces = jnp.split(flat_eps, np.cumsum(sizes)[:-1].tolist()) if len(sizes) > 1 else [flat_eps]
    layer_eps, leaf_eps = pieces[:len(calls)], pieces[len(calls):]
    leaves, treedef = jax.tree.flatten(drawn)
    eps = jax.tree.unflatten(treedef, [e.reshape(jnp.shape(x)) for e, x in zip(leaf_eps, leaves)])
    drawn = jax.tree.map(lambda m, s, e: m + s * e, drawn, drawn_scale, eps)
    network = unflatten({**flat_mean, **drawn["network"]})

    def local_reparameterisation(index, call, x):  # each Dense call with its own noise
        mu = get_path(mean["network"], call.path)
        v = get_path(var, call.path)
        x = jnp.asarray(x, mu["kernel"].dtype)
        out_mean = x @ mu["kernel"]
        out_var = jnp.square(x) @ v["kernel"]
        if call.use_bias:
            out_mean = out_mean + mu["bias"]
            out_var = out_var + v["bias"]
        return out_mean + jnp.sqrt(out_var) * layer_eps[index].reshape(out_mean.shape)

    outputs = model.network.apply_replacing_dense(network, batch.X, local_reparameterisation)
    loglik = model.likelihood.log_likelihood(drawn["likelihood"], outputs, batch.y)
    return loglik, {"network": network, "likelihood": drawn["likelihood"]}


def sample_log_likelihood(rng_key, model, mean, scale, batch: Data):
    """One reparameterised draw of the per-row log-likelihood, and the parameter draw.

    Dense layers draw their pre-activations (local reparameterisation); all
    other parameters are drawn once for the batch. Returns ``(loglik (n,),
    sample)``; the sample's Dense leaves hold their means (never read).
    """
    var = jax.tree.map(jnp.square, scale["network"])
    return _local_log_likelihood(rng_key, model, mean, var, scale, batch)


def _row_hashes(X):
    """A uint32 hash of each row's bits: equal rows, equal hashes, wherever they are."""
    bits = jax.lax.bitcast_convert_type(X.reshape((X.shape[0], -1)).astype(jnp.float32),
                                        jnp.uint32)
    # odd multipliers, one per feature: a row's hash changes with any of its values
    mix = jax.random.bits(jax.random.key(0), bits.shape[1:], jnp.uint32) | jnp.uint32(1)
    hashes = jnp.sum(bits * mix, axis=1, dtype=jnp.uint32)
    return hashes ^ (hashes >> 16)


def _first_dense_moments(call, x, posterior):
    """Mean and sd of a Dense layer's outputs given its inputs ``x`` (independent weights)."""
    mu = get_path(posterior.mean["network"], call.path)
    sd = get_path(posterior.factors["scale"]["network"], call.path)
    out_mean = x @ mu["kernel"]
    out_var = jnp.square(x) @ jnp.square(sd["kernel"])
    if call.use_bias:
        out_mean = out_mean + mu["bias"]
        out_var = out_var + jnp.square(sd["bias"])
    return out_mean, jnp.sqrt(out_var * posterior.temperature)


def _first_dense_path(model, input_shape):
    """Path of the first Dense layer the network calls, or None (found by tracing once)."""
    calls = _dense_calls(model, (1, *input_shape))
    return calls[0].path if calls else None


@partial(jax.jit, static_argnums=(2, 3))
def _sample_but_one_layer(posterior, rng_key, n_draws, path):
    """``n_draws`` weight draws of every parameter but the layer at ``path`` (left out)."""
    skip = ("network", *path)
    mean = drop_path(posterior.mean, skip)
    scale = drop_path(posterior.factors["scale"], skip)
    noise = normal_like(rng_key, jax.tree.map(lambda m: jnp.zeros((n_draws, *m.shape), m.dtype),
                                              mean))
    root = jnp.sqrt(jnp.asarray(posterior.temperature))
    return jax.tree.map(lambda m, sd, e: m + root * sd * e, mean, scale, noise)


@partial(jax.jit, static_argnums=5)
def _local_predict_chunk(model, posterior, draws, rng_key, X, path):
    n_draws = posterior.n_predictive_draws
    # Each row walks through one pool of n_draws noise vectors from its own
    # starting point (from its hash): a row's draws use n_draws independent
    # vectors, each independent of the weights drawn with it, so every row's
    # predictive is exact; drawing n_draws * n_rows vectors instead would cost
    # more than the network.
    offsets = _row_hashes(X) % jnp.uint32(n_draws)

    skip = ("network", *path)
    layer_mean = get_path(posterior.mean, skip)  # never read: the layer is replaced

    def one_draw(params, index):
        params = set_path(params, skip, layer_mean)

        def local_reparameterisation(call_index, call, x):
            if call_index:  # only the first Dense call
                return None
            out_mean, out_sd = _first_dense_moments(call, x, posterior)
            pool = normal(rng_key, (n_draws, *out_mean.shape[1:]), out_mean.dtype)
            return out_mean + out_sd * pool[(offsets + index) % n_draws]

        outputs = model.network.apply_replacing_dense(params["network"], X,
                                                      local_reparameterisation)
        return model.likelihood.predict(params["likelihood"], outputs)

    # in an MLP the first layer's two products do not depend on the draw: the
    # compiler hoists them out of the loop over draws
    return map_draws(lambda args: one_draw(*args),
                     (draws, jnp.arange(n_draws, dtype=jnp.uint32)))


@serializable
@struct.dataclass
class MeanFieldPosterior(GaussianPosterior):
    """Diagonal Gaussian posterior that predicts with the local reparameterisation.

    For one input row, a Dense layer's output under independent Gaussian
    weights is Gaussian with mean ``x mu_W + mu_b`` and variance
    ``x^2 sigma_W^2 + sigma_b^2``. Drawing the first Dense layer's outputs from
    that distribution, instead of drawing its weights, leaves every row's
    predictive distribution exactly as it was, and since the first layer's
    input does not depend on the draw its two products run once for all
    draws: on a 784-300-100-10 MLP a draw then costs the 31k weights after
    the first layer instead of all 266k. The other parameters are drawn once
    per draw and shared by all rows, as in :class:`~skbnn.posterior.GaussianPosterior`.

    What changes is the joint across rows: draw ``s`` of two rows no longer
    shares the first layer's weights, so ``sample_predictions`` gives exact
    per-row draws, not draws of one function over all rows. The rows share
    one pool of ``n_predictive_draws`` noise vectors, each row starting at a
    place set by a hash of its values, so a row gets the same draws wherever
    it appears (predicting a subset of rows gives the same values as
    predicting all). ``sample`` and ``predictive_draws`` still
    return weight draws.
    """

    def predict_draws(self, model, X, *, chunk_size=256):
        """Per-draw predictive quantities, each ``(n_predictive_draws, n_samples, ...)``."""
        path = _first_dense_path(model, np.shape(X)[1:])
        if path is None:  # no Dense layer: weight draws only
            return super().predict_draws(model, X, chunk_size=chunk_size)
        key_weights, key_local = split_key(wrap_key(to_device(self.key_data)))
        draws = _sample_but_one_layer(self, key_weights, self.n_predictive_draws, path)
        return _map_chunks(
            lambda chunk: _local_predict_chunk(model, self, draws, key_local, chunk, path),
            X, chunk_size, row_axis=1,
        )


def _leaf_kl(m, var, log_scale, alpha, m0):
    """``KL(N(m, var) || N(m0, 1/alpha))`` of one leaf; ``log_scale`` is ``log sqrt(var)``;
    ``alpha`` and ``m0`` are scalars or arrays like ``m``."""
    alpha = jnp.broadcast_to(alpha, m.shape)
    return 0.5 * (jnp.sum(alpha * (var + jnp.square(m - m0))) - m.size
                  - jnp.sum(jnp.log(alpha)) - 2.0 * jnp.sum(log_scale))


def gaussian_kl(mean, scale, prior):
    """``KL(N(mean, scale^2) || prior)`` summed over every leaf (closed form), for a
    ``skbnn.priors.GaussianPrior`` (isotropic, or per parameter)."""
    return sum((_leaf_kl(m, jnp.square(s), jnp.log(s), a, m0)
                for m, s, a, m0 in zip(jax.tree.leaves(mean), jax.tree.leaves(scale),
                                       prior.precisions(mean), prior.means(mean))),
               jnp.zeros((), jnp.result_type(float)))


def _entropy(scale):
    half_log_2pi_e = 0.5 * math.log(2.0 * math.pi * math.e)
    return sum((jnp.sum(jnp.log(s) + half_log_2pi_e) for s in jax.tree.leaves(scale)),
               jnp.zeros((), jnp.result_type(float)))


def neg_elbo(variational, rng_key, batch: Data, *, model, config: VIConfig, data_size, n_eff):
    """Minibatch estimate of the negative ELBO per data point, and the KL.

    The objective :func:`step` descends, by JAX's automatic differentiation.
    """
    mean = variational["mean"]
    scale = jax.tree.map(jnp.exp, variational["log_scale"])

    def one_draw(key):
        loglik, sample = sample_log_likelihood(key, model, mean, scale, batch)
        ell = data_size * jnp.mean(batch.weight * loglik)
        return ell, model.likelihood.log_prior(sample["likelihood"])

    ell, lik_log_prior = jax.vmap(one_draw)(_draw_keys(rng_key, config.n_mc))
    kl = gaussian_kl(mean["network"], scale["network"], model.prior)
    kl = kl - _entropy(scale["likelihood"]) - jnp.mean(lik_log_prior)
    loss = (-jnp.mean(ell) + config.kl_weight * kl) / n_eff
    return loss, kl


def step(rng_key, state: VIState, batch, *, model, config: VIConfig, data_size, n_eff):
    """One optimiser step (Adam by default) on the minibatch negative ELBO."""
    (loss, kl), grads = jax.value_and_grad(neg_elbo, has_aux=True)(
        state.variational, rng_key, batch, model=model, config=config, data_size=data_size,
        n_eff=n_eff)
    updates, opt_state = _optimizer(config).update(grads, state.opt_state, state.variational,
                                                   value=loss)
    variational = optax.apply_updates(state.variational, updates)
    return VIState(variational, opt_state), VIInfo(loss, kl)


@partial(jax.jit, static_argnames=("input_shape",))
def _init(model, config, rng_key, input_shape, init_params):
    return _from_prior(model, config,
                       init(single_start(model, rng_key, input_shape, init_params), config))


def _from_prior(model, config, state: VIState) -> VIState:
    """Where the prior is a carried posterior (``partial_fit``: one precision per
    parameter), the network's scales start at the prior's, so ``q`` starts at the
    previous posterior (as variational continual learning does) instead of at
    ``init_scale``; the means start where ``init_params`` put them."""
    alpha = model.prior.alpha
    if not isinstance(alpha, dict):
        return state
    log_scale = state.variational["log_scale"]
    network = jax.tree.map(lambda a, s: jnp.broadcast_to(-0.5 * jnp.log(a), s.shape).astype(s.dtype),
                           alpha, log_scale["network"])
    variational = {"mean": state.variational["mean"],
                   "log_scale": {**log_scale, "network": network}}
    return VIState(variational, _optimizer(config).init(variational))


@jax.jit
def _restart(model, config, params):
    return _from_prior(model, config, init(params, config))


@partial(jax.jit, static_argnames=("batch_size", "shuffle"))
def _epoch(model, config, state, data, rng_key, epoch, batch_size, shuffle):
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight)

    def step_fn(key, state, batch):
        return step(key, state, batch, model=model, config=config, data_size=data_size,
                    n_eff=n_eff)

    state, info = scan_minibatches(step_fn, state, data, rng_key, batch_size, shuffle)
    return state, jnp.mean(info.loss), info.kl[-1]


@jax.jit
def _posterior_parts(variational, rng_key):
    return (variational["mean"], jax.tree.map(jnp.exp, variational["log_scale"]),
            jax.random.key_data(rng_key))


def _map_warm_start(model, data, config, key, training, init_params):
    """``config.map_epochs`` epochs of MAP (Adam) from the usual start: the means' start."""
    shared = {f.name for f in dataclasses.fields(map_.MAPConfig)} & {
        f.name for f in dataclasses.fields(VIConfig)}
    map_config = map_.MAPConfig(**{name: getattr(config, name) for name in shared}).replace(
        learning_rate_schedule="constant")
    key_init, key_epochs = jax.random.split(key)
    state = map_._init(model, map_config, key_init, data.X.shape[1:], init_params)
    for epoch in range(config.map_epochs):
        state, _ = map_._epoch(model, map_config, state, data, key_epochs, epoch,
                               training.batch_size, training.shuffle)
    return state.params


@partial(jax.jit, static_argnames=("batch_size", "shuffle"))
def _group_epoch(model, config, states, data, rng_key, epoch, kl_weights, batch_size, shuffle):
    """One epoch of several variational posteriors, one per ``kl_weights`` entry (vmapped)."""
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight)

    def step_fn(key, states, batch):
        keys = jax.random.split(key, kl_weights.shape[0])
        return jax.vmap(lambda k, s, w: step(k, s, batch, model=model,
                                             config=config.replace(kl_weight=w),
                                             data_size=data_size, n_eff=n_eff))(
            keys, states, kl_weights)

    states, info = scan_minibatches(step_fn, states, data, rng_key, batch_size, shuffle)
    return states, jnp.mean(info.loss, axis=0)


def _posterior(config, variational, key_data):
    mean, scale = variational
    posterior_class = MeanFieldPosterior if config.local_predictive else GaussianPosterior
    return posterior_class(
        mean=jax.device_get(mean), factors={"scale": jax.device_get(scale)},
        key_data=np.asarray(key_data), structure="diag",
        n_predictive_draws=config.n_predictive_draws,
    )


def _choose_kl_weight(model, data, config, key, training, init_params, monitor):
    """``kl_weight="auto"``: one variational posterior per temperature, trained together
    on the rows not held back for the first half of the epochs, scored on the others.

    Returns the chosen weight, the chosen group's state, the epochs run and the scores.
    """
    key_rows, key_init, key_epochs, key_predict = split_key(key, 4)
    held = holdout_rows(key_rows, data.X.shape[0], training.validation_fraction)
    fit, val = split_rows(data, held)
    n_epochs = max(1, training.max_iter // 2)
    ladder = to_device(TEMPERATURE_LADDER, jnp.result_type(float))
    state = _init(model, config, key_init, data.X.shape[1:], init_params)
    states = jax.tree.map(lambda x: jnp.broadcast_to(x, (ladder.shape[0], *jnp.shape(x))), state)
    curves = []
    for epoch in range(n_epochs):
        states, losses = _group_epoch(model, config, states, fit, key_epochs, epoch, ladder,
                                      training.batch_size, training.shuffle)
        losses = np.asarray(losses)
        if not np.all(np.isfinite(losses)):
            raise ValueError(
                f"Inference with 'vi' diverged at epoch {epoch + 1}: the ELBO is no longer "
                "finite. Lower learning_rate_init or init_scale, raise alpha, or scale the "
                "inputs (e.g. with StandardScaler).")
        curves.append(losses)
        if training.verbose:
            print(f"Iteration {epoch + 1}, loss per kl_weight: "
                  + ", ".join(f"{float(w):g}: {v:.8f}" for w, v in zip(ladder, losses)))
    predictive = config.replace(n_predictive_draws=min(config.n_predictive_draws, 30))
    key_data = jax.random.key_data(key_predict)
    scores = {}
    for g, weight in enumerate(np.asarray(ladder)):
        variational = jax.tree.map(lambda x: x[g], states.variational)
        posterior = _posterior(predictive, (variational["mean"],
                                            jax.tree.map(jnp.exp, variational["log_scale"])),
                               key_data)
        scores[float(weight)] = posterior_log_density(model, posterior, val.X, val.y)
    weight, means = choose_temperature(scores, np.asarray(val.weight),
                                       evidence_needed(model.likelihood))
    g = int(np.flatnonzero(np.asarray(TEMPERATURE_LADDER) == weight)[0])
    if training.verbose:
        print(f"kl_weight = {weight:g} (chosen on {len(held)} held-back rows)")
    monitor.loss_curve.extend(float(c[g]) for c in curves)
    return weight, jax.tree.map(lambda x: x[g], states), n_epochs, means


def run(model, data: Data, config: VIConfig, key, *, training: Training,
        init_params=None, validation: Data | None = None) -> InferenceResult:
    """Maximise the ELBO for up to ``training.max_iter`` epochs with scikit-learn's stopping rule.

    ``config.kl_weight`` NaN (``"auto"``): see :class:`VI`.
    """
    config = with_decay_steps(config, training, data)
    key_init, key_epochs, key_predict = split_key(key, 3)
    monitor = EpochMonitor(training, model=model, validation=validation)
    first_epoch, means = 0, None
    n_held = holdout_rows(key_init, data.X.shape[0], training.validation_fraction).size
    if is_nan(config.kl_weight) and n_held < MIN_SCORED_ROWS:
        config = config.replace(kl_weight=to_device(1.0, config.learning_rate.dtype))
    if is_nan(config.kl_weight):  # "auto"
        if config.map_epochs:
            init_params = _map_warm_start(model, data, config, key_init, training, init_params)
        weight, state, first_epoch, means = _choose_kl_weight(
            model, data, config, fold_in(key_init, 1), training, init_params,
            monitor)
        config = config.replace(kl_weight=to_device(weight, config.learning_rate.dtype))
    elif config.map_epochs:
        start = _map_warm_start(model, data, config, key_init, training, init_params)
        state = _restart(model, config, start)
    else:
        state = _init(model, config, key_init, data.X.shape[1:], init_params)
    advice = (
        f"Lower learning_rate_init (now {float(config.learning_rate):g}) or init_scale "
        f"(now {float(config.init_scale):g}), raise alpha, or scale the inputs "
        "(e.g. with StandardScaler)."
    )
    best = [None]

    def epoch_fn(carry, epoch):
        state, _ = carry
        state, loss, kl = _epoch(model, config, state, data, key_epochs, epoch,
                                 training.batch_size, training.shuffle)
        return (state, kl), loss

    def keep_best(carry, epoch):  # with early stopping: the state of the best score
        if validation is not None and monitor.best_params is carry[0].variational["mean"]:
            best[0] = carry[0]

    # without early stopping VI runs its whole budget, as the samplers do: the
    # ELBO is a noisy estimate, and on small data the variances grow from
    # init_scale by less per epoch than that noise
    (state, kl), stopped = run_epochs(
        epoch_fn, (state, jnp.zeros(())), range(first_epoch, training.max_iter),
        strategy="vi", advice=advice, monitor=monitor,
        params=lambda carry: carry[0].variational["mean"],
        describe=lambda carry, epoch: f", KL = {float(carry[1]):.6g}",
        on_epoch=keep_best, stop=validation is not None)
    best = best[0]
    if validation is not None and best is not None:
        state = best
    mean, scale, key_data = _posterior_parts(state.variational, key_predict)
    check_finite((mean, scale), strategy="vi", advice=advice)
    settled, drop, noise = loss_settled(monitor.loss_curve[first_epoch:], training.tol,
                                        window=training.n_iter_no_change)
    if not stopped and not settled:
        what = (f"it fell by {drop:.3g} per data point over the last epochs, more than its "
                f"noise ({noise:.2g})" if math.isfinite(drop) else "the run was too short to tell")
        warnings.warn(
            f"VI (inference='vi'): the ELBO has not settled after max_iter={training.max_iter} "
            f"epochs: {what}. Raise max_iter.", ConvergenceWarning)
    n_iter = len(monitor.loss_curve)
    posterior = _posterior(config, (mean, scale), key_data)
    steps_per_epoch = -(-data.X.shape[0] // training.batch_size)
    diagnostics = {"kl": float(kl), "map_epochs": config.map_epochs,
                   "kl_weight": float(config.kl_weight),
                   "n_steps": (n_iter + config.map_epochs) * steps_per_epoch}
    if means is not None:
        diagnostics["kl_weight_scores"] = {str(t): v for t, v in means.items()}
    return InferenceResult(
        posterior=posterior,
        loss_curve=monitor.loss_curve,
        n_iter=n_iter,
        diagnostics=diagnostics,
        validation_scores=monitor.validation_scores,
        best_loss=None if validation is not None else monitor.best_loss,
    )


@serializable
class VI(BaseStrategy):
    """Mean-field Gaussian variational inference (Bayes by Backprop, local reparameterisation).

    Parameters
    ----------
    learning_rate : float or None, default=None
        Adam's step size for the means and log standard deviations; None uses
        the estimator's ``learning_rate_init``.
    learning_rate_schedule : {"constant", "cosine"}, default="constant"
        "cosine" lowers the step size from ``learning_rate`` to 0 along a
        half cosine over the estimator's ``max_iter`` epochs (``map_epochs``
        run at the constant rate before), so the last epochs of a fixed budget
        average out the gradient noise of the sampled ELBO. It also halves how
        far Adam can move the log standard deviations from ``init_scale`` in
        that budget, which is why it is not the default: give it a larger
        ``learning_rate`` (about twice the constant schedule's).
    n_mc : int, default=1
        Monte Carlo draws of the expected log-likelihood per step.
    kl_weight : float or "auto", default="auto"
        Weight of the KL term: the posterior temperature ``T`` (the ELBO of
        ``p(theta | data)^(1/T)``, up to the factor ``T``). Below 1: a cold
        posterior, more confident. "auto": for the first half of the epochs
        one variational posterior per weight of 1, 1/4, 1/16 and 1/64 is
        trained (all together, vmapped) without ``validation_fraction`` of the
        rows; the held-back rows' log predictive density chooses the warmest
        weight within two standard errors of the best (one for class labels),
        and its posterior goes
        on with all rows. With fewer than 50 held-back rows, 1. The chosen value is in ``diagnostics_["kl_weight"]``.
    init_scale : float, default=1e-2
        Initial standard deviation of every parameter; the means start at the
        network's usual initialisation (or the MAP warm start). Adam moves a
        log standard deviation by about ``learning_rate`` per step, so the
        start decides how much of its spread a short run reaches, and what
        ``kl_weight="auto"`` sees when it compares weights half-way. 1e-2 was
        chosen on held-back training rows, against 1e-3, where on MNIST the
        standard deviations had not grown enough by half-way to tell the
        weights apart (:doc:`/user_guide/defaults`).
    map_epochs : int, default=0
        Epochs of MAP training (Adam, same learning rate) before the ELBO is
        optimised: a start for the means. They count in ``diagnostics_["n_steps"]`` but not in
        ``n_iter_`` or ``loss_curve_``.
    n_predictive_draws : int, default=100
        Parameter draws the posterior predictive averages over.
    local_predictive : bool, default=True
        Predict with the local reparameterisation of the first Dense layer
        (a :class:`~skbnn.inference.vi.MeanFieldPosterior`): the same per-row predictive at a
        fraction of the cost, but draws of different rows do not share the
        first layer's weights. False: every draw is one weight draw for all
        rows (a plain :class:`~skbnn.posterior.GaussianPosterior`).
    beta_1, beta_2, epsilon : float or None, default=None
        Adam's settings; None uses the estimator's (scikit-learn MLP's names
        and defaults). The estimator's ``solver`` ("adam" or "sgd"; "lbfgs"
        is refused), ``momentum``, ``nesterovs_momentum`` and, for "sgd",
        ``learning_rate`` and ``power_t`` drive the optimisation of the
        variational parameters as they drive MLP's.

    Notes
    -----
    ``loss_curve_`` is the negative ELBO per data point (see the module notes);
    the stopping rule (``tol``, ``n_iter_no_change``, ``early_stopping``) acts
    on it only with ``early_stopping=True`` (the validation score of the
    mean parameters). Otherwise VI runs all ``max_iter`` epochs, as the
    samplers do: the ELBO is a noisy estimate, and on small data the
    standard deviations grow from ``init_scale`` by less per epoch than that
    noise, so MLP's rule (``tol`` better than the best within
    ``n_iter_no_change`` epochs) stopped it long before the posterior was
    reached. At the end, when the ELBO is still falling (the mean loss of the
    last ``n_iter_no_change`` epochs, or the last tenth when more, below that
    of the epochs before by more than two standard errors of its noise and
    more than ``tol`` per epoch: :func:`~skbnn.inference.base.loss_settled`), a ``ConvergenceWarning`` says so.
    """

    name = "vi"
    streaming = "prior"

    _parameter_constraints = {
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "learning_rate_schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
        "n_mc": [Interval(Integral, 1, None, closed="left")],
        "kl_weight": [Interval(Real, 0, None, closed="left"), StrOptions({"auto"})],
        "init_scale": [Interval(Real, 0, None, closed="neither")],
        "map_epochs": [Interval(Integral, 0, None, closed="left")],
        "n_predictive_draws": [Interval(Integral, 1, None, closed="left")],
        "local_predictive": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left"), None],
        "beta_2": [Interval(Real, 0, 1, closed="left"), None],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, learning_rate=None, learning_rate_schedule="constant", n_mc=1,
                 kl_weight="auto", init_scale=1e-2, map_epochs=0, n_predictive_draws=100,
                 local_predictive=True, beta_1=None, beta_2=None, epsilon=None):
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.n_mc = n_mc
        self.kl_weight = kl_weight
        self.init_scale = init_scale
        self.map_epochs = map_epochs
        self.n_predictive_draws = n_predictive_draws
        self.local_predictive = local_predictive
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def config(self, model, training: Training) -> VIConfig:
        lr = training.learning_rate if self.learning_rate is None else self.learning_rate
        dtype = jnp.result_type(float)
        return VIConfig(
            learning_rate=to_device(lr, dtype),
            kl_weight=to_device(np.nan if self.kl_weight == "auto" else self.kl_weight, dtype),
            init_scale=to_device(self.init_scale, dtype),
            **optimizer_settings(training, beta_1=self.beta_1, beta_2=self.beta_2,
                                 epsilon=self.epsilon),
            learning_rate_schedule=self.learning_rate_schedule,
            n_mc=int(self.n_mc),
            n_predictive_draws=int(self.n_predictive_draws),
            map_epochs=int(self.map_epochs),
            local_predictive=bool(self.local_predictive),
        )

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        if training.optimizer.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' does not apply to inference='vi': the ELBO is estimated "
                "from random draws, which a line search cannot follow. Use solver='adam' "
                "or 'sgd'."
            )
        return run(model, data, self.config(model, training), key, training=training,
                   init_params=init_params, validation=validation)
