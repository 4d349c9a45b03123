"""A resonant RBJ low-pass (cutoff, resonance, gain) on a noise source or a noise strike."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant


@dataclass(frozen=True)
class ResonantFilter(AbstractPlant):
    """Noise -> 2nd-order RBJ low-pass (cutoff, resonance Q) -> gain -> tanh output stage.

    ``source="noise"`` plays steady white noise at ``level`` (peak); ``"strike"``
    plays a ``strike_s``-second noise burst and then silence, so the filter's
    ringing after the strike shows its pole radius (|p| = sqrt(a2) for the
    complex pole pair of a resonant setting). The noise is drawn from the
    episode's render key, the same for every knob setting.

    At high Q the low-pass peaks by about 20 log10(Q) dB at the cutoff and its
    poles approach the unit circle (|p| ~ 1 - sin(w0) / (2 Q)); the filter
    clamps Q at ``dsp.filters.MAX_Q`` so they never reach it. The output stage
    saturates softly (tanh), as an analog one would: a loud resonance distorts
    instead of exceeding full scale.
    """

    source: Literal["noise", "strike"] = "noise"
    level: float = 0.25
    strike_s: float = 0.005
    min_cutoff_hz: float = 50.0
    max_cutoff_hz: float = 8000.0

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec(
                "cutoff", self.min_cutoff_hz, self.max_cutoff_hz, "log", "Hz", "low-pass cutoff"
            ),
            KnobSpec("resonance", 0.5, 40.0, "log", "Q", "filter quality factor (peak height)"),
            KnobSpec("gain", -30.0, 6.0, "linear", "dB", "gain into the output stage"),
        )

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        n = self.n_samples
        noise = self.level * dsp.white_noise(key, n)
        if self.source == "strike":
            burst = jnp.arange(n) < int(round(self.strike_s * self.sample_rate))
            noise = jnp.where(burst, noise, 0.0)
        b, a = dsp.lowpass_coeffs(controls["cutoff"], controls["resonance"], self.sample_rate)
        return jnp.tanh(dsp.gain(dsp.biquad(noise, b, a), controls["gain"]))
