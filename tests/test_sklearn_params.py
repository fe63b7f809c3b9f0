"""Drop-in parameters: nested strategy settings when ``inference`` is a name,
and searches over ``inference`` itself."""

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import MAP, PSGLD, STRATEGIES, VI

# short budgets on purpose: whether an optimiser converged is not what these tests check
pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.mark.parametrize("name", sorted(STRATEGIES))
def test_get_params_lists_the_named_strategys_settings(name):
    est = BayesianMLPClassifier(inference=name)
    params = est.get_params(deep=True)
    defaults = STRATEGIES[name]().get_params()
    assert defaults, "every strategy has settings to search"
    for key, value in defaults.items():
        assert params[f"inference__{key}"] == value
    # the shallow parameters are those of __init__, the name unchanged
    assert est.get_params(deep=False)["inference"] == name


def test_set_params_on_a_name_gives_the_strategy_with_that_setting():
    est = BayesianMLPRegressor(inference="psgld")
    assert est.set_params(inference__temperature=0.5) is est
    assert isinstance(est.inference, PSGLD)
    assert est.inference.temperature == 0.5
    # every other setting stays at the strategy's default
    rest = {k: v for k, v in est.inference.get_params().items() if k != "temperature"}
    assert rest == {k: v for k, v in PSGLD().get_params().items() if k != "temperature"}
    assert clone(est).inference.temperature == 0.5


def test_set_params_sets_inference_before_its_settings():
    est = BayesianMLPClassifier(inference="map")
    # nested key first in the dict: the strategy it names is still the new one
    est.set_params(inference__kl_weight=0.3, inference="vi")
    assert isinstance(est.inference, VI)
    assert est.inference.kl_weight == 0.3


def test_set_params_on_an_object_changes_that_object():
    strategy = PSGLD(n_chains=2)
    est = BayesianMLPClassifier(inference=strategy)
    est.set_params(inference__n_draws=7)
    assert est.inference is strategy and strategy.n_draws == 7 and strategy.n_chains == 2


def test_unknown_nested_parameter_is_named():
    est = BayesianMLPClassifier(inference="map")
    with pytest.raises(ValueError, match="temperature"):
        est.set_params(inference__temperature=0.5)
    est = BayesianMLPClassifier(inference="no-such-strategy")
    with pytest.raises(ValueError, match="no-such-strategy"):
        est.set_params(inference__temperature=0.5)


def test_pipeline_reaches_the_strategy_settings_of_a_name():
    pipe = make_pipeline(StandardScaler(), BayesianMLPClassifier(inference="vi"))
    assert "bayesianmlpclassifier__inference__kl_weight" in pipe.get_params()
    pipe.set_params(bayesianmlpclassifier__inference__kl_weight=0.2)
    assert pipe[-1].inference.kl_weight == 0.2


def test_grid_search_over_a_named_strategys_setting():
    X, y = make_classification(120, 4, n_informative=3, n_redundant=0, random_state=0)
    est = BayesianMLPClassifier((), inference="vi", max_iter=30, random_state=0)
    cv = StratifiedKFold(2)
    search = GridSearchCV(est, {"inference__kl_weight": [0.05, 1.0]}, cv=cv,
                          scoring="neg_log_loss").fit(X, y)
    chosen = search.best_params_["inference__kl_weight"]
    assert search.best_estimator_.inference.kl_weight == chosen
    # each candidate was fitted with its own setting: its score is that of the
    # estimator built with the strategy object by hand
    for i, kl_weight in enumerate(search.cv_results_["param_inference__kl_weight"]):
        by_hand = BayesianMLPClassifier((), inference=VI(kl_weight=kl_weight), max_iter=30,
                                        random_state=0)
        scores = cross_val_score(by_hand, X, y, cv=cv, scoring="neg_log_loss")
        assert search.cv_results_["mean_test_score"][i] == pytest.approx(scores.mean(),
                                                                        rel=1e-5)
    # the estimator the user passed is left as it was
    assert est.inference == "vi"


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")  # 10 epochs
def test_grid_search_over_inference_names_on_digits():
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    est = BayesianMLPClassifier((16,), max_iter=10, random_state=0)
    names = ["map", "vi", "laplace", "psgld"]
    search = GridSearchCV(est, {"inference": names}, cv=3, scoring="neg_log_loss").fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert list(search.cv_results_["param_inference"]) == names
    assert np.all(np.isfinite(scores))
    # four strategies, four different fits: no candidate fell back to another
    assert len(np.unique(np.round(scores, 6))) == len(names)
    assert search.best_params_["inference"] == names[int(np.argmax(scores))]
    assert search.best_estimator_.predict_proba(X[:5]).shape == (5, 10)


