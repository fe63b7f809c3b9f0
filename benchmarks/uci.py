"""Small data at defaults: the UCI regression benchmark and four classification sets.

Regression (Hernandez-Lobato & Adams 2015; the protocol of Lakshminarayanan et
al. 2017, Table 1): each of the six UCI sets in ``--data-dir/uci`` with its
standard train/test splits (20; 5 for protein), inputs standardised on the
training split, ``BayesianMLPRegressor`` with one hidden layer of 50 units (100
for protein) and every other setting at its default; RMSE and Gaussian NLL of
the predictive ``predict(X, return_std=True)`` on the test split, in the
target's original units, as mean and standard error over the splits, and the
median fit time. Rows: every strategy at its defaults (NUTS refuses these sizes
by its cost guard, so it has no row), each strategy at the settings given in
``BEST`` (stated in the table), and the published rows of PBP, MC-dropout and
deep ensembles (their Table 1, figures as printed there: mean and standard
error, where MC-dropout's and the ensembles' "±" is the standard deviation
over splits, shown here divided by sqrt(20) like the others).

Classification (``--tables classification``): scikit-learn's breast_cancer,
wine, digits and iris, stratified 5-fold, inputs standardised on the training
folds: default ``BayesianMLPClassifier`` (and each strategy at its defaults)
against ``MLPClassifier()`` and ``CalibratedClassifierCV(MLPClassifier())``;
accuracy, NLL and ECE (15 bins) as mean and standard error over the folds.

Defaults were chosen on validation data only: 20% of the training rows of
UCI splits 0-5 (never their test rows), and cross-validation on other splits
of the classification sets (see docs/user_guide/defaults.rst).

Run: python benchmarks/uci.py [--data-dir ../shared/data] [--sets NAME,...]
     [--splits N] [--rows default,best] [--tables uci,classification]
     [--results benchmarks/results/uci.json]
"""

import argparse
import json
import os
import time
import warnings

import numpy as np
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from _results import format_table, machine
from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.datasets import load_uci
from skbnn.inference import Laplace
from skbnn.metrics import expected_calibration_error, gaussian_nll

SETS = ["bostonHousing", "concrete", "energy", "kin8nm", "protein-tertiary-structure",
        "wine-quality-red"]
STRATEGIES = ["map", "psgld", "vi", "laplace", "ensemble"]

#: Lakshminarayanan et al. (2017), Table 1: (mean, standard error) of RMSE and NLL.
#: PBP's "±" is printed as a standard error; MC-dropout's and the ensembles' as
#: the standard deviation over splits (Gal & Ghahramani's standard errors times
#: sqrt(20)): divided by sqrt(n_splits) here.
PUBLISHED = {
    "PBP": {
        "bostonHousing": ((3.01, 0.18), (2.57, 0.09)),
        "concrete": ((5.67, 0.09), (3.16, 0.02)),
        "energy": ((1.80, 0.05), (2.04, 0.02)),
        "kin8nm": ((0.10, 0.00), (-0.90, 0.01)),
        "protein-tertiary-structure": ((4.73, 0.01), (2.97, 0.00)),
        "wine-quality-red": ((0.64, 0.01), (0.97, 0.01)),
    },
    "MC-dropout": {
        "bostonHousing": ((2.97, 0.85), (2.46, 0.25)),
        "concrete": ((5.23, 0.53), (3.04, 0.09)),
        "energy": ((1.66, 0.19), (1.99, 0.09)),
        "kin8nm": ((0.10, 0.00), (-0.95, 0.03)),
        "protein-tertiary-structure": ((4.36, 0.04), (2.89, 0.01)),
        "wine-quality-red": ((0.62, 0.04), (0.93, 0.06)),
    },
    "Deep Ensembles": {
        "bostonHousing": ((3.28, 1.00), (2.41, 0.25)),
        "concrete": ((6.03, 0.58), (3.06, 0.18)),
        "energy": ((2.09, 0.29), (1.38, 0.22)),
        "kin8nm": ((0.09, 0.00), (-1.20, 0.02)),
        "protein-tertiary-structure": ((4.71, 0.06), (2.83, 0.02)),
        "wine-quality-red": ((0.64, 0.04), (0.94, 0.12)),
    },
}
#: Which published rows print standard deviations (divided by sqrt(splits) here).
STD_PRINTED = {"MC-dropout", "Deep Ensembles"}

