"""Variational inference on MNIST: accuracy, and the digits whose posterior draws disagree.

The Pyro study ("Bayesian neural networks in Pyro", on MNIST) fits a
mean-field Gaussian posterior with the local reparameterisation trick, reports
the test accuracy, and shows a gallery of test digits on which 30 networks
drawn from the posterior do not all predict the same class, each titled with
the share of draws voting for each class. skbnn does the same with
``inference="vi"`` and ``sample_predictions``.

Run ``python examples/plot_vi_mnist_disagreement.py`` (MNIST from
``--data-dir``) or ``--quick`` (scikit-learn's 8x8 digits).
"""

# %%
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split

from skbnn import BayesianMLPClassifier
from skbnn.datasets import load_mnist
from skbnn.inference import VI
from skbnn.metrics import expected_calibration_error

N_DRAWS = 30  # the study votes over 30 draws


def load(args):
    """(X_train, y_train, X_test, y_test, image side) on the chosen data."""
    if args.quick:
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
        return X_train, y_train, X_test, y_test, 8
    X_train, y_train = load_mnist(args.data_dir, split="train")
    X_test, y_test = load_mnist(args.data_dir, split="test")
    return X_train, y_train, X_test, y_test, 28


def model(args):
    """The study's network has three hidden layers of 1,024 units; two of 400 train on a laptop."""
    if args.quick:
        return BayesianMLPClassifier((64,), batch_size=32, max_iter=100, random_state=0,
                                     inference=VI(n_predictive_draws=N_DRAWS))
    return BayesianMLPClassifier((400, 400), batch_size=128, max_iter=20, random_state=0,
                                 learning_rate_init=0.002,
                                 inference=VI(n_predictive_draws=N_DRAWS))


def vote_shares(draw_proba):
    """Per input, the share of draws whose top class is each class: (n_samples, n_classes)."""
    votes = draw_proba.argmax(axis=2)  # (n_draws, n_samples)
    n_classes = draw_proba.shape[2]
    return (votes[..., None] == np.arange(n_classes)).mean(axis=0)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--quick", action="store_true", help="digits instead of MNIST")
    parser.add_argument("--out", default="example_output/vi_mnist_disagreement")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    # %% Fit the mean-field posterior.
    X_train, y_train, X_test, y_test, side = load(args)
    clf = model(args)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X_train, y_train)
    seconds = time.perf_counter() - t0

    # %% Accuracy, and the test digits on which the 30 draws disagree.
    proba = clf.predict_proba(X_test)
    draws = clf.sample_predictions(X_test)  # (30, n_test, 10)
    shares = vote_shares(draws)
    disagree = np.flatnonzero(shares.max(axis=1) < 1.0)
    single_draw_accuracy = (draws.argmax(2) == y_test).mean(axis=1)
    correct = proba.argmax(1) == y_test
    results = dict(
        fit_s=seconds,
        accuracy=float(correct.mean()),
        single_draw_accuracy=float(single_draw_accuracy.mean()),
        ece=float(expected_calibration_error(y_test, proba)),
        n_draws=int(draws.shape[0]),
        disagree_share=float(disagree.size / len(y_test)),
        accuracy_agree=float(correct[shares.max(axis=1) == 1.0].mean()),
        accuracy_disagree=float(correct[disagree].mean()) if disagree.size else float("nan"),
    )
    print(f"VI fit in {seconds:.1f} s")
    print(f"test accuracy (posterior predictive): {results['accuracy']:.4f}")
    print(f"test accuracy of one draw (mean):     {results['single_draw_accuracy']:.4f}")
    print(f"ECE:                                   {results['ece']:.4f}")
    print(f"digits on which the {N_DRAWS} draws disagree: {disagree.size} "
          f"({100 * results['disagree_share']:.1f}%)")
    print(f"accuracy where all draws agree: {results['accuracy_agree']:.4f}, "
          f"where they disagree: {results['accuracy_disagree']:.4f}")

    # %% The gallery: up to 64 disagreeing digits, titled with the vote shares.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = disagree[:64]
    fig, axes = plt.subplots(8, 8, figsize=(8, 16))
    for ax in axes.ravel():
        ax.set_axis_off()
    for ax, i in zip(axes.ravel(), shown):
        ax.imshow(X_test[i].reshape(side, side), cmap="gray")
        title = "\n".join(f"{clf.classes_[k]}: {s:.2f}" for k, s in enumerate(shares[i]) if s > 0)
        ax.set_title(title, fontsize=7)
    fig.suptitle(f"Test digits on which {N_DRAWS} posterior draws disagree")
    fig.tight_layout()
    fig.savefig(out / "disagreement_gallery.png", dpi=100)
    plt.close(fig)
    print(f"\nfigure written to {out / 'disagreement_gallery.png'}")
    return results


if __name__ == "__main__":
    main()
