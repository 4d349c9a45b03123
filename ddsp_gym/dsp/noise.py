"""Noise sources (pure JAX, unbatched)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

_LEVELS = 1 << 16  # 16-bit resolution: two noise samples from each 32-bit random word


def white_noise(key: Array, n: int) -> Array:
    """Uniform white noise in (-1, 1), shape (n,), reproducible from ``key``.

    Each 32-bit word from ``jax.random.bits`` gives two samples (its high and low
    16 bits), so a render draws half the words ``jax.random.uniform`` would: the
    counter-based generator is most of a noisy voice's cost on CPU. The 65,536
    levels, centred in their bins (mean 0), are finer than 16-bit audio's.
    """
    words = jax.random.bits(key, ((n + 1) // 2,), jnp.uint32)
    levels = jnp.concatenate([words >> 16, words & (_LEVELS - 1)])[:n]
    return (levels.astype(jnp.float32) + 0.5) * (2.0 / _LEVELS) - 1.0
