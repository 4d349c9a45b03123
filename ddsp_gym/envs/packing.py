"""One array per step to the host: the wrappers' outputs packed into float32 columns.

Every JAX array fetched to the host costs tens of microseconds of Python and
runtime work on CPU, more than a Level-1 env's whole render. So the jitted
step functions concatenate everything the host needs (observation, reward,
flags, info numbers, physical knob values, gradient) into one float32 array,
(width,) for one env or (N, width) for a vector env, and the wrappers slice it.
Flags travel as 0.0 / 1.0, exactly.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
from jax import Array


@dataclass(frozen=True)
class Layout:
    """Named fields of a packed array, in order; width None marks a scalar field.

    A scalar field is one column and its values carry no field axis ((...) not
    (..., 1)); a vector field of width w is (..., w), also when w == 1.
    """

    fields: tuple[tuple[str, int | None], ...]

    @functools.cached_property
    def slices(self) -> dict[str, slice]:
        out, start = {}, 0
        for name, width in self.fields:
            out[name] = slice(start, start + (1 if width is None else width))
            start = out[name].stop
        return out

    @functools.cached_property
    def starts(self) -> dict[str, int]:
        """The first column of each field (a scalar field's only one)."""
        return {name: span.start for name, span in self.slices.items()}

    @functools.cached_property
    def scalars(self) -> frozenset[str]:
        return frozenset(name for name, width in self.fields if width is None)

    def __contains__(self, name: str) -> bool:
        return name in self.slices

    def __getitem__(self, name: str) -> slice:
        return self.slices[name]


def pack(cols: Layout, values: dict[str, Array]) -> Array:
    """Concatenate the fields' ``values`` (float32) along a new last axis, in layout order."""
    parts = []
    for name in cols.slices:
        value = jnp.asarray(values[name], jnp.float32)
        parts.append(value[..., None] if name in cols.scalars else value)
    return jnp.concatenate(parts, axis=-1)


def column(packed: np.ndarray, cols: Layout, name: str) -> np.ndarray:
    """Field ``name`` of a packed host array (a copy): (...) for scalars, else (..., w)."""
    value = packed[..., cols[name]]
    return (value[..., 0] if name in cols.scalars else value).copy()


def unpack(packed: np.ndarray, cols: Layout) -> dict[str, np.ndarray]:
    """Every field of a packed host array (N, W), env axis first: (N,) scalars, (N, w) vectors.

    One transposed copy holds them all, a field per row, and each field is a view of it:
    right after a large jitted call every numpy call costs several times its isolated
    time (cold caches), and a copy per field made most of a vector step's host work
    (VolumeMatch, 64 envs: ~130 -> ~110 us a step, profiled). Vector fields are
    therefore column-major views; copy one (``np.ascontiguousarray``) where row-major
    order matters.
    """
    rows = np.ascontiguousarray(packed.T)
    return {
        name: rows[span.start] if name in cols.scalars else rows[span].T
        for name, span in cols.slices.items()
    }


def step_fields(obs_size: int, num_knobs: int, expose_grad: bool) -> list[tuple[str, int | None]]:
    """The fields of one step: obs, reward, flags, info numbers, knobs, optional gradient."""
    columns: list[tuple[str, int | None]] = [
        ("obs", obs_size),
        ("reward", None),
        ("terminated", None),
        ("distance", None),
        ("success", None),
        ("param_error", None),
        ("penalty", None),
        ("knobs", num_knobs),
    ]
    if expose_grad:
        columns.append(("reward_grad", num_knobs))
    return columns


def knob_vector(controls: dict[str, Array], names: Sequence[str]) -> Array:
    """Physical knob values {name: (...)} -> (..., d) in the plant's knob order."""
    return jnp.stack([controls[name] for name in names], axis=-1)
