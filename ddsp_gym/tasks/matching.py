"""The Level-1 matching tasks (seed demos: Sine Wave Tuner, Cutoff Sweeper,
Envelope Shaper, Volume/Balance Matching)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym import features as F
from ddsp_gym.dsp.units import cents
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


@dataclass(frozen=True)
class CentroidMatch(AbstractTask):
    """Distance in cents between spectral centroids of the whole sounds' power spectra.

    For a pure tone the centroid sits on its frequency, so matching centroids
    tunes the oscillator.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1600.0, 5.0)
    distance_unit: str = "cents"
    level_invariant: ClassVar[bool] = True  # a centroid is a ratio of spectra

    def features(self, audio: Array, sample_rate: int) -> Array:
        power, freqs = F.long_term_power_spectrum(audio)
        return F.spectral_centroid(power, freqs * sample_rate)

    def distance(self, features: Array, target_features: Array) -> Array:
        return F.smooth_abs(cents(features, target_features), 1.0)


@dataclass(frozen=True)
class SpectrumMatch(AbstractTask):
    """Multi-resolution STFT distance (spectral convergence + log-magnitude L1)."""

    settings: ClassVar[RewardSettings] = RewardSettings(1.0, 0.1)
    distance_unit: str = "MR-STFT"

    def features(self, audio: Array, sample_rate: int) -> tuple:
        return F.multi_resolution_spectra(audio)

    def distance(self, features: tuple, target_features: tuple) -> Array:
        return F.mrstft_distance_from_spectra(features, target_features)


@dataclass(frozen=True)
class EnvelopeMatch(AbstractTask):
    """Mean absolute difference of the frame-wise energy envelopes, in dB.

    Levels below ``floor_db`` are squashed by a softplus floor, and the L1 is
    rounded off within ``smoothing_db``: a hard floor and a plain |x| put a kink
    in the reward wherever any of the ~125 frames crosses the floor or the
    target's level, which makes the reward ragged in the release knob.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(10.0, 1.0)
    distance_unit: str = "dB"
    floor_db: float = -60.0
    smoothing_db: float = 1.0

    def features(self, audio: Array, sample_rate: int) -> Array:
        level_db = F.energy_envelope_db(audio, 256, 128, floor_db=-120.0)
        width = 3.0 * self.smoothing_db
        return self.floor_db + width * jax.nn.softplus((level_db - self.floor_db) / width)

    def distance(self, features: Array, target_features: Array) -> Array:
        return jnp.mean(F.smooth_abs(features - target_features, self.smoothing_db))


@dataclass(frozen=True)
class LoudnessMatch(AbstractTask):
    """Absolute difference of RMS levels in dB."""

    settings: ClassVar[RewardSettings] = RewardSettings(18.0, 0.5)
    distance_unit: str = "dB"

    def features(self, audio: Array, sample_rate: int) -> Array:
        return F.loudness_db(audio)

    def distance(self, features: Array, target_features: Array) -> Array:
        return F.smooth_abs(features - target_features, 0.05)
