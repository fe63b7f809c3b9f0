"""BayesianCNNClassifier: image input, the strategies, determinism and persistence."""

import pickle
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning

import skbnn
from skbnn import BayesianCNNClassifier, BayesianMLPClassifier
from skbnn.inference import PSGLD, STRATEGIES
from skbnn.networks import build_cnn

from ._compile import count_compilations

# One small architecture and budget for every digits fit, so the tests share
# compiled programs: one convolution of 8 channels (3x3), 2x2 max pooling to
# 4x4x8, a dense layer of 32. Compiling, not training, is most of each fit.
SMALL = dict(conv_channels=(8,), kernel_size=3, hidden_layer_sizes=(32,), batch_size=32,
             learning_rate_init=0.003, max_iter=10)
FAST_PSGLD = PSGLD(n_draws=8, temperature=0.1)


@pytest.fixture(autouse=True)
def _quiet_convergence():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


def _small(**kw):
    return BayesianCNNClassifier(**{**SMALL, "inference": "map", "random_state": 0, **kw})


# --- image input ----------------------------------------------------------------


def test_flat_3d_and_4d_digits_give_the_same_fit_and_predictions(digits_split):
    X_train, X_test, y_train, _ = digits_split
    n = len(X_train)
    fits = [_small(inference=FAST_PSGLD).fit(X, y_train)
            for X in (X_train, X_train.reshape(n, 8, 8), X_train.reshape(n, 8, 8, 1))]
    for clf in fits:
        assert clf.image_shape_ == (8, 8, 1)  # 64 features: a square one-channel image
        assert clf.n_features_in_ == 64
    expected = fits[0].sample_predictions(X_test)
    for clf in fits[1:]:
        np.testing.assert_array_equal(clf.sample_predictions(X_test), expected)
    m = len(X_test)
    for X in (X_test.reshape(m, 8, 8), X_test.reshape(m, 8, 8, 1)):
        np.testing.assert_array_equal(fits[0].sample_predictions(X), expected)


def test_rows_are_read_in_height_width_channel_order():
    # Three-channel 6x5 images whose class is the channel that holds a bright
    # 2x2 patch: rows flattened in (height, width, channels) order with
    # image_shape=(6, 5, 3) must give exactly the fit on the 4-D array.
    rng = np.random.RandomState(0)
    n = 90
    y = np.arange(n) % 3
    images = 0.1 * rng.uniform(size=(n, 6, 5, 3))
    for i in range(n):
        r, c = rng.randint(0, 5), rng.randint(0, 4)
        images[i, r:r + 2, c:c + 2, y[i]] = 1.0
    kw = dict(conv_channels=(4,), kernel_size=3, hidden_layer_sizes=(), batch_size=30,
              learning_rate_init=0.03, max_iter=30, inference="map", random_state=0)
    as_images = BayesianCNNClassifier(**kw).fit(images, y)
    as_rows = BayesianCNNClassifier(image_shape=(6, 5, 3), **kw).fit(images.reshape(n, -1), y)
    assert as_images.image_shape_ == as_rows.image_shape_ == (6, 5, 3)
    assert as_images.coefs_[0].shape == (3, 3, 3, 4)  # kernel, kernel, in, out channels
    np.testing.assert_array_equal(as_rows.predict_proba(images),
                                  as_images.predict_proba(images.reshape(n, -1)))
    assert as_images.score(images, y) == 1.0  # the colour of the patch is the label


def test_default_image_shape_of_tabular_rows():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(40, 7))
    y = (X[:, 0] > 0).astype(int)
    clf = BayesianCNNClassifier((2,), 3, hidden_layer_sizes=(), inference="map", max_iter=2,
                                random_state=0).fit(X, y)
    assert clf.image_shape_ == (1, 7, 1)  # not a perfect square: a one-row image
    assert clf.predict_proba(X).shape == (40, 2)
    given = clf.set_params(image_shape=(7, 1)).fit(X, y)
    assert given.image_shape_ == (7, 1, 1)


def test_default_network_shapes_on_mnist_sized_images():
    # The LeNet-like default: 5x5 convolutions of 32 and 64 channels with
    # 'same' padding, each pooled 2x2, so 28x28 -> 14x14x32 -> 7x7x64 = 3136.
    X = np.zeros((4, 28, 28))
    y = np.array([0, 1, 2, 3])
    clf = BayesianCNNClassifier(inference="map", max_iter=1, random_state=0).fit(X, y)
    assert [c.shape for c in clf.coefs_] == [(5, 5, 1, 32), (5, 5, 32, 64), (3136, 128),
                                             (128, 4)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (64,), (128,), (4,)]
    assert clf.n_layers_ == 5


