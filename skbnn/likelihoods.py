"""Likelihoods on network outputs: log-likelihood, prior on their own parameters,
the per-draw predictive quantities the estimators reduce, and the math the
Laplace approximation needs of them.

Every likelihood is one class with one interface, so no module branches on
which likelihood it has:

- ``init()``, ``log_prior(lik_params)``: its own parameters and their prior;
- ``log_likelihood(lik_params, outputs, y)``: per row;
- ``predict(lik_params, outputs)``: per-draw predictive quantities;
- ``log_predictive_density(predictive, y)``: per row, under the mixture of
  per-draw predictives;
- ``score(lik_params, outputs, y)``: accuracy or R² (early stopping);
- ``hessian_factor(lik_params, outputs)``: ``A`` with ``A A^T`` the Hessian
  of the negative log-likelihood (or its Fisher information) with respect to
  one row's outputs, shape ``(n, n_outputs, n_columns)``: the generalised
  Gauss-Newton curvature of :mod:`skbnn.inference.laplace`;
- ``linearized_predictive(lik_params, mean, cov)``: the closed-form
  predictive of outputs ``N(mean, cov)`` (``cov``: ``(n, K, K)``), as the
  linearised Laplace posterior needs it.

Regression likelihoods predict ``(mean, noise_std)`` per draw, so the
estimators reduce them all alike; those whose noise does not depend on the
input also have ``noise(lik_params)``.

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
from jax.scipy.special import betaln, gammaln, xlogy

from .utils._io import serializable

__all__ = [
    "Bernoulli",
    "Categorical",
    "Gaussian",
    "HeteroscedasticGaussian",
    "MultilabelBernoulli",
    "Poisson",
]


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

    def hessian_factor(self, lik_params, outputs):
        """``diag(p) - p p^T = (diag(sqrt p) - p sqrt(p)^T)(...)^T``, since ``sum(p) = 1``."""
        p = jax.nn.softmax(outputs, axis=-1)
        sp = jnp.sqrt(p)
        return jax.vmap(jnp.diag)(sp) - p[:, :, None] * sp[:, None, :]

    def linearized_predictive(self, lik_params, mean, cov):
        """``(probabilities,)`` by the probit approximation (MacKay 1992)."""
        var = jnp.diagonal(cov, axis1=1, axis2=2)
        return (jax.nn.softmax(mean / jnp.sqrt(1.0 + jnp.pi / 8.0 * var), axis=-1),)


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

    def hessian_factor(self, lik_params, outputs):
        p = jax.nn.sigmoid(outputs)
        return jnp.sqrt(p * (1.0 - p))[:, :, None]

    def linearized_predictive(self, lik_params, mean, cov):
        """``(probabilities,)`` by the probit approximation (MacKay 1992)."""
        p1 = jax.nn.sigmoid(mean[:, 0] / jnp.sqrt(1.0 + jnp.pi / 8.0 * cov[:, 0, 0]))
        return (jnp.stack([1.0 - p1, p1], axis=-1),)


@serializable
@struct.dataclass
class MultilabelBernoulli:
    """Independent Bernoulli likelihoods on ``n_labels`` logits, for multilabel targets.

    ``y`` is an indicator matrix ``(n_samples, n_labels)``; each label has its
    own logistic output, as ``MLPClassifier`` fits multilabel targets.
    """

    n_labels: int = struct.field(pytree_node=False)

    name = "multilabel_bernoulli"
    out_activation = "logistic"

    @property
    def n_network_outputs(self):
        return self.n_labels

    def init(self):
        return {}

    def log_prior(self, lik_params):
        return jnp.zeros(())

    def log_likelihood(self, lik_params, outputs, y):
        """Per-row log-likelihood (the sum over labels), shape ``(n_samples,)``."""
        terms = jnp.where(y == 1, jax.nn.log_sigmoid(outputs), jax.nn.log_sigmoid(-outputs))
        return jnp.sum(terms, axis=-1)

    def predict(self, lik_params, outputs):
        """``(probabilities,)`` of shape ``(n_samples, n_labels)``: each label's
        probability of being present."""
        return (jax.nn.sigmoid(outputs),)

    def score(self, lik_params, outputs, y):
        """Subset accuracy: the share of rows whose every label is right."""
        return jnp.mean(jnp.all((outputs > 0) == (y == 1), axis=-1))

    def log_predictive_density(self, predictive, y):
        """Per-row log density of the label vector ``y`` under the mixture of per-draw
        predictives (``(n_draws, n_samples, n_labels)`` probabilities)."""
        p = jnp.asarray(predictive[0])
        tiny = jnp.finfo(p.dtype).tiny
        per_draw = jnp.sum(jnp.where(jnp.asarray(y)[None] == 1, jnp.log(jnp.maximum(p, tiny)),
                                     jnp.log(jnp.maximum(1.0 - p, tiny))), axis=-1)
        return jax.nn.logsumexp(per_draw, axis=0) - math.log(p.shape[0])

    def hessian_factor(self, lik_params, outputs):
        """``diag(sqrt(p (1 - p)))``: the labels are independent."""
        p = jax.nn.sigmoid(outputs)
        return jax.vmap(jnp.diag)(jnp.sqrt(p * (1.0 - p)))

    def linearized_predictive(self, lik_params, mean, cov):
        """``(probabilities,)`` by the probit approximation per label (MacKay 1992)."""
        var = jnp.diagonal(cov, axis1=1, axis2=2)
        return (jax.nn.sigmoid(mean / jnp.sqrt(1.0 + jnp.pi / 8.0 * var)),)


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
        return _r2(outputs, y)

    def hessian_factor(self, lik_params, outputs):
        inv = 1.0 / self.noise(lik_params)
        return jnp.broadcast_to(jnp.diag(inv), (outputs.shape[0], *jnp.diag(inv).shape))

    def linearized_predictive(self, lik_params, mean, cov):
        """``(mean, total_std)`` with ``total_std**2 = noise**2 + diag(cov)``."""
        noise = self.noise(lik_params)
        return mean, jnp.sqrt(jnp.square(noise) + jnp.diagonal(cov, axis1=1, axis2=2))


@serializable
@struct.dataclass
class HeteroscedasticGaussian:
    """Gaussian likelihood whose noise scale the network predicts for every input.

    The network has ``2 * n_outputs`` outputs: the means, then ``rho``. The
    noise scale is ``sigma(x) = s * softplus(rho(x) + log(e - 1)) + min_noise``:
    a shared scale ``s`` per output (``params["likelihood"]["log_noise"]``,
    with the homoscedastic :class:`Gaussian`'s half-Cauchy prior of scale
    ``noise_prior_scale``) times a factor that the network predicts, which is
    1 where ``rho`` is 0. The noise head's weights have the network's prior,
    whose mode ``rho = 0`` is the homoscedastic model, so the model nests it and
    leaves it only as far as the data ask: the noise level itself is learnt by
    ``s`` under its own weak prior, not pulled towards the head's zero (a head
    that predicted the whole scale, ``softplus(rho)`` as in Lakshminarayanan et
    al. 2017, had its prior pull every noise towards 0.69 standardised units).
    ``min_noise`` keeps the density bounded where the factor would go to zero.

    ``faithful`` (the default) fits the mean as the homoscedastic model does and
    the noise to what the mean leaves (Stirn et al. 2023, "Faithful heteroscedastic
    regression with neural networks"). The joint posterior weighs every row's pull
    on the mean by ``1 / sigma(x)^2``, so early in a fit the noise head can call
    the rows the mean does not fit yet noisy and the mean stops fitting them: on
    held-back rows of the UCI sets the joint fit's mean was up to four times worse
    than the homoscedastic one (energy). Faithfully, the log-likelihood keeps its
    value, but its gradient in the means is the homoscedastic one, with the
    shared scale ``s``, and ``rho`` gets its gradient with the means held; with
    the network's ``detached_outputs`` the noise head also sends no gradient into
    the hidden layers, which serve the mean alone. ``s`` gets the homoscedastic
    model's gradient as well as the joint one: the joint likelihood leaves the
    split of the noise between ``s`` and the head's level to the priors, and
    the means' weight ``1 / s^2`` must not drift along it (pSGLD's chains did,
    without end). This is a cut of the noise's
    feedback into the mean (modular inference): gradient-based strategies (pSGLD,
    VI, MAP and the Laplace approximation around it, the ensemble) sample or fit
    the mean's homoscedastic posterior and the noise given it. NUTS and
    ``solver="lbfgs"``, whose Metropolis test or line search needs the gradient of
    the density it evaluates, use the joint posterior (see :meth:`joint`).
    ``faithful=False`` is the joint model everywhere.
    """

    n_outputs: int = struct.field(pytree_node=False)
    min_noise: jax.Array = 1e-3
    noise_prior_scale: jax.Array = 0.5
    faithful: bool = struct.field(pytree_node=False, default=True)

    name = "heteroscedastic_gaussian"
    out_activation = "identity"
    learn_noise = True

    #: ``softplus(_SHIFT) == 1``: the factor is 1 at ``rho = 0``
    _SHIFT = math.log(math.e - 1.0)

    @property
    def n_network_outputs(self):
        return 2 * self.n_outputs

    @property
    def n_detached_outputs(self):
        """Outputs (the noise head) whose gradient stays out of the hidden layers."""
        return self.n_outputs if self.faithful else 0

    def joint(self):
        """This likelihood with the joint posterior's gradient (``faithful=False``)."""
        return self.replace(faithful=False)

    def init(self):
        dtype = jnp.result_type(float)
        return {"log_noise": jnp.zeros((self.n_outputs,), dtype=dtype)}

    def log_prior(self, lik_params):
        return Gaussian.log_prior(self, lik_params)

    def _split(self, outputs, lik_params):
        """``(mean, sigma, d log sigma / d rho)``."""
        k = self.n_outputs
        scale = jnp.exp(lik_params["log_noise"])
        rho = outputs[:, k:] + self._SHIFT
        sigma = scale * jax.nn.softplus(rho) + self.min_noise
        return outputs[:, :k], sigma, scale * jax.nn.sigmoid(rho) / sigma

    def log_likelihood(self, lik_params, outputs, y):
        mean, sigma, _ = self._split(outputs, lik_params)
        if not self.faithful:
            z = (y - mean) / sigma
            per_output = -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
            return jnp.sum(per_output, axis=-1)
        sg = jax.lax.stop_gradient
        # the value is the joint model's; the means' gradient the homoscedastic one
        # with the shared scale (the zero-valued second term, which also gives the
        # scale its homoscedastic gradient), the noise head's with the means held
        z = (y - sg(mean)) / sigma
        per_output = -0.5 * z**2 - jnp.log(sigma) - 0.5 * math.log(2 * math.pi)
        log_scale = lik_params["log_noise"]
        homoscedastic = -0.5 * jnp.square((y - mean) * jnp.exp(-log_scale)) - log_scale
        return jnp.sum(per_output + (homoscedastic - sg(homoscedastic)), axis=-1)

    def predict(self, lik_params, outputs):
        """``(mean, noise_std)``, each of shape ``(n_samples, n_outputs)``."""
        mean, sigma, _ = self._split(outputs, lik_params)
        return mean, sigma

    log_predictive_density = Gaussian.log_predictive_density

    def score(self, lik_params, outputs, y):
        return _r2(outputs[:, :self.n_outputs], y)

    def hessian_factor(self, lik_params, outputs):
        """Square root of the Fisher information in ``(mean, rho)``: ``1/sigma`` for a
        mean (faithfully ``1/s``, the homoscedastic model's, whose gradient the means
        follow), ``sqrt(2) d log(sigma) / d rho`` for its ``rho`` (the Fisher
        information of ``log sigma`` is 2)."""
        _, sigma, dlog = self._split(outputs, lik_params)
        if self.faithful:
            mean_factor = jnp.broadcast_to(jnp.exp(-lik_params["log_noise"]), sigma.shape)
        else:
            mean_factor = 1.0 / sigma
        diag = jnp.concatenate([mean_factor, math.sqrt(2.0) * dlog], axis=-1)
        return jax.vmap(jnp.diag)(diag)

    def linearized_predictive(self, lik_params, mean, cov):
        """``(mean, total_std)``: the linearised means' variance plus the noise at the
        mean of ``rho`` (the noise's own uncertainty left out)."""
        mu, sigma, _ = self._split(mean, lik_params)
        k = self.n_outputs
        var = jnp.diagonal(cov, axis1=1, axis2=2)[:, :k]
        return mu, jnp.sqrt(jnp.square(sigma) + var)


