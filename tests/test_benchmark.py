"""The agent benchmark: cells, incremental results, resume, tables and curves."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddsp_gym.agents import benchmark
from ddsp_gym.agents.base import SolveResult
from ddsp_gym.cli import main


def _fake_cell(env_id, agent, budget, seeds, train_queries=None, progress=True):
    return {
        "env": env_id,
        "agent": agent,
        "budget": budget,
        "seeds": seeds,
        "successes": 1,
        "success_rate": 1 / seeds,
        "median_queries_to_success": 7.0,
        "median_best_distance": 0.5,
        "distance_unit": "dB",
        "median_param_error": None,
        "train_queries": 0,
        "wall_s": 0.1,
        "median_curve": list(np.linspace(2.0, 0.5, budget)),
    }


def test_results_are_written_per_cell_and_a_rerun_resumes(tmp_path, monkeypatch):
    calls = []

    def fake(*args, **kwargs):
        calls.append(args[:2])
        if len(calls) == 3:
            raise KeyboardInterrupt  # interrupted in the third cell
        return _fake_cell(*args, **kwargs)

    monkeypatch.setattr(benchmark, "run_cell", fake)
    out = tmp_path / "bench.json"
    envs, agents = ["ddsp_gym/SineTuner-v0", "ddsp_gym/VolumeMatch-v0"], ["random", "cma"]
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_benchmark(envs, agents, 10, 2, out, progress=False)
    assert len(json.loads(out.read_text())["cells"]) == 2  # both finished cells were kept
    calls.clear()
    monkeypatch.setattr(benchmark, "run_cell", _fake_cell)
    cells = benchmark.run_benchmark(envs, agents, 10, 2, out, progress=False)
    assert len(cells) == 4
    assert "| VolumeMatch-v0 | cma | 1/2 | 7 |" in out.with_suffix(".md").read_text()
    assert (tmp_path / "bench_curves.png").stat().st_size > 0
    # A different budget is a different cell.
    benchmark.run_benchmark(envs[:1], agents[:1], 20, 2, out, progress=False)
    assert len(json.loads(out.read_text())["cells"]) == 5


def test_best_so_far_holds_the_last_value_after_an_early_stop():
    np.testing.assert_array_equal(benchmark.best_so_far([3.0, 1.0, 2.0], 5), [3, 1, 1, 1, 1])


def test_summarize_reports_medians_and_hides_param_error_for_goal_tasks():
    class Task:
        distance_unit, is_goal = "x", True

    results = [
        SolveResult(True, 0, 0.1, 0.1, np.zeros(1), 0.02, [1.0, 0.1], 2, 2),
        SolveResult(False, 0, 0.5, 0.4, np.zeros(1), 0.3, [1.0, 0.4, 0.5], 3, None),
    ]
    cell = benchmark.summarize("ddsp_gym/X-v0", "hybrid", results, 3, 1.0, Task())
    assert cell["successes"] == 1 and cell["median_queries_to_success"] == 2.0
    assert cell["median_best_distance"] == pytest.approx(0.25)
    assert cell["median_param_error"] is None
    assert cell["median_curve"] == pytest.approx([1.0, 0.25, 0.25])


@pytest.mark.slow
def test_a_real_cell_counts_queries_on_held_out_seeds(tmp_path):
    cell = benchmark.run_cell("ddsp_gym/VolumeMatch-v0", "random", 15, 2, progress=False)
    assert cell["seeds"] == 2 and len(cell["median_curve"]) == 15
    assert cell["median_queries_to_success"] is None or cell["median_queries_to_success"] <= 15


def test_cli_bench_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "run_cell", _fake_cell)
    argv = ["bench", "agents", "--envs", "ddsp_gym/SineTuner-v0", "--agents", "hybrid"]
    argv += ["-o", str(tmp_path)]
    assert main(argv + ["--budget", "5", "--seeds", "2"]) == 0
    assert "| SineTuner-v0 | hybrid | 1/2 |" in capsys.readouterr().out
    cell = json.loads((tmp_path / "bench.json").read_text())["cells"][0]
    assert cell["command"] == (
        "ddsp-gym bench agents --envs ddsp_gym/SineTuner-v0 --agents hybrid --budget 5 --seeds 2"
    )
    assert main(argv + ["--agents", "nonsense"]) == 2
