"""Names the command line shows and checks before anything imports JAX.

``ddsp-gym --help`` and a typo in an env id should answer at once, but the plant
registry (:data:`ddsp_gym.plants.PLANTS`) and the agents import JAX. So the plant names
are listed here too (``tests/test_cli.py`` checks they equal ``PLANTS``), and the
benchmark's agent names live here, imported by the benchmarks themselves.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

# The keys of ddsp_gym.plants.PLANTS, in its order.
PLANT_NAMES: tuple[str, ...] = (
    "sine",
    "filtered_saw",
    "adsr_tone",
    "gain",
    "amsynth_twin",
    "compressor",
    "delay",
    "reverb",
    "distortion",
    "guitar_amp",
    "fm2",
    "subtractive",
    "formant",
    "fm_sine",
    "harmonic",
    "resonant_filter",
    "faust",
    "designer_voice",
    "saw_chain",
)

# ``ddsp-gym bench agents``: search agents work on each target within the budget;
# trained agents learn on other targets first (ddsp_gym.agents.benchmark).
SEARCH_AGENTS: tuple[str, ...] = ("random", "cma", "gradient", "hybrid")
TRAINED_AGENTS: tuple[str, ...] = ("ppo", "sac", "td3", "amortized")
DEFAULT_AGENTS: tuple[str, ...] = SEARCH_AGENTS
# ``ddsp-gym bench hw``: the search agents that need no reward gradient (a device has none).
HW_AGENTS: tuple[str, ...] = ("random", "cma", "hybrid")
DEFAULT_HW_ENV = "ddsp_gym/RealSynthPatch-v1"
# ``ddsp-gym bench rl``: RL algorithms trained per (env, seed), scored on held-out targets.
RL_ALGOS: tuple[str, ...] = ("ppo", "sac", "td3")
# JAX-native trainers on the functional core (ddsp_gym.agents.jax_rl), also in bench rl.
JAX_RL_ALGOS: tuple[str, ...] = ("jax_ppo", "apg", "hybrid_pg")
DEFAULT_RL_ENVS: tuple[str, ...] = (
    "ddsp_gym/SineTuner-v1",
    "ddsp_gym/CutoffSweeper-v1",
    "ddsp_gym/EnvelopeShaper-v1",
    "ddsp_gym/VolumeMatch-v1",
)


class UnknownNameError(ValueError):
    """A name (env id, plant) the command line does not know; the message says where to
    find the valid ones."""


def check_env_ids(env_ids: Iterable[str]) -> None:
    """Raise :class:`UnknownNameError` for the first id that is not a ddsp_gym env.

    Checked before any env is made, so a typo costs no JAX start and no device opened.
    """
    import ddsp_gym  # registers the envs from the YAML registry; no JAX

    for env_id in env_ids:
        if env_id not in ddsp_gym.ENV_IDS:
            raise UnknownNameError(
                f"unknown env id {env_id!r}{_suggestion(env_id, ddsp_gym.ENV_IDS)}; "
                "`ddsp-gym list` shows the valid ids"
            )


def check_plant(name: str) -> None:
    """Raise :class:`UnknownNameError` unless ``name`` is a plant of ``PLANTS``."""
    if name not in PLANT_NAMES:
        raise UnknownNameError(
            f"unknown plant {name!r}{_suggestion(name, PLANT_NAMES)}; "
            f"known plants: {', '.join(PLANT_NAMES)}"
        )


def _suggestion(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for the closest known name, '' when none is close."""
    known = list(known)
    # Match bare names too: 'SineTuner-v1' against 'ddsp_gym/SineTuner-v1'.
    by_tail = {k.split("/")[-1].lower(): k for k in known}
    close = difflib.get_close_matches(name.split("/")[-1].lower(), list(by_tail), n=1)
    return f" (did you mean {by_tail[close[0]]!r}?)" if close else ""