#: Each strategy at other settings: a longer budget for the ones whose
#: validation NLL still fell with more epochs (UCI splits 0-5, 20% of the
#: training rows held back), and the full GGN for Laplace, whose networks here
#: have at most 1,101 weights.
BEST = {
    "psgld": (dict(max_iter=1000), "max_iter=1000"),
    "vi": (dict(max_iter=1000), "max_iter=1000"),
    "laplace": (dict(inference=Laplace(subset_of_weights="all", hessian_structure="full")),
                "Laplace(subset_of_weights='all', hessian_structure='full')"),
}


def _n_splits(data_dir, name):
    with open(os.path.join(data_dir, "uci", name, "n_splits.txt")) as f:
        return int(f.read().split()[0])


def uci_rows(args, save=None):
    rows = {}
    for name in args.sets:
        hidden = (100,) if name.startswith("protein") else (50,)
        n_splits = min(_n_splits(args.data_dir, name), args.splits or 10**9)
        configs = {}
        if "default" in args.rows:
            for strategy in args.strategies:
                configs[f"{strategy} (defaults)"] = dict(inference=strategy)
        if "best" in args.rows:
            for strategy, (settings, text) in BEST.items():
                if strategy not in args.strategies:
                    continue
                configs[f"{strategy}: {text}"] = {"inference": strategy, **settings}
        for label, settings in configs.items():
            results = []
            for split in range(n_splits):
                X_train, X_test, y_train, y_test = load_uci(args.data_dir, name, split=split)
                scaler = StandardScaler().fit(X_train)
                reg = BayesianMLPRegressor(hidden, random_state=split, **settings)
                t0 = time.perf_counter()
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always", ConvergenceWarning)
                    reg.fit(scaler.transform(X_train), y_train)
                seconds = time.perf_counter() - t0
                mean, std = reg.predict(scaler.transform(X_test), return_std=True)
                results.append({
                    "rmse": float(np.sqrt(np.mean((mean - y_test) ** 2))),
                    "nll": gaussian_nll(y_test, mean, std),
                    "fit_seconds": seconds,
                    "warnings": len(caught),
                    "temperature": reg.diagnostics_.get("temperature",
                                                        reg.diagnostics_.get("kl_weight")),
                    "noise_model": getattr(reg, "noise_model_", None),
                })
            rows.setdefault(name, {})[label] = results
            print(f"{name:28s} {label:62s} " + _summary(results), flush=True)
            if save is not None:
                save("uci", {name: {label: results}})
    return rows


def _mean_se(values):
    values = np.asarray(values, dtype=np.float64)
    se = values.std(ddof=1) / np.sqrt(values.size) if values.size > 1 else float("nan")
    return float(values.mean()), float(se)


def _summary(results):
    rmse = _mean_se([r["rmse"] for r in results])
    nll = _mean_se([r["nll"] for r in results])
    fit = np.median([r["fit_seconds"] for r in results])
    warned = sum(r["warnings"] > 0 for r in results)
    return (f"RMSE {rmse[0]:7.3f} ± {rmse[1]:.3f}  NLL {nll[0]:7.3f} ± {nll[1]:.3f}  "
            f"fit {fit:6.2f} s  warned {warned}/{len(results)}")


def _published(name, n_splits):
    out = {}
    for method, table in PUBLISHED.items():
        (rmse, rmse_e), (nll, nll_e) = table[name]
        div = np.sqrt(n_splits) if method in STD_PRINTED else 1.0
        out[method] = ((rmse, rmse_e / div), (nll, nll_e / div))
    return out


