"""Goal task of BrightnessStability: as bright as asked, without a screaming resonance."""

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

WELCH_FFT = 512
REFERENCE_BAND_HZ = (60.0, 500.0)
# Where the reference setting is searched (unit travel): a cutoff near the top and a
# moderate resonance, Q ~1.7-4.9 on the plant's 0.5-40 log scale (peaks of ~5-14 dB,
# 20 log10 Q): the cutoff alone tops out short of the goal and more resonance is
# charged. The box holds, with a margin, the settings that meet the goal (cutoff
# >= 0.889, resonance 0.31-0.49); in it about one candidate in five meets the goal,
# against one in twenty over the whole resonance range.
REFERENCE_BOX = {"cutoff": (0.85, 1.0), "resonance": (0.28, 0.52)}


def resonance_peak_db(power: Array, freqs: Array) -> Array:
    """Height in dB of a spectrum's highest region over its level in 60-500 Hz.

    A soft maximum (log-sum-exp at 1 dB temperature) over the dB spectrum keeps
    the measure smooth as the peak moves between bins. For noise through a
    low-pass of quality Q >> 1 the peak sits about 20 log10(Q) dB above the
    passband (RBJ cookbook), so this reads the resonance off the sound alone.
    """
    db = 10.0 * jnp.log10(power + 1e-12)
    band = (freqs >= REFERENCE_BAND_HZ[0]) & (freqs <= REFERENCE_BAND_HZ[1])
    reference = 10.0 * jnp.log10(jnp.sum(power * band) / band.sum() + 1e-12)
    return jax.nn.logsumexp(db) - reference


@dataclass(frozen=True)
class BrightnessGoal(AbstractTask):
    """Reach a spectral centroid of ``goal_hz`` with a resonance peak of at most ``max_peak_db``.

    distance = softplus-relu(log2(goal / centroid)) [octaves short of the goal]
             + softplus-relu(peak - max_peak_db) / 10 [per 10 dB of excess resonance]

    The centroid and the peak come from a Welch-averaged power spectrum
    (512-point frames), so the measure works on any recording. A goal task:
    the target sound is ignored; the hidden target knobs are a reference
    setting that meets the goal (random candidates in ``REFERENCE_BOX``, heard until
    one does: :func:`~ddsp_gym.tasks.goal.reference_setting`).
    With noise through a low-pass, the cutoff alone tops out near a 3.5 kHz
    centroid; brighter needs resonance, and
    resonance past ``max_peak_db`` is charged. The registry also sets the
    sensitivity penalty (``grad_penalty``), which charges settings where the sound changes
    violently under small knob moves.
    """

    settings: ClassVar[RewardSettings] = RewardSettings(1.0, 0.02)
    distance_unit: str = "oct+dB/10"
    goal_hz: float = 4500.0
    max_peak_db: float = 12.0
    is_goal: ClassVar[bool] = True

    def sample_target_knobs(
        self, key: Array, plant: AbstractPlant, render_key: Array, success_threshold: Array
    ) -> Array:
        return reference_setting(self, plant, key, render_key, success_threshold, REFERENCE_BOX)

    def features(self, audio: Array, sample_rate: int) -> tuple[Array, Array]:
        power = F.power_spectrogram(audio, WELCH_FFT).mean(0)
        freqs = F.fft_frequencies(sample_rate, WELCH_FFT)
        return F.spectral_centroid(power, freqs), resonance_peak_db(power, freqs)

    def distance(self, features: tuple, target_features: tuple) -> Array:
        centroid, peak_db = features
        shortfall = jnp.log2(self.goal_hz / (centroid + 1.0))
        return smooth_relu(shortfall, 0.01) + smooth_relu(peak_db - self.max_peak_db, 0.1) / 10.0
