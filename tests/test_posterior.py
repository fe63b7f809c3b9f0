"""Posterior containers: shapes, moments, structures, and the chunked predictive."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from skbnn.likelihoods import Gaussian
from skbnn.model import Model
from skbnn.networks import build_mlp
from skbnn.posterior import GaussianPosterior, SamplePosterior, predictive
from skbnn.priors import GaussianPrior


def _params(rng, lead=()):
    return {"a": rng.normal(size=(*lead, 3, 2)), "b": {"c": rng.normal(size=(*lead, 4))}}


def test_sample_posterior_keeps_chains_and_flattens_in_chain_order():
    rng = np.random.RandomState(0)
    post = SamplePosterior(_params(rng, lead=(3, 5)))
    assert (post.n_chains, post.n_draws_per_chain, post.n_draws) == (3, 5, 15)
    flat = post.flatten()
    assert flat["a"].shape == (15, 3, 2)
    np.testing.assert_array_equal(flat["b"]["c"][5], post.draws["b"]["c"][1, 0])
    np.testing.assert_allclose(post.mean_params()["a"], post.draws["a"].mean(axis=(0, 1)))
    np.testing.assert_array_equal(post.warm_start_params()["a"], post.draws["a"][:, -1])


def _gaussian(structure, rng):
    mean = {"a": jnp.asarray(rng.normal(size=(2, 2))), "b": jnp.asarray(rng.normal(size=3))}
    if structure == "diag":
        scale = {"a": jnp.asarray(rng.uniform(0.5, 2, size=(2, 2))),
                 "b": jnp.asarray(rng.uniform(0.5, 2, size=3))}
        factors = {"scale": scale}
        flat_scale = np.concatenate([np.ravel(scale["a"]), scale["b"]])
        cov = np.diag(flat_scale**2)
    else:
        A = rng.normal(size=(7, 7))
        cov = A @ A.T + np.eye(7)
        factors = {"scale_tril": jnp.asarray(np.linalg.cholesky(cov))}
    key_data = jax.random.key_data(jax.random.key(0))
    return GaussianPosterior(mean, factors, key_data, structure=structure, n_predictive_draws=4), cov


@pytest.mark.parametrize("structure", ["diag", "full"])
def test_gaussian_posterior_sample_moments_log_det_and_variance(structure):
    rng = np.random.RandomState(0)
    post, cov = _gaussian(structure, rng)
    draws = post.sample(jax.random.key(1), 40000)
    flat = np.hstack([np.asarray(draws["a"]).reshape(40000, -1), np.asarray(draws["b"])])
    mean = np.concatenate([np.ravel(post.mean["a"]), post.mean["b"]])
    np.testing.assert_allclose(flat.mean(axis=0), mean, atol=4 * np.sqrt(cov.max() / 40000))
    np.testing.assert_allclose(np.cov(flat.T), cov, atol=0.06 * np.abs(cov).max())
    np.testing.assert_allclose(post.log_det(), np.linalg.slogdet(cov)[1], rtol=1e-4)
    var = post.marginal_variance()
    np.testing.assert_allclose(np.concatenate([np.ravel(var["a"]), var["b"]]), np.diag(cov),
                               rtol=1e-4)


def test_gaussian_posterior_predictive_draws_are_fixed_by_the_stored_key():
    post, _ = _gaussian("diag", np.random.RandomState(0))
    a, b = post.predictive_draws(), post.predictive_draws()
    np.testing.assert_array_equal(a["a"], b["a"])
    assert a["a"].shape == (4, 2, 2)
    c = post.predictive_draws(jax.random.key(7))
    assert not np.allclose(a["a"], c["a"])


def test_subset_covers_one_subtree_and_holds_the_rest_at_the_mean():
    mean = {"net": {"l0": jnp.ones(3), "l1": jnp.zeros(2)}}
    post = GaussianPosterior(mean, {"scale": jnp.full(2, 0.5)},
                             jax.random.key_data(jax.random.key(0)),
                             structure="diag", subset=("net", "l1"))
    draws = post.sample(jax.random.key(0), 1000)
    np.testing.assert_array_equal(draws["net"]["l0"], np.ones((1000, 3)))
    assert abs(np.std(draws["net"]["l1"]) - 0.5) < 0.05
    assert post.log_det() == pytest.approx(2 * 2 * np.log(0.5), rel=1e-5)


def test_unknown_structure_is_refused_by_name():
    post, _ = _gaussian("diag", np.random.RandomState(0))
    post = post.replace(structure="block")
    with pytest.raises(ValueError, match="structure 'block' is not available"):
        post.sample(jax.random.key(0), 2)


def test_predictive_is_the_same_for_any_row_subset_and_chunking():
    rng = np.random.RandomState(0)
    model = Model(build_mlp((5,), "tanh", 2), Gaussian(2, learn_noise=True),
                  GaussianPrior(np.float32(1.0)))
    keys = jax.random.split(jax.random.key(0), 6)
    draws = jax.vmap(lambda k: model.init(k, (3,)))(keys)
    X = rng.normal(size=(37, 3)).astype(np.float32)
    mean, noise = predictive(model, draws, X, chunk_size=16)
    assert mean.shape == noise.shape == (6, 37, 2)
    sub_mean, _ = predictive(model, draws, X[10:13], chunk_size=16)
    np.testing.assert_array_equal(sub_mean, mean[:, 10:13])
    direct = jax.vmap(lambda p: model.network.apply(p["network"], X))(draws)
    np.testing.assert_allclose(mean, direct, rtol=1e-5, atol=1e-6)


def test_prediction_puts_the_draws_on_the_device_once_and_drops_them_with_the_model(
        monkeypatch):
    import gc

    from sklearn.datasets import load_iris

    from skbnn import BayesianMLPClassifier
    from skbnn import posterior as posterior_module

    X, y = load_iris(return_X_y=True)
    clf = BayesianMLPClassifier((4,), max_iter=20, random_state=0).fit(X, y)
    put = []
    real = posterior_module.jax.device_put

    def counting(x, *a, **k):  # counts copies of the draws (a pytree) from the host;
        # the rows go to the device a chunk at a time, each a bare array
        if not isinstance(x, np.ndarray):
            put.extend(1 for leaf in jax.tree.leaves(x) if isinstance(leaf, np.ndarray))
        return real(x, *a, **k)

    monkeypatch.setattr(posterior_module.jax, "device_put", counting)
    first = clf.predict_proba(X)
    n_puts = len(put)
    # a second call: the draws are on the device already; the chunks' outputs
    # come back together or (PENDING_BYTES tiny) one by one: the same numbers
    monkeypatch.setattr(posterior_module, "PENDING_BYTES", 1)
    np.testing.assert_array_equal(clf.predict_proba(X), first)
    assert n_puts >= 1 and len(put) == n_puts
    key = id(clf.posterior_)
    assert key in posterior_module._DEVICE_DRAWS
    del clf
    gc.collect()
    assert key not in posterior_module._DEVICE_DRAWS


def test_predictive_draws_are_sharded_over_several_devices(tmp_path):
    # A fresh process with 3 host devices (100 draws do not split evenly: the last
    # share is padded): VI's and Laplace's predictive draws are split over the
    # devices, and the predictions equal those of one device.
    import os
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import sys, warnings, numpy as np, jax
        warnings.simplefilter("ignore")
        from sklearn.datasets import load_iris
        from skbnn import BayesianMLPClassifier, posterior
        from skbnn.inference import VI, Laplace
        X, y = load_iris(return_X_y=True)
        out = []
        for inference in (VI(), VI(local_predictive=False), Laplace(predictive="network")):
            clf = BayesianMLPClassifier((5,), inference=inference, max_iter=20,
                                        random_state=0).fit(X, y)
            out.append(clf.predict_proba(X))
        draws = clf.posterior_.predictive_draws()
        text = posterior._predict_chunk.lower(clf.model_, draws, X[:8]).as_text()
        np.save(sys.argv[1], np.stack(out))
        # the draws' share axis is constrained to the device mesh ("draws")
        print(jax.device_count(), "sharding" in text and '"draws"' in text)
    """)
    outputs = {}
    for n_dev in (1, 3):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
                   JAX_PLATFORMS="cpu")
        path = tmp_path / f"{n_dev}.npy"
        out = subprocess.run([sys.executable, "-c", script, str(path)], env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.split() == [str(n_dev), str(n_dev > 1)]
        outputs[n_dev] = np.load(path)
    np.testing.assert_allclose(outputs[3], outputs[1], rtol=1e-6, atol=1e-7)
