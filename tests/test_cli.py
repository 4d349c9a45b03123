"""The ddsp-gym command: output a user reads, files it writes, errors without tracebacks."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.audio_io import save_audio
from ddsp_gym.catalog import PLANT_NAMES
from ddsp_gym.cli import knob_range_errors, main
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants import make_plant


def test_list_names_every_env_and_its_seed_demo(capsys, env_ids):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in env_ids:
        assert env_id in out
    assert "[Sine Wave Tuner]" in out


def test_render_writes_the_requested_sound(tmp_path, capsys):
    path = tmp_path / "a440.wav"
    assert (
        main(["render", "ddsp_gym/SineTuner-v1", "--knobs", "frequency=440", "-o", str(path)]) == 0
    )
    audio, sr = sf.read(path)
    assert sr == 16_000 and audio.shape == (4000,)
    peak_hz = np.fft.rfftfreq(4000, 1 / sr)[np.argmax(np.abs(np.fft.rfft(audio)))]
    assert peak_hz == pytest.approx(440, abs=4)
    assert "frequency=440" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "ddsp_gym/SineTuner-v1", "--knobs", "freq=440", "-o", "x.wav"], "no knob"),
        (["render", "ddsp_gym/SineTuner-v1", "--knobs", "frequency", "-o", "x.wav"], "NAME=VALUE"),
        (
            ["render", "ddsp_gym/SineTuner-v1", "--knobs", "frequency=hi", "-o", "x.wav"],
            "not a number",
        ),
    ],
)
def test_bad_arguments_give_one_error_line_and_exit_2(tmp_path, monkeypatch, capsys, argv, message):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsp-gym: error:") and message in err and "Traceback" not in err


@pytest.mark.slow
def test_demo_solves_the_level1_envs_and_writes_its_outputs(tmp_path, capsys):
    assert main(["demo", "--seeds", "10", "-o", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["passed"]
    for row in summary["rows"]:
        assert row["solved"] >= 9, row
        name = row["env_id"].split("/")[-1]
        assert (tmp_path / name / "seed0_target.wav").is_file()
        assert (tmp_path / name / "seed0.png").stat().st_size > 1000
    assert "PASS" in capsys.readouterr().out


# ---- the parser starts fast ---------------------------------------------------------------


def test_building_the_parser_imports_no_jax_and_help_exits_0():
    heavy = ("jax", "ddsp_gym.agents", "ddsp_gym.plants", "torch")
    probe = (
        "import sys; from ddsp_gym.cli import build_parser; build_parser(); "
        f"print([m for m in {heavy!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    script = Path(sys.executable).with_name("ddsp-gym")  # the installed entry point
    command = [str(script)] if script.exists() else [sys.executable, "-m", "ddsp_gym.cli"]
    shown = subprocess.run([*command, "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "usage: ddsp-gym" in shown.stdout
    assert "exit status: 0 done; 1 ran, but the goal was not met" in shown.stdout


def test_the_light_plant_list_is_the_plant_registry():
    from ddsp_gym.plants import PLANTS

    assert PLANT_NAMES == tuple(PLANTS)


def test_match_help_lists_the_plants_and_the_exit_status(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["match", "--help"])
    assert exit_info.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert ", ".join(PLANT_NAMES) in out
    assert "exit status: 0 matched" in out and "1 ran fine but no match" in out


# ---- unknown names and out-of-range knobs: one error line, exit 2 --------------------------

NOPE = "ddsp_gym/NoSuchEnv-v0"  # no registered id is close: no "did you mean"


@pytest.mark.parametrize(
    "argv",
    [
        ["render", NOPE, "-o", "x.wav"],
        ["recovery", "--envs", NOPE],
        ["bench", "agents", "--envs", NOPE],
        ["bench", "perf", "--quick", "--envs", NOPE],
        ["bench", "hw", "--envs", NOPE],
        ["hw", "calibrate", NOPE],
    ],
    ids=["render", "recovery", "bench-agents", "bench-perf", "bench-hw", "hw-calibrate"],
)
def test_an_unknown_env_id_is_one_error_line_for_every_command(tmp_path, monkeypatch, capsys, argv):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"ddsp-gym: error: unknown env id {NOPE!r}; `ddsp-gym list` shows the valid ids\n"
    )
    assert list(tmp_path.iterdir()) == []  # failed before writing anything


def test_an_unknown_env_id_suggests_the_closest(tmp_path, capsys):
    assert main(["render", "SineTuner-v1", "-o", str(tmp_path / "x.wav")]) == 2
    assert "(did you mean 'ddsp_gym/SineTuner-v1'?)" in capsys.readouterr().err


def test_render_refuses_an_out_of_range_knob_and_names_its_range(tmp_path, capsys):
    path = tmp_path / "low.wav"
    argv = ["render", "ddsp_gym/SineTuner-v1", "--knobs", "frequency=50", "-o", str(path)]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        "ddsp-gym: error: knob 'frequency': 50 Hz is outside its range 110 to 1760 Hz\n"
    )
    assert not path.exists()


def test_knob_range_errors_accept_the_ends_and_refuse_nan():
    specs = [KnobSpec("cutoff", 20.0, 8000.0, "log", "Hz"), KnobSpec("mix", 0.0, 1.0)]
    assert knob_range_errors(specs, {"cutoff": 20.0, "mix": 1.0}) == []
    assert knob_range_errors(specs, {"cutoff": 8000.5, "mix": float("nan")}) == [
        "knob 'cutoff': 8000.5 Hz is outside its range 20 to 8000 Hz",
        "knob 'mix': nan is outside its range 0 to 1",
    ]


# ---- bench: one subcommand per benchmark -------------------------------------------------


def test_bench_alone_prints_its_help_and_exits_2(capsys):
    assert main(["bench"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: ddsp-gym bench")
    for name, words in (("agents", "compare agents"), ("perf", "speed"), ("hw", "search agents")):
        assert re.search(rf"^    {name} +{words}", err, re.M), (name, err)
    assert err.endswith("ddsp-gym bench: error: choose one of the commands above\n")


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["bench", "agents", "--quick"], "--quick"),
        (["bench", "agents", "--knobs", "cutoff"], "--knobs"),
        (["bench", "hw", "--train-queries", "5"], "--train-queries"),
        (["bench", "hw", "--plants", "sine"], "--plants"),
    ],
)
def test_bench_flags_belong_to_the_benchmark_that_uses_them(capsys, argv, flag):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert f"unrecognized arguments: {flag}" in capsys.readouterr().err


def test_bench_hw_defaults_and_the_command_it_records(monkeypatch, tmp_path, capsys):
    import ddsp_gym.agents.hw_bench

    calls = []
    monkeypatch.setattr(
        ddsp_gym.agents.hw_bench,
        "run_hw_benchmark",
        lambda *a, **kw: calls.append((a, kw)) or [],
    )
    options = '{"latency": 21.0}'
    argv = ["bench", "hw", "--hardware-json", options, "--knobs", "cutoff", "-o", str(tmp_path)]
    assert main(argv) == 0
    (((envs, agents, budget, seeds, out, hardware, knobs, _, command), kw),) = calls
    assert (envs, agents, budget, seeds) == (None, ["random", "cma", "hybrid"], 60, 10)
    assert out == tmp_path / "hw_bench.json" and hardware == {"latency": 21.0}
    assert knobs == ["cutoff"] and kw == {"blind": False}
    assert command == (
        "ddsp-gym bench hw --hardware-json '{\"latency\": 21.0}' --knobs cutoff "
        "--agents random cma hybrid --budget 60 --seeds 10"
    )
    calls.clear()
    argv = ["bench", "hw", "--blind-targets", "--name", "blind", "-o", str(tmp_path)]
    assert main(argv) == 0
    (((_, _, _, _, out, _, _, _, command), kw),) = calls
    assert out == tmp_path / "blind.json" and kw == {"blind": True}
    assert command == (
        "ddsp-gym bench hw --blind-targets --agents random cma hybrid --budget 60 --seeds 10 "
        "--name blind"
    )
    assert main(["bench", "hw", "--hardware-json", "[1]"]) == 2
    assert "must be a JSON object" in capsys.readouterr().err


# ---- WAV conversions are said once -----------------------------------------------------------


def test_match_says_once_how_it_fit_the_file(tmp_path, capsys):
    # Stereo, 22.05 kHz, 1 s: mixed down, resampled and cut to the sine plant's 0.25 s.
    t = np.arange(22_050) / 22_050
    tone = 0.4 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([tone, 0.5 * tone], axis=1), 22_050)
    argv = ["match", str(path), "--plant", "sine", "--steps", "2", "-o", str(tmp_path / "o")]
    assert main(argv) in (0, 1)
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("ddsp")]
    assert notes == [
        f"ddsp-gym: note: {path}: mixed 2 channels down to mono (their mean)",
        f"ddsp-gym: note: {path}: resampled from 22050 Hz to 16000 Hz",
        f"ddsp-gym: note: {path}: cut to the plant's 0.250 s from 1.000 s after the onset",
    ]


# ---- the commands, for real ------------------------------------------------------------------


def test_recovery_writes_its_table_for_the_envs_asked(tmp_path, capsys):
    env_id = "ddsp_gym/VolumeMatch-v1"
    assert main(["recovery", "--envs", env_id, "--seeds", "1", "-o", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "recovery.json").read_text())["rows"]
    assert [(r["env_id"], r["variant"], r["seeds"]) for r in rows] == [
        (env_id, "no restarts", 1),
        (env_id, "restarts", 1),
    ]
    assert all(r["recovered"] == 1 and r["budget"] == 50 for r in rows)  # VolumeMatch: easy
    markdown = (tmp_path / "recovery.md").read_text()
    assert f"| {env_id} | gradient, no restarts | 1/1 |" in markdown
    assert f"| {env_id} | gradient, restarts | 1/1 |" in markdown
    out = capsys.readouterr().out
    assert f"| {env_id} | gradient, restarts | 1/1 |" in out
    assert f"wrote {tmp_path / 'recovery.json'} and {tmp_path / 'recovery.md'}" in out


def test_match_fits_an_effect_to_its_output_on_a_given_dry_signal(tmp_path, capsys):
    # A 250 Hz sine at five levels (the harmonics task's probe) through the distortion
    # plant at known knobs is the target; `match --input` must find the drive and tone.
    sr = 16_000
    t = np.arange(8000) / sr
    dry = (np.repeat([0.05, 0.1, 0.2, 0.4, 0.8], 1600) * np.sin(2 * np.pi * 250 * t)).astype(
        np.float32
    )
    plant = make_plant("distortion")
    assert plant.needs_input and plant.n_samples == dry.size
    knobs = plant.knobs_from_physical({"drive": 18.0, "tone": 3.0, "level": -18.0})
    wet = np.asarray(plant.render(knobs, jax.random.PRNGKey(0), jnp.asarray(dry)))
    dry_path = save_audio(tmp_path / "dry.wav", dry, sr)
    target = save_audio(tmp_path / "target.wav", wet, sr)
    out = tmp_path / "out"
    argv = ["match", str(target), "--plant", "distortion", "--input", str(dry_path)]
    assert main([*argv, "--steps", "60", "-o", str(out)]) == 0
    report = json.loads((out / "knobs.json").read_text())
    assert report["success"] and report["distance"] <= report["success_threshold"]
    assert report["knobs"]["drive"] == pytest.approx(18.0, abs=1.0)
    assert report["knobs"]["tone"] == pytest.approx(3.0, abs=1.0)
    assert report["knob_units"] == {"drive": "dB", "tone": "dB", "level": "dB"}
    result, written_sr = sf.read(out / "result.wav")
    assert written_sr == sr and result.shape == (8000,)
    np.testing.assert_allclose(sf.read(out / "target.wav")[0], wet, atol=1e-4)  # 16-bit WAV
    assert capsys.readouterr().out.startswith("matched: distance ")
