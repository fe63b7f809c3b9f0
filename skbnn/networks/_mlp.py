"""Multi-layer perceptron: the network behind the MLP estimators."""

import dataclasses

import flax.linen as nn
import numpy as np

from ._base import ACTIVATIONS, Network
from ..utils._io import serializable

__all__ = ["MLP", "build_mlp"]

# scikit-learn's MLP draws its weights from Glorot's uniform distribution; so
# do we, so that the MAP baseline starts where MLPClassifier starts.
_glorot_uniform = nn.initializers.glorot_uniform()


class _MLPModule(nn.Module):
    hidden_layer_sizes: tuple
    activation: str
    n_outputs: int

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for i, width in enumerate(self.hidden_layer_sizes):
            x = act(nn.Dense(width, kernel_init=_glorot_uniform, name=f"dense_{i}")(x))
        last = f"dense_{len(self.hidden_layer_sizes)}"
        return nn.Dense(self.n_outputs, kernel_init=_glorot_uniform, name=last)(x)


@serializable
@dataclasses.dataclass(frozen=True)
class MLP(Network):
    """Fully connected network ``n_features -> hidden... -> n_outputs``.

    With ``hidden_layer_sizes=()`` it is a linear (affine) map.
    """

    hidden_layer_sizes: tuple = (100,)
    activation: str = "relu"
    n_outputs: int = 1

    def _module(self):
        return _MLPModule(self.hidden_layer_sizes, self.activation, self.n_outputs)

    @property
    def is_linear(self):
        return not self.hidden_layer_sizes

    @property
    def layer_names(self):
        return tuple(f"dense_{i}" for i in range(len(self.hidden_layer_sizes) + 1))

    def activation_size(self, input_shape):
        return max(int(np.prod(input_shape)), self.n_outputs, *self.hidden_layer_sizes)


def build_mlp(hidden_layer_sizes, activation, n_outputs):
    """Return the :class:`MLP` for this architecture (hashable, compares by value)."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
        )
    return MLP(tuple(int(h) for h in hidden_layer_sizes), activation, int(n_outputs))
