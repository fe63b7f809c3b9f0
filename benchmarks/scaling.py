"""Scale out: searches on several processes, chains over devices, rows streamed from the host.

Three tables, each measured in fresh processes so that nothing compiled earlier
is reused by accident (``--tables search,chains,stream``):

- ``search``: a 3 x 4 grid (``alpha`` in 0.1, 1, 10 x ``inference`` in map,
  psgld, vi, laplace; ``BayesianMLPClassifier((32,), max_iter=--search-epochs)``
  on scikit-learn's digits, 3-fold, 36 fits) with ``n_jobs=1``, with loky on 2
  workers (configured by ``joblib.parallel_config``, and by
  ``skbnn.parallel_config``, whose workers keep their compiled programs) and
  on a 2-worker dask ``LocalCluster``; then, with
  ``skbnn.enable_compilation_cache`` on, the sequential search in a fresh
  process with an empty cache (it fills it) and again in another fresh process
  (it reads it), and loky and dask with the warm cache. The compile time of a
  search is its wall time less that of the
  same search run again in the same process (everything compiled by then).
- ``chains``: pSGLD with 1, 2, 4 and 8 chains (``temperature=1``) on 1, 2 and
  4 host devices (``XLA_FLAGS=--xla_force_host_platform_device_count``),
  MNIST 784-300-100-10, batch 128, ``--chain-epochs`` epochs; wall time of the
  fit after a compiling fit, and draws per second.
- ``stream``: MNIST's 60,000 training rows repeated ``--repeats`` times as a
  float32 memmap on disk; ``map`` and ``psgld`` for one epoch with the rows
  on the device (``stream_data=False``) and streamed from the host
  (``stream_data=True``): epoch time (the second of two fits; the first
  compiles) and the most device memory alive at once during the epoch
  (``jax.live_arrays()`` at every read from the host, plus the rows the read
  brings), as a share of X.

Run: python benchmarks/scaling.py [--tables search,chains,stream]
     [--data-dir ../shared/data]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import warnings

import numpy as np

from _results import format_table, update

HERE = os.path.dirname(os.path.abspath(__file__))


def _child(args_list, env=None):
    """Run this script with ``args_list`` in a fresh process; its last line is JSON."""
    out = subprocess.run([sys.executable, os.path.join(HERE, "scaling.py"), *args_list],
                         env={**os.environ, **(env or {})}, capture_output=True, text=True,
                         check=False)
    if out.returncode != 0:
        raise RuntimeError(f"child {args_list} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# search


def _search(n_jobs, backend, epochs):
    from joblib import parallel_config
    from sklearn.datasets import load_digits
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import GridSearchCV

    import skbnn
    from skbnn import BayesianMLPClassifier

    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    grid = {"alpha": [0.1, 1.0, 10.0], "inference": ["map", "psgld", "vi", "laplace"]}
    search = GridSearchCV(BayesianMLPClassifier((32,), max_iter=epochs, random_state=0), grid,
                          cv=3, scoring="neg_log_loss", n_jobs=n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        # "loky": skbnn.parallel_config, whose workers keep their compiled programs;
        # "loky-joblib": joblib's own configuration
        config = skbnn.parallel_config if backend == "loky" else parallel_config
        with config(backend=backend.replace("-joblib", "")):
            search.fit(X, y)
        return time.perf_counter() - start, search.best_params_


def search_child(mode, epochs, cache_dir):
    """One mode's search, twice in this process: ``(first s, again s, best params)``."""
    import skbnn

    if cache_dir:
        skbnn.enable_compilation_cache(cache_dir)
    if mode == "dask":
        from distributed import Client, LocalCluster

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          dashboard_address=None) as cluster, Client(cluster):
            first, best = _search(2, "dask", epochs)
            again, _ = _search(2, "dask", epochs)
    else:
        n_jobs = 1 if mode == "sequential" else 2
        first, best = _search(n_jobs, mode if n_jobs > 1 else "loky", epochs)
        again, _ = _search(n_jobs, mode if n_jobs > 1 else "loky", epochs)
    return {"first": first, "again": again, "best": {k: str(v) for k, v in best.items()}}


