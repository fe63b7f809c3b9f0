"""What every inference strategy shares.

- :class:`Data` and :func:`device_data`: the training rows, put on the device once.
- :class:`Training`: the estimator-level loop settings (epochs, batch size,
  learning rate, stopping rule), the MLP parameters that keep their meaning.
- :func:`minibatch_indices` and ``scan_minibatches``: one epoch is one
  ``lax.scan`` over minibatches inside a jitted function, with the data on the
  device.
- ``EpochMonitor``: the Python side between compiled epochs: loss curve,
  scikit-learn's stopping rule (``tol``, ``n_iter_no_change``,
  ``early_stopping``), ``verbose`` output, the ``ConvergenceWarning``.
- :class:`InferenceResult`: what ``run`` returns to the estimator.
- :class:`Strategy`: the protocol every strategy satisfies, and
  :class:`BaseStrategy`: the strategy objects (``MAP``, ``PSGLD``, ...) are
  scikit-learn parameter holders; ``run`` is their one method the estimators
  call.
- :func:`run_epochs`: the one epoch loop of the minibatch strategies.

Compilation: every jitted function in ``skbnn.inference`` is defined once at
module level and takes the model and the strategy's numeric settings as pytree
arguments, and the architecture, batch size and other shape-deciding settings
as static ones. JAX's own cache then keys compiled programs by that static
configuration and the array shapes, so refitting a clone on data of the same
shape compiles nothing.
"""

import time
import warnings
from functools import partial
from typing import NamedTuple, Protocol, runtime_checkable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import scipy.sparse as sp
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from .. import diagnostics
from .._types import Array
from ..model import Batch
from ..utils._eager import to_device
from ..utils._random import permutation
from ..utils._host import HostRows, host_chunks
from ..utils._sparse import SparseRows

__all__ = [
    "Strategy",
    "HOST_CHUNK_ROWS",
    "LABEL_LIKELIHOODS",
    "N_STANDARD_ERRORS",
    "N_STANDARD_ERRORS_LABELS",
    "MIN_SCORED_ROWS",
    "SCORE_TOLERANCE",
    "TEMPERATURE_LADDER",
    "BaseStrategy",
    "Data",
    "EpochMonitor",
    "InferenceResult",
    "MLP_LEARNING_RATES",
    "Optimizer",
    "SOLVERS",
    "Training",
    "check_finite",
    "chain_sharding",
    "choose_temperature",
    "evidence_needed",
    "holdout_rows",
    "loss_settled",
    "make_optimizer",
    "optimizer_settings",
    "run_epochs",
    "parameter_names",
    "posterior_log_density",
    "prediction_diagnostics",
    "sample_diagnostics",
    "split_rows",
    "unravel_numpy",
    "warn_unused_optimizer",
    "count_batches",
    "device_data",
    "validation_score",
    "minibatch_indices",
    "scan_minibatches",
    "single_start",
    "start_positions",
]

#: Training rows; the same fields as a minibatch.
Data = Batch


def device_data(X, y, weight, *, stream=False) -> Data:
    """Put the training rows on the default device, in JAX's float dtype.

    A scipy sparse ``X`` goes as :class:`~skbnn.utils._sparse.SparseRows`
    (its non-zeros only); the network densifies one minibatch at a time.
    With ``stream``, ``X`` stays on the host as
    :class:`~skbnn.utils._host.HostRows` (register it inside a
    :func:`~skbnn.utils._host.hosted` block), streamed one minibatch at a time.
    """
    dtype = jnp.result_type(float)
    # conversions on the host: an eager conversion on the device compiles a program
    y = np.asarray(y)
    if np.issubdtype(y.dtype, np.floating):
        y = y.astype(dtype, copy=False)
    y = to_device(y)
    if stream:
        X = HostRows.register(X, dtype)
    elif sp.issparse(X):
        X = SparseRows.from_scipy(X, dtype)
    else:
        X = X.astype(dtype) if isinstance(X, jax.Array) else to_device(X, dtype)
    return Data(X, y, to_device(weight, dtype))


SOLVERS = ("adam", "sgd", "lbfgs")
#: scikit-learn MLP's ``learning_rate`` (the schedule of ``solver="sgd"``).
MLP_LEARNING_RATES = ("constant", "invscaling", "adaptive")


