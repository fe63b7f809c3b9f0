"""What a user gets without setting anything: budgets that follow the data, the
temperature search, fits that never fail on a short budget, convergence warnings,
and every strategy at its defaults against the exact posterior of the linear model."""

import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import load_diabetes, load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.preprocessing import StandardScaler

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn._base import auto_batch_size
from skbnn.inference import PSGLD
from skbnn.inference.base import choose_temperature

from ._conjugate import linear_draws, linear_gaussian_problem


def _diabetes(n=200):
    X, y = load_diabetes(return_X_y=True)
    return StandardScaler().fit_transform(X)[:n], y[:n]


def _convergence_messages(caught):
    return [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]


# --- the budget ------------------------------------------------------------------


def test_auto_batch_size_gives_about_200_steps_per_epoch():
    assert auto_batch_size(60) == 1
    assert auto_batch_size(455) == 3  # 152 steps per epoch, where min(200, n) gives 3
    assert auto_batch_size(7373) == 37
    assert auto_batch_size(60_000) == 200  # MLP's cap from 40,000 rows on
    for n in (300, 1000, 20_000):
        b = auto_batch_size(n)
        assert 100 <= -(-n // b) <= 200


def test_mlp_settings_are_no_longer_starved():
    # MLPClassifier's own settings on digits: MAP is no worse than MLPClassifier
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp = MLPClassifier((32,), max_iter=30, random_state=0).fit(X_train, y_train)
        bayes = BayesianMLPClassifier((32,), max_iter=30, inference="map",
                                      random_state=0).fit(X_train, y_train)
    assert bayes.score(X_test, y_test) >= mlp.score(X_test, y_test) - 0.01


def test_short_budget_keeps_what_it_can_and_says_what_would_suffice():
    X, y = _diabetes()
    # 30 full-batch steps: 15 follow burn-in, where 20 draws per chain were asked for;
    # 39 would leave 20
    reg = BayesianMLPRegressor((32,), batch_size=200, max_iter=30, random_state=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg.fit(X, y)
    messages = _convergence_messages(caught)
    assert any("Only 15 of n_draws=20" in m and "max_iter=39 would keep them all" in m
               for m in messages), messages
    assert reg.posterior_.draws["network"]["dense_0"]["kernel"].shape[:2] == (4, 15)
    assert np.all(np.isfinite(reg.predict(X)))
    # the example: default batch size, 30 epochs, fits and keeps every draw
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = BayesianMLPRegressor(hidden_layer_sizes=(32,), max_iter=30).fit(X, y)
    assert reg.posterior_.n_draws_per_chain == 20


# --- convergence warnings ----------------------------------------------------------


def test_linear_chains_that_disagree_warn():
    # a linear model has one mode; two epochs leave the four chains apart
    X, y = _diabetes()
    reg = BayesianMLPRegressor((), max_iter=2, random_state=0,
                               inference=PSGLD(n_draws=8, temperature=1.0))
    with pytest.warns(ConvergenceWarning, match="chains disagree on their predictions"):
        reg.fit(X, y)
    assert reg.diagnostics_["prediction_rhat_quantile"] > 1.1
    assert reg.prediction_rhat_.shape == (200,)


def test_network_chains_still_moving_warn_and_settled_ones_do_not():
    X, y = _diabetes()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        short = BayesianMLPRegressor((32,), max_iter=10, random_state=0).fit(X, y)
    assert any("chains are still moving" in m for m in _convergence_messages(caught))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        long = BayesianMLPRegressor((32,), max_iter=200, random_state=0).fit(X, y)
    assert _convergence_messages(caught) == []
    assert long.diagnostics_["drift_rhat_quantile"] < short.diagnostics_["drift_rhat_quantile"]
    # parameters and predictions both have R-hat and ESS as fitted attributes
    assert long.rhat_["network"]["dense_0"]["kernel"].shape == (10, 32)
    assert long.ess_["network"]["dense_1"]["bias"].shape == (1,)
    assert np.isfinite(long.max_rhat_) and np.isfinite(long.min_prediction_ess_)


def test_warnings_name_the_strategy_the_user_chose():
    X, y = _diabetes()
    for inference, name in (("laplace", "inference='laplace'"), ("vi", "inference='vi'")):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            BayesianMLPRegressor((8,), inference=inference, max_iter=3, random_state=0).fit(X, y)
        messages = _convergence_messages(caught)
        assert messages and all(name in m for m in messages), messages
        assert not any("'map'" in m for m in messages)


# --- the temperature ---------------------------------------------------------------


def test_choose_temperature_keeps_the_warmest_within_two_standard_errors():
    rng = np.random.RandomState(0)
    base = rng.normal(size=400)
    # colder is better by 0.05 nats per row with noise 0.3 per row: SE 0.015
    scores = {1.0: base, 0.25: base + 0.05 + 0.3 * rng.normal(size=400) / 10}
    assert choose_temperature(scores, np.ones(400))[0] == 0.25
    # better by one standard error of the paired differences: the warmer one stays
    noise = 0.3 * rng.normal(size=400)
    noise -= noise.mean()
    scores = {1.0: base, 0.25: base + noise + noise.std(ddof=1) / 20}
    assert choose_temperature(scores, np.ones(400))[0] == 1.0
    # consistent but negligible (below a thousandth of a nat per row): the warmer one
    scores = {1.0: base, 0.25: base + 0.0005}
    assert choose_temperature(scores, np.ones(400))[0] == 1.0
    # better by 1.5 standard errors: enough at the bar for class labels (one), not at
    # the default (two)
    scores = {1.0: base, 0.25: base + noise + 1.5 * noise.std(ddof=1) / 20}
    assert choose_temperature(scores, np.ones(400))[0] == 1.0
    assert choose_temperature(scores, np.ones(400), 1.0)[0] == 0.25


def test_class_labels_need_one_standard_error_other_data_two():
    from skbnn.inference.base import evidence_needed
    from skbnn.likelihoods import Bernoulli, Categorical, Gaussian

    assert evidence_needed(Categorical(3)) == evidence_needed(Bernoulli()) == 1.0
    assert evidence_needed(Gaussian(1)) == 2.0


def test_curated_labels_choose_a_cold_posterior(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = BayesianMLPClassifier((32,), max_iter=30, random_state=0).fit(X_train, y_train)
    scores = clf.diagnostics_["temperature_scores"]
    assert set(scores) == {"1.0", "0.25", "0.0625", "0.015625"}
    assert clf.temperature_ < 1.0
    assert scores[str(clf.temperature_)] > scores["1.0"]


# --- every strategy at its defaults against the exact posterior ---------------------


@pytest.fixture(scope="module")
def problem():
    return linear_gaussian_problem(n_samples=60)


def _fixed_noise(p, **kw):
    return dict(noise_std=p.noise_std, normalize_y=False, alpha=p.alpha, random_state=0, **kw)


def test_psgld_defaults_sample_the_exact_posterior(problem):
    # Budget raised (6,000 epochs of 60 one-row steps, 500 draws per chain);
    # every strategy setting at its default. Over seeds 0-5 the temperature
    # search kept 1 every time, the worst mean error was 0.14 posterior sd and
    # the worst sd error 4%, with effective sample sizes of 440-590 (a Monte
    # Carlo error of about 0.05 sd on the mean, 0.03 on the sd).
    p = problem
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reg = BayesianMLPRegressor((), inference=PSGLD(n_draws=500), max_iter=6000,
                                   **_fixed_noise(p)).fit(p.X, p.y)
    assert _convergence_messages(caught) == []
    assert reg.temperature_ == 1.0
    assert reg.min_ess_ > 300
    theta = linear_draws(reg.posterior_.flatten())
    sd = np.sqrt(np.diag(p.cov))
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.15)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.15)


def test_vi_defaults_find_the_mean_field_optimum(problem):
    # The mean-field optimum for a Gaussian posterior has the exact mean and sds
    # 1/sqrt(diag(precision)) (here 0.93-0.98 of the exact sds). At defaults
    # (Adam at a constant step size on one-row batches) the means jitter: over
    # seeds 0-3 by up to 0.23 sd; the sds were within 9% of the optimum.
    p = problem
    reg = BayesianMLPRegressor((), inference="vi", max_iter=400, **_fixed_noise(p)).fit(p.X, p.y)
    assert reg.diagnostics_["kl_weight"] == 1.0  # 6 held-back rows: too few to search
    post = reg.posterior_
    mean = np.r_[post.mean["network"]["dense_0"]["kernel"][:, 0], post.mean["network"]["dense_0"]["bias"]]
    scale = post.factors["scale"]["network"]["dense_0"]
    sd_vi = np.r_[scale["kernel"][:, 0], scale["bias"]]
    sd = np.sqrt(np.diag(p.cov))
    mean_field = 1.0 / np.sqrt(np.diag(np.linalg.inv(p.cov)))
    np.testing.assert_array_less(np.abs(mean - p.mean) / sd, 0.35)
    np.testing.assert_allclose(sd_vi, mean_field, rtol=0.15)


def test_laplace_and_map_defaults_find_the_exact_posterior(problem):
    # The cosine step size runs its whole budget: the MAP is the exact mode
    # (0.002 sd over seeds 0-2), and Laplace's Gaussian around it, from the
    # exact curvature of a linear model, is the exact posterior.
    p = problem
    sd = np.sqrt(np.diag(p.cov))
    mode = BayesianMLPRegressor((), inference="map", **_fixed_noise(p)).fit(p.X, p.y)
    theta = linear_draws(mode.posterior_.flatten())[0]
    np.testing.assert_array_less(np.abs(theta - p.mean) / sd, 0.02)
    reg = BayesianMLPRegressor((), inference="laplace", **_fixed_noise(p)).fit(p.X, p.y)
    assert reg.diagnostics_["temperature"] == 1.0
    theta = linear_draws(reg.posterior_.sample(jax.random.key(0), 20_000))
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.05)
    np.testing.assert_allclose(np.cov(theta.T), p.cov, rtol=0.06, atol=0.03 * sd.max() ** 2)