def search_table(args):
    rows, raw = [], {}
    runs = [("sequential (n_jobs=1)", "sequential", None),
            ("loky, 2 workers, joblib.parallel_config", "loky-joblib", None),
            ("loky, 2 workers, skbnn.parallel_config", "loky", None),
            ("dask LocalCluster, 2 workers", "dask", None)]
    with tempfile.TemporaryDirectory() as cache:
        runs += [("sequential, empty persistent cache", "sequential", cache),
                 ("sequential, warm persistent cache", "sequential", cache),
                 ("loky, 2 workers, skbnn.parallel_config, warm persistent cache", "loky",
                  cache),
                 ("dask LocalCluster, 2 workers, warm persistent cache", "dask", cache)]
        for label, mode, cache_dir in runs:
            r = _child(["--child", "search", mode, str(args.search_epochs), cache_dir or ""])
            raw[label] = r
            print(f"{label}: {r}", flush=True)
    base = raw["sequential (n_jobs=1)"]["first"]
    for label, r in raw.items():
        compile_s = r["first"] - r["again"]
        rows.append([label, f"{r['first']:.1f}", f"{r['first'] / base:.2f}",
                     f"{r['again']:.1f}", f"{compile_s:.1f}", r["best"]["alpha"],
                     r["best"]["inference"]])
    cold = raw["sequential, empty persistent cache"]
    warm = raw["sequential, warm persistent cache"]
    cut = 1 - (warm["first"] - warm["again"]) / (cold["first"] - cold["again"])
    notes = [f"compile time cut by the warm persistent cache: {100 * cut:.0f}%",
             f"{os.cpu_count()} cores; every run in a fresh process"]
    return {"title": (f"GridSearchCV, 3 alphas x 4 strategies, digits, 3-fold, (32,), "
                      f"max_iter={args.search_epochs}: wall seconds"),
            "columns": ["run", "search s", "x sequential", "again s", "compile s",
                        "best alpha", "best inference"],
            "rows": rows, "notes": notes}, raw


# ---------------------------------------------------------------------------
# chains


def chains_child(data_dir, epochs, n_chains_list):
    import jax

    from skbnn import BayesianMLPClassifier
    from skbnn.datasets import load_mnist
    from skbnn.inference import PSGLD

    X, y = load_mnist(data_dir, split="train")
    X = (X / 255.0).astype(np.float32)
    out = {"n_devices": jax.device_count(), "rows": []}
    for n_chains in n_chains_list:
        def make(max_iter=epochs):
            return BayesianMLPClassifier(
                (300, 100), batch_size=128, max_iter=max_iter, random_state=0,
                inference=PSGLD(n_chains=n_chains, temperature=1.0, n_draws=epochs))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            make(max_iter=1).fit(X, y)  # compiles the same programs
            start = time.perf_counter()
            clf = make().fit(X, y)
            seconds = time.perf_counter() - start
        n_draws = n_chains * epochs
        out["rows"].append({"n_chains": n_chains, "fit s": seconds,
                            "devices used": clf.diagnostics_.get("n_devices", 1),
                            "draws/s": n_draws / seconds})
    return out


def chains_table(args):
    rows, raw = [], []
    for n_dev in (1, 2, 4):
        env = {"XLA_FLAGS": f"--xla_force_host_platform_device_count={n_dev}"}
        r = _child(["--child", "chains", args.data_dir, str(args.chain_epochs), "1,2,4,8"], env)
        raw.append(r)
        print(r, flush=True)
        for row in r["rows"]:
            rows.append([str(n_dev), str(row["n_chains"]), str(row["devices used"]),
                         f"{row['fit s']:.1f}", f"{row['draws/s']:.3f}"])
    return {"title": (f"pSGLD chains over host devices: MNIST 784-300-100-10, batch 128, "
                      f"{args.chain_epochs} epochs, fit seconds after a compiling fit"),
            "columns": ["host devices", "chains", "devices used", "fit s", "draws/s"],
            "rows": rows, "notes": [f"{os.cpu_count()} cores"]}, raw


# ---------------------------------------------------------------------------
# stream


