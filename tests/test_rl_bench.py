"""``ddsp-gym bench rl``: learning curves on held-out targets, IQM with bootstrap CIs."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
from scipy import stats

from ddsp_gym.agents import provenance, rl_bench
from ddsp_gym.agents.base import SolveResult
from ddsp_gym.cli import main

VOLUME = "ddsp_gym/VolumeMatch-v1"


@dataclass
class _SolvesAfter:
    """A policy that solves held-out seed s once it has trained ``s - 10000`` x 100 steps."""

    trained: int

    def solve(self, env, seed: int, budget: int) -> SolveResult:
        success = self.trained >= 100 * (seed - 10_000 + 1)
        return SolveResult(success, 1, 0.0 if success else 1.0, 0.0 if success else 1.0, None)


@dataclass
class _CountingLearner:
    trained: int = 0

    def learn(self, steps: int) -> None:
        assert steps > 0
        self.trained += steps

    def policy(self) -> _SolvesAfter:
        return _SolvesAfter(self.trained)


@pytest.fixture
def fake_learner(monkeypatch):
    made = []

    def make(env_id: str, seed: int) -> _CountingLearner:
        made.append((env_id, seed))
        return _CountingLearner()

    monkeypatch.setitem(rl_bench.LEARNERS, "fake", make)
    return made


def test_evaluation_points_are_evenly_spaced_and_end_at_the_budget():
    assert rl_bench.eval_steps(1000, 4) == [250, 500, 750, 1000]
    assert rl_bench.eval_steps(3, 5) == [1, 2, 3]  # no repeated points
    with pytest.raises(ValueError, match=">= 1"):
        rl_bench.eval_steps(0, 3)


def test_a_run_scores_its_policy_at_every_point_on_held_out_targets(fake_learner):
    record = rl_bench.run_one(VOLUME, "fake", 7, 400, 4, targets=4, budget=5)
    assert fake_learner == [(VOLUME, 7)]
    assert [p["steps"] for p in record["curve"]] == [100, 200, 300, 400]
    assert [p["success"] for p in record["curve"]] == [0.25, 0.5, 0.75, 1.0]
    assert record["success"] == 1.0 and record["seed"] == 7


def test_the_iqm_and_its_interval_are_rliables_of_the_runs():
    scores = np.array([[0.0], [0.4], [0.5], [0.6], [1.0], [0.9], [0.3], [0.7]])
    iqm, low, high = rl_bench.interval(scores, reps=500)
    assert iqm == pytest.approx(stats.trim_mean(scores.ravel(), 0.25))
    assert low <= iqm <= high and 0.0 <= low and high <= 1.0


def test_scores_are_normalized_by_random_search_and_the_best_search_agent():
    cells = [
        {"env": VOLUME, "agent": "random", "budget": 5, "seeds": 4, "success_rate": 0.25},
        {"env": VOLUME, "agent": "cma", "budget": 5, "seeds": 4, "success_rate": 0.75},
        {"env": VOLUME, "agent": "hybrid", "budget": 5, "seeds": 4, "success_rate": 0.5},
        {"env": VOLUME, "agent": "ppo", "budget": 5, "seeds": 4, "success_rate": 1.0},
        {"env": VOLUME, "agent": "random", "budget": 200, "seeds": 4, "success_rate": 0.0},
    ]
    assert rl_bench.search_baselines(cells, VOLUME, 5, 4) == (0.25, 0.75, "cma")
    assert rl_bench.search_baselines(cells, VOLUME, 5, 20) is None  # other targets
    assert rl_bench.normalized(0.5, 0.25, 0.75) == 0.5
    assert rl_bench.normalized(0.5, 0.5, 0.5) is None
    records = [
        {"env": VOLUME, "algo": "fake", "steps": 9, "budget": 5, "targets": 4, "success": s}
        for s in (0.25, 0.5, 0.75, 1.0)
    ]
    (row,) = rl_bench.aggregate(records, cells)
    assert row["runs"] == 4 and row["success_iqm"] == pytest.approx(0.625)
    assert row["normalized_iqm"] == pytest.approx((0.625 - 0.25) / 0.5)
    assert row["best_search_agent"] == "cma"


def test_the_benchmark_writes_its_files_and_resumes_only_current_runs(
    tmp_path, fake_learner, monkeypatch, capsys
):
    monkeypatch.setattr(provenance, "code_version", lambda: "a" * 40)
    out = tmp_path / "rl_bench.json"
    args = ([VOLUME], ["fake"], 3, 400, 2, 4, 5, out, "cmd")
    rows = rl_bench.run_rl_benchmark(*args, progress=False)
    assert len(fake_learner) == 3 and rows[0]["runs"] == 3
    document = json.loads(out.read_text())
    assert [r["seed"] for r in document["runs"]] == [0, 1, 2]
    assert (
        "| VolumeMatch-v1 | fake | 400 | 3 | 100 % [100, 100] |"
        in out.with_suffix(".md").read_text()
    )
    assert out.with_suffix(".png").stat().st_size > 1000
    rl_bench.run_rl_benchmark(*args, progress=False)  # all current: nothing runs
    assert len(fake_learner) == 3
    monkeypatch.setattr(provenance, "code_version", lambda: "b" * 40)
    rl_bench.run_rl_benchmark(*args, progress=False)  # other code: every run again
    assert len(fake_learner) == 6
    assert "3 cells from another code version will be rerun" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown RL algorithms"):
        rl_bench.run_rl_benchmark([VOLUME], ["dqn"], 1, 10, 1, 1, 1, out, progress=False)


def test_bench_rl_trains_sb3_ppo_from_the_command_line(tmp_path, capsys):
    argv = ["bench", "rl", "--envs", VOLUME, "--algos", "ppo", "--seeds", "1", "--steps", "256"]
    argv += ["--eval-points", "2", "--targets", "2", "--budget", "4", "-o", str(tmp_path)]
    assert main(argv) == 0
    (record,) = json.loads((tmp_path / "rl_bench.json").read_text())["runs"]
    assert record["algo"] == "ppo" and [p["steps"] for p in record["curve"]] == [128, 256]
    # 64 envs x 128 steps: the first rollout covers both points, and the curve says so.
    assert [p["trained_steps"] for p in record["curve"]] == [1024, 1024]
    assert record["command"] == "ddsp-gym " + " ".join(argv[:-2])
    assert "| VolumeMatch-v1 | ppo | 256 | 1 |" in capsys.readouterr().out
    assert main(["bench", "rl", "--algos", "dqn", "-o", str(tmp_path)]) != 0
