"""scikit-learn's estimator checks over every public estimator, with fast settings."""

import pytest
from sklearn.utils.estimator_checks import estimator_checks_generator

from skbnn import (
    BayesianCNNClassifier,
    BayesianMLPClassifier,
    BayesianMLPRegressor,
    SampleEnsemble,
)
from skbnn.inference import NUTS, PSGLD, VI, Laplace

# Small networks and budgets, as scikit-learn's own instance generator does for
# MLPClassifier (max_iter=100). pSGLD keeps 10 draws after a 50% burn-in. NUTS
# keeps 10 draws of one chain after 20 warmup transitions, started from the
# network's initialisation: each new data shape compiles the sampler, and one
# unbatched chain without the MAP start compiles in about half the time.
# VI's predictive averages 10 draws.
FAST = dict(hidden_layer_sizes=(16,), max_iter=100, learning_rate_init=0.01, random_state=0)
# The CNN reads the checks' tabular rows as square or (1, n_features) images.
FAST_CNN = dict(FAST, conv_channels=(4,), kernel_size=3)


def _instances():
    for Estimator in (BayesianMLPClassifier, BayesianMLPRegressor):
        yield Estimator(inference="map", **FAST)
        yield Estimator(inference=PSGLD(n_draws=10), **FAST)
        yield Estimator(inference=VI(n_predictive_draws=10), **FAST)
        yield Estimator(inference=Laplace(n_predictive_draws=10), **FAST)
        yield Estimator(inference=NUTS(n_chains=1, n_warmup=20, n_draws=10, max_tree_depth=4,
                                       init="network"), **FAST)
    # SampleEnsemble delegates validation and fitting to its estimator, so a tiny
    # classifier (8 units, 5 members, 30 epochs) covers the meta-estimator's own code
    # quickly; the regressor needs FAST's budget to pass check_regressors_train (R^2 > 0.5).
    tiny = dict(FAST, hidden_layer_sizes=(8,), max_iter=30, inference=PSGLD(n_draws=5))
    yield SampleEnsemble(BayesianMLPClassifier(**tiny), voting="soft")
    yield SampleEnsemble(BayesianMLPRegressor(inference=PSGLD(n_draws=10), **FAST),
                         aggregate="median")
    # The CNN shares the estimator code checked above; one instance (its default
    # strategy) checks its own input handling. tests/test_cnn.py fits every strategy.
    yield BayesianCNNClassifier(inference=PSGLD(n_draws=10), **FAST_CNN)


_FLOAT32 = (
    "Weighted and repeated-row fits agree to float32 round-off (relative 1e-6; "
    "tests/test_mlp.py checks it at that tolerance) but the sums run in another "
    "order, and this check asks for rtol=1e-7."
)

#: Checks skipped (not run as expected failures: each would fit every instance
#: twice only to fail for the reason given).
SKIPPED = {
    "check_sample_weight_equivalence_on_dense_data": _FLOAT32,
    "check_sample_weight_equivalence_on_sparse_data": _FLOAT32,
}


def _label(estimator):
    inner = getattr(estimator, "estimator", None)
    if inner is not None:
        return f"{type(estimator).__name__}-{_label(inner)}"
    inference = estimator.inference
    name = inference if isinstance(inference, str) else inference.name
    return f"{type(estimator).__name__}-{name}"


def _check_id(label, check):
    func = getattr(check, "func", check)
    keywords = getattr(check, "keywords", {})
    extra = f"({','.join(f'{k}={v}' for k, v in keywords.items())})" if keywords else ""
    return f"{label}-{func.__name__}{extra}"


def _params():
    """sklearn's checks for every instance, each instance's checks in one xdist group.

    Compiling dominates these checks, and each data shape compiles once per
    process: one worker per instance compiles every shape once.
    """
    for estimator in _instances():
        label = _label(estimator)
        for est, check in estimator_checks_generator(
            estimator, expected_failed_checks=SKIPPED, mark="skip"
        ):
            yield pytest.param(est, check, id=_check_id(label, check),
                               marks=pytest.mark.xdist_group(label))


@pytest.mark.parametrize("estimator, check", list(_params()))
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
