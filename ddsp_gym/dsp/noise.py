"""Noise sources (pure JAX, unbatched)."""

from __future__ import annotations

import jax
from jax import Array


def white_noise(key: Array, n: int) -> Array:
    """Uniform white noise in [-1, 1), shape (n,), reproducible from ``key``."""
    return jax.random.uniform(key, (n,), minval=-1.0, maxval=1.0)
