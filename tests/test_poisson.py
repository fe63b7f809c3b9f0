"""``BayesianMLPRegressor(loss="poisson")``: the Poisson likelihood with a log link."""

import pickle
import warnings

import jax
import numpy as np
import pytest
from scipy import stats
from sklearn.linear_model import PoissonRegressor
from sklearn.metrics import r2_score

import skbnn
from skbnn import BayesianMLPRegressor
from skbnn.inference import NUTS, PSGLD, VI, Ensemble, Laplace
from skbnn.likelihoods import Poisson

INTERCEPT, SLOPE = 0.5, 0.8


def _counts(n, seed=0):
    rng = np.random.RandomState(seed)
    X = rng.normal(size=(n, 1))
    y = rng.poisson(np.exp(INTERCEPT + SLOPE * X[:, 0])).astype(float)
    return X, y


# --- the likelihood ------------------------------------------------------------


def test_log_likelihood_is_scipys_poisson_logpmf():
    rng = np.random.RandomState(0)
    offset = np.array([0.3, -1.0, 2.0], np.float32)
    lik = Poisson(3, offset=offset)
    f = rng.normal(size=(50, 3)).astype(np.float32)
    y = rng.poisson(np.exp(f + offset)).astype(np.float32)
    expected = stats.poisson.logpmf(y, np.exp(f.astype(np.float64) + offset)).sum(axis=1)
    np.testing.assert_allclose(lik.log_likelihood({}, f, y), expected, rtol=1e-5, atol=1e-4)


def test_hessian_factor_squares_to_the_hessian_of_the_negative_log_likelihood():
    rng = np.random.RandomState(1)
    lik = Poisson(2, offset=np.array([0.5, -0.5], np.float32))
    f = rng.normal(size=(4, 2)).astype(np.float32)
    y = rng.poisson(2.0, size=(4, 2)).astype(np.float32)
    a = lik.hessian_factor({}, f)
    hess = jax.jit(jax.vmap(jax.hessian(
        lambda o, t: -lik.log_likelihood({}, o[None], t[None])[0])))(f, y)
    np.testing.assert_allclose(a @ np.swapaxes(a, 1, 2), hess, rtol=1e-5)


def test_predictive_density_of_draws_is_the_mixture_of_their_poissons():
    rng = np.random.RandomState(2)
    lik = Poisson(2, offset=np.zeros(2, np.float32))
    f = rng.normal(size=(5, 30, 2)).astype(np.float32)  # 5 draws, 30 rows
    y = rng.poisson(1.5, size=(30, 2)).astype(np.float32)
    density = jax.jit(lambda f, y: lik.log_predictive_density(
        jax.vmap(lambda o: lik.predict({}, o))(f), y))
    pmf = np.exp(stats.poisson.logpmf(y[None], np.exp(f.astype(np.float64))).sum(axis=-1))
    np.testing.assert_allclose(density(f, y),
                               np.log(pmf.mean(axis=0)), rtol=1e-5, atol=1e-5)


def test_closed_form_predictive_has_the_lognormal_moments_and_a_negative_binomial_density():
    lik = Poisson(2, offset=np.array([0.2, 1.0], np.float32))
    mean = np.array([[0.5, 2.0]], np.float32)
    var = np.array([0.3, 0.05], np.float32)
    rate, std = lik.linearized_predictive({}, mean, np.diag(var)[None])
    # exp(N(m, v)) is lognormal: scipy's lognorm(s=sqrt(v), scale=exp(m))
    m = mean[0] + np.asarray(lik.offset)
    lognormal = stats.lognorm(s=np.sqrt(var), scale=np.exp(m))
    np.testing.assert_allclose(rate[0], lognormal.mean(), rtol=1e-5)
    np.testing.assert_allclose(std[0] ** 2, lognormal.mean() + lognormal.var(), rtol=1e-5)
    # its density: the negative binomial with the same mean and variance
    y = np.array([[1.0, 30.0]], np.float32)
    mu, v = np.asarray(rate, np.float64)[0], np.asarray(std, np.float64)[0] ** 2
    r = mu**2 / (v - mu)
    expected = stats.nbinom.logpmf(y[0], r, r / (r + mu)).sum()
    got = lik.log_predictive_density((rate[None], std[None]), y)
    np.testing.assert_allclose(got, [expected], rtol=1e-5)


# --- the estimator -------------------------------------------------------------


def test_map_recovers_the_poisson_glm_of_scikit_learn():
    X, y = _counts(400)
    sk = PoissonRegressor(alpha=1e-12, tol=1e-10, max_iter=1000).fit(X, y)
    sk_theta = np.r_[sk.intercept_, sk.coef_]
    # standard errors from the Fisher information at the estimate
    design = np.c_[np.ones(len(X)), X]
    se = np.sqrt(np.diag(np.linalg.inv(design.T @ (sk.predict(X)[:, None] * design))))
    fits = [
        BayesianMLPRegressor((), loss="poisson", inference="map", alpha=1e-6,
                             learning_rate_init=0.01, max_iter=30, normalize_y=normalize_y,
                             random_state=0).fit(X, y)
        for normalize_y in (True, False)
    ]
    for reg in fits:
        theta = np.r_[reg.intercepts_[0], reg.coefs_[0].ravel()]
        # the same likelihood maximised (a prior of precision 1e-6 moves it by ~1e-8 se):
        # only the optimiser's error separates the two, well under a tenth of an se
        np.testing.assert_array_less(np.abs(theta - sk_theta), 0.1 * se)
        # and the truth is within 4 standard errors of the estimate
        np.testing.assert_array_less(np.abs(theta - [INTERCEPT, SLOPE]), 4 * se)
        # MAP is one draw: the predictive mean is exp of the linear predictor
        np.testing.assert_allclose(reg.predict(X), np.exp(theta[0] + X[:, 0] * theta[1]),
                                   rtol=1e-5)
        np.testing.assert_allclose(reg.predict(X), sk.predict(X), rtol=0.02)
        assert reg.out_activation_ == "exp"
        assert reg.score(X, y) == pytest.approx(r2_score(y, reg.predict(X)), rel=1e-6)


