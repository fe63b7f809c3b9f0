"""Preconditioned stochastic gradient Langevin dynamics (pSGLD; Li et al., 2016).

SGLD with RMSprop's diagonal preconditioner. Three small parts, composed the
way blackjax composes SGLD:

- the gradient estimator: ``Model.logdensity`` on a minibatch, i.e. the log
  prior plus ``n / batch`` times the batch log-likelihood;
- the preconditioner :func:`preconditioner`: ``G = 1 / (n (eps + sqrt(V)))``
  where ``V`` is optax's exponential moving average of the squared
  per-data-point gradient (Li et al.'s ``V`` and ``lambda``), bias-corrected as
  in Adam so the first steps are not huge;
- the Langevin update :func:`langevin_update`:
  ``theta + h G grad + sqrt(2 h G T) xi`` for step size ``h`` and temperature ``T``.

With ``G`` built from the full-data-scale gradient, ``h`` plays the part of an
RMSprop learning rate (the estimator's ``learning_rate_init`` is its default).
Li et al.'s step size is ``2 h / n``. Their ``Gamma`` correction term is left
out, as in their experiments.

The step size is constant or decays polynomially from ``step_size`` to
``step_size_final`` over the run (jax-sgmc's ``polynomial_step_size_first_last``).
The first ``burn_in`` share of the steps is discarded; of the rest, ``n_draws``
evenly spaced states per chain are kept (thinning), the last one at the last
step. Chains are vmapped, share the minibatch order and differ in their start
and their noise; with several devices the chain axis is sharded over them.
"""

import math
from functools import partial
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct

from .._types import Params
from ..posterior import SamplePosterior
from ..utils._io import serializable
from ..utils._random import normal_like
from ..utils._sklearn_compat import Interval
from .base import (
    BaseStrategy,
    Data,
    EpochMonitor,
    InferenceResult,
    Training,
    chain_sharding,
    check_finite,
    count_batches,
    scan_minibatches,
    start_positions,
)

__all__ = [
    "PSGLD",
    "PSGLDConfig",
    "PSGLDInfo",
    "PSGLDState",
    "init",
    "langevin_update",
    "preconditioner",
    "run",
    "step",
    "step_size_schedule",
]


class PSGLDState(NamedTuple):
    params: Params  # current position
    sq_grad_avg: Params  # RMSprop's moving average of squared per-point gradients
    sq_grad_floor: Params  # bias-corrected average at the end of adaptation (a floor)
    count: jax.Array  # steps taken, for the schedule and the bias correction


class PSGLDInfo(NamedTuple):
    loss: jax.Array  # minibatch negative log posterior per data point
    step_size: jax.Array


@struct.dataclass
class PSGLDConfig:
    """Frozen settings of :func:`run`.

    Numeric settings are pytree leaves (new values reuse the compiled
    program); the chain and draw counts fix array shapes and are static.
    """

    step_size: jax.Array
    step_size_final: jax.Array
    step_size_power: jax.Array
    temperature: jax.Array
    rms_decay: jax.Array
    eps: jax.Array
    burn_in: jax.Array
    decay: bool = struct.field(pytree_node=False, default=False)
    freeze_preconditioner: bool = struct.field(pytree_node=False, default=True)
    n_chains: int = struct.field(pytree_node=False, default=1)
    n_draws: int = struct.field(pytree_node=False, default=20)
    n_cycles: int = struct.field(pytree_node=False, default=1)


class SavePlan(NamedTuple):
    """Step numbers (1-based) that shape a run: one entry per cycle, one per kept draw.

    Cycle ``c`` ends at step ``cycle_ends[c]``; its preconditioner adapts up to
    step ``adapt_ends[c]``; the state after step ``save_steps[k]`` is draw ``k``.
    """

    total_steps: jax.Array  # ()
    cycle_ends: jax.Array  # (n_cycles,)
    adapt_ends: jax.Array  # (n_cycles,)
    save_steps: jax.Array  # (n_draws,), increasing


def _cycle_position(plan: SavePlan, step_number):
    """Cycle index of a 1-based step number, and its position in the cycle, in [0, 1)."""
    cycle = jnp.searchsorted(plan.cycle_ends, step_number, side="left")
    start = jnp.where(cycle > 0, plan.cycle_ends[jnp.maximum(cycle - 1, 0)], 0)
    length = plan.cycle_ends[cycle] - start
    return cycle, (step_number - 1 - start) / length


