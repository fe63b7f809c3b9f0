"""Networks as ``init``/``apply`` pairs over parameter pytrees."""

from ._base import ACTIVATIONS, Network
from ._mlp import MLP, build_mlp

__all__ = ["ACTIVATIONS", "MLP", "Network", "build_mlp"]
