"""Live mode: a streaming env played in real time, with the agent at its own rate.

Three threads, and the audio callback, which never waits on any of them:

* the **agent thread** reads the newest observation, asks the agent for an action (in
  the env's own action space: delta or absolute knobs), turns it into unit knob targets
  and posts them to a :class:`~ddsp_gym.live.buffers.TargetSlot`; it runs as fast or as
  slow as the agent does;
* the **block thread** owns the stream's state. At each block edge it takes the newest
  target (or keeps the last one: the ramp makes a held knob a constant) and
  - ``sim``: renders the block with the same jitted ``transition`` the offline env steps
    (so live and offline audio agree block for block), and writes it, resampled to the
    device rate, into a :class:`~ddsp_gym.live.buffers.SampleFifo`;
  - ``hardware``: sends the knob targets to the synth over MIDI (the knob map's CCs,
    only what changed) and scores the block captured back from it with the same
    ``score_played`` (features, task reward, penalties) as the offline env;
* the **recorder thread** writes the WAV and the knob log (JSONL), so file I/O never
  delays a block.

The sim's output callback only copies samples out of the FIFO; when a block is not
ready in time it plays zeros and counts an xrun (``late_blocks``); the device's own
over/underrun flags count too (``device_xruns``); on JACK the server's logged xruns are
reported beside them (``server_xruns``). ``info["xruns"]`` is their sum so far.

Stopping: every exit path (the time is up, Ctrl-C, SIGTERM, an exception, ``atexit``)
goes through :meth:`~ddsp_gym.live.session.LiveSession.stop`, which panics the synth
(all notes off, all sound off, all channels: a message list that needs no state). A
process killed outright (SIGKILL) runs none of that: the hardware backend therefore
starts a watchdog process first (:mod:`ddsp_gym.live.watchdog`) that panics when the
runner's pipe closes.

The pieces, one module each (ddsp_gym/live/): ``buffers`` (the FIFO, the mailbox, the
resampler), ``core`` (the env's jitted block functions), ``agents``, ``session`` (the
agent thread, the recorder, stop and summary), ``sim`` and ``hardware`` (the backends),
``devices`` (the sound card). This module opens and runs a session, and draws it in the
terminal.

    summary = run_live("ddsp_gym/Drone-v0", backend="sim", agent="random-walk", seconds=10)
    ddsp-gym live ddsp_gym/Drone-v0 --backend hardware --seconds 60 --out live_out
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ddsp_gym.live.agents import make_agent
from ddsp_gym.live.clock import ClockTracker, MidiClockInput
from ddsp_gym.live.core import BlockCore
from ddsp_gym.live.devices import NULL_DEVICE, CallbackStream, NullOutput, device_rate
from ddsp_gym.live.hardware import DEFAULT_AUDIO_IN, DEFAULT_MIDI_OUT, HardwareLive
from ddsp_gym.live.inputs import CaptureInput, is_audio_file
from ddsp_gym.live.session import LiveSession
from ddsp_gym.live.sim import DEFAULT_LATENCY_BLOCKS, SimLive

# "plugin" is known so that it gets its own error (why DawDreamer cannot play live).
LIVE_BACKENDS = ("sim", "hardware", "plugin")
EXIT_INTERRUPTED = 130
# A MIDI clock's latency on the JACK rig, as the tracker's line sees it: rtmidi delivers
# MIDI once per audio period (1024 frames at 48 kHz), 0-25 ms late, 10-11 ms on average;
# the line follows the least late ticks, which lie ~2 ms late (tests/
# test_live_io_rig.py measures both; docs/streaming.md).
DEFAULT_CLOCK_LATENCY_MS = 2.0


# ---- one call: build, run, stop on every path -------------------------------------------------


def open_session(
    env_id: str,
    backend: str = "sim",
    agent: str = "random-walk",
    out_dir: Path | None = None,
    seed: int = 0,
    audio_out: str | None = None,
    audio_in: str | None = DEFAULT_AUDIO_IN,
    midi_out: str = DEFAULT_MIDI_OUT,
    knob_map: str | None = None,
    hostapi: str | None = None,
    latency_blocks: int = DEFAULT_LATENCY_BLOCKS,
    live_input: str | None = None,
    clock: str | None = None,
    clock_latency_ms: float = DEFAULT_CLOCK_LATENCY_MS,
    clock_timeout_s: float = 5.0,
    core: BlockCore | None = None,
) -> LiveSession:
    """A session ready to ``start()`` (nothing sounds yet).

    ``live_input`` (effects): a recording (played in real time, looped, as the offline
    env's ``input``) or an input device's name (``default``: PortAudio's). ``clock``
    (JamPartner): a MIDI port sending clock, or ``virtual``. ``audio_out="null"``: no
    sound card, a clocked null output paces the session in real time. ``core``: play an
    already built (compiled) core from its current state; ``agent=None``: no agent
    thread (the live env posts the targets).
    """
    if backend not in LIVE_BACKENDS:
        raise ValueError(f"--backend must be one of {LIVE_BACKENDS}, got {backend!r}")
    if backend == "plugin":
        # Measured, not assumed: scripts/live_plugin_continuity.py (docs/streaming.md).
        raise NotImplementedError(
            "live mode's plugin backend is not supported yet: DawDreamer resets the plugin "
            "at every render() call (a held note stops at the block's end; "
            "results/live_plugin_continuity.md), so it cannot render a live stream one "
            "block at a time. Use --backend sim, or --backend hardware to play the same "
            "synth (amsynth) live over MIDI; gym.make(ID, backend='plugin') renders whole "
            "takes offline"
        )
    if backend == "hardware" and (live_input is not None or clock is not None):
        raise NotImplementedError(
            "--input and --clock play on the sim backend (the block plant out through the "
            "sound card); the hardware backend plays the drone on a MIDI synth"
        )
    core = core or make_core(env_id, live_input, seed)
    the_agent = make_agent(agent, core, seed) if agent is not None else None
    if backend == "sim":
        opener, rate = output_opener(audio_out, hostapi, core.sample_rate)
        capture = None
        if live_input is not None and not is_audio_file(live_input):
            capture = capture_input(live_input, hostapi, core)
        beat = None
        if clock is not None:
            # Compile first: a MIDI input open while JAX compiles waits for the GIL, and
            # a JACK client that misses its cycles loses their MIDI (ticks, a Start).
            core.warm_up(live_input=capture is not None)
            beat = clock_tracker(clock, clock_latency_ms)
        try:
            session = SimLive(
                core, the_agent, opener, rate, out_dir, latency_blocks,
                capture=capture, beat=beat, clock_timeout_s=clock_timeout_s,
            )  # fmt: skip
        except BaseException:
            if beat is not None:
                beat.midi_input.close()
            raise
        if beat is not None:
            session.on_close.append(beat.midi_input.close)
        return session
    return HardwareLive(
        core, the_agent, out_dir, midi_out=midi_out, audio_in=audio_in,
        knob_map=knob_map, hostapi=hostapi,
    )  # fmt: skip


def make_core(env_id: str, live_input: str | None = None, seed: int = 0) -> BlockCore:
    """The env's block core, its input set for ``live_input`` (see :func:`_input_kwargs`)."""
    return BlockCore(env_id, seed=seed, **_input_kwargs(live_input))


def _input_kwargs(live_input: str | None) -> dict[str, Any]:
    """The env's ``input`` for a live input: the recording itself, or for a device a
    silent one (the warm-up at reset plays silence, not the generated performance)."""
    if live_input is None:
        return {}
    if is_audio_file(live_input):
        if not Path(live_input).is_file():
            raise ValueError(f"--input {live_input!r}: no such file")
        return {"input": live_input}
    import numpy as np

    return {"input": np.zeros(1, np.float32)}


def output_opener(audio_out: str | None, hostapi: str | None, sample_rate: int):
    """(stream opener, device rate) of the sim's output: a device, or the null output."""
    if audio_out == NULL_DEVICE:
        return (lambda callback, rate: NullOutput(callback, rate)), sample_rate

    def opener(callback, rate):
        return CallbackStream("output", audio_out, callback, rate, hostapi)

    return opener, device_rate(audio_out, "output", hostapi)


def capture_input(device: str, hostapi: str | None, core: BlockCore) -> CaptureInput:
    """The live input of an effect: ``device`` (``default``: PortAudio's default input)."""
    name = None if device == "default" else device

    def opener(callback, rate):
        return CallbackStream("input", name, callback, rate, hostapi)

    rate = device_rate(name, "input", hostapi)
    return CaptureInput(opener, rate, core.sample_rate, core.block_size)


def check_clock_latency(latency_ms: float) -> None:
    if not (math.isfinite(latency_ms) and 0.0 <= latency_ms < 1000.0):
        raise ValueError(f"--clock-latency-ms must lie in [0, 1000), got {latency_ms}")


def clock_tracker(port: str, latency_ms: float) -> ClockTracker:
    """A tracker fed by a MIDI clock on ``port`` (``virtual``: a port to connect to);
    its input is ``tracker.midi_input`` (closed with the session)."""
    check_clock_latency(latency_ms)
    tracker = ClockTracker(latency_s=latency_ms / 1000.0)
    tracker.midi_input = MidiClockInput(port, tracker, client_name=f"ddsp_gym-clock-{os.getpid()}")
    return tracker


@contextlib.contextmanager
def _sigterm_stops(session: LiveSession):
    """SIGTERM asks ``session`` to stop (SIGINT raises KeyboardInterrupt, as ever).

    The handler only sets the session's stop flag, which the run loop checks: an
    exception raised at an arbitrary point of the main thread could land in some
    library's ``except Exception`` and be lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        session.request_stop(f"terminated (signal {signum})")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_session(
    session: LiveSession,
    seconds: float,
    on_tick: Callable[[LiveSession], None] | None = None,
    tick_s: float = 0.25,
) -> dict[str, Any]:
    """Start, run for ``seconds`` (or until Ctrl-C, SIGTERM or an error), stop -> summary.

    The session is stopped (the synth silenced, the files closed) on every path out.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    with _sigterm_stops(session):
        try:
            session.start()
            end = time.monotonic() + seconds
            while not session.done and time.monotonic() < end:
                time.sleep(min(tick_s, max(0.0, end - time.monotonic())))
                if on_tick is not None:
                    on_tick(session)
            session.stop("time up")
        except KeyboardInterrupt:
            session.stop("interrupted (Ctrl-C)")
        finally:
            session.stop("error")
    summary = session.summary()
    summary["seconds_requested"] = seconds
    return summary


def run_live(env_id: str, seconds: float = 10.0, **options: Any) -> dict[str, Any]:
    """Play ``env_id`` live for ``seconds``: :func:`open_session`'s options -> the summary."""
    return run_session(open_session(env_id, **options), seconds)


# ---- reports and the terminal view ---------------------------------------------------------


def format_line(session: LiveSession) -> str:
    info = session.info()
    knobs = " ".join(f"{k}={v:.3g}" for k, v in info["knobs"].items())
    return f"block {info['block']:>5}  reward {info['reward']:+.3f}  xruns {info['xruns']}  {knobs}"


class TerminalView:
    """Knobs, reward and xruns: a rich table redrawn in place on a TTY, plain lines else."""

    def __init__(self, stream=None, plain_every_s: float = 1.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._live = None

    def __enter__(self) -> TerminalView:
        if self.tty:
            from rich.live import Live

            self._live = Live(refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self, session: LiveSession):
        from rich.table import Table

        info = session.info()
        table = Table(title=f"{session.core.env_id} live ({session.backend})  Ctrl-C stops")
        table.add_column("knob")
        table.add_column("value", justify="right")
        table.add_column("bar")
        for spec in session.core.plant.knob_specs:
            value = info["knobs"][spec.name]
            unit = float(spec.to_unit(value))
            table.add_row(f"{spec.name} ({spec.unit})", f"{value:.4g}", "#" * round(20 * unit))
        table.add_row("reward", f"{info['reward']:+.3f}", "")
        for term, value in sorted(info.get("terms", {}).items()):
            if term not in ("peak", "loudness_db"):
                table.add_row(f"  {term}", f"{value:+.3f}", "")
        table.add_row("block", str(info["block"]), "")
        table.add_row(
            "xruns", str(info["xruns"]), f"late {info['late_blocks']} device {info['device_xruns']}"
        )
        return table

    def update(self, session: LiveSession) -> None:
        if self._live is not None:
            self._live.update(self._table(session))
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            print(format_line(session), file=self.stream, flush=True)


def report_markdown(summary: dict[str, Any], command: str) -> str:
    """A short markdown report of one live session (results/live_rig.md)."""

    def row(name: str, value: Any) -> str:
        return f"| {name} | {value} |"

    after = summary.get("after_stop_peak_dbfs")
    lines = [
        f"# Live mode: {summary['env_id']} on the {summary['backend']} backend",
        "",
        f"Written by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "| what | value |",
        "|---|---|",
        row("seconds played", summary["seconds_played"]),
        row(
            "blocks",
            f"{summary['blocks']} x {summary['block_size']} samples at {summary['sample_rate']} Hz",
        ),  # fmt: skip
        row("device rate", f"{summary.get('device_rate')} Hz"),
        row("xruns (info['xruns'])", summary["xruns"]),
        row("  late blocks", summary["late_blocks"]),
        row("  device over/underruns", summary["device_xruns"]),
        row("jackd's logged xruns", summary["server_xruns"]),
        row(
            "machine load (1-min average, start / stop)",
            f"{summary['load_avg_1min_at_start']} / {summary['load_avg_1min_at_stop']} "
            f"on {summary['cpu_count']} cores",
        ),
        row(
            "mean reward per block",
            f"{summary['mean_reward']:.3f}" if summary["mean_reward"] is not None else "-",
        ),  # fmt: skip
        row(
            "agent targets posted / taken",
            f"{summary['targets_posted']} / {summary['targets_taken']}",
        ),  # fmt: skip
        row("stop", summary["stop_reason"]),
    ]
    if summary["backend"] == "hardware":
        lines += [
            row("synth, knob map", f"{summary['midi_out']}, {Path(summary['knob_map']).name}"),
            row("dropped capture frames", summary["dropped_frames"]),
            row(
                "synth peak 0.25-0.5 s after the stop",
                f"{after:.1f} dBFS" if after is not None else "-",
            ),  # fmt: skip
        ]
    if summary["errors"]:
        lines += ["", "Errors: " + "; ".join(summary["errors"])]
    return "\n".join(lines) + "\n"
