"""Out-of-distribution detection by an uncertainty score (numpy + scikit-learn)."""

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = ["ood_aupr", "ood_auroc"]


def _labelled(score_in, score_out):
    score_in = np.ravel(np.asarray(score_in, dtype=np.float64))
    score_out = np.ravel(np.asarray(score_out, dtype=np.float64))
    if score_in.size == 0 or score_out.size == 0:
        raise ValueError("score_in and score_out each need at least one input.")
    scores = np.r_[score_in, score_out]
    if not np.all(np.isfinite(scores)):
        raise ValueError("The uncertainty scores contain NaN or infinity.")
    return np.r_[np.zeros(score_in.size), np.ones(score_out.size)], scores


def ood_auroc(score_in, score_out):
    """AUROC of a score (higher = more uncertain) separating out- from in-distribution inputs.

    1.0 when every out-of-distribution input scores above every in-distribution
    one; 0.5 for a score that does not separate them.
    """
    return float(roc_auc_score(*_labelled(score_in, score_out)))


def ood_aupr(score_in, score_out):
    """Area under the precision-recall curve with out-of-distribution as the positive class.

    Average precision (``sklearn.metrics.average_precision_score``); a score that
    does not separate the two sets gets the share of out-of-distribution inputs.
    """
    return float(average_precision_score(*_labelled(score_in, score_out)))
