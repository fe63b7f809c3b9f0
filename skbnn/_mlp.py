"""Bayesian multi-layer perceptrons: drop-in replacements for MLPClassifier and MLPRegressor."""

from numbers import Real

from ._base import BaseBayesianNetwork, BayesianClassifierMixin, BayesianRegressorMixin
from .networks import build_mlp
from .utils._io import serializable
from .utils._sklearn_compat import Interval, StrOptions

__all__ = ["BayesianMLPClassifier", "BayesianMLPRegressor"]

_COMMON_PARAMETERS = """
    hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element is the number of units in the ith hidden layer. ``()``
        gives a network without hidden layer (a linear model).

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation of the hidden layers.

    inference : {'psgld', 'map', 'vi', 'laplace', 'nuts', 'ensemble'} or \
            strategy object, default='psgld'
        How the posterior is inferred: a name (the strategy at its defaults),
        or an object from :mod:`skbnn.inference` such as
        ``PSGLD(n_chains=4)``. Either way ``GridSearchCV`` can search the
        strategy's parameters as ``inference__<name>``: setting one on a name
        turns the name into the strategy object with that setting.

    alpha : float, default=1.0
        Precision of the Gaussian prior on every weight and intercept. The MAP
        objective then carries ``alpha/2 * ||W||^2``, which is scikit-learn
        MLP's L2 penalty (MLP's per-sample loss divides it by ``n_samples``).
        The default is the standard normal prior; MLP's default ``1e-4`` is a
        prior so wide that samplers wander far from the data.

    batch_size : int or 'auto', default='auto'
        Minibatch size; 'auto' gives about 200 steps per epoch,
        ``ceil(n_samples / 200)`` rows capped at 200, so small tables get
        enough steps for inference (scikit-learn's MLP uses
        ``min(200, n_samples)``).

    learning_rate_init : float, default=0.001
        Step size of the optimiser (``solver``), and the default step size of
        the samplers.

    max_iter : int, default=200
        Number of epochs. Optimisers may stop sooner (``tol``,
        ``n_iter_no_change``); samplers run them all.

    shuffle : bool, default=True
        Whether to shuffle the rows in each epoch.

    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, minibatch order, sampler noise and the
        validation split. An int gives the same result on every run on a CPU.

    tol : float, default=1e-4
        Improvement of the loss (or validation score) that counts as progress
        for the optimisers' stopping rule.

    verbose : bool, default=False
        Print the loss of each epoch (and the step size and the number of
        draws kept, for pSGLD), with an estimate of the time the remaining
        epochs take; NUTS prints its warmup and sampling progress (about
        every 10% of each, with the time left, step sizes and divergences).

    warm_start : bool, default=False
        Start from where the previous fit ended (its last draws, or its mean).

    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop the optimiser when
        the validation score stops improving. Not available to samplers.

    validation_fraction : float, default=0.1
        Share of the rows held out when ``early_stopping=True``.

    n_iter_no_change : int, default=10
        Epochs without progress of more than ``tol`` before an optimiser stops.

    solver : {'adam', 'sgd', 'lbfgs'}, default='adam'
        The optimiser of every strategy's optimisation phase: MAP, Laplace's
        mode, the ensemble's members, VI's variational parameters and NUTS's
        starting points, as scikit-learn's MLP uses it. 'lbfgs' is full-batch
        (each epoch one iteration) and applies to MAP, Laplace and NUTS's
        start; VI and the ensemble refuse it. pSGLD runs no optimiser: a
        setting here that differs from the default warns that it has no
        effect.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        scikit-learn's schedule of ``solver='sgd'`` (ignored by 'adam', as in
        scikit-learn): 'invscaling' divides the step size by ``(1 + t) **
        power_t`` with ``t`` the rows seen, 'adaptive' divides it by 5 each
        time the epoch loss has not fallen by ``tol`` for ``n_iter_no_change``
        epochs. It multiplies the strategy's own schedule
        (``learning_rate_schedule``, a cosine for MAP by default).

    power_t : float, default=0.5
        Exponent of 'invscaling'.

    momentum : float, default=0.9
        Momentum of 'sgd'.

    nesterovs_momentum : bool, default=True
        Nesterov's momentum for 'sgd'.

    beta_1, beta_2 : float, default=0.9, 0.999
        Adam's decay rates of the first and second moment estimates.

    epsilon : float, default=1e-8
        Adam's numerical stabiliser.

    max_fun : int, default=15000
        Most loss evaluations of 'lbfgs'.

    stream_data : 'auto' or bool, default='auto'
        Where the training rows live during ``fit``. ``False``: on the device,
        put there once. ``True``: ``X`` stays on the host (a numpy memmap or
        any array that slices by rows) and each minibatch goes to the device
        as the epoch reaches it, the next one read while the device trains;
        the fit equals the on-device one for the same ``random_state``.
        Needs a minibatch strategy (not 'nuts') and solver 'adam' or 'sgd'.
        'auto': stream when ``X`` would take more than half of the device's
        free memory (a CPU's: half the host's memory) and the strategy can.
        Pass ``X`` as float32 to stream a memmap without copying it.
"""

