"""NUTS on small networks: regression bands under several priors and widths, and a 3-class spiral.

The numpyro study ("Bayesian Neural Networks with numpyro") samples a one-
hidden-layer tanh network on 40 noisy points of ``x sin(5x)`` with NUTS and
shows how the 95% band of the posterior predictive changes with the prior's
scale (0.1: too rigid; 10: very flexible) and the width (2 units: too few; 100
units: flexible but, thanks to the prior, not overfitting). It then fits a
3-class spiral and compares the Bayesian network's predictive mode and entropy
maps with the deterministic network's, whose entropy is low everywhere away
from the class boundaries: confident where it has never seen data.

Here every panel is one ``BayesianMLPRegressor`` or ``BayesianMLPClassifier``
with ``inference="nuts"``; the prior scale ``s`` is ``alpha = 1 / s**2``.
The data are made by the script (as in the study), so ``--quick`` only
shortens the chains.
"""

# %%
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import NUTS

#: (label, hidden units, prior scale) as in the study's panels.
REGRESSION_PANELS = [
    ("10 units, prior scale 1", (10,), 1.0),
    ("prior scale 0.1: too rigid", (10,), 0.1),
    ("prior scale 10: flexible", (10,), 10.0),
    ("2 units: too few", (2,), 1.0),
    ("100 units", (100,), 1.0),
]


def regression_data(rng):
    """40 points of ``x sin(5x)`` on [-1, 1] with noise 0.1, as in the study."""
    x = np.sort(rng.uniform(-1, 1, size=(40, 1)), axis=0)
    y = (x * np.sin(5 * x)).ravel() + rng.normal(0, 0.1, size=40)
    return x, y


def spiral_data(rng, n_per_class=100):
    """The study's 3-class spiral in the unit square around 0."""
    X, y = [], []
    for k in range(3):
        r = np.linspace(0.0, 0.5, n_per_class)
        t = np.linspace(4 * k, 4 * (k + 1), n_per_class) + rng.normal(0, 0.2, n_per_class)
        X.append(np.c_[r * np.sin(t), r * np.cos(t)])
        y.append(np.full(n_per_class, k))
    return np.concatenate(X), np.concatenate(y)


def sampler(args):
    """The study runs 2 chains of 2,000 draws after 200 warm-up steps."""
    if args.quick:  # short chains with short trajectories: seconds, not minutes
        return NUTS(n_warmup=100, n_draws=100, n_chains=2, max_tree_depth=6)
    return NUTS(n_warmup=200, n_draws=2000, n_chains=2)