# --- scikit-learn MLP's constructor parameters -----------------------------------

#: A non-default value for each of MLPClassifier's / MLPRegressor's parameters.
NON_DEFAULT = {
    "hidden_layer_sizes": (5, 3),
    "activation": "tanh",
    "solver": "sgd",
    "alpha": 0.5,
    "batch_size": 16,
    "learning_rate": "invscaling",
    "learning_rate_init": 0.01,
    "power_t": 0.25,
    "max_iter": 4,
    "shuffle": False,
    "random_state": 3,
    "tol": 1e-3,
    "verbose": True,
    "warm_start": True,
    "momentum": 0.5,
    "nesterovs_momentum": False,
    "early_stopping": True,
    "validation_fraction": 0.2,
    "beta_1": 0.8,
    "beta_2": 0.99,
    "epsilon": 1e-7,
    "n_iter_no_change": 3,
    "max_fun": 100,
    "loss": "squared_error",  # 'poisson' needs y >= 0: see tests/test_poisson.py
}


def _mlp_pairs():
    from sklearn.neural_network import MLPClassifier, MLPRegressor

    return [(MLPClassifier, BayesianMLPClassifier), (MLPRegressor, BayesianMLPRegressor)]


@pytest.mark.parametrize("sk_class, skbnn_class", _mlp_pairs(), ids=["classifier", "regressor"])
def test_every_mlp_parameter_is_taken_with_its_default(sk_class, skbnn_class):
    sk_params = sk_class().get_params()
    ours = skbnn_class().get_params(deep=False)
    assert set(sk_params) <= set(ours), set(sk_params) - set(ours)
    # alpha's default differs on purpose (see the docs on the objective)
    differ = {k for k in sk_params if k != "alpha" and ours[k] != sk_params[k]}
    assert not differ, {k: (sk_params[k], ours[k]) for k in differ}
    assert set(NON_DEFAULT) >= set(sk_params)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("sk_class, skbnn_class", _mlp_pairs(), ids=["classifier", "regressor"])
@pytest.mark.parametrize("name", sorted(NON_DEFAULT))
def test_code_written_for_mlp_fits_after_the_import_changes(sk_class, skbnn_class, name):
    if name not in sk_class().get_params():
        pytest.skip(f"{sk_class.__name__} has no {name}")
    X, y = make_classification(60, 4, n_informative=3, n_redundant=0, random_state=0)
    if skbnn_class is BayesianMLPRegressor:
        y = X @ np.arange(1.0, 5.0)
    params = {**sk_class().get_params(), "max_iter": 4, name: NON_DEFAULT[name]}
    sk_class(**params)  # the same settings are valid for scikit-learn
    est = skbnn_class(**params, inference="map")
    est.fit(X, y)
    if name == "warm_start":
        est.fit(X, y)
    assert est.get_params()[name] == NON_DEFAULT[name]
    assert np.all(np.isfinite(est.predict(X)))


def _conjugate():
    from ._conjugate import linear_gaussian_problem

    return linear_gaussian_problem(n_samples=60, n_features=3, noise_std=0.5, alpha=1.0)


def _linear_map(inference="map", **params):
    prob = _conjugate()
    est = BayesianMLPRegressor((), inference=inference, noise_std=prob.noise_std,
                               normalize_y=False, alpha=prob.alpha, batch_size=60,
                               random_state=0, **params)
    est.fit(prob.X, prob.y)
    theta = np.append(est.coefs_[0][:, 0], est.intercepts_[0])
    return est, theta, prob.mean


def test_lbfgs_finds_the_exact_mode_in_few_iterations():
    est, theta, mode = _linear_map(solver="lbfgs", max_iter=200)
    # the posterior mode of the conjugate model, to float32 round-off
    np.testing.assert_allclose(theta, mode, atol=1e-4)
    assert est.n_iter_ < 40


def test_lbfgs_stops_at_max_fun_and_says_so():
    from sklearn.exceptions import ConvergenceWarning

    with pytest.warns(ConvergenceWarning, match="max_fun=3"):
        est, theta, mode = _linear_map(solver="lbfgs", max_iter=200, max_fun=3)
    assert est.n_iter_ <= 3
    assert np.max(np.abs(theta - mode)) > 1e-3


@pytest.mark.parametrize("momentum, nesterov", [(0.0, False), (0.9, True), (0.9, False)])
def test_sgd_reaches_the_exact_mode(momentum, nesterov):
    # full-batch gradient descent on a strictly convex loss, constant steps; heavy-ball
    # momentum's loss is not monotone, so MLP's stopping rule is kept out of the way
    est, theta, mode = _linear_map(solver="sgd", momentum=momentum,
                                   nesterovs_momentum=nesterov, learning_rate_init=0.05,
                                   max_iter=400, tol=0.0, n_iter_no_change=400,
                                   inference=MAP(learning_rate_schedule="constant"))
    np.testing.assert_allclose(theta, mode, atol=1e-3)


