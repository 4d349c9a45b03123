"""Physiology rewards over Lab Streaming Layer (docs/physiology.md).

:class:`PhysiologyReward` (``reward: {source: physiology, ...}``) reads a channel of an
LSL stream (EEG band power, heart rate, any scalar) after each sound, with delay
compensation and smoothing; :class:`SimulatedPhysiology` / :class:`SimulatedStream` are a
seeded simulated listener published over LSL; :func:`local_lsl_config` keeps LSL on this
machine. pylsl (the ``physiology`` extra) is imported only when a stream is opened.
"""

from __future__ import annotations

import importlib
from typing import Any

# Names -> their modules, imported on first use: `ddsp-gym --help` builds the physiology
# subcommand's parser from this package without importing JAX (the reward module does).
_EXPORTS = {
    "GOALS": "reward",
    "PhysiologyReward": "reward",
    "CHANNEL_NAMES": "simulated",
    "SimulatedPhysiology": "simulated",
    "SimulatedStream": "simulated",
    "Taste": "simulated",
    "audio_features": "simulated",
    "LOCAL_CONFIG": "stream",
    "StreamLost": "stream",
    "StreamNotFound": "stream",
    "StreamQuery": "stream",
    "StreamReader": "stream",
    "local_lsl_config": "stream",
    "smoothed": "stream",
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