def step_size_schedule(config: PSGLDConfig, plan: SavePlan):
    """Step size as a function of the number of steps taken (an optax-style schedule).

    One cycle: constant, or ``a (b + t)^-power`` with ``a, b`` set so that it
    equals ``step_size`` at ``t = 0`` and ``step_size_final`` at the last step
    (jax-sgmc's ``polynomial_step_size_first_last``). Several cycles: in each,
    a cosine from ``step_size`` down to ``step_size_final`` (Zhang et al., 2020).
    """
    first, last = config.step_size, config.step_size_final
    if config.n_cycles > 1:
        def cyclical(count):
            _, r = _cycle_position(plan, count + 1)
            return last + 0.5 * (first - last) * (1.0 + jnp.cos(jnp.pi * r))
        return cyclical
    if not config.decay:
        return lambda count: first
    power = config.step_size_power
    b = plan.total_steps / ((first / last) ** (1.0 / power) - 1.0)
    return lambda count: first * (b / (b + count)) ** power


def init(params) -> PSGLDState:
    zeros = jax.tree.map(jnp.zeros_like, params)
    return PSGLDState(params, zeros, zeros, jnp.zeros((), dtype=jnp.int32))


def preconditioner(sq_grad_hat, *, eps, data_size):
    """RMSprop preconditioner ``1 / (n (eps + sqrt(V)))`` per parameter.

    ``V`` is the bias-corrected moving average of squared per-point gradients;
    ``n`` is the data size: the total sample weight, so that a row of weight 2
    acts exactly like two copies of the row.
    """
    return jax.tree.map(lambda v: 1.0 / (data_size * (eps + jnp.sqrt(v))), sq_grad_hat)


def langevin_update(rng_key, params, grad, precond, step_size, temperature):
    """Preconditioned Euler-Maruyama step of Langevin dynamics (ascent on the log density)."""
    noise = normal_like(rng_key, params)  # one fast call for every parameter
    return jax.tree.map(
        lambda p, g, m, z: p + step_size * m * g + jnp.sqrt(2.0 * step_size * m * temperature) * z,
        params, grad, precond, noise,
    )


def step(rng_key, state: PSGLDState, batch, *, model, config: PSGLDConfig, schedule,
         data_size, n_eff, adapt=True):
    """One pSGLD step for one chain.

    While ``adapt``, the preconditioner follows the moving average ``V`` as in
    RMSprop. Afterwards it uses ``max(V_end, V)``, with ``V_end`` the average
    when adaptation stopped: constant while the chain is stationary (so no
    correction term is missing), but still shrinking if gradients grow (so the
    step cannot blow up when the chain drifts somewhere steeper).
    """
    logdensity, grad = jax.value_and_grad(model.logdensity)(state.params, batch, data_size)
    mean_grad = jax.tree.map(lambda g: g / n_eff, grad)
    sq_grad_avg = optax.tree.update_moment_per_elem_norm(
        mean_grad, state.sq_grad_avg, config.rms_decay, 2
    )
    count = state.count + 1
    sq_hat = optax.tree.bias_correction(sq_grad_avg, config.rms_decay, count)
    floor = jax.tree.map(lambda v, f: jnp.where(adapt, v, f), sq_hat, state.sq_grad_floor)
    used = jax.tree.map(jnp.maximum, floor, sq_hat)
    precond = preconditioner(used, eps=config.eps, data_size=n_eff)
    h = schedule(state.count)
    params = langevin_update(rng_key, state.params, grad, precond, h, config.temperature)
    new_state = PSGLDState(params, sq_grad_avg, floor, count)
    return new_state, PSGLDInfo(-logdensity / n_eff, h)


def _store(draws, params, plan: SavePlan, step_number):
    """Write ``params`` (leading chain axis) into slot k of ``draws`` after step ``save_steps[k]``."""
    n_draws = plan.save_steps.shape[0]
    slot = jnp.searchsorted(plan.save_steps, step_number, side="left")
    keep = plan.save_steps[jnp.minimum(slot, n_draws - 1)] == step_number
    slot = jnp.where(keep, slot, n_draws)  # out of range: dropped
    return jax.tree.map(lambda buf, p: buf.at[:, slot].set(p, mode="drop"), draws, params)


@partial(jax.jit, static_argnames=("input_shape",))
def _init(model, config, rng_key, input_shape, init_params):
    params = start_positions(model, rng_key, input_shape, config.n_chains, init_params)
    draws = jax.tree.map(
        lambda p: jnp.zeros((config.n_chains, config.n_draws, *p.shape[1:]), p.dtype), params
    )
    return jax.vmap(init)(params), draws


