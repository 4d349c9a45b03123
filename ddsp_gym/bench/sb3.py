"""SB3 PPO's training rate on the native batched env against ``DummyVecEnv``.

Policy updates included: this is the rate a user's training run sees. Needs
stable-baselines3 and PyTorch (the ``sb3`` extra); the caller records an ImportError.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym

from ddsp_gym.bench.settings import PerfSettings


def bench_sb3(env_id: str, settings: PerfSettings) -> dict[str, Any]:
    """SB3 PPO timesteps/s on the native batched env vs ``DummyVecEnv`` of ``gym.make`` envs."""
    import torch
    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ddsp_gym.envs.sb3 import make_sb3_vec_env

    n = settings.sb3_num_envs
    total = n * settings.sb3_n_steps * settings.sb3_rollouts
    row: dict[str, Any] = {
        "env": env_id,
        "num_envs": n,
        "n_steps": settings.sb3_n_steps,
        "timesteps": total,
        "torch_threads": torch.get_num_threads(),
    }
    makers = {
        "native": lambda: make_sb3_vec_env(env_id, num_envs=n),
        "dummy": lambda: DummyVecEnv([lambda: gym.make(env_id)] * n),
    }
    for name, make in makers.items():
        venv = make()
        model = PPO(
            "MlpPolicy",
            venv,
            n_steps=settings.sb3_n_steps,
            batch_size=min(256, n * settings.sb3_n_steps),
            n_epochs=1,
            seed=0,
            device="cpu",
        )
        model.learn(total_timesteps=n * settings.sb3_n_steps)  # warm: compiles, allocates
        start, cpu_start = time.perf_counter(), time.process_time()
        model.learn(total_timesteps=total, reset_num_timesteps=False)
        row[f"{name}_steps_per_s"] = total / (time.perf_counter() - start)
        row[f"{name}_steps_per_cpu_s"] = total / (time.process_time() - cpu_start)
        venv.close()
    row["native_over_dummy"] = row["native_steps_per_s"] / row["dummy_steps_per_s"]
    return row
