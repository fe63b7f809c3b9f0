"""The model: a network, a likelihood and a prior, as pure functions of parameters.

Parameters are ``{"network": <network params>, "likelihood": <likelihood params>}``.
Every inference strategy sees the model only through these functions.
"""

from typing import NamedTuple

import jax.numpy as jnp
from flax import struct

from ._types import Array, Params
from .networks import Network
from .utils._io import serializable

__all__ = ["Batch", "Model"]


class Batch(NamedTuple):
    """Rows of data: inputs, encoded targets and per-row weights (frequency weights)."""

    X: Array
    y: Array
    weight: Array


@serializable
@struct.dataclass
class Model:
    """Network + likelihood + prior.

    The network is static metadata (its architecture selects the compiled
    program); likelihood and prior are pytrees whose numeric settings are
    leaves.
    """

    network: Network = struct.field(pytree_node=False)
    likelihood: object
    prior: object

    @classmethod
    def build(cls, network: Network, likelihood, prior) -> "Model":
        """The model of ``network`` under ``likelihood``, with the outputs the likelihood
        keeps out of the hidden layers' gradient detached (a faithful
        heteroscedastic noise head)."""
        return cls(network.detach_outputs(getattr(likelihood, "n_detached_outputs", 0)),
                   likelihood, prior)

    def joint(self) -> "Model":
        """The same model with its joint posterior's gradient: the values are the same,
        but a faithful heteroscedastic likelihood's cut of the noise's feedback into
        the mean is undone (what a Metropolis-corrected sampler needs)."""
        if not hasattr(self.likelihood, "joint"):
            return self
        return self.replace(network=self.network.detach_outputs(0),
                            likelihood=self.likelihood.joint())

    def init(self, rng_key, input_shape) -> Params:
        """Initial parameters for inputs of shape ``(n, *input_shape)``."""
        return {
            "network": self.network.init(rng_key, tuple(input_shape)),
            "likelihood": self.likelihood.init(),
        }

    def log_prior(self, params) -> Array:
        return self.prior.log_prob(params["network"]) + self.likelihood.log_prior(
            params["likelihood"]
        )

    def log_likelihood(self, params, X, y) -> Array:
        """Per-row log-likelihood, shape ``(n_samples,)``."""
        outputs = self.network.apply(params["network"], X)
        return self.likelihood.log_likelihood(params["likelihood"], outputs, y)

    def logdensity(self, params, batch: Batch, data_size) -> Array:
        """Minibatch estimate of the log posterior density (up to a constant).

        ``log prior + data_size * mean over the batch of weight * log-likelihood``:
        unbiased for the full-data log posterior when the batch rows are drawn
        uniformly from ``data_size`` rows (the gradient estimator of SG-MCMC).
        """
        loglik = batch.weight * self.log_likelihood(params, batch.X, batch.y)
        return self.log_prior(params) + data_size * jnp.mean(loglik)

    def predict(self, params, X) -> tuple:
        """The likelihood's predictive quantities for one parameter draw.

        Categorical/Bernoulli: ``(probabilities,)``; Gaussian: ``(mean, noise_std)``;
        Poisson: ``(rate, sqrt(rate))``.
        """
        outputs = self.network.apply(params["network"], X)
        return self.likelihood.predict(params["likelihood"], outputs)

    def score(self, params, X, y) -> Array:
        """Accuracy (classification) or R² (regression) of one parameter draw."""
        outputs = self.network.apply(params["network"], X)
        return self.likelihood.score(params["likelihood"], outputs, y)

