"""The hardware backend without hardware: signal hygiene, block-driven takes, retries, errors.

Stand-ins replace the MIDI port and the audio stream, so xruns, silence,
timeouts and latency can be staged exactly. The same code runs against the
real rig in test_hardware_rig.py.
"""

from __future__ import annotations

import gc
import sys
import threading

import numpy as np
import pytest
from scipy import signal

from ddsp_gym.backends import audio, hardware, ownership
from ddsp_gym.backends.errors import (
    DeviceLostError,
    HardwareError,
    HardwareTimeoutError,
    SilentTakeError,
    XrunError,
)
from ddsp_gym.backends.hardware import HardwareBackend, HardwareConfig
from ddsp_gym.plants import make_plant

SR = 48_000


# ---- pure signal hygiene ---------------------------------------------------------------


def test_dc_removal_uses_the_silent_lead_in_when_there_is_one():
    rng = np.random.default_rng(0)
    tone = np.sin(2 * np.pi * 440 * np.arange(4800) / SR)
    x = np.concatenate([np.zeros(1024), tone]) + 0.1
    np.testing.assert_allclose(audio.remove_dc(x, reference=1024)[1024:], tone, atol=1e-6)
    long_tone = np.sin(2 * np.pi * 440 * np.arange(SR // 2) / SR)
    noisy = long_tone + 0.05 + 0.001 * rng.standard_normal(long_tone.size)
    filtered = audio.remove_dc(noisy, reference=0, sample_rate=SR)
    middle = slice(4800, -4800)
    assert abs(np.mean(filtered[middle])) < 2e-3  # 10 Hz high-pass: the offset is gone
    # the 440 Hz tone passes with its phase intact (zero-phase filter)
    assert np.corrcoef(filtered[middle], long_tone[middle])[0, 1] > 0.999


def test_levels_in_dbfs():
    x = 0.5 * np.sin(2 * np.pi * 100 * np.arange(SR) / SR)
    assert audio.peak_dbfs(x) == pytest.approx(20 * np.log10(0.5), abs=1e-3)
    assert audio.rms_dbfs(x) == pytest.approx(20 * np.log10(0.5 / np.sqrt(2)), abs=1e-3)
    assert audio.peak_dbfs(np.zeros(10)) == -np.inf


def test_onset_finds_the_first_sample_of_a_note():
    t = np.arange(SR // 4) / SR
    note = np.sin(2 * np.pi * 130.8 * t) * np.minimum(t / 0.002, 1.0)  # 2 ms attack
    for delay in (0, 1024, 5000):
        x = np.concatenate([np.zeros(delay), note])
        assert audio.onset_index(x) in (delay, delay + 1)
    noisy = np.concatenate([np.zeros(3000), note]) + 1e-3 * np.random.default_rng(
        1
    ).standard_normal(3000 + note.size)
    assert abs(audio.onset_index(noisy) - 3000) < 48  # within 1 ms under -50 dB noise
    assert audio.onset_index(np.zeros(100)) is None


def test_cross_correlation_recovers_an_exact_delay():
    burst = np.random.default_rng(2).standard_normal(4800)
    for delay in (0, 1, 1024, 2047):
        received = np.concatenate([np.zeros(delay), 0.3 * burst, np.zeros(500)])
        lag, quality = audio.xcorr_lag(burst, received, 3000)
        assert lag == delay and quality == pytest.approx(1.0, abs=1e-6)


def test_limiter_keeps_every_peak_under_the_ceiling_without_distortion():
    x = np.sin(2 * np.pi * 50 * np.arange(SR) / SR) * np.linspace(0, 3.0, SR)
    limited, gain_db = audio.limit_peak(x, -6.0)
    assert np.max(np.abs(limited)) <= 10 ** (-6 / 20) + 1e-7
    assert gain_db == pytest.approx(-6.0 - 20 * np.log10(np.max(np.abs(x))), abs=1e-4)
    np.testing.assert_allclose(limited, x * 10 ** (gain_db / 20), atol=1e-6)
    quiet, gain_db = audio.limit_peak(0.1 * x / 3.0, -6.0)
    assert gain_db == 0.0


def test_resampling_48k_to_16k_keeps_a_tone():
    x = np.sin(2 * np.pi * 1000 * np.arange(SR) / SR)
    y = audio.resample(x, SR, 16_000)
    assert y.shape == (16_000,)
    freqs, power = signal.periodogram(y, 16_000)
    assert freqs[np.argmax(power)] == pytest.approx(1000, abs=1)


# ---- block-driven takes ------------------------------------------------------------------


def drive(job: audio.CaptureJob, source: np.ndarray, block: int, xrun_blocks=()) -> np.ndarray:
    """Run ``job`` like an audio callback would; returns what it played out."""
    played = []
    start = 0
    while not job.done.is_set():
        indata = source[start : start + block, None]
        if indata.shape[0] < block:
            indata = np.pad(indata, ((0, block - indata.shape[0]), (0, 0)))
        outdata = np.zeros((block, 1), np.float32)
        job.process(indata, outdata, block, start // block in xrun_blocks)
        played.append(outdata[:, 0])
        start += block
    return np.concatenate(played)


def test_events_fire_at_the_nearest_block_start_and_all_fire_by_the_end():
    fired = []
    events = [(frame, lambda f=frame: fired.append(f)) for frame in (1000, 0, 300, 100)]
    job = audio.CaptureJob(1024, 1, None, events)
    source = np.arange(2048, dtype=np.float32)
    blocks_seen = []

    def record(f):
        blocks_seen.append((f, job.position))

    job.events = [(f, lambda f=f: record(f)) for f, _ in job.events]
    drive(job, source, 256)
    # 0 and 100 -> block 0; 300 -> block at 256; 1000 is past the last block start -> at the end
    assert [f for f, _ in blocks_seen] == [0, 100, 300, 1000]
    assert [p for _, p in blocks_seen] == [0, 0, 256, 1024]
    np.testing.assert_array_equal(job.audio[:, 0], source[:1024])
    with pytest.raises(ValueError, match="outside"):
        audio.CaptureJob(100, 1, None, [(100, lambda: None)])


def test_playback_goes_out_in_the_same_blocks_and_xruns_are_counted():
    program = np.linspace(-1, 1, 700, dtype=np.float32)[:, None]
    job = audio.CaptureJob(1024, 1, program, [])
    played = drive(job, np.zeros(2048, np.float32), 256, xrun_blocks={2})
    np.testing.assert_array_equal(played[:700], program[:, 0])
    assert np.all(played[700:] == 0)
    assert job.xruns == 1


def test_a_stalled_stream_times_out_with_a_clear_error():
    engine = object.__new__(audio.AudioEngine)  # no device: the callback never runs
    engine.config = audio.StreamConfig(input_device="nothing")
    engine._open_stream, engine._callbacks = object(), audio._Callbacks()
    engine.samplerate, engine.channels = SR, 1
    with pytest.raises(HardwareTimeoutError, match="delivered no blocks at all"):
        engine.capture(480, timeout=0.2)
    assert engine._callbacks.job is None


# ---- ownership: devices are closed by their owner, never by the garbage collector ------


class FakeResource:
    def __init__(self, log: list, name: str, is_midi: bool = False):
        self.log, self.name, self.is_midi = log, name, is_midi

    def panic(self):
        self.log.append(f"panic {self.name}")

    def close(self):
        self.log.append(f"close {self.name}")


class Owner:
    pass


def test_a_dropped_owner_queues_its_resource_and_reap_closes_it_in_order():
    log = []
    owners = [Owner(), Owner(), Owner()]
    ownership.adopt(owners[0], FakeResource(log, "port", is_midi=True))
    ownership.adopt(owners[1], FakeResource(log, "stream"))
    kept = FakeResource(log, "kept")
    ownership.adopt(owners[2], kept)
    owners[0].cycle = owners[0]  # only the cyclic collector frees this one
    del owners[:2]
    gc.collect()
    assert log == []  # the collector closes nothing itself...
    assert ownership.reap() == 2  # ...the next device operation does: silence, stream, port
    assert log == ["panic port", "close stream", "close port"]
    assert ownership.reap() == 0
    ownership.release(kept)  # its owner closed it


def test_reap_waits_for_a_python_thread_when_called_from_an_audio_thread():
    log = []
    owner = Owner()
    ownership.adopt(owner, FakeResource(log, "stream"))
    del owner
    gc.collect()
    counts = []

    def audio_callback():
        ownership.mark_audio_thread()
        counts.append(ownership.reap())
        ownership.close_all()

    thread = threading.Thread(target=audio_callback)
    thread.start()
    thread.join()
    assert counts == [0] and log == []
    assert ownership.reap() == 1 and log == ["close stream"]


def test_exit_closes_what_is_still_open_and_runs_before_portaudio_shuts_down(monkeypatch):
    log = []
    owner = Owner()
    ownership.adopt(owner, FakeResource(log, "port", is_midi=True))
    ownership.adopt(owner, FakeResource(log, "stream"))
    ownership.close_all()
    assert log == ["panic port", "close stream", "close port"]
    registered = []
    monkeypatch.setattr(ownership.atexit, "register", registered.append)
    monkeypatch.setattr(ownership.atexit, "unregister", lambda f: None)
    ownership.register_exit_handler()  # again after sounddevice's import: runs first (LIFO)
    assert registered == [ownership.close_all]


# ---- the backend with stand-in devices ------------------------------------------------------


class FakeMidi:
    port_name = "fake:midi_in"

    def __init__(self):
        self.sent, self.panics, self.alive, self.closed = [], 0, True, False

    def send(self, message):
        self.sent.append(list(message))

    def send_all(self, messages):
        for m in messages:
            self.send(m)

    def panic(self):
        self.panics += 1

    def close(self):
        self.closed = True

    def port_exists(self):
        return self.alive


class FakeEngine:
    """Answers captures from a script: (sound(n) -> array, xruns) per take, or an exception."""

    samplerate = SR
    input_info = {"name": "fake in"}
    output_info = None

    def __init__(self, script):
        self.script = list(script)
        self.played = []
        self.closed = False
        self.xruns_total = 0

    def capture(self, n_frames, playback=None, events=(), timeout=None):
        item = self.script.pop(0) if len(self.script) > 1 else self.script[0]
        if isinstance(item, Exception):
            raise item
        sound, xruns, *between = item  # between: xruns while the knobs settled
        self.xruns_total += sum(between)
        for _, action in events:
            action()
        self.played.append(playback)
        job = audio.CaptureJob(n_frames, 1)
        job.audio[:, 0] = sound(n_frames, playback)
        job.xruns = xruns
        self.xruns_total += xruns
        return job

    def close(self):
        self.closed = True


def note(delay: int):
    """A 220 Hz note starting ``delay`` frames into the take."""

    def sound(n, playback):
        t = np.arange(n - delay) / SR
        return np.concatenate([np.zeros(delay), 0.3 * np.sin(2 * np.pi * 220 * t)])

    return sound


def silence(n, playback):
    return np.zeros(n)


def echo(delay: int):
    def sound(n, playback):
        out = np.zeros(n)
        playback = np.asarray(playback).reshape(-1)
        out[delay : delay + playback.size] = playback[: n - delay]
        return out

    return sound


def backend(script, tmp_path, midi=None, **options):
    plant = make_plant("filtered_saw")
    defaults = dict(
        midi_out="fake", audio_in="fake", knob_map="amsynth_cutoff",
        latency_store=str(tmp_path / "latency.json"),
    )  # fmt: skip
    midi = midi or FakeMidi()
    return HardwareBackend(plant, {**defaults, **options}, devices=(midi, FakeEngine(script)))


def test_latency_is_measured_from_the_note_onset_stored_and_compensated(tmp_path):
    hw = backend([(note(1024), 0)], tmp_path)
    assert hw.latency_frames in (1024, 1025)  # the note's first sample is a zero crossing
    take = hw.render(np.array([0.5], np.float32))
    # aligned: the note starts at sample 0 of the 16 kHz take
    assert take.audio.shape == (4000,)
    expected = 0.3 * np.sin(2 * np.pi * 220 * np.arange(4000) / 16_000)
    np.testing.assert_allclose(take.audio[50:3900], expected[50:3900], atol=0.02)
    assert take.info()["latency_ms"] == pytest.approx(hw.latency_frames / 48)
    # the next backend on this set-up reads the stored value instead of measuring
    again = backend([(note(5), 0)], tmp_path)
    assert again.latency_frames == hw.latency_frames


def test_knobs_go_out_before_the_note_and_info_reports_the_value_sent(tmp_path):
    midi = FakeMidi()
    hw = backend([(note(0), 0)], tmp_path, midi=midi, latency=0.0)
    # opening resets controllers (a bent pitch left by someone else) before the init patch
    assert midi.sent.index([0xB0, 121, 0]) < midi.sent.index([0xB0, 7, 45])
    midi.sent.clear()
    take = hw.render(np.array([0.25], np.float32))
    cc = [m for m in midi.sent if m[0] == 0xB0 and m[1] == 74]
    assert cc and midi.sent.index(cc[-1]) < midi.sent.index([0x90, 45, 127])
    assert [0x80, 45, 0] in midi.sent
    assert take.info()["sent"] == {"cutoff": cc[-1][2]}
    assert take.knobs[0] == pytest.approx(take.sent["cutoff"].unit)


def test_xruns_are_retried_a_bounded_number_of_times(tmp_path):
    hw = backend([(note(0), 1), (note(0), 2), (note(0), 0)], tmp_path, latency=0.0)
    take = hw.render(np.array([0.5], np.float32))
    assert take.attempts == 3
    stuck = backend([(note(0), 1)], tmp_path, latency=0.0, max_retries=2)
    panics = stuck.midi.panics
    with pytest.raises(XrunError, match="all 3 attempts"):
        stuck.render(np.array([0.5], np.float32))
    assert stuck.faulted and stuck.midi.panics >= panics + 3


def test_an_xrun_while_the_knobs_settle_voids_the_take_and_resends_them(tmp_path):
    # A device that misses an audio period also misses that period's MIDI: the knob
    # change may be lost although the recording itself ran clean.
    midi = FakeMidi()
    hw = backend([(note(0), 0, 1), (note(0), 0, 0)], tmp_path, midi=midi, latency=0.0)
    midi.sent.clear()
    take = hw.render(np.array([0.5], np.float32))
    assert take.attempts == 2
    assert len([m for m in midi.sent if m[:2] == [0xB0, 74]]) == 2


def test_a_late_note_is_retried_and_latency_is_the_earliest_onset(tmp_path):
    # One note in three misses its MIDI period (a period late): the latency is the earliest.
    hw = backend([(note(2048), 0), (note(1024), 0), (note(1024), 0)], tmp_path)
    assert hw.latency_frames in (1024, 1025)
    hw.engine.script = [(note(2048), 0), (note(1024), 0)]
    take = hw.render(np.array([0.5], np.float32))
    assert take.attempts == 2  # the late take was not used: it would be 21 ms off
    hw.engine.script = [(note(2048), 0)]
    with pytest.raises(HardwareError, match=r"out of time \(late, late, late, late\)"):
        hw.render(np.array([0.5], np.float32))


def test_a_take_that_starts_with_the_last_note_still_ringing_is_retried(tmp_path):
    midi = FakeMidi()
    # 1024 frames of latency: the lead-in must be silent, else a previous note rang on
    hw = backend([(note(0), 0), (note(1024), 0)], tmp_path, midi=midi, latency=1024 / 48)
    midi.sent.clear()
    take = hw.render(np.array([0.5], np.float32))
    assert take.attempts == 2
    assert midi.sent.count([0xB0, 120, 0]) == 2  # all sound off before each attempt
    ringing = backend([(note(0), 0)], tmp_path, latency=1024 / 48, max_retries=1)
    with pytest.raises(HardwareError, match=r"out of time \(ringing, ringing\).*CC 120"):
        ringing.render(np.array([0.5], np.float32))


def test_a_silent_take_is_an_error_that_says_what_to_check(tmp_path):
    midi = FakeMidi()
    hw = backend([(silence, 0)], tmp_path, midi=midi, latency=0.0)
    with pytest.raises(SilentTakeError, match="take was silent.*cable plugged in"):
        hw.render(np.array([0.5], np.float32))
    midi.alive = False
    with pytest.raises(DeviceLostError, match="fake:midi_in' has gone away before.*reset"):
        hw.render(np.array([0.5], np.float32))
    assert hw.faulted and midi.panics > 0
    with pytest.raises(SilentTakeError, match="latency measurement failed"):
        backend([(silence, 0)], tmp_path, latency="measure")


# ---- a take is checked whole before it is scored --------------------------------------------


def test_dropouts_are_gaps_of_exact_zeros_inside_a_sound():
    x = np.ones(1000)
    assert hardware.dropout_runs(x, 64) == []
    x[100:300] = 0.0
    x[500:530] = 0.0  # shorter than the limit: a zero crossing or two, not a dropout
    assert hardware.dropout_runs(x, 64) == [(100, 200)]
    x[900:] = 0.0  # silence after the sound (and before it) is no gap
    assert hardware.dropout_runs(np.concatenate([np.zeros(500), x]), 64) == [(600, 200)]
    assert hardware.dropout_runs(x, 0) == []


def test_quiet_takes_are_judged_against_the_noise_and_the_twin():
    assert hardware.quiet_problem(-20.0, -18.0, -90.0, 40.0) is None
    assert "within 6 dB of the input's own noise" in hardware.quiet_problem(-72, -70, -75, 40)
    leak = hardware.quiet_problem(-62.0, -15.0, None, 40.0)
    assert "47 dB below what the twin plays" in leak
    # A gain knob at -48 dB is quiet and expected to be: no error.
    assert hardware.quiet_problem(-66.0, -64.0, None, 40.0) is None
    assert hardware.quiet_problem(-62.0, -15.0, None, None) is None  # margin off


def gap(delay: int, start: int, length: int):
    """A note with ``length`` frames of exact zeros from ``start``: a lost audio period."""

    def sound(n, playback):
        x = note(delay)(n, playback)
        x[start : start + length] = 0.0
        return x

    return sound


def test_a_dropout_in_the_note_is_retried_then_raised(tmp_path):
    hw = backend([(gap(0, 2000, 1024), 0), (note(0), 0)], tmp_path, latency=0.0)
    assert hw.render(np.array([0.5], np.float32)).attempts == 2
    hw.engine.script = [(gap(0, 2000, 1024), 0)]
    with pytest.raises(XrunError, match=r"\(dropout, dropout, dropout, dropout\).*exact zeros"):
        hw.render(np.array([0.5], np.float32))


class VanishingMidi(FakeMidi):
    """A synth that crashes when its note starts: the port is gone by the end of the take."""

    def send(self, message):
        super().send(message)
        if message[0] & 0xF0 == 0x90:
            self.alive = False


def test_a_synth_that_crashes_mid_take_fails_that_take(tmp_path):
    midi = VanishingMidi()
    hw = backend([(gap(0, 3000, 100_000), 0)], tmp_path, midi=midi, latency=0.0)
    with pytest.raises(DeviceLostError, match="has gone away during the take.*reset"):
        hw.render(np.array([0.5], np.float32))
    assert hw.faulted and midi.panics > 0


def test_a_percussive_note_that_ends_before_its_note_off_is_a_take(tmp_path):
    # Digital silence from mid-gate on, the port still there after a re-check: no crash.
    hw = backend([(gap(0, 3000, 100_000), 0)], tmp_path, latency=0.0)
    take = hw.render(np.array([0.5], np.float32))
    assert take.attempts == 1 and take.peak_dbfs > -20


def test_a_leaking_synth_at_volume_zero_is_silent(tmp_path):
    def leak(n, playback):
        return 10 ** (-57 / 20) * note(0)(n, playback) / 0.3  # peak -57 dBFS

    hw = backend([(leak, 0)], tmp_path, latency=0.0)  # twin: a saw at -12 dBFS or so
    with pytest.raises(SilentTakeError, match=r"dB below what the twin plays.*volume up"):
        hw.render(np.array([0.5], np.float32))
    # Measured by hw calibrate: the device is 50 dB quieter than its twin on purpose.
    hw.remember(level_offset_db=-50.0)
    assert hw.render(np.array([0.5], np.float32)).peak_dbfs < -55
    hw.remember(input_noise_dbfs=-60.0)  # ...but an input this noisy hides such a take
    with pytest.raises(SilentTakeError, match="input's own noise"):
        hw.render(np.array([0.5], np.float32))
    stored = hardware.store.read_entry(hw._store_path(), hw.store_key())
    assert stored["level_offset_db"] == -50.0 and stored["input_noise_dbfs"] == -60.0


def test_a_timeout_silences_the_synth_and_marks_the_backend_faulted(tmp_path):
    midi = FakeMidi()
    hw = backend([(note(0), 0)], tmp_path, midi=midi, latency=0.0)
    hw.engine.script = [HardwareTimeoutError("stalled")]
    panics = midi.panics
    with pytest.raises(HardwareTimeoutError, match="stalled"):
        hw.render(np.array([0.5], np.float32))
    assert hw.faulted and midi.panics == panics + 1


def test_effect_mode_limits_the_program_and_measures_latency_by_correlation(tmp_path):
    plant = make_plant("gain")
    program = np.random.default_rng(3).uniform(-2, 2, plant.n_samples).astype(np.float32)
    hw = HardwareBackend(
        plant,
        dict(mode="effect", audio_in="fake", audio_out="fake", max_output_dbfs=-6.0,
             latency="measure", latency_store=str(tmp_path / "l.json")),
        devices=(None, FakeEngine([(echo(700), 0)])),
    )  # fmt: skip
    assert hw.latency_frames == 700
    take = hw.render(np.array([0.5], np.float32), program)
    played = hw.engine.played[-1]
    assert np.max(np.abs(played)) <= 10 ** (-6 / 20) + 1e-7
    assert take.limiter_gain_db < -12
    # after compensation the take lines up with the (limited) program: lag 0
    expected = program * 10 ** (take.limiter_gain_db / 20)
    lag, quality = audio.xcorr_lag(expected[:3000], take.audio, 50)
    assert lag == 0 and quality > 0.95
    with pytest.raises(ValueError, match="pass input="):
        hw.render(np.array([0.5], np.float32), None)


@pytest.mark.parametrize(
    "options, message",
    [
        ({}, "needs audio_in"),
        ({"audio_in": "x"}, "instrument mode needs midi_out"),
        ({"audio_in": "x", "midi_out": "y"}, "needs a knob_map"),
        ({"audio_in": "x", "mode": "effect"}, "effect mode needs audio_out"),
        ({"audio_in": "x", "mode": "sampler"}, "mode must be one of"),
        ({"audio_in": "x", "midi_api": "usb", "midi_out": "y", "knob_map": "amsynth"}, "midi_api"),
        ({"audio_in": "x", "midi_out": "y", "knob_map": "amsynth", "latency": "soon"}, "latency"),
        ({"audio_in": "x", "colour": 1}, r"unknown hardware option\(s\) \['colour'\]"),
        ({"audio_in": "x", "mode": "effect", "audio_out": "y", "max_output_dbfs": 3}, "<= 0"),
    ],
)
def test_bad_hardware_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        HardwareConfig.from_options(options)


def test_missing_optional_dependencies_name_the_extra(monkeypatch):
    from ddsp_gym.backends import validate_backend
    from ddsp_gym.backends.errors import HardwareDependencyError

    monkeypatch.setitem(sys.modules, "rtmidi", None)  # as if python-rtmidi were not installed
    with pytest.raises(HardwareDependencyError, match=r"pip install 'ddsp_gym\[hardware\]'"):
        validate_backend("hardware")
    monkeypatch.delitem(sys.modules, "rtmidi")
    monkeypatch.setitem(sys.modules, "sounddevice", None)
    with pytest.raises(HardwareDependencyError, match="sounddevice and the PortAudio library"):
        audio.list_audio_devices()
    assert validate_backend("sim") == "sim"  # the sim never needs them


# ---- take noise in the success rule -------------------------------------------------------


def test_the_success_threshold_is_the_larger_of_the_sims_and_k_times_the_take_noise():
    assert hardware.success_rule(0.3, None, 2.0).decided_by == "sim"
    rule = hardware.success_rule(0.3, 0.2, 2.0)
    assert (rule.threshold, rule.decided_by) == (pytest.approx(0.4), "noise")
    rule = hardware.success_rule(0.3, 0.1, 2.0)
    assert (rule.threshold, rule.decided_by, rule.noise_floor) == (0.3, "sim", 0.1)
    report = rule.report(0.25, False)
    assert report["threshold"] == 0.3 and report["sim_success"] is False


def test_takes_per_query_averages_aligned_takes_in_the_audio_domain(tmp_path):
    rng = np.random.default_rng(4)

    def noisy(n, playback):
        return note(0)(n, playback) + 0.01 * rng.standard_normal(n)

    one = backend([(noisy, 0)], tmp_path, latency=0.0)
    four = backend([(noisy, 0)], tmp_path, latency=0.0, takes_per_query=4)
    clean = note(0)(4000 * 3, None)[::3][:4000]  # 220 Hz at 16 kHz, as aligned
    take1, take4 = (hw.render(np.array([0.5], np.float32)) for hw in (one, four))
    err1, err4 = (np.std(t.audio[100:3900] - clean[100:3900]) for t in (take1, take4))
    assert take4.takes == 4 and take4.attempts == 4 and take4.info()["takes"] == 4
    assert err4 < 0.65 * err1  # about 1/sqrt(4) of the noise is left


def core_of(env_id: str, **kwargs):
    """The functional core an env hands its backend (no devices opened)."""
    import gymnasium as gym

    from ddsp_gym.backends.base import EnvCore
    from ddsp_gym.envs.config import EnvConfig, build_functional
    from ddsp_gym.rewards import TaskReward

    spec_kwargs = {k: v for k, v in gym.spec(env_id).kwargs.items() if not k.endswith("_defaults")}
    fenv, params = build_functional(EnvConfig(**{**spec_kwargs, **kwargs}))
    return EnvCore(fenv, params, TaskReward())


def tone(hz: float):
    def sound(n, playback):
        return 0.3 * np.sin(2 * np.pi * hz * np.arange(n) / SR)

    return sound


@pytest.mark.parametrize("noise_floor, success", [(None, False), (5.0, True)])
def test_a_device_step_succeeds_by_the_noise_aware_threshold(tmp_path, noise_floor, success):
    import jax

    import ddsp_gym  # noqa: F401  (registers the envs)

    core = core_of("ddsp_gym/CutoffSweeper-v1", random_start=False, control="absolute")
    # Target and start: a 220 Hz tone; every step: 330 Hz, far off by the sim's 0.2.
    script = [(tone(220), 0), (tone(220), 0), (tone(330), 0)]
    hw = backend(script, tmp_path, latency=0.0, noise_floor=noise_floor)
    start = hw.start_episode(core, jax.random.PRNGKey(0))
    on_target = 2.0 * np.asarray(start.state.target_knobs) - 1.0  # the hidden knob itself
    out = hw.evaluate(core, start.state, on_target, False, True)
    rule = out.info["hardware"]["success_rule"]
    assert out.distance > 0.2 and rule["sim_threshold"] == pytest.approx(0.2)
    assert out.success is success and rule["decided_by"] == ("noise" if success else "sim")
    assert rule["threshold"] == pytest.approx(0.2 if noise_floor is None else 10.0)
    # The sim's own verdict, in knob space (param_tolerance), is reported, not used: the
    # knobs match, the sound does not.
    assert rule["sim_success"] is True


def test_calibration_stores_the_take_noise_where_the_success_rule_finds_it(tmp_path):
    from ddsp_gym.backends.calibrate import repeat_distances

    core = core_of("ddsp_gym/CutoffSweeper-v1")
    task = core.fenv.task
    takes = [note(0)(4000, None), note(0)(4000, None), 1.1 * note(0)(4000, None)]
    distances = repeat_distances(task, takes, 16_000)
    assert len(distances) == 3 and distances[0] == pytest.approx(0.0, abs=1e-6)
    assert distances[1] > 0.0
    hw = backend([(note(0), 0)], tmp_path, latency=0.0)
    assert hw.noise_floor(task) is None
    key = hardware.take_noise_key(task, 1)
    hw.remember(take_noise={key: {"median": 0.15}})
    assert key.startswith("SpectrumMatch(") and hw.noise_floor(task) == 0.15
    again = backend([(note(0), 0)], tmp_path, latency=0.0)  # a later session reads it
    assert again.noise_floor(task) == 0.15
    assert again.success_rule(core).threshold == pytest.approx(0.3)
    assert (
        backend([(note(0), 0)], tmp_path, latency=0.0, takes_per_query=2).noise_floor(task) is None
    )  # measured for one take per query, not two
