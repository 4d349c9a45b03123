"""The plugin backend: plugin knob maps (type: param), and real VST2 plugins hosted by
DawDreamer: amsynth's VST (Debian package amsynth) and DISTRHO's 3BandEQ (dpf-plugins-vst).

Knob-map tests always run. Tests that host a plugin need DawDreamer (the ``plugin``
extra) and the plugin files (``make rig-start`` installs both packages): without them
they skip, saying why, except under CI (environment variable CI), where that is a
failure (``tests.conftest.require``).
"""

from __future__ import annotations

import math
from pathlib import Path

import jax
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env

import ddsp_gym  # noqa: F401 - registers the envs
from ddsp_gym.backends import validate_backend
from ddsp_gym.backends.errors import (
    KnobMapError,
    PluginDependencyError,
    PluginLoadError,
    PluginNotFoundError,
    UnknownParameterError,
)
from ddsp_gym.backends.knob_map import load_knob_map, parse_knob_map
from ddsp_gym.features import long_term_power_spectrum, spectral_centroid
from ddsp_gym.plants import make_plant
from tests.conftest import make, require

AMSYNTH_VST = "/usr/lib/vst/amsynth_vst.so"
EQ_VST = "/usr/lib/vst/3BandEQ-vst.so"
ID = "ddsp_gym/RealSynthPatch-v1"


needs_dawdreamer = pytest.mark.usefixtures("dawdreamer")


def require_file(path: str, package: str) -> None:
    """The plugin file exists: skip without it, fail under CI."""
    message = f"{path} is missing: apt-get install {package} (make rig-start installs it)"
    require(Path(path).exists(), message)


@pytest.fixture(scope="module")
def amsynth_env(dawdreamer):
    require_file(AMSYNTH_VST, "amsynth")
    env = make(ID, backend="plugin")
    yield env
    env.close()


# ---- plugin knob maps (no plugin needed) ----------------------------------------------


def _map(**knob) -> dict:
    return {"knobs": {"cutoff": {"type": "param", "parameter": "filter_cutoff", **knob}}}


def test_param_knobs_are_continuous_and_follow_the_law():
    plant = make_plant("amsynth_twin")
    knob_map = load_knob_map("amsynth_plugin")
    assert knob_map.is_plugin_map and knob_map.plugin == "amsynth_vst.so"
    units = np.array([0.37, 0.5, 0.5, 0.5, 0.5, 0.5])
    messages, sent = knob_map.encode(units, plant.knob_specs)
    assert messages == []
    cutoff_hz = float(plant.knob_specs[0].to_physical(0.37))
    # amsynth: cutoff = 16^p * f_note, p = -0.5 + 2 v  ->  v = (log16(cutoff / f_note) + 0.5) / 2
    expected = (math.log(cutoff_hz / 130.8128, 16) + 0.5) / 2
    assert sent["cutoff"].value == pytest.approx(expected, abs=1e-6)
    # Not quantized: the unit position comes back (a CC map would move it to 1/127 steps).
    assert sent["cutoff"].unit == pytest.approx(0.37, abs=1e-5)
    assert sent["osc_mix"].value == pytest.approx(0.5)  # p = -1 + 2 v = 0
    assert knob_map.init_parameters()["master_vol"] == pytest.approx(32 / 127, abs=1e-6)


@pytest.mark.parametrize(
    "document, message",
    [
        ({"knobs": {"cutoff": {"type": "param"}}}, r"knobs.cutoff.parameter: type: param needs"),
        (_map(number=3), "a param message has no number"),
        (_map(channel=2), r"takes no \['channel'\]"),
        (_map(range=[0, 2]), r"range\[1\]: a plugin parameter's normalized value lies in"),
        (
            {**_map(), "init": [{"type": "cc", "number": 7, "value": 3}]},
            "mixes plugin parameters",
        ),
        (
            {**_map(), "init": [{"type": "param", "parameter": "vol", "value": 1.5}]},
            r"init\[0\].value",
        ),
        (
            {"plugin": "x.so", "knobs": {"c": {"type": "cc", "number": 1}}},
            "plugin: names the plugin file of a plugin map",
        ),
        (
            {
                "knobs": {
                    "a": {"type": "param", "parameter": "p"},
                    "b": {"type": "param", "parameter": "p"},
                }
            },
            "uses the same address as 'a'",
        ),  # fmt: skip
    ],
)
def test_bad_plugin_maps_name_the_field(document, message):
    with pytest.raises(KnobMapError, match=message):
        parse_knob_map(document, "m.yaml")


