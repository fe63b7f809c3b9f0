"""Posterior-fidelity metrics and the fidelity scorer against hand computations."""

import copy
import pickle
import warnings

import numpy as np
import pytest
from scipy.special import ndtri
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.linear_model import BayesianRidge, LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.metrics import (
    fidelity,
    make_fidelity_scorer,
    predictive_agreement,
    total_variation,
    wasserstein2,
    wasserstein2_gaussian,
)

# --- agreement and total variation ------------------------------------------------

P_A = np.array([[0.7, 0.2, 0.1], [0.1, 0.6, 0.3], [0.3, 0.3, 0.4], [0.5, 0.5, 0.0]])
P_B = np.array([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.2, 0.3, 0.5], [0.4, 0.6, 0.0]])


def test_identical_probabilities_agree_fully():
    assert predictive_agreement(P_A, P_A) == 1.0
    assert total_variation(P_A, P_A) == 0.0


def test_agreement_and_total_variation_by_hand():
    # argmax: a = 0, 1, 2, 0 (the tie goes to the first class); b = 0, 0, 2, 1
    assert predictive_agreement(P_A, P_B) == 0.5
    # per row 0.5 * sum |a - b| = 0.1, 0.4, 0.1, 0.1
    assert total_variation(P_A, P_B) == pytest.approx(0.175, abs=1e-12)
    assert total_variation(P_B, P_A) == pytest.approx(0.175, abs=1e-12)
    # predictions on different classes with certainty are as far apart as can be
    assert total_variation(np.eye(3), np.eye(3)[[1, 2, 0]]) == 1.0


def test_binary_positive_class_probabilities():
    a, b = np.array([0.8, 0.3]), np.array([0.6, 0.6])
    assert predictive_agreement(a, b) == 0.5  # classes 1, 0 against 1, 1
    assert total_variation(a, b) == pytest.approx(0.25, abs=1e-12)  # |0.2| and |0.3|
    two_columns = np.column_stack([1 - b, b])
    assert total_variation(a, two_columns) == pytest.approx(0.25, abs=1e-12)


@pytest.mark.parametrize("metric", [predictive_agreement, total_variation])
@pytest.mark.parametrize(("proba_b", "message"), [
    (P_B[:3], "same shape"),
    (np.full((4, 2), 0.5), "same shape"),
    (P_B * 0.5, "sum to 1"),
    (np.where(P_B == 0.1, np.nan, P_B), "NaN"),
    (P_B - 0.2, r"\[0, 1\]"),
    (P_B[None], "1-D .* or 2-D"),
    (np.empty((0, 3)), "empty"),
])
def test_probability_validation(metric, proba_b, message):
    with pytest.raises(ValueError, match=message):
        metric(P_A, proba_b)


# --- Wasserstein-2 ----------------------------------------------------------------

def test_wasserstein2_of_identical_and_shifted_draws():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 7))
    assert wasserstein2(a, a) == 0.0
    assert wasserstein2(a, a[rng.permutation(50)]) == 0.0  # the order of draws does not matter
    assert wasserstein2(a, a + 0.5) == pytest.approx(0.5, abs=1e-12)
    # different numbers of draws, the same distribution: each draw of a repeated 3 times
    assert wasserstein2(a, np.repeat(a, 3, axis=0)) == pytest.approx(0.0, abs=1e-12)
    assert wasserstein2(np.repeat(a, 3, axis=0) - 2.0, a) == pytest.approx(2.0, abs=1e-12)


def test_wasserstein2_different_draw_counts_by_hand():
    # Q_a = 0 on (0, 1/2], 1 on (1/2, 1]; Q_b = 0, 0.5, 1 on thirds: they differ by 0.5 on
    # (1/3, 2/3], so W2^2 = 0.25 / 3
    a, b = np.array([[0.0], [1.0]]), np.array([[1.0], [0.5], [0.0]])
    assert wasserstein2(a, b) == pytest.approx(np.sqrt(1 / 12), abs=1e-12)
    assert wasserstein2(b, a) == pytest.approx(np.sqrt(1 / 12), abs=1e-12)


