"""Energy decay curves (pure JAX, unbatched).

M. R. Schroeder, "New method of measuring reverberation time", JASA 37(3), 1965:
integrating a room impulse response's energy backwards in time gives a smooth
curve (the ensemble average of noise-excited decays) whose slope is the decay
rate; RT60 is the time it takes to fall 60 dB (extrapolated from a fit, as in
ISO 3382-1).
"""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.reverb import BAND_EDGES_HZ, crossover_masks
from ddsp_gym.dsp.units import power_to_db
from ddsp_gym.features.spectral import fft_frequencies, power_spectrogram


def schroeder_edc(energy: Array) -> Array:
    """Backward integral of an energy sequence along its last axis: E(t) = sum_{s >= t} e(s)."""
    return jnp.flip(jnp.cumsum(jnp.flip(energy, -1), -1), -1)


def schroeder_edc_db(x: Array, floor_db: float = -120.0) -> Array:
    """Schroeder decay curve of a signal (n,) in dB re. its total energy (0 dB at t = 0)."""
    edc = schroeder_edc(x * x)
    return power_to_db(edc / (edc[0] + 1e-20), floor_db=floor_db)


def band_decay_curves_db(
    x: Array,
    sample_rate: int,
    n_fft: int = 512,
    hop: int = 128,
    edges_hz: tuple[float, ...] = BAND_EDGES_HZ,
    floor_db: float = -100.0,
) -> Array:
    """Band-wise Schroeder curves of a signal, in dBFS-like units: (n_bands, n_frames).

    The STFT power in each band (the reverb's crossover masks) is integrated
    backwards over frames. Unlike :func:`schroeder_edc_db` the curves are not
    normalised, so they carry the level as well as the decay of every band.
    """
    # Over the one-sided bins, a Hann frame's power sums to 0.375 n_fft^2 x half its mean
    # square: a full-scale sine reads 0.25 (-6 dB), and frame 0 of the curves, summed over
    # the bands, is sum(x^2) / (2 sample_rate) (tests/test_features_references.py).
    power = power_spectrogram(x, n_fft, hop) / (0.375 * n_fft * n_fft)
    masks = crossover_masks(fft_frequencies(sample_rate, n_fft), edges_hz)  # (bands, bins)
    band_power = masks @ power.T  # (bands, frames)
    return power_to_db(schroeder_edc(band_power) * hop / sample_rate, floor_db=floor_db)
