"""Compile once per configuration: a cloned refit on same-shaped data compiles nothing."""

import numpy as np
import pytest
from sklearn.base import clone

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import PSGLD

from ._compile import count_compilations


@pytest.mark.parametrize("inference", ["map", PSGLD(n_draws=5, n_chains=2)])
@pytest.mark.parametrize("Estimator", [BayesianMLPClassifier, BayesianMLPRegressor])
def test_cloned_refit_and_predict_compile_nothing(Estimator, inference):
    rng = np.random.RandomState(0)
    X, X2 = rng.normal(size=(2, 80, 6))
    y = (X[:, 0] > 0).astype(int)
    y2 = (X2[:, 1] > 0).astype(int)
    est = Estimator((8,), inference=inference, max_iter=12, random_state=0).fit(X, y)
    est.predict(X[:7])
    # a grid search changes numeric settings, data values and seeds, not shapes
    other = clone(est).set_params(alpha=0.5, learning_rate_init=3e-3, random_state=1)
    with count_compilations() as compiled:
        other.fit(X2, y2)
        other.predict(X2[:7])
    assert compiled == []


# --- the persistent compilation cache, across processes ---------------------------

_CACHED_FIT = """
import collections, sys, warnings
import jax
events = collections.Counter()
jax.monitoring.register_event_listener(lambda name, **kw: events.update([name]))
import skbnn
from sklearn.datasets import load_iris
{enable}
X, y = load_iris(return_X_y=True)
warnings.simplefilter("ignore")
clf = skbnn.BayesianMLPClassifier((8,), inference="map", max_iter=3, random_state=0)
clf.fit(X, y).predict_proba(X)
print(events["/jax/compilation_cache/cache_hits"], events["/jax/compilation_cache/cache_misses"])
"""


def _run(code, env=None):
    import os
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, **(env or {})})
    hits, misses = map(int, out.stdout.split()[-2:])
    return hits, misses


def test_a_second_process_loads_compiled_programs_from_the_cache(tmp_path):
    enable = f"skbnn.enable_compilation_cache({str(tmp_path)!r})"
    hits, misses = _run(_CACHED_FIT.format(enable=enable))
    assert hits == 0 and misses > 0  # the first process compiles and stores
    assert len(list(tmp_path.iterdir())) == misses
    hits, misses = _run(_CACHED_FIT.format(enable=enable))
    assert hits > 0 and misses == 0  # the second compiles nothing


def test_the_cache_is_off_unless_enabled_and_reaches_child_processes(tmp_path):
    import os

    # without the call: no JAX cache directory (importing skbnn sets none)
    assert _run(_CACHED_FIT.format(enable=""),
                env={"JAX_COMPILATION_CACHE_DIR": ""}) == (0, 0)
    # enabling sets the variables a child process's JAX reads at start-up
    saved = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR",
                                            "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
                                            "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")}
    import jax

    names = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs",
             "jax_persistent_cache_min_entry_size_bytes")
    before = {name: getattr(jax.config, name) for name in names}
    try:
        import skbnn

        skbnn.enable_compilation_cache(tmp_path)
        hits, misses = _run(_CACHED_FIT.format(enable=""))  # the child only inherits
        assert misses > 0 and len(list(tmp_path.iterdir())) == misses
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        for name, value in before.items():
            jax.config.update(name, value)


# --- a first fit compiles its loops, not a program per eager operation --------------

_FIRST_FIT = """
import warnings
import jax
n = [0]
jax.monitoring.register_event_duration_secs_listener(
    lambda name, duration, **kw: n.__setitem__(0, n[0] + (name == {event!r})))
from sklearn.datasets import load_diabetes
from skbnn import BayesianMLPRegressor
X, y = load_diabetes(return_X_y=True)
warnings.simplefilter("ignore")
# one noise model: "auto" would compare two, fitting (and compiling) each
reg = BayesianMLPRegressor((8,), inference={inference!r}, max_iter=6, random_state=0,
                           noise_std="learn")
reg.fit(X, y).predict(X, return_std=True)
print(n[0])
"""


@pytest.mark.parametrize("inference, at_most", [("psgld", 18), ("laplace", 19)])
def test_a_first_fit_compiles_few_programs(inference, at_most):
    # Outside jit every eager jnp operation (a conversion, a key split, X[rows]) is
    # a program of its own, compiled on its first use in a process: a first pSGLD fit
    # once compiled 61, and each costs tens of milliseconds in a fresh process (a
    # worker of a parallel search). Measured now: psgld 14, vi 16, laplace 15, map 8
    # (laplace runs a MAP first, so it covers map's path too); the bounds leave room
    # for a few, not for a return of the eager operations.
    import os
    import subprocess
    import sys

    from ._compile import _EVENT

    # no persistent cache in the child (the test run's would turn compiles into loads)
    out = subprocess.run([sys.executable, "-c", _FIRST_FIT.format(event=_EVENT,
                                                                  inference=inference)],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "JAX_COMPILATION_CACHE_DIR": ""})
    assert 0 < int(out.stdout.split()[-1]) <= at_most


def test_eager_helpers_compile_nothing():
    from skbnn.utils._eager import is_nan, to_device

    with count_compilations() as seen:
        a = to_device(np.arange(7.0), np.float32)
        b = to_device(0.25, np.float32)
        nan = is_nan(to_device(np.nan, np.float32))
    assert not seen
    assert a.dtype == np.float32 and b.shape == () and nan and not is_nan(b)
