"""Biquad filters: RBJ cookbook coefficients and a ``lax.scan`` runner.

Coefficient functions take the cutoff/centre frequency in Hz, the quality
factor Q (dimensionless) and the sample rate in Hz, and return ``(b, a)`` with
``b = (b0, b1, b2)`` and ``a = (1, a1, a2)`` normalised so ``a[0] == 1``, the
layout ``scipy.signal.lfilter`` takes. Inputs may be scalars (one filter) or
arrays of shape (n,) (one filter per sample, giving b and a of shape (n, 3)).

Formulas: R. Bristow-Johnson, "Cookbook formulae for audio EQ biquad filter
coefficients" (W3C Audio EQ Cookbook).

Stability for any knob value: the frequency is clamped to
[``MIN_FREQ_HZ``, ``MAX_FREQ_RATIO`` * sample_rate] and Q to
[``MIN_Q``, ``MAX_Q``]. For 0 < w0 < pi and Q > 0 every RBJ design has
|a2| = (1 - alpha) / (1 + alpha) < 1 and |a1| < 1 + a2, the conditions for both
poles to lie strictly inside the unit circle.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.oscillators import cosine, sine

MIN_FREQ_HZ = 10.0
MAX_FREQ_RATIO = 0.45
MIN_Q = 0.1
MAX_Q = 40.0


def _clamped(freq_hz: Array | float, q: Array | float, sample_rate: int) -> tuple[Array, Array]:
    """(frequency, Q) as float32, clamped to the ranges every design here accepts."""
    freq = jnp.clip(jnp.asarray(freq_hz, jnp.float32), MIN_FREQ_HZ, MAX_FREQ_RATIO * sample_rate)
    return freq, jnp.clip(jnp.asarray(q, jnp.float32), MIN_Q, MAX_Q)


def _cos_alpha(freq_hz: Array | float, q: Array | float, sample_rate: int) -> tuple[Array, Array]:
    """cos(w0) and alpha = sin(w0) / (2 Q) for w0 = 2 pi f / sr, f and Q clamped.

    Sine and cosine are taken of f / sr in cycles (``oscillators.sine``): cheap
    enough for per-sample coefficients of time-varying filters.
    """
    freq, q = _clamped(freq_hz, q, sample_rate)
    cycles = freq / sample_rate
    return cosine(cycles), sine(cycles) / (2.0 * q)


class Biquad(NamedTuple):
    """Normalised biquad coefficients (a0 == 1) as five separate arrays.

    Each field is a scalar (one filter) or (n,) (one filter per sample). Per-sample
    filters run faster from separate arrays than from the (n, 3) stacks of the
    scipy layout: the stacks' interleaved layout costs more than the filter's
    arithmetic, most of all in the gradient.
    """

    b0: Array
    b1: Array
    b2: Array
    a1: Array
    a2: Array

    @classmethod
    def from_ba(cls, b: Array, a: Array) -> Biquad:
        """From the scipy layout: b = (b0, b1, b2), a = (1, a1, a2), each (3,) or (n, 3)."""
        b, a = jnp.asarray(b), jnp.asarray(a)
        return cls(b[..., 0], b[..., 1], b[..., 2], a[..., 1], a[..., 2])

    def ba(self) -> tuple[Array, Array]:
        """The scipy layout: (b, a), each (..., 3), with a[..., 0] == 1."""
        b = jnp.stack(jnp.broadcast_arrays(self.b0, self.b1, self.b2), axis=-1)
        a1, a2 = jnp.broadcast_arrays(self.a1, self.a2)
        return b, jnp.stack([jnp.ones_like(a1), a1, a2], axis=-1)


def _normalise(b0, b1, b2, a0, a1, a2) -> Biquad:
    return Biquad(b0 / a0, b1 / a0, b2 / a0, a1 / a0, a2 / a0)


def lowpass(freq_hz: Array | float, q: Array | float, sample_rate: int) -> Biquad:
    """RBJ 2nd-order low-pass as a :class:`Biquad` (the fast form for per-sample cutoffs)."""
    cos, alpha = _cos_alpha(freq_hz, q, sample_rate)
    return _normalise((1 - cos) / 2, 1 - cos, (1 - cos) / 2, 1 + alpha, -2 * cos, 1 - alpha)


def lowpass_coeffs(freq_hz: Array | float, q: Array | float, sample_rate: int):
    """RBJ 2nd-order low-pass. Returns (b, a), each (..., 3)."""
    return lowpass(freq_hz, q, sample_rate).ba()


def highpass_coeffs(freq_hz: Array | float, q: Array | float, sample_rate: int):
    """RBJ 2nd-order high-pass. Returns (b, a), each (..., 3)."""
    cos, alpha = _cos_alpha(freq_hz, q, sample_rate)
    return _normalise((1 + cos) / 2, -(1 + cos), (1 + cos) / 2, 1 + alpha, -2 * cos, 1 - alpha).ba()


def bandpass_coeffs(freq_hz: Array | float, q: Array | float, sample_rate: int):
    """RBJ band-pass with 0 dB peak gain. Returns (b, a), each (..., 3)."""
    cos, alpha = _cos_alpha(freq_hz, q, sample_rate)
    zero = jnp.zeros_like(alpha)
    return _normalise(alpha, zero, -alpha, 1 + alpha, -2 * cos, 1 - alpha).ba()


def peaking_coeffs(
    freq_hz: Array | float, q: Array | float, gain_db: Array | float, sample_rate: int
):
    """RBJ peaking EQ with ``gain_db`` at the centre frequency. Returns (b, a)."""
    cos, alpha = _cos_alpha(freq_hz, q, sample_rate)
    amp = jnp.exp(jnp.asarray(gain_db, jnp.float32) * (math.log(10.0) / 40.0))
    return _normalise(
        1 + alpha * amp, -2 * cos, 1 - alpha * amp, 1 + alpha / amp, -2 * cos, 1 - alpha / amp
    ).ba()


def biquad(x: Array, b: Array, a: Array) -> Array:
    """Run a biquad over ``x`` (transposed direct form II, zero initial state).

    Args:
        x: (n,) input signal.
        b: (3,) feed-forward coefficients, or (n, 3) for a time-varying filter.
        a: (3,) feedback coefficients with a[0] == 1, or (n, 3).
    Returns:
        (n,) filtered signal; equals ``scipy.signal.lfilter(b, a, x)`` for
        constant coefficients.
    """
    return run_biquad(x, Biquad.from_ba(b, a))


def run_biquad(x: Array, coeffs: Biquad) -> Array:
    """Run a :class:`Biquad` (scalar or per-sample (n,) fields) over ``x`` (n,); see biquad.

    Computes transposed direct form II, y_n = b0_n x_n + s1_n with
    s1_{n+1} = b1_n x_n - a1_n y_n + s2_n and s2_{n+1} = b2_n x_n - a2_n y_n, split
    in two: the feed-forward part f_n = b0_n x_n + b1_{n-1} x_{n-1} + b2_{n-2} x_{n-2}
    is elementwise (no loop), and only the all-pole part runs sample by sample
    (:func:`_all_pole`). Same filter, time-varying coefficients included; the loop
    then reads 3 arrays per sample instead of 6 (1 for constant coefficients, whose
    feedback stays scalar), which is what a batched sample loop costs on CPU.
    Against a float64 reference this split rounds no worse than the one-loop form.

    A block-wise form (one matmul per block's zero-state response, a scan over
    blocks) and a parallel prefix scan (lax.associative_scan) were tried and
    rejected: their float32 rounding made rewards rougher in the knobs (the
    finite-difference gradient check of tests/test_envs.py).
    """
    n = x.shape[0]
    b0, b1, b2, a1, a2 = (_per_sample_or_scalar(c, n, x.dtype) for c in coeffs)
    feedforward = b0 * x + _delayed(b1 * x, 1) + _delayed(b2 * x, 2)
    if a1.ndim != a2.ndim:
        a1, a2 = (jnp.broadcast_to(c, (n,)) for c in (a1, a2))
    return _all_pole(feedforward, a1, a2)


def _per_sample_or_scalar(coeff: Array | float, n: int, dtype) -> Array:
    coeff = jnp.asarray(coeff, dtype)
    if coeff.shape not in ((), (n,)):
        raise ValueError(
            f"biquad coefficients must be scalars or one per sample, shape ({n},); "
            f"got shape {coeff.shape}"
        )
    return coeff


def _delayed(v: Array, k: int) -> Array:
    """v delayed by k samples (zeros shifted in)."""
    return jnp.pad(v[:-k], (k, 0))


def _all_pole_scan(f: Array, a1: Array, a2: Array) -> Array:
    """y_n = f_n + s1_n, s1_{n+1} = s2_n - a1_n y_n, s2_{n+1} = -a2_n y_n.

    a1 and a2 are both (n,) or both scalars; scalars stay loop constants rather
    than arrays the loop would read every sample.
    """
    time_varying = a1.ndim == 1

    def tick(state, inputs):
        s1, s2 = state
        fn, a1n, a2n = inputs if time_varying else (inputs, a1, a2)
        y = fn + s1
        return (s2 - a1n * y, -a2n * y), y

    zero = jnp.zeros((), f.dtype)
    _, y = jax.lax.scan(tick, (zero, zero), (f, a1, a2) if time_varying else f)
    return y


@jax.custom_vjp
def _all_pole(f: Array, a1: Array, a2: Array) -> Array:
    return _all_pole_scan(f, a1, a2)


def _all_pole_fwd(f, a1, a2):
    y = _all_pole_scan(f, a1, a2)
    return y, (a1, a2, y)


def _all_pole_vjp(residuals, g: Array):
    """Adjoint of the all-pole recursion, derived by hand.

    The adjoint u_n = dL/dy_n (total) obeys u_n = g_n - a1_n u_{n+1} - a2_n u_{n+2}:
    the same all-pole filter run backwards in time (one loop, where autodiff would
    replay the forward loop). Then dL/df_n = u_n, dL/da1_n = -y_n u_{n+1} and
    dL/da2_n = -y_n u_{n+2} (u beyond the end is 0), summed over n for scalars.
    """
    a1, a2, y = residuals
    time_varying = a1.ndim == 1

    def tick(state, inputs):
        u1, u2 = state  # u_{n+1}, u_{n+2}
        gn, a1n, a2n = inputs if time_varying else (inputs, a1, a2)
        u = gn - a1n * u1 - a2n * u2
        return (u, u1), u

    zero = jnp.zeros((), g.dtype)
    _, u = jax.lax.scan(tick, (zero, zero), (g, a1, a2) if time_varying else g, reverse=True)
    grad_a1 = -y * jnp.pad(u[1:], (0, 1))
    grad_a2 = -y * jnp.pad(u[2:], (0, 2))
    if not time_varying:
        grad_a1, grad_a2 = jnp.sum(grad_a1), jnp.sum(grad_a2)
    return u, grad_a1, grad_a2


_all_pole.defvjp(_all_pole_fwd, _all_pole_vjp)


def pole_radius(a: Array) -> Array:
    """Largest pole magnitude of a biquad with feedback coefficients ``a`` (..., 3)."""
    a1, a2 = a[..., 1], a[..., 2]
    disc = a1 * a1 - 4.0 * a2
    # Complex pair: |p| = sqrt(a2). Real pair: the larger |root| of z^2 + a1 z + a2.
    real_root = (jnp.abs(a1) + jnp.sqrt(jnp.maximum(disc, 0.0))) / 2.0
    return jnp.where(disc < 0, jnp.sqrt(jnp.maximum(a2, 0.0)), real_root)


class SVFLowpass(NamedTuple):
    """Coefficients of :func:`run_svf_lowpass`, each a scalar or (n,) (one per sample).

    From A. Simper's linear trapezoidal SVF: with g = tan(pi f / fs) and k = 1 / Q,
    a1 = 1 / (1 + g (g + k)), a2 = g a1, a3 = g a2.
    """

    a1: Array
    a2: Array
    a3: Array


def svf_lowpass_coeffs(freq_hz: Array | float, q: Array | float, sample_rate: int) -> SVFLowpass:
    """:class:`SVFLowpass` for a cutoff (scalar or (n,)) and Q, clamped like the RBJ designs."""
    freq, q = _clamped(freq_hz, q, sample_rate)
    half_cycles = freq / (2.0 * sample_rate)
    g = sine(half_cycles) / cosine(half_cycles)  # tan(pi f / fs), cheaper than jnp.tan
    a1 = 1.0 / (1.0 + g * (g + 1.0 / q))
    a2 = g * a1
    return SVFLowpass(a1, a2, g * a2)


def svf_lowpass(x: Array, freq_hz: Array | float, q: Array | float, sample_rate: int) -> Array:
    """2nd-order low-pass as a trapezoidal-integrated state-variable filter.

    The same transfer function as :func:`lowpass_coeffs` (both are the bilinear
    transform, prewarped at the cutoff, of 1 / (s^2 + s/Q + 1)), computed in
    the form of A. Simper, "Linear Trapezoidal Integrated SVF" (Cytomic, 2013).
    Its coefficients are g = tan(pi f / fs) and 1/Q, not numbers near +-2 and 1
    as in direct form, so at low cutoffs float32 still resolves small changes
    of the cutoff: the output, and a loss on it, stay smooth in the knobs.

    Args:
        x: (n,) input.
        freq_hz: cutoff, scalar or (n,) (time-varying); clamped like the RBJ designs.
        q: quality factor, scalar or (n,).
    Returns:
        (n,) low-passed signal.
    """
    return run_svf_lowpass(x, svf_lowpass_coeffs(freq_hz, q, sample_rate))


def run_svf_lowpass(x: Array, coeffs: SVFLowpass) -> Array:
    """Run the SVF low-pass of ``coeffs`` over ``x`` (n,) from zero state; see svf_lowpass."""
    n = x.shape[0]
    return _svf(x, *(jnp.broadcast_to(c, (n,)).astype(x.dtype) for c in coeffs))


def svf_lowpass_from(
    x: Array, coeffs: SVFLowpass, state: tuple[Array, Array]
) -> tuple[Array, tuple[Array, Array]]:
    """The SVF low-pass of :func:`run_svf_lowpass`, started from ``state`` and returning the
    state after the last sample: a stream filtered block by block equals one long run.

    Args:
        x: (n,) input block.
        coeffs: :class:`SVFLowpass` coefficients, each scalar or (n,).
        state: the two integrator states (ic1, ic2), scalars; zeros for a fresh filter.
    Returns:
        ((n,) output, (ic1, ic2) after the block). Plain autodiff through the scan: a
        block is short, so its tape is small.
    """
    n = x.shape[0]
    a1, a2, a3 = (jnp.broadcast_to(c, (n,)).astype(x.dtype) for c in coeffs)
    new_state, y = jax.lax.scan(_svf_tick, state, (x, a1, a2, a3))
    return y, new_state


def _svf_tick(state, inputs):
    """One sample of the SVF: (ic1, ic2), (x, a1, a2, a3) -> (next (ic1, ic2), y)."""
    ic1, ic2 = state
    xn, c1, c2, c3 = inputs
    v3 = xn - ic2
    v1 = c1 * ic1 + c2 * v3
    v2 = ic2 + c2 * ic1 + c3 * v3
    return (2.0 * v1 - ic1, 2.0 * v2 - ic2), v2


def _svf_scan(x: Array, a1: Array, a2: Array, a3: Array) -> Array:
    """The SVF recursion's output y (n,)."""
    zero = jnp.zeros((), x.dtype)
    return jax.lax.scan(_svf_tick, (zero, zero), (x, a1, a2, a3))[1]


