"""The amsynth sim twin and its blocks against independent references (numpy/scipy)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from ddsp_gym import dsp
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import make_task

SR = 16_000


def bilinear_lowpass(freq: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """1 / (s^2 + s/Q + 1), prewarped at ``freq``, bilinear-transformed (float64)."""
    k = np.tan(np.pi * freq / sr)
    norm = 1 + k / q + k * k
    b = np.array([k * k, 2 * k * k, k * k]) / norm
    a = np.array([1.0, 2 * (k * k - 1) / norm, (1 - k / q + k * k) / norm])
    return b, a


@pytest.mark.parametrize("freq, q", [(60.0, 0.5), (440.0, 5.0), (3000.0, 0.707), (7000.0, 2.0)])
def test_svf_lowpass_is_the_bilinear_lowpass(freq, q):
    x = np.random.default_rng(0).standard_normal(4000)
    b, a = bilinear_lowpass(freq, q, SR)
    reference = signal.lfilter(b, a, x)
    y = np.asarray(dsp.svf_lowpass(jnp.asarray(x, jnp.float32), freq, q, SR))
    np.testing.assert_allclose(y, reference, atol=2e-4 * np.max(np.abs(reference)))


def test_svf_lowpass_follows_a_time_varying_cutoff():
    x = np.random.default_rng(1).standard_normal(2000).astype(np.float32)
    cutoff = np.where(np.arange(2000) < 1000, 300.0, 3000.0).astype(np.float32)
    y = np.asarray(dsp.svf_lowpass(jnp.asarray(x), jnp.asarray(cutoff), 0.7, SR))
    first = np.asarray(dsp.svf_lowpass(jnp.asarray(x[:1000]), 300.0, 0.7, SR))
    np.testing.assert_allclose(y[:1000], first, atol=1e-6)
    # after the switch the high band passes: far more energy above 1 kHz
    _, p_low = signal.welch(y[200:1000], SR, nperseg=256)
    f, p_high = signal.welch(y[1200:2000], SR, nperseg=256)
    band = f > 1000
    assert p_high[band].sum() > 20 * p_low[band].sum()


def test_attack_release_is_the_linear_envelope_away_from_its_corners():
    n, attack, release, gate = 8000, 0.05, 0.1, 0.3
    env = np.asarray(dsp.attack_release(n, SR, attack, release, gate, corner=0.02))
    t = np.arange(n) / SR
    linear = np.where(
        t < gate, np.minimum(t / attack, 1.0), np.maximum(0.0, 1.0 - (t - gate) / release)
    )
    away = (np.abs(t - attack) > 0.005) & (np.abs(t - gate - release) > 0.01) & (t > 0.005)
    np.testing.assert_allclose(env[away], linear[away], atol=1e-3)
    assert np.max(np.abs(env - linear)) <= 0.7 * 0.02 + 1e-6
    x = jnp.array([-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0])
    clip = np.asarray(dsp.smooth_unit_clip(x, 0.02))
    np.testing.assert_allclose(clip[[0, 1, 3, 5, 6]], [0.0, 0.0, 0.5, 1.0, 1.0], atol=1e-6)
    # at the corners themselves it is off by corner * ln 2, the largest deviation
    np.testing.assert_allclose(clip[[2, 4]], [0.02 * np.log(2), 1 - 0.02 * np.log(2)], rtol=1e-4)
    # everywhere it is the closed form corner * (softplus(x / c) - softplus((x - 1) / c))
    for corner in (0.02, 0.3):
        x = np.linspace(-0.5, 1.5, 4001)
        exact = corner * (np.logaddexp(0, x / corner) - np.logaddexp(0, (x - 1) / corner))
        got = dsp.smooth_unit_clip(jnp.asarray(x, jnp.float32), corner)
        np.testing.assert_allclose(got, exact, atol=2e-7)


def softplus64(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, x)


def attack_release64(n, attack, release, gate, corner=0.02) -> np.ndarray:
    """The envelope's closed form in float64: rounded clip while held, rounded foot after."""
    t = np.arange(n) / SR

    def rounded_clip(x):
        return corner * (softplus64(x / corner) - softplus64((x - 1) / corner))

    foot = corner * softplus64((1 - (t - gate) / release) / corner)
    released = rounded_clip(gate / attack) * foot
    return np.where(t < gate, rounded_clip(t / attack), released)


@pytest.mark.parametrize("gate", [0.0, 0.1, 0.25, 0.3125, 1.0])
def test_attack_release_is_its_closed_form_on_both_sides_of_the_gate(gate):
    # The envelope is computed in two parts split at the (static) gate; every sample,
    # the one at the gate included, takes its own part's formula, as does its gradient.
    n, attack, release = 6400, 0.03, 0.08
    env = np.asarray(dsp.attack_release(n, SR, attack, release, gate))
    assert env.shape == (n,)
    np.testing.assert_allclose(env, attack_release64(n, attack, release, gate), atol=1e-6)
    grad = jax.grad(lambda a, r: jnp.sum(dsp.attack_release(n, SR, a, r, gate) ** 2), (0, 1))
    got = np.asarray(grad(attack, release))
    h = 1e-6
    numeric = [
        (np.sum(attack_release64(n, attack + h, release, gate) ** 2)
         - np.sum(attack_release64(n, attack - h, release, gate) ** 2)) / (2 * h),
        (np.sum(attack_release64(n, attack, release + h, gate) ** 2)
         - np.sum(attack_release64(n, attack, release - h, gate) ** 2)) / (2 * h),
    ]  # fmt: skip
    np.testing.assert_allclose(got, numeric, rtol=1e-3, atol=1e-2)