class Optimizer(NamedTuple):
    """scikit-learn MLP's optimiser settings, as the estimator holds them.

    They drive every strategy's optimisation phase: MAP, Laplace's mode, the
    ensemble's members, VI's variational parameters and NUTS's starting
    points, with the meaning they have for ``MLPClassifier``: ``solver``
    "adam" (``beta_1``, ``beta_2``, ``epsilon``), "sgd" (``momentum``,
    ``nesterovs_momentum``, and the schedule ``learning_rate``: "constant",
    "invscaling" with ``power_t``, "adaptive") or "lbfgs" (full-batch, at most
    ``max_iter`` iterations and ``max_fun`` loss evaluations). The defaults
    are scikit-learn's.
    """

    solver: str = "adam"
    learning_rate: str = "constant"
    power_t: float = 0.5
    momentum: float = 0.9
    nesterovs_momentum: bool = True
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    max_fun: int = 15000


class Training(NamedTuple):
    """Loop settings the estimator passes to every strategy."""

    max_iter: int = 200
    batch_size: int = 200
    learning_rate: float = 1e-3
    shuffle: bool = True
    tol: float = 1e-4
    n_iter_no_change: int = 10
    early_stopping: bool = False
    verbose: int = 0
    validation_fraction: float = 0.1
    optimizer: Optimizer = Optimizer()


class InferenceResult(NamedTuple):
    """What a strategy's ``run`` returns.

    ``loss_curve`` holds one value per epoch: the minibatch average of the
    negative log posterior divided by the data size (so that it reads like
    scikit-learn's ``loss_curve_``), or whatever the strategy documents (the
    negative ELBO per data point for VI).
    """

    posterior: object
    loss_curve: list
    n_iter: int
    diagnostics: dict | None = None
    validation_scores: list | None = None
    best_loss: float | None = None


def minibatch_indices(rng_key, n_rows: int, batch_size: int, shuffle: bool) -> Array:
    """Row indices of one epoch's minibatches, shape ``(n_batches, batch_size)``.

    ``n_batches = ceil(n_rows / batch_size)``. Every batch has the same size
    (one compiled step); the last one is completed with rows from the start of
    the epoch's order, so every row is visited at least once per epoch and each
    batch is a uniform draw without replacement.
    """
    n_batches = count_batches(n_rows, batch_size)
    order = permutation(rng_key, n_rows) if shuffle else jnp.arange(n_rows, dtype=jnp.int32)
    n_extra = n_batches * batch_size - n_rows
    if n_extra:
        order = jnp.concatenate([order, order[:n_extra]])
    return order.reshape(n_batches, batch_size)


LEARNING_RATE_SCHEDULES = ("constant", "cosine")


def optimizer_settings(training: Training, **overrides):
    """The :class:`OptimizerConfig` fields a strategy's config takes from ``training``.

    ``overrides`` (a strategy's own ``beta_1``, ...) win where not None.
    """
    opt = training.optimizer
    dtype = jnp.result_type(float)
    values = {"beta_1": opt.beta_1, "beta_2": opt.beta_2, "epsilon": opt.epsilon}
    values.update({k: v for k, v in overrides.items() if v is not None})
    leaves = {k: to_device(v, dtype) for k, v in values.items()}
    leaves.update(
        momentum=to_device(opt.momentum, dtype),
        power_t=to_device(opt.power_t, dtype),
        patience=to_device(training.n_iter_no_change, dtype),
    )
    # a static setting (optax checks it in Python): only "adaptive" reads it, so only
    # there does a new tol compile a new program
    adaptive = opt.solver == "sgd" and opt.learning_rate == "adaptive"
    plateau_tol = max(float(training.tol), float(np.finfo(np.float32).tiny)) if adaptive else 1e-4
    return dict(leaves, solver=opt.solver, mlp_learning_rate=opt.learning_rate,
                nesterov=bool(opt.nesterovs_momentum), plateau_tol=plateau_tol)


def warn_unused_optimizer(training: Training, strategy: str, reason: str):
    """Warn when the estimator's optimiser settings differ from scikit-learn's defaults
    but ``strategy`` has no optimisation phase they could drive (``reason`` says why)."""
    changed = [f"{name}={value!r}" for name, value in training.optimizer._asdict().items()
               if value != getattr(Optimizer(), name)]
    if changed:
        warnings.warn(
            f"{', '.join(changed)} has no effect with inference={strategy!r}: {reason}",
            UserWarning, stacklevel=3,
        )


