"""``ddsp-gym encode`` and ``ddsp-gym decode``: parse, call :mod:`ddsp_gym.coding.codec`, print.

Building the parsers imports no JAX (``ddsp-gym --help`` stays instant)."""

from __future__ import annotations

import argparse
from pathlib import Path

PLANT_CHOICES = ("harmonic_noise", "drone")  # ddsp_gym.coding.codec.CODEC_PLANTS, unimported


def _cmd_encode(args: argparse.Namespace) -> int:
    from ddsp_gym.coding.codec import encode_file

    if args.steps < 0:
        raise ValueError(f"--steps must be >= 0, got {args.steps}")
    code, fit = encode_file(
        args.input, args.output, plant_name=args.plant, kbps=args.kbps,
        frame_rate=args.frame_rate, steps=args.steps, seed=args.seed,
        progress=not args.quiet, packing=args.packing,
    )  # fmt: skip
    file_bps = 8.0 * args.output.stat().st_size / code.duration_s
    print(
        f"{args.output}: {code.plant}, {code.n_frames} frames at {code.frame_rate}/s, "
        f"{sum(code.bits)} bits a frame before {code.packing} packing; payload "
        f"{code.payload_bps / 1000:.2f} kbps, "
        f"whole file {file_bps / 1000:.2f} kbps; fit distance "
        f"{fit.start_distance:.3f} -> {fit.distance:.3f}"
    )
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from ddsp_gym.coding.codec import decode_file

    code = decode_file(args.input, args.output)
    print(f"{args.output}: {code.duration_s:.3f} s at {code.sample_rate} Hz ({code.plant})")
    return 0


def add_codec_parser(sub: argparse._SubParsersAction) -> None:
    """Add the ``encode`` and ``decode`` subcommands."""
    p = sub.add_parser(
        "encode",
        help="code a sound as a plant's knob trajectory (code.json)",
        description="Fit a per-frame knob trajectory of a codec plant to a sound file "
        "(mixed to mono, resampled to 16 kHz) by gradient descent, quantize it to the bit "
        "budget and write code.json (docs/coding.md).",
    )
    p.add_argument("input", type=Path, help="the sound to code (WAV, FLAC, ...)")
    p.add_argument("-o", "--output", type=Path, required=True, help="the code file to write")
    p.add_argument("--plant", default="harmonic_noise", choices=PLANT_CHOICES,
                   help="codec plant (default harmonic_noise)")  # fmt: skip
    p.add_argument("--kbps", type=float, default=6.0,
                   help="budget for the knob tracks in kbit/s (default 6)")  # fmt: skip
    p.add_argument("--frame-rate", type=int, default=50, help="knob frames per second (default 50)")
    p.add_argument("--steps", type=int, default=200, help="gradient steps (default 200)")
    p.add_argument("--packing", default="rice", choices=("rice", "fixed"),
                   help="rice: frame-to-frame changes Rice-coded, variable rate (default); "
                   "fixed: every frame the same bits")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of the plant's noise")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser(
        "decode",
        help="render a code.json back to a WAV",
        description="Dequantize a code file's knob tracks and render its plant (16-bit WAV).",
    )
    p.add_argument("input", type=Path, help="a code file written by `ddsp-gym encode`")
    p.add_argument("-o", "--output", type=Path, required=True, help="the WAV file to write")
    p.set_defaults(func=_cmd_decode)
