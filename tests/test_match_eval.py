"""The third-party evaluation set and ``bench match``: the generators' truths, the
analyses it relies on (echo spacing, LPC formants, RT60) against closed forms, and the
benchmark end to end on a few cases."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from ddsp_gym.analysis import echo_delay_s, lpc_formants
from ddsp_gym.bench.evalset import (
    SAMPLE_RATE,
    Case,
    EvalSetError,
    build_evalset,
    dry_plucks,
    load_evalset,
    rt60_of_impulse_response,
)
from ddsp_gym.bench.match_eval import knob_errors, passes, summarize
from ddsp_gym.cli import main

SR = SAMPLE_RATE
TOOLS = ("sox", "espeak-ng", "fluidsynth")


@pytest.fixture(scope="module")
def tools():
    """The generators are Debian programs `make test` installs; under CI their absence
    is a failure, elsewhere a skip that names them."""
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        message = f"missing {missing}: apt-get install sox espeak-ng fluidsynth"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def test_echo_spacing_is_read_off_the_deconvolved_response():
    dry = dry_plucks()
    for delay_s in (0.05, 0.137, 0.3):
        lag = int(delay_s * SR)
        wet = dry.copy()
        wet[lag:] += 0.4 * dry[:-lag]
        wet[2 * lag :] += 0.16 * dry[: -2 * lag]  # a second repeat (feedback)
        found, strength = echo_delay_s(wet, dry, SR)
        assert found == pytest.approx(lag / SR, abs=1.0 / SR) and strength > 0.2
    # The plucks are periodic; that is no echo.
    assert echo_delay_s(dry, dry, SR)[1] < 0.1


def test_lpc_finds_the_formants_of_a_source_filter_vowel():
    """A 110 Hz glottal pulse train through three resonators at known frequencies."""
    n = SR // 2
    source = np.zeros(n)
    source[:: SR // 110] = 1.0
    audio = source
    for freq, bandwidth in ((700.0, 80.0), (1200.0, 90.0), (2600.0, 120.0)):
        r = np.exp(-np.pi * bandwidth / SR)
        a = [1.0, -2.0 * r * np.cos(2 * np.pi * freq / SR), r * r]
        audio = signal.lfilter([1.0], a, audio)
    f1, f2, f3 = lpc_formants(audio, SR)
    assert f1 == pytest.approx(700.0, rel=0.05) and f2 == pytest.approx(1200.0, rel=0.05)
    assert f3 == pytest.approx(2600.0, rel=0.05)


def test_rt60_of_an_exponential_decay():
    t = np.arange(2 * SR) / SR
    noise = np.random.default_rng(0).normal(size=t.size)
    for rt60 in (0.4, 1.2):
        ir = noise * 10 ** (-3.0 * t / rt60)  # -60 dB at t = rt60
        assert rt60_of_impulse_response(ir, SR) == pytest.approx(rt60, rel=0.05)


def test_scoring_uses_the_issue_tolerances():
    case = Case("c", "compressor", "compressor", "c.wav", {"threshold": -30.0, "ratio": 4.0})
    errors = knob_errors(case, {"threshold": -32.5, "ratio": 4.9})
    assert errors == pytest.approx({"threshold_db": 2.5, "ratio_pct": 22.5})
    assert passes("compressor", errors)
    assert not passes("compressor", knob_errors(case, {"threshold": -30.0, "ratio": 5.1}))
    note = Case("n", "instrument", "fm2", "n.wav", {"f0_hz": 440.0})
    assert knob_errors(note, {"carrier_hz": 880.0})["pitch_cents"] == pytest.approx(1200.0)


def test_the_effect_cases_carry_their_settings(tmp_path, tools):
    cases = build_evalset(tmp_path, ["effect"])
    assert [c.name for c in load_evalset(tmp_path)] == [c.name for c in cases]
    by_name = {c.name: c for c in cases}
    assert by_name["sox_echo_250ms"].truth == {"time": 0.25}
    assert by_name["sox_compand_22db_4to1"].truth == {"threshold": -22.0, "ratio": 4.0}
    # The wet file is the sox effect of the dry one: its echo is where sox put it.
    wet, sr = sf.read(tmp_path / "sox_echo_170ms.wav")
    dry, _ = sf.read(tmp_path / "dry.wav")
    assert sr == SR and echo_delay_s(wet, dry, SR)[0] == pytest.approx(0.17, abs=1.0 / SR)
    # Reverb truths are measured and ordered like sox's reverberance settings.
    rt60 = [c.truth["rt60"] for c in cases if c.kind == "reverb"]
    assert rt60 == sorted(rt60) and 0.1 < rt60[0] < rt60[-1] < 20.0


def test_the_chain_cases_carry_their_settings(tmp_path, tools):
    """sox's saw -> lowpass -> echo: the truth is the command's settings, and the file
    sounds at the note's pitch with its echo where sox put it."""
    from ddsp_gym.analysis import analyze

    cases = build_evalset(tmp_path, ["chain"])
    assert len(cases) == 6 and {c.kind for c in cases} == {"chain"}
    case = next(c for c in cases if c.name == "sox_chain_n57_lp1000_q1_echo300ms")
    assert case.truth == pytest.approx({"f0_hz": 220.0, "cutoff": 1000.0, "resonance": 1.0,
                                        "time": 0.3, "mix": 1 / 3, "length": 0.2})  # fmt: skip
    assert "lowpass 1000 1q echo 0.8 0.8 300 0.4" in case.source
    audio, sr = sf.read(tmp_path / case.target)
    assert sr == SR
    assert abs(1200 * np.log2(analyze(audio, SR).f0_hz / 220.0)) < 25.0
    # The note (0-0.2 s) is silent by 0.25 s; its echo sounds from 0.3 s to 0.5 s.
    rms = [np.sqrt(np.mean(audio[int(a * SR) : int(b * SR)] ** 2)) for a, b in
           ((0.05, 0.15), (0.22, 0.28), (0.35, 0.45))]  # fmt: skip
    assert rms[1] < 0.01 * rms[0] and 0.3 * rms[0] < rms[2] < 0.7 * rms[0]
    errors = knob_errors(case, {"frequency": 226.0, "cutoff": 1090.0, "time": 0.308,
                                "resonance": 1.0, "mix": 0.3})  # fmt: skip
    assert errors["pitch_cents"] == pytest.approx(46.58, abs=0.01) and not passes("chain", errors)
    assert passes("chain", {**errors, "pitch_cents": 20.0})