@pytest.mark.parametrize("padding, pooling, shape", [
    ("same", "max", (28, 28, 1)),
    ("valid", "avg", (28, 28, 1)),
    ("same", "none", (1, 9, 1)),
    ("valid", "max", (12, 11, 3)),
])
def test_activation_size_is_the_largest_activation(padding, pooling, shape):
    # Prediction chunks are sized by activation_size: it must be the largest
    # per-row activation, input included, that the network really computes.
    net = build_cnn((6, 5), 3, 1, padding, pooling, (20,), "relu", 10)
    params = jax.eval_shape(lambda: net.init(jax.random.key(0), shape))
    _, state = jax.eval_shape(lambda p: net._module().apply(
        {"params": p}, jnp.zeros((1, *shape)), capture_intermediates=True), params)
    sizes = [int(np.prod(a.shape[1:])) for a in jax.tree.leaves(state)]
    assert net.activation_size(shape) == max(sizes + [int(np.prod(shape))])


# --- bad shapes -------------------------------------------------------------------


def test_a_different_image_shape_at_predict_is_named(digits_split):
    X_train, X_test, y_train, _ = digits_split
    clf = _small(max_iter=1).fit(X_train, y_train)
    m = len(X_test)
    with pytest.raises(ValueError, match=r"images of shape \(4, 16, 1\), but Bayesian"
                                         r"CNNClassifier was fitted on images of shape "
                                         r"\(8, 8, 1\)"):
        clf.predict(X_test.reshape(m, 4, 16))
    with pytest.raises(ValueError, match=r"images of shape \(8, 8, 2\)"):
        clf.predict(np.repeat(X_test.reshape(m, 8, 8, 1), 2, axis=3))
    with pytest.raises(ValueError, match="X has 63 features, but .* is expecting 64"):
        clf.predict(X_test[:, :63])
    with pytest.raises(ValueError, match=r"\(n_samples, height, width, channels\).* shape "
                                         r"\(\d+, 8, 8, 1, 1\)"):
        clf.predict(X_test.reshape(m, 8, 8, 1, 1))


def test_bad_image_shapes_at_fit_are_named(digits_split):
    X_train, _, y_train, _ = digits_split
    n = len(X_train)
    with pytest.raises(ValueError, match=r"image_shape=\(8, 9, 1\) needs 72 features per "
                                         r"row, but X has 64"):
        _small(image_shape=(8, 9)).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"X holds images of shape \(8, 8, 1\), but "
                                         r"image_shape=\(4, 16, 1\)"):
        _small(image_shape=(4, 16)).fit(X_train.reshape(n, 8, 8), y_train)
    for bad in [(64,), (8, 8, 0), (2, 2, 2, 8), (8.0, 8)]:
        with pytest.raises(ValueError, match="image_shape must be"):
            _small(image_shape=bad).fit(X_train, y_train)
    with pytest.raises(ValueError, match=r"\(n_samples, height, width, channels\)"):
        _small().fit(X_train.reshape(n, 2, 2, 4, 4), y_train)
    with pytest.raises(ValueError, match="2D array"):
        _small().fit(X_train[:, 0], y_train)
    with pytest.raises(ValueError, match=r"too small for 2 convolutions .* padding='same'"):
        _small(conv_channels=(4, 4), padding="valid", kernel_size=5).fit(
            X_train.reshape(n, 8, 8), y_train)
    with pytest.raises(ValueError, match="conv_channels must be > 0"):
        _small(conv_channels=(8, 0)).fit(X_train, y_train)
    with pytest.raises(ValueError, match="padding"):
        _small(padding="full").fit(X_train, y_train)


# --- strategies -------------------------------------------------------------------