@serializable
@struct.dataclass
class Poisson:
    """Poisson likelihood with a log link, one rate per output.

    The rate is ``exp(f + offset)`` with ``f`` the network output, so
    ``log p(y) = y (f + offset) - exp(f + offset) - lgamma(y + 1)`` per output
    (``y`` need not be an integer: any ``y >= 0`` gives scikit-learn's Poisson
    deviance up to a constant). ``offset`` (one per output, a pytree leaf) is
    a fixed log-rate the network adds to: the regressor sets it to the log of
    the mean count, so the prior on the last intercept is centred on the
    constant model, as standardising ``y`` centres it for the Gaussian; it
    changes no prediction of given parameters. No parameters of its own.

    Per draw it predicts ``(rate, sqrt(rate))``, the Poisson's mean and
    standard deviation, so the regressors' reductions give the variance of
    the mixture over draws, ``E[rate] + Var[rate]``. The noise differs between
    inputs, so, like :class:`HeteroscedasticGaussian`, it has no ``noise``.
    """

    n_outputs: int = struct.field(pytree_node=False)
    offset: jax.Array = 0.0

    name = "poisson"
    out_activation = "exp"

    @property
    def n_network_outputs(self):
        return self.n_outputs

    def init(self):
        return {}

    def log_prior(self, lik_params):
        return jnp.zeros(())

    def log_rate(self, outputs):
        """``f + offset``, shape ``(n_samples, n_outputs)``."""
        return outputs + self.offset

    def log_likelihood(self, lik_params, outputs, y):
        """Per-row log-likelihood (the sum over outputs), shape ``(n_samples,)``."""
        log_rate = self.log_rate(outputs)
        return jnp.sum(y * log_rate - jnp.exp(log_rate) - gammaln(y + 1.0), axis=-1)

    def predict(self, lik_params, outputs):
        """``(rate, sqrt(rate))``, each of shape ``(n_samples, n_outputs)``."""
        rate = jnp.exp(self.log_rate(outputs))
        return rate, jnp.sqrt(rate)

    def log_predictive_density(self, predictive, y):
        """Per-row log density of ``y`` under the mixture of per-draw predictives.

        ``predictive``: ``(mean, std)`` stacked over draws, each ``(n_draws,
        n_samples, n_outputs)``. A draw whose variance is its mean (what
        :meth:`predict` gives) is a Poisson; one whose variance exceeds its
        mean (the closed form of :meth:`linearized_predictive`, a lognormal
        mixture of Poissons) is given the density of the negative binomial
        with the same mean and variance.
        """
        mean, std = (jnp.asarray(a) for a in predictive)
        y = jnp.asarray(y)[None]
        excess = jnp.square(std) - mean
        overdispersed = (mean > 0) & (excess > 1e-4 * mean)
        poisson = xlogy(y, mean) - mean - gammaln(y + 1.0)
        # negative binomial of size r = mean^2 / excess; the binomial coefficient
        # Gamma(y + r) / (Gamma(r) y!) = 1 / ((y + r) B(r, y + 1)), which betaln
        # keeps accurate for the large r of a nearly Poisson draw
        safe_mean = jnp.where(overdispersed, mean, 1.0)
        r = jnp.square(safe_mean) / jnp.where(overdispersed, excess, 1.0)
        negative_binomial = (-jnp.log(y + r) - betaln(r, y + 1.0) - r * jnp.log1p(safe_mean / r)
                             + xlogy(y, safe_mean) - y * jnp.log(r + safe_mean))
        logpmf = jnp.sum(jnp.where(overdispersed, negative_binomial, poisson), axis=-1)
        return jax.nn.logsumexp(logpmf, axis=0) - math.log(logpmf.shape[0])

    def score(self, lik_params, outputs, y):
        """Coefficient of determination R² of the rate, averaged uniformly over outputs
        (the score of ``MLPRegressor``)."""
        return _r2(jnp.exp(self.log_rate(outputs)), y)

    def hessian_factor(self, lik_params, outputs):
        """``diag(sqrt(rate))``: the Hessian of ``exp(f) - y f`` in ``f`` is the rate."""
        return jax.vmap(jnp.diag)(jnp.exp(0.5 * self.log_rate(outputs)))

    def linearized_predictive(self, lik_params, mean, cov):
        """``(mean, total_std)`` of the rate ``exp(f)`` with ``f`` Gaussian (lognormal):
        ``E[rate] = exp(m + v/2)``, ``Var[rate] = (exp(v) - 1) E[rate]^2`` and
        ``total_std**2 = E[rate] + Var[rate]``."""
        var = jnp.diagonal(cov, axis1=1, axis2=2)
        expected = jnp.exp(self.log_rate(mean) + 0.5 * var)
        return expected, jnp.sqrt(expected + jnp.expm1(var) * jnp.square(expected))


def _r2(outputs, y):
    ss_res = jnp.sum((y - outputs) ** 2, axis=0)
    ss_tot = jnp.sum((y - jnp.mean(y, axis=0)) ** 2, axis=0)
    r2 = 1.0 - ss_res / jnp.where(ss_tot > 0, ss_tot, 1.0)
    return jnp.mean(r2)
