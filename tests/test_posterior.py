"""The knob posterior (ddsp_gym/posterior.py): NUTS against an exact grid posterior, a
knob the sound does not determine, match --posterior's outputs, determinism, errors."""

from __future__ import annotations

import json
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.bench.posterior_sbc import covered, rank_of, thin, within_tolerance
from ddsp_gym.plants import make_plant
from ddsp_gym.plants.sine import SineOscillator
from ddsp_gym.posterior import (
    ObservationModel,
    PosteriorSampler,
    SamplerConfig,
    check_plant,
    residual_noise_db,
    save_corner_png,
)

# Short renders and small frames: the posterior of a 0.1 s filtered saw is as real as
# a long one's, and it compiles and samples in seconds.
SAW = {"duration": 0.1}
MODEL = ObservationModel(n_fft=512, hop=128, n_mels=24, noise_db=6.0)
FAST = SamplerConfig(chains=2, warmup=200, samples=400, init_draws=64, init_steps=30)


@pytest.fixture(scope="module")
def saw_sampler() -> PosteriorSampler:
    return PosteriorSampler(make_plant("filtered_saw", **SAW), MODEL, FAST)


@pytest.fixture(scope="module")
def saw_target(saw_sampler: PosteriorSampler) -> tuple[float, np.ndarray]:
    """A cutoff of 1500 Hz, its features plus noise of the model's scale."""
    truth = float(saw_sampler.plant.knobs_from_physical({"cutoff": 1500.0})[0])
    clean = np.asarray(saw_sampler.features(np.array([truth])))
    noise = MODEL.noise_db * np.random.default_rng(3).standard_normal(clean.shape)
    return truth, clean + noise


def grid_quantiles(sampler: PosteriorSampler, y: np.ndarray, qs: list[float]) -> np.ndarray:
    """Quantiles of the exact 1-knob posterior on a fine grid of the unit travel (the
    prior is uniform there, so the posterior is the normalised likelihood)."""
    grid = np.linspace(0.0, 1.0, 8001)
    held = jnp.full(1, 0.5)
    log_lik = jax.jit(jax.vmap(lambda u: sampler.log_lik(u[None], held, y, MODEL.noise_db)))
    lp = np.concatenate([np.asarray(log_lik(jnp.asarray(c))) for c in np.array_split(grid, 8)])
    p = np.exp(lp - lp.max())
    cdf = np.cumsum(p) / p.sum()
    return np.interp(qs, cdf, grid)


@pytest.mark.slow
def test_nuts_matches_the_grid_posterior_of_one_knob(saw_sampler, saw_target):
    truth, y = saw_target
    post = saw_sampler.run(y, seed=0)
    median, q05, q95 = grid_quantiles(saw_sampler, y, [0.5, 0.05, 0.95])
    nuts = np.quantile(post.flat_unit[:, 0], [0.5, 0.05, 0.95])
    width = q95 - q05
    assert 0.0 < width < 0.2, width  # informative, yet wide enough to compare on
    # Monte Carlo error of 800 correlated draws: a tenth of the interval's width.
    assert abs(nuts[0] - median) < 0.1 * width, (nuts, (median, q05, q95))
    assert abs(nuts[1] - q05) < 0.15 * width and abs(nuts[2] - q95) < 0.15 * width
    assert post.converged() and post.r_hat[0] < 1.05
    # The summary speaks knob units: Hz, around the truth.
    s = post.summary()["cutoff"]
    assert s["q05"] < s["median"] < s["q95"]
    assert s["q05"] < 1500.0 * 1.5 and s["q95"] > 1500.0 / 1.5


@pytest.mark.slow
def test_same_seed_same_draws_other_seed_other_draws(saw_sampler, saw_target):
    _, y = saw_target
    a, b = saw_sampler.run(y, seed=7), saw_sampler.run(y, seed=7)
    np.testing.assert_array_equal(a.unit, b.unit)
    assert not np.array_equal(a.unit, saw_sampler.run(y, seed=8).unit)


