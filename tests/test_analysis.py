"""Analysis before synthesis: measurements against closed forms, and `match` on
recordings as they come (leading silence, a quiet file, a short file)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import soundfile as sf
from scipy import signal

from ddsp_gym.analysis import analyze, prepare_target, yin
from ddsp_gym.cli import main
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import TASKS, make_task

SR = 16_000


def _tone(freq: float, seconds: float, amplitude: float = 0.5, kind: str = "sine") -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    if kind == "saw":
        return amplitude * signal.sawtooth(2 * np.pi * freq * t)
    return amplitude * np.sin(2 * np.pi * freq * t)


def _cents(a: float, b: float) -> float:
    return float(1200.0 * abs(np.log2(a / b)))


@pytest.mark.parametrize("freq", [55.0, 110.0, 261.63, 440.0, 987.77, 1760.0])
@pytest.mark.parametrize("kind", ["sine", "saw"])
def test_yin_finds_the_fundamental_within_5_cents(freq, kind):
    analysis = analyze(_tone(freq, 0.5, kind=kind), SR)
    assert analysis.f0_hz is not None and _cents(analysis.f0_hz, freq) < 5.0
    assert analysis.periodic_fraction > 0.9


@pytest.mark.parametrize("delay_s", [0.09, 0.25])
def test_an_echo_does_not_move_the_refined_pitch(delay_s):
    # A 110 Hz saw note and its echo at half level: over one long spectrum the echo
    # comb-filters every partial (at 250 ms, 110 Hz sits in a notch), frame by frame
    # it does not.
    note = _tone(110.0, 0.2, kind="saw") * np.minimum(1.0, np.arange(int(0.2 * SR)) / 80.0)
    audio = np.zeros(int(0.2 * SR) + int(delay_s * SR) + SR // 10)
    audio[: note.size] += note
    audio[int(delay_s * SR) :][: note.size] += 0.5 * note
    analysis = analyze(audio, SR)
    assert analysis.f0_hz is not None and _cents(analysis.f0_hz, 110.0) < 2.0


def test_noise_is_not_pitched_and_yin_marks_its_frames_aperiodic():
    noise = np.random.default_rng(0).normal(0.0, 0.1, SR // 2)
    f0, depth = yin(noise, SR)
    assert np.isnan(f0).mean() > 0.9 and np.median(depth) > 0.5
    assert analyze(noise, SR).f0_hz is None


def test_onset_level_and_duration_of_a_tone_after_silence():
    tone = _tone(440.0, 0.4, amplitude=0.25)
    audio = np.concatenate([np.zeros(int(0.3 * SR)), tone, np.zeros(int(0.3 * SR))])
    analysis = analyze(audio, SR)
    assert analysis.onset_s == pytest.approx(0.3, abs=0.002)
    assert analysis.sounding_s == pytest.approx(0.4, abs=0.011)  # to the 10 ms frame
    assert analysis.duration_s == pytest.approx(1.0)
    assert analysis.peak_dbfs == pytest.approx(20 * np.log10(0.25), abs=0.01)
    # A sine's RMS is its amplitude / sqrt(2), measured over the sounding part only.
    assert analysis.rms_dbfs == pytest.approx(20 * np.log10(0.25 / np.sqrt(2)), abs=0.1)
    assert "sound from 0.300 s" in analysis.lines()[0]


def test_prepare_target_skips_silence_pads_and_scales_and_says_so():
    audio = np.concatenate([np.zeros(int(0.3 * SR)), _tone(440.0, 0.1, amplitude=0.01)])
    analysis = analyze(audio, SR)
    out, notes = prepare_target(audio, SR, 4000, analysis, reference_rms_dbfs=-12.0)
    assert out.shape == (4000,) and out.dtype == np.float32
    # The tone starts within the 2 ms pre-roll and is scaled to -12 dBFS RMS.
    assert np.max(np.abs(out[:16])) < 0.5 * np.max(np.abs(out))
    head = out[: int(0.1 * SR)]
    assert 20 * np.log10(np.sqrt(np.mean(head**2))) == pytest.approx(-12.0, abs=0.2)
    assert np.all(out[int(0.105 * SR) :] == 0.0)
    assert notes[0].startswith("skipped 0.298 s of leading silence")
    assert "shorter than the plant's 0.250 s: padded" in notes[1]
    assert "scaled by +" in notes[2] and "no level knob" in notes[2]


def test_analyze_refuses_silence_and_bad_arrays():
    with pytest.raises(ValueError, match="silent"):
        analyze(np.zeros(1000), SR)
    with pytest.raises(ValueError, match="finite"):
        analyze(np.array([0.1, np.nan]), SR)


@pytest.mark.parametrize("name", [n for n, t in TASKS.items() if t.level_invariant])
def test_a_level_invariant_task_ignores_level(name):
    task, plant = make_task(name), make_plant("filtered_saw")
    audio = plant.render(jnp.full((1,), 0.4), jax.random.PRNGKey(0), None)
    target = task.features(audio, SR)
    for gain in (0.03, 0.5, 2.0):
        assert float(task.distance(task.features(gain * audio, SR), target)) < 1e-3


def _match(tmp_path, audio: np.ndarray, plant: str, steps: int, capsys) -> tuple[dict, str, str]:
    path = tmp_path / "target.wav"
    sf.write(path, audio, SR, subtype="FLOAT")
    out = tmp_path / "out"
    code = main(["match", str(path), "--plant", plant, "--steps", str(steps), "-o", str(out)])
    captured = capsys.readouterr()
    report = json.loads((out / "knobs.json").read_text())
    assert code == (0 if report["success"] else 1)
    return report, captured.out, captured.err


def test_match_hears_a_tone_after_leading_silence(tmp_path, capsys):
    """0.3 s of silence before a 440 Hz tone, longer than the sine plant's 0.25 s: the
    onset is found and skipped, the pitch measured and the knob held there."""
    audio = np.concatenate([np.zeros(int(0.3 * SR)), _tone(440.0, 0.5)])
    report, out, err = _match(tmp_path, audio, "sine", 20, capsys)
    assert report["success"] and _cents(report["knobs"]["frequency"], 440.0) < 5.0
    assert report["analysis"]["onset_s"] == pytest.approx(0.3, abs=0.002)
    assert "skipped 0.298 s of leading silence" in err
    assert "target analysis: " in out and "pitch: 440.0" in out


def _filtered_saw(cutoff_hz: float, amplitude: float) -> np.ndarray:
    """A saw through scipy's Butterworth low-pass: a sound this project did not render."""
    saw = signal.sawtooth(2 * np.pi * 110.0 * np.arange(4000) / SR)
    sos = signal.butter(2, cutoff_hz, fs=SR, output="sos")
    out = signal.sosfilt(sos, saw)
    return amplitude * out / np.max(np.abs(out))


