"""A vowel synthesizer: glottal pulses through a cascade of formant resonators."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant

N_FORMANTS = 3
SOURCES = ("rosenberg", "sawtooth")


@dataclass(frozen=True)
class FormantVoice(AbstractPlant):
    """Glottal pulses (Rosenberg, or a sawtooth) at ``f0_hz`` -> formant cascade -> fixed RMS.

    Knobs: the centre frequencies f1, f2, f3 and bandwidths b1, b2, b3 of the
    first three formants; higher formants are static (``fixed_formants``, pairs
    of (Hz, bandwidth Hz); the default F4 is Klatt's (1980) default of 3500 Hz).
    Resonators are Klatt's two-pole sections (:func:`ddsp_gym.dsp.resonator_coeffs`)
    in cascade, the arrangement Klatt (1980) uses for vowels: the formants'
    relative levels follow from their frequencies and bandwidths, as in a vocal
    tract, with no level knobs.

    Rendering: a sustained vowel is the cascade's periodic steady state. One
    period of the radiated Rosenberg pulse (``period`` samples, f0 = sample_rate
    / period exactly) is transformed once; each harmonic is multiplied by the
    cascade's frequency response there (:func:`ddsp_gym.dsp.biquad_response`);
    one inverse FFT gives one output period, which is repeated. This equals
    running the biquads (``scipy.signal.lfilter``) over a long pulse train once
    the start-up transient has died away (tests check it), costs no scan, and
    keeps each harmonic's level exact to float32 precision: a 4000-sample IIR
    recursion with poles near the unit circle accumulates round-off that, in
    weak high harmonics, is larger than the change a 1e-3 knob move makes.

    The output is scaled to ``rms`` (a smooth automatic gain): the formant task
    is about spectral shape, and the cascade's gain swings by tens of dB
    across the knob range.

    ``source``: "rosenberg" (the pulse above) or "sawtooth" (harmonic k at 1 / k, a
    straight line in octaves). ``match`` uses the sawtooth: the Rosenberg pulse's
    first harmonic lies ~5 dB under the line through its others, which an envelope
    distance that removes a straight-line tilt cannot take out, and at a high
    voice's pitch (F1 between the first two harmonics) that dip moves the fitted F1.
    """

    f0_hz: float = 125.0
    open_fraction: float = 0.4
    close_fraction: float = 0.16
    fixed_formants: tuple[tuple[float, float], ...] = ((3500.0, 250.0),)
    rms: float = 0.15
    source: str = "rosenberg"

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}; choose from {SOURCES}")

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

    @property
    def period(self) -> int:
        """Samples per glottal period (f0 is rounded so that it is a whole number)."""
        return max(2, int(round(self.sample_rate / self.f0_hz)))

    def source_period(self) -> Array:
        """One period of the radiated glottal flow, (period,), knob-independent.

        Radiation is the first difference taken around the period (the pulse
        train's steady state).
        """
        if self.source == "sawtooth":
            return sawtooth_period(self.period)
        phase = jnp.arange(self.period, dtype=jnp.float32) / self.period
        flow = dsp.rosenberg_pulse(phase, self.open_fraction, self.close_fraction)
        return flow - jnp.roll(flow, 1)

    def formants(self, controls: dict[str, Array]) -> list[tuple[Array, Array]]:
        """Every resonator's (frequency Hz, bandwidth Hz), knob formants first."""
        knobbed = [(controls[f"f{i}"], controls[f"b{i}"]) for i in range(1, N_FORMANTS + 1)]
        fixed = [(jnp.float32(f), jnp.float32(b)) for f, b in self.fixed_formants]
        return knobbed + fixed

    def resonator_coeffs(self, controls: dict[str, Array]) -> list[tuple[Array, Array]]:
        """Each resonator's (b, a), each (3,), in cascade order."""
        return [dsp.resonator_coeffs(f, bw, self.sample_rate) for f, bw in self.formants(controls)]

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        period = self.period
        harmonics_hz = np.arange(period // 2 + 1) * self.sample_rate / period
        spectrum = jnp.fft.rfft(self.source_period())
        for b, a in self.resonator_coeffs(controls):
            spectrum = spectrum * dsp.biquad_response(b, a, harmonics_hz, self.sample_rate)
        one_period = jnp.fft.irfft(spectrum, period)
        one_period = self.rms * one_period / jnp.sqrt(jnp.mean(one_period**2) + 1e-20)
        reps = -(-self.n_samples // period)
        return jnp.tile(one_period, reps)[: self.n_samples]


def sawtooth_period(period: int) -> Array:
    """One period of a band-limited sawtooth, (period,): harmonic k at amplitude 1 / k.

    Its spectrum falls exactly 6 dB per octave from the first harmonic on, a straight
    line in octaves (see :class:`FormantVoice`'s ``source``).
    """
    k = np.arange(period // 2 + 1)
    spectrum = np.zeros(k.size, np.complex128)
    spectrum[1:] = -1j / k[1:]
    return jnp.asarray(np.fft.irfft(spectrum, period) * period, jnp.float32)
