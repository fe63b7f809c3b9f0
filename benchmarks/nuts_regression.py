"""NUTS on the numpyro BNN tutorial, against the tutorial's own numpyro code, in one process.

Regression (the seed study): 40 points x ~ U(-1, 1), y = x sin(5x) + N(0, 0.1),
one hidden layer of 10 tanh units, N(0, 1) prior on every weight and bias,
HalfCauchy(0.5) prior on the noise scale, 2 chains x 2000 draws after 200
warmup transitions. Rows:

- skbnn: ``BayesianMLPRegressor((10,), activation="tanh", alpha=1,
  normalize_y=False, inference=NUTS(...))``, chains vectorised on one device,
  each started from a short MAP run;
- numpyro: the tutorial's code (``random_flax_module``, ``MCMC(NUTS(model))``,
  chains one after the other on one device, numpyro's ``init_to_uniform``).

Columns:

- fit s: wall time of the first fit, compilation included (what a user waits);
  refit s: the same fit again (skbnn: a clone on same-shaped data, which
  compiles nothing; numpyro: ``run`` again on the same ``MCMC`` object);
- min/med ESS/s: the smallest and the median effective sample size over the 32
  parameters (noise scale on the log scale for both), divided by fit s;
- R-hat: the largest split R-hat; div: divergent transitions after warmup;
- RMSE: posterior-mean function against the true x sin(5x) on the tutorial's
  200 grid points in [-1.5, 1.5]; cover: share of those points where the true
  function lies inside the 95% band (2.5% and 97.5% quantiles of the draws).

Classification: breast cancer (30-16-1 tanh, standardised inputs, 75/25 split),
skbnn only: fit time, test accuracy, NLL, ECE, min ESS, max R-hat.

Run: python benchmarks/nuts_regression.py [--draws 2000] [--warmup 200] [--seed 0]
"""

import argparse
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import accuracy_score, log_loss
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from _results import format_table, update
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import NUTS
from skbnn.metrics import expected_calibration_error


def true_f(x):
    return x * np.sin(5 * x)


def tutorial_data():
    """The tutorial's data, drawn exactly as it draws them."""
    import numpyro.distributions as dists

    key = jax.random.PRNGKey(0)
    x = jnp.sort(dists.Uniform(-1, 1).sample(key, sample_shape=(40, 1)))
    sub_key, key = jax.random.split(key)
    y = true_f(x) + dists.Normal(0.0, 0.1).rsample(sub_key, sample_shape=x.shape)
    x_test = jnp.linspace(-1.5, 1.5, num=200)[:, jnp.newaxis]
    return np.asarray(x), np.asarray(y)[:, 0], np.asarray(x_test)


def summarise(draws_by_chain, f_draws, x_test):
    """ESS and R-hat over parameters ``(chains, draws, n_params)``; RMSE and coverage of f."""
    from numpyro.diagnostics import effective_sample_size, split_gelman_rubin

    draws = np.asarray(draws_by_chain, dtype=np.float64)
    ess = np.asarray(effective_sample_size(draws))
    rhat = np.asarray(split_gelman_rubin(draws))
    truth = true_f(x_test[:, 0])
    f_mean = f_draws.mean(axis=0)
    low, high = np.quantile(f_draws, [0.025, 0.975], axis=0)
    return dict(min_ess=ess.min(), med_ess=np.median(ess), rhat=rhat.max(),
                rmse=float(np.sqrt(np.mean((f_mean - truth) ** 2))),
                cover=float(np.mean((truth >= low) & (truth <= high))))


def skbnn_row(args, x, y, x_test):
    reg = BayesianMLPRegressor(
        (10,), activation="tanh", alpha=1.0, normalize_y=False, random_state=args.seed,
        inference=NUTS(n_chains=2, n_warmup=args.warmup, n_draws=args.draws),
    )
    times = []
    for est in (reg, clone(reg)):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit(x, y)
        times.append(time.perf_counter() - t0)
    d = reg.posterior_.draws
    leaves = jax.tree.leaves(d)
    flat = np.concatenate([np.asarray(v).reshape(v.shape[0], v.shape[1], -1) for v in leaves],
                          axis=-1)
    assert flat.shape[-1] == 32, flat.shape
    f_draws = reg.sample_predictions(x_test)[..., 0]
    return times, reg.n_divergences_, summarise(flat, f_draws, x_test)