def test_coarse_ablation_rows_pair_the_fits():
    from ddsp_gym.bench.match_eval import ablation_rows, ablation_summary

    def row(case: str, heard: float, ok: bool) -> dict:
        now = {"heard_db": heard, "pass": ok, "plant": "harmonic", "errors": {}, "wall_s": 1.0}
        return {"case": case, "kind": "instrument", "now": now}

    on = [row("a", 5.0, True), row("b", 7.0, True), row("c", 4.0, False)]
    off = [row("a", 6.0, True), row("b", 7.05, False), row("c", 3.0, False)]
    summary = ablation_summary(ablation_rows(on, off))["instrument"]
    assert (summary["pass_coarse"], summary["pass_no_coarse"]) == (2, 1)
    assert (summary["coarse_closer"], summary["coarse_further"], summary["within_0_1_db"]) == (
        1, 1, 1)  # fmt: skip
    with pytest.raises(ValueError, match="out of step"):
        ablation_rows(on, off[::-1])


def test_missing_generator_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(EvalSetError, match="sox is not installed: apt-get install sox"):
        build_evalset(tmp_path, ["effect"])
    with pytest.raises(ValueError, match="unknown case groups"):
        build_evalset(tmp_path, ["bells"])
    with pytest.raises(EvalSetError, match="build the set first"):
        load_evalset(tmp_path / "none")


@pytest.mark.slow
def test_bench_match_on_delays_and_notes(tmp_path, tools, capsys):
    """End to end on a reduced set: every echo's time is held at the measured spacing
    (within 3 %), every note's pitch at YIN's (within 25 cents), and the previous match
    (no analysis) misses most of them."""
    folder = tmp_path / "set"
    cases = build_evalset(folder, ["effect", "instrument"])
    keep = {c.name for c in cases if c.kind == "delay"} | {"gm000_n57", "gm056_n69"}
    (folder / "cases.json").write_text(
        json.dumps([json.loads(json.dumps(c.__dict__)) for c in cases if c.name in keep])
    )
    argv = ["bench", "match", "--set", str(folder), "--steps", "30", "-o", str(tmp_path)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "delay        4/4 pass" in out and "instrument   2/2 pass" in out
    payload = json.loads((tmp_path / "match_eval.json").read_text())
    assert payload["summary"]["delay"]["pass_previous"] <= 1
    assert {row["case"] for row in payload["rows"]} == keep
    assert summarize(payload["rows"]) == payload["summary"]
    assert "| sox_echo_330ms | delay | time=0.33 |" in (tmp_path / "match_eval.md").read_text()


def test_bench_match_writes_under_the_name_given(tmp_path, monkeypatch, capsys):
    """``--name`` picks the results files' stem (a kind's own file beside match_eval.*),
    and the command recorded in them is the one that makes them again."""
    from ddsp_gym.bench import match_eval

    row = {"case": "vowel_a_enus", "kind": "vowel", "plant": "formant", "source": "espeak-ng",
           "truth": {"f1": 700.0, "f2": 1200.0},
           "now": {"knobs": {"f1": 720.0, "f2": 1300.0}, "pass": True, "heard_db": 15.0,
                   "errors": {"f1_pct": 2.9, "f2_pct": 8.3}, "wall_s": 1.0}}  # fmt: skip
    seen = {}

    def fake_evaluate(folder, steps, seed, previous, kinds):
        seen.update(steps=steps, previous=previous, kinds=kinds)
        return [row]

    monkeypatch.setattr(match_eval, "evaluate", fake_evaluate)
    (tmp_path / "cases.json").write_text("[]")
    argv = ["bench", "match", "--set", str(tmp_path), "--kinds", "vowel", "--steps", "7",
            "--no-previous", "--name", "match_vowels", "-o", str(tmp_path / "out")]  # fmt: skip
    assert main(argv) == 0
    assert seen == {"steps": 7, "previous": False, "kinds": ["vowel"]}
    payload = json.loads((tmp_path / "out" / "match_vowels.json").read_text())
    command = "ddsp-gym bench match --steps 7 --kinds vowel --no-previous --name match_vowels"
    assert payload["command"] == command
    assert payload["summary"]["vowel"]["pass_now"] == 1
    assert f"`{command}`" in (tmp_path / "out" / "match_vowels.md").read_text()
    assert not (tmp_path / "out" / "match_eval.json").exists()
    capsys.readouterr()
    assert main([*argv[:-3], "a/b", *argv[-2:]]) != 0
    assert "--name must be a file stem, got 'a/b'" in capsys.readouterr().err
