"""Dynamic range compression blocks (pure JAX, unbatched).

Follows the feed-forward, log-domain design recommended by D. Giannoulis,
M. Massberg & J. D. Reiss, "Digital Dynamic Range Compressor Design -- A Tutorial
and Analysis", J. Audio Eng. Soc. 60(6), 2012 (gain computer eq. 4; smooth
branching peak detector eq. 17; Fig. 7(b) topology): level in dB -> static gain
computer -> attack/release smoothing of the gain reduction -> make-up gain.

The level is an RMS measurement (one-pole mean square, U. Zolzer (ed.), DAFX,
2nd ed., Wiley 2011, ch. 4) rather than the instantaneous |x| in dB: the latter
drops to the floor at every zero crossing, so with attack times longer than a
cycle the detector never reaches the gain reduction a steady tone asks for.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.dsp.units import db_to_amp, power_to_db

MIN_KNEE_DB = 1e-3  # a knee narrower than this is treated as hard (avoids 0 / 0)
MIN_TIME_S = 1e-5


def gain_computer_db(
    level_db: Array, threshold_db: Array | float, ratio: Array | float, knee_db: Array | float
) -> Array:
    """Static compression curve: input level (dB) -> output level (dB), Giannoulis eq. 4.

    Below ``threshold - knee / 2`` the level passes; above ``threshold + knee / 2``
    it rises 1 / ``ratio`` dB per dB; inside the knee a quadratic joins the two
    with matching slopes. Broadcasts over any shape.
    """
    ratio = jnp.maximum(ratio, 1.0)
    knee = jnp.maximum(knee_db, MIN_KNEE_DB)  # inside-knee formula divides by the width
    over = level_db - threshold_db
    slope = 1.0 / ratio - 1.0
    in_knee = level_db + slope * (over + knee / 2.0) ** 2 / (2.0 * knee)
    above = threshold_db + over / ratio
    return jnp.where(2.0 * over < -knee, level_db, jnp.where(2.0 * over > knee, above, in_knee))


def one_pole_step(time_s: Array | float, sample_rate: int) -> Array:
    """Step size k = 1 - exp(-1 / (time * sample_rate)) of a one-pole smoother (time >= 10 us).

    A smoother y[n] = y[n-1] + k (x[n] - y[n-1]) reaches 1 - 1/e (63%) of a step
    after ``time_s`` (Giannoulis sec. 3.1, with coefficient alpha = 1 - k). k is
    computed with expm1 and the recursion is written in k: for long times alpha
    is within float32 rounding of 1, and 1 - alpha would move in visible steps
    as the time knob turns.
    """
    return -jnp.expm1(-1.0 / (jnp.maximum(time_s, MIN_TIME_S) * sample_rate))


def mean_square(x: Array, step: Array | float) -> Array:
    """One-pole smoothed square: m[n] = m[n-1] + k (x[n]^2 - m[n-1]), (n,) -> (n,), by ``lax.scan``.

    ``step`` is k from :func:`one_pole_step`.
    """

    def tick(m, xn):
        m = m + step * (xn * xn - m)
        return m, m

    _, m = jax.lax.scan(tick, jnp.zeros((), x.dtype), x)
    return m


def smooth_branching(
    x: Array,
    attack_step: Array | float,
    release_step: Array | float,
    initial: Array | float = 0.0,
) -> Array:
    """Smooth branching peak detector (Giannoulis eq. 17), run by ``lax.scan``.

    y[n] = y[n-1] + k_A (x[n] - y[n-1])  if x[n] > y[n-1]  (attack)
    y[n] = y[n-1] + k_R (x[n] - y[n-1])  otherwise          (release)

    Args:
        x: (n,) signal to follow (here the gain reduction in dB, >= 0).
        attack_step, release_step: one-pole step sizes k in (0, 1] from
            :func:`one_pole_step` (k = 1 - alpha of the paper).
    Returns:
        (n,) the detector output, starting from y[-1] = ``initial``. Both branches agree
        when x[n] == y[n-1], so the output is continuous in the step sizes.
    """

    def tick(y, xn):
        step = jnp.where(xn > y, attack_step, release_step)
        y = y + step * (xn - y)
        return y, y

    _, y = jax.lax.scan(tick, jnp.asarray(initial, x.dtype), x)
    return y


def compress(
    x: Array,
    sample_rate: int,
    threshold_db: Array | float,
    ratio: Array | float,
    knee_db: Array | float,
    attack_s: Array | float,
    release_s: Array | float,
    makeup_db: Array | float,
    rms_time_s: float = 0.005,
) -> Array:
    """Feed-forward compressor (Giannoulis Fig. 7(b): smoothing after the gain computer).

    Args:
        x: (n,) input audio.
        threshold_db, ratio, knee_db: the static curve (see :func:`gain_computer_db`),
            applied to the RMS level in dBFS (a full-scale sine reads -3 dB).
        attack_s, release_s: detector time constants in seconds.
        makeup_db: gain added after compression, dB.
        rms_time_s: time constant of the RMS level measurement (static).
    Returns:
        (n,) compressed audio.
    """
    level = power_to_db(mean_square(x, one_pole_step(rms_time_s, sample_rate)))
    reduction = level - gain_computer_db(level, threshold_db, ratio, knee_db)
    smoothed = smooth_branching(
        reduction, one_pole_step(attack_s, sample_rate), one_pole_step(release_s, sample_rate)
    )
    return x * db_to_amp(makeup_db - smoothed)


def compress_peak(
    x: Array,
    sample_rate: int,
    threshold_db: Array | float,
    ratio: Array | float,
    knee_db: Array | float,
    attack_s: Array | float,
    release_s: Array | float,
    makeup_db: Array | float,
    initial_level_db: float | None = None,
) -> Array:
    """Compander with a peak envelope follower before the gain computer (sox ``compand``).

    The level is |x| followed by a branching one-pole (attack when |x| rises above it,
    release otherwise) on the *linear* amplitude, in dB re full-scale peak (a full-scale
    sine reads 0 dB, not -3 dB as with :func:`compress`); the static curve
    (:func:`gain_computer_db`) then sets the gain directly, with no smoothing after it.
    This is Giannoulis Fig. 7(a) with a peak detector, and sox's compand.c (``doVolume``:
    ``v += (|x| - v) * k``, k = 1 - exp(-1 / (time * rate)) for attack or decay), which
    it reproduces to float precision for a hard knee.

    Args:
        initial_level_db: the follower's level before the first sample (dBFS); None
            starts it at silence. sox starts at its ``initial-volume`` argument, 0 dB by
            default, so a sox-compressed sound begins fully turned down and recovers at
            the release rate.
    """
    start = 0.0 if initial_level_db is None else 10.0 ** (float(initial_level_db) / 20.0)
    envelope = smooth_branching(
        jnp.abs(x),
        one_pole_step(attack_s, sample_rate),
        one_pole_step(release_s, sample_rate),
        initial=start,
    )
    # The floor keeps the log finite in silence, where the gain below threshold is 0 dB.
    level = 20.0 * jnp.log10(jnp.maximum(envelope, 1e-6))
    curve = gain_computer_db(level, threshold_db, ratio, knee_db)
    return x * db_to_amp(makeup_db + curve - level)
