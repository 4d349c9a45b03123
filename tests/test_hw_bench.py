"""The hardware benchmark's pieces that need no rig: knob subsets, cells, the report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ddsp_gym.agents import hw_bench, provenance
from ddsp_gym.agents.base import PlantOracle, SolveResult
from ddsp_gym.agents.hw_bench import KnobSubset, format_report, hw_cell
from ddsp_gym.bench.commands import hw_command
from tests.conftest import make

ENV = "ddsp_gym/RealSynthPatch-v1"
LIMIT = {
    "note_s": 0.4,
    "tail_s": 0.05,
    "physical_limit_s": 0.45,
    "settle_s": 0.04,
    "latency_s": 0.021,
    "take_floor_s": 0.511,
}


def test_knob_subset_holds_the_other_knobs_at_the_hidden_patch():
    env = make(ENV, expose_grad=True)
    proxy = KnobSubset(env, ["cutoff", "resonance", "filter_env_amount"])
    obs, _ = proxy.reset(seed=3)
    target = np.asarray(env.unwrapped.state.target_knobs)
    assert obs.shape == (3,) and proxy.action_space.shape == (3,)
    full = proxy.full_action(np.array([0.1, -0.2, 0.3]))
    np.testing.assert_allclose(full[:3], [0.1, -0.2, 0.3], rtol=1e-6)
    np.testing.assert_allclose((full[3:] + 1) / 2, target[3:], atol=1e-6)
    # At the hidden free knobs the whole patch is the target's: distance ~0, success.
    reward, info = proxy.reward_of(2.0 * target[:3] - 1.0)
    assert info["success"] and info["param_error"] < 1e-5
    reward, grad = proxy.twin_reward_and_grad(np.zeros(3, np.float32))
    _, full_grad = env.unwrapped.twin_reward_and_grad(proxy.full_action(np.zeros(3)))
    np.testing.assert_allclose(grad, full_grad[:3], rtol=1e-5)
    assert len(proxy.query_s) == 1 and proxy.attempts == [1]
    oracle = PlantOracle(proxy, seed=3, budget=4)
    assert oracle.dim == 3 and not oracle.has_twin  # a sim env keeps its exact gradient


def test_knob_subset_names_the_knobs_that_exist():
    with pytest.raises(ValueError, match="cutoff"):
        KnobSubset(make(ENV), ["cutof"])


def _record(seed, success, queries, retries=0):
    return {
        "seed": seed,
        "success": success,
        "queries": queries,
        "queries_to_success": queries if success else None,
        "twin_queries": 2,
        "best_distance": 0.2 if success else 0.6,
        "final_distance": 0.2 if success else 0.6,
        "param_error": 0.05,
        "distances": [0.9] * (queries - 1) + [0.2 if success else 0.6],
        "wall_s": queries * 0.6,
        "reset_s": 1.0,
        "query_s": [0.55] * queries,
        "retries": retries,
    }


def test_cell_reports_rates_timing_against_the_limit_and_retries():
    runs = [_record(0, True, 10, 1), _record(1, False, 20), _record(2, True, 30, 2)]
    task = make(ENV).unwrapped.task
    cell = hw_cell(ENV, "hybrid", ["cutoff"], 20 + 10, runs, LIMIT, task)
    assert cell["successes"] == 2 and cell["median_queries_to_success"] == 20
    assert cell["median_query_s"] == pytest.approx(0.55)
    assert cell["wall_s"] == pytest.approx(60 * 0.6 + 3.0)
    assert cell["wall_s_per_query"] == pytest.approx((36.0 + 3.0) / 60)
    assert cell["retries"] == 3 and cell["physical_limit_s"] == 0.45
    command = hw_command(None, None, ["cutoff"], ["hybrid"], 30, 3)
    assert command == "ddsp-gym bench hw --knobs cutoff --agents hybrid --budget 30 --seeds 3"
    report = format_report([{**cell, "command": command}])
    assert "| RealSynthPatch-v1 | cutoff | hybrid | 2/3 | 20 |" in report
    assert "0.40 s + 0.05 s = 0.45 s" in report and f"    {command}\n" in report


class _OneQueryAgent:
    """Plays one query per hidden patch (at the knobs' middle) and records the seeds."""

    def __init__(self, seeds: list[int]) -> None:
        self.seeds = seeds

    def solve(self, env, seed: int, budget: int) -> SolveResult:
        env.reset(seed=seed)
        _, info = env.reward_of(np.zeros(env.action_space.shape, np.float32))
        self.seeds.append(seed)
        return SolveResult(
            success=bool(info["success"]),
            steps=0,
            final_distance=info["distance"],
            best_distance=info["distance"],
            best_action=np.zeros(1, np.float32),
            distances=[info["distance"]],
            queries=1,
            queries_to_success=1 if info["success"] else None,
        )


def test_runs_from_another_code_version_are_played_again_and_matching_ones_kept(
    tmp_path, monkeypatch, capsys
):
    """The sim env stands in for the device: seed 10000's stored run is from this code
    and is kept; seed 10001's is from another commit and is played again."""
    now, before = "a" * 40, "b" * 40
    env_id = "ddsp_gym/VolumeMatch-v1"
    monkeypatch.setattr(provenance, "code_version", lambda: now)
    monkeypatch.setattr(hw_bench, "make_hw_env", lambda e, budget, hardware: make(e))
    monkeypatch.setattr(hw_bench, "physical_limit", lambda env: LIMIT)
    played: list[int] = []
    monkeypatch.setattr(hw_bench, "make_search_agent", lambda name: _OneQueryAgent(played))
    key = hw_bench.cell_id(env_id, "random", ["gain"], 5, 2)
    kept = {**_record(10_000, True, 3), "code_version": now}
    stale = {**_record(10_001, False, 5), "code_version": before}
    out = tmp_path / "hw_bench.json"
    out.write_text(json.dumps({"runs": {key: [kept, stale]}, "cells": {key: {"stale": True}}}))

    cells = hw_bench.run_hw_benchmark([env_id], ["random"], 5, 2, out, progress=False)
    assert played == [10_001]
    assert "1 cell from another code version will be rerun" in capsys.readouterr().err
    document = json.loads(out.read_text())
    runs = document["runs"][key]
    assert runs[0] == kept and [r["seed"] for r in runs] == [10_000, 10_001]
    assert runs[1]["queries"] == 1 and runs[1]["code_version"] == now
    assert cells == [document["cells"][key]] and cells[0]["code_version"] == now
    assert cells[0]["knobs"] == ["gain"] and cells[0]["seeds"] == 2
    assert "All cells from commit aaaaaaaaaaaa." in out.with_suffix(".md").read_text()

    played.clear()
    hw_bench.run_hw_benchmark([env_id], ["random"], 5, 2, out, progress=False)
    assert played == [] and "code version" not in capsys.readouterr().err


def test_the_stale_count_knows_the_knobs_before_a_device_opens():
    assert hw_bench.searched_knobs(ENV, None) == list(make(ENV).unwrapped.plant.knob_names)
    assert hw_bench.searched_knobs(ENV, ["cutoff"]) == ["cutoff"]
