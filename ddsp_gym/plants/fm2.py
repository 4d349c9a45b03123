"""Two-operator FM (phase modulation), the classic bell voice."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent


@dataclass(frozen=True)
class FM2(AbstractPlant):
    """2-operator FM: y(t) = A(t) sin(2 pi fc t + I(t) sin(2 pi fm t)), fm = ratio * fc.

    A(t) = ``amplitude`` * (linear attack over ``attack_s``) * exp(-t / amp_decay) (and a
    fade over the last ``release_s``), and
    I(t) = index * exp(-t / index_decay): the spectrum starts bright and mellows as
    the note dies away, the recipe of Chowning's FM bell (J. Chowning, "The
    synthesis of complex audio spectra by means of frequency modulation", JAES
    21(7), 1973), where non-integer ratios give a bell's inharmonic partials.

    For a constant index the spectrum is a set of lines at fc + k fm with
    amplitudes J_k(I) (Bessel functions of the first kind); lines at negative
    frequencies fold to |fc + k fm| with their sign flipped. Like hardware FM,
    sidebands past Nyquist fold back too; nothing band-limits them.

    The ratio knob spans 1.1-1.9, the inharmonic band between unison and octave
    where Chowning's bell (ratio 1.4) lives. Near ratios 2 / m (1, 2, 2/3, ...)
    the folded sidebands land within a few Hz of the others and beat slowly;
    the beats' phase late in the note turns by radians for a 0.1 % change of
    ratio, so any spectrogram-based reward becomes rough at the scale of the
    smallest knob move. Keeping the ratio away from those points (and the
    carrier at or below 600 Hz, so strong sidebands stay below Nyquist) keeps
    the reward's gradient meaningful; the landscape stays non-convex.

    Static config: ``feedback`` (radians, 0 = off) lets the modulator modulate
    itself (:func:`ddsp_gym.dsp.feedback_operator`), turning it from a sine
    towards a saw; it costs a ``lax.scan`` over the samples.
    """

    duration: float = 0.5
    amplitude: float = 0.5
    attack_s: float = 0.005
    release_s: float = 0.03
    feedback: float = 0.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("carrier_hz", 100.0, 600.0, "log", "Hz", "carrier frequency"),
            KnobSpec("ratio", 1.1, 1.9, "log", "", "modulator frequency / carrier frequency"),
            KnobSpec("index", 0.5, 8.0, "linear", "rad", "modulation index at the onset, I(0)"),
            KnobSpec("index_decay", 0.03, 1.0, "log", "s", "time constant of the index decay"),
            KnobSpec("amp_decay", 0.05, 2.0, "log", "s", "time constant of the amplitude decay"),
        )

    def amplitude_envelope(self, amp_decay: Array | float) -> Array:
        """A(t), shape (n_samples,): linear attack, exponential decay, raised-cosine release.

        The release fades the last ``release_s`` seconds to 0, as a note-off
        would: cutting the note off mid-cycle would splatter broadband energy
        whose level depends on the phase at the cut, i.e. jumps with the
        carrier frequency.
        """
        n, sr = self.n_samples, self.sample_rate
        return self._attack_release() * dsp.exp_decay(n, sr, amp_decay)

    @knob_independent
    def _attack_release(self) -> Array:
        """``amplitude`` * attack ramp * release fade, (n_samples,): no knob moves it."""
        n, sr = self.n_samples, self.sample_rate
        t = jnp.arange(n, dtype=jnp.float32) / sr
        attack = jnp.clip(t / max(self.attack_s, 1.0 / sr), 0.0, 1.0)
        to_end = jnp.clip((self.duration - t) / max(self.release_s, 1.0 / sr), 0.0, 1.0)
        release = 0.5 - 0.5 * jnp.cos(jnp.pi * to_end)
        return self.amplitude * attack * release

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
