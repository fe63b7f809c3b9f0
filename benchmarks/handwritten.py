"""The hand-written pieces that a dependency also offers, measured against it.

skbnn writes two numerical pieces itself where JAX or SciPy has one; each is
kept only while it measures better here (same machine, same run):

- ``normal``: standard normal draws from a counter-based hash of two Threefry
  words (``skbnn/utils/_random.py``), against ``jax.random.normal``; the noise
  of pSGLD and VI draws one per parameter per step. Time for 2**22 draws,
  jitted, and the largest gap between the two samples' quantiles (both are
  N(0, 1)).
- (VI's gradient was hand-written too: the KL's gradient and the variances'
  chain rule written out. Against ``jax.value_and_grad`` of the same objective,
  on a 784-300-100-10 network and a batch of 128 MNIST-shaped rows, it gave the
  same gradient to 7e-7 and a time ratio of 0.97-1.08 over four runs, so VI now
  uses the dependency's.)
- ``lanczos``: the top eigenpairs of the GGN by a jitted Lanczos loop with full
  re-orthogonalisation (``skbnn/inference/laplace.py``), against
  ``scipy.sparse.linalg.eigsh`` (ARPACK) calling the same jitted GGN-vector
  product; time and the relative gap of the top eigenvalue.

The save format (``skbnn/utils/_io.py``, arrays plus JSON instead of pickle) is
not a speed choice: loading it runs no code from the file.

Run: python benchmarks/handwritten.py
"""

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

from _results import format_table, update


def best_of(fn, repeats=7):
    """Median seconds of ``fn()`` (already compiled: one call first)."""
    jax.block_until_ready(fn())
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def normal_row():
    from skbnn.utils._random import normal

    n = 2**22
    key = jax.random.key(0)
    ours = jax.jit(lambda k: normal(k, (n,)))
    theirs = jax.jit(lambda k: jax.random.normal(k, (n,)))
    t_ours, t_theirs = best_of(lambda: ours(key)), best_of(lambda: theirs(key))
    q = np.linspace(0.001, 0.999, 999)
    gap = np.max(np.abs(np.quantile(np.asarray(ours(key)), q)
                        - np.quantile(np.asarray(theirs(key)), q)))
    return ["normal (2**22 draws)", t_ours * 1e3, t_theirs * 1e3, t_ours / t_theirs,
            f"quantile gap {gap:.4f}"]


def lanczos_row(rank=20):
    from jax.flatten_util import ravel_pytree
    from scipy.sparse.linalg import LinearOperator, eigsh

    from skbnn.inference import laplace
    from skbnn.inference.base import device_data
    from skbnn.likelihoods import Categorical
    from skbnn.model import Model
    from skbnn.networks import build_mlp
    from skbnn.priors import GaussianPrior

    model = Model(build_mlp((64,), "tanh", 10), Categorical(10), GaussianPrior(np.float32(1.0)))
    params = model.init(jax.random.key(0), (64,))
    rng = np.random.RandomState(0)
    data = device_data(rng.normal(size=(2000, 64)).astype(np.float32),
                       rng.randint(0, 10, size=2000).astype(np.int32),
                       np.ones(2000, np.float32))
    subset = ("network",)
    chunk = 500
    n_params = ravel_pytree(laplace.get_path(params, subset))[0].shape[0]
    key = jax.random.key(2)
    ours = lambda: laplace._lanczos(model, params, data, key, subset, chunk,  # noqa: E731
                                    2 * rank, rank)
    chunks = laplace._chunks(data, chunk)
    matvec = jax.jit(lambda v: laplace._ggn_vp(model, params, subset, chunks, v))
    op = LinearOperator((n_params, n_params), dtype=np.float32,
                        matvec=lambda v: np.asarray(matvec(jnp.asarray(v, jnp.float32))))

    def theirs():
        return eigsh(op, k=rank, which="LA", v0=np.ones(n_params, np.float32), tol=1e-4)

    t_ours = best_of(ours, repeats=3)
    jax.block_until_ready(matvec(jnp.ones(n_params, jnp.float32)))
    start = time.perf_counter()
    vals_theirs, _ = theirs()
    t_theirs = time.perf_counter() - start
    vals_ours = np.asarray(ours()[1])
    gap = abs(vals_ours.max() - vals_theirs.max()) / vals_theirs.max()
    return [f"lanczos (GGN, {n_params} weights, rank {rank})", t_ours * 1e3, t_theirs * 1e3,
            t_ours / t_theirs, f"top eigenvalue gap {gap:.1e}"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.parse_args(argv)
    rows = []
    for make in (normal_row, lanczos_row):
        rows.append(make())
        print(f"done: {rows[-1][0]}", flush=True)
    cells = [[r[0], f"{r[1]:.2f}", f"{r[2]:.2f}", f"{r[3]:.2f}", r[4]] for r in rows]
    table = {"title": f"Hand-written pieces against the dependency's (ms, median of runs, "
                      f"{jax.default_backend()})",
             "columns": ["piece", "skbnn ms", "dependency ms", "ratio", "agreement"],
             "rows": cells, "notes": []}
    print()
    print(format_table(table))
    path = update("handwritten", tables={"handwritten": table}, settings={"handwritten": {}},
                  raw={"handwritten": rows})
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
