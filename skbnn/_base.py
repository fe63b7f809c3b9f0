"""What the skbnn estimators share: the ``fit`` skeleton, the predictive
reductions, tags, and saving.

The estimators are thin scikit-learn shells. ``fit`` validates with
scikit-learn, encodes targets, builds the :class:`~skbnn.model.Model`, hands
it to the inference strategy and stores what comes back as plain data. The
prediction methods evaluate the posterior predictive and reduce it with numpy.
"""

import os
import warnings
from functools import partial
from numbers import Integral, Real
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import _safe_indexing, check_random_state
from sklearn.utils._available_if import available_if
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import _num_samples, check_is_fitted, column_or_1d

from .inference import STRATEGIES, resolve_inference
from .inference.base import MLP_LEARNING_RATES, SOLVERS, Optimizer, Training, device_data
from .likelihoods import (
    Bernoulli,
    Categorical,
    Gaussian,
    HeteroscedasticGaussian,
    MultilabelBernoulli,
    Poisson,
)
from .model import Model
from .posterior import rows_per_chunk
from .priors import GaussianPrior, LaplacePrior
from .utils._compile import release_compiled_programs
from .utils._eager import key as random_key
from .utils._host import hosted
from .utils._io import load_estimator, save_estimator
from .utils._sklearn_compat import (
    HasMethods,
    Interval,
    StrOptions,
    _check_sample_weight,
    _fit_context,
    validate_data,
)

__all__ = [
    "STEPS_PER_EPOCH",
    "BaseBayesianNetwork",
    "BayesianClassifierMixin",
    "BayesianRegressorMixin",
    "PredictiveUncertainty",
    "auto_batch_size",
]


class PredictiveUncertainty(NamedTuple):
    """Uncertainty of the posterior predictive, split into its two sources.

    Classifiers (in nats, each of shape ``(n_samples,)``):

    - ``total``: entropy of the predictive distribution (mean over draws);
    - ``aleatoric``: expected entropy of the per-draw distributions;
    - ``epistemic``: mutual information between the label and the parameters,
      ``total - aleatoric``.

    Regressors (in units of ``y``, shape ``(n_samples,)`` or
    ``(n_samples, n_outputs)``): ``total`` is the predictive standard deviation,
    ``aleatoric`` the noise part ``sqrt(E[sigma^2])``, ``epistemic`` the spread of
    the per-draw means; ``total**2 == aleatoric**2 + epistemic**2``. With
    ``loss="poisson"`` a draw's mean is its rate and its ``sigma^2`` the rate, so
    ``aleatoric**2 = E[rate]`` and ``epistemic**2 = Var[rate]`` over draws.
    """

    total: np.ndarray
    aleatoric: np.ndarray
    epistemic: np.ndarray


def _float_dtype():
    """JAX's float dtype: float32 unless the user enabled x64."""
    return np.dtype(jnp.result_type(float))


@partial(jax.jit, static_argnums=2)
def _noise_per_draw(likelihood, lik_draws, n_draws):
    return jax.vmap(likelihood.noise, axis_size=n_draws)(lik_draws)


#: ``batch_size="auto"`` aims at this many minibatch steps per epoch.
STEPS_PER_EPOCH = 200


