"""A band-limited saw through a resonant RBJ low-pass with a cutoff knob."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent


@dataclass(frozen=True)
class FilteredSaw(AbstractPlant):
    """PolyBLEP saw at ``pitch_hz`` -> 2nd-order low-pass (quality ``q``) -> ``amplitude``."""

    pitch_hz: float = 110.0
    q: float = 0.707
    amplitude: float = 0.5

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (KnobSpec("cutoff", 100.0, 7000.0, "log", "Hz", "low-pass cutoff frequency"),)

    @knob_independent
    def saw(self) -> Array:
        """The note's PolyBLEP saw, (n,): a constant of the compiled render."""
        inc = dsp.phase_increment(self.pitch_hz, self.sample_rate, self.n_samples)
        phase = dsp.phase_accumulator(self.pitch_hz, self.sample_rate, self.n_samples)
        return dsp.saw_polyblep(phase, inc)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        b, a = dsp.lowpass_coeffs(controls["cutoff"], self.q, self.sample_rate)
        return self.amplitude * dsp.biquad(jnp.asarray(self.saw()), b, a)
