"""The coarse stage of ``match``'s coarse-to-fine schedule: a global search on a coarse loss.

The fine losses (log-mel, MR-STFT) are rough far from the answer: every partial that
misses its target bin costs the same however far it misses, so a gradient started in
the wrong basin stays there (the design notes' "adaptive" and "hierarchical" AbS). The
coarse loss compares what survives heavy smoothing, a 16-band mel spectrogram in 64 ms
frames: the spectral envelope (centroid, tilt) and the loudness envelope (attack,
decay), not the partials. CMA-ES (Hansen's ``cma``, as :mod:`ddsp_gym.agents.cma_es`
uses it) searches it from the analysis start and from random starts; the gradient
stage then refines the best point on the fine loss.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cma
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.agents.cma_es import fold_into_unit
from ddsp_gym.features.spectral import log_mel_spectrogram
from ddsp_gym.plants.base import AbstractPlant

COARSE_N_FFT = 1024  # 64 ms at 16 kHz: partials blur into the envelope
COARSE_HOP = 512
COARSE_BANDS = 16
COARSE_RANGE_DB = 60.0  # both spectrograms floored this far below the target's loudest
POPSIZE = 8  # small: a handful of generations fit in a few dozen renders
SIGMA0 = 0.25  # unit travel: wide enough to leave the start's basin
MIN_GENERATIONS = 3  # per start; fewer generations cannot adapt CMA's step size
MAX_STARTS = 3


def coarse_features(audio: Array, sample_rate: int) -> Array:
    """The coarse log-mel spectrogram in dB, (frames, COARSE_BANDS)."""
    return log_mel_spectrogram(audio, sample_rate, COARSE_N_FFT, COARSE_HOP, COARSE_BANDS)


def coarse_distance(audio: Array, target: Array, sample_rate: int) -> Array:
    """Mean |dB| difference of the coarse spectrograms, floored COARSE_RANGE_DB below the
    target's loudest cell (so a silent tail's -100 dB does not outweigh the note)."""
    target_features = coarse_features(target, sample_rate)
    floor = jnp.max(target_features) - COARSE_RANGE_DB
    ours = jnp.maximum(coarse_features(audio, sample_rate), floor)
    return jnp.mean(jnp.abs(ours - jnp.maximum(target_features, floor)))


@dataclass(frozen=True)
class CoarseResult:
    """The coarse stage's best action, its loss and the start's, and what it spent."""

    action: np.ndarray  # (d,) in [-1, 1]
    loss: float
    start_loss: float
    evaluations: int
    starts: int

    def to_json(self) -> dict[str, Any]:
        return {"coarse_loss_start": self.start_loss, "coarse_loss": self.loss,
                "coarse_evaluations": self.evaluations, "coarse_starts": self.starts}  # fmt: skip


@functools.lru_cache(maxsize=16)
def _batch_loss(plant: AbstractPlant) -> Any:
    """jit(actions (P, d), target (n,), key, input) -> coarse losses (P,) for ``plant``."""

    def one(action: Array, target: Array, key: Array, audio_in: Any) -> Array:
        audio = plant.render((action + 1.0) / 2.0, key, audio_in)
        return coarse_distance(audio, target, plant.sample_rate)

    return jax.jit(jax.vmap(one, in_axes=(0, None, None, None)))


def coarse_losses(
    plant: AbstractPlant, actions: np.ndarray, target: np.ndarray, key: Array
) -> np.ndarray:
    """Coarse losses (P,) of ``plant`` at ``actions`` ((P, d) in [-1, 1]) on ``target``."""
    batch = _batch_loss(plant)(jnp.asarray(actions, jnp.float32),
                               jnp.asarray(target, jnp.float32), key, None)  # fmt: skip
    return np.asarray(batch, np.float64)


def n_starts(budget: int) -> int:
    """How many CMA-ES runs ``budget`` renders pay for (0: too few for one)."""
    return min(MAX_STARTS, budget // (MIN_GENERATIONS * POPSIZE))


def coarse_search(
    plant: AbstractPlant,
    target: np.ndarray,
    start: np.ndarray,
    known: dict[int, float],
    budget: int,
    seed: int,
    key: Array,
    search: list[int] | None = None,
    input_audio: Any = None,
) -> CoarseResult:
    """CMA-ES over the free knobs on :func:`coarse_distance`, within ``budget`` renders.

    The first run starts at ``start`` (the analysis' placement), the others at uniform
    random points; only the knobs ``search`` lists (default: all) move, and never the
    held ones (``known``, {index: action}). The
    budget is split evenly across :func:`n_starts` runs; the start itself is evaluated
    in the first generation, so the result is never worse than it.
    """
    starts = n_starts(budget)
    if starts == 0:
        raise ValueError(f"a coarse stage needs at least {MIN_GENERATIONS * POPSIZE} renders")
    loss_of = _batch_loss(plant)
    target_j = jnp.asarray(target, jnp.float32)
    searched = range(start.size) if search is None else search
    free = np.array([i for i in searched if i not in known], dtype=int)
    rng = np.random.default_rng(seed)

    def actions_of(units: list[np.ndarray]) -> np.ndarray:
        actions = np.repeat(start[None, :], len(units), axis=0)
        actions[:, free] = 2.0 * fold_into_unit(np.asarray(units)) - 1.0
        return actions

    best_action, best_loss, start_loss, used = start.copy(), np.inf, np.nan, 0
    per_start = budget // starts
    for run in range(starts):
        x0 = (start[free] + 1.0) / 2.0 if run == 0 else rng.uniform(0.0, 1.0, free.size)
        options = {"seed": int(rng.integers(1, 2**31 - 1)), "popsize": POPSIZE, "verbose": -9}
        es = cma.CMAEvolutionStrategy(list(x0), SIGMA0, options)
        if run == 0:
            es.inject([x0], force=True)  # the start is scored: the result never loses to it
        spent = 0
        while spent + POPSIZE <= per_start:
            units = es.ask()
            actions = actions_of(units)
            batch = jnp.asarray(actions, jnp.float32)
            losses = np.asarray(loss_of(batch, target_j, key, input_audio), np.float64)
            if run == 0 and spent == 0:
                start_loss = float(losses[0])
            es.tell(units, list(losses))
            spent += POPSIZE
            if losses.min() < best_loss:
                best_loss, best_action = float(losses.min()), actions[int(losses.argmin())]
        used += spent
    return CoarseResult(best_action, best_loss, start_loss, used, starts)