@pytest.mark.slow
def test_an_inaudible_release_gets_a_wide_interval(tmp_path):
    """Sustain 0 and a 7 ms decay: the note is silent long before its gate closes, so
    the release time cannot be heard. Its 90 % interval must span most of the travel,
    while the decay, which is heard, is pinned down."""
    plant = make_plant("adsr_tone", duration=0.3, gate_s=0.15)
    sampler = PosteriorSampler(plant, ObservationModel(), FAST, free=("decay", "release"))
    held = {"attack": 0.005, "sustain": 0.0}
    truth = plant.knobs_from_physical({**held, "decay": 0.007, "release": 0.05})
    y = np.asarray(sampler.features(truth))
    y = y + 3.0 * np.random.default_rng(0).standard_normal(y.shape)
    post = sampler.run(y, seed=0, held=held)
    summary = post.summary()
    assert summary["release"]["width90_unit"] > 0.6, summary["release"]
    assert summary["decay"]["width90_unit"] < 0.3, summary["decay"]
    assert post.held == pytest.approx(held, rel=1e-4)
    png = save_corner_png(tmp_path / "corner.png", post, {"decay": 0.007, "release": 0.05})
    assert png.stat().st_size > 5000


@pytest.mark.slow
def test_match_posterior_writes_the_summary_and_a_corner_plot(tmp_path, capsys):
    from ddsp_gym.cli import main

    target = tmp_path / "target.wav"
    assert main(["render", "ddsp_gym/CutoffSweeper-v1", "--knobs", "cutoff=900", "-o",
                 str(target)]) == 0  # fmt: skip
    out = tmp_path / "out"
    argv = ["match", str(target), "--plant", "filtered_saw", "--steps", "30", "--posterior"]
    assert main([*argv, "-o", str(out)]) == 0
    report = json.loads((out / "knobs.json").read_text())
    block = report["posterior"]
    cutoff = block["knobs"]["cutoff"]
    assert set(cutoff) >= {"median", "q05", "q95", "r_hat", "n_eff"}
    assert cutoff["q05"] <= 900.0 <= cutoff["q95"] and cutoff["q95"] / cutoff["q05"] < 1.2
    assert block["model"]["noise_db"] >= 0.5 and block["divergences"] >= 0
    assert block["sampler"]["method"] == "NUTS (numpyro)"
    assert (out / "corner.png").stat().st_size > 5000
    printed = capsys.readouterr().out
    assert "posterior (noise" in printed and "cutoff: median" in printed


@pytest.mark.slow
def test_match_without_the_flag_writes_no_posterior(tmp_path):
    from ddsp_gym.cli import main

    target = tmp_path / "target.wav"
    assert main(["render", "ddsp_gym/SineTuner-v1", "--knobs", "frequency=440", "-o",
                 str(target)]) == 0  # fmt: skip
    out = tmp_path / "out"
    assert main(["match", str(target), "--plant", "sine", "--steps", "3", "-o", str(out)]) in (0, 1)
    assert "posterior" not in json.loads((out / "knobs.json").read_text())
    assert not (out / "corner.png").exists()


@dataclass(frozen=True)
class HostSine(SineOscillator):
    """A sine rendered on the host (a callback): it plays, but has no gradient."""

    def synthesize(self, controls, key, audio_in):
        n, sr = self.n_samples, self.sample_rate
        shape = jax.ShapeDtypeStruct((n,), jnp.float32)
        return jax.pure_callback(
            lambda f: (0.5 * np.sin(2 * np.pi * float(f) * np.arange(n) / sr)).astype(np.float32),
            shape,
            controls["frequency"],
        )


