"""The hardware backend: a real synth played live, knob targets out as MIDI (a knob map's
CCs), its audio captured and scored; the note watchdog process guards every note-on, and
the stop panics until the synth is heard to be silent."""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.live import watchdog
from ddsp_gym.live.agents import Agent
from ddsp_gym.live.buffers import SampleFifo, StreamResampler, dbfs
from ddsp_gym.live.core import BlockCore
from ddsp_gym.live.devices import CallbackStream, device_rate
from ddsp_gym.live.session import LiveError, LiveSession

# The synth each plant plays by default on the hardware backend (a knob map per plant).
DEFAULT_KNOB_MAPS = {"drone": "amsynth_drone"}
DEFAULT_MIDI_OUT = "amsynth:midi_in"
DEFAULT_AUDIO_IN = "amsynth"
AFTER_STOP_S = 0.5  # how long the capture runs on after the panic
STOP_PANICS = 4  # panics sent at most while the synth is still heard
SILENT_DBFS = -60.0  # a synth quieter than this after the stop counts as silent


class Watchdog:
    """The note watchdog process (:mod:`ddsp_gym.live.watchdog`) and our pipe to it."""

    def __init__(self, port: str, api: str = "auto", heartbeat_s: float = 2.0) -> None:
        command = [
            sys.executable, "-m", "ddsp_gym.live.watchdog", port,
            "--api", api, "--heartbeat-s", str(heartbeat_s),
        ]  # fmt: skip
        # Its own session: a Ctrl-C or a group kill aimed at the runner leaves it running.
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        line = self._read_line(timeout=15.0)
        if line != "ready":
            self.process.kill()
            self.process.wait(timeout=5)
            raise LiveError(f"the note watchdog did not start: {line or 'no answer'}")

    def _read_line(self, timeout: float) -> str:
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return ""
        return self.process.stdout.readline().decode(errors="replace").strip()

    @property
    def pid(self) -> int:
        return self.process.pid

    def beat(self) -> bool:
        """One heartbeat; False if the watchdog is gone."""
        try:
            os.write(self.process.stdin.fileno(), watchdog.HEARTBEAT)
            return True
        except OSError:
            return False

    def close(self, timeout: float = 3.0) -> None:
        """Say "clean exit", close the pipe (the watchdog panics once more and exits) and
        wait for it. Called after the runner's own panic and silence check."""
        with contextlib.suppress(OSError):
            os.write(self.process.stdin.fileno(), watchdog.CLEAN_EXIT)
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


