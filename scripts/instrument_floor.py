"""Why `match` halves the harmonic note's own analysis-only start on few instruments
(issue 25): is the floor the plant, or that the fit minimises another distance?

    python scripts/instrument_floor.py [--set match_evalset] [--steps 100]
        [--descent 400] [-o results/instrument_floor]

For every instrument case of ``bench match``'s set: the heard distance (log-mel L1 in dB,
both sounds at 0 dBFS RMS, over the first 0.5 s, as ``bench match`` scores it) of the
harmonic plant's analysis-only start (one query), of ``match --plant harmonic`` at
``--steps`` queries (it minimises the MR-STFT), and of that fit after ``--descent`` more
Adam steps on the heard distance itself (pitch held, as match holds it). If the last
halves the start where the fit does not, the plant can make the sound and the floor is
the fit's objective and budget; where it cannot, the plant is. Writes ``<out>.json``
and ``<out>.md``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from tqdm import tqdm

from ddsp_gym.agents.match import heard_distance, match_file
from ddsp_gym.audio_io import AudioConversionWarning, load_audio
from ddsp_gym.bench.evalset import build_evalset, load_evalset
from ddsp_gym.features.distances import log_mel_spectrogram
from ddsp_gym.plants import make_plant

SR = 16_000
SPAN_S = 0.5  # bench match's heard span for the instruments (the shortest sound)
N_FFT = 1024  # heard_distance's log-mel frame
LEARNING_RATE = 0.01  # Adam on unit knobs, from a fit: small steps


def heard_descent(plant, knobs: dict[str, float], target: np.ndarray, steps: int) -> float:
    """The lowest heard distance Adam reaches from ``knobs`` in ``steps`` steps."""
    span = int(SPAN_S * SR)
    goal = np.asarray(target[:span], np.float64)
    goal = jnp.asarray(goal / np.sqrt(np.mean(goal**2)), jnp.float32)
    goal_mel = log_mel_spectrogram(goal, SR, N_FFT)
    start = jnp.asarray(plant.knobs_from_physical(knobs), jnp.float32)
    pitch = plant.knob_names.index("frequency")
    key = jax.random.PRNGKey(0)

    def loss(unit: jax.Array) -> jax.Array:
        unit = jnp.clip(unit.at[pitch].set(start[pitch]), 0.0, 1.0)
        audio = plant.render(unit, key)[:span]
        audio = audio / jnp.sqrt(jnp.mean(audio**2) + 1e-12)
        return jnp.mean(jnp.abs(log_mel_spectrogram(audio, SR, N_FFT) - goal_mel))

    value_and_grad = jax.jit(jax.value_and_grad(loss))
    optimizer = optax.adam(LEARNING_RATE)
    unit, state, best = start, optimizer.init(start), np.inf
    for _ in range(steps):
        value, grad = value_and_grad(unit)
        best = min(best, float(value))
        updates, state = optimizer.update(grad, state, unit)
        unit = jnp.clip(optax.apply_updates(unit, updates), 0.0, 1.0)
    return best


def evaluate(folder: Path, steps: int, descent: int) -> list[dict]:
    cases = [c for c in load_evalset(folder) if c.kind == "instrument"]
    rows = []
    span = int(SPAN_S * SR)
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore", AudioConversionWarning)
        for case in tqdm(cases, desc="instrument floor", unit="case"):
            work = Path(tmp) / case.name
            runs = {}
            for name, budget in (("start", 1), ("fit", steps)):
                runs[name] = match_file(folder / case.target, "harmonic", work / name,
                                        steps=budget, seed=0, show_progress=False)  # fmt: skip
            target = load_audio(runs["fit"].outputs["target"], SR)
            heard = {
                name: heard_distance(load_audio(r.outputs["result"], SR)[:span], target[:span], SR)
                for name, r in runs.items()
            }
            config = json.loads((work / "fit" / "knobs.json").read_text()).get("plant_config", {})
            plant = make_plant("harmonic", **config)
            descended = heard_descent(plant, runs["fit"].knobs, target, descent)
            rows.append({"case": case.name, "start_db": heard["start"], "fit_db": heard["fit"],
                         "descent_db": descended})  # fmt: skip
    return rows


def markdown(rows: list[dict], command: str, steps: int, descent: int) -> str:
    halved_fit = sum(r["fit_db"] <= 0.5 * r["start_db"] for r in rows)
    halved_descent = sum(r["descent_db"] <= 0.5 * r["start_db"] for r in rows)
    lines = [
        "# Instruments: the heard-distance floor of the harmonic note's fit",
        "",
        f"Made by `{command}`. *start*: `match --plant harmonic` with 1 query (the analysis "
        f"only); *fit*: with {steps} queries (the MR-STFT minimised); *fit + descent*: then "
        f"{descent} Adam steps (learning rate {LEARNING_RATE} on unit knobs, pitch held) on "
        f"the heard distance itself. Heard distance: log-mel L1 (dB), both at 0 dBFS RMS, "
        f"first {SPAN_S} s.",
        "",
        f"Halved from the start: fit {halved_fit} of {len(rows)}, fit + descent "
        f"{halved_descent} of {len(rows)}.",
        "",
        "| case | start dB | fit dB | fit + descent dB | halved by fit | by fit + descent |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['case']} | {r['start_db']:.2f} | {r['fit_db']:.2f} | {r['descent_db']:.2f} | "
            f"{'yes' if r['fit_db'] <= 0.5 * r['start_db'] else 'no'} | "
            f"{'yes' if r['descent_db'] <= 0.5 * r['start_db'] else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", type=Path, default=Path("match_evalset"),
                        help="bench match's set; built there without cases.json")  # fmt: skip
    parser.add_argument("--steps", type=int, default=100,
                        help="queries of the fit (100: the harmonic note's share of bench "
                        "match --steps 200, which splits them with fm2)")  # fmt: skip
    parser.add_argument("--descent", type=int, default=400,
                        help="Adam steps on the heard distance after the fit (400)")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, default=Path("results/instrument_floor"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.descent < 1:
        parser.error("--steps and --descent must be at least 1")
    if not (args.set / "cases.json").is_file():
        build_evalset(args.set, ["instrument"])
    rows = evaluate(args.set, args.steps, args.descent)
    given = sys.argv[1:] if argv is None else argv
    command = f"python scripts/instrument_floor.py {shlex.join(given)}".strip()
    report = markdown(rows, command, args.steps, args.descent)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    payload = {"command": command, "steps": args.steps, "descent": args.descent, "rows": rows}
    args.output.with_suffix(".json").write_text(json.dumps(payload, indent=2))
    args.output.with_suffix(".md").write_text(report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
