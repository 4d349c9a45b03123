"""Envelope generators (pure JAX, unbatched)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
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


@jax.custom_jvp
def _softplus(x: Array) -> Array:
    """log(1 + exp(x)), as ``jax.nn.softplus`` computes it, with a cheaper derivative.

    The derivative, sigmoid(x), is formed from the exp(-|x|) the value already took;
    ``jax.nn.softplus`` (a logaddexp) takes more exps and selects in its derivative.
    """
    return _softplus_of(x, jnp.exp(-jnp.abs(x)))


def _softplus_of(x: Array, e: Array) -> Array:
    """softplus(x) from e = exp(-|x|): max(x, 0) + log(1 + e), exact for either sign."""
    return jnp.maximum(x, 0.0) + jnp.log1p(e)


@_softplus.defjvp
def _softplus_jvp(primals: tuple, tangents: tuple) -> tuple[Array, Array]:
    (x,), (dx,) = primals, tangents
    e = jnp.exp(-jnp.abs(x))
    sigmoid = jnp.where(x >= 0, 1.0, e) / (1.0 + e)
    return _softplus_of(x, e), sigmoid * dx


def smooth_unit_clip(x: Array, corner: float) -> Array:
    """clip(x, 0, 1) with its two corners rounded by softplus over about ``corner`` (level units).

    ``corner * (softplus(x / corner) - softplus((x - 1) / corner))``: equal to
    the clip away from the corners, smooth everywhere, within 0.7 * ``corner`` of it.
    The function is point-symmetric, f(x) = 1 - f(1 - x), so above x = 1/2 it is
    evaluated as 1 - f(1 - x): the same value without the difference of two large
    numbers (which would leave float32 rounding of ~1e-5 on the plateau), and with the
    branch chosen before the softplus, not after, two softplus a sample instead of four.
    """
    x = jnp.asarray(x, jnp.float32)
    lower_half = x < 0.5
    u = jnp.where(lower_half, x, 1.0 - x)
    near_zero = corner * (_softplus(u / corner) - _softplus((u - 1.0) / corner))
    return jnp.where(lower_half, near_zero, 1.0 - near_zero)


def attack_release(
    n: int,
    sample_rate: int,
    attack_s: Array | float,
    release_s: Array | float,
    gate_s: float,
    corner: float = 0.02,
) -> Array:
    """Linear attack to 1, hold while the gate is open, linear release to 0; shape (n,).

    The envelope of a synth voice with sustain at full level. Corners are
    rounded (:func:`smooth_unit_clip`), so the envelope, and any feature of the
    sound, is smooth in ``attack_s`` and ``release_s``: a hard corner moves
    sample by sample as a time knob turns, which makes spectrogram losses
    ragged on the scale of one sample. Times in seconds (clamped to >= 1 ms).

    ``gate_s`` is a Python number, not a traced value: it splits the samples
    into the held and the released part before tracing, so each sample takes
    only its own part's softplus (one or two, not three), where computing both
    parts for every sample and selecting after pays for both.
    """
    t = np.arange(n, dtype=np.float32) / np.float32(sample_rate)  # a constant of the trace
    gate = np.float32(gate_s)
    held_samples = int(np.count_nonzero(t < gate))
    attack = jnp.maximum(attack_s, 1e-3)
    release = jnp.maximum(release_s, 1e-3)
    held = smooth_unit_clip(t[:held_samples] / attack, corner)
    # Only the foot of the release is rounded, so the level is continuous at the gate.
    fall = 1.0 - (t[held_samples:] - gate) / release
    released = smooth_unit_clip(gate / attack, corner) * corner * _softplus(fall / corner)
    return jnp.concatenate([held, released])


def exp_decay(n: int, sample_rate: int, time_constant_s: Array | float) -> Array:
    """Exponential decay exp(-t / tau), shape (n,), from 1 at t = 0.

    ``time_constant_s`` (tau) in seconds, clamped to >= 1 ms; the level falls
    by 8.69 dB per tau.
    """
    return exp_decay_at(jnp.arange(n, dtype=jnp.float32) / sample_rate, time_constant_s)


def exp_decay_at(t: Array, time_constant_s: Array | float) -> Array:
    """:func:`exp_decay` at the times ``t`` in seconds (any shape), e.g. control points."""
    return jnp.exp(-t / jnp.maximum(time_constant_s, 1e-3))


def end_fade(n: int, sample_rate: int, release_s: float) -> Array:
    """Raised-cosine fade to 0 over the last ``release_s`` seconds of n samples, (n,): a
    note's release that no knob moves (at least one sample long)."""
    t = jnp.arange(n, dtype=jnp.float32) / sample_rate
    to_end = jnp.clip((n / sample_rate - t) / max(release_s, 1.0 / sample_rate), 0.0, 1.0)
    return 0.5 - 0.5 * jnp.cos(jnp.pi * to_end)


def control_times(n: int, sample_rate: int, hop: int) -> Array:
    """Times in seconds of control points every ``hop`` samples covering n samples.

    Shape (ceil(n / hop) + 1,): points at samples 0, hop, 2 hop, ..., one at or past
    the last sample, so :func:`upsample_linear` has both ends of every segment.
    """
    return jnp.arange(-(-n // hop) + 1, dtype=jnp.float32) * (hop / sample_rate)


def upsample_linear(values: Array, hop: int, n: int) -> Array:
    """Control-rate ``values`` at :func:`control_times` -> (n,) by linear interpolation.

    Sample k * hop + j gets values[k] + (j / hop) (values[k + 1] - values[k]),
    so ``hop = 1`` returns ``values[:n]`` unchanged.
    """
    fraction = jnp.arange(hop, dtype=jnp.float32) / hop
    start, step = values[:-1, None], (values[1:] - values[:-1])[:, None]
    return (start + step * fraction).reshape(-1)[:n]
