"""Single-env rates measured in a fresh process: pinned to one CPU core, or with JAX's
asynchronous CPU dispatch kept.

Why a fresh process: both settings must hold before JAX makes its CPU client, which
only a new process shows. The client's thread pool is sized by the CPUs the process may
use, and its dispatch mode is fixed when it is made (see ddsp_gym/runtime.py).

Why pinned from the start: a single env's step is many small XLA kernels, and a process
started on one core gets a one-thread XLA pool that runs them without hand-offs between
threads. Neither half of that alone helps (a one-thread pool with the threads unpinned,
the stepping thread pinned after JAX started, every thread pinned with a two-thread
pool: none steps faster), so the column measures the setup people use to run single
envs in parallel, one process per core (``taskset -c 0 python ...``).

Nothing here imports JAX: the report reads :data:`FRESH_PROCESS_COLUMNS` without it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ddsp_gym.runtime import ASYNC_DISPATCH_ENV_VAR, tune_for_cpu

if TYPE_CHECKING:
    from ddsp_gym.bench.settings import PerfSettings

# Linux lets a process choose its CPUs (``os.sched_setaffinity``); elsewhere no pinned runs.
CAN_PIN = hasattr(os, "sched_setaffinity")

# The single-env columns measured in fresh processes: result key -> (how the process
# runs, the column's title, what the column is).
FRESH_PROCESS_COLUMNS: dict[str, tuple[dict[str, bool], str, str]] = {
    "single_1core": (
        {"one_core": True},
        "gym.make, 1 core",
        "the same single-env loop in a fresh process pinned to one CPU core (as "
        "`taskset -c 0` does)",
    ),
    "single_async": (
        {"async_dispatch": True},
        "gym.make, JAX async dispatch",
        f"the same loop in a fresh process with `{ASYNC_DISPATCH_ENV_VAR}=1`, which keeps "
        "JAX's default of handing each CPU computation to a worker thread (the CLI runs "
        "them inline: ddsp_gym.runtime.tune_for_cpu)",
    ),
}


def start_child(one_core: bool) -> None:
    """A benchmark child process: optionally on one core, then the CLI's speed settings."""
    if one_core:
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    tune_for_cpu()


def fresh_process_single_env_rates(
    env_ids: Sequence[str],
    settings: PerfSettings,
    *,
    one_core: bool = False,
    async_dispatch: bool = False,
) -> dict[str, dict]:
    """:func:`ddsp_gym.bench.envs.single_env_rates` of each env in a fresh process: pinned to
    one CPU core, and/or with JAX's async CPU dispatch kept (what ``tune_for_cpu`` turns off).

    Returns {} for ``one_core`` where the OS cannot pin a process.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from unittest import mock  # patch.dict: environment variables for the block, restored

    from ddsp_gym.bench.envs import single_env_rates

    if one_core and not CAN_PIN:
        return {}
    context = multiprocessing.get_context("spawn")
    # Without async_dispatch the child runs as this process does (it inherits the variable).
    keep_async = {ASYNC_DISPATCH_ENV_VAR: "1"} if async_dispatch else {}
    with (
        mock.patch.dict(os.environ, keep_async),
        ProcessPoolExecutor(
            1, mp_context=context, initializer=start_child, initargs=(one_core,)
        ) as pool,
    ):
        rates = list(pool.map(single_env_rates, env_ids, [settings] * len(env_ids)))
    return dict(zip(env_ids, rates, strict=True))
