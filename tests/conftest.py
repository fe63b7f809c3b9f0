"""Shared fixtures: small real data sets from scikit-learn."""

import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split


@pytest.fixture(scope="session")
def digits_split():
    """Digits scaled to [0, 1], split 75/25 with a fixed seed."""
    X, y = load_digits(return_X_y=True)
    return train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
