"""Scorers for ``scoring=`` in ``cross_val_score`` and ``GridSearchCV``.

They follow scikit-learn's sign convention: greater is better, so a metric
where lower is better is negated and named ``neg_...``. Classification scorers
are built as ``sklearn.metrics`` builds ``neg_log_loss_scorer``; regression
scorers call ``predict(X, return_std=True)``, which skbnn's regressors,
``BayesianRidge`` and ``GaussianProcessRegressor`` offer. The fidelity scorer
ignores ``y`` and scores how close an estimator's predictive distribution
comes to a fitted reference's.
"""

import hashlib

import numpy as np
from sklearn.base import is_classifier
from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import get_scorer_names as _sklearn_get_scorer_names
from sklearn.metrics import make_scorer
from sklearn.utils.validation import check_is_fitted

from ._calibration import (
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
)
from ._fidelity import (
    CLASSIFICATION_METRICS,
    REGRESSION_METRICS,
    _check_pair,
    _predictions,
    _score,
)
from ._regression import crps_gaussian, gaussian_nll, interval_coverage, mean_interval_width

__all__ = ["get_scorer", "get_scorer_names", "make_fidelity_scorer", "make_std_scorer"]


class _StdScorer:
    """Scores ``metric(y_true, y_mean, y_std)`` from ``estimator.predict(X, return_std=True)``.

    Made by :func:`make_std_scorer`; a plain callable ``scorer(estimator, X, y)``
    as ``scoring=`` accepts. ``sign`` is +1 or -1.
    """

    def __init__(self, metric, sign, kwargs):
        self._metric, self._sign, self._kwargs = metric, sign, kwargs

    def __call__(self, estimator, X, y_true):
        try:
            y_mean, y_std = estimator.predict(X, return_std=True)
        except TypeError as err:
            raise TypeError(
                f"{type(estimator).__name__}.predict does not take return_std=True, which "
                f"this scorer needs (a predictive standard deviation): {err}"
            ) from err
        return self._sign * self._metric(y_true, y_mean, y_std, **self._kwargs)

    def __repr__(self):
        sign = "" if self._sign > 0 else ", greater_is_better=False"
        kwargs = "".join(f", {k}={v!r}" for k, v in self._kwargs.items())
        return f"make_std_scorer({self._metric.__name__}{sign}{kwargs})"


def _width(y_true, y_mean, y_std, **kwargs):
    return mean_interval_width(y_mean, y_std, **kwargs)


def _coverage_error(y_true, y_mean, y_std, *, level):
    return abs(interval_coverage(y_true, y_mean, y_std, level=level) - level)


def make_std_scorer(metric, *, greater_is_better=True, **kwargs):
    """Scorer of a metric ``metric(y_true, y_mean, y_std, **kwargs)`` of Gaussian predictions.

    The regression counterpart of ``make_scorer(..., response_method="predict_proba")``:
    the scorer calls ``estimator.predict(X, return_std=True)``.

    Examples
    --------
    >>> from sklearn.linear_model import BayesianRidge
    >>> from sklearn.model_selection import cross_val_score
    >>> from skbnn.metrics import crps_gaussian, make_std_scorer
    >>> X, y = np.arange(20.0).reshape(-1, 1), np.arange(20.0) % 3
    >>> scores = cross_val_score(BayesianRidge(), X, y, cv=2,
    ...                          scoring=make_std_scorer(crps_gaussian, greater_is_better=False))
    >>> bool(np.all(scores < 0))
    True
    """
    if not callable(metric):
        raise TypeError(f"metric must be callable, got {metric!r}.")
    return _StdScorer(metric, 1 if greater_is_better else -1, kwargs)


def _fingerprint(X):
    """A key for the rows of ``X`` (shape, dtype and a hash of the bytes), or None.

    Only numeric dense arrays get one; other inputs are not cached.
    """
    if hasattr(X, "toarray"):  # sparse
        return None
    try:
        a = np.ascontiguousarray(np.asarray(X))
    except (TypeError, ValueError):
        return None
    if a.dtype.kind not in "biuf":
        return None
    return a.shape, a.dtype.str, hashlib.sha1(a.view(np.uint8).ravel()).hexdigest()


