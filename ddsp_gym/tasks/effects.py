"""Tasks for the effect plants (seed demos: Dynamic Processor Calibration, Delay Time
Estimator, Reverb Space Matcher, Distortion Characterization, Guitar Tone Match).

Each compares the processed program with the target's processing of the same
program; the features are chosen to expose what the effect's knobs change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import features as F
from ddsp_gym.dsp.convolution import gaussian_smooth
from ddsp_gym.features.autocorrelation import (
    echo_heights,
    smoothed_autocorrelations,
    soft_argmax_lag,
)
from ddsp_gym.features.decay import band_decay_curves_db
from ddsp_gym.features.harmonics import harmonic_levels_db
from ddsp_gym.features.loudness import gaussian_rms_envelope
from ddsp_gym.features.rolloff import soft_spectral_rolloff
from ddsp_gym.program import PROBE_HZ
from ddsp_gym.tasks.base import AbstractTask, RewardSettings


@dataclass(frozen=True)
class DynamicsMatch(AbstractTask):
    """Loudness-curve and dynamic-range error of compressed program material.

    e = rms over frames of (level curve - target's)   (dB; 8 ms frames every 2 ms,
                                                       so attack and release show)
      + |dynamic range - target's|                     (dB)
    distance = ln(1 + e / 1 dB)

    The level curve is the frame RMS level in dBFS with a soft floor at
    ``floor_db``; the dynamic range is a soft maximum of it (log-mean-exp, 1 dB
    temperature) minus the overall RMS level. The log compresses large errors:
    it is monotone in e (same minimum, same ordering), but keeps the gradient
    near the target comparable to the gradient far from it, which suits
    optimisers with normalised steps (Adam). An RMS rather than a mean absolute
    error for the same reason: its gradient does not fade as the errors shrink.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1.92, 0.18)
    distance_unit: str = "ln(1 + dB)"
    frame_length: int = 128
    hop: int = 32
    floor_db: float = -80.0

    def features(self, audio: Array, sample_rate: int) -> dict[str, Array]:
        # A soft floor (power + floor power) keeps the curve smooth where decays cross it.
        power = F.energy_envelope(audio, self.frame_length, self.hop) ** 2
        curve = 10.0 * jnp.log10(power + 10.0 ** (self.floor_db / 10.0))
        mean_db = F.loudness_db(audio)
        # Soft maximum (log-sum-exp at 1 dB temperature) of the level curve.
        peak_db = jax.nn.logsumexp(curve) - jnp.log(curve.shape[0])
        return {"curve": curve, "range": peak_db - mean_db}

    def distance(self, features: dict, target_features: dict) -> Array:
        curve = jnp.sqrt(jnp.mean((features["curve"] - target_features["curve"]) ** 2) + 1e-6)
        spread = F.smooth_abs(features["range"] - target_features["range"], 0.05)
        return jnp.log1p(curve + spread)


def _fade_out(n: int, m: int) -> np.ndarray:
    """(n,) ones whose last ``m`` values fall from 1 to 0 along a raised cosine."""
    ramp = 0.5 + 0.5 * np.cos(np.pi * np.arange(1, m + 1) / m)
    return np.concatenate([np.ones(n - m), ramp]).astype(np.float32)


