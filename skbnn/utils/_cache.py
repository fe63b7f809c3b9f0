"""JAX's persistent compilation cache, on by the user's choice.

Every process that fits compiles its training and prediction programs once per
shape. A grid search on ``n_jobs`` worker processes (joblib's loky, or a dask
cluster) compiles them again in every worker, and a second search in a new
process compiles them all over again. JAX can keep compiled programs on disk
and load them instead of compiling: :func:`enable_compilation_cache` turns that
on for this process and, through environment variables that JAX reads when it
starts, for every process started from it afterwards (loky's workers, a
``LocalCluster``'s). It is off unless called: importing skbnn changes no JAX
setting.
"""

import os

import jax

__all__ = ["enable_compilation_cache"]

#: The JAX settings the cache needs, with the environment variable JAX reads each from.
_SETTINGS = {
    "jax_compilation_cache_dir": "JAX_COMPILATION_CACHE_DIR",
    "jax_persistent_cache_min_compile_time_secs": "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
    "jax_persistent_cache_min_entry_size_bytes": "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES",
}


def enable_compilation_cache(path, *, min_compile_time_secs=0.0):
    """Keep JAX's compiled programs in ``path`` and reuse them across processes.

    Sets JAX's ``jax_compilation_cache_dir`` (and caches every program that
    took at least ``min_compile_time_secs`` to compile; JAX's own default, 1
    second, would leave out most of a small network's programs) in this
    process, and the environment variables JAX reads at start-up in the
    processes this one starts later: joblib's loky workers of
    ``GridSearchCV(n_jobs=...)``, a dask ``LocalCluster``'s workers. For
    workers on other machines, set the same variables there (or call this
    function in each worker) with a path they share.

    Parameters
    ----------
    path : str or path-like
        A directory (created if missing). Programs are keyed by their
        computation, the JAX version and the device, so a shared directory
        is safe.
    min_compile_time_secs : float, default=0.0
        Cache only programs whose compilation took at least this long.

    Returns
    -------
    str
        The cache directory, absolute.
    """
    path = os.path.abspath(os.fspath(path))
    os.makedirs(path, exist_ok=True)
    values = {
        "jax_compilation_cache_dir": path,
        "jax_persistent_cache_min_compile_time_secs": float(min_compile_time_secs),
        "jax_persistent_cache_min_entry_size_bytes": 0,
    }
    for name, value in values.items():
        jax.config.update(name, value)
        os.environ[_SETTINGS[name]] = str(value)
    return path
