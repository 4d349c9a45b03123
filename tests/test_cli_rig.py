"""``ddsp-gym hw calibrate`` and ``ddsp-gym bench hw`` for real, on the software rig.

Marked ``hardware``: they run where ``tests/test_hardware_rig.py`` runs (``make test``
starts the rig; run alone, the fixture starts it and stops what it started; without
the rig's tools they skip, saying why, except under CI, where that is a failure).
Takes are real time, so the budgets are a handful of takes.
"""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.cli import main

pytestmark = pytest.mark.hardware


@pytest.fixture
def synth(rig_synth):
    """The rig with amsynth up (conftest's ``rig_synth``)."""
    return rig_synth


def test_hw_calibrate_measures_latency_level_and_the_knob_response(
    synth, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the latency store
    out = tmp_path / "calibration"
    argv = ["hw", "calibrate", "ddsp_gym/VolumeMatch-v1", "--map", "amsynth_volume"]
    argv += ["--midi-out", "amsynth:midi_in", "--audio-in", "amsynth", "--steps", "3"]
    assert main([*argv, "--repeats", "3", "-o", str(out)]) == 0
    result = json.loads((out / "calibration.json").read_text())
    assert 0.0 < result["latency_ms"] < 100.0
    # Take noise: 3 takes of the mid setting, 3 pairs, in the task's unit (dB of loudness).
    noise = result["take_noise"]
    assert len(noise["distances"]) == 3 and noise["unit"] == "dB" and noise["takes"] == 3
    assert 0.0 <= noise["median"] < 0.5  # the rig's amsynth repeats itself closely
    assert noise["history"] >= 0.0  # the first take after the knobs moved, vs the settled
    assert result["success_rule"]["sim_threshold"] == pytest.approx(0.5)
    assert result["input_noise_dbfs"] is None  # the rig's input is digital silence
    (sweep,) = result["sweeps"]
    assert sweep["name"] == "gain" and len(sweep["unit"]) == 3
    assert sweep["unit"] == sorted(sweep["unit"]) and sweep["sent"] == sorted(sweep["sent"])
    # Turning the gain up makes the synth and its twin louder, and the map's law keeps the
    # synth within a few dB of its twin over the whole travel (a wrong law is tens off).
    device, twin = np.array(sweep["device_rms_dbfs"]), np.array(sweep["twin_rms_dbfs"])
    assert np.all(np.diff(device) > 3.0) and np.all(np.diff(twin) > 3.0), (device, twin)
    assert np.all(np.abs(device - twin) < 8.0), (device, twin)
    assert (out / "response_map.png").stat().st_size > 1000
    (stored,) = json.loads((tmp_path / "cache" / "ddsp_gym" / "latency.json").read_text()).values()
    assert stored["ms"] == pytest.approx(result["latency_ms"])
    assert stored["level_offset_db"] == pytest.approx(result["level_offset_db"])
    printed = capsys.readouterr().out
    assert f"latency {result['latency_ms']:.2f} ms; level" in printed
    assert f"wrote {out / 'response_map.png'}, {out / 'calibration.json'}" in printed
    assert (
        "take noise: median" in printed and "success on this device: distance <= max(0.5" in printed
    )
    # amsynth glides master_vol inside a voice: the take after a move can be off by a dB.
    warned = "warning: the first take after the knobs moved" in printed
    assert warned == (noise["history"] > result["success_rule"]["threshold"])
    # The env on this set-up finds the stored take noise and says which rule decided.
    hardware = {"knob_map": "amsynth_volume", "midi_out": "amsynth:midi_in", "audio_in": "amsynth"}
    with gym.make("ddsp_gym/VolumeMatch-v1", backend="hardware", hardware=hardware) as env:
        env.reset(seed=0)
        _, _, _, _, info = env.step(np.zeros(1, np.float32))
    rule = info["hardware"]["success_rule"]
    assert rule["noise_floor"] == pytest.approx(noise["median"])
    assert rule["threshold"] == pytest.approx(max(0.5, 2 * noise["median"]))
    assert rule["decided_by"] in ("sim", "noise") and info["success"] == (
        info["distance"] <= rule["threshold"]
    )


def test_bench_hw_runs_a_seed_on_the_synth_and_resumes(synth, tmp_path, capsys):
    hardware = json.dumps({"latency_store": str(tmp_path / "latency.json"), "max_retries": 5})
    argv = ["bench", "hw", "--hardware-json", hardware, "--knobs", "cutoff", "--agents", "random"]
    argv += ["--budget", "3", "--seeds", "1", "-o", str(tmp_path)]
    assert main(argv) == 0
    document = json.loads((tmp_path / "hw_bench.json").read_text())
    (key,) = document["cells"]
    cell, (run,) = document["cells"][key], document["runs"][key]
    assert (cell["agent"], cell["knobs"], cell["budget"], cell["seeds"]) == (
        "random",
        ["cutoff"],
        3,
        1,
    )
    assert cell["command"] == (
        f"ddsp-gym bench hw --hardware-json '{hardware}' --knobs cutoff --agents random "
        "--budget 3 --seeds 1"
    )
    assert 1 <= run["queries"] <= 3 and len(run["query_s"]) == run["queries"]
    # The device values: the hidden patch's and the best query's, knob by knob.
    assert set(run["true_sent"]) == set(run["best_sent"]) == {
        "cutoff", "resonance", "filter_env_amount", "amp_attack", "amp_release", "osc_mix"
    }  # fmt: skip
    assert all(isinstance(v["sent"], int) for v in run["true_sent"].values())
    # Knobs outside --knobs sit at the hidden patch's values.
    assert run["best_sent"]["osc_mix"] == run["true_sent"]["osc_mix"]
    assert run["success_rule"]["decided_by"] in ("sim", "noise")
    # A take cannot beat the note and its tail.
    assert cell["median_query_s"] >= cell["physical_limit_s"]
    assert "| RealSynthPatch-v1 | cutoff | random | " in (tmp_path / "hw_bench.md").read_text()
    assert "| RealSynthPatch-v1 | cutoff | random | " in capsys.readouterr().out
    # The same command again finds its seed done: no new run, the same cell.
    assert main(argv) == 0
    again = json.loads((tmp_path / "hw_bench.json").read_text())
    assert again["runs"][key] == [run] and again["cells"][key] == cell


def test_bench_hw_on_blind_wav_targets_records_the_device_values(rig_fluidsynth, tmp_path):
    hardware = json.dumps({
        "knob_map": "fluidsynth_cutoff", "midi_out": "fluidsynth:midi_00",
        "audio_in": "fluidsynth", "latency_store": str(tmp_path / "latency.json"),
    })  # fmt: skip
    argv = ["bench", "hw", "--envs", "ddsp_gym/CutoffSweeper-v1", "--hardware-json", hardware]
    argv += ["--blind-targets", "--agents", "random", "--budget", "3", "--seeds", "1"]
    assert main([*argv, "--name", "blind", "-o", str(tmp_path)]) == 0
    document = json.loads((tmp_path / "blind.json").read_text())
    (key,) = document["runs"]
    (run,) = document["runs"][key]
    assert key.endswith("|blind") and document["cells"][key]["blind"]
    # The target: the hidden patch played once, a float WAV, its device values kept.
    wav = tmp_path / "blind_targets" / "CutoffSweeper-v1_10000.wav"
    assert run["target"] == str(wav) and sf.info(str(wav)).subtype == "FLOAT"
    target = json.loads(wav.with_suffix(".json").read_text())
    assert run["true_sent"] == target["true_sent"]
    assert 0 <= run["true_sent"]["cutoff"]["sent"] <= 16383
    assert set(run["best_sent"]) == {"cutoff"}
    assert run["success_rule"]["decided_by"] in ("sim", "noise")
    report = (tmp_path / "blind.md").read_text()
    assert (
        "Per run (device values sent)" in report
        and "| CutoffSweeper-v1 | random | 10000 |" in report
    )
