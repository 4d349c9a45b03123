"""match's plant choice, the harmonic note plant and the coarse-to-fine schedule (issue 25,
items 3 and 4)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.agents import match as match_mod
from ddsp_gym.agents.coarse import MIN_GENERATIONS, POPSIZE, coarse_distance, coarse_search
from ddsp_gym.analysis import analyze
from ddsp_gym.cli import build_parser, main
from ddsp_gym.plants import make_plant
from ddsp_gym.plants.harmonic import HarmonicNote

SR = 16_000


def _saw(f0: float = 220.0, seconds: float = 0.6) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    saw = 2.0 * (t * f0 - np.floor(0.5 + t * f0))
    return 0.3 * saw * np.exp(-t / 0.4)


def test_harmonic_note_matches_its_closed_form():
    """Flat envelope, noise at its floor: a sum of stretched partials k f0 sqrt(1 + B k^2)
    with amplitudes normalised to sum a_k^2 = 2, partial k decaying at (1 + damping k) /
    decay, under a linear attack and the end fade."""
    plant = HarmonicNote(duration=0.2, n_harmonics=12)
    physical = {s.name: s.high if s.name.startswith("env_") else s.low for s in plant.knob_specs}
    physical.update(frequency=330.0, level=-6.0, inharmonicity=0.003, glide_cents=0.0,
                    attack=0.01, decay=0.3, damping=0.2, even_db=0.0)  # fmt: skip
    audio = np.asarray(plant.render(plant.knobs_from_physical(physical), jax.random.PRNGKey(0)))

    t = np.arange(plant.n_samples) / SR
    k = np.arange(1, 13)
    ratios = k * np.sqrt(1.0 + 0.003 * k**2)
    amps = np.clip((SR / 2 - 330.0 * ratios) / 250.0, 0.0, 1.0)  # all 1: below Nyquist
    amps = amps * np.sqrt(2.0 / np.sum(amps**2)) * 10 ** (-6.0 / 20)
    rates = (1.0 + 0.2 * (k - 1)) / 0.3
    tone = np.sum(amps * np.exp(-t[:, None] * rates) * np.sin(2 * np.pi * 330.0 * t[:, None]
                                                               * ratios), axis=1)  # fmt: skip
    tone *= np.clip(t / 0.01, 0, 1)
    tone *= 0.5 - 0.5 * np.cos(np.pi * np.clip((0.2 - t) / 0.03, 0, 1))
    # The noise at -80 dB RMS (its floor) is the only difference.
    np.testing.assert_allclose(audio, tone, atol=1e-3)
    assert np.max(np.abs(audio - tone)) > 0.0  # the noise is there, only quiet
    # The glide: the pitch starts glide_cents off.
    glide = {**physical, "glide_cents": 200.0}
    bent = np.asarray(plant.render(plant.knobs_from_physical(glide), jax.random.PRNGKey(0)))
    assert np.max(np.abs(bent[: SR // 100] - audio[: SR // 100])) > 0.01


def test_even_db_sets_the_even_partials_against_the_odd_and_is_measured():
    """even_db -30 under a flat envelope: every even partial 30 dB under its odd
    neighbours; the analysis reads about -30 back from that render and from a square
    wave (odd partials only), about 0 from a saw and a plain 0 from a sine."""
    from scipy import signal

    from ddsp_gym.plants.harmonic import envelope_knobs_from_audio, harmonic_levels_db

    plant = HarmonicNote(duration=0.5)
    physical = {s.name: s.high if s.name.startswith("env_") else s.low for s in plant.knob_specs}
    physical.update(frequency=220.0, level=-6.0, decay=20.0, even_db=-30.0)
    audio = np.asarray(plant.render(plant.knobs_from_physical(physical), jax.random.PRNGKey(0)))
    _, levels = harmonic_levels_db(audio, SR, 220.0, 12)
    steps = levels[1:11:2] - 0.5 * (levels[0:10:2] + levels[2:12:2])
    np.testing.assert_allclose(steps, -30.0, atol=1.0)
    assert envelope_knobs_from_audio(plant, audio, 220.0)["even_db"] == pytest.approx(-30, abs=1)
    t = np.arange(SR // 2) / SR
    square = envelope_knobs_from_audio(plant, 0.5 * signal.square(2 * np.pi * 220 * t), 220.0)
    saw = envelope_knobs_from_audio(plant, 0.5 * signal.sawtooth(2 * np.pi * 220 * t), 220.0)
    sine = envelope_knobs_from_audio(plant, 0.5 * np.sin(2 * np.pi * 220 * t), 220.0)
    assert square["even_db"] < -25.0 and abs(saw["even_db"]) < 2.0 and sine["even_db"] == 0.0
    # The envelope is read with each parity's share taken off: the square's starts at
    # its odd partials' 1/k line, not halfway down to its missing even ones.
    assert max(square[f"env_{i:02d}"] for i in range(16)) == 0.0
    assert envelope_knobs_from_audio(plant, audio, 220.0, min_even_db=31.0)["even_db"] == 0.0
    # match fits even_db where the structure is (the square), holds it at 0 elsewhere.
    index = plant.knob_names.index("even_db")
    for wave, fitted in ((signal.square, True), (signal.sawtooth, False)):
        note = 0.5 * wave(2 * np.pi * 220 * t)
        held, starts = match_mod.measured_knobs(plant, analyze(note, SR), note, None)
        assert (index in starts, index in held) == (fitted, not fitted)
        if not fitted:
            assert held[index] == 0.0  # the action of 0 dB, mid travel


def test_target_kind_separates_pitched_noise_dry_and_processed():
    saw = _saw()
    noise = np.random.default_rng(0).uniform(-0.3, 0.3, saw.size)
    assert match_mod.target_kind(saw, analyze(saw, SR), None) == "pitched"
    assert match_mod.target_kind(noise, analyze(noise, SR), None) == "unpitched"
    louder = 1.7 * saw
    assert match_mod.target_kind(louder, analyze(louder, SR), saw) == "dry"
    echo = saw.copy()
    echo[1600:] += 0.5 * saw[:-1600]
    assert match_mod.target_kind(echo, analyze(echo, SR), saw) == "processed"
    # The processed candidates are the effects, a dry one a gain, the others sources.
    for kind, names in match_mod.PLANT_CANDIDATES.items():
        effect = {make_plant(name).needs_input for name in names}
        assert effect == {kind == "processed"}, kind
    assert match_mod.PLANT_CANDIDATES["dry"] == ("gain",)


def test_match_help_states_the_candidates_and_the_budget():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    text = " ".join(sub.choices["match"].format_help().split())
    for names in match_mod.PLANT_CANDIDATES.values():
        assert all(name in text for name in names)
    assert "split equally across the candidates" in text and "30% of its share" in text
    assert match_mod.COARSE_SHARE == 0.3


def test_coarse_search_lowers_the_coarse_loss_and_holds_known_knobs():
    """A short, quiet note from a start at mid travel (a long, loud one): the coarse knobs
    it searches find a lower coarse loss; the held pitch and the unsearched knobs stay."""
    plant = HarmonicNote(duration=0.3)
    names = plant.knob_names
    target_knobs = np.full(len(names), 0.5)
    target_knobs[names.index("decay")] = 0.1
    target_knobs[names.index("level")] = 0.3
    key = jax.random.PRNGKey(1)
    target = np.asarray(plant.render(jnp.asarray(target_knobs, jnp.float32), key))
    start = np.zeros(len(names))
    known = {names.index("frequency"): 0.0}
    search = [names.index(n) for n in (*match_mod.COARSE_KNOBS["harmonic"], "frequency")]
    budget = MIN_GENERATIONS * POPSIZE + 5
    found = coarse_search(plant, target, start, known, budget, seed=0, key=key, search=search)
    assert found.evaluations == MIN_GENERATIONS * POPSIZE <= budget and found.starts == 1
    assert found.loss < 0.8 * found.start_loss, (found.loss, found.start_loss)
    unsearched = [i for i in range(len(names)) if i not in search]
    assert np.all(found.action[unsearched] == 0.0)
    assert found.action[names.index("frequency")] == 0.0
    # The reported loss is the coarse distance of that action.
    again = coarse_distance(plant.render((jnp.asarray(found.action) + 1) / 2, key), target, SR)
    assert float(again) == pytest.approx(found.loss, rel=1e-4)
    with pytest.raises(ValueError, match="at least"):
        coarse_search(plant, target, start, known, POPSIZE, seed=0, key=key)


@pytest.mark.slow
def test_schedule_runs_coarse_then_fine_from_the_coarse_point(tmp_path, monkeypatch):
    """The stages run in order: the gradient starts where the coarse stage ended, with
    the pitch still held, and knobs.json states the split."""
    path = tmp_path / "saw.wav"
    sf.write(path, _saw(seconds=1.2), SR)
    calls = []
    real_coarse, real_solve = match_mod.coarse_search, match_mod.GradientAgent.solve

    def coarse(*args, **kwargs):
        found = real_coarse(*args, **kwargs)
        calls.append(("coarse", found.action.copy()))
        return found

    def solve(self, env, **kwargs):
        calls.append(("fine", np.asarray(kwargs["start"]).copy()))
        return real_solve(self, env, **kwargs)

    monkeypatch.setattr(match_mod, "coarse_search", coarse)
    monkeypatch.setattr(match_mod.GradientAgent, "solve", solve)
    result = match_mod.match_file(path, "harmonic", tmp_path / "o", steps=90, show_progress=False)
    assert [c[0] for c in calls] == ["coarse", "fine"]
    np.testing.assert_array_equal(calls[0][1], calls[1][1])
    report = json.loads((tmp_path / "o" / "knobs.json").read_text())
    schedule = report["schedule"]
    assert schedule["coarse_evaluations"] == 24 and schedule["fine_steps"] == 90 - 24
    assert schedule["coarse_loss"] <= schedule["coarse_loss_start"]
    assert report["steps"] == 90 and result.plant == "harmonic"
    assert abs(1200 * np.log2(result.knobs["frequency"] / 220.0)) < 5.0
    # The ablation: without the coarse stage every query goes to the gradient.
    calls.clear()
    match_mod.match_file(path, "harmonic", tmp_path / "n", steps=90, show_progress=False,
                         coarse=False)  # fmt: skip
    assert [c[0] for c in calls] == ["fine"]
    report = json.loads((tmp_path / "n" / "knobs.json").read_text())
    assert "schedule" not in report and report["steps"] == 90


def test_too_few_steps_for_the_candidates_is_a_clear_error(tmp_path):
    path = tmp_path / "saw.wav"
    sf.write(path, _saw(), SR)
    assert main(["match", str(path), "--steps", "1", "-o", str(tmp_path / "o")]) == 2


@pytest.mark.slow
def test_match_without_plant_chooses_and_writes_the_table(tmp_path, capsys):
    """A saw: every pitched candidate is fitted on its share; the table lists each on the
    common heard measure, and the kept plant is the one with the lowest."""
    path = tmp_path / "saw.wav"
    sf.write(path, _saw(), SR)
    out = tmp_path / "o"
    main(["match", str(path), "--steps", "6", "-o", str(out)])
    printed = capsys.readouterr().out
    report = json.loads((out / "knobs.json").read_text())
    choice = report["plant_choice"]
    assert choice["kind"] == "pitched"
    rows = choice["candidates"]
    assert [r["plant"] for r in rows] == list(match_mod.PLANT_CANDIDATES["pitched"])
    assert [r["steps"] for r in rows] == [3, 3] and report["steps"] == 3
    best = min(rows, key=lambda r: r["heard_db"])
    assert choice["chosen"] == report["plant"] == best["plant"]
    assert all(np.isfinite(r["heard_db"]) and r["heard_db"] > 0 for r in rows)
    assert all(f"{r['heard_db']:8.2f}" in printed for r in rows) and "<- kept" in printed


@pytest.mark.slow
def test_match_time_script_writes_its_figures(tmp_path):
    """scripts/match_time.py times a fresh `ddsp-gym match` on its generated 2 s saw."""
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[1] / "scripts" / "match_time.py"
    argv = [sys.executable, str(script), "--steps", "2", "--repeats", "1", "-o", str(tmp_path)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-800:]
    payload = json.loads((tmp_path / "match_time.json").read_text())
    (run,) = payload["runs"]
    assert run["wall_s"] > 0 and run["cpu_s"] > 0 and run["plant"] in ("harmonic", "fm2")
    assert [c["plant"] for c in run["candidates"]] == ["harmonic", "fm2"]
    assert "| 1 |" in (tmp_path / "match_time.md").read_text()
    bad = subprocess.run([*argv[:2], "--repeats", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--repeats must be" in bad.stderr


@pytest.mark.slow
def test_match_without_plant_on_a_processed_pair_keeps_the_delay(tmp_path):
    """An echo of a pluck sequence with its dry signal: the effects are the candidates
    and the delay, its time held at the measured echo, sounds closest."""
    from ddsp_gym.bench.evalset import dry_plucks

    dry = dry_plucks()
    wet = dry.copy()
    wet[1920:] += 0.5 * dry[:-1920]  # 120 ms
    sf.write(tmp_path / "dry.wav", dry, SR)
    sf.write(tmp_path / "wet.wav", wet, SR)
    result = match_mod.match_file(tmp_path / "wet.wav", None, tmp_path / "o",
                                  input_path=tmp_path / "dry.wav", steps=4,
                                  show_progress=False)  # fmt: skip
    assert [r["plant"] for r in result.candidates] == list(match_mod.PLANT_CANDIDATES["processed"])
    assert result.plant == "delay" and result.knobs["time"] == pytest.approx(0.12, abs=1e-3)
    table = match_mod.format_candidates(result.candidates, result.plant)
    assert table.count("\n") == 4 and "delay" in table.splitlines()[1] and "<- kept" in table
