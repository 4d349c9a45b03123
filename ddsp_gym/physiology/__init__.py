"""Physiology rewards over Lab Streaming Layer (docs/physiology.md).

:class:`PhysiologyReward` (``reward: {source: physiology, ...}``) reads a channel of an
LSL stream (EEG band power, heart rate, any scalar) after each sound, with delay
compensation and smoothing; :class:`SimulatedPhysiology` / :class:`SimulatedStream` are a
seeded simulated listener published over LSL; :func:`local_lsl_config` keeps LSL on this
machine. pylsl (the ``physiology`` extra) is imported only when a stream is opened.
"""

from ddsp_gym.physiology.reward import GOALS, PhysiologyReward
from ddsp_gym.physiology.simulated import (
    CHANNEL_NAMES,
    SimulatedPhysiology,
    SimulatedStream,
    Taste,
    audio_features,
)
from ddsp_gym.physiology.stream import (
    LOCAL_CONFIG,
    StreamLost,
    StreamNotFound,
    StreamQuery,
    StreamReader,
    local_lsl_config,
    smoothed,
)

__all__ = [
    "CHANNEL_NAMES",
    "GOALS",
    "LOCAL_CONFIG",
    "PhysiologyReward",
    "SimulatedPhysiology",
    "SimulatedStream",
    "StreamLost",
    "StreamNotFound",
    "StreamQuery",
    "StreamReader",
    "Taste",
    "audio_features",
    "local_lsl_config",
    "smoothed",
]
