"""Choosing the prior by calibration, and voting with the posterior draws, on digits.

A ``GridSearchCV`` over the prior precision ``alpha`` of a pSGLD network on
scikit-learn's 8x8 digits, scored both by accuracy and by the expected
calibration error (skbnn's ``neg_expected_calibration_error`` scorer) and
refitted on the ECE. The chosen prior's posterior draws then vote as a
``SampleEnsemble``: hard and soft voting, and accuracy on the inputs whose
certainty (the share of draws agreeing with the vote) reaches 0.5 ... 1.0,
as the jax-sgmc CIFAR-10 study reports. Three figures are written: a
reliability diagram, accuracy over the certainty threshold with the share
retained, and box plots of the draws' class probabilities for five inputs.

Run ``python examples/plot_digits_calibration.py`` (``--quick``: a smaller grid
and fewer epochs, as the tests run it).
"""

# %%
import argparse
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split

from skbnn import BayesianMLPClassifier, SampleEnsemble
from skbnn.inference import PSGLD
from skbnn.metrics import expected_calibration_error, get_scorer

CERTAINTY_THRESHOLDS = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller grid, fewer epochs")
    parser.add_argument("--out", default="example_output/digits_calibration")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
    net = BayesianMLPClassifier(
        hidden_layer_sizes=(32,), inference=PSGLD(n_draws=20), batch_size=64,
        learning_rate_init=0.003, max_iter=30 if args.quick else 100, random_state=0)
    alphas = [1e-3, 1.0, 100.0] if args.quick else [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0]

    # %% Grid search scored by accuracy and ECE, refitted on the ECE.
    search = GridSearchCV(
        net, {"alpha": alphas},
        scoring={"accuracy": "accuracy",
                 "neg_ece": get_scorer("neg_expected_calibration_error")},
        refit="neg_ece", cv=StratifiedKFold(3, shuffle=True, random_state=0))
    search.fit(X_train, y_train)
    cv = search.cv_results_
    print(f"{'alpha':>8} {'mean_test_accuracy':>19} {'mean_test_neg_ece':>18} "
          f"{'rank_accuracy':>14} {'rank_neg_ece':>13}")
    for k, alpha in enumerate(cv["param_alpha"]):
        print(f"{alpha:>8g} {cv['mean_test_accuracy'][k]:>19.4f} "
              f"{cv['mean_test_neg_ece'][k]:>18.4f} {cv['rank_test_accuracy'][k]:>14d} "
              f"{cv['rank_test_neg_ece'][k]:>13d}")
    print(f"best_params_ (refit on ECE): {search.best_params_}")

    # %% The chosen posterior's draws as a voting ensemble.
    hard = SampleEnsemble(search.best_estimator_, voting="hard").fit(X_train, y_train)
    soft = SampleEnsemble(search.best_estimator_, voting="soft").fit(X_train, y_train)
    proba = soft.predict_proba(X_test)
    certainty = hard.certainty(X_test)
    curve = hard.accuracy_certainty_curve(X_test, y_test, thresholds=CERTAINTY_THRESHOLDS)
    results = dict(
        search=search,
        hard_accuracy=hard.score(X_test, y_test),
        soft_accuracy=soft.score(X_test, y_test),
        test_ece=expected_calibration_error(y_test, proba),
        certainty_curve=curve,
    )
    print(f"\ntest: hard-voting accuracy {results['hard_accuracy']:.4f}, soft-voting "
          f"accuracy {results['soft_accuracy']:.4f}, ECE {results['test_ece']:.4f} "
          f"({hard.estimator_.posterior_.n_predictive_draws} members)")
    print("certainty >= | accuracy | share retained")
    for t, a, r in zip(*curve):
        print(f"{t:>12.1f} | {a:>8.4f} | {r:>14.3f}")

    # %% Figures.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from skbnn.plot import (
        plot_accuracy_threshold,
        plot_member_probabilities,
        plot_reliability_diagram,
    )

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5))
    plot_reliability_diagram(y_test, proba, n_bins=10, ax=left)
    plot_accuracy_threshold(y_test, hard.predict(X_test), certainty, ax=right)
    right.set_xlabel("certainty (share of draws agreeing with the vote)")
    fig.tight_layout()
    fig.savefig(out / "reliability_and_certainty.png", dpi=100)
    plt.close(fig)

    # five inputs: the least certain ones, where the draws disagree most
    rows = np.argsort(certainty, kind="stable")[:5]
    fig, axes = plt.subplots(1, 5, figsize=(14, 3.5), sharey=True)
    members = hard.estimator_.sample_predictions(X_test[rows])
    for ax, i, row in zip(axes, range(5), rows):
        plot_member_probabilities(members[:, i], classes=hard.classes_, ax=ax)
        ax.set_title(f"input {row}: true {y_test[row]}, vote {hard.predict(X_test[[row]])[0]}")
    fig.tight_layout()
    fig.savefig(out / "member_probabilities.png", dpi=100)
    plt.close(fig)
    print(f"\nfigures written to {out}")
    return results


if __name__ == "__main__":
    main()
