"""Plants: one synth or effect per file, each a frozen dataclass with a pure ``render``."""

from __future__ import annotations

from ddsp_gym.plants.adsr_tone import AdsrTone
from ddsp_gym.plants.amsynth_twin import AmsynthTwin
from ddsp_gym.plants.base import AbstractPlant
from ddsp_gym.plants.compressor import Compressor
from ddsp_gym.plants.delay import Delay
from ddsp_gym.plants.designer_voice import DesignerVoice
from ddsp_gym.plants.distortion import Distortion
from ddsp_gym.plants.effect import AbstractEffect
from ddsp_gym.plants.faust import FaustPlant
from ddsp_gym.plants.filtered_saw import FilteredSaw
from ddsp_gym.plants.fm2 import FM2
from ddsp_gym.plants.fm_sine import FMSine
from ddsp_gym.plants.formant import FormantVoice
from ddsp_gym.plants.gain_stage import GainStage
from ddsp_gym.plants.guitar_amp import GuitarAmp
from ddsp_gym.plants.harmonic import HarmonicNote
from ddsp_gym.plants.resonant_filter import ResonantFilter
from ddsp_gym.plants.reverb import Reverb
from ddsp_gym.plants.saw_chain import SawChain
from ddsp_gym.plants.sine import SineOscillator
from ddsp_gym.plants.subtractive import Subtractive

# Name used in envs_registry.yaml and on the command line -> plant class.
PLANTS: dict[str, type[AbstractPlant]] = {
    "sine": SineOscillator,
    "filtered_saw": FilteredSaw,
    "adsr_tone": AdsrTone,
    "gain": GainStage,
    "amsynth_twin": AmsynthTwin,
    "compressor": Compressor,
    "delay": Delay,
    "reverb": Reverb,
    "distortion": Distortion,
    "guitar_amp": GuitarAmp,
    "fm2": FM2,
    "subtractive": Subtractive,
    "formant": FormantVoice,
    "fm_sine": FMSine,
    "harmonic": HarmonicNote,
    "resonant_filter": ResonantFilter,
    "faust": FaustPlant,
    "designer_voice": DesignerVoice,
    "saw_chain": SawChain,
}


def make_plant(name: str, **config) -> AbstractPlant:
    """Build a plant by its registry name, e.g. ``make_plant("sine", sample_rate=16000)``."""
    try:
        cls = PLANTS[name]
    except KeyError:
        raise ValueError(f"unknown plant {name!r}; known plants: {sorted(PLANTS)}") from None
    return cls(**config)


__all__ = [
    "FM2",
    "PLANTS",
    "AbstractEffect",
    "AbstractPlant",
    "AdsrTone",
    "AmsynthTwin",
    "Compressor",
    "Delay",
    "DesignerVoice",
    "Distortion",
    "FMSine",
    "FaustPlant",
    "FilteredSaw",
    "FormantVoice",
    "GainStage",
    "GuitarAmp",
    "HarmonicNote",
    "Reverb",
    "ResonantFilter",
    "SawChain",
    "SineOscillator",
    "Subtractive",
    "make_plant",
]
