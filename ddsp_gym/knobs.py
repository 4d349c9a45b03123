"""Knob specifications and the unit <-> physical mapping.

Agents and actions only ever see *unit* positions in [0, 1] (a knob's travel);
``KnobSpec`` maps them to physical values (Hz, dB, s, ratio) along a linear or
logarithmic curve, as a synth's front panel would.
"""

from __future__ import annotations

import abc
import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import jax.numpy as jnp
from jax import Array

Curve = Literal["linear", "log"]


@dataclass(frozen=True)
class KnobSpec:
    """One knob: its name, physical range, curve, unit and a one-line description.

    ``curve="log"`` spaces the travel evenly in log(value) (frequencies, times);
    it needs ``0 < low < high``.
    """

    name: str
    low: float
    high: float
    curve: Curve = "linear"
    unit: str = ""
    description: str = ""

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"knob {self.name!r}: high ({self.high}) must exceed low ({self.low})")
        if self.curve not in ("linear", "log"):
            raise ValueError(
                f"knob {self.name!r}: curve must be 'linear' or 'log', not {self.curve!r}"
            )
        if self.curve == "log" and self.low <= 0:
            raise ValueError(f"knob {self.name!r}: a log curve needs low > 0, got {self.low}")

    def to_physical(self, unit: Array | float) -> Array:
        """Unit position(s) in [0, 1] -> physical value(s). Inputs are clipped to [0, 1]."""
        u = jnp.clip(jnp.asarray(unit, jnp.float32), 0.0, 1.0)
        if self.curve == "log":
            return jnp.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        return self.low + u * (self.high - self.low)

    def to_unit(self, value: Array | float) -> Array:
        """Physical value(s) -> unit position(s), clipped to [0, 1]."""
        x = jnp.asarray(value, jnp.float32)
        if self.curve == "log":
            u = (jnp.log(jnp.maximum(x, 1e-30)) - math.log(self.low)) / (
                math.log(self.high) - math.log(self.low)
            )
        else:
            u = (x - self.low) / (self.high - self.low)
        return jnp.clip(u, 0.0, 1.0)


def to_physical(specs: Sequence[KnobSpec], unit: Array) -> dict[str, Array]:
    """Unit vector (d,) -> {knob name: physical value}."""
    return {spec.name: spec.to_physical(unit[i]) for i, spec in enumerate(specs)}


def to_unit(specs: Sequence[KnobSpec], values: dict[str, float]) -> Array:
    """{knob name: physical value} -> unit vector (d,). Every knob must be given."""
    missing = [s.name for s in specs if s.name not in values]
    unknown = sorted(set(values) - {s.name for s in specs})
    if missing or unknown:
        raise ValueError(
            f"knob values do not match the plant: missing {missing}, unknown {unknown}; "
            f"knobs are {[s.name for s in specs]}"
        )
    return jnp.stack([spec.to_unit(values[spec.name]) for spec in specs])


class Knobbed(abc.ABC):
    """What is played by named knobs (a plant, a streaming plant): their specs, in the
    order of the unit vector, and the count and names derived from them."""

    @property
    @abc.abstractmethod
    def knob_specs(self) -> tuple[KnobSpec, ...]:
        """The knobs, in the order of the unit vector."""

    @property
    def num_knobs(self) -> int:
        return len(self.knob_specs)

    @functools.cached_property
    def knob_names(self) -> tuple[str, ...]:
        # Cached: subclasses build their knob specs on each access, and envs name the knobs
        # in every step's info (a frozen dataclass still has an instance dict for this).
        return tuple(spec.name for spec in self.knob_specs)
