"""``partial_fit``: MLP's incremental interface, Bayesian where a posterior can be carried.

The conjugate model (``tests/_conjugate.py``) gives each streaming mode's exact
target in closed form:

- VI ("prior"): the mean-field posterior of the first batch is the prior of
  the second. On the linear-Gaussian model its mean is the exact posterior
  mean of batch A and its precision the diagonal of the exact precision, so
  the second fit's optimum is the Gaussian with precision
  ``diag(P_A) + Phi_B^T Phi_B / sigma^2`` (its mean-field part) and the mean
  that precision gives: computed below and compared with the fit.
- pSGLD ("draws"): the Gaussian of batch A's draws is B's prior, and the chains
  continue: on this model, the posterior of all rows up to Monte Carlo error.
- Laplace ("curvature"): batch A's mode and curvature are B's prior: exactly
  the posterior of all rows.
- MAP ("epoch"): one epoch per call, as ``MLPClassifier.partial_fit``.
"""

import pickle
import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.preprocessing import StandardScaler

import skbnn
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import PSGLD, VI, Laplace

from ._conjugate import linear_draws, linear_gaussian_problem


def _theta(tree):
    layer = tree["network"]["dense_0"]
    return np.concatenate([np.asarray(layer["kernel"])[:, 0], np.asarray(layer["bias"])])


def _phi(X):
    return np.hstack([X, np.ones((len(X), 1))])


def _halves():
    base = linear_gaussian_problem(n_samples=60)
    return base, slice(0, 30), slice(30, 60)


def _regressor(inference, **params):
    base = linear_gaussian_problem(n_samples=60)
    return BayesianMLPRegressor((), inference=inference, noise_std=base.noise_std,
                                normalize_y=False, alpha=base.alpha, random_state=0, **params)


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return fn(*args, **kwargs)


def test_vi_partial_fit_makes_the_posterior_the_next_prior():
    base, a, b = _halves()
    s2 = base.noise_std**2
    # batch A: the exact posterior; its mean-field part is VI's optimum
    prec_a = base.alpha * np.eye(4) + _phi(base.X[a]).T @ _phi(base.X[a]) / s2
    mean_a = np.linalg.solve(prec_a, _phi(base.X[a]).T @ base.y[a] / s2)
    # batch B with that mean-field Gaussian as its prior
    d = np.diag(prec_a)
    prec_b = np.diag(d) + _phi(base.X[b]).T @ _phi(base.X[b]) / s2
    mean_b = np.linalg.solve(prec_b, d * mean_a + _phi(base.X[b]).T @ base.y[b] / s2)
    sd_b = 1.0 / np.sqrt(np.diag(prec_b))  # the mean-field optimum's scales

    # the settings of tests/inference/test_vi.py's conjugate test (full batches)
    reg = _regressor(VI(n_mc=8, learning_rate=3e-3, kl_weight=1.0), batch_size=30, tol=0.0,
                     n_iter_no_change=3000, max_iter=3000)
    _quiet(reg.partial_fit, base.X[a], base.y[a])
    _quiet(reg.partial_fit, base.X[b], base.y[b])
    exact_sd = np.sqrt(np.diag(np.linalg.inv(prec_b)))
    np.testing.assert_array_less(np.abs(_theta(reg.posterior_.mean) - mean_b) / exact_sd, 0.1)
    np.testing.assert_allclose(_theta(reg.posterior_.factors["scale"]), sd_b, rtol=0.05)
    # against one fit on all rows (the mean-field optimum: the exact mean, scales from the
    # diagonal of the exact precision): the scales agree exactly in closed form, since the
    # diagonals add up; the means by as much as the closed-form update loses by dropping
    # batch A's correlations (computed here, under 0.1 sd on this problem) plus VI's own
    # 0.1 sd
    full_sd = np.sqrt(np.diag(base.cov))
    lost = np.abs(mean_b - base.mean) / full_sd
    np.testing.assert_allclose(sd_b, 1.0 / np.sqrt(np.diag(np.linalg.inv(base.cov))))
    np.testing.assert_array_less(
        np.abs(_theta(reg.posterior_.mean) - base.mean) / full_sd, lost + 0.1)
    # the first batch was remembered: batch B alone leaves a wider posterior
    alone = np.diag(base.alpha * np.eye(4) + _phi(base.X[b]).T @ _phi(base.X[b]) / s2)
    assert np.all(sd_b < 0.8 / np.sqrt(alone))
    assert reg.n_samples_seen_ == 60
    assert reg.n_iter_ == 6000 and len(reg.loss_curve_) == 6000


