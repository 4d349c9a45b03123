"""The block plant interface: a synth or effect rendered as a continuous stream of blocks.

A one-shot plant (:class:`ddsp_gym.plants.base.AbstractPlant`) renders a whole note from
silence on every call. A block plant renders the next ``block_size`` samples of a sound
that never stops: its *state* (oscillator phases, filter memory, delay lines) is an
explicit pytree that one block hands to the next, and its knobs move by a per-sample
linear ramp from their previous to their new position across the block, so a knob move
is neither a zipper step nor a click at the block edge.

Everything is pure JAX and unbatched: ``render_block`` is what the offline env steps (and
differentiates), and what a live render thread will call on each block it pulls from its
queue (docs/streaming.md).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.knobs import Knobbed

PlantState = Any  # a pytree of arrays, the plant's own


def knob_ramp(knobs_prev: Array, knobs_next: Array, n: int) -> Array:
    """Per-sample unit knob positions (n, d) moving linearly from ``knobs_prev`` to ``knobs_next``.

    Sample i of the block sits at prev + (next - prev) (i + 1) / n: the block's last sample
    reaches ``knobs_next``, where the next block's ramp starts, so the trajectory of a
    stream is continuous and piecewise linear (in unit travel: a log knob glides in
    log frequency, as a synth's smoothed parameter does).
    """
    frac = (jnp.arange(1, n + 1, dtype=jnp.float32) / n)[:, None]
    return knobs_prev[None, :] + (knobs_next - knobs_prev)[None, :] * frac


@dataclass(frozen=True)
class AbstractBlockPlant(Knobbed):
    """A streaming synth or effect: named knobs, a state and ``render_samples``.

    Static configuration (sample rate, block size) lives in the frozen fields, so a
    plant is hashable and jit compiles one render per configuration.
    """

    sample_rate: int = 16_000
    block_size: int = 1024

    @abc.abstractmethod
    def init_state(self) -> PlantState:
        """The state of a plant that has not played yet (silence, zero phases)."""

    @abc.abstractmethod
    def render_samples(
        self, state: PlantState, knobs: Array, key: Array, audio_in: Array | None
    ) -> tuple[Array, PlantState]:
        """Render len(knobs) samples from ``state`` with per-sample unit knobs (n, d).

        Any n: a stream of blocks and one long call over the concatenated knob trajectory
        give the same audio (tests/test_streaming.py). ``audio_in`` (n,) is an effect's
        input; ``key`` seeds any noise. Returns (audio (n,), state after the last sample).
        """

    @property
    def needs_input(self) -> bool:
        """True for effects, which process an input stream."""
        return False

    def control_risk(self, knobs: Array) -> Array:
        """How close unit knobs (d,) bring the plant to instability, >= 0 (0: safe).

        A reward charges it; plants with a resonance or feedback override it."""
        return jnp.zeros(())

    @property
    def block_seconds(self) -> float:
        return self.block_size / self.sample_rate

    def physical(self, knobs: Array) -> dict[str, Array]:
        """Unit knobs (..., d) -> {name: physical values (...)}: per sample or per step."""
        return {
            spec.name: spec.to_physical(knobs[..., i]) for i, spec in enumerate(self.knob_specs)
        }

    def render_block(
        self,
        state: PlantState,
        knobs_prev: Array,
        knobs_next: Array,
        key: Array,
        audio_in: Array | None = None,
    ) -> tuple[Array, PlantState]:
        """The next block: knobs ramp from ``knobs_prev`` to ``knobs_next`` (unit, (d,)).

        Returns (audio (block_size,), new state). Non-finite samples become 0 / +-1 (the
        last guard; the plants keep their own states bounded).
        """
        ramp = knob_ramp(knobs_prev, jnp.clip(knobs_next, 0.0, 1.0), self.block_size)
        audio, new_state = self.render_samples(state, ramp, key, audio_in)
        return jnp.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0), new_state


def render_stream(
    plant: AbstractBlockPlant,
    state: PlantState,
    knob_points: Array,
    key: Array,
    audio_in: Array | None = None,
) -> tuple[Array, PlantState]:
    """Render len(knob_points) - 1 blocks in a row, block b ramping from point b to b + 1.

    ``knob_points`` (B + 1, d); ``audio_in`` (B * block_size,) for effects. The stream
    as the env plays it, as one ``lax.scan``: the reference the live render thread and
    the continuity test compare with.
    """
    n = plant.block_size
    blocks_in = None if audio_in is None else audio_in.reshape(-1, n)

    def one(carry, inputs):
        st, prev = carry
        nxt, block_in, k = inputs
        audio, st = plant.render_block(st, prev, nxt, k, block_in)
        return (st, nxt), audio

    keys = jax.random.split(key, knob_points.shape[0] - 1)
    (state, _), audio = jax.lax.scan(
        one, (state, knob_points[0]), (knob_points[1:], blocks_in, keys)
    )
    return audio.reshape(-1), state
