"""Audio in/out with sounddevice (PortAudio): block-accurate takes, and signal hygiene.

One callback stream stays open per device. A take is a :class:`CaptureJob` the
callback drives block by block: it records ``n`` frames, plays an optional
signal out in the same blocks (``sd.playrec`` style, one stream), and fires
scheduled events (MIDI note on/off) at block boundaries, so a note starts at
the same place in every take. Over/underrun flags raised during the take mark
it as an xrun. Every wait has a timeout.

The pure helpers at the bottom (DC removal, levels, onset, cross-correlation
lag, peak limiting, resampling) are what the backend applies to each take.
"""

from __future__ import annotations

import atexit
import ctypes
import ctypes.util
import os
import subprocess
import sys
import threading
import warnings
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from math import gcd

import numpy as np
from scipy import signal

from ddsp_gym.backends import ownership
from ddsp_gym.backends.errors import (
    HARDWARE_EXTRA_HINT,
    AudioDeviceNotFoundError,
    HardwareDependencyError,
    HardwareError,
    HardwareTimeoutError,
)

JACK_TIMEOUT_S = 5.0
CLOSE_TIMEOUT_S = 3.0
_JACK_NAME = ctypes.create_string_buffer(f"ddsp_gym-{os.getpid()}".encode())
# PortAudio runs only while something of ours uses it ("users"); "streams" counts the
# open ones (a rescan must not pull devices from under them).
_pa = {"initialized": False, "users": 0, "streams": 0, "stuck": False}
_pa_lock = threading.RLock()


# ---- PortAudio / sounddevice ------------------------------------------------------------


def jack_client_name() -> str:
    """The JACK client name PortAudio uses in this process (set before PortAudio starts)."""
    return _JACK_NAME.value.decode()


def _name_jack_client() -> None:
    """Give PortAudio's JACK client a per-process name, so our ports are findable and ours.

    ``PaJack_SetClientName`` is part of PortAudio's JACK API (pa_jack.h); it must be
    called before ``Pa_Initialize``. Builds without JACK simply lack the symbol.
    """
    path = ctypes.util.find_library("portaudio")
    if path is None:
        return
    try:
        ctypes.CDLL(path).PaJack_SetClientName(_JACK_NAME)
    except (OSError, AttributeError):
        pass


def _sounddevice():
    """The sounddevice module (PortAudio initialized or not), or a clear error."""
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    _name_jack_client()
    first_import = "sounddevice" not in sys.modules
    try:
        import sounddevice as sd
    except (ImportError, OSError) as err:
        raise HardwareDependencyError(
            f"the hardware backend needs sounddevice and the PortAudio library ({err}); "
            f"{HARDWARE_EXTRA_HINT} (on Debian/Ubuntu also: apt-get install libportaudio2)"
        ) from None
    if first_import:
        ownership.register_exit_handler()  # our streams close before PortAudio shuts down
    return sd


def acquire_portaudio():
    """Start PortAudio if needed and count one more user -> the sounddevice module.

    PortAudio keeps a client connected to the audio server (JACK) while it runs;
    running it only while used means nothing of ours lingers on the server, and
    a server stopped later cannot trip PortAudio's shutdown at exit.
    """
    with _pa_lock:
        if _pa["stuck"]:
            raise HardwareError(
                "PortAudio is stuck on a stream whose audio server died; restart this program "
                "once the audio server (e.g. jackd) runs again"
            )
        first_import = "sounddevice" not in sys.modules
        sd = _sounddevice()
        if not first_import and not _pa["initialized"]:
            sd._initialize()  # importing sounddevice initializes it; later starts are ours
        _pa["initialized"] = True
        _pa["users"] += 1
    return sd


def release_portaudio() -> None:
    """One user fewer; PortAudio (and its JACK client) stops when none is left."""
    with _pa_lock:
        _pa["users"] = max(0, _pa["users"] - 1)
        if _pa["users"] == 0 and _pa["initialized"] and not _pa["stuck"]:
            _sounddevice()._terminate()
            _pa["initialized"] = False


