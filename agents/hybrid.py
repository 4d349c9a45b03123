"""The hybrid agent: plant gradient + antithetic dither + scheduler + Lyapunov monitor.

The update law (DESIGN.md section 6), on absolute knob settings theta in [-1, 1]^d::

    theta_{t+1} = theta_t - alpha_t * P(g_t) + sigma_t * D(theta_t) * eta_t

- Dither: while sigma_t > sigma_min (or always, without a plant gradient) the
  agent probes an antithetic pair theta_t +- sigma_t D(theta_t) delta, delta a
  random +-1 vector. eta_t is the winning probe's direction (+-delta) when that
  probe beat L(theta_t), else 0: the dither realisation is kept only where it
  helped, a rank-shaped antithetic evolution-strategies step (Wierstra et al.
  2014, JMLR 15). D(theta) = diag(sqrt(1 - 0.9 theta^2)) tapers the dither
  towards the knobs' end stops, where probes would only be clipped.
- Gradient: g_t = (1 - w) * u(grad L(theta_t)) + w * u(g_pg), where grad L is the
  plant's exact gradient, g_pg the probes' antithetic (SPSA / policy-gradient)
  estimate of the sigma-smoothed loss's gradient (:mod:`ddsp_gym.agents.spsa`) and u
  scales to unit length, so estimates of any size mix on equal terms. The
  weight w = (sigma - sigma_min) / (sigma_max - sigma_min) trusts the smoothed,
  ripple-blind estimate as far as the dither is wide; a single-pair estimate
  is too noisy to steer fine steps. On the hardware backend the plant gradient
  is the sim twin's (``env.unwrapped.twin_reward_and_grad``: the JAX model
  scored against the recorded target; no take, so no budget) and the probes are
  real takes: the twin steers while its model holds, and SPSA from the device's
  own rewards takes over as the dither widens on a plateau, which is where the
  twin's bias stalls it. Without any gradient (``expose_grad=False`` on the sim)
  g_t = g_pg: SPSA.
- P is Adam's diagonal preconditioner (Kingma & Ba 2015), so alpha_t is about
  the per-knob step length in action units.
- alpha_t never exceeds the gradient agent's own learning-rate schedule
  (:class:`ddsp_gym.agents.gradient.GradientAgent`: 0.1 * 0.98^t from each start, floor
  alpha_min): the scheduler may grow alpha on progress only up to that
  ceiling. Under a fixed ceiling progress would grow alpha back after every
  Lyapunov halving, so near a minimum the steps would overshoot and the monitor
  roll back again. A decreasing step bound is the Robbins & Monro (1951)
  condition for settling into a minimum.
- :class:`ddsp_gym.agents.scheduler.DitherScheduler` raises sigma on plateaus, lowers it
  on progress (a new best loss) and keeps alpha and sigma within bounds;
  :class:`ddsp_gym.agents.lyapunov.LyapunovMonitor` keeps the running mean of
  L_{t+1} - L_t negative, else returns to the best theta (probes included)
  and halves alpha.
- Each update moves a knob by at most ``max_slew`` (rollbacks and restarts jump).
- It starts gradient-first (sigma0 = sigma_min: one query per update, no
  probes) and dithers only once the loss plateaus; a plateau multiplies sigma
  by 8, so three plateaus span sigma_min to sigma_max. After ``restart_after``
  plateaus at sigma_max it restarts from a uniform random point, with alpha,
  sigma and the alpha ceiling back at their initial values.

Every decision (progress, plateau, rollback, restart, with alpha and sigma) is
logged in ``SolveResult.events``. Queries per update: one (loss and plant
gradient, or loss alone; on hardware a take, plus a twin gradient that is no
query) plus two per probe pair while dithering.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import optax

from ddsp_gym.agents.base import PlantOracle, SolveResult, Stop
from ddsp_gym.agents.lyapunov import LyapunovMonitor
from ddsp_gym.agents.scheduler import DitherScheduler
from ddsp_gym.agents.spsa import antithetic_gradient, rademacher


def dither_shape(theta: np.ndarray) -> np.ndarray:
    """D(theta) diagonal: 1 at mid travel, about 0.32 at the end stops."""
    return np.sqrt(1.0 - 0.9 * np.square(np.clip(theta, -1.0, 1.0)))


def unit(v: np.ndarray) -> np.ndarray:
    """v / |v| (zero stays zero)."""
    norm = float(np.linalg.norm(v))
    return v / norm if norm > 0.0 else v


def blend_weight(sigma: float, sigma_min: float, sigma_max: float) -> float:
    """Trust in the dither's gradient estimate: 0 at sigma_min, 1 at sigma_max."""
    if sigma_max <= sigma_min:
        return 1.0
    return float(np.clip((sigma - sigma_min) / (sigma_max - sigma_min), 0.0, 1.0))


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
        sigma_up, sigma_down: the scheduler's factors on plateau / progress.
        alpha_up: alpha's growth on progress (the monitor halves it).
        alpha_decay: the alpha ceiling's decay per update since the last (re)start:
            alpha_max * alpha_decay^t, as the gradient agent's learning rate.
        patience: updates without progress that make a plateau.
        window: the Lyapunov monitor's averaging window (updates).
        probe_pairs: antithetic probe pairs per update while dithering.
        max_slew: largest knob move per update (action units).
        restart_after: plateaus at sigma_max before a restart from a random point.
    """

    alpha0: float = 0.1
    sigma0: float = 1e-3
    alpha_min: float = 1e-3
    alpha_max: float = 0.1
    sigma_min: float = 1e-3
    sigma_max: float = 0.5
    sigma_up: float = 8.0
    sigma_down: float = 0.5
    alpha_up: float = 2.0
    patience: int = 3
    window: int = 4
    probe_pairs: int = 1
    max_slew: float = 0.5
    restart_after: int = 1
    alpha_decay: float = 0.98
    name: str = "hybrid"

    def solve(self, env: gym.Env, seed: int, budget: int) -> SolveResult:
        start = time.perf_counter()
        oracle = PlantOracle(env, seed, budget)
        rng = np.random.default_rng(seed)
        scheduler = DitherScheduler(
            sigma=self.sigma0,
            alpha=self.alpha0,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            alpha_min=self.alpha_min,
            alpha_max=self.alpha_max,
            sigma_up=self.sigma_up,
            sigma_down=self.sigma_down,
            alpha_up=self.alpha_up,
            patience=self.patience,
        )
        monitor = LyapunovMonitor(window=self.window)
        events: list[dict[str, Any]] = []
        try:
            self._run(oracle, rng, scheduler, monitor, events)
        except Stop:
            pass
        events = sorted(events + scheduler.events + monitor.events, key=lambda e: e["query"])
        return oracle.result(events, time.perf_counter() - start)

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
        # The best point's query, kept so a rollback to it does not pay for it again.
        best_query: tuple[bytes, float, np.ndarray | None] = (b"", np.inf, None)
        updates = 0  # since the last (re)start: the alpha ceiling decays with it
        while True:
            scheduler.cap_alpha(self.alpha_max * self.alpha_decay**updates)
            updates += 1
            if theta.tobytes() == best_query[0]:
                _, loss, plant_grad = best_query
            elif oracle.differentiable:
                loss, plant_grad = oracle.loss_and_grad(theta)
            elif oracle.has_twin:
                loss, plant_grad = oracle.loss(theta), oracle.twin_grad(theta)
            else:
                loss, plant_grad = oracle.loss(theta), None
            if loss < best_query[1]:
                best_query = (theta.tobytes(), loss, plant_grad)
            back = monitor.observe(loss, theta, oracle.queries)
            if back is not None:
                scheduler.shrink_alpha(0.5)
                monitor.events[-1].update(alpha=scheduler.alpha, sigma=scheduler.sigma)
                theta, adam_state = back, adam.init(back)
                continue
            grad = np.zeros_like(theta) if plant_grad is None else unit(plant_grad)
            eta = np.zeros_like(theta)
            if plant_grad is None or scheduler.sigma > self.sigma_min:
                grad, eta = self._dither(oracle, rng, scheduler, monitor, theta, loss, grad)
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
                adam_state, plateaus_at_max, updates = adam.init(theta), 0, 0
                # A fresh start gets the initial step schedule, not the old basin's shrunk alpha.
                scheduler.alpha_max, scheduler.alpha = self.alpha_max, self.alpha0
                scheduler.sigma, scheduler.best = self.sigma0, float("inf")
                monitor.restart()
                best_query = (b"", np.inf, None)
                events.append(
                    {
                        "query": oracle.queries,
                        "event": "restart",
                        "alpha": self.alpha0,
                        "sigma": self.sigma0,
                    }
                )

    def _dither(
        self,
        oracle: PlantOracle,
        rng: np.random.Generator,
        scheduler: DitherScheduler,
        monitor: LyapunovMonitor,
        theta: np.ndarray,
        loss: float,
        plant_direction: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probe antithetic pairs -> (blended gradient g_t, dither direction eta_t)."""
        directions = rademacher(rng, self.probe_pairs, oracle.dim)
        scale = scheduler.sigma * dither_shape(theta)
        g_pg, probes = antithetic_gradient(oracle.loss, theta, scale, directions)
        for point, probe_loss in probes:
            monitor.record_best(probe_loss, np.clip(point, -1.0, 1.0))
        w = (
            blend_weight(scheduler.sigma, self.sigma_min, self.sigma_max)
            if oracle.differentiable or oracle.has_twin
            else 1.0
        )
        grad = (1.0 - w) * plant_direction + w * unit(g_pg)
        best = int(np.argmin([probe_loss for _, probe_loss in probes]))
        if probes[best][1] >= loss:
            return grad, np.zeros_like(theta)
        # Probes alternate +delta, -delta for each pair.
        return grad, (1.0 if best % 2 == 0 else -1.0) * directions[best // 2]
