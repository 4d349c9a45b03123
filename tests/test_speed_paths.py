"""The rewritten hot paths against their references: same values, same gradients."""

from __future__ import annotations

import gymnasium as gym
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from ddsp_gym import dsp
from ddsp_gym import features as F
from ddsp_gym.envs import packing
from ddsp_gym.envs.compile import CPU_SCHEDULES, compiled, cpu_schedule_for, pack_params
from ddsp_gym.features.summary import SUMMARY_FFT, _pool, summary_features
from ddsp_gym.registry import load_registry, task_reward_ids

SR = 16_000
# Target envs with the task reward (the schedule is the sim backend's fused step's).
TASK_REWARD_ENTRIES = [e for e in load_registry() if e.id in task_reward_ids()]
MEMORY_SCHEDULED = [
    e.id
    for e in TASK_REWARD_ENTRIES
    if cpu_schedule_for(e.kwargs["plant"], e.kwargs["task"]) == "memory"
]


def test_sine_and_cosine_in_cycles_match_numpy_with_gradients():
    phase = np.linspace(-3.0, 3.0, 200_001).astype(np.float32)
    exact = 2.0 * np.pi * phase.astype(np.float64)
    assert np.abs(np.asarray(dsp.sine(phase)) - np.sin(exact)).max() < 5e-7
    assert np.abs(np.asarray(dsp.cosine(phase)) - np.cos(exact)).max() < 1e-6
    grad = jax.vmap(jax.grad(dsp.sine))(jnp.asarray(phase))
    np.testing.assert_allclose(grad, 2.0 * np.pi * np.cos(exact), atol=5e-6)
    # Exactly odd, and exactly zero / one at the quarter points.
    np.testing.assert_array_equal(dsp.sine(-phase), -dsp.sine(phase))
    np.testing.assert_array_equal(dsp.sine(jnp.array([0.0, 0.25, 0.5, 0.75])), [0, 1, 0, -1])


@pytest.mark.parametrize("design", ["lowpass", "highpass", "bandpass"])
def test_filter_designs_match_the_cookbook_in_radians(design):
    """sin/cos of f / sr in cycles give the RBJ coefficients of sin/cos(w0) in radians."""
    freqs = np.geomspace(10.0, 7200.0, 50)
    q = 3.0
    b, a = getattr(dsp, f"{design}_coeffs")(jnp.asarray(freqs), q, SR)
    w0 = 2.0 * np.pi * freqs / SR
    cos, alpha = np.cos(w0), np.sin(w0) / (2.0 * q)
    expected_a = np.stack([1 + alpha, -2 * cos, 1 - alpha], -1) / (1 + alpha)[:, None]
    np.testing.assert_allclose(np.asarray(a), expected_a, rtol=1e-5, atol=1e-6)
    if design == "lowpass":
        # 1 - cos(w0) cancels in float32 at low cutoffs (as with jnp.cos), so b is compared
        # above 100 Hz; from 20 Hz up b and a agree on unity gain at DC. Below, 1 + a1 + a2
        # ~ w0^2 (6e-6 at 10 Hz) is a few float32 ulps of a1 ~ -2, and the DC gain is only
        # as good as one ulp there (~1 %).
        expected_b = np.stack([(1 - cos) / 2, 1 - cos, (1 - cos) / 2], -1) / (1 + alpha)[:, None]
        high = freqs >= 100.0
        np.testing.assert_allclose(np.asarray(b)[high], expected_b[high], rtol=1e-3)
        dc_gain = np.asarray(b, np.float64).sum(-1) / np.asarray(a, np.float64).sum(-1)
        np.testing.assert_allclose(dc_gain[freqs >= 20.0], 1.0, rtol=5e-3)


def test_db_and_midi_conversions_keep_their_values():
    db = np.array([-20.0, 0.0, 6.0])
    np.testing.assert_allclose(dsp.db_to_amp(jnp.asarray(db)), 10 ** (db / 20), rtol=1e-6)
    notes = np.array([57.0, 69.0, 81.0])
    np.testing.assert_allclose(dsp.midi_to_hz(jnp.asarray(notes)), [220, 440, 880], rtol=1e-6)


@pytest.mark.parametrize("frame_length,hop", [(256, 128), (1024, 256), (300, 100), (256, 100)])
def test_frame_mean_square_equals_framing(frame_length, hop):
    x = jnp.asarray(np.random.default_rng(0).normal(size=4001).astype(np.float32))
    frames = F.frame_signal(x, frame_length, hop)
    np.testing.assert_allclose(
        F.frame_mean_square(x, frame_length, hop), jnp.mean(frames**2, -1), rtol=1e-5
    )


