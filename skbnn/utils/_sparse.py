"""Sparse training rows on the device, densified one minibatch at a time.

A scipy sparse ``X`` (a TF-IDF matrix of 100,000 columns) would take
``n_rows * n_features`` values densified whole. :class:`SparseRows` keeps it
on the device in a fixed-width row format instead (ELLPACK: per row, the
column indices and values of its non-zeros, padded to the widest row with
index 0 and value 0), which is what a compiled minibatch loop needs: taking a
batch of rows is a gather of equal-sized rows, so ``scan_minibatches``, the
chunking of Laplace's curvature and every ``jax.tree.map`` over the training
data work on it unchanged. The network densifies the rows it is given
(:meth:`skbnn.networks.Network.apply`), so only one minibatch (or prediction
chunk) is ever dense.

Its memory is ``n_rows * max_nonzeros_per_row`` indices and values, against
``n_rows * n_features`` dense: the saving is large for text-like data, whose
longest row is far shorter than the vocabulary.
"""

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import struct

__all__ = ["SparseRows", "densify"]


@struct.dataclass
class SparseRows:
    """Rows of a sparse matrix: ``indices`` and ``values``, each ``(..., n_rows, width)``."""

    indices: jax.Array
    values: jax.Array
    n_features: int = struct.field(pytree_node=False)

    @classmethod
    def from_scipy(cls, X, dtype):
        """From a scipy sparse matrix; duplicate entries are summed first."""
        X = sp.csr_matrix(X, dtype=dtype)
        X.sum_duplicates()
        counts = np.diff(X.indptr)
        width = max(int(counts.max(initial=0)), 1)
        n_rows = X.shape[0]
        indices = np.zeros((n_rows, width), dtype=np.int32)
        values = np.zeros((n_rows, width), dtype=dtype)
        rows = np.repeat(np.arange(n_rows), counts)
        slots = np.arange(X.nnz) - np.repeat(X.indptr[:-1], counts)
        indices[rows, slots] = X.indices
        values[rows, slots] = X.data
        return cls(jnp.asarray(indices), jnp.asarray(values), int(X.shape[1]))

    @property
    def shape(self):
        return (*self.indices.shape[:-1], self.n_features)

    @property
    def ndim(self):
        return len(self.shape)

    @property
    def dtype(self):
        return self.values.dtype

    def __getitem__(self, rows):
        """Rows (a slice or index array) of the leading axis."""
        return SparseRows(self.indices[rows], self.values[rows], self.n_features)

    def todense(self):
        """The dense rows, ``(..., n_rows, n_features)``."""
        lead = self.indices.shape[:-1]
        indices = self.indices.reshape(-1, self.indices.shape[-1])
        values = self.values.reshape(indices.shape)
        dense = jnp.zeros((indices.shape[0], self.n_features), self.values.dtype)
        dense = dense.at[jnp.arange(indices.shape[0])[:, None], indices].add(values)
        return dense.reshape(*lead, self.n_features)


def densify(X):
    """``X`` as a dense array: :class:`SparseRows` densified, anything else as is."""
    return X.todense() if isinstance(X, SparseRows) else X
