"""Utilities: random keys, the scikit-learn compatibility shim, array + JSON I/O."""

from ._random import key_from_random_state

__all__ = ["key_from_random_state"]
