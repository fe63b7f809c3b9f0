"""Convolutional network: the network behind :class:`~skbnn.BayesianCNNClassifier`."""

import dataclasses

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from ._base import ACTIVATIONS, Network
from ..utils._io import serializable

__all__ = ["CNN", "POOLINGS", "build_cnn"]

_glorot_uniform = nn.initializers.glorot_uniform()

#: Pooling after each convolution: a 2x2 window with stride 2, or none.
POOLINGS = ("max", "avg", "none")

_POOL = {"max": nn.max_pool, "avg": nn.avg_pool}


def _conv_out(size, kernel, stride, padding):
    """Spatial size after a convolution (flax/lax semantics of 'SAME' and 'VALID')."""
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def _pool_window(height, width):
    # An axis shorter than the window is not pooled, so that a (1, d, 1)
    # "image" made from tabular data goes through the same network.
    return (2 if height >= 2 else 1, 2 if width >= 2 else 1)


def _padding(size, kernel, stride, padding):
    """(low, high) padding of one axis, as lax's 'SAME' and 'VALID' define it."""
    if padding == "VALID":
        return 0, 0
    total = max((_conv_out(size, kernel, stride, padding) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def image_patches(x, kernel, stride, padding):
    """``(n, H', W', kernel * kernel * C)``: each output pixel's receptive field.

    The features run over kernel row, kernel column, then channel, which is the
    order of a ``(kernel, kernel, C, out)`` kernel reshaped to
    ``(kernel * kernel * C, out)``.
    """
    _, height, width, _ = x.shape
    out_h = _conv_out(height, kernel, stride, padding)
    out_w = _conv_out(width, kernel, stride, padding)
    x = jnp.pad(x, ((0, 0), _padding(height, kernel, stride, padding),
                    _padding(width, kernel, stride, padding), (0, 0)))
    return jnp.concatenate(
        [x[:, i:i + (out_h - 1) * stride + 1:stride, j:j + (out_w - 1) * stride + 1:stride, :]
         for i in range(kernel) for j in range(kernel)], axis=-1)


class _Conv(nn.Module):
    """A 2-D convolution computed as one matrix product over image patches.

    The parameters (``kernel`` of shape ``(k, k, C, features)``, ``bias``) and the
    result are those of ``flax.linen.Conv``; the kernel starts Glorot-uniform,
    as every skbnn layer does (flax's default is LeCun-normal). Why not
    ``nn.Conv``: XLA's CPU backend runs a convolution inside a loop, such as
    the ``lax.scan`` that makes one training epoch, through a slow generic path
    (about 20x slower than outside the loop for a LeNet-sized network), while
    the matrix product, and the slicing and padding that form the patches, stay
    fast there. Predictions and training use the same computation.

    On an accelerator (``native`` None and a non-CPU default backend, or
    ``native=True``) the layer is XLA's own convolution
    (``lax.conv_general_dilated``, what ``nn.Conv`` calls), which GPUs run
    through their convolution libraries without forming the patches: the
    same parameters and the same result up to rounding.
    """

    features: int
    kernel_size: int
    stride: int
    padding: str
    native: bool | None = None

    @nn.compact
    def __call__(self, x):
        k = self.kernel_size
        kernel = self.param("kernel", _glorot_uniform, (k, k, x.shape[-1], self.features))
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        native = jax.default_backend() != "cpu" if self.native is None else self.native
        if native:
            y = jax.lax.conv_general_dilated(
                x, kernel.astype(x.dtype), (self.stride, self.stride), self.padding,
                dimension_numbers=("NHWC", "HWIO", "NHWC"))
            return y + bias
        patches = image_patches(x, k, self.stride, self.padding)
        # the largest array a prediction makes: activation_size counts it (recorded
        # only when a caller asks for intermediates, as its test does)
        self.sow("intermediates", "patches", patches)
        return patches @ kernel.reshape(-1, self.features) + bias


class _CNNModule(nn.Module):
    channels: tuple
    kernel_size: int
    stride: int
    padding: str
    pooling: str
    hidden_layer_sizes: tuple
    activation: str
    n_outputs: int

    @nn.compact
    def __call__(self, x):
        act = ACTIVATIONS[self.activation]
        k, s = self.kernel_size, self.stride
        for i, width in enumerate(self.channels):
            x = _Conv(width, k, s, self.padding, name=f"conv_{i}")(x)
            x = act(x)
            if self.pooling != "none":
                window = _pool_window(x.shape[-3], x.shape[-2])
                x = _POOL[self.pooling](x, window, strides=window)
        x = x.reshape(x.shape[0], -1)
        for i, width in enumerate(self.hidden_layer_sizes):
            x = act(nn.Dense(width, kernel_init=_glorot_uniform, name=f"dense_{i}")(x))
        last = f"dense_{len(self.hidden_layer_sizes)}"
        return nn.Dense(self.n_outputs, kernel_init=_glorot_uniform, name=last)(x)


@serializable
@dataclasses.dataclass(frozen=True)
class CNN(Network):
    """Convolutions (each followed by the activation and pooling), then a dense head.

    Inputs are images ``(n_samples, height, width, channels)``. Layers are named
    ``conv_0, ..., dense_0, ...``; the output layer is the last ``dense_i``.
    """

    channels: tuple = (32, 64)
    kernel_size: int = 5
    stride: int = 1
    padding: str = "SAME"
    pooling: str = "max"
    hidden_layer_sizes: tuple = (128,)
    activation: str = "relu"
    n_outputs: int = 10

    def _module(self):
        return _CNNModule(self.channels, self.kernel_size, self.stride, self.padding,
                          self.pooling, self.hidden_layer_sizes, self.activation,
                          self.n_outputs)

    @property
    def layer_names(self):
        convs = tuple(f"conv_{i}" for i in range(len(self.channels)))
        dense = tuple(f"dense_{i}" for i in range(len(self.hidden_layer_sizes) + 1))
        return convs + dense

    def feature_shapes(self, input_shape):
        """Shape of the activation after each convolution (before its pooling)."""
        height, width, _ = input_shape
        shapes = []
        for channels in self.channels:
            height = _conv_out(height, self.kernel_size, self.stride, self.padding)
            width = _conv_out(width, self.kernel_size, self.stride, self.padding)
            if height < 1 or width < 1:
                raise ValueError(
                    f"Images of shape {tuple(input_shape)} are too small for "
                    f"{len(self.channels)} convolutions of size {self.kernel_size} with "
                    f"stride {self.stride} and padding={self.padding.lower()!r}; use "
                    "padding='same', a smaller kernel_size or fewer conv_channels."
                )
            shapes.append((height, width, channels))
            if self.pooling != "none":
                ph, pw = _pool_window(height, width)
                height, width = height // ph, width // pw
        return shapes, (height, width, self.channels[-1] if self.channels else input_shape[2])

    def activation_size(self, input_shape):
        shapes, last = self.feature_shapes(input_shape)
        sizes = [int(np.prod(s)) for s in shapes]
        # each convolution's patches: k * k input channels per output pixel
        in_channels = (input_shape[2], *self.channels[:-1])
        sizes += [h * w * self.kernel_size**2 * c for (h, w, _), c in zip(shapes, in_channels)]
        return max(int(np.prod(input_shape)), int(np.prod(last)), self.n_outputs,
                   *sizes, *self.hidden_layer_sizes)

    def init(self, rng_key, input_shape):
        if len(input_shape) != 3:
            raise ValueError(f"A CNN takes images (height, width, channels), got rows of "
                             f"shape {tuple(input_shape)}.")
        self.feature_shapes(input_shape)  # a clear error for images too small
        return super().init(rng_key, input_shape)


def build_cnn(channels, kernel_size, stride, padding, pooling, hidden_layer_sizes,
              activation, n_outputs):
    """Return the :class:`CNN` for this architecture (hashable, compares by value)."""
    if activation not in ACTIVATIONS:
        raise ValueError(
            f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}."
        )
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {list(POOLINGS)}, got {pooling!r}.")
    if str(padding).lower() not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}.")
    return CNN(tuple(int(c) for c in channels), int(kernel_size), int(stride),
               str(padding).upper(), pooling, tuple(int(h) for h in hidden_layer_sizes),
               activation, int(n_outputs))
