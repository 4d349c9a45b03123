"""The sound designer: timbre descriptors against closed forms, the prompt parser, the goal
task, the designer and its command (docs/sound_designer.md)."""

from __future__ import annotations

import json

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.design.designer import design, judge, load_patch, write_design
from ddsp_gym.design.parser import (
    PromptError,
    comparatives,
    default_lexicon,
    load_lexicon,
    parse_prompt,
    untouched,
)
from ddsp_gym.features import timbre as T
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks.design import SoundDesignGoal, descriptor_distance

SR = 16_000
# The designer tests share one compiled solver (steps, restarts are static).
STEPS, RESTARTS = 100, 2


def _t(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * SR)) / SR


def _measure(name: str, x: np.ndarray) -> float:
    return float(T.FUNCTIONS[name](jnp.asarray(x, jnp.float32), SR))


# ---- descriptors against closed forms ------------------------------------------------


def test_brightness_is_the_log2_power_centroid():
    t = _t(0.5)
    assert _measure("brightness", np.sin(2 * np.pi * 1000 * t)) == pytest.approx(
        np.log2(1001.0), abs=0.01
    )
    # Equal powers at 500 and 2000 Hz: the power centroid is 1250 Hz.
    two = np.sin(2 * np.pi * 500 * t) + np.sin(2 * np.pi * 2000 * t)
    assert _measure("brightness", two) == pytest.approx(np.log2(1251.0), abs=0.01)


def test_warmth_is_the_energy_share_below_500_hz():
    t = _t(0.5)
    assert _measure("warmth", np.sin(2 * np.pi * 200 * t)) == pytest.approx(0.0, abs=0.05)
    half = np.sin(2 * np.pi * 200 * t) + np.sin(2 * np.pi * 2000 * t)
    assert _measure("warmth", half) == pytest.approx(10 * np.log10(0.5), abs=0.1)
    assert _measure("warmth", np.sin(2 * np.pi * 2000 * t)) < -25.0


def test_noisiness_white_noise_is_flat_and_a_sine_is_not():
    noise = np.random.default_rng(0).standard_normal(SR)
    assert _measure("noisiness", noise) > -0.5
    assert _measure("noisiness", np.sin(2 * np.pi * 440 * _t(1.0))) < -20.0


def test_metallic_harmonic_tones_are_not_and_a_bell_is():
    t = _t(0.5)
    harmonic = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 7))
    bell = sum(np.sin(2 * np.pi * 220 * r * t) for r in (1.0, 2.76, 5.40, 8.93))
    assert _measure("metallic", harmonic) < 0.02
    assert _measure("metallic", bell) > 0.08


@pytest.mark.parametrize("depth", [0.3, 0.5])
def test_roughness_of_amplitude_modulation_matches_its_closed_form(depth):
    # (1 + m cos(2 pi 60 t)) sin(2 pi 1000 t): the squared envelope's 60 and 120 Hz lines.
    t = _t(2.0)
    x = 0.5 * (1 + depth * np.cos(2 * np.pi * 60 * t)) * np.sin(2 * np.pi * 1000 * t)
    expected = np.sqrt(depth**2 + depth**4 / 16) / (1 + depth**2 / 2)
    assert _measure("roughness", x) == pytest.approx(expected, rel=0.02)


def test_roughness_fast_beats_are_rough_slow_ones_and_sines_are_not():
    t = _t(0.5)
    sine = np.sin(2 * np.pi * 440 * t)
    assert _measure("roughness", sine) < 0.01
    assert _measure("roughness", sine + np.sin(2 * np.pi * 445 * t)) < 0.05  # 5 Hz beats
    assert _measure("roughness", sine + np.sin(2 * np.pi * 500 * t)) == pytest.approx(0.5, abs=0.02)


@pytest.mark.parametrize("ramp_s", [0.05, 0.1])
def test_attack_of_a_linear_ramp_is_its_10_to_90_percent_rise(ramp_s):
    t = _t(0.5)
    x = np.clip(t / ramp_s, 0, 1) * 0.5 * np.sin(2 * np.pi * 440 * t)
    rise_ms = 2 ** _measure("attack", x) - 1.0
    assert rise_ms == pytest.approx(800 * ramp_s, abs=6.0)  # within 1.5 frames of 4 ms


def test_sustain_is_half_the_decay_time_constant():
    t = _t(2.0)
    x = np.exp(-t / 0.1) * np.sin(2 * np.pi * 440 * t)
    assert 2 ** _measure("sustain", x) - 1.0 == pytest.approx(50.0, rel=0.02)


