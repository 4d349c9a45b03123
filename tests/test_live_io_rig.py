"""Live inputs for real on the software rig (JACK dummy driver): a 120 BPM MIDI clock sent
over a JACK MIDI port to a live JamPartner, and a live PerformerAssistant whose input is
amsynth's output captured over JACK. About 20 s in all."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.backends import audio
from ddsp_gym.live.clock import MidiClockSender, measure_against
from ddsp_gym.live.runner import open_session, run_session

pytestmark = pytest.mark.hardware

JAM = "ddsp_gym/JamPartner-v0"
PERFORMER = "ddsp_gym/PerformerAssistant-v0"
SENDER = "ddsp_gym-test-clock"
MAX_LOAD_PER_CORE = 4.5


def real_time_possible(wait_s: float = 90.0) -> None:
    """Wait for a machine so overloaded that its threads (the JACK dummy driver's,
    rtmidi's, the sender's) wake hundreds of ms late to calm down: seen at a 1-min load
    average of 11 on 2 cores, ticks arriving up to 480 ms late. Under CI (the rig's
    tests run alone there) a machine still that busy fails the test; elsewhere it skips."""
    cores = os.cpu_count() or 1
    deadline = time.monotonic() + wait_s
    while (load := os.getloadavg()[0]) > MAX_LOAD_PER_CORE * cores:
        if time.monotonic() > deadline:
            message = f"load average {load:.1f} on {cores} cores: no real-time timing to measure"
            if os.environ.get("CI"):
                pytest.fail(message)
            pytest.skip(message)
        time.sleep(5.0)


def test_a_120_bpm_midi_clock_is_followed_tempo_and_phase(rig_config, tmp_path):
    real_time_possible()
    sender = MidiClockSender(120.0, SENDER)
    try:
        session = open_session(
            JAM, backend="sim", agent="scripted", audio_out="system", hostapi="JACK",
            out_dir=tmp_path, clock=SENDER,
        )  # fmt: skip
        sender.start_song()  # the runner listens now: the song's tick 0 is a beat
        errors, tempos = [], []

        def probe(s) -> None:
            measured = measure_against(s.beat, sender.sent, time.monotonic())
            if measured is not None and len(sender.sent) >= 48:
                tempos.append(measured[0])
                errors.append(measured[1])

        summary = run_session(session, 7.0, on_tick=probe, tick_s=0.25)
        tracker = session.beat
        # The arrival latency, as measured here: arrival minus send time of each tick.
        latency = measure_against(tracker, sender.sent, tracker.last_tick_s)[2]
    finally:
        sender.close()
    print(
        f"clock latency on the rig: mean {1e3 * np.mean(latency):.1f} ms, "
        f"range {1e3 * np.min(latency):.1f}-{1e3 * np.max(latency):.1f} ms; "
        f"phase error after compensating {1e3 * tracker.latency_s:.1f} ms: "
        f"{1e3 * np.median(errors[-12:]):+.1f} ms median (last 3 s); "
        f"tempo {np.median(tempos[-12:]):.2f} BPM; load {os.getloadavg()[0]:.1f}"
    )
    assert summary["errors"] == [] and summary["stop_reason"] == "time up"
    clock = summary["clock"]
    assert clock["locked"] and len(tempos) >= 12
    # Over the last 3 s (a probe every 0.25 s), as the runner played it: the tempo...
    assert np.median(tempos[-12:]) == pytest.approx(120.0, rel=0.01)
    assert float(session.core.state.task.clock.tempo_bpm) == pytest.approx(120.0, rel=0.015)
    # ...and locked: the predicted beats stay put, within a tick (1/24 beat, 21 ms) of
    # the sent ones. results/live_clock.md: -5 to +2 ms in most runs at a load of 6-8
    # on 2 cores; a tick lost to JACK now and then moves a run's phase by a tick.
    last = np.asarray(errors[-12:])
    assert abs(np.median(last)) < 0.021
    assert np.subtract(*np.percentile(last, [75, 25])) < 0.010
    assert clock["dropped_ticks"] <= 2
    log = [json.loads(line) for line in (tmp_path / "knobs.jsonl").read_text().splitlines()]
    assert len(log) == summary["blocks"] and "beat_alignment" in log[-1]


def test_performer_processes_amsynth_captured_live(rig_synth, tmp_path):
    from ddsp_gym.backends.midi import MidiOutput, note_on

    with MidiOutput("amsynth:midi_in", "jack", "ddsp_gym-test-notes") as synth:
        synth.send(note_on(1, 57, 100))
        session = open_session(
            PERFORMER, backend="sim", agent="scripted", audio_out="system", hostapi="JACK",
            out_dir=tmp_path, live_input="amsynth",
        )  # fmt: skip
        summary = run_session(session, 4.0)
        synth.panic()
    assert summary["errors"] == [] and summary["stop_reason"] == "time up"
    assert summary["xruns"] == (
        summary["late_blocks"] + summary["device_xruns"] + summary["input_xruns"]
    )
    assert summary["input_xruns"] == summary["input_overruns"] + summary["input_underruns"]
    capture = session.capture
    # Captured in real time at JACK's rate (48 kHz): about the session's length of it.
    assert capture.frames_in / capture.device_rate > 3.0
    played, rate = sf.read(tmp_path / "live.wav")
    assert rate == 16_000 and audio.rms_dbfs(played) > -45.0  # the synth, processed
    print(
        f"performer live on the rig: {summary['blocks']} blocks, xruns {summary['xruns']} "
        f"(input over/under {summary['input_overruns']}/{summary['input_underruns']})"
    )