def make_optimizer(config):
    """The optax optimiser of a strategy config with the optimiser fields.

    ``config.learning_rate_schedule`` is the strategy's plan: "constant", or
    "cosine" from ``learning_rate`` to 0 over ``decay_steps`` steps (the
    strategies pass their whole budget of ``max_iter`` epochs, so the last
    epoch of a full run takes the smallest steps). ``config.solver`` picks
    optax's Adam or SGD (with ``momentum``, Nesterov's when ``nesterov``). For
    SGD, scikit-learn MLP's ``learning_rate`` multiplies that plan as in
    scikit-learn: "invscaling" by ``1 / (1 + t)**power_t`` with ``t`` the rows
    seen, "adaptive" by 1/5 each time the epoch's mean loss has not fallen
    by ``plateau_tol`` for ``patience`` epochs (optax's ``reduce_on_plateau``,
    which needs the loss: ``update(..., value=loss)``). Every number may be a
    traced array, so changing one reuses the compiled program.
    """
    base = config.learning_rate
    schedule, decay_steps = config.learning_rate_schedule, config.decay_steps
    if schedule not in LEARNING_RATE_SCHEDULES:
        raise ValueError(f"schedule must be one of {LEARNING_RATE_SCHEDULES}, got {schedule!r}.")
    invscaling = config.solver == "sgd" and config.mlp_learning_rate == "invscaling"

    def learning_rate(count):
        rate = base
        if schedule == "cosine":
            progress = jnp.minimum(count, decay_steps) / decay_steps
            rate = rate * 0.5 * (1.0 + jnp.cos(jnp.pi * progress))
        if invscaling:
            rate = rate / (1.0 + count * config.batch_rows) ** config.power_t
        return rate

    if config.solver == "adam":
        return optax.adam(learning_rate, b1=config.beta_1, b2=config.beta_2, eps=config.epsilon)
    if config.solver != "sgd":
        raise ValueError(f"solver={config.solver!r} has no minibatch optimiser; "
                         "choose 'adam' or 'sgd'.")
    sgd = optax.sgd(learning_rate, momentum=config.momentum, nesterov=config.nesterov)
    if config.mlp_learning_rate != "adaptive":
        return sgd
    plateau = optax.contrib.reduce_on_plateau(
        factor=0.2, patience=config.patience, rtol=0.0, atol=config.plateau_tol,
        accumulation_size=config.steps_per_epoch)
    return optax.chain(sgd, plateau)


def count_batches(n_rows: int, batch_size: int) -> int:
    """Number of minibatches per epoch: ``ceil(n_rows / batch_size)``."""
    return -(-n_rows // batch_size)


def with_decay_steps(config, training: Training, data: Data):
    """``config`` with ``decay_steps`` = the steps of ``training.max_iter`` epochs over
    ``data``, ``steps_per_epoch`` and ``batch_rows`` (the schedules' units)."""
    dtype = jnp.result_type(float)
    per_epoch = count_batches(data.X.shape[0], training.batch_size)
    return config.replace(
        decay_steps=to_device(max(training.max_iter * per_epoch, 1), dtype),
        steps_per_epoch=to_device(per_epoch, dtype),
        batch_rows=to_device(training.batch_size, dtype),
    )


def scan_minibatches(step_fn, state, data: Data, rng_key, batch_size: int, shuffle: bool):
    """Run ``step_fn(rng_key, state, batch) -> (state, info)`` over one epoch.

    Meant to be called inside a jitted function: the epoch is one
    ``lax.scan``; the stacked ``info`` has a leading ``n_batches`` axis.
    When ``data.X`` is :class:`~skbnn.utils._host.HostRows`, each step asks
    the host for its minibatch's rows, and the host reads the next step's
    rows while the device runs this one: the same minibatches in the same
    order as with ``X`` on the device.
    """
    key_order, key_steps = jax.random.split(rng_key)
    idx = minibatch_indices(key_order, data.X.shape[0], batch_size, shuffle)
    step_keys = jax.random.split(key_steps, idx.shape[0])

    if isinstance(data.X, HostRows):
        return _scan_host_minibatches(step_fn, state, data, idx, step_keys)

    def body(state, xs):
        rows, key = xs
        batch = jax.tree.map(lambda a: jnp.take(a, rows, axis=0), data)
        return step_fn(key, state, batch)

    return jax.lax.scan(body, state, (idx, step_keys))


#: Host rows: one read from the host brings the rows of this many values at most
#: (16 MB of float32)...
READ_VALUES = 1 << 22
#: ...and at most this share of an epoch's minibatches.
READ_SHARE = 1 / 16


def _scan_host_minibatches(step_fn, state, data: Data, idx, step_keys):
    """``scan_minibatches`` on :class:`~skbnn.utils._host.HostRows`: the epoch's
    minibatches in groups of ``k``, each group's rows read from the host at once (one
    callback, the next group read ahead), then its ``k`` steps scanned on the device.

    The steps, their order, rows and keys are those of the on-device epoch; reading
    ``k`` minibatches per callback rather than one keeps the host round trips few.
    """
    n_batches, batch_size = idx.shape
    row_values = int(np.prod(data.X.shape[1:]))
    k = int(np.clip(min(READ_VALUES // (batch_size * row_values),
                        int(n_batches * READ_SHARE)), 1, n_batches))
    n_groups = n_batches // k
    rest = data._replace(X=None)

    def steps(state, X, rows, keys):
        def one(state, xs):
            x, r, key = xs
            batch = jax.tree.map(lambda a: jnp.take(a, r, axis=0), rest)
            return step_fn(key, state, batch._replace(X=x))
        return jax.lax.scan(one, state, (X, rows, keys))

    def fetch(rows, next_rows):
        X = data.X.fetch(rows.reshape(-1), next_rows.reshape(-1))
        return X.reshape(*rows.shape, *X.shape[1:])

    grouped = idx[:n_groups * k].reshape(n_groups, k, batch_size)
    # the last group reads nothing ahead: its "next" rows are its own
    ahead = jnp.concatenate([grouped[1:], grouped[-1:]], axis=0)
    keys = step_keys[:n_groups * k].reshape(n_groups, k, *step_keys.shape[1:])

    def group(state, xs):
        rows, next_rows, group_keys = xs
        return steps(state, fetch(rows, next_rows), rows, group_keys)

    state, info = jax.lax.scan(group, state, (grouped, ahead, keys))
    info = jax.tree.map(lambda x: x.reshape(n_groups * k, *x.shape[2:]), info)
    if n_groups * k < n_batches:  # the minibatches left over, in one more read
        left = idx[n_groups * k:]
        state, more = steps(state, fetch(left, left), left, step_keys[n_groups * k:])
        info = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), info, more)
    return state, info


