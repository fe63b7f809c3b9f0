"""The No-U-Turn Sampler (NUTS; Hoffman and Gelman, 2014), from numpyro.

Full-batch Hamiltonian Monte Carlo on the raveled parameter vector: the
potential energy is ``-(log prior + full-data log-likelihood)``, the Gaussian
noise scale of regression included with its half-Cauchy prior (it lives in the
parameter pytree like every other parameter). The transition kernel, the
windowed step-size and mass-matrix adaptation and the diagnostics are
numpyro's (``numpyro.infer.hmc.hmc(..., algo="NUTS")`` and
``numpyro.diagnostics``); this module only drives them:

- :func:`init` and :func:`step` wrap numpyro's ``init_kernel`` and
  ``sample_kernel`` for one chain, with the PRNG key an explicit argument;
- :func:`_transitions` is one jitted program: it starts the chains and runs
  transitions ``start`` to ``stop`` of warmup and sampling, a loop over the
  chains' transitions, and the potential is built inside the trace from the
  model and the data passed as pytree arguments. Unlike
  ``numpyro.infer.MCMC``, whose compiled program is cached on the driver
  object, a second fit on data of the same shape compiles nothing.
  :func:`_sample` calls it once per segment of the run (short enough that
  the memory a program holds while it runs stays bounded, see
  :func:`_stops`), and with ``verbose`` at each tenth of warmup and of
  sampling too, printing progress in between: the bounds are traced values,
  so the segments reuse the one program, and the draws are the same bit for
  bit;
- :func:`_run_chains` runs the chains either vmapped in one program
  (``chain_method="vectorized"``, numpyro's name; the chain axis sharded over
  the devices when several are visible) or each in its own unbatched program,
  the programs launched from one thread per chain so that a CPU's cores run
  them at once (``"parallel"``, the default on a CPU). On the numpyro
  tutorial's network the parallel chains take about half the time of the
  vectorized ones on 2 cores: XLA's CPU backend runs a batched product of
  small matrices (the vmapped gradient) 2.5 times slower than one unbatched
  product, and vmapped chains wait for each other's longest trajectory;
- :func:`diagnose` turns the draws into split R-hat, effective sample sizes,
  divergences, step sizes and tree depths, and :func:`convergence_problems`
  into the text of the ``ConvergenceWarning``.

Chains start from a short MAP run each (``init="map"``, each from its own
network initialisation, so that chains stuck in different modes show up in
R-hat), from numpyro's ``init_to_uniform`` (``"uniform"``: every parameter
uniform in ``[-2, 2]``) or from the network's own initialisation
(``"network"``). With several devices the chain axis is sharded over them.
"""

import os
import time
import warnings
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from functools import partial
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin
from numpyro.infer.hmc import HMCState, hmc
from sklearn.exceptions import ConvergenceWarning

from ..posterior import SamplePosterior
from ..utils._io import serializable
from ..utils._sklearn_compat import Interval, StrOptions
from . import map as map_inference
from .base import (
    BaseStrategy,
    Data,
    InferenceResult,
    Training,
    chain_sharding,
    check_finite,
    parameter_names,
    prediction_diagnostics,
    start_positions,
    unravel_numpy,
    warn_unused_optimizer,
)

__all__ = [
    "NUTS",
    "NUTSConfig",
    "NUTSInfo",
    "NUTSState",
    "convergence_problems",
    "diagnose",
    "estimate_cost",
    "init",
    "run",
    "step",
]

#: numpyro's sampler state for one chain: the position ``z`` is the raveled
#: parameter vector; ``adapt_state`` holds the step size and mass matrix.
NUTSState = HMCState


class NUTSInfo(NamedTuple):
    """Per-transition diagnostics (not carried to the next step)."""

    potential_energy: jax.Array  # negative log posterior at the new position
    diverging: jax.Array  # the trajectory hit numpyro's energy-error threshold
    num_steps: jax.Array  # leapfrog steps (gradient evaluations) of the trajectory
    accept_prob: jax.Array  # mean Metropolis acceptance over the trajectory
    step_size: jax.Array  # step size used by this transition


@struct.dataclass
class NUTSConfig:
    """Frozen settings of ``run``.

    Numeric settings are pytree leaves (new values reuse the compiled
    program); counts, tree depth and the mass-matrix structure fix the program
    and are static.
    """

    step_size: jax.Array  # initial step size of the dual-averaging adaptation
    target_accept_prob: jax.Array
    n_chains: int = struct.field(pytree_node=False, default=4)
    n_warmup: int = struct.field(pytree_node=False, default=500)
    n_draws: int = struct.field(pytree_node=False, default=500)
    thinning: int = struct.field(pytree_node=False, default=1)
    max_tree_depth: int = struct.field(pytree_node=False, default=10)
    dense_mass: bool = struct.field(pytree_node=False, default=False)


