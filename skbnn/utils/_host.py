"""Training rows that stay on the host: streamed to the device one minibatch at a time.

A fit normally puts all of ``X`` on the device once, and every epoch gathers
its minibatches there. Where ``X`` would not fit the device (a numpy memmap of
many gigabytes, a GPU's memory), :class:`HostRows` keeps it where it is: the
compiled epoch asks the host for each minibatch's rows as it reaches it
(``jax.pure_callback``), and a host thread reads the next minibatch's rows
while the device trains on the current one (prefetch). Only the minibatch in
use (and the one being read) is ever on the device; ``y`` and the row weights,
a few values per row, stay on the device as usual.

The compiled programs take a :class:`HostRows` as a pytree whose one leaf is
an integer token naming the host array in a registry, and whose static part is
its shape and dtype: a second fit on rows of the same shape reuses the
compiled program, and nothing but indices and rows crosses between host and
device. A fit registers its rows in a :func:`hosted` block, which drops them
from the registry when the fit ends.

Every minibatch is the same rows, in the same order, as the device-resident
fit's (:func:`skbnn.inference.base.scan_minibatches` draws the order the
same way), so a streamed fit equals the resident one with the same
``random_state``.
"""

import itertools
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from flax import struct

__all__ = ["HostRows", "gather_rows", "host_chunks", "hosted"]

_REGISTRY = {}  # token -> _Entry
_TOKENS = itertools.count(1)
_LOCK = threading.Lock()
_SCOPES = threading.local()  # per thread: the token lists of the open hosted() blocks


class _Entry:
    """A registered host array, its rows (an index into ``array``'s, or all), a reader
    thread and the rows it is reading ahead."""

    def __init__(self, array, index=None):
        self.array = array
        self.index = index
        self.reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="skbnn-prefetch")
        self.ahead = None  # (rows as bytes, future)

    def read(self, rows):
        rows = np.asarray(rows, dtype=np.int64)
        if self.index is not None:
            rows = self.index[rows]
        out = self.array[rows]
        return out.toarray() if sp.issparse(out) else np.ascontiguousarray(out)

    def take(self, rows, next_rows=None):
        """``rows`` (from the read-ahead when it was for them), and start reading ``next_rows``."""
        rows = np.asarray(rows)
        key = rows.tobytes()
        ahead, self.ahead = self.ahead, None
        out = ahead[1].result() if ahead is not None and ahead[0] == key else self.read(rows)
        if next_rows is not None and np.asarray(next_rows).tobytes() != key:
            next_rows = np.array(next_rows)  # a copy: the callback's buffer is not ours
            self.ahead = (next_rows.tobytes(), self.reader.submit(self.read, next_rows))
        return out

    def close(self):
        self.reader.shutdown(wait=True)


@struct.dataclass
class HostRows:
    """Rows of a host array, named by ``token``; ``shape`` and ``dtype`` are static."""

    token: jax.Array
    row_shape: tuple = struct.field(pytree_node=False)
    dtype_name: str = struct.field(pytree_node=False)

    @classmethod
    def register(cls, array, dtype, index=None):
        """Register ``array`` (rows ``index`` of it, or all; a scipy sparse matrix is
        densified a minibatch at a time) and return its :class:`HostRows`."""
        if sp.issparse(array) and array.format != "csr":
            array = sp.csr_matrix(array)  # row slicing
        n_rows = len(index) if index is not None else array.shape[0]
        with _LOCK:
            token = next(_TOKENS)
            _REGISTRY[token] = _Entry(array, index)
        scopes = getattr(_SCOPES, "stack", None)
        if scopes:
            scopes[-1].append(token)
        return cls(jnp.asarray(token, dtype=jnp.int32), (n_rows, *array.shape[1:]),
                   np.dtype(dtype).name)

    @property
    def shape(self):
        return self.row_shape

    @property
    def ndim(self):
        return len(self.row_shape)

    @property
    def dtype(self):
        return np.dtype(self.dtype_name)

    def _entry(self):
        return _REGISTRY[int(self.token)]

    def __getitem__(self, rows):
        """Rows (an index array or slice, on the host) as a device array."""
        rows = np.arange(self.row_shape[0])[rows]
        return jnp.asarray(self._entry().read(rows), dtype=self.dtype)

    def subset(self, rows):
        """A :class:`HostRows` of ``rows`` of these rows (no copy of the array)."""
        entry = self._entry()
        rows = np.asarray(rows, dtype=np.int64)
        index = rows if entry.index is None else entry.index[rows]
        return HostRows.register(entry.array, self.dtype, index)

    def fetch(self, rows, next_rows=None):
        """Inside a compiled program: ``rows`` from the host, reading ``next_rows`` ahead."""
        shape = jax.ShapeDtypeStruct((rows.shape[0], *self.row_shape[1:]), self.dtype)
        dtype = self.dtype

        def callback(token, rows, *ahead):
            out = _REGISTRY[int(token)].take(rows, ahead[0] if ahead else None)
            return np.asarray(out, dtype=dtype)

        args = (self.token, rows) if next_rows is None else (self.token, rows, next_rows)
        return jax.pure_callback(callback, shape, *args, vmap_method="sequential")


def gather_rows(X, rows, next_rows=None):
    """``X[rows]`` inside a compiled program, from the device or (:class:`HostRows`) the host."""
    if isinstance(X, HostRows):
        return X.fetch(rows, next_rows)
    return jax.tree.map(lambda a: jnp.take(a, rows, axis=0), X)


def host_chunks(X, rows, chunk_rows):
    """``(positions, X[rows[positions]])`` for consecutive chunks of ``rows``, each on the
    device while it is used: full-data computations on :class:`HostRows`."""
    rows = np.asarray(rows)
    for start in range(0, rows.size, chunk_rows):
        positions = slice(start, min(start + chunk_rows, rows.size))
        yield positions, X[rows[positions]]


@contextmanager
def hosted():
    """Drop the :class:`HostRows` that this thread registers inside the block from the
    registry at its end (fits in other threads keep theirs)."""
    if not hasattr(_SCOPES, "stack"):
        _SCOPES.stack = []
    tokens = []
    _SCOPES.stack.append(tokens)
    try:
        yield
    finally:
        _SCOPES.stack.pop()
        with _LOCK:
            entries = [_REGISTRY.pop(t) for t in tokens if t in _REGISTRY]
        for entry in entries:
            entry.close()
