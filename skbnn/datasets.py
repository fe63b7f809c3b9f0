"""Readers for the benchmark data sets, from files the user already has.

Nothing is downloaded: every function takes the path of a local copy (the
project's benchmarks use ``../shared/data``; see its README for formats and
licences).
"""

import gzip
import os
import pickle

import numpy as np

__all__ = ["load_cifar10", "load_idx", "load_mnist", "load_uci"]

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def load_idx(path):
    """Read an IDX file (optionally gzip-compressed) into a numpy array."""
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:2] != b"\x00\x00" or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path!s} is not an IDX file.")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=_IDX_DTYPES[data[2]], offset=4 + 4 * ndim)
    return array.reshape(shape)


def load_mnist(data_dir, *, kind="mnist", split="train", flatten=True):
    """MNIST or Fashion-MNIST from the original IDX files.

    Parameters
    ----------
    data_dir : path
        Folder that holds ``mnist/`` and ``fashion-mnist/``.
    kind : {"mnist", "fashion-mnist"}
    split : {"train", "test"}
    flatten : bool, default=True
        Return images as rows of 784 pixels; else ``(n, 28, 28)``.

    Returns
    -------
    X : ndarray of float32, pixels scaled to [0, 1]
    y : ndarray of int64, labels 0..9
    """
    prefix = {"train": "train", "test": "t10k"}[split]
    folder = os.path.join(data_dir, kind)
    images = load_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte.gz"))
    labels = load_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte.gz"))
    X = images.astype(np.float32) / 255.0
    if flatten:
        X = X.reshape(len(X), -1)
    return X, labels.astype(np.int64)


def load_cifar10(cifar_dir, *, split="train", flatten=False):
    """CIFAR-10 from its python batches (``data_batch_1`` ... ``data_batch_5``, ``test_batch``).

    The batches are pickle files: load only copies you trust (unpickling can
    run code), e.g. the archive from the data set's home page.

    Parameters
    ----------
    cifar_dir : path
        Folder that holds the batches (``cifar-10-batches-py`` once unpacked).
    split : {"train", "test"}
    flatten : bool, default=False
        Return images as rows of 3,072 values in ``(height, width, channel)``
        order; else ``(n, 32, 32, 3)``.

    Returns
    -------
    X : ndarray of float32, pixels scaled to [0, 1]
    y : ndarray of int64, labels 0..9
    """
    names = {"train": [f"data_batch_{k}" for k in range(1, 6)], "test": ["test_batch"]}[split]
    images, labels = [], []
    for name in names:
        with open(os.path.join(cifar_dir, name), "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        # rows of 3,072 bytes: the red, green and blue 32x32 planes in turn
        images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
        labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
    X = np.concatenate(images).transpose(0, 2, 3, 1).astype(np.float32) / 255.0
    if flatten:
        X = X.reshape(len(X), -1)
    return X, np.concatenate(labels)


def load_uci(data_dir, name, *, split=0):
    """One of the nine UCI regression sets with its standard train/test split.

    Returns ``X_train, X_test, y_train, y_test`` from ``data_dir/uci/<name>/``.
    """
    folder = os.path.join(data_dir, "uci", name)
    data = np.loadtxt(os.path.join(folder, "data.txt"))
    features = np.loadtxt(os.path.join(folder, "index_features.txt"), dtype=int, ndmin=1)
    target = int(np.loadtxt(os.path.join(folder, "index_target.txt")))
    train = np.loadtxt(os.path.join(folder, f"index_train_{split}.txt"), dtype=int)
    test = np.loadtxt(os.path.join(folder, f"index_test_{split}.txt"), dtype=int)
    X, y = data[:, features], data[:, target]
    return X[train], X[test], y[train], y[test]