def _potential(model, data: Data, unravel):
    """Potential energy of a raveled parameter vector: minus the full-data log posterior."""
    data_size = data.X.shape[0]  # logdensity's mean times n rows is the full weighted sum
    model = model.joint()  # the gradient of the density the Metropolis test evaluates

    def potential(z):
        return -model.logdensity(unravel(z), data, data_size)

    return potential


def init(rng_key, position, *, kernels, config: NUTSConfig) -> NUTSState:
    """Start one chain at ``position`` (a raveled parameter vector)."""
    init_kernel, _ = kernels
    return init_kernel(
        position, config.n_warmup, step_size=config.step_size,
        dense_mass=config.dense_mass, target_accept_prob=config.target_accept_prob,
        max_tree_depth=config.max_tree_depth, rng_key=rng_key,
    )


def step(rng_key, state: NUTSState, *, kernels) -> tuple[NUTSState, NUTSInfo]:
    """One NUTS transition of one chain (adapting while ``state.i < n_warmup``)."""
    _, sample_kernel = kernels
    step_size = state.adapt_state.step_size
    state = sample_kernel(state._replace(rng_key=rng_key))
    info = NUTSInfo(state.potential_energy, state.diverging, state.num_steps,
                    state.accept_prob, step_size)
    return state, info


@jax.jit
def _ravel_chains(positions):
    return jax.vmap(lambda p: ravel_pytree(p)[0])(positions)


@partial(jax.jit, static_argnames=("n_chains",))
def _uniform_positions(rng_key, template, n_chains):
    """numpyro's ``init_to_uniform``: every parameter uniform in ``[-2, 2]``."""
    flat = ravel_pytree(template)[0]
    return jax.random.uniform(rng_key, (n_chains, flat.shape[0]), flat.dtype, -2.0, 2.0)


def _over_chains(fn, n_chains):
    """``fn`` mapped over a leading chain axis: vmapped, or called directly for one chain.

    One chain skips ``vmap``: unbatched while loops compile in about half the
    time and run without the masking that keeps vmapped chains in step.
    """
    if n_chains > 1:
        return jax.vmap(fn)

    def single(*args):
        out = fn(*jax.tree.map(lambda x: x[0], args))
        return jax.tree.map(lambda x: x[None], out)

    return single


def _kernels(model, data: Data, template):
    """numpyro's NUTS ``(init_kernel, sample_kernel)`` for the model's potential on ``data``."""
    _, unravel = ravel_pytree(template)
    return hmc(potential_fn=_potential(model, data, unravel), algo="NUTS")


def _initial_states(model, data: Data, config: NUTSConfig, rng_key, positions, template):
    """numpyro's kernels and the chains' initial states (``init`` sets the kernels up)."""
    kernels = _kernels(model, data, template)
    states = _over_chains(partial(init, kernels=kernels, config=config), config.n_chains)(
        jax.random.split(jax.random.split(rng_key)[0], config.n_chains), positions
    )
    return kernels, states


def _constrain(carry, chains):
    """Pin the carry's chain axis to ``chains`` (a sharding, or None on one device).

    Both programs that return a carry do, so that every call of
    :func:`_transitions` sees the same input shardings and compiles once.
    """
    if chains is None:
        return carry
    states, kept, info = carry
    second = jax.sharding.NamedSharding(chains.mesh, jax.sharding.PartitionSpec(None, "chain"))
    constrain = jax.lax.with_sharding_constraint
    return constrain(states, chains), constrain(kept, second), constrain(info, second)


@partial(jax.jit, static_argnames=("chains",))
def _start(model, data: Data, config: NUTSConfig, rng_key, positions, template, chains=None):
    """The carry of the first :func:`_transitions` call: placeholders shaped like the states
    (``_transitions`` starts the chains in the same compiled program as their
    transitions, as one scan did), zero buffers for the kept draws
    ``(n_draws, n_chains, n_params)`` and for the :class:`NUTSInfo` of every
    transition (leading axes: transition, chain)."""
    states = jax.eval_shape(
        lambda: _initial_states(model, data, config, rng_key, positions, template)[1])

    def placeholder(x):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            return jnp.broadcast_to(rng_key, x.shape)
        return jnp.zeros(x.shape, x.dtype)

    states = jax.tree.map(placeholder, states)
    n_iter = config.n_warmup + config.n_draws * config.thinning
    info = NUTSInfo(states.potential_energy, states.diverging, states.num_steps,
                    states.accept_prob, states.adapt_state.step_size)  # what step returns
    info = jax.tree.map(lambda x: jnp.zeros((n_iter, *x.shape), x.dtype), info)
    kept = jnp.zeros((config.n_draws, *positions.shape), positions.dtype)
    return _constrain((states, kept, info), chains)


