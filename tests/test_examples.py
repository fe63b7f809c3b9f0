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
    # which every draw agrees are classified better than all of them.
    assert (np.diff(curve.retained) <= 0).all()
    assert curve.retained[-1] < curve.retained[0]
    assert curve.accuracy[-1] > curve.accuracy[0]


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


def test_nuts_regression_spiral(tmp_path):
    r = run_example("plot_nuts_regression_spiral", tmp_path)
    reg = r["regression"]
    base = reg["10 units, prior scale 1"]
    # The 95% band covers most training targets and widens away from the data.
    assert 0.8 <= base["coverage"] <= 1.0
    assert base["band_outside"] > 1.5 * base["band_inside"]
    # The study's point about the prior: scale 0.1 is too rigid to fit x sin(5x).
    assert reg["prior scale 0.1: too rigid"]["rmse"] > 1.5 * base["rmse"]
    spiral = r["spiral"]
    assert spiral["nuts"]["train_accuracy"] > 0.9
    assert spiral["map"]["train_accuracy"] > 0.9
    # Away from the data the MAP network is confident, NUTS is not.
    assert spiral["nuts"]["entropy_far"] > 2 * spiral["map"]["entropy_far"]


def test_vi_mnist_disagreement(tmp_path):
    r = run_example("plot_vi_mnist_disagreement", tmp_path)
    assert r["n_draws"] == 30
    assert r["accuracy"] > 0.93
    assert r["ece"] < 0.06
    # Averaging the draws is at least as accurate as one draw on average.
    assert r["accuracy"] >= r["single_draw_accuracy"] - 0.005
    # Some, not most, digits split the draws, and those are the hard ones.
    assert 0.0 < r["disagree_share"] < 0.5
    assert r["accuracy_agree"] > r["accuracy_disagree"]


def test_laplace_cnn_calibration(tmp_path):
    r = run_example("plot_laplace_cnn_calibration", tmp_path)
    for name in ("map", "laplace"):
        assert r[name]["accuracy"] > 0.9, name
    # Laplace predicts around the same MAP: it keeps the accuracy and softens
    # the confidence, which is what lowers the ECE of an overconfident network.
    assert abs(r["laplace"]["accuracy"] - r["map"]["accuracy"]) < 0.02
    assert r["laplace"]["mean_confidence"] < r["map"]["mean_confidence"]
    assert r["laplace"]["nll"] < 1.05 * r["map"]["nll"]
