"""``ddsp-gym bench posterior``: simulation-based calibration of the knob posterior.

SBC (Talts et al. 2018, arXiv:1804.06788): draw a truth from the prior, simulate data
from exactly the observation model (render, log-mel features, + Gaussian noise of the
model's ``noise_db``), sample the posterior, and record where the truth falls among
the draws. With a correct sampler the rank is uniform, and a central q interval covers
the truth a share q of the time. Per knob it reports the 50 % and 90 % intervals'
coverage, the rank histogram, and the 90 % interval's width as a share of the knob's
travel; a second set of truths sets a knob the sound cannot reveal (an ADSR's release
after the note has already decayed to silence), whose interval must stay wide.
"""

from __future__ import annotations

import argparse
import json
import shlex
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

# Nominal rates and the tolerance: coverage within +/- 10 points of nominal.
LEVELS = (0.5, 0.9)
TOLERANCE = 0.10
RANK_BINS = 10
RANK_DRAWS = 99  # draws a rank is taken among (thinned): ranks 0..99, 10 per bin


@dataclass(frozen=True)
class Case:
    """One calibration case: a plant (and config), truths from the prior or pinned."""

    name: str
    plant: str
    config: dict[str, Any] = field(default_factory=dict)
    # {knob: (low, high) unit range} the truths are drawn from instead of the prior:
    # a case whose knob is made inaudible. Calibration is then not expected (truths
    # are not prior draws); the interval's width is what is reported.
    pinned: dict[str, tuple[float, float]] = field(default_factory=dict)
    truths: int | None = None  # None: the command's --truths


# ADSR: 0.3 s, gate open 0.15 s (short, to keep the benchmark within minutes on two
# cores). With sustain 0 and a decay under 13 ms the note is silent long before the
# gate closes: the release time is then inaudible.
ADSR = {"duration": 0.3, "gate_s": 0.15}
CASES = (
    Case("filtered_saw", "filtered_saw"),
    # 4 knobs cost ~10x a 1-knob case per truth: fewer truths keep the run in minutes.
    Case("adsr_tone", "adsr_tone", ADSR, truths=30),
    Case(
        "adsr_silent_release",
        "adsr_tone",
        ADSR,
        pinned={"sustain": (0.0, 0.0), "decay": (0.0, 0.2)},
        truths=10,
    ),
)


