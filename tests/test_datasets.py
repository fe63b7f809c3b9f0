"""The data readers on small files written in the original formats."""

import gzip
import pickle

import numpy as np
import pytest

from skbnn.datasets import load_cifar10, load_idx, load_mnist


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(
        int(n).to_bytes(4, "big") for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_load_mnist_reads_idx_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(5, 28, 28))
    labels = rng.integers(0, 10, size=5)
    (tmp_path / "fashion-mnist").mkdir()
    _write_idx(tmp_path / "fashion-mnist" / "t10k-images-idx3-ubyte.gz", images)
    _write_idx(tmp_path / "fashion-mnist" / "t10k-labels-idx1-ubyte.gz", labels)
    X, y = load_mnist(tmp_path, kind="fashion-mnist", split="test")
    assert X.shape == (5, 784) and X.dtype == np.float32
    np.testing.assert_allclose(X * 255, images.reshape(5, -1), atol=1e-4)
    np.testing.assert_array_equal(y, labels)
    X_images, _ = load_mnist(tmp_path, kind="fashion-mnist", split="test", flatten=False)
    assert X_images.shape == (5, 28, 28)


def test_load_idx_rejects_other_files(tmp_path):
    path = tmp_path / "not-idx"
    path.write_bytes(b"hello world")
    with pytest.raises(ValueError, match="not an IDX file"):
        load_idx(path)


def test_load_cifar10_reads_python_batches_channels_last(tmp_path):
    rng = np.random.default_rng(0)
    planes = rng.integers(0, 256, size=(4, 3, 32, 32), dtype=np.uint8)
    labels = [3, 1, 4, 1]
    with open(tmp_path / "test_batch", "wb") as f:
        pickle.dump({b"data": planes.reshape(4, -1), b"labels": labels}, f)
    X, y = load_cifar10(tmp_path, split="test")
    assert X.shape == (4, 32, 32, 3) and X.dtype == np.float32
    # pixel (row 5, column 7) of image 2 has the red, green, blue plane values
    np.testing.assert_allclose(X[2, 5, 7] * 255, planes[2, :, 5, 7], atol=1e-4)
    np.testing.assert_array_equal(y, labels)
    assert load_cifar10(tmp_path, split="test", flatten=True)[0].shape == (4, 3072)
