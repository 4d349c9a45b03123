"""Target/input WAV files: mono mixdown, resampling, and one clear error per bad file."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.audio_io import AudioConversionWarning, AudioFileError, load_audio, save_audio
from tests.conftest import make


def _tone(freq: float, sr: int, seconds: float, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(sr * seconds)) / sr
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_stereo_is_mixed_down_and_other_rates_resampled(tmp_path):
    left, right = _tone(440, 44_100, 0.5), _tone(440, 44_100, 0.5, amp=0.1)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 44_100, subtype="FLOAT")
    with pytest.warns(AudioConversionWarning):
        audio = load_audio(path, 16_000, 4000)
    assert audio.shape == (4000,) and audio.dtype == np.float32
    assert np.max(np.abs(audio)) == pytest.approx(0.3, abs=0.01)  # the channel mean
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(4000)))
    assert np.fft.rfftfreq(4000, 1 / 16_000)[np.argmax(spectrum)] == pytest.approx(440, abs=4)


def test_each_conversion_is_a_warning_saying_from_what_to_what(tmp_path):
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([_tone(440, 44_100, 0.5)] * 2, axis=1), 44_100)
    with pytest.warns(AudioConversionWarning) as record:
        load_audio(path, 16_000, 4000)
    assert [str(w.message) for w in record] == [
        f"{path}: mixed 2 channels down to mono (their mean)",
        f"{path}: resampled from 44100 Hz to 16000 Hz",
        f"{path}: cut from 0.500 s to 0.250 s (4000 samples at 16000 Hz)",
    ]
    short = save_audio(tmp_path / "short.wav", _tone(300, 16_000, 0.1), 16_000)
    with pytest.warns(AudioConversionWarning, match=r"padded with silence from 0.100 s to 0.250 s"):
        load_audio(short, 16_000, 4000)
    fitting = save_audio(tmp_path / "fits.wav", _tone(300, 16_000, 0.25), 16_000)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a file that needs no change: no warning at all
        load_audio(fitting, 16_000, 4000)
        load_audio(short, 16_000)  # no length asked for: kept as it is


def test_short_files_are_zero_padded_and_long_ones_trimmed(tmp_path):
    path = save_audio(tmp_path / "short.wav", _tone(300, 16_000, 0.1), 16_000)
    with pytest.warns(AudioConversionWarning, match="padded"):
        audio = load_audio(path, 16_000, 4000)
    assert audio.shape == (4000,) and np.all(audio[1700:] == 0)
    long = save_audio(tmp_path / "long.wav", _tone(300, 16_000, 3.0), 16_000)
    with pytest.warns(AudioConversionWarning, match="cut"):
        assert load_audio(long, 16_000, 4000).shape == (4000,)


@pytest.mark.parametrize(
    "writer, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "cannot read it as audio"),
        (lambda p: p.write_bytes(b"RIFF\x00\x00garbage" * 10), "cannot read it as audio"),
        (lambda p: sf.write(p, np.zeros((0,), np.float32), 16_000), "has no samples"),
        (lambda p: sf.write(p, np.zeros(4000, np.float32), 16_000), "silent"),
    ],
    ids=["missing", "empty-bytes", "corrupt", "no-samples", "silent"],
)
def test_bad_files_give_one_clear_error(tmp_path, writer, message):
    path = tmp_path / "bad.wav"
    writer(path)
    with pytest.raises(AudioFileError, match=message) as info:
        load_audio(path, 16_000, 4000)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_env_matches_a_target_loaded_from_a_wav(tmp_path):
    # The target is a sine at 660 Hz written to disk; the env must tune to it.
    path = save_audio(tmp_path / "target.wav", _tone(660, 22_050, 0.25), 22_050)
    with pytest.warns(AudioConversionWarning, match="resampled from 22050 Hz to 16000 Hz"):
        env = make("ddsp_gym/SineTuner-v1", target=str(path), expose_grad=True)
    env.reset(seed=0)
    spec = env.unwrapped.plant.knob_specs[0]
    action = np.array([2 * float(spec.to_unit(660.0)) - 1], np.float32)
    _, _, terminated, _, info = env.step(action)
    assert terminated and info["success"] and info["distance"] < 5.0
    assert "param_error" not in info  # unknown for a recorded target


def test_env_refuses_a_silent_target(tmp_path):
    path = tmp_path / "silence.wav"
    sf.write(path, np.zeros(4000, np.float32), 16_000)
    with pytest.raises(AudioFileError, match="silent"):
        make("ddsp_gym/SineTuner-v1", target=str(path))


def test_env_refuses_a_non_finite_target_array():
    with pytest.raises(ValueError, match="finite"):
        make("ddsp_gym/SineTuner-v1", target=np.full(4000, np.nan, np.float32))


def _click_file(path, n: int, at: int, sr: int = 16_000) -> np.ndarray:
    """A float WAV of ``n`` samples, silent but for a unit click at sample ``at``."""
    audio = np.zeros(n, np.float32)
    audio[at] = 1.0
    sf.write(path, audio, sr, subtype="FLOAT")
    return audio


def _delay_action(env, time_s: float, feedback: float, mix: float) -> np.ndarray:
    """The absolute action that sets the delay's knobs to these physical values."""
    physical = {"time": time_s, "feedback": feedback, "mix": mix}
    units = [float(s.to_unit(physical[s.name])) for s in env.unwrapped.plant.knob_specs]
    return (2.0 * np.array(units) - 1.0).astype(np.float32)


