"""Frequency-domain EQ: the RBJ shelf and peaking responses applied by FFT (pure JAX).

The RBJ cookbook filters are the bilinear transforms of analog prototypes,
prewarped so the corner lands on ``freq_hz``. Their exact frequency response is
therefore the analog prototype H(s) evaluated at s = j tan(pi f / sr) / tan(pi f0 / sr).
Evaluating that closed form (instead of running the recursion) keeps the
response smooth in the gain knobs to float32 precision: a low shelf's recursion
has poles near z = 1, where rounding the coefficients to float32 moves the
response in small steps as a knob turns, which shows up as noise in gradients
checked by finite differences. The signal is zero-padded to a power of two
>= 2n, so the filter's decaying impulse response does not wrap around.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.convolution import fft_size
from ddsp_gym.dsp.filters import MAX_FREQ_RATIO, MIN_FREQ_HZ

SHELF_Q = 0.7071067811865476  # shelf slope S = 1


def _warped(freqs_hz: np.ndarray, freq_hz: float, sample_rate: int) -> np.ndarray:
    """Bilinear-warped analog frequency Omega of each bin, relative to the corner ``freq_hz``."""
    corner = float(np.clip(freq_hz, MIN_FREQ_HZ, MAX_FREQ_RATIO * sample_rate))
    # Stop just short of Nyquist, where tan() diverges (the response there is the limit).
    f = np.minimum(freqs_hz, 0.4999 * sample_rate)
    return (np.tan(np.pi * f / sample_rate) / np.tan(np.pi * corner / sample_rate)).astype(
        np.float32
    )


def lowshelf_response(
    freqs_hz: np.ndarray, freq_hz: float, gain_db: Array | float, sample_rate: int
) -> Array:
    """Complex response of the RBJ low shelf (S = 1): gain_db at DC, 0 dB at Nyquist."""
    s = 1j * _warped(freqs_hz, freq_hz, sample_rate)
    amp = jnp.power(10.0, jnp.asarray(gain_db, jnp.float32) / 40.0)
    root = jnp.sqrt(amp) / SHELF_Q
    return amp * (s * s + root * s + amp) / (amp * s * s + root * s + 1.0)


def highshelf_response(
    freqs_hz: np.ndarray, freq_hz: float, gain_db: Array | float, sample_rate: int
) -> Array:
    """Complex response of the RBJ high shelf (S = 1): 0 dB at DC, gain_db at Nyquist."""
    s = 1j * _warped(freqs_hz, freq_hz, sample_rate)
    amp = jnp.power(10.0, jnp.asarray(gain_db, jnp.float32) / 40.0)
    root = jnp.sqrt(amp) / SHELF_Q
    return amp * (amp * s * s + root * s + 1.0) / (s * s + root * s + amp)


def peaking_response(
    freqs_hz: np.ndarray, freq_hz: float, q: float, gain_db: Array | float, sample_rate: int
) -> Array:
    """Complex response of the RBJ peaking EQ: gain_db at ``freq_hz``, 0 dB far from it."""
    s = 1j * _warped(freqs_hz, freq_hz, sample_rate)
    amp = jnp.power(10.0, jnp.asarray(gain_db, jnp.float32) / 40.0)
    return (s * s + s * (amp / q) + 1.0) / (s * s + s / (amp * q) + 1.0)


def eq_frequencies(n: int, sample_rate: int) -> np.ndarray:
    """Bin frequencies in Hz of the FFT that :func:`apply_response` uses for (n,) signals."""
    size = fft_size(2 * n)
    return np.fft.rfftfreq(size, 1.0 / sample_rate)


def apply_response(x: Array, response: Array) -> Array:
    """Filter (n,) ``x`` by a complex ``response`` sampled at :func:`eq_frequencies`, (n,)."""
    n = x.shape[0]
    size = fft_size(2 * n)
    return jnp.fft.irfft(jnp.fft.rfft(x, size) * response, size)[:n]