@contextmanager
def portaudio():
    """``with portaudio() as sd:`` PortAudio running for the block."""
    sd = acquire_portaudio()
    try:
        yield sd
    finally:
        release_portaudio()


def import_sounddevice():
    """sounddevice if it and PortAudio load (PortAudio is not left running)."""
    with portaudio() as sd:
        return sd


def rescan() -> None:
    """Restart PortAudio so it sees devices (and JACK clients) that appeared since it started.

    Skipped while a stream of ours is open (its device would vanish under it).
    """
    with _pa_lock, portaudio() as sd:
        if _pa["streams"] == 0:
            sd._terminate()
            sd._initialize()


def _abandon_portaudio() -> None:
    """A stream could not be closed (its audio server died): PortAudio is stuck for good.

    Terminating PortAudio would wait on that stream too, so sounddevice's exit
    handler is unregistered (the process can still exit) and later opens fail
    with a clear error instead of hanging.
    """
    sd = _sounddevice()
    with _pa_lock:
        _pa["stuck"] = True
    atexit.unregister(sd._exit_handler)
    warnings.warn(
        "an audio stream could not be closed (its audio server died); PortAudio is unusable "
        "in this process until it restarts",
        RuntimeWarning,
        stacklevel=3,
    )


def list_audio_devices() -> list[dict]:
    """Every PortAudio device: index, name, host API, input/output channels, default rate."""
    with portaudio() as sd:
        apis = sd.query_hostapis()
        devices = sd.query_devices()
    return [
        {
            "index": i,
            "name": d["name"],
            "hostapi": apis[d["hostapi"]]["name"],
            "inputs": d["max_input_channels"],
            "outputs": d["max_output_channels"],
            "default_samplerate": d["default_samplerate"],
        }
        for i, d in enumerate(devices)
    ]


def format_devices(devices: Sequence[dict]) -> str:
    if not devices:
        return "  (no audio devices: is PortAudio built with your audio system, is it running?)"
    return "\n".join(
        f"  [{d['index']}] {d['name']!r} ({d['hostapi']}; {d['inputs']} in, {d['outputs']} out)"
        for d in devices
    )


def _match_device(name: str | int, kind: str, hostapi: str | None, devices: list[dict]):
    key = "inputs" if kind == "input" else "outputs"
    usable = [d for d in devices if d[key] > 0]
    if hostapi:
        usable = [d for d in usable if hostapi.lower() in d["hostapi"].lower()]
    if isinstance(name, int):
        hits = [d for d in usable if d["index"] == name]
    else:
        hits = [d for d in usable if d["name"] == name] or [
            d for d in usable if name.lower() in d["name"].lower()
        ]
    return hits


def find_device(name: str | int, kind: str = "input", hostapi: str | None = None) -> dict:
    """The PortAudio device called ``name`` (exact, else unique substring) with ``kind`` channels.

    A device missing at first triggers one PortAudio rescan (JACK clients that
    started after PortAudio did are only seen then).

    Raises:
        AudioDeviceNotFoundError: listing the devices that exist.
    """
    for attempt in range(2):
        devices = list_audio_devices()
        hits = _match_device(name, kind, hostapi, devices)
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            # Several host APIs can expose one card; prefer the first (PortAudio's order).
            return hits[0]
        if attempt == 0:
            rescan()
    api = f" on host API {hostapi!r}" if hostapi else ""
    raise AudioDeviceNotFoundError(
        f"no audio {kind} device {name!r}{api}. Devices that exist:\n{format_devices(devices)}"
    )


# ---- JACK port wiring (jack-tools command-line programs) ---------------------------------


def _jack(*args: str, timeout: float = JACK_TIMEOUT_S) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(
            list(args), capture_output=True, text=True, timeout=timeout, check=False
        )
    except FileNotFoundError:
        raise HardwareError(
            f"{args[0]} not found: JACK port wiring needs jack-tools (apt-get install jack-tools)"
        ) from None
    except subprocess.TimeoutExpired:
        raise HardwareTimeoutError(f"{' '.join(args)} did not answer within {timeout} s") from None


