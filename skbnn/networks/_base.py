"""The network contract: a hashable description with ``init`` and ``apply``.

Only parameter pytrees and these two functions leave ``skbnn.networks``; the
flax modules stay inside. A network is a frozen dataclass, so two networks with
the same architecture compare and hash equal: that is what lets jitted
functions that take a model as a static argument be reused across fits.
"""

import dataclasses
from typing import NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp

from ..utils._sparse import densify

__all__ = ["ACTIVATIONS", "DenseCall", "Network"]


class DenseCall(NamedTuple):
    """One call of a dense (fully connected) layer, as the strategies see it."""

    path: tuple  # the layer's path in the network's parameters, e.g. ("dense_0",)
    use_bias: bool
    shape: tuple  # its output's shape

ACTIVATIONS = {
    "identity": lambda x: x,
    "logistic": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "relu": jax.nn.relu,
}


@dataclasses.dataclass(frozen=True)
class Network:
    """Base class of skbnn networks.

    Subclasses implement ``_module()`` (the flax module) and list their dense
    layers in order in ``layer_names``; parameters are
    ``{layer_name: {"kernel": (fan_in, fan_out) or conv shape, "bias": (fan_out,)}}``.
    """

    def _module(self):
        raise NotImplementedError

    @property
    def layer_names(self) -> tuple:
        raise NotImplementedError

    @property
    def is_linear(self) -> bool:
        """Whether the outputs are affine in the parameters (no hidden layer): then
        the posterior of a Gaussian or categorical model has one mode."""
        return False

    @property
    def last_layer(self) -> str:
        """Name of the output layer (the one last-layer methods act on)."""
        return self.layer_names[-1]

    #: How many of the last outputs read the last hidden features without passing
    #: gradients back into them (see :class:`~skbnn.networks.MLP`).
    detached_outputs = 0

    def detach_outputs(self, n: int) -> "Network":
        """The same network whose last ``n`` outputs pass no gradient back into the
        hidden layers (their own weights still get theirs). Only the MLP has them."""
        if n:
            raise ValueError(f"{type(self).__name__} has no detached outputs (asked for {n}).")
        return self

    def activation_size(self, input_shape) -> int:
        """Number of values of the largest activation for one input row (sizes prediction chunks)."""
        raise NotImplementedError

    def init(self, rng_key, input_shape):
        """Draw initial parameters for inputs of shape ``(n_samples, *input_shape)``."""
        dtype = jnp.result_type(float)  # float64 when the user enabled x64
        dummy = jnp.zeros((1, *input_shape), dtype=dtype)
        params = self._module().init(rng_key, dummy)["params"]
        # flax keeps parameters in float32 whatever the inputs; the data, the
        # prior and the settings are in JAX's float dtype, and so are they
        return jax.tree.map(
            lambda p: p.astype(dtype) if jnp.issubdtype(p.dtype, jnp.floating) else p, params)

    def apply(self, params, X):
        """Network outputs for a batch ``X``: shape ``(n_samples, n_outputs)``.

        ``X`` may be :class:`~skbnn.utils._sparse.SparseRows` (sparse training
        rows): they are densified here, one batch at a time.
        """
        return self._module().apply({"params": params}, densify(X))

    # --- what strategies may ask of the layers ------------------------------
    # The only interceptions of flax layers in skbnn are the three methods
    # below; strategies call them instead of importing flax.

    def dense_calls(self, params, X_shape, dtype=jnp.float32):
        """Every dense-layer call the network makes on inputs of ``X_shape``, in call order.

        Found by tracing ``apply`` once (``jax.eval_shape``: nothing runs);
        ``params`` may be shapes (``jax.ShapeDtypeStruct``) or arrays.
        """
        calls = []

        def record(next_fun, args, kwargs, context):
            out = next_fun(*args, **kwargs)
            if isinstance(context.module, nn.Dense) and context.method_name == "__call__":
                calls.append(DenseCall(tuple(context.module.path),
                                       bool(context.module.use_bias), tuple(out.shape)))
            return out

        def apply(params, X):
            with nn.intercept_methods(record):
                return self.apply(params, X)

        jax.eval_shape(apply, params, jax.ShapeDtypeStruct(tuple(X_shape), dtype))
        return calls

    def apply_replacing_dense(self, params, X, replace):
        """``apply``, with dense-layer calls computed by ``replace`` where it says so.

        ``replace(index, call, x)`` gets the call's index in call order, its
        :class:`DenseCall` (without ``shape``: None) and its input; it returns
        the layer's output, or None to let the layer compute it. The local
        reparameterisation of variational inference is built on it.
        """
        index = [0]

        def interceptor(next_fun, args, kwargs, context):
            module = context.module
            if context.method_name != "__call__" or not isinstance(module, nn.Dense):
                return next_fun(*args, **kwargs)
            x = args[0] if args else kwargs["inputs"]
            out = replace(index[0], DenseCall(tuple(module.path), bool(module.use_bias), None), x)
            index[0] += 1
            return next_fun(*args, **kwargs) if out is None else out

        with nn.intercept_methods(interceptor):
            return self.apply(params, X)

    def apply_with_probes(self, params, X, probes, record):
        """``apply``, watching the dense layers named in ``record``.

        For each dense layer whose parameter path (names joined by ``"/"``)
        is in ``record``: its input is recorded and ``probes[name]`` (when
        ``probes`` is not None) is added to its output, so that the gradient
        with respect to a zero probe is the gradient with respect to the
        layer's output. Returns ``(outputs, inputs, layer_outputs)``, the last
        two dicts by layer name. Curvature methods (K-FAC, the GGN diagonal)
        are built on it.
        """
        inputs, outputs = {}, {}

        def interceptor(next_fun, args, kwargs, context):
            module = context.module
            if context.method_name != "__call__" or not isinstance(module, nn.Dense):
                return next_fun(*args, **kwargs)
            name = "/".join(module.path)
            out = next_fun(*args, **kwargs)
            if name in record:
                inputs[name] = args[0]
                if probes is not None:
                    out = out + probes[name]
                outputs[name] = out
            return out

        with nn.intercept_methods(interceptor):
            out = self.apply(params, X)
        return out, inputs, outputs