def test_optimiser_settings_reach_the_optimiser():
    base = dict(solver="sgd", learning_rate_init=0.02, max_iter=5, tol=0.0)
    _, plain, _ = _linear_map(**base, momentum=0.0)
    _, heavy, _ = _linear_map(**base, momentum=0.9)
    _, nesterov, _ = _linear_map(**base, momentum=0.9, nesterovs_momentum=False)
    _, inv, _ = _linear_map(**base, momentum=0.0, learning_rate="invscaling", power_t=0.5)
    for a, b in [(plain, heavy), (heavy, nesterov), (plain, inv)]:
        assert np.max(np.abs(a - b)) > 1e-4
    # Adam's settings, and as in scikit-learn SGD's momentum does not touch Adam
    adam = dict(solver="adam", learning_rate_init=0.02, max_iter=5, tol=0.0)
    _, a, _ = _linear_map(**adam)
    _, b, _ = _linear_map(**adam, beta_1=0.5)
    _, c, _ = _linear_map(**adam, momentum=0.1, learning_rate="invscaling")
    assert np.max(np.abs(a - b)) > 1e-4
    np.testing.assert_array_equal(a, c)


def test_a_strategys_own_adam_setting_wins_over_the_estimators():
    adam = dict(solver="adam", learning_rate_init=0.02, max_iter=5, tol=0.0)
    _, a, _ = _linear_map(**adam, beta_1=0.5)
    prob = _conjugate()
    est = BayesianMLPRegressor((), inference=MAP(beta_1=0.5), noise_std=prob.noise_std,
                               normalize_y=False, alpha=prob.alpha, batch_size=60,
                               random_state=0, beta_1=0.9, **adam).fit(prob.X, prob.y)
    np.testing.assert_array_equal(a, np.append(est.coefs_[0][:, 0], est.intercepts_[0]))


@pytest.mark.parametrize("inference", ["vi", "ensemble"])
def test_lbfgs_is_refused_where_it_cannot_apply(inference):
    X, y = make_classification(40, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.raises(ValueError, match="lbfgs"):
        BayesianMLPClassifier((), inference=inference, solver="lbfgs", max_iter=2).fit(X, y)


def test_psgld_says_optimiser_settings_have_no_effect():
    X, y = make_classification(40, 3, n_informative=2, n_redundant=0, random_state=0)
    with pytest.warns(UserWarning, match=r"solver='sgd', momentum=0\.5 has no effect"):
        BayesianMLPClassifier((), solver="sgd", momentum=0.5, max_iter=2,
                              random_state=0).fit(X, y)


@pytest.mark.parametrize("inference", ["laplace", "nuts"])
def test_lbfgs_drives_laplaces_mode_and_nuts_starts(inference):
    from skbnn.inference import NUTS, Laplace

    prob = _conjugate()
    strategy = (Laplace() if inference == "laplace"
                else NUTS(n_chains=1, n_warmup=50, n_draws=50))
    est = BayesianMLPRegressor((), inference=strategy, solver="lbfgs", max_iter=100,
                               noise_std=prob.noise_std, normalize_y=False, alpha=prob.alpha,
                               random_state=0).fit(prob.X, prob.y)
    theta = np.append(est.coefs_[0][:, 0], est.intercepts_[0])
    # Laplace's mean is its mode: lbfgs's exact one; NUTS's 50 draws are near it
    atol = 1e-4 if inference == "laplace" else 4 * np.sqrt(np.diag(prob.cov)).max()
    np.testing.assert_allclose(theta, prob.mean, atol=atol)


# --- multilabel targets --------------------------------------------------------------


def _multilabel():
    from sklearn.datasets import make_multilabel_classification

    X, Y = make_multilabel_classification(200, 8, n_classes=3, random_state=0)
    return X / X.max(), Y


@pytest.mark.parametrize("inference", ["map", "psgld", "vi", "laplace", "ensemble"])
def test_multilabel_targets_fit_one_bernoulli_per_label(inference):
    X, Y = _multilabel()
    clf = BayesianMLPClassifier((16,), inference=inference, max_iter=60, random_state=0)
    clf.fit(X, Y)
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])  # as MLPClassifier's
    proba = clf.predict_proba(X)
    assert proba.shape == Y.shape and np.all((proba > 0) & (proba < 1))
    # not one distribution over classes: rows do not sum to 1
    assert np.abs(proba.sum(axis=1) - 1).max() > 0.2
    pred = clf.predict(X)
    np.testing.assert_array_equal(pred, (proba > 0.5).astype(int))
    # each label learnt: better than always predicting its majority value
    majority = np.maximum(Y.mean(axis=0), 1 - Y.mean(axis=0))
    assert np.all((pred == Y).mean(axis=0) > majority)
    u = clf.predict_uncertainty(X[:5])
    np.testing.assert_allclose(u.total, u.aleatoric + u.epistemic, rtol=1e-6)
    assert np.all(u.total <= 3 * np.log(2) + 1e-9)  # at most one bit per label


