"""The agents: honest query budgets, determinism, and the hybrid's parts."""

from __future__ import annotations

import numpy as np
import pytest

from ddsp_gym.agents.base import PlantOracle, Stop
from ddsp_gym.agents.cma_es import CMAAgent, fold_into_unit
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.agents.hybrid import HybridAgent, hybrid_step
from ddsp_gym.agents.lyapunov import LyapunovMonitor
from ddsp_gym.agents.random_search import RandomSearchAgent
from ddsp_gym.agents.scheduler import DitherScheduler
from ddsp_gym.agents.spsa import antithetic_gradient, rademacher
from tests.conftest import make

AGENTS = [RandomSearchAgent(), CMAAgent(), GradientAgent(), HybridAgent()]


# ---- the Lyapunov monitor ------------------------------------------------------------


def test_lyapunov_monitor_rolls_back_on_an_injected_loss_increase():
    monitor = LyapunovMonitor(window=3)
    thetas = [np.array([0.1 * k]) for k in range(10)]
    losses = [1.0, 0.8, 0.6, 0.5]  # descending: no rollback
    for theta, loss in zip(thetas, losses, strict=False):
        assert monitor.observe(loss, theta) is None
    # Inject an increase big enough to make the mean of the last 3 deltas positive.
    back = monitor.observe(2.0, thetas[4], query=5)
    np.testing.assert_array_equal(back, thetas[3])  # the best theta (loss 0.5)
    assert monitor.rollbacks == 1
    assert monitor.events[-1]["event"] == "rollback" and monitor.events[-1]["query"] == 5
    assert monitor.events[-1]["mean_delta"] == pytest.approx((2.0 - 0.8) / 3)


def test_lyapunov_monitor_tolerates_a_single_uphill_step_in_a_descent():
    monitor = LyapunovMonitor(window=4)
    for k, loss in enumerate([1.0, 0.7, 0.75, 0.5, 0.4, 0.3]):
        assert monitor.observe(loss, np.array([float(k)])) is None
    assert monitor.rollbacks == 0


def test_lyapunov_monitor_returns_to_a_better_probe():
    monitor = LyapunovMonitor(window=1)
    monitor.observe(1.0, np.array([0.0]))
    monitor.record_best(0.2, np.array([0.7]))  # a probe off the trajectory
    np.testing.assert_array_equal(monitor.observe(1.1, np.array([0.1])), [0.7])


# ---- the scheduler --------------------------------------------------------------------


