"""The ``lpc_envelope`` task (issue 25): its LPC pieces against scipy, its invariances,
and on an espeak-ng vowel, that its minimum lies at the file's own LPC formants."""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import linalg, signal

from ddsp_gym import features as F
from ddsp_gym.agents.match import env_settings_for_plant, match_file, ordered_formants
from ddsp_gym.analysis import analyze, lpc_formants, prepare_target
from ddsp_gym.audio_io import AudioConversionWarning, load_audio
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import TASKS, make_task
from ddsp_gym.tasks.lpc_envelope import (
    LPCEnvelopeMatch,
    _grid_matrices,
    all_pole_db,
    autocorrelation,
    levinson_durbin,
)

SR = 16_000
VOWEL = {"f1": 700.0, "f2": 1220.0, "f3": 2600.0, "b1": 80.0, "b2": 90.0, "b3": 120.0}


def _ar_noise(n: int = 4000, seed: int = 0) -> np.ndarray:
    """Noise through two resonances: a spectrum with a known all-pole shape."""
    rng = np.random.default_rng(seed)
    a = np.convolve([1.0, -1.3, 0.8], [1.0, 0.9, 0.6])
    return signal.lfilter([1.0], a, rng.standard_normal(n)).astype(np.float32)


def _render(plant, knobs: dict[str, float]) -> jax.Array:
    unit = plant.knobs_from_physical({k: jnp.float32(v) for k, v in knobs.items()})
    return plant.render(unit, jax.random.PRNGKey(0), None)


def test_autocorrelation_is_the_windowed_signals():
    x = _ar_noise()
    windowed = x.astype(np.float64) * np.asarray(F.hann_window(x.size), np.float64)
    expected = np.correlate(windowed, windowed, "full")[x.size - 1 : x.size + 18]
    got = np.asarray(autocorrelation(jnp.asarray(x), 18), np.float64)
    np.testing.assert_allclose(got, expected, rtol=0, atol=2e-5 * expected[0])


def test_levinson_durbin_solves_the_yule_walker_system():
    x = _ar_noise().astype(np.float64)
    r = np.correlate(x, x, "full")[x.size - 1 : x.size + 18]
    a, error = jax.jit(levinson_durbin)(jnp.asarray(r, jnp.float32))
    expected = linalg.solve_toeplitz(r[:18], r[1:])
    np.testing.assert_allclose(np.asarray(a), expected, atol=2e-4)
    # The prediction error is r0 - a . r[1:] (Yule-Walker's normal equations).
    np.testing.assert_allclose(float(error), r[0] - expected @ r[1:], rtol=2e-3)


def test_all_pole_db_is_freqz():
    a = np.array([1.3, -0.8, 0.1, -0.05])
    grid = LPCEnvelopeMatch().grid()
    cos, sin, _ = _grid_matrices(SR, a.size, tuple(grid.tolist()), True)
    got = np.asarray(all_pole_db(jnp.asarray(a, jnp.float32), cos, sin))
    _, h = signal.freqz([1.0], np.concatenate([[1.0], -a]), worN=grid.astype(np.float64), fs=SR)
    np.testing.assert_allclose(got, 20.0 * np.log10(np.abs(h)), atol=1e-3)


def test_envelope_removes_mean_and_tilt():
    task = LPCEnvelopeMatch()
    env = np.asarray(task.envelope_db(jnp.asarray(_ar_noise()), SR))
    octaves = np.log2(task.grid())
    assert abs(env.mean()) < 1e-3
    assert abs(np.polyfit(octaves, env, 1)[0]) < 1e-3  # no straight-line slope left
    # A tilted sound (an extra gentle low-pass pole) is far nearer the untilted one
    # with the tilt removed than without.
    plain = jnp.asarray(_ar_noise())
    tilted = jnp.asarray(signal.lfilter([1.0], [1.0, -0.5], _ar_noise()).astype(np.float32))
    distances = {}
    for remove in (True, False):
        t = LPCEnvelopeMatch(remove_tilt=remove)
        distances[remove] = float(t.distance(t.features(tilted, SR), t.features(plain, SR)))
    assert distances[True] < 0.5 * distances[False], distances


def test_distance_is_zero_at_identity_invariant_to_level_and_grows_with_shift():
    plant = make_plant("formant")
    task = make_task("lpc_envelope")
    audio = _render(plant, VOWEL)
    target = task.features(audio, SR)
    assert float(task.distance(task.features(audio, SR), target)) < 1e-3
    assert float(task.distance(task.features(0.05 * audio, SR), target)) < 0.02
    shifted = [
        float(task.distance(task.features(_render(plant, {**VOWEL, "f2": f2}), SR), target))
        for f2 in (1220.0 * 1.02, 1220.0 * 1.05, 1220.0 * 1.1)
    ]
    assert 0.0 < shifted[0] < shifted[1] < shifted[2]
    # Success (1.5 dB) is about a 5 % move of F2.
    assert shifted[0] < task.settings.success_threshold < shifted[2]


