"""Networks as ``init``/``apply`` pairs over parameter pytrees."""

from ._base import ACTIVATIONS, DenseCall, Network
from ._cnn import CNN, build_cnn
from ._mlp import MLP, build_mlp

__all__ = ["ACTIVATIONS", "CNN", "MLP", "DenseCall", "Network", "build_cnn", "build_mlp"]
