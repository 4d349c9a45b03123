"""Agents that play ddsp_gym envs through the Gymnasium API.

Every agent has ``solve(env, seed, budget) -> SolveResult``; ``ddsp-gym bench``
(:mod:`ddsp_gym.agents.benchmark`) compares them on the same targets and query budgets.
"""

from ddsp_gym.agents.base import QUERY_ENV_KWARGS, Agent, PlantOracle, SolveResult
from ddsp_gym.agents.cma_es import CMAAgent
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.agents.hybrid import HybridAgent
from ddsp_gym.agents.random_search import RandomSearchAgent

__all__ = [
    "Agent",
    "CMAAgent",
    "GradientAgent",
    "HybridAgent",
    "PlantOracle",
    "QUERY_ENV_KWARGS",
    "RandomSearchAgent",
    "SolveResult",
]
