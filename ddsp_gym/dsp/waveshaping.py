"""Memoryless waveshapers (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.filters import biquad
from ddsp_gym.dsp.units import db_to_amp


def tanh_drive(x: Array, drive_db: Array | float) -> Array:
    """Symmetric soft clipper tanh(g x) with pre-gain g = 10^(drive_db / 20); any shape.

    An odd function, so a sine input gains only odd harmonics; small signals
    pass with gain g, large ones saturate towards +-1.
    """
    return jnp.tanh(db_to_amp(drive_db) * x)


def sox_overdrive(x: Array, drive_db: Array | float) -> Array:
    """sox's ``overdrive`` (colour 0): 0.5 x + 0.75 DC-block(c(g x)), g = 10^(drive_db / 20).

    c(u) = u - u^3 / 3 for |u| <= 1, else +-2/3: a cubic soft clipper that reaches its
    ceiling at |u| = 1 with zero slope, so the knee is sharper than tanh's and, with half
    the dry signal added back, the same drive sounds less driven than tanh(g x): a tanh
    plant fits sox's settings a few dB high. The DC blocker is sox's one-pole
    y[n] = c[n] - c[n-1] + 0.995 y[n-1] (about 13 Hz at 16 kHz). From overdrive.c (sox
    14.4); it reproduces sox's output to float precision. (n,) -> (n,).
    """
    u = db_to_amp(drive_db) * x
    # jnp.clip before the cubic: the cubic's slope is 0 at |u| = 1, so the curve and its
    # gradient are continuous at the ceiling.
    u = jnp.clip(u, -1.0, 1.0)
    shaped = u - u**3 / 3.0
    blocked = biquad(shaped, jnp.array([1.0, -1.0, 0.0]), jnp.array([1.0, -0.995, 0.0]))
    return 0.5 * x + 0.75 * blocked