class _FidelityScorer:
    """Greater-is-better fidelity of an estimator to a fitted reference; ignores ``y``.

    Made by :func:`make_fidelity_scorer`; a plain callable ``scorer(estimator, X, y)``
    as ``scoring=`` accepts.
    """

    # enough for 10-fold cross-validation with return_train_score=True: 20 distinct X
    _CACHE_SIZE = 20

    def __init__(self, reference, X_reference, metric):
        self.reference, self.X_reference, self.metric = reference, X_reference, metric
        self._cache = {}  # the reference's predictions per distinct X (see _fingerprint)
        self._fixed = (None if X_reference is None  # fixed inputs: the reference predicts now
                       else _predictions(reference, X_reference, metric))

    def _reference_predictions(self, X):
        if self.X_reference is not None:
            return self._fixed
        key = _fingerprint(X)
        if key is None:
            return _predictions(self.reference, X, self.metric)
        if key not in self._cache:
            while len(self._cache) >= self._CACHE_SIZE:  # drop the oldest
                del self._cache[next(iter(self._cache))]
            self._cache[key] = _predictions(self.reference, X, self.metric)
        return self._cache[key]

    def __call__(self, estimator, X, y_true=None):
        _check_pair(estimator, self.reference)
        if self.X_reference is not None:
            X = self.X_reference
        score = _score(self.metric, _predictions(estimator, X, self.metric),
                       self._reference_predictions(X))
        return score if self.metric == "agreement" else -score

    def __getstate__(self):
        # the cache only saves time: copies (n_jobs > 1 pickles the scorer) start empty
        return {**self.__dict__, "_cache": {}}

    def __repr__(self):
        X_ref = ("" if self.X_reference is None
                 else f", X_reference=<{type(self.X_reference).__name__} of shape "
                      f"{np.shape(self.X_reference)}>")
        return f"make_fidelity_scorer({self.reference!r}{X_ref}, metric={self.metric!r})"


def make_fidelity_scorer(reference, X_reference=None, *, metric=None):
    """Scorer of how close an estimator's predictive distribution comes to a reference's.

    ``reference`` is a fitted estimator, typically a long NUTS run on the
    training data, fitted once. The scorer ``scorer(estimator, X, y)`` ignores
    ``y`` and compares ``estimator``'s predictions on ``X`` with the
    reference's, so ``GridSearchCV`` can tune an approximation (a pSGLD
    temperature or step size, a VI ``kl_weight``, a Laplace structure)
    towards the reference posterior, as Izmailov et al. (2021) compare
    approximations with HMC. As scikit-learn's scorers, greater is better:
    distances are negated.

    Parameters
    ----------
    reference : fitted estimator
        The model to come close to. A classifier is compared through
        ``predict_proba``, a regressor through ``sample_predictions(X)`` or
        ``predict(X, return_std=True)`` (see ``metric``). It is not refitted
        or cloned: refit it in place after making the scorer and the scorer's
        cached predictions are stale; make a new scorer instead.
    X_reference : array-like of shape (n_samples, n_features), default=None
        Fixed inputs to compare on, whatever ``X`` the scorer is called with;
        the reference predicts on them once, here. None: compare on the ``X``
        of each call (in a search, the validation fold); the reference's
        predictions are cached per distinct ``X``, so the candidates of a
        grid search share them.
    metric : {"total_variation", "agreement", "wasserstein2", "wasserstein2_gaussian"}, default=None
        For classifiers: ``"total_variation"`` (the score is its negative) or
        ``"agreement"`` (top-1 agreement, as is). For regressors:
        ``"wasserstein2"`` between the draws of ``sample_predictions(X)``
        (skbnn's regressors, also as the last step of a Pipeline), or
        ``"wasserstein2_gaussian"``, the closed form between the Gaussians of
        ``predict(X, return_std=True)``, for regressors without draws (both
        negated). None: ``"total_variation"`` for a classifier reference,
        ``"wasserstein2"`` for a regressor.

    Returns
    -------
    callable
        ``scorer(estimator, X, y=None) -> float``; it pickles, so ``n_jobs``
        in a search works.

    See Also
    --------
    fidelity : All the metrics at once for two fitted estimators.

    Notes
    -----
    A posterior depends on the number of rows it is fitted on. In an ordinary
    cross-validation the candidates see only part of the rows the reference
    was fitted on, so their posteriors are wider, and a search over a
    temperature makes up for that. To compare like with like, fit the
    candidates on the reference's rows and compare on fixed inputs:
    ``cv=[(every_row, every_row)]`` with ``every_row = np.arange(n_train)``,
    and ``X_reference=X_test``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.model_selection import GridSearchCV
    >>> from skbnn.metrics import make_fidelity_scorer
    >>> X, y = load_iris(return_X_y=True)
    >>> reference = LogisticRegression(C=0.01, max_iter=1000).fit(X, y)
    >>> search = GridSearchCV(LogisticRegression(max_iter=1000), {"C": [0.01, 1.0, 100.0]},
    ...                       scoring=make_fidelity_scorer(reference)).fit(X, y)
    >>> search.best_params_
    {'C': 0.01}
    """
    check_is_fitted(reference)
    metrics = CLASSIFICATION_METRICS if is_classifier(reference) else REGRESSION_METRICS
    if metric is None:
        metric = metrics[0]
    if metric not in metrics:
        kind = "classifier" if is_classifier(reference) else "regressor"
        raise ValueError(
            f"metric must be one of {list(metrics)} for a {kind} reference "
            f"({type(reference).__name__}), got {metric!r}."
        )
    return _FidelityScorer(reference, X_reference, metric)


