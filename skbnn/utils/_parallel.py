"""Parallel searches on joblib's loky workers that keep their compiled programs.

A worker of joblib's loky backend compiles every program of the fits it runs,
once per shape, and keeps them, so its later fits of the same shapes compile
nothing. But where psutil is installed, loky restarts a worker whose memory
grew by more than 300 MB since its first task (its guard against leaking
functions), and a process's compiled XLA programs grow it by about 100 MB per
strategy: the workers of a search over several strategies are restarted every
few fits and compile everything again. A 3 x 4 search on digits took 2.4 times
as long on 2 loky workers as in one process (``benchmarks/scaling.py``).

:func:`parallel_config` is ``joblib.parallel_config`` with, for loky, a
worker initializer that raises that allowance for the worker (compiled
programs are a cache, not a leak; JAX drops them itself if the process nears
its limit on memory mappings, see :mod:`skbnn.utils._compile`). Nothing
changes in the calling process or for other backends.
"""

__all__ = ["parallel_config"]

#: A loky worker running skbnn is restarted only when its memory grew by more
#: than this since its first task.
WORKER_GROWTH_BYTES = 16 * 2**30


def _keep_compiled_programs(initializer=None, initargs=()):
    """Loky worker initializer: raise the worker's memory-growth allowance, then run
    the user's ``initializer``."""
    from joblib.externals.loky import process_executor

    process_executor._MAX_MEMORY_LEAK_SIZE = max(process_executor._MAX_MEMORY_LEAK_SIZE,
                                                 WORKER_GROWTH_BYTES)
    if initializer is not None:
        initializer(*initargs)


def parallel_config(backend="loky", **kwargs):
    """``joblib.parallel_config`` for searches over skbnn estimators.

    Use it as joblib's, around a search::

        with skbnn.parallel_config(n_jobs=2):
            GridSearchCV(BayesianMLPClassifier(), grid, n_jobs=2).fit(X, y)

    With the loky backend (joblib's default), each worker keeps the programs
    it compiled for its whole life: loky would otherwise restart a worker whose
    memory grew by 300 MB since its first task (where psutil is installed),
    and compiled programs count as growth, so the restarted worker compiles
    them again. Any ``initializer`` (and ``initargs``) given still runs in each
    worker. Other backends (``"dask"``, ``"threading"``) are passed to joblib
    unchanged.

    Parameters
    ----------
    backend : str, default="loky"
        The joblib backend.
    **kwargs
        Everything else ``joblib.parallel_config`` takes (``n_jobs``, ...).

    Returns
    -------
    joblib.parallel_config
        The context manager.
    """
    import joblib

    if backend == "loky":
        # a module function and a tuple of arguments, both equal from one call to the
        # next, so that loky reuses its workers across searches (a new partial object
        # would make it start new ones)
        kwargs["initargs"] = (kwargs.pop("initializer", None), tuple(kwargs.pop("initargs", ())))
        kwargs["initializer"] = _keep_compiled_programs
    return joblib.parallel_config(backend=backend, **kwargs)
