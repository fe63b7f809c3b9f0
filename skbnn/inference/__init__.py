"""Inference strategies.

``inference=`` on an estimator takes a name from ``STRATEGIES`` or a
strategy object (anything with a ``run`` method, such as ``PSGLD(n_chains=4)``).
A new strategy is one module here, satisfying :class:`~skbnn.inference.base.Strategy`, and
one entry in ``STRATEGIES``.
"""

from sklearn.base import clone

from .base import BaseStrategy, Data, InferenceResult, Strategy, Training
from .ensemble import Ensemble
from .laplace import Laplace
from .map import MAP
from .nuts import NUTS
from .psgld import PSGLD
from .vi import VI

__all__ = [
    "Ensemble",
    "Laplace",
    "MAP",
    "NUTS",
    "PSGLD",
    "STRATEGIES",
    "BaseStrategy",
    "Data",
    "InferenceResult",
    "Strategy",
    "Training",
    "VI",
    "resolve_inference",
]

#: Strategy classes by the name ``inference=`` accepts: the baseline first,
#: then the default, then the others (the order of the demo's table).
STRATEGIES = {
    "map": MAP,
    "psgld": PSGLD,
    "vi": VI,
    "laplace": Laplace,
    "nuts": NUTS,
    "ensemble": Ensemble,
}


def resolve_inference(inference):
    """Return a fresh strategy object for a name or a strategy object.

    A name gives the strategy with its default settings; an object is cloned,
    so fitting never changes the object the user passed.
    """
    if isinstance(inference, str):
        try:
            return STRATEGIES[inference]()
        except KeyError:
            raise ValueError(
                f"inference={inference!r} is not a known strategy; "
                f"choose one of {sorted(STRATEGIES)} or pass a strategy object."
            ) from None
    if not callable(getattr(inference, "run", None)):
        raise TypeError(
            f"inference must be a strategy name or an object with a run method, "
            f"got {type(inference).__name__}."
        )
    return clone(inference) if hasattr(inference, "get_params") else inference
