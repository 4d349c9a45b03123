"""What a streaming env rewards: a task keeps its own state (archive, bands, clock) and
scores each block.

A task is a frozen dataclass of static settings with four pure methods:
``init(key, plant, first_summary)`` -> its state, ``input_block(state, block, params)``
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

from ddsp_gym.features.loudness import loudness_db
from ddsp_gym.streaming.base import AbstractBlockPlant
from ddsp_gym.streaming.rewards import soft_nearest_distance, timbre_vector

TaskState = Any


class BlockContext(NamedTuple):
    """What a task sees of one block: its audio, summary, index and input."""

    audio: Array  # (block_size,)
    summary: Array  # (SUMMARY_SIZE,)
    block: Array  # () int32, the block's index since reset
    audio_in: Array | None  # (block_size,) an effect's input, None for instruments


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

    def input_block(self, state: TaskState, block: Array, params: Any) -> Array | None:
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
