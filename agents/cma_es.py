"""CMA-ES (Hansen's ``cma`` package) on the unit knobs."""

from __future__ import annotations

import time
from dataclasses import dataclass

import cma
import gymnasium as gym
import numpy as np

from ddsp_gym.agents.base import PlantOracle, SolveResult, Stop


def fold_into_unit(y: np.ndarray) -> np.ndarray:
    """Reflect any real vector into [0, 1] (a triangle wave of period 2).

    The boundary handling of ``cma.BoundTransform`` without its 1-D failure:
    cma 4.5 raises "not yet initialized (dimension needed)" for bounded 1-D
    problems, and several ddsp_gym envs have a single knob.
    """
    y = np.mod(y, 2.0)
    return np.where(y > 1.0, 2.0 - y, y)


@dataclass
class CMAAgent:
    """CMA-ES (Hansen & Ostermeier 2001) over unit knob positions in [0, 1]^d.

    Starts at the env's starting knobs with step size ``sigma0`` (unit travel)
    and the library's default population size 4 + floor(3 ln d). Candidates
    are folded into the box by reflection (see :func:`fold_into_unit`); each
    candidate costs one query. When CMA-ES converges (its own stopping rules)
    before the budget is spent, it restarts from a uniform random point.
    """

    sigma0: float = 0.3
    name: str = "cma"

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        oracle = PlantOracle(env, seed, budget)
        rng = np.random.default_rng(seed)
        x0 = (oracle.start + 1.0) / 2.0
        events = []
        try:
            while True:
                es = cma.CMAEvolutionStrategy(
                    list(x0),
                    self.sigma0,
                    {"seed": int(rng.integers(1, 2**31 - 1)), "verbose": -9},
                )
                while not es.stop():
                    candidates = es.ask()
                    losses = [oracle.loss(2.0 * fold_into_unit(y) - 1.0) for y in candidates]
                    es.tell(candidates, losses)
                events.append({"query": oracle.queries, "event": "restart", "why": str(es.stop())})
                x0 = rng.uniform(0.0, 1.0, oracle.dim)
        except Stop:
            pass
        return oracle.result(events, time.perf_counter() - start)
