"""Agents that play ddsp_gym envs through the Gymnasium API.

Every agent has ``solve(env, seed, budget) -> SolveResult``; ``ddsp-gym bench``
(:mod:`agents.benchmark`) compares them on the same targets and query budgets.
"""

from agents.base import Agent, PlantOracle, SolveResult
from agents.cma_es import CMAAgent
from agents.gradient import GradientAgent
from agents.hybrid import HybridAgent
from agents.random_search import RandomSearchAgent

__all__ = [
    "Agent",
    "CMAAgent",
    "GradientAgent",
    "HybridAgent",
    "PlantOracle",
    "RandomSearchAgent",
    "SolveResult",
]
