"""Sparse ``X``: trained on without densifying it whole, with the same result as dense.

The training rows go to the device as :class:`~skbnn.utils._sparse.SparseRows`
(each row's non-zeros, padded to the widest row); the network densifies one
minibatch at a time. Densifying a batch gives the very numbers the dense
rows hold, so a sparse fit must equal the dense fit bit for bit.
"""

import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

import skbnn._base
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.utils._sparse import SparseRows


@pytest.fixture(scope="module")
def digits():
    X, y = load_digits(return_X_y=True)
    return X[:400] / 16.0, y[:400]


def _fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return est.fit(X, y)


@pytest.mark.parametrize("inference", ["map", "vi", "psgld", "laplace", "ensemble"])
def test_sparse_fit_equals_the_dense_fit(digits, inference):
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), inference=inference, max_iter=4, random_state=0)
    dense = _fit(BayesianMLPClassifier(**kw), X, y)
    sparse = _fit(BayesianMLPClassifier(**kw), sp.csr_matrix(X), y)
    np.testing.assert_array_equal(sparse.predict_proba(sp.csr_matrix(X[:50])),
                                  dense.predict_proba(X[:50]))
    # and a sparse fit predicts on dense rows and CSC rows alike
    np.testing.assert_array_equal(sparse.predict_proba(X[:50]),
                                  sparse.predict_proba(sp.csc_matrix(X[:50])))


def test_sparse_regressor_with_validation_split_equals_dense(digits):
    X, y = digits
    kw = dict(hidden_layer_sizes=(8,), inference="map", max_iter=5, early_stopping=True,
              random_state=0)
    dense = _fit(BayesianMLPRegressor(**kw), X, y.astype(float))
    sparse = _fit(BayesianMLPRegressor(**kw), sp.csr_matrix(X), y.astype(float))
    np.testing.assert_array_equal(sparse.predict(X[:50]), dense.predict(X[:50]))
    assert sparse.validation_scores_ == dense.validation_scores_


def test_sparse_rows_go_to_the_device_as_their_non_zeros(monkeypatch):
    # 2,000 rows of a 100,000-column vocabulary, about 11 non-zeros a row: densified
    # whole it would be 200 million values (800 MB)
    rng = np.random.RandomState(0)
    n_rows, n_cols = 2_000, 100_000
    X = sp.random(n_rows, n_cols, density=1e-4, format="csr", random_state=rng)
    X = X + sp.csr_matrix((np.ones(n_rows), (np.arange(n_rows), rng.randint(0, 20, n_rows))),
                          shape=(n_rows, n_cols))
    y = rng.randint(0, 2, n_rows)
    seen = []
    real = skbnn._base.device_data

    def spy(*args, **kwargs):
        data = real(*args, **kwargs)
        seen.append(data.X)
        return data

    monkeypatch.setattr(skbnn._base, "device_data", spy)
    clf = _fit(BayesianMLPClassifier((4,), inference="map", max_iter=2, random_state=0), X, y)
    (rows,) = seen
    assert isinstance(rows, SparseRows)
    width = int(np.diff(X.indptr).max())
    assert rows.values.shape == rows.indices.shape == (n_rows, width)
    assert rows.values.size < 1e-3 * n_rows * n_cols  # not the dense matrix
    assert rows.shape == (n_rows, n_cols)
    assert clf.predict_proba(X[:5]).shape == (5, 2)


def test_sparse_rows_densify_to_the_matrix():
    rng = np.random.RandomState(1)
    X = sp.random(7, 11, density=0.3, format="lil", random_state=rng, dtype=np.float32)
    X[3] = 0.0  # an empty row
    X = X.tocsr()
    X.eliminate_zeros()
    # duplicate entries (COO input) are summed, as scipy does
    coo = sp.coo_matrix(([1.0, 2.0, 5.0], ([0, 0, 6], [4, 4, 10])), shape=(7, 11))
    for matrix in (X, coo.tocsr(), sp.csc_matrix(X)):
        rows = SparseRows.from_scipy(matrix, np.float32)
        np.testing.assert_array_equal(np.asarray(rows.todense()), matrix.toarray())
        picked = rows[np.array([6, 0, 3])]
        np.testing.assert_array_equal(np.asarray(picked.todense()),
                                      matrix.toarray()[[6, 0, 3]])
        assert picked.shape == (3, 11)
