"""Every backend keeps the same contract through the one interface (backends/base.py).

The same checks run on the sim (the JAX plant), the plugin backend (amsynth's VST,
rendered offline) and the hardware backend on both of the software rig's synths, in
real time (amsynth over CC; FluidSynth over NRPN, on CutoffSweeper's twin): what
``render`` returns, what the env reports, what a capability promises.
"""

from __future__ import annotations

import numpy as np
import pytest

from ddsp_gym.backends.base import AbstractBackend, Capabilities
from tests.conftest import make, require

ID = "ddsp_gym/RealSynthPatch-v1"  # its registry entry knows the rig's synth and the VST
AMSYNTH_VST = "/usr/lib/vst/amsynth_vst.so"
FLUIDSYNTH = {"knob_map": "fluidsynth_cutoff", "midi_out": "fluidsynth:midi_00",
              "audio_in": "fluidsynth"}  # fmt: skip
BACKENDS = [
    "sim",
    "plugin",
    pytest.param("hardware", marks=pytest.mark.hardware),
    pytest.param("hardware-fluidsynth", marks=pytest.mark.hardware),
]


@pytest.fixture(params=BACKENDS)
def env(request):
    name = request.param
    if name == "plugin":
        require("dawdreamer", "the plugin backend needs DawDreamer: pip install 'ddsp_gym[plugin]'")
        require(__import__("os").path.exists(AMSYNTH_VST), f"{AMSYNTH_VST} is missing")
    if name == "hardware":
        request.getfixturevalue("rig_synth")
    if name == "hardware-fluidsynth":
        request.getfixturevalue("rig_fluidsynth")
        env = make("ddsp_gym/CutoffSweeper-v1", backend="hardware", hardware=FLUIDSYNTH)
    else:
        env = make(ID, backend=name)
    yield env
    env.close()


def test_render_gives_a_take_on_the_plants_timeline(env):
    backend, plant = env.unwrapped.backend, env.unwrapped.plant
    assert isinstance(backend, AbstractBackend) and isinstance(backend.capabilities, Capabilities)
    assert backend.name == env.unwrapped.config.backend
    knobs = np.full(plant.num_knobs, 0.5, np.float32)
    take = backend.render(knobs)
    assert take.audio.shape == (plant.n_samples,) and take.audio.dtype == np.float32
    assert np.isfinite(take.audio).all() and np.abs(take.audio).max() > 1e-3  # not silent
    assert take.knobs.shape == (plant.num_knobs,)
    assert np.all((take.knobs >= 0.0) & (take.knobs <= 1.0))
    # A device quantizes: a 7-bit step through the knob map's law, at most ~2 % of travel.
    np.testing.assert_allclose(take.knobs, knobs, atol=0.02)
    assert isinstance(take.info(), dict)
    if backend.capabilities.deterministic:
        np.testing.assert_array_equal(backend.render(knobs).audio, take.audio)


def test_the_env_reports_the_same_fields_on_every_backend(env):
    base = env.unwrapped
    backend = base.backend
    obs, info = env.reset(seed=0)
    names = set(base.plant.knob_names)
    assert env.observation_space.contains(obs) and set(info["knobs"]) == names
    device = not backend.capabilities.differentiable
    assert (backend.name in info) == device  # a device reports its take
    action = np.zeros(env.action_space.shape, np.float32)
    obs, reward, terminated, truncated, info = env.step(action)
    assert env.observation_space.contains(obs) and np.isfinite(reward) and not truncated
    assert {"distance", "success", "knobs", "penalty", "param_error"} <= set(info)
    assert set(info["knobs"]) == names and terminated == info["success"]
    assert (backend.name in info) == device
    np.testing.assert_allclose(reward, -info["distance"] / float(base.params.distance_scale)
                               - info["penalty"], rtol=1e-5)  # fmt: skip
    assert base.current_audio().shape == (base.plant.n_samples,)
    steps = int(base.state.step_count)
    query_reward, query_info = base.reward_of(action)  # a query: the state stays
    assert int(base.state.step_count) == steps and set(query_info) == set(info)
    if backend.capabilities.deterministic:
        assert query_reward == pytest.approx(reward, abs=1e-6)
    _, twin_grad = base.twin_reward_and_grad(action)  # the JAX twin, on every backend
    assert twin_grad.shape == action.shape and np.isfinite(twin_grad).all()


def test_capabilities_decide_gradients_and_determinism(env):
    base = env.unwrapped
    caps = base.capabilities
    env.reset(seed=1)
    action = np.zeros(env.action_space.shape, np.float32)
    assert env.spec.nondeterministic == (not caps.deterministic)
    if caps.differentiable:
        _, info = base.reward_of(action, with_grad=True)
        assert info["reward_grad"].shape == action.shape
    else:
        with pytest.raises(NotImplementedError, match="no gradient"):
            base.reward_of(action, with_grad=True)
        with pytest.raises(NotImplementedError, match="no gradient"):
            base.reward_and_grad(action)
    assert caps.real_time == (base.backend.name == "hardware")


def test_close_is_safe_twice(env):
    env.reset(seed=2)
    env.close()
    env.close()
