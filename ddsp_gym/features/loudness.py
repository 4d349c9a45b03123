"""Level and temporal-envelope features (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.units import power_to_db
from ddsp_gym.features.spectral import frame_signal


def rms(x: Array) -> Array:
    """Root-mean-square level of (n,) audio (gradient-safe at silence)."""
    return jnp.sqrt(jnp.mean(x * x) + 1e-12)


def loudness_db(x: Array) -> Array:
    """RMS level in dBFS (a full-scale sine is -3 dB); -120 dB floor for silence.

    Unweighted on purpose: the Level-1 tasks compare a sound with versions of
    itself, where frequency weighting changes nothing but the offset.
    """
    return power_to_db(jnp.mean(x * x))


def energy_envelope(x: Array, frame_length: int = 256, hop: int = 128) -> Array:
    """Frame-wise RMS amplitude, shape (n_frames,), frames centred every ``hop`` samples."""
    frames = frame_signal(x, frame_length, hop)
    return jnp.sqrt(jnp.mean(frames * frames, axis=-1) + 1e-12)


def energy_envelope_db(
    x: Array, frame_length: int = 256, hop: int = 128, floor_db: float = -80.0
) -> Array:
    """Frame-wise RMS level in dBFS, floored at ``floor_db``, shape (n_frames,)."""
    frames = frame_signal(x, frame_length, hop)
    return power_to_db(jnp.mean(frames * frames, axis=-1), floor_db=floor_db)