def numpyro_row(args, x, y, x_test):
    """The tutorial's code, with the progress bar off."""
    from collections.abc import Callable, Sequence
    from dataclasses import field
    from functools import partial

    import flax.linen as nn
    import numpyro
    import numpyro.distributions as dists
    from numpyro.contrib.module import random_flax_module
    from numpyro.infer import MCMC, NUTS as NumpyroNUTS

    class MultiLayerPerceptron(nn.Module):
        hidden_neurons: Sequence[int] = field(default_factory=lambda: [10])
        output_neurons: int = 1
        activation: Callable = nn.tanh

        @nn.compact
        def __call__(self, x):
            for neurons in self.hidden_neurons:
                x = self.activation(nn.Dense(neurons)(x))
            return nn.Dense(self.output_neurons)(x)

    def model(x, y=None, n_hidden=(10,), prior_std=1.0, activation=nn.tanh):
        batch_size, data_dim = x.shape
        net = MultiLayerPerceptron(list(n_hidden), activation=activation)
        bayesian_net = random_flax_module("net", net, prior=dists.Normal(0, prior_std),
                                          input_shape=(batch_size, data_dim))
        s = numpyro.sample("s", fn=dists.HalfCauchy(scale=0.5))
        with numpyro.plate("data", size=batch_size):
            f = numpyro.deterministic("f", value=bayesian_net(x)[:, 0])
            numpyro.sample("y", fn=dists.Normal(f, s), obs=y)
        return f

    partial_model = partial(model, n_hidden=(10,), prior_std=1.0, activation=nn.tanh)
    times = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "not enough devices": chains in sequence
        sampler = MCMC(sampler=NumpyroNUTS(partial_model, adapt_step_size=True),
                       num_chains=2, num_samples=args.draws, num_warmup=args.warmup,
                       jit_model_args=True, progress_bar=False)
        for _ in range(2):
            t0 = time.perf_counter()
            sampler.run(jax.random.PRNGKey(1234 + args.seed), x, y)
            jax.block_until_ready(sampler.get_samples())
            times.append(time.perf_counter() - t0)
    samples = sampler.get_samples(group_by_chain=True)
    extra = sampler.get_extra_fields(group_by_chain=True)
    parts = []
    for name in sorted(samples):
        if name == "f":
            continue  # a deterministic site (the 40 fitted values), not a parameter
        v = np.asarray(samples[name])
        if name == "s":
            v = np.log(v)  # same scale as skbnn's log-noise parameter
        parts.append(v.reshape(v.shape[0], v.shape[1], -1))
    flat = np.concatenate(parts, axis=-1)
    assert flat.shape[-1] == 32, flat.shape
    predictive = numpyro.infer.Predictive(partial_model, posterior_samples=sampler.get_samples(),
                                          return_sites=["f"])
    f_draws = np.asarray(predictive(jax.random.PRNGKey(1), jnp.asarray(x_test))["f"])
    return times, int(np.asarray(extra["diverging"]).sum()), summarise(flat, f_draws, x_test)


def classification_row(args):
    X, y = load_breast_cancer(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=args.seed, stratify=y)
    scaler = StandardScaler().fit(X_train)
    clf = BayesianMLPClassifier(
        (16,), activation="tanh", random_state=args.seed,
        inference=NUTS(n_chains=2, n_warmup=args.clf_warmup, n_draws=args.clf_draws),
    )
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(scaler.transform(X_train), y_train)
    fit = time.perf_counter() - t0
    proba = clf.predict_proba(scaler.transform(X_test))
    return dict(fit=fit, acc=accuracy_score(y_test, proba.argmax(1)),
                nll=log_loss(y_test, proba, labels=clf.classes_),
                ece=expected_calibration_error(y_test, proba), min_ess=clf.min_ess_,
                rhat=clf.max_rhat_, div=clf.n_divergences_)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--clf-draws", type=int, default=500)
    parser.add_argument("--clf-warmup", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-save", action="store_true",
                        help="do not write benchmarks/results/nuts_regression.json")
    args = parser.parse_args()

    x, y, x_test = tutorial_data()
    results, cells = {}, []
    for name, row in (("skbnn", skbnn_row), ("numpyro", numpyro_row)):
        times, div, s = row(args, x, y, x_test)
        results[name] = (times, s)
        cells.append([name, f"{times[0]:.2f}", f"{times[1]:.2f}",
                      f"{s['min_ess'] / times[0]:.1f}", f"{s['med_ess'] / times[0]:.1f}",
                      f"{s['rhat']:.4f}", f"{div:d}", f"{s['rmse']:.3f}", f"{s['cover']:.2f}"])
        print(f"done: {name} ({times[0]:.1f} s)", flush=True)
    ratio = [results["skbnn"][1][k] / results["skbnn"][0][0]
             / (results["numpyro"][1][k] / results["numpyro"][0][0]) for k in ("min_ess", "med_ess")]
    regression = {
        "title": (f"NUTS, BNN regression (numpyro tutorial): 40 points, 10 tanh units, "
                  f"2 chains x {args.draws} draws after {args.warmup} warmup, "
                  f"{jax.device_count()} {jax.default_backend()} device(s)"),
        "columns": ["row", "fit s", "refit s", "min ESS/s", "med ESS/s", "R-hat", "div",
                    "RMSE", "cover"],
        "rows": cells,
        "notes": [f"skbnn / numpyro: min ESS/s x{ratio[0]:.2f}, median ESS/s x{ratio[1]:.2f} "
                  "(target: min ESS/s >= x1.5, max R-hat <= 1.01, no divergences)"],
    }
    c = classification_row(args)
    classification = {
        "title": (f"NUTS, breast cancer (30-16-1 tanh), 2 chains x {args.clf_draws} draws "
                  f"after {args.clf_warmup} warmup"),
        "columns": ["row", "fit s", "acc", "NLL", "ECE", "min ESS", "R-hat", "div"],
        "rows": [["skbnn", f"{c['fit']:.2f}", f"{c['acc']:.3f}", f"{c['nll']:.4f}",
                  f"{c['ece']:.4f}", f"{c['min_ess']:.1f}", f"{c['rhat']:.4f}",
                  f"{c['div']:d}"]],
        "notes": [],
    }
    tables = {"regression": regression, "classification": classification}
    for table in tables.values():
        print()
        print(format_table(table))
    if not args.no_save:
        path = update("nuts_regression", tables=tables, settings=vars(args))
        print(f"\nresults written to {path}")


if __name__ == "__main__":
    main()
