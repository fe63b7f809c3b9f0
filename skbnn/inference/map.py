"""Maximum a posteriori: the non-Bayesian baseline, trained with optax (Adam by default).

The objective is the negative log posterior per data point: the mean
(weighted) negative log-likelihood plus the prior's penalty divided by the data
size, which is scikit-learn MLP's loss (cross-entropy plus
``alpha/(2 n) ||W||²``). The result is a one-draw :class:`SamplePosterior`.
Other strategies start from it (Laplace's mode, warm starts).
"""

import warnings
from functools import partial
from numbers import Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from sklearn.exceptions import ConvergenceWarning

from .._types import Params
from ..posterior import SamplePosterior
from ..utils._eager import split_key, to_device
from ..utils._io import serializable
from ..utils._sklearn_compat import Interval, StrOptions
from .base import (
    LEARNING_RATE_SCHEDULES,
    BaseStrategy,
    Data,
    EpochMonitor,
    InferenceResult,
    Training,
    check_finite,
    loss_settled,
    make_optimizer,
    optimizer_settings,
    run_epochs,
    scan_minibatches,
    single_start,
    with_decay_steps,
)

__all__ = ["MAP", "MAPConfig", "MAPInfo", "MAPState", "init", "run", "step"]


class MAPState(NamedTuple):
    params: Params
    opt_state: optax.OptState


class MAPInfo(NamedTuple):
    loss: jax.Array  # negative log posterior per data point, on this minibatch


@struct.dataclass
class MAPConfig:
    """Frozen numeric settings of ``run`` (pytree leaves: changing them does not recompile)."""

    learning_rate: jax.Array
    beta_1: jax.Array
    beta_2: jax.Array
    epsilon: jax.Array
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


def _optimizer(config: MAPConfig):
    return make_optimizer(config)


def init(params, config: MAPConfig) -> MAPState:
    return MAPState(params, _optimizer(config).init(params))


def step(rng_key, state: MAPState, batch, *, model, config: MAPConfig, data_size, n_eff):
    """One optimiser step (Adam by default) on the minibatch negative log posterior per
    data point."""
    del rng_key  # deterministic given the batch

    def loss_fn(params):
        return -model.logdensity(params, batch, data_size) / n_eff

    loss, grads = jax.value_and_grad(loss_fn)(state.params)
    updates, opt_state = _optimizer(config).update(grads, state.opt_state, state.params,
                                                   value=loss)
    return MAPState(optax.apply_updates(state.params, updates), opt_state), MAPInfo(loss)


@partial(jax.jit, static_argnames=("input_shape",))
def _init(model, config, rng_key, input_shape, init_params):
    return init(single_start(model, rng_key, input_shape, init_params), config)


@partial(jax.jit, static_argnames=("batch_size", "shuffle"))
def _epoch(model, config, state, data, rng_key, epoch, batch_size, shuffle):
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight)

    def step_fn(key, state, batch):
        return step(key, state, batch, model=model, config=config, data_size=data_size, n_eff=n_eff)

    state, info = scan_minibatches(step_fn, state, data, rng_key, batch_size, shuffle)
    return state, jnp.mean(info.loss)


def _full_batch_loss(model, params, data):
    return -model.logdensity(params, data, data.X.shape[0]) / jnp.sum(data.weight)


def _lbfgs():
    return optax.lbfgs()  # step sizes from a zoom line search


@jax.jit
def _lbfgs_init(params):
    return MAPState(params, _lbfgs().init(params))


@jax.jit
def _lbfgs_iteration(model, state: MAPState, data):
    """One L-BFGS iteration on all rows; returns the state, the loss before it and the
    loss evaluations it made."""
    loss_fn = partial(_full_batch_loss, model, data=data)
    solver = _lbfgs()
    loss, grads = optax.value_and_grad_from_state(loss_fn)(state.params, state=state.opt_state)
    updates, opt_state = solver.update(grads, state.opt_state, state.params, value=loss,
                                       grad=grads, value_fn=loss_fn)
    steps = optax.tree_utils.tree_get(opt_state, "num_linesearch_steps")
    return MAPState(optax.apply_updates(state.params, updates), opt_state), loss, 1 + steps