def uci_tables(rows, data_dir):
    """The UCI tables, one per set, and the targets line under the last."""
    tables = {}
    targets = {"nll": 0, "rmse": 0, "fit": [], "sets": 0}
    summary = []
    for name, by_label in rows.items():
        n_splits = _n_splits(data_dir, name)
        published = _published(name, n_splits)
        table_rows = []
        for label, results in by_label.items():
            rmse = _mean_se([r["rmse"] for r in results])
            nll = _mean_se([r["nll"] for r in results])
            fit = float(np.median([r["fit_seconds"] for r in results]))
            warned = sum(r["warnings"] > 0 for r in results)
            table_rows.append([label, f"{rmse[0]:.3f} ± {rmse[1]:.3f}",
                               f"{nll[0]:.3f} ± {nll[1]:.3f}", f"{fit:.2f}",
                               f"{warned}/{len(results)}"])
        for method, ((r, re), (n, ne)) in published.items():
            table_rows.append([f"published: {method}", f"{r:.2f} ± {re:.3f}",
                               f"{n:.2f} ± {ne:.3f}", "", ""])
        notes = []
        default = by_label.get("psgld (defaults)")
        if default is not None:
            targets["sets"] += 1
            best_nll = min(n for (_, (n, _)) in published.values())
            best_rmse, best_rmse_se = min((r for (r, _) in published.values()),
                                          key=lambda t: t[0])
            nll = _mean_se([r["nll"] for r in default])[0]
            rmse = _mean_se([r["rmse"] for r in default])[0]
            targets["nll"] += nll <= best_nll
            targets["rmse"] += rmse <= best_rmse + best_rmse_se
            if not name.startswith("protein"):
                targets["fit"].append(float(np.median([r["fit_seconds"] for r in default])))
            notes.append(f"psgld at defaults: NLL {nll:.3f} against the best published "
                         f"{best_nll:.2f}; RMSE {rmse:.3f} against {best_rmse:.2f} ± "
                         f"{best_rmse_se:.3f}")
            chosen = [r.get("noise_model") for r in default]
            if any(chosen):
                notes.append(f"psgld at defaults (noise_std='auto'): heteroscedastic noise "
                             f"chosen on {chosen.count('heteroscedastic')} of "
                             f"{len(chosen)} splits")
            defaults = {label.split()[0]: _mean_se([r["nll"] for r in res])[0]
                        for label, res in by_label.items() if label.endswith("(defaults)")}
            best = min(defaults, key=defaults.get)
            summary.append([name, f"{nll:.3f}", f"{defaults[best]:.3f} ({best})",
                            f"{best_nll:.2f}", "yes" if nll <= best_nll else "no",
                            f"{rmse:.3f}", f"{best_rmse:.2f} ± {best_rmse_se:.3f}",
                            "yes" if rmse <= best_rmse + best_rmse_se else "no"])
        tables[f"uci-{name}"] = {
            "title": f"{name}: {max(len(r) for r in by_label.values())} splits, test RMSE and "
                     "NLL (mean ± standard error), "
                     "median fit s, fits that warned",
            "columns": ["row", "RMSE", "NLL", "fit s", "warned"],
            "rows": table_rows, "notes": notes}
    if summary:
        tables["uci-summary"] = {
            "title": "Test NLL and RMSE at the defaults, BayesianMLPRegressor((50,)) "
                     "((100,) for protein): the default strategy (psgld), the best strategy "
                     "at its defaults, and the best published (Lakshminarayanan et al. 2017)",
            "columns": ["set", "psgld NLL", "best default NLL", "published NLL", "beaten",
                        "psgld RMSE", "published RMSE", "within 1 SE"],
            "rows": summary, "notes": []}
    if targets["sets"]:
        fits = targets["fit"]
        tables["uci-targets"] = {"columns": ["target", "met"], "rows": [
            ["default NLL at or below the best published (target: 5 of 6 sets)",
             f"{targets['nll']} of {targets['sets']}"],
            ["default RMSE within one standard error of the best published (target: 5 of 6)",
             f"{targets['rmse']} of {targets['sets']}"],
            ["median of the sets' median fit s, protein aside (target: under 10)",
             f"{np.median(fits):.2f}" if fits else "nan"],
        ], "notes": []}
    return tables


CLASSIFICATION = {"breast_cancer": load_breast_cancer, "wine": load_wine,
                  "digits": load_digits, "iris": load_iris}


def classification_rows(args):
    makers = {
        "skbnn (defaults: psgld)": lambda: BayesianMLPClassifier(random_state=0),
        "MLPClassifier()": lambda: MLPClassifier(random_state=0),
        "CalibratedClassifierCV(MLPClassifier())":
            lambda: CalibratedClassifierCV(MLPClassifier(random_state=0)),
    }
    if "all" in args.rows:
        for strategy in [s for s in args.strategies if s != "psgld"]:
            makers[f"skbnn {strategy} (defaults)"] = (
                lambda s=strategy: BayesianMLPClassifier(inference=s, random_state=0))
    rows = {}
    for name, loader in CLASSIFICATION.items():
        X, y = loader(return_X_y=True)
        folds = StratifiedKFold(5, shuffle=True, random_state=0).split(X, y)
        folds = list(folds)
        for label, make in makers.items():
            results = []
            for train, test in folds:
                model = make_pipeline(StandardScaler(), make())
                t0 = time.perf_counter()
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", ConvergenceWarning)
                    model.fit(X[train], y[train])
                seconds = time.perf_counter() - t0
                proba = model.predict_proba(X[test])
                results.append({
                    "accuracy": float(np.mean(model.classes_[proba.argmax(1)] == y[test])),
                    "nll": float(log_loss(y[test], proba, labels=model.classes_)),
                    "ece": float(expected_calibration_error(y[test], proba)),
                    "fit_seconds": seconds,
                })
            rows.setdefault(name, {})[label] = results
            print(f"{name:14s} {label:42s} " + _class_summary(results), flush=True)
    return rows