def jack_ports(connections: bool = False) -> dict[str, list[str]]:
    """{port: [connected ports]} of the running JACK server (lists empty unless asked)."""
    result = _jack("jack_lsp", "-c") if connections else _jack("jack_lsp")
    if result.returncode != 0:
        raise HardwareError(f"jack_lsp failed (is jackd running?): {result.stderr.strip()}")
    ports: dict[str, list[str]] = {}
    current = None
    for line in result.stdout.splitlines():
        if not line.strip():
            continue
        if line.startswith((" ", "\t")):
            if current is not None:
                ports[current].append(line.strip())
        else:
            current = line.strip()
            ports[current] = []
    return ports


def jack_connect(source: str, destination: str) -> None:
    result = _jack("jack_connect", source, destination)
    if result.returncode != 0 and "already" not in (result.stderr + result.stdout):
        ports = "\n".join(f"  {p}" for p in jack_ports())
        raise HardwareError(
            f"jack_connect {source!r} -> {destination!r} failed "
            f"({result.stderr.strip() or result.stdout.strip()}). JACK ports:\n{ports}"
        )


def jack_disconnect_all(port: str) -> None:
    """Remove every connection of ``port`` (PortAudio auto-connects to the system ports)."""
    for other in jack_ports(connections=True).get(port, []):
        _jack("jack_disconnect", port, other)


# ---- takes ------------------------------------------------------------------------------

Event = tuple[int, Callable[[], None]]  # (frame offset in the take, action)


@dataclass
class CaptureJob:
    """One take, driven by the audio callback block by block.

    ``events`` fire in the callback of the block whose start is nearest to their
    frame (block-quantized: the same block in every take, at most half a block
    early or late). ``playback`` (n, ch) plays
    out from frame 0, zeros after it ends.
    """

    n_frames: int
    channels: int
    playback: np.ndarray | None = None
    events: list[Event] = field(default_factory=list)
    audio: np.ndarray = field(init=False)
    position: int = field(default=0, init=False)
    xruns: int = field(default=0, init=False)
    error: BaseException | None = field(default=None, init=False)
    done: threading.Event = field(default_factory=threading.Event, init=False)

    def __post_init__(self) -> None:
        late = [frame for frame, _ in self.events if not 0 <= frame < self.n_frames]
        if late:
            raise ValueError(f"events at frames {late} lie outside the {self.n_frames}-frame take")
        self.audio = np.zeros((self.n_frames, self.channels), np.float32)
        self.events = sorted(self.events, key=lambda e: e[0])

    def process(
        self, indata: np.ndarray | None, outdata: np.ndarray | None, frames: int, xrun: bool
    ) -> None:
        """Consume one block. Never raises (it runs on the audio thread)."""
        if self.done.is_set():
            return
        start = self.position
        try:
            while self.events and self.events[0][0] - start < frames / 2:
                _, action = self.events.pop(0)
                action()
            if xrun:
                self.xruns += 1
            n = min(frames, self.n_frames - start)
            if indata is not None and n > 0:
                self.audio[start : start + n] = indata[:n, : self.channels]
            if outdata is not None and self.playback is not None:
                m = max(0, min(frames, self.playback.shape[0] - start))
                if m:
                    outdata[:m] = self.playback[start : start + m]
            self.position = start + frames
            if self.position >= self.n_frames:
                # Events left at the very end (a note-off) still go out: nothing may hang.
                for _, action in self.events:
                    action()
                self.events = []
                self.done.set()
        except BaseException as err:  # noqa: BLE001 - handed to the waiting thread
            self.error = err
            self.done.set()


@dataclass(frozen=True)
class StreamConfig:
    """Which devices, rate, channels and block size the engine opens."""

    input_device: str | int
    output_device: str | int | None = None  # None: input-only (instrument mode)
    samplerate: int | None = None  # None: the input device's default rate
    input_channels: int | None = None  # None: every input channel (mixed to mono)
    output_channels: int = 1
    blocksize: int = 0  # 0: the host's own period (JACK's -p)
    hostapi: str | None = None  # e.g. "JACK"; None: any
    jack_connections: tuple[tuple[str, str], ...] = ()  # "{client}" = our JACK client
    jack_exclusive: bool = True  # drop PortAudio's automatic connections of our ports first


