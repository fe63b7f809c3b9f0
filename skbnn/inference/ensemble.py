"""A deep ensemble: several MAP networks from different starts, trained together.

Lakshminarayanan et al. (2017) train ``M`` networks from independent random
initialisations and average their predictions; in the published UCI and MNIST
tables it is the strongest non-Bayesian baseline, and a good approximation of
a multi-modal posterior (one mode per member; Wilson & Izmailov, 2020). Here
the members are vmapped: each step runs every member's Adam step of
:mod:`skbnn.inference.map` on the same minibatch, so ``M`` members cost about
one network's epoch on small networks (where a step's cost is in launching it)
and ``M`` times it on large ones. The members' losses are averaged for the
loss curve; MAP's schedule and stopping rule apply to them together. The
result is a :class:`~skbnn.posterior.SamplePosterior` with one draw per member
(on the chain axis).
"""

from functools import partial
from numbers import Integral, Real

import jax
import jax.numpy as jnp
import numpy as np

from ..posterior import SamplePosterior
from ..utils._eager import split_key
from ..utils._io import serializable
from ..utils._sklearn_compat import Interval, StrOptions
from . import map as map_
from .base import (
    LEARNING_RATE_SCHEDULES,
    BaseStrategy,
    Data,
    EpochMonitor,
    InferenceResult,
    Training,
    check_finite,
    run_epochs,
    scan_minibatches,
    start_positions,
    with_decay_steps,
)

__all__ = ["Ensemble", "run"]


@partial(jax.jit, static_argnames=("input_shape", "n_members"))
def _init(model, config, rng_key, input_shape, init_params, n_members):
    params = start_positions(model, rng_key, input_shape, n_members, init_params)
    return jax.vmap(lambda p: map_.init(p, config))(params)


@partial(jax.jit, static_argnames=("batch_size", "shuffle"))
def _epoch(model, config, states, data, rng_key, epoch, batch_size, shuffle):
    rng_key = jax.random.fold_in(rng_key, epoch)
    data_size = data.X.shape[0]
    n_eff = jnp.sum(data.weight)

    def step_fn(key, states, batch):
        return jax.vmap(lambda s: map_.step(key, s, batch, model=model, config=config,
                                            data_size=data_size, n_eff=n_eff))(states)

    states, info = scan_minibatches(step_fn, states, data, rng_key, batch_size, shuffle)
    return states, jnp.mean(info.loss)


def run(model, data: Data, config: map_.MAPConfig, key, *, training: Training, n_members: int,
        init_params=None, validation: Data | None = None) -> InferenceResult:
    """Train ``n_members`` MAP networks from their own starts, together."""
    config = with_decay_steps(config, training, data)
    key_init, key_epochs = split_key(key)
    states = _init(model, config, key_init, data.X.shape[1:], init_params, n_members)
    monitor = EpochMonitor(training)
    planned = config.learning_rate_schedule == "cosine"
    advice = ("Lower learning_rate_init, raise alpha, or scale the inputs "
              "(e.g. with StandardScaler).")
    states, _ = run_epochs(
        lambda states, epoch: _epoch(model, config, states, data, key_epochs, epoch,
                                     training.batch_size, training.shuffle),
        states, range(training.max_iter), strategy="ensemble", advice=advice,
        monitor=monitor, stop=not planned)
    check_finite(states.params, strategy="ensemble", advice=advice)
    if not planned:
        monitor.warn_if_not_converged("ensemble")
    draws = jax.tree.map(lambda x: np.asarray(x)[:, None], states.params)
    return InferenceResult(
        posterior=SamplePosterior(draws),
        loss_curve=monitor.loss_curve,
        n_iter=len(monitor.loss_curve),
        diagnostics={"n_members": n_members},
        best_loss=monitor.best_loss,
    )


@serializable
class Ensemble(BaseStrategy):
    """Deep ensemble of MAP networks (Lakshminarayanan et al., 2017), trained together.

    Parameters
    ----------
    n_members : int, default=5
        Networks in the ensemble, each from its own random initialisation.
    learning_rate : float or None, default=None
        Adam's step size; None uses the estimator's ``learning_rate_init``.
    learning_rate_schedule : {"cosine", "constant"}, default="cosine"
        As for :class:`~skbnn.inference.MAP`: "cosine" runs all ``max_iter``
        epochs, "constant" stops by MLP's rule (all members together).
    beta_1, beta_2, epsilon : float or None, default=None
        Adam's settings; None uses the estimator's. The estimator's
        ``solver`` ("adam" or "sgd") and its settings train every member, as
        for :class:`~skbnn.inference.MAP`.

    Notes
    -----
    Not a posterior over the weights: each member is a mode, and the
    ensemble's predictive averages the members' (Lakshminarayanan et al. add
    adversarial training, left out here). ``early_stopping=True`` is refused.

    References
    ----------
    Lakshminarayanan, B., Pritzel, A. and Blundell, C. (2017). Simple and
    scalable predictive uncertainty estimation using deep ensembles. NeurIPS.
    """

    name = "ensemble"
    streaming = "epoch"

    _parameter_constraints = {
        "n_members": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "learning_rate_schedule": [StrOptions(set(LEARNING_RATE_SCHEDULES))],
        "beta_1": [Interval(Real, 0, 1, closed="left"), None],
        "beta_2": [Interval(Real, 0, 1, closed="left"), None],
        "epsilon": [Interval(Real, 0, None, closed="neither"), None],
    }

    def __init__(self, *, n_members=5, learning_rate=None, learning_rate_schedule="cosine",
                 beta_1=None, beta_2=None, epsilon=None):
        self.n_members = n_members
        self.learning_rate = learning_rate
        self.learning_rate_schedule = learning_rate_schedule
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon

    def config(self, model, training: Training) -> map_.MAPConfig:
        return map_.MAP(learning_rate=self.learning_rate,
                        learning_rate_schedule=self.learning_rate_schedule,
                        beta_1=self.beta_1, beta_2=self.beta_2,
                        epsilon=self.epsilon).config(model, training)

    def run(self, model, data, key, *, training, init_params=None, validation=None):
        self._validate_params()
        if training.early_stopping:
            raise ValueError(
                "early_stopping=True is not supported with inference='ensemble'. Set "
                "early_stopping=False, or use inference='map'."
            )
        if training.optimizer.solver == "lbfgs":
            raise ValueError(
                "solver='lbfgs' is not supported with inference='ensemble': its members "
                "train together in one minibatch loop. Use solver='adam' or 'sgd', or "
                "inference='map'."
            )
        return run(model, data, self.config(model, training), key, training=training,
                   n_members=int(self.n_members), init_params=init_params)
