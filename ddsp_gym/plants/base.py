"""The plant interface: named knobs plus a pure JAX ``render``."""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ddsp_gym import knobs as knobs_lib
from ddsp_gym.knobs import Knobbed

PlantT = TypeVar("PlantT", bound="AbstractPlant")


def knob_independent(method: Callable[[PlantT], Any]) -> Callable[[PlantT], Any]:
    """Mark a plant method whose result depends on the static config only (a fixed note's
    waveform, a fixed envelope).

    It is evaluated once per plant configuration, as one small compiled program, and
    returned as numpy arrays, so a traced render embeds it as a constant instead of
    computing it again for every voice of every call. Lowering and compiling it
    explicitly runs it even while a render is being traced (a plain ``jax.jit`` call
    would be inlined into that trace); ``jax.ensure_compile_time_eval`` would run it
    op by op instead, compiling each op on its own and slowing a render's first compile.
    """

    @functools.lru_cache(maxsize=128)  # plants are frozen dataclasses, hence hashable
    def evaluate(plant: PlantT) -> Any:
        if jax.config.jax_disable_jit:  # debugging eagerly: there is no trace to inline into
            values = method(plant)
        else:
            values = jax.jit(method, static_argnums=0).lower(plant).compile()()
        return jax.tree.map(np.asarray, values)

    @functools.wraps(method)
    def constant(self: PlantT) -> Any:
        return evaluate(self)

    return constant


@dataclass(frozen=True)
class AbstractPlant(Knobbed):
    """A synth or effect with named knobs and a differentiable ``render``.

    Shape-setting configuration (sample rate, duration) is static: it lives in
    the frozen dataclass fields, so a plant is hashable and jit caches one
    compiled render per configuration. Knob values are traced arrays.

    Concrete plants implement :attr:`knob_specs` and :meth:`synthesize`; they
    render one voice, unbatched (``jax.vmap`` batches them).
    """

    sample_rate: int = 16_000
    duration: float = 0.25

    @abc.abstractmethod
    def synthesize(self, controls: dict[str, Array], key: Array, audio_in: Array | None) -> Array:
        """Render audio (n_samples,) from physical ``controls`` (see :meth:`controls`)."""

    @property
    def n_samples(self) -> int:
        return int(round(self.sample_rate * self.duration))

    @knob_independent
    def sample_times(self) -> Array:
        """The time of each output sample in seconds, (n_samples,)."""
        return jnp.arange(self.n_samples, dtype=jnp.float32) / self.sample_rate

    @property
    def gate_s(self) -> float:
        """How long the note is held in a render, in seconds (a hardware take holds its MIDI
        note this long). Instruments with a note-off inside the render override it."""
        return self.duration

    @property
    def needs_input(self) -> bool:
        """True for effects, which process an input signal."""
        return False

    def default_input(self) -> np.ndarray | None:
        """The signal an effect processes when given none (None for instruments)."""
        return None

    def input_or_default(self, audio_in: Array | np.ndarray | None) -> Any:
        """``audio_in``, or the default program when it is None (None for instruments)."""
        return self.default_input() if audio_in is None else audio_in

    def controls(self, knobs: Array) -> dict[str, Array]:
        """Unit knob positions (d,) -> {knob name: physical value}."""
        return knobs_lib.to_physical(self.knob_specs, knobs)

    def render(self, knobs: Array, key: Array, audio_in: Array | None = None) -> Array:
        """Unit knob positions (d,) in [0, 1] -> mono audio (n_samples,) in about [-1, 1].

        ``key`` seeds any randomness (noise sources); ``audio_in`` (n_samples,)
        is the signal an effect processes.
        """
        audio = self.synthesize(self.controls(jnp.asarray(knobs, jnp.float32)), key, audio_in)
        # A non-finite sample would poison every feature; effects clamp their own
        # states, this is the last guard.
        return jnp.nan_to_num(audio, nan=0.0, posinf=1.0, neginf=-1.0)

    def knobs_from_physical(self, values: dict[str, float]) -> Array:
        """{knob name: physical value} -> unit positions (d,)."""
        return knobs_lib.to_unit(self.knob_specs, values)