@dataclass(frozen=True)
class EchoMatch(AbstractTask):
    """Echo distance: spacing (soft-argmax lag of the autocorrelation), echo heights, MR-STFT.

    distance = |log2(lag / target lag)|                     (octaves; the echo spacing)
             + sum_k |acf(k lag) - target's acf(k target lag)|   (the repeats' heights)
             + ||RMS envelope - target's|| / ||target's||     (dry and echo levels)
             + acf_weight * rms(smoothed acf - target's)      (widths ``sigmas``)
             + spectral_weight * MR-STFT spectral convergence (the sound itself)

    The lag is the softmax-weighted mean over lags in [min_lag_s, max_lag_s] of
    the autocorrelation smoothed by ``sigmas[0]``; it moves smoothly with the
    delay time, so far-off settings still get a gradient towards the target. The
    echo heights are read at multiples of each sound's own lag (on the curve
    smoothed by ``sigmas[2]``: a wide peak forgives a small error in the lag, and
    keeps the two large, cancelling terms of their gradient, from the moving peak
    and the moving read-out, small enough for float32), so they compare
    feedback and mix even before the echoes line up; the RMS envelope shows the
    dry click's level at the same place in both sounds, which tells a mix m from
    1 - m (both give the same normalised autocorrelation).

    Everything is measured on the sound faded out over its last ``fade_s``
    (raised cosine), and the autocorrelations are tapered the same way over
    their last ``fade_s`` of lags: as the delay time shrinks, a late echo enters
    the render window (and its correlation peak the lag window) over a few
    samples, a step in the reward that the taper spreads over thousands.

    Level and spectra are taken of a gently low-passed copy (Gaussian, std
    ``smooth_samples``), and the spectral term is the spectral convergence only
    (linear magnitudes): the delay-time knob sweeps thousands of samples per
    unit of travel, so any feature that is rough at the scale of a few samples
    (a log-magnitude in a near-silent frame an echo enters) makes the reward's
    gradient erratic.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(4.62, 0.15)
    distance_unit: str = "octaves + acf + MR-STFT"
    min_lag_s: float = 0.008
    max_lag_s: float = 0.95
    sigmas: tuple[float, ...] = (8.0, 32.0, 128.0, 512.0)
    sharpness: float = 60.0
    n_echoes: int = 4
    acf_weight: float = 10.0
    spectral_weight: float = 0.2
    smooth_samples: float = 2.0
    # No 256-point frames: a 30-sample move of a late echo (a 1e-3 step of the time knob)
    # is an eighth of such a window, so their magnitudes curve too fast for the gradient.
    fft_sizes: tuple[int, ...] = (2048, 1024, 512)
    fade_s: float = 0.1

    def features(self, audio: Array, sample_rate: int) -> dict:
        lo = int(self.min_lag_s * sample_rate)
        hi = min(int(self.max_lag_s * sample_rate), audio.shape[0] - 1)
        fade = int(self.fade_s * sample_rate)
        audio = audio * _fade_out(audio.shape[0], fade)
        acf = smoothed_autocorrelations(audio, hi, self.sigmas) * _fade_out(hi + 1, fade)
        lag = soft_argmax_lag(acf[0, lo:], np.arange(lo, hi + 1, dtype=np.float32), self.sharpness)
        smoothed = gaussian_smooth(audio, self.smooth_samples)
        return {
            "lag": lag,
            "heights": echo_heights(acf[2], lag, self.n_echoes, width=32.0),
            # RMS under a Gaussian window (std 8 ms) every 8 ms.
            "envelope": gaussian_rms_envelope(smoothed, 128.0, 128),
            "acf": acf[:, lo:],
            "spectra": F.multi_resolution_spectra(smoothed, self.fft_sizes),
        }

    def distance(self, features: dict, target_features: dict) -> Array:
        octaves = jnp.log2(
            jnp.maximum(features["lag"], 1.0) / jnp.maximum(target_features["lag"], 1.0)
        )
        heights = jnp.sum(F.smooth_abs(features["heights"] - target_features["heights"], 0.01))
        # Smooth |.| above and root-mean-square differences below: the curves cross at many
        # lags and frames, and a plain |.| (L1) would make the gradient jump at every crossing.
        level = jnp.sqrt(
            jnp.sum((features["envelope"] - target_features["envelope"]) ** 2)
            / (jnp.sum(target_features["envelope"] ** 2) + 1e-12)
            + 1e-8
        )
        acf = jnp.sqrt(jnp.mean((features["acf"] - target_features["acf"]) ** 2) + 1e-8)
        # Spectral convergence only (linear magnitudes): the log-magnitude half of MR-STFT
        # swings wildly in the near-silent frames an echo's window edge passes through.
        spectral = sum(
            m.convergence_to(t)
            for m, t in zip(features["spectra"], target_features["spectra"], strict=True)
        ) / len(self.fft_sizes)
        return (
            F.smooth_abs(octaves, 0.01)
            + heights
            + level
            + self.acf_weight * acf
            + self.spectral_weight * spectral
        )


@dataclass(frozen=True)
class DecayMatch(AbstractTask):
    """Mean absolute difference of band-wise Schroeder energy-decay curves, in dB."""

    settings: ClassVar[RewardSettings] = RewardSettings(1.53, 0.02)
    distance_unit: str = "dB"

    def features(self, audio: Array, sample_rate: int) -> Array:
        return band_decay_curves_db(audio, sample_rate)

    def distance(self, features: Array, target_features: Array) -> Array:
        return jnp.mean(F.smooth_abs(features - target_features, 0.05))


@dataclass(frozen=True)
class HarmonicsMatch(AbstractTask):
    """Harmonic amplitude ratios of a distorted probe tone at ``f0_hz``, in dB.

    distance = mean over frames and harmonics 2..K of |R_k - target's R_k|
             + mean over frames of |H_1 - target's H_1|  (the output level)
    with H_k the level of harmonic k in dB (floored at ``floor_db`` dBFS) and
    R_k = max(H_k - H_1, ``ratio_floor_db``). The ratio floor matters: a harmonic
    lost in the floor (every even one, for a symmetric shaper) would otherwise
    read as floor - H_1, a copy of the level term that ties tone to level.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(21.9, 0.35)
    distance_unit: str = "dB"
    f0_hz: float = PROBE_HZ
    n_harmonics: int = 15
    floor_db: float = -120.0
    ratio_floor_db: float = -80.0

    def features(self, audio: Array, sample_rate: int) -> Array:
        return harmonic_levels_db(
            audio, sample_rate, self.f0_hz, self.n_harmonics, floor_db=self.floor_db
        )

    def distance(self, features: Array, target_features: Array) -> Array:
        ratios = self._floored_ratios(features)
        target_ratios = self._floored_ratios(target_features)
        ratio_error = jnp.mean(F.smooth_abs(ratios - target_ratios, 0.05))
        level_error = jnp.mean(F.smooth_abs(features[:, 0] - target_features[:, 0], 0.05))
        return ratio_error + level_error

    def _floored_ratios(self, levels: Array) -> Array:
        """Harmonic-to-fundamental ratios in dB, floored softly at ``ratio_floor_db``.

        A softplus floor (2 dB wide) rather than a hard maximum: a harmonic
        crossing the floor would otherwise put a kink in the reward.
        """
        excess = levels[:, 1:] - levels[:, :1] - self.ratio_floor_db
        return self.ratio_floor_db + 2.0 * jax.nn.softplus(excess / 2.0)


