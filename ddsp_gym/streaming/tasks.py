"""What a streaming env rewards: a task keeps its own state (archive, bands, clock) and
scores each block.

A task is a frozen dataclass of static settings with four pure methods:
``init(key, plant, first_summary)`` -> its state, ``input_block(state, block, params, plant)``
-> the input an effect processes (None for instruments), ``score(...)`` -> (reward
terms, new state) and ``extras(state, block)`` -> the task's part of the observation.
The functional env (``functional.py``) adds the shared terms (clipping, control risk,
slew) and sums them with the params' weights.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.features.loudness import frame_mean_square, loudness_db
from ddsp_gym.features.summary import summary_features
from ddsp_gym.streaming.base import AbstractBlockPlant
from ddsp_gym.streaming.performance import (
    TICKS_PER_BEAT,
    Clock,
    Performance,
    draw_performance,
    looped_block,
    performance_block,
    tick_interval,
    tick_times,
    ticks_in,
)
from ddsp_gym.streaming.rewards import (
    CENTROID,
    band_violation,
    soft_nearest_distance,
    temporal_density,
    timbre_vector,
)

TaskState = Any


class BlockContext(NamedTuple):
    """What a task sees of one block: its audio, summary, index and input."""

    audio: Array  # (block_size,)
    summary: Array  # (SUMMARY_SIZE,)
    block: Array  # () int32, the block's index since reset
    audio_in: Array | None  # (block_size,) an effect's input, None for instruments
    sample_rate: int  # static


@dataclass(frozen=True)
class AbstractStreamTask(abc.ABC):
    """A streaming env's reward and context; see the module docstring."""

    @property
    def num_extras(self) -> int:
        """Entries the task appends to the observation."""
        return 0

    @abc.abstractmethod
    def init(self, key: Array, plant: AbstractBlockPlant, first_summary: Array) -> TaskState:
        """The task's state at reset (``first_summary``: the warm-up block's summary)."""

    def input_block(
        self, state: TaskState, block: Array, params: Any, plant: AbstractBlockPlant
    ) -> Array | None:
        """The input of block ``block`` for an effect (None: an instrument)."""
        return None

    @abc.abstractmethod
    def score(
        self, state: TaskState, ctx: BlockContext, params: Any
    ) -> tuple[dict[str, Array], TaskState]:
        """Reward terms of the block (each already weighted, summed by the env) and the
        task's next state."""

    def extras(self, state: TaskState, block: Array) -> Array:
        return jnp.zeros((0,), jnp.float32)


class NoveltyArchive(NamedTuple):
    """A ring of the timbre vectors of past blocks (every ``stride``-th block)."""

    vectors: Array  # (A, F)
    next_slot: Array  # () int32


def archive_init(first_summary: Array, size: int) -> NoveltyArchive:
    """An archive filled with the warm-up block: the first moves away from it are novel."""
    v = timbre_vector(first_summary)
    return NoveltyArchive(jnp.tile(v[None, :], (size, 1)), jnp.zeros((), jnp.int32))


def archive_novelty_and_push(
    archive: NoveltyArchive, summary: Array, block: Array, stride: int
) -> tuple[Array, NoveltyArchive]:
    """Novelty of a block against the archive, and the archive with the block pushed when
    ``block`` is a multiple of ``stride`` (so A entries span A * stride blocks)."""
    v = timbre_vector(summary)
    novelty = soft_nearest_distance(v, archive.vectors)
    push = (block % stride) == 0
    slot = archive.next_slot
    updated = archive.vectors.at[slot].set(v)
    vectors = jnp.where(push, updated, archive.vectors)
    next_slot = jnp.where(push, (slot + 1) % archive.vectors.shape[0], slot)
    # The archive is memory, not a path to earlier actions: no gradient through it.
    return novelty, NoveltyArchive(jax.lax.stop_gradient(vectors), next_slot)


@dataclass(frozen=True)
class DroneNovelty(AbstractStreamTask):
    """Keep a drone sounding new: the k-NN novelty of each block's timbre against a rolling
    archive, minus the loudness's drift from a target level (the shared terms add clipping,
    resonance near self-oscillation and abrupt moves).

    Args:
        archive_size: archive entries (A).
        archive_stride: a block enters the archive every ``archive_stride`` blocks: with
            64 entries, every 4th 64-ms block spans the last ~16 s of the drone.
    """

    archive_size: int = 64
    archive_stride: int = 4

    def init(self, key: Array, plant: AbstractBlockPlant, first_summary: Array) -> NoveltyArchive:
        del key, plant
        return archive_init(first_summary, self.archive_size)

    def score(self, state: NoveltyArchive, ctx: BlockContext, params: Any):
        novelty, state = archive_novelty_and_push(
            state, ctx.summary, ctx.block, self.archive_stride
        )
        drift = ((loudness_db(ctx.audio) - params.target_loudness_db) / 6.0) ** 2
        terms = {
            "novelty": params.novelty_weight * novelty,
            "loudness_drift": -params.loudness_penalty * drift,
        }
        return terms, state