def _class_summary(results):
    parts = []
    for key in ("accuracy", "nll", "ece"):
        m, se = _mean_se([r[key] for r in results])
        parts.append(f"{key} {m:.4f} ± {se:.4f}")
    parts.append(f"fit {np.median([r['fit_seconds'] for r in results]):.2f} s")
    return "  ".join(parts)


def classification_tables(rows):
    """One table per set, and the targets table."""
    tables = {}
    met = {"nll": 0, "ece": 0, "acc": 0}
    for name, by_label in rows.items():
        table_rows = []
        for label, results in by_label.items():
            cells = [label]
            for key in ("accuracy", "nll", "ece"):
                m, se = _mean_se([r[key] for r in results])
                cells.append(f"{m:.4f} ± {se:.4f}")
            cells.append(f"{np.median([r['fit_seconds'] for r in results]):.2f}")
            table_rows.append(cells)
        tables[f"classification-{name}"] = {
            "title": f"{name}: stratified 5-fold, mean ± standard error over folds",
            "columns": ["row", "accuracy", "NLL", "ECE", "fit s"], "rows": table_rows,
            "notes": []}
        ours = by_label.get("skbnn (defaults: psgld)")
        mlp = by_label.get("MLPClassifier()")
        cal = by_label.get("CalibratedClassifierCV(MLPClassifier())")
        if not (ours and mlp and cal):
            continue
        mean = {k: {lab: np.mean([r[k] for r in res]) for lab, res in
                    (("ours", ours), ("mlp", mlp), ("cal", cal))}
                for k in ("nll", "ece", "accuracy")}
        met["nll"] += mean["nll"]["ours"] < min(mean["nll"]["mlp"], mean["nll"]["cal"])
        met["ece"] += mean["ece"]["ours"] < min(mean["ece"]["mlp"], mean["ece"]["cal"])
        met["acc"] += mean["accuracy"]["ours"] >= mean["accuracy"]["mlp"] - 0.005
    n = len(rows)
    tables["classification-targets"] = {"columns": ["target (default skbnn)", "met"], "rows": [
        ["lower NLL than MLPClassifier and the calibrated one", f"{met['nll']} of {n}"],
        ["lower ECE than both", f"{met['ece']} of {n}"],
        ["accuracy within 0.5 points of MLPClassifier", f"{met['acc']} of {n}"],
    ], "notes": []}
    return tables


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=os.path.join("..", "shared", "data"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--splits", type=int, default=0, help="first N splits only (0: all)")
    parser.add_argument("--rows", default="default,best",
                        help="default, best (UCI) and all (every strategy in classification)")
    parser.add_argument("--tables", default="uci,classification")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--results", default=os.path.join("benchmarks", "results", "uci.json"))
    parser.add_argument("--merge", action="store_true",
                        help="add the rows run now to those already in --results")
    parser.add_argument("--rebuild", action="store_true",
                        help="run nothing: rebuild and print the tables from --results")
    args = parser.parse_args(argv)
    if args.rebuild:
        args.merge, args.sets, args.strategies = True, [], []
    args.sets = args.sets.split(",") if isinstance(args.sets, str) else args.sets
    args.rows = args.rows.split(",")
    if isinstance(args.strategies, str):
        args.strategies = args.strategies.split(",")
    tables = args.tables.split(",")
    results = {"machine": machine(), "settings": {"rows": args.rows, "splits": args.splits}}
    if args.merge and os.path.exists(args.results):
        with open(args.results) as f:
            results = json.load(f)
        results["machine"] = machine()

    def save(table, rows):
        """Add rows to the results and write the file (after every row: a long run
        that stops keeps what it has)."""
        for name, by_label in rows.items():
            results.setdefault(table, {}).setdefault(name, {}).update(by_label)
        if args.results:
            os.makedirs(os.path.dirname(args.results) or ".", exist_ok=True)
            with open(args.results, "w") as f:
                json.dump(results, f, indent=1)

    if "uci" in tables and not args.rebuild:
        save("uci", uci_rows(args, save))
    if "classification" in tables and not args.rebuild:
        save("classification", classification_rows(args))
    if "uci" in results:
        results.setdefault("tables", {}).update(uci_tables(results["uci"], args.data_dir))
    if "classification" in results:
        results.setdefault("tables", {}).update(
            classification_tables(results["classification"]))
    save("uci", {})  # writes the tables
    for table in results.get("tables", {}).values():
        print()
        print(format_table(table))
    if args.results:
        print(f"\nresults written to {args.results}")


if __name__ == "__main__":
    main()
