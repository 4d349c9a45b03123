"""A one-voice subtractive synth: oscillator mix -> swept resonant low-pass -> amp ADSR."""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.dsp.filters import MAX_FREQ_RATIO
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent

# Headroom, in octaves, between the highest cutoff the plant asks for and the
# filter design's hard clamp (MAX_FREQ_RATIO * sample_rate): the plant saturates
# the cutoff smoothly below the clamp, so the knobs never hit a flat region.
_CUTOFF_HEADROOM_OCT = 0.1
_SOFT_CLAMP_SHARPNESS = 4.0  # 1 / octaves over which the saturation rounds off


def soft_ceiling_octaves(octaves: Array, ceiling_hz: float) -> Array:
    """Smoothly saturate the frequency ``ceiling_hz * 2^octaves`` below ``ceiling_hz``.

    Returns ceiling * 2^(-softplus(-k o) / k) for o = ``octaves``: the frequency
    itself far below the ceiling, approaching the ceiling from below, with a
    gradient everywhere (a hard clip would leave knobs with zero gradient).
    """
    k = _SOFT_CLAMP_SHARPNESS
    return ceiling_hz * jnp.exp2(-jax.nn.softplus(-k * octaves) / k)


def resonance_compensation(q: Array | float) -> Array:
    """Output gain (1 + Q^2)^(-1/4): about 1 at low Q, 1/sqrt(Q) at high Q.

    The resonant peak of a 2-pole low-pass rises as Q; scaling by about
    1/sqrt(Q) keeps a harmonic caught in the peak near full scale (many synth
    filters likewise lose passband level as resonance rises), smoothly in Q.
    """
    return (1.0 + jnp.asarray(q) ** 2) ** -0.25