def test_wasserstein2_different_counts_equals_repeated_draws():
    # n_a draws against n_b: the same as each draw of a repeated n_b times and of b n_a times
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, 6, 2)), rng.normal(1.0, 2.0, size=(5, 6, 2))
    expanded = wasserstein2(np.repeat(a, 5, axis=0), np.repeat(b, 3, axis=0))
    assert wasserstein2(a, b) == pytest.approx(expanded, rel=1e-12)


def test_wasserstein2_between_exact_gaussian_quantiles():
    # location-scale copies of one standardised set of quantiles: W2 is the closed form exactly
    z = ndtri((np.arange(1000) + 0.5) / 1000)
    z = (z - z.mean()) / z.std()
    m1, s1, m2, s2 = 1.0, 2.0, -0.5, 0.5
    exact = np.hypot(m1 - m2, s1 - s2)
    assert wasserstein2(m1 + s1 * z[:, None], m2 + s2 * z[:, None]) == pytest.approx(exact,
                                                                                    rel=1e-12)
    assert wasserstein2_gaussian([m1], [s1], [m2], [s2]) == pytest.approx(exact, rel=1e-15)


def test_wasserstein2_of_gaussian_draws_approaches_closed_form():
    rng = np.random.default_rng(2)
    m1, s1, m2, s2 = 1.0, 1.0, 0.0, 2.0
    n_a, n_b, n_inputs = 20_000, 15_000, 10
    a = rng.normal(m1, s1, size=(n_a, n_inputs))
    b = rng.normal(m2, s2, size=(n_b, n_inputs))
    exact = np.hypot(m1 - m2, s1 - s2)
    # W2 moves with the estimated means (standard error s / sqrt(n)) and standard deviations
    # (about s / sqrt(2 n)); its mean over independent inputs has this standard error. The
    # bias of the empirical distributions is of order 1 / n, far smaller.
    var_dm = s1**2 / n_a + s2**2 / n_b
    var_ds = s1**2 / (2 * n_a) + s2**2 / (2 * n_b)
    se = np.sqrt(((m1 - m2) ** 2 * var_dm + (s1 - s2) ** 2 * var_ds) / exact**2 / n_inputs)
    assert wasserstein2(a, b) == pytest.approx(exact, abs=5 * se)
    assert 5 * se < 0.03  # the tolerance is tight enough to mean something


def test_wasserstein2_outputs_are_averaged():
    a = np.random.default_rng(3).normal(size=(40, 5, 1))
    assert wasserstein2(a, a + 1.0) == wasserstein2(a[..., 0], a[..., 0] + 1.0)
    two = np.concatenate([a, a], axis=2)
    shifted = np.concatenate([a + 1.0, a + 3.0], axis=2)
    assert wasserstein2(two, shifted) == pytest.approx(2.0, abs=1e-12)


@pytest.mark.parametrize(("samples_b", "message"), [
    (np.zeros((4, 3)), "same inputs and outputs"),
    (np.zeros((4, 5, 2)), "same inputs and outputs"),
    (np.zeros(5), r"shape \(n_draws, n_samples\)"),
    (np.full((4, 5), np.nan), "NaN"),
    (np.zeros((0, 5)), "empty"),
])
def test_wasserstein2_validation(samples_b, message):
    with pytest.raises(ValueError, match=message):
        wasserstein2(np.zeros((4, 5)), samples_b)