class HardwareLive(LiveSession):
    """A real synth played live: knob targets out as MIDI, its audio captured and scored."""

    backend = "hardware"

    def __init__(
        self,
        core: BlockCore,
        agent: Agent,
        out_dir: Path | None = None,
        midi_out: str = DEFAULT_MIDI_OUT,
        audio_in: str | None = DEFAULT_AUDIO_IN,
        knob_map: str | None = None,
        midi_api: str = "auto",
        hostapi: str | None = None,
        heartbeat_s: float = 2.0,
    ) -> None:
        from ddsp_gym.backends.knob_map import load_knob_map

        if core.plant.needs_input:
            raise NotImplementedError(
                f"{core.env_id} processes an input stream (an effect); live hardware mode "
                "plays instruments over MIDI (ddsp_gym/Drone-v0), not effects yet"
            )
        plant_name = type(core.plant).__name__
        name = knob_map or _default_map(core)
        if name is None:
            raise ValueError(
                f"no knob map for {core.env_id}'s plant ({plant_name}); give --knob-map "
                "(a YAML map whose knobs are " + ", ".join(core.knob_names) + ")"
            )
        self.knob_map = load_knob_map(name)
        self.knob_map.check_specs(core.plant.knob_specs)
        super().__init__(core, agent, out_dir)
        self.midi_out, self.audio_in, self.midi_api = midi_out, audio_in, midi_api
        self.hostapi, self.heartbeat_s = hostapi, heartbeat_s
        self.midi = None
        self.watchdog: Watchdog | None = None
        self._stream: CallbackStream | None = None
        self._capture: SampleFifo | None = None
        self._sent: dict[str, int] = {}
        self._tail: list[np.ndarray] | None = None
        self.after_stop_peak_dbfs: float | None = None
        self.panics_sent = 0
        self.device_rate = 0
        self.dropped_frames = 0
        self.watchdog_lost = False

    # -- MIDI -------------------------------------------------------------------------

    def _send_knobs(self, target: np.ndarray, force: bool = False) -> None:
        _, sent = self.knob_map.encode(target, self.core.plant.knob_specs)
        # Only what changed goes out: a MIDI cable carries ~1000 CCs a second, and a synth
        # may restart its parameter smoothing on every message.
        for spec in self.core.plant.knob_specs:
            value = sent[spec.name].value
            if force or self._sent.get(spec.name) != value:
                self.midi.send_all(self.knob_map.knobs[spec.name].messages(value))
                self._sent[spec.name] = value

    def panic(self) -> None:
        """All notes off and all sound off on every channel; never raises."""
        if self.midi is not None:
            self.midi.panic()

    # -- audio ------------------------------------------------------------------------

    def callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        mono = indata.mean(axis=1) if indata.ndim == 2 else indata
        if status is not None and getattr(status, "input_overflow", False):
            self.device_xruns += 1
        tail = self._tail
        if tail is not None:
            tail.append(mono.copy())
            return
        written = self._capture.write(mono)
        if written < frames:
            self.dropped_frames += frames - written

    def _block_loop(self) -> None:
        need = self.device_block
        downsample = StreamResampler(self.device_rate, self.core.sample_rate)
        pending = self.target.copy()
        while not self._stop.is_set():
            if not self._capture.wait(lambda f: f.available >= need, timeout=0.2):
                continue
            if self._capture.available >= self._capture.capacity - need:
                self.late_blocks += 1  # fell a whole block behind the capture
            began = time.perf_counter()
            chunk = np.empty(need, np.float32)
            self._capture.read_into(chunk)
            audio = downsample.process(chunk)
            reward, info = self.core.score(pending, audio)
            self._played(audio, pending, reward, info)
            pending = self._next_target(wait_s=0.25 * self.core.plant.block_seconds)
            self._send_knobs(pending)
            if self.watchdog is not None and not self.watchdog.beat():
                self.watchdog_lost = True
            self._work(time.perf_counter() - began)

    def start(self) -> None:
        from ddsp_gym.backends.midi import MidiOutput, reset_all_controllers

        self.core.warm_up(hardware=True)
        self.device_rate = device_rate(self.audio_in, "input", self.hostapi)
        self.device_block = self.core.block_size * self.device_rate // self.core.sample_rate
        self._capture = SampleFifo(4 * self.device_block)
        # The watchdog first: from the first note-on, a killed runner is silenced.
        self.watchdog = Watchdog(self.midi_out, self.midi_api, self.heartbeat_s)
        atexit.register(self.panic)
        self.midi = MidiOutput(self.midi_out, self.midi_api, f"ddsp_gym-live-{os.getpid()}")
        self.midi.panic()
        self.midi.send_all([reset_all_controllers(self.knob_map.channel)])
        self.midi.send_all(self.knob_map.init_messages())
        self._send_knobs(self.target, force=True)
        time.sleep(self.knob_map.settle_ms / 1000.0)
        self._stream = CallbackStream(
            "input", self.audio_in, self.callback, self.device_rate, self.hostapi
        )
        self.midi.send(self.knob_map.note_messages()[0])
        self.started_at = self.clock()
        self._spawn(self._block_loop, "live-block")
        if self.agent is not None:
            self._spawn(self._agent_loop, "live-agent")

    def _stop_devices(self) -> None:
        """Panic and listen (is the synth silent?), panic again while it is not; close all.

        A synth that misses an audio period (an xrun) misses that period's MIDI too, so
        one panic can be lost; the messages are idempotent, so they are simply resent.
        """
        try:
            for attempt in range(1, STOP_PANICS + 1):
                self.panic()
                self.panics_sent = attempt
                if self._stream is None:
                    break
                self._tail = []
                time.sleep(AFTER_STOP_S)
                tail = np.concatenate(self._tail) if self._tail else np.zeros(0, np.float32)
                last = tail[len(tail) // 2 :]  # after the release (and amsynth's smoothing)
                self.after_stop_peak_dbfs = dbfs(last) if len(last) else None
                if self.after_stop_peak_dbfs is None or self.after_stop_peak_dbfs < SILENT_DBFS:
                    break
        finally:
            stream, self._stream = self._stream, None
            midi, self.midi = self.midi, None
            try:
                if stream is not None:
                    stream.close()
            finally:
                if midi is not None:
                    midi.close()  # panics again, lets it go out, closes the port
                if self.watchdog is not None:
                    self.watchdog.close()
                with contextlib.suppress(Exception):
                    atexit.unregister(self.panic)

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "device_rate": self.device_rate,
            "midi_out": self.midi_out,
            "audio_in": self.audio_in,
            "knob_map": self.knob_map.source,
            "dropped_frames": self.dropped_frames,
            "after_stop_peak_dbfs": self.after_stop_peak_dbfs,
            "panics_sent": self.panics_sent,
            "watchdog_pid": self.watchdog.pid if self.watchdog is not None else None,
            "watchdog_lost": self.watchdog_lost,
        }


def _default_map(core: BlockCore) -> str | None:
    from ddsp_gym.streaming import STREAM_PLANTS

    for name, cls in STREAM_PLANTS.items():
        if type(core.plant) is cls:
            return DEFAULT_KNOB_MAPS.get(name)
    return None