@pytest.mark.parametrize("length", [1.5, 0.5], ids=["longer-trimmed", "shorter-padded"])
def test_an_effect_env_processes_an_input_wav(tmp_path, length):
    """``input=`` a WAV path: the effect hears that file, fitted to the plant's length,
    and so does its target. A click through the delay (0.1 s, feedback 0.5, mix 0.5)
    comes out as the click at half height and echoes every 1,600 samples, each half the
    one before; the default program (impulses elsewhere) sounds different."""
    env_id, sr, click = "ddsp_gym/DelayTime-v1", 16_000, 200
    n = make(env_id).unwrapped.plant.n_samples
    written = _click_file(tmp_path / "click.wav", int(length * n), click, sr)
    expected = np.zeros(n, np.float32)
    expected[: min(n, written.size)] = written[:n]
    env = make(env_id, input=str(tmp_path / "click.wav"))
    np.testing.assert_array_equal(env.unwrapped.input_audio, expected)

    env.reset(seed=0)
    action = _delay_action(env, 0.1, 0.5, 0.5)
    env.step(action)
    out = env.unwrapped.current_audio()
    assert out.shape == (n,)
    assert out[click] == pytest.approx(0.5, abs=1e-3)  # the dry click, (1 - mix) x
    echoes = []
    for k in (1, 2, 3):
        at = click + 1600 * k
        window = np.abs(out[at - 40 : at + 41])
        assert abs(int(np.argmax(window)) - 40) <= 1, k  # the k-th echo, on time
        echoes.append(window.sum())  # the tap's area: its gain, however low-passed
    np.testing.assert_allclose(np.array(echoes[1:]) / echoes[:-1], 0.5, rtol=0.05)
    before_fourth = out[: click + 4 * 1600 - 40].copy()
    for k in range(4):
        before_fourth[max(0, click + 1600 * k - 40) : click + 1600 * k + 41] = 0.0
    assert np.max(np.abs(before_fourth)) < 1e-3  # silence between the click and its echoes
    # The target processed the same file: its dry click sits at the same sample.
    target = env.unwrapped.target_audio()
    assert int(np.argmax(np.abs(target[: click + 100]))) == click

    default = make(env_id)
    default.reset(seed=0)
    default.step(action)
    assert np.max(np.abs(default.unwrapped.current_audio() - out)) > 0.1