def test_multilabel_likelihood_is_the_sum_over_labels():
    import jax.numpy as jnp

    from skbnn.likelihoods import Bernoulli, MultilabelBernoulli

    rng = np.random.RandomState(0)
    outputs = rng.normal(size=(5, 3)).astype(np.float32)
    y = rng.randint(0, 2, size=(5, 3))
    joint = MultilabelBernoulli(3).log_likelihood({}, jnp.asarray(outputs), jnp.asarray(y))
    per_label = sum(Bernoulli().log_likelihood({}, jnp.asarray(outputs[:, [k]]),
                                               jnp.asarray(y[:, k])) for k in range(3))
    np.testing.assert_allclose(joint, per_label, rtol=1e-6)


def test_multilabel_fit_matches_mlpclassifiers_interface():
    from sklearn.neural_network import MLPClassifier

    X, Y = _multilabel()
    ours = BayesianMLPClassifier((16,), inference="map", max_iter=50, random_state=0).fit(X, Y)
    theirs = MLPClassifier((16,), max_iter=50, random_state=0).fit(X, Y)
    np.testing.assert_array_equal(ours.classes_, theirs.classes_)
    assert ours.predict(X).shape == theirs.predict(X).shape
    assert ours.predict_proba(X).shape == theirs.predict_proba(X).shape
    assert ours.out_activation_ == theirs.out_activation_ == "logistic"
    # and the same labels from a sparse indicator matrix
    sparse = BayesianMLPClassifier((16,), inference="map", max_iter=50,
                                   random_state=0).fit(X, sp.csr_matrix(Y))
    np.testing.assert_array_equal(sparse.predict_proba(X), ours.predict_proba(X))


def test_multilabel_save_round_trips_and_sample_ensemble_refuses(tmp_path):
    import pickle

    import skbnn
    from skbnn import SampleEnsemble

    X, Y = _multilabel()
    clf = BayesianMLPClassifier((8,), inference="psgld", max_iter=20, random_state=0).fit(X, Y)
    clf.save(tmp_path / "m.npz")
    for loaded in (skbnn.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(clf))):
        np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    with pytest.raises(ValueError, match="multilabel"):
        SampleEnsemble(clf).fit(X, Y)


# --- ArviZ --------------------------------------------------------------------------


def test_to_arviz_round_trip(tmp_path):
    az = pytest.importorskip("arviz")
    from sklearn.datasets import load_iris
    from sklearn.preprocessing import scale

    X, y = load_iris(return_X_y=True)
    X = scale(X)
    clf = BayesianMLPClassifier((4,), inference=PSGLD(n_chains=3, n_draws=10), max_iter=30,
                                random_state=0).fit(X, y)
    idata = clf.to_arviz()
    kernel = idata.posterior["network.dense_0.kernel"]
    assert kernel.dims[:2] == ("chain", "draw") and kernel.shape == (3, 10, 4, 4)
    np.testing.assert_array_equal(kernel.values,
                                  clf.posterior_.draws["network"]["dense_0"]["kernel"])
    # ArviZ's split R-hat of the exported chains is the one the fit reports
    rhat = az.rhat(idata, method="split")["network.dense_0.kernel"].values
    np.testing.assert_allclose(rhat, clf.rhat_["network"]["dense_0"]["kernel"], rtol=1e-6)
    assert idata.posterior.attrs["inference"] == "psgld"
    assert idata.posterior.attrs["max_rhat"] == pytest.approx(clf.max_rhat_)
    idata.to_netcdf(tmp_path / "fit.nc")
    back = az.from_netcdf(tmp_path / "fit.nc")
    np.testing.assert_array_equal(back.posterior["network.dense_0.kernel"].values, kernel.values)
    # a Gaussian posterior: its predictive draws as one chain
    vi = BayesianMLPClassifier((4,), inference="vi", max_iter=10, random_state=0).fit(X, y)
    assert vi.to_arviz().posterior["network.dense_1.bias"].shape == (
        1, vi.inference_.n_predictive_draws, 3)