def _has_chain_axis(init_params, reference):
    return jax.tree.leaves(init_params)[0].ndim == jax.tree.leaves(reference)[0].ndim + 1


@partial(jax.jit, static_argnames=("input_shape", "n_chains"))
def start_positions(model, rng_key, input_shape, n_chains: int, init_params=None):
    """One start per chain, stacked on a leading axis of length ``n_chains``.

    Without ``init_params``, independent initialisations of the network. With
    it: one point (copied to every chain), or a pytree with a leading chain
    axis (the last draws of a previous fit, for ``warm_start``), used as is when
    it has ``n_chains`` entries and averaged to one point otherwise.
    """
    if init_params is None:
        keys = jax.random.split(rng_key, n_chains)
        return jax.vmap(lambda k: model.init(k, input_shape))(keys)
    reference = jax.eval_shape(lambda: model.init(rng_key, input_shape))
    if _has_chain_axis(init_params, reference):
        if jax.tree.leaves(init_params)[0].shape[0] == n_chains:
            return jax.tree.map(jnp.asarray, init_params)
        init_params = jax.tree.map(lambda x: jnp.mean(x, axis=0), init_params)
    return jax.tree.map(lambda x: jnp.broadcast_to(x, (n_chains, *jnp.shape(x))), init_params)


@partial(jax.jit, static_argnames=("input_shape",))
def single_start(model, rng_key, input_shape, init_params=None):
    """One start: ``init_params`` (averaged over a chain axis if it has one) or a fresh one."""
    if init_params is None:
        return model.init(rng_key, input_shape)
    reference = jax.eval_shape(lambda: model.init(rng_key, input_shape))
    if _has_chain_axis(init_params, reference):
        return jax.tree.map(lambda x: jnp.mean(jnp.asarray(x), axis=0), init_params)
    return jax.tree.map(jnp.asarray, init_params)


def chain_sharding(n_chains: int):
    """Sharding that splits a leading chain axis over the visible devices.

    Returns ``(chains, replicated)`` shardings, or ``(None, None)`` on one
    device. Uses the largest number of devices that divides ``n_chains``.
    """
    devices = jax.devices()
    n_dev = max(d for d in range(1, len(devices) + 1) if n_chains % d == 0)
    if n_dev == 1:
        return None, None
    mesh = jax.sharding.Mesh(np.array(devices[:n_dev]), ("chain",))
    chains = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("chain"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    return chains, replicated


@jax.jit
def _all_finite(tree):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(tree)]))


def check_finite(tree, *, strategy: str, advice: str):
    """Raise ``ValueError`` when any leaf of ``tree`` holds NaN or inf."""
    if not bool(_all_finite(tree)):
        raise ValueError(
            f"Inference with {strategy!r} produced non-finite parameter values. {advice}"
        )


@jax.jit
def _validation_score(model, params, data: Data):
    return model.score(params, data.X, data.y)


@jax.jit
def _network_outputs(model, params, X):
    return model.network.apply(params["network"], X)


#: Rows per chunk of a full-data computation on host rows.
HOST_CHUNK_ROWS = 1024