def test_hardware_backend_refuses_a_plugin_map():
    from ddsp_gym.backends.hardware import HardwareBackend

    options = {"knob_map": "amsynth_plugin", "audio_in": "x", "midi_out": "y"}
    with pytest.raises(KnobMapError, match="a plugin map"):
        HardwareBackend(make_plant("amsynth_twin"), options, devices=(None, None))


def test_missing_dawdreamer_names_the_extra(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "dawdreamer", None)
    with pytest.raises(PluginDependencyError, match=r"pip install 'ddsp_gym\[plugin\]'"):
        validate_backend("plugin")


# ---- hosting real plugins --------------------------------------------------------------


@needs_dawdreamer
def test_bad_plugin_path_lists_the_plugins_that_exist():
    from ddsp_gym.backends.plugin import PluginBackend

    require_file(AMSYNTH_VST, "amsynth")
    options = {"knob_map": "amsynth_plugin", "path": "no_such_synth.so"}
    with pytest.raises(PluginNotFoundError, match="no plugin 'no_such_synth.so'") as err:
        PluginBackend(make_plant("amsynth_twin"), options)
    assert AMSYNTH_VST in str(err.value)


@needs_dawdreamer
def test_a_file_that_is_no_plugin_is_a_load_error(tmp_path):
    from ddsp_gym.backends.plugin import PluginBackend

    fake = tmp_path / "fake_vst.so"
    fake.write_bytes(b"not a shared object")
    with pytest.raises(PluginLoadError, match="could not be loaded as a plugin"):
        PluginBackend(make_plant("amsynth_twin"), {"knob_map": "amsynth_plugin", "path": fake})


@needs_dawdreamer
def test_unknown_parameter_lists_the_plugins_parameters():
    from ddsp_gym.backends.plugin import PluginBackend

    require_file(AMSYNTH_VST, "amsynth")
    document = load_knob_map("amsynth_plugin")
    knobs = dict(document.knobs)
    knobs["cutoff"] = knobs["cutoff"].__class__(
        **{**knobs["cutoff"].__dict__, "parameter": "filter_cutof"}
    )
    bad = document.__class__(**{**document.__dict__, "knobs": knobs})
    with pytest.raises(UnknownParameterError, match=r"no parameter\(s\) \['filter_cutof'\]") as e:
        PluginBackend(make_plant("amsynth_twin"), {"knob_map": bad})
    assert "filter_cutoff" in str(e.value) and "amp_release" in str(e.value)


@needs_dawdreamer
def test_instrument_refused_in_effect_mode():
    from ddsp_gym.backends.plugin import PluginBackend

    require_file(AMSYNTH_VST, "amsynth")
    options = {"knob_map": "amsynth_plugin", "mode": "effect"}
    with pytest.raises(PluginLoadError, match="no audio inputs"):
        PluginBackend(make_plant("amsynth_twin"), options)


@needs_dawdreamer
def test_real_synth_patch_runs_on_the_plugin_with_the_sims_api(amsynth_env):
    sim = make(ID)
    env = amsynth_env
    assert env.action_space == sim.action_space
    assert env.observation_space == sim.observation_space
    assert not env.spec.nondeterministic and not env.unwrapped.nondeterministic
    obs, info = env.reset(seed=0)
    assert obs.shape == sim.observation_space.shape and np.all(np.isfinite(obs))
    assert set(info["plugin"]["sent"]) == set(env.unwrapped.plant.knob_names)
    obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    assert np.all(np.isfinite(obs)) and np.isfinite(reward)
    assert "reward_grad" not in info and info["plugin"]["peak_dbfs"] > -40
    assert {"distance", "success", "knobs", "param_error"} <= set(info)
    with pytest.raises(NotImplementedError, match="plugin backend has no gradient"):
        env.unwrapped.reward_and_grad(np.zeros(6, np.float32))
    reward, grad = env.unwrapped.twin_reward_and_grad(np.zeros(6, np.float32))
    assert np.isfinite(reward) and grad.shape == (6,)
    with pytest.raises(ValueError, match="plugin backend has no gradient"):
        make(ID, backend="plugin", expose_grad=True)


@needs_dawdreamer
def test_plugin_env_passes_gymnasiums_checker_incl_determinism(amsynth_env):
    gym_check_env(amsynth_env.unwrapped, skip_render_check=True)


