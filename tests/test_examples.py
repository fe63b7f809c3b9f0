"""Every example's ``--quick`` mode runs, and the figures it prints are in a sane range."""

import importlib.util
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

pytest.importorskip("matplotlib")

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def run_example(name, tmp_path, *extra):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        results = module.main(["--quick", "--out", str(tmp_path), *extra])
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs, f"{name} wrote no figure"
    return results


def test_psgld_mnist_shift(tmp_path):
    r = run_example("plot_psgld_mnist_shift", tmp_path)
    for name in ("map", "psgld"):
        assert r[name]["accuracy"] > 0.93
        assert r[name]["ece"] < 0.06
        # Raising the threshold never keeps more inputs.
        assert (r[name]["share"][1:] <= r[name]["share"][:-1] + 1e-12).all()
    # The study's point: pSGLD lets far fewer unfamiliar inputs through at
    # confidence 0.6 than the MAP network does.
    assert r["psgld"]["shift_share_06"] < 0.5 * r["map"]["shift_share_06"]


def test_digits_calibration(tmp_path):
    r = run_example("plot_digits_calibration", tmp_path)
    cv = r["search"].cv_results_
    # refit follows the ECE column, whatever accuracy says
    best = int(np.argmax(cv["mean_test_neg_ece"]))
    assert r["search"].best_params_ == {"alpha": cv["param_alpha"][best]}
    assert (cv["mean_test_neg_ece"] < 0).all() and (cv["mean_test_accuracy"] > 0.5).all()
    assert r["hard_accuracy"] > 0.9 and r["soft_accuracy"] > 0.9
    curve = r["certainty_curve"]
    # Raising the certainty threshold never keeps more inputs, and the inputs on
    # which every draw agrees are classified better than all of them (0.987 vs
    # 0.942 on this split).
    assert (np.diff(curve.retained) <= 0).all()
    assert curve.accuracy[-1] > curve.accuracy[0] + 0.02


def test_sklearn_workflow(tmp_path):
    r = run_example("plot_sklearn_workflow", tmp_path)
    search = r["search"]
    # GridSearchCV refit the setting the callable picks: the lowest ECE among
    # those within one point of the best cross-validated accuracy.
    good = search["accuracy"] >= search["accuracy"].max() - 0.01
    assert good[search["best_index"]]
    assert search["ece"][search["best_index"]] == search["ece"][good].min()
    for name in ("MLPClassifier", "CalibratedClassifierCV(MLP)", "skbnn psgld (searched)"):
        assert r[name]["accuracy"] > 0.93, name
        assert 0 < r[name]["nll"] < 0.3, name
        assert r[name]["ece"] < 0.06, name


def test_psgld_cnn_voting(tmp_path):
    r = run_example("plot_psgld_cnn_voting", tmp_path)
    assert r["n_members"] == 20
    for kind in ("hard", "soft"):
        assert r[f"{kind}_accuracy"] > 0.9, kind
    assert abs(r["hard_accuracy"] - r["soft_accuracy"]) < 0.03
    share, accuracy = r["threshold_share"], r["threshold_accuracy"]
    assert (share[1:] <= share[:-1]).all()
    # The study's point: members that agree are right more often.
    assert accuracy[-1] >= accuracy[0]
