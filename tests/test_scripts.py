"""scripts/*.py run as a user runs them: a subprocess with tiny arguments, its exit status,
its files and the numbers it prints."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.agents.benchmark import EVAL_SEED_OFFSET, make_eval_env
from ddsp_gym.plants import make_plant
from tests.conftest import require, subprocess_env

ROOT = Path(__file__).resolve().parents[1]
AMSYNTH_VST = "/usr/lib/vst/amsynth_vst.so"


def run_script(name: str, *args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python scripts/<name> args`` from the repository root; fails the test unless it
    exits 0. The subprocess shares the tests' JAX compilation cache (when on)."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / name), *args],
        cwd=ROOT,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


# ---- calibrate_rewards.py ------------------------------------------------------------------

CALIBRATION_LINE = re.compile(
    r"^(\S+)\s+mean random distance\s+([\d.]+) (\S+)\s+registry scale\s+([\d.]+)"
    r" -> mean random reward\s+(-?[\d.]+)$"
)


def test_calibrate_rewards_prints_each_envs_random_distance_and_reward():
    """One line per env. For these one-knob envs the mean random distance has a closed form:
    the distance is linear in the knob's unit position (dB for the gain, cents for the log
    frequency), so for two independent uniform positions it is E|u - v| = 1/3 of the
    knob's range: 54 dB / 3 and 4 octaves (4,800 cents) / 3, within 3 standard errors of
    a 512-sample mean. The registry's scales equal them, so a random policy scores ~ -1."""
    ids = ["ddsp_gym/VolumeMatch-v1", "ddsp_gym/SineTuner-v1"]
    done = run_script("calibrate_rewards.py", "--samples", "512", *ids)
    lines = [CALIBRATION_LINE.match(line) for line in done.stdout.splitlines()]
    assert all(lines) and [m[1] for m in lines] == ids, done.stdout
    gain = make_plant("gain").knob_specs[0]
    sine = make_plant("sine").knob_specs[0]
    closed_form = {
        ids[0]: ("dB", (gain.high - gain.low) / 3),
        ids[1]: ("cents", 1200 * math.log2(sine.high / sine.low) / 3),
    }
    for m in lines:
        env_id, mean, unit, scale, reward = m[1], float(m[2]), m[3], float(m[4]), float(m[5])
        expected_unit, expected_mean = closed_form[env_id]
        standard_error = expected_mean * 3 * math.sqrt(1 / 18) / math.sqrt(512)
        assert unit == expected_unit
        assert mean == pytest.approx(expected_mean, abs=3 * standard_error)
        assert scale == gym.spec(env_id).kwargs["task_config"]["distance_scale"]
        assert reward == pytest.approx(-mean / scale, abs=1e-3)
        assert reward == pytest.approx(-1.0, abs=0.1)


# ---- train.py -------------------------------------------------------------------------------

TRAIN_LINE = re.compile(
    r"^(\S+) (\w+): (\d+)/(\d+) held-out targets solved, median best distance (\S+) (\S+); "
    r"model and logs in (\S+)/$"
)


@pytest.mark.slow
def test_train_script_writes_the_model_checkpoints_logs_and_its_held_out_score(tmp_path):
    """TD3, 250 steps (50 updates after its 200 learning starts), scored on 2 held-out
    targets with 5 queries each. eval.json must be the saved model's own score: the
    model loaded back here and played on seeds 10000-10001 gives the same distances."""
    from stable_baselines3 import TD3

    from ddsp_gym.agents.sb3 import SB3Policy, tensorboard_available

    env_id, out = "ddsp_gym/VolumeMatch-v1", tmp_path / "run"
    done = run_script(
        "train.py",
        *("--env", env_id, "--algo", "td3", "--steps", "250", "--eval-seeds", "2"),
        *("--eval-budget", "5", "--checkpoint-every", "100", "--out", str(out)),
    )
    assert (out / "model.zip").is_file()
    checkpoints = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert checkpoints == ["td3_100_steps.zip", "td3_200_steps.zip"]
    if tensorboard_available():  # else train.py prints a note instead
        assert any((out / "tb").rglob("events.out.tfevents.*"))
    cell = json.loads((out / "eval.json").read_text())
    assert (cell["env"], cell["agent"], cell["seeds"], cell["budget"]) == (env_id, "td3", 2, 5)
    assert cell["train_queries"] == 250 and len(cell["median_curve"]) == 5
    line = TRAIN_LINE.match(done.stdout.strip().splitlines()[-1])
    assert line, done.stdout[-500:]
    assert (line[1], line[2], int(line[3]), int(line[4])) == (env_id, "td3", cell["successes"], 2)
    assert float(line[5]) == pytest.approx(cell["median_best_distance"], rel=1e-2)
    assert line[6] == cell["distance_unit"] == "dB" and Path(line[7]) == out

    policy = SB3Policy(TD3.load(str(out / "model.zip"), device="cpu"), "td3")
    env = make_eval_env(env_id, 5, queries=False)  # an RL policy plays the defaults
    rescored = [policy.solve(env, EVAL_SEED_OFFSET + i, 5) for i in range(2)]
    best = np.median([r.best_distance for r in rescored])
    assert cell["median_best_distance"] == pytest.approx(best, rel=1e-5)
    assert cell["successes"] == sum(r.success for r in rescored)


