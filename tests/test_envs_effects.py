"""The effect envs: registry entries, exact targets, solvability.

Checkers, gradients vs finite differences, determinism, batching and fuzzing are
registry-wide (tests/test_envs.py) and cover these envs too.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ddsp_gym
from ddsp_gym.registry import load_registry
from tests.conftest import V0_KWARGS

EFFECT_IDS = (
    "ddsp_gym/CompressorCalibration-v1",
    "ddsp_gym/DelayTime-v1",
    "ddsp_gym/ReverbSpace-v1",
    "ddsp_gym/DistortionDrive-v1",
    "ddsp_gym/GuitarTone-v1",
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
def test_target_knobs_score_zero_and_succeed(env_id):
    env = gym.make(env_id, expose_grad=True, **V0_KWARGS).unwrapped
    env.reset(seed=5)
    action = np.asarray(2 * env.state.target_knobs - 1, np.float32)
    _, reward, terminated, _, info = env.step(action)
    assert info["distance"] < 1e-3 * float(env.params.distance_scale)
    assert terminated and info["success"] and info["param_error"] < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    "env_id",
    [
        "ddsp_gym/CompressorCalibration-v1",
        "ddsp_gym/DelayTime-v1",
        "ddsp_gym/ReverbSpace-v1",
        "ddsp_gym/DistortionDrive-v1",
    ],
)
def test_gradient_agent_solves_most_episodes(env_id):
    from ddsp_gym.agents.gradient import GradientAgent

    env = gym.make(env_id, expose_grad=True, **V0_KWARGS)
    solved = sum(GradientAgent().solve(env, seed=seed).success for seed in range(5))
    assert solved >= 3