@partial(jax.jit, static_argnames=("chains",), donate_argnames=("carry",))
def _transitions(model, data: Data, config: NUTSConfig, rng_key, positions, template, carry,
                 start, stop, chains=None):
    """Transitions ``start, ..., stop - 1`` of all chains: one compiled program for any bounds.

    ``carry``: ``(states, kept, info)`` from the previous call, or from
    :func:`_start` when ``start`` is 0 (the chains then start at
    ``positions``, with the keys ``split(split(rng_key)[0], n_chains)``);
    donated, so the buffers are updated in place. Transition ``t`` uses the
    key ``split(split(rng_key)[1], n_iter)[t]`` whatever the bounds, so
    running ``0..n_iter`` in one call or in segments gives the same draws, bit
    for bit. Warmup and sampling are one loop (numpyro's kernel switches
    adaptation off by itself after ``n_warmup`` transitions), so the kernel is
    compiled once, not twice. Returns the new carry and, for ``verbose``, each
    chain's step size and its divergences since the start of the phase
    (warmup or sampling) that ``stop`` is in. ``chains``: the sharding of the
    chain axis over several devices, or None.
    """
    # numpyro's sample_kernel uses what init_kernel sets up (the adaptation, the
    # integrator, the tree depth) in the same trace: the chains start here
    kernels, fresh = _initial_states(model, data, config, rng_key, positions, template)
    states, kept, info = carry
    states = jax.lax.cond(start == 0, lambda: fresh, lambda: states)
    n_chains, n_draws = config.n_chains, config.n_draws
    n_iter = config.n_warmup + n_draws * config.thinning
    chain_step = _over_chains(partial(step, kernels=kernels), n_chains)
    keys = jax.random.split(jax.random.split(rng_key)[1], n_iter)

    def transition(t, carry):
        states, kept, info = carry
        states, step_info = chain_step(jax.random.split(keys[t], n_chains), states)
        info = jax.tree.map(lambda buf, x: buf.at[t].set(x), info, step_info)
        done = t + 1 - config.n_warmup  # transitions after warmup, this one included
        slot = jnp.where((done > 0) & (done % config.thinning == 0),
                         done // config.thinning - 1, n_draws)  # out of range: dropped
        kept = kept.at[slot].set(states.z, mode="drop")
        return states, kept, info

    carry = _constrain(jax.lax.fori_loop(start, stop, transition, (states, kept, info)), chains)
    t = jnp.arange(n_iter)[:, None]
    phase_start = jnp.where(stop > config.n_warmup, config.n_warmup, 0)
    in_phase = (t >= phase_start) & (t < stop)
    divergences = jnp.sum(carry[2].diverging & in_phase, axis=0)
    return carry, (carry[0].adapt_state.step_size, divergences)


#: Bytes of host memory that one chain's run may hold per (row x parameter x
#: transition) until its program returns: XLA:CPU keeps what a running program
#: allocates inside its loops until the program ends when several run at once
#: (the parallel chains). Measured on concrete (824 rows, 8-50-1): about 8 MB
#: per transition and chain, so a 4 x (2,000 + 5,000) run in one call each
#: grew past 24 GB; in segments it stays flat.
_BYTES_PER_ROW_PARAM = 20
#: Host memory one chain's segment may hold.
_SEGMENT_BYTES = 64e6
#: Longest segment, in transitions, whatever the size of the model.
_MAX_SEGMENT = 100


def _stops(config: NUTSConfig, n_rows: int, n_params: int, progress=None) -> list[int]:
    """Transition counts at which :func:`_transitions` calls end (the last one: all).

    The run is cut into segments short enough that the memory a chain's
    program holds while it runs stays under ``_SEGMENT_BYTES`` (see
    ``_BYTES_PER_ROW_PARAM``), and at ``progress``'s checkpoints. Segments
    reuse one compiled program and give the same draws bit for bit; each
    costs one dispatch, nothing measurable beside a NUTS transition.
    """
    n_iter = config.n_warmup + config.n_draws * config.thinning
    per_transition = _BYTES_PER_ROW_PARAM * max(n_rows, 1) * max(n_params, 1)
    length = int(np.clip(_SEGMENT_BYTES // per_transition, 1, _MAX_SEGMENT))
    stops = set(range(length, n_iter, length)) | {n_iter}
    if progress is not None:
        stops |= set(progress.checkpoints)
    return sorted(c for c in stops if 0 < c <= n_iter)


def _sample(model, data: Data, config: NUTSConfig, rng_key, positions, template,
            stops, progress=None, chains=None):
    """Warm up and sample all chains.

    ``positions``: raveled starts, ``(n_chains, n_params)``; ``template``: one
    parameter pytree (its structure and shapes give the unravelling).
    Returns the kept positions ``(n_chains, n_draws, n_params)``, the
    :class:`NUTSInfo` of every transition (leading axes: transition, chain;
    warmup first) and the final states. The transitions run in the segments
    that end at ``stops`` (see :func:`_stops`); those at a :class:`_Progress`
    checkpoint are reported to it as they end (the same compiled program and
    the same draws). ``chains``: the sharding of the chain axis, or None.
    """
    carry = _start(model, data, config, rng_key, positions, template, chains)
    start = 0
    for stop in stops:
        carry, (step_size, divergences) = _transitions(model, data, config, rng_key, positions,
                                                       template, carry, start, stop, chains)
        if progress is not None and stop in progress.checkpoints:
            progress.report(stop, np.asarray(step_size), np.asarray(divergences))
        start = stop
    states, kept, info = carry
    return np.swapaxes(jax.device_get(kept), 0, 1), info, states


class _Progress:
    """``verbose``: one line at about every 10% of warmup and of sampling.

    The chains report each checkpoint (a transition count) as they pass it,
    all at once (vectorized) or one by one (parallel); a line is printed when
    every chain has passed it, with every chain's step size and divergences at
    that point. The time left is the mean time per transition since the first
    line (compiling is behind it) times the transitions left.
    """

    def __init__(self, config: NUTSConfig, n_chains: int):
        self.n_warmup = config.n_warmup
        self.n_sampling = config.n_draws * config.thinning
        self.n_chains = n_chains
        warmup = [round(self.n_warmup * j / 10) for j in range(1, 11)]
        sampling = [self.n_warmup + round(self.n_sampling * j / 10) for j in range(1, 11)]
        self.checkpoints = sorted({c for c in warmup + sampling if c > 0})
        self._reported = {c: [] for c in self.checkpoints}
        self._began = time.perf_counter()
        self._first = None  # (time, transitions) at the first line: compiling is behind

    def report(self, checkpoint, step_size, divergences):
        """Chains (``len(step_size)`` of them) have run ``checkpoint`` transitions."""
        reported = self._reported[checkpoint]
        reported.append((step_size, divergences))
        if sum(len(s) for s, _ in reported) == self.n_chains:
            self._print(checkpoint, np.concatenate([s for s, _ in reported]),
                        int(sum(np.sum(d) for _, d in reported)))

    def _print(self, done, step_size, divergences):
        now = time.perf_counter()
        warmup = done <= self.n_warmup
        phase, count, total = (("warmup", done, self.n_warmup) if warmup else
                               ("sampling", done - self.n_warmup, self.n_sampling))
        left = ""
        if self._first is None:
            self._first = (now, done)
        elif done > self._first[1]:  # the mean time per transition since the first line
            per = (now - self._first[0]) / (done - self._first[1])
            left = f", about {per * (self.n_warmup + self.n_sampling - done):.0f} s left"
        low, high = float(np.min(step_size)), float(np.max(step_size))
        sizes = f"step size {low:.3g}" if f"{low:.3g}" == f"{high:.3g}" else \
            f"step sizes {low:.3g} to {high:.3g}"
        diverged = f"{divergences} divergence" + ("" if divergences == 1 else "s")
        print(f"NUTS {phase}: {count}/{total} transitions ({100 * count / total:.0f}%), "
              f"{now - self._began:.1f} s elapsed{left}, {sizes}, {diverged}", flush=True)


CHAIN_METHODS = ("auto", "parallel", "vectorized")


def _resolve_chain_method(chain_method: str, n_chains: int) -> str:
    """``"auto"``: ``"parallel"`` on a CPU backend, ``"vectorized"`` on accelerators."""
    if chain_method not in CHAIN_METHODS:
        raise ValueError(f"chain_method must be one of {CHAIN_METHODS}, got {chain_method!r}.")
    if chain_method == "auto":
        return "parallel" if jax.default_backend() == "cpu" and n_chains > 1 else "vectorized"
    return chain_method


def _run_chains(model, data: Data, config: NUTSConfig, rng_key, positions, template,
                chain_method: str, verbose=0):
    """All chains' draws ``(n_chains, n_draws, n_params)`` and info ``(transitions, n_chains)``.

    ``"vectorized"``: one program, the chains vmapped, the chain axis sharded
    over the visible devices. ``"parallel"``: chain ``i`` runs alone (key
    ``split(rng_key, n_chains)[i]``), on device ``i % n_devices``, launched from
    its own thread (at most one per CPU core); each chain's draws depend only
    on its key and start, so the result does not depend on the scheduling.
    With ``verbose`` the chains run in segments and report progress (the same
    draws). Returns ``(draws, info, n_devices)``.
    """
    n_chains = config.n_chains
    progress = _Progress(config, n_chains) if verbose else None
    stops = _stops(config, int(data.X.shape[0]), int(positions.shape[-1]), progress)
    if chain_method == "vectorized":
        chains, replicated = chain_sharding(n_chains)
        if chains is not None:
            positions = jax.device_put(positions, chains)
            data = jax.device_put(data, replicated)
        draws, info, _ = _sample(model, data, config, rng_key, positions, template, stops,
                                 progress, chains)
        return draws, info, 1 if chains is None else len(chains.mesh.devices.flat)

    one_chain = config.replace(n_chains=1)
    keys = jax.random.split(rng_key, n_chains)
    devices = jax.devices()[: min(n_chains, jax.device_count())]
    on_device = {d: jax.device_put(data, d) for d in devices}
    carries = [None] * n_chains

    def segment(i, k):
        """Chain ``i``'s transitions up to ``stops[k]``, on its device, in a worker thread."""
        device = devices[i % len(devices)]
        args = (model, on_device[device], one_chain,
                *jax.device_put((keys[i], positions[i:i + 1]), device), template)
        if k == 0:
            carries[i] = _start(*args)
        carries[i], (step_size, divergences) = _transitions(
            *args, carries[i], stops[k - 1] if k else 0, stops[k])
        return i, k, np.asarray(step_size), np.asarray(divergences)  # waits for the device

    # the main thread queues each chain's next segment as its last one ends: the
    # chains take turns on the workers (fewer than the chains on a small CPU), so
    # all of them pass each checkpoint at about the same time
    with ThreadPoolExecutor(max_workers=min(n_chains, os.cpu_count() or 1)) as pool:
        pending = {pool.submit(segment, i, 0) for i in range(n_chains)}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                i, k, step_size, divergences = future.result()
                if progress is not None and stops[k] in progress.checkpoints:
                    progress.report(stops[k], step_size, divergences)
                if k + 1 < len(stops):
                    pending.add(pool.submit(segment, i, k + 1))
    kept, info = zip(*jax.device_get([(kept, info) for _, kept, info in carries]))
    draws = np.concatenate([np.swapaxes(x, 0, 1) for x in kept], axis=0)
    info = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1), *info)
    return draws, info, len(devices)


def estimate_cost(n_rows: int, n_params: int, config: NUTSConfig) -> float:
    """Upper bound on the work of a run, in (row x parameter x gradient evaluation) units.

    A gradient of the full-data potential costs about ``n_rows * n_params``
    multiply-adds (times a small constant); each NUTS transition takes at most
    ``2**max_tree_depth - 1`` of them.
    """
    iterations = config.n_warmup + config.n_draws * config.thinning
    return float(config.n_chains) * iterations * (2**config.max_tree_depth - 1) * n_rows * n_params


def diagnose(draws, warmup_info: NUTSInfo, draw_info: NUTSInfo, template,
             max_tree_depth: int) -> dict:
    """Convergence diagnostics of a run, as plain numpy values.

    ``draws``: raveled, ``(n_chains, n_draws, n_params)``. R-hat is numpyro's
    split Gelman-Rubin statistic and the effective sample size numpyro's
    (Stan's) estimator over all chains, per parameter (a pytree shaped like the
    parameters) and the worst of them. Tree depth is ``floor(log2(steps)) + 1``,
    as numpyro reports it.
    """
    draws = np.asarray(draws, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):  # constant draws: inf/NaN, not noise
        rhat = np.asarray(split_gelman_rubin(draws))
        ess = np.asarray(effective_sample_size(draws))
    # NaN comes from draws that never moved (every transition rejected): the worst case
    rhat = np.where(np.isnan(rhat), np.inf, rhat)
    ess = np.where(np.isnan(ess), 0.0, ess)
    diverging = np.asarray(draw_info.diverging)  # (iterations, n_chains)
    num_steps = np.asarray(draw_info.num_steps)
    depth = np.floor(np.log2(np.maximum(num_steps, 1))).astype(np.int64) + 1
    worst = int(np.argmax(rhat))
    names = parameter_names(template)
    return {
        "rhat": unravel_numpy(rhat, template),
        "ess": unravel_numpy(ess, template),
        "max_rhat": float(np.max(rhat)),
        "max_rhat_parameter": names[worst],
        "min_ess": float(np.min(ess)),
        "min_ess_parameter": names[int(np.argmin(ess))],
        "n_divergences": int(diverging.sum()),
        "divergences_per_chain": diverging.sum(axis=0).astype(np.int64),
        "n_warmup_divergences": int(np.asarray(warmup_info.diverging).sum()),
        "step_size": np.asarray(draw_info.step_size[-1], dtype=np.float64),
        "mean_tree_depth": depth.mean(axis=0),
        # a full tree of depth d takes 2**d - 1 steps: it stopped at the limit, not a U-turn
        "max_tree_depth_hits": (num_steps >= 2**max_tree_depth - 1).sum(axis=0).astype(np.int64),
        "accept_prob": np.asarray(draw_info.accept_prob, dtype=np.float64).mean(axis=0),
        "n_grad_evals": int(np.asarray(warmup_info.num_steps).sum() + num_steps.sum()),
    }


#: The thresholds of the ConvergenceWarning: R-hat (Vehtari et al., 2021) and
#: the smallest effective sample size per chain (Stan's rule of thumb).
RHAT_THRESHOLD = 1.01
ESS_PER_CHAIN = 100


def convergence_problems(diagnostics: dict, config: NUTSConfig) -> list[str]:
    """Sentences naming what went wrong and what to change; empty when all is well."""
    d = diagnostics
    n_draws = config.n_chains * config.n_draws
    problems = []
    if d["n_divergences"]:
        problems.append(
            f"{d['n_divergences']} of {n_draws * config.thinning} transitions after warmup "
            "diverged, so the draws may miss parts of the posterior. Raise target_accept_prob "
            f"(now {float(config.target_accept_prob):g}, e.g. to 0.95), raise alpha, or scale "
            "the inputs."
        )
    if d["max_rhat"] > RHAT_THRESHOLD:
        problems.append(
            f"The largest R-hat is {d['max_rhat']:.3f} > {RHAT_THRESHOLD} "
            f"({d['max_rhat_parameter']}): the chains do not agree. Raise n_warmup and "
            "n_draws; if chains sit in different modes of the network's posterior, "
            "more draws will not help, and the predictive may still be fine."
        )
    if d["min_ess"] < ESS_PER_CHAIN * config.n_chains:
        problems.append(
            f"The smallest effective sample size is {d['min_ess']:.0f} "
            f"({d['min_ess_parameter']}), below {ESS_PER_CHAIN} per chain. Raise n_draws "
            "or n_chains."
        )
    hits = int(np.sum(d["max_tree_depth_hits"]))
    if hits > 0.1 * n_draws * config.thinning:
        problems.append(
            f"{hits} transitions stopped at max_tree_depth={config.max_tree_depth} before "
            "making a U-turn: raise max_tree_depth."
        )
    return problems


def _map_starts(model, data: Data, key, training: Training, n_chains: int):
    """One short MAP run per chain, each from its own network initialisation."""
    # the stopping rule, not a budget of epochs, ends this run: Adam as scikit-learn's
    config = map_inference.MAP(learning_rate_schedule="constant").config(model, training)
    starts = []
    for chain_key in jax.random.split(key, n_chains):
        with warnings.catch_warnings():
            # an unconverged optimiser is still a fine place to start warmup
            warnings.simplefilter("ignore", ConvergenceWarning)
            result = map_inference.run(model, data, config, chain_key, training=training)
        starts.append(jax.tree.map(lambda x: x[0, 0], result.posterior.draws))
    return jax.tree.map(lambda *xs: np.stack(xs), *starts)


def run(model, data: Data, config: NUTSConfig, key, *, training: Training, init="map",
        init_params=None, max_cost=1e12, chain_method="auto",
        validation: Data | None = None) -> InferenceResult:
    """Run ``config.n_chains`` NUTS chains on all rows of ``data``."""
    del validation  # a sampler runs its whole budget; see NUTS.run
    chain_method = _resolve_chain_method(chain_method, config.n_chains)
    key_start, key_sample = jax.random.split(key)
    key_diag = jax.random.fold_in(key, 3)
    input_shape = data.X.shape[1:]
    template = jax.eval_shape(lambda: model.init(jax.random.key(0), input_shape))
    n_params = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(template))
    n_rows = int(data.X.shape[0])
    cost = estimate_cost(n_rows, n_params, config)
    if cost > max_cost:
        raise ValueError(
            f"NUTS is full-batch: this run may take up to {cost:.2g} row x parameter x "
            f"gradient evaluations ({n_rows} rows, {n_params} parameters, "
            f"{config.n_chains} chains x {config.n_warmup + config.n_draws * config.thinning} "
            f"iterations x up to {2**config.max_tree_depth - 1} gradients each), above "
            f"max_cost={max_cost:.2g}. Use inference='psgld' or 'vi' for data or networks of "
            "this size, lower n_draws, n_warmup or max_tree_depth, or raise max_cost."
        )
    template = jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), template)

    if init_params is not None:
        starts = start_positions(model, key_start, input_shape, config.n_chains, init_params)
    elif init == "map":
        starts = _map_starts(model, data, key_start, training, config.n_chains)
    elif init == "network":
        starts = start_positions(model, key_start, input_shape, config.n_chains)
    if init == "uniform" and init_params is None:
        positions = _uniform_positions(key_start, template, config.n_chains)
    else:
        positions = _ravel_chains(starts)

    draws, info, n_devices = _run_chains(model, data, config, key_sample, positions, template,
                                         chain_method, verbose=training.verbose)
    draws = np.asarray(jax.device_get(draws))
    check_finite(draws, strategy="nuts", advice=(
        "Raise target_accept_prob, raise alpha, or scale the inputs (e.g. with StandardScaler)."
    ))
    info = jax.device_get(info)
    warmup_info = jax.tree.map(lambda x: x[: config.n_warmup], info)
    draw_info = jax.tree.map(lambda x: x[config.n_warmup :], info)
    diagnostics = diagnose(draws, warmup_info, draw_info, template, config.max_tree_depth)
    diagnostics.update(prediction_diagnostics(
        model, unravel_numpy(draws, template), data, key_diag))
    diagnostics["n_devices"] = n_devices
    diagnostics["chain_method"] = chain_method
    diagnostics["init"] = "warm_start" if init_params is not None else init

    n_eff = float(np.sum(np.asarray(data.weight)))
    loss_curve = [float(v) for v in np.asarray(info.potential_energy).mean(axis=1) / n_eff]
    if training.verbose:
        _report(diagnostics, loss_curve, config)
    problems = convergence_problems(diagnostics, config)
    if problems:
        warnings.warn("NUTS: " + " ".join(problems), ConvergenceWarning)
    n_iter = config.n_warmup + config.n_draws * config.thinning
    return InferenceResult(
        posterior=SamplePosterior(unravel_numpy(draws, template)),
        loss_curve=loss_curve,
        n_iter=n_iter,
        diagnostics=diagnostics,
    )


