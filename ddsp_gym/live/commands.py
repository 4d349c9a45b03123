"""``ddsp-gym live``: play a streaming env live (parser and command; docs/streaming.md).

Building the parser imports nothing heavy; the command imports the runner
(:mod:`ddsp_gym.live.runner`), which imports JAX only when a session is opened.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ddsp_gym.live.hardware import DEFAULT_AUDIO_IN, DEFAULT_MIDI_OUT
from ddsp_gym.live.runner import (
    DEFAULT_CLOCK_LATENCY_MS,
    EXIT_INTERRUPTED,
    LIVE_BACKENDS,
    TerminalView,
    open_session,
    report_markdown,
    run_session,
)
from ddsp_gym.live.sim import DEFAULT_LATENCY_BLOCKS

# ---- the command ------------------------------------------------------------------------------


def add_live_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ddsp-gym live``."""
    p = sub.add_parser(
        "live",
        help="play a streaming env live (sim or a real synth), agent at its own rate",
        description=(
            "Play a streaming env live (docs/streaming.md, 'Live mode'): the agent turns the "
            "knobs at its own rate; the audio never waits for it. Records live.wav, "
            "knobs.jsonl and summary.json to --out. Ctrl-C stops cleanly (all notes off). "
            "--panic only sends all-notes-off/all-sound-off to --midi-out."
        ),
    )
    p.add_argument("env_id", nargs="?", help="a streaming env id, e.g. ddsp_gym/Drone-v0")
    p.add_argument("--backend", default="sim", choices=LIVE_BACKENDS)
    p.add_argument("--agent", default="random-walk", help="random-walk | scripted | PATH.zip")
    p.add_argument("--seconds", type=float, default=30.0, help="how long to play (30)")
    p.add_argument("--out", type=Path, default=Path("live_out"), help="folder for the takes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--midi-out", default=DEFAULT_MIDI_OUT, help=f"({DEFAULT_MIDI_OUT})")
    p.add_argument("--audio-in", default=DEFAULT_AUDIO_IN, help="hardware capture device")
    p.add_argument(
        "--audio-out", default=None,
        help="sim output device (default: PortAudio's; 'null': none, paced in real time)",
    )  # fmt: skip
    p.add_argument(
        "--input", dest="live_input", default=None, metavar="DEVICE|FILE.wav",
        help="an effect env's live input (PerformerAssistant-v0): an input device "
        "('default': PortAudio's) or a recording played in real time, looped",
    )  # fmt: skip
    p.add_argument(
        "--clock", default=None, metavar="PORT|virtual",
        help="JamPartner-v0 plays to an incoming MIDI clock: a MIDI port sending it, or "
        "'virtual' (a port named ddsp_gym-clock-PID:clock for a sender to connect to)",
    )  # fmt: skip
    p.add_argument(
        "--clock-latency-ms", type=float, default=DEFAULT_CLOCK_LATENCY_MS,
        help=f"the clock's arrival latency, compensated ({DEFAULT_CLOCK_LATENCY_MS}: the JACK rig)",
    )  # fmt: skip
    p.add_argument(
        "--clock-timeout", type=float, default=5.0, help="seconds to wait for a clock (5)"
    )
    p.add_argument("--knob-map", default=None, help="hardware knob map (default per plant)")
    p.add_argument("--hostapi", default=None, help="e.g. JACK")
    p.add_argument("--latency-blocks", type=int, default=DEFAULT_LATENCY_BLOCKS)
    p.add_argument("--report", type=Path, default=None, help="also write a markdown report")
    p.add_argument("--panic", action="store_true", help="only silence --midi-out, then exit")
    p.set_defaults(func=_cmd_live)


def send_panic(port: str, api: str = "auto") -> None:
    """The panic that needs no state: all notes off and all sound off on every channel."""
    from ddsp_gym.backends.midi import MidiOutput, panic_messages

    out = MidiOutput(port, api, f"ddsp_gym-panic-{os.getpid()}")
    try:
        out.send_all(panic_messages())
    finally:
        out.close(flush_s=0.2)


def _cmd_live(args: argparse.Namespace) -> int:
    if args.panic:
        send_panic(args.midi_out)
        print(f"sent all notes off and all sound off to {args.midi_out}")
        return 0
    if not args.env_id:
        raise ValueError("give a streaming env id (e.g. ddsp_gym/Drone-v0), or --panic")
    session = open_session(
        args.env_id, backend=args.backend, agent=args.agent, out_dir=args.out, seed=args.seed,
        audio_out=args.audio_out, audio_in=args.audio_in, midi_out=args.midi_out,
        knob_map=args.knob_map, hostapi=args.hostapi, latency_blocks=args.latency_blocks,
        live_input=args.live_input, clock=args.clock, clock_latency_ms=args.clock_latency_ms,
        clock_timeout_s=args.clock_timeout,
    )  # fmt: skip
    with TerminalView() as view:
        summary = run_session(session, args.seconds, on_tick=view.update)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        command = "ddsp-gym live " + " ".join(sys.argv[2:]) if len(sys.argv) > 2 else "ddsp-gym"
        args.report.write_text(report_markdown(summary, command))
    if summary["stop_reason"] and summary["stop_reason"].startswith(("interrupted", "terminated")):
        return EXIT_INTERRUPTED
    return 2 if summary["errors"] else 0