@dataclass(frozen=True)
class ToneMatch(AbstractTask):
    """Timbre distance: spectral centroid, rolloff and flatness of the mean spectrum, + MR-STFT.

    The rolloff is the smooth one (:func:`soft_spectral_rolloff`), so the
    reward's gradient has no kinks where the 85% point crosses a bin.

    distance = |log2 centroid ratio| + |log2 rolloff ratio| (octaves)
             + |flatness dB difference| / 10 + MR-STFT distance
    """

    settings: ClassVar[RewardSettings] = RewardSettings(6.74, 0.15)
    distance_unit: str = "octaves + MR-STFT"
    n_fft: int = 1024

    def features(self, audio: Array, sample_rate: int) -> dict:
        power = F.power_spectrogram(audio, self.n_fft).mean(0)
        freqs = F.fft_frequencies(sample_rate, self.n_fft)
        return {
            "centroid": F.spectral_centroid(power, freqs),
            "rolloff": soft_spectral_rolloff(power, freqs),
            "flatness_db": 10.0 * jnp.log10(F.spectral_flatness(power) + 1e-10),
            "spectra": F.multi_resolution_spectra(audio),
        }

    def distance(self, features: dict, target_features: dict) -> Array:
        octaves = lambda a, b: jnp.log2(jnp.maximum(a, 1.0) / jnp.maximum(b, 1.0))  # noqa: E731
        centroid = F.smooth_abs(octaves(features["centroid"], target_features["centroid"]), 0.01)
        rolloff = F.smooth_abs(octaves(features["rolloff"], target_features["rolloff"]), 0.01)
        flatness = F.smooth_abs(features["flatness_db"] - target_features["flatness_db"], 0.1)
        spectral = F.mrstft_distance_from_spectra(features["spectra"], target_features["spectra"])
        return centroid + rolloff + flatness / 10.0 + spectral
