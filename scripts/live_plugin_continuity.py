"""Can live mode play a plugin through DawDreamer? Render a held amsynth note one 64 ms
block per ``render()`` call and compare with one render of the same length ->
results/live_plugin_continuity.md (and .json).

    python scripts/live_plugin_continuity.py [--plugin amsynth_vst.so]

Live mode's plugin backend would render one block per call with the plugin's state (its
voices, envelopes, filter memory) carried from call to call; this measures whether the
host does that (:func:`ddsp_gym.backends.plugin.block_continuity`). A few seconds.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from ddsp_gym.backends.plugin import block_continuity

RESULTS = Path(__file__).resolve().parents[1] / "results"


def markdown(r: dict, command: str) -> str:
    """The report: one table per probe and the verdict."""
    fmt = lambda xs: ", ".join(f"{x:.3g}" for x in xs)  # noqa: E731
    held_ms = 1000 * r["block_frames"] / r["sample_rate"]
    verdict = (
        "carried: a block source can render one block per call"
        if r["carries_state"]
        else "**not carried**: every `render()` resets the plugin (its voices stop), so a "
        "held note cannot sound on from one block render to the next"
    )
    return "\n".join(
        [
            "# Live mode's plugin backend: does DawDreamer carry a plugin's state across renders?",
            "",
            f"Written by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
            f"DawDreamer {r['dawdreamer_version']}, plugin {r['plugin']}, {r['sample_rate']} Hz,"
            f" host block {r['host_block']} frames, blocks of {r['block_frames']} frames"
            f" ({held_ms:.0f} ms); peaks and differences are of full scale.",
            "",
            "| probe | value |",
            "|---|---|",
            f"| held note, block by block: peak per block | {fmt(r['held_peak_per_block'])} |",
            f"| held note, one render: peak per block | {fmt(r['held_whole_peak_per_block'])} |",
            f"| max abs difference per block | {fmt(r['held_max_diff_per_block'])} |",
            f"| 2 s release: peak in the last 8th of the note's block | "
            f"{r['tail_peak_end_of_block']:.3g} |",
            f"| 2 s release: peak of the next block render | {r['tail_peak_next_block']:.3g} |",
            f"| tolerance (max abs difference) | {r['tolerance']:g} |",
            "",
            f"State {verdict}.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plugin", default="amsynth_vst.so")
    parser.add_argument("--out", type=Path, default=RESULTS / "live_plugin_continuity")
    args = parser.parse_args()
    result = block_continuity(args.plugin)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=1) + "\n")
    command = f"python scripts/live_plugin_continuity.py --plugin {args.plugin}"
    args.out.with_suffix(".md").write_text(markdown(result, command))
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