@dataclass(frozen=True)
class Subtractive(AbstractPlant):
    """Saw/square/noise mix -> resonant 2-pole low-pass with an envelope sweep -> amp ADSR.

    The filter's cutoff moves with time:
    cutoff(t) = cutoff * 2^(env_amount * exp(-t / env_decay)), an exponential
    decay in octaves from ``cutoff * 2^env_amount`` at the onset down to
    ``cutoff`` (the classic "pluck"/"brass" filter envelope), smoothly
    saturated below 0.45 * sample_rate. The filter is the RBJ low-pass
    (:func:`ddsp_gym.dsp.lowpass`) designed at a control rate, every
    ``control_hop`` samples (1 ms at 16 kHz), its coefficients interpolated
    linearly to every sample and run by :func:`ddsp_gym.dsp.run_biquad`. Hardware
    and software synths likewise update filters at a control rate; here it
    spares the per-sample sine, cosine and exponentials, which cost more than
    the filter itself. ``control_hop=1`` designs the filter at every sample.

    Stability: each frozen-time filter has its poles inside the unit circle
    (the coefficient design clamps Q and frequency). A time-varying filter can
    still gain energy when its coefficients move fast; the sweep here moves at
    most ``env_amount / env_decay`` = 200 octaves/s at Q <= 16, and
    tests/test_plants_synths.py checks the output stays bounded at every corner
    of the knob box.

    Static config: the note (``pitch_hz``), the amp ADSR (``amp_*``, ``gate_s``),
    and ``oscillator_knobs``: when False the source is a plain saw and the
    ``square`` and ``noise`` knobs are left out (a 4-knob "saw + filter sweep").
    """

    duration: float = 0.5
    pitch_hz: float = 110.0
    amplitude: float = 0.45
    amp_attack_s: float = 0.005
    amp_decay_s: float = 0.15
    amp_sustain: float = 0.7
    amp_release_s: float = 0.08
    gate_s: float = 0.4
    oscillator_knobs: bool = True
    control_hop: int = 16

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        filter_knobs = (
            KnobSpec("cutoff", 80.0, 4000.0, "log", "Hz", "low-pass cutoff after the sweep"),
            KnobSpec("resonance", 0.5, 16.0, "log", "Q", "low-pass quality factor (peak)"),
            KnobSpec("env_amount", 0.0, 5.0, "linear", "oct", "sweep start above the cutoff"),
            KnobSpec("env_decay", 0.025, 1.0, "log", "s", "time constant of the sweep's decay"),
        )
        if not self.oscillator_knobs:
            return filter_knobs
        return filter_knobs + (
            KnobSpec(
                "square", 0.0, 1.0, "linear", "", "oscillator crossfade saw (0) -> square (1)"
            ),
            KnobSpec(
                "noise", 0.0, 1.0, "linear", "", "white-noise level relative to the oscillator"
            ),
        )

    def oscillator(self, controls: dict[str, Array], key: Array) -> Array:
        """The filter's input: PolyBLEP saw/square crossfade plus noise, shape (n,)."""
        saw, square_wave = self.waveforms()
        if not self.oscillator_knobs:
            return jnp.asarray(saw)
        square = controls["square"]
        tone = (1.0 - square) * saw + square * square_wave
        return tone + controls["noise"] * dsp.white_noise(key, self.n_samples)

    @knob_independent
    def waveforms(self) -> tuple[Array, Array]:
        """The note's PolyBLEP (saw, square), each (n,): constants of the compiled render."""
        inc = dsp.phase_increment(self.pitch_hz, self.sample_rate, self.n_samples)
        phase = dsp.phase_accumulator(self.pitch_hz, self.sample_rate, self.n_samples)
        return dsp.saw_polyblep(phase, inc), dsp.square_polyblep(phase, inc)

    def cutoff_trajectory(self, controls: dict[str, Array]) -> Array:
        """The filter's cutoff in Hz at the control points, shape (ceil(n / hop) + 1,).

        Point k is at sample k * ``control_hop`` (:func:`ddsp_gym.dsp.control_times`).
        """
        t = dsp.control_times(self.n_samples, self.sample_rate, self.control_hop)
        sweep = controls["env_amount"] * dsp.exp_decay_at(t, controls["env_decay"])
        ceiling = MAX_FREQ_RATIO * self.sample_rate * 2.0 ** (-_CUTOFF_HEADROOM_OCT)
        # In octaves above the ceiling: the sweep adds to log2(cutoff).
        return soft_ceiling_octaves(jnp.log2(controls["cutoff"] / ceiling) + sweep, ceiling)

    def filter_coeffs(self, controls: dict[str, Array]) -> dsp.Biquad:
        """Per-sample low-pass coefficients, (n,) fields: designed at the control points,
        linearly interpolated between them.

        Frozen in time, each interpolated filter is stable: the (a1, a2) of stable
        biquads form a triangle, a convex set, so blends of two stable designs stay in it.
        """
        at_points = dsp.lowpass(
            self.cutoff_trajectory(controls), controls["resonance"], self.sample_rate
        )
        b0, a1, a2 = (
            dsp.upsample_linear(c, self.control_hop, self.n_samples)
            for c in (at_points.b0, at_points.a1, at_points.a2)
        )
        # The RBJ low-pass numerator is b0 (1, 2, 1), so b1 and b2 follow from b0 (bit for
        # bit: scaling by 2 commutes with the interpolation's rounding).
        return dsp.Biquad(b0, 2.0 * b0, b0, a1, a2)

    @knob_independent
    def amp_envelope(self) -> Array:
        """The amp ADSR, shape (n,), values in [0, 1]."""
        return dsp.adsr(
            self.n_samples,
            self.sample_rate,
            self.amp_attack_s,
            self.amp_decay_s,
            self.amp_sustain,
            self.amp_release_s,
            self.gate_s,
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        filtered = dsp.run_biquad(self.oscillator(controls, key), self.filter_coeffs(controls))
        return (
            self.amplitude
            * self.amp_envelope()
            * resonance_compensation(controls["resonance"])
            * filtered
        )