def test_loudness_of_a_steady_sine_is_its_mean_square_in_db():
    x = 0.5 * np.sin(2 * np.pi * 440 * _t(0.5))
    assert _measure("loudness", x) == pytest.approx(10 * np.log10(0.125), abs=0.1)


def test_descriptors_have_finite_gradients_in_the_knobs():
    plant = make_plant("fm2")

    def f(knobs):
        return T.descriptors(plant.render(knobs, jax.random.PRNGKey(0)), SR)

    jac = np.asarray(jax.jit(jax.jacfwd(f))(jnp.full(plant.num_knobs, 0.5)))
    assert jac.shape == (len(T.DESCRIPTORS), plant.num_knobs) and np.all(np.isfinite(jac))
    # index (knob 2) brightens; amp_decay (knob 4) lengthens the note
    assert jac[T.DESCRIPTORS.index("brightness"), 2] > 0.5
    assert jac[T.DESCRIPTORS.index("sustain"), 4] > 0.5


# ---- lexicon and parser ---------------------------------------------------------------


def test_the_issues_prompt_parses_to_brightness_and_metallic():
    assert parse_prompt("make it brighter, add a metallic edge") == {
        "brightness": 0.5,
        "metallic": 0.2,
    }


@pytest.mark.parametrize(
    "prompt, expected",
    [
        ("slightly warmer", {"warmth": 1.0}),
        ("a bit darker", {"brightness": -0.25}),
        ("much darker", {"brightness": -1.0}),
        ("a lot noisier", {"noisiness": 6.0}),
        ("very very bright", {"brightness": 2.0}),
        ("not harsh", {"roughness": -0.15}),
        ("less bright", {"brightness": -0.5}),
        ("no noise", {"noisiness": -3.0}),
        ("thinner and shorter", {"warmth": -2.0, "sustain": -0.5}),
        ("darker, warmer; more sustained", {"brightness": -0.5, "warmth": 2.0, "sustain": 0.5}),
        ("bright but not rough", {"brightness": 0.5, "roughness": -0.15}),
    ],
)
def test_intensities_negations_and_conjunctions(prompt, expected):
    assert parse_prompt(prompt) == pytest.approx(expected)


def test_comparatives_are_derived():
    assert {"brighter"} <= comparatives("bright")
    assert comparatives("metallic") == comparatives("sustained") == set()  # "more metallic"
    assert parse_prompt("more sustain, less noise") == {"sustain": 0.5, "noisiness": -3.0}
    assert {"noisier", "thinner", "wider"} <= (
        comparatives("noisy") | comparatives("thin") | comparatives("wide")
    )


def test_unknown_words_are_an_error_naming_close_lexicon_words():
    with pytest.raises(PromptError, match="unknown word 'brigter'.*brighter"):
        parse_prompt("make it brigter")
    with pytest.raises(PromptError, match="unknown word 'zzz'"):
        parse_prompt("brighter and zzz")


def test_empty_and_contradictory_prompts_are_refused():
    with pytest.raises(PromptError, match="names no timbre word"):
        parse_prompt("make it")
    with pytest.raises(PromptError, match="both up and down"):
        parse_prompt("brighter and darker")


def test_coupled_descriptors_are_free_and_the_rest_untouched():
    rest = untouched({"brightness": 0.5})
    assert "warmth" not in rest and "brightness" not in rest and "metallic" in rest
    assert len(rest) == len(T.DESCRIPTORS) - 2


def test_lexicon_cites_its_sources_and_bad_files_are_refused():
    from importlib import resources

    text = (resources.files("ddsp_gym.design") / "lexicon.yaml").read_text()
    for source in ("Zacharakis", "Social-EQ", "Audealize", "licence"):
        assert source in text
    bad = text.replace("  sustain: {step: 0.5, bound: 0.3, unit: oct}\n", "")
    with pytest.raises(ValueError, match="differ from the measured ones"):
        load_lexicon(bad)
    lexicon = default_lexicon()
    assert set(lexicon.steps) == set(T.DESCRIPTORS) == set(lexicon.bounds)


# ---- the goal task --------------------------------------------------------------------


def _distance(delta, goal, targeted, charged):
    lexicon = default_lexicon()
    steps = jnp.asarray([lexicon.steps[d] for d in T.DESCRIPTORS])
    bounds = jnp.asarray([lexicon.bounds[d] for d in T.DESCRIPTORS])
    return float(
        descriptor_distance(
            jnp.asarray(delta),
            jnp.asarray(goal),
            steps,
            bounds,
            jnp.asarray(targeted),
            jnp.asarray(charged),
        )
    )


