"""NUTS: ground truth on the conjugate model, diagnostics, warnings and the cost guard."""

import os
import pickle
import re
import subprocess
import sys
import textwrap
import warnings

import jax
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import NUTS
from skbnn.inference.nuts import NUTSInfo, diagnose

from .._conjugate import linear_draws, linear_gaussian_problem


@pytest.fixture(scope="module")
def conjugate_fit():
    p = linear_gaussian_problem()
    reg = BayesianMLPRegressor(
        (), inference=NUTS(n_chains=4, n_warmup=300, n_draws=500),
        noise_std=p.noise_std, normalize_y=False, alpha=p.alpha, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)  # a clean run must not warn
        reg.fit(p.X, p.y)
    return p, reg


def test_nuts_matches_exact_posterior_of_bayesian_linear_regression(conjugate_fit):
    # NUTS is exact up to Monte Carlo error. With effective sample size ESS the
    # standard error of a posterior mean is sd / sqrt(ESS) and that of a
    # posterior sd about sd / sqrt(2 ESS). The run below has ESS >= 1,000 for
    # every parameter (asserted), so 0.1 sd is >= 3.2 standard errors of the
    # mean and 10% is >= 4.4 standard errors of the sd (NUTS mixes the squares
    # more slowly than the means, so that one is looser: over seeds 0-5 the
    # worst errors were 0.033 sd and 5.7%, with ESS 1,490-2,030).
    p, reg = conjugate_fit
    theta = linear_draws(reg.posterior_.flatten())
    sd = np.sqrt(np.diag(p.cov))
    assert theta.shape == (2000, 4)
    assert reg.min_ess_ >= 1000
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.1)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.1)
    assert reg.max_rhat_ < 1.01
    assert reg.n_divergences_ == 0


def test_diagnostics_are_fitted_attributes_shaped_like_the_parameters(conjugate_fit):
    p, reg = conjugate_fit
    kernel = reg.posterior_.draws["network"]["dense_0"]["kernel"]
    assert kernel.shape == (4, 500, 3, 1)  # chain axis kept
    assert reg.rhat_["network"]["dense_0"]["kernel"].shape == (3, 1)
    assert reg.ess_["network"]["dense_0"]["bias"].shape == (1,)
    assert reg.max_rhat_ == max(np.max(x) for x in jax.tree.leaves(reg.rhat_))
    assert reg.min_ess_ == min(np.min(x) for x in jax.tree.leaves(reg.ess_))
    assert reg.step_size_.shape == reg.mean_tree_depth_.shape == (4,)
    assert np.all(reg.step_size_ > 0) and np.all(reg.mean_tree_depth_ >= 1)
    assert len(reg.loss_curve_) == reg.n_iter_ == 800
    # the loss is the negative log posterior per row: it settles after warmup
    assert np.std(reg.loss_curve_[300:]) < 0.1


def test_rhat_and_ess_flag_chains_that_disagree():
    # Two chains of independent draws from N(0, 1) and N(3, 1): R-hat far above
    # 1; the same draws from one distribution: R-hat near 1 and ESS near the count.
    rng = np.random.RandomState(0)
    template = {"w": np.zeros(2)}
    info = NUTSInfo(*(np.zeros((400, 2)) for _ in range(5)))
    good = rng.normal(size=(2, 400, 2))
    bad = good + np.array([0.0, 3.0])[:, None, None]
    d_good = diagnose(good, info, info, template, max_tree_depth=10)
    d_bad = diagnose(bad, info, info, template, max_tree_depth=10)
    assert d_good["max_rhat"] < 1.01 < 1.5 < d_bad["max_rhat"]
    assert 600 < d_good["min_ess"] < 1000
    assert d_bad["min_ess"] < 20
    assert d_bad["max_rhat_parameter"].startswith("w[")


def test_bad_settings_on_a_hard_posterior_warn_with_what_to_change():
    rng = np.random.RandomState(0)
    X = rng.uniform(-1, 1, size=(40, 1))
    y = X[:, 0] * np.sin(5 * X[:, 0]) + 0.1 * rng.normal(size=40)
    reg = BayesianMLPRegressor(
        (10,), activation="tanh",
        inference=NUTS(n_chains=2, n_warmup=10, n_draws=30, max_tree_depth=1, init="uniform"),
        random_state=0,
    )
    with pytest.warns(ConvergenceWarning, match="R-hat") as record:
        reg.fit(X, y)
    message = str(record[0].message)
    assert "raise max_tree_depth" in message and "Raise n_draws" in message


