"""Memoryless waveshapers (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.units import db_to_amp


def tanh_drive(x: Array, drive_db: Array | float) -> Array:
    """Symmetric soft clipper tanh(g x) with pre-gain g = 10^(drive_db / 20); any shape.

    An odd function, so a sine input gains only odd harmonics; small signals
    pass with gain g, large ones saturate towards +-1.
    """
    return jnp.tanh(db_to_amp(drive_db) * x)
