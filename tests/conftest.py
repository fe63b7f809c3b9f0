"""Shared fixtures: small real data sets from scikit-learn."""

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skbnn.utils._compile import release_compiled_programs


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
