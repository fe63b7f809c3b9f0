"""SampleEnsemble: voting over posterior draws, checked against the draws themselves."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, clone
from sklearn.datasets import load_iris
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor, SampleEnsemble
from skbnn.inference import PSGLD
from skbnn.metrics import accuracy_certainty_curve

# --- fixed draws: voting checked on outputs chosen by hand -------------------------


class _FixedDraws(BaseEstimator):
    """Returns ``draws[:, rows]`` where ``rows`` is X's first column: outputs set by hand."""

    def __init__(self, draws=None):
        self.draws = draws

    def fit(self, X, y, sample_weight=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        if hasattr(self, "_estimator_type") and self._estimator_type == "classifier":
            self.classes_ = np.unique(y)
        return self

    def sample_predictions(self, X):
        return np.asarray(self.draws)[:, np.asarray(X)[:, 0].astype(int)]


class _FixedClassifier(ClassifierMixin, _FixedDraws):
    _estimator_type = "classifier"


class _FixedRegressor(RegressorMixin, _FixedDraws):
    pass


# three members, three inputs, two classes
_DRAWS = np.array([
    # input 0: two members lean to class 1, one is sure of class 0
    # input 1: all three pick class 0; input 2: a 1-1-1 tie broken as below
    [[0.4, 0.6], [0.9, 0.1], [0.45, 0.55]],
    [[0.4, 0.6], [0.8, 0.2], [0.55, 0.45]],
    [[1.0, 0.0], [0.7, 0.3], [0.5, 0.5]],
])
_X = np.arange(3.0).reshape(-1, 1)
_Y = np.array(["a", "b", "a"])  # string labels: classes_ = ["a", "b"]


def test_hard_and_soft_voting_by_hand():
    hard = SampleEnsemble(_FixedClassifier(_DRAWS), voting="hard").fit(_X, _Y)
    soft = SampleEnsemble(_FixedClassifier(_DRAWS), voting="soft").fit(_X, _Y)
    # input 0: votes b, b, a -> hard "b"; mean proba (0.6, 0.4) -> soft "a"
    # input 2: votes b, a, a (argmax of (0.5, 0.5) is the first class) -> both "a"
    np.testing.assert_array_equal(hard.predict(_X), ["b", "a", "a"])
    np.testing.assert_array_equal(soft.predict(_X), ["a", "a", "a"])
    np.testing.assert_allclose(soft.predict_proba(_X), _DRAWS.mean(axis=0))
    # certainty: share of members agreeing with the ensemble's class
    np.testing.assert_allclose(hard.certainty(_X), [2 / 3, 1.0, 2 / 3])
    np.testing.assert_allclose(soft.certainty(_X), [1 / 3, 1.0, 2 / 3])
    # transform: each member's class (hard), each member's probabilities (soft)
    np.testing.assert_array_equal(hard.transform(_X[:1]), [["b", "b", "a"]])
    np.testing.assert_allclose(soft.transform(_X[:1]), [[0.4, 0.6, 0.4, 0.6, 1.0, 0.0]])
    assert hard.score(_X, ["b", "a", "a"]) == 1.0 and soft.score(_X, ["b", "a", "a"]) == 2 / 3


def test_hard_vote_tie_goes_to_the_first_class():
    # two members, one vote each: as VotingClassifier's argmax over vote counts
    draws = np.array([[[0.2, 0.8]], [[0.7, 0.3]]])
    ens = SampleEnsemble(_FixedClassifier(draws)).fit(np.zeros((2, 1)), [0, 1])
    assert ens.predict(np.zeros((1, 1)))[0] == 0
    np.testing.assert_allclose(ens.certainty(np.zeros((1, 1))), [0.5])


def test_regressor_mean_and_median_by_hand():
    # one stray member at 100: the median ignores it, the mean does not
    draws = np.array([[[1.0], [2.0]], [[3.0], [2.0]], [[100.0], [5.0]]])
    X = np.arange(2.0).reshape(-1, 1)
    mean = SampleEnsemble(_FixedRegressor(draws)).fit(X, [0.0, 1.0])
    median = SampleEnsemble(_FixedRegressor(draws), aggregate="median").fit(X, [0.0, 1.0])
    np.testing.assert_allclose(mean.predict(X), [104 / 3, 3.0])
    np.testing.assert_allclose(median.predict(X), [3.0, 2.0])
    np.testing.assert_allclose(mean.transform(X), [[1.0, 3.0, 100.0], [2.0, 2.0, 5.0]])
    for name in ("predict_proba", "certainty", "accuracy_certainty_curve"):
        assert not hasattr(mean, name)


def test_methods_only_where_they_apply():
    hard = SampleEnsemble(_FixedClassifier(_DRAWS)).fit(_X, _Y)
    assert not hasattr(hard, "predict_proba")  # available_if, as VotingClassifier
    with pytest.raises(ValueError, match="aggregate='median' applies to regressors"):
        SampleEnsemble(_FixedClassifier(_DRAWS), aggregate="median").fit(_X, _Y)
    with pytest.raises(ValueError, match="voting='soft' applies to classifiers"):
        SampleEnsemble(_FixedRegressor(_DRAWS), voting="soft").fit(_X, [0.0, 1.0, 2.0])
    with pytest.raises(ValueError, match="voting"):
        SampleEnsemble(_FixedClassifier(_DRAWS), voting="majority").fit(_X, _Y)
    with pytest.raises(ValueError, match="sample_predictions"):
        SampleEnsemble(BaseEstimator()).fit(_X, _Y)


# --- a fitted skbnn classifier ---------------------------------------------------

_NET = dict(hidden_layer_sizes=(8,), inference=PSGLD(n_draws=20), max_iter=60,
            learning_rate_init=0.01, random_state=0)


@pytest.fixture(scope="module")
def iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), np.array(["setosa", "versicolor", "virginica"])[y]


