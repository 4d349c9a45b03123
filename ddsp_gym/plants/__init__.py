"""Plants: one synth or effect per file, each a frozen dataclass with a pure ``render``."""

from __future__ import annotations

from ddsp_gym.plants.adsr_tone import AdsrTone
from ddsp_gym.plants.amsynth_twin import AmsynthTwin
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.plants.filtered_saw import FilteredSaw
from ddsp_gym.plants.gain_stage import GainStage
from ddsp_gym.plants.sine import SineOscillator

# Name used in envs_registry.yaml and on the command line -> plant class.
PLANTS: dict[str, type[AbstractPlant]] = {
    "sine": SineOscillator,
    "filtered_saw": FilteredSaw,
    "adsr_tone": AdsrTone,
    "gain": GainStage,
    "amsynth_twin": AmsynthTwin,
}


def make_plant(name: str, **config) -> AbstractPlant:
    """Build a plant by its registry name, e.g. ``make_plant("sine", sample_rate=16000)``."""
    try:
        cls = PLANTS[name]
    except KeyError:
        raise ValueError(f"unknown plant {name!r}; known plants: {sorted(PLANTS)}") from None
    return cls(**config)


__all__ = [
    "PLANTS",
    "AbstractPlant",
    "AdsrTone",
    "AmsynthTwin",
    "FilteredSaw",
    "GainStage",
    "SineOscillator",
    "make_plant",
]
