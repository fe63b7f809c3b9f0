"""MAP: the posterior mode, and scikit-learn's stopping rule."""

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import MAP

from .._conjugate import linear_draws, linear_gaussian_problem


def test_map_is_the_exact_posterior_mode():
    # For the conjugate model the mode is the posterior mean; full-batch Adam
    # run to a plateau lands within 1% of a posterior sd of it.
    p = linear_gaussian_problem()
    reg = BayesianMLPRegressor(
        (), inference="map", noise_std=p.noise_std, normalize_y=False, alpha=p.alpha,
        batch_size=200, learning_rate_init=0.01, tol=0.0, max_iter=3000, random_state=0,
    ).fit(p.X, p.y)
    theta = linear_draws(reg.posterior_.flatten())
    assert theta.shape == (1, 4)
    sd = np.sqrt(np.diag(p.cov))
    np.testing.assert_array_less(np.abs(theta[0] - p.mean) / sd, 0.01)
    # coefs_/intercepts_ are that mode, in MLPRegressor's layout
    np.testing.assert_allclose(reg.coefs_[0][:, 0], theta[0, :3], rtol=1e-6)
    np.testing.assert_allclose(reg.intercepts_[0], theta[0, 3:], rtol=1e-6)


def test_stops_when_loss_plateaus_like_mlp(digits_split):
    # at a constant step size, as MLPClassifier's Adam
    X_train, _, y_train, _ = digits_split
    clf = BayesianMLPClassifier((32,), inference=MAP(learning_rate_schedule="constant"),
                                max_iter=500, tol=1e-2, n_iter_no_change=3,
                                random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ < 500
    assert len(clf.loss_curve_) == clf.n_iter_
    # scikit-learn's rule: an epoch whose loss is not below the best so far by
    # tol is "no improvement"; more than n_iter_no_change in a row stop training
    curve = clf.loss_curve_
    stale = [curve[i] > min(curve[:i]) - 1e-2 for i in range(1, len(curve))]
    assert all(stale[-4:])
    runs = "".join("x" if s else "." for s in stale[:-4])
    assert "xxxx" not in runs
    assert clf.best_loss_ == pytest.approx(min(clf.loss_curve_))


def test_cosine_runs_its_whole_plan_whatever_the_stopping_rule(digits_split):
    # the settings that stop a constant step size early: the cosine goes on,
    # since stopping in its middle would keep its large steps' noise
    X_train, _, y_train, _ = digits_split
    clf = BayesianMLPClassifier((32,), inference="map", max_iter=60, tol=1e-2,
                                n_iter_no_change=3, random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ == 60


def test_budget_exhausted_warns():
    X = np.random.RandomState(0).normal(size=(50, 3))
    y = (X[:, 0] > 0).astype(int)
    constant = MAP(learning_rate_schedule="constant")
    with pytest.warns(ConvergenceWarning, match="inference='map'.*Maximum iterations \\(3\\)"):
        BayesianMLPClassifier((4,), inference=constant, max_iter=3, random_state=0).fit(X, y)
    with pytest.warns(ConvergenceWarning, match="still falling .* max_iter=3 epochs"):
        BayesianMLPClassifier((4,), inference="map", max_iter=3, random_state=0).fit(X, y)
    # a run whose loss has settled does not warn
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        BayesianMLPClassifier((4,), inference="map", max_iter=200, random_state=0).fit(X, y)


def test_early_stopping_keeps_the_best_validation_parameters(digits_split):
    X_train, _, y_train, _ = digits_split
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BayesianMLPClassifier((32,), inference="map", early_stopping=True,
                                    n_iter_no_change=2, max_iter=200,
                                    random_state=0).fit(X_train, y_train)
    assert clf.n_iter_ < 200
    assert len(clf.validation_scores_) == clf.n_iter_
    assert clf.best_validation_score_ == max(clf.validation_scores_)
    assert clf.best_loss_ is None
    # the kept parameters are the best epoch's, not the last one's: rescored on the same
    # held-back rows (the split early stopping made) they give the best score
    from sklearn.model_selection import train_test_split
    from sklearn.utils import check_random_state

    rng = check_random_state(0)
    rng.randint(np.iinfo(np.int32).max)  # the draw fit makes for its key
    _, X_val, _, y_val = train_test_split(X_train, y_train, random_state=rng,
                                          test_size=clf.validation_fraction, stratify=y_train)
    assert clf.score(X_val, y_val) == pytest.approx(clf.best_validation_score_, abs=1e-6)
    assert clf.validation_scores_[-1] < clf.best_validation_score_  # the last epoch's differ


def test_adam_settings_are_searchable_parameters():
    est = BayesianMLPClassifier(inference=MAP(beta_1=0.8))
    assert est.get_params()["inference__beta_1"] == 0.8
    est.set_params(inference__learning_rate=0.05)
    assert est.inference.learning_rate == 0.05


def _optimizer(**fields):
    import jax.numpy as jnp

    from skbnn.inference.base import make_optimizer
    from skbnn.inference.map import MAPConfig

    arrays = {k: jnp.asarray(v) for k, v in fields.items() if not isinstance(v, str)}
    static = {k: v for k, v in fields.items() if isinstance(v, str)}
    config = MAPConfig(learning_rate=jnp.asarray(0.1), beta_1=jnp.asarray(0.9),
                       beta_2=jnp.asarray(0.999), epsilon=jnp.asarray(0.0))
    return make_optimizer(config.replace(**arrays, **static))


def _steps(opt, n=12):
    # the size of each update under a constant unit gradient
    import jax.numpy as jnp

    params = jnp.zeros(1)
    state = opt.init(params)
    steps = []
    for _ in range(n):
        updates, state = opt.update(jnp.ones(1), state, params, value=jnp.asarray(1.0))
        steps.append(-float(updates[0]))
    return np.array(steps)


def test_cosine_schedule_gives_adam_the_cosine_step_sizes():
    # Under a constant gradient Adam's bias-corrected step is exactly the step
    # size (m_hat / sqrt(v_hat) = 1), so each update reads off the schedule.
    steps = _steps(_optimizer(learning_rate_schedule="cosine", decay_steps=10.0))
    t = np.minimum(np.arange(12), 10)
    np.testing.assert_allclose(steps, 0.1 * 0.5 * (1 + np.cos(np.pi * t / 10)), rtol=1e-4,
                               atol=1e-6)  # float32
    with pytest.raises(ValueError, match="schedule must be one of"):
        _optimizer(learning_rate_schedule="linear")


def test_sgd_invscaling_divides_by_rows_seen_to_the_power_t():
    # plain SGD (no momentum) under a unit gradient: each update is the step size;
    # scikit-learn's invscaling: learning_rate_init / (1 + rows seen) ** power_t
    steps = _steps(_optimizer(solver="sgd", mlp_learning_rate="invscaling", momentum=0.0,
                              power_t=0.25, batch_rows=8.0))
    t = 8.0 * np.arange(12)
    np.testing.assert_allclose(steps, 0.1 / (1 + t) ** 0.25, rtol=1e-5)
    # Adam ignores scikit-learn's learning_rate, as MLPClassifier's Adam does
    adam = _steps(_optimizer(mlp_learning_rate="invscaling", power_t=0.25, batch_rows=8.0))
    np.testing.assert_allclose(adam, 0.1, rtol=1e-4)


def test_sgd_adaptive_divides_the_step_by_five_on_a_plateau():
    # a loss that never falls: after `patience` epochs (of steps_per_epoch steps) the
    # step size is divided by 5, as scikit-learn's learning_rate="adaptive" does
    steps = _steps(_optimizer(solver="sgd", mlp_learning_rate="adaptive", momentum=0.0,
                              patience=2.0, steps_per_epoch=2.0), n=16)
    assert steps[0] == pytest.approx(0.1)
    assert steps[-1] < 0.1 / 4
    assert set(np.round(steps / 0.1, 6)) <= {1.0, 0.2, 0.04, 0.008}


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_cosine_schedule_spans_the_max_iter_budget(schedule):
    # One full-batch step per epoch, far from the optimum: with a constant step
    # size every epoch lowers the loss by about as much as the first; on the
    # cosine over max_iter=20 epochs the last steps are 2-10% of the first.
    rng = np.random.RandomState(0)
    X = rng.normal(size=(64, 3))
    y = X @ np.array([3.0, -2.0, 1.0]) + 5.0
    reg = BayesianMLPRegressor((), inference=MAP(learning_rate_schedule=schedule),
                               noise_std=1.0, normalize_y=False, batch_size=64,
                               learning_rate_init=1e-3, max_iter=20, tol=0.0,
                               random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X, y)
    drops = -np.diff(reg.loss_curve_)
    assert np.all(drops > 0)
    if schedule == "cosine":
        assert drops[-1] < 0.1 * drops[0]
    else:
        assert drops[-1] > 0.5 * drops[0]


def test_loss_settled_tells_an_annealed_tail_from_an_unfinished_run():
    """A step size falling to 0 lowers the training loss a little to the end
    (the minibatch noise averages out): a tail worth under 1% of the run's
    improvement has settled; a loss still falling in proportion has not."""
    from skbnn.inference.base import loss_settled

    epochs = np.arange(200)
    trained = 1.0 + np.exp(-epochs / 10.0) + 0.003 * (1 - epochs / 200)  # tail: 0.3% of it
    assert loss_settled(trained, tol=0.0)[0]
    unfinished = 1.0 + np.exp(-epochs / 100.0)
    settled, drop, _ = loss_settled(unfinished, tol=0.0)
    assert not settled and drop > 0.01
    # a noisy but flat loss has settled; the same noise on a falling one has not
    rng = np.random.default_rng(0)
    assert loss_settled(1.0 + 0.01 * rng.standard_normal(200))[0]
    assert not loss_settled(1.0 + np.exp(-epochs / 100.0) + 0.001 * rng.standard_normal(200))[0]
