"""The hardware backend: knobs out as MIDI, audio back in, aligned to the sim twin's timeline.

``HardwareBackend(plant, options).render(unit_knobs)`` plays the sim twin's
knobs on a real device and returns a :class:`Take`: mono audio at the twin's
sample rate and length, aligned so sample 0 is when the note (or the program
signal) starts, like the twin's render.

Instrument mode: send the init patch and the knobs (quantized by the knob
map), wait for the synth to settle, then note on, hold for the twin's gate,
note off, record note + tail. Effect mode: play the env's program signal out
through the device (peak-limited) and record what comes back in the same
stream.

Every take is checked whole before it is scored: its length, that the MIDI port
is still there (a synth that crashed mid-take fails that take, not the next),
xruns and dropouts (runs of exact zeros inside a held note), which are retried a
bounded number of times, the timing of the note, and silence: below an absolute
peak, near the input's own noise, or far quieter than the twin plays the same
knobs (a synth at volume 0 that still leaks). A stalled stream times out. On any
error all notes and sounds are switched off.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ddsp_gym.audio_io import fit_length
from ddsp_gym.backends import audio as audio_lib
from ddsp_gym.backends import midi as midi_lib
from ddsp_gym.backends import store
from ddsp_gym.backends.base import AbstractBackend, Capabilities, EnvCore, Outcome
from ddsp_gym.backends.errors import (
    DeviceLostError,
    HardwareError,
    KnobMapError,
    SilentTakeError,
    XrunError,
)
from ddsp_gym.backends.knob_map import KnobMap, SentKnob, load_knob_map
from ddsp_gym.backends.midi import MIDI_APIS, MidiOutput
from ddsp_gym.plants.base import AbstractPlant

if TYPE_CHECKING:
    from ddsp_gym.envs.functional import EnvState

MODES = ("instrument", "effect")
# A note this many frames later than the measured latency missed its MIDI period
# (5 ms at 48 kHz: above USB-MIDI jitter, far below one audio period of JACK's 1024).
LATE_FRAMES = 256
# A take this loud (peak) is never "far too quiet": the twin is rendered to compare
# only below it, so ordinary takes cost no twin render.
QUIET_DBFS = -30.0
# A take within this many dB of the input's own noise (hw calibrate) holds no note.
NOISE_MARGIN_DB = 6.0
# After a take that went digitally silent while the note was held, wait this long
# for a crashed synth's ports to vanish before believing it (a percussive patch).
PORT_RECHECK_S = 0.1


@dataclass(frozen=True)
class HardwareConfig:
    """Options of ``gym.make(..., backend="hardware", hardware={...})``.

    Devices: ``midi_out`` (MIDI output port name, as ``ddsp-gym hw list`` shows it;
    required in instrument mode), ``midi_api`` ("auto", "alsa", "jack", "coremidi",
    "winmm"), ``audio_in`` / ``audio_out`` (audio device names or indices;
    ``audio_out`` only in effect mode), ``hostapi`` (e.g. "JACK"), ``samplerate``
    (None: the device's), ``blocksize`` (0: the host's period), ``input_channels``
    (None: all, mixed to mono), ``output_channels``, ``jack_connections``
    ([[from, to], ...] wired with jack_connect after the stream opens;
    ``{client}`` is this process's JACK client).

    Behaviour: ``mode`` ("instrument" | "effect"), ``knob_map`` (packaged map name,
    YAML path or dict), ``latency`` ("auto": stored value for this device set-up,
    else measure and store; "measure": always measure; a number: milliseconds),
    ``settle_ms`` (None: the map's), ``tail_s`` (extra recording after the
    twin's length), ``silence_dbfs`` (a take whose peak is below this is an
    error), ``silence_margin_db`` (a take whose RMS is this far below the twin's at
    the same knobs, corrected by the calibrated level offset, is an error too; None:
    off), ``dropout_frames`` (a run of this many exact zeros inside a held note is a
    dropout, retried like an xrun; 0: off), ``max_output_dbfs`` (effect-mode limiter
    ceiling), ``max_retries`` (extra attempts after an xrun or dropout),
    ``timeout_s`` (None: 2x the take + 2 s), ``latency_store`` (JSON file of what
    was measured per set-up, :mod:`ddsp_gym.backends.store`; None: the user cache).

    Success (:func:`success_rule`): ``noise_floor`` ("auto": the repeat-take distance
    ``hw calibrate`` stored for this set-up, task and ``takes_per_query``; a number in
    the task's unit; None: none), ``noise_k`` (the threshold is max(the sim's, k x
    noise floor)), ``takes_per_query`` (N takes per query, averaged in the audio
    domain: see :meth:`HardwareBackend.render`).
    """

    midi_out: str | None = None
    midi_api: str = "auto"
    audio_in: str | int | None = None
    audio_out: str | int | None = None
    hostapi: str | None = None
    samplerate: int | None = None
    blocksize: int = 0
    input_channels: int | None = None
    output_channels: int = 1
    jack_connections: tuple[tuple[str, str], ...] = ()
    mode: str = "instrument"
    knob_map: Any = None
    latency: str | float = "auto"
    settle_ms: float | None = None
    tail_s: float = 0.05
    silence_dbfs: float = -60.0
    silence_margin_db: float | None = 40.0
    dropout_frames: int = 128
    max_output_dbfs: float = -6.0
    max_retries: int = 3
    timeout_s: float | None = None
    latency_store: str | None = None
    takes_per_query: int = 1
    noise_floor: str | float | None = "auto"
    noise_k: float = 2.0
    client_name: str = "ddsp_gym"

    @classmethod
    def from_options(cls, options: dict[str, Any] | None) -> HardwareConfig:
        options = dict(options or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown hardware option(s) {unknown}; known: {sorted(known)}")
        if "jack_connections" in options:
            pairs = options["jack_connections"]
            if not all(isinstance(p, list | tuple) and len(p) == 2 for p in pairs):
                raise ValueError("hardware option jack_connections takes [[from, to], ...]")
            options["jack_connections"] = tuple((str(a), str(b)) for a, b in pairs)
        config = cls(**options)
        config.validate()
        return config

    def validate(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"hardware mode must be one of {MODES}, not {self.mode!r}")
        if self.midi_api not in MIDI_APIS:
            raise ValueError(f"midi_api must be one of {sorted(MIDI_APIS)}, not {self.midi_api!r}")
        if self.audio_in is None:
            raise ValueError("the hardware backend needs audio_in (see `ddsp-gym hw list`)")
        if self.mode == "instrument" and self.midi_out is None:
            raise ValueError("instrument mode needs midi_out (see `ddsp-gym hw list`)")
        if self.mode == "effect" and self.audio_out is None:
            raise ValueError("effect mode needs audio_out, the device that feeds the effect")
        if self.knob_map is None and self.midi_out is not None:
            raise ValueError("a MIDI device needs a knob_map (a packaged map name or a YAML path)")
        if not (isinstance(self.latency, int | float) or self.latency in ("auto", "measure")):
            raise ValueError(
                f"latency must be 'auto', 'measure' or milliseconds, not {self.latency!r}"
            )
        if isinstance(self.latency, int | float) and self.latency < 0:
            raise ValueError("latency (ms) must be >= 0")
        if not 0 <= self.max_retries <= 20:
            raise ValueError("max_retries must be in [0, 20]")
        if self.max_output_dbfs > 0:
            raise ValueError("max_output_dbfs must be <= 0 dBFS")
        if self.silence_margin_db is not None and self.silence_margin_db <= 0:
            raise ValueError("silence_margin_db must be > 0 dB (or None: off)")
        if self.dropout_frames < 0:
            raise ValueError("dropout_frames must be >= 0 (0: no dropout check)")
        if not 1 <= self.takes_per_query <= 16:
            raise ValueError("takes_per_query must be in [1, 16]")
        floor = self.noise_floor
        number = isinstance(floor, int | float) and not isinstance(floor, bool)
        if not (floor is None or floor == "auto" or (number and floor >= 0)):
            raise ValueError(f"noise_floor must be 'auto', None or >= 0, not {floor!r}")
        if self.noise_k < 1:
            raise ValueError("noise_k must be >= 1 (the threshold never drops below the sim's)")


@dataclass
class Take:
    """One recorded take, aligned and at the twin's sample rate."""

    audio: np.ndarray  # (n,) float32 at the twin's rate, DC removed, aligned
    knobs: np.ndarray  # (d,) the unit positions actually sent (quantized)
    sent: dict[str, SentKnob]
    peak_dbfs: float
    rms_dbfs: float
    attempts: int  # 1 + retries after xruns
    latency_frames: int
    samplerate: int  # the device's rate
    clipped: bool = False
    limiter_gain_db: float = 0.0
    takes: int = 1  # takes averaged into this one (takes_per_query)
    raw: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32), repr=False)

    def info(self) -> dict[str, Any]:
        """What the env's ``info["hardware"]`` reports."""
        return {
            "sent": {name: s.value for name, s in self.sent.items()},
            "knobs_sent": {name: s.physical for name, s in self.sent.items()},
            "peak_dbfs": self.peak_dbfs,
            "rms_dbfs": self.rms_dbfs,
            "attempts": self.attempts,
            "latency_ms": 1000.0 * self.latency_frames / self.samplerate,
            "clipped": self.clipped,
            "limiter_gain_db": self.limiter_gain_db,
            "takes": self.takes,
        }