# ---- bench_plugin.py ---------------------------------------------------------------------

BENCH_LINE = re.compile(r"^(\w+): (\d+)/(\d+) solved, median queries (\S+), ([\d.]+) ms/query$")


def _check_bench_outputs(out: Path, stdout: str, backend: str, agents: list[str], seeds: int,
                         budget: int, command: str) -> list[dict]:  # fmt: skip
    """The JSON rows, the Markdown and the printed lines agree and keep to the budget."""
    rows = json.loads(out.with_suffix(".json").read_text())
    assert [r["agent"] for r in rows] == agents
    printed = [BENCH_LINE.match(line) for line in stdout.splitlines()[: len(agents)]]
    assert all(printed), stdout
    report = out.with_suffix(".md").read_text()
    assert report.startswith(f"# Hidden-patch benchmark, backend={backend}\n")
    assert f"Made with:\n\n    python scripts/bench_plugin.py {command}\n" in report
    duration = make_plant("amsynth_twin").duration
    for row, line in zip(rows, printed, strict=True):
        assert (row["env"], row["backend"]) == ("ddsp_gym/RealSynthPatch-v1", backend)
        assert (row["seeds"], row["budget"]) == (seeds, budget)
        assert seeds <= row["queries"] <= seeds * budget
        assert row["s_per_query"] == pytest.approx(row["wall_s"] / row["queries"])
        assert row["physical_limit_s"] == pytest.approx(duration + 0.04)
        assert (line[1], int(line[2]), int(line[3])) == (row["agent"], row["successes"], seeds)
        assert float(line[5]) == pytest.approx(1000 * row["s_per_query"], abs=0.051)
        assert f"| RealSynthPatch-v1 | {row['agent']} | {row['successes']}/{seeds} |" in report
        assert f"| {row['agent']} | {row['queries']} | {float(line[5]):.1f} ms |" in report
    return rows


def test_bench_plugin_script_on_the_sim_backend(tmp_path):
    out = tmp_path / "bench_sim"
    args = ["--backend", "sim", "--agents", "random", "hybrid", "--seeds", "2", "--budget", "4"]
    done = run_script("bench_plugin.py", *args, "-o", str(out))
    rows = _check_bench_outputs(
        out, done.stdout, "sim", ["random", "hybrid"], 2, 4, " ".join([*args, "-o", str(out)])
    )
    # The sim backend renders too: the jitted plant, far faster than real time.
    assert all(0 < r["render_s"] < r["physical_limit_s"] for r in rows)
    assert "| 440.0 ms |" in out.with_suffix(".md").read_text()


def test_bench_plugin_script_on_amsynths_vst(tmp_path):
    """The script's default backend: amsynth's VST hosted by DawDreamer (skips without
    them, fails under CI)."""
    require("dawdreamer", "the plugin backend needs DawDreamer: pip install 'ddsp_gym[plugin]'")
    require(Path(AMSYNTH_VST).exists(), f"{AMSYNTH_VST} is missing: apt-get install amsynth")
    out = tmp_path / "bench_vst"
    args = ["--agents", "random", "--seeds", "1", "--budget", "3"]
    done = run_script("bench_plugin.py", *args, "-o", str(out))
    (row,) = _check_bench_outputs(
        out, done.stdout, "plugin", ["random"], 1, 3, " ".join([*args, "-o", str(out)])
    )
    assert 0 < row["render_s"] < row["physical_limit_s"]  # offline: faster than real time


# ---- rl_defaults.py ------------------------------------------------------------------------


@pytest.mark.slow
def test_rl_defaults_script_scores_candidates_and_resumes(tmp_path):
    """One PPO rollout per candidate on VolumeMatch, scored on the 50 held-out targets:
    the record holds the candidate's env kwargs and PPO settings, the report its row, and
    a rerun of the same command trains nothing."""
    out = tmp_path / "rl_defaults.json"
    args = ("--envs", "ddsp_gym/VolumeMatch-v1", "--candidates", "absolute@small", "delta@small")
    args += ("--seeds", "0", "--steps", "1024", "--eval-every", "1024", "--out", str(out))
    run_script("rl_defaults.py", *args)
    document = json.loads(out.read_text())
    runs = {r["candidate"]: r for r in document["runs"]}
    assert sorted(runs) == ["absolute@small", "delta@small"]
    assert runs["delta@small"]["env_kwargs"]["control"] == "delta"
    assert runs["absolute@small"]["ppo"]["n_envs"] == 32
    for run in runs.values():
        (evaluation,) = run["evaluations"]
        assert evaluation["targets"] == 50 and 0 <= evaluation["successes"] <= 50
    (random,) = document["random_search"]
    assert random["budget"] == gym.spec("ddsp_gym/VolumeMatch-v1").max_episode_steps
    report = out.with_suffix(".md").read_text()
    assert "| VolumeMatch-v1 | delta@small | 1,024 | 1,024 |" in report
    assert "python scripts/rl_defaults.py --envs ddsp_gym/VolumeMatch-v1" in report
    before = out.read_text()
    run_script("rl_defaults.py", *args)
    assert out.read_text() == before