class _Callbacks:
    """What the audio thread touches, kept apart from the engine.

    The stream holds its callback, and :mod:`ownership` holds an open stream until
    it is closed; were the callback a method of the engine, the engine could never
    be collected, and a dropped engine's stream never closed.
    """

    def __init__(self) -> None:
        self.xruns_total = 0  # over/underruns flagged since the stream opened
        self.blocks = 0  # callbacks run since the stream opened
        self.job: CaptureJob | None = None
        self._marked = False

    def _enter(self) -> None:
        if not self._marked:
            ownership.mark_audio_thread()
            self._marked = True
        self.blocks += 1

    def input(self, indata, frames, time, status) -> None:
        self._enter()
        xrun = bool(status.input_overflow)
        self.xruns_total += xrun
        job = self.job
        if job is not None:
            job.process(indata, None, frames, xrun)

    def duplex(self, indata, outdata, frames, time, status) -> None:
        self._enter()
        outdata.fill(0.0)
        xrun = bool(status.input_overflow or status.output_underflow)
        self.xruns_total += xrun
        job = self.job
        if job is not None:
            job.process(indata, outdata, frames, xrun)


class _OpenStream:
    """A started PortAudio stream and the PortAudio use it holds; :meth:`close` once.

    Never hangs: if the audio server died under the stream, PortAudio's JACK host
    waits for a callback that never comes (minutes). The stream is then abandoned
    after ``CLOSE_TIMEOUT_S`` and PortAudio marked unusable for this process (see
    :func:`_abandon_portaudio`).
    """

    is_midi = False

    def __init__(self, stream) -> None:
        self.stream = stream
        self._lock = threading.Lock()
        self.closed = False
        with _pa_lock:
            _pa["streams"] += 1

    def __repr__(self) -> str:
        return f"<audio stream {self.stream!r}>"

    def close(self) -> None:
        with self._lock:
            if self.closed:
                return
            self.closed = True
        ownership.release(self)
        stream, finished = self.stream, threading.Event()

        def shut() -> None:
            try:
                stream.abort()
                stream.close()
            except Exception:  # noqa: BLE001 - a vanished device must not stop the close
                pass
            finally:
                finished.set()

        threading.Thread(target=shut, name="ddsp_gym-audio-close", daemon=True).start()
        if finished.wait(CLOSE_TIMEOUT_S):
            with _pa_lock:
                _pa["streams"] -= 1
            release_portaudio()
        else:
            _abandon_portaudio()


