"""The knob-space explorer: descriptors, the search, its outputs, the command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from ddsp_gym.cli import main
from ddsp_gym.explore import descriptors as D
from ddsp_gym.explore.evaluators import SimEvaluator
from ddsp_gym.explore.ranges import load_ranges
from ddsp_gym.explore.search import MapSpace, batch_sizes, elites, run, uniform_settings
from ddsp_gym.plants import make_plant
from tests.conftest import require

SR = 16_000


def describe(x: np.ndarray) -> dict[str, float]:
    row = np.asarray(D.describe(np.asarray(x, np.float32), SR))
    return {**dict(zip(D.DESCRIPTOR_NAMES, row[:-1].tolist(), strict=True)), "objective": row[-1]}


def sine(freq: float, amp: float = 0.5, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(SR * seconds)) / SR
    return amp * np.sin(2 * np.pi * freq * t)


# ---- descriptors against references -------------------------------------------------------


@pytest.mark.parametrize("freq", [220.0, 1000.0, 3333.0])
def test_centroid_and_rolloff_of_a_sine_are_its_frequency(freq):
    d = describe(sine(freq))
    assert d["centroid"] == pytest.approx(freq, rel=0.01)
    assert d["rolloff"] == pytest.approx(freq, rel=0.02)


def test_flatness_tells_noise_from_a_tone():
    noise = np.random.default_rng(0).normal(scale=0.1, size=SR // 2)
    # Welch averaging: white noise's flatness near 1 (a single periodogram gives ~0.56).
    assert describe(noise)["flatness"] > 0.8
    assert describe(sine(1000.0))["flatness"] < 1e-3


def test_loudness_and_attack_of_reference_signals():
    assert describe(sine(1000.0, amp=1.0 * 0.999))["loudness"] == pytest.approx(-3.02, abs=0.05)
    ramp = np.minimum(np.arange(SR // 2) / (0.1 * SR), 1.0)  # 100 ms linear rise, then held
    attack = describe(sine(1000.0) * ramp)["attack"]
    # The envelope rises 10 % -> 90 % over 80 ms of the ramp; one hop (4 ms) resolution.
    assert attack == pytest.approx(0.08, abs=0.006)
    assert describe(sine(1000.0))["attack"] < 0.01


def test_objective_is_clean_and_audible():
    assert describe(sine(440.0, amp=0.3))["objective"] == pytest.approx(1.0)
    assert describe(np.zeros(SR // 2))["objective"] == 0.0
    assert describe(sine(440.0, amp=10 ** (-60 / 20)))["objective"] == 0.0  # below the floor
    # -40 dBFS RMS: halfway up the ramp from -50 to -30 dBFS.
    quiet = sine(440.0, amp=np.sqrt(2) * 10 ** (-40 / 20))
    assert describe(quiet)["objective"] == pytest.approx(0.5, abs=0.01)
    square = np.sign(sine(440.0))  # every sample at full scale: clipped
    assert describe(square)["objective"] == 0.0
    broken = sine(440.0)
    broken[100] = np.nan
    assert describe(broken)["objective"] == 0.0


def test_the_command_line_names_every_descriptor():
    from ddsp_gym.explore.commands import DESCRIPTOR_CHOICES

    assert DESCRIPTOR_CHOICES == D.DESCRIPTOR_NAMES  # the parser lists them without JAX


def test_axes_are_checked():
    assert D.check_axes(["centroid", "attack"]) == ("centroid", "attack")
    with pytest.raises(ValueError, match="unknown descriptor"):
        D.check_axes(["centroid", "brightness"])
    with pytest.raises(ValueError, match="two different"):
        D.check_axes(["centroid", "centroid"])


# ---- the search --------------------------------------------------------------------------


def fm2_space(cells=(20, 20)) -> MapSpace:
    ranges = load_ranges()["fm2"]
    return MapSpace(("centroid", "flatness"), cells, (ranges["centroid"], ranges["flatness"]))


@pytest.fixture(scope="module")
def fm2():
    return make_plant("fm2")


def test_map_space_puts_values_in_cells_and_clips_beyond_the_range():
    space = fm2_space((4, 4))
    (c_lo, c_hi), (f_lo, f_hi) = space.ranges
    archive = space.archive(2, seed=0)
    rows = np.zeros((3, D.OBJECTIVE_INDEX + 1), np.float32)
    rows[:, 0] = [c_lo * 1.01, c_hi * 10, np.sqrt(c_lo * c_hi) * 1.01]  # centroid
    rows[:, 1] = [f_lo * 1.01, f_hi * 10, f_lo * 1.01]  # flatness
    cells = archive.int_to_grid_index(archive.index_of(space.measures(rows)))
    assert cells.tolist() == [[0, 0], [3, 3], [2, 0]]
    with pytest.raises(ValueError, match="increasing"):
        MapSpace(("centroid", "flatness"), (4, 4), ((100.0, 50.0), (0.1, 0.2)))


@pytest.mark.parametrize("method", ["map_elites", "random"])
def test_search_spends_the_budget_exactly_and_is_deterministic(fm2, method):
    space = fm2_space()
    first = run(method, SimEvaluator(fm2, 3), space, 150, seed=3)
    again = run(method, SimEvaluator(fm2, 3), space, 150, seed=3)
    other = run(method, SimEvaluator(fm2, 4), space, 150, seed=4)
    assert first.evaluations == first.takes == 150
    assert first.curve[-1][0] == 150
    assert elites(first) == elites(again)
    assert elites(first) != elites(other)
    for elite in elites(first):
        assert elite["objective"] > 0  # inaudible or clipped sounds stay off the map
        assert all(0.0 <= u <= 1.0 for u in elite["unit"])


def test_both_methods_start_from_the_same_random_settings(fm2):
    _, n_init = batch_sizes(400)
    me = uniform_settings(5, 400, fm2.num_knobs)[:n_init]
    assert np.array_equal(me, uniform_settings(5, 400, fm2.num_knobs)[:n_init])
    curve_me = run("map_elites", SimEvaluator(fm2, 5), fm2_space(), 400, 5).curve
    curve_random = run("random", SimEvaluator(fm2, 5), fm2_space(), 400, 5).curve
    assert curve_me[0] == curve_random[0]  # same first population, same cells
    assert [p[0] for p in curve_me] == [p[0] for p in curve_random]  # same batch steps


@pytest.mark.slow
def test_map_elites_covers_more_than_random_sampling_at_equal_budget(fm2):
    """Not by construction: the random draw is MAP-Elites' own first population, and on a
    small budget random sampling fills nearly as many cells (see results/explore_bench)."""
    space = fm2_space()
    me = run("map_elites", SimEvaluator(fm2, 0), space, 800, seed=0)
    rnd = run("random", SimEvaluator(fm2, 0), space, 800, seed=0)
    assert me.filled > rnd.filled * 1.05
    assert me.qd_score > rnd.qd_score


class FailingDevice(SimEvaluator):
    """A sim that fails like a device after ``fail_at`` sounds (mid-batch)."""

    backend = "hardware"

    def __init__(self, plant, seed, fail_at):
        super().__init__(plant, seed)
        self.fail_at = fail_at

    def evaluate(self, unit, first_index):
        from ddsp_gym.backends.errors import XrunError
        from ddsp_gym.explore.evaluators import EvaluationStopped

        if first_index + len(unit) <= self.fail_at:
            return super().evaluate(unit, first_index)
        heard = super().evaluate(unit[: self.fail_at - first_index], first_index)
        raise EvaluationStopped(heard, XrunError("all 4 attempts failed"))


@pytest.mark.parametrize("method", ["map_elites", "random"])
def test_a_device_failing_mid_run_keeps_what_was_heard(fm2, method):
    space = fm2_space()
    stopped = run(method, FailingDevice(fm2, 2, fail_at=77), space, 150, seed=2)
    assert stopped.stopped == "XrunError: all 4 attempts failed"
    assert stopped.evaluations == stopped.takes == 77
    full = run(method, SimEvaluator(fm2, 2), space, 150, seed=2)
    assert full.stopped is None
    # Everything heard before the failure is on the map: it holds the elites of those 77.
    assert 0 < stopped.filled <= full.filled
    assert all(e["setting"] < 77 for e in elites(stopped))


def test_sim_replays_an_elite_exactly():
    plant = make_plant("subtractive")  # has a noise source: the render key matters
    evaluator = SimEvaluator(plant, 7)
    unit = np.random.default_rng(0).uniform(size=(3, plant.num_knobs)).astype(np.float32)
    rows = evaluator.evaluate(unit, 10)
    again = np.asarray(D.describe(evaluator.audio(unit[2], 12), plant.sample_rate))
    np.testing.assert_allclose(again, rows[2], rtol=1e-4, atol=1e-6)


# ---- outputs and the command ----------------------------------------------------------------


def test_explore_command_writes_the_map(tmp_path, capsys):
    out = tmp_path / "map"
    code = main(
        [
            "explore",
            "--plant",
            "fm2",
            "--budget",
            "120",
            "--cells",
            "8",
            "6",
            "--seed",
            "1",
            "-q",
            "-o",
            str(out),
            "--color",
            "objective",
        ]
    )
    assert code == 0
    assert "cells filled" in capsys.readouterr().out
    doc = json.loads((out / "archive.json").read_text())
    assert doc["schema"] == 1 and doc["backend"] == "sim" and doc["method"] == "map_elites"
    assert doc["source"] == {"plant": "fm2"} and doc["budget"] == 120 and doc["cells"] == 48
    assert [a["name"] for a in doc["axes"]] == ["centroid", "flatness"]
    assert doc["filled"] == len(doc["elites"]) > 0
    assert doc["coverage"] == pytest.approx(doc["filled"] / 48)
    assert doc["qd_score"] == pytest.approx(sum(e["objective"] for e in doc["elites"]))
    plant = make_plant("fm2")
    specs = {s.name: s for s in plant.knob_specs}
    for entry in doc["elites"]:
        assert set(entry) >= {"cell", "setting", "unit", "knobs", "descriptors", "objective"}
        assert (out / entry["wav"]).exists()
        for name, value in entry["knobs"].items():
            assert specs[name].low - 1e-3 <= value <= specs[name].high + 1e-3
        (lo_x, hi_x), (lo_y, hi_y) = (a["range"] for a in doc["axes"])
        cx, cy = entry["cell"]
        assert 0 <= cx < 8 and 0 <= cy < 6
    assert len(list((out / "wav").glob("*.wav"))) == doc["filled"]
    page = (out / "index.html").read_text()
    assert page.count("data-wav=") == doc["filled"]
    assert not re.search(r"(src|href)=\"https?:", page)  # self-contained: nothing fetched
    assert (out / "map.png").stat().st_size > 5_000


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--plant", "fm3"], "unknown plant 'fm3'"),
        (["ddsp_gym/NoSuchEnv-v1"], "unknown env id"),
        ([], "give an env id or --plant"),
        (["ddsp_gym/SineTuner-v1", "--plant", "fm2"], "give an env id or --plant"),
        (["--plant", "fm2", "--budget", "3"], "at least 8"),
        (["--plant", "fm2", "--takes", "20"], "--takes is the budget of a device"),
        (["--plant", "fm2", "--backend", "hardware"], "give an env id"),
        (["--plant", "fm2", "--axes", "centroid", "shimmer"], "unknown descriptor"),
        (["--plant", "fm2", "--cells", "0", "5"], "--cells"),
        (["--plant", "fm2", "--color", "pink"], "unknown --color"),
        (
            ["ddsp_gym/RealSynthPatch-v1", "--backend", "hardware", "--hardware", "[1]"],
            "JSON object",
        ),
    ],
)
def test_explore_command_errors(argv, message, tmp_path, capsys):
    out = tmp_path / "never"
    assert main(["explore", *argv, "-q", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsp-gym: error:") and message in err
    assert not (out / "archive.json").exists()


def test_env_id_on_the_sim_uses_the_env_plant(tmp_path):
    out = tmp_path / "env"
    assert (
        main(
            [
                "explore",
                "ddsp_gym/SineTuner-v1",
                "--budget",
                "16",
                "--cells",
                "4",
                "4",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "archive.json").read_text())
    assert doc["knob_names"] == list(make_plant("sine").knob_names)
    assert doc["source"] == {"env": "ddsp_gym/SineTuner-v1"}


# ---- a device: the software rig's amsynth -------------------------------------------------------


@pytest.mark.hardware
def test_explore_on_the_rig_synth(rig_synth, tmp_path, capsys):
    require("rtmidi", "python-rtmidi is needed: pip install 'ddsp_gym[hardware]'")
    options = json.dumps({"latency_store": str(tmp_path / "latency.json"), "max_retries": 5})
    out = tmp_path / "hw"
    code = main(
        [
            "explore",
            "ddsp_gym/RealSynthPatch-v1",
            "--backend",
            "hardware",
            "--takes",
            "12",
            "--cells",
            "5",
            "5",
            "--hardware",
            options,
            "-q",
            "-o",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "archive.json").read_text())
    assert doc["backend"] == "hardware" and doc["takes"] == 12 and doc["budget"] == 10
    assert doc["filled"] >= 1
    assert len(list((out / "wav").glob("*.wav"))) == doc["filled"]


@pytest.mark.slow
def test_clicking_a_cell_of_the_page_plays_its_wav(tmp_path):
    """The page in a real browser (Debian's chromium, headless): a click loads and plays
    the cell's WAV from the out folder."""
    require("playwright", "playwright is needed for the browser test")
    chromium = Path("/usr/bin/chromium")
    require(chromium.exists(), "no chromium at /usr/bin/chromium")
    from playwright.sync_api import sync_playwright

    out = tmp_path / "page"
    assert (
        main(
            [
                "explore",
                "--plant",
                "fm2",
                "--budget",
                "40",
                "--cells",
                "5",
                "5",
                "-q",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    doc = json.loads((out / "archive.json").read_text())
    first = doc["elites"][0]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((out / "index.html").as_uri())
            page.click(f'td[data-wav="{first["wav"]}"]')
            page.wait_for_function(
                "document.getElementById('player').readyState >= 1", timeout=10_000
            )
            src = page.eval_on_selector("#player", "a => a.src")
            duration = page.eval_on_selector("#player", "a => a.duration")
            title = page.get_attribute(f'td[data-wav="{first["wav"]}"]', "title")
        finally:
            browser.close()
    assert src.endswith(first["wav"])
    assert duration == pytest.approx(make_plant("fm2").duration, abs=0.01)
    assert "knobs: carrier_hz=" in title


@pytest.mark.slow
def test_explore_on_the_amsynth_plugin(dawdreamer, tmp_path):
    """``--backend plugin``: the same env path as a device, amsynth's VST offline."""
    vst = Path("/usr/lib/vst/amsynth_vst.so")  # Debian's amsynth package
    require(vst.exists(), f"{vst} is missing: apt-get install amsynth")
    out = tmp_path / "plugin"
    argv = [
        "explore",
        "ddsp_gym/RealSynthPatch-v1",
        "--backend",
        "plugin",
        "--takes",
        "16",
        "--cells",
        "4",
        "4",
        "-q",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    doc = json.loads((out / "archive.json").read_text())
    assert doc["backend"] == "plugin" and doc["takes"] == 16 and doc["budget"] == 14
    assert doc["filled"] >= 1 and doc["stopped"] is None