def test_rl_defaults_refuses_an_unknown_candidate():
    from ddsp_gym.agents.rl_defaults import split_candidate

    assert split_candidate("delta")[1]["n_envs"] == 64  # the preset by default
    for name in ("nope", "delta@nope"):
        with pytest.raises(ValueError, match="unknown candidate"):
            split_candidate(name)


# ---- chain_refine_tuning.py ----------------------------------------------------------------


@pytest.mark.slow
def test_chain_refine_tuning_scores_every_setting_on_chains_outside_the_evalset(tmp_path):
    """One tuning chain, a short fit per refinement setting: a row per setting, the
    default among them, and none of the tuning chains is an evaluation-set chain."""
    import shutil

    from ddsp_gym.agents.staged import REFINE_LEARNING_RATE, REFINE_PATIENCE
    from ddsp_gym.bench.evalset import CHAIN_SETTINGS

    require(shutil.which("sox") is not None, "sox is missing: apt-get install sox")
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        from chain_refine_tuning import SETTINGS, TUNING_SETTINGS
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    assert (REFINE_LEARNING_RATE, REFINE_PATIENCE) in SETTINGS
    assert not set(TUNING_SETTINGS) & set(CHAIN_SETTINGS)
    out = tmp_path / "tuning"
    run_script("chain_refine_tuning.py", "--cases", "1", "--steps", "8", "--seeds", "0",
               "--set", str(tmp_path / "set"), "-o", str(out))  # fmt: skip
    payload = json.loads(out.with_suffix(".json").read_text())
    assert [(s["learning_rate"], s["patience"]) for s in payload["summary"]] == list(SETTINGS)
    assert all(s["fits"] == 1 and np.isfinite(s["median_distance"]) for s in payload["summary"])
    assert len(payload["rows"]) == len(SETTINGS)
    table = out.with_suffix(".md").read_text()
    assert sum(line.startswith("| 0.") for line in table.splitlines()) == len(SETTINGS)
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "chain_refine_tuning.py"),
                           "--cases", "7"], cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 2 and "--cases must be 1 to 6" in done.stderr


# ---- instrument_floor.py -------------------------------------------------------------------


@pytest.mark.slow
def test_instrument_floor_scores_start_fit_and_descent(tmp_path):
    """One FluidSynth note, a one-query fit and two descent steps: a row with the three
    heard distances (the descent from the fit cannot end above the fit's own sound by
    more than the render's level noise), and the table says how many were halved."""
    import shutil

    from ddsp_gym.bench.evalset import build_evalset

    require(shutil.which("fluidsynth") is not None, "fluidsynth is missing")
    folder = tmp_path / "set"
    cases = [c for c in build_evalset(folder, ["instrument"]) if c.name == "gm000_n57"]
    (folder / "cases.json").write_text(json.dumps([c.__dict__ for c in cases]))
    out = tmp_path / "floor"
    run_script("instrument_floor.py", "--set", str(folder), "--steps", "2", "--descent", "2",
               "-o", str(out))  # fmt: skip
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert row["case"] == "gm000_n57"
    assert all(np.isfinite(row[k]) and row[k] > 0 for k in ("start_db", "fit_db", "descent_db"))
    assert row["descent_db"] <= row["fit_db"] + 0.5
    assert "Halved from the start: fit " in out.with_suffix(".md").read_text()


# ---- vowel_f1_diagnosis.py -----------------------------------------------------------------


@pytest.mark.slow
def test_vowel_f1_diagnosis_shows_the_high_voices_f1_cause(tmp_path):
    """On espeak-ng's higher /u/ (the set's case, the committed fits): F1 lies between
    the first two harmonics; with the Rosenberg source the distance is lower at the low
    fit than with F1 at the truth; the sawtooth fit's F1 is higher; and the excerpt
    match fits still glides (its LPC F2 above the middle's)."""
    import shutil

    from ddsp_gym.bench.evalset import build_evalset

    installed = shutil.which("espeak-ng") is not None
    require(installed, "espeak-ng is missing: apt-get install espeak-ng")
    folder = tmp_path / "set"
    cases = [c for c in build_evalset(folder, ["vowel"]) if c.name == "vowel_u_enus_f3"]
    (folder / "cases.json").write_text(json.dumps([c.__dict__ for c in cases]))
    out = tmp_path / "diagnosis"
    run_script("vowel_f1_diagnosis.py", "--set", str(folder), "-o", str(out))
    (row,) = json.loads(out.with_suffix(".json").read_text())["rows"]
    assert 1.0 < row["f1_in_harmonics"] < 2.0
    assert row["rosenberg"]["d_truth"] > row["rosenberg"]["d_fit"]
    assert row["sawtooth"]["fit_f1"] > row["rosenberg"]["fit_f1"] + 20.0
    assert row["lpc_start"][1] > row["lpc_middle"][1] + 100.0
    assert "| vowel_u_enus_f3 | 199.1 |" in out.with_suffix(".md").read_text()