def stream_child(data_dir, repeats, path, strategies):
    import jax

    from skbnn import BayesianMLPClassifier
    from skbnn.datasets import load_mnist
    from skbnn.inference import PSGLD
    from skbnn.utils import _host

    if not os.path.exists(path):
        X, y = load_mnist(data_dir, split="train")
        X = (X / 255.0).astype(np.float32)
        big = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32,
                                        shape=(X.shape[0] * repeats, X.shape[1]))
        for r in range(repeats):
            big[r * X.shape[0]:(r + 1) * X.shape[0]] = X
        big.flush()
        del big
        np.save(path + ".y.npy", np.tile(y, repeats))
    X = np.load(path, mmap_mode="r")
    y = np.load(path + ".y.npy")
    peak = {"bytes": 0}
    take = _host._Entry.take

    def watch(self, rows, next_rows=None):
        out = take(self, rows, next_rows)  # the rows this read brings to the device
        alive = sum(a.nbytes for a in jax.live_arrays())
        peak["bytes"] = max(peak["bytes"], alive + out.nbytes)
        return out

    _host._Entry.take = watch
    out = {"X bytes": X.nbytes, "rows": []}
    inference = {"map": lambda: "map",
                 "psgld": lambda: PSGLD(n_chains=2, temperature=1.0, n_draws=1)}
    for name in strategies.split(","):
        for stream in (False, True):
            def make():
                return BayesianMLPClassifier((300, 100), batch_size=128, max_iter=1,
                                             random_state=0, inference=inference[name](),
                                             stream_data=stream)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                make().fit(X, y)  # compiles (the programs are specialised to X's shape)
                peak["bytes"] = 0
                live_before = sum(a.nbytes for a in jax.live_arrays())
                start = time.perf_counter()
                make().fit(X, y)
                seconds = time.perf_counter() - start
            held = peak["bytes"] if stream else X.nbytes + live_before
            out["rows"].append({"strategy": name, "stream": stream, "epoch s": seconds,
                                "device bytes": held})
            print(out["rows"][-1], file=sys.stderr, flush=True)
    return out


def stream_table(args):
    path = os.path.join(args.work_dir, f"mnist_x{args.repeats}.npy")
    r = _child(["--child", "stream", args.data_dir, str(args.repeats), path, "map,psgld"])
    rows = []
    resident = {row["strategy"]: row["epoch s"] for row in r["rows"] if not row["stream"]}
    for row in r["rows"]:
        rows.append([row["strategy"], "host (streamed)" if row["stream"] else "device",
                     f"{row['epoch s']:.1f}", f"{row['epoch s'] / resident[row['strategy']]:.2f}",
                     f"{row['device bytes'] / 2**20:.0f}",
                     f"{100 * row['device bytes'] / r['X bytes']:.1f}"])
    title = (f"One epoch on MNIST repeated {args.repeats}x ({60_000 * args.repeats:,} rows, "
             f"{r['X bytes'] / 2**30:.2f} GiB float32 memmap), 784-300-100-10, batch 128")
    notes = ["device MB: the most device memory alive at once during the streamed epoch "
             "(jax.live_arrays() at every read from the host, plus the rows it brings); on the device, X itself and what was "
             "alive before the fit", "psgld: 2 chains, temperature 1",
             f"{os.cpu_count()} cores"]
    return {"title": title, "columns": ["strategy", "X on", "epoch s", "x device",
                                         "device MB", "% of X"],
            "rows": rows, "notes": notes}, r


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        kind, rest = argv[1], argv[2:]
        if kind == "search":
            result = search_child(rest[0], int(rest[1]), rest[2])
        elif kind == "chains":
            result = chains_child(rest[0], int(rest[1]), [int(c) for c in rest[2].split(",")])
        else:
            result = stream_child(rest[0], int(rest[1]), rest[2], rest[3])
        print(json.dumps(result))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default="search,chains,stream")
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--search-epochs", type=int, default=50)
    parser.add_argument("--chain-epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--work-dir", default=tempfile.gettempdir(),
                        help="where the stream table's memmap is written")
    args = parser.parse_args(argv)
    builders = {"search": search_table, "chains": chains_table, "stream": stream_table}
    for name in args.tables.split(","):
        table, raw = builders[name](args)
        print()
        print(format_table(table))
        update("scaling", tables={name: table}, settings={name: vars(args)}, raw={name: raw})


if __name__ == "__main__":
    main()