class AudioEngine:
    """A callback stream that stays open and records (and plays) takes on request.

    ``close()`` it (or use it as a context manager); one dropped without closing is
    closed on the next device operation of a Python thread (:mod:`ownership`).
    """

    def __init__(self, config: StreamConfig) -> None:
        self.config = config
        self._open_stream: _OpenStream | None = None
        self._finalizer = None
        self._callbacks = _Callbacks()
        self.samplerate: int = 0
        self.input_info: dict | None = None
        self.output_info: dict | None = None
        self.open()

    def __enter__(self) -> AudioEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def xruns_total(self) -> int:
        """Over/underruns flagged since the stream opened."""
        return self._callbacks.xruns_total

    @property
    def blocks_seen(self) -> int:
        """Callbacks run since the stream opened (a stalled stream stops counting)."""
        return self._callbacks.blocks

    # -- lifecycle --------------------------------------------------------------------

    def open(self) -> None:
        ownership.reap()
        self.close()
        self._callbacks = _Callbacks()
        sd = acquire_portaudio()  # handed to the _OpenStream, else released below
        try:
            self._start_stream(sd)
        except BaseException:
            if self._open_stream is None:
                release_portaudio()
            self.close()
            raise

    def _start_stream(self, sd) -> None:
        cfg = self.config
        self.input_info = find_device(cfg.input_device, "input", cfg.hostapi)
        self.output_info = (
            None
            if cfg.output_device is None
            else find_device(cfg.output_device, "output", cfg.hostapi)
        )
        channels = cfg.input_channels or self.input_info["inputs"]
        if channels > self.input_info["inputs"]:
            raise AudioDeviceNotFoundError(
                f"input device {self.input_info['name']!r} has {self.input_info['inputs']} "
                f"channels, not {channels}"
            )
        self.channels = channels
        self.samplerate = int(cfg.samplerate or self.input_info["default_samplerate"])
        common = dict(samplerate=self.samplerate, blocksize=cfg.blocksize, dtype="float32")
        try:
            if self.output_info is None:
                stream = sd.InputStream(
                    device=self.input_info["index"],
                    channels=channels,
                    callback=self._callbacks.input,
                    **common,
                )
            else:
                stream = sd.Stream(
                    device=(self.input_info["index"], self.output_info["index"]),
                    channels=(channels, cfg.output_channels),
                    callback=self._callbacks.duplex,
                    **common,
                )
            self._open_stream = _OpenStream(stream)
            self._finalizer = ownership.adopt(self, self._open_stream)
            stream.start()
        except sd.PortAudioError as err:
            raise HardwareError(f"cannot open the audio stream: {err}") from None
        if cfg.jack_connections:
            self._wire_jack()

    def _wire_jack(self) -> None:
        me = jack_client_name()
        pairs = [
            (a.replace("{client}", me), b.replace("{client}", me))
            for a, b in self.config.jack_connections
        ]
        if self.config.jack_exclusive:
            for port in sorted({p for pair in pairs for p in pair if p.startswith(f"{me}:")}):
                jack_disconnect_all(port)
        for a, b in pairs:
            jack_connect(a, b)

    @property
    def is_open(self) -> bool:
        return self._open_stream is not None

    def close(self) -> None:
        """Stop and close the stream; PortAudio itself stops once no stream is open.

        Safe to call twice; never hangs (see :class:`_OpenStream`).
        """
        handle, self._open_stream = self._open_stream, None
        self._callbacks.job = None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if handle is not None:
            handle.close()
        ownership.reap()

    # -- takes --------------------------------------------------------------------------

    def capture(
        self,
        n_frames: int,
        playback: np.ndarray | None = None,
        events: Sequence[Event] = (),
        timeout: float | None = None,
    ) -> CaptureJob:
        """Record ``n_frames`` (playing ``playback`` (n,) or (n, ch) meanwhile) -> the job.

        Raises:
            HardwareTimeoutError: the stream stopped delivering blocks.
        """
        ownership.reap()
        if self._open_stream is None:
            raise HardwareError("the audio stream is closed")
        if playback is not None:
            playback = np.asarray(playback, np.float32)
            if playback.ndim == 1:
                playback = np.repeat(playback[:, None], self.config.output_channels, axis=1)
        job = CaptureJob(n_frames, self.channels, playback, list(events))
        seconds = n_frames / self.samplerate
        timeout = timeout if timeout is not None else 2.0 * seconds + 2.0
        callbacks = self._callbacks
        blocks_before = callbacks.blocks
        callbacks.job = job
        finished = job.done.wait(timeout)
        callbacks.job = None
        if not finished:
            stalled = callbacks.blocks == blocks_before
            raise HardwareTimeoutError(
                f"a {seconds:.2f} s take did not finish within {timeout:.1f} s "
                + (
                    "(the audio stream delivered no blocks at all: audio server stopped?)"
                    if stalled
                    else f"(only {job.position} of {n_frames} frames arrived)"
                )
            )
        if job.error is not None:
            raise HardwareError(f"the take failed in the audio callback: {job.error}")
        return job


# ---- signal hygiene (pure) ---------------------------------------------------------------


def peak_dbfs(x: np.ndarray) -> float:
    peak = float(np.max(np.abs(x))) if np.size(x) else 0.0
    return 20.0 * np.log10(peak) if peak > 0 else -np.inf