def test_nuts_defaults_sample_the_exact_posterior(problem):
    # 4 chains x 500 draws: effective sample sizes about 1,800; over seeds 0-2
    # the worst mean error was 0.04 sd and the worst sd error 4%.
    p = problem
    reg = BayesianMLPRegressor((), inference="nuts", **_fixed_noise(p)).fit(p.X, p.y)
    assert reg.max_rhat_ < 1.01 and reg.min_ess_ > 1000
    theta = linear_draws(reg.posterior_.flatten())
    sd = np.sqrt(np.diag(p.cov))
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.12)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.1)


@pytest.mark.parametrize("inference", ["map", "psgld", "vi", "laplace", "nuts"])
def test_every_strategy_fits_and_predicts_a_linear_network(inference):
    X, y = _diabetes(80)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = BayesianMLPRegressor((), inference=inference, max_iter=100,
                                   random_state=0).fit(X, y)
        clf = BayesianMLPClassifier((), inference=inference, max_iter=100,
                                    random_state=0).fit(X, y > np.median(y))
    mean, std = reg.predict(X, return_std=True)
    assert np.all(np.isfinite(mean)) and np.all(std > 0)
    assert reg.score(X, y) > 0.3
    assert clf.score(X, y > np.median(y)) > 0.7
    u = reg.predict_uncertainty(X)
    np.testing.assert_allclose(u.total**2, u.aleatoric**2 + u.epistemic**2, rtol=1e-5)


