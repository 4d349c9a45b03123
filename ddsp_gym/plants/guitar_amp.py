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
    (Q ``mid_q``) and a high shelf at ``treble_hz`` (RBJ designs, applied by
    their exact frequency response, see :mod:`ddsp_gym.dsp.eq`). The default
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
        driven = dsp.tanh_drive(self.dry(audio_in), controls["drive"])
        freqs = dsp.eq_frequencies(self.n_samples, sr)
        # The three RBJ sections in series, applied as one response (see dsp.eq).
        tone_stack = (
            dsp.lowshelf_response(freqs, self.bass_hz, controls["bass"], sr)
            * dsp.peaking_response(freqs, self.mid_hz, self.mid_q, controls["mid"], sr)
            * dsp.highshelf_response(freqs, self.treble_hz, controls["treble"], sr)
        )
        return dsp.gain(dsp.apply_response(driven, tone_stack), controls["level"])
