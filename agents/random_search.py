"""Random search: uniform knob settings, the baseline every other agent must beat."""

from __future__ import annotations

import time
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ddsp_gym.agents.base import PlantOracle, SolveResult, Stop


@dataclass
class RandomSearchAgent:
    """Queries independent uniform samples of the knob box [-1, 1]^d; keeps the best."""

    name: str = "random"

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        oracle = PlantOracle(env, seed, budget)
        rng = np.random.default_rng(seed)
        try:
            while True:
                oracle.loss(rng.uniform(-1.0, 1.0, oracle.dim))
        except Stop:
            pass
        return oracle.result(wall_s=time.perf_counter() - start)
