"""Live mode's block core: a streaming env's state and jitted functions (the offline
env's own), stepped one block at a time. JAX is imported only when a core is built."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np


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
        self._score = jax.jit(self.fenv.score_played)
        self._observe = jax.jit(self.fenv._observation)
        _, self.state = jax.jit(self.fenv.reset_env)(jax.random.PRNGKey(seed), self.params)
        self._jax = jax

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

    def warm_up(self, hardware: bool = False) -> None:
        """Compile before the audio starts (the first call of a jitted function compiles)."""
        action = 2.0 * self.knobs - 1.0
        if hardware:
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

    def render(self, target: np.ndarray) -> tuple[np.ndarray, float, dict[str, float]]:
        """Render the next block ramping to ``target``: (audio, reward, reward terms)."""
        action = 2.0 * np.asarray(target, np.float32) - 1.0
        state, reward, info = self._transition(self.state, action, self.params)
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