def test_the_envelopes_softplus_and_its_derivative_match_jax_nn():
    from ddsp_gym.dsp.envelopes import _softplus

    x = jnp.array([-1e4, -100.0, -20.0, -1.0, -1e-8, 0.0, 1e-8, 1.0, 20.0, 100.0, 1e4])
    np.testing.assert_array_equal(_softplus(x), jax.nn.softplus(x))
    np.testing.assert_allclose(jax.vmap(jax.grad(_softplus))(x), jax.nn.sigmoid(x), rtol=1e-7)
    assert np.isposinf(_softplus(jnp.inf)) and float(jax.grad(_softplus)(jnp.inf)) == 1.0


@pytest.mark.parametrize("filter_decay_s", [0.119, 0.3, 1.0])
def test_filter_coefficients_are_the_per_sample_design_of_the_swept_cutoff(filter_decay_s):
    # Only the filter envelope's nonzero samples get their own coefficients; the rest
    # share the settled cutoff's. The values of designing every sample (to float32
    # rounding), for an envelope that settles within the note, at the release, or never.
    twin = make_plant("amsynth_twin", filter_decay_s=filter_decay_s)
    cutoff, amount = jnp.float32(350.0), jnp.float32(9.0)
    q = jnp.float32(2.5)
    got = twin._filter_coeffs(cutoff, amount, q)
    swept = cutoff + twin.note_hz * amount * twin.sources()[2]
    want = dsp.svf_lowpass_coeffs(swept, q, SR)
    for g, w in zip(got, want, strict=True):
        assert g.shape == (twin.n_samples,)
        np.testing.assert_allclose(g, w, rtol=1e-6)


def reference_twin(knobs: dict[str, float], twin) -> np.ndarray:
    """The twin's voice in numpy/scipy with the filter envelope off (constant cutoff)."""
    n = twin.n_samples
    t = np.arange(n) / SR
    f0 = 440 * 2 ** ((twin.note - 69) / 12)
    saw_phase = (0.5 + f0 * t) % 1.0
    saw = 2 * saw_phase - 1
    square = np.where((f0 * twin.osc2_detune * t) % 1.0 < 0.5, 1.0, -1.0)
    mix = knobs["osc_mix"]
    x = 0.5 * (1 - mix) * saw + 0.5 * (1 + mix) * square
    b, a = bilinear_lowpass(knobs["cutoff"], 1 / (2 * (1 - knobs["resonance"])), SR)
    y = signal.lfilter(b, a, signal.lfilter(b, a, x))
    attack, release = knobs["amp_attack"], knobs["amp_release"]
    env = np.where(
        t < twin.gate_s,
        np.minimum(t / attack, 1.0),
        np.maximum(0.0, 1.0 - (t - twin.gate_s) / release),
    )
    return twin.level * env * y


def test_the_twin_is_saw_plus_square_through_two_lowpass_stages():
    twin = make_plant("amsynth_twin")
    knobs = dict(
        cutoff=700.0, resonance=0.5, filter_env_amount=0.0, amp_attack=0.02, amp_release=0.1,
        osc_mix=-0.3,
    )  # fmt: skip
    audio = np.asarray(twin.render(twin.knobs_from_physical(knobs), jax.random.PRNGKey(0)))
    reference = reference_twin(knobs, twin)
    # PolyBLEP vs naive waveforms differ only in a few high harmonics, which the filter removes
    assert np.corrcoef(audio, reference)[0, 1] > 0.999
    assert np.sqrt(np.mean(audio**2)) == pytest.approx(np.sqrt(np.mean(reference**2)), rel=0.01)


def test_filter_envelope_amount_brightens_the_attack_only():
    twin = make_plant("amsynth_twin")
    base = dict(cutoff=300.0, resonance=0.0, amp_attack=0.002, amp_release=0.05, osc_mix=0.0)

    def bright(x):
        """Fraction of the power above 1 kHz."""
        f, p = signal.periodogram(x, SR)
        return p[f > 1000].sum() / p.sum()

    sounds = {}
    for amount in (0.0, 16.0):
        knobs = twin.knobs_from_physical({**base, "filter_env_amount": amount})
        sounds[amount] = np.asarray(twin.render(knobs, jax.random.PRNGKey(0)))
    # cutoff + 16 x 130.8 Hz at the note-on, back to 300 Hz after the 0.12 s decay
    early, late = slice(0, 800), slice(3000, 4000)  # 0-50 ms vs 190-250 ms
    assert bright(sounds[16.0][early]) > 2 * bright(sounds[0.0][early])
    assert bright(sounds[16.0][late]) == pytest.approx(bright(sounds[0.0][late]), rel=0.05)


def test_patch_task_is_zero_on_the_target_and_grows_with_the_knob_error():
    twin, task = make_plant("amsynth_twin"), make_task("patch")
    features = jax.jit(lambda k: task.features(twin.render(k, jax.random.PRNGKey(0)), SR))
    target = jnp.array([0.4, 0.3, 0.5, 0.2, 0.6, 0.5])
    assert float(task.distance(features(target), features(target))) < 1e-3
    distances = [
        float(task.distance(features(target + e), features(target))) for e in (0.02, 0.1, 0.3)
    ]
    assert distances == sorted(distances) and distances[0] > 0.01
