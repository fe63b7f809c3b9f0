"""pSGLD: ground truth on the conjugate model, and the parts it is made of."""

import os
import subprocess
import sys
import textwrap

import jax.numpy as jnp
import numpy as np
import pytest

from skbnn import BayesianMLPClassifier, BayesianMLPRegressor
from skbnn.inference import PSGLD
from skbnn.inference.psgld import (
    PSGLDConfig,
    epochs_for_all_draws,
    init,
    kept_draws,
    preconditioner,
    save_plan,
    step_size_schedule,
)

from .._conjugate import linear_draws, linear_gaussian_problem


def test_psgld_matches_exact_posterior_of_bayesian_linear_regression():
    # 8 chains x 500 draws from 32,000 minibatch steps. Over seeds 0-5 the
    # worst mean error was 0.057 posterior sd and the worst sd error 3.5%:
    # the bounds (0.1 sd, 15%) leave room for Monte Carlo error (effective
    # sample size ~1,000) and for the step-size and minibatch bias.
    p = linear_gaussian_problem()
    reg = BayesianMLPRegressor(
        (), inference=PSGLD(n_chains=8, n_draws=500, step_size=2e-3),
        noise_std=p.noise_std, normalize_y=False, alpha=p.alpha,
        batch_size=50, max_iter=8000, random_state=0,
    ).fit(p.X, p.y)
    theta = linear_draws(reg.posterior_.flatten())
    sd = np.sqrt(np.diag(p.cov))
    assert theta.shape == (4000, 4)
    np.testing.assert_array_less(np.abs(theta.mean(axis=0) - p.mean) / sd, 0.1)
    np.testing.assert_array_less(np.abs(theta.std(axis=0) / sd - 1.0), 0.15)


def test_adapting_preconditioner_throughout_overstates_the_spread():
    # Why freeze_preconditioner=True is the default: adapting while sampling,
    # without the correction term, biases the spread upwards.
    p = linear_gaussian_problem()
    sds = {}
    for freeze in (True, False):
        reg = BayesianMLPRegressor(
            (), inference=PSGLD(n_chains=8, n_draws=500, step_size=1e-3,
                                freeze_preconditioner=freeze),
            noise_std=p.noise_std, normalize_y=False, alpha=p.alpha,
            batch_size=200, max_iter=8000, random_state=0,
        ).fit(p.X, p.y)
        sds[freeze] = linear_draws(reg.posterior_.flatten()).std(axis=0)
    exact = np.sqrt(np.diag(p.cov))
    # over seeds 0-2 every coordinate's sd was larger when adapting throughout,
    # by 0.028-0.037 exact sds on average
    assert np.all(sds[False] > sds[True])
    assert np.mean(sds[False] / exact) > np.mean(sds[True] / exact) + 0.015


def _config(**kw):
    values = dict(step_size=1e-2, step_size_final=1e-2, step_size_power=0.33, temperature=1.0,
                  rms_decay=0.99, eps=1e-5, burn_in=0.5)
    values.update(kw)
    static = {k: values.pop(k) for k in ("decay", "n_chains", "n_draws", "n_cycles")
              if k in values}
    return PSGLDConfig(**{k: jnp.asarray(v) for k, v in values.items()}, **static)


def test_polynomial_schedule_hits_first_and_last_step_size():
    config = _config(step_size=1e-2, step_size_final=1e-4, decay=True)
    schedule = step_size_schedule(config, save_plan(config, 1000))
    np.testing.assert_allclose(schedule(0), 1e-2, rtol=1e-5)
    np.testing.assert_allclose(schedule(1000), 1e-4, rtol=1e-4)
    values = np.array([schedule(t) for t in range(0, 1001, 100)])
    assert np.all(np.diff(values) < 0)


def test_constant_schedule_is_constant():
    config = _config(step_size=3e-3)
    schedule = step_size_schedule(config, save_plan(config, 1000))
    assert float(schedule(0)) == float(schedule(999)) == pytest.approx(3e-3)


def test_cyclical_schedule_restarts_every_cycle():
    config = _config(step_size=1e-2, step_size_final=0.0, n_cycles=4, n_draws=8)
    schedule = step_size_schedule(config, save_plan(config, 400))
    h = np.array([float(schedule(t)) for t in range(400)])
    np.testing.assert_allclose(h[[0, 100, 200, 300]], 1e-2, rtol=1e-6)  # each cycle's start
    np.testing.assert_allclose(h[[50, 150]], 5e-3, rtol=1e-6)  # half way down the cosine
    assert h[99] < 1e-5 and np.all(np.diff(h[:100]) < 0)


def test_save_plan_keeps_evenly_spaced_draws_ending_at_last_step():
    plan = save_plan(_config(n_draws=5, burn_in=0.5), 100)
    np.testing.assert_array_equal(plan.save_steps, [60, 70, 80, 90, 100])
    np.testing.assert_array_equal(plan.adapt_ends, [50])


def test_cyclical_save_plan_keeps_draws_at_the_end_of_every_cycle():
    plan = save_plan(_config(n_draws=5, burn_in=0.5, n_cycles=2), 100)
    np.testing.assert_array_equal(plan.cycle_ends, [50, 100])
    np.testing.assert_array_equal(plan.adapt_ends, [25, 75])
    np.testing.assert_array_equal(plan.save_steps, [38, 50, 84, 92, 100])


