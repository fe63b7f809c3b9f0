"""The MLP estimators as scikit-learn users meet them."""

import io
import pickle
import re
import warnings
from contextlib import redirect_stdout

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, make_blobs
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import skbnn
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor, PredictiveUncertainty
from skbnn.inference import MAP, PSGLD

ESTIMATORS = [BayesianMLPClassifier, BayesianMLPRegressor]
FAST_PSGLD = PSGLD(n_draws=8)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _iris():
    X, y = load_iris(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def _regression(n=120, n_outputs=1, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 3))
    Y = np.column_stack([np.sin(X[:, 0]) + 0.3 * X[:, k] for k in range(n_outputs)])
    Y = Y + 0.1 * rng.normal(size=Y.shape)
    return X, (Y[:, 0] if n_outputs == 1 else Y)


# --- drop-in for MLPClassifier / MLPRegressor ---------------------------------


@pytest.mark.parametrize("Bayes, MLP", [(BayesianMLPClassifier, MLPClassifier),
                                         (BayesianMLPRegressor, MLPRegressor)])
def test_shared_parameters_and_fitted_attributes_match_mlp(Bayes, MLP):
    shared = set(Bayes().get_params()) & set(MLP().get_params())
    assert {"hidden_layer_sizes", "activation", "alpha", "batch_size", "learning_rate_init",
            "max_iter", "shuffle", "random_state", "tol", "verbose", "warm_start",
            "early_stopping", "validation_fraction", "n_iter_no_change"} <= shared
    X, y = _iris() if Bayes is BayesianMLPClassifier else _regression()
    ours = Bayes(hidden_layer_sizes=(7, 5), inference="map", max_iter=20,
                 random_state=0).fit(X, y)
    theirs = MLP(hidden_layer_sizes=(7, 5), max_iter=20, random_state=0).fit(X, y)
    for name in ("n_features_in_", "n_layers_", "n_outputs_", "out_activation_", "n_iter_"):
        assert getattr(ours, name) == getattr(theirs, name), name
    assert [c.shape for c in ours.coefs_] == [c.shape for c in theirs.coefs_]
    assert [b.shape for b in ours.intercepts_] == [b.shape for b in theirs.intercepts_]
    assert len(ours.loss_curve_) == ours.n_iter_ and ours.t_ == theirs.t_