class PerformerState(NamedTuple):
    performance: Performance
    bands: Array  # (4,) brightness low, high; density low, high
    heard: Array  # (2,) the last input block's brightness and density


@dataclass(frozen=True)
class PerformerBands(AbstractStreamTask):
    """Keep the processed performance's brightness and density inside target bands.

    Brightness is the summary's centroid entry (log2(centroid / 1 kHz) / 4), density
    :func:`~ddsp_gym.streaming.rewards.temporal_density` (how evenly energy fills the
    block). Each episode draws its bands; the observation shows them and the input's own
    brightness and density (what the effect has to correct).

    Args:
        brightness_range: the band centre's range (-0.5 ~ centroid 250 Hz, 0 ~ 1 kHz).
        density_range: the density band centre's range.
        half_width: each band's half width (brightness, density).
        tolerance: a violation is measured in these units (brightness, density).
    """

    brightness_range: tuple[float, float] = (-0.5, -0.15)
    density_range: tuple[float, float] = (0.6, 0.85)
    half_width: tuple[float, float] = (0.04, 0.06)
    tolerance: tuple[float, float] = (0.1, 0.1)

    @property
    def num_extras(self) -> int:
        return 6

    def init(self, key: Array, plant: AbstractBlockPlant, first_summary: Array) -> PerformerState:
        k_perf, k_bright, k_dense = jax.random.split(key, 3)
        b = jax.random.uniform(
            k_bright, (), minval=self.brightness_range[0], maxval=self.brightness_range[1]
        )
        d = jax.random.uniform(
            k_dense, (), minval=self.density_range[0], maxval=self.density_range[1]
        )
        hb, hd = self.half_width
        bands = jnp.stack([b - hb, b + hb, d - hd, d + hd])
        return PerformerState(draw_performance(k_perf), bands, jnp.zeros(2))

    def input_block(
        self, state: PerformerState, block: Array, params: Any, plant: AbstractBlockPlant
    ) -> Array:
        n, sr = plant.block_size, plant.sample_rate
        if params.input_audio is not None:
            return looped_block(params.input_audio, block, n)
        return performance_block(state.performance, block, n, sr)

    def score(self, state: PerformerState, ctx: BlockContext, params: Any):
        brightness = ctx.summary[CENTROID]
        density = temporal_density(ctx.audio)
        lo_b, hi_b, lo_d, hi_d = state.bands
        tb, td = self.tolerance
        terms = {
            "brightness_band": -params.band_penalty * band_violation(brightness, lo_b, hi_b, tb),
            "density_band": -params.band_penalty * band_violation(density, lo_d, hi_d, td),
        }
        heard = jax.lax.stop_gradient(
            jnp.stack(
                [
                    summary_features(ctx.audio_in, ctx.sample_rate)[CENTROID],
                    temporal_density(ctx.audio_in),
                ]
            )
        )
        return terms, state._replace(heard=heard)

    def extras(self, state: PerformerState, block: Array) -> Array:
        return jnp.concatenate([state.bands, state.heard])


class JamState(NamedTuple):
    clock: Clock
    interval_estimate: Array  # () seconds per tick, estimated from the ticks received
    last_tick_s: Array  # () arrival time of the last tick received (-1: none yet)
    last_beat_s: Array  # () arrival time of the last beat (tick k % 24 == 0) received
    archive: NoveltyArchive


