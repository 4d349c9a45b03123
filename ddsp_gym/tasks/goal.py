"""Helpers shared by goal tasks (reach a property, not a target sound)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
from jax import Array

from ddsp_gym.plants.base import AbstractPlant


def smooth_relu(x: Array, width: float) -> Array:
    """max(x, 0) rounded off within ``width`` of 0 (a softplus of scale ``width``)."""
    return width * jax.nn.softplus(x / width)


# Candidates are heard this many at a time (one vmap); the search stops after the first
# group holding one that meets the goal with margin (GOOD_ENOUGH of the threshold).
SEARCH_GROUP = 8
# The knobs travel to the env as an action and back (float rounding), and its step must
# still meet the goal: a reference within half the success threshold keeps a margin.
GOOD_ENOUGH = 0.5


def reference_setting(
    task: Any,
    plant: AbstractPlant,
    key: Array,
    render_key: Array,
    success_threshold: Array,
    box: Mapping[str, tuple[float, float]],
    candidates: int = 256,
) -> Array:
    """A knob setting (d,) that meets a goal task: the best of random candidates heard.

    Candidates are uniform in unit space, within ``box`` (unit-travel ranges
    by knob name; knobs not named range over [0, 1]). A goal task's distance
    ignores the target, so a candidate that meets the goal is a reference
    solution: the episode's hidden "target" knobs. They are heard
    :data:`SEARCH_GROUP` at a time until a group holds one within
    :data:`GOOD_ENOUGH` of the success threshold (or all ``candidates`` are heard),
    and the best heard is returned: in their boxes about 1 in 6 candidates of
    BrightnessStability and 1 in 5 of ResonanceSweetSpot do, so a reset usually hears
    one group, while the search may go on to 256 for a rare noise draw where few meet
    it. Candidates are heard with the episode's own ``render_key`` (its noise), so the
    reference meets the goal in the episode itself, not only in another noise draw.
    Pure and jittable; under ``vmap`` the search runs until every episode of the batch
    has its reference.
    """
    if candidates % SEARCH_GROUP:
        raise ValueError(f"candidates must be a multiple of {SEARCH_GROUP}, not {candidates}")
    names = plant.knob_names
    low = jnp.array([box.get(name, (0.0, 1.0))[0] for name in names])
    high = jnp.array([box.get(name, (0.0, 1.0))[1] for name in names])
    proposals = low + (high - low) * jax.random.uniform(key, (candidates, len(names)))
    groups = proposals.reshape(candidates // SEARCH_GROUP, SEARCH_GROUP, len(names))
    good_enough = GOOD_ENOUGH * success_threshold

    def distance(knobs: Array) -> Array:
        features = task.features(plant.render(knobs, render_key), plant.sample_rate)
        return task.distance(features, features)

    def searching(carry: tuple) -> Array:
        group, best_distance, _ = carry
        return (group < groups.shape[0]) & (best_distance > good_enough)

    def hear_group(carry: tuple) -> tuple:
        group, best_distance, best = carry
        distances = jax.vmap(distance)(groups[group])
        i = jnp.argmin(distances)
        better = distances[i] < best_distance
        best_distance = jnp.where(better, distances[i], best_distance)
        return group + 1, best_distance, jnp.where(better, groups[group, i], best)

    start = (jnp.int32(0), jnp.array(jnp.inf, jnp.float32), proposals[0])
    return jax.lax.while_loop(searching, hear_group, start)[2]