def test_a_plant_without_gradient_or_bad_options_give_clear_errors():
    with pytest.raises(ValueError, match="HostSine render has no gradient"):
        PosteriorSampler(HostSine(), MODEL, FAST)
    with pytest.raises(ValueError, match="differentiable JAX plant"):
        check_plant(object())
    with pytest.raises(ValueError, match="noise_db must be a positive"):
        ObservationModel(noise_db=0.0)
    with pytest.raises(ValueError, match="power of two"):
        ObservationModel(n_fft=1000)
    with pytest.raises(ValueError, match="chains must be at least 1"):
        SamplerConfig(chains=0)
    with pytest.raises(ValueError, match="target_accept"):
        SamplerConfig(target_accept=1.0)
    saw = make_plant("filtered_saw", duration=0.02)  # 320 samples: no 512-sample frame
    with pytest.raises(ValueError, match="no whole 512-sample frame"):
        PosteriorSampler(saw, MODEL, FAST)
    with pytest.raises(ValueError, match="free knobs must be distinct names"):
        PosteriorSampler(make_plant("filtered_saw", **SAW), MODEL, FAST, free=("q",))


def test_bad_targets_and_held_knobs_are_refused(saw_sampler):
    with pytest.raises(ValueError, match="target features have shape"):
        saw_sampler.run(np.zeros((3, 3)))
    y = np.zeros(saw_sampler.features(np.array([0.5])).shape)
    with pytest.raises(ValueError, match="noise_db must be a positive"):
        saw_sampler.run(y, noise_db=-1.0)
    adsr = PosteriorSampler(
        make_plant("adsr_tone", duration=0.1, gate_s=0.05), MODEL, FAST, free=("decay",)
    )
    y = np.zeros(adsr.features(np.full(4, 0.5)).shape)
    with pytest.raises(ValueError, match="neither sampled nor held"):
        adsr.run(y, held={"attack": 0.01})


def test_residual_noise_and_calibration_helpers():
    assert residual_noise_db(np.full(10, 3.0), np.zeros(10)) == pytest.approx(3.0)
    assert residual_noise_db(np.zeros(10), np.zeros(10)) == 0.5  # the floor
    draws = np.linspace(0.0, 1.0, 101)[:, None]
    assert rank_of(np.array([0.25]), draws).tolist() == [25]
    assert covered(np.array([0.5]), draws, 0.5).tolist() == [True]
    assert covered(np.array([0.9]), draws, 0.5).tolist() == [False]
    assert len(thin(draws, 11)) == 11 and thin(draws, 11)[-1, 0] == 1.0
    assert within_tolerance({"coverage50": 0.58, "coverage90": 0.82})
    assert not within_tolerance({"coverage50": 0.5, "coverage90": 0.75})


def test_bench_posterior_refuses_bad_arguments(capsys):
    from ddsp_gym.cli import main

    assert main(["bench", "posterior", "--truths", "0"]) == 2
    assert "--truths must be at least 1" in capsys.readouterr().err
    assert main(["bench", "posterior", "--cases", "theremin"]) == 2
    assert "unknown cases ['theremin']" in capsys.readouterr().err


@pytest.mark.slow
def test_sbc_case_reports_coverage_ranks_and_writes_its_files(tmp_path):
    from ddsp_gym.bench.posterior_sbc import (
        RANK_BINS,
        Case,
        format_markdown,
        run_case,
        save_rank_png,
    )

    case = Case("saw", "filtered_saw", SAW)
    result = run_case(case, 4, 0, FAST, MODEL)
    knob = result["knobs"]["cutoff"]
    assert result["truths"] == 4 and result["calibration_expected"]
    assert sum(knob["rank_counts"]) == 4 and len(knob["rank_counts"]) == RANK_BINS
    assert 0.0 <= knob["coverage50"] <= knob["coverage90"] <= 1.0
    assert 0.0 < knob["width90_median"] < 0.5
    report = {"command": "x", "model": "m", "sampler": "s", "cases": {"saw": result}}
    assert "| saw | cutoff | 4 |" in format_markdown(report)
    assert save_rank_png(tmp_path / "ranks.png", report).stat().st_size > 2000