@partial(jax.jit, static_argnames=("batch_size", "shuffle"), donate_argnums=(2, 3))
def _epoch(model, config, states, draws, data, rng_key, epoch, plan, batch_size, shuffle):
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight)
    schedule = step_size_schedule(config, plan)
    one_chain = partial(step, model=model, config=config, schedule=schedule,
                        data_size=data_size, n_eff=n_eff)

    def step_fn(key, carry, batch):
        states, draws = carry
        keys = jax.random.split(key, config.n_chains)
        cycle, _ = _cycle_position(plan, states.count[0] + 1)
        adapt = states.count[0] + 1 <= plan.adapt_ends[cycle]
        states, info = jax.vmap(partial(one_chain, adapt=adapt), in_axes=(0, 0, None))(
            keys, states, batch
        )
        return (states, _store(draws, states.params, plan, states.count[0])), info

    (states, draws), info = scan_minibatches(
        step_fn, (states, draws), data, rng_key, batch_size, shuffle
    )
    return states, draws, jnp.mean(info.loss), info.step_size[-1, 0]


def save_plan(config: PSGLDConfig, total_steps: int) -> SavePlan:
    """Cycles, adaptation and kept steps for a run of ``total_steps`` steps.

    The run is split into ``n_cycles`` equal cycles (one by default). In each,
    the first ``burn_in`` share of the steps is discarded (and is where the
    preconditioner adapts); the cycle's share of the ``n_draws`` draws is kept
    evenly spaced over the rest, the last at the cycle's last step. Raises when
    a cycle has fewer steps after burn-in than draws to keep.
    """
    n_cycles, n_draws = config.n_cycles, config.n_draws
    burn_in = float(config.burn_in)
    if n_draws < n_cycles:
        raise ValueError(
            f"PSGLD keeps n_draws={n_draws} draws per chain over n_cycles={n_cycles} cycles; "
            "keep at least one draw per cycle (raise n_draws or lower n_cycles)."
        )
    ends = [(c + 1) * total_steps // n_cycles for c in range(n_cycles)]
    starts = [0, *ends[:-1]]
    per_cycle = [n_draws // n_cycles + (c >= n_cycles - n_draws % n_cycles)
                 for c in range(n_cycles)]
    adapt_ends, save_steps = [], []
    for start, end, k in zip(starts, ends, per_cycle):
        n_burn = math.floor(burn_in * (end - start))
        thin = (end - start - n_burn) // k
        if thin < 1:
            where = "" if n_cycles == 1 else f" of each of the {n_cycles} cycles"
            raise ValueError(
                f"PSGLD keeps n_draws={n_draws} draws per chain, but only "
                f"{end - start - n_burn} of the {end - start} steps{where} follow burn-in "
                f"(burn_in={burn_in:g}). Raise max_iter, lower burn_in or lower n_draws."
            )
        adapt_ends.append(start + max(n_burn, 1) if config.freeze_preconditioner else end)
        save_steps.extend(end - (k - 1 - j) * thin for j in range(k))
    as_int = partial(jnp.asarray, dtype=jnp.int32)
    return SavePlan(as_int(total_steps), as_int(ends), as_int(adapt_ends), as_int(save_steps))


def run(model, data: Data, config: PSGLDConfig, key, *, training: Training,
        init_params=None, validation: Data | None = None) -> InferenceResult:
    """Run ``config.n_chains`` pSGLD chains for ``training.max_iter`` epochs."""
    del validation  # a sampler runs its whole budget; see PSGLD.run
    n_rows = data.X.shape[0]
    total_steps = training.max_iter * count_batches(n_rows, training.batch_size)
    plan = save_plan(config, total_steps)
    key_init, key_epochs = jax.random.split(key)
    states, draws = _init(model, config, key_init, data.X.shape[1:], init_params)
    chains, replicated = chain_sharding(config.n_chains)
    if chains is not None:
        states, draws = jax.device_put((states, draws), chains)
        data = jax.device_put(data, replicated)

    monitor = EpochMonitor(training, stopping=False)
    save_steps = np.asarray(plan.save_steps)
    advice = (
        f"Lower step_size (now {float(config.step_size):g}), raise alpha, or scale the "
        "inputs (e.g. with StandardScaler)."
    )
    for epoch in range(training.max_iter):
        states, draws, loss, h = _epoch(
            model, config, states, draws, data, key_epochs, epoch, plan,
            training.batch_size, training.shuffle,
        )
        loss = float(loss)
        if not math.isfinite(loss):
            raise ValueError(
                f"Inference with 'psgld' diverged at epoch {epoch + 1}: the log posterior "
                f"is no longer finite. {advice}"
            )
        done = (epoch + 1) * count_batches(n_rows, training.batch_size)
        kept = int(np.searchsorted(save_steps, done, side="right"))
        monitor.update(loss, extra=f", step size = {float(h):.3g}, draws kept = {kept}")
    check_finite(draws, strategy="psgld", advice=advice)
    return InferenceResult(
        posterior=SamplePosterior(jax.device_get(draws)),
        loss_curve=monitor.loss_curve,
        n_iter=training.max_iter,
        diagnostics={
            "n_steps": total_steps,
            "n_cycles": config.n_cycles,
            "save_steps": save_steps,
            "n_devices": 1 if chains is None else len(chains.mesh.devices.flat),
        },
        n_steps=total_steps,
    )


@serializable
class PSGLD(BaseStrategy):
    """Preconditioned SGLD (Li et al., 2016): the default strategy.

    Parameters
    ----------
    step_size : float or None, default=None
        First step size ``h`` (an RMSprop learning rate, see the module notes);
        None uses the estimator's ``learning_rate_init``.
    step_size_final : float or None, default=None
        Last step size of a polynomial decay; None keeps the step size constant.
        With ``n_cycles > 1``: the step size at the end of each cycle (None: 0).
    step_size_power : float, default=0.33
        Power of the polynomial decay.
    burn_in : float, default=0.5
        Share of the steps (of each cycle) discarded before draws are kept.
    n_draws : int, default=20
        Draws kept per chain, evenly spaced over the steps after burn-in
        (shared out between the cycles).
    n_cycles : int, default=1
        Cyclical step size (cSG-MCMC, Zhang et al., 2020): split the run into
        this many cycles whose step size falls from ``step_size`` to
        ``step_size_final`` along a cosine; each cycle starts with large steps
        that can leave the current mode, so one chain visits several modes.
        Unlike Zhang et al., the noise stays on in every stage, so every step
        is a Langevin step.
    n_chains : int, default=1
        Independent chains, vmapped (and sharded over devices when several are visible).
    temperature : float, default=1.0
        Posterior temperature ``T``: the chains target ``p(theta | data)^(1/T)``.
    rms_decay : float, default=0.99
        Decay of the moving average of squared gradients (Li et al.'s alpha).
    eps : float, default=1e-5
        Damping of the preconditioner, on the per-data-point gradient scale
        (Li et al.'s lambda).
    freeze_preconditioner : bool, default=True
        Adapt the preconditioner during burn-in only; afterwards it may still
        shrink (where gradients grow beyond their burn-in size, for stability)
        but not grow. Li et al. adapt throughout and drop the correction term
        that a changing preconditioner needs; that overstates the posterior
        spread (by about 10% on a linear-Gaussian model). With a preconditioner
        that stays put once the chain is stationary, the dynamics target the
        posterior up to the step-size and minibatch errors.

    Notes
    -----
    A sampler runs its whole budget of ``max_iter`` epochs: ``tol`` and
    ``n_iter_no_change`` do not apply and ``early_stopping=True`` is refused.
    """

    name = "psgld"

    _parameter_constraints = {
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "step_size_final": [Interval(Real, 0, None, closed="neither"), None],
        "step_size_power": [Interval(Real, 0, None, closed="neither")],
        "burn_in": [Interval(Real, 0, 1, closed="left")],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "n_cycles": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "rms_decay": [Interval(Real, 0, 1, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "freeze_preconditioner": ["boolean"],
    }

    def __init__(self, *, step_size=None, step_size_final=None, step_size_power=0.33,
                 burn_in=0.5, n_draws=20, n_chains=1, n_cycles=1, temperature=1.0,
                 rms_decay=0.99, eps=1e-5, freeze_preconditioner=True):
        self.step_size = step_size
        self.step_size_final = step_size_final
        self.step_size_power = step_size_power
        self.burn_in = burn_in
        self.n_draws = n_draws
        self.n_chains = n_chains
        self.n_cycles = n_cycles
        self.temperature = temperature
        self.rms_decay = rms_decay
        self.eps = eps
        self.freeze_preconditioner = freeze_preconditioner

    def config(self, training: Training) -> PSGLDConfig:
        first = training.learning_rate if self.step_size is None else self.step_size
        if self.step_size_final is not None:
            last = self.step_size_final
        else:
            last = 0.0 if self.n_cycles > 1 else first
        dtype = jnp.result_type(float)
        return PSGLDConfig(
            *(jnp.asarray(v, dtype=dtype) for v in (
                first, last, self.step_size_power, self.temperature, self.rms_decay, self.eps,
                self.burn_in,
            )),
            decay=self.step_size_final is not None and last != first,
            freeze_preconditioner=bool(self.freeze_preconditioner),
            n_chains=int(self.n_chains),
            n_draws=int(self.n_draws),
            n_cycles=int(self.n_cycles),
        )

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        if training.early_stopping:
            raise ValueError(
                "early_stopping=True is not supported with inference='psgld': a sampler runs "
                "its whole budget of max_iter epochs. Set early_stopping=False, or use "
                "inference='map'."
            )
        return run(model, data, self.config(training), key, training=training,
                   init_params=init_params)
