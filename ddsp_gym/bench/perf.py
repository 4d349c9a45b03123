"""``ddsp-gym bench perf``: how fast the simulated suite renders, differentiates and steps.

For every plant in ``PLANTS`` and every registered env it measures, in one run
on one machine:

* plants (:mod:`ddsp_gym.bench.plants`): forward render throughput (seconds of audio
  per wall-clock second) at 16 kHz and 44.1 kHz for batches 1, 32 and 256; render +
  gradient of the multi-resolution STFT loss (16 kHz, batch 32); compile time of both;
  the peak memory of both;
* envs (:mod:`ddsp_gym.bench.envs`): steps per second of one env through ``gym.make``
  (also in a fresh process pinned to one CPU core, where the OS allows it, and in one
  with JAX's async CPU dispatch: :mod:`ddsp_gym.bench.processes`), of the native vector
  env (64 and 256 envs), of Gymnasium's ``SyncVectorEnv`` of 64 single envs, of the
  pure-JAX rollout, and of SB3 PPO on the native batched env against ``DummyVecEnv``
  (:mod:`ddsp_gym.bench.sb3`);
* the MR-STFT alone, no plant (:mod:`ddsp_gym.bench.analysis`);
* other libraries (the optional ``bench`` extra): SynthAX and torchsynth voices
  (:mod:`ddsp_gym.bench.external`) beside ours, both rendered for the same duration
  and timed in alternating rounds.

Method. Every timing runs warm (compiled) calls in rounds of at least
``min_time`` seconds and reports the best round's mean (as ``timeit`` does:
the least disturbed by other processes); the median round is kept in the JSON.
Compile time is the wall time of tracing, lowering and compiling a fresh jitted
function: for a plant's gradient and its 16 kHz forward at the gradient's batch, the
best of ``compile_repeats`` compilations with JAX's caches cleared before each (all
of them are kept in the JSON), the same least-disturbed rule as the throughputs.
Peak memory is XLA's buffer assignment for the compiled function (arguments +
outputs + temporaries - aliased), i.e. what the computation needs at its peak;
the process's maximum resident set size is recorded too. The load average
before and after the run is recorded: on a shared machine it says how much of
the CPU the run had.

Results go to ``perf.json`` (rewritten after every section, so a stopped run
keeps what it measured) and ``perf.md`` in the output folder (:mod:`ddsp_gym.bench.report`).

No pass/fail targets. The tool measures and compares within one run; it holds no bars
(so many audio-s/s, a compile under so many seconds). A bar is a goal of this project,
not a property of the code measured: it changes when the goals do, and judged on a
shared machine whose speed varies between runs it grades the machine's load as much as
the code. The comparisons the tool makes are ratios of rates measured in the same run
under the same load (native vector env over ``SyncVectorEnv``, ours over another
library's voice timed in alternating rounds, SB3 on the native env over
``DummyVecEnv``). The project's goals, and how a results file stands against them,
are written in docs/performance.md.
"""

from __future__ import annotations

import os
import platform
import resource
import time
import traceback
from dataclasses import asdict
from pathlib import Path
from typing import Any

import jax
from tqdm import tqdm

from ddsp_gym.bench.analysis import bench_analysis
from ddsp_gym.bench.envs import bench_env
from ddsp_gym.bench.external import bench_external
from ddsp_gym.bench.plants import bench_plant
from ddsp_gym.bench.processes import (
    CAN_PIN,
    FRESH_PROCESS_COLUMNS,
    fresh_process_single_env_rates,
)
from ddsp_gym.bench.report import format_markdown, one_line, write_json
from ddsp_gym.bench.sb3 import bench_sb3
from ddsp_gym.bench.settings import FULL, PerfSettings
from ddsp_gym.plants import PLANTS
from ddsp_gym.runtime import cpu_dispatch, malloc_mode