@pytest.mark.parametrize("structure", ["full", "kron"])
def test_laplace_partial_fit_on_batches_is_the_posterior_of_all_rows(structure):
    # the Laplace posterior of the batches so far is the next prior: on the linear-Gaussian
    # model the log-likelihood is exactly quadratic, so after three batches the mode and
    # the covariance are those of all rows (kron is exact here too: one output, fixed noise)
    base = linear_gaussian_problem(n_samples=60)
    reg = _regressor(Laplace(subset_of_weights="all", hessian_structure=structure,
                             optimize_prior_precision=False, temperature=1.0),
                     batch_size=20, max_iter=1000, learning_rate_init=0.02)
    for part in np.array_split(np.arange(60), 3):
        _quiet(reg.partial_fit, base.X[part], base.y[part])
    sd = np.sqrt(np.diag(base.cov))
    np.testing.assert_array_less(np.abs(_theta(reg.posterior_.mean) - base.mean) / sd, 1e-3)
    var = reg.posterior_.marginal_variance()["dense_0"]
    got = np.concatenate([np.asarray(var["kernel"])[:, 0], np.asarray(var["bias"])])
    np.testing.assert_allclose(got, np.diag(base.cov), rtol=1e-4)
    assert float(reg.posterior_.n_eff) == 60.0


def test_psgld_partial_fit_on_batches_samples_the_posterior_of_all_rows():
    # the Gaussian of batch A's draws (mean and full covariance: 4,000 draws of 4
    # weights) is batch B's prior; on the conjugate model that Gaussian is A's exact
    # posterior up to Monte Carlo error, so B's chains sample the posterior of all rows
    base = linear_gaussian_problem(n_samples=60)
    sd = np.sqrt(np.diag(base.cov))
    # the settings of tests/inference/test_psgld.py's conjugate test
    reg = _regressor(PSGLD(n_chains=8, n_draws=500, step_size=2e-3, temperature=1.0),
                     batch_size=15, max_iter=4000)
    _quiet(reg.partial_fit, base.X[:30], base.y[:30])
    last = reg.posterior_.warm_start_params()
    prior = reg._draws_as_prior()
    _quiet(reg.partial_fit, base.X[30:], base.y[30:])
    theta = linear_draws(reg.posterior_.flatten())
    # two sampler runs in a row, each with that test's 0.1 sd bound on its mean: the
    # first run's error reaches the end through the prior, so the bound is 0.2 (over
    # seeds 0-2 the largest error was 0.15; one run at these settings alone: 0.1)
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - base.mean) / sd, 0.2)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.15)
    assert reg.n_samples_seen_ == 60
    assert prior.structure == "full"  # enough draws for the full covariance
    # the chains went on from where the first batch left them (not a fresh start)
    assert not np.allclose(_theta(last), 0.0)


