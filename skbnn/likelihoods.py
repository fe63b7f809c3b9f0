"""Likelihoods on network outputs: log-likelihood, prior on their own parameters,
and the per-draw predictive quantities the estimators reduce.

A likelihood's own parameters (the Gaussian noise scale) live in the model's
parameter pytree under ``"likelihood"``, so every inference strategy infers
them together with the network weights. Likelihoods are ``flax.struct``
dataclasses: structural settings are static (they pick the compiled program),
numeric settings such as a fixed noise scale are pytree leaves (changing them
reuses the compiled program).
"""

import math

import jax
import jax.numpy as jnp
from flax import struct

from .utils._io import serializable

__all__ = ["Bernoulli", "Categorical", "Gaussian"]


def _log_mean_probability(probs, y):
    """``log`` of the mean over draws of each row's probability of its class ``y``."""
    p = jnp.mean(jnp.asarray(probs), axis=0)
    p = jnp.take_along_axis(p, jnp.asarray(y)[:, None], axis=-1)[:, 0]
    return jnp.log(jnp.maximum(p, jnp.finfo(p.dtype).tiny))


@serializable
@struct.dataclass
class Categorical:
    """Categorical likelihood on ``n_classes`` logits (softmax output)."""

    n_classes: int = struct.field(pytree_node=False)

    name = "categorical"
    out_activation = "softmax"

    @property
    def n_network_outputs(self):
        return self.n_classes

    def init(self):
        return {}

    def log_prior(self, lik_params):
        return jnp.zeros(())

    def log_likelihood(self, lik_params, outputs, y):
        """Per-example log-likelihood, shape ``(n_samples,)``; ``y`` holds class indices."""
        log_probs = jax.nn.log_softmax(outputs, axis=-1)
        return jnp.take_along_axis(log_probs, y[:, None], axis=-1)[:, 0]

    def predict(self, lik_params, outputs):
        """``(probabilities,)`` of shape ``(n_samples, n_classes)``."""
        return (jax.nn.softmax(outputs, axis=-1),)

    def score(self, lik_params, outputs, y):
        """Accuracy of the arg-max class (the validation score of early stopping)."""
        return jnp.mean(jnp.argmax(outputs, axis=-1) == y)

    def log_predictive_density(self, predictive, y):
        """Per-row log density of ``y`` under the mixture of per-draw predictives.

        ``predictive`` is what :meth:`predict` returns, stacked over draws:
        ``(probabilities,)`` of shape ``(n_draws, n_samples, n_classes)``.
        """
        return _log_mean_probability(predictive[0], y)


@serializable
@struct.dataclass
class Bernoulli:
    """Bernoulli likelihood on one logit (logistic output), for two classes."""

    name = "bernoulli"
    out_activation = "logistic"
    n_classes = 2

    @property
    def n_network_outputs(self):
        return 1

    def init(self):
        return {}

    def log_prior(self, lik_params):
        return jnp.zeros(())

    def log_likelihood(self, lik_params, outputs, y):
        logit = outputs[:, 0]
        return jnp.where(y == 1, jax.nn.log_sigmoid(logit), jax.nn.log_sigmoid(-logit))

    def predict(self, lik_params, outputs):
        """``(probabilities,)`` of shape ``(n_samples, 2)``: columns are classes 0 and 1."""
        p1 = jax.nn.sigmoid(outputs[:, 0])
        return (jnp.stack([1.0 - p1, p1], axis=-1),)

    def score(self, lik_params, outputs, y):
        return jnp.mean((outputs[:, 0] > 0) == (y == 1))

    def log_predictive_density(self, predictive, y):
        """Per-row log density of ``y``: see :meth:`Categorical.log_predictive_density`."""
        return _log_mean_probability(predictive[0], y)


@serializable
@struct.dataclass
class Gaussian:
    """Homoscedastic Gaussian likelihood with one noise scale per output.

    With ``learn_noise=True`` the log noise scale is a parameter under
    ``params["likelihood"]["log_noise"]`` with a half-Cauchy prior of scale
    ``noise_prior_scale`` on the scale itself (the log-Jacobian of the log
    transform is included, so samplers target the right density). With
    ``learn_noise=False`` the scale is fixed at ``noise_std``.
    """

    n_outputs: int = struct.field(pytree_node=False)
    learn_noise: bool = struct.field(pytree_node=False, default=True)
    noise_std: jax.Array = 1.0
    noise_prior_scale: jax.Array = 0.5

    name = "gaussian"
    out_activation = "identity"

    @property
    def n_network_outputs(self):
        return self.n_outputs

    def init(self):
        if not self.learn_noise:
            return {}
        dtype = jnp.result_type(float)
        return {"log_noise": jnp.zeros((self.n_outputs,), dtype=dtype)}

    def noise(self, lik_params):
        """Noise scale per output, shape ``(n_outputs,)``."""
        if self.learn_noise:
            return jnp.exp(lik_params["log_noise"])
        return jnp.broadcast_to(jnp.asarray(self.noise_std), (self.n_outputs,))

    def log_prior(self, lik_params):
        if not self.learn_noise:
            return jnp.zeros(())
        log_sigma = lik_params["log_noise"]
        scale = self.noise_prior_scale
        # half-Cauchy density of sigma, plus log|d sigma / d log sigma| = log sigma
        log_half_cauchy = (
            math.log(2.0 / math.pi) - jnp.log(scale) - jnp.log1p(jnp.exp(2 * log_sigma) / scale**2)
        )
        return jnp.sum(log_half_cauchy + log_sigma)

    def log_likelihood(self, lik_params, outputs, y):
        sigma = self.noise(lik_params)
        z = (y - outputs) / sigma
        per_output = -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
        return jnp.sum(per_output, axis=-1)

    def predict(self, lik_params, outputs):
        """``(mean, noise_std)``, each of shape ``(n_samples, n_outputs)``."""
        return outputs, jnp.broadcast_to(self.noise(lik_params), outputs.shape)

    def log_predictive_density(self, predictive, y):
        """Per-row log density of ``y`` under the mixture of per-draw Gaussians.

        ``predictive``: ``(mean, noise_std)`` stacked over draws, each
        ``(n_draws, n_samples, n_outputs)`` (a closed-form predictive is one
        draw whose ``noise_std`` is the total standard deviation).
        """
        mean, std = (jnp.asarray(a) for a in predictive)
        z = (jnp.asarray(y)[None] - mean) / std
        logpdf = jnp.sum(-0.5 * z**2 - jnp.log(std) - 0.5 * math.log(2 * math.pi), axis=-1)
        return jax.nn.logsumexp(logpdf, axis=0) - math.log(logpdf.shape[0])

    def score(self, lik_params, outputs, y):
        """Coefficient of determination R², averaged uniformly over outputs."""
        ss_res = jnp.sum((y - outputs) ** 2, axis=0)
        ss_tot = jnp.sum((y - jnp.mean(y, axis=0)) ** 2, axis=0)
        r2 = 1.0 - ss_res / jnp.where(ss_tot > 0, ss_tot, 1.0)
        return jnp.mean(r2)