def _report(d, loss_curve, config):
    print(f"NUTS: {config.n_chains} chains x ({config.n_warmup} warmup + "
          f"{config.n_draws * config.thinning} sampling) iterations, "
          f"{d['n_grad_evals']} gradient evaluations")
    if config.n_warmup:
        print(f"loss after warmup = {loss_curve[config.n_warmup - 1]:.8f}")
    print(f"loss after the last transition = {loss_curve[-1]:.8f}")
    print(f"step size per chain = {np.array2string(d['step_size'], precision=3)}, "
          f"mean tree depth = {np.array2string(d['mean_tree_depth'], precision=2)}")
    print(f"max R-hat = {d['max_rhat']:.4f}, min ESS = {d['min_ess']:.1f}, "
          f"divergences = {d['n_divergences']}")


@serializable
class NUTS(BaseStrategy):
    """The No-U-Turn Sampler from numpyro: full-batch, asymptotically exact.

    The reference sampler for small networks and data sets: every transition
    uses the gradient of the log posterior on all rows, and the step size and
    mass matrix adapt during warmup. The cost grows with rows x parameters x
    tree size, so a guard (``max_cost``) refuses runs that would take hours.

    Parameters
    ----------
    n_chains : int, default=4
        Independent chains, vmapped on one device (sharded over devices when
        several are visible). R-hat compares them.
    n_warmup : int, default=500
        Adaptation transitions per chain (step size and mass matrix), discarded.
    n_draws : int, default=500
        Draws kept per chain after warmup (at least 4, for the diagnostics).
    thinning : int, default=1
        Transitions per kept draw.
    target_accept_prob : float, default=0.8
        Acceptance rate the step-size adaptation aims for; raise it (e.g. 0.95)
        when divergences occur.
    max_tree_depth : int, default=10
        At most ``2**max_tree_depth - 1`` gradient evaluations per transition.
    dense_mass : bool, default=False
        Adapt a dense mass matrix (``n_params x n_params``) instead of a diagonal one.
    step_size : float, default=1.0
        Initial step size of the adaptation (numpyro's default).
    init : {"map", "uniform", "network"}, default="map"
        Where chains start: a short MAP run per chain (the estimator's
        optimiser, ``solver`` and its settings, with its ``max_iter``,
        ``batch_size``, ``learning_rate_init``, ``tol`` and
        ``n_iter_no_change``), numpyro's ``init_to_uniform``
        (every parameter uniform in [-2, 2]), or the network's initialisation.
        With ``warm_start=True`` chains continue from the previous fit's last draws.
    chain_method : {"auto", "parallel", "vectorized"}, default="auto"
        How the chains run. "vectorized" (numpyro's name): one compiled
        program with the chains vmapped, the chain axis split over the devices
        when several are visible; the chains advance in step, each transition
        waiting for the longest trajectory among them. "parallel": each chain
        is its own unbatched program, launched from its own thread (at most
        one per CPU core; chain ``i`` on device ``i % n_devices``), so the
        cores of a CPU run the chains at once. "auto": "parallel" on a CPU,
        "vectorized" on a GPU or TPU, where one batched program uses the
        device better. The two give different (equally valid) draws for the
        same ``random_state``; each is reproducible.
    max_cost : float, default=1e12
        Largest allowed ``n_chains x iterations x (2**max_tree_depth - 1) x
        n_rows x n_params``; above it ``fit`` raises before sampling.

    Notes
    -----
    NUTS always uses all training rows: the estimator's ``batch_size``,
    ``shuffle``, ``max_iter``, ``learning_rate_init``, ``tol`` and
    ``n_iter_no_change`` only shape the MAP run of ``init="map"``, and
    ``early_stopping=True`` is refused. ``loss_curve_`` holds the negative log
    posterior per data point after every transition (mean over chains), warmup
    included, and ``n_iter_`` counts transitions.

    With the estimator's ``verbose``, a line at about every tenth of warmup and
    of sampling gives the transitions done (by every chain), the time elapsed
    and an estimate of the time the rest of the run takes, the step sizes and
    the divergences so far in that phase; a summary of the diagnostics follows. The draws are the
    same as without ``verbose``.

    Diagnostics are in the estimator's ``diagnostics_``: ``rhat`` and ``ess``
    (per parameter, shaped like the parameters), ``max_rhat``, ``min_ess`` (and
    the parameter they belong to), ``n_divergences``, ``divergences_per_chain``,
    ``step_size`` and ``mean_tree_depth`` per chain, ``max_tree_depth_hits``,
    ``accept_prob``, ``n_grad_evals``. A ``ConvergenceWarning`` says what to
    change when R-hat exceeds 1.01, the smallest effective sample size is under
    100 per chain, transitions diverge, or many stop at ``max_tree_depth``.

    References
    ----------
    Hoffman, M. D. and Gelman, A. (2014). The No-U-Turn Sampler. JMLR 15.
    Phan, D., Pradhan, N. and Jankowiak, M. (2019). Composable effects for
    flexible and accelerated probabilistic programming in NumPyro.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> from skbnn import BayesianMLPRegressor
    >>> from skbnn.inference import NUTS
    >>> X, y = make_regression(n_samples=40, n_features=2, noise=5.0, random_state=0)
    >>> reg = BayesianMLPRegressor((4,), activation="tanh", random_state=0,
    ...                            inference=NUTS(n_chains=2, n_warmup=200, n_draws=200))
    >>> reg.fit(X, y).posterior_.draws["network"]["dense_0"]["kernel"].shape
    (2, 200, 2, 4)
    >>> reg.rhat_["network"]["dense_0"]["kernel"].shape
    (2, 4)
    """

    name = "nuts"
    host_rows_refusal = ("NUTS is full-batch: every gradient takes all rows, so they must "
                         "be on the device")
    streaming_refusal = (
        "NUTS needs every row at each step (its trajectories use the full-data "
        "gradient), so it cannot update on one batch at a time. Fit on all rows, or use "
        "inference='vi' or 'laplace' (the posterior becomes the next prior) or 'psgld' "
        "for streams"
    )

    #: Diagnostics the estimators also set as fitted attributes (``rhat_``, ...).
    fitted_diagnostics = ("rhat", "ess", "max_rhat", "min_ess", "n_divergences", "step_size",
                          "mean_tree_depth", "prediction_rhat", "prediction_ess",
                          "max_prediction_rhat", "min_prediction_ess")

    _parameter_constraints = {
        "n_chains": [Interval(Integral, 1, None, closed="left")],
        "n_warmup": [Interval(Integral, 0, None, closed="left")],
        "n_draws": [Interval(Integral, 4, None, closed="left")],
        "thinning": [Interval(Integral, 1, None, closed="left")],
        "target_accept_prob": [Interval(Real, 0, 1, closed="neither")],
        "max_tree_depth": [Interval(Integral, 1, None, closed="left")],
        "dense_mass": ["boolean"],
        "step_size": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions({"map", "uniform", "network"})],
        "chain_method": [StrOptions(set(CHAIN_METHODS))],
        "max_cost": [Interval(Real, 0, None, closed="neither")],
    }

    def __init__(self, *, n_chains=4, n_warmup=500, n_draws=500, thinning=1,
                 target_accept_prob=0.8, max_tree_depth=10, dense_mass=False, step_size=1.0,
                 init="map", chain_method="auto", max_cost=1e12):
        self.n_chains = n_chains
        self.n_warmup = n_warmup
        self.n_draws = n_draws
        self.thinning = thinning
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.dense_mass = dense_mass
        self.step_size = step_size
        self.init = init
        self.chain_method = chain_method
        self.max_cost = max_cost

    def config(self, model=None, training=None) -> NUTSConfig:
        dtype = jnp.result_type(float)
        return NUTSConfig(
            step_size=jnp.asarray(self.step_size, dtype=dtype),
            target_accept_prob=jnp.asarray(self.target_accept_prob, dtype=dtype),
            n_chains=int(self.n_chains),
            n_warmup=int(self.n_warmup),
            n_draws=int(self.n_draws),
            thinning=int(self.thinning),
            max_tree_depth=int(self.max_tree_depth),
            dense_mass=bool(self.dense_mass),
        )

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        if training.early_stopping:
            raise ValueError(
                "early_stopping=True is not supported with inference='nuts': a sampler runs "
                "its whole budget and uses every row. Set early_stopping=False, or use "
                "inference='map'."
            )
        if self.init != "map":
            warn_unused_optimizer(training, "nuts", f"init={self.init!r} runs no optimiser "
                                  "(init='map' starts the chains from an optimiser's fit).")
        return run(model, data, self.config(model, training), key, training=training, init=self.init,
                   init_params=init_params, max_cost=float(self.max_cost),
                   chain_method=self.chain_method)
