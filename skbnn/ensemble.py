"""``SampleEnsemble``: the posterior draws of a skbnn estimator as a voting ensemble.

A leaf module: it uses estimators only through their public methods
(``fit``, ``sample_predictions``, ``classes_``), never posterior internals.
"""

import numpy as np
from sklearn.base import (
    BaseEstimator,
    MetaEstimatorMixin,
    TransformerMixin,
    clone,
    is_classifier,
)
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from .metrics import accuracy_certainty_curve as _accuracy_certainty_curve
from .utils._sklearn_compat import HasMethods, StrOptions, _fit_context

__all__ = ["SampleEnsemble"]


def _check_soft(ensemble):
    """``predict_proba`` only for soft voting on a classifier (as ``VotingClassifier``)."""
    if not is_classifier(ensemble.estimator):
        raise AttributeError(
            f"predict_proba is not available for a regressor "
            f"({type(ensemble.estimator).__name__})."
        )
    if ensemble.voting == "hard":
        raise AttributeError(f"predict_proba is not available when voting={ensemble.voting!r}")
    return True


def _check_classifier(ensemble):
    if not is_classifier(ensemble.estimator):
        raise AttributeError(
            "certainty is the share of members that agree on a class, and is only "
            f"available for classifiers, not {type(ensemble.estimator).__name__}."
        )
    return True