@needs_dawdreamer
def test_same_seed_same_renders_and_rewards():
    require_file(AMSYNTH_VST, "amsynth")
    actions = np.random.default_rng(1).uniform(-1, 1, (3, 6)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = make(ID, backend="plugin")
        obs, _ = env.reset(seed=7)
        rewards = [env.step(a)[1] for a in actions]
        runs.append((obs, rewards, env.unwrapped.current_audio()))
        env.close()
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1]
    np.testing.assert_array_equal(runs[0][2], runs[1][2])


@needs_dawdreamer
def test_plugin_sounds_like_its_sim_twin(amsynth_env):
    """The twin models amsynth's voice: sample-wise correlation and level agree (measured
    0.998-1.0 and 0.98-1.0 at random knobs)."""
    backend, plant = amsynth_env.unwrapped.backend, amsynth_env.unwrapped.plant
    rng = np.random.default_rng(0)
    for _ in range(4):
        knobs = rng.uniform(0, 1, plant.num_knobs).astype(np.float32)
        take = backend.render(knobs)
        twin = np.asarray(plant.render(knobs, jax.random.PRNGKey(0)))
        assert take.audio.shape == twin.shape
        assert np.corrcoef(take.audio, twin)[0, 1] > 0.99
        rms_ratio = np.sqrt(np.mean(take.audio**2) / np.mean(twin**2))
        assert rms_ratio == pytest.approx(1.0, abs=0.05)


@needs_dawdreamer
def test_cutoff_sweep_raises_the_centroid_monotonically(amsynth_env):
    backend = amsynth_env.unwrapped.backend
    centroids = []
    for u in np.linspace(0.0, 1.0, 6):
        knobs = np.array([u, 0.0, 0.0, 0.0, 0.5, 0.0], np.float32)
        power, freqs = long_term_power_spectrum(backend.render(knobs).audio)
        centroids.append(float(spectral_centroid(power, freqs)))
    assert np.all(np.diff(centroids) > 0), centroids


@needs_dawdreamer
def test_effect_mode_processes_the_program_signal():
    """DISTRHO 3BandEQ's Master is -24..+24 dB over the normalized range (its display
    text); a 1 kHz tone through it must come out that much louder or softer."""
    from ddsp_gym.backends.plugin import PluginBackend

    require_file(EQ_VST, "dpf-plugins-vst")
    plant = make_plant("gain")
    knob_map = {
        "plugin": "3BandEQ-vst.so",
        "knobs": {"gain": {"type": "param", "parameter": "Master"}},
        "init": [{"type": "param", "parameter": name, "value": 0.5} for name in
                 ("Low", "Mid", "High")],
    }  # fmt: skip
    backend = PluginBackend(plant, {"knob_map": knob_map, "mode": "effect"})
    t = np.arange(plant.n_samples) / plant.sample_rate
    tone = (0.25 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32)
    for u in (0.0, 0.3, 0.5, 0.9):
        out = backend.render(np.array([u]), tone).audio
        gain_db = 10 * np.log10(np.mean(out[800:] ** 2) / np.mean(tone[800:] ** 2))
        assert gain_db == pytest.approx(-24 + 48 * u, abs=0.2)
        assert np.corrcoef(out[800:], tone[800:])[0, 1] > 0.999
    with pytest.raises(ValueError, match="effect mode needs a program signal"):
        backend.render(np.array([0.5]), None)
    # 3BandEQ switches the CPU to flush denormals to zero on load; the host restores it.
    assert np.float32(1e-40) * np.float32(1.0) > 0


@needs_dawdreamer
def test_reward_of_plays_the_plugin_and_the_twin_gives_the_gradient(amsynth_env):
    from ddsp_gym.agents.base import PlantOracle

    env = amsynth_env.unwrapped
    env.reset(seed=3)
    action = np.linspace(-0.8, 0.8, 6).astype(np.float32)
    reward, info = env.reward_of(action)
    assert "reward_grad" not in info and "plugin" in info
    with pytest.raises(NotImplementedError, match="twin_reward_and_grad"):
        env.reward_of(action, with_grad=True)  # the plugin has no gradient of its own
    assert env.twin_reward_and_grad(action)[1].shape == (6,)
    _, step_reward, _, _, step_info = env.step(action)  # the same take, now stepped
    assert step_reward == reward and step_info["distance"] == info["distance"]
    oracle = PlantOracle(amsynth_env, seed=3, budget=5)
    assert oracle.has_twin and not oracle.differentiable  # hybrid: twin gradient + SPSA
