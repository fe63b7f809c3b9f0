"""Posterior fidelity: how close one model's predictive distribution is to a reference's.

Accuracy, NLL and calibration say whether predictions are useful, not whether
an approximate posterior is close to the true one. Izmailov et al. (2021)
measure that in function space, against a long HMC run: for classification,
the top-1 agreement and the total variation between the two predictive
distributions; for regression, the Wasserstein-2 distance between the
predictive samples at each input. The array functions here work with any
model's outputs (numpy only); :func:`fidelity` takes two fitted estimators.

References
----------
P. Izmailov, S. Vikram, M. D. Hoffman and A. G. Wilson, "What are Bayesian
neural network posteriors really like?", ICML 2021.
"""

import numpy as np
from sklearn.base import is_classifier
from sklearn.pipeline import Pipeline

from ._regression import check_finite_arrays

__all__ = [
    "fidelity",
    "predictive_agreement",
    "total_variation",
    "wasserstein2",
    "wasserstein2_gaussian",
]


# --- classification ---------------------------------------------------------------

def _check_proba(proba, name):
    """``proba`` as a float 2-D array with rows on the simplex; 1-D = positive class."""
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim == 1:  # probability of the positive class
        proba = np.column_stack([1.0 - proba, proba])
    if proba.ndim != 2:
        raise ValueError(
            f"{name} must be 1-D (positive-class probabilities) or 2-D "
            f"(n_samples, n_classes), got shape {proba.shape}."
        )
    if proba.shape[0] == 0:
        raise ValueError(f"{name} is empty: there is nothing to compare.")
    if proba.shape[1] < 2:
        raise ValueError(
            f"{name} must have at least 2 columns (one per class), got {proba.shape[1]}."
        )
    if not np.all(np.isfinite(proba)):
        raise ValueError(f"{name} contains NaN or infinity.")
    if proba.min() < 0 or proba.max() > 1:
        raise ValueError(f"{name} must be probabilities in [0, 1].")
    sums = proba.sum(axis=1)
    if not np.allclose(sums, 1.0, atol=1e-4):
        raise ValueError(
            f"The rows of {name} must sum to 1 (the output of predict_proba); "
            f"row sums range from {sums.min():.4g} to {sums.max():.4g}."
        )
    return proba


def _check_proba_pair(proba_a, proba_b):
    a, b = _check_proba(proba_a, "proba_a"), _check_proba(proba_b, "proba_b")
    if a.shape != b.shape:
        raise ValueError(
            "proba_a and proba_b must have the same shape (the same rows and classes, "
            f"in the same order), got {a.shape} and {b.shape}."
        )
    return a, b


def predictive_agreement(proba_a, proba_b):
    """Top-1 agreement: the share of rows on which both predict the same class.

    The agreement of Izmailov et al. (2021) between an approximate posterior
    predictive and a reference (HMC) one.

    Parameters
    ----------
    proba_a, proba_b : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted class probabilities of two models on the same rows (their
        ``predict_proba``), columns in the same class order; a 1-D array is
        the probability of the positive class.

    Returns
    -------
    float
        In [0, 1]; 1 when the argmax classes agree on every row. Ties go to
        the first class, as ``numpy.argmax`` breaks them.

    See Also
    --------
    total_variation : The distance between the whole predictive distributions.

    Examples
    --------
    >>> from skbnn.metrics import predictive_agreement
    >>> predictive_agreement([[0.9, 0.1], [0.4, 0.6]], [[0.6, 0.4], [0.7, 0.3]])
    0.5
    """
    a, b = _check_proba_pair(proba_a, proba_b)
    return float(np.mean(a.argmax(axis=1) == b.argmax(axis=1)))


def total_variation(proba_a, proba_b):
    """Mean total variation distance between two models' class probabilities.

    Per row, ``0.5 * sum_k |p_a[k] - p_b[k]|``, the largest difference in
    probability the two predictives give any set of classes; averaged over
    rows (Izmailov et al., 2021).

    Parameters
    ----------
    proba_a, proba_b : array-like of shape (n_samples, n_classes) or (n_samples,)
        Predicted class probabilities of two models on the same rows, columns
        in the same class order; a 1-D array is the probability of the
        positive class.

    Returns
    -------
    float
        In [0, 1]; 0 when the predictive distributions are equal.

    See Also
    --------
    predictive_agreement : Whether the predicted classes agree.

    Examples
    --------
    >>> from skbnn.metrics import total_variation
    >>> total_variation([[0.75, 0.25], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]])
    0.125
    """
    a, b = _check_proba_pair(proba_a, proba_b)
    return float(np.mean(0.5 * np.abs(a - b).sum(axis=1)))