def test_scheduler_raises_sigma_on_a_flat_loss_up_to_its_bound():
    scheduler = DitherScheduler(sigma=0.01, sigma_max=0.05, patience=3)
    sigmas = []
    for _ in range(30):
        scheduler.update(1.0)
        sigmas.append(scheduler.sigma)
    assert sigmas[:3] == [0.01, 0.01, 0.01]  # the baseline, then two flat updates
    assert sigmas[3] == 0.02  # the third flat update is a plateau: sigma doubles
    assert np.all(np.diff(sigmas) >= 0) and sigmas[-1] == 0.05
    assert [e["event"] for e in scheduler.events] == ["plateau"] * (29 // 3)


def test_scheduler_lowers_sigma_and_raises_alpha_on_progress_within_bounds():
    scheduler = DitherScheduler(sigma=0.1, alpha=0.1, sigma_min=0.02, alpha_max=0.3)
    assert scheduler.update(2.0) is None  # the baseline
    for loss in [1.0, 0.5, 0.25, 0.1, 0.05]:
        assert scheduler.update(loss) == "progress"
    assert scheduler.sigma == 0.02 and scheduler.alpha == 0.3
    scheduler.shrink_alpha(1e-6)
    assert scheduler.alpha == scheduler.alpha_min
    assert all({"alpha", "sigma", "loss", "query"} <= set(e) for e in scheduler.events)


# ---- SPSA -----------------------------------------------------------------------------


def test_spsa_is_exact_for_a_linear_function():
    g = np.array([1.0, -2.0, 0.5])
    rng = np.random.default_rng(0)
    estimate, probes = antithetic_gradient(lambda x: float(g @ x), np.zeros(3), 0.1, np.eye(3))
    assert len(probes) == 6
    # With axis directions each pair recovers one coordinate exactly.
    np.testing.assert_allclose(estimate * 3, g)
    estimate, _ = antithetic_gradient(
        lambda x: float(g @ x), np.zeros(3), 0.1, rademacher(rng, 1, 3)
    )
    assert estimate @ g > 0


def test_spsa_estimate_correlates_with_the_true_gradient_on_a_smooth_env():
    env = make("ddsp_gym/EnvelopeShaper-v1", expose_grad=True).unwrapped
    rng = np.random.default_rng(1)
    cosines = []
    for seed in range(4):
        env.reset(seed=seed)
        action = rng.uniform(-0.8, 0.8, env.action_space.shape)
        _, true_grad = env.reward_and_grad(action.astype(np.float32))

        def reward(a):  # reward_and_grad's reward: one compiled function for the test
            return env.reward_and_grad(np.clip(a, -1, 1).astype(np.float32))[0]

        estimate, _ = antithetic_gradient(reward, action, 0.01, rademacher(rng, 16, action.size))
        cosines.append(
            estimate @ true_grad / (np.linalg.norm(estimate) * np.linalg.norm(true_grad))
        )
    assert np.mean(cosines) > 0.8, cosines


# ---- the hybrid's update law ------------------------------------------------------------


def test_hybrid_step_limits_knob_slew_and_stays_in_the_box():
    theta = np.array([0.0, 0.95, -0.5])
    new = hybrid_step(theta, np.array([10.0, -10.0, 0.0]), 1.0, 1.0, np.array([0, 0, 5.0]), 0.2)
    np.testing.assert_allclose(new, [-0.2, 1.0, -0.3])


def test_hybrid_logs_its_decisions_and_uses_spsa_without_a_plant_gradient():
    env = make("ddsp_gym/SineTuner-v1", expose_grad=False)
    result = HybridAgent().solve(env, seed=3, budget=150)
    assert result.success and result.queries <= 150
    kinds = {e["event"] for e in result.events}
    assert "progress" in kinds
    assert all("alpha" in e and "sigma" in e for e in result.events if e["event"] != "restart")


def test_scheduler_cap_alpha_lowers_the_ceiling_and_clips_alpha():
    scheduler = DitherScheduler(alpha=0.1, alpha_min=1e-3, alpha_max=0.3)
    scheduler.cap_alpha(0.05)
    assert scheduler.alpha_max == 0.05 and scheduler.alpha == 0.05
    scheduler.cap_alpha(1e-6)  # never below alpha_min
    assert scheduler.alpha_max == 1e-3 and scheduler.alpha == 1e-3


def test_hybrid_steps_no_larger_than_its_gradient_component_and_solves_where_it_does():
    # SubtractivePatch seed 10002: the gradient agent (lr 0.1 * 0.98^t) solves it; the
    # hybrid with alpha doubling up to 0.3 on progress overshot, rolled back and failed.
    env = make("ddsp_gym/SubtractivePatch-v1", expose_grad=True, max_episode_steps=200)
    assert GradientAgent().solve(env, 10002, 200).success
    result = HybridAgent().solve(env, 10002, 200)
    alphas = [e["alpha"] for e in result.events if "alpha" in e]
    assert alphas and max(alphas) <= 0.1 + 1e-12
    assert result.success


# ---- every agent ------------------------------------------------------------------------


@pytest.mark.parametrize("agent", AGENTS, ids=lambda a: a.name)
def test_agents_are_deterministic_and_keep_to_the_budget(agent):
    env = make("ddsp_gym/SineTuner-v1", expose_grad=True, max_episode_steps=500)
    first = agent.solve(env, 11, 40)
    again = agent.solve(env, 11, 40)
    assert first.distances == again.distances
    np.testing.assert_array_equal(first.best_action, again.best_action)
    assert first.queries == len(first.distances) <= 40
    if not first.success:
        assert first.queries == 40 and first.queries_to_success is None
    else:
        assert first.queries_to_success == first.queries
    assert first.best_distance == min(first.distances)


def test_oracle_counts_every_query_and_stops_at_success_or_budget():
    env = make("ddsp_gym/SineTuner-v1", expose_grad=True)
    oracle = PlantOracle(env, seed=0, budget=3)
    oracle.loss(np.zeros(1))
    loss, grad = oracle.loss_and_grad(np.zeros(1))
    assert oracle.queries == 2 and grad.shape == (1,)
    target = 2.0 * np.asarray(env.unwrapped.state.target_knobs) - 1.0
    oracle.loss(target)  # the target itself succeeds
    assert oracle.success_at == 3
    with pytest.raises(Stop):
        oracle.loss(np.zeros(1))
    result = oracle.result()
    assert result.success and result.queries == 3
    np.testing.assert_allclose(result.best_action, target, atol=1e-6)


def test_fold_into_unit_reflects_at_the_bounds():
    np.testing.assert_allclose(
        fold_into_unit(np.array([-0.25, 0.5, 1.25, 2.5])), [0.25, 0.5, 0.75, 0.5]
    )


@pytest.mark.slow
def test_hybrid_escapes_plateau_escape_where_gradient_descent_stalls():
    env = make("ddsp_gym/PlateauEscape-v1", expose_grad=True, max_episode_steps=200)
    seeds = range(10000, 10006)
    hybrid = [HybridAgent().solve(env, s, 200) for s in seeds]
    # Plain gradient descent: one start, small steps (no Adam-sized hops over the ripples).
    plain = [GradientAgent(learning_rate=0.01, patience=0).solve(env, s, 200) for s in seeds]
    assert sum(r.success for r in hybrid) >= 4
    assert sum(r.success for r in plain) <= 1
    assert any(e["event"] == "plateau" for r in hybrid for e in r.events)
