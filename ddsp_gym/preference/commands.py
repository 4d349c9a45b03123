"""``ddsp-gym prefer``: the A/B listening app on 127.0.0.1 (see docs/prefer.md).

Thin: parse, check names, start the server. Building the parser imports nothing heavy
(no JAX, no FastAPI); those load when the command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from ddsp_gym.catalog import PLANT_NAMES

DEFAULT_PORT = 8765
DEFAULT_ROOT = Path("prefer_sessions")


def parse_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["latency=12", "midi_out=amsynth:midi_in"]`` -> options, each value read as YAML
    (numbers, booleans, lists; anything else stays a string). ValueError names a bad pair."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--hardware takes KEY=VALUE pairs, got {pair!r}")
        try:
            options[key.strip()] = yaml.safe_load(value) if value.strip() else ""
        except yaml.YAMLError:
            options[key.strip()] = value
    return options


def add_prefer_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``ddsp-gym prefer`` on the top-level subparsers."""
    p = sub.add_parser(
        "prefer",
        help="a local web page where you vote A/B and the search finds your patch",
        description="Serve the A/B listening app on this machine: you hear two candidate "
        "patches, vote, and watch the search converge. Sessions are saved under --root and "
        "resume after a restart (--session ID). Ctrl-C stops it (a synth: all notes off).",
    )
    what = p.add_mutually_exclusive_group()
    what.add_argument("--env", metavar="ID", help="an env id, e.g. ddsp_gym/RealSynthPatch-v1")
    what.add_argument("--plant", metavar="NAME", help=", ".join(PLANT_NAMES))
    p.add_argument("--backend", choices=("sim", "hardware", "plugin"), default="sim")
    p.add_argument(
        "--hardware",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="backend options (hardware or plugin), e.g. midi_out=amsynth:midi_in",
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"default {DEFAULT_PORT}")
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="sessions folder")
    p.add_argument("--session", metavar="ID", help="resume this session (its sound and backend)")
    p.add_argument("--seed", type=int, default=0, help="search seed of new sessions")
    p.add_argument("--search", choices=("model", "sound"), default="model",
                   help="new sessions' search: model (GP over knob positions, any backend) or "
                   "sound (GP over the renders' sound, sim; docs/preference.md)")  # fmt: skip
    p.add_argument("--open", action="store_true", help="open the page in a browser")
    p.set_defaults(func=_cmd_prefer)


def _cmd_prefer(args: argparse.Namespace) -> int:
    from ddsp_gym.catalog import check_env_ids, check_plant
    from ddsp_gym.preference.candidates import SoundSpec

    if not 0 < args.port < 65536:
        raise ValueError(f"--port must be 1-65535, got {args.port}")
    options = parse_options(args.hardware)
    spec = None
    if args.env:
        check_env_ids([args.env])
        spec = SoundSpec(args.env, None, args.backend, options)
    elif args.plant:
        check_plant(args.plant)
        spec = SoundSpec(None, args.plant, args.backend, options)
    elif args.session is None:
        raise ValueError("give --env ID or --plant NAME (or --session ID to resume one)")
    from ddsp_gym.preference.app import serve

    if args.search == "sound" and args.backend != "sim":
        raise ValueError("--search sound renders candidates offline: it needs --backend sim")
    return serve(spec, args.root, args.host, args.port, args.session, args.seed, args.open,
                 args.search)  # fmt: skip


__all__ = ["add_prefer_parser", "parse_options"]
