"""A fixed-size summary of a sound, used in observations."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.features.loudness import energy_envelope_db, loudness_db
from ddsp_gym.features.spectral import (
    fft_frequencies,
    mel_filterbank,
    power_spectrogram,
    spectral_centroid,
    spectral_flatness,
    spectral_rolloff,
)

N_MEL_BANDS = 16
N_ENVELOPE_POINTS = 8
SUMMARY_SIZE = 4 + N_MEL_BANDS + N_ENVELOPE_POINTS
SUMMARY_FFT = 1024
# Every entry is bounded by construction (floors at -80/-120 dB, centroid >= 20 Hz);
# the clip is a guard that lets observation spaces declare finite bounds.
SUMMARY_BOUND = 5.0


def summary_features(x: Array, sample_rate: int) -> Array:
    """(SUMMARY_SIZE,) float32 vector describing ``x``, each entry roughly in [-1, 1].

    Layout: [log2 centroid / 1 kHz / 4, log2 rolloff / 1 kHz / 4, flatness,
    loudness dBFS / 60, 16 mel-band levels (dB / 80 + 1), 8 points of the energy
    envelope (dB / 80 + 1)].
    """
    power = power_spectrogram(x, SUMMARY_FFT)
    mean_power = power.mean(0)
    freqs = fft_frequencies(sample_rate, SUMMARY_FFT)
    centroid = spectral_centroid(mean_power, freqs)
    rolloff = spectral_rolloff(mean_power, freqs)
    octaves = lambda f: jnp.log2(jnp.maximum(f, 20.0) / 1000.0) / 4.0  # noqa: E731
    mel = mean_power @ mel_filterbank(sample_rate, SUMMARY_FFT, N_MEL_BANDS)
    mel_db = 10.0 * jnp.log10(mel + 1e-8)
    envelope = energy_envelope_db(x, 256, 128)
    # Sample the envelope at evenly spaced frames (static indices).
    idx = jnp.linspace(0, envelope.shape[0] - 1, N_ENVELOPE_POINTS).astype(jnp.int32)
    scalars = jnp.stack(
        [octaves(centroid), octaves(rolloff), spectral_flatness(mean_power), loudness_db(x) / 60.0]
    )
    summary = jnp.concatenate([scalars, mel_db / 80.0 + 1.0, envelope[idx] / 80.0 + 1.0])
    return jnp.clip(summary, -SUMMARY_BOUND, SUMMARY_BOUND).astype(jnp.float32)
