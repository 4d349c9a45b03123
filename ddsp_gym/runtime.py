"""Process-wide speed settings for JAX on the CPU: opt in with :func:`tune_for_cpu`.

``import ddsp_gym`` changes nothing in the process. Programs that step envs on the
CPU (the ``ddsp-gym`` command, the benchmarks, ``scripts/train.py``) call
:func:`tune_for_cpu` once, before their first JAX computation. It makes two settings,
each with an environment variable that keeps the default instead:

* **Inline dispatch** (:func:`configure_cpu_dispatch`; keep JAX's default with
  ``DDSP_GYM_CPU_ASYNC_DISPATCH=1``). JAX's CPU client hands each jitted call to a
  worker thread and wakes the caller when its result is read. A Gymnasium step needs
  its result at once, so the hand-off buys no overlap and costs two thread wake-ups a
  step: a large share of a step that takes a fraction of a millisecond. Results are
  the same either way (tested). JAX reads the flag once, when it makes its CPU
  client, so the call has no effect after JAX has started.
* **Retained malloc** (:func:`configure_malloc`, Linux with glibc; keep glibc's default
  with ``DDSP_GYM_SYSTEM_MALLOC=1``). XLA:CPU allocates each call's temporaries with
  malloc, tens of MB for a batched render and its gradient; glibc serves blocks that
  large by a fresh ``mmap`` and returns them at ``free``, so every call faults its
  temporaries in page by page. The setting keeps freed memory in the heap for reuse.
  The price: the process's resident size stays at its peak.

``ddsp-gym bench perf`` steps single envs with JAX's async dispatch beside the inline
one, in fresh processes (docs/performance.md).
"""

from __future__ import annotations

import ctypes
import os
import sys

ASYNC_DISPATCH_ENV_VAR = "DDSP_GYM_CPU_ASYNC_DISPATCH"
SYSTEM_MALLOC_ENV_VAR = "DDSP_GYM_SYSTEM_MALLOC"
_JAX_FLAG = "jax_cpu_enable_async_dispatch"
# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
# Free memory the heap keeps for reuse instead of returning it to the system.
RETAINED_FREE_BYTES = 1 << 30
_malloc_configured = False


def tune_for_cpu() -> dict[str, bool]:
    """Make both settings (unless opted out) -> {"inline_dispatch": set?, "retained_malloc": set?}.

    Call it once, early: before the program's first JAX computation.
    """
    return {"inline_dispatch": configure_cpu_dispatch(), "retained_malloc": configure_malloc()}


def _env_flag(name: str) -> bool:
    """True when environment variable ``name`` is set to 1, true or yes (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def _backends_initialized() -> bool:
    """Whether JAX has made its clients (after which the dispatch flag no longer applies)."""
    try:
        from jax._src import xla_bridge
    except ImportError:  # a JAX without that module: assume the worst, change nothing
        return True
    check = getattr(xla_bridge, "backends_are_initialized", None)
    return True if check is None else bool(check())


def configure_cpu_dispatch() -> bool:
    """Make JAX run CPU computations inline, unless opted out or JAX has started.

    Returns True when this call set the flag.
    """
    import jax

    if _env_flag(ASYNC_DISPATCH_ENV_VAR) or _backends_initialized():
        return False
    if _JAX_FLAG not in jax.config.values:
        return False
    jax.config.update(_JAX_FLAG, False)
    return True


def cpu_dispatch() -> str:
    """'inline' or 'async': how this process's JAX CPU client runs computations."""
    import jax

    return "async" if jax.config.values.get(_JAX_FLAG, True) else "inline"


def configure_malloc() -> bool:
    """Keep freed heap memory for reuse and serve large blocks from the heap (glibc only).

    glibc reads its own tunables only at process start, hence ``mallopt``: no ``mmap``
    for large blocks, and up to :data:`RETAINED_FREE_BYTES` of free heap kept instead
    of trimmed. Returns True when set.
    """
    global _malloc_configured
    if _env_flag(SYSTEM_MALLOC_ENV_VAR) or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such symbol)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _malloc_configured = bool(mallopt(_M_MMAP_MAX, 0)) and bool(
        mallopt(_M_TRIM_THRESHOLD, RETAINED_FREE_BYTES)
    )
    return _malloc_configured


def malloc_mode() -> str:
    """'retained' when :func:`configure_malloc` set glibc's malloc here, else 'system'."""
    return "retained" if _malloc_configured else "system"
