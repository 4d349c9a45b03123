"""JAX's CPU dispatch as ``import ddsp_gym`` sets it (ddsp_gym/runtime.py).

Each case runs in a fresh interpreter: JAX reads the flag once, when it makes its CPU
client, so only a new process shows what an import does to it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from ddsp_gym.runtime import ASYNC_DISPATCH_ENV_VAR


def _run(code: str, async_dispatch: str | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != ASYNC_DISPATCH_ENV_VAR}
    if async_dispatch is not None:
        env[ASYNC_DISPATCH_ENV_VAR] = async_dispatch
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


_DISPATCH = (
    "import ddsp_gym, jax; from ddsp_gym.runtime import cpu_dispatch; "
    "jax.numpy.ones(1).block_until_ready(); print(cpu_dispatch())"
)


def test_importing_ddsp_gym_makes_cpu_dispatch_inline():
    assert _run(_DISPATCH) == "inline"


def test_the_env_var_keeps_jax_async_dispatch():
    assert _run(_DISPATCH, async_dispatch="1") == "async"
    assert _run(_DISPATCH, async_dispatch="0") == "inline"


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
        "env = gym.make('ddsp_gym/CutoffSweeper-v0'); obs, _ = env.reset(seed=4); "
        "acts = np.random.default_rng(1).uniform(-1, 1, (12, 1)).astype(np.float32); "
        "steps = [env.step(a)[:2] for a in acts]; "
        "print(json.dumps([obs.tolist()] + [[o.tolist(), float(r)] for o, r in steps]))"
    )
    inline, asynchronous = _run(code), _run(code, async_dispatch="1")
    assert json.loads(inline) == json.loads(asynchronous)
    assert len(json.loads(inline)) == 13
