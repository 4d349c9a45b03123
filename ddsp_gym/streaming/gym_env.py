"""The Gymnasium env of a stream: owns the key chain and the StreamState, speaks numpy."""

from __future__ import annotations

import functools
from typing import Any

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np

from ddsp_gym.envs.compile import chain_from_int
from ddsp_gym.envs.spaces import checked_action
from ddsp_gym.features.summary import SUMMARY_BOUND
from ddsp_gym.streaming.config import StreamConfig, build_streaming
from ddsp_gym.streaming.functional import StreamingEnv, StreamParams, StreamState


class StreamingDDSPEnv(gym.Env[np.ndarray, np.ndarray]):
    """An agent plays the knobs of a sound that never stops, one control block per step.

    ## Description
    Each step is one block (``plant.block_size`` samples, 64 ms at 16 kHz by default) of a
    continuous sound: the knobs glide per sample from their last to their new position
    across the block (no zipper noise, no click at the edge), and the plant's state
    (oscillator phases, filter memory, delay lines) carries from block to block. Which
    plant and task, and the seed demo an id realizes, are set in ``envs_registry.yaml``;
    docs/streaming.md describes the three envs.

    ## Action Space
    ``Box(-1, 1, (d,), float32)``, one entry per knob. ``control="delta"`` (default) moves
    each knob by ``max_delta * a`` of its travel during the block; ``"absolute"`` sets
    ``u = (a + 1) / 2``. Out-of-range actions are clipped; NaN or infinite entries raise
    ``ValueError`` and change nothing.

    ## Observation Space
    ``Box(-5, 5, (d + H * 28 + extras,), float32)``: unit knob positions, the 28 summary
    features (:func:`ddsp_gym.features.summary.summary_features`) of each of the last H
    blocks, newest first, and the task's extras (target bands, tempo and beat phase).

    ## Rewards
    The task's terms (novelty, loudness drift, band violations, beat alignment) plus
    shared penalties: samples above 0 dBFS, the plant's control risk (a filter near
    self-oscillation) and abrupt moves ``slew_penalty * sum((u_next - u_prev)^2)``.
    ``info`` holds each weighted term; they sum to the reward.

    ## Starting State
    Knobs uniform at random (``random_start=False``: mid travel), then two warm-up blocks
    at those knobs. ``reset(seed=s)`` restarts the env's JAX key chain as DDSPEnv does.

    ## Episode End
    A stream never terminates; it is truncated at ``max_episode_steps``.

    ## Arguments
    :class:`ddsp_gym.streaming.config.StreamConfig`'s fields and any
    :class:`~ddsp_gym.streaming.functional.StreamParams` number, as keyword arguments.

    ## Version History
    * v0: first version (offline; stepped live by ``ddsp_gym.live.LiveEnv``: docs/streaming.md).
    """

    metadata = {"render_modes": []}

    def __init__(self, **kwargs: Any) -> None:
        self.config = StreamConfig.from_kwargs(**kwargs)
        self.functional, self.params = build_streaming(self.config)
        self.plant = self.functional.plant
        self.render_mode = None
        self.action_space = gym.spaces.Box(-1.0, 1.0, (self.plant.num_knobs,), np.float32)
        self.observation_space = gym.spaces.Box(
            -SUMMARY_BOUND, SUMMARY_BOUND, (self.functional.obs_size,), np.float32
        )
        self._fns = _compiled(self.functional)
        self._chain: jax.Array | None = None
        self.state: StreamState | None = None

    # ---- gymnasium API --------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if seed is not None or self._chain is None:
            self._chain = chain_from_int(int(self.np_random.integers(0, 2**31 - 1)))
        self._chain, key = self._fns.split(self._chain)
        obs, self.state = self._fns.reset(key, self.params)
        return np.asarray(obs), {"knobs": self._physical(self.state.knobs)}

    def step(self, action):
        state = self._require_state()
        action = self._checked_action(action)
        if self.config.expose_grad:
            (reward, (state, info)), grad = self._fns.step_with_grad(state, action, self.params)
        else:
            reward, (state, info) = self._fns.step(state, action, self.params)
            grad = None
        self.state = state
        obs = self._fns.observe(state)
        info = {k: float(v) for k, v in info.items()}
        info["knobs"] = self._physical(state.knobs)
        # Offline a block is never late; the live render thread counts real xruns here.
        info["xruns"] = 0
        if grad is not None:
            info["reward_grad"] = np.asarray(grad, np.float32)
        return np.asarray(obs), float(reward), False, False, info

    def reward_and_grad(self, action) -> tuple[float, np.ndarray]:
        """(reward, d reward / d action) of playing ``action`` for the next block from the
        current state; no step is taken (the stream stays where it was)."""
        state = self._require_state()
        action = self._checked_action(action)
        (reward, _), grad = self._fns.step_with_grad(state, action, self.params)
        return float(reward), np.asarray(grad, np.float64)

    def current_audio(self) -> np.ndarray:
        """The last block played, (block_size,) float32."""
        return np.asarray(self._require_state().audio)

    # ---- helpers ----------------------------------------------------------------------

    def _require_state(self) -> StreamState:
        if self.state is None:
            raise RuntimeError("call reset() before step()")
        return self.state

    def _checked_action(self, action) -> np.ndarray:
        return checked_action(action, self.action_space.shape, self.plant.knob_names)

    def _physical(self, knobs) -> dict[str, float]:
        return {name: float(v) for name, v in self.plant.physical(jnp.asarray(knobs)).items()}


class _Fns:
    """The jitted functions of one functional env, shared by every instance with it."""

    def __init__(self, fenv: StreamingEnv) -> None:
        def transition(state, action, params):
            new_state, reward, info = fenv.transition(state, action, params)
            return reward, (new_state, info)

        self.reset = jax.jit(fenv.reset_env)
        self.step = jax.jit(transition)
        self.step_with_grad = jax.jit(jax.value_and_grad(transition, argnums=1, has_aux=True))
        self.observe = jax.jit(fenv._observation)
        self.split = jax.jit(lambda chain: tuple(jax.random.split(chain)))


@functools.lru_cache(maxsize=32)
def _compiled(fenv: StreamingEnv) -> _Fns:
    return _Fns(fenv)


def make_streaming_functional(env_id: str, **kwargs: Any) -> tuple[StreamingEnv, StreamParams]:
    """``(env, default_params)`` of a registered streaming id, gymnax-style; the params'
    horizon is the registry's ``max_episode_steps`` unless ``max_episode_steps=`` is given."""
    spec = gym.spec(env_id)
    max_steps = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    env = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    if not isinstance(env, StreamingDDSPEnv):
        raise ValueError(f"{env_id} is not a streaming env; use ddsp_gym.make_functional")
    return env.functional, env.params._replace(
        max_steps_in_episode=jnp.asarray(max_steps, jnp.int32)
    )


__all__ = ["StreamingDDSPEnv", "make_streaming_functional"]