def test_gradient_is_finite_and_points_back():
    plant = make_plant("formant")
    task = make_task("lpc_envelope")
    target = task.features(_render(plant, VOWEL), SR)
    start = plant.knobs_from_physical(
        {k: jnp.float32(v) for k, v in {**VOWEL, "f2": 1350.0}.items()}
    )

    def loss(unit):
        return task.distance(
            task.features(plant.render(unit, jax.random.PRNGKey(0), None), SR), target
        )

    grad = np.asarray(jax.jit(jax.grad(loss))(start))
    assert np.all(np.isfinite(grad))
    assert grad[plant.knob_names.index("f2")] > 0  # F2 too high: the distance falls downward


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="fmin_hz"):
        LPCEnvelopeMatch(fmin_hz=3000.0, fmax_hz=2000.0)
    with pytest.raises(ValueError, match="order"):
        LPCEnvelopeMatch(order=0)
    with pytest.raises(ValueError, match="Nyquist"):
        LPCEnvelopeMatch(fmax_hz=9000.0).features(jnp.zeros(4000), SR)


def test_match_uses_the_envelope_task_for_the_formant_plant():
    assert TASKS["lpc_envelope"] is LPCEnvelopeMatch
    assert env_settings_for_plant("formant") == {"task": "lpc_envelope"}
    assert env_settings_for_plant("fm2")["task"] == "fm_bell"  # others keep their env's


def test_crossed_formants_are_reported_in_order_and_sound_the_same():
    crossed = {**VOWEL, "f2": 2700.0, "b2": 250.0, "f3": 2150.0, "b3": 40.0}
    ordered = ordered_formants(crossed)
    assert (ordered["f2"], ordered["b2"], ordered["f3"], ordered["b3"]) == (
        2150.0,
        40.0,
        2700.0,
        250.0,
    )
    assert ordered_formants(VOWEL) == VOWEL
    plant = make_plant("formant")
    np.testing.assert_allclose(
        np.asarray(_render(plant, ordered)), np.asarray(_render(plant, crossed)), atol=1e-5
    )


@pytest.fixture(scope="module")
def espeak_vowel(tmp_path_factory) -> str:
    """An /a:/ by espeak-ng (other software: its source is not the plant's), 16 kHz."""
    if shutil.which("espeak-ng") is None:
        message = "espeak-ng is missing: apt-get install espeak-ng"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = tmp_path_factory.mktemp("espeak")
    raw = folder / "raw.wav"
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", "60", "-w", str(raw), "[[A:::::]]"], check=True
    )
    import soundfile as sf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        audio = load_audio(raw, SR)
    path = folder / "a.wav"
    sf.write(path, audio, SR)
    return str(path)


@pytest.mark.slow
def test_on_a_recording_the_lpc_truth_beats_the_old_tasks_fit(espeak_vowel, tmp_path):
    """Issue 25's test: at the file's LPC formants the new distance is lower than at the
    fit the old (``formant``) task wins, and a fit from the LPC start stays near them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        old = match_file(
            espeak_vowel,
            "formant",
            tmp_path / "old",
            steps=100,
            task="formant",
            show_progress=False,
        )
        new = match_file(espeak_vowel, "formant", tmp_path / "new", steps=100, show_progress=False)
        recording = load_audio(espeak_vowel, SR)
    truth = dict(zip(("f1", "f2", "f3"), lpc_formants(recording, SR), strict=True))
    analysis = analyze(recording, SR)
    plant = make_plant("formant", f0_hz=analysis.f0_hz)
    target, _ = prepare_target(recording, SR, plant.n_samples, analysis, None)
    task = make_task("lpc_envelope")
    target_features = task.features(jnp.asarray(target, jnp.float32), SR)

    def distance(knobs: dict[str, float]) -> float:
        return float(task.distance(task.features(_render(plant, knobs), SR), target_features))

    # The old fit's bandwidths with the truth's formant frequencies.
    at_truth = distance({**old.knobs, **truth})
    assert at_truth < distance(old.knobs)
    for name in ("f1", "f2"):
        assert abs(new.knobs[name] / truth[name] - 1.0) < 0.10, (name, new.knobs, truth)