def _svf_trajectory(x: Array, a1: Array, a2: Array, a3: Array) -> Array:
    """The SVF's output and state before each sample, (n, 3) rows (y, ic1, ic2), for the adjoint.

    The loop writes one stacked row per sample: on XLA:CPU each array a batched loop
    writes costs a kernel launch per sample, so one stacked output costs one launch
    where three separate outputs would cost three. y comes from the loop, with the
    plain render's arithmetic (jitted, a render with gradients equals one without bit
    for bit).
    """

    def tick(state, inputs):
        new, y = _svf_tick(state, inputs)
        return new, jnp.stack([y, *state])

    zero = jnp.zeros((), x.dtype)
    return jax.lax.scan(tick, (zero, zero), (x, a1, a2, a3))[1]


@jax.custom_vjp
def _svf(x: Array, a1: Array, a2: Array, a3: Array) -> Array:
    return _svf_scan(x, a1, a2, a3)


def _svf_fwd(x, a1, a2, a3):
    trajectory = _svf_trajectory(x, a1, a2, a3)
    return trajectory[:, 0], (x, a1, a2, a3, trajectory)


def _svf_vjp(residuals, g: Array):
    """Adjoint of the SVF, derived by hand (one backward loop instead of autodiff's replay).

    Written as a state-space system s_{n+1} = A_n s_n + B_n x_n, y_n = C_n s_n + D_n x_n
    with A = [[2 a1 - 1, -2 a2], [2 a2, 1 - 2 a3]], B = (2 a2, 2 a3), C = (a2, 1 - a3)
    and D = a3, the adjoint state l_n = dL/ds_n obeys l_n = A_n^T l_{n+1} + C_n^T g_n.
    With l' = l_{n+1}: dL/dx_n = B_n . l' + D_n g_n, and each coefficient collects its
    entries of dL/dA_n = l' s_n^T, dL/dB_n = l' x_n, dL/dC_n = g_n s_n, dL/dD_n = g_n x_n.
    """
    x, a1, a2, a3, trajectory = residuals
    s1, s2 = trajectory[:, 1], trajectory[:, 2]

    def tick(state, inputs):
        l1, l2 = state  # l_{n+1}
        gn, c1, c2, c3 = inputs
        new = (
            (2.0 * c1 - 1.0) * l1 + 2.0 * c2 * l2 + c2 * gn,
            -2.0 * c2 * l1 + (1.0 - 2.0 * c3) * l2 + (1.0 - c3) * gn,
        )
        return new, jnp.stack([l1, l2])

    zero = jnp.zeros((), g.dtype)
    _, out = jax.lax.scan(tick, (zero, zero), (g, a1, a2, a3), reverse=True)
    l1, l2 = out[:, 0], out[:, 1]
    grad_x = 2.0 * (a2 * l1 + a3 * l2) + a3 * g
    grad_a1 = 2.0 * l1 * s1
    grad_a2 = 2.0 * (l2 * s1 - l1 * s2 + l1 * x) + g * s1
    grad_a3 = 2.0 * l2 * (x - s2) + g * (x - s2)
    return grad_x, grad_a1, grad_a2, grad_a3


