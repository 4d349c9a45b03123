"""Generated inputs of the offline streaming envs: a performance to process and a beat
clock to play along with. Pure functions of a table drawn at reset and a block index, so
a stream of any length needs no stored audio."""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.oscillators import saw_polyblep, sine
from ddsp_gym.dsp.units import midi_to_hz

N_NOTES = 64  # notes in a performance's table; the performance loops over them
FADE_S = 0.005  # attack and release at a note's edges: no click where notes meet


class Performance(NamedTuple):
    """A generated performance: one note per slot, looping over the table."""

    pitch_midi: Array  # (N_NOTES,)
    velocity: Array  # (N_NOTES,) 0 is a rest
    brightness: Array  # (N_NOTES,) saw share against a sine, 0..1
    decay_s: Array  # (N_NOTES,) note decay time constant
    slot_s: Array  # () note spacing (the performer's tempo)


def draw_performance(key: Array) -> Performance:
    """A random performance: 0.18-0.35 s per note, a quarter of the slots rests, each
    note its own pitch (MIDI 40-76), brightness and decay, so the brightness and the
    density of the input wander and the effect knobs have something to correct."""
    keys = jax.random.split(key, 6)
    rest = jax.random.uniform(keys[1], (N_NOTES,)) < 0.25
    return Performance(
        pitch_midi=jax.random.randint(keys[0], (N_NOTES,), 40, 77).astype(jnp.float32),
        velocity=jnp.where(rest, 0.0, jax.random.uniform(keys[2], (N_NOTES,), minval=0.3)),
        brightness=jax.random.uniform(keys[3], (N_NOTES,)),
        decay_s=jnp.exp(jax.random.uniform(keys[4], (N_NOTES,), minval=-3.5, maxval=-0.5)),
        slot_s=jax.random.uniform(keys[5], (), minval=0.18, maxval=0.35),
    )


def performance_block(perf: Performance, block: Array, n: int, sample_rate: int) -> Array:
    """Samples [block * n, (block + 1) * n) of the performance, (n,).

    Each note starts at phase 0 at its slot's start, rises and falls over FADE_S at its
    edges and decays exponentially between, so blocks join without clicks.
    """
    t = (block * n + jnp.arange(n)).astype(jnp.float32) / sample_rate
    slot = jnp.floor(t / perf.slot_s)
    since = t - slot * perf.slot_s
    note = slot.astype(jnp.int32) % N_NOTES
    freq = midi_to_hz(perf.pitch_midi[note])
    phase = since * freq
    phase = phase - jnp.floor(phase)
    inc = freq / sample_rate
    tone = perf.brightness[note] * saw_polyblep(phase, inc) + (1.0 - perf.brightness[note]) * sine(
        phase
    )
    edges = jnp.minimum(since, perf.slot_s - since) / FADE_S
    envelope = jnp.clip(edges, 0.0, 1.0) * jnp.exp(-since / perf.decay_s[note])
    return 0.5 * perf.velocity[note] * envelope * tone


def looped_block(audio: Array, block: Array, n: int) -> Array:
    """Samples [block * n, (block + 1) * n) of a recorded performance played in a loop."""
    index = (block * n + jnp.arange(n)) % audio.shape[0]
    return audio[index]


class Clock(NamedTuple):
    """An incoming MIDI-clock-like beat: 24 ticks per beat at a tempo, each tick jittered.

    Tick k's grid time is ``offset_s + k * interval``: 0 offline (the generated clock
    starts with the stream); live mode sets it from a real MIDI clock's beat phase.
    """

    tempo_bpm: Array  # ()
    jitter_key: Array  # tick k arrives jitter_s * normal(fold_in(key, k)) off the grid
    jitter_s: Array  # ()
    offset_s: Array  # () grid time of tick 0 (a beat), seconds of stream time


TICKS_PER_BEAT = 24


def tick_interval(clock: Clock) -> Array:
    return 60.0 / (clock.tempo_bpm * TICKS_PER_BEAT)


def tick_times(clock: Clock, ticks: Array) -> Array:
    """Arrival times (s) of ticks ``ticks`` (int array): the grid plus each tick's jitter."""
    jitter = jax.vmap(lambda k: jax.random.normal(jax.random.fold_in(clock.jitter_key, k)))(ticks)
    grid = ticks.astype(jnp.float32) * tick_interval(clock) + clock.offset_s
    return grid + clock.jitter_s * jitter


def ticks_in(clock: Clock, t0: Array, t1: Array, max_ticks: int) -> tuple[Array, Array]:
    """The ticks whose grid time lies in [t0, t1): (indices (max_ticks,), valid mask)."""
    first = jnp.ceil((t0 - clock.offset_s) / tick_interval(clock)).astype(jnp.int32)
    ticks = first + jnp.arange(max_ticks, dtype=jnp.int32)
    valid = ticks.astype(jnp.float32) * tick_interval(clock) + clock.offset_s < t1
    return ticks, valid
