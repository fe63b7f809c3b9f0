"""skbnn.metrics against hand computations, closed forms and scikit-learn."""

import numpy as np
import pytest
from scipy import integrate, stats
from sklearn.datasets import load_iris, make_classification
from sklearn.linear_model import BayesianRidge, LogisticRegression
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import (
    GridSearchCV,
    KFold,
    StratifiedKFold,
    cross_val_score,
)

from skbnn.metrics import (
    accuracy_certainty_curve,
    accuracy_coverage_curve,
    brier_score,
    crps_gaussian,
    expected_calibration_error,
    gaussian_nll,
    get_scorer,
    get_scorer_names,
    interval_coverage,
    make_std_scorer,
    maximum_calibration_error,
    mean_interval_width,
    negative_log_likelihood,
    ood_aupr,
    ood_auroc,
    reliability_curve,
)


def _calibrated(confidences, n_per_group=100, n_classes=3, shift=0.0):
    """Groups of rows whose top probability is c + shift and exactly c of which are right.

    The non-top mass is spread evenly over the other classes, so the argmax is
    the intended class while c + shift > 1 / n_classes.
    """
    y_true, y_prob = [], []
    for c in confidences:
        n_right = round(c * n_per_group)
        p = c + shift
        rows = np.full((n_per_group, n_classes), (1 - p) / (n_classes - 1))
        rows[:, 0] = p  # predicted class 0
        y_prob.append(rows)
        y_true.append(np.r_[np.zeros(n_right), np.ones(n_per_group - n_right)].astype(int))
    y_true = np.concatenate(y_true)
    y_true[:n_classes] = np.arange(n_classes)  # every class appears (one row per group moved)
    return y_true, np.vstack(y_prob)


# --- classification ---------------------------------------------------------------

@pytest.mark.parametrize("strategy", ["uniform", "quantile"])
def test_ece_zero_when_calibrated_and_shift_when_shifted(strategy):
    confidences = [0.55, 0.65, 0.75, 0.85, 0.95]
    y_true, y_prob = _calibrated(confidences, n_per_group=100)
    y_true[:3] = 0  # undo the moved rows: group 0.55 keeps exactly 55 right
    labels = [0, 1, 2]
    assert expected_calibration_error(y_true, y_prob, strategy=strategy,
                                      labels=labels) == pytest.approx(0, abs=1e-12)
    # confidence shifted up by 0.03 in every group: every bin's gap is -0.03, whatever the bins
    _, shifted = _calibrated(confidences, n_per_group=100, shift=0.03)
    assert expected_calibration_error(y_true, shifted, strategy=strategy,
                                      labels=labels) == pytest.approx(0.03, abs=1e-12)
    assert maximum_calibration_error(y_true, shifted, strategy=strategy,
                                     labels=labels) == pytest.approx(0.03, abs=1e-12)


def test_ece_mce_reliability_by_hand():
    y_true = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.15, 0.85, 0.35, 0.45, 0.75])  # positive-class probabilities (1-D input)
    # top-label confidences 0.85, 0.85, 0.65, 0.55, 0.75; correct: 1, 1, 0, 1, 1
    # 2 uniform bins (0, .5], (.5, 1]: all in bin 2; ECE = |4 - 3.65| / 5 = 0.07
    assert expected_calibration_error(y_true, p1, n_bins=2) == pytest.approx(0.07)
    # 10 bins: (.5,.6]: 0.55 right; (.6,.7]: 0.65 wrong; (.7,.8]: 0.75 right; (.8,.9]: two right
    gaps = np.array([1 - 0.55, 0.65, 1 - 0.75, 2 * (1 - 0.85)])
    assert expected_calibration_error(y_true, p1, n_bins=10) == pytest.approx(gaps.sum() / 5)
    assert maximum_calibration_error(y_true, p1, n_bins=10) == pytest.approx(0.65)
    curve = reliability_curve(y_true, p1, n_bins=10)
    np.testing.assert_allclose(curve.confidence, [0.55, 0.65, 0.75, 0.85])
    np.testing.assert_allclose(curve.accuracy, [1, 0, 1, 1])
    np.testing.assert_array_equal(curve.count, [1, 1, 1, 2])
    np.testing.assert_allclose(curve.bin_edges, np.linspace(0, 1, 11))


