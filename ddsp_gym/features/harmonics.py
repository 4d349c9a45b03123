"""Harmonic amplitudes of a periodic signal with known fundamental (pure JAX, unbatched)."""

from __future__ import annotations

import functools

import numpy as np
from jax import Array

from ddsp_gym.dsp.units import power_to_db
from ddsp_gym.features.spectral import frame_signal, hann_window


@functools.lru_cache(maxsize=16)
def harmonic_basis(f0_hz: float, n_harmonics: int, frame_length: int, sample_rate: int):
    """Hann-windowed complex exponentials at k f0 (k = 1..n_harmonics): (frame_length, K) cos, sin.

    Scaled so a sine of amplitude A at a harmonic reads A (window gain removed).
    """
    t = np.arange(frame_length) / sample_rate
    phase = 2.0 * np.pi * f0_hz * np.outer(t, np.arange(1, n_harmonics + 1))
    window = hann_window(frame_length)[:, None] * (2.0 / hann_window(frame_length).sum())
    return (window * np.cos(phase)).astype(np.float32), (window * np.sin(phase)).astype(np.float32)


def harmonic_levels_db(
    x: Array,
    sample_rate: int,
    f0_hz: float,
    n_harmonics: int,
    frame_length: int = 1024,
    hop: int = 512,
    floor_db: float = -120.0,
) -> Array:
    """Level in dB (re. amplitude 1) of harmonics 1..n_harmonics of ``f0_hz``, per frame.

    Each frame is projected on Hann-windowed cosines and sines at k f0 (a DFT at
    exactly those frequencies, not at the nearest bins). Shape (n_frames, K).
    """
    cos, sin = harmonic_basis(float(f0_hz), n_harmonics, frame_length, sample_rate)
    frames = frame_signal(x, frame_length, hop)
    power = (frames @ cos) ** 2 + (frames @ sin) ** 2
    return power_to_db(power, floor_db=floor_db)
