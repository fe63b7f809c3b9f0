"""Laplace: exact on the conjugate model, GGN against a dense GGN, the evidence."""

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree
from scipy.optimize import minimize_scalar
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import Laplace
from skbnn.inference import laplace as L
from skbnn.inference.base import Training, device_data
from skbnn.likelihoods import Categorical, Gaussian
from skbnn.model import Model
from skbnn.networks import build_mlp
from skbnn.priors import GaussianPrior
from skbnn.structures import get_structure, unlayers
from skbnn.utils._tree import get_path, set_path

from .._conjugate import linear_gaussian_problem

# Full-batch Adam run to a plateau puts the MAP within 1% of a posterior sd of
# the exact mode (tests/inference/test_map.py), so the Laplace mean is checked
# at that tolerance. The curvature does not depend on the mode for a linear
# network with Gaussian noise, so the covariance is exact up to float32
# round-off: checked to 1e-4 relative.
CONJUGATE_FIT = dict(batch_size=200, learning_rate_init=0.01, tol=0.0, max_iter=3000,
                     random_state=0)


def _conjugate_fit(problem, **laplace):
    laplace = {"subset_of_weights": "all", "optimize_prior_precision": False, **laplace}
    return BayesianMLPRegressor(
        (), inference=Laplace(**laplace), noise_std=problem.noise_std, normalize_y=False,
        alpha=problem.alpha, **CONJUGATE_FIT,
    ).fit(problem.X, problem.y)


def _phi(X):
    return np.hstack([X, np.ones((X.shape[0], 1))])


@pytest.mark.parametrize("structure", ["full", "kron", "lowrank"])
def test_exact_structures_give_the_exact_posterior(structure):
    # full is exact by construction; K-FAC is exact for one dense layer whose
    # output Hessian is constant (Gaussian noise); rank 4 of 4 weights is full
    p = linear_gaussian_problem()
    reg = _conjugate_fit(p, hessian_structure=structure, rank=4)
    mean = reg.posterior_.mean_params()["network"]["dense_0"]
    theta = np.concatenate([np.asarray(mean["kernel"])[:, 0], np.asarray(mean["bias"])])
    np.testing.assert_array_less(np.abs(theta - p.mean) / np.sqrt(np.diag(p.cov)), 0.01)
    # the linearised predictive of a linear network is the exact predictive:
    # its variance is phi^T Sigma phi + sigma^2 on every row, which pins down
    # Sigma on 20 random rows (10 free entries)
    X_new = np.random.RandomState(1).normal(size=(20, 3))
    _, std = reg.predict(X_new, return_std=True)
    exact = np.einsum("np,pq,nq->n", _phi(X_new), p.cov, _phi(X_new)) + p.noise_std**2
    # (Lanczos in float32 adds round-off of its own: 1e-3 for it)
    rtol = 1e-3 if structure == "lowrank" else 1e-4
    np.testing.assert_allclose(std**2, exact, rtol=rtol)
    # and the covariance itself, through the marginal variances
    var = reg.posterior_.marginal_variance()["dense_0"]
    got = np.concatenate([np.asarray(var["kernel"])[:, 0], np.asarray(var["bias"])])
    np.testing.assert_allclose(got, np.diag(p.cov), rtol=rtol)


def test_full_factor_is_the_exact_covariance():
    p = linear_gaussian_problem()
    tril = np.asarray(_conjugate_fit(p, hessian_structure="full").posterior_.factors["scale_tril"])
    cov = tril @ tril.T
    # ravel_pytree order is (bias, kernel): put it in the problem's (W, b) order
    order = [1, 2, 3, 0]
    np.testing.assert_allclose(cov[np.ix_(order, order)], p.cov, rtol=1e-4, atol=1e-9)


def test_diag_is_the_diagonal_of_the_exact_precision():
    p = linear_gaussian_problem()
    scale = _conjugate_fit(p, hessian_structure="diag").posterior_.factors["scale"]["dense_0"]
    precision = np.concatenate([1.0 / np.asarray(scale["kernel"])[:, 0] ** 2,
                                1.0 / np.asarray(scale["bias"]) ** 2])
    np.testing.assert_allclose(precision, np.diag(np.linalg.inv(p.cov)), rtol=1e-4)


