"""Drop-in parameters: nested strategy settings when ``inference`` is a name,
and searches over ``inference`` itself."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import PSGLD, STRATEGIES, VI


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
