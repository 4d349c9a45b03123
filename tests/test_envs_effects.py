"""The effect envs: API checks, exact gradients, determinism, batching, solvability."""

from __future__ import annotations

import warnings

import gymnasium as gym
import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import ddsp_gym
from ddsp_gym.registry import load_registry

EFFECT_IDS = (
    "ddsp_gym/CompressorCalibration-v0",
    "ddsp_gym/DelayTime-v0",
    "ddsp_gym/ReverbSpace-v0",
    "ddsp_gym/DistortionDrive-v0",
    "ddsp_gym/GuitarTone-v0",
)


def test_registered_with_documented_entries():
    entries = {e.id: e for e in load_registry()}
    for env_id in EFFECT_IDS:
        assert env_id in ddsp_gym.ENV_IDS and env_id in gym.registry
        entry = entries[env_id]
        assert entry.seed_demo and entry.description
        config = entry.kwargs["task_config"]
        assert config["distance_scale"] > 0 and 0 < config["param_tolerance"] <= 0.05
        assert entry.kwargs["success_threshold"] > 0


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_gymnasium_and_sb3_checkers(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env.unwrapped, skip_render_check=True)
        sb3_check_env(env.unwrapped, warn=False)


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_reward_gradient_matches_finite_differences(env_id):
    env = gym.make(env_id, expose_grad=True).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    eps = 1e-3
    for _ in range(3):
        action = rng.uniform(-0.9, 0.9, env.action_space.shape).astype(np.float32)
        _, grad = env.reward_and_grad(action)
        fd = np.array(
            [
                (
                    env.reward_and_grad(action + eps * e)[0]
                    - env.reward_and_grad(action - eps * e)[0]
                )
                / (2 * eps)
                for e in np.eye(action.size, dtype=np.float32)
            ]
        )
        assert np.linalg.norm(grad - fd) / np.linalg.norm(fd) < 1e-2, (action, grad, fd)


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_same_seed_same_episode(env_id):
    runs = []
    for _ in range(2):
        env = gym.make(env_id, expose_grad=True)
        obs, _ = env.reset(seed=7)
        rewards = [env.step(np.full(env.action_space.shape, a, np.float32))[1] for a in (-0.5, 0.3)]
        runs.append((obs, env.unwrapped.target_audio(), rewards))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_batched_steps_equal_single_steps(env_id):
    env = gym.make(env_id).unwrapped
    fenv, params = env.functional, env.params
    keys = jax.random.split(jax.random.PRNGKey(3), 4)
    actions = jax.random.uniform(jax.random.PRNGKey(4), (4, fenv.num_knobs), minval=-1, maxval=1)
    states, _ = jax.vmap(fenv.reset, in_axes=(0, None))(keys, params)
    step = jax.vmap(fenv.step, in_axes=(0, 0, 0, None))
    _, obs, rewards, _, _ = jax.jit(step)(keys, states, actions, params)
    for i in range(4):
        state_i, _ = fenv.reset(keys[i], params)
        _, obs_i, reward_i, _, _ = fenv.step(keys[i], state_i, actions[i], params)
        np.testing.assert_allclose(obs[i], obs_i, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rewards[i], reward_i, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_random_and_extreme_actions_stay_finite(env_id):
    env = gym.make(env_id)
    env.reset(seed=0)
    d = env.action_space.shape
    actions = [np.full(d, -1.0, np.float32), np.full(d, 1.0, np.float32)]
    actions += [env.action_space.sample() for _ in range(60)]
    for action in actions:
        obs, reward, _, _, info = env.step(action)
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert np.isfinite(info["distance"]) and np.isfinite(info["param_error"])


@pytest.mark.parametrize("env_id", EFFECT_IDS)
def test_target_knobs_score_zero_and_succeed(env_id):
    env = gym.make(env_id, expose_grad=True).unwrapped
    env.reset(seed=5)
    action = np.asarray(2 * env.state.target_knobs - 1, np.float32)
    _, reward, terminated, _, info = env.step(action)
    assert info["distance"] < 1e-3 * env.task.distance_scale
    assert terminated and info["success"] and info["param_error"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    "env_id",
    [
        "ddsp_gym/CompressorCalibration-v0",
        "ddsp_gym/DelayTime-v0",
        "ddsp_gym/ReverbSpace-v0",
        "ddsp_gym/DistortionDrive-v0",
    ],
)
def test_gradient_agent_solves_most_episodes(env_id):
    from agents.gradient import GradientAgent

    env = gym.make(env_id, expose_grad=True)
    solved = sum(GradientAgent().solve(env, seed=seed).success for seed in range(5))
    assert solved >= 3
