"""A gain stage (a VCA / mixer channel fader) on an input signal."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant, knob_independent


@dataclass(frozen=True)
class GainStage(AbstractPlant):
    """Scales its input by a gain in dB.

    Without an input it processes a built-in harmonic tone (``tone_hz``, three
    partials, peak ``tone_peak``), so it also works as a standalone instrument.
    """

    tone_hz: float = 220.0
    tone_peak: float = 0.25

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (KnobSpec("gain", -48.0, 6.0, "linear", "dB", "channel gain"),)

    @knob_independent
    def reference_tone(self) -> Array:
        phase = dsp.phase_accumulator(self.tone_hz, self.sample_rate, self.n_samples)
        partials = jnp.stack([dsp.sine(phase * k % 1.0) / k for k in (1, 2, 3)])
        tone = partials.sum(axis=0)
        return self.tone_peak * tone / jnp.max(jnp.abs(tone))

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        source = self.reference_tone() if audio_in is None else audio_in
        return dsp.gain(source, controls["gain"])
