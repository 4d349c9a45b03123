"""The ddsp-gym command: output a user reads, files it writes, errors without tracebacks."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.cli import main


def test_list_names_every_env_and_its_seed_demo(capsys, env_ids):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in env_ids:
        assert env_id in out
    assert "[Sine Wave Tuner]" in out


def test_render_writes_the_requested_sound(tmp_path, capsys):
    path = tmp_path / "a440.wav"
    assert (
        main(["render", "ddsp_gym/SineTuner-v0", "--knobs", "frequency=440", "-o", str(path)]) == 0
    )
    audio, sr = sf.read(path)
    assert sr == 16_000 and audio.shape == (4000,)
    peak_hz = np.fft.rfftfreq(4000, 1 / sr)[np.argmax(np.abs(np.fft.rfft(audio)))]
    assert peak_hz == pytest.approx(440, abs=4)
    assert "frequency=440" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["render", "ddsp_gym/SineTuner-v0", "--knobs", "freq=440", "-o", "x.wav"], "no knob"),
        (["render", "ddsp_gym/SineTuner-v0", "--knobs", "frequency", "-o", "x.wav"], "NAME=VALUE"),
        (
            ["render", "ddsp_gym/SineTuner-v0", "--knobs", "frequency=hi", "-o", "x.wav"],
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
