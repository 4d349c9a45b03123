"""Agents that play ddsp_gym envs through the Gymnasium API."""

from agents.base import SolveResult
from agents.gradient import GradientAgent

__all__ = ["GradientAgent", "SolveResult"]
