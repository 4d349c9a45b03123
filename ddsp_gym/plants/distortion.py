"""A distortion pedal: drive -> tanh soft clipper -> tilt tone control -> level."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect


@dataclass(frozen=True)
class Distortion(AbstractEffect):
    """tanh(10^(drive/20) x), then a tilt EQ pivoting at ``pivot_hz``, then output level.

    The shaper is odd-symmetric, so a sine gains odd harmonics only. The default
    program is the bench signal ``sine_steps`` (a 250 Hz sine at five levels), on
    which the harmonic structure is measured.
    """

    duration: float = 0.5
    program: str = "sine_steps"
    pivot_hz: float = 800.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("drive", 0.0, 36.0, "linear", "dB", "gain into the clipper"),
            KnobSpec("tone", -12.0, 12.0, "linear", "dB", "tilt: treble minus bass"),
            KnobSpec("level", -30.0, -6.0, "linear", "dB", "output level"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        shaped = dsp.tanh_drive(self.dry(audio_in), controls["drive"])
        toned = dsp.tilt_eq(shaped, controls["tone"], self.pivot_hz, self.sample_rate)
        return dsp.gain(toned, controls["level"])