def test_descriptor_distance_charges_shortfall_and_drift_only():
    k = len(T.DESCRIPTORS)
    goal = np.zeros(k, np.float32)
    goal[0] = 0.5  # brightness +0.5 oct
    targeted = np.arange(k) == 0
    charged = np.arange(k) >= 2  # warmth (1) coupled
    met = np.zeros(k, np.float32)
    met[0], met[1] = 0.7, -5.0  # beyond 1.25 x the goal; warmth free
    assert _distance(met, goal, targeted, charged) < 0.15
    short = met.copy()
    short[0] = 0.1
    assert _distance(short, goal, targeted, charged) > 1.0  # ~1.05 steps short
    drifted = met.copy()
    drifted[2] = 0.36  # metallic 3 bounds out
    assert _distance(drifted, goal, targeted, charged) == pytest.approx(2.0, abs=0.15)
    wrong_way = met.copy()
    wrong_way[0] = -0.5
    assert _distance(wrong_way, goal, targeted, charged) > 2.0


def test_task_measures_its_start_and_refuses_bad_config():
    task = SoundDesignGoal(prompt="much darker")
    plant = make_plant("fm2")
    audio = plant.render(jnp.full(plant.num_knobs, 0.5), jax.random.PRNGKey(0))
    np.testing.assert_allclose(task.start_descriptors, T.descriptors(audio, SR), rtol=1e-5)
    assert task.goal[T.DESCRIPTORS.index("brightness")] == -1.0
    with pytest.raises(PromptError):
        SoundDesignGoal(prompt="shinyy")
    with pytest.raises(ValueError, match="start_descriptors needs 8"):
        SoundDesignGoal(prompt="brighter", start_descriptors=(1.0, 2.0))


def test_env_takes_a_prompt_and_its_reference_meets_it():
    env = gym.make(
        "ddsp_gym/SoundDesigner-v1",
        task_config={"prompt": "more sustained", "plant": "fm2", "distance_scale": 5.1},
    ).unwrapped
    env.reset(seed=0)
    state = env.state
    action = np.asarray(env.functional.action_for(state.knobs, state.target_knobs, env.params))
    assert env.step(action.astype(np.float32))[4]["success"]
    np.testing.assert_allclose(np.asarray(state.knobs), 0.5)  # episodes start at the start patch


# ---- the designer and its command -----------------------------------------------------


def test_design_meets_a_prompt_from_a_patch_file_and_writes_its_outputs(tmp_path):
    plant = make_plant("fm2")
    patch = tmp_path / "start.json"
    start = {"carrier_hz": 220.0, "ratio": 1.5, "index": 3.0, "index_decay": 0.2, "amp_decay": 0.4}
    patch.write_text(json.dumps({"plant": "fm2", "knobs": start}))
    unit = load_patch(patch, plant, "fm2")
    result = design("much darker", "fm2", unit, STEPS, RESTARTS)
    assert result.success, [line.text() for line in result.lines]
    assert result.start_knobs["carrier_hz"] == pytest.approx(220.0, rel=1e-4)
    bright = result.lines[T.DESCRIPTORS.index("brightness")]
    assert bright.role == "target" and bright.achieved <= -1.0
    files = write_design(result, tmp_path / "out", plant.sample_rate)
    report = json.loads((tmp_path / "out" / "patch.json").read_text())
    assert report["descriptors"]["brightness"]["ok"] and set(report["knobs"]) == set(
        plant.knob_names
    )
    assert all((tmp_path / "out" / name).stat().st_size > 0 for name in ("before.wav", "after.wav"))
    # The written patch is itself a start patch.
    reloaded = load_patch(files["patch.json"], plant, "fm2")
    np.testing.assert_allclose(reloaded, result.unit, atol=1e-5)
    # Deterministic: the same call gives the same patch.
    again = design("much darker", "fm2", unit, STEPS, RESTARTS)
    np.testing.assert_array_equal(again.unit, result.unit)


def test_load_patch_refuses_other_plants_and_missing_knobs(tmp_path):
    plant = make_plant("fm2")
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"plant": "sine", "knobs": {}}))
    with pytest.raises(ValueError, match="for plant 'sine'"):
        load_patch(path, plant, "fm2")
    path.write_text(json.dumps({"knobs": {"carrier_hz": 200.0}}))
    with pytest.raises(ValueError, match="missing"):
        load_patch(path, plant, "fm2")
    path.write_text("{not json")
    with pytest.raises(ValueError, match="cannot read patch"):
        load_patch(path, plant, "fm2")