def test_cost_guard_refuses_big_runs_and_can_be_raised():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(500, 20))
    y = (X[:, 0] > 0).astype(int)
    clf = BayesianMLPClassifier((64,), inference=NUTS(), random_state=0)
    with pytest.raises(ValueError, match="'psgld' or 'vi'.*raise max_cost"):
        clf.fit(X, y)
    small = NUTS(n_chains=1, n_warmup=4, n_draws=4, max_tree_depth=2, max_cost=1e8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        BayesianMLPClassifier((64,), inference=small, max_iter=2, random_state=0).fit(X, y)


def test_early_stopping_is_refused():
    X, y = np.random.RandomState(0).normal(size=(30, 2)), np.arange(30) % 2
    clf = BayesianMLPClassifier((4,), inference="nuts", early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True is not supported"):
        clf.fit(X, y)


def _small_linear_fit(**nuts_params):
    """Two chains on a 50-row linear problem: the problem, the estimator, the draws."""
    p = linear_gaussian_problem(n_samples=50)
    reg = BayesianMLPRegressor(
        (), inference=NUTS(n_chains=2, **nuts_params),
        noise_std=p.noise_std, normalize_y=False, alpha=p.alpha, max_iter=50, random_state=0,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        reg.fit(p.X, p.y)
    return p, reg, linear_draws(reg.posterior_.flatten())


@pytest.mark.parametrize("init", ["map", "uniform", "network"])
def test_inits_start_each_chain_elsewhere_and_sample_the_same_posterior(init):
    # Every start reaches the same (unimodal) posterior: the linear model's.
    p, reg, theta = _small_linear_fit(n_warmup=100, n_draws=100, init=init)
    assert reg.diagnostics_["init"] == init
    sd = np.sqrt(np.diag(p.cov))
    # 200 draws, ESS >~ 100: 0.5 sd is 5 standard errors
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.5)


def test_thinning_keeps_every_kth_transition():
    # the same key and the same number of transitions: thinning 3 keeps every third
    # draw of the unthinned run, exactly
    X, y = np.random.RandomState(0).normal(size=(40, 2)), np.arange(40) % 2

    def draws(n_draws, thinning):
        clf = BayesianMLPClassifier((3,), max_iter=20, random_state=0, inference=NUTS(
            n_chains=2, n_warmup=20, n_draws=n_draws, thinning=thinning))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            clf.fit(X, y)
        return np.asarray(clf.posterior_.draws["network"]["dense_0"]["kernel"])

    every, thinned = draws(15, 1), draws(5, 3)
    np.testing.assert_array_equal(thinned, every[:, 2::3])


def test_warm_start_chains_start_from_the_last_draws(monkeypatch):
    from jax.flatten_util import ravel_pytree

    from skbnn.inference import nuts

    starts = []
    original = nuts._run_chains

    def spy(model, data, config, key, positions, *args, **kwargs):
        starts.append(np.asarray(positions))
        return original(model, data, config, key, positions, *args, **kwargs)

    monkeypatch.setattr(nuts, "_run_chains", spy)
    X, y = np.random.RandomState(0).normal(size=(40, 2)), np.arange(40) % 2
    clf = BayesianMLPClassifier((3,), inference=NUTS(n_chains=2, n_warmup=20, n_draws=5),
                                max_iter=20, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        last = clf.posterior_.warm_start_params()
        clf.fit(X, y)
    expected = np.stack([ravel_pytree(jax.tree.map(lambda x: x[c], last))[0]
                         for c in range(2)])
    np.testing.assert_array_equal(starts[1], expected)
    assert clf.diagnostics_["init"] == "warm_start"


def test_thinning_counts_iterations_and_warm_start_continues():
    X, y = np.random.RandomState(0).normal(size=(40, 2)), np.arange(40) % 2
    clf = BayesianMLPClassifier(
        (3,), inference=NUTS(n_chains=2, n_warmup=20, n_draws=5, thinning=3),
        max_iter=20, random_state=0, warm_start=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
        assert clf.n_iter_ == 20 + 15
        assert clf.posterior_.draws["network"]["dense_0"]["kernel"].shape == (2, 5, 2, 3)
        clf.fit(X, y)
    assert clf.diagnostics_["init"] == "warm_start"


def test_same_random_state_same_predictions_and_pickle_round_trip():
    X, y = np.random.RandomState(0).normal(size=(40, 3)), np.arange(40) % 3
    make = lambda: BayesianMLPClassifier(  # noqa: E731
        (4,), inference=NUTS(n_chains=2, n_warmup=30, n_draws=10), max_iter=20, random_state=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a, b = make().fit(X, y), make().fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(a.predict_proba(X), c.predict_proba(X))
    np.testing.assert_array_equal(a.rhat_["network"]["dense_0"]["kernel"],
                                  c.rhat_["network"]["dense_0"]["kernel"])


def test_chains_are_sharded_over_several_devices():
    # Fresh processes with two host devices and with one: the chain axis is split over
    # the two, and the draws are exactly those of the one-device run.
    script = textwrap.dedent("""
        import hashlib, warnings, numpy as np, jax
        from skbnn import BayesianMLPClassifier
        from skbnn.inference import NUTS
        warnings.simplefilter("ignore")
        rng = np.random.RandomState(0)
        X = rng.normal(size=(60, 4)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
        clf = BayesianMLPClassifier((4,), inference=NUTS(n_chains=2, n_warmup=20, n_draws=5),
                                    max_iter=5, random_state=0).fit(X, y)
        draws = np.asarray(clf.posterior_.draws["network"]["dense_0"]["kernel"])
        assert np.isfinite(draws).all() and len({c.tobytes() for c in draws}) == 2
        print(jax.device_count(), clf.diagnostics_["n_devices"],
              hashlib.sha1(draws.tobytes()).hexdigest())
    """)
    runs = {}
    for n in (2, 1):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n}",
                   JAX_PLATFORMS="cpu")
        out = subprocess.run([sys.executable, "-c", script], env=env,
                             capture_output=True, text=True, check=True)
        runs[n] = out.stdout.split()
    assert runs[2][:2] == ["2", "2"] and runs[1][:2] == ["1", "1"]
    assert runs[2][2] == runs[1][2]


def test_divergences_warn_with_what_to_change():
    # no warmup and a step size far too large for a tanh network: every transition
    # diverges, and the warning says so and what to change
    rng = np.random.RandomState(0)
    X = rng.normal(size=(60, 2))
    y = X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=60)
    reg = BayesianMLPRegressor((10,), activation="tanh", random_state=0, inference=NUTS(
        n_chains=2, n_warmup=0, n_draws=30, step_size=3.0, init="uniform"))
    with pytest.warns(ConvergenceWarning, match="transitions after warmup diverged") as record:
        with np.errstate(invalid="ignore"):
            reg.fit(X, y)
    assert reg.n_divergences_ > 30
    assert any("Raise target_accept_prob" in str(r.message) for r in record)


def test_dense_mass_adapts_to_correlated_parameters():
    # two nearly collinear inputs: their weights' posterior is a narrow diagonal ridge.
    # A dense mass matrix learns the correlation, so trajectories need fewer leapfrog
    # steps and the draws are less correlated than with the diagonal one; both sample
    # the exact posterior.
    rng = np.random.RandomState(0)
    z = rng.normal(size=(100, 1))
    X = np.hstack([z + 0.05 * rng.normal(size=(100, 1)), z + 0.05 * rng.normal(size=(100, 1)),
                   rng.normal(size=(100, 1))])
    y = X @ np.array([1.0, -0.5, 0.3]) + 0.5 * rng.normal(size=100)
    phi = np.hstack([X, np.ones((100, 1))])
    cov = np.linalg.inv(np.eye(4) + phi.T @ phi / 0.25)
    mean = cov @ phi.T @ y / 0.25
    fits = {}
    for dense in (False, True):
        reg = BayesianMLPRegressor((), noise_std=0.5, normalize_y=False, random_state=0,
                                   inference=NUTS(n_chains=2, n_warmup=300, n_draws=300,
                                                  dense_mass=dense))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            reg.fit(X, y)
        theta = linear_draws(reg.posterior_.flatten())
        sd = np.sqrt(np.diag(cov))
        # 600 draws, ESS >= 150 asserted: 0.35 sd is over 4 standard errors
        assert reg.min_ess_ >= 150
        np.testing.assert_array_less(np.abs(theta.mean(axis=0) - mean) / sd, 0.35)
        fits[dense] = reg
    # measured: mean tree depth 5.2 (diagonal) against 2.6 (dense), min ESS 202 against 583
    assert (fits[True].diagnostics_["mean_tree_depth"].mean()
            < 0.75 * fits[False].diagnostics_["mean_tree_depth"].mean())
    assert fits[True].min_ess_ > 1.5 * fits[False].min_ess_


def test_verbose_reports_the_run_and_no_warmup_is_allowed(capsys):
    X, y = np.random.RandomState(0).normal(size=(30, 2)), np.arange(30) % 2
    clf = BayesianMLPClassifier((3,), inference=NUTS(n_chains=2, n_warmup=0, n_draws=5,
                                                     init="network"),
                                verbose=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    out = capsys.readouterr().out
    assert "2 chains x (0 warmup + 5 sampling)" in out and "max R-hat" in out
    assert "NUTS warmup" not in out and "NUTS sampling: 5/5 transitions (100%)" in out
    assert clf.n_iter_ == 5


def _small_iris_fit(verbose, chain_method):
    X, y = load_iris(return_X_y=True)
    rows = np.random.RandomState(0).permutation(len(X))[:40]
    clf = BayesianMLPClassifier((3,), max_iter=20, random_state=0, verbose=verbose,
                                inference=NUTS(n_chains=2, n_warmup=20, n_draws=20,
                                               chain_method=chain_method))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X[rows], y[rows])


_PROGRESS = re.compile(
    r"NUTS (warmup|sampling): (\d+)/20 transitions \(\d+%\), [\d.]+ s elapsed"
    r"(, about \d+ s left)?, step sizes? [\d.e+-]+( to [\d.e+-]+)?, \d+ divergences?"
)


@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_verbose_prints_warmup_and_sampling_progress_while_running(chain_method, capsys,
                                                                   monkeypatch):
    # a line at every tenth of warmup, then of sampling, then the summary; each
    # printed between compiled segments, while the chains still have transitions to run
    from skbnn.inference import nuts

    segments, printed = [], []
    transitions, print_line = nuts._transitions, nuts._Progress._print

    def spy_transitions(*args, **kwargs):
        segments.append(args)
        return transitions(*args, **kwargs)

    def spy_print(self, done, *args):
        printed.append((done, len(segments)))
        return print_line(self, done, *args)

    monkeypatch.setattr(nuts, "_transitions", spy_transitions)
    monkeypatch.setattr(nuts._Progress, "_print", spy_print)
    _small_iris_fit(1, chain_method)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines()
             if line.startswith(("NUTS warmup", "NUTS sampling"))]
    matches = [_PROGRESS.fullmatch(line) for line in lines]
    assert all(matches), lines
    for phase in ("warmup", "sampling"):
        counts = [int(m[2]) for m in matches if m[1] == phase]
        assert counts == list(range(2, 21, 2))  # increasing, ending at n_warmup / n_draws
    assert out.index("NUTS warmup: 20/20") < out.index("NUTS sampling: 2/20")
    assert out.index("NUTS sampling: 20/20") < out.index("NUTS: 2 chains x (20 warmup")
    assert [done for done, _ in printed] == list(range(2, 41, 2))
    assert all(n_started < len(segments) for _, n_started in printed[:-1])


@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_verbose_prints_nothing_when_off_and_never_changes_the_draws(chain_method, capsys):
    quiet = _small_iris_fit(0, chain_method)
    assert capsys.readouterr().out == ""
    loud = _small_iris_fit(1, chain_method)
    assert "NUTS sampling: 20/20" in capsys.readouterr().out
    for a, b in zip(jax.tree.leaves(quiet.posterior_.draws),
                    jax.tree.leaves(loud.posterior_.draws), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(quiet.loss_curve_, loud.loss_curve_)
    assert quiet.diagnostics_["n_grad_evals"] == loud.diagnostics_["n_grad_evals"]


def test_refit_with_another_strategy_drops_the_nuts_diagnostics():
    X, y = np.random.default_rng(0).normal(size=(30, 2)), np.arange(30) % 2
    clf = BayesianMLPClassifier((), inference=NUTS(n_chains=1, n_warmup=20, n_draws=20,
                                                   init="network"), random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf.fit(X, y)
    assert hasattr(clf, "rhat_") and hasattr(clf, "n_divergences_")
    clf.set_params(inference="map").fit(X, y)
    assert not hasattr(clf, "rhat_") and not hasattr(clf, "n_divergences_")


def test_parallel_chains_are_single_chain_runs_of_their_own_keys():
    # chain_method="parallel" runs each chain as its own program from its own
    # thread: chain i's draws are exactly the one-chain run of key split(key)[i]
    # from chain i's start, so neither the threads nor the other chains change them.
    from jax.flatten_util import ravel_pytree

    from skbnn.inference import nuts
    from skbnn.inference.base import Training, device_data
    from skbnn.likelihoods import Categorical
    from skbnn.model import Model
    from skbnn.networks import build_mlp
    from skbnn.priors import GaussianPrior

    rng = np.random.RandomState(0)
    X = rng.normal(size=(30, 3)).astype(np.float32)
    data = device_data(X, (X[:, 0] > 0).astype(np.int32), np.ones(30, np.float32))
    model = Model(build_mlp((3,), "tanh", 2), Categorical(2), GaussianPrior(np.float32(1.0)))
    template = model.init(jax.random.key(0), (3,))
    positions = np.stack([ravel_pytree(model.init(jax.random.key(k), (3,)))[0]
                          for k in range(3)])
    config = NUTS(n_chains=3, n_warmup=20, n_draws=10).config(None, Training())
    key = jax.random.key(5)
    draws, info, _ = nuts._run_chains(model, data, config, key, positions, template, "parallel")
    assert draws.shape == (3, 10, positions.shape[1])
    assert np.asarray(info.num_steps).shape == (30, 3)
    one = config.replace(n_chains=1)
    for i, chain_key in enumerate(jax.random.split(key, 3)):
        # one call for all 30 transitions: the parallel run's segments change nothing
        alone, alone_info, _ = nuts._sample(model, data, one, chain_key, positions[i:i + 1],
                                            template, [30])
        np.testing.assert_array_equal(draws[i], np.asarray(alone)[0])
        np.testing.assert_array_equal(np.asarray(info.num_steps)[:, i],
                                      np.asarray(alone_info.num_steps)[:, 0])
    assert len({draws[i].tobytes() for i in range(3)}) == 3


def test_long_runs_are_cut_into_segments_that_bound_the_memory_held():
    # XLA:CPU holds what a running chain's program allocates in its loops until
    # the program returns (4 x 7,000 transitions on concrete grew past 24 GB):
    # the run is cut so that each call holds at most _SEGMENT_BYTES
    from skbnn.inference import nuts
    from skbnn.inference.base import Training

    config = NUTS(n_warmup=2000, n_draws=5000).config(None, Training())
    stops = nuts._stops(config, n_rows=824, n_params=501)
    lengths = np.diff([0, *stops])
    assert stops[-1] == 7000 and np.all(lengths > 0)
    assert lengths.max() * nuts._BYTES_PER_ROW_PARAM * 824 * 501 <= nuts._SEGMENT_BYTES
    assert len(stops) < 7000 / 5  # not one dispatch per transition either
    # a small model: segments of at most _MAX_SEGMENT; progress checkpoints kept
    progress = nuts._Progress(config, 4)
    stops = nuts._stops(config, n_rows=30, n_params=10, progress=progress)
    assert np.diff([0, *stops]).max() <= nuts._MAX_SEGMENT
    assert set(progress.checkpoints) <= set(stops)
    # a huge model: one transition per call, never zero
    assert nuts._stops(config.replace(n_warmup=3, n_draws=2), 10**6, 10**6) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("chain_method", ["parallel", "vectorized"])
def test_both_chain_methods_sample_the_exact_posterior(chain_method):
    p, reg, theta = _small_linear_fit(n_warmup=150, n_draws=300, chain_method=chain_method)
    assert reg.diagnostics_["chain_method"] == chain_method
    sd = np.sqrt(np.diag(p.cov))
    # 600 draws, ESS >~ 300: 0.3 sd is over 5 standard errors of the mean, 20%
    # over 4 of the sd
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.3)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.2)


def test_chain_method_auto_runs_parallel_chains_on_a_cpu():
    X, y = np.random.RandomState(0).normal(size=(30, 2)), np.arange(30) % 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = BayesianMLPClassifier((3,), inference=NUTS(n_chains=2, n_warmup=10, n_draws=5),
                                    max_iter=5, random_state=0).fit(X, y)
    expected = "parallel" if jax.default_backend() == "cpu" else "vectorized"
    assert clf.diagnostics_["chain_method"] == expected
    with pytest.raises(ValueError, match="chain_method"):
        BayesianMLPClassifier((3,), inference=NUTS(chain_method="threads")).fit(X, y)
