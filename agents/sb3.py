"""Stable-Baselines3 agents (PPO, SAC, TD3) trained through ``gym.make``.

Training targets come from reset seeds below :data:`ddsp_gym.agents.benchmark.EVAL_SEED_OFFSET`
(:class:`TrainingSeeds`); scoring uses the held-out seeds above it. Each
training step is one plant query. Hyperparameters live in
``agents/hyperparams/<algo>.yaml``.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import yaml

from ddsp_gym.agents.base import SolveResult

HYPERPARAMS_DIR = Path(__file__).resolve().parent / "hyperparams"
ALGOS: tuple[str, ...] = ("ppo", "sac", "td3")
TRAIN_SEED_LIMIT = 10_000  # = agents.benchmark.EVAL_SEED_OFFSET; held-out seeds start here


def load_hyperparams(algo: str) -> dict[str, Any]:
    """The YAML hyperparameters of ``algo`` (ppo, sac or td3)."""
    if algo not in ALGOS:
        raise ValueError(f"unknown algorithm {algo!r}; choose one of {ALGOS}")
    return dict(yaml.safe_load((HYPERPARAMS_DIR / f"{algo}.yaml").read_text()))


def tensorboard_available() -> bool:
    return importlib.util.find_spec("tensorboard") is not None


class TrainingSeeds(gym.Wrapper):
    """Resets without a seed draw one from the training range [0, TRAIN_SEED_LIMIT)."""

    def __init__(self, env: gym.Env, seed: int) -> None:
        super().__init__(env)
        self._rng = np.random.default_rng(seed)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        if seed is None or seed >= TRAIN_SEED_LIMIT:
            seed = int(self._rng.integers(0, TRAIN_SEED_LIMIT))
        return self.env.reset(seed=seed, options=options)


@dataclass
class SB3Policy:
    """A trained SB3 model, scored like the search agents: one deterministic episode."""

    model: Any
    name: str

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        obs, _ = env.reset(seed=seed)
        distances: list[float] = []
        best = (np.inf, None, None)
        info: dict[str, Any] = {}
        for _ in range(budget):
            action, _ = self.model.predict(obs, deterministic=True)
            obs, _, terminated, truncated, info = env.step(action)
            distances.append(info["distance"])
            if info["distance"] < best[0]:
                # As an absolute action (the knob setting), whatever the env's control mode.
                knobs = np.asarray(env.unwrapped.state.knobs, np.float32)
                best = (info["distance"], 2.0 * knobs - 1.0, info.get("param_error"))
            if terminated or truncated:
                break
        success = bool(info.get("success", False))
        return SolveResult(
            success=success,
            steps=len(distances),
            final_distance=float(info["distance"]),
            best_distance=float(best[0]),
            best_action=best[1],
            param_error=info.get("param_error"),
            distances=distances,
            queries=len(distances),
            queries_to_success=len(distances) if success else None,
            wall_s=time.perf_counter() - start,
        )


def make_model(
    env_id: str,
    algo: str,
    seed: int = 0,
    hyperparams: dict[str, Any] | None = None,
    tensorboard_log: str | None = None,
    verbose: int = 0,
) -> Any:
    """An untrained SB3 ``algo`` model on ``env_id``'s training targets (see
    :class:`TrainingSeeds`), with the YAML hyperparameters unless ``hyperparams``."""
    import torch
    from stable_baselines3 import PPO, SAC, TD3
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.noise import NormalActionNoise

    # Tiny MLPs: one thread avoids oversubscribing the cores JAX's plant also uses.
    torch.set_num_threads(1)
    params = load_hyperparams(algo) if hyperparams is None else dict(hyperparams)
    env = Monitor(TrainingSeeds(gym.make(env_id), seed))
    noise_sigma = params.pop("action_noise_sigma", None)
    if noise_sigma is not None:
        d = env.action_space.shape[0]
        params["action_noise"] = NormalActionNoise(np.zeros(d), noise_sigma * np.ones(d))
    policy = params.pop("policy", "MlpPolicy")
    cls = {"ppo": PPO, "sac": SAC, "td3": TD3}[algo]
    return cls(
        policy,
        env,
        seed=seed,
        tensorboard_log=tensorboard_log,
        verbose=verbose,
        device="cpu",
        **params,
    )


def train(
    env_id: str,
    algo: str,
    steps: int,
    seed: int = 0,
    out_dir: str | Path | None = None,
    checkpoint_every: int = 0,
    hyperparams: dict[str, Any] | None = None,
    verbose: int = 0,
) -> SB3Policy:
    """Train ``algo`` on ``env_id`` for ``steps`` env steps (= plant queries).

    With ``out_dir``: TensorBoard logs in ``out_dir/tb`` (if the ``tensorboard``
    package is installed; else a note says how to get it), checkpoints every
    ``checkpoint_every`` steps in ``out_dir/checkpoints`` and the final model
    at ``out_dir/model.zip``.
    """
    from stable_baselines3.common.callbacks import CheckpointCallback

    tb_dir = None
    callbacks = []
    if out_dir is not None:
        out_dir = Path(out_dir)
        if tensorboard_available():
            tb_dir = str(out_dir / "tb")
        else:
            print("note: no TensorBoard logs (pip install tensorboard, or the [sb3] extra)")
        if checkpoint_every:
            callbacks.append(
                CheckpointCallback(checkpoint_every, str(out_dir / "checkpoints"), algo)
            )
    model = make_model(env_id, algo, seed, hyperparams, tb_dir, verbose)
    model.learn(total_timesteps=steps, callback=callbacks or None, tb_log_name=algo)
    if out_dir is not None:
        model.save(str(out_dir / "model.zip"))
    model.get_env().close()
    return SB3Policy(model, algo)
