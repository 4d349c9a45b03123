"""FFT convolution (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array


def fft_size(n: int) -> int:
    """Smallest power of two >= ``n``."""
    return 1 << max(n - 1, 1).bit_length()


def fft_convolve(x: Array, h: Array, x_spectrum: Array | None = None) -> Array:
    """Linear convolution of (n,) ``x`` with (m,) ``h``, truncated to (n,).

    Zero-padded to a power of two >= n + m - 1, so no circular wrap-around: equals
    ``numpy.convolve(x, h)[:n]``. Costs O(N log N) however long ``h`` is, where a
    direct FIR would cost O(n m). ``x_spectrum``: ``rfft(x, that size)`` when it is
    known in advance (a fixed input's, taken once), which spares one of the three FFTs.
    """
    n = x.shape[0]
    size = fft_size(n + h.shape[0] - 1)
    if x_spectrum is None:
        x_spectrum = jnp.fft.rfft(x, size)
    elif x_spectrum.shape != (size // 2 + 1,):
        raise ValueError(f"x_spectrum has shape {x_spectrum.shape}; expected ({size // 2 + 1},)")
    return jnp.fft.irfft(x_spectrum * jnp.fft.rfft(h, size), size)[:n]


def gaussian_smooth(x: Array, sigma: float) -> Array:
    """Convolve (n,) ``x`` with a unit-area Gaussian of std ``sigma`` samples (static), (n,).

    Applied in the frequency domain as the Gaussian's transform
    exp(-2 pi^2 sigma^2 f^2) (f in cycles per sample), zero-padded so nothing
    wraps around: a zero-phase low-pass with -3 dB near 0.13 / sigma cycles per sample.
    """
    n = x.shape[0]
    size = fft_size(n + int(8 * sigma) + 1)
    freqs = np.fft.rfftfreq(size)
    weight = np.exp(-2.0 * (np.pi * sigma * freqs) ** 2).astype(np.float32)
    return jnp.fft.irfft(jnp.fft.rfft(x, size) * weight, size)[:n]
