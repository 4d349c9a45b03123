"""The registry's defaults (env version v1) are the RL settings, exactly as documented:
log-scaled knob moves, a log-scaled difference observation, a log reward."""

from __future__ import annotations

import gymnasium as gym
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from ddsp_gym.agents import QUERY_ENV_KWARGS, RandomSearchAgent
from ddsp_gym.envs.functional import (
    DIFFERENCE_FLOOR,
    log_delta_action,
    log_delta_move,
    signed_log,
)
from ddsp_gym.features.summary import SUMMARY_BOUND, SUMMARY_SIZE, summary_features
from tests.conftest import TARGET_ENV_IDS

RL_DEFAULTS = {
    "control": "log_delta",
    "max_delta": 0.5,
    "min_delta": 0.001,
    "observation": "log_difference",
    "reward_shape": "log",
}
SINE = "ddsp_gym/SineTuner-v1"


def test_every_registered_env_has_the_rl_defaults():
    for env_id in TARGET_ENV_IDS:  # a streaming env is played by block, not by these
        assert env_id.endswith("-v1")
        kwargs = gym.spec(env_id).kwargs
        assert {k: kwargs[k] for k in RL_DEFAULTS} == RL_DEFAULTS, env_id


def test_a_v0_id_says_which_version_to_use():
    with pytest.raises(gym.error.DeprecatedEnv, match="SineTuner-v1"):
        gym.make("ddsp_gym/SineTuner-v0")


def test_log_delta_moves_span_min_to_max_delta_and_invert():
    a = jnp.linspace(-1.0, 1.0, 201)
    move = np.asarray(log_delta_move(a, 0.001, 0.5))
    np.testing.assert_allclose(np.asarray(log_delta_move(-a, 0.001, 0.5)), -move, atol=1e-7)
    assert np.all(np.diff(move) > 0)  # strictly increasing
    assert abs(move[100]) < 1e-9 and move[-1] == pytest.approx(0.5, rel=1e-5)
    # Equal steps of |a| multiply (move + min_delta) by equal ratios: 501 ** 0.1 per 0.1.
    ratio = (move[120] + 0.001) / (move[110] + 0.001)
    assert ratio == pytest.approx(501**0.1, rel=1e-4)
    # Near 0 the slope is min_delta * ln(1 + max_delta / min_delta), the same on both sides.
    slope = float(log_delta_move(jnp.float32(1e-4), 0.001, 0.5)) / 1e-4
    assert slope == pytest.approx(0.001 * np.log(501), rel=1e-3)
    back = np.asarray(log_delta_action(jnp.asarray(move), 0.001, 0.5))
    np.testing.assert_allclose(back, np.asarray(a), atol=1e-5)


def test_the_default_action_nudges_knobs_by_log_delta_moves():
    env = gym.make(SINE)
    env.reset(seed=3)
    before = np.asarray(env.unwrapped.state.knobs)
    for action in (0.1, -0.4, 1.0):
        env.step(np.array([action], np.float32))
        after = np.asarray(env.unwrapped.state.knobs)
        expected = np.clip(before + float(log_delta_move(jnp.float32(action), 0.001, 0.5)), 0, 1)
        np.testing.assert_allclose(after, expected, atol=1e-6)
        before = after


def test_signed_log_is_odd_linear_near_zero_and_keeps_the_bound():
    x = jnp.asarray([-10.0, -SUMMARY_BOUND, -1e-6, 0.0, 1e-6, 1e-3, SUMMARY_BOUND])
    y = np.asarray(signed_log(x, DIFFERENCE_FLOOR))
    scale = SUMMARY_BOUND / np.log1p(SUMMARY_BOUND / DIFFERENCE_FLOOR)
    assert y[0] == pytest.approx(-SUMMARY_BOUND) and y[1] == pytest.approx(-SUMMARY_BOUND)
    assert y[-1] == pytest.approx(SUMMARY_BOUND)
    assert y[3] == 0.0 and y[2] == pytest.approx(-y[4])
    assert y[4] == pytest.approx(1e-6 / DIFFERENCE_FLOOR * scale, rel=1e-3)
    assert y[5] == pytest.approx(np.log(2.0) * scale, rel=1e-5)


def test_the_observation_is_the_log_difference_of_the_summaries():
    env = gym.make(SINE)
    obs, _ = env.reset(seed=5)
    obs, *_ = env.step(np.array([0.3], np.float32))
    base = env.unwrapped
    sr = base.plant.sample_rate
    current = summary_features(jnp.asarray(base.current_audio()), sr)
    target = summary_features(jnp.asarray(base.target_audio()), sr)
    d = base.plant.num_knobs
    assert obs.shape == (d + 2 * SUMMARY_SIZE,)
    np.testing.assert_allclose(obs[:d], np.asarray(base.state.knobs), atol=1e-6)
    expected = np.asarray(signed_log(current - target, DIFFERENCE_FLOOR))
    np.testing.assert_allclose(obs[d : d + SUMMARY_SIZE], expected, atol=2e-3)
    np.testing.assert_allclose(obs[d + SUMMARY_SIZE :], np.asarray(target), atol=1e-5)
    assert env.observation_space.contains(obs)


def test_the_reward_is_minus_log1p_of_distance_over_threshold():
    env = gym.make(SINE)
    env.reset(seed=7)
    threshold = float(env.unwrapped.params.success_threshold)
    for action in (0.8, -0.2, 0.05):
        _, reward, _, _, info = env.step(np.array([action], np.float32))
        expected = -np.log1p(info["distance"] / threshold) - info["penalty"]
        assert reward == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_a_success_bonus_is_paid_on_the_successful_step_only():
    env = gym.make("ddsp_gym/VolumeMatch-v1", success_bonus=2.0)
    env.reset(seed=1)
    base = env.unwrapped
    threshold = float(base.params.success_threshold)
    _, reward, terminated, _, info = env.step(np.array([0.5], np.float32))
    assert not info["success"]
    assert reward == pytest.approx(-np.log1p(info["distance"] / threshold) - info["penalty"])
    for _ in range(3):  # a move is at most max_delta: the target may be further away
        fenv, state = base.functional, base.state
        on_target = fenv.action_for(state.knobs, state.target_knobs, base.params)
        _, reward, terminated, _, info = env.step(np.asarray(on_target, np.float32))
        if terminated:
            break
        assert reward == pytest.approx(-np.log1p(info["distance"] / threshold) - info["penalty"])
    assert info["success"] and terminated
    expected = 2.0 - np.log1p(info["distance"] / threshold) - info["penalty"]
    assert reward == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("env_id", [SINE, "ddsp_gym/FMBell-v1"])
def test_the_default_envs_pass_gymnasiums_checker(env_id):
    check_env(gym.make(env_id).unwrapped, skip_render_check=True)


def test_query_agents_refuse_the_rl_defaults_and_run_on_query_kwargs():
    with pytest.raises(ValueError, match="QUERY_ENV_KWARGS"):
        RandomSearchAgent().solve(gym.make(SINE), seed=10000, budget=5)
    result = RandomSearchAgent().solve(gym.make(SINE, **QUERY_ENV_KWARGS), seed=10000, budget=5)
    assert result.queries == 5 and np.isfinite(result.best_distance)
