"""Gradient agent: Adam (optax) on the knobs, driven by the env's ``reward_grad``."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import optax

from ddsp_gym.agents.base import SolveResult


@dataclass
class GradientAgent:
    """Gradient ascent on the reward through the differentiable plant.

    Works through the public env API: the env must be made with
    ``expose_grad=True`` and ``control="absolute"``, so an action *is* a knob
    setting and ``info["reward_grad"]`` is the gradient at it. Each step plays
    the current guess, reads the gradient, and lets Adam move the guess.

    ``patience`` > 0 restarts from a fresh random point when a start has not
    improved its best distance by 1% for that many steps (multi-start: synth
    knob landscapes are rarely convex). The learning rate decays by ``decay``
    per step within a start, so the search settles inside tight thresholds.
    """

    learning_rate: float = 0.1
    decay: float = 0.98
    min_learning_rate: float = 1e-3
    patience: int = 25
    name: str = "gradient"

    def _optimizer(self) -> optax.GradientTransformation:
        schedule = optax.exponential_decay(
            self.learning_rate, 1, self.decay, end_value=self.min_learning_rate
        )
        return optax.adam(schedule)

    def solve(
        self,
        env: gym.Env,
        seed: int,
        budget: int | None = None,
        max_steps: int | None = None,
        callback: Callable[[int, dict[str, Any]], bool] | None = None,
        start: np.ndarray | None = None,
        known: dict[int, float] | None = None,
    ) -> SolveResult:
        """Play one episode from ``reset(seed=seed)`` until success, truncation or ``budget``.

        Each step is one plant query. ``max_steps`` is another name of ``budget``.
        ``callback(step, info)`` runs after every step; returning False stops early.
        ``start`` (an action, (d,) in [-1, 1]) replaces the env's start knobs; ``known``
        ({knob index: action value}, e.g. a pitch measured from the target) holds those
        knobs there: at the start, at every restart (where the other knobs are drawn
        afresh) and through every step (their gradient is not followed).
        """
        start_time = time.perf_counter()
        base = env.unwrapped
        if not base.config.expose_grad or base.config.control != "absolute":
            raise ValueError(
                "GradientAgent needs an env made with expose_grad=True, control='absolute'"
            )
        obs, _ = env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        d = env.action_space.shape[0]
        action = 2.0 * obs[:d] - 1.0 if start is None else np.asarray(start, np.float64)
        known = dict(known or {})

        def with_known(a: np.ndarray) -> np.ndarray:
            for index, value in known.items():
                a[index] = value
            return a

        action = with_known(action.copy())
        optimizer = self._optimizer()
        opt_state = optimizer.init(action)
        distances: list[float] = []
        best = (np.inf, action, None)
        start_best, stalled, info = np.inf, 0, {}
        limit = next((b for b in (budget, max_steps) if b is not None), 10**9)
        steps = 0
        while steps < limit:
            steps += 1
            _, _, terminated, truncated, info = env.step(action.astype(np.float32))
            distances.append(info["distance"])
            if info["distance"] < best[0]:
                best = (info["distance"], action.copy(), info.get("param_error"))
            # The last step too: a progress display then ends on the step that finished.
            if callback is not None and not callback(steps, info):
                break
            if terminated or truncated:
                break
            if info["distance"] < 0.99 * start_best:
                start_best, stalled = info["distance"], 0
            else:
                stalled += 1
            if self.patience and stalled >= self.patience:
                action = with_known(rng.uniform(-1.0, 1.0, d))
                opt_state, start_best, stalled = optimizer.init(action), np.inf, 0
                continue
            # Adam minimises: feed it the gradient of -reward.
            grad = np.array(info["reward_grad"], np.float64)
            grad[list(known)] = 0.0
            updates, opt_state = optimizer.update(-grad, opt_state, action)
            action = np.clip(optax.apply_updates(action, updates), -1.0, 1.0)
        success = bool(info.get("success", False))
        return SolveResult(
            success=success,
            steps=steps,
            final_distance=float(info["distance"]),
            best_distance=float(best[0]),
            best_action=np.asarray(best[1], np.float32),
            param_error=info.get("param_error"),
            distances=distances,
            queries=steps,
            queries_to_success=steps if success else None,
            wall_s=time.perf_counter() - start_time,
        )