def test_map_reaches_95_percent_on_digits(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = _small().fit(X_train, y_train)
    # 10 epochs: 0.96-0.97 over seeds 0-1; the issue asks >= 0.95 in a few epochs
    assert clf.score(X_test, y_test) >= 0.95
    np.testing.assert_allclose(clf.predict_uncertainty(X_test).epistemic, 0.0, atol=1e-6)


def test_psgld_fits_an_ensemble_that_disagrees_where_it_errs(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = _small(inference=PSGLD(n_chains=2, n_draws=8, temperature=0.1)).fit(X_train, y_train)
    draws = clf.sample_predictions(X_test)
    assert draws.shape == (16, len(X_test), 10)
    np.testing.assert_allclose(clf.predict_proba(X_test), draws.mean(axis=0), rtol=1e-6)
    assert clf.score(X_test, y_test) >= 0.93
    u = clf.predict_uncertainty(X_test)
    wrong = clf.predict(X_test) != y_test
    assert u.epistemic[wrong].mean() > 2 * u.epistemic[~wrong].mean()


def test_unknown_strategies_are_refused_by_name(digits_split):
    X_train, _, y_train, _ = digits_split
    # never a silent fallback to another strategy
    with pytest.raises(ValueError, match="'inference' parameter .* Got 'hmc'"):
        _small(inference="hmc").fit(X_train, y_train)


@pytest.mark.parametrize("name", ["vi", "laplace", "nuts"])
def test_every_strategy_fits_the_cnn(name, digits_split):
    X_train, X_test, y_train, _ = digits_split
    assert name in STRATEGIES
    # small settings where the strategy has them (NUTS: one short chain)
    fast = {"nuts": lambda: STRATEGIES["nuts"](n_chains=1, n_warmup=20, n_draws=10,
                                               max_tree_depth=4, init="network")}
    inference = fast[name]() if name in fast else name
    clf = _small(conv_channels=(2,), hidden_layer_sizes=(), inference=inference, max_iter=2)
    clf.fit(X_train[:100], y_train[:100])
    proba = clf.predict_proba(X_test[:20])
    assert proba.shape == (20, 10) and np.all(np.isfinite(proba))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("structure", ["diag", "lowrank"])
def test_laplace_over_all_weights_keeps_the_map_and_adds_uncertainty(structure, digits_split):
    from sklearn.metrics import log_loss

    from skbnn.inference import MAP, Laplace

    X_train, X_test, y_train, y_test = digits_split
    map_clf = _small(inference=MAP()).fit(X_train, y_train)
    clf = _small(inference=Laplace(subset_of_weights="all", hessian_structure=structure,
                                   rank=10)).fit(X_train, y_train)
    # the same MAP underneath (same settings and random_state)
    for got, expected in zip(clf.coefs_, map_clf.coefs_):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    proba = clf.predict_proba(X_test)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
    assert np.mean(proba.argmax(1) == y_test) >= map_clf.score(X_test, y_test) - 0.01
    # a Gaussian over the convolution kernels too: the predictive spreads
    # (with one marginal-likelihood prior precision for every layer it is
    # underconfident here, as all-weights Laplace is on the MNIST MLP)
    # (still far better than knowing nothing: the uniform guess's log(10))
    assert log_loss(y_test, proba) < 0.5 * np.log(10)
    u = clf.predict_uncertainty(X_test)
    assert u.epistemic.mean() > 1e-3
    assert u.total.mean() > map_clf.predict_uncertainty(X_test).total.mean()


# --- compile once, determinism, persistence ----------------------------------------


@pytest.mark.parametrize("inference", ["map", PSGLD(n_draws=4, n_chains=2)])
def test_cloned_refit_and_predict_compile_nothing(inference, digits_split):
    X_train, X_test, y_train, _ = digits_split
    est = _small(inference=inference, max_iter=3).fit(X_train, y_train)
    est.predict(X_test[:7])
    other = clone(est).set_params(alpha=0.5, learning_rate_init=1e-3, random_state=1)
    n = len(X_train)
    with count_compilations() as compiled:
        other.fit(X_train[::-1].reshape(n, 8, 8), y_train[::-1])  # 3-D: the same program
        other.predict(X_test[:7])
    assert compiled == []


def test_same_random_state_same_predictions(digits_split):
    X_train, X_test, y_train, _ = digits_split
    a, b, c = (_small(inference=FAST_PSGLD, max_iter=3, random_state=s).fit(X_train, y_train)
               for s in (3, 3, 4))
    pa = a.sample_predictions(X_test)
    np.testing.assert_array_equal(pa, b.sample_predictions(X_test))
    assert not np.allclose(pa, c.sample_predictions(X_test))


def test_pickle_and_save_round_trip_exactly(digits_split, tmp_path):
    X_train, X_test, y_train, _ = digits_split
    labels = np.array(list("abcdefghij"), dtype=object)
    m = len(X_test)
    est = _small(inference=PSGLD(n_draws=4, n_chains=2), image_shape=(8, 8), max_iter=3)
    est.fit(X_train, labels[y_train])
    expected = est.sample_predictions(X_test)
    est.save(tmp_path / "cnn.npz")
    restored = [pickle.loads(pickle.dumps(est)), BayesianCNNClassifier.load(tmp_path / "cnn.npz"),
                skbnn.load(tmp_path / "cnn.npz")]
    for other in restored:
        assert type(other) is BayesianCNNClassifier
        assert other.image_shape_ == (8, 8, 1)
        assert repr(other.get_params()) == repr(est.get_params())
        assert repr(other.model_.network) == repr(est.model_.network)
        np.testing.assert_array_equal(other.sample_predictions(X_test.reshape(m, 8, 8)),
                                      expected)
        np.testing.assert_array_equal(other.predict(X_test), est.predict(X_test))
        with pytest.raises(ValueError, match="fitted on images of shape"):
            other.predict(X_test.reshape(m, 4, 16))
    with pytest.raises(TypeError, match="not a BayesianMLPClassifier"):
        BayesianMLPClassifier.load(tmp_path / "cnn.npz")


def test_failed_fit_leaves_no_private_state(digits_split):
    X_train, _, y_train, _ = digits_split
    clf = _small(image_shape=(8, 9))
    with pytest.raises(ValueError):
        clf.fit(X_train, y_train)
    assert not hasattr(clf, "_fit_images_shape")  # it would be pickled and saved


@pytest.mark.parametrize("padding", ["SAME", "VALID"])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("size", [(7, 9), (8, 8)])
def test_patch_convolution_equals_lax_convolution(padding, stride, size):
    # The network computes convolutions as patches @ kernel (fast inside
    # lax.scan on CPU); it must be the convolution lax and flax compute.
    from skbnn.networks._cnn import image_patches

    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.normal(size=(2, *size, 3)), jnp.float32)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 3, 4)), jnp.float32)
    expected = jax.lax.conv_general_dilated(
        x, kernel, (stride, stride), padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    got = image_patches(x, 3, stride, padding) @ kernel.reshape(-1, 4)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_network_equals_the_same_network_built_with_flax_conv():
    import flax.linen as nn

    net = build_cnn((6, 4), 3, 2, "same", "avg", (5,), "relu", 3)
    params = net.init(jax.random.key(0), (9, 9, 2))

    class Reference(nn.Module):
        @nn.compact
        def __call__(self, x):
            for i, width in enumerate((6, 4)):
                x = nn.Conv(width, (3, 3), strides=(2, 2), padding="SAME", name=f"conv_{i}")(x)
                x = nn.avg_pool(nn.relu(x), (2, 2) if x.shape[1] >= 2 else (1, 1),
                                strides=(2, 2) if x.shape[1] >= 2 else (1, 1))
            x = nn.relu(nn.Dense(5, name="dense_0")(x.reshape(x.shape[0], -1)))
            return nn.Dense(3, name="dense_1")(x)

    x = jnp.asarray(np.random.default_rng(0).normal(size=(4, 9, 9, 2)), jnp.float32)
    expected = Reference().apply({"params": params}, x)
    got = net._module().apply({"params": params}, x)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("padding,stride,kernel", [("SAME", 1, 5), ("SAME", 2, 3),
                                                   ("VALID", 1, 3), ("VALID", 2, 5)])
def test_the_accelerator_convolution_equals_the_patch_product(padding, stride, kernel):
    # on accelerators the layer is XLA's convolution; on a CPU the matrix product
    # over patches: the same parameters give the same outputs
    from skbnn.networks._cnn import _Conv

    x = jax.random.normal(jax.random.key(0), (3, 11, 9, 2))
    patch = _Conv(4, kernel, stride, padding, native=False)
    native = _Conv(4, kernel, stride, padding, native=True)
    params = patch.init(jax.random.key(1), x)
    params = jax.tree.map(lambda p: p + 0.1, params)  # a non-zero bias too
    np.testing.assert_allclose(native.apply(params, x), patch.apply(params, x),
                               rtol=1e-5, atol=1e-5)