def test_classwise_ece_by_hand():
    y_true = np.array([0, 1])
    y_prob = np.array([[0.8, 0.2], [0.4, 0.6]])
    # class 0: p = .8 (y=1) and .4 (y=0); class 1: p = .2 (y=0), .6 (y=1); 10 bins, all distinct
    class0 = (abs(1 - 0.8) + abs(0 - 0.4)) / 2
    class1 = (abs(0 - 0.2) + abs(1 - 0.6)) / 2
    assert expected_calibration_error(y_true, y_prob, n_bins=10, kind="classwise") \
        == pytest.approx((class0 + class1) / 2)


def test_nll_and_brier_match_sklearn():
    rng = np.random.default_rng(0)
    y_prob = rng.dirichlet(np.ones(4), size=200)
    y_true = rng.integers(0, 4, size=200)
    y_true[:4] = np.arange(4)
    assert negative_log_likelihood(y_true, y_prob) == pytest.approx(log_loss(y_true, y_prob))
    onehot = np.eye(4)[y_true]
    assert brier_score(y_true, y_prob) == pytest.approx(np.mean(np.sum((y_prob - onehot) ** 2, 1)))
    # binary: skbnn's multiclass Brier counts both columns, twice sklearn's positive-class one
    p = rng.uniform(size=100)
    yb = (rng.uniform(size=100) < p).astype(int)
    assert brier_score(yb, p) == pytest.approx(2 * brier_score_loss(yb, p))
    assert negative_log_likelihood(yb, p) == pytest.approx(log_loss(yb, p))


def test_string_labels_follow_the_columns_of_labels():
    y_prob = np.array([[0.9, 0.05, 0.05], [0.1, 0.1, 0.8]])
    y_true = np.array(["a", "c"])
    # y_true holds two of three classes: the columns are ambiguous without labels=
    with pytest.raises(ValueError, match="labels="):
        negative_log_likelihood(y_true, y_prob)
    assert negative_log_likelihood(y_true, y_prob, labels=["a", "b", "c"]) \
        == pytest.approx(-np.log([0.9, 0.8]).mean())
    with pytest.raises(ValueError, match="not in labels"):
        brier_score(["a", "d"], y_prob, labels=["a", "b", "c"])


@pytest.mark.parametrize("bad, match", [
    (np.array([[0.5, np.nan], [0.5, 0.5]]), "NaN"),
    (np.array([[0.7, 0.7], [0.5, 0.5]]), "sum to 1"),
    (np.array([[1.5, -0.5], [0.5, 0.5]]), r"\[0, 1\]"),
    (np.ones((2, 2, 1)), "1-D or 2-D"),
    (np.ones((3, 2)) / 2, "different numbers of samples"),
])
def test_bad_probabilities_are_rejected(bad, match):
    with pytest.raises(ValueError, match=match):
        expected_calibration_error([0, 1], bad)


def test_bad_settings_are_rejected():
    y, p = [0, 1], [[0.6, 0.4], [0.3, 0.7]]
    with pytest.raises(ValueError, match="strategy"):
        expected_calibration_error(y, p, strategy="equal")
    with pytest.raises(ValueError, match="kind"):
        expected_calibration_error(y, p, kind="marginal")
    with pytest.raises(ValueError, match="n_bins"):
        reliability_curve(y, p, n_bins=0)


# --- regression -------------------------------------------------------------------

def test_gaussian_nll_matches_scipy():
    rng = np.random.default_rng(1)
    y, mean, std = rng.normal(size=50), rng.normal(size=50), rng.uniform(0.2, 2, size=50)
    assert gaussian_nll(y, mean, std) == pytest.approx(-stats.norm.logpdf(y, mean, std).mean())


def test_crps_matches_its_integral_definition():
    # CRPS(F, y) = int (F(x) - 1[x >= y])^2 dx, integrated numerically
    for y, mu, sigma in [(0.3, 0.0, 1.0), (-2.0, 1.0, 0.5), (5.0, 5.0, 3.0)]:
        below, _ = integrate.quad(lambda x: stats.norm.cdf(x, mu, sigma) ** 2, -np.inf, y)
        above, _ = integrate.quad(lambda x: stats.norm.sf(x, mu, sigma) ** 2, y, np.inf)
        assert crps_gaussian([y], [mu], [sigma]) == pytest.approx(below + above, rel=1e-6)
    # vanishing std: CRPS -> absolute error
    assert crps_gaussian([1.0, -1.0], [0.0, 0.0], [1e-9, 1e-9]) == pytest.approx(1.0)


