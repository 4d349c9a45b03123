"""A distortion pedal: drive -> tanh soft clipper -> tilt tone control -> level."""

from __future__ import annotations

from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect

# The clipper's curve: tanh(g x) (the env's), or sox overdrive's cubic with its dry mix.
SHAPERS = {"tanh": dsp.tanh_drive, "sox": dsp.sox_overdrive}


@dataclass(frozen=True)
class Distortion(AbstractEffect):
    """tanh(10^(drive/20) x), then a tilt EQ pivoting at ``pivot_hz``, then output level.

    The shaper is odd-symmetric, so a sine gains odd harmonics only. The default
    program is the bench signal ``sine_steps`` (a 250 Hz sine at five levels), on
    which the harmonic structure is measured.

    ``shaper="sox"`` replaces tanh by sox's ``overdrive`` (:func:`ddsp_gym.dsp.sox_overdrive`:
    a cubic clipper, DC blocker and half the dry signal mixed back), whose ``drive`` is
    sox's gain argument; a tanh plant fits sox's settings 3-4 dB high. ``level_range``
    widens the output level (sox adds no output gain: 0 dB).
    """

    duration: float = 0.5
    program: str = "sine_steps"
    pivot_hz: float = 800.0
    shaper: str = "tanh"
    level_range: tuple[float, float] = (-30.0, -6.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.shaper not in SHAPERS:
            raise ValueError(f"unknown shaper {self.shaper!r}; choose one of {tuple(SHAPERS)}")
        low, high = (float(v) for v in self.level_range)
        if not high > low:
            raise ValueError(
                f"level_range must be (low, high) with high > low, got {self.level_range}"
            )

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("drive", 0.0, 36.0, "linear", "dB", "gain into the clipper"),
            KnobSpec("tone", -12.0, 12.0, "linear", "dB", "tilt: treble minus bass"),
            KnobSpec("level", *map(float, self.level_range), "linear", "dB", "output level"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        shaped = SHAPERS[self.shaper](self.dry(audio_in), controls["drive"])
        toned = dsp.tilt_eq(shaped, controls["tone"], self.pivot_hz, self.sample_rate)
        return dsp.gain(toned, controls["level"])