_COMMON_ATTRIBUTES = """
    n_features_in_ : int
        Number of features seen during fit.

    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, when ``X`` has string column names.

    posterior_ : SamplePosterior or GaussianPosterior
        The inferred posterior over all parameters, as arrays.

    model_ : Model
        The network, likelihood and prior that were fitted.

    inference_ : strategy object
        The strategy that produced ``posterior_`` (a copy of ``inference``).

    coefs_ : list of ndarray of shape (n_layers - 1,)
        Posterior mean of the weight matrices; ``coefs_[i]`` maps layer ``i`` to
        layer ``i + 1``.

    intercepts_ : list of ndarray of shape (n_layers - 1,)
        Posterior mean of the intercept vectors.

    loss_ : float
        Loss of the last epoch.

    loss_curve_ : list of float
        Loss of every epoch: the minibatch average of the negative log posterior
        per data point (for VI: the negative ELBO per data point).

    best_loss_ : float or None
        Smallest loss seen by an optimiser; None for samplers and with early stopping.

    validation_scores_ : list of float or None
        Validation score of every epoch with ``early_stopping=True``, else None.

    best_validation_score_ : float or None
        Best validation score with ``early_stopping=True``, else None.

    n_iter_ : int
        Number of epochs run.

    t_ : int
        Number of training rows seen (``n_iter_ * n_samples``).

    n_samples_seen_ : int
        Number of distinct rows the posterior is conditioned on: the
        training rows of ``fit``, or all rows given to ``partial_fit`` so far.

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs: of targets for a regressor (a heteroscedastic
        network has one noise unit per target besides), of output units for a
        classifier.

    out_activation_ : str
        Output activation: 'logistic', 'softmax', 'identity' or 'exp' (the
        regressor with ``loss='poisson'``).

    diagnostics_ : dict
        What the strategy reports about its run (steps, thinning, devices, ...).

    rhat_, ess_, max_rhat_, min_ess_, n_divergences_, step_size_, mean_tree_depth_
        With ``inference="nuts"`` only: split R-hat and effective sample size
        per parameter (dicts shaped like the parameters) and their worst
        values, the number of divergent transitions after warmup, and the
        adapted step size and mean tree depth per chain. See
        :class:`skbnn.inference.NUTS`.
"""


