"""The vowel formant table and the task's vowel target sampler."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from ddsp_gym.plants import FormantVoice, SineOscillator
from ddsp_gym.tasks.timbre import FormantMatch
from ddsp_gym.tasks.vowels import PETERSON_BARNEY_MALE, VOWELS, formant_bandwidth, vowel_table


def test_table_holds_peterson_and_barney_adult_male_averages():
    assert VOWELS == ("i", "ɪ", "ɛ", "æ", "ɑ", "ɔ", "ʊ", "u", "ʌ", "ɝ")
    # Spot checks against Table II of Peterson & Barney (1952).
    assert PETERSON_BARNEY_MALE["i"] == (270.0, 2290.0, 3010.0)
    assert PETERSON_BARNEY_MALE["ɑ"] == (730.0, 1090.0, 2440.0)
    assert PETERSON_BARNEY_MALE["u"] == (300.0, 870.0, 2240.0)
    assert PETERSON_BARNEY_MALE["ɝ"] == (490.0, 1350.0, 1690.0)
    table = vowel_table()
    assert table.shape == (10, 6) and table.dtype == np.float32
    assert np.all(np.diff(table[:, :3], axis=1) > 0)  # F1 < F2 < F3 for every vowel


def test_bandwidth_rule_and_the_knob_ranges_hold_every_target():
    table = vowel_table()
    np.testing.assert_allclose(table[:, 3:], 50.0 + 0.04 * table[:, :3], rtol=1e-6)
    assert float(formant_bandwidth(1000.0)) == pytest.approx(90.0)
    plant = FormantVoice()
    for i, spec in enumerate(plant.knob_specs):
        assert spec.low < table[:, i].min() and table[:, i].max() < spec.high, spec.name


def test_vowel_sampler_is_jittable_and_returns_table_rows_in_unit_space():
    plant, task = FormantVoice(), FormantMatch()
    keys = jax.random.split(jax.random.PRNGKey(0), 200)
    knobs = jax.jit(jax.vmap(lambda k: task.sample_target_knobs(k, plant, k, 15.0)))(keys)
    assert knobs.shape == (200, 6)
    assert float(knobs.min()) > 0.0 and float(knobs.max()) < 1.0
    controls = jax.vmap(plant.controls)(knobs)
    physical = np.stack(
        [np.asarray(controls[n]) for n in ("f1", "f2", "f3", "b1", "b2", "b3")], axis=1
    )
    rows = [
        np.flatnonzero(np.all(np.abs(p / vowel_table() - 1.0) < 1e-4, axis=1)) for p in physical
    ]
    assert all(r.size == 1 for r in rows)
    counts = np.bincount([int(r[0]) for r in rows], minlength=10)
    assert np.all(counts > 5)  # every vowel is drawn


def test_uniform_targets_fall_back_to_the_default_sampler():
    task = FormantMatch(targets="uniform")
    key = jax.random.PRNGKey(4)
    sine = SineOscillator()
    np.testing.assert_array_equal(
        task.sample_target_knobs(key, sine, key, 15.0), jax.random.uniform(key, (1,))
    )
    with pytest.raises(ValueError, match="targets"):
        FormantMatch(targets="vowel")
