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

Prints ``ready`` once its MIDI port is open, ``panic: <why>`` on each panic. Imports no
JAX (it starts in well under a second).
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


def watch(fd: int, port: midi.MidiOutput, heartbeat_s: float, log=print) -> str:
    """Read heartbeats from ``fd`` until end-of-file; panic on EOF and on heartbeat silence.

    Returns why it ended ("eof"). Separate from :func:`main` so tests can drive it with
    an ordinary pipe and a stand-in port.
    """
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
            log("panic: the live runner is gone")
            return "eof"
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
    try:
        watch(sys.stdin.fileno(), port, args.heartbeat_s, log=lambda m: print(m, flush=True))
    finally:
        # close() panics again and waits for the messages to leave (rtmidi over JACK
        # sends on the next audio period and drops what is queued at close).
        time.sleep(0.05)
        port.close(flush_s=0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
