"""Envelope generators (pure JAX, unbatched)."""

from __future__ import annotations

import jax.numpy as jnp
from jax import Array


def adsr(
    n: int,
    sample_rate: int,
    attack_s: Array | float,
    decay_s: Array | float,
    sustain: Array | float,
    release_s: Array | float,
    gate_s: Array | float,
) -> Array:
    """Linear-segment ADSR envelope, shape (n,), values in [0, 1].

    The gate opens at t = 0 and closes at ``gate_s`` seconds. The level rises
    0 -> 1 over ``attack_s``, falls 1 -> ``sustain`` over ``decay_s``, holds,
    and after the gate closes falls from wherever it is to 0 over ``release_s``.
    Times in seconds (clamped to >= 1 ms), sustain a linear level in [0, 1].

    Written in closed form over the time axis (no scan), so it is
    differentiable in every knob almost everywhere: each segment is a smooth
    function of the knobs and segments meet continuously.
    """
    t = jnp.arange(n, dtype=jnp.float32) / sample_rate
    attack = jnp.maximum(attack_s, 1e-3)
    decay = jnp.maximum(decay_s, 1e-3)
    release = jnp.maximum(release_s, 1e-3)
    sustain = jnp.clip(sustain, 0.0, 1.0)

    def gate_on_level(time: Array) -> Array:
        rising = time / attack
        falling = 1.0 - (1.0 - sustain) * (time - attack) / decay
        return jnp.where(time < attack, rising, jnp.where(time < attack + decay, falling, sustain))

    level_at_gate_off = gate_on_level(jnp.asarray(gate_s, jnp.float32))
    released = level_at_gate_off * jnp.maximum(0.0, 1.0 - (t - gate_s) / release)
    return jnp.clip(jnp.where(t < gate_s, gate_on_level(t), released), 0.0, 1.0)


def exp_decay(n: int, sample_rate: int, time_constant_s: Array | float) -> Array:
    """Exponential decay exp(-t / tau), shape (n,), from 1 at t = 0.

    ``time_constant_s`` (tau) in seconds, clamped to >= 1 ms; the level falls
    by 8.69 dB per tau.
    """
    t = jnp.arange(n, dtype=jnp.float32) / sample_rate
    return jnp.exp(-t / jnp.maximum(time_constant_s, 1e-3))