# --- regression -------------------------------------------------------------------

def _check_samples(samples, name):
    """``samples`` as a float array of shape (n_draws, n_samples, n_outputs)."""
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim == 2:
        samples = samples[:, :, None]
    if samples.ndim != 3:
        raise ValueError(
            f"{name} must have shape (n_draws, n_samples) or (n_draws, n_samples, "
            f"n_outputs), got shape {samples.shape}."
        )
    if samples.size == 0:
        raise ValueError(f"{name} is empty (shape {samples.shape}): there is nothing to compare.")
    if not np.all(np.isfinite(samples)):
        raise ValueError(f"{name} contains NaN or infinity.")
    return samples


_CHUNK_ELEMENTS = 2**22  # 32 MiB of float64 differences at a time


def _quantile_grid(n_a, n_b):
    """Where the two empirical quantile functions step, and which order statistic each takes.

    The quantile function of ``n`` draws is ``x_(i)`` on ``((i - 1) / n, i / n]``.
    Both are constant between consecutive levels of the union of ``i / n_a``
    and ``j / n_b``, so ``W2^2`` is a weighted sum over those pieces. Levels
    are kept as integers over the common denominator ``n_a * n_b``, so no
    rounding merges or splits them.
    """
    levels = np.union1d(np.arange(n_a + 1) * n_b, np.arange(n_b + 1) * n_a)
    weights = np.diff(levels) / (n_a * n_b)
    # the order statistic in force on each piece (levels[k], levels[k + 1]]
    index_a = levels[:-1] // n_b
    index_b = levels[:-1] // n_a
    return weights, index_a, index_b