def test_multioutput_counts_fit_one_rate_per_output():
    X, y1 = _counts(200, seed=1)
    y = np.c_[y1, 10 * y1[::-1]]
    reg = BayesianMLPRegressor((), loss="poisson", inference="map", learning_rate_init=0.01,
                               max_iter=20, random_state=0).fit(X, y)
    mean, std = reg.predict(X, return_std=True)
    assert mean.shape == std.shape == (200, 2)
    # the offsets put each output at its own scale from the start
    np.testing.assert_allclose(mean.mean(axis=0), y.mean(axis=0), rtol=0.1)


def test_bad_targets_and_settings_are_refused():
    X, y = _counts(30)
    y[3] = -1.0
    with pytest.raises(ValueError, match="negative which is not allowed for Poisson"):
        BayesianMLPRegressor((), loss="poisson", max_iter=2).fit(X, y)
    with pytest.raises(ValueError, match="noise_std='heteroscedastic' applies to"):
        BayesianMLPRegressor((), loss="poisson", noise_std="heteroscedastic",
                             max_iter=2).fit(X, np.abs(y))
    assert BayesianMLPRegressor(loss="poisson").__sklearn_tags__().target_tags.positive_only
    assert not BayesianMLPRegressor().__sklearn_tags__().target_tags.positive_only


#: Every strategy with a small budget (temperatures fixed but for Laplace's, which
#: shows "auto" at work; one NUTS chain: no vmap, half the compile time).
STRATEGIES = {
    "map": "map",
    "psgld": PSGLD(n_chains=2, n_draws=10, temperature=1.0),
    "vi": VI(kl_weight=1.0, n_predictive_draws=50),
    "laplace": Laplace(n_predictive_draws=200),
    "nuts": NUTS(n_chains=1, n_warmup=50, n_draws=25, max_tree_depth=6),
    "ensemble": Ensemble(n_members=3),
}


@pytest.fixture(scope="module", params=sorted(STRATEGIES))
def fitted(request):
    # 500 rows: Laplace holds back 50, enough to choose its temperature by the
    # closed-form predictive's (negative binomial) density
    X, y = _counts(500)
    reg = BayesianMLPRegressor((3,), activation="tanh", loss="poisson",
                               inference=STRATEGIES[request.param], batch_size=50,
                               learning_rate_init=0.01, max_iter=30, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # small budgets: convergence warnings are expected
        reg.fit(X, y)
    return request.param, reg, X


def test_every_strategy_predicts_rates_and_the_variance_of_their_mixture(fitted):
    name, reg, X = fitted
    X = np.r_[X[:40], [[-4.0], [4.0]]]  # and two rows off the data
    mean, std = reg.predict(X, return_std=True)
    rates = reg.sample_predictions(X)[..., 0]
    assert np.all(np.isfinite(rates)) and np.all(rates > 0)
    assert np.all(np.isfinite(mean)) and np.all(mean > 0) and np.all(np.isfinite(std))
    # the variance of a mixture of Poissons is E[rate] + Var[rate] >= E[rate]
    u = reg.predict_uncertainty(X)
    np.testing.assert_allclose(u.aleatoric**2, rates.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(u.epistemic, rates.std(axis=0), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(u.total**2, u.aleatoric**2 + u.epistemic**2, rtol=1e-5)
    assert np.all(std**2 >= mean * (1 - 1e-5))
    if name == "laplace":  # closed form (lognormal) for predict, draws elsewhere
        assert np.isfinite(list(reg.diagnostics_["temperature_scores"].values())).all()
        # the linearised network's draws: mean and sd agree to Monte Carlo error (200 draws)
        np.testing.assert_allclose(mean, rates.mean(axis=0), rtol=0.02)
        np.testing.assert_allclose(std, u.total, rtol=0.02)
    else:
        np.testing.assert_allclose(mean, rates.mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(std, u.total, rtol=1e-5)
    # noise_std_: the mean of sqrt(rate) over the (up to 1,000) training rows and the draws
    X_train = fitted[2]
    np.testing.assert_allclose(reg.noise_std_, np.sqrt(reg.sample_predictions(X_train)).mean(),
                               rtol=1e-4)


def test_every_strategy_saves_loads_and_pickles_exactly(fitted, tmp_path):
    _, reg, X = fitted
    reg.save(tmp_path / "poisson.npz")
    for other in (skbnn.load(tmp_path / "poisson.npz"), pickle.loads(pickle.dumps(reg))):
        assert isinstance(other.model_.likelihood, Poisson)
        np.testing.assert_array_equal(other.model_.likelihood.offset,
                                      reg.model_.likelihood.offset)
        for a, b in zip(reg.predict(X, return_std=True), other.predict(X, return_std=True)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(reg.sample_predictions(X), other.sample_predictions(X))