# --- heteroscedastic noise -----------------------------------------------------------


def _hetero(n=300, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.uniform(-2, 2, size=(n, 1))
    noise = 0.05 + 0.5 * (X[:, 0] > 0)  # quiet on the left, loud on the right
    return X, np.sin(2 * X[:, 0]) + noise * rng.normal(size=n)


@pytest.mark.parametrize("inference", ["psgld", "map", "vi", "laplace"])
def test_heteroscedastic_noise_follows_the_data(inference):
    X, y = _hetero()
    # VI's faithful fit weighs every row's pull on the mean by the shared scale, so
    # its mean-field spread on the quiet side is the homoscedastic model's (0.21 at
    # 100 epochs, 0.18 at 300), and the noise head, fitted to the residuals of the
    # drawn means, takes that spread in: its quiet side stays wider (0.27 at 300
    # epochs, against about 0.1 for pSGLD)
    quiet, ratio, epochs = (0.3, 2.0, 300) if inference == "vi" else (0.2, 3.0, 100)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = BayesianMLPRegressor((32,), activation="tanh", noise_std="heteroscedastic",
                                   inference=inference, max_iter=epochs,
                                   random_state=0).fit(X, y)
    u = reg.predict_uncertainty(np.array([[-1.0], [1.0]]))
    # the noise is 0.05 on the left, 0.55 on the right
    assert u.aleatoric[0] < quiet and 0.3 < u.aleatoric[1] < 0.9
    _, std = reg.predict(np.array([[-1.0], [1.0]]), return_std=True)
    assert std[1] > ratio * std[0]
    assert reg.noise_std_.shape == (1,) and 0.1 < reg.noise_std_[0] < 0.6


def test_faithful_heteroscedastic_gradients():
    # the faithful log-likelihood has the joint one's value; its gradient in the means
    # is the homoscedastic one with the shared scale, in rho the joint one's, in the
    # scale the joint one's plus the homoscedastic one's
    from skbnn.likelihoods import HeteroscedasticGaussian

    rng = np.random.RandomState(0)
    outputs, y = rng.normal(size=(7, 4)), rng.normal(size=(7, 2))
    lik = {"log_noise": np.log(np.array([0.3, 2.0]))}
    faithful = HeteroscedasticGaussian(2)
    joint = faithful.joint()
    assert faithful.faithful and not joint.faithful and faithful.n_detached_outputs == 2
    assert joint.n_detached_outputs == 0

    def grads(lik_model):
        def total(out, lp):
            return lik_model.log_likelihood(lp, out, y).sum()
        return jax.grad(total, argnums=(0, 1))(outputs, lik)

    np.testing.assert_allclose(faithful.log_likelihood(lik, outputs, y),
                               joint.log_likelihood(lik, outputs, y), rtol=1e-6)
    (d_out, d_lik), (j_out, j_lik) = grads(faithful), grads(joint)
    np.testing.assert_allclose(d_out[:, :2], (y - outputs[:, :2]) / np.array([0.3, 2.0]) ** 2,
                               rtol=1e-5)
    _, sigma = joint.predict(lik, outputs)
    # the joint gradient weighs each row by its own noise instead
    np.testing.assert_allclose(j_out[:, :2], (y - outputs[:, :2]) / sigma ** 2, rtol=1e-5)
    np.testing.assert_allclose(d_out[:, 2:], j_out[:, 2:], rtol=1e-5)
    scale = np.array([0.3, 2.0])
    homoscedastic = np.sum((y - outputs[:, :2]) ** 2 / scale**2 - 1.0, axis=0)
    np.testing.assert_allclose(d_lik["log_noise"], j_lik["log_noise"] + homoscedastic,
                               rtol=1e-5)


def test_detached_outputs_send_no_gradient_into_the_hidden_layers():
    from skbnn.networks import build_mlp

    net = build_mlp((5, 4), "tanh", 3)
    detached = net.detach_outputs(1)
    X = np.random.RandomState(0).normal(size=(6, 2)).astype(np.float32)
    params = net.init(jax.random.key(0), (2,))
    np.testing.assert_array_equal(detached.apply(params, X), net.apply(params, X))

    def grad(network, column):
        return jax.grad(lambda p: network.apply(p, X)[:, column].sum())(params)

    cut, full = grad(detached, 2), grad(net, 2)
    for layer in ("dense_0", "dense_1"):  # the hidden layers: nothing from the last output
        assert not np.any(np.asarray(cut[layer]["kernel"]))
        assert np.any(np.asarray(full[layer]["kernel"]))
    np.testing.assert_allclose(cut["dense_2"]["kernel"], full["dense_2"]["kernel"], rtol=1e-6)
    # the other outputs are untouched
    for a, b in zip(jax.tree.leaves(grad(detached, 0)), jax.tree.leaves(grad(net, 0))):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    with pytest.raises(ValueError, match="Cannot detach 4"):
        net.detach_outputs(4)


def _linear_heteroscedastic_map(solver, max_iter):
    # a linear model (no hidden layer) with noise that grows along the first input
    rng = np.random.RandomState(0)
    X = rng.normal(size=(200, 2))
    y = X @ [1.0, -2.0] + 0.5 + np.exp(0.8 * X[:, 0]) * rng.normal(size=200)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg = BayesianMLPRegressor((), noise_std="heteroscedastic", inference="map",
                                   solver=solver, max_iter=max_iter, alpha=3.0, tol=0.0,
                                   random_state=0).fit(X, y)
    params = jax.tree.map(lambda a: np.asarray(a, np.float64)[0, 0], reg.posterior_.draws)
    layer = params["network"]["dense_0"]
    Z = np.c_[X, np.ones(len(X))]
    fitted = np.r_[layer["kernel"][:, 0], layer["bias"][0]]
    target = (y - reg._y_mean[0]) / reg._y_scale[0]  # the units the model is fitted in
    _, sigma = reg.model_.likelihood.predict(params["likelihood"],
                                             Z @ np.c_[layer["kernel"].T, layer["bias"]].T)
    return fitted, Z, target, np.exp(params["likelihood"]["log_noise"][0]), sigma[:, 0]


def test_faithful_map_mean_is_the_homoscedastic_ridge_fit():
    # the stationary point of the faithful gradient (all network parameters under the
    # Gaussian prior of precision alpha = 3): the ridge fit with the shared scale s,
    # (Z'Z + 3 s^2 I)^-1 Z'y, whatever the noise head predicts
    fitted, Z, target, s, sigma = _linear_heteroscedastic_map("adam", 3000)
    ridge = np.linalg.solve(Z.T @ Z + 3.0 * s**2 * np.eye(3), Z.T @ target)
    np.testing.assert_allclose(fitted, ridge, atol=3e-3)
    assert sigma.max() > 5 * sigma.min()  # the noise head did follow the noise
    # the joint model's weighted fit is elsewhere: the check above can tell them apart
    W = np.diag(1.0 / sigma**2)
    weighted = np.linalg.solve(Z.T @ W @ Z + 3.0 * np.eye(3), Z.T @ W @ target)
    assert np.abs(weighted - ridge).max() > 0.02


def test_lbfgs_fits_the_joint_heteroscedastic_map():
    # L-BFGS's line search needs the gradient of the loss it evaluates, so it fits the
    # joint model: its stationary point is the weighted ridge fit
    fitted, Z, target, s, sigma = _linear_heteroscedastic_map("lbfgs", 500)
    W = np.diag(1.0 / sigma**2)
    weighted = np.linalg.solve(Z.T @ W @ Z + 3.0 * np.eye(3), Z.T @ W @ target)
    np.testing.assert_allclose(fitted, weighted, atol=3e-3)


def test_nuts_samples_the_joint_heteroscedastic_posterior():
    # NUTS's Metropolis test evaluates the density, so its potential's gradient is
    # the joint model's, not the faithful field
    from jax.flatten_util import ravel_pytree

    from skbnn.inference.nuts import _potential
    from skbnn.likelihoods import HeteroscedasticGaussian
    from skbnn.model import Batch, Model
    from skbnn.networks import build_mlp
    from skbnn.priors import GaussianPrior

    lik = HeteroscedasticGaussian(1)
    model = Model.build(build_mlp((4,), "tanh", 2), lik, GaussianPrior(1.0))
    assert model.network.detached_outputs == 1 and model.joint().network.detached_outputs == 0
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(9, 2)), rng.normal(size=(9, 1))
    data = Batch(X, y, np.ones(9))
    params = model.init(jax.random.key(1), (2,))
    flat, unravel = ravel_pytree(params)
    nuts_grad = jax.grad(_potential(model, data, unravel))(flat)
    joint = model.joint()
    joint_grad = jax.grad(lambda z: -joint.logdensity(unravel(z), data, 9))(flat)
    faithful_grad = jax.grad(lambda z: -model.logdensity(unravel(z), data, 9))(flat)
    np.testing.assert_allclose(nuts_grad, joint_grad, rtol=1e-5, atol=1e-6)
    assert np.abs(np.asarray(faithful_grad - joint_grad)).max() > 1e-3


