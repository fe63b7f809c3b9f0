"""Convergence diagnostics of multi-chain posteriors: split R-hat, effective
sample size, and the ``ConvergenceWarning`` texts built from them.

Every sampling strategy (pSGLD, NUTS) reports them on two levels:

- on the **parameters**, per entry (a pytree shaped like the parameters) and
  their worst values. For a network with hidden layers these say little:
  chains that start apart settle in different, equally good modes (hidden
  units permuted), so parameter R-hat is large even when the predictions
  agree;
- on the **predictions**: the per-row log-likelihood of up to
  ``N_PREDICTION_ROWS`` training rows under each draw. Chains that
  disagree about predictions have not found the same posterior, whatever the
  parameters do. With a linear network (one mode) that is what the warning
  watches; with hidden layers, chains sit in different modes that predict
  a little differently however long they run, and the warning watches each
  chain's own drift instead (``DRIFT_RHAT_THRESHOLD``).

R-hat is the split-chain potential scale reduction factor (Gelman et al.,
*Bayesian Data Analysis*, 3rd ed., 11.4; Vehtari et al., 2021, without the
rank normalisation); the effective sample size is numpyro's (Stan's)
autocorrelation estimator over all chains.
"""

import numpy as np
from numpyro.diagnostics import effective_sample_size as _numpyro_ess

__all__ = [
    "DRIFT_RHAT_THRESHOLD",
    "N_PREDICTION_ROWS",
    "PREDICTION_ATOL",
    "PREDICTION_RHAT_QUANTILE",
    "PREDICTION_RHAT_THRESHOLD",
    "effective_sample_size",
    "parameter_diagnostics",
    "prediction_diagnostics",
    "prediction_problems",
    "split_rhat",
]

#: Training rows whose per-draw log-likelihood the prediction diagnostics watch.
N_PREDICTION_ROWS = 256
#: Rows whose log-likelihood varies over the draws by less than this (a
#: standard deviation in nats) count as agreeing, whatever their R-hat: a
#: hundredth of a nat changes no prediction that matters.
PREDICTION_ATOL = 0.01
#: The warnings look at this quantile of the watched rows' R-hat values.
PREDICTION_RHAT_QUANTILE = 0.9
#: Linear networks (no hidden layer) have one mode: a warning when the chains
#: disagree, i.e. more than a tenth of the watched rows have a split R-hat
#: above this. With 4 chains of 20 draws that mix perfectly, a single row
#: exceeds 1.1 about once in 150 (an F(7, 72) tail).
PREDICTION_RHAT_THRESHOLD = 1.1
#: Networks with hidden layers have many modes (hidden units permuted, and
#: more), and chains that start apart stay in different ones: their R-hat
#: stays above 1 however long they run, and says nothing about the run's
#: length. What a longer run mends is a chain still moving: the first half of
#: its draws unlike the second. ``drift_rhat`` is split R-hat computed after
#: subtracting each chain's own mean, so only that counts; a warning when
#: more than a tenth of the watched rows are above this. Halves of 10 draws
#: make it noisy, hence the wider bound.
DRIFT_RHAT_THRESHOLD = 1.2

_TINY = 1e-12


def split_rhat(draws, *, atol=0.0):
    """Split-chain R-hat of ``draws`` shaped ``(n_chains, n_draws, ...)``.

    Each chain is cut in two halves (the middle draw of an odd count is
    dropped), and R-hat compares the variance between the halves' means with
    the variance within them. Entries that do not vary at all (within and
    between halves) get 1; entries constant within halves but different
    between them get infinity; entries whose pooled standard deviation is
    below ``atol`` (differences too small to matter) get 1. Needs at
    least 4 draws per chain: with fewer, every entry is NaN.
    """
    draws = np.asarray(draws, dtype=np.float64)
    n_chains, n_draws = draws.shape[:2]
    if n_draws < 4:
        return np.full(draws.shape[2:], np.nan)
    half = n_draws // 2
    halves = np.concatenate([draws[:, :half], draws[:, n_draws - half:]], axis=0)
    means = halves.mean(axis=1)
    within = halves.var(axis=1, ddof=1).mean(axis=0)
    between = half * means.var(axis=0, ddof=1)
    pooled = (half - 1) / half * within + between / half
    with np.errstate(divide="ignore", invalid="ignore"):
        rhat = np.sqrt(pooled / within)
    scale = np.maximum(np.abs(means).max(axis=0), 1.0)
    still = within <= _TINY * scale**2
    rhat = np.where(still, np.where(between <= _TINY * scale**2, 1.0, np.inf), rhat)
    return np.where(pooled < atol**2, 1.0, rhat)


