"""Hyperparameters per env id in RL Baselines3 Zoo's format, read by ddsp_gym and by RL Zoo."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import yaml

import ddsp_gym
from ddsp_gym.agents.sb3 import (
    ALGOS,
    HYPERPARAMS_DIR,
    hyperparams_file,
    load_hyperparams,
    policy_kwargs_from,
    sb3_setup,
)
from tests.conftest import subprocess_env


@pytest.mark.parametrize("algo", ALGOS)
def test_every_registered_id_has_an_entry_for_each_algo(algo):
    path = hyperparams_file(algo)
    assert path == HYPERPARAMS_DIR / f"{algo}.yml"  # RL Zoo's file naming
    listed = set(yaml.safe_load(path.read_text())) - {"default"}
    assert listed == set(ddsp_gym.ENV_IDS)  # no entry for an id that is gone either
    for env_id in ddsp_gym.ENV_IDS:
        params = load_hyperparams(algo, env_id)
        assert params["policy"] == "MlpPolicy" and params["n_timesteps"] >= 1e5
        assert params["env_wrapper"] == "ddsp_gym.agents.sb3.TrainingSeeds"
        setup = sb3_setup(params)
        assert setup.algo_kwargs["policy_kwargs"] == {"net_arch": [64, 64]}
        assert not {"n_envs", "n_timesteps", "normalize", "env_wrapper"} & setup.algo_kwargs.keys()


def test_ppo_entries_are_the_measured_vectorized_settings():
    setup = sb3_setup(load_hyperparams("ppo", "ddsp_gym/SineTuner-v1"))
    assert setup.n_envs == 32 and setup.normalize is None and setup.n_timesteps == 1_000_000
    kwargs = setup.algo_kwargs
    assert (kwargs["n_steps"], kwargs["batch_size"], kwargs["gamma"]) == (32, 256, 0.95)
    td3 = sb3_setup(load_hyperparams("td3", "ddsp_gym/SineTuner-v1"))
    assert td3.noise_std == 0.2 and td3.n_envs == 1 and "noise_type" not in td3.algo_kwargs


def test_entries_are_fresh_copies():
    load_hyperparams("ppo", "ddsp_gym/VolumeMatch-v1")["n_envs"] = 1
    assert load_hyperparams("ppo", "ddsp_gym/VolumeMatch-v1")["n_envs"] == 32


def test_unknown_ids_and_algorithms_are_clear_errors():
    with pytest.raises(ValueError, match="no ppo hyperparameters for env 'ddsp_gym/Nope-v0'"):
        load_hyperparams("ppo", "ddsp_gym/Nope-v0")
    with pytest.raises(ValueError, match="no sac hyperparameters for env 'default'"):
        load_hyperparams("sac", "default")  # RL Zoo's fallback is not an env
    with pytest.raises(ValueError, match="unknown algorithm 'dqn'"):
        load_hyperparams("dqn", "ddsp_gym/SineTuner-v1")


def test_rl_zoo_spellings_become_sb3_arguments():
    import torch

    kwargs = policy_kwargs_from("dict(net_arch=dict(pi=[32], vf=[32]), activation_fn=nn.ReLU)")
    assert kwargs == {"net_arch": {"pi": [32], "vf": [32]}, "activation_fn": torch.nn.ReLU}
    assert policy_kwargs_from({"net_arch": [8]}) == {"net_arch": [8]}
    with pytest.raises(ValueError, match="must give a dict"):
        policy_kwargs_from("[64, 64]")
    setup = sb3_setup(
        {"normalize": "dict(norm_reward=False)", "gamma": 0.9, "train_freq": [4, "step"]}
    )
    assert setup.normalize == {"norm_reward": False, "gamma": 0.9}
    assert setup.algo_kwargs == {"gamma": 0.9, "train_freq": (4, "step")}
    assert sb3_setup({"normalize": True}).normalize == {"gamma": 0.99}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"frame_stack": 4}, r"\['frame_stack'\] are not supported"),
        ({"env_wrapper": "gymnasium.wrappers.ClipAction"}, "env_wrapper .* is not supported"),
        ({"noise_type": "ornstein-uhlenbeck", "noise_std": 0.1}, "noise_type .* not supported"),
        ({"n_envs": 0}, "n_envs must be >= 1"),
    ],
)
def test_rl_zoo_keys_the_trainer_cannot_honour_are_refused(entry, message):
    with pytest.raises(ValueError, match=message):
        sb3_setup(entry)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("algo", "env_id", "trained"),
    [
        ("ppo", "ddsp_gym/SineTuner-v1", 32 * 32),  # one whole rollout covers the 300 asked
        ("td3", "ddsp_gym/VolumeMatch-v1", 300),  # one env; noise_type/noise_std read
    ],
)
def test_rl_zoo_trains_a_registered_env_with_our_file(tmp_path, algo, env_id, trained):
    """The documented command: RL Zoo resolves the namespaced id after importing ddsp_gym,
    reads our entry (PPO: 32 envs; our wrapper), and writes its run under ``-f``."""
    import stable_baselines3

    command = [sys.executable, "-m", "rl_zoo3.train", "--gym-packages", "ddsp_gym"]
    command += ["--env", env_id, "--algo", algo, "--conf-file", str(hyperparams_file(algo))]
    command += ["-n", "300", "--seed", "0", "-f", str(tmp_path / "logs"), "--verbose", "0"]
    run = subprocess.run(
        command, cwd=tmp_path, env=subprocess_env(), capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr[-3000:]
    # RL Zoo names runs after the id with "/" replaced by "-".
    name = env_id.replace("/", "-")
    folder = tmp_path / "logs" / algo / f"{name}_1"
    config = dict(yaml.unsafe_load((folder / name / "config.yml").read_text()))
    assert config == load_hyperparams(algo, env_id)  # our entry, as written
    model = getattr(stable_baselines3, algo.upper()).load(folder / f"{name}.zip", device="cpu")
    assert model.num_timesteps == trained
    env = gym.make(env_id)
    obs, _ = env.reset(seed=10_000)
    action, _ = model.predict(obs, deterministic=True)
    assert env.action_space.contains(np.asarray(action, np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logs"]  # nothing else written