@pytest.mark.parametrize("n_bins,bands", [(2049, 512), (1025, 512), (2049, 100)])
def test_summary_pool_sums_equal_groups_of_bins(n_bins, bands):
    power = np.random.default_rng(3).random(n_bins).astype(np.float32)
    freqs = np.linspace(0.0, 8000.0, n_bins).astype(np.float32)
    pooled, pooled_freqs = _pool(jnp.asarray(power), freqs, bands)
    group = (n_bins - 1) // bands
    used = slice(0, bands * group)
    expected = power[used].astype(np.float64).reshape(bands, group).sum(axis=1)
    np.testing.assert_allclose(pooled, expected, rtol=1e-6)
    np.testing.assert_allclose(pooled_freqs, freqs[used].reshape(bands, group).mean(axis=1))


def _welch_mean_power(x: np.ndarray) -> np.ndarray:
    """The old summary's spectrum: mean |STFT|^2 of centred 1024-sample Hann frames."""
    return np.asarray(F.power_spectrogram(jnp.asarray(x), SUMMARY_FFT)).mean(0)


def test_summary_levels_match_averaged_frames_for_noise_and_tones():
    rng = np.random.default_rng(1)
    noise = (0.3 * rng.uniform(-1, 1, 4000)).astype(np.float32)
    n = np.arange(4000)
    tone = (0.5 * np.sin(2 * np.pi * 440.0 * n / SR)).astype(np.float32)
    mel = F.mel_filterbank(SR, SUMMARY_FFT, 16)

    def levels(x):
        ours = np.asarray(summary_features(jnp.asarray(x), SR))[4:20]
        return ours, 10 * np.log10(_welch_mean_power(x) @ mel + 1e-8) / 80 + 1

    ours, frames = levels(noise)
    np.testing.assert_allclose(ours, frames, atol=0.03)  # within 2.4 dB in every band
    # The tone's bands agree; elsewhere the zero-padded edge frames leak broadband
    # energy (up to 0.7, -24 dB) where one window over the whole sound shows none.
    ours, frames = levels(tone)
    tonal_bands = ours > 0.5
    assert 1 <= tonal_bands.sum() <= 3
    np.testing.assert_allclose(ours[tonal_bands], frames[tonal_bands], atol=0.03)
    assert ours[~tonal_bands].max() < frames[~tonal_bands].min()
    flat = np.asarray(summary_features(jnp.asarray(noise), SR))[2]
    tonal = np.asarray(summary_features(jnp.asarray(tone), SR))[2]
    assert flat > 0.7 and tonal < 0.05


def test_mrstft_features_keep_logs_norms_and_the_distance_value():
    rng = np.random.default_rng(2)
    x, y = (jnp.asarray(rng.normal(size=4000).astype(np.float32)) for _ in range(2))
    spectra = F.multi_resolution_spectra(x)
    for s in spectra:
        np.testing.assert_allclose(s.log_magnitude, jnp.log(s.magnitude + 1e-5), rtol=1e-6)
        norm = np.sqrt(np.sum(np.square(s.magnitude, dtype=np.float64)) + 1e-10)
        np.testing.assert_allclose(s.norm, norm, rtol=1e-5)
    expected = np.mean(
        [
            F.spectral_convergence(F.magnitude_spectrogram(x, n), F.magnitude_spectrogram(y, n))
            + F.log_magnitude_distance(F.magnitude_spectrogram(x, n), F.magnitude_spectrogram(y, n))
            for n in (1024, 512, 256, 128)
        ]
    )
    assert float(F.mrstft_distance(x, y)) == pytest.approx(float(expected), rel=1e-5)


def test_packing_round_trip_keeps_scalars_vectors_and_flags():
    cols = packing.Layout((("obs", 3), ("reward", None), ("done", None), ("knobs", 1)))
    values = {
        "obs": jnp.arange(6.0).reshape(2, 3),
        "reward": jnp.array([-1.5, 2.0]),
        "done": jnp.array([True, False]),
        "knobs": jnp.array([[0.25], [0.75]]),
    }
    table = np.asarray(packing.pack(cols, values))
    assert table.shape == (2, 6)
    np.testing.assert_array_equal(packing.column(table, cols, "obs"), values["obs"])
    np.testing.assert_array_equal(packing.column(table, cols, "reward"), [-1.5, 2.0])
    np.testing.assert_array_equal(packing.column(table, cols, "done") > 0.5, [True, False])
    assert packing.column(table, cols, "knobs").shape == (2, 1)
    assert table[1].tolist()[cols.starts["reward"]] == 2.0  # one row as a list
    # unpack: every field at once, the same values, writable and apart from the table.
    fields = packing.unpack(table, cols)
    assert list(fields) == ["obs", "reward", "done", "knobs"]
    for name, value in fields.items():
        np.testing.assert_array_equal(value, packing.column(table, cols, name))
        assert value.flags.writeable and not np.shares_memory(value, table)
    fields["reward"][0] = 9.0
    assert fields["done"][0] == 1.0 and table[0, 3] == -1.5


