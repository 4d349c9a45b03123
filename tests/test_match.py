"""ddsp-gym match: fit a plant to a file, including files another plant made."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.cli import main


def _render(tmp_path, env_id: str, knobs: str):
    path = tmp_path / "target.wav"
    assert main(["render", env_id, "--knobs", knobs, "-o", str(path)]) == 0
    return path


def test_match_recovers_a_cutoff_and_writes_every_output(tmp_path, capsys):
    target = _render(tmp_path, "ddsp_gym/CutoffSweeper-v1", "cutoff=900")
    out = tmp_path / "out"
    assert (
        main(["match", str(target), "--plant", "filtered_saw", "--steps", "60", "-o", str(out)])
        == 0
    )
    report = json.loads((out / "knobs.json").read_text())
    assert report["success"] and abs(np.log2(report["knobs"]["cutoff"] / 900.0)) < 0.2
    assert report["knob_units"] == {"cutoff": "Hz"}
    assert sf.info(out / "result.wav").frames == 4000
    assert (out / "comparison.png").stat().st_size > 1000
    assert "matched" in capsys.readouterr().out


def test_match_fits_a_sound_made_by_a_different_plant(tmp_path, capsys):
    """A filtered saw matched by the ADSR tone plant: no exact answer exists, but the fit
    must still improve on its start and report an honest verdict. The start's distance is
    what a one-step match reports (its one query plays the start); 30 steps must cut it
    4-fold (measured 17.9 -> 1.37 dB)."""
    target = _render(tmp_path, "ddsp_gym/CutoffSweeper-v1", "cutoff=900")
    reports = {}
    for steps in ("1", "30"):
        out = tmp_path / f"mismatch{steps}"
        argv = ["match", str(target), "--plant", "adsr_tone", "--steps", steps, "-o", str(out)]
        assert main(argv) == 1  # no match: the plant cannot make this sound
        reports[steps] = json.loads((out / "knobs.json").read_text())
    report, start = reports["30"], reports["1"]
    assert set(report["knobs"]) == {"attack", "decay", "sustain", "release"}
    assert start["steps"] == 1 and report["steps"] == 30
    assert report["distance"] < 0.25 * start["distance"], (report["distance"], start["distance"])
    assert not report["success"] and report["distance"] > report["success_threshold"]
    assert "no match: no setting reached the success threshold" in capsys.readouterr().out


def test_match_on_noise_runs_says_no_match_and_exits_1(tmp_path, capsys):
    path = tmp_path / "noise.wav"
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 8000), 16_000)
    out = tmp_path / "o"
    assert main(["match", str(path), "--plant", "sine", "--steps", "10", "-o", str(out)]) == 1
    report = json.loads((out / "knobs.json").read_text())
    assert not report["success"] and report["distance"] > report["success_threshold"]
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == (
        "no match: no setting reached the success threshold "
        f"({report['success_threshold']:.4g} cents); best distance {report['distance']:.4g} "
        f"cents after {report['steps']} steps"
    )
    # The file was 0.5 s and the plant plays 0.25 s: said once, on stderr.
    # The progress bar ends on the distance reported: the best, not the last step's.
    bar = [part for part in captured.err.replace("\n", "\r").split("\r") if "matching" in part]
    assert bar[-1].endswith(f"best={report['distance']:.4g}]")
    notes = [line for line in captured.err.splitlines() if line.startswith("ddsp-gym:")]
    assert (
        notes[0]
        == f"ddsp-gym: note: {path}: cut to the plant's 0.250 s from 0.500 s after the onset"
    )
    assert len(notes) == 1  # the centroid ignores level: the file is not scaled


def test_match_on_silence_and_bad_arguments_give_one_error_line(tmp_path, capsys):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(4000), 16_000)
    cases = [
        (["match", str(silent), "--plant", "sine"], "silent"),
        (["match", str(tmp_path / "missing.wav"), "--plant", "sine"], "no such file"),
        (["match", str(silent), "--plant", "theremin"], "unknown plant 'theremin'"),
        (["match", str(silent), "--plant", "sine", "--steps", "0"], "at least 1"),
    ]
    for argv, message in cases:
        assert main([*argv, "-o", str(tmp_path / "x")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_goal_task_is_never_used_to_match_a_recording(tmp_path):
    """resonant_filter's envs are goal tasks (they ignore the target): match it by
    MR-STFT instead, and refuse a goal task asked for by name."""
    from ddsp_gym.agents.match import env_settings_for_plant, match_file

    assert env_settings_for_plant("resonant_filter") == {"task": "spectrum"}
    assert env_settings_for_plant("fm2")["task"] == "fm_bell"  # its own demo's distance
    target = tmp_path / "t.wav"
    sf.write(target, np.random.default_rng(0).uniform(-0.5, 0.5, 4000), 16_000)
    with pytest.raises(ValueError, match="task 'brightness' is a goal"):
        match_file(target, "resonant_filter", tmp_path / "o", task="brightness")
