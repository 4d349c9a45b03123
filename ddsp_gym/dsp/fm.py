"""Frequency/phase-modulation operators (pure JAX, unbatched).

Phases are in cycles (from :func:`ddsp_gym.dsp.phase_accumulator`), modulation
in radians of phase.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array


def pm_operator(phase: Array, modulation: Array | float) -> Array:
    """Phase-modulated sine: sin(2 pi phase + modulation), shape of ``phase`` (n,).

    With ``modulation = I sin(2 pi fm t)`` this is the FM of Chowning (1973), whose
    spectrum has lines at fc + k fm with amplitudes J_k(I).
    """
    return jnp.sin(2.0 * jnp.pi * phase + modulation)


def feedback_operator(phase: Array, feedback: Array | float) -> Array:
    """A sine operator that phase-modulates itself, shape (n,).

    m[k] = sin(2 pi phase[k] + feedback * (m[k-1] + m[k-2]) / 2). Averaging the
    two previous outputs damps the period-2 "hunting" of plain one-sample
    feedback at high settings (the DX7 operator feeds back the same two-sample
    average). ``feedback`` in radians per unit output; 0 gives a plain sine, about
    1.5 a saw-like wave. The output is a sine of something, so it stays in
    [-1, 1] for any feedback.
    """

    def tick(carry, ph):
        m1, m2 = carry
        m = jnp.sin(2.0 * jnp.pi * ph + feedback * 0.5 * (m1 + m2))
        return (m, m1), m

    zero = jnp.zeros((), phase.dtype)
    _, out = jax.lax.scan(tick, (zero, zero), phase)
    return out