class SampleEnsemble(TransformerMixin, MetaEstimatorMixin, BaseEstimator):
    """Voting ensemble whose members are the posterior draws of a skbnn estimator.

    In the spirit of :class:`~sklearn.ensemble.VotingClassifier`, but the
    members come from one fit: each posterior draw of ``estimator`` (its
    ``sample_predictions``) is one member. A classifier votes: ``"hard"``
    takes the class most members predict, ``"soft"`` the argmax of the
    members' mean probabilities. A regressor averages the members' means
    (or takes their median).

    Parameters
    ----------
    estimator : estimator with ``sample_predictions``
        A skbnn estimator (``BayesianMLPClassifier``, ``BayesianMLPRegressor``, ...).
        It is cloned and fitted in :meth:`fit`.
    voting : {"hard", "soft"}, default="hard"
        Classifiers only: majority vote of the members' predicted classes, or
        argmax of their mean probabilities (which is then the estimator's own
        posterior predictive for a posterior made of draws).
    aggregate : {"mean", "median"}, default="mean"
        Regressors only: how the members' predicted means are combined. The
        median is robust to a few stray draws.

    Attributes
    ----------
    estimator_ : estimator
        The fitted clone of ``estimator``.
    classes_ : ndarray of shape (n_classes,)
        Class labels (classifiers only).
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Only when ``X`` had string column names.

    See Also
    --------
    sklearn.ensemble.VotingClassifier : Voting over separately fitted estimators.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from skbnn import BayesianMLPClassifier, SampleEnsemble
    >>> from skbnn.inference import PSGLD
    >>> X, y = load_iris(return_X_y=True)
    >>> net = BayesianMLPClassifier(hidden_layer_sizes=(8,), inference=PSGLD(n_draws=20),
    ...                             max_iter=50, random_state=0)
    >>> ens = SampleEnsemble(net).fit(X, y)
    >>> ens.transform(X[:2]).shape  # (n_samples, n_members): each member's class
    (2, 20)
    >>> bool(((ens.certainty(X) > 0) & (ens.certainty(X) <= 1)).all())
    True
    """

    _parameter_constraints: dict = {
        "estimator": [HasMethods(["fit", "sample_predictions"])],
        "voting": [StrOptions({"hard", "soft"})],
        "aggregate": [StrOptions({"mean", "median"})],
    }

    def __init__(self, estimator, *, voting="hard", aggregate="mean"):
        self.estimator = estimator
        self.voting = voting
        self.aggregate = aggregate

    @_fit_context(prefer_skip_nested_validation=False)  # the estimator validates its own params
    def fit(self, X, y, sample_weight=None):
        """Fit a clone of ``estimator`` on ``(X, y)``; its posterior draws become the members.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), default=None
            Passed to ``estimator.fit``.

        Returns
        -------
        self
        """
        classifier = is_classifier(self.estimator)
        if classifier and self.aggregate != "mean":
            raise ValueError(
                f"aggregate={self.aggregate!r} applies to regressors; a classifier's members "
                "are combined by voting='hard' or 'soft'."
            )
        if not classifier and self.voting != "hard":
            raise ValueError(
                f"voting={self.voting!r} applies to classifiers; a regressor's members are "
                "combined by aggregate='mean' or 'median'."
            )
        fit_params = {} if sample_weight is None else {"sample_weight": sample_weight}
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        # the estimator validated X; mirror what it learnt about the input
        self.n_features_in_ = self.estimator_.n_features_in_
        if hasattr(self.estimator_, "feature_names_in_"):
            self.feature_names_in_ = self.estimator_.feature_names_in_
        if classifier:
            if getattr(self.estimator_, "_multilabel", False):
                raise ValueError(
                    "SampleEnsemble votes over classes; multilabel targets (an indicator "
                    "matrix) have no single class to vote for. Use the estimator's "
                    "predict_proba, the mean over its draws, directly."
                )
            self.classes_ = self.estimator_.classes_
        return self

    def _members(self, X):
        """Per-member outputs ``(n_members, n_samples, n_outputs)`` (the estimator validates X)."""
        check_is_fitted(self)
        return np.asarray(self.estimator_.sample_predictions(X))

    def _votes(self, draws):
        """Per-member class index ``(n_members, n_samples)`` and the ensemble's class index."""
        votes = draws.argmax(axis=2)
        if self.voting == "soft":
            winner = draws.mean(axis=0).argmax(axis=1)
        else:  # majority; ties go to the first class, as VotingClassifier's argmax of bincount
            counts = (votes[:, :, None] == np.arange(draws.shape[2])).sum(axis=0)
            winner = counts.argmax(axis=1)
        return votes, winner

    def predict(self, X):
        """Class by vote (classifiers), or the members' mean or median (regressors).

        Returns
        -------
        ndarray of shape (n_samples,) or, for multi-output regression, (n_samples, n_outputs)
        """
        draws = self._members(X)
        if is_classifier(self.estimator_):
            return self.classes_[self._votes(draws)[1]]
        reduce = np.median if self.aggregate == "median" else np.mean
        pred = reduce(draws, axis=0)
        return pred[:, 0] if pred.shape[1] == 1 else pred

    @available_if(_check_soft)
    def predict_proba(self, X):
        """The members' mean class probabilities (soft voting only).

        Returns
        -------
        ndarray of shape (n_samples, n_classes)
            Columns follow ``classes_``.
        """
        proba = self._members(X).mean(axis=0)
        return proba / proba.sum(axis=1, keepdims=True)

    def transform(self, X):
        """Each member's output.

        Returns
        -------
        ndarray
            Hard voting: each member's predicted class, ``(n_samples, n_members)``.
            Soft voting: each member's class probabilities, members side by side,
            ``(n_samples, n_members * n_classes)``. Regressors: each member's
            predicted mean, ``(n_samples, n_members * n_outputs)``.
        """
        draws = self._members(X)
        if is_classifier(self.estimator_) and self.voting == "hard":
            return self.classes_[draws.argmax(axis=2)].T
        return np.transpose(draws, (1, 0, 2)).reshape(draws.shape[1], -1)

    @available_if(_check_classifier)
    def certainty(self, X):
        """Share of members that predict the ensemble's class, per input.

        1 when every posterior draw agrees; near ``1 / n_classes`` when they
        scatter. With hard voting this is the size of the majority.

        Returns
        -------
        ndarray of shape (n_samples,)
        """
        votes, winner = self._votes(self._members(X))
        return (votes == winner).mean(axis=0)

    @available_if(_check_classifier)
    def accuracy_certainty_curve(self, X, y, *, thresholds=None):
        """Accuracy on the inputs whose :meth:`certainty` reaches each threshold.

        See :func:`skbnn.metrics.accuracy_certainty_curve`.

        Returns
        -------
        SelectiveCurve
            ``(threshold, accuracy, retained)``; default thresholds are the
            distinct certainties.
        """
        votes, winner = self._votes(self._members(X))
        return _accuracy_certainty_curve(y, self.classes_[winner], (votes == winner).mean(axis=0),
                                         thresholds=thresholds)

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifiers) or R^2 (regressors) of :meth:`predict`."""
        metric = accuracy_score if is_classifier(self.estimator) else r2_score
        return metric(y, self.predict(X), sample_weight=sample_weight)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        inner = get_tags(self.estimator)
        tags.estimator_type = inner.estimator_type
        tags.classifier_tags = inner.classifier_tags
        tags.regressor_tags = inner.regressor_tags
        tags.target_tags = inner.target_tags
        tags.input_tags = inner.input_tags
        tags.non_deterministic = inner.non_deterministic
        return tags