def test_interval_coverage_and_width():
    z = stats.norm.ppf(0.975)
    mean, std = np.zeros(4), np.ones(4)
    y = np.array([0.0, z - 1e-9, z + 1e-9, -3.0])  # in, in (at the edge), out, out
    assert interval_coverage(y, mean, std, level=0.95) == 0.5
    assert mean_interval_width(mean, 2 * std, level=0.95) == pytest.approx(4 * z)
    # a calibrated Gaussian covers its level (200_000 draws: sd of the share ~ 0.0005)
    rng = np.random.default_rng(2)
    mu, sd = rng.normal(size=200_000), rng.uniform(0.5, 2, size=200_000)
    assert interval_coverage(rng.normal(mu, sd), mu, sd, level=0.8) == pytest.approx(0.8, abs=3e-3)
    with pytest.raises(ValueError, match="level"):
        interval_coverage(y, mean, std, level=95)
    with pytest.raises(ValueError, match="positive"):
        crps_gaussian(y, mean, -std)
    with pytest.raises(ValueError, match="same shape"):
        gaussian_nll(y, mean[:3], std)


# --- selective prediction and OOD -------------------------------------------------

def test_accuracy_over_certainty_thresholds_by_hand():
    y_true = np.array([0, 1, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 0, 0])  # right, right, wrong, right, wrong
    certainty = np.array([0.9, 0.6, 0.4, 0.9, 0.6])
    curve = accuracy_certainty_curve(y_true, y_pred, certainty)
    np.testing.assert_allclose(curve.threshold, [0.4, 0.6, 0.9])
    np.testing.assert_allclose(curve.accuracy, [3 / 5, 3 / 4, 1.0])
    np.testing.assert_allclose(curve.retained, [1.0, 0.8, 0.4])
    # a threshold above every certainty retains nothing and is dropped, not NaN
    curve = accuracy_certainty_curve(y_true, y_pred, certainty, thresholds=[0.5, 0.95])
    np.testing.assert_allclose(curve.threshold, [0.5])
    coverage, accuracy = accuracy_coverage_curve(y_true, y_pred, certainty)
    np.testing.assert_allclose(coverage, [0.2, 0.4, 0.6, 0.8, 1.0])
    # order: 0.9 (right), 0.9 (right), 0.6 (right), 0.6 (wrong), 0.4 (wrong)
    np.testing.assert_allclose(accuracy, [1, 1, 1, 3 / 4, 3 / 5])


def test_ood_auroc_aupr_match_sklearn():
    rng = np.random.default_rng(3)
    s_in, s_out = rng.normal(size=80), rng.normal(1.0, size=40)
    labels, scores = np.r_[np.zeros(80), np.ones(40)], np.r_[s_in, s_out]
    assert ood_auroc(s_in, s_out) == pytest.approx(roc_auc_score(labels, scores))
    assert ood_aupr(s_in, s_out) == pytest.approx(average_precision_score(labels, scores))
    assert ood_auroc([0.1, 0.2], [0.3, 0.4]) == 1.0
    with pytest.raises(ValueError, match="NaN"):
        ood_auroc([np.nan], [1.0])


# --- scorers ----------------------------------------------------------------------

