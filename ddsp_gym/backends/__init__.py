"""Backends that turn knob settings into sound.

``sim`` renders the JAX plant (differentiable, deterministic). ``hardware``
(real synths over MIDI and audio) and ``plugin`` (hosted plugins) keep the
same env API; their dependencies are imported only when asked for.
"""

from __future__ import annotations

BACKENDS: tuple[str, ...] = ("sim", "hardware", "plugin")
AVAILABLE_BACKENDS: tuple[str, ...] = ("sim",)


def validate_backend(backend: str) -> str:
    """Return ``backend`` if this version can run it, else raise a clear error."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if backend not in AVAILABLE_BACKENDS:
        raise NotImplementedError(
            f"the {backend!r} backend is not available in this version of ddsp_gym; "
            f"available backends: {AVAILABLE_BACKENDS}"
        )
    return backend
