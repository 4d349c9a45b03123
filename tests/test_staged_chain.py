"""The chained plant (saw -> low-pass -> echo) and its stage-by-stage fit (issue 25, item 3)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ddsp_gym.agents.staged import (
    bypass_actions,
    held_for_stage,
    stage_budgets,
    stage_indices,
    staged_fit,
)
from ddsp_gym.bench.evalset import Case
from ddsp_gym.bench.match_eval import knob_errors, passes
from ddsp_gym.envs.gym_env import DDSPEnv
from ddsp_gym.plants import make_plant

SR = 16_000
CONFIG = {"duration": 0.5}  # short renders keep the fits fast
KEY = jax.random.PRNGKey(0)
TRUTH = {"frequency": 220.0, "level": -10.0, "length": 0.1, "cutoff": 1500.0,
         "resonance": 1.0, "time": 0.2, "feedback": 0.0, "mix": 0.35}  # fmt: skip


def _spectrum_db(x: np.ndarray) -> np.ndarray:
    return 20.0 * np.log10(np.abs(np.fft.rfft(x)) + 1e-12)


@pytest.mark.parametrize("pitch", [55.0, 440.0, 1760.0])
def test_bypass_values_pass_the_source_through(pitch):
    """At its bypass values the chain renders its source alone: the echo at mix 0 exactly,
    the low-pass wide open within 0.05 dB below 0.4 of the rate."""
    plant = make_plant("saw_chain", **CONFIG)
    knobs = {**TRUTH, "frequency": pitch, "resonance": 4.0, "feedback": 0.5, **plant.bypass}
    controls = plant.controls(plant.knobs_from_physical(knobs))
    render = np.asarray(plant.render(plant.knobs_from_physical(knobs), KEY))
    source = np.asarray(plant.decimated(plant.source(controls)))
    # The echo stage at mix 0 is its input, the filtered note.
    np.testing.assert_allclose(render, np.asarray(plant.dry(controls)), atol=1e-6)
    freqs = np.fft.rfftfreq(source.size, 1.0 / SR)
    spectrum = _spectrum_db(source)
    audible = (freqs < 0.4 * SR) & (spectrum > spectrum.max() - 60.0)
    assert np.max(np.abs(_spectrum_db(render) - spectrum)[audible]) < 0.05
    # Away from the bypass the stages do change the sound.
    lowpassed = plant.render(plant.knobs_from_physical({**knobs, "cutoff": 800.0}), KEY)
    assert np.max(np.abs(_spectrum_db(np.asarray(lowpassed)) - spectrum)[audible]) > 6.0


def test_stages_name_every_knob_and_split_the_budget():
    plant = make_plant("saw_chain", **CONFIG)
    groups = stage_indices(plant)
    assert [plant.knob_names[i] for i in groups[1]] == ["cutoff", "resonance"]
    budgets = stage_budgets(200, 3)
    assert sum(budgets) == 200 and budgets[-1] == 50 and budgets[:3] == [50, 50, 50]
    with pytest.raises(ValueError, match="at least 4 steps"):
        stage_budgets(3, 3)
    # While the filter is fitted: the source held where it was fitted, the effect bypassed
    # (mix at 0; its time and feedback where they are), the measured pitch held.
    action = np.linspace(-0.9, 0.9, 8)
    held = held_for_stage(plant, 1, action, {0: 0.25})
    bypass = bypass_actions(plant)
    mix = plant.knob_names.index("mix")
    assert held[mix] == pytest.approx(bypass[mix]) == pytest.approx(-1.0)
    assert held[0] == 0.25 and held[1] == action[1] and held[2] == action[2]
    assert held[5] == action[5] and 3 not in held and 4 not in held


class _Recorder:
    """Wraps a gradient env and logs every action it is stepped with."""

    def __init__(self, env: DDSPEnv) -> None:
        self.env, self.actions = env, []
        self.unwrapped, self.action_space = env.unwrapped, env.action_space

    def reset(self, **kwargs):
        return self.env.reset(**kwargs)

    def step(self, action):
        self.actions.append(np.array(action, np.float64))
        return self.env.step(action)


def test_staged_fit_freezes_earlier_stages_and_recovers_a_chain():
    """On the chain's own render (pitch held, as match's analysis holds it): each stage
    steps with the earlier stages exactly where they ended and the later ones bypassed,
    and the fit recovers the cutoff within 10 % and the echo time within 3 %."""
    plant = make_plant("saw_chain", **CONFIG)
    unit = plant.knobs_from_physical(TRUTH)
    target = np.asarray(plant.render(unit, KEY))
    env = _Recorder(DDSPEnv(plant="saw_chain", plant_config=CONFIG, task="spectrum",
                            target=target, expose_grad=True))  # fmt: skip
    known = {0: float(2.0 * unit[0] - 1.0)}
    start = np.zeros(8)
    start[0] = known[0]
    rounds: list[int] = []
    fit = staged_fit(plant, env, target, start, known, 120, seed=0, key=KEY,
                     new_round=lambda: rounds.append(len(env.actions)))  # fmt: skip
    assert [s.name for s in fit.stages] == ["source", "filter", "effect", "together"]
    assert fit.evaluations == 120
    groups = stage_indices(plant)
    bypass = bypass_actions(plant)
    bounds = [*rounds, len(env.actions)]
    for stage in range(3):
        actions = np.array(env.actions[bounds[stage] : bounds[stage + 1]])
        assert len(actions) > 0
        for earlier in groups[:stage]:  # frozen at the previous stage's result
            np.testing.assert_array_equal(
                actions[:, earlier], np.broadcast_to(fit.stages[stage - 1].action[earlier],
                                                     actions[:, earlier].shape))  # fmt: skip
        for index, value in bypass.items():  # later stages bypassed
            if not any(index in g for g in groups[: stage + 1]):
                np.testing.assert_allclose(actions[:, index], value, atol=1e-6)
        np.testing.assert_allclose(actions[:, 0], known[0], atol=1e-6)  # the measured pitch
    knobs = {k: float(v) for k, v in plant.controls((fit.result.best_action + 1) / 2).items()}
    case = Case("c", "chain", "saw_chain", "c.wav",
                {**TRUTH, "f0_hz": TRUTH["frequency"]})  # fmt: skip
    errors = knob_errors(case, knobs)
    assert passes("chain", errors), errors
    assert fit.result.best_distance < fit.stages[0].distance


@pytest.mark.parametrize("time", [0.06, 0.2])  # the echo returns during the note, after it
def test_match_holds_the_note_length_measured_before_its_echo(time):
    """``match``'s analysis holds the chain's note length at the first note's end, not at
    the end of the sound its echo prolongs (a fade of 5 ms reads about 3.3 ms early)."""
    from ddsp_gym.agents.match import measured_knobs
    from ddsp_gym.analysis import analyze

    plant = make_plant("saw_chain", **CONFIG)
    truth = {**TRUTH, "time": time, "mix": 0.3}
    target = np.asarray(plant.render(plant.knobs_from_physical(truth), KEY), np.float64)
    held, _ = measured_knobs(plant, analyze(target, SR), target, None)
    index = plant.knob_names.index("length")
    length = plant.knob_specs[index].to_physical((held[index] + 1.0) / 2.0)
    assert float(length) == pytest.approx(TRUTH["length"], rel=0.05)


def test_the_effect_stage_scan_finds_a_far_echo_within_one_grid_step():
    """The scan sweeps the echo time over its whole travel (log-spaced, feedback 0) and
    picks the coarse loss's best: an echo at 0.4 s, far from mid-travel (0.1 s), is found
    within one grid step (0.02-0.5 s in 24 points: x1.15); the other knobs stay put."""
    from ddsp_gym.agents.staged import SCAN_POINTS, scan_actions, scan_stage

    plant = make_plant("saw_chain", **CONFIG)
    truth = {**TRUTH, "time": 0.4, "feedback": 0.3}
    target = np.asarray(plant.render(plant.knobs_from_physical(truth), KEY))
    start = 2.0 * np.asarray(plant.knobs_from_physical({**truth, "time": 0.1}), np.float64) - 1
    knob, fixed = plant.scans["effect"]
    actions = scan_actions(plant, start, knob, fixed, SCAN_POINTS)
    times = [float(plant.controls((a + 1.0) / 2.0)["time"]) for a in actions[[0, 1, -1]]]
    assert times[0] == pytest.approx(plant.min_time, rel=1e-4)
    assert times[-1] == pytest.approx(plant.max_time, rel=1e-4)
    assert times[1] / times[0] == pytest.approx(25.0 ** (1 / 23), rel=1e-3)
    best, _ = scan_stage(plant, target, start, knob, fixed, KEY)
    found = plant.controls((best + 1.0) / 2.0)
    assert float(found["time"]) == pytest.approx(0.4, rel=0.08)
    assert float(found["feedback"]) == 0.0
    moved = [i for i in range(8) if i not in (plant.knob_names.index("time"),
                                               plant.knob_names.index("feedback"))]  # fmt: skip
    np.testing.assert_array_equal(best[moved], start[moved])


def test_chain_summary_counts_fits_below_the_truth():
    from ddsp_gym.bench.match_chain import chain_markdown, summarize_chain

    def fit(distance: float, time_pct: float) -> dict:
        errors = {"pitch_cents": 1.0, "cutoff_pct": 1.0, "resonance_pct": 1.0,
                  "time_pct": time_pct, "mix_abs": 0.0}  # fmt: skip
        return {"knobs": {"mix": 0.3, "length": 0.2}, "errors": errors, "pass": time_pct <= 3,
                "distance": distance, "heard_db": 5.0, "wall_s": 1.0}  # fmt: skip

    rows = [
        {"case": "a", "seed": 0, "truth": {"length": 0.2}, "distance_at_truth": 0.5,
         "distance_at_truth_held_pitch": 0.9, "staged": fit(0.4, 1.0), "joint": fit(0.7, 9.0)},
        {"case": "b", "seed": 0, "truth": {"length": 0.1}, "distance_at_truth": 0.5,
         "distance_at_truth_held_pitch": 0.6, "staged": fit(0.8, 2.0), "joint": fit(0.55, 2.0)},
    ]  # fmt: skip
    summary = summarize_chain(rows)
    assert summary["staged"]["lower_distance_than_truth"] == 1
    assert summary["staged"]["lower_distance_than_truth_held_pitch"] == 1
    assert summary["joint"]["lower_distance_than_truth"] == 0
    assert summary["joint"]["lower_distance_than_truth_held_pitch"] == 2
    assert summary["staged"]["note_length_pct_median"] == pytest.approx(50.0)
    assert summary["staged"]["pass"] == 2 and summary["joint"]["time_pct_ok"] == 1
    assert "| a | 0 | staged | 1.0 | 1.0 | 1 | 1.0 | 0.00 | yes | 5.00 | 0.400 | 0.500 | 0.900 |" \
        in chain_markdown(rows, "cmd", 200)  # fmt: skip