def _run_lbfgs(model, data: Data, key, *, training: Training, init_params, validation, name):
    """scikit-learn's ``solver="lbfgs"``: full-batch L-BFGS, one iteration per "epoch"."""
    if validation is not None:
        raise ValueError(
            f"solver='lbfgs' does not support early_stopping=True (inference={name!r}), as "
            "in scikit-learn's MLP; set early_stopping=False or use solver='adam'."
        )
    # the line search follows the gradient of the loss it evaluates: the joint
    # posterior's (a faithful heteroscedastic fit has no loss of its own, see
    # skbnn.likelihoods.HeteroscedasticGaussian)
    model = model.joint()
    key_init, _ = split_key(key)  # the start MAP's other solvers take
    state = _lbfgs_init(single_start(model, key_init, data.X.shape[1:], init_params))
    monitor = EpochMonitor(training, model=model)
    advice = "Raise alpha, or scale the inputs (e.g. with StandardScaler)."
    evaluations = [0]

    def iteration(state, epoch):
        state, loss, n = _lbfgs_iteration(model, state, data)
        evaluations[0] += int(n)
        return state, loss

    def iterations():  # max_iter iterations and max_fun loss evaluations at most
        for epoch in range(training.max_iter):
            if evaluations[0] >= training.optimizer.max_fun:
                return
            yield epoch

    state, stopped = run_epochs(iteration, state, iterations(), strategy=name, advice=advice,
                                monitor=monitor, params=lambda state: state.params)
    check_finite(state.params, strategy=name, advice=advice)
    if not stopped:
        limit = (f"max_fun={training.optimizer.max_fun} loss evaluations"
                 if evaluations[0] >= training.optimizer.max_fun
                 else f"max_iter={training.max_iter} iterations")
        warnings.warn(
            f"lbfgs (inference={name!r}) stopped at {limit} before the loss settled. "
            "Raise max_iter or max_fun.", ConvergenceWarning)
    draws = jax.tree.map(lambda x: np.asarray(x)[None, None], state.params)
    return InferenceResult(posterior=SamplePosterior(draws), loss_curve=monitor.loss_curve,
                           n_iter=len(monitor.loss_curve), diagnostics={},
                           best_loss=monitor.best_loss)


def run(model, data: Data, config: MAPConfig, key, *, training: Training,
        init_params=None, validation: Data | None = None, name="map") -> InferenceResult:
    """Train the MAP for up to ``training.max_iter`` epochs with scikit-learn's stopping rule.

    ``name``: the strategy the user chose, for the warnings (Laplace and NUTS
    train a MAP too). ``config.solver="lbfgs"`` trains on all rows with L-BFGS.
    """
    if config.solver == "lbfgs":
        return _run_lbfgs(model, data, key, training=training, init_params=init_params,
                          validation=validation, name=name)
    config = with_decay_steps(config, training, data)
    key_init, key_epochs = split_key(key)
    state = _init(model, config, key_init, data.X.shape[1:], init_params)
    monitor = EpochMonitor(training, model=model, validation=validation)
    # the cosine is a plan over all max_iter epochs: stopping in its middle would
    # leave the last, large steps' noise in the parameters
    planned = config.learning_rate_schedule == "cosine" and validation is None
    advice = ("Lower learning_rate_init, raise alpha, or scale the inputs "
              "(e.g. with StandardScaler).")
    state, _ = run_epochs(
        lambda state, epoch: _epoch(model, config, state, data, key_epochs, epoch,
                                    training.batch_size, training.shuffle),
        state, range(training.max_iter), strategy=name, advice=advice, monitor=monitor,
        params=lambda state: state.params, stop=not planned)
    params = monitor.best_params if monitor.best_params is not None else state.params
    check_finite(params, strategy=name, advice=advice)
    if not planned:
        monitor.warn_if_not_converged(name)
    elif not loss_settled(monitor.loss_curve, training.tol,
                          window=training.n_iter_no_change)[0]:
        warnings.warn(
            f"Stochastic Optimizer (inference={name!r}): the loss was still falling when the "
            f"step size reached 0 after max_iter={training.max_iter} epochs. Raise max_iter.",
            ConvergenceWarning,
        )
    n_iter = len(monitor.loss_curve)
    draws = jax.tree.map(lambda x: np.asarray(x)[None, None], params)
    return InferenceResult(
        posterior=SamplePosterior(draws),
        loss_curve=monitor.loss_curve,
        n_iter=n_iter,
        diagnostics={},
        validation_scores=monitor.validation_scores,
        best_loss=None if validation is not None else monitor.best_loss,
    )


