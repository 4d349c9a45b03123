"""The live runner's note watchdog: a second process that silences the synth when the
runner dies, however it dies.

A process killed with SIGKILL (or one that segfaults, or loses power to its Python
interpreter) runs no ``finally``, no signal handler and no ``atexit``: it cannot send its
own note-offs. So before the live runner sends its first note-on it starts this
watchdog, which opens its own MIDI client on the same port and reads a pipe whose only
writer is the runner. The kernel closes that pipe when the runner exits for *any*
reason; the watchdog then reads end-of-file and sends the stateless panic (all notes off
and all sound off on all 16 channels, :func:`ddsp_gym.backends.midi.panic_messages`).

The runner also writes one heartbeat byte per block. A runner that stops writing for
``--heartbeat-s`` seconds while still alive (stopped with SIGSTOP, or wedged) gets its
notes silenced too: notes sound only while the heartbeat lasts. The watchdog ignores
SIGINT (a terminal's Ctrl-C reaches the whole process group; the runner handles it and
the watchdog must outlive it to send the last panic).

    python -m ddsp_gym.live.watchdog PORT [--api jack] [--heartbeat-s 2.0]

Prints ``ready`` on stdout once its MIDI port is open, ``panic: <why>`` on stderr. On
the way out it repeats the panic for ``PANIC_WINDOW_S`` (3 s): see there why. Imports no JAX (it
starts in well under a second).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import sys
import time
from collections.abc import Sequence

from ddsp_gym.backends import midi

READY = "ready"
DEFAULT_HEARTBEAT_S = 2.0
# After the runner is gone the panic is repeated for PANIC_WINDOW_S, every PANIC_GAP_S
# (the messages are idempotent). A synth that misses an audio period to an xrun misses
# that period's MIDI too; and a client killed outright stalls a JACK graph until the
# server evicts it (most of a second on the rig), while rtmidi queues our panic for a
# process cycle that does not come: a port closed then would drop it.
PANIC_WINDOW_S = 3.0
PANIC_GAP_S = 0.2


def _log(message: str) -> None:
    """To stderr (stdout is the runner's pipe, which it stops reading after "ready")."""
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:  # a runner that took its terminal with it
        pass


HEARTBEAT = b"."
CLEAN_EXIT = b"q"  # the runner stopped cleanly and checked the synth is silent


def watch(fd: int, port: midi.MidiOutput, heartbeat_s: float, log=print) -> str:
    """Read heartbeats from ``fd`` until end-of-file; panic on EOF and on heartbeat silence.

    Returns why it ended: "clean" (the runner said :data:`CLEAN_EXIT` before closing) or
    "eof" (it died). Separate from :func:`main` so tests can drive it with an ordinary
    pipe and a stand-in port.
    """
    clean = False
    silenced = False
    while True:
        readable, _, _ = select.select([fd], [], [], heartbeat_s)
        if not readable:
            if not silenced:
                port.panic()
                log(f"panic: no heartbeat for {heartbeat_s:g} s")
                silenced = True
            continue
        data = os.read(fd, 4096)
        if not data:
            port.panic()
            log("panic: the live runner stopped" if clean else "panic: the live runner is gone")
            return "clean" if clean else "eof"
        clean = clean or CLEAN_EXIT in data
        silenced = False  # the runner is back: a later silence panics again


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ddsp_gym.live.watchdog")
    parser.add_argument("port", help="the MIDI output port the live runner plays")
    parser.add_argument("--api", default="auto", help="rtmidi API (auto, jack, alsa, ...)")
    parser.add_argument("--heartbeat-s", type=float, default=DEFAULT_HEARTBEAT_S)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        port = midi.MidiOutput(args.port, args.api, f"ddsp_gym-watchdog-{os.getpid()}")
    except Exception as err:  # noqa: BLE001 - the runner reads this line and refuses to start
        print(f"error: {err}", flush=True)
        return 2
    print(READY, flush=True)
    why = "eof"
    try:
        why = watch(sys.stdin.fileno(), port, args.heartbeat_s, log=_log)
    finally:
        repeats = 0 if why == "clean" else round(PANIC_WINDOW_S / PANIC_GAP_S)
        for _ in range(repeats):
            time.sleep(PANIC_GAP_S)
            port.panic()
        # close() panics once more and waits for the messages to leave (rtmidi over JACK
        # sends on the next audio period and drops what is queued at close).
        port.close(flush_s=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
