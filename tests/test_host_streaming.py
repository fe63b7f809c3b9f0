"""stream_data: training rows kept on the host and streamed a minibatch at a time."""

import pickle
import warnings

import jax
import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianCNNClassifier, BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import NUTS, PSGLD
from skbnn.utils import _host


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return (X / 16).astype(np.float32)[:600], y[:600]


def _fit(est, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.set_params(**params).fit(X, y)


@pytest.mark.parametrize("inference", ["map", "psgld", "vi", "laplace", "ensemble"])
def test_a_streamed_fit_equals_the_fit_on_the_device(digits, inference):
    # the same minibatches in the same order, the same keys: the same posterior,
    # bit for bit (temperature="auto" / kl_weight="auto" score held-back host rows)
    X, y = digits
    make = lambda: BayesianMLPClassifier((8,), inference=inference, max_iter=4,
                                         batch_size=64, random_state=0)
    resident = _fit(make(), X, y, stream_data=False)
    streamed = _fit(make(), X, y, stream_data=True)
    np.testing.assert_array_equal(streamed.predict_proba(X[:100]),
                                  resident.predict_proba(X[:100]))
    np.testing.assert_array_equal(streamed.loss_curve_, resident.loss_curve_)
    assert not _host._REGISTRY  # the fit dropped its host rows


def test_streaming_covers_early_stopping_lowrank_laplace_and_regression():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(300, 5)).astype(np.float32)
    y = X @ rng.normal(size=5) + 0.3 * rng.normal(size=300)
    for params in ({"inference": "map", "early_stopping": True},
                   {"inference": "laplace", "inference__hessian_structure": "lowrank"},
                   {"inference": PSGLD(n_chains=2, temperature=1.0)}):
        make = lambda: BayesianMLPRegressor((6,), max_iter=5, random_state=1)
        resident = _fit(make(), X, y, stream_data=False, **params)
        streamed = _fit(make(), X, y, stream_data=True, **params)
        np.testing.assert_array_equal(streamed.predict(X[:50], return_std=True),
                                      resident.predict(X[:50], return_std=True))


def test_a_memmap_trains_with_only_the_minibatches_on_the_device(tmp_path, monkeypatch):
    # X: 20,000 x 64 float32 (5 MB) on disk. While the fit runs, every array alive
    # on the device together stays under a tenth of X, and none has X's shape.
    rng = np.random.RandomState(0)
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(20_000, 64))
    X[:] = rng.normal(size=X.shape)
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    seen = []
    take = _host._Entry.take

    def watch(self, rows, next_rows=None):
        out = take(self, rows, next_rows)  # and the rows this read brings
        live = jax.live_arrays()
        seen.append((sum(a.nbytes for a in live) + out.nbytes,
                     any(a.shape == X.shape for a in live)))
        return out

    monkeypatch.setattr(_host._Entry, "take", watch)
    clf = _fit(BayesianMLPClassifier((16,), inference="map", max_iter=2, batch_size=256,
                                     random_state=0, stream_data=True), X, y)
    # 79 minibatches an epoch, read a sixteenth of them at a time: 4 per read, 20 reads
    assert len(seen) == 2 * 20
    assert max(b for b, _ in seen) < 0.1 * X.nbytes
    assert not any(whole for _, whole in seen)
    monkeypatch.setattr(_host._Entry, "take", take)
    resident = _fit(BayesianMLPClassifier((16,), inference="map", max_iter=2, batch_size=256,
                                          random_state=0, stream_data=False), X, y)
    np.testing.assert_array_equal(clf.predict_proba(X[:500]), resident.predict_proba(X[:500]))


def test_sparse_and_image_rows_stream(digits):
    X, y = digits
    Xs = sp.csr_matrix(np.where(X > 0.5, X, 0))
    a = _fit(BayesianMLPClassifier((8,), inference="map", max_iter=3, random_state=0), Xs, y,
             stream_data=False)
    b = _fit(BayesianMLPClassifier((8,), inference="map", max_iter=3, random_state=0), Xs, y,
             stream_data=True)
    np.testing.assert_allclose(b.predict_proba(Xs[:50]), a.predict_proba(Xs[:50]),
                               rtol=1e-5, atol=1e-6)
    images = X.reshape(-1, 8, 8, 1)
    cnn = lambda: BayesianCNNClassifier(conv_channels=(2,), hidden_layer_sizes=(8,),
                                        inference="map", max_iter=2, random_state=0)
    streamed = _fit(cnn(), images, y, stream_data=True)
    resident = _fit(cnn(), images, y, stream_data=False)
    np.testing.assert_array_equal(streamed.predict_proba(images[:20]),
                                  resident.predict_proba(images[:20]))


def test_a_streamed_fit_pickles_and_predicts(digits):
    X, y = digits
    clf = _fit(BayesianMLPClassifier((8,), max_iter=3, random_state=0), X, y, stream_data=True)
    again = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(again.predict_proba(X[:20]), clf.predict_proba(X[:20]))


def test_full_batch_inference_refuses_streaming_and_auto_streams_only_where_it_can(
        digits, monkeypatch):
    from skbnn import _base

    X, y = digits
    with pytest.raises(ValueError, match="stream_data=True.*'nuts'.*full-batch"):
        BayesianMLPClassifier((4,), inference=NUTS(n_warmup=5, n_draws=5),
                              stream_data=True).fit(X, y)
    with pytest.raises(ValueError, match="stream_data=True.*lbfgs"):
        BayesianMLPClassifier((4,), inference="map", solver="lbfgs", stream_data=True).fit(X, y)
    # "auto": streams when X takes more than half the device's free memory
    registered = []
    register = _host.HostRows.register.__func__
    monkeypatch.setattr(_host.HostRows, "register",
                        classmethod(lambda cls, *a, **k: registered.append(1) or
                                    register(cls, *a, **k)))
    _fit(BayesianMLPClassifier((4,), inference="map", max_iter=1), X, y)
    assert not registered
    monkeypatch.setattr(_base, "_device_free_bytes", lambda: 2.5 * X.nbytes)
    _fit(BayesianMLPClassifier((4,), inference="map", max_iter=1), X, y)
    assert not registered  # X is under half of it
    monkeypatch.setattr(_base, "_device_free_bytes", lambda: X.nbytes)
    _fit(BayesianMLPClassifier((4,), inference="map", max_iter=1), X, y)
    assert registered
    registered.clear()
    # NUTS cannot stream: "auto" keeps the rows on the device rather than refuse
    _fit(BayesianMLPClassifier((4,), inference=NUTS(n_chains=1, n_warmup=5, n_draws=5),
                               max_iter=1), X[:60], y[:60])
    assert not registered


def test_the_registry_is_emptied_when_a_streamed_fit_fails(digits):
    X, y = digits
    with pytest.raises(ValueError, match="diverged"):
        BayesianMLPClassifier((4,), inference="map", learning_rate_init=1e30, max_iter=3,
                              stream_data=True, random_state=0).fit(X * 1e20, y)
    assert not _host._REGISTRY
