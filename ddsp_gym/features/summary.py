"""A fixed-size summary of a sound, used in observations."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.features.loudness import energy_envelope_db, loudness_db
from ddsp_gym.features.spectral import (
    hann_window,
    long_term_power_spectrum,
    mel_filterbank,
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


def _pool(power: Array, freqs: np.ndarray, bands: int) -> tuple[Array, np.ndarray]:
    """Sum a spectrum's bins (the Nyquist bin dropped) into ``bands`` equal groups.

    Summed as ``group`` strided slices, which XLA fuses into one elementwise loop;
    XLA:CPU runs a reshape and a sum over the short last axis as a slower reduction.
    """
    group = (power.shape[0] - 1) // bands
    end = bands * group
    pooled = sum(power[i:end:group] for i in range(group))
    return pooled, freqs[:end].reshape(bands, group).mean(axis=1)


def summary_features(x: Array, sample_rate: int) -> Array:
    """(SUMMARY_SIZE,) float32 vector describing ``x``, each entry roughly in [-1, 1].

    Layout: [log2 centroid / 1 kHz / 4, log2 rolloff / 1 kHz / 4, flatness,
    loudness dBFS / 60, 16 mel-band levels (dB / 80 + 1), 8 points of the energy
    envelope (dB / 80 + 1)].

    The spectral entries come from one long-term power spectrum (a Hann window
    over the whole sound, as the centroid task uses, so XLA computes it once for
    both), scaled to the levels of the mean power spectrum of 1024-sample Hann
    frames: for noise (Welch, 1967) and for tones alike, bins of the long
    spectrum hold sum(w_n^2) / sum(w_1024^2) times the frames' power and are
    n_fft / 1024 times as many. Rolloff and flatness use it pooled into
    ``SUMMARY_FFT // 2`` bands, the resolution of the frames, which smooths a
    noise spectrum as averaging frames would. One FFT of the whole sound costs
    about a third of averaging 75%-overlapped frames, with less leakage.
    """
    n = x.shape[0]
    power, cycles = long_term_power_spectrum(x)
    n_fft = 2 * (power.shape[0] - 1)
    frame_energy = float(np.sum(hann_window(SUMMARY_FFT) ** 2))
    window_energy = float(np.sum(hann_window(n).astype(np.float64) ** 2))
    power = power * (frame_energy / window_energy * SUMMARY_FFT / n_fft)
    freqs = cycles * sample_rate
    pooled, pooled_freqs = _pool(power, freqs, min(SUMMARY_FFT // 2, n_fft // 2))
    centroid = spectral_centroid(power, freqs)
    rolloff = spectral_rolloff(pooled, pooled_freqs)
    octaves = lambda f: jnp.log2(jnp.maximum(f, 20.0) / 1000.0) / 4.0  # noqa: E731
    mel = power @ mel_filterbank(sample_rate, n_fft, N_MEL_BANDS)
    mel_db = 10.0 * jnp.log10(mel + 1e-8)
    envelope = energy_envelope_db(x, 256, 128)
    # Sample the envelope at evenly spaced frames (static indices).
    idx = np.linspace(0, envelope.shape[0] - 1, N_ENVELOPE_POINTS).astype(np.int32)
    scalars = jnp.stack(
        [octaves(centroid), octaves(rolloff), spectral_flatness(pooled), loudness_db(x) / 60.0]
    )
    summary = jnp.concatenate([scalars, mel_db / 80.0 + 1.0, envelope[idx] / 80.0 + 1.0])
    return jnp.clip(summary, -SUMMARY_BOUND, SUMMARY_BOUND).astype(jnp.float32)
