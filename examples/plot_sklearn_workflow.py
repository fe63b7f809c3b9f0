"""A scikit-learn workflow: Pipeline, GridSearchCV scored by accuracy and ECE, and calibration.

skbnn's estimators are ordinary scikit-learn estimators. This example puts
``BayesianMLPClassifier`` in a ``Pipeline`` behind a scaler, searches the prior
precision ``alpha`` and the pSGLD temperature with ``GridSearchCV`` scored by
accuracy *and* expected calibration error (ECE), refits the most calibrated
setting among those within one point of the best accuracy, and sets the result
side by side with the usual scikit-learn answer to over-confidence: an
``MLPClassifier`` wrapped in ``CalibratedClassifierCV``.

Run ``python examples/plot_sklearn_workflow.py`` (10,000 MNIST training
images from ``--data-dir``) or ``--quick`` (scikit-learn's 8x8 digits).
"""

# %%
import argparse
import time
import warnings
from pathlib import Path

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, StratifiedKFold, train_test_split
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler

from skbnn import BayesianMLPClassifier
from skbnn.datasets import load_mnist
from skbnn.inference import PSGLD
from skbnn.metrics import (
    expected_calibration_error,
    get_scorer,
    negative_log_likelihood,
    reliability_curve,
)


def load(args):
    """(X_train, y_train, X_test, y_test) on the chosen data, raw pixel values."""
    if args.quick:
        X, y = load_digits(return_X_y=True)
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, random_state=0, stratify=y)
        return X_train, y_train, X_test, y_test
    X, y = load_mnist(args.data_dir, split="train")
    X_test, y_test = load_mnist(args.data_dir, split="test")
    rng = np.random.default_rng(0)
    keep = rng.choice(len(X), 10_000, replace=False)
    return X[keep], y[keep], X_test, y_test


def settings(args):
    """Network, training and grid sizes: small for --quick, the real thing otherwise."""
    if args.quick:
        return dict(hidden=(64,), batch_size=32, max_iter=100, n_chains=2, n_draws=10,
                    grid={"bayesianmlpclassifier__alpha": [1e-3, 1e-1],
                          "bayesianmlpclassifier__inference__temperature": [0.1, 1.0]})
    return dict(hidden=(300, 100), batch_size=128, max_iter=20, n_chains=4, n_draws=20,
                grid={"bayesianmlpclassifier__alpha": [1e-3, 1e-2, 1e-1],
                      "bayesianmlpclassifier__inference__temperature": [0.1, 0.3, 1.0]})


def most_calibrated_within_one_point(cv_results):
    """GridSearchCV ``refit`` rule: lowest ECE among settings within 0.01 of the best accuracy."""
    accuracy = np.asarray(cv_results["mean_test_accuracy"])
    neg_ece = np.asarray(cv_results["mean_test_ece"])
    good = accuracy >= accuracy.max() - 0.01
    return int(np.flatnonzero(good)[np.argmax(neg_ece[good])])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--quick", action="store_true", help="digits instead of MNIST")
    parser.add_argument("--out", default="example_output/sklearn_workflow")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    s = settings(args)
    X_train, y_train, X_test, y_test = load(args)

    # %% A Pipeline searched by GridSearchCV over alpha and a strategy parameter.
    # ``inference`` is a strategy object, so its parameters are searchable as
    # ``<step>__inference__<name>``, like any nested scikit-learn estimator.
    pipe = make_pipeline(
        MinMaxScaler(),
        BayesianMLPClassifier(
            hidden_layer_sizes=s["hidden"], batch_size=s["batch_size"], max_iter=s["max_iter"],
            random_state=0, inference=PSGLD(n_chains=s["n_chains"], n_draws=s["n_draws"])),
    )
    scoring = {"accuracy": "accuracy", "ece": get_scorer("neg_expected_calibration_error")}
    search = GridSearchCV(pipe, s["grid"], scoring=scoring,
                          refit=most_calibrated_within_one_point,
                          cv=StratifiedKFold(3, shuffle=True, random_state=0))
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X_train, y_train)
    search_s = time.perf_counter() - t0

    res = search.cv_results_
    print(f"GridSearchCV: {len(res['params'])} settings x 3 folds in {search_s:.0f} s")
    print(f"{'alpha':>8} {'temperature':>12} {'accuracy':>9} {'ECE':>7}")
    for k, params in enumerate(res["params"]):
        mark = "  <- refit" if k == search.best_index_ else ""
        print(f"{params['bayesianmlpclassifier__alpha']:>8g} "
              f"{params['bayesianmlpclassifier__inference__temperature']:>12g} "
              f"{res['mean_test_accuracy'][k]:>9.4f} {-res['mean_test_ece'][k]:>7.4f}{mark}")

    # %% Side by side on the held-out test set with scikit-learn's own answer.
    mlp = make_pipeline(MinMaxScaler(), MLPClassifier(
        hidden_layer_sizes=s["hidden"], batch_size=s["batch_size"], max_iter=s["max_iter"],
        random_state=0))
    candidates = {
        "MLPClassifier": mlp,
        "CalibratedClassifierCV(MLP)": CalibratedClassifierCV(mlp, method="isotonic", cv=3),
    }
    results = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for name, model in candidates.items():
            t0 = time.perf_counter()
            model.fit(X_train, y_train)
            results[name] = dict(model=model, fit_s=time.perf_counter() - t0)
    results["skbnn psgld (searched)"] = dict(
        model=search.best_estimator_, fit_s=search.refit_time_)

    print(f"\n{'model':<28} {'fit s':>7} {'accuracy':>9} {'NLL':>7} {'ECE':>7}")
    for name, r in results.items():
        proba = r["model"].predict_proba(X_test)
        r.update(proba=proba,
                 accuracy=float((proba.argmax(1) == y_test).mean()),
                 nll=negative_log_likelihood(y_test, proba),
                 ece=float(expected_calibration_error(y_test, proba)))
        print(f"{name:<28} {r['fit_s']:>7.1f} {r['accuracy']:>9.4f} {r['nll']:>7.4f} "
              f"{r['ece']:>7.4f}")

    # %% Reliability diagrams.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 4), sharey=True)
    for ax, (name, r) in zip(axes, results.items()):
        curve = reliability_curve(y_test, r["proba"], n_bins=10)
        ax.plot([0, 1], [0, 1], ":", color="grey")
        ax.plot(curve.confidence, curve.accuracy, "o-")
        ax.set(title=f"{name}\nECE {r['ece']:.3f}", xlabel="confidence", xlim=(0, 1),
               ylim=(0, 1.02))
    axes[0].set_ylabel("accuracy")
    fig.tight_layout()
    fig.savefig(out / "reliability.png", dpi=100)
    plt.close(fig)
    print(f"\nfigure written to {out / 'reliability.png'}")
    return dict(search=dict(best_index=int(search.best_index_),
                            accuracy=np.asarray(res["mean_test_accuracy"]),
                            ece=-np.asarray(res["mean_test_ece"])),
                **{name: {k: v for k, v in r.items() if k not in ("model", "proba")}
                   for name, r in results.items()})


if __name__ == "__main__":
    main()
