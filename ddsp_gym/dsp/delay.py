"""Fractional delays and feedback echoes (pure JAX, unbatched).

A feedback delay line y = x + g * y(t - T) has the impulse response
sum_k g^k delta(t - kT). Rather than run the recursion sample by sample (a scan
carrying a buffer as long as the delay, whose gradient would store that buffer
at every step), the echoes are written in closed form as taps of a
band-limited fractional-delay kernel and applied by FFT convolution.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.convolution import fft_convolve

KERNEL_HALF_WIDTH = 16  # taps either side of a fractional delay


def fractional_delay_kernel(frac: Array, half_width: int = KERNEL_HALF_WIDTH) -> Array:
    """Hann-windowed sinc for a delay of ``frac`` in [0, 1) samples.

    Returns (..., 2 * half_width) taps for the sample offsets
    j = -half_width + 1 .. half_width, i.e. tap j sits at integer delay
    floor(delay) + j. At ``frac`` = 0 it is an exact unit impulse at j = 0, and
    the taps at the window's edge are zero, so the response is continuous (and
    smooth) in the delay as it crosses integer samples.
    """
    j = np.arange(-half_width + 1, half_width + 1, dtype=np.float32)
    u = j - jnp.asarray(frac, jnp.float32)[..., None]
    window = 0.5 + 0.5 * jnp.cos(jnp.pi * jnp.clip(u / half_width, -1.0, 1.0))
    return jnp.sinc(u) * window


def echo_impulse_response(
    n: int, delay_samples: Array | float, feedback: Array | float, n_echoes: int
) -> Array:
    """Impulse response (n,) of the wet path of a feedback delay: sum_k g^(k-1) delta(t - kT).

    Args:
        n: length of the response in samples; echoes beyond it are dropped.
        delay_samples: echo spacing T in samples (fractional, >= 1).
        feedback: g, the gain of each further repeat (|g| < 1 for a decaying tail).
        n_echoes: static number of echoes to write (k = 1 .. n_echoes); choose
            ceil(n / min delay) to cover the whole response.
    Returns:
        (n,) response with the first echo at T with gain 1, the k-th at kT with g^(k-1).
    """
    k = np.arange(1, n_echoes + 1, dtype=np.float32)
    positions = k * jnp.maximum(delay_samples, 1.0)
    base = jnp.floor(positions)
    taps = fractional_delay_kernel(positions - base)  # (n_echoes, 2 * half_width)
    # g^(k-1) as a running product: power()'s gradient is NaN at g = 0.
    g = jnp.asarray(feedback, jnp.float32)
    gains = jnp.cumprod(jnp.concatenate([jnp.ones(1), jnp.full(n_echoes - 1, g)]))
    offsets = np.arange(-KERNEL_HALF_WIDTH + 1, KERNEL_HALF_WIDTH + 1)
    index = base.astype(jnp.int32)[:, None] + offsets[None, :]
    values = gains[:, None] * taps
    # Out-of-range indices (taps past the end, or before 0 for T < half_width) drop out.
    valid = (index >= 0) & (index < n)
    return jnp.zeros(n).at[jnp.where(valid, index, n)].add(values, mode="drop")


def feedback_delay(
    x: Array,
    delay_samples: Array | float,
    feedback: Array | float,
    mix: Array | float,
    n_echoes: int,
) -> Array:
    """Delay effect: (1 - mix) * x + mix * (x convolved with the echo response), (n,) -> (n,)."""
    wet = fft_convolve(x, echo_impulse_response(x.shape[0], delay_samples, feedback, n_echoes))
    return (1.0 - mix) * x + mix * wet
