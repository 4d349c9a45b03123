"""The knob-trajectory codec: its plant against closed forms, quantization and packing,
the code.json format and its errors, an encode/decode round trip, the CLI."""

from __future__ import annotations

import base64
import json

import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from ddsp_gym.cli import main
from ddsp_gym.coding.bench import log_mel_db, synthetic_tone
from ddsp_gym.coding.codec import (
    CODEC_PLANTS,
    SAMPLE_RATE,
    decode,
    encode,
    initial_points,
    make_plant,
    render_trajectory,
)
from ddsp_gym.coding.codefile import Code, CodeFormatError, read_code, write_code
from ddsp_gym.coding.harmonic_noise import (
    FIR_TAPS,
    N_HARMONICS,
    NYQUIST_FADE_HZ,
    HarmonicNoiseVoice,
    noise_band_firs,
)
from ddsp_gym.coding.quantize import (
    bits_for_budget,
    dequantize,
    knob_bits,
    pack_bits,
    payload_bits_per_second,
    quantize,
    rice_bits_for_budget,
    rice_pack,
    rice_size_bits,
    rice_unpack,
    unpack_bits,
)

PLANT = HarmonicNoiseVoice(sample_rate=SAMPLE_RATE, block_size=320)
NAMES = [s.name for s in PLANT.knob_specs]


def _steady_knobs(n: int, **physical: float) -> jnp.ndarray:
    """(n, d) unit knobs: every knob at 0 dB / its top, then ``physical`` values set."""
    unit = np.ones(len(NAMES), np.float32)
    for name, value in physical.items():
        unit[NAMES.index(name)] = float(PLANT.knob_specs[NAMES.index(name)].to_unit(value))
    return jnp.tile(jnp.asarray(unit), (n, 1))


def test_harmonic_part_is_the_closed_form_sum_of_sines() -> None:
    # Flat envelope: equal partials up to the Nyquist fade, scaled to RMS 10^(-20/20).
    n = 3200
    knobs = _steady_knobs(n, f0=250.0, harmonic_level=-20.0)
    tone, _ = PLANT.harmonic_part(jnp.zeros(()), knobs)
    f0 = float(PLANT.knob_specs[0].to_physical(knobs[0, 0]))  # 250 Hz through float32 travel
    k = np.arange(1, N_HARMONICS + 1)
    amp = np.clip((SAMPLE_RATE / 2 - k * f0) / NYQUIST_FADE_HZ, 0.0, 1.0)
    amp *= np.sqrt(2.0 / np.sum(amp**2))
    t = np.arange(n) / SAMPLE_RATE
    expected = 0.1 * np.sum(amp[:, None] * np.sin(2 * np.pi * k[:, None] * f0 * t), axis=0)
    np.testing.assert_allclose(np.asarray(tone), expected, atol=2e-4)
    assert np.sqrt(np.mean(np.asarray(tone) ** 2)) == pytest.approx(0.1, rel=1e-3)


def test_envelope_tilts_the_partials() -> None:
    # The envelope's top point at -40 dB: the high partials drop against the low ones.
    knobs = _steady_knobs(4096, f0=200.0, env_15=-40.0, env_14=-40.0, env_13=-40.0)
    tone = np.asarray(PLANT.harmonic_part(jnp.zeros(()), knobs)[0])
    spectrum = np.abs(np.fft.rfft(tone * np.hanning(tone.size)))
    bin_of = lambda hz: round(hz * tone.size / SAMPLE_RATE)  # noqa: E731
    assert spectrum[bin_of(7000)] < 0.05 * spectrum[bin_of(400)]


