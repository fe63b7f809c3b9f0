"""skbnn.plot draws what the metrics compute (Agg backend), and says how to get matplotlib."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from skbnn.metrics import accuracy_certainty_curve, reliability_curve  # noqa: E402
from skbnn.plot import (  # noqa: E402
    plot_accuracy_threshold,
    plot_member_probabilities,
    plot_reliability_diagram,
)


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def test_reliability_diagram_bars_are_the_curve():
    y_true = np.array([0, 1, 1, 0, 1])
    p1 = np.array([0.15, 0.85, 0.35, 0.45, 0.75])  # as test_metrics' hand example
    ax = plot_reliability_diagram(y_true, p1, n_bins=10)
    curve = reliability_curve(y_true, p1, n_bins=10)
    # 4 non-empty bins of 10: 4 bars, 4 count labels, 1 diagonal
    assert len(ax.patches) == 4 and len(ax.lines) == 1
    np.testing.assert_allclose([b.get_height() for b in ax.patches], curve.accuracy)
    np.testing.assert_allclose([b.get_x() for b in ax.patches], [0.5, 0.6, 0.7, 0.8])
    np.testing.assert_allclose([b.get_width() for b in ax.patches], 0.1)
    assert [t.get_text() for t in ax.texts] == [str(c) for c in curve.count]
    ax.figure.canvas.draw()  # renders on Agg

    # equal-mass bins and an Axes the caller passes: bars span the unequal bins
    rng = np.random.default_rng(0)
    proba = rng.dirichlet(np.ones(3), size=300)
    y = rng.integers(0, 3, size=300)
    _, given = plt.subplots()
    ax = plot_reliability_diagram(y, proba, n_bins=5, strategy="quantile", ax=given)
    assert ax is given and len(ax.patches) == 5
    edges = reliability_curve(y, proba, n_bins=5, strategy="quantile").bin_edges
    np.testing.assert_allclose([b.get_width() for b in ax.patches], np.diff(edges))
    assert sum(int(t.get_text()) for t in ax.texts) == 300


def test_accuracy_threshold_lines_are_the_selective_curve():
    y_true = np.array([0, 1, 1, 0, 1])
    y_pred = np.array([0, 1, 0, 0, 0])
    certainty = np.array([0.9, 0.6, 0.4, 0.9, 0.6])
    ax = plot_accuracy_threshold(y_true, y_pred, certainty)
    curve = accuracy_certainty_curve(y_true, y_pred, certainty)
    accuracy, retained, overall = ax.lines
    np.testing.assert_allclose(accuracy.get_xdata(), curve.threshold)
    np.testing.assert_allclose(accuracy.get_ydata(), [3 / 5, 3 / 4, 1.0])
    np.testing.assert_allclose(retained.get_ydata(), [1.0, 0.8, 0.4])
    np.testing.assert_allclose(overall.get_ydata(), [3 / 5, 3 / 5])
    assert len(ax.get_legend().get_texts()) == 3


def test_member_probabilities_one_box_per_class():
    rng = np.random.default_rng(1)
    members = rng.dirichlet([5.0, 1.0, 1.0, 1.0], size=40)  # 40 members, 4 classes
    ax = plot_member_probabilities(members, classes=["a", "b", "c", "d"])
    # boxplot draws per box, in this order: the box, 2 whiskers, 2 caps, the median, the fliers
    assert len(ax.lines) == 4 * 7
    medians = [line.get_ydata()[0] for line in ax.lines[5::7]]
    np.testing.assert_allclose(medians, np.median(members, axis=0))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="n_members, n_classes"):
        plot_member_probabilities(members[None])
    with pytest.raises(ValueError, match="4 entries"):
        plot_member_probabilities(members, classes=["a", "b"])


def test_missing_matplotlib_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)  # import now fails
    with pytest.raises(ImportError, match=r"skbnn\[plot\]"):
        plot_reliability_diagram([0, 1], [0.2, 0.7])
