"""The sim backend: the JAX plant itself. Deterministic, differentiable, faster than real time.

Its episodes run as one jitted call each (render, features, reward and gradient fused,
:mod:`ddsp_gym.envs.compile`) wherever the reward is the task's; another reward source
scores the rendered sound on the host, as it would a device's take.
"""

from __future__ import annotations

import functools

import jax
import numpy as np

from ddsp_gym.backends.base import (
    AbstractBackend,
    Capabilities,
    EnvCore,
    Outcome,
    RenderedTake,
    Start,
)
from ddsp_gym.envs.functional import EnvState
from ddsp_gym.plants.base import AbstractPlant


class SimBackend(AbstractBackend):
    """Renders the plant with JAX. ``schedule``: its XLA:CPU schedule (envs/compile.py)."""

    name = "sim"
    capabilities = Capabilities(differentiable=True, deterministic=True, real_time=False)

    def __init__(self, plant: AbstractPlant, schedule: str = "concurrency") -> None:
        super().__init__(plant)
        self.schedule = schedule

    def render(
        self,
        unit_knobs: np.ndarray,
        input_audio: np.ndarray | None = None,
        key: jax.Array | None = None,
    ) -> RenderedTake:
        key = jax.random.PRNGKey(0) if key is None else key
        audio = _render(self.plant, np.asarray(unit_knobs, np.float32), key, input_audio)
        return RenderedTake(np.asarray(audio), np.asarray(unit_knobs, np.float32))

    def start_episode(self, core: EnvCore, key: jax.Array) -> Start:
        if not core.reward.fused:
            return super().start_episode(core, key)
        jit = self.compiled(core)
        state, packed = jit.reset(key, core.packed_params)
        row, cols = np.asarray(packed), jit.reset_cols
        values = row.tolist()
        known = values[cols.starts["target_known"]] > 0.5
        return Start(state, row[cols["obs"]].copy(), values[cols["knobs"]], known, {})

    def evaluate(
        self, core: EnvCore, state: EnvState, action: np.ndarray, with_grad: bool, step: bool
    ) -> Outcome:
        if not core.reward.fused:
            return super().evaluate(core, state, action, with_grad, step)
        jit = self.compiled(core)
        change = None
        if step:
            run, cols = (jit.step_with_grad, jit.grad_step_cols) if with_grad else (
                jit.step, jit.step_cols
            )  # fmt: skip
            change, packed = run(state, action, core.packed_params)
        else:
            run, cols = (jit.query_with_grad if with_grad else jit.query), jit.query_cols
            packed = run(state, action, core.packed_params)
        row = np.asarray(packed)  # the call's one transfer to the host
        values = row.tolist()  # every number at once: cheaper than a numpy scalar per field
        at, span = cols.starts, cols.slices
        return Outcome(
            change=change,
            obs=row[span["obs"]].copy() if step else None,
            reward=values[at["reward"]],
            distance=values[at["distance"]],
            success=values[at["success"]] > 0.5,
            param_error=values[at["param_error"]],
            penalty=values[at["penalty"]],
            physical=values[span["knobs"]],
            reward_grad=row[span["reward_grad"]].copy() if with_grad else None,
            info={},
        )

    def audio_of(self, core: EnvCore, state: EnvState) -> np.ndarray:
        render = self.compiled(core).render
        return np.asarray(render(state.knobs, state.render_key, core.packed_params))


@functools.partial(jax.jit, static_argnums=0)
def _render(plant, knobs, key, input_audio):
    return plant.render(knobs, key, input_audio)


__all__ = ["SimBackend"]