def wasserstein2(samples_a, samples_b):
    """Mean Wasserstein-2 distance between two models' predictive samples per input.

    At every input (and output), the two sets of draws are empirical
    distributions on the real line; their Wasserstein-2 distance is exact
    from the sorted draws, ``W2^2 = int_0^1 (Q_a(u) - Q_b(u))^2 du`` with
    ``Q`` the empirical quantile functions. The result is the mean of ``W2``
    over inputs and outputs (Izmailov et al., 2021, who compare the
    predictive samples of regression models this way).

    Parameters
    ----------
    samples_a : array-like of shape (n_draws_a, n_samples) or (n_draws_a, n_samples, n_outputs)
        Draws of the prediction at each input, such as a skbnn regressor's
        ``sample_predictions(X)`` (the predictive mean under each posterior
        draw). Outputs are compared separately and the distances averaged.
    samples_b : array-like of shape (n_draws_b, n_samples) or (n_draws_b, n_samples, n_outputs)
        The other model's draws on the same inputs. The numbers of draws may
        differ.

    Returns
    -------
    float
        Non-negative, in units of ``y``; 0 when the two sets of draws are
        equal at every input (as multisets).

    See Also
    --------
    wasserstein2_gaussian : The closed form between Gaussian predictives.

    Notes
    -----
    With equal numbers of draws ``n``, ``W2^2`` at one input is
    ``mean((sort(a) - sort(b))^2)``. With ``n_a != n_b`` each quantile
    function is a step function, constant between consecutive levels of the
    union of ``i / n_a`` and ``j / n_b``, and the integral is summed over those
    at most ``n_a + n_b - 1`` pieces: the distance between the two empirical
    distributions exactly, as if each draw of ``a`` were repeated ``n_b``
    times and each draw of ``b`` ``n_a`` times. Nothing is interpolated.

    Examples
    --------
    >>> import numpy as np
    >>> from skbnn.metrics import wasserstein2
    >>> a = np.array([[0.0, 1.0], [2.0, 3.0]])  # 2 draws at 2 inputs
    >>> wasserstein2(a, a + 0.5)                 # every draw shifted by 0.5
    0.5
    """
    a = _check_samples(samples_a, "samples_a")
    b = _check_samples(samples_b, "samples_b")
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(
            "samples_a and samples_b must have the same inputs and outputs (all axes but "
            f"the first, the draws), got shapes {a.shape} and {b.shape}."
        )
    a, b = np.sort(a, axis=0), np.sort(b, axis=0)
    if a.shape[0] == b.shape[0]:
        squared = np.mean((a - b) ** 2, axis=0)
    else:
        weights, index_a, index_b = _quantile_grid(a.shape[0], b.shape[0])
        # (input, output) columns in chunks, so that the (n_pieces, chunk) differences stay small
        a, b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
        chunk = max(1, _CHUNK_ELEMENTS // weights.size)
        squared = np.concatenate([
            weights @ (a[index_a, i:i + chunk] - b[index_b, i:i + chunk]) ** 2
            for i in range(0, a.shape[1], chunk)
        ])
    return float(np.mean(np.sqrt(squared)))


def wasserstein2_gaussian(mean_a, std_a, mean_b, std_b):
    """Mean Wasserstein-2 distance between two Gaussian predictives, in closed form.

    Per input, ``W2(N(m_a, s_a^2), N(m_b, s_b^2)) = sqrt((m_a - m_b)^2 + (s_a - s_b)^2)``;
    averaged over inputs (and outputs). For models that only give a mean and a
    standard deviation (``predict(X, return_std=True)``). Note that this
    compares the predictives such a ``predict`` describes, observation noise
    included, while :func:`wasserstein2` on skbnn's ``sample_predictions``
    compares the distributions of the predicted mean, without noise: the two
    numbers measure different things and should not be compared.

    Parameters
    ----------
    mean_a, std_a : array-like of shape (n_samples,) or (n_samples, n_outputs)
        Predictive mean and standard deviation of one model.
    mean_b, std_b : array-like of the same shape
        Those of the other model.

    Returns
    -------
    float
        Non-negative, in units of ``y``.

    See Also
    --------
    wasserstein2 : The same distance between sets of predictive draws.

    Examples
    --------
    >>> from skbnn.metrics import wasserstein2_gaussian
    >>> wasserstein2_gaussian([0.0], [1.0], [3.0], [5.0])
    5.0
    """
    names = ("mean_a", "std_a", "mean_b", "std_b")
    arrays = check_finite_arrays(dict(zip(names, (mean_a, std_a, mean_b, std_b))), "compare")
    if len({v.shape for v in arrays}) != 1:
        shapes = ", ".join(f"{n} {v.shape}" for n, v in zip(names, arrays))
        raise ValueError(f"mean_a, std_a, mean_b and std_b must have the same shape, got {shapes}.")
    m_a, s_a, m_b, s_b = arrays
    if np.any(s_a < 0) or np.any(s_b < 0):
        raise ValueError("std_a and std_b must be non-negative (standard deviations).")
    return float(np.mean(np.sqrt((m_a - m_b) ** 2 + (s_a - s_b) ** 2)))


# --- fitted estimators ------------------------------------------------------------

#: The metrics :func:`fidelity` and ``make_fidelity_scorer`` know, by the kind
#: of prediction they compare.
CLASSIFICATION_METRICS = ("total_variation", "agreement")
REGRESSION_METRICS = ("wasserstein2", "wasserstein2_gaussian")


def _sample_predictions(estimator, X):
    """``estimator.sample_predictions(X)``, also through a Pipeline's last step; None if absent."""
    if hasattr(estimator, "sample_predictions"):
        return estimator.sample_predictions(X)
    if isinstance(estimator, Pipeline) and hasattr(estimator[-1], "sample_predictions"):
        return estimator[-1].sample_predictions(estimator[:-1].transform(X))
    return None


def _mean_std(estimator, X):
    try:
        return estimator.predict(X, return_std=True)
    except TypeError as err:
        raise TypeError(
            f"{type(estimator).__name__} has neither sample_predictions(X) nor a predict "
            "that takes return_std=True, so there is no predictive distribution to compare "
            f"({err})."
        ) from err


def _predictions(estimator, X, metric):
    """What ``metric`` compares: class probabilities, predictive draws or (mean, std)."""
    if metric in CLASSIFICATION_METRICS:
        return estimator.predict_proba(X)
    if metric == "wasserstein2":
        samples = _sample_predictions(estimator, X)
        if samples is None:
            raise TypeError(
                f"{type(estimator).__name__} has no sample_predictions(X), which "
                "metric='wasserstein2' needs (draws of the prediction at each input). For "
                "a regressor with predict(X, return_std=True), use "
                "metric='wasserstein2_gaussian', the closed form between Gaussian predictives."
            )
        return samples
    return _mean_std(estimator, X)


def _score(metric, ours, reference):
    if metric == "total_variation":
        return total_variation(ours, reference)
    if metric == "agreement":
        return predictive_agreement(ours, reference)
    if metric == "wasserstein2":
        return wasserstein2(ours, reference)
    return wasserstein2_gaussian(*ours, *reference)


def _check_pair(estimator, reference):
    """Both classifiers or both regressors, and classifiers with the same classes."""
    if is_classifier(estimator) != is_classifier(reference):
        kinds = ["classifier" if is_classifier(e) else "regressor" for e in (estimator, reference)]
        raise ValueError(
            f"estimator is a {kinds[0]} ({type(estimator).__name__}) but reference is a "
            f"{kinds[1]} ({type(reference).__name__}): fidelity compares like with like."
        )
    classes = [getattr(e, "classes_", None) for e in (estimator, reference)]
    if (classes[0] is not None and classes[1] is not None
            and not np.array_equal(classes[0], classes[1])):
        raise ValueError(
            f"estimator and reference were fitted on different classes ({classes[0]} and "
            f"{classes[1]}), so the columns of their predict_proba do not match."
        )


def _has_samples(estimator):
    return hasattr(estimator, "sample_predictions") or (
        isinstance(estimator, Pipeline) and hasattr(estimator[-1], "sample_predictions")
    )


def _metrics_for(estimator, reference):
    """Every metric that applies to the pair (they have passed ``_check_pair``)."""
    if is_classifier(reference):
        return CLASSIFICATION_METRICS
    if _has_samples(estimator) and _has_samples(reference):
        return ("wasserstein2",)
    return ("wasserstein2_gaussian",)


def fidelity(estimator, reference, X):
    """How close a fitted estimator's predictive distribution is to a reference's, on ``X``.

    Classifiers are compared through ``predict_proba`` (top-1 agreement and
    total variation), regressors through their predictive draws
    (Wasserstein-2), as Izmailov et al. (2021) compare approximate posteriors
    with a long HMC run.

    Parameters
    ----------
    estimator : fitted estimator
        The model to judge, for example a pSGLD or VI fit.
    reference : fitted estimator
        The model to compare it with, for example a NUTS fit of the same
        network on the same data. Both must be classifiers (with the same
        ``classes_``) or both regressors.
    X : array-like of shape (n_samples, n_features)
        The inputs to compare the predictions on.

    Returns
    -------
    dict
        For classifiers ``{"agreement": ..., "total_variation": ...}``. For
        regressors that both have ``sample_predictions(X)`` (skbnn's, also as
        the last step of a Pipeline): ``{"wasserstein2": ...}``, between the
        per-draw predictive means. Otherwise, where both give
        ``predict(X, return_std=True)`` (``BayesianRidge``,
        ``GaussianProcessRegressor``): ``{"wasserstein2_gaussian": ...}``, the
        closed form between the Gaussians those describe; the key says which
        was computed, because the two are not comparable (the second includes
        the observation noise). A regressor with neither raises ``TypeError``.

    See Also
    --------
    make_fidelity_scorer : The same comparison as a scorer for ``GridSearchCV``.

    Examples
    --------
    >>> from sklearn.datasets import load_iris
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skbnn.metrics import fidelity
    >>> X, y = load_iris(return_X_y=True)
    >>> reference = LogisticRegression(max_iter=1000).fit(X, y)
    >>> fidelity(LogisticRegression(max_iter=1000).fit(X, y), reference, X)
    {'agreement': 1.0, 'total_variation': 0.0}
    """
    _check_pair(estimator, reference)
    result = {}
    for metric in _metrics_for(estimator, reference):
        result[metric] = _score(metric, _predictions(estimator, X, metric),
                                _predictions(reference, X, metric))
    return dict(sorted(result.items()))