def test_map_partial_fit_is_one_epoch_per_call_as_mlp():
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = BayesianMLPClassifier((16,), inference="map", learning_rate_init=0.01,
                                random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # one epoch by design: no warning
        for _ in range(40):
            clf.partial_fit(X, y, classes=np.unique(y))
    assert clf.n_iter_ == 40 and len(clf.loss_curve_) == 40
    assert clf.t_ == 40 * len(X) and clf.n_samples_seen_ == 40 * len(X)
    # 40 one-epoch calls get about as far as a 40-epoch fit
    fit = _quiet(BayesianMLPClassifier((16,), inference="map", learning_rate_init=0.01,
                                       random_state=0, max_iter=40).fit, X, y)
    assert np.mean(clf.loss_curve_[-5:]) < fit.loss_curve_[0] - 0.2
    assert np.mean(clf.loss_curve_[-5:]) < 1.05 * fit.loss_curve_[-1]
    assert clf.score(X, y) >= fit.score(X, y) - 0.05


def test_partial_fit_classes():
    X, y = load_iris(return_X_y=True)
    clf = BayesianMLPClassifier((4,), inference="map", random_state=0)
    with pytest.raises(ValueError, match="classes must be passed on the first call"):
        clf.partial_fit(X, y)
    # a first batch with one class still builds the three-class model
    clf.partial_fit(X[y == 0], y[y == 0], classes=[0, 1, 2])
    np.testing.assert_array_equal(clf.classes_, [0, 1, 2])
    assert clf.predict_proba(X).shape == (150, 3)
    clf.partial_fit(X[y == 2], y[y == 2])  # classes may be left out after the first call
    with pytest.raises(ValueError, match="not the same as on the first call"):
        clf.partial_fit(X, y, classes=[0, 1])
    with pytest.raises(ValueError, match="not in `classes`"):
        clf.partial_fit(X[:3], [0, 1, 5])
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], y)


@pytest.mark.parametrize("inference", ["nuts", Laplace(hessian_structure="lowrank")])
def test_partial_fit_refuses_strategies_that_cannot_stream(inference):
    X, y = load_iris(return_X_y=True)
    clf = BayesianMLPClassifier((4,), inference=inference)
    # as MLP with solver="lbfgs": the method is not there, and the error says why
    assert not hasattr(clf, "partial_fit")
    with pytest.raises(AttributeError) as err:
        clf.partial_fit(X, y, classes=[0, 1, 2])
    # scikit-learn's available_if raises from the reason, which the traceback shows
    name = inference if isinstance(inference, str) else inference.name
    assert f"partial_fit is not available with inference='{name}'" in str(err.value.__cause__)
    if isinstance(inference, str):  # a strategy object (not only a name) says the same
        from skbnn.inference import STRATEGIES
        clf.set_params(inference=STRATEGIES[inference]())
        assert not hasattr(clf, "partial_fit")


def test_laplace_partial_fit_on_a_classifier_keeps_its_structure(tmp_path):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    clf = BayesianMLPClassifier((8,), inference="laplace", max_iter=30, random_state=0)
    halves = np.array_split(np.random.RandomState(0).permutation(150), 2)
    _quiet(clf.partial_fit, X[halves[0]], y[halves[0]], classes=[0, 1, 2])
    first = float(clf.posterior_.n_eff)
    _quiet(clf.partial_fit, X[halves[1]], y[halves[1]])
    assert first == 75.0 and float(clf.posterior_.n_eff) == 150.0
    assert clf.score(X, y) > 0.8
    # the carried prior saves with the model, and a loaded model streams on identically
    clf.save(tmp_path / "laplace.npz")
    loaded = skbnn.load(tmp_path / "laplace.npz")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    for est in (clf, loaded):
        _quiet(est.partial_fit, X[:30], y[:30])
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    # the structure the stream started with is the one it continues with
    clf.set_params(inference=Laplace(hessian_structure="diag"))
    with pytest.raises(ValueError, match="hessian_structure='kron'"):
        _quiet(clf.partial_fit, X[:20], y[:20])


def test_partial_fit_refuses_a_changed_strategy_and_lbfgs():
    X, y = load_iris(return_X_y=True)
    clf = BayesianMLPClassifier((4,), inference="map", random_state=0)
    clf.partial_fit(X, y, classes=[0, 1, 2])
    clf.set_params(inference="vi")
    with pytest.raises(ValueError, match="previous fit, which used inference='map'"):
        clf.partial_fit(X, y)
    assert not hasattr(BayesianMLPClassifier(solver="lbfgs"), "partial_fit")
    assert not hasattr(BayesianMLPRegressor(solver="lbfgs"), "partial_fit")