def test_noise_bands_sum_to_a_delayed_impulse() -> None:
    firs, shares = noise_band_firs(SAMPLE_RATE)
    impulse = np.zeros(FIR_TAPS)
    impulse[FIR_TAPS // 2] = 1.0
    np.testing.assert_allclose(firs.sum(axis=0), impulse, atol=1e-6)
    assert shares.sum() == pytest.approx(1.0)


def test_flat_noise_is_the_white_input_delayed_and_scaled() -> None:
    white = np.random.default_rng(0).standard_normal(2000).astype(np.float32)
    noise, history = PLANT.noise_part(
        jnp.zeros(FIR_TAPS - 1), _steady_knobs(2000, noise_level=-6.0), jnp.asarray(white)
    )
    delay = FIR_TAPS // 2
    np.testing.assert_allclose(
        np.asarray(noise)[delay:], 10 ** (-6 / 20) * white[:-delay], atol=1e-5
    )
    np.testing.assert_array_equal(np.asarray(history), white[-(FIR_TAPS - 1) :])


def test_blocks_with_carried_state_equal_one_long_render() -> None:
    rng = np.random.default_rng(1)
    knobs = jnp.asarray(rng.uniform(0.2, 0.9, (640, len(NAMES))).astype(np.float32))
    white = jnp.asarray(rng.standard_normal(640).astype(np.float32))
    state = PLANT.init_state()
    whole_tone, _ = PLANT.harmonic_part(state.phase, knobs)
    whole_noise, _ = PLANT.noise_part(state.noise_history, knobs, white)
    tone_a, phase = PLANT.harmonic_part(state.phase, knobs[:320])
    tone_b, _ = PLANT.harmonic_part(phase, knobs[320:])
    noise_a, hist = PLANT.noise_part(state.noise_history, knobs[:320], white[:320])
    noise_b, _ = PLANT.noise_part(hist, knobs[320:], white[320:])
    np.testing.assert_allclose(np.concatenate([tone_a, tone_b]), whole_tone, atol=2e-5)
    np.testing.assert_allclose(np.concatenate([noise_a, noise_b]), whole_noise, atol=1e-5)


def test_quantization_grid_is_exact() -> None:
    bits = [9, 3, 1, 16, 5]
    rng = np.random.default_rng(2)
    codes = np.stack([rng.integers(0, 1 << b, 40) for b in bits], axis=1)
    np.testing.assert_array_equal(quantize(dequantize(codes, bits), bits), codes)
    unit = rng.uniform(0, 1, (40, len(bits)))
    step = 1.0 / ((1 << np.asarray(bits)) - 1)
    assert np.all(np.abs(dequantize(quantize(unit, bits), bits) - unit) <= step / 2 + 1e-6)
    # The stops are on the grid: a knob at its end is coded exactly.
    stops = np.array([[0.0], [1.0]])
    np.testing.assert_array_equal(dequantize(quantize(stops, [4]), [4]), stops)


def test_packing_round_trips_and_counts_bits() -> None:
    bits = [7, 5, 4, 1]
    rng = np.random.default_rng(3)
    codes = np.stack([rng.integers(0, 1 << b, 13) for b in bits], axis=1)
    payload = pack_bits(codes, bits)
    assert len(payload) == -(-13 * 17 // 8)
    np.testing.assert_array_equal(unpack_bits(payload, 13, bits), codes)
    with pytest.raises(ValueError, match="outside"):
        pack_bits(codes + 200, bits)
    with pytest.raises(ValueError, match="payload holds"):
        unpack_bits(payload[:-1], 13, bits)


def test_rice_packing_is_lossless_and_small_for_smooth_tracks() -> None:
    bits = [9, 5, 4, 1, 16]
    rng = np.random.default_rng(6)
    levels = (1 << np.asarray(bits)) - 1
    smooth = np.clip(np.cumsum(rng.integers(-1, 2, (120, 5)), axis=0) + levels // 2, 0, levels)
    jumpy = np.stack([rng.integers(0, 1 << b, 120) for b in bits], axis=1)
    for codes in (smooth, jumpy, smooth[:1]):
        payload = rice_pack(codes, bits)
        assert len(payload) == -(-rice_size_bits(codes, bits) // 8)
        np.testing.assert_array_equal(rice_unpack(payload, len(codes), bits), codes)
    assert len(rice_pack(smooth, bits)) < 0.5 * len(pack_bits(smooth, bits))
    payload = rice_pack(smooth, bits)
    with pytest.raises(ValueError, match="ends inside a track"):
        rice_unpack(payload[: len(payload) // 2], 120, bits)
    with pytest.raises(ValueError, match="follow the last track"):
        rice_unpack(payload + b"\x00", 120, bits)


def test_rice_budget_is_met_by_the_payload() -> None:
    t = np.linspace(0.0, 1.0, 51)[:, None]
    unit = np.clip(0.5 + 0.3 * np.sin(2 * np.pi * (t + np.arange(len(NAMES)) / 7)), 0, 1)
    for kbps in (2.0, 4.0, 8.0):
        bits = rice_bits_for_budget(NAMES, unit, 1.0, kbps)
        size = -(-rice_size_bits(quantize(unit, bits), bits) // 8) * 8
        assert size <= kbps * 1000
        deeper = knob_bits(NAMES, bits[NAMES.index("env_00")] + 1)
        assert -(-rice_size_bits(quantize(unit, deeper), deeper) // 8) * 8 > kbps * 1000
    with pytest.raises(ValueError, match="below what this sound"):
        rice_bits_for_budget(NAMES, unit, 1.0, 0.5)


def test_budget_allocation_stays_within_budget() -> None:
    for kbps in (1.7, 3.0, 6.0, 12.0):
        bits = bits_for_budget(NAMES, 50, kbps)
        assert payload_bits_per_second(bits, 50) <= kbps * 1000
        deeper = knob_bits(NAMES, bits[NAMES.index("env_00")] + 1)
        assert payload_bits_per_second(deeper, 50) > kbps * 1000  # the deepest that fits
        assert bits[0] == bits[NAMES.index("env_00")] + 3  # pitch gets 3 more bits
    with pytest.raises(ValueError, match="below the least"):
        bits_for_budget(NAMES, 50, 1.0)


def _code(n_frames: int = 6, packing: str = "fixed") -> Code:
    bits = tuple(knob_bits(NAMES, 4))
    rng = np.random.default_rng(4)
    codes = np.stack([rng.integers(0, 1 << b, n_frames) for b in bits], axis=1)
    return Code("harmonic_noise", SAMPLE_RATE, 50, (n_frames - 1) * 320 - 7, 0, tuple(NAMES),
                bits, codes, packing)  # fmt: skip


@pytest.mark.parametrize("packing", ["fixed", "rice"])
def test_code_file_round_trips(tmp_path, packing) -> None:
    code = _code(packing=packing)
    path = write_code(tmp_path / "c.json", code)
    back = read_code(path)
    assert (back.plant, back.bits, back.knobs, back.n_samples, back.packing) == (
        code.plant, code.bits, code.knobs, code.n_samples, packing)  # fmt: skip
    np.testing.assert_array_equal(back.codes, code.codes)
    # The bitrate counts the payload's whole bytes over the sound's length.
    payload = base64.b64decode(json.loads(path.read_text())["payload"])
    assert back.payload_bps == pytest.approx(8 * len(payload) / code.duration_s)
    if packing == "fixed":
        assert len(payload) == -(-6 * sum(code.bits) // 8)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(version=2), "version 2"),
        (lambda d: d.pop("bits"), "'bits' is missing"),
        (lambda d: d.update(format="wav"), "not a ddsp-gym-code file"),
        (lambda d: d.update(payload=d["payload"][:-8]), "payload"),
        (lambda d: d.update(payload="!!not base64!!"), "base64"),
        (lambda d: d.update(bits=[0] * len(d["knobs"])), "'bits' should hold"),
        (lambda d: d.update(n_samples=True), "should be int"),
        (lambda d: d.update(n_frames=60), "do not cover"),
        (lambda d: d.update(frame_rate=33), "must divide"),
        (lambda d: d.update(packing="zip"), "unknown packing"),
        (lambda d: d.update(packing="rice"), "track"),
    ],
)
def test_corrupt_code_files_fail_clearly(tmp_path, change, message) -> None:
    doc = _code().to_json()
    change(doc)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(CodeFormatError, match=message):
        read_code(path)


def test_unreadable_code_files_fail_clearly(tmp_path) -> None:
    path = tmp_path / "c.json"
    path.write_text('{"format": "ddsp-gym-code", "vers')
    with pytest.raises(CodeFormatError, match="not valid JSON"):
        read_code(path)
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(CodeFormatError, match="not text"):
        read_code(path)
    with pytest.raises(CodeFormatError, match="no such file"):
        read_code(tmp_path / "missing.json")


def test_decode_refuses_knobs_of_another_plant() -> None:
    code = _code()
    wrong = Code(code.plant, code.sample_rate, code.frame_rate, code.n_samples, 0,
                 tuple(reversed(code.knobs)), code.bits, code.codes)  # fmt: skip
    with pytest.raises(CodeFormatError, match="knobs are not"):
        decode(wrong)
    n_long = 31 * 50 + 1  # 31 s: over what the decoder renders
    too_long = Code(code.plant, SAMPLE_RATE, 50, (n_long - 1) * 320, 0, code.knobs, code.bits,
                    np.zeros((n_long, len(code.bits)), np.int64))  # fmt: skip
    with pytest.raises(CodeFormatError, match="at most 30 s"):
        decode(too_long)
    with pytest.raises(CodeFormatError, match="unknown plant"):
        decode(Code("nope", *[getattr(code, f) for f in
                              ("sample_rate", "frame_rate", "n_samples", "seed", "knobs",
                               "bits", "codes")]))  # fmt: skip


def test_analysis_start_follows_pitch_and_level() -> None:
    plant = make_plant("harmonic_noise", 50)
    tone = synthetic_tone(0.5)
    start = initial_points(plant, tone, 26)
    f0 = np.asarray(plant.knob_specs[0].to_physical(start[:, 0]))
    assert np.all(np.abs(1200 * np.log2(f0[3:-3] / 220.0)) < 45)  # vibrato is +-30 cents
    level = np.asarray(plant.knob_specs[1].to_physical(start[:, 1]))
    assert level[5] > level[-2] + 5  # the tone decays


def test_analysis_start_of_unpitched_noise() -> None:
    plant = make_plant("harmonic_noise", 50)
    noise = 0.1 * np.random.default_rng(5).standard_normal(8000).astype(np.float32)
    start = initial_points(plant, noise, 26)
    np.testing.assert_allclose(plant.knob_specs[0].to_physical(start[:, 0]), 200.0, rtol=1e-4)


def test_round_trip_codes_a_tone_within_budget_and_bound() -> None:
    tone = synthetic_tone(0.5)
    code, fit = encode(tone, "harmonic_noise", kbps=6.0, frame_rate=50, steps=80)
    assert code.packing == "rice" and code.payload_bps <= 6000  # whole bytes, within budget
    assert fit.distance < 0.6 * fit.start_distance  # the descent did real work
    decoded = decode(code)
    assert decoded.shape == tone.shape
    # Measured: 5.3 dB (fixed packing at 6 kbps: 7.1 dB; the analysis start: 27 dB; Opus
    # at 5 kbps: 8.6 dB on the 1 s tone).
    assert log_mel_db(decoded, tone) < 7.0
    np.testing.assert_array_equal(decode(code), decoded)  # decoding is deterministic


def test_every_codec_plant_renders_a_trajectory() -> None:
    for name in CODEC_PLANTS:
        plant = make_plant(name, 100)
        points = jnp.full((5, len(plant.knob_specs)), 0.5)
        audio = np.asarray(render_trajectory(plant, points, 0))
        assert audio.shape == (4 * 160,) and np.all(np.isfinite(audio)) and np.any(audio != 0)


def test_cli_encode_decode_and_errors(tmp_path, capsys) -> None:
    wav, code_path, out = tmp_path / "in.wav", tmp_path / "code.json", tmp_path / "out.wav"
    sf.write(wav, synthetic_tone(0.5), SAMPLE_RATE)
    # The round trip's length and steps: its compiled fit is reused.
    args = ["encode", str(wav), "-o", str(code_path), "--kbps", "3", "--steps", "80", "-q"]
    assert main(args) == 0
    assert "payload" in capsys.readouterr().out
    assert main(["decode", str(code_path), "-o", str(out)]) == 0
    audio, rate = sf.read(out)
    assert rate == SAMPLE_RATE and audio.shape == (int(0.5 * SAMPLE_RATE),)

    # Stereo at 44.1 kHz: mixed down and resampled, each said on stderr.
    stereo = tmp_path / "stereo.wav"
    tone = resample_poly(synthetic_tone(0.5), 441, 160)
    sf.write(stereo, np.stack([tone, tone], 1), 44_100, subtype="FLOAT")
    assert (
        main(["encode", str(stereo), "-o", str(code_path), "--kbps", "3", "--steps", "80", "-q"])
        == 0
    )
    err = capsys.readouterr().err
    assert "mixed 2 channels down" in err and "resampled from 44100 Hz" in err
    assert read_code(code_path).n_samples == 8000

    sf.write(tmp_path / "silent.wav", np.zeros(8000), SAMPLE_RATE)
    (tmp_path / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")
    (tmp_path / "bad.json").write_text("{")
    cases = [
        (["encode", str(tmp_path / "missing.wav"), "-o", str(code_path)], "no such file"),
        (["encode", str(tmp_path / "silent.wav"), "-o", str(code_path)], "silent"),
        (["encode", str(tmp_path / "bad.wav"), "-o", str(code_path)], "cannot read it"),
        (["encode", str(wav), "-o", str(code_path), "--kbps", "0.5"], "below the least"),
        (["decode", str(tmp_path / "bad.json"), "-o", str(out)], "not valid JSON"),
    ]
    for argv, message in cases:
        assert main(argv) == 2
        assert message in capsys.readouterr().err
