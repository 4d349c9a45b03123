"""Waveform matching with a coarse timbre guide: the deceptive landscape of PlateauEscape."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax.numpy as jnp
from jax import Array

from ddsp_gym import features as F
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


@dataclass(frozen=True)
class PitchWaveformMatch(AbstractTask):
    """A smooth coarse-timbre bowl plus the normalised waveform error, which ripples.

    distance = |log2(c / c*)| + spread_weight * |s - s*| + ||x - x*||^2 / (||x||^2 + ||x*||^2)

    with c the spectral centroid of the whole sound (Hz), s its spectral spread
    over its centroid (dimensionless; for the ``fm_sine`` plant it grows with
    the modulation index alone) and x the waveform. Both sounds start at phase
    0, so the waveform term is 0 only for the exact pitch and timbre.

    The landscape is deceptive on purpose, and the deception is that of real
    oscillator fitting: for two sines a pitch offset df apart, over a sound of
    T seconds, the waveform term is about 1 - sinc(2 pi df T), whose side lobes
    put a local minimum every 1/T = 4 Hz (T = 0.25 s) out to the ends of the
    knob's range (Hayes, Saitis & Fazekas, "Sinusoidal frequency estimation by
    gradient descent", ICASSP 2023, show these ripples for the MSE of a
    sinusoid's frequency). Their slopes (about 1 / df per Hz) dwarf the
    centroid term's (1 / (f ln 2) per Hz), so gradient descent stops in the
    first side lobe it meets; only the central lobe, |df| < 2 Hz, leads to the
    target. Averaged over a knob spread much wider than the 4 Hz lobe spacing
    (dither), the ripples cancel and the coarse terms' bowl remains, with its
    one minimum at the target.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1.0, 0.1)
    distance_unit: str = "oct+nmse"
    spread_weight: float = 2.0

    def features(self, audio: Array, sample_rate: int) -> tuple[Array, Array, Array]:
        power, freqs = F.long_term_power_spectrum(audio)
        freqs = freqs * sample_rate
        centroid = F.spectral_centroid(power, freqs)
        # +1 Hz keeps the ratio finite (and its gradient bounded) for silence.
        return audio, centroid, F.spectral_spread(power, freqs) / (centroid + 1.0)

    def distance(self, features: tuple, target_features: tuple) -> Array:
        x, centroid, spread = features
        y, target_centroid, target_spread = target_features
        octaves = jnp.log2((centroid + 1.0) / (target_centroid + 1.0))
        nmse = jnp.sum((x - y) ** 2) / (jnp.sum(x * x) + jnp.sum(y * y) + 1e-8)
        coarse = F.smooth_abs(octaves, 0.01) + self.spread_weight * F.smooth_abs(
            spread - target_spread, 0.01
        )
        return coarse + nmse
