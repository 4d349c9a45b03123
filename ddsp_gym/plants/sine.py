"""A single sine oscillator with one knob: its frequency."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant


@dataclass(frozen=True)
class SineOscillator(AbstractPlant):
    """Sine oscillator, 110 Hz (A2) to 1760 Hz (A6), at a fixed ``amplitude``."""

    amplitude: float = 0.5

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (KnobSpec("frequency", 110.0, 1760.0, "log", "Hz", "oscillator pitch"),)

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        phase = dsp.phase_accumulator(controls["frequency"], self.sample_rate, self.n_samples)
        return self.amplitude * dsp.sine(phase)
