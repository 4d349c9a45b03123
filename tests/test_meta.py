"""Meta-AbS (agents/meta.py): the unrolled inner loop is the gradient agent's, meta-training
lowers the meta-loss deterministically, train and held-out targets are disjoint, and the
settings file round-trips and refuses another env's."""

from __future__ import annotations

import json
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ddsp_gym.agents.benchmark import eval_seeds
from ddsp_gym.agents.gradient import GradientAgent
from ddsp_gym.agents.meta import (
    MetaConfig,
    MetaGradientAgent,
    MetaSettings,
    episode_states,
    knob_adam,
    knob_names_of,
    make_query_env,
    meta_train,
    train_seeds,
    unrolled_distances,
)

SINE = "ddsp_gym/SineTuner-v1"
FM = "ddsp_gym/FMBell-v1"


def test_knob_adam_with_equal_rates_is_the_gradient_agents_adam():
    """Per-knob rates all at the agent's learning rate: the same updates, step by step."""
    rng = np.random.default_rng(0)
    ours, theirs = knob_adam(np.full(3, 0.1), 0.98, 0.9), GradientAgent()._optimizer()
    x = jnp.zeros(3)
    s_ours, s_theirs = ours.init(x), theirs.init(x)
    for _ in range(30):
        g = jnp.asarray(rng.normal(size=3), jnp.float32)
        u_ours, s_ours = ours.update(g, s_ours, x)
        u_theirs, s_theirs = theirs.update(g, s_theirs, x)
        np.testing.assert_allclose(u_ours, u_theirs, rtol=1e-5, atol=1e-8)


def test_knob_adam_scales_each_knob_by_its_own_rate():
    opt = knob_adam(jnp.asarray([0.1, 0.01]), 1.0, 0.9)
    updates, _ = opt.update(jnp.asarray([1.0, 1.0]), opt.init(jnp.zeros(2)))
    # Adam's first step is sign(g) (bias-corrected), so the step is -rate per knob.
    np.testing.assert_allclose(updates, [-0.1, -0.01], rtol=1e-4)


@pytest.mark.parametrize("env_id", [SINE, FM])
def test_unrolled_loop_equals_the_gradient_agent_step_by_step(env_id):
    """Same target, same start, same settings: the scan's distances are the agent's."""
    steps, seed = 12, 10_003
    env = make_query_env(env_id)
    base = env.unwrapped
    rates = np.linspace(0.05, 0.15, base.plant.num_knobs)
    settings = MetaSettings(env_id, knob_names_of(base), rates.tolist(), 0.95, 0.8)
    agent = MetaGradientAgent(settings=settings, patience=0)
    played = agent.solve(env, seed, steps)
    state = episode_states(base.functional, base.params, [seed])
    first = jax.tree_util.tree_map(lambda x: x[0], state)
    # The gym env's reset(seed) target is the functional one of the same seed.
    np.testing.assert_allclose(first.target_knobs, base.state.target_knobs, atol=1e-6)
    unrolled = unrolled_distances(
        base.functional, base.params, first, 2.0 * first.knobs - 1.0,
        jnp.asarray(rates, jnp.float32), 0.95, 0.8, len(played.distances),
    )  # fmt: skip
    env.close()
    assert len(played.distances) >= 3
    np.testing.assert_allclose(unrolled, played.distances, rtol=2e-3, atol=1e-5)


def test_meta_training_lowers_the_loss_and_is_deterministic():
    # batch == targets: the batch and full-set losses share one compilation.
    config = MetaConfig(method="grad", unroll=10, targets=6, batch=6, meta_steps=8,
                        meta_learning_rate=0.05)  # fmt: skip
    first = meta_train(SINE, config, eval_seeds(20))
    again = meta_train(SINE, config, eval_seeds(20))
    t = first.training
    assert t["method"] == "grad"
    assert t["meta_loss_learned"] < t["meta_loss_hand_set"] - 1e-3
    assert t["kept_step"] > 0  # a trained checkpoint, not the hand-set start
    assert first.learning_rates != MetaSettings.hand_set(SINE, ["f"]).learning_rates
    assert again.learning_rates == first.learning_rates
    assert (again.decay, again.b1, again.start) == (first.decay, first.b1, first.start)
    assert again.training["batch_losses"] == t["batch_losses"]


def test_cma_meta_training_is_deterministic_and_no_worse():
    config = MetaConfig(method="cma", unroll=10, targets=6, batch=6, meta_steps=4)
    first = meta_train(SINE, config)
    again = meta_train(SINE, config)
    assert first.learning_rates == again.learning_rates and first.start == again.start
    # The kept settings are the best checkpoint on the training targets, the start included.
    assert first.training["meta_loss_learned"] <= first.training["meta_loss_hand_set"]


def test_training_seeds_are_disjoint_from_the_held_out_ones():
    held_out = eval_seeds(20)
    seeds = train_seeds(64, held_out)
    assert not set(seeds) & set(held_out)
    with pytest.raises(ValueError, match="overlap"):
        train_seeds(64, [3, 10_000])
    with pytest.raises(ValueError, match="overlap"):
        meta_train(SINE, MetaConfig(targets=8, batch=4), held_out=[5])


