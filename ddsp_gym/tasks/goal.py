"""Helpers shared by goal tasks (reach a property, not a target sound)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.batching import chunked_vmap
from ddsp_gym.plants.base import AbstractPlant


def smooth_relu(x: Array, width: float) -> Array:
    """max(x, 0) rounded off within ``width`` of 0 (a softplus of scale ``width``)."""
    return width * jax.nn.softplus(x / width)


def reference_setting(
    task: Any,
    plant: AbstractPlant,
    key: Array,
    render_key: Array,
    box: Mapping[str, tuple[float, float]],
    candidates: int = 64,
) -> Array:
    """A knob setting (d,) that meets a goal task: the best of random candidates.

    Candidates are uniform in unit space, within ``box`` (unit-travel ranges
    by knob name; knobs not named range over [0, 1]). A goal task's distance
    ignores the target, so the candidate nearest the goal is a reference
    solution: the episode's hidden "target" knobs. Candidates are heard with the
    episode's own ``render_key`` (its noise), so the reference meets the goal in
    the episode itself, not only in another noise draw. Pure and jittable.
    """
    names = plant.knob_names
    low = jnp.array([box.get(name, (0.0, 1.0))[0] for name in names])
    high = jnp.array([box.get(name, (0.0, 1.0))[1] for name in names])
    proposals = low + (high - low) * jax.random.uniform(key, (candidates, len(names)))

    def distance(knobs: Array) -> Array:
        features = task.features(plant.render(knobs, render_key), plant.sample_rate)
        return task.distance(features, features)

    return proposals[jnp.argmin(chunked_vmap(distance, in_axes=(0,))(proposals))]