def test_regressor_partial_fit_keeps_the_first_calls_target_scaling():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = 50.0 + 10.0 * X[:, 0] + rng.normal(size=200)
    reg = BayesianMLPRegressor((8,), inference="map", random_state=0)
    reg.partial_fit(X[:100], y[:100])
    scaling = (reg._y_mean.copy(), reg._y_scale.copy())
    reg.partial_fit(X[100:], y[100:] + 100.0)  # another level: the units must not move
    np.testing.assert_array_equal(reg._y_mean, scaling[0])
    np.testing.assert_array_equal(reg._y_scale, scaling[1])
    with pytest.raises(ValueError, match="number of outputs"):
        reg.partial_fit(X[:10], np.c_[y[:10], y[:10]])


def test_partial_fit_is_reproducible_and_saves(tmp_path):
    X, y = load_iris(return_X_y=True)
    X = StandardScaler().fit_transform(X)

    def stream():
        clf = BayesianMLPClassifier((8,), inference="vi", max_iter=20, random_state=3)
        for part in np.array_split(np.random.RandomState(0).permutation(150), 2):
            _quiet(clf.partial_fit, X[part], y[part], classes=[0, 1, 2])
        return clf

    first, second = stream(), stream()
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    # the per-parameter prior the stream built is part of the saved model, and a loaded
    # model goes on with the stream exactly as the original does
    assert isinstance(first.model_.prior.alpha, dict)
    path = tmp_path / "stream.npz"
    first.save(path)
    loaded = skbnn.load(path)
    restored = pickle.loads(pickle.dumps(first))
    for copy in (loaded, restored):
        np.testing.assert_array_equal(copy.predict_proba(X), first.predict_proba(X))
        for a, b in zip(jax.tree.leaves(copy.model_.prior), jax.tree.leaves(first.model_.prior)):
            np.testing.assert_array_equal(a, b)
    rows = np.arange(0, 150, 3)
    for est in (first, loaded, restored):
        _quiet(est.partial_fit, X[rows], y[rows])
    np.testing.assert_array_equal(loaded.predict_proba(X), first.predict_proba(X))
    np.testing.assert_array_equal(restored.predict_proba(X), first.predict_proba(X))


def test_cnn_partial_fit_keeps_the_first_calls_image_shape():
    from sklearn.datasets import load_digits

    from skbnn import BayesianCNNClassifier

    X, y = load_digits(return_X_y=True)
    images = (X / 16.0).reshape(-1, 8, 8)
    cnn = BayesianCNNClassifier(conv_channels=(4,), hidden_layer_sizes=(16,),
                                inference="map", random_state=0)
    cnn.partial_fit(images[:200], y[:200], classes=np.arange(10))
    assert cnn.image_shape_ == (8, 8, 1)
    cnn.partial_fit(images[200:400], y[200:400])
    assert cnn.n_iter_ == 2 and cnn.n_samples_seen_ == 400
    with pytest.raises(ValueError, match="images of shape"):
        cnn.partial_fit(images[:10, :4, :4].reshape(10, 4, 4), y[:10])


def test_vi_partial_fit_starts_q_at_the_carried_posterior():
    # as variational continual learning: the next fit starts from the previous posterior
    # (means and scales), not from init_scale; with a step size of ~0 it stays there
    base = linear_gaussian_problem(n_samples=60)
    reg = _regressor(VI(kl_weight=1.0, learning_rate=3e-3), batch_size=30, max_iter=3000)
    _quiet(reg.partial_fit, base.X[:30], base.y[:30])
    before = _theta(reg.posterior_.factors["scale"])
    reg.set_params(inference=VI(kl_weight=1.0, learning_rate=1e-12), max_iter=1)
    _quiet(reg.partial_fit, base.X[30:], base.y[30:])
    np.testing.assert_allclose(_theta(reg.posterior_.factors["scale"]), before, rtol=1e-4)
    assert np.all(before > 10 * 1e-3)  # far from init_scale: the start was the posterior
