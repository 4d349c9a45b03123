"""A smooth spectral rolloff (pure JAX, unbatched)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.features.spectral import EPS


def soft_spectral_rolloff(
    spectrum: Array, freqs: np.ndarray, fraction: float = 0.85, softness: float = 0.01
) -> Array:
    """Frequency in Hz below which ``fraction`` of the spectrum lies, smooth in the spectrum.

    The hard rolloff counts the bins whose cumulative share is below ``fraction``;
    here each bin counts by a sigmoid of (fraction - share) / ``softness``, so
    the result (and its gradient) moves continuously as energy crosses bin
    boundaries, where interpolating between bins leaves kinks. For ``softness``
    -> 0 it tends to the bin-edge rolloff. Shape (...,) for a spectrum (..., n_bins).
    """
    share = jnp.cumsum(spectrum, axis=-1) / (spectrum.sum(-1, keepdims=True) + EPS)
    widths = np.diff(freqs, prepend=freqs[0]).astype(np.float32)  # bin k spans f[k-1]..f[k]
    below = jax.nn.sigmoid((fraction - share) / softness)
    return freqs[0] + jnp.sum(below * widths, axis=-1)
