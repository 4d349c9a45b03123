"""``ddsp-gym bench perf``: it runs, writes its files, and its parts time what they say."""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace

import jax.numpy as jnp
import pytest

from ddsp_gym.bench.compiles import count_compilations
from ddsp_gym.bench.perf import run_perf
from ddsp_gym.bench.processes import fresh_process_single_env_rates
from ddsp_gym.bench.report import format_markdown
from ddsp_gym.bench.settings import QUICK, settings_for
from ddsp_gym.bench.timing import compile_seconds, time_calls, time_interleaved
from ddsp_gym.cli import main
from ddsp_gym.runtime import ASYNC_DISPATCH_ENV_VAR, cpu_dispatch


def test_time_calls_reports_best_median_and_cpu():
    timing = time_calls(lambda: sum(range(1000)), min_time=0.01, rounds=3)
    assert timing.calls >= 3
    assert 0 < timing.best_s <= timing.median_s
    rates = timing.rates(10.0)
    assert rates["per_s"] >= rates["median_per_s"] > 0 and rates["per_cpu_s"] > 0


def test_interleaved_timing_alternates_rounds_and_keeps_each_sides_rate():
    order: list[str] = []

    def slow():
        order.append("slow")
        time.sleep(0.01)

    def fast():
        order.append("fast")
        time.sleep(0.001)

    slow_t, fast_t = time_interleaved([slow, fast], min_time=0.03, rounds=3)
    runs = [name for i, name in enumerate(order) if i == 0 or order[i - 1] != name]
    assert runs == ["slow", "fast"] * 3  # A B A B A B, not A A A B B B
    assert slow_t.calls + fast_t.calls == len(order)
    # Each side timed on its own calls: mixed, both would show the same time (ratio ~1).
    # The bounds are wide because a loaded machine oversleeps by milliseconds.
    assert 3.0 < slow_t.best_s / fast_t.best_s < 30.0


def test_compile_seconds_recompiles_from_scratch_and_keeps_the_fastest():
    def fn(x):
        return jnp.cumsum(jnp.sin(x) * 3.0)

    with count_compilations() as seen:
        times, compiled = compile_seconds(fn, jnp.ones(64), repeats=3)
    assert seen.count >= 3  # every repeat compiled (cached, it would compile once)
    assert len(times["all_s"]) == 3 and times["s"] == min(times["all_s"])
    assert float(compiled(jnp.zeros(64))[-1]) == 0.0
    single, _ = compile_seconds(fn, jnp.ones(64))
    assert "all_s" not in single and single["s"] > 0


def test_a_tiny_run_writes_json_and_markdown(tmp_path):
    settings = settings_for(
        True,
        plants=("gain",),
        env_ids=("ddsp_gym/VolumeMatch-v1",),
        sb3_env_ids=(),
        external_voices=(),
    )
    assert settings.quick and settings.render_batches == QUICK.render_batches
    results = run_perf(tmp_path, settings, progress=False)
    saved = json.loads((tmp_path / "perf.json").read_text())
    assert saved["plants"][0]["plant"] == "gain" and not saved["plants"][0]["errors"]
    cell = saved["plants"][0]["render"]["16000/32"]
    assert cell["audio_s_per_s"] > 0 and cell["compile"]["s"] > 0 and cell["peak_mb"] > 0
    assert saved["plants"][0]["grad"]["audio_s_per_s"] > 0
    env = saved["envs"][0]
    assert not env["errors"]
    for key in ("single", "native_64", "sync_16", "jax_rollout"):
        assert env[key]["steps_per_s"] > 0, key
    assert env["native_over_sync"] > 0
    (analysis,) = saved["analysis"]  # QUICK: 64 sounds of 0.25 s
    assert (analysis["batch"], analysis["duration_s"]) == (64, 0.25)
    # Timed, not ranked: on a shared machine even spectra vs spectra + gradient can swap.
    for part in ("spectra", "value_and_grad"):
        assert analysis[part]["audio_s_per_s"] > 0, part
    # The FFTs alone: timed too (close to the spectra in the vector env's chunks, so no
    # ordering is asserted on a shared machine).
    assert analysis["ffts"]["audio_s_per_s"] > 0
    markdown = (tmp_path / "perf.md").read_text()
    bound = analysis["spectra"]["audio_s_per_s"] / 0.25
    fft_bound = analysis["ffts"]["audio_s_per_s"] / 0.25
    assert "| 64 | 0.25 |" in markdown and f"| {bound:,.0f} | {fft_bound:,.0f} |" in markdown
    assert env["cpu_schedule"] == "memory"  # the schedule VolumeMatch's step compiles with
    assert "VolumeMatch-v1 compiles its step with XLA:CPU's depth-first" in markdown
    assert "| gain |" in markdown and "VolumeMatch-v1" in markdown
    assert "Targets" not in markdown and "targets" not in saved  # no bars in the tool
    title = "# ddsp_gym speed (`ddsp-gym bench perf --quick --envs ddsp_gym/VolumeMatch-v1"
    assert markdown.startswith(title + " --plants gain`)")
    assert saved["meta"]["cpu_dispatch"] == cpu_dispatch()  # this process's
    assert results["plants"] == saved["plants"] and format_markdown(saved) == markdown


def test_bench_perf_runs_the_speed_benchmark_with_its_flags(monkeypatch, tmp_path, capsys):
    import ddsp_gym.bench.perf

    calls = []

    def fake_run_perf(out_dir, settings):
        calls.append((out_dir, settings))
        return {"meta": {}}

    monkeypatch.setattr(ddsp_gym.bench.perf, "run_perf", fake_run_perf)
    monkeypatch.setattr(ddsp_gym.bench.report, "format_markdown", lambda results: "TABLES")
    argv = ["bench", "perf", "--quick", "--plants", "gain", "--envs", "ddsp_gym/SineTuner-v1"]
    assert main([*argv, "-o", str(tmp_path)]) == 0
    ((out_dir, settings),) = calls
    assert out_dir == tmp_path and settings.quick and settings.plants == ("gain",)
    assert settings.env_ids == ("ddsp_gym/SineTuner-v1",)
    assert "TABLES" in capsys.readouterr().out
    # Flags of the other benchmarks are not perf's.
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", "perf", "--budget", "5"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --budget" in capsys.readouterr().err
    assert main(["bench", "perf", "--plants", "theremin"]) == 2
    assert "unknown plant 'theremin'" in capsys.readouterr().err and len(calls) == 1


def test_pinned_single_env_runs_in_a_process_on_one_core():
    if not hasattr(os, "sched_setaffinity"):
        pytest.skip("this OS cannot pin a process to a core")
    settings = replace(QUICK, min_time=0.02, rounds=1)
    rates = fresh_process_single_env_rates(["ddsp_gym/VolumeMatch-v1"], settings, one_core=True)
    row = rates["ddsp_gym/VolumeMatch-v1"]
    assert row["cpus"] == 1  # the child ran on one core, whatever this process may use
    assert row["cpu_dispatch"] == "inline"  # the child opts in as the CLI does
    assert row["steps_per_s"] > 0 and row["steps_per_cpu_s"] > 0


def test_the_async_column_runs_in_a_process_with_jax_async_dispatch():
    settings = replace(QUICK, min_time=0.02, rounds=1)
    ids = ["ddsp_gym/VolumeMatch-v1"]
    row = fresh_process_single_env_rates(ids, settings, async_dispatch=True)[ids[0]]
    assert row["cpu_dispatch"] == "async" and row["steps_per_s"] > 0
    assert ASYNC_DISPATCH_ENV_VAR not in os.environ  # the parent's environment is restored