def machine_info() -> dict[str, Any]:
    """What the numbers depend on: CPU, cores, software versions, JAX's CPU settings."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "cpu_dispatch": cpu_dispatch(),
        "malloc": malloc_mode(),
        "devices": [str(d) for d in jax.devices()],
        "float": "float32",
    }


def perf_tasks(
    plants: list[str], env_ids: list[str], sb3_ids: list[str], settings: PerfSettings
) -> list[tuple[str, str | None]]:
    """The run's sections in order, as (kind, name): plants, envs, the fresh-process
    columns (after the envs, whose rows they fill), SB3, the MR-STFT alone, other libraries."""
    return (
        [("plant", p) for p in plants]
        + [("env", e) for e in env_ids]
        + [("single_1core", None)] * (settings.pinned_single_env and CAN_PIN)
        + [("single_async", None)] * settings.async_single_env
        + [("sb3", e) for e in sb3_ids]
        + [("analysis", None), ("external", None)]
    )


def run_task(kind: str, name: str | None, settings: PerfSettings, results: dict) -> None:
    """Measure one section and store it in ``results``."""
    if kind == "plant":
        results["plants"].append(bench_plant(name, settings))
    elif kind == "env":
        results["envs"].append(bench_env(name, settings))
    elif kind in FRESH_PROCESS_COLUMNS:
        how = FRESH_PROCESS_COLUMNS[kind][0]
        ids = [e["env"] for e in results["envs"]]
        rates = fresh_process_single_env_rates(ids, settings, **how)
        for row in results["envs"]:
            row[kind] = rates[row["env"]]
    elif kind == "sb3":
        results["sb3"].append(bench_sb3(name, settings))
    elif kind == "analysis":
        results["analysis"] = bench_analysis(settings)
    else:
        results["external"] = bench_external(settings, results["plants"])


def run_perf(
    out_dir: str | Path,
    settings: PerfSettings = FULL,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the benchmark, write ``perf.json`` and ``perf.md`` under ``out_dir``; return results.

    A section that fails is recorded under "errors" (and in the Markdown) and the run
    goes on. Raises ValueError for plants or env ids that do not exist.
    """
    from ddsp_gym.registry import task_reward_ids

    out_dir = Path(out_dir)
    plants = list(settings.plants or PLANTS)
    unknown = sorted(set(plants) - set(PLANTS))
    if unknown:
        raise ValueError(f"unknown plants {unknown}; known: {sorted(PLANTS)}")
    # The task-reward target envs (DDSPEnv, its vector env and SB3 adapter): an external
    # reward source has no vector env; streaming envs are measured apart (docs/streaming.md).
    task_ids = task_reward_ids()
    env_ids = list(settings.env_ids or task_ids[: 1 if settings.quick else None])
    unknown = sorted(set(env_ids) - set(task_ids))
    if unknown:
        raise ValueError(f"unknown env ids {unknown}; `ddsp-gym list` shows the valid ids")
    out_dir.mkdir(parents=True, exist_ok=True)
    sb3_ids = list(env_ids[:1] if settings.sb3_env_ids is None else settings.sb3_env_ids)
    results: dict[str, Any] = {
        "meta": {
            **machine_info(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "load_average_before": os.getloadavg(),
            "settings": asdict(settings),
            "method": __doc__.split("Method.")[1].split("Results go")[0].strip(),
        },
        "plants": [],
        "envs": [],
        "sb3": [],
        "analysis": [],
        "external": [],
    }
    json_path, md_path = out_dir / "perf.json", out_dir / "perf.md"
    tasks = perf_tasks(plants, env_ids, sb3_ids, settings)
    start = time.perf_counter()
    for kind, name in tqdm(tasks, desc="bench perf", unit="task", disable=not progress):
        try:
            run_task(kind, name, settings, results)
        except Exception as err:
            results.setdefault("errors", []).append(
                f"{kind} {name}: {one_line(err)}\n{traceback.format_exc(limit=3)}"
            )
        write_json(json_path, results)
    meta = results["meta"]
    meta["wall_s"] = time.perf_counter() - start
    meta["load_average_after"] = os.getloadavg()
    meta["max_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    write_json(json_path, results)
    md_path.write_text(format_markdown(results))
    return results


__all__ = ["machine_info", "perf_tasks", "run_perf", "run_task"]
