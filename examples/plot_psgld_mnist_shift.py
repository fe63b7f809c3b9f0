"""pSGLD on MNIST, shown Fashion-MNIST: does the model know what it does not know?

The jax-bayes study (probml's ``bnn_mnist_sgld_jaxbayes``) trains the
LeNet-300-100 MLP on MNIST with SGD and with RMSprop-preconditioned SGLD and
plots, for a rising confidence threshold, the accuracy on the inputs whose top
probability clears it and the share of inputs retained, on MNIST and on
Fashion-MNIST (clothes the model has never seen). A model that knows what it
does not know keeps most MNIST digits and lets few clothes through.

Run ``python examples/plot_psgld_mnist_shift.py`` (MNIST from ``--data-dir``) or
``--quick`` (scikit-learn's 8x8 digits, with pixel-shuffled digits as the
unfamiliar inputs).
"""

# %%
import argparse
import time
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skbnn import BayesianMLPClassifier
from skbnn.datasets import load_mnist
from skbnn.inference import PSGLD
from skbnn.metrics import expected_calibration_error

THRESHOLDS = np.round(np.arange(0.0, 1.0, 0.05), 2)


def load(args):
    """(X_train, y_train, X_test, y_test, X_shift) on the chosen data."""
    if args.quick:
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
        # Unfamiliar inputs: test digits with their pixels shuffled (same
        # pixel statistics, no digit shape).
        rng = np.random.default_rng(0)
        X_shift = np.stack([rng.permutation(row) for row in X_test])
        return X_train, y_train, X_test, y_test, X_shift
    X_train, y_train = load_mnist(args.data_dir, split="train")
    X_test, y_test = load_mnist(args.data_dir, split="test")
    X_shift, _ = load_mnist(args.data_dir, kind="fashion-mnist", split="test")
    return X_train, y_train, X_test, y_test, X_shift


def models(args):
    """The two models of the study: the MAP network (SGD's answer) and pSGLD."""
    if args.quick:
        common = dict(hidden_layer_sizes=(64,), batch_size=32, max_iter=100, alpha=0.01)
        draws = dict(n_chains=2, n_draws=10)
    else:
        common = dict(hidden_layer_sizes=(300, 100), batch_size=128, max_iter=20, alpha=0.01)
        draws = dict(n_chains=4, n_draws=20)
    return {
        "map": BayesianMLPClassifier(inference="map", random_state=0, **common),
        "psgld": BayesianMLPClassifier(
            inference=PSGLD(temperature=0.1, burn_in=0.75, **draws), random_state=0, **common),
    }


def accuracy_over_thresholds(proba, y=None):
    """Per threshold: share of inputs whose top probability clears it, and their accuracy."""
    top = proba.max(axis=1)
    share = np.array([(top >= t).mean() for t in THRESHOLDS])
    if y is None:
        return share, None
    correct = proba.argmax(axis=1) == y
    accuracy = np.array([correct[top >= t].mean() if (top >= t).any() else np.nan
                         for t in THRESHOLDS])
    return share, accuracy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--quick", action="store_true", help="digits instead of MNIST")
    parser.add_argument("--out", default="example_output/psgld_mnist_shift")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # %% Fit the MAP network and pSGLD on the same data.
    X_train, y_train, X_test, y_test, X_shift = load(args)
    results = {}
    for name, clf in models(args).items():
        t0 = time.perf_counter()
        clf.fit(X_train, y_train)
        seconds = time.perf_counter() - t0
        proba = clf.predict_proba(X_test)
        proba_shift = clf.predict_proba(X_shift)
        share, accuracy = accuracy_over_thresholds(proba, y_test)
        share_shift, _ = accuracy_over_thresholds(proba_shift)
        results[name] = dict(
            fit_s=seconds,
            accuracy=float((proba.argmax(1) == y_test).mean()),
            ece=float(expected_calibration_error(y_test, proba)),
            shift_share_06=float((proba_shift.max(1) >= 0.6).mean()),
            share=share, thresholded_accuracy=accuracy, shift_share=share_shift,
        )

    # %% The figures the study reports.
    shifted = "pixel-shuffled digits" if args.quick else "Fashion-MNIST"
    print(f"{'model':<6} {'fit s':>7} {'accuracy':>9} {'ECE':>7} "
          f"{shifted + ' share >= 0.6':>30}")
    for name, r in results.items():
        print(f"{name:<6} {r['fit_s']:>7.1f} {r['accuracy']:>9.4f} {r['ece']:>7.4f} "
              f"{r['shift_share_06']:>30.3f}")
    print("\nthreshold | " + " | ".join(
        f"{n} acc / kept / {shifted.split()[0]} kept" for n in results))
    for k, t in enumerate(THRESHOLDS):
        if t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
            cells = [f"{r['thresholded_accuracy'][k]:.4f} / {r['share'][k]:.3f} / "
                     f"{r['shift_share'][k]:.3f}" for r in results.values()]
            print(f"{t:>9.2f} | " + " | ".join(cells))

    # %% Accuracy and share retained over the threshold, as in the study.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for name, r in results.items():
        left.plot(THRESHOLDS, r["thresholded_accuracy"], label=f"{name} accuracy")
        left.plot(THRESHOLDS, r["share"], "--", label=f"{name} share retained")
        right.plot(THRESHOLDS, r["shift_share"], "--", label=f"{name} share retained")
    left.set(title="MNIST test" if not args.quick else "digits test",
             xlabel="confidence threshold", ylim=(0, 1.02))
    right.set(title=shifted, xlabel="confidence threshold")
    left.legend(loc="lower left")
    right.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_threshold.png", dpi=100)
    plt.close(fig)
    print(f"\nfigure written to {out / 'accuracy_vs_threshold.png'}")
    return results


if __name__ == "__main__":
    main()
