"""A vowel synthesizer: glottal pulses through a cascade of formant resonators."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant

N_FORMANTS = 3


@dataclass(frozen=True)
class FormantVoice(AbstractPlant):
    """Rosenberg glottal pulses at ``f0_hz`` -> cascade of formant resonators -> fixed RMS.

    Knobs: the centre frequencies f1, f2, f3 and bandwidths b1, b2, b3 of the
    first three formants; higher formants are static (``fixed_formants``, pairs
    of (Hz, bandwidth Hz); the default F4 follows Klatt's 1980 default of
    3500 Hz). Resonators are Klatt's two-pole sections
    (:func:`ddsp_gym.dsp.resonator_coeffs`) in cascade, the arrangement Klatt
    (1980) uses for vowels: the formants' relative levels then follow from their
    frequencies and bandwidths, as in a vocal tract, without level knobs.

    The output is scaled to ``rms`` (a smooth automatic gain): the formant task
    is about spectral shape, and the cascade's gain swings by tens of dB
    across the knob range.
    """

    f0_hz: float = 125.0
    open_fraction: float = 0.4
    close_fraction: float = 0.16
    fixed_formants: tuple[tuple[float, float], ...] = ((3500.0, 250.0),)
    rms: float = 0.15

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        # The ranges hold Peterson & Barney's (1952) adult male averages
        # (F1 270-730, F2 840-2290, F3 1690-3010 Hz; tasks/vowels.py) with margin.
        return (
            KnobSpec("f1", 200.0, 1000.0, "log", "Hz", "first formant frequency"),
            KnobSpec("f2", 600.0, 2800.0, "log", "Hz", "second formant frequency"),
            KnobSpec("f3", 1400.0, 3600.0, "log", "Hz", "third formant frequency"),
            KnobSpec("b1", 30.0, 300.0, "log", "Hz", "first formant bandwidth"),
            KnobSpec("b2", 30.0, 300.0, "log", "Hz", "second formant bandwidth"),
            KnobSpec("b3", 30.0, 300.0, "log", "Hz", "third formant bandwidth"),
        )

    def source(self) -> Array:
        """Radiated glottal flow (the cascade's input), shape (n,), knob-independent."""
        phase = dsp.phase_accumulator(self.f0_hz, self.sample_rate, self.n_samples)
        return dsp.radiate(dsp.rosenberg_pulse(phase, self.open_fraction, self.close_fraction))

    def formants(self, controls: dict[str, Array]) -> list[tuple[Array, Array]]:
        """Every resonator's (frequency Hz, bandwidth Hz), knob formants first."""
        knobbed = [(controls[f"f{i}"], controls[f"b{i}"]) for i in range(1, N_FORMANTS + 1)]
        fixed = [(jnp.float32(f), jnp.float32(b)) for f, b in self.fixed_formants]
        return knobbed + fixed

    def resonator_coeffs(self, controls: dict[str, Array]) -> list[tuple[Array, Array]]:
        """Each resonator's (b, a), each (3,), in cascade order."""
        return [dsp.resonator_coeffs(f, bw, self.sample_rate) for f, bw in self.formants(controls)]

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        y = self.source()
        for b, a in self.resonator_coeffs(controls):
            y = dsp.biquad(y, b, a)
        return self.rms * y / jnp.sqrt(jnp.mean(y * y) + 1e-12)
