"""Count XLA compilations, to prove a loop recompiles nothing (and to time compiles)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import jax

# The event JAX records once per backend (XLA) compilation (jax/_src/dispatch.py).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@dataclass
class CompileCount:
    """Compilations seen inside a :func:`count_compilations` block."""

    count: int = 0
    seconds: float = 0.0


@contextmanager
def count_compilations() -> Iterator[CompileCount]:
    """Count the XLA compilations (and their seconds) that happen inside the block.

    Uses ``jax.monitoring``'s duration events, so it sees every compilation of
    every jitted function, cached or not by the caller.
    """
    seen = CompileCount()

    def listener(event: str, duration_secs: float, **_kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            seen.count += 1
            seen.seconds += duration_secs

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield seen
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