def test_a_quiet_recording_is_matched_like_a_loud_one(tmp_path, capsys):
    """The spectrum distance is level-sensitive and filtered_saw has no level knob, so a
    quiet file would pull the fit toward a dark, quiet cutoff; the level is fitted by
    alternation instead, so -30 dBFS and -6 dBFS give the same cutoff (the plant's saw
    and filter are not scipy's, so not necessarily 1200 Hz)."""
    fits = {}
    for peak_db in (-6.0, -30.0):
        report, _, err = _match(
            tmp_path, _filtered_saw(1200.0, 10 ** (peak_db / 20)), "filtered_saw", 60, capsys
        )
        fits[peak_db] = report["knobs"]["cutoff"]
    assert "scaled by +" in err and "to the plant's level" in err
    assert abs(np.log2(fits[-30.0] / fits[-6.0])) < 0.05, fits
    # The plant's saw and scipy's second-order filter differ, but not by an octave.
    assert abs(np.log2(fits[-30.0] / 1200.0)) < 1.0, fits


def test_a_short_recording_is_padded_and_the_note_says_so(tmp_path, capsys):
    report, _, err = _match(tmp_path, _tone(440.0, 0.1), "sine", 5, capsys)
    assert "shorter than the plant's 0.250 s: padded with silence" in err
    assert any("padded" in note for note in report["target_adjustments"])


def _gated_sine_with_echo(length: float, delay: float, gain: float) -> np.ndarray:
    """A 250 Hz sine gated on from 0.05 s for ``length`` s, plus its echo ``delay`` later at
    ``gain``: 20 ms windows hold whole periods and the echo whole periods later, so the
    level is flat where the note and its echo overlap (1 + gain, in phase)."""
    sr, onset = 16_000, 0.05
    t = np.arange(int(0.8 * sr)) / sr
    note = np.sin(2 * np.pi * 250.0 * t) * ((t >= onset) & (t < onset + length))
    lag = round(delay * sr)
    return note + gain * np.pad(note, (lag, 0))[: note.size]


@pytest.mark.parametrize(
    ("delay", "gain", "expected_s"),
    [
        # The echo returns after the note: the level falls to silence; the centred window's
        # power halves (-3 dB) where it is centred on the note's end.
        (0.3, 0.5, 0.0),
        # The echo (half as loud) overlaps the note's end: the power falls from (1.5)^2
        # to 0.5^2; -3 dB of the overlap's is reached with 7/16 of the window on the note,
        # 1/16 window (1.25 ms) after its end.
        (0.12, 0.5, 0.00125),
    ],
)
def test_first_note_end_is_the_gate_not_the_echo(delay, gain, expected_s):
    from ddsp_gym.analysis import first_note_end_s

    sr, onset, length = 16_000, 0.05, 0.2
    audio = _gated_sine_with_echo(length, delay, gain)
    analysis = analyze(audio, sr)
    end = first_note_end_s(audio, sr, analysis.onset_s)
    assert end == pytest.approx(onset + length + expected_s, abs=0.0011)  # one hop
    # The whole sound runs on through its echo: its span is not the note's length.
    assert analysis.sounding_s > length + delay - 0.02


def test_first_note_end_none_when_the_note_outlasts_the_file_and_bad_input():
    from ddsp_gym.analysis import first_note_end_s

    sr = 16_000
    tone = np.sin(2 * np.pi * 250.0 * np.arange(sr) / sr)
    assert first_note_end_s(tone, sr) is None  # the file's end is not the note's
    with pytest.raises(ValueError, match="drop_db"):
        first_note_end_s(tone, sr, drop_db=0.0)
    with pytest.raises(ValueError, match="beyond"):
        first_note_end_s(tone, sr, onset_s=2.0)