def entropy(proba):
    return -(proba * np.log(np.clip(proba, 1e-12, None))).sum(axis=1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter chains")
    parser.add_argument("--out", default="example_output/nuts_regression_spiral")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)

    # %% Regression: the 95% band for several prior scales and widths.
    x, y = regression_data(rng)
    x_test = np.linspace(-1.5, 1.5, 200)[:, None]
    inside = np.abs(x_test[:, 0]) <= 1
    bands, results = {}, {"regression": {}}
    print(f"{'regression panel':<28} {'fit s':>6} {'train RMSE':>10} {'coverage':>9} "
          f"{'band in':>8} {'band out':>9} {'R-hat':>6} {'diverg.':>8}")
    for label, hidden, scale in REGRESSION_PANELS:
        # The study models y on its own scale, with a half-Cauchy(0.5) noise
        # prior; normalize_y=False keeps that meaning of the prior scale.
        reg = BayesianMLPRegressor(hidden, activation="tanh", alpha=1 / scale**2,
                                   normalize_y=False, inference=sampler(args), random_state=0)
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(x, y)
        seconds = time.perf_counter() - t0
        # The band of the network's output f (the study's 95% CI of 'f'):
        # quantiles over the posterior draws of the mean.
        f = reg.sample_predictions(x_test)[..., 0]
        low, mid, high = np.quantile(f, [0.025, 0.5, 0.975], axis=0)
        mean, std = reg.predict(x, return_std=True)
        coverage = float(np.mean(np.abs(y - mean) <= 1.96 * std))
        width = high - low
        r = dict(fit_s=seconds, rmse=float(np.sqrt(np.mean((y - mean) ** 2))),
                 coverage=coverage, band_inside=float(width[inside].mean()),
                 band_outside=float(width[~inside].mean()),
                 r_hat=float(reg.max_rhat_), divergences=int(reg.n_divergences_))
        results["regression"][label] = r
        bands[label] = (low, mid, high)
        print(f"{label:<28} {seconds:>6.1f} {r['rmse']:>10.3f} {coverage:>9.2f} "
              f"{r['band_inside']:>8.3f} {r['band_outside']:>9.3f} {r['r_hat']:>6.2f} "
              f"{r['divergences']:>8d}")

    # %% Classification: the 3-class spiral, NUTS against the MAP network.
    X, labels = spiral_data(rng)
    grid = np.arange(-0.5, 0.5, 0.01)
    xx1, xx2 = np.meshgrid(grid, grid)
    X_grid = np.c_[xx1.ravel(), xx2.ravel()]
    # The study's classifier: 100 ReLU units, prior scale 10 (32 units with --quick).
    common = dict(hidden_layer_sizes=(32,) if args.quick else (100,), alpha=0.01,
                  random_state=0)
    classifiers = {
        "map": BayesianMLPClassifier(inference="map", max_iter=2000, learning_rate_init=0.01,
                                     **common),
        "nuts": BayesianMLPClassifier(inference=sampler(args), **common),
    }
    maps = {}
    print(f"\n{'spiral':<6} {'fit s':>6} {'train acc':>10} {'entropy near data':>18} "
          f"{'entropy far':>12}")
    # "Far" = grid points further from every training point than the spiral's
    # arms are from each other.
    distance = np.min(np.linalg.norm(X_grid[:, None] - X[None], axis=2), axis=1)
    far = distance > 0.1
    near = distance < 0.02
    results["spiral"] = {}
    for name, clf in classifiers.items():
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, labels)
        seconds = time.perf_counter() - t0
        proba = clf.predict_proba(X_grid)
        h = entropy(proba)
        maps[name] = (proba.argmax(1).reshape(xx1.shape), h.reshape(xx1.shape))
        r = dict(fit_s=seconds, train_accuracy=float(clf.score(X, labels)),
                 entropy_near=float(h[near].mean()), entropy_far=float(h[far].mean()))
        results["spiral"][name] = r
        print(f"{name:<6} {seconds:>6.1f} {r['train_accuracy']:>10.3f} "
              f"{r['entropy_near']:>18.3f} {r['entropy_far']:>12.3f}")

    # %% Figures.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(bands), figsize=(4 * len(bands), 3.5), sharey=True)
    for ax, (label, (low, mid, high)) in zip(axes, bands.items()):
        ax.fill_between(x_test[:, 0], low, high, alpha=0.3, label="95% band")
        ax.plot(x_test[:, 0], mid, label="median")
        ax.plot(x[:, 0], y, "k.", label="train data")
        ax.set(title=label, xlabel="x", ylim=(-2.5, 2.5))
    axes[0].legend(loc="lower left")
    fig.tight_layout()
    fig.savefig(out / "regression_bands.png", dpi=100)
    plt.close(fig)

    fig, axes = plt.subplots(1, 4, figsize=(16, 4))
    extent = (grid[0], grid[-1], grid[0], grid[-1])
    panels = [("nuts", 0, "NUTS predictive mode", "tab10"),
              ("nuts", 1, "NUTS predictive entropy", "Blues"),
              ("map", 0, "MAP mode", "tab10"),
              ("map", 1, "MAP entropy (overconfident)", "Blues")]
    for ax, (name, k, title, cmap) in zip(axes, panels):
        image = ax.imshow(maps[name][k], origin="lower", extent=extent, cmap=cmap,
                          vmin=0, vmax=np.log(3) if k else 9)
        ax.scatter(X[:, 0], X[:, 1], c="k", s=3)
        ax.set(title=title)
        if k:
            fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(out / "spiral.png", dpi=100)
    plt.close(fig)
    print(f"\nfigures written to {out}")
    return results


if __name__ == "__main__":
    main()
