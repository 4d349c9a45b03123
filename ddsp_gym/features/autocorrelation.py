"""Autocorrelation features, computed by FFT (pure JAX, unbatched).

By the Wiener-Khinchin theorem the autocorrelation is the inverse transform of
the power spectrum; zero-padding to >= 2n makes it the linear (not circular)
one. Smoothing it along the lag axis with a Gaussian of width sigma is the same
as weighting the power spectrum by the Gaussian's transform, so smoothed curves
at several widths cost one forward FFT and one batched inverse FFT.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.convolution import fft_size


def smoothed_autocorrelations(x: Array, max_lag: int, sigmas: Sequence[float] = (0.0,)) -> Array:
    """Normalised autocorrelations r(l) / r(0) for lags 0..max_lag, one per smoothing width.

    Args:
        x: (n,) signal.
        max_lag: largest lag in samples (< n).
        sigmas: Gaussian smoothing widths along the lag axis, in samples (0: none).
    Returns:
        (len(sigmas), max_lag + 1); each curve is divided by its own value at lag 0
        (so it is 1 there), with an epsilon that keeps silence finite.
    """
    size = fft_size(2 * x.shape[0])
    spectrum = jnp.fft.rfft(x, size)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    freqs = np.fft.rfftfreq(size).astype(np.float32)  # cycles per sample
    # Transforms of unit-area Gaussians of std sigma (samples): exp(-2 pi^2 sigma^2 f^2).
    pi_sigmas = (np.pi * np.asarray(sigmas, np.float64)).astype(np.float32)[:, None]
    weights = np.exp(-2.0 * (pi_sigmas * freqs[None, :]) ** 2)
    # One inverse FFT call for all widths: the same curves bit for bit as one call per
    # width, with less per-call overhead.
    acf = jnp.fft.irfft(power * weights, size)[:, : max_lag + 1]
    return acf / (acf[:, :1] + 1e-9)


def soft_argmax_lag(curve: Array, lags: np.ndarray, sharpness: float) -> Array:
    """Softmax-weighted mean lag of ``curve`` (k,) at ``lags`` (k,): a differentiable argmax.

    The curve is first divided by a smooth maximum of itself (its 16-norm, at
    most ~1.3x the highest peak for peaks a few dozen lags wide), so the highest
    peak scores about 1 whatever the overall correlation level (a weak echo is
    located as well as a strong one); ``sharpness`` is the softmax inverse
    temperature on that scale.
    """
    peak = jnp.sum(curve**16) ** (1.0 / 16.0)
    weights = jax.nn.softmax(sharpness * curve / jnp.maximum(peak, 1e-6))
    return jnp.sum(weights * lags)


def echo_heights(curve: Array, spacing: Array, n_echoes: int, width: float = 4.0) -> Array:
    """An autocorrelation ``curve`` (lags 0..L) read near lags k * ``spacing``, k = 1..n_echoes.

    Each value is a Gaussian-weighted mean (std ``width`` lags) of the curve
    around k * spacing, smooth in ``spacing`` (linear interpolation would leave
    kinks at every integer lag). Near the end of the curve the weights run out,
    so an echo fades out of the features as it leaves the range. For an echo
    train the heights fall off as the repeats' gain, whatever the spacing: (n_echoes,).
    """
    lags = np.arange(curve.shape[0], dtype=np.float32)
    centres = spacing * np.arange(1, n_echoes + 1, dtype=np.float32)
    weights = jnp.exp(-0.5 * ((lags[None, :] - centres[:, None]) / width) ** 2)
    return weights @ curve / (np.sqrt(2.0 * np.pi) * width)
