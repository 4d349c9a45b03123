"""Fixed per-plant descriptor ranges: the map's extent, measured once from random renders.

A plant's range of a descriptor is the 1st to 99th percentile of that descriptor over
:data:`RANGE_SOUNDS` renders at uniform random knob settings (seed :data:`RANGE_SEED`),
counting the sounds that score above 0 (audible and clean). They are stored in
``ranges.json`` beside this file, made by ``scripts/explore_ranges.py``, so every run on
a plant uses the same map whatever the search did; a plant missing from the file gets
the same measurement at run time (a note says so). A device uses its twin's ranges.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ddsp_gym.explore.descriptors import DESCRIPTOR_NAMES, DESCRIPTORS, OBJECTIVE_INDEX
from ddsp_gym.plants.base import AbstractPlant

RANGES_PATH = Path(__file__).with_name("ranges.json")
RANGE_SOUNDS = 1024
RANGE_SEED = 20_261_206
PERCENTILES = (1.0, 99.0)


def measure_ranges(
    plant: AbstractPlant,
    audio_in: np.ndarray | None = None,
    n: int = RANGE_SOUNDS,
    seed: int = RANGE_SEED,
) -> dict[str, list[float]]:
    """{descriptor: [1st, 99th percentile]} over ``n`` random renders of ``plant``.

    Percentiles are taken of the map coordinate (log10 on log axes) and returned as
    values; a degenerate range (a descriptor the knobs do not move) is widened by 1 %
    (or 0.01 on a linear axis) either side, so the map still has a width.
    """
    from ddsp_gym.explore.evaluators import SimEvaluator

    evaluator = SimEvaluator(plant, seed, audio_in)
    unit = np.random.default_rng(seed).uniform(size=(n, plant.num_knobs))
    rows = evaluator.evaluate(unit, 0)
    audible = rows[rows[:, OBJECTIVE_INDEX] > 0]
    if len(audible) < 10:
        raise ValueError(
            f"only {len(audible)} of {n} random settings of {type(plant).__name__} are "
            "audible: no map can be drawn"
        )
    ranges = {}
    for i, name in enumerate(DESCRIPTOR_NAMES):
        desc = DESCRIPTORS[name]
        low, high = np.percentile(desc.to_measure(audible[:, i]), PERCENTILES)
        if high - low < 1e-6:
            pad = 0.0043 if desc.log else 0.01  # log10(1.01) ~ 0.0043
            low, high = low - pad, high + pad
        ranges[name] = [float(f"{v:.6g}") for v in desc.from_measure(np.array([low, high]))]
    return ranges


def load_ranges(path: Path = RANGES_PATH) -> dict[str, dict[str, list[float]]]:
    """{plant name: {descriptor: [low, high]}} from the stored file ({} when absent)."""
    if not path.exists():
        return {}
    return json.loads(path.read_text())["plants"]


def plant_ranges(
    plant_name: str, plant: AbstractPlant, audio_in: np.ndarray | None = None, note=print
) -> dict[str, list[float]]:
    """The stored ranges of ``plant_name``, or (with a ``note``) ones measured now."""
    stored = load_ranges().get(plant_name)
    if stored is not None and set(stored) >= set(DESCRIPTOR_NAMES):
        return stored
    note(
        f"no stored descriptor ranges for plant {plant_name!r}: measuring them from "
        f"{RANGE_SOUNDS} random renders"
    )
    return measure_ranges(plant, audio_in)


def write_ranges(plants: dict[str, dict[str, list[float]]], path: Path = RANGES_PATH) -> Path:
    """Store ranges with how they were measured."""
    doc = {
        "how": f"{PERCENTILES[0]:g}th to {PERCENTILES[1]:g}th percentile of each descriptor "
        f"(log10 on log axes) over {RANGE_SOUNDS} uniform random knob settings "
        f"(seed {RANGE_SEED}) that score above 0; scripts/explore_ranges.py",
        "plants": plants,
    }
    path.write_text(json.dumps(doc, indent=1) + "\n")
    return path
