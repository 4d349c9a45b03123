"""The base of every effect plant: it processes an input, by default a program signal."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym.dsp.convolution import fft_size
from ddsp_gym.plants.base import AbstractPlant, knob_independent
from ddsp_gym.program import PROGRAM_KINDS, program_signal


@dataclass(frozen=True)
class AbstractEffect(AbstractPlant):
    """An effect: ``synthesize`` processes ``audio_in`` (n_samples,).

    Without an input the effect processes its default program, the project's
    seeded test signal of kind ``program`` (see :mod:`ddsp_gym.program`), so an
    effect env needs no audio file and every run hears the same material.
    """

    program: str = "mix"
    program_seed: int = 0

    def __post_init__(self) -> None:
        if self.program not in PROGRAM_KINDS:
            raise ValueError(
                f"unknown program {self.program!r}; known kinds: {list(PROGRAM_KINDS)}"
            )

    @property
    def needs_input(self) -> bool:
        return True

    def default_input(self) -> np.ndarray:
        """The default program, float32 (n_samples,)."""
        return program_signal(self.program, self.sample_rate, self.n_samples, self.program_seed)

    def dry(self, audio_in: Array | None) -> Array:
        """The signal to process: ``audio_in``, or the default program when it is None."""
        return jnp.asarray(self.input_or_default(audio_in), jnp.float32)

    @knob_independent
    def default_input_spectrum(self) -> Array:
        """rfft of the default program, zero-padded for a linear convolution with an
        (n_samples,) response: a constant of the compiled render."""
        return jnp.fft.rfft(self.default_input(), fft_size(2 * self.n_samples - 1))

    def known_input_spectrum(self, audio_in: Array | None) -> Array | None:
        """The default program's constant spectrum when ``audio_in`` is None, else None.

        For ``dsp.fft_convolve(self.dry(audio_in), response, x_spectrum=...)`` with an
        (n_samples,) response: a render of the default program then takes two FFTs
        instead of three.
        """
        return self.default_input_spectrum() if audio_in is None else None