_svf.defvjp(_svf_fwd, _svf_vjp)


# RBJ shelves with shelf slope S = 1 (the steepest without overshoot), i.e. alpha as for
# Q = 1 / sqrt(2); for any gain their poles lie inside the unit circle like the designs above.
_SHELF_Q = 0.7071067811865476


def _shelf_terms(freq_hz, gain_db, sample_rate: int):
    cos, alpha = _cos_alpha(freq_hz, _SHELF_Q, sample_rate)
    amp = jnp.power(10.0, jnp.asarray(gain_db, jnp.float32) / 40.0)
    return amp, cos, 2.0 * jnp.sqrt(amp) * alpha


def lowshelf_coeffs(freq_hz: Array | float, gain_db: Array | float, sample_rate: int):
    """RBJ low shelf: ``gain_db`` at DC, 0 dB at Nyquist, midpoint at ``freq_hz``. (b, a)."""
    amp, cos, beta = _shelf_terms(freq_hz, gain_db, sample_rate)
    return _normalise(
        amp * ((amp + 1) - (amp - 1) * cos + beta),
        2 * amp * ((amp - 1) - (amp + 1) * cos),
        amp * ((amp + 1) - (amp - 1) * cos - beta),
        (amp + 1) + (amp - 1) * cos + beta,
        -2 * ((amp - 1) + (amp + 1) * cos),
        (amp + 1) + (amp - 1) * cos - beta,
    ).ba()