@dataclass(frozen=True)
class JamPartner(AbstractStreamTask):
    """Play along with an incoming beat: onsets on the beat, and a timbre that keeps moving.

    The beat arrives as a MIDI-clock-like tick stream (24 per beat, each tick jittered);
    the env estimates the tempo from the ticks received (an average of their intervals)
    and the beat phase from the last beat tick, and shows both in the observation. The
    reward is the onset alignment (onset strength of the block's frames weighted by
    +1 near a beat and -1 away from it, normalized by the onsets' total) plus novelty
    against a rolling archive (weight ``novelty_weight * novelty_share``). Alignment is
    latency compensated: a sound leaves the speaker ``latency_s`` after it is rendered,
    so the reward looks for its onsets ``latency_s`` before each beat.

    Args:
        tempo_range: the episode's tempo is drawn from this range, BPM.
        jitter_s: standard deviation of a tick's arrival around the grid.
        beat_width_s: width of the window around a beat that counts as on the beat.
        novelty_share: the novelty's weight relative to the drone's.
    """

    tempo_range: tuple[float, float] = (80.0, 160.0)
    jitter_s: float = 0.001
    beat_width_s: float = 0.03
    novelty_share: float = 0.1
    archive_size: int = 32
    archive_stride: int = 4

    @property
    def num_extras(self) -> int:
        return 3

    def init(self, key: Array, plant: AbstractBlockPlant, first_summary: Array) -> JamState:
        k_tempo, k_jitter = jax.random.split(key)
        tempo = jax.random.uniform(
            k_tempo, (), minval=self.tempo_range[0], maxval=self.tempo_range[1]
        )
        clock = Clock(tempo, k_jitter, jnp.asarray(self.jitter_s, jnp.float32), jnp.zeros(()))
        return JamState(
            clock=clock,
            # Before any tick has arrived, assume 120 BPM.
            interval_estimate=jnp.asarray(60.0 / (120.0 * TICKS_PER_BEAT), jnp.float32),
            last_tick_s=jnp.asarray(-1.0, jnp.float32),
            last_beat_s=jnp.asarray(0.0, jnp.float32),
            archive=archive_init(first_summary, self.archive_size),
        )

    def _receive(self, state: JamState, t0: Array, t1: Array) -> JamState:
        """Take in the ticks of [t0, t1): tempo estimate, last tick and last beat."""
        max_ticks = 8  # 160 BPM is 4.1 ticks per 64-ms block
        ticks, valid = ticks_in(state.clock, t0, t1, max_ticks)
        times = tick_times(state.clock, ticks)
        previous = jnp.concatenate([state.last_tick_s[None], times[:-1]])
        has_previous = jnp.concatenate([(state.last_tick_s >= 0.0)[None], valid[:-1]])
        counted = valid & has_previous
        intervals = jnp.where(counted, times - previous, 0.0)
        count = jnp.sum(counted)
        block_mean = jnp.sum(intervals) / jnp.maximum(count, 1)
        # A running mean over blocks: a tick's jitter averages out, a tempo change follows.
        estimate = jnp.where(
            count > 0, 0.7 * state.interval_estimate + 0.3 * block_mean, state.interval_estimate
        )
        last_tick = jnp.max(jnp.where(valid, times, state.last_tick_s))
        beat_times = jnp.where(valid & (ticks % TICKS_PER_BEAT == 0), times, -1.0)
        last_beat = jnp.maximum(state.last_beat_s, jnp.max(beat_times))
        return state._replace(
            interval_estimate=estimate, last_tick_s=last_tick, last_beat_s=last_beat
        )

    def score(self, state: JamState, ctx: BlockContext, params: Any):
        n, sr = ctx.audio.shape[0], ctx.sample_rate
        t0 = ctx.block.astype(jnp.float32) * n / sr
        t1 = t0 + n / sr
        hop = 64
        level = jnp.sqrt(frame_mean_square(ctx.audio, 2 * hop, hop) + 1e-10)
        rise = jnp.diff(level)
        # Onset strength: the smooth positive part of each frame's rise in level, shifted
        # so that a steady level (rise 0) counts as almost no onset (softplus(-4) ~ 0.02).
        onset = jax.nn.softplus(rise * 200.0 - 4.0) / 200.0
        frame_s = t0 + (jnp.arange(1, level.shape[0]) * hop) / sr
        # The beats near this block, as heard: each beat's own (jittered) tick time.
        beat_period = tick_interval(state.clock) * TICKS_PER_BEAT
        since_beat0 = (t0 - state.clock.offset_s) / beat_period
        nearest = jnp.floor(since_beat0).astype(jnp.int32) + jnp.arange(-1, 3)
        beat_s = tick_times(state.clock, nearest * TICKS_PER_BEAT)
        # A sound rendered at t is heard at t + latency: it is on the beat if t = beat - latency.
        offset = frame_s[:, None] - (beat_s[None, :] - params.latency_s)
        near = jnp.max(jnp.exp(-0.5 * (offset / self.beat_width_s) ** 2), axis=1)
        alignment = jnp.sum(onset * (2.0 * near - 1.0)) / (jnp.sum(onset) + 1e-3)
        novelty, archive = archive_novelty_and_push(
            state.archive, ctx.summary, ctx.block, self.archive_stride
        )
        terms = {
            "beat_alignment": params.beat_weight * alignment,
            "novelty": params.novelty_weight * self.novelty_share * novelty,
        }
        state = self._receive(state._replace(archive=archive), t0, t1)
        return terms, state

    def extras(self, state: JamState, block: Array) -> Array:
        """Estimated tempo / 200 BPM and the sine and cosine of the estimated beat phase at
        the block's start (ticks received so far, nothing of the future)."""
        beat_s = state.interval_estimate * TICKS_PER_BEAT
        del block  # the phase comes from the last tick's time, like a receiver's
        now = state.last_tick_s + state.interval_estimate
        phase = (now - state.last_beat_s) / beat_s
        angle = 2.0 * jnp.pi * phase
        return jnp.stack([60.0 / beat_s / 200.0, jnp.sin(angle), jnp.cos(angle)])