def effective_sample_size(draws):
    """Effective sample size over all chains of ``draws`` shaped ``(n_chains, n_draws, ...)``.

    numpyro's estimator; entries that do not vary count as fully effective
    (``n_chains * n_draws``). Needs at least 2 draws per chain (NaN otherwise).
    """
    draws = np.asarray(draws, dtype=np.float64)
    n_chains, n_draws = draws.shape[:2]
    if n_draws < 2:
        return np.full(draws.shape[2:], np.nan)
    with np.errstate(divide="ignore", invalid="ignore"):
        ess = np.asarray(_numpyro_ess(draws), dtype=np.float64)
    still = draws.var(axis=(0, 1)) <= _TINY * np.maximum(np.abs(draws).max(axis=(0, 1)), 1.0)**2
    return np.where(still | ~np.isfinite(ess), np.where(still, n_chains * n_draws, 0.0), ess)


def _quantile(values):
    values = values[~np.isnan(values)]
    return float(np.quantile(values, PREDICTION_RHAT_QUANTILE)) if values.size else float("nan")


def prediction_diagnostics(loglik):
    """R-hat and effective sample size of per-row log-likelihoods ``(n_chains, n_draws, n_rows)``.

    Returns a dict with ``prediction_rhat`` and ``prediction_ess`` (one value
    per watched row) and their summaries: ``max_prediction_rhat``, the
    ``PREDICTION_RHAT_QUANTILE`` quantile ``prediction_rhat_quantile``,
    ``min_prediction_ess``, and the same quantile of the within-chain
    ``drift_rhat`` (see ``DRIFT_RHAT_THRESHOLD``) as ``drift_rhat_quantile``.
    All NaN when there are fewer than 4 draws per chain.
    """
    loglik = np.asarray(loglik, dtype=np.float64)
    rhat = split_rhat(loglik, atol=PREDICTION_ATOL)
    ess = effective_sample_size(loglik)
    drift = split_rhat(loglik - loglik.mean(axis=1, keepdims=True), atol=PREDICTION_ATOL)
    finite = rhat[~np.isnan(rhat)]
    return {
        "drift_rhat_quantile": _quantile(drift),
        "prediction_rhat": rhat,
        "prediction_ess": ess,
        "max_prediction_rhat": float(np.max(finite)) if finite.size else float("nan"),
        "prediction_rhat_quantile": _quantile(rhat),
        "min_prediction_ess": float(np.nanmin(ess)) if np.any(~np.isnan(ess)) else float("nan"),
    }


def parameter_diagnostics(draws, names):
    """R-hat and effective sample size of raveled parameter draws ``(n_chains, n_draws, n_params)``.

    ``names`` names every raveled entry. Returns per-entry arrays and the
    worst values with the entry they belong to.
    """
    rhat = split_rhat(draws)
    ess = effective_sample_size(draws)
    rhat_worst = np.where(np.isnan(rhat), -np.inf, rhat)
    ess_worst = np.where(np.isnan(ess), np.inf, ess)
    return {
        "rhat": rhat,
        "ess": ess,
        "max_rhat": float(np.max(rhat_worst)) if rhat.size else float("nan"),
        "max_rhat_parameter": names[int(np.argmax(rhat_worst))] if rhat.size else "",
        "min_ess": float(np.min(ess_worst)) if ess.size else float("nan"),
        "min_ess_parameter": names[int(np.argmin(ess_worst))] if ess.size else "",
    }


def prediction_problems(diagnostics: dict, *, linear: bool, advice: str) -> list[str]:
    """Sentences about chains whose predictions disagree or still move; empty when all is well.

    ``linear``: the network has no hidden layer, so its posterior has one
    mode and chains must agree (:data:`PREDICTION_RHAT_THRESHOLD`); otherwise
    each chain must be stationary (``DRIFT_RHAT_THRESHOLD``).
    """
    share = 1.0 - PREDICTION_RHAT_QUANTILE
    if linear:
        q = diagnostics.get("prediction_rhat_quantile", float("nan"))
        if np.isnan(q) or q <= PREDICTION_RHAT_THRESHOLD:
            return []
        return [
            f"The chains disagree on their predictions: more than {share:.0%} of the watched "
            f"training rows have an R-hat above {PREDICTION_RHAT_THRESHOLD} (the "
            f"{PREDICTION_RHAT_QUANTILE:.0%} quantile is {q:.3g}). {advice}"
        ]
    q = diagnostics.get("drift_rhat_quantile", float("nan"))
    if np.isnan(q) or q <= DRIFT_RHAT_THRESHOLD:
        return []
    return [
        f"The chains are still moving: for more than {share:.0%} of the watched training "
        f"rows, the first half of a chain's draws predicts unlike the second half (the "
        f"{PREDICTION_RHAT_QUANTILE:.0%} quantile of the within-chain R-hat is {q:.3g} > "
        f"{DRIFT_RHAT_THRESHOLD}). {advice}"
    ]
