"""Hybrid policy gradient: the design notes' learning law for a policy network.

The notes (``DESIGN.md`` section 6, the seed's "Hybrid" and "Adaptive Evolution Layer")
combine four things; here each is a piece of an update of the policy's parameters:

1. **Backprop through the plant**: the analytic policy gradient of
   :mod:`ddsp_gym.agents.apg` (the discounted return of ``horizon`` steps, differentiated
   through every render).
2. **Policy gradient with a shaped advantage**: a score-function (REINFORCE) term on the
   same steps, ``-E[log pi(a_t | s_t) * A'_t]`` with ``A'_t = A_t * M(phi_t)`` and
   ``M = 1 + kappa * exp(-distance_t / threshold)`` (:func:`ddsp_gym.agents.apg.closeness`):
   the advantage counts more near the target. It needs no plant gradient, so it still
   points somewhere where the pathwise gradient is flat or misleading.
3. **Scheduled exploration**: Gaussian dither of std sigma on the actions (both terms use
   the same samples) and the learning rate alpha, set between blocks of updates by the
   search agent's :class:`ddsp_gym.agents.scheduler.DitherScheduler` (sigma up on
   plateaus, down on progress; alpha bounded).
4. **Lyapunov guard**: :class:`ddsp_gym.agents.lyapunov.LyapunovMonitor` watches a
   deterministic loss (the policy's mean distance on a fixed probe of training targets)
   after every block; when it has not fallen on average over its window, the parameters
   return to the best seen and alpha shrinks.

The updates themselves run jitted (:func:`ddsp_gym.agents.apg.make_trainer`); the
scheduler and monitor act on the host between blocks. The probe's env steps count
towards the training budget.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array
from jax.flatten_util import ravel_pytree

from ddsp_gym.agents.jax_policy import PolicyParams, deterministic_action, evaluate_heldout
from ddsp_gym.agents.lyapunov import LyapunovMonitor
from ddsp_gym.agents.scheduler import DitherScheduler
from ddsp_gym.envs.functional import EnvParams, FunctionalDDSPEnv


@dataclass(frozen=True)
class ScheduleConfig:
    """The host-side schedule's settings (``agents/hyperparams/hybrid_pg.yaml``)."""

    block: int = 10  # updates between scheduler / monitor decisions
    probe_envs: int = 32
    probe_steps: int = 32
    sigma_min: float = 0.005
    sigma_max: float = 0.3
    alpha_min_scale: float = 0.05
    alpha_max_scale: float = 2.0
    patience: int = 3
    lyapunov_window: int = 4
    lyapunov_tolerance: float = -0.002

    @property
    def probe_cost(self) -> int:
        """Env steps one probe plays (at most: episodes end at success)."""
        return self.probe_envs * self.probe_steps


def filled_mean_distance(distances: Array) -> Array:
    """Mean over (steps, envs) of per-step distances, each env's steps after its episode
    ended (nan) counted at its last distance: an absorbing success, so solving early
    lowers the loss and never raises it."""

    def fill(last, row):
        row = jnp.where(jnp.isnan(row), last, row)
        return row, row

    _, filled = jax.lax.scan(fill, distances[0], distances)
    return jnp.mean(filled)


def make_probe(fenv: FunctionalDDSPEnv, env_params: EnvParams, key: Array, config: ScheduleConfig):
    """``probe(params) -> loss``: the deterministic policy's filled mean distance (over the
    distance scale) on ``probe_envs`` fixed training targets, ``probe_steps`` steps each.

    Fixed targets and no dither make it a function of the parameters alone, as a
    Lyapunov candidate must be.
    """
    chains = jax.random.split(key, config.probe_envs)
    d = fenv.num_knobs

    @jax.jit
    def probe(params: PolicyParams) -> Array:
        result = evaluate_heldout(
            fenv,
            env_params,
            lambda obs: deterministic_action(params, obs, d),
            chains,
            config.probe_steps,
        )
        return filled_mean_distance(result.distances) / env_params.distance_scale

    return probe


@dataclass
class HybridSchedule:
    """The scheduler and the monitor of one hybrid run, and what they decided."""

    config: ScheduleConfig
    learning_rate: float
    scheduler: DitherScheduler
    monitor: LyapunovMonitor
    events: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def create(cls, config: ScheduleConfig, learning_rate: float, dither: float) -> HybridSchedule:
        scheduler = DitherScheduler(
            sigma=dither,
            alpha=learning_rate,
            sigma_min=config.sigma_min,
            sigma_max=config.sigma_max,
            alpha_min=learning_rate * config.alpha_min_scale,
            alpha_max=learning_rate * config.alpha_max_scale,
            patience=config.patience,
        )
        monitor = LyapunovMonitor(
            window=config.lyapunov_window, tolerance=config.lyapunov_tolerance
        )
        return cls(config, learning_rate, scheduler, monitor)

    @property
    def dither(self) -> float:
        return self.scheduler.sigma

    @property
    def lr_scale(self) -> float:
        """alpha as a multiple of the configured learning rate (the trainer's argument)."""
        return self.scheduler.alpha / self.learning_rate

    def observe(self, loss: float, params: PolicyParams, steps: int) -> PolicyParams | None:
        """Feed a block's probe loss; returns the parameters to return to, or None."""
        self.scheduler.update(loss, steps)
        flat, unravel = ravel_pytree(params)
        back = self.monitor.observe(loss, np.asarray(flat, np.float64), steps)
        if back is None:
            return None
        self.scheduler.shrink_alpha(0.5, steps)
        self.events.append({"steps": steps, "event": "rollback", "loss": loss})
        return unravel(jnp.asarray(back, flat.dtype))

    def best(self, params: PolicyParams) -> PolicyParams:
        """The best parameters the monitor has seen (``params`` before any probe)."""
        if self.monitor.best_theta is None:
            return params
        flat, unravel = ravel_pytree(params)
        return unravel(jnp.asarray(self.monitor.best_theta, flat.dtype))