@serializable
class MAP(BaseStrategy):
    """Maximum a posteriori estimate (Adam by default): the non-Bayesian baseline.

    Parameters
    ----------
    learning_rate : float or None, default=None
        The optimiser's step size; None uses the estimator's
        ``learning_rate_init``.
    learning_rate_schedule : {"cosine", "constant"}, default="cosine"
        "cosine" lowers the step size from ``learning_rate`` to 0 along a
        half cosine over the estimator's ``max_iter`` epochs, so a fixed
        budget of epochs ends with small steps, and the last steps' noise
        averages out of the parameters. The cosine is a plan for all
        ``max_iter`` epochs, so MLP's stopping rule (``tol``,
        ``n_iter_no_change``) does not end it early (``early_stopping=True``
        still does); a ``ConvergenceWarning`` says when the loss was still
        falling at the end. "constant" keeps the step size, and the stopping
        rule, as scikit-learn's MLP does with Adam.
    beta_1, beta_2, epsilon : float or None, default=None
        Adam's settings; None uses the estimator's (scikit-learn MLP's names
        and defaults).

    Notes
    -----
    ``max_iter`` (epochs), ``batch_size``, ``shuffle``, ``tol``,
    ``n_iter_no_change``, ``early_stopping`` and the optimiser (``solver``,
    ``momentum``, ``nesterovs_momentum``, ``learning_rate``, ``power_t``,
    ``max_fun``) come from the estimator and mean what they mean for
    ``MLPClassifier``. With ``solver="lbfgs"`` the whole training set is one
    batch: each "epoch" is one L-BFGS iteration (optax's ``lbfgs`` with a zoom
    line search), for at most ``max_iter`` iterations and ``max_fun`` loss
    evaluations, stopped by MLP's rule (``tol``, ``n_iter_no_change``); the
    step size and its schedule do not apply. The posterior is a single draw, so
    ``predict_uncertainty`` reports no epistemic part.
    """

    name = "map"
    streaming = "epoch"

    _parameter_constraints = {
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "learning_rate_schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
        "beta_1": [Interval(Real, 0, 1, closed="left"), None],
        "beta_2": [Interval(Real, 0, 1, closed="left"), None],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, learning_rate=None, learning_rate_schedule="cosine", beta_1=None,
                 beta_2=None, epsilon=None):
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def config(self, model, training: Training) -> MAPConfig:
        lr = training.learning_rate if self.learning_rate is None else self.learning_rate
        return MAPConfig(
            learning_rate=to_device(lr, jnp.result_type(float)),
            **optimizer_settings(training, beta_1=self.beta_1, beta_2=self.beta_2,
                                 epsilon=self.epsilon),
            learning_rate_schedule=self.learning_rate_schedule,
        )

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        return run(model, data, self.config(model, training), key, training=training,
                   init_params=init_params, validation=validation)
