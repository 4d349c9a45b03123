"""Live mode for real on the software rig (JACK dummy driver + amsynth): a 60-s session
through the command, then the two ways a session can end badly: SIGKILL (no Python code
of the runner runs; its watchdog must silence the synth) and Ctrl-C (a clean stop).

"Silent" is checked from outside the runner: this process captures amsynth's output
after the runner is gone, and its peak must be below -60 dBFS (a held drone note peaks
near -6 dBFS). About 90 s in all, most of it the 60-s session.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ddsp_gym.backends import audio
from ddsp_gym.live.hardware import SILENT_DBFS
from ddsp_gym.live.watchdog import PANIC_WINDOW_S

pytestmark = pytest.mark.hardware

DRONE = "ddsp_gym/Drone-v0"
START_TIMEOUT_S = 60.0  # JAX import and compile on a busy 2-core machine


@pytest.fixture
def synth(rig_synth):
    return rig_synth


def live_command(out: Path, seconds: float, *extra: str) -> list[str]:
    return [
        sys.executable, "-m", "ddsp_gym.cli", "live", DRONE, "--backend", "hardware",
        "--seconds", str(seconds), "--out", str(out), *extra,
    ]  # fmt: skip


def synth_peak_dbfs(seconds: float = 0.5) -> float:
    """Capture amsynth's output from this process: its peak level in dBFS."""
    with audio.AudioEngine(audio.StreamConfig(input_device="amsynth")) as engine:
        take = engine.capture(int(seconds * engine.samplerate))
    return audio.peak_dbfs(take.audio.mean(axis=1))


def wait_until_sounding(process: subprocess.Popen, log: Path, blocks: int = 15) -> list[dict]:
    """Wait until the runner has logged ``blocks`` blocks in which the synth was heard."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the runner exited early: {process.returncode}"
        if log.is_file():
            records = [json.loads(line) for line in log.read_text().splitlines() if line]
            if len(records) >= blocks:
                return records
        time.sleep(0.2)
    pytest.fail("the live runner did not start playing in time")


def watchdogs() -> list[int]:
    """Process ids of running note watchdogs."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes()
            except OSError:
                continue
            if b"ddsp_gym.live.watchdog" in cmdline:
                found.append(int(proc.name))
    return found


def test_a_60_s_session_reports_xruns_records_and_leaves_the_synth_silent(synth, tmp_path):
    out = tmp_path / "live"
    report = tmp_path / "live_rig.md"
    result = subprocess.run(
        live_command(out, 60, "--report", str(report)),
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "time up" and summary["errors"] == []
    # The counts are reported (an honest number, whatever it is) and add up.
    assert isinstance(summary["xruns"], int) and summary["xruns"] >= 0
    assert summary["xruns"] == summary["late_blocks"] + summary["device_xruns"]
    assert isinstance(summary["server_xruns"], int)
    wav, rate = sf.read(out / "live.wav")
    assert rate == 16_000
    # The stream's clock is the sound card's: the dummy driver skips periods at its
    # xruns, so a loaded machine plays a little less than the wall clock's 60 s.
    assert 55.0 < len(wav) / rate < 60.5
    assert len(wav) == 1024 * summary["blocks"]
    assert audio.rms_dbfs(wav) > -40.0  # the drone was heard, not silence
    log = [json.loads(line) for line in (out / "knobs.jsonl").read_text().splitlines()]
    assert len(log) == summary["blocks"] == len(wav) // 1024
    pitches = {round(r["knobs"]["pitch"], 1) for r in log}
    assert len(pitches) > 10  # the agent moved the knobs
    assert all(np.isfinite(r["reward"]) for r in log)
    # Silent after the stop: as the runner heard it, and as we hear it now.
    assert summary["after_stop_peak_dbfs"] < SILENT_DBFS
    assert synth_peak_dbfs() < SILENT_DBFS
    assert "xruns" in report.read_text()
    assert not watchdogs()


def test_sigkill_of_the_runner_leaves_no_stuck_note(synth, tmp_path):
    out = tmp_path / "live"
    process = subprocess.Popen(
        live_command(out, 60), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        records = wait_until_sounding(process, out / "knobs.jsonl")
        assert max(r["loudness_db"] for r in records[-5:]) > -40.0  # the note is sounding
        assert watchdogs()
        os.kill(process.pid, signal.SIGKILL)  # no finally, no handler, no atexit runs
        process.wait(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # The watchdog panics at once and keeps at it for PANIC_WINDOW_S (a killed JACK
    # client stalls the graph until jackd evicts it), then leaves.
    deadline = time.monotonic() + PANIC_WINDOW_S + 5.0
    while watchdogs() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not watchdogs()
    assert synth_peak_dbfs() < SILENT_DBFS


def test_ctrl_c_stops_cleanly_with_all_notes_off(synth, tmp_path):
    out = tmp_path / "live"
    process = subprocess.Popen(
        live_command(out, 60), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        wait_until_sounding(process, out / "knobs.jsonl")
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130, stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["stop_reason"] == "interrupted (Ctrl-C)" and summary["errors"] == []
    assert summary["after_stop_peak_dbfs"] < SILENT_DBFS
    wav, rate = sf.read(out / "live.wav")  # closed properly: readable, every block in it
    assert len(wav) == 1024 * summary["blocks"] > 0
    assert synth_peak_dbfs() < SILENT_DBFS
