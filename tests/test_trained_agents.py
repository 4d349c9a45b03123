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
    policy = train_amortized("ddsp_gym/VolumeMatch-v0", queries=32 * 40, seed=0, batch=32)
    assert policy.train_queries == 32 * 40
    assert np.mean(policy.losses[-5:]) < 0.5 * np.mean(policy.losses[:5])
    env = make_eval_env("ddsp_gym/VolumeMatch-v0", 50)
    result = policy.solve(env, EVAL_SEED_OFFSET, 50)
    assert result.queries == 1 and len(result.distances) == 1
    again = policy.solve(env, EVAL_SEED_OFFSET, 50)
    assert again.distances == result.distances


@pytest.mark.slow
def test_ppo_trains_saves_and_is_scored_on_held_out_targets(tmp_path):
    policy = train("ddsp_gym/VolumeMatch-v0", "ppo", 512, seed=0, out_dir=tmp_path)
    assert (tmp_path / "model.zip").is_file()
    env = make_eval_env("ddsp_gym/VolumeMatch-v0", 30)
    result = policy.solve(env, EVAL_SEED_OFFSET, 30)
    assert 1 <= result.queries <= 30 and result.queries == len(result.distances)
