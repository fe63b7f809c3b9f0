"""How close does each strategy come to the posterior? Fidelity against a NUTS reference.

After Izmailov et al. (2021), "What are Bayesian neural network posteriors
really like?": a long NUTS run is the reference posterior; a second,
independent NUTS run of the same length gives the ceiling (how close two
exact samplers come). Each strategy is scored on held-out inputs by its
predictive's distance to the reference's:

- classification: top-1 agreement and total variation (``skbnn.metrics``'s
  ``predictive_agreement`` and ``total_variation``);
- regression: Wasserstein-2 between the per-input draws of the predictive mean
  (``skbnn.metrics.wasserstein2`` on ``sample_predictions``).

Problems:

- ``regression``: the numpyro study's 1-D regression (40 points of
  ``x sin(5x)`` + N(0, 0.1), 1-10-1 tanh), scored on 200 points in [-1.5, 1.5];
- ``spiral``: the numpyro study's 3-class spiral (300 points, 2-20-20-3 tanh),
  75/25 split;
- ``breast_cancer``: 30-16-1 tanh, standardised inputs, 75/25 split;
- ``concrete``: ``../shared/data/uci`` split 0, 8-50-1 relu, inputs and target
  standardised on the train split.

Rows: MAP, then every Bayesian strategy at its defaults (only the architecture,
``alpha=1`` and ``normalize_y`` set, as for the reference) and at the setting
chosen by ``GridSearchCV`` with ``make_fidelity_scorer(reference)`` on the
training rows (the reference fitted on them, scored on them: nothing of the
test split is seen), plus the second NUTS run. Columns: agreement and TV
(classification) or W2 (regression) against the reference on the test split,
test NLL, fit seconds.

References: NUTS, ``--chains`` x ``--draws`` after ``--warmup`` (the issue's
protocol is 4 x 5,000 after 2,000), R-hat and divergences printed; a run
whose R-hat exceeds 1.01 or that diverged is flagged in the table's notes.

Run: python benchmarks/fidelity.py [--problems regression,spiral,breast_cancer,concrete]
     [--chains 4] [--draws 5000] [--warmup 2000] [--data-dir ../shared/data]
"""

import argparse
import os
import time
import warnings

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.datasets import load_breast_cancer
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.preprocessing import StandardScaler

from _results import format_table, update
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import NUTS, PSGLD, VI, Laplace
from skbnn.metrics import (
    make_fidelity_scorer,
    negative_log_likelihood,
    predictive_agreement,
    total_variation,
    wasserstein2,
)

#: The searched settings of each strategy (searched with the fidelity scorer).
GRIDS = {
    "psgld": (PSGLD(), {"inference__temperature": [1.0, "auto"],
                        "inference__step_size": [None, 3e-4]}),
    "vi": (VI(), {"inference__kl_weight": [1.0, "auto"]}),
    "laplace": (Laplace(), {"inference__subset_of_weights": ["last_layer", "all"],
                            "inference__hessian_structure": ["kron", "full"],
                            "inference__temperature": [1.0]}),
    "ensemble": ("ensemble", {}),
}


def regression_problem(_):
    rng = np.random.RandomState(0)
    x = np.sort(rng.uniform(-1, 1, size=40))[:, None]
    y = x[:, 0] * np.sin(5 * x[:, 0]) + 0.1 * rng.randn(40)
    x_test = np.linspace(-1.5, 1.5, 200)[:, None]
    y_test = x_test[:, 0] * np.sin(5 * x_test[:, 0])
    return x, y, x_test, y_test, dict(hidden_layer_sizes=(10,), activation="tanh")


def spiral_problem(_):
    rng = np.random.RandomState(0)
    n, k = 100, 3
    X, y = np.zeros((n * k, 2)), np.repeat(np.arange(k), n)
    for j in range(k):
        r = np.linspace(0.0, 0.5, n)
        t = np.linspace(j * 4, (j + 1) * 4, n) + rng.randn(n) * 0.2
        X[j * n:(j + 1) * n] = np.c_[r * np.sin(t), r * np.cos(t)]
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    return X_tr, y_tr, X_te, y_te, dict(hidden_layer_sizes=(20, 20), activation="tanh")


def breast_cancer_problem(_):
    X, y = load_breast_cancer(return_X_y=True)
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    scaler = StandardScaler().fit(X_tr)
    return (scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te,
            dict(hidden_layer_sizes=(16,), activation="tanh"))


def concrete_problem(data_dir):
    from skbnn.datasets import load_uci

    X_tr, X_te, y_tr, y_te = load_uci(data_dir, "concrete", split=0)
    scaler = StandardScaler().fit(X_tr)
    return (scaler.transform(X_tr), y_tr, scaler.transform(X_te), y_te,
            dict(hidden_layer_sizes=(50,), activation="relu"))


