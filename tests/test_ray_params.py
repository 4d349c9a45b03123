"""The Ray extra's parts that run without Ray: sweep parameters, the best trial, the
results table, and the one-line error when Ray is missing (tests/test_ray.py runs Ray)."""

from __future__ import annotations

import sys

import pytest

from ddsp_gym.agents import ray_runs
from ddsp_gym.agents.ray_runs import ParamSpec, parse_param
from ddsp_gym.cli import main

VOLUME = "ddsp_gym/VolumeMatch-v1"


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("lr=loguniform:1e-4:1e-3", ParamSpec("lr", "loguniform", (1e-4, 1e-3))),
        ("gamma=uniform:0.9:0.99", ParamSpec("gamma", "uniform", (0.9, 0.99))),
        ("n_epochs=int:3:10", ParamSpec("n_epochs", "int", (3, 10))),
        ("batch_size=logint:32:256", ParamSpec("batch_size", "logint", (32, 256))),
        ("n_steps=choice:128,256", ParamSpec("n_steps", "choice", (128, 256))),
        (
            "policy_kwargs.net_arch=choice:[64,64],[256,256]",
            ParamSpec("policy_kwargs.net_arch", "choice", ([64, 64], [256, 256])),
        ),
        ("ent_coef=0.01", ParamSpec("ent_coef", "value", (0.01,))),
        ("normalize_advantage=false", ParamSpec("normalize_advantage", "value", (False,))),
    ],
)  # fmt: skip
def test_a_param_is_a_distribution_or_a_fixed_yaml_value(text, spec):
    assert parse_param(text) == spec


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("learning_rate", "expected NAME=DIST:ARGS"),
        ("=uniform:0:1", "expected NAME=DIST:ARGS"),
        ("gamma=uniform:0.9", "takes LOW:HIGH"),
        ("gamma=uniform:0.99:0.9", "LOW < HIGH"),
        ("learning_rate=loguniform:0:1e-3", "0 < LOW"),
        ("n_epochs=int:3:ten", "bounds must be ints"),
        ("n_steps=choice:", "at least one value"),
    ],
)
def test_a_malformed_param_is_a_clear_error(text, message):
    with pytest.raises(ValueError, match=message):
        parse_param(text)


def test_dotted_names_override_one_key_of_a_nested_hyperparameter():
    base = {"learning_rate": 3e-4, "policy_kwargs": {"net_arch": [64, 64], "ortho_init": True}}
    trial = {"policy_kwargs.net_arch": [256, 256], "gamma": 0.95}
    merged = ray_runs.merge(base, ray_runs.nest(trial))
    assert merged == {
        "learning_rate": 3e-4,
        "gamma": 0.95,
        "policy_kwargs": {"net_arch": [256, 256], "ortho_init": True},
    }
    assert base["policy_kwargs"]["net_arch"] == [64, 64]  # the YAML's dict is not changed


def test_params_the_algorithm_does_not_take_are_refused_before_any_trial():
    ok = [parse_param("learning_rate=0.001"), parse_param("policy_kwargs.net_arch=[8]")]
    ray_runs.check_params("ppo", ok)
    ray_runs.check_params("td3", [parse_param("noise_std=0.2")])  # an RL Zoo key of our file
    with pytest.raises(ValueError, match="ppo has no hyperparameter 'learnin_rate'; known: "):
        ray_runs.check_params("ppo", [parse_param("learnin_rate=0.001")])
    with pytest.raises(ValueError, match="given twice for gamma"):
        ray_runs.check_params("ppo", [parse_param("gamma=0.9"), parse_param("gamma=0.95")])


def test_the_best_trial_has_the_highest_success_then_the_lowest_distance():
    trials = [
        {"trial": 0, "success": 0.5, "median_best_distance": 2.0},
        {"trial": 1, "success": None, "error": "boom"},
        {"trial": 2, "success": 0.5, "median_best_distance": 1.0},
        {"trial": 3, "success": 0.25, "median_best_distance": 0.1},
    ]
    assert ray_runs.best_trial(trials)["trial"] == 2
    assert ray_runs.best_trial(trials[1:2]) is None


def test_the_sweep_table_ranks_trials_and_names_the_best_and_the_command():
    document = {
        "env": VOLUME, "algo": "ppo", "steps": 1000, "targets": 4, "budget": 10,
        "command": "ddsp-gym sweep x",
        "trials": [
            {"trial": 0, "config": {"gamma": 0.9, "n_steps": 64}, "success": 0.25,
             "median_best_distance": 3.0},
            {"trial": 1, "config": {"gamma": 0.95, "n_steps": 128}, "success": None,
             "error": "ValueError: bad"},
            {"trial": 2, "config": {"gamma": 0.99, "n_steps": 64}, "success": 0.75,
             "median_best_distance": 0.5},
        ],
    }  # fmt: skip
    document["best"] = ray_runs.best_trial(document["trials"])
    lines = ray_runs.format_sweep_markdown(document).splitlines()
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert rows == [
        "| 2 | 0.99 | 64 | 75 % | 0.5 |",
        "| 0 | 0.9 | 64 | 25 % | 3 |",
        "| 1 | 0.95 | 128 | failed: ValueError: bad | - |",
    ]
    assert "Best: trial 2, {gamma: 0.99, n_steps: 64}, 75 % held-out success." in lines
    assert "    ddsp-gym sweep x" in lines


def test_rllib_gets_the_module_prefixed_id():
    assert ray_runs.rllib_env_id(VOLUME) == f"ddsp_gym:{VOLUME}"
    assert ray_runs.rllib_env_id(f"ddsp_gym:{VOLUME}") == f"ddsp_gym:{VOLUME}"


@pytest.mark.parametrize(
    "argv",
    [
        ["sweep", VOLUME, "--param", "learning_rate=loguniform:1e-4:1e-3", "--trials", "2"],
        ["bench", "rl", "--envs", VOLUME, "--algos", "ppo", "--seeds", "1", "--ray"],
    ],
)
def test_without_ray_the_commands_say_how_to_install_it(argv, monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed, in any venv
    assert main([*argv, "-o", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err == "ddsp-gym: error: Ray is not installed: pip install 'ddsp_gym[ray]' (docs/ray.md)"
    assert not list(tmp_path.iterdir())  # nothing ran, nothing written


def test_sweep_refuses_bad_params_with_one_line(tmp_path, capsys):
    argv = ["sweep", VOLUME, "--param", "gamma=uniform:1:0", "-o", str(tmp_path)]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("ddsp-gym: error: --param 'gamma=uniform:1:0'")
