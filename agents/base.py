"""What every agent returns, the protocol agents follow, and the query counter they share.

Every agent solves one episode with ``agent.solve(env, seed, budget)``. The
budget counts *plant queries*: each env step, each ``reward_and_grad`` call and
each reward-only probe (a CMA-ES candidate, an SPSA probe) renders the plant
once and counts as one query, whichever agent makes it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import gymnasium as gym
import numpy as np

from ddsp_gym.backends.base import Capabilities
from ddsp_gym.envs.config import EnvConfig


@dataclass
class SolveResult:
    """Outcome of one agent run on one env episode.

    ``steps`` counts env steps; ``queries`` all plant queries (steps, gradient
    queries and probes); ``twin_queries`` the sim-twin gradients a hardware run
    took besides (no plant query: the twin is the JAX model); ``distances`` holds
    the task distance of every query in order, for loss-vs-queries curves.
    ``queries_to_success`` is the 1-based index of the first successful query
    (None if none succeeded). ``events``
    logs the agent's decisions (e.g. the hybrid's scheduler and monitor).
    """

    success: bool
    steps: int
    final_distance: float
    best_distance: float
    best_action: np.ndarray
    param_error: float | None = None
    distances: list[float] = field(default_factory=list)
    queries: int = 0
    queries_to_success: int | None = None
    wall_s: float = 0.0
    events: list[dict[str, Any]] = field(default_factory=list)
    twin_queries: int = 0


# What query-based agents ask of an env whatever the registry's defaults (which suit RL):
# an action *is* a knob setting, and the loss is the task's distance, linear, no bonus.
QUERY_ENV_KWARGS: dict[str, Any] = {
    "control": "absolute",
    "reward_shape": "linear",
    "success_bonus": 0.0,
}


def play_episode(
    env: gym.Env, seed: int, budget: int, act: Callable[[np.ndarray], np.ndarray]
) -> SolveResult:
    """A policy's deterministic episode from ``env.reset(seed=seed)``, at most ``budget``
    steps (each one plant query), scored like the search agents. ``best_action`` is the
    best step's knob setting as an absolute action, whatever the env's control mode."""
    start = time.perf_counter()
    obs, _ = env.reset(seed=seed)
    distances: list[float] = []
    best: tuple[float, Any, Any] = (np.inf, None, None)
    info: dict[str, Any] = {}
    for _ in range(budget):
        obs, _, terminated, truncated, info = env.step(act(obs))
        distances.append(float(info["distance"]))
        if info["distance"] < best[0]:
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


class QueryableEnv(Protocol):
    """What query-based agents use of ``env.unwrapped``: a :class:`DDSPEnv`, or a view of
    one that offers the same (e.g. :class:`ddsp_gym.agents.hw_bench.KnobSubset`)."""

    action_space: gym.spaces.Box
    config: EnvConfig  # control (agents need "absolute"), expose_grad
    capabilities: Capabilities  # of the backend: a device has no gradient of its own
    differentiable: bool  # exact reward gradients from reward_of(with_grad=True)

    def reset(self, *, seed: int | None = None) -> tuple[np.ndarray, dict[str, Any]]: ...

    def reward_of(self, action: np.ndarray, with_grad: bool = False) -> tuple[float, dict]: ...

    def twin_reward_and_grad(self, action: np.ndarray) -> tuple[float, np.ndarray]: ...


class Agent(Protocol):
    """The one interface the benchmark drives."""

    name: str

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        """Work on the episode ``env.reset(seed=seed)`` with at most ``budget`` plant queries."""
        ...


class Stop(Exception):
    """Raised by :class:`PlantOracle` when the budget is spent or the task is solved."""


class PlantOracle:
    """Counts, records and answers one agent's plant queries on one episode.

    Resets ``env`` with ``seed`` and then evaluates actions *without stepping*
    (``DDSPEnv.reward_of``): the episode's target and noise stay fixed, so a
    query is a pure function of the action. Each query costs one unit of
    ``budget``; once it is spent, or a query meets the task's success
    criterion, the next query raises :class:`Stop`.

    The agent minimises ``loss = -reward``. Actions are absolute knob settings
    in [-1, 1] (the env must use ``control="absolute"``).
    """

    def __init__(self, env: gym.Env, seed: int, budget: int) -> None:
        if budget < 1:
            raise ValueError(f"budget must be at least 1 query, not {budget}")
        self.base: QueryableEnv = env.unwrapped
        if self.base.config.control != "absolute":
            raise ValueError(
                "query-based agents need an env made with control='absolute' "
                "(gym.make(env_id, **ddsp_gym.agents.base.QUERY_ENV_KWARGS))"
            )
        obs, _ = env.reset(seed=seed)
        self.dim = int(env.action_space.shape[0])
        # The env's random starting knobs, as an action: every agent starts from them.
        self.start = np.clip(2.0 * np.asarray(obs[: self.dim], np.float64) - 1.0, -1.0, 1.0)
        self.budget = int(budget)
        self.queries = 0
        self.twin_queries = 0
        self.distances: list[float] = []
        self.success_at: int | None = None
        self.best_loss = np.inf
        self.best_action = self.start.copy()
        self.best_distance = np.inf
        self.best_loss_distance = np.inf
        self.best_param_error: float | None = None

    @property
    def differentiable(self) -> bool:
        """Does the env hand out exact reward gradients (and was it made with ``expose_grad``)?"""
        return self.base.differentiable and self.base.config.expose_grad

    @property
    def has_twin(self) -> bool:
        """Is the sim twin's gradient the one to use: a device backend (hardware, plugin)
        without a gradient of its own, scored against its recorded target?"""
        return not self.base.capabilities.differentiable

    def twin_grad(self, action: np.ndarray) -> np.ndarray:
        """d(-twin reward)/d action: the sim twin scored against the recorded target.

        Not a plant query (no take is played), so it costs no budget; counted in
        ``twin_queries``. The twin's loss is not the device's, so only its direction
        is worth using.
        """
        if self.done:
            raise Stop
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0).astype(np.float32)
        _, grad = self.base.twin_reward_and_grad(action)
        self.twin_queries += 1
        return -np.asarray(grad, np.float64)

    @property
    def remaining(self) -> int:
        return self.budget - self.queries

    @property
    def done(self) -> bool:
        return self.queries >= self.budget or self.success_at is not None

    def loss(self, action: np.ndarray) -> float:
        """-reward of ``action`` (one query)."""
        reward, _ = self._query(action, with_grad=False)
        return -reward

    def loss_and_grad(self, action: np.ndarray) -> tuple[float, np.ndarray]:
        """(-reward, d(-reward)/d action) of ``action`` (one query)."""
        reward, info = self._query(action, with_grad=True)
        return -reward, -np.asarray(info["reward_grad"], np.float64)

    def _query(self, action: np.ndarray, with_grad: bool) -> tuple[float, dict[str, Any]]:
        if self.done:
            raise Stop
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        reward, info = self.base.reward_of(action.astype(np.float32), with_grad=with_grad)
        self.queries += 1
        self.distances.append(info["distance"])
        self.best_distance = min(self.best_distance, info["distance"])
        if -reward < self.best_loss:
            self.best_loss, self.best_action = -reward, action.copy()
            self.best_loss_distance = info["distance"]
            self.best_param_error = info.get("param_error")
        if info["success"] and self.success_at is None:
            self.success_at = self.queries
            # The solving query is the answer, whatever its penalty terms.
            self.best_action, self.best_loss_distance = action.copy(), info["distance"]
            self.best_param_error = info.get("param_error")
        return reward, info

    def result(self, events: list[dict[str, Any]] | None = None, wall_s: float = 0.0):
        """The :class:`SolveResult` of the queries so far; the answer is the best action."""
        return SolveResult(
            success=self.success_at is not None,
            steps=0,
            final_distance=float(self.best_loss_distance),
            best_distance=float(self.best_distance),
            best_action=self.best_action.astype(np.float32),
            param_error=self.best_param_error,
            distances=list(self.distances),
            queries=self.queries,
            queries_to_success=self.success_at,
            wall_s=wall_s,
            events=list(events or []),
            twin_queries=self.twin_queries,
        )
