"""Backends that turn knob settings into sound, all behind one interface (``base.py``).

``sim`` renders the JAX plant (differentiable, deterministic). ``hardware``
plays the same knobs on a real synth or effect (MIDI out with python-rtmidi,
audio in with sounddevice; see ``README.md`` here); its dependencies are
imported only when it is asked for. ``plugin`` renders a hosted VST2/VST3
plugin offline through DawDreamer (deterministic, faster than real time;
``plugin.py``), imported only when asked for too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ddsp_gym.backends.errors import (
    HARDWARE_EXTRA_HINT,
    PLUGIN_EXTRA_HINT,
    HardwareDependencyError,
    PluginDependencyError,
)

if TYPE_CHECKING:
    from ddsp_gym.backends.base import AbstractBackend
    from ddsp_gym.envs.config import EnvConfig
    from ddsp_gym.plants.base import AbstractPlant

BACKENDS: tuple[str, ...] = ("sim", "hardware", "plugin")


def check_hardware_dependencies() -> None:
    """Import python-rtmidi and sounddevice (with PortAudio), or say which extra to install."""
    from ddsp_gym.backends.audio import import_sounddevice
    from ddsp_gym.backends.midi import import_rtmidi

    import_rtmidi()
    import_sounddevice()


def validate_backend(backend: str) -> str:
    """Return ``backend`` if this installation can run it, else raise a clear error."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend == "hardware":
        check_hardware_dependencies()
    if backend == "plugin":
        from ddsp_gym.backends.plugin import import_dawdreamer

        import_dawdreamer()
    return backend


def make_backend(config: EnvConfig, plant: AbstractPlant) -> AbstractBackend:
    """The backend ``config.backend`` names, playing ``plant`` with ``config``'s options."""
    name = validate_backend(config.backend)
    if name == "hardware":
        from ddsp_gym.backends.hardware import HardwareBackend

        return HardwareBackend(plant, dict(config.hardware))
    if name == "plugin":
        from ddsp_gym.backends.plugin import PluginBackend

        return PluginBackend(plant, dict(config.plugin))
    from ddsp_gym.backends.sim import SimBackend
    from ddsp_gym.envs.compile import cpu_schedule_for

    return SimBackend(plant, cpu_schedule_for(config.plant, config.task))


__all__ = [
    "BACKENDS",
    "HARDWARE_EXTRA_HINT",
    "PLUGIN_EXTRA_HINT",
    "HardwareDependencyError",
    "PluginDependencyError",
    "check_hardware_dependencies",
    "make_backend",
    "validate_backend",
]
