"""The YAML registry is the one list of envs, and Gymnasium agrees with it."""

from __future__ import annotations

import gymnasium as gym
import pytest
import yaml

import ddsp_gym
from ddsp_gym.registry import (
    DEFAULT_ENTRY_POINT,
    STREAMING_ENTRY_POINT,
    ids_of_kind,
    load_registry,
    registered_ids,
    registry_path,
)


def test_yaml_ids_equal_registered_ids():
    yaml_ids = [entry["id"] for entry in yaml.safe_load(registry_path().read_text())["envs"]]
    assert len(yaml_ids) == len(set(yaml_ids)), "an id is listed twice"
    assert sorted(yaml_ids) == registered_ids()
    assert sorted(ddsp_gym.ENV_IDS) == registered_ids()


def test_every_entry_names_a_seed_demo_and_a_spec():
    for entry in load_registry():
        spec = gym.spec(entry.id)
        assert entry.seed_demo and entry.description
        assert spec.max_episode_steps == entry.max_episode_steps
        assert spec.kwargs["plant"] and spec.kwargs["task"]


def test_a_kind_picks_the_entry_points_and_every_id_has_one_kind():
    target, streaming = ids_of_kind("target"), ids_of_kind("streaming")
    assert sorted(target + streaming) == registered_ids() and not set(target) & set(streaming)
    assert {"ddsp_gym/Drone-v0", "ddsp_gym/JamPartner-v0"} <= set(streaming)
    for env_id in streaming:
        assert gym.spec(env_id).entry_point == STREAMING_ENTRY_POINT
        assert gym.spec(env_id).vector_entry_point is None
    assert gym.spec("ddsp_gym/SineTuner-v1").entry_point == DEFAULT_ENTRY_POINT
    for env_id in target:
        assert gym.spec(env_id).entry_point != STREAMING_ENTRY_POINT
    with pytest.raises(ValueError, match="kind must be one of"):
        ids_of_kind("live")


def test_level1_demos_are_registered():
    for env_id in (
        "ddsp_gym/SineTuner-v1",
        "ddsp_gym/CutoffSweeper-v1",
        "ddsp_gym/EnvelopeShaper-v1",
        "ddsp_gym/VolumeMatch-v1",
    ):
        assert env_id in registered_ids()


@pytest.mark.parametrize(
    "text, message",
    [
        ("envs: 3", "list under 'envs'"),
        ("envs:\n  - {id: ddsp_gym/A-v0}", "lacks"),
        (
            "envs:\n"
            "  - {id: Foo-v0, seed_demo: x, description: x, max_episode_steps: 1, kwargs: {}}",
            "must start with 'ddsp_gym/'",
        ),
        (
            "envs:\n  - {id: ddsp_gym/A-v0, seed_demo: x, description: x, max_episode_steps: 1,"
            " kwargs: {}, kind: live}",
            "has kind 'live'",
        ),
    ],
)
def test_malformed_registry_files_are_refused(tmp_path, text, message):
    path = tmp_path / "registry.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_registry(path)
