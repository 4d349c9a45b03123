"""The space the functional core reports: gymnax's ``Box`` interface, without gymnax.

JAX RL libraries written for gymnax read ``low``, ``high``, ``shape`` and ``dtype`` and
call ``sample(key)``; anything that is not a ``Discrete`` they treat as continuous.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array


@dataclass(frozen=True)
class Box:
    """Real vectors with every entry in [low, high]."""

    low: float
    high: float
    shape: tuple[int, ...]
    dtype: Any = jnp.float32

    def sample(self, rng: Array) -> Array:
        return jax.random.uniform(rng, self.shape, self.dtype, self.low, self.high)

    def contains(self, x: Array) -> Array:
        x = jnp.asarray(x)
        return (x.shape == self.shape) & jnp.all(x >= self.low) & jnp.all(x <= self.high)
