"""Scorers for ``scoring=`` in ``cross_val_score`` and ``GridSearchCV``.

They follow scikit-learn's sign convention: greater is better, so a metric
where lower is better is negated and named ``neg_...``. Classification scorers
are built as ``sklearn.metrics`` builds ``neg_log_loss_scorer``; regression
scorers call ``predict(X, return_std=True)``, which skbnn's regressors,
``BayesianRidge`` and ``GaussianProcessRegressor`` offer.
"""

from sklearn.metrics import get_scorer as _sklearn_get_scorer
from sklearn.metrics import get_scorer_names as _sklearn_get_scorer_names
from sklearn.metrics import make_scorer

from ._calibration import (
    brier_score,
    expected_calibration_error,
    maximum_calibration_error,
)
from ._regression import crps_gaussian, gaussian_nll, interval_coverage, mean_interval_width

__all__ = ["get_scorer", "get_scorer_names", "make_std_scorer"]


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