@dataclass(frozen=True)
class SuccessRule:
    """What decides success on a device: distance <= ``threshold`` (the task's unit)."""

    threshold: float
    sim_threshold: float
    noise_floor: float | None  # median repeat-take distance (None: not measured)
    k: float
    decided_by: str  # "sim": the sim's threshold; "noise": k x noise floor is larger

    def report(self, distance: float, sim_success: bool) -> dict[str, Any]:
        """``info["hardware"]["success_rule"]``: the rule, and what the sim's rule said."""
        return {
            "threshold": self.threshold,
            "sim_threshold": self.sim_threshold,
            "noise_floor": self.noise_floor,
            "k": self.k,
            "decided_by": self.decided_by,
            "distance": distance,
            "sim_success": sim_success,
        }


def success_rule(sim_threshold: float, noise_floor: float | None, k: float) -> SuccessRule:
    """max(sim threshold, k x noise floor), saying which one decided.

    Two takes of the same knobs differ (a synth's own randomness, dither, level
    drift), so a threshold tuned on the noiseless sim can sit below what a replay of
    the exact setting scores: then not even the target's own knobs would succeed.
    The noise floor is the median distance between repeated takes of one setting
    (``ddsp-gym hw calibrate``); with k = 2 a replay of the exact setting passes
    unless its take is an outlier, and a setting must sound measurably different
    from the target, beyond the device's own repeat noise, to fail.
    """
    if noise_floor is None or not np.isfinite(noise_floor):
        return SuccessRule(sim_threshold, sim_threshold, None, k, "sim")
    noisy = k * float(noise_floor)
    if noisy > sim_threshold:
        return SuccessRule(noisy, sim_threshold, float(noise_floor), k, "noise")
    return SuccessRule(sim_threshold, sim_threshold, float(noise_floor), k, "sim")