def _blr_log_evidence(p, alpha):
    phi = _phi(p.X)
    cov = p.noise_std**2 * np.eye(len(p.y)) + phi @ phi.T / alpha
    return multivariate_normal(np.zeros(len(p.y)), cov).logpdf(p.y)


def test_log_marginal_likelihood_is_the_exact_evidence():
    # at the prior precision the MAP was trained with, the Laplace evidence of
    # a linear-Gaussian model is the exact evidence; float32 sums: 1e-5 relative
    p = linear_gaussian_problem()
    reg = _conjugate_fit(p, hessian_structure="full")
    assert reg.diagnostics_["prior_precision"] == pytest.approx(p.alpha)
    np.testing.assert_allclose(reg.diagnostics_["log_marginal_likelihood"],
                               _blr_log_evidence(p, p.alpha), rtol=1e-5)


@pytest.mark.parametrize("structure", ["full", "kron", "lowrank"])
def test_optimised_prior_precision_is_the_evidence_maximiser(structure):
    # MacKay's fixed point: with the MAP trained at the evidence-maximising
    # precision (closed form for Bayesian linear regression), maximising the
    # Laplace evidence returns it. The evidence is flat at its maximum, so
    # float32 and the MAP's 1%-of-a-sd error move the argmax: 2% is allowed.
    base = linear_gaussian_problem()
    best = minimize_scalar(lambda t: -_blr_log_evidence(base, np.exp(t)), bounds=(-5, 5),
                           method="bounded", options={"xatol": 1e-8})
    alpha_star = float(np.exp(best.x))
    p = linear_gaussian_problem(alpha=alpha_star)
    reg = _conjugate_fit(p, hessian_structure=structure, rank=4,
                         optimize_prior_precision=True)
    assert reg.diagnostics_["prior_precision"] == pytest.approx(alpha_star, rel=0.02)
    # and the evidence found is the exact maximum
    np.testing.assert_allclose(reg.diagnostics_["log_marginal_likelihood"], -best.fun, rtol=1e-5)


def test_optimised_prior_precision_satisfies_mackays_fixed_point():
    # from a MAP trained at another precision, the chosen delta solves
    # delta |m|^2 = sum_i lam_i / (lam_i + delta), lam: exact GGN eigenvalues
    p = linear_gaussian_problem(alpha=10.0)
    reg = _conjugate_fit(p, hessian_structure="full", optimize_prior_precision=True)
    delta = reg.diagnostics_["prior_precision"]
    lam = np.linalg.eigvalsh(_phi(p.X).T @ _phi(p.X) / p.noise_std**2)
    m = p.mean  # the MAP at alpha=10
    np.testing.assert_allclose(delta * m @ m, np.sum(lam / (lam + delta)), rtol=0.02)


# ---------------------------------------------------------------------------
# GGN of each structure against a dense GGN on a tiny network


def _tiny(likelihood=None, n_outputs=3):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(37, 4)).astype(np.float32)
    likelihood = likelihood or Categorical(3)
    if isinstance(likelihood, Gaussian):
        y = rng.normal(size=(37, n_outputs)).astype(np.float32)
    else:
        y = rng.randint(0, 3, 37).astype(np.int32)
    weight = rng.uniform(0.5, 2.0, 37).astype(np.float32)  # weights enter every sum
    model = Model(build_mlp((5,), "tanh", n_outputs), likelihood, GaussianPrior(np.float32(1.0)))
    params = model.init(jax.random.key(0), (4,))
    return model, params, device_data(X, y, weight)


def _dense_ggn(model, params, data, subset):
    flat, unravel = ravel_pytree(get_path(params, subset))

    def outputs(theta):
        return model.network.apply(set_path(params, subset, unravel(theta))["network"], data.X)

    jac = jax.jacfwd(outputs)(flat)

    def nll(out, y):
        return -model.likelihood.log_likelihood(params["likelihood"], out[None], y[None])[0]

    hess = jax.vmap(jax.hessian(nll))(outputs(flat), data.y)
    return np.asarray(jnp.einsum("n,nkp,nkl,nlq->pq", data.weight, jac, hess, jac))