def test_votes_follow_the_posterior_draws(iris):
    X, y = iris
    hard = SampleEnsemble(BayesianMLPClassifier(**_NET)).fit(X, y)
    draws = hard.estimator_.sample_predictions(X)
    n_members = draws.shape[0]
    assert n_members == hard.estimator_.posterior_.n_draws  # every chain's draws
    votes = draws.argmax(axis=2)  # (members, samples)
    counts = np.stack([(votes == k).sum(axis=0) for k in range(3)], axis=1)
    np.testing.assert_array_equal(hard.predict(X), hard.classes_[counts.argmax(axis=1)])
    np.testing.assert_allclose(hard.certainty(X), counts.max(axis=1) / n_members)
    np.testing.assert_array_equal(hard.transform(X), hard.classes_[votes.T])
    # the draws disagree on some inputs, so certainty is not trivially 1 ...
    assert hard.certainty(X).min() < 1
    # ... and is 1 exactly where every member's argmax is the same class
    np.testing.assert_array_equal(hard.certainty(X) == 1, (votes == votes[0]).all(axis=0))

    # soft voting is the estimator's posterior predictive (same random_state, same fit)
    soft = SampleEnsemble(BayesianMLPClassifier(**_NET), voting="soft").fit(X, y)
    net = BayesianMLPClassifier(**_NET).fit(X, y)
    np.testing.assert_allclose(soft.predict_proba(X), net.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(soft.predict(X), net.predict(X))

    curve = hard.accuracy_certainty_curve(X, y)
    expected = accuracy_certainty_curve(y, hard.predict(X), hard.certainty(X))
    for got, want in zip(curve, expected):
        np.testing.assert_allclose(got, want)
    assert curve.retained[0] == 1.0 and curve.accuracy[0] == hard.score(X, y)


def test_regressor_members_are_the_draws_means():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 2))
    y = X @ [1.0, -1.0] + 0.1 * rng.normal(size=60)
    reg = dict(_NET, max_iter=40)
    mean = SampleEnsemble(BayesianMLPRegressor(**reg)).fit(X, y)
    median = SampleEnsemble(BayesianMLPRegressor(**reg), aggregate="median").fit(X, y)
    draws = mean.estimator_.sample_predictions(X)[..., 0]
    np.testing.assert_allclose(mean.predict(X), draws.mean(axis=0))
    np.testing.assert_allclose(mean.predict(X), BayesianMLPRegressor(**reg).fit(X, y).predict(X),
                               rtol=1e-6)
    np.testing.assert_allclose(median.predict(X), np.median(draws, axis=0))
    assert not np.allclose(median.predict(X), mean.predict(X))  # the option changes something


def test_clone_pickle_pipeline_and_grid_search(iris):
    X, y = iris
    ens = SampleEnsemble(BayesianMLPClassifier(**_NET)).fit(X, y)
    restored = pickle.loads(pickle.dumps(ens))
    np.testing.assert_array_equal(restored.transform(X), ens.transform(X))
    assert clone(ens).get_params()["estimator__alpha"] == ens.estimator.alpha
    assert not hasattr(clone(ens), "estimator_")

    # the wrapped estimator's parameters are searchable as estimator__...
    pipe = make_pipeline(StandardScaler(), SampleEnsemble(BayesianMLPClassifier(**_NET)))
    search = GridSearchCV(pipe, {"sampleensemble__estimator__alpha": [1e-4, 1e4]}, cv=2)
    search.fit(X, y)
    # a prior precision of 1e4 pins the weights at ~0 and predicts one class: chance level
    assert search.best_params_ == {"sampleensemble__estimator__alpha": 1e-4}
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > 0.8 and scores[1] < 0.5
