"""Two-operator FM (phase modulation), the classic bell voice."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant


@dataclass(frozen=True)
class FM2(AbstractPlant):
    """2-operator FM: y(t) = A(t) sin(2 pi fc t + I(t) sin(2 pi fm t)), fm = ratio * fc.

    A(t) = ``amplitude`` * (linear attack over ``attack_s``) * exp(-t / amp_decay) and
    I(t) = index * exp(-t / index_decay): the spectrum starts bright and mellows as
    the note dies away, the recipe of Chowning's FM bell (J. Chowning, "The
    synthesis of complex audio spectra by means of frequency modulation", JAES
    21(7), 1973), where non-integer ratios give a bell's inharmonic partials.

    For a constant index the spectrum is a set of lines at fc + k fm with
    amplitudes J_k(I) (Bessel functions of the first kind). Like hardware FM,
    sidebands past Nyquist fold back; nothing band-limits them.

    Static config: ``feedback`` (radians, 0 = off) lets the modulator modulate
    itself (:func:`ddsp_gym.dsp.feedback_operator`), turning it from a sine
    towards a saw; it costs a ``lax.scan`` over the samples.
    """

    duration: float = 0.5
    amplitude: float = 0.5
    attack_s: float = 0.005
    feedback: float = 0.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("carrier_hz", 100.0, 800.0, "log", "Hz", "carrier frequency"),
            KnobSpec("ratio", 0.5, 4.0, "log", "", "modulator frequency / carrier frequency"),
            KnobSpec("index", 0.5, 10.0, "linear", "rad", "modulation index at the onset, I(0)"),
            KnobSpec("index_decay", 0.03, 1.0, "log", "s", "time constant of the index decay"),
            KnobSpec("amp_decay", 0.05, 2.0, "log", "s", "time constant of the amplitude decay"),
        )

    def amplitude_envelope(self, amp_decay: Array | float) -> Array:
        """A(t), shape (n_samples,): a linear attack over ``attack_s`` times the decay."""
        n, sr = self.n_samples, self.sample_rate
        t = jnp.arange(n, dtype=jnp.float32) / sr
        attack = jnp.clip(t / max(self.attack_s, 1.0 / sr), 0.0, 1.0)
        return self.amplitude * attack * dsp.exp_decay(n, sr, amp_decay)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        n, sr = self.n_samples, self.sample_rate
        carrier_hz = controls["carrier_hz"]
        mod_phase = dsp.phase_accumulator(carrier_hz * controls["ratio"], sr, n)
        if self.feedback > 0.0:
            modulator = dsp.feedback_operator(mod_phase, self.feedback)
        else:
            modulator = dsp.sine(mod_phase)
        index = controls["index"] * dsp.exp_decay(n, sr, controls["index_decay"])
        tone = dsp.pm_operator(dsp.phase_accumulator(carrier_hz, sr, n), index * modulator)
        return self.amplitude_envelope(controls["amp_decay"]) * tone
