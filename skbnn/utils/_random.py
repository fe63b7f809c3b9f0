"""Turn a scikit-learn ``random_state`` into one JAX PRNG key."""

import jax
import numpy as np
from sklearn.utils import check_random_state

__all__ = ["key_from_random_state"]


def key_from_random_state(random_state):
    """Return a JAX key for ``random_state`` (None, int or ``RandomState``).

    An int always gives the same key; a ``RandomState`` instance is advanced by
    one draw, as scikit-learn estimators do; None draws from numpy's global
    generator.
    """
    seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
    return jax.random.key(int(seed))
