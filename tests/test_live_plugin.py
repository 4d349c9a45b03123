"""Live mode's plugin backend: why it is refused, measured on Debian's amsynth VST.

Live mode would render one 64 ms block per DawDreamer ``render()`` call, which needs the
plugin's state (a held voice, a release tail) carried from call to call. DawDreamer resets
the plugin at every call, so ``--backend plugin`` gives a clear error instead. The first
test pins that finding down: if a DawDreamer release starts carrying state, it fails,
and the backend can be built (the error and docs/streaming.md then need changing).
"""

from __future__ import annotations

import pytest

from ddsp_gym.backends.errors import PluginNotFoundError, UnknownParameterError
from ddsp_gym.backends.plugin import CONTINUITY_TOL, block_continuity
from ddsp_gym.cli import main
from ddsp_gym.live.env import LiveEnv
from ddsp_gym.live.runner import open_session
from tests.test_plugin import AMSYNTH_VST, needs_dawdreamer, require_file

DRONE = "ddsp_gym/Drone-v0"


@needs_dawdreamer
def test_dawdreamer_resets_the_plugin_at_every_render():
    require_file(AMSYNTH_VST, "amsynth")
    r = block_continuity(AMSYNTH_VST, n_blocks=3)
    assert r["block_frames"] == 3072  # 64 ms at 48 kHz
    # The control: the first block render is the long render's first block, sample for
    # sample (same engine set-up, same note), and the note sounds (amsynth at the init patch).
    assert r["held_max_diff_per_block"][0] <= CONTINUITY_TOL
    assert all(p > 0.05 for p in r["held_whole_peak_per_block"])
    # The finding: the held note stops at the end of its render; the next renders are
    # silent while the long render still sounds, and a 2 s release tail is cut off.
    assert max(r["held_peak_per_block"][1:]) <= 1e-6  # 0.0 on amsynth 1.13
    assert min(r["held_max_diff_per_block"][1:]) > 0.05
    assert r["tail_peak_end_of_block"] > 0.05 and r["tail_peak_next_block"] <= 1e-6
    assert r["carries_state"] is False


@needs_dawdreamer
def test_the_probe_reports_a_missing_plugin_or_parameter(tmp_path):
    with pytest.raises(PluginNotFoundError, match="no plugin 'nope_vst.so'"):
        block_continuity("nope_vst.so")
    require_file(AMSYNTH_VST, "amsynth")
    with pytest.raises(UnknownParameterError, match=r"no parameter\(s\) \['no_such_knob'\]"):
        block_continuity(AMSYNTH_VST, release_param="no_such_knob")
    with pytest.raises(ValueError, match="n_blocks >= 2"):
        block_continuity(AMSYNTH_VST, n_blocks=1)


def test_live_plugin_backend_says_why_and_what_to_use_instead(tmp_path, capsys):
    # Refused before anything is built (no JAX compile, no device, no files written).
    with pytest.raises(NotImplementedError, match="DawDreamer resets the plugin") as err:
        open_session(DRONE, backend="plugin", out_dir=tmp_path / "out")
    assert "--backend hardware" in str(err.value) and "--backend sim" in str(err.value)
    assert not (tmp_path / "out").exists()
    argv = ["live", DRONE, "--backend", "plugin", "--audio-out", "null", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "live_plugin_continuity.md" in capsys.readouterr().err
    with pytest.raises(ValueError, match="backend must be one of"):
        LiveEnv(DRONE, backend="plugin")