def auto_batch_size(n_rows):
    """``batch_size="auto"``: about :data:`STEPS_PER_EPOCH` steps per epoch, at most 200 rows.

    ``ceil(n_rows / 200)``, capped at 200 (scikit-learn's MLP default):
    1 row per step up to 200 rows, 5 rows for 1,000, 50 for 10,000, 200 from
    40,000 rows on. Inference needs steps, not passes over the data: a
    sampler's chains move a step-size-sized distance per step whatever the
    batch, so a 500-row table with MLP's ``min(200, n)`` gets 3 steps per
    epoch and starves (its posterior is never reached in 200 epochs), while
    here every data set gets about 40,000 steps from the default
    ``max_iter=200``. Chosen on validation splits of the UCI training sets
    (see ``benchmarks/uci.py``): 200 steps per epoch gave a lower held-out NLL
    than 100 or ~15 (batch 32) at the same number of epochs.
    """
    return int(min(200, max(1, -(-int(n_rows) // STEPS_PER_EPOCH))))


def _diagonal_prior(mean, variance):
    """The independent Gaussian prior with these means and variances (pytrees)."""
    dtype = _float_dtype()
    tiny = np.finfo(dtype).tiny
    return GaussianPrior(
        jax.tree.map(lambda v: (1.0 / np.maximum(np.asarray(v, np.float64), tiny)).astype(dtype),
                     variance),
        jax.tree.map(lambda m: np.asarray(m, dtype), mean))


def _entropy(p, axis=-1):
    with np.errstate(divide="ignore", invalid="ignore"):
        return -np.sum(np.where(p > 0, p * np.log(p), 0.0), axis=axis)


#: ``stream_data="auto"`` streams X when it needs more than this share of the
#: device's free memory (the rest is for the network, its gradients and the draws).
STREAM_SHARE = 0.5

#: ``noise_std="auto"``: the share of the rows held back to compare the noise
#: models, the fewest held-back rows worth comparing on (below it the noise is
#: homoscedastic: a mean over fewer rows is too noisy to choose a model on, and
#: small fits stay one fit), and the most (ten thousand rows tell the models
#: apart to a few thousandths of a nat per row).
NOISE_HOLDOUT = 0.2
#: The heteroscedastic model is kept when its held-back gain per row exceeds this
#: many standard errors: 0, the better of the two. It nests the homoscedastic model
#: (its prior is centred there), so choosing it needlessly costs little, and on
#: validation rows (20% of the training rows of UCI splits 0-5 held back, the choice
#: made on the rest) a bar of 0 gave the lowest held-back NLL on every set, or tied;
#: bars of 1 and 2 kept the homoscedastic model where it predicted worse.
NOISE_N_STANDARD_ERRORS = 0.0
NOISE_MIN_HELD_BACK = 50
NOISE_MAX_HELD_BACK = 10_000


def _row_bytes(X):
    """Bytes of ``X`` on the device, in JAX's float dtype (sparse: its non-zeros)."""
    itemsize = np.dtype(_float_dtype()).itemsize
    if sp.issparse(X):
        return X.nnz * (itemsize + 4)
    return int(np.prod(X.shape)) * itemsize


def _device_free_bytes():
    """Free memory of the default device: an accelerator's from its memory statistics;
    for a CPU, whose device memory is the host's, the host's physical memory (``inf``
    where neither is known)."""
    stats = jax.devices()[0].memory_stats() or {}
    if "bytes_limit" in stats:
        return stats["bytes_limit"] - stats.get("bytes_in_use", 0)
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return float("inf")


class BaseBayesianNetwork(BaseEstimator):
    """Base class of the skbnn estimators; not for direct use."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "inference": [StrOptions(set(STRATEGIES)), HasMethods(["run"])],
        "solver": [StrOptions(set(SOLVERS))],
        "learning_rate": [StrOptions(set(MLP_LEARNING_RATES))],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "stream_data": [StrOptions({"auto"}), "boolean"],
    }

    # --- hooks the concrete estimators fill in ---------------------------------

    def _network(self, n_outputs):
        """The network for ``n_outputs`` outputs (from the estimator's parameters)."""
        raise NotImplementedError

    def _input_shape(self, X):
        """Shape of one input row as the network sees it."""
        return X.shape[1:]

    def _prepare_inputs(self, X):
        """Turn validated 2-D ``X`` into the network's input array. Sparse ``X`` stays
        sparse (CSR): training keeps its non-zeros on the device and prediction
        densifies a chunk of rows at a time."""
        if sp.issparse(X):
            return sp.csr_matrix(X, dtype=_float_dtype())
        return np.asarray(X, dtype=_float_dtype())

    def _chunk_size(self, input_shape):
        """Rows per compiled prediction call: draws go through one after another, so
        about 2**23 activation values per draw, 16 to 1024 rows
        (:func:`~skbnn.posterior.rows_per_chunk`)."""
        width = self.model_.network.activation_size(input_shape)
        return rows_per_chunk(width, budget=1 << 23, low=16, high=1024)

    # --- fit --------------------------------------------------------------------

    def _hidden_layer_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = (sizes,) if isinstance(sizes, Integral) else tuple(sizes)
        if any(not isinstance(s, Integral) or s < 1 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {self.hidden_layer_sizes}.")
        return tuple(int(s) for s in sizes)

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Infer the posterior over the network's parameters from ``(X, y)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Training inputs. A sparse matrix is not densified whole: its
            non-zeros go to the device, and each minibatch is densified as
            the network takes it (memory ``n_samples`` times the most
            non-zeros of a row).
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            Target labels (classification) or values (regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights: each row's log-likelihood is multiplied by its
            weight, so an integer weight ``k`` counts as ``k`` copies of the row.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        return self._fit(X, y, sample_weight)

    def _fit(self, X, y, sample_weight=None, *, incremental=False, classes=None):
        """``fit``, or with ``incremental`` one ``partial_fit`` step (see there)."""
        release_compiled_programs()  # see skbnn/utils/_compile.py
        fitted = hasattr(self, "posterior_")
        strategy = resolve_inference(self.inference)
        if incremental:
            mode = self._check_streaming(strategy, fitted)
            warm = fitted
        else:
            warm = bool(self.warm_start) and fitted
        # the regressor's noise_std="auto": which noise model (before anything is fitted)
        self._choose_model(X, y, sample_weight, first=not warm and not (incremental and fitted),
                           incremental=incremental)
        X, y = validate_data(
            self, X, y, reset=not warm, accept_sparse=["csr", "csc"], multi_output=True,
            y_numeric=not is_classifier(self), dtype=(np.float64, np.float32),
            ensure_min_samples=1 if incremental else 2,
        )
        self._hidden_layer_sizes()  # fail early on a bad architecture
        X = self._prepare_inputs(X)
        sample_weight = _check_sample_weight(sample_weight, X, ensure_non_negative=True)
        y_enc, likelihood = self._encode_targets(
            y, sample_weight, warm, **self._target_options(incremental, classes, fitted))
        prior = GaussianPrior(np.asarray(self.alpha, dtype=_float_dtype()))
        if incremental and fitted and mode == "prior":
            prior = self._posterior_as_prior()
        elif incremental and fitted and mode == "curvature":
            prior = self._laplace_as_prior()
        elif incremental and fitted and mode == "draws":
            prior = self._draws_as_prior()
        model = Model.build(self._network(likelihood.n_network_outputs), likelihood, prior)

        rng = check_random_state(self.random_state)
        if incremental and fitted:  # another batch: other minibatch orders and draws
            rng = np.random.RandomState(rng.randint(np.iinfo(np.int32).max) + self.n_iter_)
        key = random_key(np.int32(rng.randint(np.iinfo(np.int32).max)))
        # as scikit-learn's MLP, partial_fit does not hold rows back for early stopping
        train, validation = ((X, y_enc, sample_weight), None) if incremental else \
            self._split_validation(X, y_enc, sample_weight, rng)
        n_train = train[0].shape[0]
        seen = (int(getattr(self, "n_samples_seen_", 0)) if incremental and fitted else 0) \
            + n_train
        training = Training(
            max_iter=1 if incremental and mode == "epoch" else int(self.max_iter),
            batch_size=self._batch_size(n_train),
            learning_rate=float(self.learning_rate_init),
            shuffle=bool(self.shuffle),
            tol=float(self.tol),
            n_iter_no_change=int(self.n_iter_no_change),
            early_stopping=bool(self.early_stopping) and not incremental,
            verbose=int(self.verbose),
            validation_fraction=float(self.validation_fraction),
            optimizer=Optimizer(
                solver=self.solver, learning_rate=self.learning_rate,
                power_t=float(self.power_t), momentum=float(self.momentum),
                nesterovs_momentum=bool(self.nesterovs_momentum), beta_1=float(self.beta_1),
                beta_2=float(self.beta_2), epsilon=float(self.epsilon),
                max_fun=int(self.max_fun)),
        )
        init_params = self._warm_start_params(model, X) if warm else None
        stream = self._stream_rows(X, strategy, training)
        with warnings.catch_warnings(), hosted():
            if incremental and mode == "epoch":
                # one epoch by design, as MLP's partial_fit: not a convergence problem
                warnings.filterwarnings("ignore", category=ConvergenceWarning)
            result = strategy.run(
                model, device_data(*train, stream=stream), key, training=training,
                init_params=init_params,
                validation=None if validation is None else device_data(*validation,
                                                                       stream=stream),
            )
        self._store_fit(result, model, strategy, n_train, X, warm=warm)
        self.n_samples_seen_ = seen
        return self

    def _choose_model(self, X, y, sample_weight, *, first, incremental):
        """Choices a fit makes by fitting first (the regressor's ``noise_std="auto"``)."""

    def _stream_rows(self, X, strategy, training):
        """Whether ``X`` stays on the host and goes to the device a minibatch at a time
        (``stream_data``; "auto": when it takes more than ``STREAM_SHARE`` of the
        device's free memory and the strategy can). ``True`` refuses a strategy or
        solver that needs all rows at once."""
        name = getattr(strategy, "name", None) or type(strategy).__name__
        refusal = getattr(strategy, "host_rows_refusal", "it declares no host streaming")
        if refusal is None and training.optimizer.solver == "lbfgs":
            refusal = "solver='lbfgs' is full-batch: every step takes all rows"
        if self.stream_data == "auto":  # where the strategy can, and X needs it
            return refusal is None and _row_bytes(X) > STREAM_SHARE * _device_free_bytes()
        if self.stream_data and refusal is not None:
            raise ValueError(
                "stream_data=True keeps the training rows on the host and streams minibatches "
                f"to the device, which inference={name!r} cannot take: {refusal}. Use a "
                "minibatch strategy ('psgld', 'vi', 'map', 'laplace', 'ensemble') with "
                "solver 'adam' or 'sgd'.")
        return bool(self.stream_data)

    def _target_options(self, incremental, classes, fitted):
        """Keyword arguments of ``_encode_targets`` for a ``partial_fit`` step."""
        return {}

    def _check_streaming(self, strategy, fitted):
        """The strategy's ``streaming`` mode (``partial_fit`` exists only where it has one,
        see ``_check_partial_fit_available``), after checking that a stream goes on with
        the strategy it started with."""
        name = getattr(strategy, "name", None) or type(strategy).__name__
        mode = strategy.streaming
        previous = getattr(getattr(self, "inference_", None), "name", None)
        if fitted and previous != name:
            raise ValueError(
                f"partial_fit continues the previous fit, which used inference={previous!r}, "
                f"but inference is now {name!r}. Call fit to start again with {name!r}."
            )
        return mode

    #: ``partial_fit`` after a sampler: the draws' full covariance is used when there
    #: are at least this many draws per parameter (else their variances).
    DRAWS_PER_PARAMETER = 10

    def _draws_as_prior(self):
        """The previous fit's draws as the next batch's prior (``partial_fit``, "draws"
        mode): the Gaussian with their mean and covariance. The full covariance where
        there are at least ``DRAWS_PER_PARAMETER`` draws per network parameter and at most
        ``Full.max_params`` parameters (a ``skbnn.priors.LaplacePrior`` with the
        "full" structure), else their variances (a per-parameter
        ``skbnn.priors.GaussianPrior``)."""
        from jax.flatten_util import ravel_pytree

        from .structures import Full

        dtype = _float_dtype()
        draws = jax.device_get(self.posterior_.flatten()["network"])
        leaves = jax.tree.leaves(draws)
        # one row per draw, in ravel_pytree's order (the leaves', each raveled)
        flat = np.concatenate([np.asarray(x, np.float64).reshape(x.shape[0], -1)
                               for x in leaves], axis=1)
        _, unravel = ravel_pytree(jax.tree.map(lambda x: x[0], draws))
        n_draws, n_params = flat.shape
        mean = unravel(flat.mean(axis=0).astype(dtype))
        if n_draws < 2:
            raise ValueError("partial_fit needs at least 2 draws of the previous fit to make "
                             "its prior; raise n_draws or n_chains.")
        if n_draws >= self.DRAWS_PER_PARAMETER * n_params and n_params <= Full.max_params:
            precision = np.linalg.inv(np.atleast_2d(np.cov(flat, rowvar=False)))
            precision = 0.5 * (precision + precision.T)
            # split into an isotropic part and the rest, as LaplacePrior holds a posterior
            alpha = 0.5 * float(np.linalg.eigvalsh(precision)[0])
            rest = precision - alpha * np.eye(n_params)
            return LaplacePrior(alpha=np.asarray(alpha, dtype), mean=mean,
                                curvature={"G": rest.astype(dtype)},
                                n_eff=np.asarray(1.0, dtype), structure="full",
                                subset=("network",))
        return _diagonal_prior(mean, unravel(flat.var(axis=0, ddof=1)))

    def _laplace_as_prior(self):
        """The fitted Laplace posterior as the next batch's prior (``partial_fit``,
        "curvature" mode): ``skbnn.priors.LaplacePrior``."""
        posterior = self.posterior_
        if getattr(posterior, "curvature", None) is None:
            raise ValueError(
                "partial_fit needs the summed curvature of the previous Laplace fit, which "
                "this fit does not hold (a 'lowrank' structure, or a model saved before "
                "skbnn kept it). Call fit to start again.")
        delta = np.asarray(self.diagnostics_["prior_precision"], dtype=_float_dtype())
        if delta.size != 1:
            raise ValueError("partial_fit needs one prior precision; the previous fit chose "
                             "one per layer. Call fit to start again.")
        return LaplacePrior(
            alpha=delta.reshape(()), mean=posterior.mean["network"],
            curvature=posterior.curvature, n_eff=np.asarray(posterior.n_eff),
            structure=posterior.structure, subset=tuple(posterior.subset))

    def _posterior_as_prior(self):
        """The fitted Gaussian posterior of the network's parameters, as a prior: each
        parameter's posterior mean and marginal variance (``partial_fit``, "prior" mode)."""
        posterior = self.posterior_
        if not hasattr(posterior, "marginal_variance") or getattr(posterior, "subset", ()):
            raise ValueError(
                "partial_fit needs the previous posterior of every network parameter as a "
                f"Gaussian, but it is a {type(posterior).__name__}"
                + (" over a subset of the weights" if getattr(posterior, "subset", ()) else "")
                + ". Call fit to start again.")
        return _diagonal_prior(posterior.mean["network"],
                               posterior.marginal_variance()["network"])

    def _split_validation(self, X, y, sample_weight, rng):
        if not self.early_stopping:
            return (X, y, sample_weight), None
        stratify = y if is_classifier(self) else None
        try:
            parts = train_test_split(
                X, y, sample_weight, random_state=rng,
                test_size=self.validation_fraction, stratify=stratify,
            )
        except ValueError as exc:
            raise ValueError(
                f"The validation set is too small for early_stopping ({exc}). Increase "
                "validation_fraction or the size of your dataset."
            ) from exc
        X_tr, X_val, y_tr, y_val, w_tr, w_val = parts
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small: it has fewer than 2 rows. Increase "
                "validation_fraction or the size of your dataset."
            )
        return (X_tr, y_tr, w_tr), (X_val, y_val, w_val)

    def _batch_size(self, n_train):
        if self.batch_size == "auto":
            return auto_batch_size(n_train)
        if self.batch_size > n_train:
            warnings.warn(
                f"Got batch_size={self.batch_size} larger than the {n_train} training rows; "
                "it is clipped to the number of rows."
            )
        return int(min(self.batch_size, n_train))

    def _warm_start_params(self, model, X):
        """Where the previous fit ended (one point, or one per chain), checked against the model."""
        start = self.posterior_.warm_start_params()
        expected = jax.eval_shape(lambda: model.init(jax.random.key(0), X.shape[1:]))

        def fits(s, e):  # same shape, possibly with a leading chain axis
            return np.shape(s)[np.ndim(s) - e.ndim:] == e.shape and np.ndim(s) - e.ndim in (0, 1)

        same_tree = jax.tree.structure(start) == jax.tree.structure(expected)
        if not same_tree or not all(map(fits, jax.tree.leaves(start), jax.tree.leaves(expected))):
            raise ValueError(
                "warm_start=True continues from the previous fit, which had another "
                "architecture or number of outputs. Refit with warm_start=False."
            )
        return start

    def _store_fit(self, result, model, strategy, n_train, X=None, warm=False):
        """Store what a fit produced; a warm start continues ``loss_curve_``, ``n_iter_``
        and ``t_`` as scikit-learn's MLP does."""
        before = ((list(self.loss_curve_), int(self.n_iter_), int(self.t_))
                  if warm else ([], 0, 0))
        posterior = jax.device_get(result.posterior)
        mean = jax.device_get(posterior.mean_params())
        network = model.network
        layers = [mean["network"][name] for name in network.layer_names]
        coefs = [np.asarray(layer["kernel"]) for layer in layers]
        intercepts = [np.asarray(layer["bias"]) for layer in layers]
        coefs, intercepts = self._output_units(coefs, intercepts, model)

        self.model_ = jax.device_get(model)
        # a refit with another strategy must not keep the last one's diagnostics
        for name in getattr(getattr(self, "inference_", None), "fitted_diagnostics", ()):
            self.__dict__.pop(f"{name}_", None)
        self.inference_ = strategy
        self.coefs_ = coefs
        self.intercepts_ = intercepts
        self.loss_curve_ = before[0] + [float(v) for v in result.loss_curve]
        self.loss_ = self.loss_curve_[-1] if self.loss_curve_ else None
        self.best_loss_ = result.best_loss
        self.validation_scores_ = result.validation_scores
        self.best_validation_score_ = (
            max(result.validation_scores) if result.validation_scores else None
        )
        self.n_iter_ = before[1] + int(result.n_iter)
        self.t_ = before[2] + int(result.n_iter) * int(n_train)
        self.n_layers_ = len(network.layer_names) + 1
        # MLP's meaning: the targets of a regressor (a heteroscedastic network has
        # a noise unit per target too), the output units of a classifier
        self.n_outputs_ = int(getattr(model.likelihood, "n_outputs",
                                      model.likelihood.n_network_outputs))
        self.out_activation_ = model.likelihood.out_activation
        self.diagnostics_ = dict(result.diagnostics or {})
        # diagnostics a strategy also exposes as fitted attributes (NUTS: rhat_, ess_, ...)
        for name in getattr(strategy, "fitted_diagnostics", ()):
            setattr(self, f"{name}_", self.diagnostics_[name])
        self.posterior_ = posterior

    def _output_units(self, coefs, intercepts, model):
        """Hook: regressors fold their target scaling into the last layer."""
        return coefs, intercepts

    def __sklearn_is_fitted__(self):
        return hasattr(self, "posterior_")

    # --- predictive -------------------------------------------------------------

    def _validated_inputs(self, X):
        check_is_fitted(self)
        X = validate_data(self, X, reset=False, accept_sparse=["csr", "csc"],
                          dtype=(np.float64, np.float32))
        X = self._prepare_inputs(X)
        return X, self._chunk_size(X.shape[1:])

    def _predictive(self, X):
        """Per-draw predictive quantities of the likelihood, each ``(n_draws, n_samples, ...)``."""
        X, chunk_size = self._validated_inputs(X)
        return self.posterior_.predict_draws(self.model_, X, chunk_size=chunk_size)

    def _predictive_moments(self, X):
        """The posterior's closed-form predictive (shapes of one draw), or None."""
        X, chunk_size = self._validated_inputs(X)
        return self.posterior_.predict_moments(self.model_, X, chunk_size=chunk_size)

    # --- parameters -------------------------------------------------------------

    def get_params(self, deep=True):
        """Parameters of the estimator, as scikit-learn's ``get_params``.

        With ``deep=True`` the strategy's parameters are listed as
        ``inference__<name>``, also when ``inference`` is a name such as
        ``"psgld"`` (its default settings), so that a search can name them.
        """
        params = super().get_params(deep=deep)
        if deep and isinstance(self.inference, str) and self.inference in STRATEGIES:
            for name, value in STRATEGIES[self.inference]().get_params(deep=True).items():
                params[f"inference__{name}"] = value
        return params

    def set_params(self, **params):
        """Set parameters, as scikit-learn's ``set_params``.

        ``inference__<name>`` sets a strategy parameter. When ``inference`` is a
        name, the name is replaced by that strategy's object with the parameter
        set (``inference="psgld", inference__temperature=0.5`` gives
        ``inference=PSGLD(temperature=0.5)``), so a grid can search strategy
        settings, and ``inference`` itself over names and objects, without
        constructing strategy objects by hand. ``inference`` is set before its
        nested parameters.
        """
        prefix = "inference__"
        nested = {key[len(prefix):]: params.pop(key) for key in list(params)
                  if key.startswith(prefix)}
        super().set_params(**params)
        if not nested:
            return self
        inference = self.inference
        if isinstance(inference, str):
            if inference not in STRATEGIES:
                raise ValueError(
                    f"inference={inference!r} is not a known strategy, so its parameters "
                    f"{sorted(nested)} cannot be set; choose one of {sorted(STRATEGIES)}."
                )
            self.inference = STRATEGIES[inference]()
        elif not callable(getattr(inference, "set_params", None)):
            raise TypeError(
                f"inference={inference!r} has no set_params, so its parameters "
                f"{sorted(nested)} cannot be set."
            )
        self.inference.set_params(**nested)
        return self

    # --- export -----------------------------------------------------------------

    def to_arviz(self):
        """The posterior draws as ArviZ ``InferenceData`` (needs ``arviz``).

        The ``posterior`` group holds one variable per parameter array, named
        by its path (``network.dense_0.kernel``, ``likelihood.log_noise``),
        with dimensions ``(chain, draw, *shape)``: pSGLD's and NUTS's chains
        as they ran, the ensemble's members as chains of one draw each, MAP as
        one chain of one draw, and the Gaussian posteriors of VI and Laplace
        as one chain of their predictive draws (independent draws, so there is
        nothing to diagnose across chains). ``attrs`` carry the strategy's
        name and its scalar diagnostics (``max_rhat``, ``min_ess``, ...), so
        ``arviz.summary``, ``arviz.rhat`` and ``arviz.plot_trace`` work on
        the fit, and ``to_netcdf`` stores it.
        """
        check_is_fitted(self)
        try:
            import arviz
        except ImportError as err:
            raise ImportError(
                "to_arviz needs arviz: pip install arviz (or skbnn's 'arviz' extra)."
            ) from err
        posterior = self.posterior_
        if hasattr(posterior, "draws"):
            draws = posterior.draws
        else:  # a Gaussian: its predictive draws, one chain
            draws = jax.tree.map(lambda x: np.asarray(x)[None], posterior.predictive_draws())
        variables, dims = {}, {}
        for path, leaf in jax.tree_util.tree_flatten_with_path(jax.device_get(draws))[0]:
            name = ".".join(str(getattr(k, "key", k)) for k in path)
            leaf = np.asarray(leaf)
            variables[name] = leaf
            dims[name] = [f"{name}_dim_{i}" for i in range(leaf.ndim - 2)]
        attrs = {"inference": getattr(self.inference_, "name", type(self.inference_).__name__),
                 "estimator": type(self).__name__}
        for key, value in getattr(self, "diagnostics_", {}).items():
            if isinstance(value, (bool, int, float, str, np.integer, np.floating)):
                attrs[key] = value.item() if isinstance(value, np.generic) else value
        idata = arviz.from_dict(posterior=variables, dims=dims)
        idata.posterior.attrs.update(attrs)
        return idata

    # --- saving -----------------------------------------------------------------

    def save(self, path):
        """Save the estimator, fitted or not, to ``path`` as arrays + JSON (an ``.npz`` file).

        Unlike pickle, loading the file with :meth:`load` or :func:`skbnn.load`
        runs no code from it.
        """
        save_estimator(self, path)

    def _check_restored(self):
        """After loading: the stored parameters have the shapes the stored model has."""
        if not hasattr(self, "posterior_"):
            return
        X = self._prepare_inputs(np.zeros((1, self.n_features_in_)))
        expected = jax.eval_shape(lambda: self.model_.init(jax.random.key(0), X.shape[1:]))
        stored = self.posterior_.mean_params()
        if jax.tree.structure(stored) != jax.tree.structure(expected):
            raise ValueError("its parameters do not match its network's layers.")
        for got, want in zip(jax.tree.leaves(stored), jax.tree.leaves(expected)):
            if np.shape(got) != want.shape:
                raise ValueError(f"a parameter array has shape {np.shape(got)} where its "
                                 f"network has {want.shape}.")

    @classmethod
    def load(cls, path):
        """Load an estimator saved with :meth:`save`; it must be a ``cls``."""
        est = load_estimator(path)
        if not isinstance(est, cls):
            raise TypeError(f"{path!s} holds a {type(est).__name__}, not a {cls.__name__}.")
        return est

    def _check_partial_fit_available(self):
        """``partial_fit`` exists where it can run: as in scikit-learn's MLP, not with
        ``solver="lbfgs"``, and not with a strategy that cannot stream (NUTS,
        Laplace); the ``AttributeError`` says why."""
        if self.solver == "lbfgs":
            raise AttributeError(
                "partial_fit is only available for stochastic optimizers. lbfgs is not "
                "stochastic.")
        strategy = self.inference
        if isinstance(strategy, str):
            strategy = STRATEGIES[strategy]() if strategy in STRATEGIES else None
        if strategy is not None and getattr(strategy, "streaming", None) is None:
            name = getattr(strategy, "name", None) or type(strategy).__name__
            reason = getattr(strategy, "streaming_refusal", "it declares no streaming mode")
            raise AttributeError(f"partial_fit is not available with inference={name!r}: "
                                 f"{reason}.")
        return True

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.non_deterministic = False
        return tags


class BayesianClassifierMixin(ClassifierMixin):
    """Targets, predictive reductions and tags of the skbnn classifiers."""

    @available_if(lambda est: est._check_partial_fit_available())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the posterior with the rows ``(X, y)``: one step of a stream.

        Each call is one update of the posterior (see the table in
        :ref:`partial-fit`): with ``inference="vi"``, ``"laplace"`` or
        ``"psgld"`` the posterior so far (as a Gaussian) is the prior of a fit
        on these rows: Bayesian updating, so giving the same rows twice counts
        them twice (pSGLD's chains continue from their last draws); ``"map"``
        and ``"ensemble"`` run one epoch on them, as
        ``MLPClassifier.partial_fit`` does; ``"nuts"`` has none.

        As in scikit-learn's MLP, ``early_stopping`` does not apply, and
        ``solver="lbfgs"`` has no ``partial_fit``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            Labels, or a multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the rows.
        classes : array of shape (n_classes,), default=None
            Every class of the stream; required on the first call (except
            for multilabel targets), ignored after it. ``y`` need not hold
            all of them.

        Returns
        -------
        self : object
        """
        if not hasattr(self, "posterior_") and classes is None:
            if type_of_target(y, input_name="y") != "multilabel-indicator":
                raise ValueError("classes must be passed on the first call to partial_fit.")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    def _target_options(self, incremental, classes, fitted):
        if not incremental:
            return {}
        return {"classes": self.classes_ if fitted and classes is None else classes}

    def _encode_targets(self, y, sample_weight, warm, *, classes=None):
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        target_type = type_of_target(y, input_name="y")
        if target_type == "multilabel-indicator":
            return self._encode_multilabel(y, warm)
        if target_type not in ("binary", "multiclass"):
            raise ValueError(
                f"{type(self).__name__} supports binary, multiclass and multilabel "
                f"(indicator matrix) targets, got {target_type!r} targets."
            )
        if warm and self._multilabel:
            raise ValueError("warm_start needs multilabel targets, as in the previous fit.")
        if classes is not None:  # partial_fit: the classes of the whole stream
            return self._encode_stream_labels(y, classes)
        classes = np.unique(y)
        if classes.size < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contain only one class: {classes[0]!r}."
            )
        if warm and not np.array_equal(classes, self.classes_):
            raise ValueError(
                "warm_start can only be used where `y` has the same classes as in the "
                "previous call to fit. Previously got "
                f"{self.classes_}, `y` has {classes}."
            )
        self.classes_ = classes
        likelihood = Bernoulli() if classes.size == 2 else Categorical(int(classes.size))
        return np.searchsorted(classes, y).astype(np.int32), likelihood

    def _encode_stream_labels(self, y, classes):
        """``partial_fit``'s labels: ``y`` may hold any of ``classes``, all of the stream."""
        classes = np.unique(np.asarray(classes))
        if hasattr(self, "classes_") and not np.array_equal(classes, self.classes_):
            raise ValueError(
                f"`classes={classes}` is not the same as on the first call to partial_fit, "
                f"which was {self.classes_}.")
        if classes.size < 2:
            raise ValueError(f"classes must hold at least 2 classes, got {classes}.")
        unknown = np.setdiff1d(np.unique(y), classes)
        if unknown.size:
            raise ValueError(f"`y` has classes not in `classes` ({classes}): {unknown}.")
        self.classes_ = classes
        likelihood = Bernoulli() if classes.size == 2 else Categorical(int(classes.size))
        return np.searchsorted(classes, y).astype(np.int32), likelihood

    def _encode_multilabel(self, y, warm):
        """An indicator matrix: one Bernoulli per label, as MLPClassifier fits it."""
        y = y.toarray() if sp.issparse(y) else np.asarray(y)
        classes = np.arange(y.shape[1])
        if warm and not (self._multilabel and np.array_equal(classes, self.classes_)):
            raise ValueError(
                f"warm_start needs the targets of the previous fit; got {y.shape[1]} labels "
                f"where it had classes {self.classes_}."
            )
        self.classes_ = classes
        return (y == 1).astype(np.int32), MultilabelBernoulli(int(y.shape[1]))

    @property
    def _multilabel(self):
        """Whether the fitted model has multilabel targets."""
        return isinstance(getattr(getattr(self, "model_", None), "likelihood", None),
                          MultilabelBernoulli)

    def sample_predictions(self, X):
        """Class probabilities under each posterior draw.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_classes)
            For multilabel targets: each label's probability, ``(n_draws,
            n_samples, n_labels)``.
        """
        (probs,) = self._predictive(X)
        return probs.astype(np.float64)

    def predict_proba(self, X):
        """Posterior predictive class probabilities (the mean over posterior draws).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``. For multilabel targets, each label's
            probability of being present (rows need not sum to 1), as
            ``MLPClassifier`` gives them.
        """
        moments = self._predictive_moments(X)
        if moments is None:
            proba = self.sample_predictions(X).mean(axis=0)
        else:
            proba = np.asarray(moments[0], dtype=np.float64)
        if self._multilabel:
            return proba
        return proba / proba.sum(axis=1, keepdims=True)

    def predict_log_proba(self, X):
        """Logarithm of :meth:`predict_proba`."""
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))

    def predict(self, X):
        """The class with the highest posterior predictive probability; for multilabel
        targets, the indicator matrix of the labels more probable than not."""
        proba = self.predict_proba(X)
        if self._multilabel:
            return (proba > 0.5).astype(np.int64)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_uncertainty(self, X):
        """Predictive entropy and its split into aleatoric and epistemic parts.

        Returns
        -------
        PredictiveUncertainty
            ``total`` (entropy of the predictive), ``aleatoric`` (expected
            entropy) and ``epistemic`` (mutual information), in nats, each of
            shape ``(n_samples,)``. For multilabel targets, the sums over
            the labels of their Bernoulli entropies (the labels are
            independent given the parameters).
        """
        probs = self.sample_predictions(X)
        if self._multilabel:  # each label a two-class distribution
            probs = np.stack([1.0 - probs, probs], axis=-1)
            total = _entropy(probs.mean(axis=0)).sum(axis=-1)
            aleatoric = _entropy(probs).mean(axis=0).sum(axis=-1)
            epistemic = np.maximum(total - aleatoric, 0.0)
            return PredictiveUncertainty(total, np.minimum(aleatoric, total), epistemic)
        total = _entropy(probs.mean(axis=0))
        aleatoric = _entropy(probs).mean(axis=0)
        epistemic = np.maximum(total - aleatoric, 0.0)
        return PredictiveUncertainty(total, np.minimum(aleatoric, total), epistemic)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class BayesianRegressorMixin(RegressorMixin):
    """Targets, predictive reductions and tags of the skbnn regressors."""

    @available_if(lambda est: est._check_partial_fit_available())
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the posterior with the rows ``(X, y)``: one step of a stream.

        One update of the posterior per call, by strategy as for the
        classifier (:ref:`partial-fit`); ``"map"`` and ``"ensemble"`` run one
        epoch, as ``MLPRegressor.partial_fit`` does.

        The target scaling of ``normalize_y`` is set on the first call and
        kept after it. As in scikit-learn's MLP, ``early_stopping`` does not
        apply, and ``solver="lbfgs"`` has no ``partial_fit``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Frequency weights of the rows.

        Returns
        -------
        self : object
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def _target_options(self, incremental, classes, fitted):
        return {"keep_scaling": incremental and fitted}

    def _noise_model(self):
        """``noise_std`` with "auto" resolved: 'learn', 'heteroscedastic' or a float."""
        if self.noise_std != "auto":
            return self.noise_std
        return getattr(self, "noise_model_", "learn")

    def _choose_model(self, X, y, sample_weight, *, first, incremental):
        """``noise_std="auto"``: the homoscedastic or the heteroscedastic noise model,
        whichever predicts held-back rows better.

        A share ``NOISE_HOLDOUT`` of the rows (at most ``NOISE_MAX_HELD_BACK``) is held
        back by giving it zero weight, so the fits copy nothing and a streamed ``X``
        stays on the host (only the held-back rows are gathered, to be scored); the
        estimator is fitted with each noise model on the rest, and each scores the
        held-back rows by their log predictive density. The
        heteroscedastic model is kept when its mean gain per row exceeds
        ``NOISE_N_STANDARD_ERRORS`` (0) standard errors of the paired differences: the
        better of the two on the held-back rows. With fewer than
        ``NOISE_MIN_HELD_BACK`` held-back rows (or in a stream of ``partial_fit``
        calls, or with ``loss="poisson"``) nothing is compared and the noise is
        homoscedastic. ``warm_start`` keeps the previous fit's choice.
        """
        if self.noise_std != "auto":
            self.noise_model_ = "fixed" if not isinstance(self.noise_std, str) \
                else self.noise_std
            self._noise_scores = None
            return
        if not first:  # warm_start or a later partial_fit: the first fit's model
            return
        self.noise_model_, self._noise_scores = "learn", None
        try:
            n = _num_samples(X)
        except TypeError:
            return  # not an array: the fit's own validation says why
        n_held = min(round(NOISE_HOLDOUT * n), NOISE_MAX_HELD_BACK)
        if (incremental or getattr(self, "loss", "squared_error") == "poisson"
                or n_held < NOISE_MIN_HELD_BACK):
            return
        weight = np.array(_check_sample_weight(sample_weight, X, ensure_non_negative=True),
                          dtype=np.float64)
        held = np.sort(check_random_state(self.random_state).permutation(n)[:n_held])
        if weight[held].sum() <= 0 or np.all(np.delete(weight, held) == 0):
            return  # nothing to score on, or nothing to fit to: nothing to compare
        train_weight = weight.copy()
        train_weight[held] = 0.0
        X_held, y_held = _safe_indexing(X, held), _safe_indexing(y, held)
        y_held = np.asarray(y_held, dtype=np.float64).reshape(n_held, -1)
        scores = {}
        for noise in ("learn", "heteroscedastic"):
            sub = clone(self).set_params(noise_std=noise, verbose=0, warm_start=False)
            with warnings.catch_warnings():
                # the fit on all rows below warns for itself
                warnings.simplefilter("ignore", ConvergenceWarning)
                sub.fit(X, y, sample_weight=train_weight)
            mean, noise_scale = sub._moments(X_held)
            scores[noise] = np.asarray(sub.model_.likelihood.log_predictive_density(
                (mean, noise_scale), y_held), dtype=np.float64)
        # the held-back rows count by their weights (frequency weights: a row of
        # weight k is k rows)
        w = weight[held]
        total = w.sum()
        gain = scores["heteroscedastic"] - scores["learn"]
        mean_gain = float(w @ gain / total)
        se = float(np.sqrt(w @ (gain - mean_gain) ** 2 / max(total - 1.0, 1.0) / total))
        self._noise_scores = {
            "learn": float(w @ scores["learn"] / total),
            "heteroscedastic": float(w @ scores["heteroscedastic"] / total),
            "standard_error": se, "held_back_rows": int(n_held)}
        if mean_gain > NOISE_N_STANDARD_ERRORS * se:
            self.noise_model_ = "heteroscedastic"
        if self.verbose:
            print(f"noise_std = {self.noise_model_!r} (held-back log density per row: "
                  f"learn {self._noise_scores['learn']:.4f}, heteroscedastic "
                  f"{self._noise_scores['heteroscedastic']:.4f}, standard error of the "
                  f"difference {se:.4f})")

    def _encode_targets(self, y, sample_weight, warm, *, keep_scaling=False):
        y = np.asarray(y, dtype=np.float64)
        y2 = y.reshape(y.shape[0], -1)
        n_outputs = y2.shape[1]
        if warm and n_outputs != self.n_outputs_:
            raise ValueError(
                f"warm_start needs the same number of outputs as the previous fit "
                f"({self.n_outputs_}), got {n_outputs}."
            )
        if keep_scaling and n_outputs != self.n_outputs_:
            raise ValueError(
                f"partial_fit needs the number of outputs of the first call "
                f"({self.n_outputs_}), got {n_outputs}.")
        if getattr(self, "loss", "squared_error") == "poisson":
            return self._encode_counts(y2, sample_weight, keep_scaling)
        if keep_scaling:  # partial_fit after the first call: the first call's units
            mean, scale = self._y_mean, self._y_scale
        elif self.normalize_y:
            # weighted moments: a row of weight k counts as k copies
            w = sample_weight / sample_weight.sum()
            mean = w @ y2
            scale = np.sqrt(w @ (y2 - mean) ** 2)
            scale = np.where(scale > 10 * np.finfo(np.float64).eps, scale, 1.0)
        else:
            mean, scale = np.zeros(n_outputs), np.ones(n_outputs)
        self._y_mean = mean
        self._y_scale = scale
        dtype = _float_dtype()
        noise_std = self._noise_model()
        if noise_std == "heteroscedastic":
            likelihood = HeteroscedasticGaussian(
                n_outputs, min_noise=np.asarray(1e-3, dtype=dtype),
                noise_prior_scale=np.asarray(0.5, dtype=dtype))
        elif noise_std == "learn":
            likelihood = Gaussian(n_outputs, learn_noise=True,
                                  noise_std=np.ones(n_outputs, dtype=dtype),
                                  noise_prior_scale=np.asarray(0.5, dtype=dtype))
        else:
            likelihood = Gaussian(n_outputs, learn_noise=False,
                                  noise_std=np.asarray(noise_std / scale, dtype=dtype),
                                  noise_prior_scale=np.asarray(0.5, dtype=dtype))
        return (y2 - mean) / scale, likelihood

    def _encode_counts(self, y2, sample_weight, keep_scaling=False):
        """``loss="poisson"``: ``y`` as given (scaling counts would change their
        likelihood), with the log of the weighted mean count as the log-rate offset
        when ``normalize_y`` (the prior then centres on the constant model)."""
        if np.any(y2 < 0):
            raise ValueError(
                "Some value(s) of y are negative which is not allowed for Poisson regression."
            )
        if self.noise_std not in ("learn", "auto"):
            raise ValueError(
                f"noise_std={self.noise_std!r} applies to loss='squared_error' only: a "
                "Poisson's variance is its mean. Leave noise_std at 'auto' or 'learn' with "
                "loss='poisson'."
            )
        n_outputs = y2.shape[1]
        self._y_mean = np.zeros(n_outputs)
        self._y_scale = np.ones(n_outputs)
        offset = np.zeros(n_outputs)
        if keep_scaling:  # partial_fit after the first call: the first call's offset
            offset = np.asarray(self.model_.likelihood.offset)
        elif self.normalize_y:
            mean = (sample_weight / sample_weight.sum()) @ y2
            offset = np.log(np.where(mean > 0, mean, 1.0))
        dtype = _float_dtype()
        return y2, Poisson(n_outputs, offset=np.asarray(offset, dtype=dtype))

    def _output_units(self, coefs, intercepts, model):
        """The mean outputs (the first ``n_outputs`` units; a heteroscedastic model's
        noise units follow them and stay in the network's units) in units of ``y``."""
        k = self._y_scale.shape[0]
        coef, intercept = coefs[-1].copy(), intercepts[-1].copy()
        coef[:, :k] = coef[:, :k] * self._y_scale.astype(coef.dtype)
        # a Poisson's log-rate offset belongs to the last intercept, as the mean of y does
        offset = np.asarray(getattr(model.likelihood, "offset", 0.0))
        intercept[:k] = (intercept[:k] * self._y_scale + self._y_mean
                         + offset).astype(intercept.dtype)
        coefs[-1], intercepts[-1] = coef, intercept
        return coefs, intercepts

    def _store_fit(self, result, model, strategy, n_train, X=None, warm=False):
        super()._store_fit(result, model, strategy, n_train, warm=warm)
        if getattr(self, "_noise_scores", None):
            self.diagnostics_["noise_model_scores"] = dict(self._noise_scores)
        if getattr(self.model_.likelihood, "noise", None) is None:
            # the noise differs between inputs (heteroscedastic, Poisson): its mean over
            # (up to 1,000) training rows
            rows = X[:1000]
            _, noise = self.posterior_.predict_draws(self.model_, rows,
                                                     chunk_size=self._chunk_size(rows.shape[1:]))
            self.noise_std_ = noise.mean(axis=(0, 1)) * self._y_scale
            return
        draws = self.posterior_.predictive_draws()
        n_draws = jax.tree.leaves(draws)[0].shape[0]
        noise = _noise_per_draw(self.model_.likelihood, draws["likelihood"], n_draws)
        self.noise_std_ = np.asarray(noise).mean(axis=0) * self._y_scale

    def _moments(self, X):
        """Per-draw means and noise scales in units of y: each ``(n_draws, n_samples, n_outputs)``."""
        mean, noise = self._predictive(X)
        return mean * self._y_scale + self._y_mean, noise * self._y_scale

    def _squeeze(self, a):
        return a[..., 0] if self.n_outputs_ == 1 else a

    def sample_predictions(self, X):
        """Predictive mean under each posterior draw.

        Returns
        -------
        ndarray of shape (n_draws, n_samples, n_outputs)
        """
        mean, _ = self._moments(X)
        return mean

    def predict(self, X, return_std=False):
        """Posterior predictive mean, and optionally its standard deviation.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        return_std : bool, default=False
            Also return the total predictive standard deviation (noise and
            parameter uncertainty), as ``BayesianRidge.predict`` does.

        Returns
        -------
        y_mean : ndarray of shape (n_samples,) or (n_samples, n_outputs)
        y_std : ndarray of the same shape, only when ``return_std=True``
        """
        moments = self._predictive_moments(X)
        if moments is not None:  # closed form: (mean, total std) in standardised units
            mean = np.asarray(moments[0]) * self._y_scale + self._y_mean
            total = np.asarray(moments[1]) * self._y_scale
        else:
            draws, noise = self._moments(X)
            mean = draws.mean(axis=0)
            total = np.sqrt(np.mean(noise**2, axis=0) + draws.var(axis=0))
        if not return_std:
            return self._squeeze(mean)
        return self._squeeze(mean), self._squeeze(total)

    def predict_uncertainty(self, X):
        """Predictive standard deviation split into noise and parameter parts.

        Returns
        -------
        PredictiveUncertainty
            ``total``, ``aleatoric`` (noise) and ``epistemic`` (spread of the
            per-draw means) standard deviations, in units of ``y``, each of shape
            ``(n_samples,)`` or ``(n_samples, n_outputs)``.
        """
        mean, noise = self._moments(X)
        aleatoric = np.sqrt(np.mean(noise**2, axis=0))
        epistemic = mean.std(axis=0)
        total = np.sqrt(aleatoric**2 + epistemic**2)
        return PredictiveUncertainty(*(self._squeeze(a) for a in (total, aleatoric, epistemic)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.single_output = True
        tags.target_tags.positive_only = getattr(self, "loss", "squared_error") == "poisson"
        return tags