def test_wasserstein2_gaussian_by_hand_and_validation():
    assert wasserstein2_gaussian([0.0, 1.0], [1.0, 1.0], [3.0, 1.0], [5.0, 1.0]) == 2.5
    with pytest.raises(ValueError, match="same shape"):
        wasserstein2_gaussian([0.0, 1.0], [1.0, 1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="non-negative"):
        wasserstein2_gaussian([0.0], [-1.0], [0.0], [1.0])
    with pytest.raises(ValueError, match="NaN"):
        wasserstein2_gaussian([np.nan], [1.0], [0.0], [1.0])


# --- fitted estimators and the scorer ---------------------------------------------

def _classification(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, (X @ [1.0, -1.0, 0.5] + rng.normal(size=n) > 0).astype(int)


def _regression(n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    return X, X @ [1.0, -1.0, 0.5] + 1.5 * rng.normal(size=n)


# a linear model fitted by MAP: fast, and its alpha changes the predictions clearly
MAP = {"hidden_layer_sizes": (), "inference": "map", "max_iter": 300, "random_state": 0}


class CountingLogisticRegression(LogisticRegression):
    """Counts ``predict_proba`` calls (on the class, so copies count too)."""

    calls = 0

    def predict_proba(self, X):
        type(self).calls += 1
        return super().predict_proba(X)


def test_fidelity_of_classifiers():
    X, y = _classification()
    a = LogisticRegression(C=0.01).fit(X, y)
    b = LogisticRegression(C=100.0).fit(X, y)
    assert fidelity(a, a, X) == {"agreement": 1.0, "total_variation": 0.0}
    result = fidelity(a, b, X)
    assert result == {"agreement": predictive_agreement(a.predict_proba(X), b.predict_proba(X)),
                      "total_variation": total_variation(a.predict_proba(X), b.predict_proba(X))}


def test_fidelity_of_regressors_from_draws_and_from_moments():
    X, y = _regression()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = BayesianMLPRegressor(alpha=1.0, **MAP).fit(X, y)
        b = make_pipeline(StandardScaler(), BayesianMLPRegressor(alpha=100.0, **MAP)).fit(X, y)
    # sample_predictions, also through the last step of a Pipeline
    draws_b = b[-1].sample_predictions(b[0].transform(X))
    assert fidelity(a, b, X) == {"wasserstein2": wasserstein2(a.sample_predictions(X), draws_b)}
    assert fidelity(a, a, X) == {"wasserstein2": 0.0}
    # without draws: the Gaussian closed form, under its own name
    r1, r2 = BayesianRidge().fit(X, y), BayesianRidge().fit(X[:50], y[:50])
    assert fidelity(r1, r2, X) == {"wasserstein2_gaussian": wasserstein2_gaussian(
        *r1.predict(X, return_std=True), *r2.predict(X, return_std=True))}
    assert list(fidelity(a, r1, X)) == ["wasserstein2_gaussian"]
    with pytest.raises(TypeError, match="neither sample_predictions"):
        fidelity(Ridge().fit(X, y), r1, X)


def test_fidelity_refuses_unlike_pairs():
    X, y = _classification()
    clf = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="is a classifier .* but reference is a regressor"):
        fidelity(clf, BayesianRidge().fit(X, y), X)
    three = LogisticRegression().fit(X, np.arange(X.shape[0]) % 3)
    with pytest.raises(ValueError, match="different classes"):
        fidelity(clf, three, X)


def test_scorer_sign_repr_and_validation():
    X, y = _classification()
    reference = LogisticRegression(C=0.01).fit(X, y)
    model = LogisticRegression(C=100.0).fit(X, y)
    tv = total_variation(model.predict_proba(X), reference.predict_proba(X))
    assert make_fidelity_scorer(reference)(model, X, y) == -tv
    agreement = make_fidelity_scorer(reference, metric="agreement")(model, X)
    assert agreement == predictive_agreement(model.predict_proba(X), reference.predict_proba(X))
    assert repr(make_fidelity_scorer(reference)) == (
        "make_fidelity_scorer(LogisticRegression(C=0.01), metric='total_variation')")
    assert repr(make_fidelity_scorer(reference, X[:10], metric="agreement")) == (
        "make_fidelity_scorer(LogisticRegression(C=0.01), "
        "X_reference=<ndarray of shape (10, 3)>, metric='agreement')")
    with pytest.raises(ValueError, match="metric must be one of .* for a classifier"):
        make_fidelity_scorer(reference, metric="wasserstein2")
    with pytest.raises(NotFittedError):
        make_fidelity_scorer(LogisticRegression())
    ridge = BayesianRidge().fit(X, y)
    with pytest.raises(TypeError, match="metric='wasserstein2_gaussian'"):
        make_fidelity_scorer(ridge)(BayesianRidge().fit(X, y), X, y)
    gaussian = make_fidelity_scorer(ridge, metric="wasserstein2_gaussian")
    assert gaussian(ridge, X, y) == 0.0


def test_scorer_fixed_inputs_cache_and_pickle():
    X, y = _classification()
    reference = CountingLogisticRegression(C=0.01).fit(X, y)
    model = LogisticRegression(C=100.0).fit(X, y)
    # X_reference: the reference predicts once, and every call compares on those rows
    CountingLogisticRegression.calls = 0
    fixed = make_fidelity_scorer(reference, X[:20])
    expected = -total_variation(model.predict_proba(X[:20]), reference.predict_proba(X[:20]))
    assert fixed(model, X, y) == fixed(model, X[50:], y[50:]) == expected
    assert CountingLogisticRegression.calls == 2  # at construction, and in `expected`
    # otherwise once per distinct X
    scorer = make_fidelity_scorer(reference)
    CountingLogisticRegression.calls = 0
    first = scorer(model, X, y)
    assert scorer(model, X.copy(), y) == first
    assert CountingLogisticRegression.calls == 1
    scorer(model, X[1:], y[1:])
    assert CountingLogisticRegression.calls == 2
    # copies (n_jobs > 1 pickles the scorer) score the same
    for copied in (pickle.loads(pickle.dumps(scorer)), copy.deepcopy(scorer)):
        assert copied(model, X, y) == first
        assert repr(copied) == repr(scorer)
    assert fixed(model, X, y) == pickle.loads(pickle.dumps(fixed))(model, X, y)


def test_scorer_in_cross_val_score():
    X, y = _classification()
    reference = LogisticRegression(C=0.01).fit(X, y)
    scores = cross_val_score(LogisticRegression(C=0.01), X, y, cv=2,
                             scoring=make_fidelity_scorer(reference))
    assert scores.shape == (2,)
    assert np.all((scores <= 0) & (scores > -0.1))  # fitted on half the rows: close, not equal


def test_grid_search_across_folds_finds_the_reference_setting():
    # the reference: alpha=30 on all rows; the candidates are fitted on half of them, so none
    # equals the reference, but the one with its alpha comes closest
    X, y = _classification()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = BayesianMLPClassifier(alpha=30.0, **MAP).fit(X, y)
        search = GridSearchCV(BayesianMLPClassifier(**MAP), {"alpha": [0.01, 30.0, 3000.0]},
                              cv=2, scoring=make_fidelity_scorer(reference)).fit(X, y)
    assert search.best_params_ == {"alpha": 30.0}
    assert np.all(search.cv_results_["mean_test_score"] < 0)


def test_grid_search_on_the_reference_rows_finds_the_reference_setting():
    # the recipe of the docs: candidates fitted on the reference's rows (one split of every
    # row), compared on held-out inputs; the one with the reference's settings is the same fit
    X, y = _regression(n=250)
    X_train, y_train, X_test = X[:200], y[:200], X[200:]
    every_row = np.arange(200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reference = BayesianMLPRegressor(alpha=30.0, **MAP).fit(X_train, y_train)
        search = GridSearchCV(
            BayesianMLPRegressor(**MAP), {"alpha": [0.01, 30.0, 3000.0]},
            cv=[(every_row, every_row)],
            scoring=make_fidelity_scorer(reference, X_reference=X_test)).fit(X_train, y_train)
    assert search.best_params_ == {"alpha": 30.0}
    assert search.best_score_ == pytest.approx(0.0, abs=1e-6)
    assert np.sort(search.cv_results_["mean_test_score"])[1] < -0.05
