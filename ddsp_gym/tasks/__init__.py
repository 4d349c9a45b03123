"""Tasks: target features, distances and success criteria, one per demo family."""

from __future__ import annotations

from ddsp_gym.tasks.base import AbstractTask, RewardSettings
from ddsp_gym.tasks.brightness import BrightnessGoal
from ddsp_gym.tasks.design import SoundDesignGoal
from ddsp_gym.tasks.effects import DecayMatch, DynamicsMatch, EchoMatch, HarmonicsMatch, ToneMatch
from ddsp_gym.tasks.lpc_envelope import LPCEnvelopeMatch
from ddsp_gym.tasks.matching import CentroidMatch, EnvelopeMatch, LoudnessMatch, SpectrumMatch
from ddsp_gym.tasks.patch import PatchMatch
from ddsp_gym.tasks.resonance import ResonanceBand
from ddsp_gym.tasks.spoken import ProxyTimbreMatch
from ddsp_gym.tasks.timbre import FMBellMatch, FormantMatch, SubtractiveMatch
from ddsp_gym.tasks.waveform import PitchWaveformMatch

# Name used in envs_registry.yaml -> task class.
TASKS: dict[str, type[AbstractTask]] = {
    "centroid": CentroidMatch,
    "spectrum": SpectrumMatch,
    "envelope": EnvelopeMatch,
    "loudness": LoudnessMatch,
    "patch": PatchMatch,
    "dynamics": DynamicsMatch,
    "echo": EchoMatch,
    "decay": DecayMatch,
    "harmonics": HarmonicsMatch,
    "tone": ToneMatch,
    "fm_bell": FMBellMatch,
    "subtractive_patch": SubtractiveMatch,
    "formant": FormantMatch,
    "lpc_envelope": LPCEnvelopeMatch,
    "pitch_waveform": PitchWaveformMatch,
    "brightness": BrightnessGoal,
    "resonance_band": ResonanceBand,
    "sound_design": SoundDesignGoal,
    "proxy_timbre": ProxyTimbreMatch,
}


def _task_class(name: str) -> type[AbstractTask]:
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(TASKS)}") from None


def make_task(name: str, **config) -> AbstractTask:
    """Build a task by its registry name from its static config, e.g. ``make_task("centroid")``.

    Numeric reward settings (:class:`RewardSettings`) are not task config: see
    :func:`make_task_with_settings`.
    """
    return _task_class(name)(**config)


def make_task_with_settings(name: str, **config) -> tuple[AbstractTask, RewardSettings]:
    """(task, reward settings) from a registry ``task_config`` that mixes both kinds.

    Settings not in ``config`` keep the task class's defaults.
    """
    cls = _task_class(name)
    numeric = {k: config.pop(k) for k in RewardSettings._fields if k in config}
    settings = cls.settings._replace(**numeric)
    return cls(**config), settings


__all__ = [
    "TASKS",
    "AbstractTask",
    "BrightnessGoal",
    "CentroidMatch",
    "DecayMatch",
    "DynamicsMatch",
    "EchoMatch",
    "EnvelopeMatch",
    "FMBellMatch",
    "FormantMatch",
    "HarmonicsMatch",
    "LPCEnvelopeMatch",
    "LoudnessMatch",
    "PitchWaveformMatch",
    "ResonanceBand",
    "PatchMatch",
    "RewardSettings",
    "SoundDesignGoal",
    "SpectrumMatch",
    "SubtractiveMatch",
    "ToneMatch",
    "make_task",
    "make_task_with_settings",
]