SUBSETS = [("network", "dense_1"), ("network",)]


@pytest.mark.parametrize("subset", SUBSETS)
def test_full_and_diag_ggn_match_a_dense_ggn(subset):
    model, params, data = _tiny()
    dense = _dense_ggn(model, params, data, subset)
    # chunk of 8 rows: 37 rows need padding with weight-0 rows
    full = L._accumulate(model, params, data, subset, "full", 8).curvature["G"]
    np.testing.assert_allclose(full, dense, atol=1e-5 * np.abs(dense).max())
    covered = get_path(params, subset)
    diag = L._accumulate(model, params, data, subset, "diag", 8).curvature
    diag = unlayers(covered, diag)
    np.testing.assert_allclose(ravel_pytree(diag)[0], np.diag(dense),
                               atol=1e-5 * np.abs(dense).max())


def test_diag_of_a_cnn_matches_a_dense_ggn():
    # convolution kernels are shared across positions: their diagonal comes
    # from per-row gradients (the dense layers' shortcut does not apply)
    from skbnn.networks import build_cnn

    rng = np.random.RandomState(1)
    X = rng.normal(size=(11, 6, 6, 1)).astype(np.float32)
    y = rng.randint(0, 3, 11).astype(np.int32)
    weight = rng.uniform(0.5, 2.0, 11).astype(np.float32)
    model = Model(build_cnn((2,), 3, 1, "SAME", "max", (4,), "tanh", 3), Categorical(3),
                  GaussianPrior(np.float32(1.0)))
    params = model.init(jax.random.key(0), (6, 6, 1))
    data = device_data(X, y, weight)
    subset = ("network",)
    dense = _dense_ggn(model, params, data, subset)
    with pytest.raises(ValueError, match="needs dense layers.*'diag'"):
        L._check_combination(get_path(params, subset), "kron",
                             Laplace().config(model, Training()))
    # chunks of 4 rows: the last is padded with weight-0 rows
    diag = L._accumulate(model, params, data, subset, "diag", 4).curvature
    got = ravel_pytree(unlayers(get_path(params, subset), diag))[0]
    np.testing.assert_allclose(got, np.diag(dense), rtol=1e-4, atol=1e-6 * np.abs(dense).max())


@pytest.mark.parametrize("subset", SUBSETS)
def test_lanczos_recovers_the_dense_ggn_at_full_rank(subset):
    model, params, data = _tiny()
    dense = _dense_ggn(model, params, data, subset)
    n = dense.shape[0]
    vecs, vals = L._lanczos(model, params, data, jax.random.key(1), subset, 8, n, n)
    np.testing.assert_allclose((vecs * vals) @ vecs.T, dense, atol=1e-5 * np.abs(dense).max())
    # at lower rank: the top eigenvalues
    vecs, vals = L._lanczos(model, params, data, jax.random.key(1), subset, 8, 12, 3)
    np.testing.assert_allclose(vals, np.linalg.eigvalsh(dense)[::-1][:3], rtol=1e-3)


