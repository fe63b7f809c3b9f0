"""Hard and soft voting over the pSGLD draws of a Bayesian CNN.

The jax-sgmc study trains a CNN on CIFAR-10 with RMSprop-preconditioned SGLD
and treats the kept draws as an ensemble: *hard voting* (the class most
members predict), *soft voting* (the argmax of their mean probabilities), the
accuracy over rising *certainty* thresholds (certainty = the share of members
that agree with the hard vote), and box plots of the members' probabilities
for a few images. skbnn does it with ``BayesianCNNClassifier`` and
``SampleEnsemble``.

Run ``python examples/plot_psgld_cnn_voting.py`` (Fashion-MNIST from
``--data-dir``; CIFAR-10 instead with ``--cifar-dir`` pointing at the folder of
its python batches, ``data_batch_1`` ... ``test_batch``), or ``--quick``
(scikit-learn's 8x8 digits).
"""

# %%
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.frozen import FrozenEstimator
from sklearn.model_selection import train_test_split

from skbnn import BayesianCNNClassifier, SampleEnsemble
from skbnn.datasets import load_cifar10, load_mnist
from skbnn.inference import PSGLD
from skbnn.plot import plot_accuracy_threshold, plot_member_probabilities

#: The study's certainty thresholds.
THRESHOLDS = np.linspace(0.5, 1.0, 6)


def load(args):
    """(X_train, y_train, X_test, y_test, class names) as images (n, h, w[, c])."""
    if args.quick:
        X, y = load_digits(return_X_y=True)
        X = X.reshape(-1, 8, 8) / 16.0
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.25, random_state=0, stratify=y)
        return X_train, y_train, X_test, y_test, [str(k) for k in range(10)]
    if args.cifar_dir:
        X_train, y_train = load_cifar10(args.cifar_dir, split="train")
        X_test, y_test = load_cifar10(args.cifar_dir, split="test")
        names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                 "ship", "truck"]
        return X_train, y_train, X_test, y_test, names
    X_train, y_train = load_mnist(args.data_dir, kind="fashion-mnist", split="train",
                                  flatten=False)
    X_test, y_test = load_mnist(args.data_dir, kind="fashion-mnist", split="test",
                                flatten=False)
    names = ["T-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
             "sneaker", "bag", "boot"]
    return X_train, y_train, X_test, y_test, names


def model(args):
    if args.quick:
        return BayesianCNNClassifier(
            conv_channels=(8, 16), kernel_size=3, hidden_layer_sizes=(32,), batch_size=32,
            max_iter=60, learning_rate_init=0.003, alpha=0.01, random_state=0,
            inference=PSGLD(n_chains=2, n_draws=10, temperature=0.1))
    return BayesianCNNClassifier(
        conv_channels=(32, 64), kernel_size=5, hidden_layer_sizes=(128,), batch_size=128,
        max_iter=args.epochs, alpha=0.01, random_state=0,
        inference=PSGLD(n_chains=1, n_draws=20, n_cycles=4, temperature=0.1))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--cifar-dir", default=None,
                        help="folder of CIFAR-10's python batches (instead of Fashion-MNIST)")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--quick", action="store_true", help="digits instead of Fashion-MNIST")
    parser.add_argument("--out", default="example_output/psgld_cnn_voting")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    X_train, y_train, X_test, y_test, names = load(args)

    # %% One pSGLD fit; its draws are the ensemble's members.
    cnn = model(args)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cnn.fit(X_train, y_train)
    seconds = time.perf_counter() - t0
    # FrozenEstimator: vote over the draws of the model just fitted, no refit.
    hard = SampleEnsemble(FrozenEstimator(cnn), voting="hard").fit(X_train, y_train)
    soft = SampleEnsemble(FrozenEstimator(cnn), voting="soft").fit(X_train, y_train)

    # %% Hard and soft vote accuracy, and accuracy over certainty thresholds.
    results = dict(fit_s=seconds,
                   n_members=int(cnn.sample_predictions(X_test[:1]).shape[0]),
                   hard_accuracy=float(hard.score(X_test, y_test)),
                   soft_accuracy=float(soft.score(X_test, y_test)))
    certainty = hard.certainty(X_test)
    correct = hard.predict(X_test) == y_test
    results["threshold_accuracy"] = np.array(
        [correct[certainty >= t].mean() if (certainty >= t).any() else np.nan
         for t in THRESHOLDS])
    results["threshold_share"] = np.array([(certainty >= t).mean() for t in THRESHOLDS])
    data = "digits" if args.quick else ("CIFAR-10" if args.cifar_dir else "Fashion-MNIST")
    print(f"pSGLD CNN on {data}: {results['n_members']} members, fit in {seconds:.0f} s")
    print(f"hard-voting accuracy: {results['hard_accuracy']:.4f}")
    print(f"soft-voting accuracy: {results['soft_accuracy']:.4f}")
    print(f"{'certainty >=':>12} {'accuracy':>9} {'share kept':>11}")
    for t, a, s in zip(THRESHOLDS, results["threshold_accuracy"], results["threshold_share"]):
        print(f"{t:>12.1f} {a:>9.4f} {s:>11.3f}")

    # %% Box plots of the members' probabilities for five test images.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    draws = cnn.sample_predictions(X_test)  # (n_members, n_test, n_classes)
    picks = np.random.default_rng(0).choice(len(X_test), 5, replace=False)
    fig, axes = plt.subplots(2, 5, figsize=(16, 6), gridspec_kw=dict(height_ratios=[1, 2]))
    for k, i in enumerate(picks):
        image = X_test[i]
        axes[0, k].imshow(image if image.ndim == 3 and image.shape[-1] == 3 else
                          np.squeeze(image), cmap="gray")
        axes[0, k].set_title(f"true: {names[y_test[i]]}, certainty {certainty[i]:.2f}")
        axes[0, k].set_axis_off()
        plot_member_probabilities(draws[:, i, :], classes=names, ax=axes[1, k])
        axes[1, k].tick_params(axis="x", labelrotation=90)
        axes[1, k].set_title("")
    fig.tight_layout()
    fig.savefig(out / "member_probabilities.png", dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    plot_accuracy_threshold(y_test, hard.predict(X_test), certainty, thresholds=THRESHOLDS,
                            ax=ax)
    ax.set(title=f"pSGLD CNN on {data}: hard vote")
    fig.tight_layout()
    fig.savefig(out / "accuracy_over_certainty.png", dpi=100)
    plt.close(fig)
    print(f"\nfigures written to {out}")
    return results


if __name__ == "__main__":
    main()