_proba = dict(greater_is_better=False, response_method="predict_proba")
_SCORERS = {
    "neg_expected_calibration_error": make_scorer(expected_calibration_error, **_proba),
    "neg_classwise_calibration_error": make_scorer(expected_calibration_error, **_proba,
                                                   kind="classwise"),
    "neg_maximum_calibration_error": make_scorer(maximum_calibration_error, **_proba),
    "neg_multiclass_brier_score": make_scorer(brier_score, **_proba),
    "neg_gaussian_nll": make_std_scorer(gaussian_nll, greater_is_better=False),
    "neg_crps": make_std_scorer(crps_gaussian, greater_is_better=False),
    # |coverage - 0.95|: over- and under-coverage both count against
    "neg_coverage_error_95": make_std_scorer(_coverage_error, greater_is_better=False,
                                             level=0.95),
    "neg_mean_interval_width_95": make_std_scorer(_width, greater_is_better=False, level=0.95),
}
del _proba


def get_scorer_names():
    """The names :func:`get_scorer` knows: skbnn's, then scikit-learn's, sorted."""
    return sorted(set(_SCORERS) | set(_sklearn_get_scorer_names()))


def get_scorer(scoring):
    """A scorer from its name: skbnn's scorers first, then ``sklearn.metrics.get_scorer``.

    skbnn's names: ``neg_expected_calibration_error`` (top-label, 15 equal-width
    bins), ``neg_classwise_calibration_error``, ``neg_maximum_calibration_error``,
    ``neg_multiclass_brier_score`` (classification, from ``predict_proba``);
    ``neg_gaussian_nll``, ``neg_crps``, ``neg_coverage_error_95`` (the gap
    between the 95% interval's coverage and 0.95), ``neg_mean_interval_width_95``
    (regression, from ``predict(X, return_std=True)``). A callable or None is
    returned as scikit-learn does.

    Examples
    --------
    >>> from skbnn.metrics import get_scorer
    >>> get_scorer("neg_expected_calibration_error")
    make_scorer(expected_calibration_error, greater_is_better=False, response_method='predict_proba')
    """
    if isinstance(scoring, str) and scoring in _SCORERS:
        return _SCORERS[scoring]
    try:
        return _sklearn_get_scorer(scoring)
    except ValueError as err:
        if isinstance(scoring, str):
            raise ValueError(
                f"{scoring!r} is not a known scorer; use skbnn.metrics.get_scorer_names() "
                "to see the names skbnn and scikit-learn know."
            ) from err
        raise