def validation_score(model, params, data: Data):
    """Accuracy or R² of ``params`` on ``data`` (host rows: the outputs a chunk at a time)."""
    if not isinstance(data.X, HostRows):
        return _validation_score(model, params, data)
    outputs = jnp.concatenate([
        _network_outputs(model, params, X)
        for _, X in host_chunks(data.X, np.arange(data.X.shape[0]), HOST_CHUNK_ROWS)])
    return model.likelihood.score(params["likelihood"], outputs, data.y)


#: A loss whose last tenth of the run brought less than this share of the
#: run's whole improvement has settled (see ``loss_settled``).
SETTLED_RTOL = 0.01


def loss_settled(loss_curve, tol=0.0, *, window=10, rtol=SETTLED_RTOL):
    """Whether a noisy loss has stopped falling: ``(settled, drop, noise)``.

    Compares the mean loss of the last ``k`` epochs (``window``, or a tenth of
    the run when that is more) with that of the ``k`` before: it has settled
    when the drop is within two standard errors of the epochs' own noise,
    below ``tol`` per epoch (MLP's unit: ``tol`` is an improvement per epoch),
    or below ``rtol`` of the whole run's improvement (from the first epoch to
    the last ``k``): a step size falling to 0 keeps lowering the training loss
    a little to the end as it averages out the minibatch noise, which more
    epochs would not change. Runs shorter than ``2 k`` epochs have not settled.
    """
    curve = np.asarray(loss_curve, dtype=np.float64)
    k = max(2, window, curve.size // 10)
    if curve.size < 2 * k:
        return False, float("nan"), float("nan")
    before, last = curve[-2 * k:-k], curve[-k:]
    drop = float(before.mean() - last.mean())
    noise = float(np.sqrt((before.var(ddof=1) + last.var(ddof=1)) / k))
    gained = max(float(curve[0] - last.mean()), 0.0)
    return drop <= max(2.0 * noise, tol * k, rtol * gained), drop, noise


def run_epochs(epoch_fn, state, epochs, *, strategy: str, advice: str, monitor=None,
               params=None, describe=None, on_epoch=None, stop=True):
    """The one epoch loop of the minibatch strategies (the Python between compiled epochs).

    ``epoch_fn(state, epoch) -> (state, loss)`` runs one compiled epoch (a
    ``lax.scan`` over minibatches, see ``scan_minibatches``); ``loss`` may
    be one value or one per group of chains. For every epoch in ``epochs``:
    a non-finite loss raises ``ValueError`` naming ``strategy`` and ``advice``;
    ``monitor`` (an ``EpochMonitor``, or None) records the loss with
    ``params(state)`` for early stopping and ``describe(state, epoch)`` for
    ``verbose`` output; then ``on_epoch(state, epoch)`` runs (the temperature
    search scores there). With ``stop``, the monitor's stopping rule ends the
    loop. Returns ``(state, stopped)``.
    """
    for epoch in epochs:
        state, loss = epoch_fn(state, epoch)
        loss = np.asarray(loss, dtype=np.float64)
        if not np.all(np.isfinite(loss)):
            raise ValueError(
                f"Inference with {strategy!r} diverged at epoch {epoch + 1}: the loss is no "
                f"longer finite. {advice}"
            )
        done = False
        if monitor is not None:
            extra = describe(state, epoch) if describe is not None else ""
            done = monitor.update(float(loss.ravel()[0]),
                                  params(state) if params is not None else None, extra=extra)
        if on_epoch is not None:
            on_epoch(state, epoch)
        if stop and done:
            return state, True
    return state, False


class EpochMonitor:
    """Between compiled epochs: record, report, decide to stop.

    The stopping rule is scikit-learn's MLP rule. Without early stopping, an
    epoch whose training loss is not below ``best_loss - tol`` counts as "no
    improvement"; with early stopping, one whose validation score (accuracy or
    R²) is not above ``best_score + tol`` does, and the parameters with the best
    validation score are kept. Training stops after more than
    ``n_iter_no_change`` such epochs in a row.
    """

    def __init__(self, training: Training, *, model=None, validation=None, stopping=True):
        self.training = training
        self.model = model
        self.validation = validation
        self.stopping = stopping
        self.loss_curve = []
        self.validation_scores = [] if validation is not None else None
        self.best_loss = np.inf
        self.best_score = -np.inf
        self.best_params = None
        self.no_improvement = 0
        self.converged = False
        self._epoch_ends = []  # perf_counter() at the end of each epoch, for verbose

    def time_left(self) -> str:
        """``verbose``'s estimate of the time the remaining epochs take: the mean time of
        the epochs after the first (which compiled), times the epochs left of ``max_iter``
        (an optimiser may stop sooner)."""
        ends, left = self._epoch_ends, self.training.max_iter - len(self._epoch_ends)
        if len(ends) < 2 or left <= 0:
            return ""
        seconds = left * (ends[-1] - ends[0]) / (len(ends) - 1)
        return f", {seconds:.0f} s left" + (" at most" if self.stopping else "")

    def update(self, loss: float, params=None, extra: str = "") -> bool:
        """Record one epoch; return True when training should stop."""
        t = self.training
        self.loss_curve.append(loss)
        epoch = len(self.loss_curve)
        if t.verbose:
            self._epoch_ends.append(time.perf_counter())
            print(f"Iteration {epoch}, loss = {loss:.8f}{extra}{self.time_left()}", flush=True)
        if not self.stopping:
            return False
        if self.validation is not None:
            score = float(validation_score(self.model, params, self.validation))
            self.validation_scores.append(score)
            if t.verbose:
                print(f"Validation score: {score:.6f}")
            improved = score >= self.best_score + t.tol
            if score > self.best_score:
                self.best_score = score
                self.best_params = params
        else:
            improved = loss <= self.best_loss - t.tol
        if loss < self.best_loss:
            self.best_loss = loss
        self.no_improvement = 0 if improved else self.no_improvement + 1
        if self.no_improvement > t.n_iter_no_change:
            self.converged = True
            if t.verbose:
                what = "Validation score" if self.validation is not None else "Training loss"
                print(
                    f"{what} did not improve more than tol={t.tol:f} for "
                    f"{t.n_iter_no_change} consecutive epochs. Stopping."
                )
            return True
        return False

    def warn_if_not_converged(self, name: str):
        if self.stopping and not self.converged:
            warnings.warn(
                f"Stochastic Optimizer (inference={name!r}): Maximum iterations "
                f"({self.training.max_iter}) reached and the optimization hasn't "
                "converged yet. Raise max_iter, or raise tol.",
                ConvergenceWarning,
            )


# ---------------------------------------------------------------------------
# temperature="auto": choosing the posterior temperature on held-back rows

#: Candidate temperatures of ``temperature="auto"``, warmest first.
TEMPERATURE_LADDER = (1.0, 0.25, 0.0625, 0.015625)
#: ``temperature="auto"`` keeps the warmest temperature whose held-back score is
#: within this many standard errors of the best (the "one-standard-error rule"
#: of model selection, made stricter: on a well-specified linear model, where
#: the untempered posterior is right, one standard error still let the noise
#: of a few held-back rows choose a cold one in about a third of the seeds)...
N_STANDARD_ERRORS = 2.0
#: ...and for class labels, one standard error: labels that people curated make
#: a cold posterior the expected one (Aitchison, 2021), so less evidence should
#: move the choice there. Chosen on validation rows (``benchmarks/uci.py``'s
#: classification sets, folds other than its own, a quarter of each training
#: fold held back): against two standard errors, one lowered the held-back NLL
#: on wine, iris and digits and left breast_cancer's, and on the UCI regression
#: sets it changed nothing beyond noise (which is why regression keeps two).
N_STANDARD_ERRORS_LABELS = 1.0
#: Likelihoods of class labels (by ``name``).
LABEL_LIKELIHOODS = frozenset({"categorical", "bernoulli", "multilabel_bernoulli"})
#: or within this many nats per row: closer than that, two predictives are
#: the same for any purpose, however consistent the difference (on a
#: well-specified linear model, tempering changes the predictive by about a
#: thousandth of a nat, with the same sign on every row). Gains of a few
#: thousandths matter where the NLL itself is small (MNIST: about 0.05).
SCORE_TOLERANCE = 0.001
#: Fewer held-back rows than this cannot tell temperatures apart (their
#: standard error is itself too noisy): ``temperature="auto"`` then keeps 1.
MIN_SCORED_ROWS = 50


def holdout_rows(key, n_rows: int, fraction: float) -> np.ndarray:
    """Sorted indices of ``fraction`` of ``n_rows`` rows (at least 1, at most ``n_rows - 2``)."""
    n_val = min(n_rows - 2, max(1, round(fraction * n_rows)))
    return np.sort(np.asarray(permutation(key, n_rows))[:n_val])


def split_rows(data: Data, rows) -> tuple[Data, Data]:
    """``(data without rows, data of rows)``."""
    keep = np.ones(data.X.shape[0], dtype=bool)
    keep[rows] = False
    fit = np.flatnonzero(keep)
    if isinstance(data.X, HostRows):  # host rows: index the host array, copy nothing
        rest = data._replace(X=None)
        return tuple(jax.tree.map(lambda a: a[r], rest)._replace(X=data.X.subset(r))
                     for r in (fit, np.asarray(rows)))
    return (jax.tree.map(lambda a: a[fit], data), jax.tree.map(lambda a: a[rows], data))


def evidence_needed(likelihood) -> float:
    """Standard errors by which a colder temperature must beat the warmest for
    ``likelihood``'s data: ``N_STANDARD_ERRORS_LABELS`` for class labels,
    ``N_STANDARD_ERRORS`` otherwise."""
    return (N_STANDARD_ERRORS_LABELS if getattr(likelihood, "name", None) in LABEL_LIKELIHOODS
            else N_STANDARD_ERRORS)


def choose_temperature(scores, weight, n_standard_errors=None):
    """The warmest temperature whose mean score is within ``n_standard_errors``
    (default ``N_STANDARD_ERRORS``; see ``evidence_needed``) standard
    errors of the best (or within ``SCORE_TOLERANCE``).

    ``scores`` maps each temperature to the held-back rows' log predictive
    densities ``(n_rows,)``; ``weight`` weighs the rows (sample weights). The
    standard error is that of the paired per-row differences to the best
    temperature. Returns ``(temperature, {temperature: mean score})``.
    """
    w = np.asarray(weight, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(w.shape, 1.0 / w.size)
    rows = {t: np.asarray(v, dtype=np.float64) for t, v in scores.items()}
    means = {t: float(w @ v) for t, v in rows.items()}
    best = max(means, key=means.get)
    for t in sorted(means, reverse=True):  # warmest first
        diff = rows[best] - rows[t]
        se = np.sqrt(w @ (diff - w @ diff) ** 2 / max(diff.size - 1, 1))
        n_se = N_STANDARD_ERRORS if n_standard_errors is None else n_standard_errors
        if means[t] >= means[best] - max(n_se * se, SCORE_TOLERANCE):
            return t, means
    return best, means


def posterior_log_density(model, posterior, X, y, *, chunk_size=256):
    """Per-row log density of ``y`` under ``posterior``'s predictive (its closed form if any)."""
    moments = posterior.predict_moments(model, X, chunk_size=chunk_size)
    if moments is not None:
        predictive = tuple(np.asarray(m)[None] for m in moments)
    else:
        predictive = posterior.predict_draws(model, X, chunk_size=chunk_size)
    return np.asarray(model.likelihood.log_predictive_density(predictive, np.asarray(y)))


# ---------------------------------------------------------------------------
# Diagnostics of sampling strategies


def take_rows(tree, rows):
    """Rows ``rows`` of every leaf of ``tree`` (an array, ``SparseRows``, ``Data``), in a
    jitted function: indexing there costs no program of its own, as an eager
    ``X[rows]`` does (a first fit of a small network compiles dozens of those)."""
    return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), tree)


