"""Goal task of ResonanceSweetSpot: deep but stable resonance at a bounded level."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym import features as F
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.tasks.base import AbstractTask, RewardSettings
from ddsp_gym.tasks.goal import reference_setting, smooth_relu


def ringing_decay(x: Array, start: int, lag: int = 160, window: int = 320) -> Array:
    """1 - r for the pole radius r of a two-pole ringing, from the samples ``x[start:]``.

    After its excitation stops, a 2nd-order resonant filter rings as a damped
    sinusoid A r^n cos(w n + phi), whose Teager-Kaiser energy
    y[n]^2 - y[n-1] y[n+1] = A^2 sin^2(w) r^(2n) has no oscillation at all
    (Kaiser, ICASSP 1990). Summed over two windows ``lag`` samples apart, the
    energies' ratio is exactly r^(2 lag), so log r = log(ratio) / (2 lag) for
    any frequency and phase. Returned as 1 - r = -expm1(log r), which keeps
    its precision in float32 when r is within 1e-4 of 1. Decays too fast to
    register (r below about 0.8) read as r = 0.8.
    """
    tail = x[start:]
    tail_power = jnp.mean(tail * tail)
    # Unit RMS first: a fast ringing is ~1e-30 a few ms in, where float32 products underflow.
    tail = tail / jnp.sqrt(tail_power + 1e-20)
    energy = tail[1:-1] ** 2 - tail[:-2] * tail[2:]
    # max(), not + eps: below the floor the gradient is 0 instead of 0 * 1e30.
    early = jnp.maximum(jnp.abs(jnp.sum(energy[:window])), 1e-30)
    late = jnp.maximum(jnp.abs(jnp.sum(energy[lag : lag + window])), 1e-30)
    log_radius = jnp.clip(jnp.log(late) - jnp.log(early), 2.0 * lag * jnp.log(0.8), 0.0)
    log_radius = log_radius / (2.0 * lag)
    # Rounding noise, not ringing, where the tail is 120 dB below the whole sound.
    gone = tail_power <= 1e-12 * jnp.mean(x * x)
    return -jnp.expm1(jnp.where(gone, jnp.log(0.8), log_radius))


@dataclass(frozen=True)
class ResonanceBand(AbstractTask):
    """Hold a struck resonance's pole radius in a band, at a bounded, audible level.

    distance = softplus-relu(q_low - q) + softplus-relu(q - q_high)       [decades]
             + (softplus-relu(L - max_level_db) + softplus-relu(min_level_db - L)) / 20

    where q = -log10(1 - r) and r is the ringing's pole radius read from the
    sound after the strike (:func:`ringing_decay`); the default band
    q in [2.3, 3.0] is r in [0.995, 0.999], "just inside the unit circle": a
    ring of 0.09-0.43 s to -60 dB at 16 kHz. L is the loudest 16 ms frame's
    level in dBFS (a soft maximum over frames), to stay within
    [min_level_db, max_level_db]. A goal task: the target sound is ignored; the
    hidden target knobs are a reference setting that meets the goal (best of
    random candidates with a low cutoff and a high Q).
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1.0, 0.01)
    distance_unit: str = "violation"
    q_low: float = 2.3
    q_high: float = 3.0
    min_level_db: float = -30.0
    max_level_db: float = -6.0
    onset_s: float = 0.01
    is_goal: ClassVar[bool] = True

    def sample_target_knobs(
        self, key: Array, plant: AbstractPlant, render_key: Array, success_threshold: Array
    ) -> Array:
        box = {"cutoff": (0.1, 0.6), "resonance": (0.8, 1.0)}
        return reference_setting(self, plant, key, render_key, success_threshold, box)

    def features(self, audio: Array, sample_rate: int) -> tuple[Array, Array]:
        one_minus_r = ringing_decay(audio, int(round(self.onset_s * sample_rate)))
        frames_db = F.energy_envelope_db(audio, 256, 128, floor_db=-120.0)
        level = jax.nn.logsumexp(frames_db)  # soft max over frames (1 dB temperature)
        return -jnp.log10(jnp.maximum(one_minus_r, 1e-7)), level

    def distance(self, features: tuple, target_features: tuple) -> Array:
        q, level = features
        band = smooth_relu(self.q_low - q, 0.01) + smooth_relu(q - self.q_high, 0.01)
        loudness = smooth_relu(level - self.max_level_db, 0.1) + smooth_relu(
            self.min_level_db - level, 0.1
        )
        return band + loudness / 20.0