def test_save_plan_keeps_one_draw_per_step_when_short_of_steps():
    # 25 steps follow burn-in: 25 draws, one per step, the last at the last step
    config = _config(n_draws=30, burn_in=0.5)
    plan = save_plan(config, 50)
    np.testing.assert_array_equal(plan.save_steps, np.arange(26, 51))
    assert kept_draws(config, 50) == 25
    # the smallest budget that keeps all 30: 60 steps (30 after burn-in)
    assert epochs_for_all_draws(config, steps_per_epoch=10, max_iter=5) == 6
    # a single step still keeps its state
    assert kept_draws(config, 1) == 1
    with pytest.raises(ValueError, match="at least one draw per cycle"):
        save_plan(_config(n_draws=3, n_cycles=4), 400)


def test_preconditioner_after_one_step_is_inverse_gradient_magnitude():
    # With Adam-style bias correction the first V_hat is g**2, so G = 1/(n (eps + |g|)).
    g = {"w": jnp.array([0.5, -2.0, 0.0])}
    state = init({"w": jnp.zeros(3)})
    import optax

    sq = optax.tree.update_moment_per_elem_norm(g, state.sq_grad_avg, 0.99, 2)
    G = preconditioner(optax.tree.bias_correction(sq, 0.99, 1), eps=1e-5, data_size=100.0)
    np.testing.assert_allclose(G["w"], 1.0 / (100.0 * (1e-5 + jnp.abs(g["w"]))), rtol=1e-4)


def test_chains_differ_and_are_stored_with_chain_axis(digits_split):
    X_train, X_test, y_train, y_test = digits_split
    clf = BayesianMLPClassifier(
        (32,), inference=PSGLD(n_chains=3, n_draws=4), max_iter=8, random_state=0,
    ).fit(X_train, y_train)
    kernel = clf.posterior_.draws["network"]["dense_0"]["kernel"]
    assert kernel.shape == (3, 4, 64, 32)
    assert not np.allclose(kernel[0, -1], kernel[1, -1])
    assert clf.sample_predictions(X_test).shape == (12, len(X_test), 10)


def test_temperature_scales_the_spread():
    p = linear_gaussian_problem()
    sds = []
    for temperature in (1.0, 0.25):
        reg = BayesianMLPRegressor(
            (), inference=PSGLD(n_chains=8, n_draws=250, step_size=2e-3,
                                temperature=temperature),
            noise_std=p.noise_std, normalize_y=False, alpha=p.alpha,
            batch_size=50, max_iter=4000, random_state=0,
        ).fit(p.X, p.y)
        sds.append(linear_draws(reg.posterior_.flatten()).std(axis=0))
    # p^(1/T) of a Gaussian has sd * sqrt(T): half the spread at T = 1/4.
    np.testing.assert_allclose(sds[1] / sds[0], 0.5, rtol=0.15)


def test_early_stopping_is_refused():
    X = np.random.RandomState(0).normal(size=(40, 3))
    y = (X[:, 0] > 0).astype(int)
    clf = BayesianMLPClassifier((4,), inference="psgld", early_stopping=True)
    with pytest.raises(ValueError, match="early_stopping=True is not supported"):
        clf.fit(X, y)


def test_divergence_raises_with_the_knob_to_turn():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(100, 5)) * 1e4
    y = X @ rng.normal(size=5)
    reg = BayesianMLPRegressor((16,), inference=PSGLD(step_size=1e6, n_draws=2),
                               normalize_y=False, max_iter=5, random_state=0)
    with pytest.raises(ValueError, match="step_size"):
        reg.fit(X, y)


def test_chains_are_sharded_over_several_devices():
    # A fresh process with two host devices: the chain axis is split over
    # them, and the draws equal those of the same fit on one device.
    script = textwrap.dedent("""
        import sys, numpy as np, jax
        from skbnn import BayesianMLPClassifier
        from skbnn.inference import PSGLD
        rng = np.random.RandomState(0)
        X = rng.normal(size=(60, 4)); y = (X[:, 0] + X[:, 1] > 0).astype(int)
        clf = BayesianMLPClassifier((8,), inference=PSGLD(n_chains=2, n_draws=3),
                                    max_iter=6, random_state=0).fit(X, y)
        np.save(sys.argv[1], clf.posterior_.draws["network"]["dense_0"]["kernel"])
        print(jax.device_count(), clf.diagnostics_["n_devices"])
    """)
    outputs = {}
    for n_dev in (1, 2):
        env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={n_dev}",
                   JAX_PLATFORMS="cpu")
        path = f"{os.environ.get('TMPDIR', '/tmp')}/skbnn_shard_{os.getpid()}_{n_dev}.npy"
        out = subprocess.run([sys.executable, "-c", script, path], env=env,
                             capture_output=True, text=True, check=True)
        assert out.stdout.split() == [str(n_dev), str(n_dev)]
        outputs[n_dev] = np.load(path)
        os.remove(path)
    np.testing.assert_allclose(outputs[1], outputs[2], rtol=1e-5, atol=1e-6)
