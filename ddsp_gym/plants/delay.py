"""A feedback delay (echo) with a fractional delay time."""

from __future__ import annotations

import math
from dataclasses import dataclass

from jax import Array

from ddsp_gym import dsp
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants.effect import AbstractEffect


@dataclass(frozen=True)
class Delay(AbstractEffect):
    """Echo: (1 - mix) x + mix sum_k g^(k-1) x(t - kT), T fractional, up to ``max_time`` s.

    The delay line with feedback is rendered in closed form: echo k is a
    Gaussian fractional-delay tap at kT with gain g^(k-1), and the taps are
    applied by FFT convolution (see :mod:`ddsp_gym.dsp.delay`; the repeats are
    gently low-passed, like a tape delay's).
    Feedback stops at 0.9 so the repeats always die away; the mix stays within
    10-90% so both the click and its echo are heard (a fully wet, feedback-free
    delay is only a shift, whose time no listener could tell without the dry).
    """

    duration: float = 1.0
    program: str = "impulses"
    min_time: float = 0.01
    max_time: float = 1.0
    max_feedback: float = 0.9

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 < self.min_time < self.max_time:
            raise ValueError(f"need 0 < min_time < max_time, got {self.min_time}, {self.max_time}")
        if not 0.0 < self.max_feedback < 1.0:
            raise ValueError(f"max_feedback must be in (0, 1), got {self.max_feedback}")

    @property
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        return (
            KnobSpec("time", self.min_time, self.max_time, "log", "s", "spacing of the echoes"),
            KnobSpec("feedback", 0.0, self.max_feedback, "linear", "", "gain of each repeat"),
            KnobSpec("mix", 0.1, 0.9, "linear", "", "wet share of the output"),
        )

    @property
    def n_echoes(self) -> int:
        """Echoes written per render: enough to fill the output at the shortest time."""
        return math.ceil(self.n_samples / (self.min_time * self.sample_rate)) + 1

    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        return dsp.feedback_delay(
            self.dry(audio_in),
            controls["time"] * self.sample_rate,
            controls["feedback"],
            controls["mix"],
            self.n_echoes,
            self.known_input_spectrum(audio_in),
        )
