"""How ddsp_gym sets up JAX's CPU runtime: once, when the package is imported.

Two settings, each with an environment variable to opt out: JAX's CPU dispatch
(:func:`configure_cpu_dispatch`) and glibc's malloc (:func:`configure_malloc`).

JAX's CPU client dispatches asynchronously by default: each jitted call is handed to
a worker thread and the caller is woken when its result is read. An env step is a
jitted call whose result Python needs at once (Gymnasium returns numpy), so the
hand-off buys no overlap and costs two thread wake-ups a step. At 0.2-0.5 ms a step
that is a large share: on a 2-core machine, single-env loops ran 20-90 % more steps/s
with inline dispatch (SineTuner 2,961 -> 4,237, VolumeMatch 2,956 -> 5,737 steps/s,
profiled), the native vector envs and the agents' jitted loops no slower and their
results identical. ``ddsp-gym bench --perf`` measures both ways in each run.

The setting is JAX's ``jax_cpu_enable_async_dispatch`` flag, which JAX reads once, when
it makes its CPU client: ddsp_gym sets it only if that has not happened yet, and leaves
it alone when ``DDSP_GYM_CPU_ASYNC_DISPATCH=1`` is set (for programs whose own JAX code
relies on async pipelining on CPU). GPU and TPU clients are not affected.
"""

from __future__ import annotations

import ctypes
import os
import sys

import jax

ASYNC_DISPATCH_ENV_VAR = "DDSP_GYM_CPU_ASYNC_DISPATCH"
_JAX_FLAG = "jax_cpu_enable_async_dispatch"


def _backends_initialized() -> bool:
    """Whether JAX has made its clients (after which the flag no longer takes effect)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without that module: assume the worst, change nothing
        return True
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return True if check is None else bool(check())


def _env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to 1, true or yes (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def wants_async_dispatch() -> bool:
    """True when the user asked (``DDSP_GYM_CPU_ASYNC_DISPATCH=1``) to keep JAX's default."""
    return _env_flag(ASYNC_DISPATCH_ENV_VAR)


def configure_cpu_dispatch() -> bool:
    """Make JAX run CPU computations inline, unless the user opted out or it is too late.

    Returns True when this call set the flag.
    """
    if wants_async_dispatch() or _backends_initialized() or _JAX_FLAG not in jax.config.values:
        return False
    jax.config.update(_JAX_FLAG, False)
    return True


def cpu_dispatch() -> str:
    """'inline' or 'async': how this process's JAX CPU client runs computations.

    Read from the flag, which is what the client was made with once JAX has started
    (unless someone changed the flag after that, which JAX ignores).
    """
    return "async" if jax.config.values.get(_JAX_FLAG, True) else "inline"


# ---- malloc -----------------------------------------------------------------------------

SYSTEM_MALLOC_ENV_VAR = "DDSP_GYM_SYSTEM_MALLOC"
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory the heap keeps for reuse instead of returning it to the system.
RETAINED_FREE_BYTES = 1 << 30
_malloc_configured = False


def wants_system_malloc() -> bool:
    """True when the user asked (``DDSP_GYM_SYSTEM_MALLOC=1``) to keep glibc's defaults."""
    return _env_flag(SYSTEM_MALLOC_ENV_VAR)


def configure_malloc() -> bool:
    """Keep freed memory for reuse instead of mapping and faulting in fresh pages per call.

    XLA:CPU allocates each call's temporaries with malloc: a render + MR-STFT gradient of
    32 sounds needs 70-140 MB in one block, a 64-env step of DelayTime 60 MB. glibc serves
    blocks that large with a fresh ``mmap`` and returns them at ``free``, so every call
    first-touches its temporaries page by page: 15,000-26,000 page faults a call, a quarter
    of its time (profiled against the opt-out: adsr_tone's render + MR-STFT gradient at
    batch 32 77 -> 56 ms, amsynth_twin's 51 -> 39 ms, DelayTime's 64-env step 511 -> 591
    steps/s, results the same). glibc's own tunables only take effect at process start,
    so this calls ``mallopt``: no ``mmap`` for blocks (the heap serves them), and up to
    ``RETAINED_FREE_BYTES`` of free heap kept instead of trimmed. The price is a process
    whose resident size stays at its peak. Only on Linux with glibc; returns True when set.
    """
    if wants_system_malloc() or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    global _malloc_configured
    _malloc_configured = bool(mallopt(_M_MMAP_MAX, 0)) and bool(
        mallopt(_M_TRIM_THRESHOLD, RETAINED_FREE_BYTES)
    )
    return _malloc_configured


def malloc_mode() -> str:
    """'retained' when :func:`configure_malloc` set glibc's malloc here, else 'system'."""
    return "retained" if _malloc_configured else "system"
