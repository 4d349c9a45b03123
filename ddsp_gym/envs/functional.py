"""The functional core of every env: pure ``reset`` and ``step`` with gymnax's signatures.

    env, params = ddsp_gym.make_functional("ddsp_gym/SineTuner-v1")
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)

As in gymnax, the env object holds only static configuration (plant, task, control
mode); everything that changes lives in :class:`EnvState`, and every number a caller
may want to vary lives in :class:`EnvParams`, whose leaves are traced: a jitted step
takes a new ``success_threshold`` or ``distance_scale`` without recompiling, and
``jax.vmap`` maps over them like over any array. ``step`` resets an episode that ends
(gymnax's auto-reset); ``reset_env`` and ``step_env`` are the bare transitions.

The Gymnasium env and the native vector env wrap the same pieces
(:meth:`FunctionalDDSPEnv.transition`, :meth:`FunctionalDDSPEnv.reset_from_chain`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.envs.spaces import Box
from ddsp_gym.features.summary import SUMMARY_BOUND, SUMMARY_SIZE, summary_features
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.tasks.base import AbstractTask, RewardSettings

Control = Literal["absolute", "delta", "log_delta"]
CONTROLS: tuple[str, ...] = ("absolute", "delta", "log_delta")
Observation = Literal["summaries", "difference", "log_difference"]
OBSERVATIONS: tuple[str, ...] = ("summaries", "difference", "log_difference")
RewardShape = Literal["linear", "log"]
REWARD_SHAPES: tuple[str, ...] = ("linear", "log")
# Summary differences below this count as "about equal" in observation="log_difference":
# 1e-3 is 5 cents of centroid (log2 octaves / 4) or 0.08 dB of a band level (dB / 80).
DIFFERENCE_FLOOR = 1e-3
# Truncation horizon of params made without one (an env made outside the registry).
UNLIMITED_STEPS = 2**31 - 1


class EnvParams(NamedTuple):
    """Numbers and signals of an env, all traced: change or vmap any of them, no recompile.

    ``target_audio`` / ``input_audio`` being None or an array is structure (static):
    None samples hidden target knobs per episode / plays the effect's default program,
    which the compiled step then holds as a constant.
    """

    distance_scale: Array  # () reward = -distance / distance_scale - penalties
    success_threshold: Array  # () success when distance <= this, in the task's unit
    param_tolerance: Array  # () knob-space success (unit travel) where the target's knobs
    #                          are known; nan: none
    max_delta: Array  # () largest knob move per step with control="delta"/"log_delta"
    min_delta: Array  # () scale of the finest moves with control="log_delta" (unit travel)
    slew_penalty: Array  # () weight of sum((u_t - u_{t-1})^2)
    success_bonus: Array  # () added to the reward of a successful step
    clip_penalty: Array  # () weight of output peaks above full scale
    grad_penalty: Array  # () weight of the sensitivity penalty (tasks that charge one)
    grad_norm_limit: Array  # () gradient norm the sensitivity penalty tolerates
    max_steps_in_episode: Array  # () int32: gymnax's truncation horizon
    # (n,) a fixed target sound, or (k, n) a bank: each episode draws one row
    target_audio: Array | None = None
    input_audio: Array | None = None  # (n,) the signal an effect plant processes


def make_params(
    settings: RewardSettings,
    *,
    max_delta: float = 0.1,
    min_delta: float = 0.001,
    slew_penalty: float = 0.0,
    success_bonus: float = 0.0,
    clip_penalty: float = 1.0,
    max_steps_in_episode: int | None = None,
    target_audio: Array | np.ndarray | None = None,
    input_audio: Array | np.ndarray | None = None,
) -> EnvParams:
    """:class:`EnvParams` from a task's reward settings and the env's own numbers."""
    if not 0.0 < max_delta <= 1.0:
        raise ValueError(f"max_delta must be in (0, 1], not {max_delta}")
    if not min_delta > 0.0:
        raise ValueError(f"min_delta must be > 0, not {min_delta}")
    if settings.distance_scale <= 0:
        raise ValueError(f"distance_scale must be > 0, not {settings.distance_scale}")
    tolerance = math.nan if settings.param_tolerance is None else settings.param_tolerance

    def number(value: float) -> Array:
        return jnp.asarray(value, jnp.float32)

    return EnvParams(
        distance_scale=number(settings.distance_scale),
        success_threshold=number(settings.success_threshold),
        param_tolerance=number(tolerance),
        max_delta=number(max_delta),
        min_delta=number(min_delta),
        slew_penalty=number(slew_penalty),
        success_bonus=number(success_bonus),
        clip_penalty=number(clip_penalty),
        grad_penalty=number(settings.grad_penalty),
        grad_norm_limit=number(settings.grad_norm_limit),
        max_steps_in_episode=jnp.asarray(max_steps_in_episode or UNLIMITED_STEPS, jnp.int32),
        target_audio=None if target_audio is None else jnp.asarray(target_audio, jnp.float32),
        input_audio=None if input_audio is None else jnp.asarray(input_audio, jnp.float32),
    )


def log_delta_move(action: Array, min_delta: Array | float, max_delta: Array | float) -> Array:
    """Knob move (unit travel) of ``control="log_delta"`` for an action in [-1, 1].

    ``move = sign(a) * min_delta * ((1 + max_delta / min_delta) ** |a| - 1)``: ``|a| = 1``
    moves ``max_delta``; near 0 the move is about ``min_delta * ln(1 + max_delta /
    min_delta) * a``; in between, equal steps of ``|a|`` multiply the move by equal
    ratios. Why: with ``delta`` a policy's error in ``a`` costs the same knob error
    whatever move it meant, so a 5-cent correction asks it for 100 times the precision
    an octave's jump does; here ``d move / d|a| = ln(1 + R) * (|move| + min_delta)``, so
    its error costs a share of the move meant (plus a floor of order ``min_delta``).
    Odd, strictly increasing and smooth, with the same slope at 0 from both sides
    (written without ``sign``, whose derivative would be 0 there).
    """
    rate = jnp.log1p(max_delta / min_delta)
    up = jnp.expm1(action * rate)
    down = -jnp.expm1(-action * rate)
    return min_delta * jnp.where(action >= 0.0, up, down)


def log_delta_action(move: Array, min_delta: Array | float, max_delta: Array | float) -> Array:
    """The action whose :func:`log_delta_move` is ``move`` (its inverse, for ``|move| <=
    max_delta``)."""
    rate = jnp.log1p(max_delta / min_delta)
    return jnp.sign(move) * jnp.log1p(jnp.abs(move) / min_delta) / rate


def signed_log(x: Array, floor: float) -> Array:
    """``sign(x) * log1p(|x| / floor)``, scaled so that ``|x| = SUMMARY_BOUND`` stays
    ``SUMMARY_BOUND``: odd, linear below ``floor`` and growing by a constant per doubling
    above it (``floor`` itself maps to 0.4 with the default floor)."""
    size = jnp.minimum(jnp.abs(x), SUMMARY_BOUND)
    scale = SUMMARY_BOUND / math.log1p(SUMMARY_BOUND / floor)
    return jnp.sign(x) * jnp.log1p(size / floor) * scale


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
    """Static configuration of one env; every method is a pure function of its arguments.

    Args:
        plant: the synth/effect being played.
        task: features, distance and success criterion.
        control: "absolute" (action sets the knobs: u = (a + 1) / 2), "delta" (action
            nudges them: u = clip(u + max_delta * a, 0, 1)) or "log_delta" (nudges them
            on a log scale of move sizes, from about min_delta to max_delta:
            :func:`log_delta_move`).
        observation: "summaries" (knob positions, summary features of the sound, of
            the target), "difference" (knob positions, sound's summary minus the
            target's, the target's: the same information, with the mismatch a policy
            must null given directly) or "log_difference" (that difference compressed
            by :func:`signed_log`, so a 5-cent mismatch is as visible to a policy as
            an octave's).
        reward_shape: "linear" (reward = -distance / distance_scale) or "log" (reward =
            -log1p(distance / success_threshold): the reward still rises steeply in the
            last steps to the goal, where a linear one is almost flat).
        random_start: start each episode at random knobs (else all at 0.5).
        sensitivity_penalty: compute the task's sensitivity penalty (its weight is
            ``params.grad_penalty``); a static switch, as it adds a gradient to the step.
        defaults: the params :attr:`default_params` returns. Not part of the env's
            identity: envs that differ only in params are equal and share compilations,
            so no jitted code may read this field (it reads ``params``).
    """

    plant: AbstractPlant
    task: AbstractTask
    control: Control = "absolute"
    observation: Observation = "summaries"
    reward_shape: RewardShape = "linear"
    random_start: bool = True
    sensitivity_penalty: bool = False
    defaults: EnvParams | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.control not in CONTROLS:
            raise ValueError(f"control must be one of {CONTROLS}, not {self.control!r}")
        if self.observation not in OBSERVATIONS:
            raise ValueError(f"observation must be one of {OBSERVATIONS}, not {self.observation!r}")
        if self.reward_shape not in REWARD_SHAPES:
            raise ValueError(
                f"reward_shape must be one of {REWARD_SHAPES}, not {self.reward_shape!r}"
            )

    # ---- gymnax's attributes -----------------------------------------------------

    @property
    def default_params(self) -> EnvParams:
        if self.defaults is not None:
            return self.defaults
        return make_params(self.task.settings)

    @property
    def name(self) -> str:
        return f"{type(self.task).__name__}/{type(self.plant).__name__}"

    @property
    def num_actions(self) -> int:
        return self.plant.num_knobs

    def action_space(self, params: EnvParams | None = None) -> Box:
        """One entry per knob in [-1, 1]."""
        return Box(-1.0, 1.0, (self.num_knobs,), jnp.float32)

    def observation_space(self, params: EnvParams | None = None) -> Box:
        """Knob positions, then summary features of the sound (or its difference from the
        target's) and of the target."""
        return Box(-SUMMARY_BOUND, SUMMARY_BOUND, (self.obs_size,), jnp.float32)

    @property
    def num_knobs(self) -> int:
        return self.plant.num_knobs

    @property
    def obs_size(self) -> int:
        return self.num_knobs + 2 * SUMMARY_SIZE

    # ---- pure pieces -------------------------------------------------------------

    def knobs_after(self, knobs: Array, action: Array, params: EnvParams) -> Array:
        """Unit knob positions after ``action`` (already in [-1, 1]) from ``knobs``."""
        if self.control == "absolute":
            return (action + 1.0) / 2.0
        if self.control == "delta":
            move = params.max_delta * action
        else:
            move = log_delta_move(action, params.min_delta, params.max_delta)
        return jnp.clip(knobs + move, 0.0, 1.0)

    def action_for(self, knobs: Array, target_knobs: Array, params: EnvParams) -> Array:
        """The action that moves ``knobs`` towards ``target_knobs`` (inverse of knobs_after)."""
        if self.control == "absolute":
            return 2.0 * target_knobs - 1.0
        if self.control == "delta":
            return jnp.clip((target_knobs - knobs) / params.max_delta, -1.0, 1.0)
        move = jnp.clip(target_knobs - knobs, -params.max_delta, params.max_delta)
        return jnp.clip(log_delta_action(move, params.min_delta, params.max_delta), -1.0, 1.0)

    def evaluate(
        self, state: EnvState, knobs: Array, params: EnvParams
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward of playing ``knobs`` in ``state`` -> (reward, (observation, info))."""
        if self.sensitivity_penalty:
            (distance, audio), sensitivity = jax.value_and_grad(self._distance, has_aux=True)(
                knobs, state, params
            )
            norm = jnp.sqrt(jnp.sum(sensitivity**2) + 1e-12) / params.distance_scale
            # Logarithmic growth: a wild corner is charged, but cannot swamp the reward.
            excess = jnp.maximum(norm / params.grad_norm_limit - 1.0, 0.0)
            sensitivity_term = params.grad_penalty * jnp.log1p(jnp.square(excess))
        else:
            distance, audio = self._distance(knobs, state, params)
            sensitivity_term = 0.0
        return self._outcome(state, knobs, audio, distance, sensitivity_term, params)

    def score(
        self, state: EnvState, knobs: Array, audio: Array, params: EnvParams
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward of ``audio`` heard at ``knobs`` -> (reward, (observation, info)).

        The reward of audio the plant did not render (a device's take); no gradient
        exists there, so no sensitivity term.
        """
        feats = self.task.features(audio, self.plant.sample_rate)
        distance = self.task.distance(feats, state.target_features)
        return self._outcome(state, knobs, audio, distance, 0.0, params)

    def _outcome(
        self,
        state: EnvState,
        knobs: Array,
        audio: Array,
        distance: Array,
        extra_penalty: Array | float,
        params: EnvParams,
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward, observation and info of ``audio`` at ``distance`` from the target."""
        slew = jnp.sum((knobs - state.knobs) ** 2)
        overshoot = jnp.maximum(jnp.max(jnp.abs(audio)) - 1.0, 0.0)
        penalty = params.slew_penalty * slew + params.clip_penalty * overshoot + extra_penalty
        param_error = jnp.where(
            state.target_known, jnp.max(jnp.abs(knobs - state.target_knobs)), jnp.nan
        )
        success = distance <= params.success_threshold
        # The knob-space criterion decides wherever it is set and the target's knobs are known.
        by_knobs = state.target_known & ~jnp.isnan(params.param_tolerance)
        success = jnp.where(by_knobs, param_error <= params.param_tolerance, success)
        bonus = jnp.where(success, params.success_bonus, 0.0)
        if self.reward_shape == "log":
            closeness = -jnp.log1p(jnp.maximum(distance, 0.0) / params.success_threshold)
        else:
            closeness = -distance / params.distance_scale
        reward = closeness - penalty + bonus
        obs = self.observe(knobs, audio, state.target_summary)
        return reward, (obs, StepInfo(distance, success, param_error, penalty))

    def _distance(self, knobs: Array, state: EnvState, params: EnvParams) -> tuple[Array, Array]:
        """(task distance, audio) of playing ``knobs``."""
        audio = self.plant.render(knobs, state.render_key, params.input_audio)
        feats = self.task.features(audio, self.plant.sample_rate)
        return self.task.distance(feats, state.target_features), audio

    def observe(self, knobs: Array, audio: Array, target_summary: Array) -> Array:
        """Observation: knob positions, summary features of ``audio`` (with
        ``observation="difference"``, minus the target's) and of the target."""
        summary = summary_features(audio, self.plant.sample_rate)
        if self.observation == "difference":
            summary = jnp.clip(summary - target_summary, -SUMMARY_BOUND, SUMMARY_BOUND)
        elif self.observation == "log_difference":
            summary = signed_log(summary - target_summary, DIFFERENCE_FLOOR)
        return jnp.concatenate([knobs, summary, target_summary]).astype(jnp.float32)

    # ---- episodes ------------------------------------------------------------------

    def episode_knobs(self, key: Array, params: EnvParams) -> tuple[Array, Array, Array]:
        """Split an episode key -> (hidden target knobs, starting knobs, render key)."""
        k_target, k_start, k_render = jax.random.split(key, 3)
        d = self.num_knobs
        target_knobs = self.task.sample_target_knobs(
            k_target, self.plant, k_render, params.success_threshold
        )
        if self.random_start:
            knobs = jax.random.uniform(k_start, (d,))
        else:
            # float32, not a weak type: a step's knobs are float32, and a weak-typed
            # start would make the first and second steps two compilations.
            knobs = jnp.full((d,), 0.5, jnp.float32)
        return target_knobs, knobs, k_render

    @staticmethod
    def given_target(key: Array, params: EnvParams) -> Array:
        """The episode's given target sound (n,): ``params.target_audio`` itself, or one
        row of a (k, n) bank drawn with the episode ``key`` (same key, same row)."""
        audio = jnp.asarray(params.target_audio, jnp.float32)
        if audio.ndim == 1:
            return audio
        row = jax.random.randint(jax.random.fold_in(key, 0x7A6), (), 0, audio.shape[0])
        return audio[row]

    def start(
        self,
        knobs: Array,
        target_knobs: Array,
        target_known: Array,
        target_audio: Array,
        render_key: Array,
    ) -> EnvState:
        """The state at the start of an episode with this target (rendered or recorded)."""
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

    def reset_env(self, key: Array, params: EnvParams) -> tuple[Array, EnvState]:
        """Start an episode: pick the target and the starting knobs -> (obs, state)."""
        target_knobs, knobs, k_render = self.episode_knobs(key, params)
        if params.target_audio is None:
            target_audio = self.plant.render(target_knobs, k_render, params.input_audio)
            target_known = jnp.array(True)
        else:
            target_audio = self.given_target(key, params)
            target_known = jnp.array(False)
        state = self.start(knobs, target_knobs, target_known, target_audio, k_render)
        audio = self.plant.render(knobs, k_render, params.input_audio)
        return self.observe(knobs, audio, state.target_summary), state

    def reset(self, key: Array, params: EnvParams | None = None) -> tuple[Array, EnvState]:
        """gymnax's reset: ``(obs, state)`` of a new episode drawn with ``key``."""
        return self.reset_env(key, self.default_params if params is None else params)

    def reset_from_chain(self, chain: Array, params: EnvParams) -> tuple[Array, EnvState, Array]:
        """:meth:`reset_env` with the next key of a per-env key chain -> (chain, state, obs).

        Every env of the Gymnasium and vector wrappers owns a chain key, set from its
        seed; each reset splits it into the episode's key and the chain's next link.
        Episode k of an env seeded ``s`` thus gets the same target wherever it runs.
        """
        chain, key = jax.random.split(chain)
        obs, state = self.reset_env(key, params)
        return chain, state, obs

    def transition(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[EnvState, Array, Array, Array, StepInfo]:
        """Play ``action`` -> (state, obs, reward, terminated, info); no truncation, no reset.

        Deterministic: the plant's noise is drawn from ``state.render_key``, fixed per
        episode (common random numbers), so the reward is a function of the knobs and
        its gradient is exact.
        """
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        knobs = self.knobs_after(state.knobs, action, params)
        reward, (obs, info) = self.evaluate(state, knobs, params)
        new_state = state._replace(knobs=knobs, step_count=state.step_count + 1)
        return new_state, obs, reward, info.success, info

    def transition_with_grad(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[EnvState, Array, Array, Array, StepInfo, Array]:
        """:meth:`transition` plus d reward / d action, from one forward and backward pass."""
        reward, grad, (obs, info) = self.reward_and_grad(state, action, params)
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        knobs = self.knobs_after(state.knobs, action, params)
        new_state = state._replace(knobs=knobs, step_count=state.step_count + 1)
        return new_state, obs, reward, info.success, info, grad

    def step_env(
        self, key: Array, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[Array, EnvState, Array, Array, dict[str, Array]]:
        """gymnax's single transition -> (obs, state, reward, done, info), no reset.

        ``done`` is success or the step limit ``params.max_steps_in_episode``;
        ``info`` says which (``terminated``, ``truncated``, and ``discount``: 0 only
        after success) and carries the step's ``distance``, ``success``,
        ``param_error`` and ``penalty``. ``key`` is unused: the step is deterministic.
        """
        del key
        state, obs, reward, terminated, step = self.transition(state, action, params)
        truncated = state.step_count >= params.max_steps_in_episode
        info = {
            **step._asdict(),
            "terminated": terminated,
            "truncated": truncated,
            "discount": jnp.where(terminated, 0.0, 1.0),
        }
        return obs, state, reward, terminated | truncated, info

    def step(
        self, key: Array, state: EnvState, action: Array, params: EnvParams | None = None
    ) -> tuple[Array, EnvState, Array, Array, dict[str, Array]]:
        """gymnax's step: :meth:`step_env`, then a new episode (drawn with ``key``) if done.

        Where an episode ended, ``obs`` and ``state`` are the new episode's first;
        ``reward``, ``done`` and ``info`` are the finished step's.
        """
        params = self.default_params if params is None else params
        key_step, key_reset = jax.random.split(key)
        obs, state, reward, done, info = self.step_env(key_step, state, action, params)
        obs, state = jax.lax.cond(
            done, lambda: self.reset_env(key_reset, params), lambda: (obs, state)
        )
        return obs, state, reward, done, info

    # ---- queries (no step taken) ----------------------------------------------------

    def reward_of_action(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[Array, tuple[Array, StepInfo]]:
        """Reward (and aux) of ``action`` from ``state``; differentiable in ``action``."""
        action = jnp.clip(jnp.asarray(action, jnp.float32), -1.0, 1.0)
        return self.evaluate(state, self.knobs_after(state.knobs, action, params), params)

    def reward_and_grad(
        self, state: EnvState, action: Array, params: EnvParams
    ) -> tuple[Array, Array, tuple[Array, StepInfo]]:
        """(reward, d reward / d action, aux) of ``action`` from ``state``, no step taken."""
        (reward, aux), grad = jax.value_and_grad(self.reward_of_action, argnums=1, has_aux=True)(
            state, action, params
        )
        return reward, grad, aux


def make_functional(env_id: str, **kwargs: Any) -> tuple[FunctionalDDSPEnv, EnvParams]:
    """``(env, default_params)`` of a registered id, gymnax-style, for JAX-native loops.

    A streaming id gives its :class:`~ddsp_gym.streaming.functional.StreamingEnv` and
    ``StreamParams`` (docs/streaming.md), with the same reset / step signatures.

    Takes the keyword arguments ``gym.make`` takes (sim backend only); the params'
    ``max_steps_in_episode`` is the registry's ``max_episode_steps`` unless
    ``max_episode_steps=`` is given.
    """
    import gymnasium as gym

    import ddsp_gym  # noqa: F401  (registers the envs)
    from ddsp_gym.registry import ids_of_kind

    if env_id in ids_of_kind("streaming"):
        # A stream's functional pair: (StreamingEnv, StreamParams), same signatures.
        from ddsp_gym.streaming.gym_env import make_streaming_functional

        return make_streaming_functional(env_id, **kwargs)  # type: ignore[return-value]
    spec = gym.spec(env_id)
    max_steps = kwargs.pop("max_episode_steps", spec.max_episode_steps)
    if kwargs.get("backend", "sim") != "sim":
        raise ValueError("make_functional gives the sim env; a device is not a pure function")
    if kwargs.get("reward") is not None:
        raise ValueError(
            "make_functional scores with the task's distance (pure JAX); another reward "
            "source scores on the host: use gym.make(id, reward=...)"
        )
    env = gym.make(env_id, disable_env_checker=True, **kwargs).unwrapped
    fenv, params = env.functional, env.params
    params = params._replace(max_steps_in_episode=jnp.asarray(max_steps, jnp.int32))
    return dataclasses.replace(fenv, defaults=params), params
