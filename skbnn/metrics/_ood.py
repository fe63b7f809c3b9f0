"""Out-of-distribution detection by an uncertainty score (numpy + scikit-learn)."""

import numpy as np
from sklearn.metrics import roc_auc_score

__all__ = ["ood_auroc"]


def ood_auroc(score_in, score_out):
    """AUROC of a score (higher = more uncertain) separating out- from in-distribution inputs.

    1.0 when every out-of-distribution input scores above every in-distribution
    one; 0.5 for a score that does not separate them.
    """
    score_in, score_out = np.ravel(score_in), np.ravel(score_out)
    labels = np.r_[np.zeros(score_in.size), np.ones(score_out.size)]
    return float(roc_auc_score(labels, np.r_[score_in, score_out]))
