"""The SB3 adapter: SB3's VecEnv contract, equality with DummyVecEnv, a short PPO run."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from tests.conftest import require

require("stable_baselines3", "the SB3 adapter's tests need pip install 'ddsp_gym[sb3]'")

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.vec_env import DummyVecEnv, VecEnv, VecMonitor  # noqa: E402

import ddsp_gym  # noqa: E402, F401
from ddsp_gym.envs.sb3 import SB3VecEnv, make_sb3_vec_env  # noqa: E402

SINE = "ddsp_gym/SineTuner-v0"
OBS_TOL = dict(rtol=1e-3, atol=1e-3)


def test_vec_env_contract_and_equality_with_dummy_vec_env():
    n, horizon = 3, 4
    ours = make_sb3_vec_env(SINE, num_envs=n, max_episode_steps=horizon)
    assert isinstance(ours, VecEnv)
    dummy = DummyVecEnv([lambda: gym.make(SINE, max_episode_steps=horizon)] * n)
    assert ours.observation_space == dummy.observation_space
    assert ours.action_space == dummy.action_space
    assert ours.seed(5) == dummy.seed(5) == [5, 6, 7]
    obs, ref = ours.reset(), dummy.reset()
    assert obs.shape == (n, ours.observation_space.shape[0]) and obs.dtype == np.float32
    np.testing.assert_allclose(obs, ref, **OBS_TOL)
    rng = np.random.default_rng(0)
    dones_seen = 0
    for _ in range(2 * horizon + 1):
        actions = rng.uniform(-1, 1, (n, 1)).astype(np.float32)
        obs, rewards, dones, infos = ours.step(actions)
        ref_obs, ref_rewards, ref_dones, ref_infos = dummy.step(actions)
        assert rewards.dtype == np.float32 and dones.dtype == bool and len(infos) == n
        np.testing.assert_allclose(obs, ref_obs, **OBS_TOL)
        np.testing.assert_allclose(rewards, ref_rewards, rtol=1e-4, atol=1e-4)
        np.testing.assert_array_equal(dones, ref_dones)
        for info, ref_info in zip(infos, ref_infos, strict=True):
            assert info["TimeLimit.truncated"] == ref_info["TimeLimit.truncated"]
            assert ("terminal_observation" in info) == ("terminal_observation" in ref_info)
            if "terminal_observation" in info:
                dones_seen += 1
                np.testing.assert_allclose(
                    info["terminal_observation"], ref_info["terminal_observation"], **OBS_TOL
                )
    assert dones_seen == 2 * n
    assert ours.get_attr("render_mode") == [None] * n
    assert ours.env_is_wrapped(gym.Wrapper) == [False] * n
    with pytest.raises(NotImplementedError):
        ours.set_attr("render_mode", None, indices=[0])
    ours.close()


def test_adapter_refuses_next_step_autoreset():
    with pytest.raises(ValueError, match="SAME_STEP"):
        SB3VecEnv(gym.make_vec(SINE, num_envs=2))


def test_ppo_learns_on_the_batched_env():
    venv = VecMonitor(make_sb3_vec_env(SINE, num_envs=8, max_episode_steps=16))
    model = PPO("MlpPolicy", venv, n_steps=16, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(total_timesteps=256)
    assert model.num_timesteps == 256
    # VecMonitor saw whole episodes (16 steps each) through terminal_observation/dones.
    assert len(model.ep_info_buffer) >= 8
    assert all(ep["l"] <= 16 for ep in model.ep_info_buffer)
    actions, _ = model.predict(venv.reset(), deterministic=True)
    assert actions.shape == (8, 1) and np.all(np.abs(actions) <= 1.0)
