"""SB3 and amortized agents: training seeds apart from held-out seeds, honest query counts."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from ddsp_gym.agents.amortized import train_amortized
from ddsp_gym.agents.benchmark import EVAL_SEED_OFFSET, eval_seeds, make_eval_env
from ddsp_gym.agents.sb3 import (
    TRAIN_SEED_LIMIT,
    SB3Policy,
    TrainingSeeds,
    load_hyperparams,
    make_model,
    train,
    vec_training_seeds,
)
from tests.conftest import V0_KWARGS

VOLUME = "ddsp_gym/VolumeMatch-v1"


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


def test_a_seeded_reset_reseeds_the_draw_but_is_never_used():
    """SB3 and RL Zoo seed env i with ``seed + i``: reproducible, distinct per env, and
    a held-out seed passed in is replaced like any other."""
    draws = []
    for seed in (3, 3, 4, EVAL_SEED_OFFSET):
        env = TrainingSeeds(_SeedRecorder())
        for s in [seed] + [None] * 5:
            env.reset(seed=s)
        draws.append(env.unwrapped.seeds)
    assert draws[0] == draws[1] and draws[0] != draws[2]
    assert all(0 <= s < TRAIN_SEED_LIMIT for d in draws for s in d)


def test_vectorized_runs_start_on_disjoint_training_targets():
    assert vec_training_seeds(0, 4) == [0, 1, 2, 3]
    assert vec_training_seeds(2, 4) == [8, 9, 10, 11]  # not SB3's seed + i: 2..5
    assert vec_training_seeds(155, 64)[-1] == 9983
    with pytest.raises(ValueError, match=r"held-out targets .* seed in \[0, 156\)"):
        vec_training_seeds(156, 64)
    with pytest.raises(ValueError, match="held-out"):
        vec_training_seeds(-1, 64)


@pytest.mark.slow
def test_the_model_seed_resets_the_vector_env_onto_its_training_seeds():
    """SB3 seeds the env from the model's seed; the first episodes are those of
    vec_training_seeds, as single envs reset with those seeds would play them."""
    # In the v0 settings: the log-difference observation magnifies float32 rounding
    # between the vectorized and the single env's summaries (tests/test_vector_env.py).
    hyperparams = {**load_hyperparams("ppo", VOLUME), "n_envs": 4, "n_steps": 8, "batch_size": 32}
    hyperparams["env_kwargs"] = V0_KWARGS
    model = make_model(VOLUME, "ppo", seed=2, hyperparams=hyperparams)
    obs = model.get_env().reset()
    seeds = vec_training_seeds(2, 4)
    expected = [gym.make(VOLUME, **V0_KWARGS).reset(seed=s)[0] for s in seeds]
    np.testing.assert_allclose(obs, np.stack(expected), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="held-out"):
        make_model(VOLUME, "ppo", seed=EVAL_SEED_OFFSET, hyperparams=hyperparams)


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


def _ppo(steps_per_env: int = 32) -> dict:
    """VolumeMatch's PPO entry (32 envs), on the env's defaults."""
    return {**load_hyperparams("ppo", VOLUME), "n_steps": steps_per_env}


@pytest.mark.slow
def test_vectorized_ppo_learns_and_its_policy_solves_held_out_targets():
    """32 envs in one jitted call, the env's defaults: 24 rollouts (24,576 steps) take
    held-out targets from a few solved to most, scored one episode each like the search
    agents."""
    model = make_model(VOLUME, "ppo", seed=0, hyperparams=_ppo())
    assert model.n_envs == 32 and type(model.get_env().venv.venv).__name__ == "SB3VecEnv"
    policy = SB3Policy(model, "ppo")
    env = gym.make(VOLUME)

    def score() -> list:
        return [policy.solve(env, seed, 50) for seed in eval_seeds(20)]

    before = score()
    model.learn(24 * 32 * 32)
    after = score()
    assert model.num_timesteps == 24 * 32 * 32
    solved = sum(r.success for r in after)
    assert solved >= sum(r.success for r in before) + 5, (solved, [r.success for r in before])
    median = np.median([r.final_distance for r in after])
    assert median < 0.2 * np.median([r.final_distance for r in before])
    for result in after:
        assert 1 <= result.queries <= 50 and result.queries == len(result.distances)
        assert result.success == (result.queries_to_success is not None)


def test_vectorized_training_is_deterministic_for_a_seed():
    """Same seed, same policy: envs, targets and torch all follow the run's seed."""
    hyperparams = {**_ppo(16), "batch_size": 256, "n_epochs": 2}

    def weights(seed: int) -> list[np.ndarray]:
        model = make_model(VOLUME, "ppo", seed=seed, hyperparams=hyperparams)
        model.learn(2 * 32 * 16)
        return [p.detach().numpy().copy() for p in model.policy.parameters()]

    first, again, other = weights(1), weights(1), weights(2)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    assert any(not np.array_equal(a, b) for a, b in zip(first, other, strict=True))


@pytest.mark.slow
def test_a_normalizing_entry_saves_its_statistics_and_scores_with_them(tmp_path):
    """``normalize: true`` trains under VecNormalize; the policy sees observations
    normalized the same way when scored, and train() saves the statistics beside it."""
    from stable_baselines3.common.vec_env import VecNormalize

    entry = {**load_hyperparams("ppo", VOLUME), "normalize": True, "n_envs": 4}
    entry.update(n_steps=16, batch_size=64, n_epochs=1)
    policy = train(VOLUME, "ppo", 64, seed=0, out_dir=tmp_path, hyperparams=entry)
    assert (tmp_path / "model.zip").is_file() and (tmp_path / "vecnormalize.pkl").is_file()
    normalizer = policy.model.get_vec_normalize_env()
    assert normalizer.obs_rms.count > 64  # statistics from the training steps
    saved = VecNormalize.load(str(tmp_path / "vecnormalize.pkl"), normalizer.venv)
    np.testing.assert_allclose(saved.obs_rms.mean, normalizer.obs_rms.mean)
    env = make_eval_env(VOLUME, 5)
    result = policy.solve(env, EVAL_SEED_OFFSET, 5)
    obs, _ = env.reset(seed=EVAL_SEED_OFFSET)
    replayed = []
    for _ in range(result.queries):
        action, _ = policy.model.predict(normalizer.normalize_obs(obs), deterministic=True)
        obs, _, _, _, info = env.step(action)
        replayed.append(info["distance"])
    assert replayed == result.distances
