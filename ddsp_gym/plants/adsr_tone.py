"""A tone or noise burst shaped by an ADSR envelope (knobs: A, D, S, R)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent


@dataclass(frozen=True)
class AdsrTone(AbstractPlant):
    """A ``source`` ("tone": sine at ``tone_hz``; "noise": white noise) times an ADSR.

    The note's gate is open for ``gate_s`` seconds of the ``duration``.
    """

    duration: float = 1.0
    source: Literal["tone", "noise"] = "tone"
    tone_hz: float = 440.0
    gate_s: float = 0.5
    amplitude: float = 0.5

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("attack", 0.002, 0.3, "log", "s", "rise time from 0 to full level"),
            KnobSpec("decay", 0.005, 0.5, "log", "s", "fall time from full to sustain level"),
            KnobSpec("sustain", 0.0, 1.0, "linear", "", "level held while the gate is open"),
            KnobSpec("release", 0.01, 0.5, "log", "s", "fall time to silence after the gate"),
        )

    @knob_independent
    def tone(self) -> Array:
        """The sine carrier at ``tone_hz``, (n,): a constant of the compiled render."""
        return dsp.sine(dsp.phase_accumulator(self.tone_hz, self.sample_rate, self.n_samples))

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        n = self.n_samples
        if self.source == "noise":
            carrier = dsp.white_noise(key, n)
        else:
            carrier = self.tone()
        envelope = dsp.adsr(
            n,
            self.sample_rate,
            controls["attack"],
            controls["decay"],
            controls["sustain"],
            controls["release"],
            self.gate_s,
        )
        return self.amplitude * envelope * carrier