@serializable
class BayesianMLPClassifier(BayesianClassifierMixin, BaseBayesianNetwork):
    __doc__ = f"""Bayesian multi-layer perceptron classifier.

    ``MLPClassifier`` with a posterior over its weights: ``predict_proba`` is the
    posterior predictive (the mean over posterior draws), ``predict_uncertainty``
    splits its entropy into aleatoric and epistemic parts, and
    ``sample_predictions`` gives the per-draw probabilities.

    Parameters
    ----------
    {_COMMON_PARAMETERS}
    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        Class labels.
    {_COMMON_ATTRIBUTES}
    See Also
    --------
    BayesianMLPRegressor : The regressor.
    sklearn.neural_network.MLPClassifier : The non-Bayesian network.

    Notes
    -----
    Binary problems use one logistic output (as ``MLPClassifier``), multiclass
    problems a softmax. ``hidden_layer_sizes`` and ``activation`` may be passed
    by position, as for ``MLPClassifier``; all other parameters are keyword-only.

    References
    ----------
    Li, C., Chen, C., Carlson, D. and Carin, L. (2016). Preconditioned stochastic
    gradient Langevin dynamics for deep neural networks. AAAI.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.preprocessing import StandardScaler
    >>> from skbnn import BayesianMLPClassifier
    >>> X, y = load_iris(return_X_y=True)
    >>> X = StandardScaler().fit_transform(X)
    >>> clf = BayesianMLPClassifier((16,), max_iter=100, random_state=0).fit(X, y)
    >>> clf.predict_proba(X[:1]).shape
    (1, 3)
    >>> clf.score(X, y) > 0.9
    True
    """

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        inference="psgld",
        alpha=1.0,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        solver="adam",
        learning_rate="constant",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        max_fun=15000,
        stream_data="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.inference = inference
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.solver = solver
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_fun = max_fun
        self.stream_data = stream_data

    def _network(self, n_outputs):
        return build_mlp(self._hidden_layer_sizes(), self.activation, n_outputs)


