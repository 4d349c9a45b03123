"""The streaming env's functional core: gymnax-style ``reset`` / ``step`` over a StreamState.

A sibling of :class:`ddsp_gym.envs.functional.FunctionalDDSPEnv`, not an extension of
it: that core renders every step from silence and scores the sound against a target
(``EnvState`` holds target knobs and target features, ``EnvParams`` a distance scale and
a success threshold). A stream has no target and no success; its state is the plant's
state (phases, filter memory, delay lines), the knobs, the summaries of the last blocks
and the task's memory (a novelty archive, target bands, a clock). Sharing one class
would put a ``None`` or a dummy in half of each other's fields. What they do share is
reused: :class:`ddsp_gym.knobs.KnobSpec`, :func:`ddsp_gym.features.summary.summary_features`
(the observation's per-block features), the registry and the Gymnasium conventions
(``Box(-1, 1)`` actions, float32 observations, one jitted call per step).

    env, params = make_streaming_functional("ddsp_gym/Drone-v0")
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.envs.spaces import Box
from ddsp_gym.features.loudness import loudness_db
from ddsp_gym.features.summary import SUMMARY_BOUND, SUMMARY_SIZE, summary_features
from ddsp_gym.streaming.base import AbstractBlockPlant, PlantState
from ddsp_gym.streaming.rewards import clipping, slew
from ddsp_gym.streaming.tasks import AbstractStreamTask, BlockContext, TaskState

STREAM_CONTROLS: tuple[str, ...] = ("delta", "absolute")
UNLIMITED_STEPS = 2**31 - 1


class StreamParams(NamedTuple):
    """Every number of a streaming env, traced: vary or vmap any of them without recompiling.

    ``input_audio`` None or an array is structure: None plays the task's generated input.
    """

    max_delta: Array  # () largest knob move per step (control="delta"), unit travel
    slew_penalty: Array  # () weight of sum((u_next - u_prev)^2), the abrupt-move charge
    clip_penalty: Array  # () weight of samples above 0 dBFS
    risk_penalty: Array  # () weight of the plant's control risk (filter near self-oscillation)
    novelty_weight: Array  # () weight of the archive novelty
    loudness_penalty: Array  # () weight of ((loudness - target) / 6 dB)^2
    target_loudness_db: Array  # () the level the drone should hold, dBFS (RMS)
    band_penalty: Array  # () weight of leaving the brightness / density bands
    beat_weight: Array  # () weight of onset alignment with the incoming beat
    latency_s: Array  # () output latency the beat alignment compensates, seconds
    max_steps_in_episode: Array  # () int32 truncation horizon of the functional step
    input_audio: Array | None  # (L,) a recorded performance, looped; None: generated


def make_stream_params(**overrides: Any) -> StreamParams:
    """Default params, with ``overrides`` (numbers or an input array) replacing fields."""
    defaults = dict(
        max_delta=0.1,
        slew_penalty=2.0,
        clip_penalty=1.0,
        risk_penalty=0.5,
        novelty_weight=10.0,
        loudness_penalty=0.1,
        target_loudness_db=-24.0,
        band_penalty=0.2,
        beat_weight=1.0,
        latency_s=0.02,
        max_steps_in_episode=UNLIMITED_STEPS,
        input_audio=None,
    )
    unknown = sorted(set(overrides) - set(defaults))
    if unknown:
        raise TypeError(f"unknown stream params {unknown}; they are {sorted(defaults)}")
    merged = {**defaults, **overrides}
    fields = {}
    for name, value in merged.items():
        if name == "input_audio":
            fields[name] = None if value is None else jnp.asarray(value, jnp.float32)
        elif name == "max_steps_in_episode":
            fields[name] = jnp.asarray(value, jnp.int32)
        else:
            if not np.isfinite(value):
                raise ValueError(f"stream param {name} must be finite, got {value}")
            fields[name] = jnp.asarray(value, jnp.float32)
    if float(fields["max_delta"]) <= 0.0 or float(fields["max_delta"]) > 1.0:
        raise ValueError(f"max_delta must lie in (0, 1], got {float(fields['max_delta'])}")
    return StreamParams(**fields)


class StreamState(NamedTuple):
    """Everything that changes in a streaming episode."""

    plant: PlantState  # the plant's carried state
    knobs: Array  # (d,) unit knob positions at the end of the last block
    history: Array  # (H, SUMMARY_SIZE) summaries of the last H blocks, newest first
    audio: Array  # (block_size,) the last block (what a live thread would have played)
    task: TaskState  # the task's memory
    block: Array  # () int32 index of the next block since the stream started
    step_count: Array  # () int32 steps in this episode
    key: Array  # the episode's key: block b's noise is fold_in(key, b)


@dataclass(frozen=True)
class StreamingEnv:
    """Pure reset / step of a block plant played by an agent, scored by a stream task.

    Args:
        plant: the block plant (``ddsp_gym/streaming/``).
        task: the reward and context (:mod:`ddsp_gym.streaming.tasks`).
        control: "delta" (the action nudges each knob by up to ``max_delta`` of its
            travel per block: a knob turned by hand) or "absolute" (it sets them; the
            block still ramps there from the previous position).
        history: summaries of the last H blocks in the observation.
        random_start: start knobs uniformly at random (else at mid travel).
        warmup_blocks: blocks played at the start knobs at reset, so the first step
            already hears a running plant and a filled history.
    """

    plant: AbstractBlockPlant
    task: AbstractStreamTask
    control: str = "delta"
    history: int = 2
    random_start: bool = True
    warmup_blocks: int = 2

    def __post_init__(self) -> None:
        if self.control not in STREAM_CONTROLS:
            raise ValueError(f"control must be one of {STREAM_CONTROLS}, got {self.control!r}")
        if self.history < 1 or self.warmup_blocks < self.history:
            raise ValueError("need history >= 1 and warmup_blocks >= history")

    @property
    def num_knobs(self) -> int:
        return self.plant.num_knobs

    @property
    def num_actions(self) -> int:
        return self.plant.num_knobs

    @property
    def obs_size(self) -> int:
        return self.num_knobs + self.history * SUMMARY_SIZE + self.task.num_extras

    def action_space(self, params: StreamParams | None = None) -> Box:
        return Box(-1.0, 1.0, (self.num_actions,), jnp.float32)

    def observation_space(self, params: StreamParams | None = None) -> Box:
        return Box(-SUMMARY_BOUND, SUMMARY_BOUND, (self.obs_size,), jnp.float32)

    # -- the transitions -------------------------------------------------------------

    def knobs_after(self, knobs: Array, action: Array, params: StreamParams) -> Array:
        """Unit knobs after an action (clipped to [-1, 1] first)."""
        a = jnp.clip(action, -1.0, 1.0)
        if self.control == "absolute":
            return (a + 1.0) / 2.0
        return jnp.clip(knobs + params.max_delta * a, 0.0, 1.0)

    def _input(self, task_state: TaskState, block: Array, params: StreamParams) -> Array | None:
        if not self.plant.needs_input:
            return None
        return self.task.input_block(task_state, block, params, self.plant)

    def reset_env(self, key: Array, params: StreamParams) -> tuple[Array, StreamState]:
        """A fresh stream: start knobs, then ``warmup_blocks`` blocks played at them."""
        k_knobs, k_task, k_stream = jax.random.split(key, 3)
        d = self.num_knobs
        if self.random_start:
            knobs = jax.random.uniform(k_knobs, (d,))
        else:
            knobs = jnp.full((d,), 0.5, jnp.float32)  # not weak-typed: see envs.functional
        # The warm-up plays the task's input (a performance drawn from k_task), and the
        # task's archive starts from the warm-up's last block: the task is initialized
        # twice with the same key, first on a placeholder summary (only its input is used),
        # then on the real one.
        task_state = self.task.init(k_task, self.plant, jnp.zeros(SUMMARY_SIZE))

        def warm(carry, block):
            plant_state = carry
            audio_in = self._input(task_state, block, params)
            audio, plant_state = self.plant.render_block(
                plant_state, knobs, knobs, jax.random.fold_in(k_stream, block), audio_in
            )
            return plant_state, (audio, summary_features(audio, self.plant.sample_rate))

        blocks = jnp.arange(self.warmup_blocks, dtype=jnp.int32)
        plant_state, (audios, summaries) = jax.lax.scan(warm, self.plant.init_state(), blocks)
        newest_first = summaries[::-1][: self.history]
        task_state = self.task.init(k_task, self.plant, summaries[-1])
        state = StreamState(
            plant=plant_state,
            knobs=knobs,
            history=newest_first,
            audio=audios[-1],
            task=task_state,
            block=jnp.asarray(self.warmup_blocks, jnp.int32),
            step_count=jnp.zeros((), jnp.int32),
            key=k_stream,
        )
        return self._observation(state), state

    def transition(
        self, state: StreamState, action: Array, params: StreamParams
    ) -> tuple[StreamState, Array, dict[str, Array]]:
        """One block: move the knobs (ramped), render, score. Differentiable in ``action``."""
        knobs_next = self.knobs_after(state.knobs, action, params)
        audio_in = self._input(state.task, state.block, params)
        audio, plant_state = self.plant.render_block(
            state.plant,
            state.knobs,
            knobs_next,
            jax.random.fold_in(state.key, state.block),
            audio_in,
        )
        return self.score_played(state, knobs_next, audio, audio_in, plant_state, params)

    def score_played(
        self,
        state: StreamState,
        knobs_next: Array,
        audio: Array,
        audio_in: Array | None,
        plant_state: PlantState,
        params: StreamParams,
    ) -> tuple[StreamState, Array, dict[str, Array]]:
        """Score a block that was played with the knobs ramping to ``knobs_next``.

        The second half of :meth:`transition`, apart so that live mode scores what was
        really heard with the same function: the block rendered here, or a block
        captured back from a real synth (then ``plant_state`` is the old one, unused).
        """
        summary = summary_features(audio, self.plant.sample_rate)
        ctx = BlockContext(audio, summary, state.block, audio_in, self.plant.sample_rate)
        terms, task_state = self.task.score(state.task, ctx, params)
        terms = {
            **terms,
            "clipping": -params.clip_penalty * clipping(audio),
            "control_risk": -params.risk_penalty * self.plant.control_risk(knobs_next),
            "slew": -params.slew_penalty * slew(state.knobs, knobs_next),
        }
        reward = sum(terms.values())
        history = jnp.concatenate([summary[None, :], state.history[:-1]], axis=0)
        new_state = StreamState(
            plant=plant_state,
            knobs=knobs_next,
            history=history,
            audio=audio,
            task=task_state,
            block=state.block + 1,
            step_count=state.step_count + 1,
            key=state.key,
        )
        info = {
            **terms,
            "peak": jnp.max(jnp.abs(audio)),
            "loudness_db": loudness_db(audio),
        }
        return new_state, reward, info

    def reward_of(self, state: StreamState, action: Array, params: StreamParams) -> Array:
        """The reward of playing ``action`` from ``state``: what the per-block gradient
        differentiates (jax.grad of this w.r.t. ``action``)."""
        return self.transition(state, action, params)[1]

    def step_env(
        self, key: Array, state: StreamState, action: Array, params: StreamParams
    ) -> tuple[Array, StreamState, Array, Array, dict[str, Array]]:
        """The bare transition; a stream never terminates, it is truncated at the horizon."""
        del key  # a block's randomness comes from the episode key and the block index
        new_state, reward, info = self.transition(state, action, params)
        truncated = new_state.step_count >= params.max_steps_in_episode
        info = {**info, "terminated": jnp.zeros((), bool), "truncated": truncated}
        return self._observation(new_state), new_state, reward, truncated, info

    def reset(self, key: Array, params: StreamParams) -> tuple[Array, StreamState]:
        return self.reset_env(key, params)

    def step(
        self, key: Array, state: StreamState, action: Array, params: StreamParams
    ) -> tuple[Array, StreamState, Array, Array, dict[str, Array]]:
        """``step_env`` that starts a new stream where one was truncated (gymnax's auto-reset)."""
        key_step, key_reset = jax.random.split(key)
        obs, new_state, reward, done, info = self.step_env(key_step, state, action, params)
        obs_reset, state_reset = self.reset_env(key_reset, params)
        pick = lambda a, b: jax.lax.select(done, a, b)  # noqa: E731
        return (
            pick(obs_reset, obs),
            jax.tree.map(pick, state_reset, new_state),
            reward,
            done,
            info,
        )

    def _observation(self, state: StreamState) -> Array:
        obs = jnp.concatenate(
            [state.knobs, state.history.reshape(-1), self.task.extras(state.task, state.block)]
        )
        return jnp.clip(obs, -SUMMARY_BOUND, SUMMARY_BOUND).astype(jnp.float32)
