"""Autocorrelation features, computed by FFT (pure JAX, unbatched).

By the Wiener-Khinchin theorem the autocorrelation is the inverse transform of
the power spectrum; zero-padding to >= 2n makes it the linear (not circular)
one. Smoothing it along the lag axis with a Gaussian of width sigma is the same
as weighting the power spectrum by the Gaussian's transform, so smoothed curves
at several widths cost one forward FFT and one inverse FFT each.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.convolution import fft_size


def lag_step(sigma: float) -> int:
    """Lag spacing at which a curve smoothed by ``sigma`` is sampled: max(1, floor(sigma / 8)).

    The smoothing leaves no power above f = 4 / sigma cycles per sample (the
    Gaussian weight there is exp(-32 pi^2) ~ 1e-137), so sampling every
    sigma / 8 lags (Nyquist 4 / sigma) loses nothing.
    """
    return max(1, int(sigma // 8))


def smoothed_autocorrelations(
    x: Array, max_lag: int, sigmas: Sequence[float] = (0.0,)
) -> tuple[Array, ...]:
    """Normalised autocorrelations r(l) / r(0), one per smoothing width, on their own lag grids.

    Args:
        x: (n,) signal.
        max_lag: largest lag in samples (< n).
        sigmas: Gaussian smoothing widths along the lag axis, in samples (0: none).
    Returns:
        One curve per sigma at lags 0, s, 2s, ... <= max_lag with s = :func:`lag_step`
        (sigma): shape (max_lag // s + 1,). Each is divided by its value at lag 0 (so
        it is 1 there), with an epsilon that keeps silence finite. A wide curve is
        computed by a short inverse FFT of the low bins, so four widths cost little
        more than one.
    """
    size = fft_size(2 * x.shape[0])
    spectrum = jnp.fft.rfft(x, size)
    power = jnp.real(spectrum) ** 2 + jnp.imag(spectrum) ** 2
    freqs = np.fft.rfftfreq(size).astype(np.float32)  # cycles per sample
    curves = []
    for sigma in sigmas:
        step = lag_step(sigma)
        short = size // step  # inverse FFT length: every step-th lag
        # Transform of a unit-area Gaussian of std sigma (samples): exp(-2 pi^2 sigma^2 f^2).
        weight = np.exp(-2.0 * (np.pi * sigma * freqs[: short // 2 + 1]) ** 2).astype(np.float32)
        acf = jnp.fft.irfft(power[: short // 2 + 1] * weight, short)[: max_lag // step + 1]
        curves.append(acf / (acf[0] + 1e-9))
    return tuple(curves)


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


def echo_heights(
    curve: Array, spacing: Array, n_echoes: int, width: float = 4.0, step: int = 1
) -> Array:
    """An autocorrelation ``curve`` (lags 0, step, 2 step, ...) read near lags k * ``spacing``.

    Each value (k = 1..n_echoes) is a Gaussian-weighted mean (std ``width`` lags,
    at least ``step``) of the curve around k * spacing, smooth in ``spacing``
    (linear interpolation would leave kinks at every grid point). Near the end of
    the curve the weights run out, so an echo fades out of the features as it
    leaves the range. For an echo train the heights fall off as the repeats'
    gain, whatever the spacing: (n_echoes,).
    """
    lags = step * np.arange(curve.shape[0], dtype=np.float32)
    centres = spacing * np.arange(1, n_echoes + 1, dtype=np.float32)
    weights = jnp.exp(-0.5 * ((lags[None, :] - centres[:, None]) / width) ** 2)
    return step * (weights @ curve) / (np.sqrt(2.0 * np.pi) * width)
