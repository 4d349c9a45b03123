"""Live mode's block core: a streaming env's state and jitted functions (the offline
env's own), stepped one block at a time. JAX is imported only when a core is built."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

TICKS_PER_BEAT = 24  # MIDI clock (ddsp_gym.streaming.performance's, without importing JAX)


class BlockCore:
    """A streaming env's state and jitted functions, stepped one block at a time.

    The functional env is rebuilt with absolute control: the agent thread converts its
    actions (delta or absolute, as the env says) to unit knob targets, and each block
    ramps to the target it takes. Rewards, features and penalties are the offline env's.
    """

    def __init__(self, env_id: str, seed: int = 0, **env_kwargs: Any) -> None:
        import gymnasium as gym
        import jax

        import ddsp_gym  # noqa: F401  (registers the ids)
        from ddsp_gym.streaming.gym_env import StreamingDDSPEnv

        try:
            env = gym.make(env_id, disable_env_checker=True, **env_kwargs).unwrapped
        except gym.error.Error as err:
            raise ValueError(f"unknown env {env_id!r}: {err}") from None
        if not isinstance(env, StreamingDDSPEnv):
            raise ValueError(
                f"{env_id} is not a streaming env: live mode plays kind: streaming ids "
                "(ddsp_gym/Drone-v0, ddsp_gym/PerformerAssistant-v0, ddsp_gym/JamPartner-v0)"
            )
        self.env_id = env_id
        self.control = env.functional.control
        self.max_delta = float(env.params.max_delta)
        self.fenv = dataclasses.replace(env.functional, control="absolute")
        self.params = env.params
        self.plant = self.fenv.plant
        self.knob_names = self.plant.knob_names
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self._transition = jax.jit(self.fenv.transition)
        self._transition_in = jax.jit(_transition_with_input(self.fenv))
        self._score = jax.jit(self.fenv.score_played)
        self._observe = jax.jit(self.fenv._observation)
        self._reset = jax.jit(self.fenv.reset_env)
        self._jax = jax
        self.reset(seed)

    def reset(self, seed: int) -> None:
        """A fresh stream (the offline env's reset with ``PRNGKey(seed)``)."""
        _, self.state = self._reset(self._jax.random.PRNGKey(seed), self.params)

    @property
    def stream_time(self) -> float:
        """Stream time (s) of the next block's first sample (warm-up blocks included)."""
        return int(self.state.block) * self.block_size / self.sample_rate

    @property
    def follows_a_beat(self) -> bool:
        """Does the task play along with a clock (JamPartner)?"""
        return hasattr(self.state.task, "clock")

    def set_beat(self, tempo_bpm: float, beat_s: float) -> None:
        """Make the task's clock a steady ``tempo_bpm`` with a beat at stream time ``beat_s``.

        Live mode's incoming MIDI clock in place of the generated one: the grid, the tempo
        estimate and the last tick and beat the observation's phase is measured from.
        """
        if not self.follows_a_beat:
            raise ValueError(f"{self.env_id}'s task follows no beat (JamPartner-v0 does)")
        if not (math.isfinite(tempo_bpm) and tempo_bpm > 0 and math.isfinite(beat_s)):
            raise ValueError(
                f"a beat needs a tempo > 0 and a finite time, got {tempo_bpm}, {beat_s}"
            )
        jnp = self._jax.numpy
        interval = 60.0 / (tempo_bpm * TICKS_PER_BEAT)
        period = interval * TICKS_PER_BEAT
        offset = beat_s % period  # small numbers: float32 keeps them to the microsecond
        t0 = self.stream_time
        last_tick = offset + math.floor((t0 - offset) / interval) * interval
        last_beat = offset + math.floor((t0 - offset) / period) * period
        f32 = lambda x: jnp.asarray(x, jnp.float32)  # noqa: E731 - one jit cache entry
        task = self.state.task
        clock = task.clock._replace(
            tempo_bpm=f32(tempo_bpm), jitter_s=f32(0.0), offset_s=f32(offset)
        )
        task = task._replace(
            clock=clock, interval_estimate=f32(interval),
            last_tick_s=f32(last_tick), last_beat_s=f32(last_beat),
        )  # fmt: skip
        self.state = self.state._replace(task=task)

    @property
    def block_size(self) -> int:
        return self.plant.block_size

    @property
    def sample_rate(self) -> int:
        return self.plant.sample_rate

    @property
    def knobs(self) -> np.ndarray:
        return np.asarray(self.state.knobs, np.float32)

    def observation(self) -> np.ndarray:
        return np.asarray(self._observe(self.state), np.float32)

    def target_after(self, knobs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Unit knob targets after ``action`` from ``knobs``, as the offline env moves them."""
        a = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0)
        if a.shape[0] != len(self.knob_names) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"an action must be {len(self.knob_names)} finite numbers "
                f"({', '.join(self.knob_names)}), got {action!r}"
            )
        if self.control == "absolute":
            return (a + 1.0) / 2.0
        return np.clip(knobs + self.max_delta * a, 0.0, 1.0).astype(np.float32)

    def warm_up(self, hardware: bool = False, live_input: bool = False) -> None:
        """Compile before the audio starts (the first call of a jitted function compiles)."""
        action = 2.0 * self.knobs - 1.0
        if live_input:
            silence = np.zeros(self.block_size, np.float32)
            out = self._transition_in(self.state, action, silence, self.params)
        elif hardware:
            out = self._score(
                self.state, self.state.knobs, self.state.audio, None, self.state.plant, self.params
            )
        else:
            out = self._transition(self.state, action, self.params)
        self._jax.block_until_ready(out)
        self._jax.block_until_ready(self._observe(self.state))

    def _finish(self, state, reward, info) -> tuple[float, dict[str, float]]:
        self.state = state
        return float(reward), {k: float(v) for k, v in info.items()}

    def render(
        self, target: np.ndarray, audio_in: np.ndarray | None = None
    ) -> tuple[np.ndarray, float, dict[str, float]]:
        """Render the next block ramping to ``target``: (audio, reward, reward terms).

        ``audio_in``: an effect's input block from outside (a live capture); None plays
        the task's own input (generated, or the env's ``input`` recording).
        """
        action = 2.0 * np.asarray(target, np.float32) - 1.0
        if audio_in is None:
            state, reward, info = self._transition(self.state, action, self.params)
        else:
            if not self.plant.needs_input:
                raise ValueError(f"{self.env_id} is an instrument: it takes no audio input")
            block = np.asarray(audio_in, np.float32).reshape(-1)
            if block.shape != (self.block_size,):
                raise ValueError(f"an input block is {self.block_size} samples, got {block.shape}")
            state, reward, info = self._transition_in(self.state, action, block, self.params)
        reward, info = self._finish(state, reward, info)
        return np.asarray(state.audio, np.float32), reward, info

    def score(self, target: np.ndarray, audio: np.ndarray) -> tuple[float, dict[str, float]]:
        """Score a block played elsewhere (captured from a synth) with the knobs at ``target``."""
        if self.plant.needs_input:
            raise NotImplementedError("scoring a captured block of an effect plant")
        state, reward, info = self._score(
            self.state, np.asarray(target, np.float32), np.asarray(audio, np.float32),
            None, self.state.plant, self.params,
        )  # fmt: skip
        return self._finish(state, reward, info)

    def physical(self, knobs: np.ndarray) -> dict[str, float]:
        return {
            spec.name: float(spec.to_physical(float(u)))
            for spec, u in zip(self.plant.knob_specs, knobs, strict=True)
        }


def _transition_with_input(fenv):
    """``fenv.transition`` with the effect's input block given instead of the task's."""

    def transition(state, action, audio_in, params):
        import jax

        knobs_next = fenv.knobs_after(state.knobs, action, params)
        audio, plant_state = fenv.plant.render_block(
            state.plant, state.knobs, knobs_next,
            jax.random.fold_in(state.key, state.block), audio_in,
        )  # fmt: skip
        return fenv.score_played(state, knobs_next, audio, audio_in, plant_state, params)

    return transition