def test_judge_reports_shortfall_and_drift():
    before = np.zeros(len(T.DESCRIPTORS))
    after = before.copy()
    after[0] = 0.3  # brightness: asked 0.5
    after[2] = 0.5  # metallic drifted past 0.12
    lines = {line.name: line for line in judge({"brightness": 0.5}, before, after)}
    assert not lines["brightness"].ok and "short of" in lines["brightness"].text()
    assert not lines["metallic"].ok and "over bound" in lines["metallic"].text()
    assert lines["warmth"].role == "coupled" and lines["sustain"].ok


@pytest.mark.slow  # compiles the designer voice's solver (~30 s on 2 cores)
def test_design_command_prints_a_line_per_descriptor(tmp_path, capsys):
    from ddsp_gym.cli import main

    argv = ["design", "more sustained", "--out", str(tmp_path)]
    code = main([*argv, "--steps", str(STEPS), "--restarts", str(RESTARTS)])
    out = capsys.readouterr().out
    assert code == 0, out
    assert all(name in out for name in T.DESCRIPTORS) and "sustain     goal +0.5" in out
    assert (tmp_path / "after.wav").exists() and (tmp_path / "patch.json").exists()
    # Without --plant the designer voice designs (its knobs are in the patch).
    patch = json.loads((tmp_path / "patch.json").read_text())
    assert patch["plant"] == "designer_voice" and "attack_s" in patch["knobs"]
    assert main(["design", "make it brigter", "--out", str(tmp_path)]) != 0
    assert "did you mean brighter" in capsys.readouterr().err


def test_bench_writes_a_case_per_prompt_and_start_patch(tmp_path):
    from ddsp_gym.design.bench import BENCH_PLANTS, PROMPTS, START_PATCHES, run_bench

    assert len(PROMPTS) >= 24 and all(parse_prompt(p) for p in PROMPTS)
    assert BENCH_PLANTS == ("designer_voice", "fm2")
    for plant, starts in START_PATCHES.items():
        assert all(len(u) == make_plant(plant).num_knobs for u in starts.values())
    both = run_bench(tmp_path, "fm2", STEPS, RESTARTS, ("brighter", "louder"), reach_samples=16)
    report = both["plants"]["fm2"]
    assert report["total"] == 2 * len(START_PATCHES["fm2"]) == len(report["cases"])
    assert report["passed"] == sum(case["success"] for case in report["cases"])
    saved = json.loads((tmp_path / "sound_designer.json").read_text())
    assert saved["plants"]["fm2"]["passed"] == report["passed"]
    table = (tmp_path / "sound_designer.md").read_text()
    assert "| brighter | brightness +0.5 |" in table and "| louder | loudness +3 |" in table
    with pytest.raises(ValueError, match="no start patches"):
        run_bench(tmp_path, "sine")


# ---- the designer voice: its knobs against closed forms ---------------------------------


def _voice_render(plant, key=0, **physical):
    """Render designer_voice at mid travel with some knobs set to physical values."""
    unit = np.full(plant.num_knobs, 0.5, np.float32)
    for name, value in physical.items():
        i = plant.knob_names.index(name)
        unit[i] = float(plant.knob_specs[i].to_unit(value))
    return np.asarray(plant.render(jnp.asarray(unit), jax.random.PRNGKey(key)), np.float64)


@pytest.fixture(scope="module")
def voice():
    return make_plant("designer_voice")


def test_voice_level_knob_is_an_exact_db_gain(voice):
    quiet = _voice_render(voice, level_db=-24.0)
    loud = _voice_render(voice, level_db=-9.0)
    np.testing.assert_allclose(loud, quiet * 10 ** (15.0 / 20.0), rtol=1e-4, atol=1e-7)
    levels = [_measure("loudness", _voice_render(voice, level_db=v)) for v in (-24.0, -9.0)]
    assert levels[1] - levels[0] == pytest.approx(15.0, abs=1e-3)


def test_voice_attack_is_a_linear_ramp_of_the_attack_time(voice):
    env = np.asarray(voice.envelope(jnp.float32(0.1), jnp.float32(5.0)))
    t = np.arange(env.size) / voice.sample_rate
    rising = t < 0.1
    np.testing.assert_allclose(env[rising], t[rising] / 0.1, atol=1e-5)
    assert env[rising].max() < 1.0 and env[int(0.1 * voice.sample_rate)] == pytest.approx(1.0, 1e-3)
    # After the ramp: exp(-(t - attack) / decay).
    i = int(0.6 * voice.sample_rate)
    assert env[i] == pytest.approx(np.exp(-0.5 / 5.0), rel=1e-4)
    # The attack descriptor of a plain note (no noise, no AM) reads the 10-90 % rise, 0.8 T.
    for ramp_s in (0.05, 0.2):
        audio = _voice_render(voice, attack_s=ramp_s, decay_s=5.0, noise=0.0, am_depth=0.0)
        assert 2 ** _measure("attack", audio) - 1.0 == pytest.approx(800 * ramp_s, abs=6.0)