def test_biquad_still_matches_lfilter_at_the_corners():
    x = np.random.default_rng(3).uniform(-1, 1, 4000).astype(np.float32)
    for freq, q in [(50.0, 0.1), (1000.0, 0.707), (7000.0, 20.0)]:
        b, a = dsp.lowpass_coeffs(freq, q, SR)
        reference = signal.lfilter(np.asarray(b, np.float64), np.asarray(a, np.float64), x)
        ours = np.asarray(dsp.biquad(jnp.asarray(x), b, a))
        assert np.abs(ours - reference).max() <= 1e-4 * max(1.0, np.abs(reference).max())


def _autodiff_biquad(x, b, a):
    """TDF-II by a plain scan, differentiated by JAX: the reference of the written-out VJP."""

    def tick(state, inputs):
        s1, s2 = state
        xn, bn, an = inputs
        y = bn[0] * xn + s1
        return (bn[1] * xn - an[1] * y + s2, bn[2] * xn - an[2] * y), y

    n = x.shape[0]
    b, a = jnp.broadcast_to(b, (n, 3)), jnp.broadcast_to(a, (n, 3))
    return jax.lax.scan(tick, (0.0, 0.0), (x, b, a))[1]


@pytest.mark.parametrize("time_varying", [True, False])
def test_biquad_gradient_equals_autodiff_of_the_recursion(time_varying):
    rng = np.random.default_rng(4)
    n = 1500
    x = jnp.asarray(rng.normal(size=n).astype(np.float32))
    weights = jnp.asarray(rng.normal(size=n).astype(np.float32))
    freq = np.geomspace(4000.0, 90.0, n) if time_varying else 700.0
    b, a = dsp.lowpass_coeffs(jnp.asarray(freq, jnp.float32), 9.0, SR)

    def loss(filter_fn):
        return lambda x, b, a: jnp.sum(weights * filter_fn(x, b, a) ** 2)

    ours = jax.grad(loss(dsp.biquad), argnums=(0, 1, 2))(x, b, a)
    reference = jax.grad(loss(_autodiff_biquad), argnums=(0, 1, 2))(x, b, a)
    for got, want in zip(ours, reference, strict=True):
        assert got.shape == want.shape
        scale = float(jnp.max(jnp.abs(want)))
        np.testing.assert_allclose(got, want, atol=2e-4 * scale)
    assert float(ours[2][..., 0].sum()) == 0.0  # a0 == 1 is not a free coefficient


def test_split_lowpass_runs_like_the_reference_recursion():
    """dsp.lowpass (separate arrays) -> run_biquad equals the plain scan on (b, a) stacks."""
    n = 800
    freq = jnp.asarray(np.geomspace(30.0, 7000.0, n), jnp.float32)
    coeffs = dsp.lowpass(freq, 4.0, SR)
    assert all(field.shape == (n,) for field in coeffs)
    for got, want in zip(dsp.Biquad.from_ba(*coeffs.ba()), coeffs, strict=True):
        np.testing.assert_array_equal(got, want)  # the scipy layout round-trips
    x = jnp.asarray(np.random.default_rng(5).normal(size=n).astype(np.float32))
    reference = _autodiff_biquad(x, *coeffs.ba())
    np.testing.assert_allclose(
        dsp.run_biquad(x, coeffs), reference, atol=1e-5 * float(jnp.max(jnp.abs(reference)))
    )


