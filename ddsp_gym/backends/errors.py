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


class DeviceLostError(HardwareError):
    """The device went away (its MIDI port vanished) before or during a take: it crashed,
    was closed or unplugged. The take is not scored; after the device is back, reset()."""


class XrunError(HardwareError):
    """Every attempt at a take was hit by an audio over/underrun (dropped samples)."""


class HardwareTimeoutError(HardwareError, TimeoutError):
    """The audio stream stopped delivering blocks (audio server gone or stalled)."""


class KnobMapError(ValueError):
    """A knob map (YAML) that does not validate; the message names the offending field."""


PLUGIN_EXTRA_HINT = "install the plugin extra: pip install 'ddsp_gym[plugin]' (DawDreamer)"


class PluginError(RuntimeError):
    """Base class: hosting or rendering a plugin failed."""


class PluginDependencyError(PluginError, ImportError):
    """DawDreamer (the plugin host) is not installed or does not import."""


class PluginNotFoundError(PluginError, FileNotFoundError):
    """No plugin at the given path or name; the message lists the folders searched and
    the plugins found there."""


class PluginLoadError(PluginError):
    """The host could not load the file as a plugin; the message carries the host's output."""


class UnknownParameterError(PluginError, KeyError):
    """A knob map names a parameter the plugin lacks; the message lists the ones it has."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0]) if self.args else ""


class SilentRenderError(PluginError):
    """A render came back silent: a wrong init patch, volume at zero, or an effect fed silence."""
