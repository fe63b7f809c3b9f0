"""Searches on several processes: joblib's loky workers and a dask cluster give
what one process gives (the fitted estimators come back across processes)."""

import warnings

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

from skbnn import BayesianMLPClassifier


def _search(n_jobs):
    X, y = load_digits(return_X_y=True)
    X, y = X[:450] / 16.0, y[:450]
    est = BayesianMLPClassifier((16,), max_iter=8, random_state=0)
    grid = {"alpha": [0.1, 3.0], "inference": ["map", "vi"]}
    search = GridSearchCV(est, grid, cv=3, scoring="neg_log_loss", n_jobs=n_jobs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    return search, X


@pytest.fixture(scope="module")
def sequential():
    return _search(n_jobs=1)


def _same(search, reference):
    search, X = search
    reference, _ = reference
    assert search.best_params_ == reference.best_params_
    # the same fits: CPU results do not depend on the process that computed them
    np.testing.assert_allclose(search.cv_results_["mean_test_score"],
                               reference.cv_results_["mean_test_score"], rtol=1e-5)
    np.testing.assert_allclose(search.best_estimator_.predict_proba(X),
                               reference.best_estimator_.predict_proba(X), rtol=1e-5,
                               atol=1e-7)


def test_loky_workers_give_the_sequential_search(sequential):
    from joblib import parallel_backend

    with parallel_backend("loky"):
        _same(_search(n_jobs=2), sequential)


def test_a_dask_cluster_gives_the_sequential_search(sequential):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster
    from joblib import parallel_backend

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster):
        with parallel_backend("dask"):
            _same(_search(n_jobs=2), sequential)


def _worker_state():
    import os

    from joblib.externals.loky import process_executor

    return os.getpid(), process_executor._MAX_MEMORY_LEAK_SIZE, os.environ.get("SKBNN_TEST_INIT")


def _mark(value):
    import os

    os.environ["SKBNN_TEST_INIT"] = value


def test_parallel_config_keeps_loky_workers_and_their_compiled_programs():
    # loky restarts a worker whose memory grew by 300 MB (with psutil): compiled
    # programs count. skbnn.parallel_config raises the allowance in each worker
    # (and still runs the user's initializer); the calling process is unchanged.
    from joblib import Parallel, delayed
    from joblib.externals.loky import process_executor

    import skbnn
    from skbnn.utils._parallel import WORKER_GROWTH_BYTES

    before = process_executor._MAX_MEMORY_LEAK_SIZE
    with skbnn.parallel_config(n_jobs=2, initializer=_mark, initargs=("yes",)):
        states = Parallel()(delayed(_worker_state)() for _ in range(4))
    assert {s[1] for s in states} == {WORKER_GROWTH_BYTES}
    assert {s[2] for s in states} == {"yes"}
    assert process_executor._MAX_MEMORY_LEAK_SIZE == before
    with Parallel(n_jobs=2) as plain:  # joblib's own loky workers: the default allowance
        assert {s[1] for s in plain(delayed(_worker_state)() for _ in range(2))} == {before}


def test_parallel_config_reuses_its_workers_from_one_search_to_the_next():
    # a second search under skbnn.parallel_config runs on the same workers, which
    # have compiled its programs already
    from joblib import Parallel, delayed

    import skbnn

    pids = []
    for _ in range(2):
        with skbnn.parallel_config(n_jobs=2):
            pids.append({s[0] for s in Parallel()(delayed(_worker_state)() for _ in range(4))})
    # the second search ran on the first one's workers (quick tasks may all go to one)
    assert pids[1] <= pids[0]