def rms_dbfs(x: np.ndarray) -> float:
    value = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if np.size(x) else 0.0
    return 20.0 * np.log10(value) if value > 0 else -np.inf


def remove_dc(x: np.ndarray, reference: int = 0, sample_rate: int = 48_000) -> np.ndarray:
    """Remove a constant offset.

    With ``reference`` >= 32 leading samples known to hold no signal (the
    latency before a note sounds), their mean is the offset. Otherwise a
    zero-phase 2nd-order Butterworth high-pass at 10 Hz removes it (below any
    musical content; zero phase keeps the alignment).
    """
    x = np.asarray(x, np.float64)
    if reference >= 32:
        return (x - np.mean(x[:reference])).astype(np.float32)
    sos = signal.butter(2, 10.0, "highpass", fs=sample_rate, output="sos")
    return signal.sosfiltfilt(sos, x).astype(np.float32)


def onset_index(x: np.ndarray, threshold_db: float = -30.0, floor_db: float = -120.0) -> int | None:
    """First sample of a sound event in ``x`` (None for an all-zero take).

    The event is where ``|x|`` first reaches ``threshold_db`` relative to the
    take's peak; its onset is the first sample before that which rises above
    the floor: ``floor_db`` relative to the peak, or 4x the RMS of the samples
    well before the event (the noise), whichever is higher. In digital silence
    this is the very first non-zero sample of the note.
    """
    magnitude = np.abs(np.asarray(x, np.float64))
    peak = magnitude.max() if magnitude.size else 0.0
    if peak <= 0:
        return None
    event = int(np.argmax(magnitude >= peak * 10.0 ** (threshold_db / 20.0)))
    lead = magnitude[: event // 2]
    # Too short a lead-in would measure the note's own start, not the noise.
    noise = float(np.sqrt(np.mean(lead**2))) if lead.size >= 64 else 0.0
    floor = max(peak * 10.0 ** (floor_db / 20.0), 4.0 * noise)
    return int(np.argmax(magnitude[: event + 1] > floor))


def xcorr_lag(sent: np.ndarray, received: np.ndarray, max_lag: int) -> tuple[int, float]:
    """(lag, normalized peak) of ``received`` against ``sent``: received[n] ~ sent[n - lag].

    The peak is the correlation coefficient at that lag (1 for a clean delay).
    """
    sent = np.asarray(sent, np.float64)
    received = np.asarray(received, np.float64)
    corr = signal.correlate(received, sent, mode="full", method="fft")
    lags = signal.correlation_lags(received.size, sent.size, mode="full")
    keep = (lags >= 0) & (lags <= max_lag)
    best = int(np.argmax(np.abs(corr[keep])))
    lag = int(lags[keep][best])
    segment = received[lag : lag + sent.size]
    norm = np.sqrt(np.sum(sent[: segment.size] ** 2) * np.sum(segment**2))
    return lag, float(corr[keep][best] / norm) if norm > 0 else 0.0


def limit_peak(x: np.ndarray, ceiling_dbfs: float) -> tuple[np.ndarray, float]:
    """Scale ``x`` so its peak is at most ``ceiling_dbfs``; -> (limited, gain in dB applied).

    A static gain keeps the waveform undistorted; the final clip only guards
    against float rounding, so the peak never exceeds the ceiling.
    """
    ceiling = 10.0 ** (ceiling_dbfs / 20.0)
    peak = float(np.max(np.abs(x))) if np.size(x) else 0.0
    gain = min(1.0, ceiling / peak) if peak > 0 else 1.0
    limited = np.clip(np.asarray(x, np.float32) * np.float32(gain), -ceiling, ceiling)
    return limited.astype(np.float32), 20.0 * np.log10(gain)


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling of (n,) audio between integer rates."""
    if from_rate == to_rate:
        return np.asarray(x, np.float32)
    common = gcd(int(from_rate), int(to_rate))
    y = signal.resample_poly(np.asarray(x, np.float64), to_rate // common, from_rate // common)
    return y.astype(np.float32)
