"""Backends that turn knob settings into sound.

``sim`` renders the JAX plant (differentiable, deterministic). ``hardware``
plays the same knobs on a real synth or effect (MIDI out with python-rtmidi,
audio in with sounddevice; see ``README.md`` here); its dependencies are
imported only when it is asked for. ``plugin`` renders a hosted VST2/VST3
plugin offline through DawDreamer (deterministic, faster than real time;
``plugin.py``), imported only when asked for too.
"""

from __future__ import annotations

from ddsp_gym.backends.errors import (
    HARDWARE_EXTRA_HINT,
    PLUGIN_EXTRA_HINT,
    HardwareDependencyError,
    PluginDependencyError,
)

BACKENDS: tuple[str, ...] = ("sim", "hardware", "plugin")
AVAILABLE_BACKENDS: tuple[str, ...] = ("sim", "hardware", "plugin")


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
    if backend not in AVAILABLE_BACKENDS:
        raise NotImplementedError(
            f"the {backend!r} backend is not available in this version of ddsp_gym; "
            f"available backends: {AVAILABLE_BACKENDS}"
        )
    if backend == "hardware":
        check_hardware_dependencies()
    if backend == "plugin":
        from ddsp_gym.backends.plugin import import_dawdreamer

        import_dawdreamer()
    return backend


__all__ = [
    "AVAILABLE_BACKENDS",
    "BACKENDS",
    "HARDWARE_EXTRA_HINT",
    "PLUGIN_EXTRA_HINT",
    "HardwareDependencyError",
    "PluginDependencyError",
    "check_hardware_dependencies",
    "validate_backend",
]