def select_rows(X, y, rows):
    """``(X, y, rows)`` for a jitted function that takes ``rows`` itself
    (:func:`take_rows`); host rows are read here, and their ``rows`` become
    ``0, 1, ...``."""
    if isinstance(X, HostRows):
        return X[rows], np.asarray(y)[rows], np.arange(len(rows))
    return X, y, rows


@jax.jit
def _draw_loglik(model, draws, X, y, rows):
    """Per-row log-likelihood of ``rows`` under every draw: ``(n_chains, n_draws, n_rows)``."""
    X, y = take_rows(X, rows), take_rows(y, rows)
    return jax.vmap(lambda chain: jax.lax.map(lambda p: model.log_likelihood(p, X, y), chain))(
        draws)


def parameter_names(template):
    """Name of every entry of the raveled parameters, e.g. ``network/dense_0/kernel[3, 1]``."""
    names = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(template)[0]:
        base = "/".join(str(getattr(k, "key", k)) for k in path)
        shape = np.shape(leaf)
        names.extend(
            f"{base}[{', '.join(map(str, idx))}]" if shape else base for idx in np.ndindex(shape)
        )
    return names


def unravel_numpy(flat, template):
    """Split the last axis of ``flat`` into arrays shaped like ``template``'s leaves
    (the leading axes of ``flat`` kept)."""
    flat = np.asarray(flat)
    lead = flat.shape[:-1]
    leaves, treedef = jax.tree.flatten(template)
    sizes = [int(np.prod(np.shape(x))) for x in leaves]
    parts = np.split(flat, np.cumsum(sizes)[:-1], axis=-1) if len(sizes) > 1 else [flat]
    return jax.tree.unflatten(
        treedef, [p.reshape((*lead, *np.shape(x))) for p, x in zip(parts, leaves)])


