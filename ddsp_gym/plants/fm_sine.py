"""A two-operator FM tone: a sine carrier phase-modulated by a sine at the same pitch."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant


@dataclass(frozen=True)
class FMSine(AbstractPlant):
    """y = amplitude * sin(2 pi f t + I sin(2 pi ratio f t)) (Chowning 1973, JAES 21(7)).

    Knobs: carrier frequency f (40-160 Hz, log: a bass voice) and modulation index I (0-1).
    With ``ratio`` = 1 the spectrum is harmonic; over this index range the
    carrier's level J0(I) falls and the spectrum's relative spread grows
    monotonically with I, so the index moves the timbre smoothly from a pure
    sine towards a brighter, reedy tone.
    """

    ratio: float = 1.0
    amplitude: float = 0.5

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("frequency", 40.0, 160.0, "log", "Hz", "carrier pitch"),
            KnobSpec("index", 0.0, 1.0, "linear", "rad", "modulation index (peak phase swing)"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        n, sr = self.n_samples, self.sample_rate
        carrier = dsp.phase_accumulator(controls["frequency"], sr, n)
        modulator = dsp.phase_accumulator(controls["frequency"] * self.ratio, sr, n)
        return self.amplitude * dsp.pm_operator(carrier, controls["index"] * dsp.sine(modulator))
