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
