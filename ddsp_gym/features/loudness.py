"""Level and temporal-envelope features (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
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


def frame_mean_square(x: Array, frame_length: int = 256, hop: int = 128) -> Array:
    """Mean of x^2 over each centred frame, shape (n_frames,) (frames as ``frame_signal``).

    When ``hop`` divides ``frame_length`` the frame sums are built from sums over
    hop-long blocks (r = frame_length / hop of them per frame), which spares
    materialising r overlapping copies of the signal.
    """
    if frame_length % hop:
        frames = frame_signal(x, frame_length, hop)
        return jnp.mean(frames * frames, axis=-1)
    pad = frame_length // 2
    padded = jnp.pad(x, (pad, pad))
    n_frames = 1 + (padded.shape[0] - frame_length) // hop
    per_frame = frame_length // hop
    n_blocks = n_frames + per_frame - 1
    squares = padded[: n_blocks * hop] ** 2
    # A product with ones: XLA:CPU sums the blocks faster as a matrix-vector product
    # than as a reduction over the last axis.
    block_sums = squares.reshape(n_blocks, hop) @ jnp.ones(hop, squares.dtype)
    sums = sum(block_sums[i : i + n_frames] for i in range(per_frame))
    return sums / frame_length


def energy_envelope(x: Array, frame_length: int = 256, hop: int = 128) -> Array:
    """Frame-wise RMS amplitude, shape (n_frames,), frames centred every ``hop`` samples."""
    return jnp.sqrt(frame_mean_square(x, frame_length, hop) + 1e-12)


def energy_envelope_db(
    x: Array, frame_length: int = 256, hop: int = 128, floor_db: float = -80.0
) -> Array:
    """Frame-wise RMS level in dBFS, floored at ``floor_db``, shape (n_frames,)."""
    return power_to_db(frame_mean_square(x, frame_length, hop), floor_db=floor_db)


def gaussian_rms_envelope(x: Array, sigma: float = 128.0, hop: int = 128) -> Array:
    """RMS under a unit-sum Gaussian window (std ``sigma`` samples) centred every ``hop``.

    Unlike rectangular frames it changes smoothly as an event moves past a frame
    edge. The window spans +-6 sigma (its edge weight, exp(-18) ~ 1.5e-8, leaves no
    visible step) and the weighted sums are taken directly in the time domain:
    smoothing x^2 by FFT would spread float32 rounding noise of the loud frames
    (~1e-7 of their power) into the silent ones, where the square root's slope
    amplifies it into the gradient. Returns (1 + n // hop,), frames as ``frame_signal``.
    """
    half = int(np.ceil(6.0 * sigma))
    offsets = np.arange(2 * half, dtype=np.float32) - half
    window = np.exp(-0.5 * (offsets / sigma) ** 2)
    window = (window / window.sum()).astype(np.float32)
    power = frame_signal(x * x, 2 * half, hop) @ window
    return jnp.sqrt(power + 1e-12)
