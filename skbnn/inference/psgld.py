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
step. When the budget has fewer steps after burn-in than draws to keep, the
run keeps what it can and warns with the ``max_iter`` that would keep them
all. Chains are vmapped, share the minibatch order and differ in their start
and their noise; with several devices the chain axis is sharded over them.

``temperature="auto"`` (the default) chooses the posterior temperature on
data. During the first two thirds of burn-in there is one group of
``n_chains`` chains per temperature of :data:`~.base.TEMPERATURE_LADDER`
(1, 1/4, 1/16, 1/64), all vmapped together; the rows are split into one fold
per chain and chain ``c`` of every group holds fold ``c`` back
(cross-fitting: every row scores every temperature, as in cross-validation;
one chain holds back ``validation_fraction`` of the rows). Each temperature
is scored by the held-back rows' log predictive density under the states of
the chain that did not see them, and the warmest temperature within two
standard errors of the best is kept, one for class labels (the untempered
posterior unless the data say otherwise; :func:`~.base.choose_temperature`). Its chains go on
with all rows; the other groups stop. The search costs about as much as the
rest of the run. Classification data sets, whose labels are curated, usually
choose a cold posterior (Aitchison, 2021; Wenzel et al., 2020); regression
sets choose 1 or a mildly cold one.

After the run, :mod:`skbnn.diagnostics` computes split R-hat and effective
sample sizes on the parameters and on the per-row log-likelihood of up to 256
training rows, and warns when the chains disagree on those predictions.
"""

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

from .. import diagnostics
from .._types import Params
from ..posterior import SamplePosterior
from ..utils._io import serializable
from ..utils._eager import is_nan, split_key, to_device
from ..utils._random import normal_like, permutation
from ..utils._sklearn_compat import Interval, StrOptions
from ..utils._host import HostRows, host_chunks
from .base import (
    HOST_CHUNK_ROWS,
    MIN_SCORED_ROWS,
    TEMPERATURE_LADDER,
    BaseStrategy,
    Data,
    EpochMonitor,
    InferenceResult,
    Training,
    chain_sharding,
    check_finite,
    choose_temperature,
    run_epochs,
    take_rows,
    count_batches,
    evidence_needed,
    sample_diagnostics,
    scan_minibatches,
    start_positions,
    warn_unused_optimizer,
)

__all__ = [
    "PSGLD",
    "PSGLDConfig",
    "PSGLDInfo",
    "PSGLDState",
    "epochs_for_all_draws",
    "init",
    "kept_draws",
    "langevin_update",
    "preconditioner",
    "run",
    "save_plan",
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
    """Frozen settings of ``run``.

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
         data_size, n_eff, temperature, adapt=True):
    """One pSGLD step for one chain at ``temperature``.

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
    params = langevin_update(rng_key, state.params, grad, precond, h, temperature)
    new_state = PSGLDState(params, sq_grad_avg, floor, count)
    return new_state, PSGLDInfo(-logdensity / n_eff, h)


def _store(draws, params, plan: SavePlan, step_number):
    """Write ``params`` (leading chain axis) into slot k of ``draws`` after step ``save_steps[k]``."""
    n_draws = plan.save_steps.shape[0]
    slot = jnp.searchsorted(plan.save_steps, step_number, side="left")
    keep = plan.save_steps[jnp.minimum(slot, n_draws - 1)] == step_number
    slot = jnp.where(keep, slot, n_draws)  # out of range: dropped
    return jax.tree.map(lambda buf, p: buf.at[:, slot].set(p, mode="drop"), draws, params)


@partial(jax.jit, static_argnames=("input_shape", "n_chains"))
def _init(model, rng_key, input_shape, init_params, n_chains):
    """``n_chains`` chain states; a warm start's chains are repeated to fill them."""
    if init_params is not None:
        lead = jax.tree.leaves(init_params)[0].shape[0]
        reference = jax.eval_shape(lambda: model.init(rng_key, input_shape))
        chained = jax.tree.leaves(init_params)[0].ndim == jax.tree.leaves(reference)[0].ndim + 1
        if chained and lead != n_chains and n_chains % lead == 0:
            init_params = jax.tree.map(lambda x: jnp.tile(x, (n_chains // lead,) + (1,) * (x.ndim - 1)),
                                       init_params)
    params = start_positions(model, rng_key, input_shape, n_chains, init_params)
    return jax.vmap(init)(params)


@partial(jax.jit, static_argnames=("n_draws",))
def _empty_draws(params, n_draws):
    return jax.tree.map(lambda p: jnp.zeros((p.shape[0], n_draws, *p.shape[1:]), p.dtype), params)


@partial(jax.jit, static_argnames=("batch_size", "shuffle"), donate_argnums=(2, 3))
def _epoch(model, config, states, draws, data, rng_key, epoch, plan, temperatures, batch_size,
           shuffle):
    """One epoch of every chain. ``data.weight`` is ``(n_rows, n_chains)``: each chain's
    row weights (zero for the rows a chain holds back), and ``temperatures`` ``(n_chains,)``.
    ``draws`` None: nothing is stored (the temperature search)."""
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight, axis=0)
    schedule = step_size_schedule(config, plan)
    one_chain = partial(step, model=model, config=config, schedule=schedule,
                        data_size=data_size)

    def step_fn(key, carry, batch):
        states, draws = carry
        keys = jax.random.split(key, temperatures.shape[0])
        cycle, _ = _cycle_position(plan, states.count[0] + 1)
        adapt = states.count[0] + 1 <= plan.adapt_ends[cycle]
        states, info = jax.vmap(
            lambda k, s, w, n, t: one_chain(k, s, batch._replace(weight=w), n_eff=n,
                                            temperature=t, adapt=adapt),
        )(keys, states, batch.weight.T, n_eff, temperatures)
        if draws is not None:
            draws = _store(draws, states.params, plan, states.count[0])
        return (states, draws), info

    (states, draws), info = scan_minibatches(
        step_fn, (states, draws), data, rng_key, batch_size, shuffle
    )
    return states, draws, jnp.mean(info.loss), info.step_size[-1, 0]


@jax.jit
def _chain_loglik(model, params, X, y, rows):
    """Per-row log-likelihood of ``rows`` under each chain's current parameters:
    ``(n_chains, n_rows)``."""
    X, y = take_rows(X, rows), take_rows(y, rows)
    return jax.vmap(lambda p: model.log_likelihood(p, X, y))(params)


@partial(jax.jit, static_argnames=("size",))
def _chain_group(states, start, size):
    """Chains ``start, ..., start + size - 1`` of ``states`` (one program for every group)."""
    return jax.tree.map(lambda x: jax.lax.dynamic_slice_in_dim(x, start, size), states)


def _plan_cycles(total_steps, n_cycles, n_draws, burn_in):
    """Per cycle: ``(start, end, n_burn, kept, thin)``, keeping at most ``n_draws`` in all."""
    ends = [(c + 1) * total_steps // n_cycles for c in range(n_cycles)]
    starts = [0, *ends[:-1]]
    per_cycle = [n_draws // n_cycles + (c >= n_cycles - n_draws % n_cycles)
                 for c in range(n_cycles)]
    cycles = []
    for start, end, k in zip(starts, ends, per_cycle):
        n_burn = min(math.floor(burn_in * (end - start)), end - start - 1)
        kept = max(1, min(k, end - start - n_burn))
        cycles.append((start, end, n_burn, kept, (end - start - n_burn) // kept))
    return cycles


def save_plan(config: PSGLDConfig, total_steps: int) -> SavePlan:
    """Cycles, adaptation and kept steps for a run of ``total_steps`` steps.

    The run is split into ``n_cycles`` equal cycles (one by default). In each,
    the first ``burn_in`` share of the steps is discarded (and is where the
    preconditioner adapts); the cycle's share of the ``n_draws`` draws is kept
    evenly spaced over the rest, the last at the cycle's last step. A cycle
    with fewer steps after burn-in than its share keeps one draw per step
    (at least its last step): see :func:`kept_draws`.
    """
    n_cycles, n_draws = config.n_cycles, config.n_draws
    if n_draws < n_cycles:
        raise ValueError(
            f"PSGLD keeps n_draws={n_draws} draws per chain over n_cycles={n_cycles} cycles; "
            "keep at least one draw per cycle (raise n_draws or lower n_cycles)."
        )
    if total_steps < n_cycles:
        raise ValueError(
            f"PSGLD splits the run into n_cycles={n_cycles} cycles, but the run has only "
            f"{total_steps} steps. Raise max_iter or lower n_cycles."
        )
    cycles = _plan_cycles(total_steps, n_cycles, n_draws, float(config.burn_in))
    adapt_ends, save_steps = [], []
    for start, end, n_burn, kept, thin in cycles:
        adapt_ends.append(start + max(n_burn, 1) if config.freeze_preconditioner else end)
        save_steps.extend(end - (kept - 1 - j) * thin for j in range(kept))
    def as_int(v):  # through numpy: an eager conversion would compile a program
        return to_device(v, np.int32)

    return SavePlan(as_int(total_steps), as_int([c[1] for c in cycles]),
                    as_int(adapt_ends), as_int(save_steps))


def kept_draws(config: PSGLDConfig, total_steps: int) -> int:
    """Draws per chain a run of ``total_steps`` steps keeps: ``n_draws`` when it has room."""
    return sum(c[3] for c in _plan_cycles(total_steps, config.n_cycles, config.n_draws,
                                          float(config.burn_in)))


def epochs_for_all_draws(config: PSGLDConfig, steps_per_epoch: int, max_iter: int) -> int:
    """Smallest number of epochs whose run keeps all ``n_draws`` draws per chain."""
    epochs = max_iter
    while kept_draws(config, epochs * steps_per_epoch) < config.n_draws:
        epochs = max(epochs + 1, int(epochs * 1.1))
    lo = max_iter
    while lo < epochs:  # the smallest such count (kept draws only grow with steps)
        mid = (lo + epochs) // 2
        if kept_draws(config, mid * steps_per_epoch) >= config.n_draws:
            epochs = mid
        else:
            lo = mid + 1
    return epochs


class _TemperatureSearch:
    """``temperature="auto"``: the groups of chains, the rows they hold back, the scores.

    During the first ``n_epochs`` epochs (two thirds of burn-in) there is one
    group of ``n_chains`` chains per temperature of the ladder, all vmapped
    together. The rows are split into one fold per chain and chain ``c`` of
    every group holds fold ``c`` back, so every row is held back by exactly
    one chain of each group and scores its temperature (cross-fitting); with
    one chain, it holds back ``validation_fraction`` of the rows. The last
    quarter (at least three) of the search's epochs score a temperature: each
    held-back row's log predictive density under the states of the chain of
    its group that did not see it, at the ends of those epochs. The chosen group's chains go on; the others stop.
    """

    def __init__(self, data: Data, key, *, n_chains, n_epochs, validation_fraction, dtype):
        n_rows = data.X.shape[0]
        self.ladder = np.asarray(TEMPERATURE_LADDER, dtype=dtype)
        self.n_chains = n_chains
        self.n_groups = len(self.ladder)
        self.n_epochs = n_epochs
        self.active = n_epochs >= 1
        self.too_few_rows = n_rows * (validation_fraction if n_chains == 1 else 1.0) \
            < MIN_SCORED_ROWS
        if not self.active or self.too_few_rows:
            return
        order = np.asarray(permutation(key, n_rows))
        if n_chains == 1:
            n_val = min(n_rows - 2, max(1, round(validation_fraction * n_rows)))
            fold = np.full(n_rows, -1)
            fold[order[:n_val]] = 0
        else:
            fold = np.empty(n_rows, dtype=int)
            fold[order] = np.arange(n_rows) % n_chains
        weight = np.asarray(data.weight)
        held = fold[:, None] == np.arange(n_chains)[None, :]  # (n_rows, n_chains)
        per_chain = np.where(held, 0.0, weight[:, None])
        self.holdout_weight = to_device(np.tile(per_chain, (1, self.n_groups)),
                                        data.weight.dtype)
        self.temperatures = to_device(np.repeat(self.ladder, n_chains), dtype)
        self.fold = fold
        self.weight = weight.astype(np.float64)
        self.X, self.y = data.X, data.y
        self.rows = np.flatnonzero(fold >= 0)
        self.rows_device = to_device(self.rows, np.int32)
        self.scores = []  # per recorded epoch: (n_groups, n_scored_rows) log densities
        self.chosen = None
        self.means = {}

    def record(self, epoch, model, params):
        """After ``epoch``: score the chains' states if it is in the last quarter (at
        least three epochs) of the search. A log predictive density from few draws
        of a spread-out posterior is biased low (the log of a noisy mean), so
        warm temperatures need many states to be scored fairly."""
        if epoch < self.n_epochs - max(3, self.n_epochs // 4):
            return
        rows = self.rows
        if isinstance(self.X, HostRows):  # host rows: a chunk on the device at a time
            y = np.asarray(self.y)
            loglik = np.concatenate([
                np.asarray(_chain_loglik(model, params, X, y[rows[at]],
                                         np.arange(rows[at].size)), np.float64)
                for at, X in host_chunks(self.X, rows, HOST_CHUNK_ROWS)], axis=-1)
        else:
            loglik = np.asarray(_chain_loglik(model, params, self.X, self.y, self.rows_device),
                                np.float64)
        loglik = loglik.reshape(self.n_groups, self.n_chains, rows.size)
        # each row scored by the chain of each group that held it back
        self.scores.append(loglik[:, self.fold[rows], np.arange(rows.size)])

    def choose(self, likelihood):
        """Index of the chosen temperature's group (:func:`~.base.choose_temperature`,
        with the evidence ``evidence_needed`` asks for ``likelihood``)."""
        stack = np.stack(self.scores)  # (states, groups, rows): a mixture over the states
        per_row = np.logaddexp.reduce(stack, axis=0) - np.log(stack.shape[0])
        self.chosen, self.means = choose_temperature(
            {float(t): row for t, row in zip(self.ladder, per_row)}, self.weight[self.rows],
            evidence_needed(likelihood))
        return int(np.flatnonzero(self.ladder == self.chosen)[0])

    def group(self, states, g):
        """The chains of group ``g``."""
        return _chain_group(states, g * self.n_chains, self.n_chains)


def run(model, data: Data, config: PSGLDConfig, key, *, training: Training,
        init_params=None, validation: Data | None = None) -> InferenceResult:
    """Run ``config.n_chains`` pSGLD chains for ``training.max_iter`` epochs.

    ``config.temperature`` NaN means ``"auto"``: see the module notes.
    """
    del validation  # a sampler runs its whole budget; see PSGLD.run
    n_rows = data.X.shape[0]
    steps_per_epoch = count_batches(n_rows, training.batch_size)
    total_steps = training.max_iter * steps_per_epoch
    problems = []
    kept = kept_draws(config, total_steps)
    if kept < config.n_draws:
        needed = epochs_for_all_draws(config, steps_per_epoch, training.max_iter)
        problems.append(
            f"only {kept} of n_draws={config.n_draws} draws per chain were kept: "
            f"{training.max_iter} epochs of {steps_per_epoch} steps leave too few steps after "
            f"burn_in={float(config.burn_in):g}. max_iter={needed} would keep them all."
        )
        config = config.replace(n_draws=kept)
    plan = save_plan(config, total_steps)
    key_init, key_epochs, key_val, key_diag = split_key(key, 4)
    dtype = jnp.result_type(float)
    input_shape = data.X.shape[1:]
    search = None
    if is_nan(config.temperature):  # "auto"
        # the burn-in of the first cycle (the whole run's, with one cycle): no draw is
        # kept before it ends
        burn_epochs = math.floor(float(config.burn_in) * training.max_iter / config.n_cycles)
        search = _TemperatureSearch(
            data, key_val, n_chains=config.n_chains, n_epochs=(2 * burn_epochs) // 3,
            validation_fraction=training.validation_fraction, dtype=dtype)
        if search.active and search.too_few_rows:
            search = None  # too few rows to tell temperatures apart: 1
        elif not search.active:
            problems.append(
                f"temperature='auto' compares temperatures in the first two thirds of "
                f"burn-in, and {training.max_iter} epochs at burn_in={float(config.burn_in):g} "
                f"leave none; the chains ran at temperature 1. Raise max_iter to "
                f"{math.ceil(3 / (2 * float(config.burn_in))) if float(config.burn_in) else 'more'}"
                " at least, or set a temperature."
            )
            search = None
    temperature = np.asarray(1.0 if is_nan(config.temperature)
                             else config.temperature, dtype=dtype)

    monitor = EpochMonitor(training, stopping=False)
    save_steps = np.asarray(plan.save_steps)
    advice = (
        f"Lower step_size (now {float(config.step_size):g}), raise alpha, or scale the "
        "inputs (e.g. with StandardScaler)."
    )

    def epoch_fn(epoch_data, temperatures, sharding):
        """One compiled epoch over ``(states, draws, step size)``."""
        if sharding[0] is not None:
            epoch_data = jax.device_put(epoch_data, sharding[1])
            temperatures = jax.device_put(temperatures, sharding[0])

        def one(carry, epoch):
            states, draws, _ = carry
            states, draws, loss, h = _epoch(
                model, config, states, draws, epoch_data, key_epochs, epoch, plan,
                temperatures, training.batch_size, training.shuffle,
            )
            return (states, draws, h), loss

        return one

    def describe(carry, epoch):
        n_kept = int(np.searchsorted(save_steps, (epoch + 1) * steps_per_epoch, side="right"))
        return f", step size = {float(carry[2]):.3g}, draws kept = {n_kept}"

    first = 0
    if search is not None:
        n_all = search.n_groups * config.n_chains
        sharding = chain_sharding(n_all)
        states = _init(model, key_init, input_shape, init_params, n_all)
        if sharding[0] is not None:
            states = jax.device_put(states, sharding[0])
        holdout = data._replace(weight=search.holdout_weight)
        (states, _, _), _ = run_epochs(
            epoch_fn(holdout, search.temperatures, sharding), (states, None, 0.0),
            range(search.n_epochs), strategy="psgld", advice=advice, monitor=monitor,
            describe=describe, on_epoch=lambda carry, epoch: search.record(
                epoch, model, carry[0].params))
        states = jax.device_get(search.group(states, search.choose(model.likelihood)))
        temperature = np.asarray(search.chosen, dtype=dtype)
        if training.verbose:
            print(f"temperature = {search.chosen:g} (chosen by cross-fitting: "
                  + ", ".join(f"{t:g}: {v:.4f}" for t, v in search.means.items()) + ")")
        first = search.n_epochs
    else:
        states = _init(model, key_init, input_shape, init_params, config.n_chains)

    sharding = chain_sharding(config.n_chains)
    draws = _empty_draws(states.params, config.n_draws)
    if sharding[0] is not None:
        states, draws = jax.device_put((states, draws), sharding[0])
    # built on the host: eager device ops would each compile a program
    all_rows = data._replace(weight=to_device(np.repeat(
        np.asarray(data.weight)[:, None], config.n_chains, axis=1)))
    temperatures = to_device(np.full(config.n_chains, temperature))
    (states, draws, _), _ = run_epochs(
        epoch_fn(all_rows, temperatures, sharding), (states, draws, 0.0),
        range(first, training.max_iter), strategy="psgld", advice=advice, monitor=monitor,
        describe=describe)
    check_finite(draws, strategy="psgld", advice=advice)
    draws = jax.device_get(draws)
    diagnostics_ = sample_diagnostics(model, draws, data, key_diag)
    diagnostics_.update({
        "n_steps": total_steps,
        "n_cycles": config.n_cycles,
        "save_steps": save_steps,
        "n_devices": 1 if sharding[0] is None else len(sharding[0].mesh.devices.flat),
        "temperature": float(temperature),
    })
    if search is not None:
        diagnostics_["temperature_scores"] = {str(t): v for t, v in search.means.items()}
    problems += diagnostics.prediction_problems(diagnostics_, linear=model.network.is_linear,
                                                advice=(
        f"Raise max_iter (now {training.max_iter}) so that the chains run longer"
        + (", or raise burn_in" if float(config.burn_in) < 0.5 else "") + "."
    ))
    if problems:
        warnings.warn("PSGLD (inference='psgld'): " + " ".join(
            p[0].upper() + p[1:] for p in problems), ConvergenceWarning)
    return InferenceResult(
        posterior=SamplePosterior(draws),
        loss_curve=monitor.loss_curve,
        n_iter=training.max_iter,
        diagnostics=diagnostics_,
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
        (shared out between the cycles). A run with fewer steps after burn-in
        keeps fewer and warns with the ``max_iter`` that would keep them all.
    n_cycles : int, default=1
        Cyclical step size (cSG-MCMC, Zhang et al., 2020): split the run into
        this many cycles whose step size falls from ``step_size`` to
        ``step_size_final`` along a cosine; each cycle starts with large steps
        that can leave the current mode, so one chain visits several modes.
        Unlike Zhang et al., the noise stays on in every stage, so every step
        is a Langevin step.
    n_chains : int, default=4
        Independent chains, vmapped (and sharded over devices when several are
        visible). Several chains make the R-hat diagnostics meaningful and
        average over several modes of the network's posterior.
    temperature : float or "auto", default="auto"
        Posterior temperature ``T``: the chains target ``p(theta | data)^(1/T)``.
        "auto" chooses it from ``TEMPERATURE_LADDER`` (1, 1/4, 1/16, 1/64) by
        cross-fitting during the first two thirds of burn-in: the warmest
        temperature whose held-back log predictive density is within two
        standard errors of the best, one for class labels (see the module
        notes); with fewer than 50
        rows to score, 1. The chosen value is the fitted estimator's
        ``temperature_``. A float fixes it; 1 is the Bayes posterior.
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
        spread on a linear-Gaussian model. With a preconditioner
        that stays put once the chain is stationary, the dynamics target the
        posterior up to the step-size and minibatch errors.

    Notes
    -----
    A sampler runs its whole budget of ``max_iter`` epochs: ``tol`` and
    ``n_iter_no_change`` do not apply and ``early_stopping=True`` is refused.
    The fitted estimator reports split R-hat and effective sample sizes on
    the parameters (``rhat_``, ``ess_``, ``max_rhat_``, ``min_ess_``) and on
    the per-row log-likelihood of up to 256 training rows
    (``prediction_rhat_``, ``prediction_ess_``, ``max_prediction_rhat_``,
    ``min_prediction_ess_``), and warns (``ConvergenceWarning``) when the
    chains disagree on those predictions. In a network with hidden layers,
    chains settle in different modes (hidden units permuted), so parameter
    R-hat is large even when the chains agree on every prediction: the
    predictions are what to watch.
    """

    name = "psgld"
    streaming = "draws"

    #: Diagnostics the estimators also set as fitted attributes (``rhat_``, ...).
    fitted_diagnostics = ("rhat", "ess", "max_rhat", "min_ess", "prediction_rhat",
                          "prediction_ess", "max_prediction_rhat", "min_prediction_ess",
                          "temperature")

    _parameter_constraints = {
        "step_size": [Interval(Real, 0, None, closed="neither"), None],
        "step_size_final": [Interval(Real, 0, None, closed="neither"), None],
        "step_size_power": [Interval(Real, 0, None, closed="neither")],
        "burn_in": [Interval(Real, 0, 1, closed="left")],
        "n_draws": [Interval(Integral, 1, None, closed="left")],
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "n_cycles": [Interval(Integral, 1, None, closed="left")],
        "temperature": [Interval(Real, 0, None, closed="neither"), StrOptions({"auto"})],
        "rms_decay": [Interval(Real, 0, 1, closed="left")],
        "eps": [Interval(Real, 0, None, closed="neither")],
        "freeze_preconditioner": ["boolean"],
    }

    def __init__(self, *, step_size=None, step_size_final=None, step_size_power=0.33,
                 burn_in=0.5, n_draws=20, n_chains=4, n_cycles=1, temperature="auto",
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

    def config(self, model, training: Training) -> PSGLDConfig:
        first = training.learning_rate if self.step_size is None else self.step_size
        if self.step_size_final is not None:
            last = self.step_size_final
        else:
            last = 0.0 if self.n_cycles > 1 else first
        temperature = math.nan if self.temperature == "auto" else self.temperature
        dtype = jnp.result_type(float)
        return PSGLDConfig(
            *(to_device(v, dtype) for v in (
                first, last, self.step_size_power, temperature, self.rms_decay, self.eps,
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
        warn_unused_optimizer(
            training, "psgld",
            "pSGLD samples with its own RMSprop-preconditioned Langevin steps (their size "
            "is learning_rate_init or step_size, their preconditioner rms_decay and eps); "
            "it runs no optimiser.")
        return run(model, data, self.config(model, training), key, training=training,
                   init_params=init_params)
