"""VI's ``init_scale`` default, chosen on held-back training rows only.

Every row fits ``inference=VI(init_scale=s)`` with every other setting at its
default and scores rows held back from the training data (never a test split):

- MNIST: the (300, 100) MLP, 20 epochs (the MNIST benchmark's budget), fitted on
  the first 50,000 training rows and scored on the last 10,000;
- classification: scikit-learn's breast_cancer, wine, digits and iris,
  stratified 5-fold with other folds than ``benchmarks/uci.py`` uses
  (``random_state=1``), a quarter of each training fold held back and scored;
- UCI regression: splits 0-5 of five of the sets, 20% of each training split
  held back and scored, a (50,) MLP, inputs and target standardised on the
  rows fitted, figures in the target's units.

Columns: held-back NLL and ECE (classification) or RMSE and NLL (regression),
means over the folds or splits, and the ``kl_weight`` that ``"auto"`` chose.

Run: python benchmarks/vi_init_scale.py [--data-dir ../shared/data]
     [--scales 1e-3,1e-2] [--parts mnist,classification,uci]
"""

import argparse
import os
import sys
import time
import warnings

import numpy as np
from sklearn.datasets import load_breast_cancer, load_digits, load_iris, load_wine
from sklearn.exceptions import ConvergenceWarning
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _results import format_table, update  # noqa: E402

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor  # noqa: E402
from skbnn.datasets import load_mnist, load_uci  # noqa: E402
from skbnn.inference import VI  # noqa: E402
from skbnn.metrics import expected_calibration_error, gaussian_nll  # noqa: E402

CLASSIFICATION = {"breast_cancer": load_breast_cancer, "wine": load_wine,
                  "digits": load_digits, "iris": load_iris}
UCI = ["bostonHousing", "concrete", "energy", "wine-quality-red", "kin8nm"]


def _fit(model, X, y):
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    return time.perf_counter() - t0


def _kl(model):
    return float(model.diagnostics_["kl_weight"])


def mnist(data_dir, scale):
    X, y = load_mnist(data_dir, split="train")
    model = BayesianMLPClassifier((300, 100), max_iter=20, random_state=0,
                                  inference=VI(init_scale=scale))
    seconds = _fit(model, X[:50000], y[:50000])
    proba = model.predict_proba(X[50000:])
    return {"nll": float(log_loss(y[50000:], proba, labels=model.classes_)),
            "ece": float(expected_calibration_error(y[50000:], proba)),
            "kl_weight": [_kl(model)], "fit_seconds": seconds}


def classification(name, scale):
    X, y = CLASSIFICATION[name](return_X_y=True)
    out = []
    for k, (train, _) in enumerate(StratifiedKFold(5, shuffle=True, random_state=1).split(X, y)):
        Xa, Xb, ya, yb = train_test_split(X[train], y[train], test_size=0.25,
                                          stratify=y[train], random_state=k)
        model = make_pipeline(StandardScaler(), BayesianMLPClassifier(
            random_state=0, inference=VI(init_scale=scale)))
        seconds = _fit(model, Xa, ya)
        proba = model.predict_proba(Xb)
        out.append((log_loss(yb, proba, labels=model.classes_),
                    expected_calibration_error(yb, proba), _kl(model[-1]), seconds))
    return {"nll": float(np.mean([o[0] for o in out])), "ece": float(np.mean([o[1] for o in out])),
            "kl_weight": [o[2] for o in out], "fit_seconds": float(np.median([o[3] for o in out]))}


def uci(data_dir, name, scale):
    out = []
    for split in range(6):
        X, _, y, _ = load_uci(data_dir, name, split=split)
        Xa, Xb, ya, yb = train_test_split(X, y, test_size=0.2, random_state=split)
        scaler = StandardScaler().fit(Xa)
        mean, sd = ya.mean(), ya.std()
        model = BayesianMLPRegressor((50,), random_state=split, inference=VI(init_scale=scale))
        seconds = _fit(model, scaler.transform(Xa), (ya - mean) / sd)
        mu, std = model.predict(scaler.transform(Xb), return_std=True)
        mu, std = mu * sd + mean, std * sd
        out.append((np.sqrt(np.mean((mu - yb) ** 2)), gaussian_nll(yb, mu, std),
                    _kl(model), seconds))
    return {"rmse": float(np.mean([o[0] for o in out])), "nll": float(np.mean([o[1] for o in out])),
            "kl_weight": [o[2] for o in out], "fit_seconds": float(np.median([o[3] for o in out]))}


def _kl_cell(values):
    values, counts = np.unique(values, return_counts=True)
    return ", ".join(f"1/{round(1 / v)}" + (f" x{c}" if c > 1 else "") if v < 1 else
                     ("1" + (f" x{c}" if c > 1 else "")) for v, c in zip(values, counts))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default="../shared/data")
    parser.add_argument("--scales", default="1e-3,1e-2")
    parser.add_argument("--parts", default="mnist,classification,uci")
    args = parser.parse_args(argv)
    scales = [float(s) for s in args.scales.split(",")]
    parts = args.parts.split(",")
    raw, rows = {}, []

    def save():
        """Write the table as it stands (after every row: a run that stops keeps its rows)."""
        order = list(dict.fromkeys(row[0] for row in rows))
        table = {"title": "VI init_scale on held-back training rows (no test rows)",
                 "columns": ["set", "setting", "held-back 1", "held-back 2", "kl_weight chosen",
                             "fit s"],
                 "rows": sorted(rows, key=lambda row: order.index(row[0])), "notes": []}
        path = update("vi_init_scale", tables={"held-back": table},
                      settings={"held-back": vars(args)}, raw={"held-back": raw})
        return table, path

    for scale in scales:
        label = f"init_scale={scale:g}"
        jobs = []
        if "mnist" in parts:
            jobs.append(("MNIST", "classification", lambda s=scale: mnist(args.data_dir, s)))
        if "classification" in parts:
            jobs += [(n, "classification", lambda n=n, s=scale: classification(n, s))
                     for n in CLASSIFICATION]
        if "uci" in parts:
            jobs += [(n, "regression", lambda n=n, s=scale: uci(args.data_dir, n, s)) for n in UCI]
        for name, kind, job in jobs:
            r = job()
            raw.setdefault(label, {})[name] = r
            first, second = (("NLL", r["nll"]), ("ECE", r["ece"])) if kind == "classification" \
                else (("RMSE", r["rmse"]), ("NLL", r["nll"]))
            rows.append([name, label, f"{first[0]} {first[1]:.4f}", f"{second[0]} {second[1]:.4f}",
                         _kl_cell(r["kl_weight"]), f"{r['fit_seconds']:.1f}"])
            print("  ".join(rows[-1]), flush=True)
            table, path = save()
    print(format_table(table))
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
