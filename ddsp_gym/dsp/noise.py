"""White noise from a counter-based hash (pure JAX)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

_LEVELS = 1 << 16  # 16-bit resolution: two noise samples from each 32-bit word


def _mix32(x: Array) -> Array:
    """A bijective 32-bit integer hash: C. Wellons' "lowbias32" (hash-prospector, 2018).

    Two xor-shift-multiply rounds: every output bit depends on every input bit, so
    the hashes of consecutive integers are statistically independent words.
    """
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * jnp.uint32(0x846CA68B)
    return x ^ (x >> 16)


def white_noise(key: Array, n: int) -> Array:
    """Uniform white noise in (-1, 1), shape (n,), reproducible from ``key``.

    The key gives two 32-bit seeds; word i is mix(mix(i + seed0) ^ seed1), and each
    word gives two samples (its high and low 16 bits). Hashing a counter costs a
    few integer operations a sample, where ``jax.random.uniform``'s Threefry
    rounds would dominate a noisy voice's render time on CPU. Noise for audio needs
    no cryptographic strength: tests/test_dsp.py checks it is flat, uncorrelated
    and different for different keys. The 65,536 levels, centred in their bins
    (mean 0), are finer than 16-bit audio's.
    """
    seed = jax.random.bits(key, (2,), jnp.uint32)
    counter = jnp.arange((n + 1) // 2, dtype=jnp.uint32)
    words = _mix32(_mix32(counter + seed[0]) ^ seed[1])
    levels = jnp.concatenate([words >> 16, words & (_LEVELS - 1)])[:n]
    return (levels.astype(jnp.float32) + 0.5) * (2.0 / _LEVELS) - 1.0
