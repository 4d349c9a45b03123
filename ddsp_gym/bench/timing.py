"""Timing harness: warm calls in rounds, compile times and XLA's peak memory.

Every rate the benchmarks report comes from here, measured one way: warm (compiled)
calls repeated in rounds of at least ``min_time`` seconds, the best round's mean kept
(as ``timeit`` does: the round least disturbed by other processes), the median round
kept beside it, and this process's CPU time per call next to the wall time (on a
shared machine wall time counts the waiting, CPU time only the work).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax


@dataclass
class Timing:
    """Seconds per call, wall clock (best and median round) and this process's CPU time."""

    best_s: float
    median_s: float
    cpu_s: float  # CPU seconds per call (all threads) in the least-CPU round
    calls: int

    def rates(self, work: float) -> dict[str, float]:
        """Work per second (e.g. audio seconds or env steps per call): wall best, median, CPU."""
        return {
            "per_s": work / self.best_s,
            "median_per_s": work / self.median_s,
            "per_cpu_s": work / self.cpu_s,
        }


def time_calls(fn: Callable[[], Any], min_time: float, rounds: int) -> Timing:
    """Time warm calls of ``fn`` (which must block until its work is done).

    Besides wall time it records the process's CPU time: on a machine shared
    with other work, wall time counts the waiting, CPU time the work.
    """
    return time_interleaved([fn], min_time, rounds)[0]


def time_interleaved(
    fns: Sequence[Callable[[], Any]], min_time: float, rounds: int
) -> list[Timing]:
    """:func:`time_calls` of several functions whose rounds alternate (A B A B ...).

    For a ratio of two rates: a change in the machine's load during the timing
    then falls on both sides alike, where timing one after the other let it favour
    either.
    """
    per_call: list[list[float]] = [[] for _ in fns]
    cpu_per_call: list[list[float]] = [[] for _ in fns]
    totals = [0] * len(fns)
    for _ in range(rounds):
        for i, fn in enumerate(fns):
            calls, start, cpu_start = 0, time.perf_counter(), time.process_time()
            while True:
                fn()
                calls += 1
                elapsed = time.perf_counter() - start
                if elapsed >= min_time:
                    break
            per_call[i].append(elapsed / calls)
            cpu_per_call[i].append((time.process_time() - cpu_start) / calls)
            totals[i] += calls
    return [
        Timing(min(wall), statistics.median(wall), min(cpu), total)
        for wall, cpu, total in zip(per_call, cpu_per_call, totals, strict=True)
    ]


def blocking(fn: Callable, *args: Any) -> Callable[[], Any]:
    """A call of ``fn(*args)`` that returns only when JAX's result exists (what a timing needs:
    JAX dispatches asynchronously, so an unblocked call times the dispatch alone)."""
    return lambda: jax.block_until_ready(fn(*args))


def audio_rates(timing: Timing, seconds: float) -> dict[str, float]:
    """A timing's rates in seconds of audio per second, for a call that renders ``seconds``."""
    rates = timing.rates(seconds)
    return {
        "audio_s_per_s": rates["per_s"],
        "median_audio_s_per_s": rates["median_per_s"],
        "audio_s_per_cpu_s": rates["per_cpu_s"],
    }


def step_rates(timing: Timing, steps: float) -> dict[str, float]:
    """A timing's rates in env steps per second, for a call that plays ``steps`` steps."""
    rates = timing.rates(steps)
    return {
        "steps_per_s": rates["per_s"],
        "median_steps_per_s": rates["median_per_s"],
        "steps_per_cpu_s": rates["per_cpu_s"],
    }


def compile_seconds(fn: Callable, *args: Any, repeats: int = 1) -> tuple[dict[str, Any], Any]:
    """Wall and CPU seconds to trace, lower and compile ``jax.jit(fn)`` -> (times, compiled).

    With ``repeats`` > 1 it compiles that many times, clearing JAX's caches before
    each repeat (else the trace and the executable come from them), and reports
    the fastest; every wall time is kept under "all_s".
    """
    walls, cpus = [], []
    for repeat in range(repeats):
        if repeat:
            jax.clear_caches()
        start, cpu_start = time.perf_counter(), time.process_time()
        compiled = jax.jit(fn).lower(*args).compile()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu_start)
    times: dict[str, Any] = {"s": min(walls), "cpu_s": min(cpus)}
    if repeats > 1:
        times["all_s"] = walls
    return times, compiled


def peak_bytes(compiled: Any) -> int | None:
    """XLA's peak buffer need of a compiled function (None where the backend says nothing).

    Arguments + outputs + temporaries - aliased: what the computation needs at its peak,
    as XLA's buffer assignment planned it.
    """
    try:
        stats = compiled.memory_analysis()
    except Exception:  # not every backend/version reports it
        return None
    if stats is None:
        return None
    return int(
        stats.argument_size_in_bytes
        + stats.output_size_in_bytes
        + stats.temp_size_in_bytes
        - stats.alias_size_in_bytes
    )


def peak_mb(compiled: Any) -> float | None:
    """:func:`peak_bytes` in MiB, the unit of the reports' memory columns."""
    nbytes = peak_bytes(compiled)
    return None if nbytes is None else nbytes / 2**20
