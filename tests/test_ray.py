"""The ray extra on a local Ray: a two-trial sweep, ``bench rl --ray``, RLlib's PPO.

Ray pins Gymnasium, so it lives in its own venv: ``make test-ray`` (part of ``make
test``) builds .venv-ray and runs these tests there with DDSP_GYM_RAY_TESTS=1, under
which a missing Ray fails them. In a venv without Ray (the core one) they skip.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os

import pytest

from ddsp_gym.agents import ray_runs, rl_bench
from ddsp_gym.cli import main

RAY_TESTS_ENV = "DDSP_GYM_RAY_TESTS"
VOLUME = "ddsp_gym/VolumeMatch-v1"

if importlib.util.find_spec("ray") is None:
    if os.environ.get(RAY_TESTS_ENV):
        pytest.fail(
            f"{RAY_TESTS_ENV} is set but Ray does not import: `make test-ray` installs it",
            pytrace=False,
        )
    pytest.skip(
        "Ray is not in this venv (it pins Gymnasium): `make test-ray` runs these tests "
        "in .venv-ray",
        allow_module_level=True,
    )

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray of two CPUs for the module (starting one takes seconds)."""
    ray = ray_runs.init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


def test_local_ray_listens_on_loopback_only_without_usage_stats(local_ray):
    import psutil

    assert os.environ["RAY_USAGE_STATS_ENABLED"] == "0"
    assert local_ray._private.worker.global_worker.node.node_ip_address == "127.0.0.1"
    ours = psutil.Process().children(recursive=True) + [psutil.Process()]
    listening = [
        c.laddr.ip
        for p in ours
        for c in p.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN
    ]
    assert listening  # GCS, raylet, workers
    assert {ip.removeprefix("::ffff:") for ip in listening} == {"127.0.0.1"}


def test_a_two_trial_sweep_writes_every_trial_and_the_best(local_ray, tmp_path, capsys):
    argv = ["sweep", VOLUME, "--param", "learning_rate=loguniform:1e-4:1e-3"]
    argv += ["--param", "n_steps=choice:64,128", "--param", "gamma=0.95", "--trials", "2"]
    argv += ["--steps", "256", "--targets", "2", "--budget", "4", "-o", str(tmp_path)]
    assert main(argv) == 0
    document = json.loads((tmp_path / "sweep_VolumeMatch-v1_ppo.json").read_text())
    trials = document["trials"]
    assert [t["trial"] for t in trials] == [0, 1]
    for t in trials:
        assert 1e-4 <= t["config"]["learning_rate"] <= 1e-3
        assert t["config"]["n_steps"] in (64, 128) and t["config"]["gamma"] == 0.95
        assert [p["steps"] for p in t["curve"]] == [128, 256]
        assert t["success"] in (0.0, 0.5, 1.0) and t["median_best_distance"] >= 0
    assert trials[0]["config"] != trials[1]["config"]
    assert document["best"] == ray_runs.best_trial(trials)
    assert document["command"] == (
        f"ddsp-gym sweep {VOLUME} --algo ppo --param learning_rate=loguniform:1e-4:1e-3 "
        "--param n_steps=choice:64,128 --param gamma=0.95 --trials 2 --steps 256 "
        "--eval-points 2 --targets 2 --budget 4 --seed 0"
    )
    assert "| held-out success |" in capsys.readouterr().out


def test_bench_rl_on_ray_records_the_same_runs_as_locally(local_ray, tmp_path):
    argv = ["bench", "rl", "--envs", VOLUME, "--algos", "ppo", "--seeds", "1", "--steps", "256"]
    argv += ["--eval-points", "2", "--targets", "2", "--budget", "4", "-o", str(tmp_path)]
    assert main([*argv, "--ray"]) == 0
    out = tmp_path / "rl_bench.json"
    (record,) = json.loads(out.read_text())["runs"]
    local = rl_bench.run_one(VOLUME, "ppo", 0, 256, 2, targets=2, budget=4)
    assert set(record) == set(local) | {"command", "code_version"}
    assert record["command"] == "ddsp-gym " + " ".join(argv[:-2])  # as a local run's
    # The same run, wherever it ran: same seed, same single-threaded SB3, same JAX.
    for ray_point, local_point in zip(record["curve"], local["curve"], strict=True):
        assert ray_point == pytest.approx(local_point, rel=1e-5)
    before = out.read_text()
    assert main([*argv, "--ray"]) == 0  # resumes: nothing left to run
    assert json.loads(out.read_text())["runs"] == json.loads(before)["runs"]


def test_rllib_ppo_trains_on_the_registered_env(local_ray):
    rows = ray_runs.train_rllib_ppo(VOLUME, iterations=2, batch_size=256)
    assert [r["iteration"] for r in rows] == [1, 2]
    assert [r["env_steps"] for r in rows] == [256, 512]
    assert all(math.isfinite(r["episode_return_mean"]) for r in rows)