def test_voice_noise_zero_is_no_noise_and_one_is_only_noise(voice):
    a = _voice_render(voice, key=0, noise=0.0)
    b = _voice_render(voice, key=1, noise=0.0)
    np.testing.assert_array_equal(a, b)  # the render key only feeds the noise
    c = _voice_render(voice, key=0, noise=1.0, tilt_db=0.0)
    d = _voice_render(voice, key=1, noise=1.0, tilt_db=0.0)
    assert np.corrcoef(c, d)[0, 1] < 0.1  # independent noises, no tone in common
    # At no tilt and no body the noise is white: flat (~0 dB), flatter than the tone.
    tone = _voice_render(voice, noise=0.0, tilt_db=0.0)
    assert _measure("noisiness", c) > -0.5 > _measure("noisiness", tone) + 3.0


def test_voice_am_depth_zero_is_no_modulation_and_the_am_keeps_the_power(voice):
    np.testing.assert_array_equal(np.asarray(voice.modulation(jnp.float32(0.0))), 1.0)
    am = np.asarray(voice.modulation(jnp.float32(0.8)), np.float64)
    period = int(2 * voice.sample_rate / voice.pitch_hz)  # AM at pitch / 2: 160 samples
    whole = am[: (am.size // period) * period]
    assert np.mean(whole**2) == pytest.approx(1.0, abs=1e-4)  # power-normalised
    assert am.max() == pytest.approx(1.8 / np.sqrt(1.32), rel=1e-3)
    # The note is the un-modulated note times (1 + m sin(2 pi 100 t)) / sqrt(1 + m^2 / 2).
    flat = {"attack_s": 0.001, "decay_s": 5.0, "noise": 0.0, "stretch": 0.001}
    plain = _voice_render(voice, am_depth=0.0, **flat)
    wobbly = _voice_render(voice, am_depth=0.5, **flat)
    t = np.arange(plain.size) / voice.sample_rate
    expected = plain * (1 + 0.5 * np.sin(2 * np.pi * 100.0 * t)) / np.sqrt(1.125)
    np.testing.assert_allclose(wobbly, expected, atol=1e-4 * np.abs(plain).max())  # float32
    # Roughness: the plain note's harmonic envelope (200 Hz, above the band) reads ~0.1;
    # depth 0.5 reads ~0.35 (the 100 Hz AM mixes with the 200 Hz envelope ripple).
    assert _measure("roughness", plain) < 0.12 < 0.3 < _measure("roughness", wobbly)


def test_voice_partials_are_harmonic_at_no_stretch_and_the_tone_has_unit_sine_power(voice):
    np.testing.assert_allclose(voice.partial_ratios(0.0), np.arange(1, 33), rtol=1e-6)
    assert float(voice.partial_ratios(0.1)[1]) == pytest.approx(2**1.1, rel=1e-6)
    tone = np.asarray(voice.tone(jnp.float32(3.0), jnp.float32(0.0), jnp.float32(0.0)))
    assert np.mean(tone**2) == pytest.approx(0.5, rel=0.01)
    spectrum = np.abs(np.fft.rfft(tone))
    freqs = np.fft.rfftfreq(tone.size, 1.0 / voice.sample_rate)
    assert freqs[np.argmax(spectrum)] == pytest.approx(200.0)
    # The tilt: each octave above f0 is tilt_db lower (partials 1, 2, 4 at 3 dB/oct).
    level = {f: 20 * np.log10(spectrum[np.argmin(np.abs(freqs - f))]) for f in (800, 1600)}
    assert level[800] - level[1600] == pytest.approx(3.0, abs=0.1)
    # The body shelf: body_db at 0 Hz, half of it at 400 Hz, ~0 far above.
    gain = np.asarray(voice.spectral_gain_db(jnp.asarray([0.0, 400.0, 4000.0]), 0.0, 6.0))
    np.testing.assert_allclose(gain, [6.0, 3.0, 6.0 / (1 + 10**4)], rtol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["punchier", "louder", "much longer", "smoother"])
def test_the_voice_does_what_fm2_could_not(prompt):
    # fm2 has a fixed 5 ms attack and level, a note it cannot lengthen past its end, and
    # no way to smooth a decaying note: these failed from every fm2 start patch.
    result = design(prompt, "designer_voice", None, STEPS, RESTARTS)
    assert result.success, [line.text() for line in result.lines]
