"""The agent benchmark: cells, incremental results, resume, tables and curves."""

from __future__ import annotations

import json
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pytest

from ddsp_gym.agents import benchmark, provenance
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
    envs, agents = ["ddsp_gym/SineTuner-v1", "ddsp_gym/VolumeMatch-v1"], ["random", "cma"]
    with pytest.raises(KeyboardInterrupt):
        benchmark.run_benchmark(envs, agents, 10, 2, out, progress=False)
    assert len(json.loads(out.read_text())["cells"]) == 2  # both finished cells were kept
    calls.clear()
    monkeypatch.setattr(benchmark, "run_cell", _fake_cell)
    cells = benchmark.run_benchmark(envs, agents, 10, 2, out, progress=False)
    assert len(cells) == 4
    assert "| VolumeMatch-v1 | cma | 1/2 | 7 |" in out.with_suffix(".md").read_text()
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


def _recording_eval_env(episodes: list[dict]) -> Callable[[str, int], gym.Env]:
    """benchmark.make_eval_env, with every reset seed and plant query recorded in
    ``episodes`` (one dict per reset: seed, distances, success flags), at the env itself."""
    make_eval_env = benchmark.make_eval_env

    def make(env_id: str, budget: int, queries: bool = True) -> gym.Env:
        env = make_eval_env(env_id, budget, queries)  # its compile-time queries are not recorded
        base = env.unwrapped
        reset, reward_of = env.reset, base.reward_of

        def recording_reset(*, seed: int | None = None, options: dict | None = None):
            episodes.append({"seed": seed, "distances": [], "success": []})
            return reset(seed=seed, options=options)

        def recording_reward_of(action: np.ndarray, with_grad: bool = False):
            reward, info = reward_of(action, with_grad=with_grad)
            episodes[-1]["distances"].append(float(info["distance"]))
            episodes[-1]["success"].append(bool(info["success"]))
            return reward, info

        env.reset, base.reward_of = recording_reset, recording_reward_of
        return env

    return make


def test_a_real_cell_counts_queries_on_held_out_seeds(monkeypatch):
    """The cell's numbers, recomputed from what the env itself saw: resets on the held-out
    seeds 10000.. only, at most ``budget`` queries each, successes and the first successful
    query's index, best distances and the best-so-far curve."""
    episodes: list[dict] = []
    monkeypatch.setattr(benchmark, "make_eval_env", _recording_eval_env(episodes))
    # Random search first solves these three targets at queries 5, 7 and 1: with 6 queries,
    # two succeed and one does not.
    budget, seeds = 6, 3
    cell = benchmark.run_cell("ddsp_gym/VolumeMatch-v1", "random", budget, seeds, progress=False)
    assert [e["seed"] for e in episodes] == [10_000, 10_001, 10_002]
    assert all(1 <= len(e["distances"]) <= budget for e in episodes)
    # The oracle stops at the first success: a solved episode's last query is its first success.
    to_success = [e["success"].index(True) + 1 if any(e["success"]) else None for e in episodes]
    for e, k in zip(episodes, to_success, strict=True):
        assert len(e["distances"]) == (budget if k is None else k)
    solved = [k for k in to_success if k is not None]
    assert 0 < len(solved) < seeds, "both solved and unsolved episodes are wanted here"
    assert cell["seeds"] == seeds and cell["successes"] == len(solved)
    assert cell["median_queries_to_success"] == pytest.approx(np.median(solved))
    best = [min(e["distances"]) for e in episodes]
    assert cell["median_best_distance"] == pytest.approx(np.median(best), rel=1e-6)
    curves = [np.minimum.accumulate(e["distances"]) for e in episodes]
    padded = [np.concatenate([c, np.full(budget - len(c), c[-1])]) for c in curves]
    np.testing.assert_allclose(cell["median_curve"], np.median(padded, axis=0), rtol=1e-6)


def test_cli_bench_prints_the_table(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(benchmark, "run_cell", _fake_cell)
    argv = ["bench", "agents", "--envs", "ddsp_gym/SineTuner-v1", "--agents", "hybrid"]
    argv += ["-o", str(tmp_path)]
    assert main(argv + ["--budget", "5", "--seeds", "2"]) == 0
    assert "| SineTuner-v1 | hybrid | 1/2 |" in capsys.readouterr().out
    cell = json.loads((tmp_path / "bench.json").read_text())["cells"][0]
    assert cell["command"] == (
        "ddsp-gym bench agents --envs ddsp_gym/SineTuner-v1 --agents hybrid --budget 5 --seeds 2"
    )
    assert main(argv + ["--agents", "nonsense"]) == 2


def test_only_cells_of_the_running_code_version_are_resumed(tmp_path, monkeypatch, capsys):
    """A stored cell from another commit, or from before versions were recorded, is run
    again and replaced in place; a cell of the running version is kept as it is."""
    now, before = "c" * 40, "0" * 40
    monkeypatch.setattr(provenance, "code_version", lambda: now)
    envs = ["ddsp_gym/SineTuner-v1", "ddsp_gym/VolumeMatch-v1"]
    stored = [
        {**_fake_cell(envs[0], "random", 10, 2), "wall_s": 7.0, "code_version": now},
        {**_fake_cell(envs[1], "random", 10, 2), "wall_s": 8.0, "code_version": before},
        {**_fake_cell(envs[1], "cma", 10, 2), "wall_s": 9.0},  # no version: stale
        {**_fake_cell(envs[1], "random", 20, 2), "wall_s": 6.0, "code_version": before},
    ]
    out = tmp_path / "bench.json"
    benchmark.write_json(out, stored)
    calls = []

    def fake(*args, **kwargs):
        calls.append(args[:3])
        return _fake_cell(*args, **kwargs)

    monkeypatch.setattr(benchmark, "run_cell", fake)
    cells = benchmark.run_benchmark(envs, ["random", "cma"], 10, 2, out, progress=False)
    assert sorted(calls) == [(envs[0], "cma", 10), (envs[1], "cma", 10), (envs[1], "random", 10)]
    assert capsys.readouterr().err.count("2 cells from another code version will be rerun") == 1
    assert all(c["code_version"] == now for c in cells) and len(cells) == 4
    saved = json.loads(out.read_text())["cells"]
    assert saved[0] == stored[0]  # kept, not rerun
    assert [(c["env"], c["agent"], c["wall_s"]) for c in saved[1:3]] == [
        (envs[1], "random", 0.1),  # rerun, in the stale cell's place
        (envs[1], "cma", 0.1),
    ]
    assert saved[3] == stored[3]  # another budget: not this run's, left as it was
    # Two versions in the file: the Markdown names each cell's.
    table = out.with_suffix(".md").read_text()
    assert "| code version |" in table and "| 000000000000 |" in table
    assert "| VolumeMatch-v1 | random | 1/2 | 7 | 0.5 dB | - | - | 0.1 s | cccccccccccc |" in table

    calls.clear()
    benchmark.run_benchmark(envs, ["random", "cma"], 10, 2, out, progress=False)
    assert calls == [] and "code version" not in capsys.readouterr().err


def test_a_report_from_one_commit_says_so_in_one_line():
    cells = [{**_fake_cell("ddsp_gym/SineTuner-v1", "random", 5, 2), "code_version": "d" * 40}]
    report = benchmark.format_report(cells)
    assert "All cells from commit dddddddddddd." in report and "code version |" not in report
