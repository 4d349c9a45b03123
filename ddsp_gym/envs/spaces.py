"""The space the functional core reports: gymnax's ``Box`` interface, without gymnax.

JAX RL libraries written for gymnax read ``low``, ``high``, ``shape`` and ``dtype`` and
call ``sample(key)``; anything that is not a ``Discrete`` they treat as continuous.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
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


def checked_action(action: Any, shape: tuple[int, ...], knob_names: Sequence[str]) -> np.ndarray:
    """``action`` as float32, refused (ValueError naming the knob) if misshapen or not
    finite; not clipped here (every path clips it to [-1, 1]).

    Checked with Python's math on the action's few numbers: right after a jitted step,
    each numpy call costs several times its isolated time (cold caches).
    """
    array = np.asarray(action, dtype=np.float32)
    if array.shape != shape:
        raise ValueError(f"action has shape {array.shape}; this env expects {shape}")
    values = array.tolist()
    if not all(map(math.isfinite, values)):
        i = next(i for i, v in enumerate(values) if not math.isfinite(v))
        raise ValueError(
            f"action[{i}] ({knob_names[i]}) is {values[i]}: actions must be finite numbers "
            "in [-1, 1]"
        )
    return array