def test_scorer_signs():
    X, y = make_classification(n_samples=200, random_state=0)
    clf = LogisticRegression().fit(X, y)
    proba = clf.predict_proba(X)
    scorer = get_scorer("neg_expected_calibration_error")
    assert scorer(clf, X, y) == pytest.approx(-expected_calibration_error(y, proba))
    assert scorer(clf, X, y) < 0
    assert get_scorer("neg_multiclass_brier_score")(clf, X, y) == pytest.approx(
        -brier_score(y, proba))
    assert get_scorer("neg_classwise_calibration_error")(clf, X, y) == pytest.approx(
        -expected_calibration_error(y, proba, kind="classwise"))
    # scikit-learn's names pass through
    assert get_scorer("accuracy")(clf, X, y) == pytest.approx(clf.score(X, y))
    assert "neg_crps" in get_scorer_names() and "neg_log_loss" in get_scorer_names()
    with pytest.raises(ValueError, match="get_scorer_names"):
        get_scorer("neg_ece_typo")

    Xr = X[:, :3]
    yr = Xr @ np.array([1.0, -2.0, 0.5]) + np.random.default_rng(0).normal(size=200)
    reg = BayesianRidge().fit(Xr, yr)
    mean, std = reg.predict(Xr, return_std=True)
    assert get_scorer("neg_crps")(reg, Xr, yr) == pytest.approx(-crps_gaussian(yr, mean, std))
    assert get_scorer("neg_gaussian_nll")(reg, Xr, yr) == pytest.approx(
        -gaussian_nll(yr, mean, std))
    assert get_scorer("neg_coverage_error_95")(reg, Xr, yr) == pytest.approx(
        -abs(interval_coverage(yr, mean, std) - 0.95))
    assert make_std_scorer(interval_coverage, level=0.5)(reg, Xr, yr) == pytest.approx(
        interval_coverage(yr, mean, std, level=0.5))
    with pytest.raises(TypeError, match="return_std"):
        get_scorer("neg_crps")(LogisticRegression().fit(X, y), X, y)


def test_grid_search_picks_what_the_metric_picks():
    X, y = load_iris(return_X_y=True)
    grid = [0.3, 3.0, 30.0, 300.0]
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    ece = get_scorer("neg_expected_calibration_error")
    search = GridSearchCV(LogisticRegression(max_iter=2000), {"C": grid}, cv=cv,
                          scoring={"ece": ece, "accuracy": "accuracy"}, refit="ece").fit(X, y)
    # by hand: mean held-out ECE per C, the smallest wins
    by_hand = []
    for C in grid:
        errors = []
        for train, test in cv.split(X, y):
            proba = LogisticRegression(C=C, max_iter=2000).fit(X[train], y[train]).predict_proba(
                X[test])
            errors.append(expected_calibration_error(y[test], proba))
        by_hand.append(np.mean(errors))
    np.testing.assert_allclose(-search.cv_results_["mean_test_ece"], by_hand)
    assert search.best_params_ == {"C": grid[int(np.argmin(by_hand))]}
    assert search.best_estimator_.C == grid[int(np.argmin(by_hand))]
    # the metrics disagree here, so the test shows refit follows the ECE, not accuracy
    assert np.argmin(by_hand) != np.argmax(search.cv_results_["mean_test_accuracy"])

    # regression: CRPS scorer inside cross_val_score equals the metric per fold
    rng = np.random.default_rng(0)
    Xr = rng.normal(size=(60, 2))
    yr = Xr @ [1.0, 2.0] + rng.normal(size=60)
    kfold = KFold(3)
    scores = cross_val_score(BayesianRidge(), Xr, yr, cv=kfold, scoring=get_scorer("neg_crps"))
    expected = [-crps_gaussian(yr[te], *BayesianRidge().fit(Xr[tr], yr[tr]).predict(
        Xr[te], return_std=True)) for tr, te in kfold.split(Xr)]
    np.testing.assert_allclose(scores, expected)


def test_scorers_on_skbnn_estimators():
    # the scorers call skbnn's predict_proba / predict(return_std=True) as any other's
    from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
    from skbnn.inference import PSGLD

    net = dict(hidden_layer_sizes=(8,), inference=PSGLD(n_draws=10), max_iter=30,
               learning_rate_init=0.01, random_state=0)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = X @ [1.0, -1.0] + 0.3 * rng.normal(size=40)
    kfold = KFold(2)
    scores = cross_val_score(BayesianMLPRegressor(**net), X, y, cv=kfold,
                             scoring=get_scorer("neg_gaussian_nll"))
    expected = [-gaussian_nll(y[te], *BayesianMLPRegressor(**net).fit(X[tr], y[tr]).predict(
        X[te], return_std=True)) for tr, te in kfold.split(X)]
    np.testing.assert_allclose(scores, expected, rtol=1e-6)

    labels = (y > 0).astype(int)
    clf = BayesianMLPClassifier(**net).fit(X, labels)
    assert get_scorer("neg_expected_calibration_error")(clf, X, labels) == pytest.approx(
        -expected_calibration_error(labels, clf.predict_proba(X)))
