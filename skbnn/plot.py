"""Figures of calibration and uncertainty, drawn with matplotlib.

matplotlib is an optional extra (``pip install skbnn[plot]``) imported only
when a function here draws. Each function takes the numbers it shows (the
output of ``predict_proba``, ``sample_predictions`` or a certainty score),
draws on ``ax`` (a new figure's Axes by default) and returns that Axes.
"""

import numpy as np

from .metrics import accuracy_certainty_curve
from .metrics._calibration import _bin_edges, _binned, _check_inputs, _top_label

__all__ = ["plot_accuracy_threshold", "plot_member_probabilities", "plot_reliability_diagram"]


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError(
            "skbnn's plots need matplotlib, which is not installed; install it with "
            "`pip install skbnn[plot]` (or `pip install matplotlib`)."
        ) from err
    return plt


def _axes(ax):
    plt = _pyplot()  # raises the install hint even when an Axes is passed
    if ax is None:
        _, ax = plt.subplots()
    return ax


def plot_reliability_diagram(y_true, y_prob, *, n_bins=15, strategy="uniform", labels=None,
                             ax=None):
    """Reliability diagram: accuracy per confidence bin against the diagonal, with bin counts.

    One bar per non-empty bin of the top-label confidence, spanning the bin and
    as high as the share of correct predictions in it; each bar is labelled
    with its number of inputs, and the dashed diagonal is perfect calibration.
    Bins are those of :func:`skbnn.metrics.reliability_curve`.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    y_prob : array-like of shape (n_samples, n_classes) or (n_samples,)
        ``predict_proba`` of any classifier.
    n_bins : int, default=15
    strategy : {"uniform", "quantile"}, default="uniform"
    labels : array-like of shape (n_classes,), default=None
        The classes in column order, when ``y_true`` lacks some.
    ax : matplotlib Axes, default=None
        Where to draw; a new figure's Axes by default.

    Returns
    -------
    matplotlib.axes.Axes
        Holding the bars (``ax.patches``), the diagonal (``ax.lines``) and the
        count labels (``ax.texts``).
    """
    y, y_prob = _check_inputs(y_true, y_prob, labels)
    confidence, correct = _top_label(y, y_prob)
    count, _, hits = _binned(confidence, correct, n_bins, strategy)
    edges = _bin_edges(confidence, n_bins, strategy)
    full = count > 0
    ax = _axes(ax)
    bars = ax.bar(edges[:-1][full], hits[full] / count[full], width=np.diff(edges)[full],
                  align="edge", edgecolor="black", label="accuracy")
    ax.bar_label(bars, labels=[str(int(c)) for c in count[full]], fontsize="small")
    ax.plot([0, 1], [0, 1], linestyle="--", color="gray", label="perfect calibration")
    ax.set(xlim=(0, 1), ylim=(0, 1.08), xlabel="confidence (top probability)",
           ylabel="accuracy", title="Reliability (bar labels: inputs per bin)")
    ax.legend(loc="upper left")
    return ax


def plot_accuracy_threshold(y_true, y_pred, certainty, *, thresholds=None, ax=None):
    """Accuracy on the inputs whose certainty reaches a threshold, and the share retained.

    The selective-prediction figure: as the threshold rises, accuracy on the
    retained inputs should rise while fewer inputs are retained. ``certainty``
    is the top ``predict_proba`` (the confidence) or
    :meth:`skbnn.SampleEnsemble.certainty`. Thresholds that retain nothing
    are left out. The horizontal line is the accuracy on all inputs.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    certainty : array-like of shape (n_samples,)
    thresholds : array-like, default=None
        Default: the distinct certainties.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib.axes.Axes
        With three lines: accuracy at each threshold, share retained, and the
        accuracy on all inputs.
    """
    curve = accuracy_certainty_curve(y_true, y_pred, certainty, thresholds=thresholds)
    overall = float(np.mean(np.ravel(np.asarray(y_true)) == np.ravel(np.asarray(y_pred))))
    ax = _axes(ax)
    ax.plot(curve.threshold, curve.accuracy, marker="x", label="accuracy on retained inputs")
    ax.plot(curve.threshold, curve.retained, marker="x", color="green",
            label="share of inputs retained")
    ax.axhline(overall, color="black", linewidth=1, label="accuracy on all inputs")
    ax.set(ylim=(0, 1.02), xlabel="certainty threshold", ylabel="accuracy / share retained")
    ax.legend(loc="lower left")
    return ax


def plot_member_probabilities(member_proba, *, classes=None, ax=None):
    """Box plot, per class, of one input's class probabilities under each ensemble member.

    The spread of a box is the members' disagreement about that class: narrow
    boxes where the posterior draws agree. For input ``i`` of a fitted skbnn
    classifier pass ``estimator.sample_predictions(X[i:i + 1])[:, 0]``.

    Parameters
    ----------
    member_proba : array-like of shape (n_members, n_classes)
        One row per member (posterior draw).
    classes : array-like of shape (n_classes,), default=None
        Tick labels (an estimator's ``classes_``); default ``0 .. n_classes - 1``.
    ax : matplotlib Axes, default=None

    Returns
    -------
    matplotlib.axes.Axes
        With one box per class.
    """
    member_proba = np.asarray(member_proba, dtype=np.float64)
    if member_proba.ndim != 2:
        raise ValueError(
            "member_proba must be (n_members, n_classes), one input's probabilities per "
            f"member, got shape {member_proba.shape}; for input i pass "
            "sample_predictions(X[i:i + 1])[:, 0]."
        )
    if not np.all(np.isfinite(member_proba)):
        raise ValueError("member_proba contains NaN or infinity.")
    n_classes = member_proba.shape[1]
    classes = np.arange(n_classes) if classes is None else np.asarray(classes)
    if classes.shape != (n_classes,):
        raise ValueError(f"classes must have {n_classes} entries, one per column, "
                         f"got shape {classes.shape}.")
    ax = _axes(ax)
    ax.boxplot(member_proba)  # boxes at x = 1 .. n_classes
    ax.set_xticks(np.arange(1, n_classes + 1), [str(c) for c in classes])
    ax.set(ylim=(-0.02, 1.02), xlabel="class", ylabel="probability",
           title=f"Class probabilities of {member_proba.shape[0]} members")
    return ax