def highshelf_coeffs(freq_hz: Array | float, gain_db: Array | float, sample_rate: int):
    """RBJ high shelf: 0 dB at DC, ``gain_db`` at Nyquist, midpoint at ``freq_hz``. (b, a)."""
    amp, cos, beta = _shelf_terms(freq_hz, gain_db, sample_rate)
    return _normalise(
        amp * ((amp + 1) + (amp - 1) * cos + beta),
        -2 * amp * ((amp - 1) + (amp + 1) * cos),
        amp * ((amp + 1) + (amp - 1) * cos - beta),
        (amp + 1) - (amp - 1) * cos + beta,
        2 * ((amp - 1) - (amp + 1) * cos),
        (amp + 1) - (amp - 1) * cos - beta,
    ).ba()


def tilt_eq(x: Array, tilt_db: Array | float, pivot_hz: Array | float, sample_rate: int) -> Array:
    """Tilt filter: a low shelf at -tilt/2 and a high shelf at +tilt/2 around ``pivot_hz``.

    Positive ``tilt_db`` brightens (highs up, lows down), negative darkens;
    the two extremes differ by ``tilt_db``. (n,) -> (n,).
    """
    b, a = lowshelf_coeffs(pivot_hz, -0.5 * tilt_db, sample_rate)
    x = biquad(x, b, a)
    b, a = highshelf_coeffs(pivot_hz, 0.5 * tilt_db, sample_rate)
    return biquad(x, b, a)


def biquad_response(b: Array, a: Array, freqs_hz: Array, sample_rate: int) -> Array:
    """Complex frequency response H(e^{i w}) of a biquad at ``freqs_hz``.

    Args:
        b: (3,) feed-forward coefficients.
        a: (3,) feedback coefficients (a[0] == 1).
        freqs_hz: (k,) frequencies in Hz.
    Returns:
        (k,) complex64 (b0 + b1 z^-1 + b2 z^-2) / (a0 + a1 z^-1 + a2 z^-2) at
        z = exp(2 pi i f / sample_rate); equals ``scipy.signal.freqz(b, a, f, fs=sr)``.
    """
    w = 2.0 * jnp.pi * jnp.asarray(freqs_hz, jnp.float32) / sample_rate
    z1 = jnp.exp(-1j * w)
    z2 = z1 * z1
    return (b[0] + b[1] * z1 + b[2] * z2) / (a[0] + a[1] * z1 + a[2] * z2)