def test_binary_multiclass_and_string_labels():
    X, y = make_blobs(n_samples=120, centers=3, random_state=0)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    clf = BayesianMLPClassifier((16,), inference=FAST_PSGLD, max_iter=150,
                                learning_rate_init=0.01, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    # the blobs overlap: logistic regression scores 0.92 on them, pSGLD 0.90-0.92 over seeds
    assert set(clf.predict(X)) <= set(names) and clf.score(X, names) > 0.85
    binary = BayesianMLPClassifier((16,), inference=FAST_PSGLD, max_iter=60,
                                   learning_rate_init=0.01, random_state=0).fit(X, y == 1)
    assert binary.out_activation_ == "logistic" and binary.n_outputs_ == 1
    proba = binary.predict_proba(X)
    assert proba.shape == (120, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(binary.predict(X), binary.classes_[proba.argmax(1)])


def test_multiclass_probabilities_are_the_mean_of_the_draws():
    X, y = _iris()
    clf = BayesianMLPClassifier((8,), inference=FAST_PSGLD, max_iter=60, random_state=0).fit(X, y)
    draws = clf.sample_predictions(X)
    assert draws.shape == (4 * 8, 150, 3)  # 4 chains of 8 draws
    np.testing.assert_allclose(clf.predict_proba(X), draws.mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(clf.predict_log_proba(X), np.log(clf.predict_proba(X)))


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_regression_single_and_multi_output(n_outputs):
    X, y = _regression(n_outputs=n_outputs)
    reg = BayesianMLPRegressor((32,), activation="tanh", inference=FAST_PSGLD, max_iter=150,
                               learning_rate_init=0.01, random_state=0).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape
    assert reg.score(X, y) > 0.8
    mean, std = reg.predict(X, return_std=True)
    np.testing.assert_array_equal(mean, pred)
    assert std.shape == y.shape and np.all(std > 0)
    assert reg.sample_predictions(X).shape == (4 * 8, len(X), n_outputs)
    assert reg.noise_std_.shape == (n_outputs,)


def test_regressor_handles_unscaled_targets():
    # diabetes targets run from 25 to 346: normalize_y makes the default prior fit them
    X, y = load_diabetes(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    reg = BayesianMLPRegressor((16,), inference="map", max_iter=300, learning_rate_init=0.01,
                               random_state=0).fit(X, y)
    assert reg.score(X, y) > 0.45
    assert 35 < reg.noise_std_[0] < 70  # about the residual sd of a linear fit (54)
    # coefs_/intercepts_ reproduce the MAP network's predictions in units of y
    hidden = np.maximum(X @ reg.coefs_[0] + reg.intercepts_[0], 0)
    np.testing.assert_allclose(hidden @ reg.coefs_[1][:, 0] + reg.intercepts_[1][0],
                               reg.predict(X), rtol=1e-4)


def test_fixed_noise_is_used_as_given():
    X, y = _regression()
    reg = BayesianMLPRegressor((8,), noise_std=0.37, inference="map", max_iter=20,
                               random_state=0).fit(X, y)
    np.testing.assert_allclose(reg.noise_std_, [0.37], rtol=1e-6)
    u = reg.predict_uncertainty(X)
    np.testing.assert_allclose(u.aleatoric, 0.37, rtol=1e-6)


# --- uncertainty ----------------------------------------------------------------


def test_classifier_uncertainty_decomposes_entropy():
    X, y = _iris()
    clf = BayesianMLPClassifier((8,), inference=FAST_PSGLD, max_iter=60, random_state=0).fit(X, y)
    u = clf.predict_uncertainty(X)
    assert isinstance(u, PredictiveUncertainty)
    p = clf.predict_proba(X)
    # predict_proba renormalises the mean of the float32 draws: equal to float32 round-off
    np.testing.assert_allclose(u.total, -(p * np.log(p)).sum(1), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(u.total, u.aleatoric + u.epistemic, rtol=1e-6, atol=1e-12)
    assert np.all(u.epistemic >= 0) and np.all(u.total <= np.log(3) + 1e-9)
    assert u.epistemic.max() > 0


def test_map_has_no_epistemic_uncertainty():
    X, y = _iris()
    clf = BayesianMLPClassifier((8,), inference="map", max_iter=30, random_state=0).fit(X, y)
    np.testing.assert_allclose(clf.predict_uncertainty(X).epistemic, 0.0, atol=1e-6)


def test_classifier_entropy_is_higher_far_from_the_data():
    X, y = make_blobs(n_samples=300, centers=[[-2, 0], [2, 0], [0, 2.5]], cluster_std=0.6,
                      random_state=0)
    clf = BayesianMLPClassifier((32,), activation="tanh", inference=PSGLD(n_chains=4, n_draws=10),
                                max_iter=100, learning_rate_init=0.01,
                                random_state=0).fit(X, y)
    near = clf.predict_uncertainty(X)
    far_points = np.random.RandomState(1).uniform(-1, 1, size=(300, 2)) * 4 + [0, -9]
    far = clf.predict_uncertainty(far_points)
    assert np.median(far.epistemic) > 5 * np.median(near.epistemic)
    assert np.median(far.total) > np.median(near.total)


def test_regressor_std_grows_off_the_data_and_decomposes():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(200, 1))
    y = np.sin(3 * X[:, 0]) + 0.1 * rng.normal(size=200)
    reg = BayesianMLPRegressor((32,), activation="tanh", inference=PSGLD(n_chains=4, n_draws=10),
                               batch_size=32, max_iter=400, learning_rate_init=0.003,
                               random_state=0).fit(X, y)
    u_in = reg.predict_uncertainty(np.linspace(-0.8, 0.8, 20)[:, None])
    u_out = reg.predict_uncertainty(np.linspace(3, 4, 20)[:, None])
    assert u_out.epistemic.mean() > 3 * u_in.epistemic.mean()
    np.testing.assert_allclose(u_in.total**2, u_in.aleatoric**2 + u_in.epistemic**2, rtol=1e-6)
    _, std = reg.predict(np.linspace(3, 4, 20)[:, None], return_std=True)
    np.testing.assert_allclose(std, u_out.total, rtol=1e-6)
    assert 0.07 < reg.noise_std_[0] < 0.14  # the true noise sd is 0.1


# --- determinism, persistence --------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_same_random_state_same_predictions(Estimator):
    X, y = _iris() if Estimator is BayesianMLPClassifier else _regression()
    fits = [Estimator((8,), inference=FAST_PSGLD, max_iter=30, random_state=s).fit(X, y)
            for s in (3, 3, 4)]
    a, b, c = (f.sample_predictions(X) for f in fits)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_pickle_and_save_round_trip_exactly(Estimator, tmp_path):
    X, y = _iris() if Estimator is BayesianMLPClassifier else _regression(n_outputs=2)
    if Estimator is BayesianMLPClassifier:
        y = np.array(["a", "b", "c"], dtype=object)[y]
    est = Estimator((8,), inference=PSGLD(n_draws=4, n_chains=2), max_iter=20,
                    random_state=np.random.RandomState(0)).fit(X, y)
    expected = est.sample_predictions(X)
    restored = [pickle.loads(pickle.dumps(est))]
    est.save(tmp_path / "model.npz")
    restored.append(Estimator.load(tmp_path / "model.npz"))
    restored.append(skbnn.load(tmp_path / "model.npz"))
    for other in restored:
        np.testing.assert_array_equal(other.sample_predictions(X), expected)
        np.testing.assert_array_equal(other.predict(X), est.predict(X))
        params, expected_params = other.get_params(), est.get_params()
        for state, expected_state in zip(params.pop("random_state").get_state(),
                                         expected_params.pop("random_state").get_state()):
            np.testing.assert_array_equal(state, expected_state)
        assert repr(params) == repr(expected_params)
        for name in ("coefs_", "loss_curve_", "n_iter_", "diagnostics_"):
            assert repr(getattr(other, name)) == repr(getattr(est, name))
    if Estimator is BayesianMLPClassifier:
        assert restored[1].classes_.dtype == est.classes_.dtype


def test_save_keeps_feature_names_and_refuses_the_wrong_class(tmp_path):
    pd = pytest.importorskip("pandas")
    X, y = _iris()
    frame = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = BayesianMLPClassifier((4,), inference="map", max_iter=5, random_state=0).fit(frame, y)
    clf.save(tmp_path / "m.npz")
    loaded = BayesianMLPClassifier.load(tmp_path / "m.npz")
    assert list(loaded.feature_names_in_) == ["a", "b", "c", "d"]
    with pytest.raises(TypeError, match="not a BayesianMLPRegressor"):
        BayesianMLPRegressor.load(tmp_path / "m.npz")


def test_unfitted_estimator_saves_and_raises_not_fitted(tmp_path):
    est = BayesianMLPClassifier(inference=PSGLD(n_chains=3))
    est.save(tmp_path / "m.npz")
    loaded = skbnn.load(tmp_path / "m.npz")
    assert loaded.get_params()["inference__n_chains"] == 3
    with pytest.raises(NotFittedError):
        loaded.predict(np.zeros((2, 4)))


# --- bad input ----------------------------------------------------------------


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_bad_input_is_named(Estimator):
    X, y = _iris()
    est = Estimator((4,), inference="map", max_iter=3)
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        est.fit(X_nan, y)
    X_inf = X.copy()
    X_inf[0, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        est.fit(X_inf, y)
    with pytest.raises(ValueError, match="2D array"):
        est.fit(X[:, 0], y)
    with pytest.raises(ValueError, match="1 sample"):
        est.fit(X[:1], y[:1])
    est.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match="NaN"):
        est.predict(X_nan)


def test_one_class_is_refused():
    X, _ = _iris()
    with pytest.raises(ValueError, match="at least 2 classes .* only one class"):
        BayesianMLPClassifier(inference="map").fit(X, np.zeros(len(X)))


def test_unsupported_targets_are_refused_by_name():
    # multilabel indicator matrices fit (tests/test_sklearn_params.py); continuous
    # targets do not, and the error names their type
    X, y = _iris()
    with pytest.raises(ValueError, match="continuous"):
        BayesianMLPClassifier(inference="map").fit(X, y + 0.5)


def test_unknown_strategy_and_bad_parameters_are_refused():
    X, y = _iris()
    with pytest.raises(ValueError, match="inference"):
        BayesianMLPClassifier(inference="hmc").fit(X, y)
    with pytest.raises(ValueError, match="alpha"):
        BayesianMLPClassifier(alpha=0.0).fit(X, y)
    with pytest.raises(ValueError, match="hidden_layer_sizes must be > 0"):
        BayesianMLPClassifier(hidden_layer_sizes=(4, 0)).fit(X, y)
    with pytest.raises(ValueError, match="step_size"):
        BayesianMLPClassifier(inference=PSGLD(step_size=-1.0)).fit(X, y)


# --- scikit-learn workflows -------------------------------------------------------


def test_grid_search_over_strategy_parameters():
    X, y = _iris()
    search = GridSearchCV(
        BayesianMLPClassifier((8,), inference=PSGLD(n_draws=4), max_iter=30, random_state=0),
        {"inference__step_size": [1e-3, 3e-2]}, cv=3,
    ).fit(X, y)
    assert search.best_params_["inference__step_size"] == 3e-2  # bigger steps learn more in 30 epochs
    assert search.best_estimator_.inference_.step_size == 3e-2


def test_pipeline_with_sparse_input():
    X, y = load_breast_cancer(return_X_y=True)
    X = sp.csr_matrix(StandardScaler().fit_transform(X))
    pipe = make_pipeline(BayesianMLPClassifier((8,), inference="map", max_iter=30,
                                               random_state=0))
    pipe.fit(X, y)
    dense = BayesianMLPClassifier((8,), inference="map", max_iter=30,
                                  random_state=0).fit(X.toarray(), y)
    np.testing.assert_array_equal(pipe.predict_proba(X), dense.predict_proba(X.toarray()))


@pytest.mark.parametrize("Estimator", ESTIMATORS)
def test_sample_weight_counts_as_repeated_rows(Estimator):
    X, y = _iris() if Estimator is BayesianMLPClassifier else _regression()
    weights = np.random.RandomState(0).randint(0, 3, size=len(X))
    # full batches and a fixed temperature: the same steps on the same rows (the
    # temperature search would hold back other rows from the repeated data)
    kw = dict(hidden_layer_sizes=(8,), inference=PSGLD(n_draws=8, temperature=1.0),
              batch_size=400, max_iter=30, random_state=0)
    weighted = Estimator(**kw).fit(X, y, sample_weight=weights)
    repeated = Estimator(**kw).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    # equal up to float32 round-off (the sums run in another order)
    np.testing.assert_allclose(weighted.sample_predictions(X), repeated.sample_predictions(X),
                               rtol=1e-4, atol=1e-5)


def test_warm_start_continues_from_the_previous_fit():
    X, y = _iris()
    clf = BayesianMLPClassifier((8,), inference="map", batch_size=16, max_iter=5,
                                warm_start=True, random_state=0).fit(X, y)
    first = clf.loss_curve_[-1]
    n_iter, t, curve = clf.n_iter_, clf.t_, list(clf.loss_curve_)
    clf.fit(X, y)
    # as MLPClassifier: the curve, the epoch count and the rows seen continue
    assert clf.loss_curve_[:n_iter] == curve
    assert clf.loss_curve_[n_iter] < first + 1e-3  # no restart from a random network
    assert clf.n_iter_ == n_iter + 5 and clf.t_ == t + 5 * X.shape[0]
    clf.set_params(hidden_layer_sizes=(9,))
    with pytest.raises(ValueError, match="another architecture"):
        clf.fit(X, y)
    fresh = clone(clf).set_params(hidden_layer_sizes=(8,), warm_start=False)
    assert fresh.fit(X, y).loss_curve_[0] > first + 0.05


def test_verbose_prints_loss_step_size_and_draws():
    X, y = _iris()
    buf = io.StringIO()
    with redirect_stdout(buf):
        BayesianMLPClassifier((4,), inference=PSGLD(n_draws=2), max_iter=4, verbose=True,
                              random_state=0).fit(X, y)
    lines = buf.getvalue().strip().splitlines()
    # one line per epoch, and the temperature the search chose after its epochs
    iterations = [line for line in lines if line.startswith("Iteration")]
    assert len(iterations) == 4
    assert lines[0].startswith("Iteration 1, loss = ") and "step size = 0.001" in lines[0]
    assert lines[-1].endswith("draws kept = 2")
    # from the second epoch on (the first compiles), an estimate of the time left
    assert re.search(r"draws kept = \d+, \d+ s left$", iterations[1])
    assert any(line.startswith("temperature = ") for line in lines)
    buf = io.StringIO()
    with redirect_stdout(buf):
        BayesianMLPClassifier((4,), inference=MAP(), max_iter=4, random_state=0).fit(X, y)
    assert buf.getvalue() == ""


def test_batch_size_larger_than_data_is_clipped_with_warning():
    X, y = _iris()
    with pytest.warns(UserWarning, match="clipped"):
        clf = BayesianMLPClassifier((4,), inference="map", batch_size=1000, max_iter=2).fit(X, y)
    assert clf.n_iter_ == 2


def test_heteroscedastic_multioutput_coefs_reproduce_the_predicted_mean():
    # the mean units come first in the last layer, the noise units after them: only the
    # mean units take the target scaling, so coefs_ give predict's means (MAP: one draw)
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 3))
    Y = np.c_[10.0 * X[:, 0] + 5.0, X[:, 1] + np.abs(X[:, 2]) * rng.normal(size=200)]
    reg = BayesianMLPRegressor((16,), noise_std="heteroscedastic", inference="map",
                               activation="tanh", max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, Y)
    assert reg.coefs_[-1].shape == (16, 4) and reg.noise_std_.shape == (2,)
    hidden = np.tanh(X[:5] @ reg.coefs_[0] + reg.intercepts_[0])
    means = (hidden @ reg.coefs_[1] + reg.intercepts_[1])[:, :2]
    np.testing.assert_allclose(means, reg.predict(X[:5]), rtol=1e-5, atol=1e-5)


def test_heteroscedastic_single_target_predicts_like_mlp_regressor():
    # MLPRegressor's shapes: a 1-D y gives 1-D predictions and n_outputs_ == 1, though
    # the network has a noise unit beside the mean unit; warm_start refits the same
    rng = np.random.RandomState(0)
    X = rng.normal(size=(120, 3))
    y = X[:, 0] + (0.1 + 0.5 * np.abs(X[:, 1])) * rng.normal(size=120)
    reg = BayesianMLPRegressor((8,), noise_std="heteroscedastic", inference="map",
                               max_iter=20, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
        mean, std = reg.predict(X, return_std=True)
        assert mean.shape == std.shape == (120,)
        assert reg.n_outputs_ == 1 and reg.coefs_[-1].shape == (8, 2)
        reg.set_params(warm_start=True).fit(X, y)
    assert reg.predict(X).shape == (120,)