def test_settings_json_round_trip(tmp_path):
    settings = MetaSettings(SINE, ["frequency"], [0.07], 0.9, 0.85, start=[0.25],
                            training={"method": "grad"})  # fmt: skip
    path = settings.to_json(tmp_path / "s.json")
    assert MetaSettings.from_json(path) == settings
    env = make_query_env(SINE)
    agent = MetaGradientAgent.from_file(path, env)
    assert agent.settings == settings
    result = agent.solve(env, 10_000, 5)
    env.close()
    assert result.queries <= 5


def test_settings_of_another_env_or_knob_count_are_refused(tmp_path):
    path = MetaSettings(SINE, ["frequency"], [0.1], 0.98, 0.9).to_json(tmp_path / "sine.json")
    env = make_query_env(FM)
    with pytest.raises(ValueError, match="learned on ddsp_gym/SineTuner-v1"):
        MetaGradientAgent.from_file(path, env)
    with pytest.raises(ValueError, match="learned on"):
        MetaGradientAgent.from_file(path).solve(env, 10_000, 3)
    env.close()
    with pytest.raises(ValueError, match="knobs"):
        MetaSettings.from_json(path, SINE, ["frequency", "gain"])
    document = json.loads(path.read_text())
    document["learning_rates"] = [0.1, 0.1]
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="2 learning rates for 1 knobs"):
        MetaSettings.from_json(path)
    document["version"] = 99
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match="version 99"):
        MetaSettings.from_json(path)


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="method"):
        MetaConfig(method="sgd")
    with pytest.raises(ValueError, match="batch"):
        MetaConfig(targets=4, batch=8)
    with pytest.raises(ValueError, match="learning rates must be"):
        MetaSettings(SINE, ["frequency"], [-0.1], 0.98, 0.9)


def test_meta_bench_report_formats_rows():
    from ddsp_gym.bench.meta_abs import bootstrap_ci

    low, high = bootstrap_ci([0.0, 1.0] * 10)
    assert 0.2 < low < 0.5 < high < 0.8
    assert bootstrap_ci([1.0] * 5) == (1.0, 1.0)


@pytest.mark.slow
def test_bench_meta_command_writes_results_and_loadable_settings(tmp_path):
    """End to end on a tiny config: the JSON, the Markdown table and a settings file the
    agent loads; every agent row on the same held-out targets and budget."""
    from ddsp_gym.cli import main

    out = tmp_path / "meta.json"
    argv = f"bench meta --envs {SINE}=grad --budget 6 --seeds 3 --meta-steps 2 --targets 4"
    argv = [*argv.split(), "--batch", "4", "--output", str(out)]
    assert main(argv) == 0
    document = json.loads(out.read_text())
    rows = document["rows"]
    assert [r["agent"] for r in rows] == [
        "meta-gradient", "meta-gradient, env start", "gradient", "hybrid"
    ]  # fmt: skip
    assert {(r["budget"], r["targets"]) for r in rows} == {(6, 3)}
    assert document["held_out"] == [10_000, 10_002]
    assert document["training"][0]["method"] == "grad"
    assert "| SineTuner-v1 | meta-gradient |" in out.with_suffix(".md").read_text()
    settings = MetaSettings.from_json(tmp_path / "meta" / "SineTuner-v1.json", SINE)
    assert settings.training["train_seeds"] == [0, 3]


def test_bench_meta_refuses_an_unknown_env_or_method_before_writing(tmp_path, monkeypatch, capsys):
    from ddsp_gym.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["bench", "meta", "--envs", "ddsp_gym/NoSuchEnv-v0"]) == 2
    assert "unknown env id 'ddsp_gym/NoSuchEnv-v0'" in capsys.readouterr().err
    assert main(["bench", "meta", "--envs", f"{SINE}=sgd"]) != 0
    assert "unknown meta-training method 'sgd'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


class _Batches(NamedTuple):
    knobs: jax.Array  # (targets, 1): target i of batch b holds b, so a batch names itself


def _diagnose(directions: list[list[float]]) -> dict:
    """diagnose_meta_gradient on a stand-in meta-gradient: directions[b] for batch b."""
    from ddsp_gym.agents.meta import Raw, diagnose_meta_gradient

    def value_and_grad(raw, part):
        return 0.0, raw._replace(log_lr=jnp.asarray(directions[int(part.knobs[0, 0])]))

    raw = Raw(jnp.zeros(2), jnp.zeros(()), jnp.zeros(()), jnp.zeros(2))
    states = _Batches(jnp.repeat(jnp.arange(4.0), 2)[:, None])  # 4 batches of 2
    return diagnose_meta_gradient(value_and_grad, raw, states, batch=2)


def test_auto_method_follows_consistent_meta_gradients_and_not_chaotic_ones():
    consistent = _diagnose([[1.0, 0.1], [1.2, 0.0], [0.9, 0.2], [1.0, -0.1]])
    assert consistent["method"] == "grad" and consistent["mean_cosine"] > 0.9
    flipping = _diagnose([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    assert flipping["method"] == "cma" and flipping["mean_cosine"] < 0.0
    exploding = _diagnose([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [1e4, 0.0]])
    assert exploding["method"] == "cma" and exploding["max_over_median_norm"] > 100
    assert _diagnose([[1.0, 0.0], [np.nan, 0.0], [1.0, 0.0], [1.0, 0.0]])["method"] == "cma"