def test_heteroscedastic_likelihood_nests_the_homoscedastic_one():
    # rho = 0 (the mode of the noise head's prior) is the homoscedastic model with the
    # same learnt scale: the two log-likelihoods and log-priors agree exactly there
    from skbnn.likelihoods import Gaussian, HeteroscedasticGaussian

    rng = np.random.RandomState(0)
    mean, y = rng.normal(size=(7, 2)), rng.normal(size=(7, 2))
    lik = {"log_noise": np.log(np.array([0.3, 2.0]))}
    het = HeteroscedasticGaussian(2, min_noise=0.0)
    hom = Gaussian(2)
    outputs = np.concatenate([mean, np.zeros((7, 2))], axis=1)
    np.testing.assert_allclose(het.log_likelihood(lik, outputs, y),
                               hom.log_likelihood(lik, mean, y), rtol=1e-6)
    np.testing.assert_allclose(het.log_prior(lik), hom.log_prior(lik), rtol=1e-6)
    # away from rho = 0 the factor scales the noise: softplus(rho + log(e - 1))
    outputs[:, 2] = 1.5
    _, sigma = het.predict(lik, outputs)
    np.testing.assert_allclose(sigma[:, 0], 0.3 * np.log1p(np.exp(1.5) * (np.e - 1)),
                               rtol=1e-6)
    np.testing.assert_allclose(sigma[:, 1], 2.0, rtol=1e-6)


