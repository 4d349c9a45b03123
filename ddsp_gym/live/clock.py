"""An incoming MIDI clock: ticks (0xF8, 24 per beat), Start / Stop / Continue, received
with python-rtmidi, timestamped, and turned into a tempo and a beat phase.

:class:`ClockTracker` is pure (no MIDI, no threads' clock: the caller gives every time),
so it is tested on synthetic tick streams; :class:`MidiClockInput` feeds it from a MIDI
input port (a named one, or a virtual port that a sender connects to).

Estimating. Each received tick gets an index (ticks since the last Start, or since the
first tick heard). The tempo and the phase come from a least-squares line through the
last ``window`` (index, arrival time) pairs: the slope is the tick interval, the line's
value at index 24 k a beat. A line averages the arrival jitter out (on the JACK rig a tick
arrives 0-23 ms late, one audio period of quantization) where the last interval alone
would be off by as much as the jitter itself; it is fitted to the earliest-arriving quarter
of the ticks, so a stalled machine's late bursts do not drag it.

- **Missing ticks.** After a dropout (no tick for ``stale_s``, then ticks at their
  pace) the indices move to where the line puts them, so a clock that kept time keeps
  its phase; a stall's burst of late ticks is told from it (:meth:`ClockTracker._missed`).
- **Tempo changes.** When the newest 12 ticks all lie on one side of the older ticks'
  line, by more than its jitter explains, and on a plausible line of their own, the
  window is cut to them and the line refits at the new tempo.
- **No clock.** :meth:`ClockTracker.estimate` returns None until ``min_ticks`` have
  arrived, and again when none has for ``stale_s`` (the sender stopped or the cable
  was pulled); callers decide what to do without a beat (live mode holds its last one).
- **Latency.** ``latency_s`` is subtracted from every arrival: the beat was *sent* that
  much earlier than the earliest-arriving ticks reached us (the line follows their
  lower envelope, see :func:`_line`; measured on the rig: docs/streaming.md).
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

TICKS_PER_BEAT = 24
CLOCK, START, CONTINUE, STOP = 0xF8, 0xFA, 0xFB, 0xFC
MIN_INTERVAL_S = 60.0 / (400.0 * TICKS_PER_BEAT)  # 400 BPM: faster is no musical clock
MAX_INTERVAL_S = 60.0 / (20.0 * TICKS_PER_BEAT)  # 20 BPM
TEMPO_CHANGE_TICKS = 12  # the newest ticks that must agree on a new tempo (half a beat)
EARLY_SHARE = 0.25  # the share of the ticks (the least late) the line is fitted to
REPHASE_TICKS = 6  # ticks after a silence that tell a stall's burst from a dropout
RELOCK_S = 8.0  # a silence longer than this starts a new clock (phase unknown)


@dataclasses.dataclass(frozen=True)
class ClockEstimate:
    """What the tracker believes at one moment (times in the tracker's clock, seconds).

    ``beat_s`` is the time of a beat (one whose tick index is a multiple of 24) on the
    fitted line, latency compensated; beats fall every ``beat_period_s`` from it.
    """

    tempo_bpm: float
    tick_interval_s: float
    beat_s: float
    running: bool  # False after a Stop (ticks may still come: tempo only)
    ticks: int  # ticks received in all
    dropped_ticks: int  # indices skipped over gaps
    jitter_s: float  # rms residual of the arrivals about the line

    @property
    def beat_period_s(self) -> float:
        return self.tick_interval_s * TICKS_PER_BEAT

    def beat_phase(self, t: float) -> float:
        """Where in the beat time ``t`` lies, in [0, 1) (0: on a beat)."""
        return ((t - self.beat_s) / self.beat_period_s) % 1.0

    def last_beat(self, t: float) -> float:
        """Time of the latest beat at or before ``t``."""
        return self.beat_s + math.floor((t - self.beat_s) / self.beat_period_s) * self.beat_period_s


class ClockTracker:
    """MIDI clock ticks in, tempo and beat phase out; see the module docstring.

    Thread safe: the MIDI callback thread calls :meth:`message`, the block thread
    :meth:`estimate`.

    Args:
        window: ticks the line is fitted through (192: eight beats, 4 s at 120 BPM).
        min_ticks: ticks needed before an estimate (12: half a beat).
        stale_s: no estimate once the last tick is older than this.
        latency_s: arrival latency subtracted from every tick.
    """

    def __init__(
        self,
        window: int = 192,
        min_ticks: int = 12,
        stale_s: float = 0.5,
        latency_s: float = 0.0,
    ) -> None:
        if window < 4 or min_ticks < 3 or min_ticks > window:
            raise ValueError(
                f"need 4 <= window and 3 <= min_ticks <= window, got {window}, {min_ticks}"
            )
        if not (stale_s > 0 and math.isfinite(latency_s)):
            raise ValueError(
                f"stale_s must be > 0 and latency_s finite, got {stale_s}, {latency_s}"
            )
        self.window, self.min_ticks, self.stale_s = window, min_ticks, stale_s
        self.latency_s = latency_s
        self._lock = threading.Lock()
        self._points: deque[tuple[int, float]] = deque(maxlen=window)
        self._index = -1
        self._fit: tuple[float, float, float] | None = None  # (slope, intercept, rms)
        self._pending: tuple[int, float, tuple[float, float, float]] | None = None  # _rephase
        self.running = False
        self.ticks = 0
        self.dropped_ticks = 0
        self.tempo_resets = 0
        self.last_tick_s: float | None = None

    # -- input ---------------------------------------------------------------------------

    def message(self, status: int, t: float) -> None:
        """One MIDI real-time message (its status byte) that arrived at time ``t``."""
        if status == CLOCK:
            self.tick(t)
        elif status == START:
            self.start()
        elif status == CONTINUE:
            with self._lock:
                self.running = True
        elif status == STOP:
            with self._lock:
                self.running = False

    def start(self) -> None:
        """Start: the next tick is the first of beat 1 (the MIDI spec's meaning)."""
        with self._lock:
            self.running = True
            self._points.clear()
            self._index = -1
            self._fit = None
            self._pending = None

    def tick(self, t: float) -> None:
        """A clock tick that arrived at ``t``."""
        t = float(t) - self.latency_s
        with self._lock:
            self.ticks += 1
            if self._index < 0:
                self.running = True  # a clock without Start: a receiver joining mid-song
            self._index += 1 + self._missed(t)
            self._points.append((self._index, t))
            self.last_tick_s = t
            if self._pending is not None:
                self._rephase()
            self._refit()

    def _missed(self, t: float) -> int:
        """Indices skipped before the tick at ``t``: each tick counts one, except after a
        silence (0 without a line to judge by).

        A tick is never early, only late: by up to an audio period on JACK, by more on a
        stalled machine, whose held-up ticks then arrive in a burst. A silence longer
        than ``stale_s`` is therefore either a stall (a burst follows: the count was
        right) or a dropout (ticks resume at their pace: the sender went on without us).
        Which one is decided :data:`REPHASE_TICKS` ticks later (:meth:`_rephase`); a
        silence longer than :data:`RELOCK_S` is a new clock (the line would not hold that
        long) and the window restarts. A single tick lost inside a stream cannot be told
        from a late one under JACK's jitter, and is not looked for (none were lost in the
        rig's tests: every tick sent was received).
        """
        if self._fit is None or self.last_tick_s is None:
            return 0
        gap = t - self.last_tick_s
        if gap > RELOCK_S:
            self._points.clear()
            self._fit = None
            self._pending = None
        elif gap > self.stale_s:
            self._pending = (self._index + 1, t, self._fit)
        return 0

    def _rephase(self) -> None:
        """After a silence: a burst was a stall; ticks at their pace were a dropout, and
        the indices since it move to where the old line puts them."""
        first_index, _, (slope, intercept, _) = self._pending
        since = [(k, t) for k, t in self._points if k >= first_index]
        if len(since) < REPHASE_TICKS:
            return
        self._pending = None
        gaps = np.diff([t for _, t in since])
        if np.median(gaps) < 0.5 * slope:
            return  # a burst: late ticks, all counted
        # Where the line puts them, by the least late of them (ticks are never early;
        # the first after a stall may be held up more than the rest).
        shift = round(min((t - intercept) / slope - k for k, t in since))
        if shift <= 0:
            return
        moved = [(k + shift if k >= first_index else k, t) for k, t in self._points]
        self._points.clear()
        self._points.extend(moved)
        self._index += shift
        self.dropped_ticks += shift

    def _refit(self) -> None:
        if len(self._points) < 3:
            self._fit = None
            return
        points = list(self._points)
        new = TEMPO_CHANGE_TICKS
        if len(points) >= 3 * new:
            # A tempo change: the newest ticks all off the line of the ticks before them,
            # on one side, by more than that line's jitter explains, and on a line of
            # their own at a plausible tempo (a burst of late ticks after a stall is not).
            slope, intercept, rms = _line(points[:-new])
            residuals = [t - (intercept + slope * k) for k, t in points[-new:]]
            bound = max(4.0 * rms, 0.05 * slope)
            if all(r > bound for r in residuals) or all(r < -bound for r in residuals):
                # A plain fit: a quarter of 12 ticks is too few for the envelope's.
                k = np.array([p[0] for p in points[-new:]], np.float64)
                t = np.array([p[1] for p in points[-new:]], np.float64)
                new_slope, new_intercept = _least_squares(k, t)
                new_rms = float(np.sqrt(np.mean((t - new_intercept - new_slope * k) ** 2)))
                # Another pace: a tempo change, by more than the new ticks' own slope
                # could be off by (3 standard errors). The same pace, only later, is a
                # delay (a machine running late), which the envelope line rides out.
                spread = float(np.sqrt(TEMPO_CHANGE_TICKS**3 / 12.0))  # sqrt(sum (k - mean)^2)
                off = max(0.02 * slope, 3.0 * new_rms / spread)
                paced = 0.5 * slope < new_slope < 2.0 * slope and abs(new_slope - slope) > off
                if paced and new_rms <= max(2.0 * rms, 0.1 * slope):
                    self._points.clear()
                    self._points.extend(points[-new:])
                    self.tempo_resets += 1
        fit = _line(self._points)
        # A line at an impossible tempo (a burst fitted alone) is no estimate.
        self._fit = fit if MIN_INTERVAL_S <= fit[0] <= MAX_INTERVAL_S else None

    # -- output --------------------------------------------------------------------------

    def estimate(self, now: float) -> ClockEstimate | None:
        """The tempo and phase at ``now``, or None (too few ticks yet, or none lately)."""
        with self._lock:
            if (
                self._fit is None
                or len(self._points) < self.min_ticks
                or self.last_tick_s is None
                or now - self.latency_s - self.last_tick_s > self.stale_s
            ):
                return None
            slope, intercept, rms = self._fit
            if not slope > 0:
                return None
            # The newest beat on the line (index a multiple of 24) at or before the last tick.
            beat_index = (self._index // TICKS_PER_BEAT) * TICKS_PER_BEAT
            return ClockEstimate(
                tempo_bpm=60.0 / (slope * TICKS_PER_BEAT),
                tick_interval_s=slope,
                beat_s=intercept + slope * beat_index,
                running=self.running,
                ticks=self.ticks,
                dropped_ticks=self.dropped_ticks,
                jitter_s=rms,
            )


def _line(points) -> tuple[float, float, float]:
    """(slope, intercept, rms residual) of arrival time against tick index, fitted to the
    earliest-arriving quarter of the ticks.

    A tick is never early, only late, and by a lot when the machine stalls (the late
    ticks then arrive in a burst): a least-squares line through all of them leans
    toward the late ones. Fits through the ticks at or below the lower quartile of the
    residuals follow the lower envelope, which the stalls do not move. The rms is
    over all the ticks (how jittery the clock is).
    """
    k = np.fromiter((p[0] for p in points), np.float64)
    t = np.fromiter((p[1] for p in points), np.float64)
    slope, intercept = _least_squares(k, t)
    residual = t - intercept - slope * k
    if len(k) >= 8:
        for _ in range(4):  # each fit starts from a line the late ticks moved less
            early = residual <= np.quantile(residual, EARLY_SHARE)
            if np.ptp(k[early]) > 0:
                slope, intercept = _least_squares(k[early], t[early])
                residual = t - intercept - slope * k
    return slope, intercept, float(np.sqrt(np.mean(residual**2)))


def _least_squares(k: np.ndarray, t: np.ndarray) -> tuple[float, float]:
    k0, t0 = k.mean(), t.mean()
    dk = k - k0
    slope = float(np.dot(dk, t - t0) / np.dot(dk, dk))
    return slope, float(t0 - slope * k0)


# ---- the MIDI input ---------------------------------------------------------------------------


class MidiClockInput:
    """A python-rtmidi input that feeds a :class:`ClockTracker`.

    ``port`` is a MIDI output port to listen to (exact name or unique substring, as
    :func:`ddsp_gym.backends.midi.match_port` matches), or ``"virtual"``: a virtual input
    port named ``client_name:clock`` that a sender connects to.

    No Python callback: rtmidi's own thread (on JACK, the process callback) queues each
    message with its time since the one before, and a Python thread polls the queue. A
    callback would need the GIL inside JACK's process cycle; while JAX or anything else
    held it the client missed its cycles, and JACK dropped their MIDI (ticks lost, seen on
    the rig under load). A message's time is rtmidi's (the sum of the deltas: on JACK
    once per audio period, which the tracker's line averages out) on ``clock()``'s axis:
    the offset is the smallest seen of poll time minus rtmidi time, the least delayed poll.
    """

    def __init__(
        self,
        port: str,
        tracker: ClockTracker | None = None,
        api: str = "auto",
        client_name: str = "ddsp_gym-clock",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        from ddsp_gym.backends.errors import MidiPortNotFoundError
        from ddsp_gym.backends.midi import _candidate_apis, api_name, import_rtmidi, match_port

        rtmidi = import_rtmidi()
        self.tracker = tracker or ClockTracker()
        self.clock = clock
        self.port_name: str | None = None
        self.messages = 0
        self._midi_t = 0.0  # rtmidi's time of the last message (sum of its deltas)
        self._offset: float | None = None  # clock() minus rtmidi time, least delayed poll
        self._stop = threading.Event()
        listing: dict[str, str] = {}
        for rtapi in _candidate_apis(api):
            try:
                midi_in = rtmidi.MidiIn(rtapi=rtapi, name=client_name, queue_size_limit=4096)
            except (rtmidi.RtMidiError, SystemError, RuntimeError) as err:
                listing[api_name(rtapi)] = f"unavailable ({err})"
                continue
            # rtmidi drops timing messages unless told not to.
            midi_in.ignore_types(sysex=True, timing=False, active_sense=True)
            if port == "virtual":
                midi_in.open_virtual_port("clock")
                self.port_name = f"{client_name}:clock (virtual)"
            else:
                ports = list(midi_in.get_ports())
                index = match_port(port, ports)
                if index is None:
                    listing[api_name(rtapi)] = ", ".join(map(repr, ports)) or "(none)"
                    midi_in.delete()
                    continue
                midi_in.open_port(index, "clock")
                self.port_name = ports[index]
            self._in = midi_in
            self._thread = threading.Thread(target=self._poll, name="midi-clock", daemon=True)
            self._thread.start()
            return
        shown = "\n".join(f"  {name}: {ports}" for name, ports in listing.items())
        raise MidiPortNotFoundError(
            f"no MIDI port {port!r} to take a clock from. Ports that exist:\n{shown}\n"
            "(or --clock virtual: a port a clock sender connects to)"
        )

    def _poll(self, idle_s: float = 0.001) -> None:
        while not self._stop.is_set():
            midi_in = self._in
            event = midi_in.get_message() if midi_in is not None else None
            if event is None:
                self._stop.wait(idle_s)
                continue
            self.receive(event[0], event[1], self.clock())

    def receive(self, message, delta_s: float, polled_at: float) -> None:
        """One message from rtmidi's queue (``delta_s`` after the one before it), polled
        at ``polled_at``: timestamped on ``clock()``'s axis and given to the tracker."""
        if not message:
            return
        self.messages += 1
        self._midi_t += float(delta_s)
        offset = polled_at - self._midi_t
        self._offset = offset if self._offset is None else min(self._offset, offset)
        self.tracker.message(message[0], self._offset + self._midi_t)

    def close(self) -> None:
        self._stop.set()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(timeout=2.0)
        midi_in, self._in = self._in, None
        if midi_in is not None:
            midi_in.close_port()
            midi_in.delete()


class MidiClockSender:
    """A MIDI clock master on a JACK MIDI port (a virtual output ``name:out``): 24 ticks a
    beat on an absolute schedule, each send time kept; :meth:`start_song` sends Start, and
    the next tick is tick 0 of the song (a beat). What the rig's tests and
    ``scripts/live_clock_report.py`` play to a live JamPartner."""

    def __init__(self, bpm: float, name: str = "ddsp_gym-clock-sender") -> None:
        from ddsp_gym.backends.midi import import_rtmidi

        if not (math.isfinite(bpm) and 20.0 <= bpm <= 400.0):
            raise ValueError(f"a clock's tempo must lie in [20, 400] BPM, got {bpm}")
        rtmidi = import_rtmidi()
        self.interval = 60.0 / (bpm * TICKS_PER_BEAT)
        self.name = name
        self.out = rtmidi.MidiOut(rtapi=rtmidi.API_UNIX_JACK, name=name)
        self.out.open_virtual_port("out")
        self.sent: list[float] = []  # monotonic send time of tick k of the song
        self._song = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="clock-sender", daemon=True)
        self._thread.start()

    def start_song(self) -> None:
        self._song.set()

    def _run(self) -> None:
        due = time.monotonic()
        started = False
        while not self._stop.is_set():
            due += self.interval
            while (left := due - time.monotonic()) > 0:
                time.sleep(min(left, 0.002))
            if self._song.is_set() and not started:
                self.out.send_message([START])
                started = True
            if started:
                self.sent.append(time.monotonic())
            self.out.send_message([CLOCK])

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        self.out.close_port()
        self.out.delete()


def measure_against(
    tracker: ClockTracker, sent: list[float], now: float
) -> tuple[float, float, list[float]] | None:
    """(tempo, phase error s, arrival latencies s) of ``tracker`` against a sender's song
    (``sent``: send times, tick 0 a beat), or None without an estimate. The phase error
    is signed: the tracker's nearest beat minus the sent one (+: late)."""
    est = tracker.estimate(now)
    if est is None or not sent:
        return None
    period = est.beat_period_s
    error = (est.beat_s - sent[0] + period / 2) % period - period / 2
    with tracker._lock:
        points = list(tracker._points)
    latency = [t + tracker.latency_s - sent[k] for k, t in points if 0 <= k < len(sent)]
    return est.tempo_bpm, error, latency


def wait_for_lock(
    tracker: ClockTracker, timeout_s: float, clock: Callable[[], float] = time.monotonic
) -> ClockEstimate | None:
    """Poll until the tracker has an estimate, or None after ``timeout_s``."""
    end = clock() + timeout_s
    while True:
        est = tracker.estimate(clock())
        if est is not None or clock() >= end:
            return est
        time.sleep(0.01)
