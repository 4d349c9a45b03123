"""A band-limited saw through a resonant RBJ low-pass with a cutoff knob."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant


@dataclass(frozen=True)
class FilteredSaw(AbstractPlant):
    """PolyBLEP saw at ``pitch_hz`` -> 2nd-order low-pass (quality ``q``) -> ``amplitude``."""

    pitch_hz: float = 110.0
    q: float = 0.707
    amplitude: float = 0.5

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (KnobSpec("cutoff", 100.0, 7000.0, "log", "Hz", "low-pass cutoff frequency"),)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        inc = dsp.phase_increment(self.pitch_hz, self.sample_rate, self.n_samples)
        phase = dsp.phase_accumulator(self.pitch_hz, self.sample_rate, self.n_samples)
        saw = dsp.saw_polyblep(phase, inc)
        b, a = dsp.lowpass_coeffs(controls["cutoff"], self.q, self.sample_rate)
        return self.amplitude * dsp.biquad(saw, b, a)