def test_kron_factors_match_kfac_computed_by_hand():
    # K-FAC per dense layer: Q = sum_n w_n a_n a_n^T (inputs with a 1 appended),
    # G = sum_n w_n B_n^T H_n B_n / sum_n w_n, B_n: outputs w.r.t. the layer's
    # pre-activations
    model, params, data = _tiny()
    net = params["network"]
    X, w = np.asarray(data.X), np.asarray(data.weight)
    s0 = X @ net["dense_0"]["kernel"] + net["dense_0"]["bias"]
    h = np.tanh(s0)
    out = h @ net["dense_1"]["kernel"] + net["dense_1"]["bias"]
    p = jax.nn.softmax(out)
    H = np.asarray(jax.vmap(lambda q: jnp.diag(q) - jnp.outer(q, q))(p))
    W1 = np.asarray(net["dense_1"]["kernel"])
    B0 = np.einsum("kh,nh->nkh", W1.T, 1 - h**2)
    ones = np.ones((len(X), 1))
    expected = {
        "dense_0": (np.hstack([X, ones]), B0),
        "dense_1": (np.hstack([h, ones]), np.broadcast_to(np.eye(3), (len(X), 3, 3))),
    }
    got = L._accumulate(model, params, data, ("network",), "kron", 8).curvature
    for name, (a, B) in expected.items():
        Q = np.einsum("n,ni,nj->ij", w, a, a)
        G = np.einsum("n,nkh,nkl,nlg->hg", w, B, H, B)
        np.testing.assert_allclose(got[name]["Q"], Q, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(got[name]["G"], G, rtol=1e-4, atol=1e-5)


def test_gaussian_likelihood_ggn_matches_a_dense_ggn():
    model, params, data = _tiny(Gaussian(2, learn_noise=True), n_outputs=2)
    params = {**params, "likelihood": {"log_noise": jnp.asarray([0.3, -0.2])}}
    subset = ("network",)
    dense = _dense_ggn(model, params, data, subset)
    full = L._accumulate(model, params, data, subset, "full", 8).curvature["G"]
    np.testing.assert_allclose(full, dense, atol=1e-5 * np.abs(dense).max())


# ---------------------------------------------------------------------------
# Estimator-level behaviour


def test_predictive_options_agree_on_a_linear_model():
    # for a linear network the linearised and the network predictive are the
    # same model: Monte Carlo (400 draws) agrees with the closed form to a few
    # Monte Carlo standard errors
    p = linear_gaussian_problem()
    X_new = np.random.RandomState(2).normal(size=(5, 3))
    exact = _conjugate_fit(p, hessian_structure="full").predict(X_new, return_std=True)
    for predictive in ("glm_mc", "network"):
        reg = _conjugate_fit(p, hessian_structure="full", predictive=predictive,
                             n_predictive_draws=400)
        mean, std = reg.predict(X_new, return_std=True)
        epistemic = np.sqrt(np.maximum(exact[1] ** 2 - p.noise_std**2, 0))
        np.testing.assert_allclose(mean, exact[0], atol=4 * epistemic.max() / np.sqrt(400))
        np.testing.assert_allclose(std, exact[1], rtol=0.05)
        assert reg.sample_predictions(X_new).shape == (400, 5, 1)


def test_classifier_keeps_map_accuracy_and_reports_uncertainty(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    common = dict(hidden_layer_sizes=(32,), max_iter=60, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        map_clf = BayesianMLPClassifier(inference="map", **common).fit(X_train, y_train)
        clf = BayesianMLPClassifier(inference="laplace", **common).fit(X_train, y_train)
    # Laplace trains its mode as inference="map" does, with the same key (after a
    # first MAP without the held-back rows that chooses the temperature)
    for a, b in zip(clf.coefs_ + clf.intercepts_, map_clf.coefs_ + map_clf.intercepts_):
        np.testing.assert_array_equal(a, b)
    # the probit predictive rescales logits per row, which may flip a near
    # tie: at most 1% of the test digits
    agree = np.mean(clf.predict(X_test) == map_clf.predict(X_test))
    assert agree >= 0.99
    u = clf.predict_uncertainty(X_test)
    assert np.all(u.epistemic > 0)
    np.testing.assert_allclose(u.total, u.aleatoric + u.epistemic, rtol=1e-6)
    assert clf.sample_predictions(X_test[:3]).shape == (100, 3, 10)
    assert clf.diagnostics_["prior_precision"] > 0


def test_unsupported_combinations_raise_before_training():
    X = np.random.RandomState(0).normal(size=(30, 3))
    y = (X[:, 0] > 0).astype(int)
    with pytest.raises(ValueError, match="per-layer prior precision"):
        BayesianMLPClassifier((4,), max_iter=5, inference=Laplace(
            subset_of_weights="all", hessian_structure="full",
            prior_precision_per_layer=True)).fit(X, y)
    with pytest.raises(ValueError, match="hessian_structure"):
        BayesianMLPClassifier((4,), max_iter=5,
                              inference=Laplace(hessian_structure="block")).fit(X, y)
    with pytest.raises(ValueError, match="limited to 10000 weights"):
        BayesianMLPClassifier((200, 60), max_iter=5, inference=Laplace(
            subset_of_weights="all", hessian_structure="full")).fit(X, y)


def test_per_layer_prior_precision_is_one_value_per_layer():
    X = np.random.RandomState(0).normal(size=(60, 3))
    y = (X[:, 0] > 0).astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BayesianMLPClassifier((4,), max_iter=50, random_state=0, inference=Laplace(
            subset_of_weights="all", hessian_structure="diag",
            prior_precision_per_layer=True)).fit(X, y)
    assert np.shape(clf.diagnostics_["prior_precision"]) == (2,)


def test_laplace_settings_are_searchable_parameters():
    est = BayesianMLPClassifier(inference=Laplace(hessian_structure="diag"))
    assert est.get_params()["inference__hessian_structure"] == "diag"
    est.set_params(inference__prior_precision=2.0)
    assert est.inference.prior_precision == 2.0


@pytest.mark.parametrize("structure", ["diag", "kron", "lowrank", "full"])
@pytest.mark.parametrize("subset", ["last_layer", "all"])
def test_refit_and_predict_on_same_shapes_compile_nothing(structure, subset):
    from .._compile import count_compilations

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 4))
    y = rng.randint(0, 3, 40)

    def fit_predict(seed, alpha):
        clf = BayesianMLPClassifier((6,), max_iter=3, batch_size=16, alpha=alpha,
                                    random_state=seed, inference=Laplace(
                                        hessian_structure=structure, subset_of_weights=subset,
                                        rank=5, n_predictive_draws=7))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X + seed, y)
        clf.predict_proba(X)
        clf.predict_uncertainty(X)
        return clf

    fit_predict(0, 1.0)
    with count_compilations() as compiled:
        fit_predict(1, 3.0)
    assert compiled == []


