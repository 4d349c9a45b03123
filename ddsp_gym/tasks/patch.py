"""Patch matching (seed demo: Patch Reverse-Engineering on an analog synth)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
from jax import Array

from ddsp_gym import features as F
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


@dataclass(frozen=True)
class PatchMatch(AbstractTask):
    """Multi-resolution STFT distance made robust for recorded sound and smooth for gradients.

    Per resolution: spectral convergence plus the mean log-magnitude difference,
    where magnitudes below ``floor`` weigh little (``log(mag + floor)``: a real
    device's noise floor, about -60 dBFS, and near-silent tails do not dominate)
    and the L1 is rounded off within ``smoothing`` nepers (a plain |x| over
    thousands of bins puts a kink wherever any bin crosses the target's level).
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1.0, 0.3)
    distance_unit: str = "MR-STFT"
    floor: float = 1e-2
    smoothing: float = 0.3

    def features(self, audio: Array, sample_rate: int) -> tuple:
        return F.multi_resolution_spectra(audio)

    def distance(self, features: tuple, target_features: tuple) -> Array:
        # Features are F.Spectrum tuples (magnitude, log magnitude, norm); this distance takes its
        # own log with the floor above, so it reads the magnitudes.
        terms = [
            m.convergence_to(t)
            + jnp.mean(
                F.smooth_abs(
                    jnp.log(t.magnitude + self.floor) - jnp.log(m.magnitude + self.floor),
                    self.smoothing,
                )
            )
            for m, t in zip(features, target_features, strict=True)
        ]
        return sum(terms) / len(terms)
