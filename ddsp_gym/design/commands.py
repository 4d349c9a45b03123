"""``ddsp-gym design "PROMPT"``: text -> descriptor goal -> patch, WAVs and a report.

Thin: parse, call :func:`ddsp_gym.design.designer.design`, print a line per descriptor.
Building the parser imports nothing heavy (no JAX).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# The voice made for sound design (a knob per descriptor); kept here, not imported from
# the designer, so building the parser stays free of JAX.
DEFAULT_PLANT = "designer_voice"


def _cmd_design(args: argparse.Namespace) -> int:
    from ddsp_gym.design.designer import design, load_patch, write_design
    from ddsp_gym.plants import make_plant

    if min(args.steps, args.restarts, args.rounds) < 1:
        raise ValueError(
            f"--steps, --restarts and --rounds must be >= 1, "
            f"not {args.steps}, {args.restarts}, {args.rounds}"
        )
    plant = make_plant(args.plant)
    start = load_patch(args.start, plant, args.plant) if args.start else None
    result = design(
        args.prompt, args.plant, start, args.steps, args.restarts, args.seed, args.rounds
    )
    files = write_design(result, args.out, plant.sample_rate)
    goal = ", ".join(f"{k} {v:+.3g}" for k, v in result.goal.items())
    print(f"prompt: {args.prompt!r} -> {goal}")
    for line in result.lines:
        print(line.text())
    knobs = ", ".join(f"{k}={v:.4g}" for k, v in result.knobs.items())
    print(f"patch: {knobs}")
    print(f"{'met' if result.success else 'NOT met'}; wrote " + ", ".join(files.values()))
    return 0 if result.success else 1


def add_design_parser(sub: argparse._SubParsersAction) -> None:
    """Register ``design`` on the top-level subparsers."""
    p = sub.add_parser(
        "design",
        help="text-driven sound design: 'brighter, more metallic' -> a patch",
        description="Parse a timbre prompt into descriptor changes (lexicon: "
        "ddsp_gym/design/lexicon.yaml), move the plant's knobs by gradient descent until "
        "they happen, and write before.wav, after.wav and patch.json. Exit status 1 when "
        "a descriptor fell short or an untouched one drifted past its bound.",
        epilog="descriptors: brightness, warmth, metallic, roughness, attack, noisiness, "
        "loudness, sustain; see docs/sound_designer.md",
    )
    p.add_argument("prompt", help='e.g. "make it brighter, add a metallic edge"')
    p.add_argument(
        "--plant",
        default=DEFAULT_PLANT,
        help=f"the plant to design on ({DEFAULT_PLANT}; fm2 works too)",
    )
    p.add_argument(
        "--from",
        dest="start",
        type=Path,
        default=None,
        metavar="PATCH",
        help="start patch JSON ({'knobs': {name: value}}; knobs.json of `match` works); "
        "default: every knob at mid travel",
    )
    p.add_argument("--out", type=Path, default=Path("design_out"), help="output folder")
    p.add_argument("--steps", type=int, default=150, help="Adam steps per start (150)")
    p.add_argument("--restarts", type=int, default=4, help="jittered starts (4)")
    p.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="solver rounds at most: more rounds restart from the best patch while it "
        "does not pass (3)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed of the jitter (0)")
    p.set_defaults(func=_cmd_design)