@serializable
class BayesianMLPRegressor(BayesianRegressorMixin, BaseBayesianNetwork):
    __doc__ = f"""Bayesian multi-layer perceptron regressor.

    ``MLPRegressor`` with a posterior over its weights and a Gaussian noise
    model (or, with ``loss='poisson'``, a Poisson one):
    ``predict(X, return_std=True)`` gives the predictive mean and total
    standard deviation (as ``BayesianRidge``), ``predict_uncertainty`` splits
    that into noise and parameter parts.

    Parameters
    ----------
    {_COMMON_PARAMETERS}
    noise_std : 'auto', 'learn', 'heteroscedastic' or float, default='auto'
        Standard deviation of the Gaussian noise, in units of ``y``. 'learn'
        infers one scale per output with the rest (a half-Cauchy prior of
        scale 0.5 on the standardised scale). 'heteroscedastic' lets the
        network predict it for every input, for data whose noise varies: a
        second head of ``n_outputs`` units gives a factor
        ``softplus(rho + log(e - 1))`` (1 at ``rho = 0``, the mode of its
        weights' prior) of that learnt scale, plus 1e-3 on the standardised
        scale; ``coefs_[-1]`` then has ``2 * n_outputs`` columns. It is
        fitted faithfully (``skbnn.likelihoods.HeteroscedasticGaussian``): the
        means as in the homoscedastic model, every row weighed by the learnt
        scale, and the noise head, which sends no gradient into the hidden
        layers, to what the mean leaves; so a per-input noise cannot explain
        a residual away instead of fitting it. NUTS and ``solver='lbfgs'``
        sample or fit the joint posterior instead. 'auto'
        chooses between the two: with at least 250 rows it holds back a
        fifth of them (at most 10,000), fits the estimator with each noise
        model on the rest, and keeps the heteroscedastic one when its log
        predictive density on the held-back rows is the higher; the choice
        is ``noise_model_``, and the fit on all rows follows it (so 'auto'
        costs two extra fits). Below 250 rows, in ``partial_fit`` and with
        ``loss='poisson'``, 'auto' is 'learn'. A float fixes the noise. With
        ``hidden_layer_sizes=()`` and a fixed noise the posterior is exactly
        that of Bayesian linear regression.

    normalize_y : bool, default=True
        Standardise each target to zero mean and unit variance before
        inference, so the prior and the initialisation fit any target scale
        (predictions are in the original units). With False the prior acts on
        ``y`` as given.

    loss : {'squared_error', 'poisson'}, default='squared_error'
        MLPRegressor's loss: 'squared_error' is the Gaussian likelihood above.
        'poisson' is a Poisson likelihood with a log link, for counts and
        other non-negative targets: the network output is the log of the rate
        (``out_activation_`` is 'exp'), ``predict`` gives the predictive mean
        rate and ``return_std=True`` the predictive standard deviation, whose
        square is ``E[rate] + Var[rate]`` over the posterior. ``y`` must be
        non-negative and is not scaled: ``normalize_y`` instead offsets the
        log-rate by the log of the mean of ``y``, so the prior is centred on
        the constant model, and ``noise_std`` must stay 'auto' or 'learn'. Every
        strategy works with it; Laplace's ``predictive="glm"`` gives the exact
        mean and variance of the rate under the linearised network (a
        lognormal).

    Attributes
    ----------
    noise_model_ : {'learn', 'heteroscedastic', 'fixed'}
        The noise model fitted: ``noise_std``, or with 'auto' its choice
        (the held-back scores are in ``diagnostics_["noise_model_scores"]``
        when it compared them).

    noise_std_ : ndarray of shape (n_outputs,)
        Posterior mean of the noise standard deviation, in units of ``y``
        (with ``noise_std='heteroscedastic'``: its mean over up to 1,000
        training rows; with ``loss='poisson'``: the mean of ``sqrt(rate)`` over
        them).
    {_COMMON_ATTRIBUTES}
    See Also
    --------
    BayesianMLPClassifier : The classifier.
    sklearn.neural_network.MLPRegressor : The non-Bayesian network.
    sklearn.linear_model.BayesianRidge : Bayesian linear regression.

    Notes
    -----
    ``coefs_`` and ``intercepts_`` are in the units of ``y``: the last layer
    includes the target scaling of ``normalize_y`` (with ``loss='poisson'``,
    in units of the log-rate, the offset included).

    Examples
    --------
    >>> import numpy as np
    >>> from skbnn import BayesianMLPRegressor
    >>> rng = np.random.RandomState(0)
    >>> X = rng.uniform(-1, 1, size=(200, 1))
    >>> y = np.sin(3 * X[:, 0]) + 0.1 * rng.randn(200)
    >>> reg = BayesianMLPRegressor((32,), activation="tanh", max_iter=200,
    ...                            random_state=0).fit(X, y)
    >>> mean, std = reg.predict(np.array([[0.0], [3.0]]), return_std=True)
    >>> bool(std[1] > std[0])  # more uncertain far from the data
    True
    """

    _parameter_constraints: dict = {
        **BaseBayesianNetwork._parameter_constraints,
        "noise_std": [StrOptions({"auto", "learn", "heteroscedastic"}),
                      Interval(Real, 0, None, closed="neither")],
        "normalize_y": ["boolean"],
        "loss": [StrOptions({"squared_error", "poisson"})],
    }

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        inference="psgld",
        alpha=1.0,
        noise_std="auto",
        normalize_y=True,
        batch_size="auto",
        learning_rate_init=0.001,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        early_stopping=False,
        validation_fraction=0.1,
        n_iter_no_change=10,
        loss="squared_error",
        solver="adam",
        learning_rate="constant",
        power_t=0.5,
        momentum=0.9,
        nesterovs_momentum=True,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        max_fun=15000,
        stream_data="auto",
    ):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.inference = inference
        self.alpha = alpha
        self.noise_std = noise_std
        self.normalize_y = normalize_y
        self.batch_size = batch_size
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.loss = loss
        self.solver = solver
        self.learning_rate = learning_rate
        self.power_t = power_t
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.max_fun = max_fun
        self.stream_data = stream_data

    def _network(self, n_outputs):
        return build_mlp(self._hidden_layer_sizes(), self.activation, n_outputs)