def prediction_diagnostics(model, draws, data: Data, key) -> dict:
    """:func:`skbnn.diagnostics.prediction_diagnostics` of the per-row log-likelihood of
    up to ``N_PREDICTION_ROWS`` training rows (a fixed random subset, weight > 0)."""
    n_rows = data.X.shape[0]
    rows = np.sort(np.asarray(permutation(key, n_rows))[:diagnostics.N_PREDICTION_ROWS])
    rows = rows[np.asarray(data.weight)[rows] > 0]
    loglik = np.asarray(_draw_loglik(model, draws, *select_rows(data.X, data.y, rows)),
                        np.float64)
    return diagnostics.prediction_diagnostics(loglik)


def sample_diagnostics(model, draws, data: Data, key) -> dict:
    """R-hat and effective sample size on the parameters and on predictions.

    ``draws``: leaves ``(n_chains, n_draws, ...)``. Parameter values are
    per entry, shaped like the parameters (``rhat``, ``ess``), with the
    worst of them and the entry they belong to; predictions: see
    :func:`prediction_diagnostics`.
    """
    leaves = jax.tree.leaves(draws)
    n_chains, n_draws = leaves[0].shape[:2]
    flat = np.concatenate([np.asarray(x, np.float64).reshape(n_chains, n_draws, -1)
                           for x in leaves], axis=-1)
    template = jax.tree.map(lambda x: x[0, 0], draws)
    params = diagnostics.parameter_diagnostics(flat, parameter_names(template))
    params["rhat"] = unravel_numpy(params["rhat"], template)
    params["ess"] = unravel_numpy(params["ess"], template)
    return {**params, **prediction_diagnostics(model, draws, data, key)}