def average_takes(takes: list[Take]) -> Take:
    """One take from several of the same knobs: audio averaged, attempts summed."""
    if len(takes) == 1:
        return takes[0]
    first = takes[0]
    audio = np.mean([t.audio for t in takes], axis=0).astype(np.float32)
    raw = np.mean([t.raw for t in takes], axis=0).astype(np.float32)
    peak = audio_lib.peak_dbfs(raw)
    return Take(
        audio=audio,
        knobs=first.knobs,
        sent=first.sent,
        peak_dbfs=peak,
        rms_dbfs=audio_lib.rms_dbfs(raw),
        attempts=sum(t.attempts for t in takes),
        latency_frames=first.latency_frames,
        samplerate=first.samplerate,
        clipped=any(t.clipped for t in takes),
        limiter_gain_db=first.limiter_gain_db,
        takes=len(takes),
        raw=raw,
    )


def take_noise_key(task: Any, takes_per_query: int) -> str:
    """Where the store keeps a task's repeat-take distance: the task's repr (its class and
    configuration, so its distance unit) and the takes averaged per query."""
    return f"{task!r}|takes_per_query={takes_per_query}"


def dropout_runs(x: np.ndarray, min_run: int) -> list[tuple[int, int]]:
    """(start, length) of every run of at least ``min_run`` exact zeros in ``x`` that has
    sound on both sides: a gap inside a sound, which no instrument plays but a lost
    audio period leaves (digital silence before the sound and after it is no gap)."""
    if min_run <= 0:
        return []
    nonzero = np.flatnonzero(np.asarray(x) != 0.0)
    if nonzero.size < 2:
        return []
    gaps = np.diff(nonzero) - 1
    where = np.flatnonzero(gaps >= min_run)
    return [(int(nonzero[i] + 1), int(gaps[i])) for i in where]


def quiet_problem(
    rms_dbfs: float, expected_dbfs: float | None, noise_dbfs: float | None, margin_db: float | None
) -> str | None:
    """Why a take that passed the absolute silence threshold is still no note, or None.

    ``noise_dbfs``: the input's RMS with no note (hw calibrate); a take within
    :data:`NOISE_MARGIN_DB` of it holds nothing. ``expected_dbfs``: what the twin
    plays at these knobs, corrected by the calibrated device-twin level offset; a take
    ``margin_db`` below it is a device at volume 0 that leaks, a wrong patch or a
    wrong input. Relative rules, because a leak can sit above any absolute threshold
    that quiet settings (a gain knob at -48 dB) must pass.
    """
    if noise_dbfs is not None and rms_dbfs < noise_dbfs + NOISE_MARGIN_DB:
        return (
            f"its RMS ({rms_dbfs:.1f} dBFS) is within {NOISE_MARGIN_DB:g} dB of the input's "
            f"own noise ({noise_dbfs:.1f} dBFS, measured by `ddsp-gym hw calibrate`)"
        )
    if expected_dbfs is None or margin_db is None or not np.isfinite(expected_dbfs):
        return None
    if rms_dbfs < expected_dbfs - margin_db:
        return (
            f"its RMS ({rms_dbfs:.1f} dBFS) is {expected_dbfs - rms_dbfs:.0f} dB below what "
            f"the twin plays at these knobs ({expected_dbfs:.1f} dBFS; silence_margin_db="
            f"{margin_db:g})"
        )
    return None