PROBLEMS = {"regression": regression_problem, "spiral": spiral_problem,
            "breast_cancer": breast_cancer_problem, "concrete": concrete_problem}


def estimator(classifier, arch, inference, random_state=0):
    cls = BayesianMLPClassifier if classifier else BayesianMLPRegressor
    extra = {} if classifier else {"normalize_y": True}
    return cls(**arch, alpha=1.0, inference=inference, random_state=random_state, **extra)


def fit(est, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        est.fit(X, y)
    return est, time.perf_counter() - start


def scores(est, reference, X, y, classifier):
    if classifier:
        p, q = est.predict_proba(X), reference.predict_proba(X)
        return {"agree": predictive_agreement(p, q), "TV": total_variation(p, q),
                "NLL": negative_log_likelihood(y, p, labels=est.classes_)}
    mean, std = est.predict(X, return_std=True)
    nll = float(np.mean(0.5 * np.log(2 * np.pi * std**2) + 0.5 * ((y - mean) / std) ** 2))
    return {"W2": wasserstein2(est.sample_predictions(X), reference.sample_predictions(X)),
            "NLL": nll}


def run_problem(name, args):
    X, y, X_te, y_te, arch = PROBLEMS[name](args.data_dir)
    classifier = name != "regression" and name != "concrete"
    nuts = NUTS(n_chains=args.chains, n_warmup=args.warmup, n_draws=args.draws,
                max_cost=args.max_cost)
    reference, ref_s = fit(estimator(classifier, arch, nuts, random_state=args.seed), X, y)
    ceiling, ceil_s = fit(estimator(classifier, arch, clone(nuts), random_state=args.seed + 1),
                          X, y)
    notes = []
    for label, run in (("reference", reference), ("second NUTS run", ceiling)):
        notes.append(f"{name} {label}: max R-hat {run.max_rhat_:.4f}, min ESS "
                     f"{run.min_ess_:.0f}, {run.n_divergences_} divergences"
                     + ("" if run.max_rhat_ <= 1.01 and run.n_divergences_ == 0
                        else " (NOT converged: R-hat > 1.01 or divergences)"))
    rows = [("nuts (second run)", ceiling, ceil_s, "")]
    rows.append(("map", *fit(estimator(classifier, arch, "map"), X, y), ""))
    scorer = make_fidelity_scorer(reference)
    every_row = np.arange(len(X))
    for strategy, (inference, grid) in GRIDS.items():
        default = estimator(classifier, arch, strategy)
        rows.append((f"{strategy} (defaults)", *fit(default, X, y), ""))
        if not grid:
            continue
        search = GridSearchCV(estimator(classifier, arch, inference), grid, scoring=scorer,
                              cv=[(every_row, every_row)], refit=False)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            search.fit(X, y)
        chosen = search.best_params_
        best = clone(estimator(classifier, arch, inference)).set_params(**chosen)
        text = ", ".join(f"{k.split('__')[-1]}={v}" for k, v in chosen.items())
        rows.append((f"{strategy} (searched)", *fit(best, X, y), text))
    out = []
    for label, est, seconds, setting in rows:
        s = scores(est, reference, X_te, y_te, classifier)
        out.append({"problem": name, "row": label, "fit s": seconds, "setting": setting, **s})
    out.append({"problem": name, "row": "nuts (reference)", "fit s": ref_s, "setting": "",
                **scores(reference, reference, X_te, y_te, classifier)})
    return out, notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--chains", type=int, default=4)
    parser.add_argument("--draws", type=int, default=5000)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-cost", type=float, default=1e13,
                        help="NUTS's max_cost: the reference runs are long on purpose")
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--table", default="fidelity",
                        help="store the table under this name in benchmarks/results/fidelity.json")
    args = parser.parse_args(argv)
    results, notes = [], []
    for name in args.problems.split(","):
        rows, problem_notes = run_problem(name, args)
        results.extend(rows)
        notes.extend(problem_notes)
        print(f"done: {name}", flush=True)
    columns = ["problem", "row", "agree", "TV", "W2", "NLL", "fit s", "setting"]
    cells = [[r["problem"], r["row"]] + [
        f"{r[c]:.4f}" if c in r else "" for c in ("agree", "TV", "W2", "NLL")]
        + [f"{r['fit s']:.2f}", r["setting"]] for r in results]
    table = {"title": (f"Fidelity to NUTS ({args.chains} chains x {args.draws} draws after "
                       f"{args.warmup} warmup) on the test split; searched rows chosen with "
                       "make_fidelity_scorer on the training rows"),
             "columns": columns, "rows": cells, "notes": notes}
    print()
    print(format_table(table))
    path = update("fidelity", tables={args.table: table},
                  settings={args.table: vars(args)}, raw={args.table: results})
    print(f"results written to {path} (table {args.table!r})")


if __name__ == "__main__":
    main()