def rank_of(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Per knob, how many of ``draws`` (n, d) lie below ``truth`` (d,): 0..n."""
    return np.sum(draws < truth[None, :], axis=0)


def covered(truth: np.ndarray, draws: np.ndarray, level: float) -> np.ndarray:
    """Per knob, whether the central ``level`` interval of ``draws`` holds ``truth``."""
    lo, hi = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=0)
    return (lo <= truth) & (truth <= hi)


def thin(draws: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws evenly spaced through ``draws`` (chains pooled), for near-independent
    ranks (SBC's thinning against autocorrelation)."""
    index = np.linspace(0, len(draws) - 1, n).round().astype(int)
    return draws[index]


def uniformity_p(counts: np.ndarray) -> float:
    """Chi-square p-value of a rank histogram against the uniform."""
    from scipy.stats import chisquare

    return float(chisquare(counts).pvalue) if counts.sum() else float("nan")


def draw_truth(rng: np.random.Generator, names: tuple[str, ...], case: Case) -> np.ndarray:
    """Unit positions: uniform (the prior), or within a pinned knob's range."""
    out = rng.uniform(0.0, 1.0, len(names))
    for i, name in enumerate(names):
        if name in case.pinned:
            lo, hi = case.pinned[name]
            out[i] = lo if hi <= lo else rng.uniform(lo, hi)
    return out


def run_case(case: Case, truths: int, seed: int, sampler: Any, model: Any) -> dict[str, Any]:
    """Calibrate one case: coverage, ranks, widths and diagnostics per knob."""
    import jax

    from ddsp_gym.plants import make_plant
    from ddsp_gym.posterior import PosteriorSampler

    plant = make_plant(case.plant, **case.config)
    post_sampler = PosteriorSampler(plant, model, sampler)
    names = post_sampler.names
    rng = np.random.default_rng(seed)
    n_truths = case.truths or truths
    ranks, cover, widths, r_hats, divergences = [], {lv: [] for lv in LEVELS}, [], [], 0
    start = time.perf_counter()
    for i in tqdm(range(n_truths), desc=f"SBC {case.name}", unit="truth"):
        truth = draw_truth(rng, names, case)
        clean = np.asarray(post_sampler.features(truth))
        y = clean + model.noise_db * rng.standard_normal(clean.shape)
        post = post_sampler.run(y, seed=seed * 100_003 + i)
        draws = post.flat_unit
        ranks.append(rank_of(truth, thin(draws, RANK_DRAWS)))
        for level in LEVELS:
            cover[level].append(covered(truth, draws, level))
        lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
        widths.append(hi - lo)
        r_hats.append(post.r_hat)
        divergences += post.divergences
    jax.clear_caches()  # one compiled sampler per case: free it before the next
    ranks, widths, r_hats = np.array(ranks), np.array(widths), np.array(r_hats)
    knobs = {}
    for k, name in enumerate(names):
        counts = np.histogram(ranks[:, k], RANK_BINS, (0, RANK_DRAWS + 1))[0]
        knobs[name] = {
            **{
                f"coverage{round(100 * lv)}": float(np.mean(np.array(cover[lv])[:, k]))
                for lv in LEVELS
            },  # fmt: skip
            "rank_counts": counts.tolist(),
            "rank_uniformity_p": uniformity_p(counts),
            "width90_median": float(np.median(widths[:, k])),
            "r_hat_max": float(r_hats[:, k].max()),
            "r_hat_over_1.1": int(np.sum(r_hats[:, k] > 1.1)),
        }
    return {
        "plant": case.plant,
        "config": case.config,
        "pinned": {k: list(v) for k, v in case.pinned.items()},
        "truths": n_truths,
        "calibration_expected": not case.pinned,
        "divergences": divergences,
        "seconds": round(time.perf_counter() - start, 1),
        "knobs": knobs,
    }


def within_tolerance(knob: dict[str, Any]) -> bool:
    """True when both intervals cover at their nominal rate +/- :data:`TOLERANCE`."""
    return all(abs(knob[f"coverage{round(100 * lv)}"] - lv) <= TOLERANCE + 1e-9 for lv in LEVELS)


def format_markdown(report: dict[str, Any]) -> str:
    """The results table: one row per case and knob."""
    lines = [
        "# Posterior calibration (simulation-based calibration)",
        "",
        f"Command: `{report['command']}`. Model: {report['model']}. Sampler: "
        f"{report['sampler']}. Truths drawn from the prior (uniform knob travel), data "
        "simulated from the observation model itself; coverage is the share of truths "
        "inside the central interval (target: nominal +/- 10 points). Width: the median "
        "90 % interval as a share of the knob's travel (0.9 = the prior's). Rank p: "
        "chi-square test of the 10-bin rank histogram against uniform.",
        "",
        "| case | knob | truths | 50 % cov. | 90 % cov. | width90 | rank p | max R-hat "
        "| R-hat > 1.1 | within +/-10 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for case_name, case in report["cases"].items():
        for name, k in case["knobs"].items():
            verdict = (
                ("yes" if within_tolerance(k) else "no")
                if case["calibration_expected"]
                else "n/a (pinned)"
            )
            lines.append(
                f"| {case_name} | {name} | {case['truths']} | {k['coverage50']:.2f} | "
                f"{k['coverage90']:.2f} | {k['width90_median']:.3f} | "
                f"{k['rank_uniformity_p']:.2f} | {k['r_hat_max']:.3f} | "
                f"{k['r_hat_over_1.1']} | {verdict} |"
            )
    lines += [
        "",
        "Divergent transitions: "
        + ", ".join(f"{n} {c['divergences']}" for n, c in report["cases"].items())
        + ". Seconds per case: "
        + ", ".join(f"{n} {c['seconds']}" for n, c in report["cases"].items())
        + ".",
        "",
        "Rank histograms: posterior_sbc.png. R-hat > 1.1: truths whose two chains "
        "disagreed on the knob (a mode one chain did not leave); they count as they are.",
        "",
        "Pinned cases draw truths outside the prior (a knob made inaudible), so their "
        "coverage is no calibration test; a knob pinned at the end of its travel (sustain "
        "0) can never lie inside a central interval. Their width90 is the point: near 0.9 "
        "for a knob the sound does not reveal.",
    ]
    return "\n".join(lines) + "\n"


def save_rank_png(path: Path, report: dict[str, Any]) -> Path:
    """One rank histogram per (case, knob), the uniform expectation as a line."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [(c, n, k) for c, case in report["cases"].items() for n, k in case["knobs"].items()]
    cols = 3
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, (case_name, name, k) in zip(axes.flat, panels, strict=False):
        counts = np.array(k["rank_counts"])
        ax.bar(np.arange(len(counts)), counts, color="tab:blue", width=0.9)
        ax.axhline(counts.sum() / len(counts), color="k", lw=1)
        ax.set_title(f"{case_name}: {name}", fontsize=8)
        ax.set_xticks([])
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    fig.suptitle("SBC rank histograms (uniform if calibrated)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def run_sbc(
    out_dir: Path, truths: int, seed: int, warmup: int, samples: int, cases: list[str] | None
) -> dict[str, Any]:
    """Run the chosen cases (all by default) and write posterior_sbc.{json,md,png}."""
    from ddsp_gym.posterior import ObservationModel, SamplerConfig

    chosen = [c for c in CASES if cases is None or c.name in cases]
    model = ObservationModel()
    sampler = SamplerConfig(warmup=warmup, samples=samples)
    words = ["ddsp-gym", "bench", "posterior", "--truths", str(truths), "--seed", str(seed)]
    words += ["--warmup", str(warmup), "--samples", str(samples)]
    report = {
        "command": shlex.join(words),
        "model": ", ".join(f"{k}={v}" for k, v in asdict(model).items()),
        "sampler": ", ".join(f"{k}={v}" for k, v in asdict(sampler).items()),
        "tolerance": TOLERANCE,
        "cases": {c.name: run_case(c, truths, seed, sampler, model) for c in chosen},
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "posterior_sbc.json").write_text(json.dumps(report, indent=2))
    (out_dir / "posterior_sbc.md").write_text(format_markdown(report))
    save_rank_png(out_dir / "posterior_sbc.png", report)
    return report


def _cmd_posterior(args: argparse.Namespace) -> int:
    names = [c.name for c in CASES]
    unknown = sorted(set(args.cases or ()) - set(names))
    if unknown:
        raise ValueError(f"unknown cases {unknown}; choose from {names}")
    for flag in ("truths", "warmup", "samples"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag} must be at least 1, got {getattr(args, flag)}")
    report = run_sbc(args.output, args.truths, args.seed, args.warmup, args.samples, args.cases)
    print(format_markdown(report))
    print(f"wrote {args.output / 'posterior_sbc.json'}, .md and .png")
    return 0


def add_posterior_bench_parser(bench_sub: argparse._SubParsersAction) -> None:
    """Register ``bench posterior``."""
    p = bench_sub.add_parser(
        "posterior",
        help="calibration of match --posterior's intervals on the plants' own renders",
        description="Simulation-based calibration: truths from the prior, data from the "
        "observation model, NUTS posteriors; writes posterior_sbc.json, .md and .png "
        "(coverage of the 50 % and 90 % intervals, rank histograms, interval widths).",
    )
    p.add_argument("--truths", type=int, default=50, help="truths per case (default 50)")
    p.add_argument("--seed", type=int, default=0, help="seed (default 0)")
    p.add_argument("--warmup", type=int, default=200, help="NUTS warmup per chain (200)")
    p.add_argument("--samples", type=int, default=200, help="NUTS draws per chain (200)")
    p.add_argument("--cases", nargs="*", metavar="CASE", help="default: all")
    p.add_argument("-o", "--output", type=Path, default=Path("results"), help="results folder")
    p.set_defaults(func=_cmd_posterior)
