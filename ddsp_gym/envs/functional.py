"""The functional core of every env: pure ``reset`` and ``step``, jittable and vmappable.

Like gymnax, the env object holds only static configuration (plant, task,
control mode); everything that changes lives in :class:`EnvState`, and
everything a caller supplies per batch (a fixed target, an effect's input)
lives in :class:`EnvParams`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.features.summary import SUMMARY_SIZE, summary_features
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.tasks.base import AbstractTask

Control = Literal["absolute", "delta"]
CONTROLS: tuple[str, ...] = ("absolute", "delta")


class EnvParams(NamedTuple):
    """Per-episode inputs. ``None`` fields are sampled or unused."""

    target_audio: Array | None = None  # (n,) a fixed target sound; None: sample hidden knobs
    # (n,) the signal an effect plant processes. None: its default program, which the plant
    # then holds as a constant of the compiled step (with its spectrum, for the convolving
    # effects) instead of an argument copied in at every call.
    input_audio: Array | None = None


class EnvState(NamedTuple):
    knobs: Array  # (d,) unit knob positions now
    target_knobs: Array  # (d,) hidden target knobs (zeros when the target came from audio)
    target_known: Array  # () bool: are target_knobs meaningful?
    target_audio: Array  # (n,)
    target_features: Any  # task features of the target (pytree)
    target_summary: Array  # (SUMMARY_SIZE,)
    render_key: Array  # key for the plant's noise, fixed for the episode
    step_count: Array  # () int32


class StepInfo(NamedTuple):
    distance: Array  # () in the task's unit
    success: Array  # () bool
    param_error: Array  # () max |knob - target knob| in unit space (nan if unknown)
    penalty: Array  # ()


@dataclass(frozen=True)
class FunctionalDDSPEnv:
    """Static configuration of one env; all methods are pure functions of their arguments.

    Args:
        plant: the synth/effect being played.
        task: features, distance and success criterion.
        control: "absolute" (action sets the knobs: u = (a + 1) / 2) or "delta"
            (action nudges them: u = clip(u + max_delta * a, 0, 1)).
        max_delta: largest knob move per step in delta mode (unit travel).
        slew_penalty: weight of the knob-slew penalty sum((u_t - u_{t-1})^2).
        clip_penalty: weight of the penalty on output peaks above full scale.
        random_start: start each episode at random knobs (else all at 0.5).
    """

    plant: AbstractPlant
    task: AbstractTask
    control: Control = "absolute"
    max_delta: float = 0.1
    slew_penalty: float = 0.0
    clip_penalty: float = 1.0
    random_start: bool = True

    def __post_init__(self) -> None:
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, not {self.control!r}")
        if not 0.0 < self.max_delta <= 1.0:
            raise ValueError(f"max_delta must be in (0, 1], not {self.max_delta}")

    @property
    def num_knobs(self) -> int:
        return self.plant.num_knobs

    @property
    def obs_size(self) -> int:
        return self.num_knobs + 2 * SUMMARY_SIZE

    # ---- pure pieces -------------------------------------------------------------

    def knobs_after(self, knobs: Array, action: Array) -> Array:
        """Unit knob positions after ``action`` (already in [-1, 1]) from ``knobs``."""
        if self.control == "absolute":
            return (action + 1.0) / 2.0
        return jnp.clip(knobs + self.max_delta * action, 0.0, 1.0)

    def action_for(self, knobs: Array, target_knobs: Array) -> Array:
        """The action that moves ``knobs`` towards ``target_knobs`` (inverse of knobs_after)."""
        if self.control == "absolute":
            return 2.0 * target_knobs - 1.0
        return jnp.clip((target_knobs - knobs) / self.max_delta, -1.0, 1.0)

    def evaluate(
        self, state: EnvState, knobs: Array, params: EnvParams
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward of playing ``knobs`` in ``state`` -> (reward, (observation, info))."""
        task = self.task
        if task.grad_penalty > 0.0:  # the task's sensitivity penalty (AbstractTask)
            (distance, audio), sensitivity = jax.value_and_grad(self._distance, has_aux=True)(
                knobs, state, params
            )
            norm = jnp.sqrt(jnp.sum(sensitivity**2) + 1e-12) / task.distance_scale
            # Logarithmic growth: a wild corner is charged, but cannot swamp the reward.
            excess = jnp.maximum(norm / task.grad_norm_limit - 1.0, 0.0)
            sensitivity_term = task.grad_penalty * jnp.log1p(jnp.square(excess))
        else:
            distance, audio = self._distance(knobs, state, params)
            sensitivity_term = 0.0
        return self._outcome(state, knobs, audio, distance, sensitivity_term)

    def score(
        self, state: EnvState, knobs: Array, audio: Array
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward of ``audio`` heard at ``knobs`` -> (reward, (observation, info)).

        The reward of audio that was not rendered by the plant (the hardware backend
        records it from the device); no gradient exists there, so no sensitivity term.
        """
        feats = self.task.features(audio, self.plant.sample_rate)
        distance = self.task.distance(feats, state.target_features)
        return self._outcome(state, knobs, audio, distance, 0.0)

    def _outcome(
        self,
        state: EnvState,
        knobs: Array,
        audio: Array,
        distance: Array,
        extra_penalty: Array | float,
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward, observation and info of ``audio`` at ``distance`` from the target."""
        slew = jnp.sum((knobs - state.knobs) ** 2)
        overshoot = jnp.maximum(jnp.max(jnp.abs(audio)) - 1.0, 0.0)
        penalty = self.slew_penalty * slew + self.clip_penalty * overshoot + extra_penalty
        reward = -distance / self.task.distance_scale - penalty
        param_error = jnp.where(
            state.target_known, jnp.max(jnp.abs(knobs - state.target_knobs)), jnp.nan
        )
        success = distance <= self.task.success_threshold
        if self.task.param_tolerance is not None:
            # The knob-space criterion decides wherever the target's knobs are known.
            success = jnp.where(
                state.target_known, param_error <= self.task.param_tolerance, success
            )
        obs = self.observe(knobs, audio, state.target_summary)
        return reward, (obs, StepInfo(distance, success, param_error, penalty))

    def _distance(self, knobs: Array, state: EnvState, params: EnvParams) -> tuple[Array, Array]:
        """(task distance, audio) of playing ``knobs``."""
        audio = self.plant.render(knobs, state.render_key, params.input_audio)
        feats = self.task.features(audio, self.plant.sample_rate)
        return self.task.distance(feats, state.target_features), audio

    def observe(self, knobs: Array, audio: Array, target_summary: Array) -> Array:
        """Observation: knob positions, summary features of ``audio`` and of the target."""
        summary = summary_features(audio, self.plant.sample_rate)
        return jnp.concatenate([knobs, summary, target_summary]).astype(jnp.float32)

    # ---- the functional env API -------------------------------------------------

    def episode_knobs(self, key: Array) -> tuple[Array, Array, Array]:
        """Split an episode key -> (hidden target knobs, starting knobs, render key)."""
        k_target, k_start, k_render = jax.random.split(key, 3)
        d = self.num_knobs
        target_knobs = self.task.sample_target_knobs(k_target, self.plant, k_render)
        if self.random_start:
            knobs = jax.random.uniform(k_start, (d,))
        else:
            knobs = jnp.full((d,), 0.5)
        return target_knobs, knobs, k_render

    def start(
        self,
        knobs: Array,
        target_knobs: Array,
        target_known: Array,
        target_audio: Array,
        render_key: Array,
    ) -> EnvState:
        """The state at the start of an episode with this target (sim or recorded)."""
        sr = self.plant.sample_rate
        target_audio = jnp.asarray(target_audio, jnp.float32)
        return EnvState(
            knobs=knobs,
            target_knobs=jnp.where(target_known, target_knobs, jnp.zeros_like(target_knobs)),
            target_known=jnp.asarray(target_known),
            target_audio=target_audio,
            target_features=self.task.features(target_audio, sr),
            target_summary=summary_features(target_audio, sr),
            render_key=render_key,
            step_count=jnp.array(0, jnp.int32),
        )

    def reset(self, key: Array, params: EnvParams) -> tuple[EnvState, Array]:
        """Start an episode: pick the target and the starting knobs -> (state, obs)."""
        target_knobs, knobs, k_render = self.episode_knobs(key)
        if params.target_audio is None:
            target_audio = self.plant.render(target_knobs, k_render, params.input_audio)
            target_known = jnp.array(True)
        else:
            target_audio = jnp.asarray(params.target_audio, jnp.float32)
            target_known = jnp.array(False)
        state = self.start(knobs, target_knobs, target_known, target_audio, k_render)
        audio = self.plant.render(knobs, k_render, params.input_audio)
        return state, self.observe(knobs, audio, state.target_summary)

    def reset_from_chain(self, chain: Array, params: EnvParams) -> tuple[Array, EnvState, Array]:
        """:meth:`reset` with the next key of a per-env key chain -> (chain, state, obs).

        Every env (single or in a vector) owns a chain key, set from its seed;
        each reset splits it into the episode's key and the chain's next link.
        Episode k of an env seeded ``s`` thus gets the same target wherever it runs.
        """
        chain, key = jax.random.split(chain)
        state, obs = self.reset(key, params)
        return chain, state, obs

    def step(
        self, key: Array, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[EnvState, Array, Array, Array, StepInfo]:
        """Play ``action`` -> (state, obs, reward, terminated, info).

        ``key`` is unused by the deterministic sim backend: the plant's noise is
        drawn from ``state.render_key``, fixed per episode (common random
        numbers), so the reward is a deterministic function of the knobs and its
        gradient is exact. It is part of the signature for stochastic plants.
        """
        del key
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        knobs = self.knobs_after(state.knobs, action)
        reward, (obs, info) = self.evaluate(state, knobs, params)
        new_state = state._replace(knobs=knobs, step_count=state.step_count + 1)
        return new_state, obs, reward, info.success, info

    def reward_of_action(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward (and aux) of ``action`` from ``state``; differentiable in ``action``."""
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        return self.evaluate(state, self.knobs_after(state.knobs, action), params)

    def reward_and_grad(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[Array, Array, tuple[Array, StepInfo]]:
        """(reward, d reward / d action, aux) of ``action`` from ``state``, no step taken."""
        (reward, aux), grad = jax.value_and_grad(self.reward_of_action, argnums=1, has_aux=True)(
            state, action, params
        )
        return reward, grad, aux

    def step_with_grad(
        self, key: Array, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[EnvState, Array, Array, Array, StepInfo, Array]:
        """:meth:`step` plus d reward / d action, from one forward and backward pass."""
        del key
        reward, grad, (obs, info) = self.reward_and_grad(state, action, params)
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        knobs = self.knobs_after(state.knobs, action)
        new_state = state._replace(knobs=knobs, step_count=state.step_count + 1)
        return new_state, obs, reward, info.success, info, grad
