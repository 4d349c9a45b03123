"""The opt-in speed settings (ddsp_gym/runtime.py): ``import ddsp_gym`` changes nothing,
``tune_for_cpu()`` sets JAX's CPU dispatch and glibc's malloc.

Each case runs in a fresh interpreter: JAX reads the flag once, when it makes its CPU
client, so only a new process shows what a call does to it (and to malloc).
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import sys

import pytest

from ddsp_gym.runtime import ASYNC_DISPATCH_ENV_VAR, SYSTEM_MALLOC_ENV_VAR


def _run(code: str, async_dispatch: str | None = None, system_malloc: str | None = None) -> str:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in (ASYNC_DISPATCH_ENV_VAR, SYSTEM_MALLOC_ENV_VAR, "GLIBC_TUNABLES")
    }
    if async_dispatch is not None:
        env[ASYNC_DISPATCH_ENV_VAR] = async_dispatch
    if system_malloc is not None:
        env[SYSTEM_MALLOC_ENV_VAR] = system_malloc
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


_TUNED = "import ddsp_gym.runtime; ddsp_gym.runtime.tune_for_cpu(); "
_DISPATCH = (
    "import ddsp_gym, jax; from ddsp_gym.runtime import cpu_dispatch; "
    "jax.numpy.ones(1).block_until_ready(); print(cpu_dispatch())"
)


def test_importing_ddsp_gym_leaves_jax_dispatch_and_malloc_alone():
    code = (
        "import gymnasium as gym, jax, ddsp_gym; from ddsp_gym.runtime import malloc_mode; "
        "env = gym.make('ddsp_gym/VolumeMatch-v1'); env.reset(seed=0); "
        "print(jax.config.values['jax_cpu_enable_async_dispatch'], malloc_mode())"
    )
    assert _run(code) == "True system"


def test_tune_for_cpu_makes_cpu_dispatch_inline():
    assert _run(_TUNED + _DISPATCH) == "inline"
    assert _run(_DISPATCH) == "async"  # JAX's default without the call


def test_the_env_var_keeps_jax_async_dispatch():
    assert _run(_TUNED + _DISPATCH, async_dispatch="1") == "async"
    assert _run(_TUNED + _DISPATCH, async_dispatch="0") == "inline"


def test_a_jax_already_started_is_left_alone():
    code = (
        "import jax; jax.numpy.ones(1).block_until_ready(); "
        "from ddsp_gym.runtime import configure_cpu_dispatch, cpu_dispatch; "
        "print(configure_cpu_dispatch(), cpu_dispatch())"
    )
    assert _run(code) == "False async"


def test_inline_and_async_dispatch_step_to_the_same_values():
    code = (
        "import json, gymnasium as gym, numpy as np, ddsp_gym; "
        "env = gym.make('ddsp_gym/CutoffSweeper-v1'); obs, _ = env.reset(seed=4); "
        "acts = np.random.default_rng(1).uniform(-1, 1, (12, 1)).astype(np.float32); "
        "steps = [env.step(a)[:2] for a in acts]; "
        "print(json.dumps([obs.tolist()] + [[o.tolist(), float(r)] for o, r in steps]))"
    )
    inline, asynchronous = _run(_TUNED + code), _run(code)
    assert json.loads(inline) == json.loads(asynchronous)
    assert len(json.loads(inline)) == 13


def _has_glibc() -> bool:
    try:
        ctypes.CDLL(None).gnu_get_libc_version  # noqa: B018
    except (OSError, AttributeError):
        return False
    return sys.platform.startswith("linux")


# Frees a 64 MB block and takes it again, touching every page both times; prints the mode
# and the page faults of the second touch (16,384 when each block is a fresh mapping).
_REUSE = (
    "import ctypes, resource, ddsp_gym; from ddsp_gym.runtime import malloc_mode; "
    "libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p; "
    "libc.free.argtypes = (ctypes.c_void_p,); size = 64 << 20; "
    "block = libc.malloc(size); ctypes.memset(block, 1, size); libc.free(block); "
    "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt; "
    "block = libc.malloc(size); ctypes.memset(block, 1, size); "
    "faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before; "
    "libc.free(block); print(malloc_mode(), faults)"
)


@pytest.mark.skipif(not _has_glibc(), reason="the malloc setting is for Linux with glibc")
def test_tune_for_cpu_makes_freed_blocks_reusable_without_page_faults():
    mode, faults = _run(_TUNED + _REUSE).split()
    assert mode == "retained"
    assert int(faults) < 1000  # the block came back from the heap, its pages still mapped
    for code, opt_out in ((_REUSE, None), (_TUNED + _REUSE, "1")):
        mode, faults = _run(code, system_malloc=opt_out).split()
        assert mode == "system"
        if not _huge_pages_always():  # else a fresh mapping faults in 2 MB pages, a few dozen
            assert int(faults) > 10_000  # glibc's default: a fresh mapping, faulted in by page


def _huge_pages_always() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[always]" in f.read()
    except OSError:
        return False
