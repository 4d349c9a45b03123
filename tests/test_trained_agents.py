"""SB3 and amortized agents: training seeds apart from held-out seeds, honest query counts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ddsp_gym.agents.amortized import train_amortized
from ddsp_gym.agents.benchmark import EVAL_SEED_OFFSET, make_eval_env
from ddsp_gym.agents.sb3 import ALGOS, TRAIN_SEED_LIMIT, TrainingSeeds, load_hyperparams, train


class _SeedRecorder(gym.Env):
    observation_space = gym.spaces.Box(-1, 1, (1,))
    action_space = gym.spaces.Box(-1, 1, (1,))

    def __init__(self):
        self.seeds = []

    def reset(self, *, seed=None, options=None):
        self.seeds.append(seed)
        return np.zeros(1, np.float32), {}


def test_training_never_resets_onto_held_out_seeds():
    assert TRAIN_SEED_LIMIT == EVAL_SEED_OFFSET
    env = TrainingSeeds(_SeedRecorder(), seed=0)
    for seed in [None] * 50 + [EVAL_SEED_OFFSET + 3]:
        env.reset(seed=seed)
    assert all(0 <= s < TRAIN_SEED_LIMIT for s in env.unwrapped.seeds)


@pytest.mark.parametrize("algo", ALGOS)
def test_hyperparameter_files_load(algo):
    params = load_hyperparams(algo)
    assert params["policy"] == "MlpPolicy" and params["gamma"] == 0.9


@pytest.mark.slow
def test_amortized_policy_learns_and_answers_with_one_query():
    policy = train_amortized("ddsp_gym/VolumeMatch-v1", queries=32 * 40, seed=0, batch=32)
    assert policy.train_queries == 32 * 40
    assert np.mean(policy.losses[-5:]) < 0.5 * np.mean(policy.losses[:5])
    env = make_eval_env("ddsp_gym/VolumeMatch-v1", 50)
    result = policy.solve(env, EVAL_SEED_OFFSET, 50)
    assert result.queries == 1 and len(result.distances) == 1
    again = policy.solve(env, EVAL_SEED_OFFSET, 50)
    assert again.distances == result.distances


@pytest.mark.slow
def test_ppo_trains_saves_and_is_scored_on_held_out_targets(tmp_path):
    policy = train("ddsp_gym/VolumeMatch-v1", "ppo", 512, seed=0, out_dir=tmp_path)
    assert (tmp_path / "model.zip").is_file()
    env = make_eval_env("ddsp_gym/VolumeMatch-v1", 30)
    result = policy.solve(env, EVAL_SEED_OFFSET, 30)
    assert 1 <= result.queries <= 30 and result.queries == len(result.distances)


@pytest.mark.parametrize("algo", ["td3", "sac"])
def test_off_policy_agents_train_save_and_are_scored_on_held_out_targets(tmp_path, algo):
    """TD3 and SAC through ``train``: their YAML hyperparameters reach SB3 (TD3's
    ``action_noise_sigma`` becomes Gaussian exploration noise), gradient updates run once
    ``learning_starts`` (200) steps are collected, the model is saved, and the policy is
    scored on held-out targets like the PPO one."""
    from stable_baselines3.common.noise import NormalActionNoise

    steps = 300
    policy = train("ddsp_gym/VolumeMatch-v1", algo, steps, seed=0, out_dir=tmp_path)
    model = policy.model
    assert policy.name == algo and type(model).__name__ == algo.upper()
    assert model.num_timesteps == steps and model.learning_starts == 200
    assert model._n_updates == steps - model.learning_starts  # one per step after the start
    assert model.gamma == 0.9 and model.batch_size == 128
    if algo == "td3":
        assert isinstance(model.action_noise, NormalActionNoise)
        np.testing.assert_allclose(model.action_noise._sigma, [0.2])
    assert (tmp_path / "model.zip").is_file()
    env = make_eval_env("ddsp_gym/VolumeMatch-v1", 30)
    result = policy.solve(env, EVAL_SEED_OFFSET, 30)
    assert 1 <= result.queries <= 30 and result.queries == len(result.distances)
    assert result.best_distance == min(result.distances)
    again = policy.solve(env, EVAL_SEED_OFFSET, 30)
    assert again.distances == result.distances  # deterministic scoring