@runtime_checkable
class Strategy(Protocol):
    """What the estimators need of an inference strategy; ``inference=`` takes any.

    A strategy object holds settings (a scikit-learn parameter holder, so
    ``GridSearchCV`` can search ``inference__<name>``), turns them into a
    frozen config for the data's model and the estimator's training settings,
    and runs: ``run`` receives the ``skbnn.model.Model``, the training
    rows as :class:`Data` (on the device), a PRNG key and the
    :class:`Training` settings, and returns an :class:`InferenceResult` whose
    ``posterior`` satisfies :class:`skbnn.posterior.Posterior`. It never sees
    scikit-learn's estimators. ``fitted_diagnostics`` names entries of the
    result's diagnostics that the estimator also sets as fitted attributes.
    """

    name: str
    fitted_diagnostics: tuple

    def get_params(self, deep=True): ...

    def set_params(self, **params): ...

    def config(self, model, training: Training): ...

    def run(self, model, data: Data, key, *, training: Training, init_params=None,
            validation: Data | None = None) -> InferenceResult: ...


class BaseStrategy(BaseEstimator):
    """Base of the strategy objects (``MAP``, ``PSGLD``, ...).

    They inherit ``BaseEstimator`` only for ``get_params``/``set_params``/``clone``,
    so ``GridSearchCV`` can search ``inference__<name>``. ``__init__`` stores;
    ``run`` builds the frozen config and calls the module's pure ``run``.
    """

    #: The name used by ``inference=`` strings.
    name = None
    #: Why the strategy cannot train on rows streamed from the host
    #: (``stream_data``), or None when it can: its loops take minibatches.
    host_rows_refusal = None
    #: Diagnostics the estimators also set as fitted attributes (``rhat_``, ...).
    fitted_diagnostics = ()
    #: How ``partial_fit`` continues a fit (see ``BaseBayesianNetwork.partial_fit``):
    #: "epoch" (one more epoch on the rows given, as scikit-learn's MLP; an optimiser
    #: has no posterior to carry), "prior" (the previous Gaussian posterior, as its means
    #: and marginal variances, is the prior of a fit on the rows given), "curvature"
    #: (Laplace: the previous posterior's mode and summed curvature are the next prior,
    #: ``skbnn.priors.LaplacePrior``), "draws" (a sampler: the Gaussian of the previous
    #: draws' mean and covariance is the next prior, and the chains continue from their
    #: last draws), or None: not available, and ``streaming_refusal`` says why.
    streaming = None
    streaming_refusal = "it has no way to continue a fit on new rows"

    def config(self, model, training: Training):
        """The frozen, hashable settings ``run`` compiles with."""
        raise NotImplementedError

    def run(self, model, data: Data, key, *, training: Training, init_params=None,
            validation: Data | None = None) -> InferenceResult:
        raise NotImplementedError

    def __repr__(self, N_CHAR_MAX=700):
        return super().__repr__(N_CHAR_MAX)
