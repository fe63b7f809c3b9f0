"""Shared fixtures: small real data sets from scikit-learn; JAX's persistent
compilation cache for the test run."""

import os

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skbnn import enable_compilation_cache
from skbnn.utils._compile import release_compiled_programs


def pytest_configure(config):
    """Share compiled programs between the test workers, and between runs.

    The workers of ``-n auto`` fit the same shapes in many tests; with JAX's
    persistent cache in ``.pytest_cache`` a program one worker compiled is
    loaded by the others, and by the next run. ``SKBNN_TEST_JAX_CACHE=0`` turns
    it off.
    """
    if os.environ.get("SKBNN_TEST_JAX_CACHE", "1") == "0":
        return
    enable_compilation_cache(os.path.join(str(config.rootpath), ".pytest_cache",
                                          "jax-compilation-cache"))


@pytest.fixture(scope="session")
def digits_split():
    """Digits scaled to [0, 1], split 75/25 with a fixed seed."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)


@pytest.fixture(autouse=True)
def _release_compiled_programs():
    """Drop JAX's compiled programs between tests once they hold many memory mappings.

    ``fit`` does the same at half of ``vm.max_map_count`` (skbnn/utils/_compile.py);
    doing it here first, at a lower share, keeps that release from landing in the
    middle of a test that counts compilations.
    """
    release_compiled_programs(share=0.3)
    yield
