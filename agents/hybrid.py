"""The hybrid agent: plant gradient + antithetic dither + scheduler + Lyapunov monitor.

The update law (DESIGN.md section 6), on absolute knob settings theta in [-1, 1]^d::

    theta_{t+1} = theta_t - alpha_t * P(g_t) + sigma_t * D(theta_t) * eta_t

- g_t = (1 - w) * grad L(theta_t) + w * g_spsa, where grad L is the plant's exact
  gradient (when the env is differentiable) and g_spsa the antithetic estimate
  from probes theta_t +- sigma_t D(theta_t) delta (:mod:`agents.spsa`); without
  a plant gradient g_t = g_spsa (SPSA). The weight w grows from 0 at
  sigma_min to 1 at sigma_max (log scale): the wider the dither, the more the
  smoothed, ripple-blind estimate is trusted over the local gradient. Probes
  are only paid for while w > 0.
- P is Adam's diagonal preconditioner (Kingma & Ba 2015), so alpha_t is about
  the per-knob step length in action units.
- eta_t ~ N(0, I) is the dither; D(theta) = diag(sqrt(1 - 0.9 theta^2)) tapers it
  towards the knobs' end stops, where steps would only be clipped.
- :class:`agents.scheduler.DitherScheduler` raises sigma on plateaus, lowers it
  on progress and bounds alpha and sigma;
  :class:`agents.lyapunov.LyapunovMonitor` keeps the running mean of
  L_{t+1} - L_t negative, else returns to the best theta and halves alpha.
- Each step moves a knob by at most ``max_slew`` (rollbacks and restarts jump).

Every scheduler and monitor decision is logged in ``SolveResult.events``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import optax

from agents.base import PlantOracle, SolveResult, Stop
from agents.lyapunov import LyapunovMonitor
from agents.scheduler import DitherScheduler
from agents.spsa import antithetic_gradient, rademacher


def dither_shape(theta: np.ndarray) -> np.ndarray:
    """D(theta) diagonal: 1 at mid travel, about 0.32 at the end stops."""
    return np.sqrt(1.0 - 0.9 * np.square(np.clip(theta, -1.0, 1.0)))


def spsa_weight(sigma: float, sigma_min: float, sigma_max: float) -> float:
    """Trust in the dither estimate: 0 at sigma_min, 1 at sigma_max, linear in log sigma."""
    if sigma_max <= sigma_min:
        return 1.0
    return float(np.clip(np.log(sigma / sigma_min) / np.log(sigma_max / sigma_min), 0.0, 1.0))


def hybrid_step(
    theta: np.ndarray,
    direction: np.ndarray,
    alpha: float,
    sigma: float,
    eta: np.ndarray,
    max_slew: float,
) -> np.ndarray:
    """theta - alpha * direction + sigma * D(theta) * eta, slew-limited and kept in the box."""
    step = -alpha * direction + sigma * dither_shape(theta) * eta
    return np.clip(theta + np.clip(step, -max_slew, max_slew), -1.0, 1.0)


@dataclass
class HybridAgent:
    """Gradient descent that dithers its way out of plateaus and local minima.

    Args:
        alpha0, sigma0: initial step size and dither scale (action units).
        alpha_min/max, sigma_min/max: their bounds.
        patience: scheduler updates without progress that make a plateau.
        window: the Lyapunov monitor's averaging window (updates).
        probe_pairs: antithetic probe pairs per update while exploring.
        max_slew: largest knob move per update (action units).
        restart_after: plateaus at sigma_max before a restart from a random point.
    """

    alpha0: float = 0.1
    sigma0: float = 0.05
    alpha_min: float = 1e-3
    alpha_max: float = 0.3
    sigma_min: float = 1e-3
    sigma_max: float = 0.5
    patience: int = 4
    window: int = 4
    probe_pairs: int = 1
    max_slew: float = 0.5
    restart_after: int = 3
    sigma_down: float = 0.5
    winner_dither: bool = True
    name: str = "hybrid"

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        oracle = PlantOracle(env, seed, budget)
        rng = np.random.default_rng(seed)
        scheduler = self._scheduler()
        monitor = LyapunovMonitor(window=self.window)
        events: list[dict[str, Any]] = []
        try:
            self._run(oracle, rng, scheduler, monitor, events)
        except Stop:
            pass
        events = sorted(events + scheduler.events + monitor.events, key=lambda e: e["query"])
        return oracle.result(events, time.perf_counter() - start)

    def _scheduler(self) -> DitherScheduler:
        return DitherScheduler(
            sigma=self.sigma0,
            alpha=self.alpha0,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            alpha_min=self.alpha_min,
            alpha_max=self.alpha_max,
            patience=self.patience,
            sigma_down=self.sigma_down,
        )

    def _run(
        self,
        oracle: PlantOracle,
        rng: np.random.Generator,
        scheduler: DitherScheduler,
        monitor: LyapunovMonitor,
        events: list[dict[str, Any]],
    ) -> None:
        adam = optax.scale_by_adam()
        theta = oracle.start.copy()
        adam_state = adam.init(theta)
        plateaus_at_max = 0
        while True:
            if oracle.differentiable:
                loss, plant_grad = oracle.loss_and_grad(theta)
            else:
                loss, plant_grad = oracle.loss(theta), None
            back = monitor.observe(loss, theta, oracle.queries)
            if back is not None:
                scheduler.shrink_alpha(0.5, oracle.queries)
                monitor.events[-1].update(alpha=scheduler.alpha, sigma=scheduler.sigma)
                theta, adam_state = back, adam.init(back)
                continue
            w = (
                1.0
                if plant_grad is None
                else spsa_weight(scheduler.sigma, self.sigma_min, self.sigma_max)
            )
            grad = np.zeros_like(theta) if plant_grad is None else plant_grad
            eta = rng.standard_normal(oracle.dim)
            if w > 0.0:
                scale = scheduler.sigma * dither_shape(theta)
                directions = rademacher(rng, self.probe_pairs, oracle.dim)
                g_spsa, probes = antithetic_gradient(oracle.loss, theta, scale, directions)
                for point, probe_loss in probes:
                    monitor.record_best(probe_loss, np.clip(point, -1.0, 1.0))
                grad = (1.0 - w) * grad + w * g_spsa
                if self.winner_dither:
                    # The pair's winner: rank-shaped antithetic NES step.
                    eta = np.sign(probes[1][1] - probes[0][1]) * directions[0]
            direction, adam_state = adam.update(grad, adam_state, theta)
            theta = hybrid_step(
                theta,
                np.asarray(direction),
                scheduler.alpha,
                scheduler.sigma,
                eta,
                self.max_slew,
            )
            decision = scheduler.update(monitor.best_loss, oracle.queries)
            if decision == "plateau" and scheduler.sigma >= self.sigma_max:
                plateaus_at_max += 1
            elif decision == "progress":
                plateaus_at_max = 0
            if plateaus_at_max >= self.restart_after:
                theta = rng.uniform(-1.0, 1.0, oracle.dim)
                adam_state, plateaus_at_max = adam.init(theta), 0
                scheduler.sigma, scheduler.best = self.sigma0, float("inf")
                monitor.restart()
                events.append({"query": oracle.queries, "event": "restart", "sigma": self.sigma0})
