"""Errors of the hardware backend: each says what went wrong and what to check."""

from __future__ import annotations

HARDWARE_EXTRA_HINT = "install the hardware extra: pip install 'ddsp_gym[hardware]'"


class HardwareError(RuntimeError):
    """Base class: something between the env and the real device failed."""


class HardwareDependencyError(HardwareError, ImportError):
    """python-rtmidi, sounddevice or the PortAudio library is missing."""


class MidiPortNotFoundError(HardwareError):
    """The requested MIDI port does not exist; the message lists the ports that do."""


class AudioDeviceNotFoundError(HardwareError):
    """The requested audio device does not exist; the message lists the devices that do."""


class SilentTakeError(HardwareError):
    """A take came back silent: cable unplugged, synth off, wrong input, volume at zero."""


class XrunError(HardwareError):
    """Every attempt at a take was hit by an audio over/underrun (dropped samples)."""


class HardwareTimeoutError(HardwareError, TimeoutError):
    """The audio stream stopped delivering blocks (audio server gone or stalled)."""


class KnobMapError(ValueError):
    """A knob map (YAML) that does not validate; the message names the offending field."""