def _auto(X, y, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return BayesianMLPRegressor((16,), activation="tanh", inference="map", max_iter=60,
                                    random_state=0, **kwargs).fit(X, y)


def test_auto_noise_chooses_the_noise_model_on_held_back_rows(tmp_path):
    import skbnn

    # noise that varies tenfold: the heteroscedastic model wins on the held-back fifth
    X, y = _hetero(n=400)
    reg = _auto(X, y)
    # the choice survives the save format
    reg.save(tmp_path / "auto.npz")
    restored = skbnn.load(tmp_path / "auto.npz")
    assert restored.noise_model_ == "heteroscedastic"
    np.testing.assert_array_equal(restored.predict(X, return_std=True)[1],
                                  reg.predict(X, return_std=True)[1])
    scores = reg.diagnostics_["noise_model_scores"]
    assert reg.noise_model_ == "heteroscedastic"
    assert scores["held_back_rows"] == 80
    assert scores["heteroscedastic"] - scores["learn"] > 2 * scores["standard_error"]
    assert reg.coefs_[-1].shape == (16, 2)  # the mean and the noise head
    # the fit on all rows is the explicit heteroscedastic fit, bit for bit
    explicit = _auto(X, y, noise_std="heteroscedastic")
    np.testing.assert_array_equal(reg.predict(X), explicit.predict(X))
    # the same noise everywhere: neither model predicts clearly better, the choice is
    # the better score, and either way the noise comes out flat (the heteroscedastic
    # model nests the homoscedastic one)
    rng = np.random.RandomState(1)
    y_flat = np.sin(2 * X[:, 0]) + 0.3 * rng.normal(size=len(y))
    flat = _auto(X, y_flat)
    scores = flat.diagnostics_["noise_model_scores"]
    gain = scores["heteroscedastic"] - scores["learn"]
    assert abs(gain) < 2 * scores["standard_error"]
    assert flat.noise_model_ == ("heteroscedastic" if gain > 0 else "learn")
    np.testing.assert_array_equal(
        flat.predict(X), _auto(X, y_flat, noise_std=flat.noise_model_).predict(X))
    noise = flat.predict_uncertainty(np.array([[-1.5], [0.0], [1.5]])).aleatoric
    assert noise.max() < 1.5 * noise.min() and 0.2 < noise.mean() < 0.45


def test_auto_noise_compares_nothing_on_few_rows_or_in_a_stream():
    X, y = _hetero(n=240)  # 48 held-back rows would be too few
    reg = _auto(X, y)
    assert reg.noise_model_ == "learn" and "noise_model_scores" not in reg.diagnostics_
    stream = BayesianMLPRegressor((16,), inference="map", random_state=0)
    X, y = _hetero(n=400)
    stream.partial_fit(X, y)
    assert stream.noise_model_ == "learn"
    # warm_start keeps the first fit's choice (the network keeps its shape)
    reg = _auto(X, y, warm_start=True)
    assert reg.noise_model_ == "heteroscedastic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(X[:260], np.full(260, 0.5) + 0.01 * X[:260, 0])
    assert reg.noise_model_ == "heteroscedastic" and reg.coefs_[-1].shape == (16, 2)
    # a fixed noise is a fixed model
    assert _auto(X, y, noise_std=0.3).noise_model_ == "fixed"
