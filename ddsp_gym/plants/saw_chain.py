"""A chained plant: a saw note -> a resonant low-pass -> an echo, each stage's knobs declared."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
from jax import Array

from ddsp_gym import dsp
from ddsp_gym.dsp.filters import MAX_FREQ_RATIO
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.plants.delay import Delay

NEUTRAL_Q = 0.7071  # Butterworth: no resonant peak


@dataclass(frozen=True)
class SawChain(AbstractPlant):
    """PolyBLEP saw note -> RBJ 2nd-order low-pass -> feedback delay, in that order.

    The oscillator -> filter -> effect chain of issue 25 (item 3), built from the
    project's own stages: the saw of :class:`~ddsp_gym.plants.filtered_saw.FilteredSaw`,
    the low-pass of :class:`~ddsp_gym.plants.resonant_filter.ResonantFilter` and the
    echo of :class:`~ddsp_gym.plants.delay.Delay` (its ``synthesize``, unchanged).

    The note starts at 0 and lasts ``length`` seconds, with linear ramps of ``ramp_s``
    at both ends (it ends at ``length``, as sox's ``fade t`` ends at its stop position).

    The saw and the low-pass run at ``oversample`` times the output rate, then are
    band-limited to the output's Nyquist (an FFT brickwall) and decimated; the echo
    runs at the output rate. A low-pass designed at the output rate has the bilinear
    transform's double zero at its Nyquist, which darkens its top octave (a 16 kHz RBJ
    low-pass at 1 kHz lies 19 dB under the same design at 48 kHz at 6.4 kHz), and a fit
    to a filter that has no such zero then pushes the cutoff up to make up for it.

    :attr:`stages` names each knob's stage, in signal order; :attr:`bypass` gives the
    settings at which a stage passes its input through: the echo at ``mix`` 0 is the
    dry signal exactly; the low-pass at the top of its travel (0.45 of the oversampled
    rate) with Q = 1/sqrt(2) is flat within 0.05 dB below 0.4 of the output rate. A
    staged fit holds later stages there while it fits earlier ones
    (:mod:`ddsp_gym.agents.staged`).
    """

    duration: float = 1.0
    oversample: int = 3
    ramp_s: float = 0.005
    min_time: float = 0.02
    max_time: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.ramp_s < 0.05:
            raise ValueError(f"ramp_s must be in (0, 0.05) s, got {self.ramp_s}")
        if self.oversample < 1:
            raise ValueError(f"oversample must be at least 1, got {self.oversample}")

    @property
    def inner_rate(self) -> int:
        """The rate the saw and the low-pass run at."""
        return self.sample_rate * self.oversample

    @property
    def max_cutoff_hz(self) -> float:
        return MAX_FREQ_RATIO * self.inner_rate

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("frequency", 55.0, 1760.0, "log", "Hz", "the saw's pitch"),
            KnobSpec("level", -40.0, 0.0, "linear", "dB", "the saw's peak level (dBFS)"),
            KnobSpec("length", 0.05, 0.8, "log", "s", "the note's length"),
            KnobSpec("cutoff", 50.0, self.max_cutoff_hz, "log", "Hz", "low-pass cutoff"),
            KnobSpec("resonance", 0.5, 10.0, "log", "Q", "low-pass quality factor"),
            KnobSpec("time", self.min_time, self.max_time, "log", "s", "spacing of the echoes"),
            KnobSpec("feedback", 0.0, 0.9, "linear", "", "gain of each further repeat"),
            KnobSpec("mix", 0.0, 0.9, "linear", "", "wet share of the output (0: dry)"),
        )

    @property
    def stages(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """(stage name, its knobs) in signal order."""
        return (
            ("source", ("frequency", "level", "length")),
            ("filter", ("cutoff", "resonance")),
            ("effect", ("time", "feedback", "mix")),
        )

    @property
    def bypass(self) -> dict[str, float]:
        """Physical knob values at which the filter and the effect pass their input."""
        return {"cutoff": self.max_cutoff_hz, "resonance": NEUTRAL_Q, "mix": 0.0}

    @property
    def scans(self) -> dict[str, tuple[str, dict[str, float]]]:
        """{stage: (knob scanned over its travel, other knobs set for the scan)}: the echo's
        time, with a single repeat (feedback 0): the first repeat's spacing picks the basin,
        and further repeats at a wrong spacing smear the sound, which favours short times."""
        return {"effect": ("time", {"feedback": 0.0})}

    @property
    def echo(self) -> Delay:
        """The effect stage: the delay plant at this plant's rate, length and time range."""
        return Delay(
            sample_rate=self.sample_rate,
            duration=self.duration,
            min_time=self.min_time,
            max_time=self.max_time,
        )

    def source(self, controls: dict[str, Array]) -> Array:
        """The saw note alone at the inner rate, (n * oversample,): stage 1."""
        n, sr = self.n_samples * self.oversample, self.inner_rate
        inc = dsp.phase_increment(controls["frequency"], sr, n)
        phase = dsp.phase_accumulator(controls["frequency"], sr, n)
        t = jnp.arange(n, dtype=jnp.float32) / sr
        gate = jnp.clip(t / self.ramp_s, 0.0, 1.0) * jnp.clip(
            (controls["length"] - t) / self.ramp_s, 0.0, 1.0
        )
        return dsp.db_to_amp(controls["level"]) * gate * dsp.saw_polyblep(phase, inc)

    def filtered(self, x: Array, controls: dict[str, Array]) -> Array:
        """Stage 2: the RBJ low-pass, at the inner rate."""
        b, a = dsp.lowpass_coeffs(controls["cutoff"], controls["resonance"], self.inner_rate)
        return dsp.biquad(x, b, a)

    def decimated(self, x: Array) -> Array:
        """Inner-rate audio -> output rate, (n,): the bins above the output's Nyquist go."""
        n = self.n_samples
        return jnp.fft.irfft(jnp.fft.rfft(x)[: n // 2 + 1], n) / self.oversample

    def dry(self, controls: dict[str, Array]) -> Array:
        """The source through the low-pass at the output rate: the echo's input."""
        return self.decimated(self.filtered(self.source(controls), controls))

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        wet = {name: controls[name] for name in ("time", "feedback", "mix")}
        return self.echo.synthesize(wet, key, self.dry(controls))