class HardwareBackend(AbstractBackend):
    """Plays a sim twin's knobs on a real device (see the module docstring)."""

    name = "hardware"
    capabilities = Capabilities(differentiable=False, deterministic=False, real_time=True)

    def __init__(
        self,
        plant: AbstractPlant,
        options: dict[str, Any] | HardwareConfig | None,
        devices: tuple[MidiOutput | None, audio_lib.AudioEngine] | None = None,
    ):
        """``devices``: an already open (MIDI output, audio engine) pair to use instead of
        opening the configured ones (sharing a stream, or stand-ins in tests)."""
        super().__init__(plant)
        self.config = (
            options if isinstance(options, HardwareConfig) else HardwareConfig.from_options(options)
        )
        self.knob_map: KnobMap | None = (
            None if self.config.knob_map is None else load_knob_map(self.config.knob_map)
        )
        if self.knob_map is not None:
            if self.knob_map.is_plugin_map:
                raise KnobMapError(
                    f"{self.knob_map.source}: a plugin map (type: param); the hardware backend "
                    "needs a MIDI map, and a plugin map goes with backend='plugin'"
                )
            self.knob_map.check_specs(plant.knob_specs)
        self.midi: MidiOutput | None = None
        self.engine: audio_lib.AudioEngine | None = None
        self.latency_frames = 0
        self.calibration: dict[str, Any] = {}  # what hw calibrate stored for this set-up
        self.faulted = False
        try:
            if devices is None:
                self._open()
            else:
                self.midi, self.engine = devices
                self._send_init()
            self.latency_frames = self._resolve_latency()
            self.calibration = store.read_entry(self._store_path(), self.store_key())
        except BaseException:
            self.close()
            raise

    # ---- lifecycle -----------------------------------------------------------------

    def _open(self) -> None:
        cfg = self.config
        if cfg.midi_out is not None:
            self.midi = MidiOutput(
                cfg.midi_out, cfg.midi_api, f"{cfg.client_name}-midi-{os.getpid()}"
            )
        self.engine = audio_lib.AudioEngine(
            audio_lib.StreamConfig(
                input_device=cfg.audio_in,
                output_device=cfg.audio_out if cfg.mode == "effect" else None,
                samplerate=cfg.samplerate,
                input_channels=cfg.input_channels,
                output_channels=cfg.output_channels,
                blocksize=cfg.blocksize,
                hostapi=cfg.hostapi,
                jack_connections=cfg.jack_connections,
            )
        )
        self._send_init()
        self.faulted = False

    def _channels(self) -> list[int]:
        if self.knob_map is None:
            return []
        return sorted({self.knob_map.channel} | {m.channel for m in self.knob_map.knobs.values()})

    def _send_init(self) -> None:
        """Silence, reset all controllers (pitch bend, mod wheel, sustain: what another map
        may have left behind), then the map's init patch.

        Sent again if an xrun happened meanwhile: a device that misses an audio
        period misses its MIDI too, and a lost init message would spoil every
        take after it.
        """
        if self.midi is None or self.knob_map is None:
            return
        messages = [midi_lib.reset_all_controllers(ch) for ch in self._channels()]
        messages += self.knob_map.init_messages()
        for _ in range(self.config.max_retries + 1):
            xruns_before = self.engine.xruns_total if self.engine is not None else 0
            self.midi.panic()
            self.midi.send_all(messages)
            time.sleep(self.settle_s)  # also long enough for an xrun flag to arrive
            if self.engine is None or self.engine.xruns_total == xruns_before:
                return
        raise XrunError(
            "every attempt at sending the init patch was hit by an audio xrun: the machine "
            "is overloaded or the audio period is too small (e.g. raise JACK's -p)"
        )

    def recover(self) -> None:
        """Close and reopen the MIDI port and the audio stream (after the device came back)."""
        self._close_devices()
        self._open()

    def prepare(self) -> None:
        """Called on every env reset: silence, reopen after a fault, resend the init patch."""
        if self.faulted or self.engine is None:
            self.recover()
            return
        if self.midi is not None and not self.midi.port_exists():
            self.recover()
            return
        self._send_init()

    def panic(self) -> None:
        if self.midi is not None:
            self.midi.panic()

    def _close_devices(self) -> None:
        """Silence, then close the stream, then the port (see ``ownership.close_in_order``)."""
        midi, self.midi = self.midi, None
        engine, self.engine = self.engine, None
        try:
            if midi is not None:
                midi.panic()
            if engine is not None:
                engine.close()
        finally:
            if midi is not None:
                midi.close()

    def close(self) -> None:
        """All notes off, all sound off, close the port and the stream. Safe to call twice.

        A backend dropped without ``close()`` is closed anyway: its port and stream
        are silenced and closed on the next device operation, or at exit
        (:mod:`ddsp_gym.backends.ownership`).
        """
        self._close_devices()

    def __enter__(self) -> HardwareBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- takes -----------------------------------------------------------------------

    @property
    def samplerate(self) -> int:
        return self._engine().samplerate

    def _engine(self) -> audio_lib.AudioEngine:
        if self.engine is None:
            raise HardwareError("the hardware backend is closed (or failed); reset() reopens it")
        return self.engine

    def quantize(self, unit_knobs: np.ndarray) -> tuple[np.ndarray, dict[str, SentKnob]]:
        """Unit knobs -> (the unit positions the device can take, what is sent per knob)."""
        unit_knobs = np.asarray(unit_knobs, np.float32)
        if self.knob_map is None:
            specs = self.plant.knob_specs
            return unit_knobs, {
                s.name: SentKnob(-1, float(u), float(s.to_physical(float(u))))
                for s, u in zip(specs, unit_knobs, strict=True)
            }
        _, sent = self.knob_map.encode(unit_knobs, self.plant.knob_specs)
        knobs = np.array([sent[s.name].unit for s in self.plant.knob_specs], np.float32)
        return knobs, sent

    @property
    def settle_s(self) -> float:
        settle = self.config.settle_ms
        if settle is None:
            settle = self.knob_map.settle_ms if self.knob_map is not None else 0.0
        return settle / 1000.0

    def _silence(self) -> None:
        """All sound off on the map's channels: every take starts from silence, not from the
        previous take's release tail."""
        if self.midi is None or self.knob_map is None:
            return
        self.midi.send_all([midi_lib.all_sound_off(ch) for ch in self._channels()])

    def _prepare_take(self, unit_knobs: np.ndarray) -> dict[str, SentKnob]:
        """Silence, send the knobs, wait for the device to settle -> what was sent."""
        if self.knob_map is None or self.midi is None:
            return self.quantize(unit_knobs)[1]
        self._silence()
        messages, sent = self.knob_map.encode(unit_knobs, self.plant.knob_specs)
        self.midi.send_all(messages)
        time.sleep(self.settle_s)
        return sent

    def measure_input_noise(self, seconds: float = 0.3) -> float:
        """RMS (dBFS) of the input with nothing playing: all sound off, settle, record.

        -inf for digital silence (a software synth); a real input shows its noise
        floor, which the take checks compare quiet takes with.
        """
        self._silence()
        time.sleep(self.settle_s)
        n_frames = int(seconds * self.samplerate)
        job = self._engine().capture(n_frames, None, (), self.config.timeout_s)
        mono = job.audio.mean(axis=1)
        return audio_lib.rms_dbfs(mono - np.mean(mono))

    def _gate_frames(self, samplerate: int) -> int:
        return int(round(self.plant.gate_s * samplerate))

    def _capture(self, n_frames: int, playback: np.ndarray | None) -> audio_lib.CaptureJob:
        """One raw take (device rate, not aligned); note on at frame 0 in instrument mode."""
        engine = self._engine()
        events = []
        if self.config.mode == "instrument":
            on, off = self.knob_map.note_messages()
            midi = self.midi
            gate = min(self._gate_frames(engine.samplerate), n_frames - 1)
            events = [(0, lambda: midi.send(on)), (gate, lambda: midi.send(off))]
        return engine.capture(n_frames, playback, events, self.config.timeout_s)

    def _take(self, knobs: np.ndarray | None, n_frames: int, playback: np.ndarray | None):
        """Send ``knobs`` and record a raw take -> (mono audio, attempts); retries are bounded.

        An attempt counts only if no xrun happened from the moment the knobs were
        sent to the end of the recording (a device that misses an audio period
        also misses the MIDI of that period) and, in instrument mode, the
        lead-in before the note (the latency) is silent: sound there is a
        previous note still ringing.
        """
        engine = self._engine()
        attempts = self.config.max_retries + 1
        problems = []
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self.panic()
            self._check_port("before the take")
            xruns_before = engine.xruns_total
            if knobs is not None:
                self._prepare_take(knobs)
            job = self._capture(n_frames, playback)
            mono = job.audio.mean(axis=1)
            self._check_whole(mono, n_frames)
            if job.xruns or engine.xruns_total != xruns_before:
                problems.append("xrun")
                continue
            problem = self._timing_problem(mono) or self._dropout_problem(mono)
            if problem is None:
                return mono, attempt
            problems.append(problem)
        seconds = n_frames / self.samplerate
        listed = ", ".join(problems)
        if not {"xrun", "dropout"} & set(problems):
            raise HardwareError(
                f"all {attempts} attempts at a {seconds:.2f} s take were out of time "
                f"({listed}): sound before the note means a previous note still "
                "rang (does the device ignore All Sound Off, CC 120? raise settle_ms) or the "
                "stored latency is too long; a late note means it is too short: measure it "
                "again with latency='measure'"
            )
        raise XrunError(
            f"all {attempts} attempts at a {seconds:.2f} s take failed ({listed}): audio "
            "xruns (over/underruns) and dropouts (runs of exact zeros inside the note: lost "
            "audio periods) mean the machine is overloaded or the audio period is too small "
            "(e.g. raise JACK's -p)"
        )

    def _check_port(self, when: str) -> None:
        """Raise :class:`DeviceLostError` if our MIDI port has gone away."""
        if self.midi is not None and not self.midi.port_exists():
            raise DeviceLostError(
                f"MIDI port {self.midi.port_name!r} has gone away {when}: the synth was "
                "closed or crashed (or its cable pulled). Restart it, then call reset()."
            )

    def _check_whole(self, mono: np.ndarray, n_frames: int) -> None:
        """The take is all there, finite, and its device did not vanish while it played.

        A synth that crashes mid-take leaves digital silence from then on (its ports
        vanish); if the take went silent while the note was still held, the port is
        asked again after :data:`PORT_RECHECK_S` (the server may not have noticed yet).
        """
        if mono.shape[0] != n_frames or not np.all(np.isfinite(mono)):
            raise HardwareError(
                f"the take came back incomplete ({mono.shape[0]} of {n_frames} frames) or "
                "with non-finite samples: the audio stream is broken; reset() reopens it"
            )
        self._check_port("during the take")
        if self._went_silent_while_held(mono):
            time.sleep(PORT_RECHECK_S)
            self._check_port("during the take")

    def _went_silent_while_held(self, mono: np.ndarray) -> bool:
        """Instrument mode: sound, then exact zeros from before the note-off to the end."""
        if self.config.mode != "instrument" or self.midi is None:
            return False
        nonzero = np.flatnonzero(mono != 0.0)
        if nonzero.size == 0:
            return False
        note_off = self.latency_frames + self._gate_frames(self.samplerate)
        return int(nonzero[-1]) < min(note_off, mono.shape[0]) - 1

    def _dropout_problem(self, mono: np.ndarray) -> str | None:
        """Instrument mode: "dropout" if the held note has a gap of exact zeros."""
        if self.config.mode != "instrument":
            return None
        start = self.latency_frames
        held = mono[start : start + self._gate_frames(self.samplerate)]
        return "dropout" if dropout_runs(held, self.config.dropout_frames) else None

    def _timing_problem(self, mono: np.ndarray) -> str | None:
        """Instrument mode: "ringing" if the lead-in before the note is not silent, "late"
        if the note starts more than ``LATE_FRAMES`` after the measured latency (a MIDI
        message that missed its audio period), else None."""
        latency = self.latency_frames
        if self.config.mode != "instrument" or latency < 64:
            return None
        if audio_lib.peak_dbfs(mono[: latency - 32]) > self.config.silence_dbfs:
            return "ringing"
        onset = audio_lib.onset_index(mono)
        if onset is not None and onset > latency + LATE_FRAMES:
            return "late"
        return None

    def _program(self, input_audio: np.ndarray | None) -> tuple[np.ndarray | None, float]:
        """Effect mode: the program signal at the device rate, peak-limited -> (signal, gain dB)."""
        if self.config.mode != "effect":
            return None, 0.0
        if input_audio is None:
            raise ValueError(
                "effect mode plays the env's program signal through the device: pass input= "
                "(a WAV path or an array) to gym.make"
            )
        up = audio_lib.resample(
            np.asarray(input_audio, np.float32), self.plant.sample_rate, self.samplerate
        )
        return audio_lib.limit_peak(up, self.config.max_output_dbfs)

    def render(
        self, unit_knobs: np.ndarray, input_audio: np.ndarray | None = None, key: Any = None
    ) -> Take:
        """Play ``unit_knobs`` (d,) on the device -> an aligned :class:`Take` (``key`` unused).

        With ``takes_per_query`` N > 1 the knobs are played N times and the takes are
        averaged sample by sample (audio domain): the takes are aligned to the sample
        (latency compensated, the note scheduled at a block boundary, late notes
        retried), so what the device plays the same each time adds up and what differs
        (noise, dither) shrinks by about sqrt(N). That assumes a synth whose notes
        start phase-locked (both rig synths; most digital synths); one with
        free-running oscillators would have partials cancel, so leave N at 1 there
        and rely on the noise-aware success threshold instead.

        Raises:
            SilentTakeError, XrunError, HardwareTimeoutError, HardwareError; all
            notes are switched off first and the backend is marked faulted (the
            env's ``reset()`` reopens it).
        """
        try:
            n = self.config.takes_per_query
            takes = [self._render(unit_knobs, input_audio) for _ in range(n)]
        except BaseException:
            self.faulted = True
            self.panic()
            raise
        return average_takes(takes)

    def evaluate(
        self, core: EnvCore, state: EnvState, action: np.ndarray, with_grad: bool, step: bool
    ) -> Outcome:
        """The base evaluation, with success judged by the take's sound against
        :meth:`success_rule` (reported in ``info["hardware"]["success_rule"]``).

        The sim's knob-space criterion (``param_tolerance``) does not decide here: a
        device plays its own law, so knobs near the hidden ones can still sound far off
        (and the task's distance is what a recorded or WAV target can be judged by);
        its verdict is reported as ``sim_success``. An external reward source keeps its
        own success.
        """
        out = super().evaluate(core, state, action, with_grad, step)
        if not core.reward.fused:
            return out
        rule = self.success_rule(core)
        info = dict(out.info)
        report = dict(info.get(self.name, {}))
        report["success_rule"] = rule.report(out.distance, out.success)
        info[self.name] = report
        return out._replace(success=bool(out.distance <= rule.threshold), info=info)

    def success_rule(self, core: EnvCore) -> SuccessRule:
        """This env's rule on this device: see :func:`success_rule`."""
        return success_rule(
            float(core.params.success_threshold),
            self.noise_floor(core.fenv.task),
            self.config.noise_k,
        )

    def noise_floor(self, task: Any) -> float | None:
        """The repeat-take distance for ``task`` (option ``noise_floor``; "auto": what
        ``hw calibrate`` stored for this set-up and ``takes_per_query``)."""
        floor = self.config.noise_floor
        if floor is None or isinstance(floor, int | float):
            return floor
        key = take_noise_key(task, self.config.takes_per_query)
        entry = (self.calibration.get("take_noise") or {}).get(key) or {}
        median = entry.get("median")
        return float(median) if isinstance(median, int | float) else None

    def _quiet_problem(
        self, audio: np.ndarray, peak: float, knobs: np.ndarray, input_audio: np.ndarray | None
    ) -> str | None:
        """See :func:`quiet_problem`; the twin is rendered only for quiet takes."""
        expected = None
        margin = self.config.silence_margin_db
        if margin is not None and peak < QUIET_DBFS:
            import jax

            twin = self.plant.render(knobs, jax.random.PRNGKey(0), input_audio)
            offset = float(self.calibration.get("level_offset_db", 0.0))
            expected = audio_lib.rms_dbfs(np.asarray(twin)) + offset
        noise = self.calibration.get("input_noise_dbfs")
        return quiet_problem(audio_lib.rms_dbfs(audio), expected, noise, margin)

    def _render(self, unit_knobs: np.ndarray, input_audio: np.ndarray | None) -> Take:
        engine = self._engine()
        sr = engine.samplerate
        knobs, sent = self.quantize(unit_knobs)
        program, limiter_db = self._program(input_audio)
        n_out = int(np.ceil(self.plant.duration * sr))
        n_frames = self.latency_frames + n_out + int(self.config.tail_s * sr)
        raw, attempts = self._take(knobs, n_frames, program)
        raw = audio_lib.remove_dc(raw, reference=self.latency_frames, sample_rate=sr)
        aligned = raw[self.latency_frames : self.latency_frames + n_out]
        peak = audio_lib.peak_dbfs(aligned)
        if peak < self.config.silence_dbfs:
            raise SilentTakeError(self._silence_message(peak))
        audio = fit_length(
            audio_lib.resample(aligned, sr, self.plant.sample_rate), self.plant.n_samples
        )
        problem = self._quiet_problem(audio, peak, knobs, input_audio)
        if problem is not None:
            raise SilentTakeError(self._silence_message(peak, problem))
        return Take(
            audio=audio.astype(np.float32),
            knobs=knobs,
            sent=sent,
            peak_dbfs=peak,
            rms_dbfs=audio_lib.rms_dbfs(aligned),
            attempts=attempts,
            latency_frames=self.latency_frames,
            samplerate=sr,
            clipped=peak >= -0.1,
            limiter_gain_db=limiter_db,
            raw=aligned,
        )

    def _silence_message(self, peak: float, why: str | None = None) -> str:
        cfg = self.config
        why = why or f"peak {peak:.1f} dBFS, below silence_dbfs={cfg.silence_dbfs:g}"
        lines = [
            f"the take was silent ({why}): is the device on, its volume up, the cable plugged "
            f"in, and audio_in={cfg.audio_in!r} the input it feeds?"
        ]
        if self.midi is not None and not self.midi.port_exists():
            lines.append(
                f"MIDI port {self.midi.port_name!r} has gone away: the synth was closed or "
                "crashed. Restart it, then call reset()."
            )
        elif self.midi is not None and self.knob_map is not None:
            lines.append(self._midi_hint())
        return " ".join(lines)

    def _midi_hint(self) -> str:
        """The MIDI side of a silent take: the port exists, yet it may reach another device."""
        channels = ", ".join(map(str, self._channels()))
        return (
            f"Or the MIDI side: is midi_out={self.midi.port_name!r} the port of the synth "
            f"that audio_in records, and does that synth listen on MIDI channel {channels} "
            f"(the knob map's) and play note {self.knob_map.note}? A port that exists but "
            "reaches another device (a MIDI interface's other output, a second synth) gives "
            "exactly this silent take; `ddsp-gym hw list` shows the ports."
        )

    # ---- latency -----------------------------------------------------------------------

    def store_key(self) -> str:
        """The device set-up a measurement belongs to. The map counts too: its probe sound
        decides where the onset is seen (a slow first cycle shows a sample or two late)."""
        cfg = self.config
        parts = [
            cfg.mode,
            str(cfg.midi_out),
            str(cfg.audio_in),
            str(cfg.audio_out),
            str(self.samplerate),
            str(cfg.blocksize),
            "" if self.knob_map is None else self.knob_map.device + ":" + self.knob_map.source,
        ]
        return "|".join(parts)

    def _store_path(self) -> Path:
        configured = self.config.latency_store
        return Path(configured) if configured else store.default_path()

    def _resolve_latency(self) -> int:
        cfg = self.config
        if isinstance(cfg.latency, int | float):
            return int(round(cfg.latency / 1000.0 * self.samplerate))
        if cfg.latency == "auto":
            stored = store.read_entry(self._store_path(), self.store_key()).get("frames")
            if isinstance(stored, int | float) and stored >= 0:
                return int(stored)
        frames = self.measure_latency()
        self.remember_latency(frames)
        return frames

    def remember_latency(self, frames: int) -> None:
        """Use ``frames`` of latency from now on and store it for this device set-up."""
        self.latency_frames = int(frames)
        self.remember(
            frames=int(frames),
            ms=1000.0 * frames / self.samplerate,
            samplerate=self.samplerate,
            measured=time.strftime("%Y-%m-%dT%H:%M:%S"),
        )

    def remember(self, **fields: Any) -> None:
        """Store calibration results for this device set-up (see :mod:`store`) and use them."""
        path, key = self._store_path(), self.store_key()
        store.update_entry(path, key, **fields)
        self.calibration = store.merge(self.calibration, fields)

    def measure_latency(self, repeats: int = 3) -> int:
        """Round-trip latency in device frames, measured now (the least of ``repeats``).

        Instrument mode: onset of the note after note-on (with the map's
        ``probe`` knobs, e.g. the fastest attack). Effect mode: cross-correlation
        of a noise burst played out and recorded back.
        """
        sr = self.samplerate
        n_frames = int(0.3 * sr)
        estimates = []
        saved, self.latency_frames = self.latency_frames, 0  # no timing checks meanwhile
        try:
            for _ in range(repeats):
                if self.config.mode == "effect":
                    burst = np.random.default_rng(0).standard_normal(int(0.1 * sr))
                    burst, _ = audio_lib.limit_peak(burst, min(-12.0, self.config.max_output_dbfs))
                    raw, _ = self._take(None, n_frames, burst)
                    lag, quality = audio_lib.xcorr_lag(burst, raw, n_frames - burst.size)
                    if quality < 0.5:
                        raise HardwareError(
                            f"latency measurement failed: the test burst came back unrecognizable "
                            f"(correlation {quality:.2f}); is the effect's output connected to "
                            f"audio_in={self.config.audio_in!r}?"
                        )
                    estimates.append(lag)
                else:
                    probe = np.full(self.plant.num_knobs, 0.5, np.float32)
                    for i, spec in enumerate(self.plant.knob_specs):
                        probe[i] = self.knob_map.probe.get(spec.name, probe[i])
                    raw, _ = self._take(self.quantize(probe)[0], n_frames, None)
                    onset = audio_lib.onset_index(raw)
                    if onset is None or audio_lib.peak_dbfs(raw) < self.config.silence_dbfs:
                        raise SilentTakeError(
                            "latency measurement failed: "
                            + self._silence_message(audio_lib.peak_dbfs(raw))
                        )
                    estimates.append(onset)
            # A note can arrive late (its MIDI missed an audio period), never early: nothing
            # sounds before it (takes with a ringing lead-in are retried). So the minimum.
            return int(min(estimates))
        finally:
            self.latency_frames = saved

    def describe(self) -> dict[str, Any]:
        engine = self._engine()
        return {
            "mode": self.config.mode,
            "midi_port": None if self.midi is None else self.midi.port_name,
            "audio_in": None if engine.input_info is None else engine.input_info["name"],
            "audio_out": None if engine.output_info is None else engine.output_info["name"],
            "samplerate": engine.samplerate,
            "latency_ms": 1000.0 * self.latency_frames / engine.samplerate,
            "config": asdict(self.config),
        }


__all__ = ["HardwareBackend", "HardwareConfig", "Take"]