@pytest.mark.parametrize("frame_length,hop", [(1024, 256), (128, 32), (256, 100), (64, 64)])
def test_framing_and_its_gradient_equal_gathered_frames(frame_length, hop):
    """Frames built from hop-sized chunks equal frames gathered by index, gradients too."""
    x = jnp.asarray(np.random.default_rng(6).normal(size=4001).astype(np.float32))

    def gathered(x):
        pad = frame_length // 2
        padded = jnp.pad(x, (pad, pad))
        n_frames = 1 + (padded.shape[0] - frame_length) // hop
        return padded[np.arange(frame_length)[None, :] + hop * np.arange(n_frames)[:, None]]

    frames = F.frame_signal(x, frame_length, hop)
    np.testing.assert_array_equal(frames, gathered(x))
    cotangent = jnp.asarray(np.random.default_rng(7).normal(size=frames.shape), jnp.float32)
    ours = jax.vjp(lambda x: F.frame_signal(x, frame_length, hop), x)[1](cotangent)[0]
    np.testing.assert_allclose(ours, jax.vjp(gathered, x)[1](cotangent)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("time_varying", [True, False])
def test_svf_gradient_is_autodiff_of_the_plain_recursion(time_varying):
    """The SVF's hand-written VJP against autodiff of the same recursion (no custom rule)."""
    from ddsp_gym.dsp.filters import _svf_scan

    rng = np.random.default_rng(5)
    n = 3000
    x = jnp.asarray(rng.normal(size=n).astype(np.float32))
    cutoff = jnp.asarray(np.geomspace(3000.0, 80.0, n).astype(np.float32))
    if not time_varying:
        cutoff = jnp.float32(400.0)

    def plain(x, cutoff, q):
        coeffs = dsp.svf_lowpass_coeffs(cutoff, q, SR)
        return _svf_scan(x, *(jnp.broadcast_to(c, (n,)) for c in coeffs))

    def loss(filter_fn):
        return lambda x, cutoff, q: jnp.sum(jnp.sin(3.0 * filter_fn(x, cutoff, q, SR)))

    expected = jax.grad(loss(lambda x, c, q, sr: plain(x, c, q)), argnums=(0, 1, 2))(
        x, cutoff, jnp.float32(4.0)
    )
    got = jax.grad(loss(dsp.svf_lowpass), argnums=(0, 1, 2))(x, cutoff, jnp.float32(4.0))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-5 * float(jnp.max(jnp.abs(e))))
    reference = plain(x, cutoff, jnp.float32(4.0))
    np.testing.assert_array_equal(dsp.svf_lowpass(x, cutoff, 4.0, SR), reference)

    # The forward pass that keeps the adjoint's residuals (its own loop) renders the same
    # sound; under one jit, as an env steps with and without gradients, the same bits.
    def render(x):
        return dsp.svf_lowpass(x, cutoff, 4.0, SR)

    with_residuals = jax.vjp(render, x)[0]
    np.testing.assert_allclose(with_residuals, reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(jax.jit(lambda x: jax.vjp(render, x)[0])(x), jax.jit(render)(x))


def _episode(env_id: str, cpu_schedule: str) -> list[np.ndarray]:
    """Observations, rewards, distances and reward gradients of a seeded episode."""
    env = gym.make(env_id, expose_grad=True)
    env.unwrapped.backend.schedule = cpu_schedule  # before the first call compiles
    played = [env.reset(seed=5)[0]]
    rng = np.random.default_rng(0)
    for _ in range(4):
        action = rng.uniform(-1, 1, env.action_space.shape).astype(np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        played += [obs, reward, info["distance"], info["reward_grad"]]
        if terminated or truncated:
            played.append(env.reset()[0])
    return played


@pytest.mark.parametrize("env_id", MEMORY_SCHEDULED)
def test_a_cpu_schedule_changes_no_result(env_id):
    """An env's schedule is a speed choice only: XLA orders the same arithmetic."""
    for ours, default in zip(
        _episode(env_id, "memory"), _episode(env_id, "concurrency"), strict=True
    ):
        np.testing.assert_array_equal(ours, default)


def test_a_cpu_schedule_reaches_xla_and_a_bad_one_is_refused():
    env = gym.make("ddsp_gym/VolumeMatch-v1").unwrapped
    env.reset(seed=0)
    assert env.cpu_schedule == "memory"  # VolumeMatch's single env runs depth-first
    action = jnp.zeros(env.action_space.shape)
    texts = {}
    for schedule in CPU_SCHEDULES:
        step = compiled(env.functional, schedule).step
        lowered = step.lower(env.state, action, pack_params(env.params))
        texts[schedule] = lowered.compile().as_text()
    if jax.default_backend() == "cpu":
        assert texts["memory"] != texts["concurrency"]  # another order of the same kernels
    with pytest.raises(ValueError, match="schedule must be one of"):
        compiled(env.functional, "fastest")
    with pytest.raises(TypeError, match="unknown keyword argument"):
        gym.make("ddsp_gym/VolumeMatch-v1", cpu_schedule="memory")  # not a user setting