@pytest.mark.parametrize("structure", ["diag", "kron"])
@pytest.mark.parametrize("subset", SUBSETS)
def test_dense_layer_output_covariance_equals_the_jacobian_one(structure, subset):
    # the predictive's shortcut for dense layers (a ⊗ g_k per layer) against
    # J Sigma J^T from the full Jacobian
    from skbnn import posterior as P

    model, params, data = _tiny()
    config = Laplace(hessian_structure=structure).config(model, Training())
    config = config.replace(prior_precision=jnp.float32(0.7))
    state = L._accumulate(model, params, data, subset, structure, 8)
    factors, _, _ = L._fit_gaussian(state, params, config.prior_precision,
                                    (structure, False, False), subset)
    post = P.GaussianPosterior(mean=params, factors=factors, key_data=np.zeros(2, np.uint32),
                               structure=structure, subset=subset, predictive="glm")
    mean, cov = P._dense_output_cov(model, post, data.X)
    outputs = P._outputs_fn(model, post, data.X)
    covered = post._covered_mean()
    jac = jax.jacrev(outputs)(covered)
    expected = get_structure(structure).output_cov(covered, factors, jac)
    np.testing.assert_allclose(cov, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(mean, outputs(covered), rtol=1e-6)


@pytest.mark.parametrize("laplace", [
    Laplace(),
    Laplace(subset_of_weights="all", hessian_structure="diag", predictive="glm_mc",
            n_predictive_draws=5),
    Laplace(subset_of_weights="all", hessian_structure="lowrank", rank=3, predictive="network",
            n_predictive_draws=5),
])
def test_save_load_and_pickle_give_identical_predictions(laplace, tmp_path):
    import pickle

    import skbnn

    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 3))
    y = rng.randint(0, 3, 40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BayesianMLPClassifier((5,), inference=laplace, max_iter=5,
                                    random_state=0).fit(X, y)
    clf.save(tmp_path / "m.npz")
    for other in (skbnn.load(tmp_path / "m.npz"), pickle.loads(pickle.dumps(clf))):
        np.testing.assert_array_equal(other.predict_proba(X), clf.predict_proba(X))
        np.testing.assert_array_equal(other.sample_predictions(X), clf.sample_predictions(X))
