"""Streaming envs: a step is one control block of a continuous sound (docs/streaming.md).

Block plants carry their state (phases, filter memory, delay lines) from block to block
and ramp their knobs per sample; stream tasks score each block. The functional core is
:mod:`ddsp_gym.streaming.functional`, the Gymnasium env :mod:`ddsp_gym.streaming.gym_env`.
"""

from __future__ import annotations

from ddsp_gym.streaming.base import AbstractBlockPlant, knob_ramp, render_stream
from ddsp_gym.streaming.drone import DroneVoice
from ddsp_gym.streaming.effect_chain import FilterDelayChain
from ddsp_gym.streaming.pulse_voice import PulseVoice
from ddsp_gym.streaming.tasks import AbstractStreamTask, DroneNovelty, JamPartner, PerformerBands

STREAM_PLANTS: dict[str, type[AbstractBlockPlant]] = {
    "drone": DroneVoice,
    "filter_delay": FilterDelayChain,
    "pulse_voice": PulseVoice,
}
STREAM_TASKS: dict[str, type[AbstractStreamTask]] = {
    "drone_novelty": DroneNovelty,
    "performer_bands": PerformerBands,
    "jam_partner": JamPartner,
}

__all__ = [
    "STREAM_PLANTS",
    "STREAM_TASKS",
    "AbstractBlockPlant",
    "AbstractStreamTask",
    "DroneNovelty",
    "DroneVoice",
    "FilterDelayChain",
    "JamPartner",
    "PerformerBands",
    "PulseVoice",
    "knob_ramp",
    "render_stream",
]
