"""Laplace on an MNIST CNN: reliability diagrams and ECE for the MAP network and for Laplace.

The laplax study trains a small CNN on MNIST (three 3x3 convolutions with 32,
32 and 64 channels, average pooling, a dense head), draws its reliability
diagram and reports the ECE over 15 bins, then puts a Laplace approximation
(generalised Gauss-Newton curvature) around the trained weights and predicts
with it. skbnn does both with ``BayesianCNNClassifier``: ``inference="map"`` for the
trained network and ``inference="laplace"`` for the same MAP fit (same
``random_state``, same settings, so the same weights) with the Gaussian around
it, at the temperature ``Laplace`` chooses on held-back rows.

Run ``python examples/plot_laplace_cnn_calibration.py`` (MNIST from
``--data-dir``) or ``--quick`` (scikit-learn's 8x8 digits).
"""

# %%
import argparse
import time
import warnings
from pathlib import Path

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skbnn import BayesianCNNClassifier
from skbnn.datasets import load_mnist
from skbnn.metrics import (
    expected_calibration_error,
    negative_log_likelihood,
    reliability_curve,
)

N_BINS = 15  # as the study


def load(args):
    """(X_train, y_train, X_test, y_test) as images (n, h, w)."""
    if args.quick:
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X.reshape(-1, 8, 8) / 16.0, y, test_size=0.25, random_state=0, stratify=y)
        return X_train, y_train, X_test, y_test
    X_train, y_train = load_mnist(args.data_dir, split="train", flatten=False)
    X_test, y_test = load_mnist(args.data_dir, split="test", flatten=False)
    return X_train, y_train, X_test, y_test


def network(args):
    """The study's CNN (full) or a small one for 8x8 digits (--quick)."""
    if args.quick:
        return dict(conv_channels=(8, 16), kernel_size=3, pooling="avg",
                    hidden_layer_sizes=(32,), batch_size=32, max_iter=100, random_state=0)
    return dict(conv_channels=(32, 32, 64), kernel_size=3, padding="valid", pooling="avg",
                hidden_layer_sizes=(256,), batch_size=128, max_iter=args.epochs,
                random_state=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="digits instead of MNIST")
    parser.add_argument("--out", default="example_output/laplace_cnn_calibration")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X_train, y_train, X_test, y_test = load(args)

    # %% The MAP network, then Laplace around the same MAP.
    results = {}
    # Laplace over the last layer (K-FAC, prior precision by marginal
    # likelihood, temperature on held-back rows), at its defaults
    strategies = {"map": "map", "laplace": "laplace"}
    for name, inference in strategies.items():
        clf = BayesianCNNClassifier(inference=inference, **network(args))
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        proba = clf.predict_proba(X_test)
        results[name] = dict(
            fit_s=seconds,
            accuracy=float((clf.classes_[proba.argmax(1)] == y_test).mean()),
            nll=negative_log_likelihood(y_test, proba),
            ece=float(expected_calibration_error(y_test, proba, n_bins=N_BINS)),
            mean_confidence=float(proba.max(1).mean()),
            curve=reliability_curve(y_test, proba, n_bins=N_BINS),
        )

    print(f"{'model':<8} {'fit s':>7} {'accuracy':>9} {'NLL':>7} {'ECE':>7} "
          f"{'mean confidence':>16}")
    for name, r in results.items():
        print(f"{name:<8} {r['fit_s']:>7.1f} {r['accuracy']:>9.4f} {r['nll']:>7.4f} "
              f"{r['ece']:>7.4f} {r['mean_confidence']:>16.4f}")

    # %% Reliability and proportion diagrams, as in the study.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 2, figsize=(9, 7), gridspec_kw=dict(height_ratios=[2, 1]))
    for k, (name, r) in enumerate(results.items()):
        c = r["curve"]
        width = 1.0 / N_BINS
        axes[0, k].bar(c.confidence, c.accuracy, width=width, edgecolor="k", alpha=0.7,
                       label="accuracy")
        axes[0, k].plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
        axes[0, k].set(title=f"{name}: ECE {r['ece']:.4f}", xlim=(0, 1), ylim=(0, 1),
                       ylabel="accuracy")
        axes[0, k].legend(loc="upper left")
        axes[1, k].bar(c.confidence, c.count / c.count.sum(), width=width, edgecolor="k")
        axes[1, k].set(xlim=(0, 1), xlabel="confidence", ylabel="share of inputs")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=100)
    plt.close(fig)
    print(f"\nfigure written to {out / 'reliability.png'}")
    for r in results.values():
        del r["curve"]
    return results


if __name__ == "__main__":
    main()
