"""Multi-layer perceptron: the network behind the MLP estimators."""

import dataclasses

import flax.linen as nn
import jax
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
    detached_outputs: int = 0

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        for i, width in enumerate(self.hidden_layer_sizes):
            x = act(nn.Dense(width, kernel_init=_glorot_uniform, name=f"dense_{i}")(x))
        last = nn.Dense(self.n_outputs, kernel_init=_glorot_uniform,
                        name=f"dense_{len(self.hidden_layer_sizes)}")
        out = last(x)
        k = self.detached_outputs
        if not k or not self.hidden_layer_sizes:  # x is the input: nothing to detach from
            return out
        # the last k outputs keep their values and their kernel's gradient, but send
        # none back into x: the added term is zero, and its gradient in x cancels
        # theirs (one call of the layer, so code that intercepts dense calls sees
        # the network as it is)
        sg = jax.lax.stop_gradient
        kernel = sg(last.variables["params"]["kernel"][:, -k:])
        return out.at[:, -k:].add(-((x - sg(x)) @ kernel))


@serializable
@dataclasses.dataclass(frozen=True)
class MLP(Network):
    """Fully connected network ``n_features -> hidden... -> n_outputs``.

    With ``hidden_layer_sizes=()`` it is a linear (affine) map.
    """

    hidden_layer_sizes: tuple = (100,)
    activation: str = "relu"
    n_outputs: int = 1
    #: the last ``detached_outputs`` outputs read the last hidden layer's features
    #: without passing gradients back into the hidden layers (a heteroscedastic
    #: likelihood's noise head, see ``HeteroscedasticGaussian``'s ``faithful``)
    detached_outputs: int = 0

    def _module(self):
        return _MLPModule(self.hidden_layer_sizes, self.activation, self.n_outputs,
                          self.detached_outputs)

    def detach_outputs(self, n):
        if not 0 <= n <= self.n_outputs:
            raise ValueError(f"Cannot detach {n} of the network's {self.n_outputs} outputs.")
        return dataclasses.replace(self, detached_outputs=int(n))

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
