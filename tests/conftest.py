"""Shared fixtures: every test gets the registered envs and a scratch folder."""

from __future__ import annotations

import importlib
import importlib.util
import os
from pathlib import Path

import gymnasium as gym
import jax
import pytest

import ddsp_gym
from ddsp_gym.physiology.stream import local_lsl_config
from ddsp_gym.registry import ids_of_kind, task_reward_ids

# Lab Streaming Layer multicasts stream discovery site-wide by default: every test's LSL
# stays on this machine (liblsl reads the config once, when a first stream opens).
local_lsl_config()

# XLA compilation dominates the suite's time on CPU, and many tests build envs of the
# same configuration afresh (each a new jit trace): JAX's persistent compilation cache
# turns the repeats into disk reads. Counting compilations still works (JAX reports a
# cache hit as a compile event too). DDSP_GYM_JAX_CACHE="" turns it off.
_JAX_CACHE = os.environ.get(
    "DDSP_GYM_JAX_CACHE", str(Path(__file__).resolve().parents[1] / ".jax_cache")
)
_JAX_CACHE_MIN_COMPILE_SECS = 0.2
if _JAX_CACHE:
    jax.config.update("jax_compilation_cache_dir", _JAX_CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", _JAX_CACHE_MIN_COMPILE_SECS)


def subprocess_env() -> dict[str, str]:
    """The environment for a subprocess a test starts (the command line, a script, RL
    Zoo): this one, with the tests' persistent compilation cache when it is on."""
    env = dict(os.environ)
    if _JAX_CACHE:
        env["JAX_COMPILATION_CACHE_DIR"] = _JAX_CACHE
        env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = str(_JAX_CACHE_MIN_COMPILE_SECS)
    return env


@pytest.fixture(scope="session")
def env_ids() -> list[str]:
    return list(ddsp_gym.ENV_IDS)


# The v0 env's settings: an action sets the knobs, the observation holds both summaries,
# the reward is linear in the distance. Most tests reason in these terms (and the query
# agents need absolute control); tests/test_rl_defaults.py covers the registry's defaults.
V0_KWARGS = {"control": "absolute", "observation": "summaries", "reward_shape": "linear"}


# Registry-wide tests ask what an env is by its kind (ddsp_gym/registry.py): a target env
# keeps the matching guarantees (a target, success, a calibrated random score), a
# streaming env the stream's (tests/test_streaming.py); both keep the shared ones.
TARGET_ENV_IDS = ids_of_kind("target")
STREAMING_ENV_IDS = ids_of_kind("streaming")
# The target envs whose reward is the task's distance: the gradient, vector-env and
# reward-calibration contracts hold for these; an env with an external reward source
# (BioFeedback's physiology stream, PreferencePatch's learned taste) has none of them,
# and says so (tests/test_rewards.py).
TASK_REWARD_IDS = task_reward_ids()
# The task-reward envs whose default target is rendered from hidden knobs: "play the
# target's knobs and succeed" holds for these. An env whose registry entry gives the
# target as a sound (SpokenTimbre-v1: a spoken word) has no target knobs to play.
HIDDEN_TARGET_IDS = [i for i in TASK_REWARD_IDS if gym.spec(i).kwargs.get("target") is None]


def make(env_id: str, **kwargs) -> gym.Env:
    """``gym.make`` of the v0 settings (:data:`V0_KWARGS`, overridable; a target env's
    settings, which a streaming env does not take) without the order/passive checkers,
    so tests see the raw behaviour."""
    defaults = {} if env_id in STREAMING_ENV_IDS else V0_KWARGS
    return gym.make(env_id, disable_env_checker=True, **{**defaults, **kwargs})


def require(need: str | object, reason: str) -> None:
    """Skip the calling test, saying ``reason``, unless ``need`` is met; under CI, fail.

    ``need`` is a module name that must import, or any condition (truthy = met); at a
    module's top level it skips (or fails) the whole module. A
    test of an optional dependency or device that skips silently would pass CI without
    testing anything: CI (the environment variable CI set) installs every extra and
    starts the rig (``make test``), so there a missing one is a failure.
    """
    if isinstance(need, str):
        try:
            importlib.import_module(need)
            return
        except ImportError as err:
            reason = f"{reason} ({need} does not import: {err})"
    elif need:
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI runs this test for real, but {reason}", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def rig_problem() -> str | None:
    """Why the software rig cannot run here (None: it can)."""
    from ddsp_gym.backends import rig

    missing = rig.missing_tools()
    # Only look for the modules: importing sounddevice would start PortAudio for good.
    missing += [m for m in ("rtmidi", "sounddevice") if importlib.util.find_spec(m) is None]
    if missing:
        return (
            f"the software rig needs {missing}: `make rig-start` installs and starts it "
            "(Debian, as root), or `pip install 'ddsp_gym[hardware]'` for the Python parts"
        )
    return None


@pytest.fixture(scope="session")
def rig_config():
    """The software rig (JACK + amsynth + FluidSynth), started if it is not running and
    then stopped again; skips saying why where it cannot run (under CI: fails)."""
    from ddsp_gym.backends import rig

    problem = rig_problem()
    require(problem is None, problem or "")
    config = rig.RigConfig.default()
    started_here = not rig.status(config)["synth_ready"]
    rig.start(config, log=lambda *_: None, install_missing=False)
    yield config
    if started_here:
        rig.stop(config, log=lambda *_: None)


@pytest.fixture
def rig_synth(rig_config):
    """The rig with amsynth up (a previous test may have killed it)."""
    from ddsp_gym.backends import rig

    rig.start_synth(rig_config, log=lambda *_: None)
    return rig_config


@pytest.fixture
def rig_fluidsynth(rig_config):
    """The rig with FluidSynth up, its second synth (a previous test may have killed it)."""
    from ddsp_gym.backends import rig

    rig.start_synth(rig_config, log=lambda *_: None, name="fluidsynth")
    return rig_config


@pytest.fixture(scope="session")
def dawdreamer():
    """DawDreamer (the ``plugin`` extra; it embeds the Faust compiler), or a skip (CI: a fail)."""
    require("dawdreamer", "DawDreamer is needed: pip install 'ddsp_gym[plugin]'")
    import dawdreamer

    return dawdreamer
