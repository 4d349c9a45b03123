"""The agents live mode ships: a random walk, a scripted sweep, a trained SB3 policy, and
:func:`make_agent`, which picks one from the ``--agent`` string."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from ddsp_gym.live.core import BlockCore

AGENTS = ("random-walk", "scripted")

Agent = Callable[[np.ndarray], np.ndarray]


class RandomWalk:
    """Uniform actions: under delta control, each knob wanders by up to ``max_delta``."""

    def __init__(self, num_knobs: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.num_knobs = num_knobs

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.num_knobs).astype(np.float32)


class Scripted:
    """A deterministic sweep: knob k follows 0.5 + 0.35 sin(2 pi t / period_k), t counted
    in blocks seen (periods 8-20 s at 64-ms blocks); actions chase it in the env's
    control mode (delta: as far as ``max_delta`` allows per block)."""

    def __init__(self, num_knobs: int, control: str, max_delta: float, block_s: float) -> None:
        self.num_knobs, self.control, self.max_delta = num_knobs, control, max_delta
        self.periods_s = np.linspace(8.0, 20.0, num_knobs)
        self.block_s = block_s
        self.calls = 0

    def target(self, t: float) -> np.ndarray:
        return 0.5 + 0.35 * np.sin(2.0 * np.pi * t / self.periods_s)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        goal = self.target(self.calls * self.block_s)
        self.calls += 1
        if self.control == "absolute":
            return (2.0 * goal - 1.0).astype(np.float32)
        knobs = obs[: self.num_knobs]
        return np.clip((goal - knobs) / self.max_delta, -1.0, 1.0).astype(np.float32)


class PolicyAgent:
    """A trained Stable-Baselines3 policy (``PPO.save`` zip); actions sampled as in training."""

    def __init__(self, path: Path, deterministic: bool = False) -> None:
        try:
            from stable_baselines3 import PPO
        except ImportError as err:
            raise ValueError(
                f"a .zip agent needs stable-baselines3 (pip install 'ddsp_gym[sb3]'): {err}"
            ) from None
        self.model = PPO.load(str(path), device="cpu")
        self.deterministic = deterministic

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action, np.float32)


def make_agent(spec: str, core: BlockCore, seed: int = 0) -> Agent:
    """``random-walk``, ``scripted`` or a path to an SB3 ``.zip``."""
    d = len(core.knob_names)
    if spec == "random-walk":
        return RandomWalk(d, seed)
    if spec == "scripted":
        return Scripted(d, core.control, core.max_delta, core.plant.block_seconds)
    path = Path(spec)
    if path.suffix == ".zip":
        if not path.is_file():
            raise ValueError(f"agent file {spec!r} does not exist")
        agent = PolicyAgent(path)
        shape = getattr(agent.model.observation_space, "shape", None)
        if shape != core.observation_space.shape:
            raise ValueError(
                f"{spec} was trained on observations of shape {shape}, but "
                f"{core.env_id} gives {core.observation_space.shape}"
            )
        return agent
    raise ValueError(f"--agent must be one of {AGENTS} or a PATH.zip, got {spec!r}")
