"""A guitar amp: pre-gain drive -> tanh clipper -> 3-band tone stack -> master level."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect


@dataclass(frozen=True)
class GuitarAmp(AbstractEffect):
    """Drive into the distortion's tanh shaper, then bass/mid/treble EQ and a master level.

    The tone stack follows the clipper, as in most guitar amps (preamp, then
    tone stack): a low shelf at ``bass_hz``, a peaking band at ``mid_hz``
    (Q ``mid_q``) and a high shelf at ``treble_hz`` (RBJ designs). The default
    program is plucked strings.
    """

    duration: float = 0.5
    program: str = "pluck"
    bass_hz: float = 200.0
    mid_hz: float = 800.0
    mid_q: float = 0.7
    treble_hz: float = 3000.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("bass", -12.0, 12.0, "linear", "dB", "low shelf gain"),
            KnobSpec("mid", -12.0, 12.0, "linear", "dB", "mid band gain"),
            KnobSpec("treble", -12.0, 12.0, "linear", "dB", "high shelf gain"),
            KnobSpec("drive", 0.0, 30.0, "linear", "dB", "gain into the clipper"),
            KnobSpec("level", -30.0, -12.0, "linear", "dB", "master level"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        sr = self.sample_rate
        x = dsp.tanh_drive(self.dry(audio_in), controls["drive"])
        x = dsp.biquad(x, *dsp.lowshelf_coeffs(self.bass_hz, controls["bass"], sr))
        x = dsp.biquad(x, *dsp.peaking_coeffs(self.mid_hz, self.mid_q, controls["mid"], sr))
        x = dsp.biquad(x, *dsp.highshelf_coeffs(self.treble_hz, controls["treble"], sr))
        return dsp.gain(x, controls["level"])
