"""``ddsp-gym plugin list | params``: what a user reads to write a plugin knob map.

Hosting a plugin needs DawDreamer and Debian's amsynth VST, found as in
``tests/test_plugin.py`` (a skip saying why where they are missing; a failure under CI).
"""

from __future__ import annotations

from ddsp_gym.backends.knob_map import load_knob_map
from ddsp_gym.cli import main
from tests.test_plugin import AMSYNTH_VST, needs_dawdreamer, require_file


def test_plugin_list_shows_the_folders_and_the_plugins_in_them(tmp_path, monkeypatch, capsys):
    require_file(AMSYNTH_VST, "amsynth")
    (tmp_path / "mine.so").write_bytes(b"")
    (tmp_path / "notes.txt").write_text("not a plugin")
    monkeypatch.setenv("DDSP_GYM_VST_PATH", str(tmp_path))
    assert main(["plugin", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Plugin folders searched: {tmp_path}, ")  # the variable's first
    assert "/usr/lib/vst" in lines[0].split(": ", 1)[1].split(", ")
    assert f"  {tmp_path / 'mine.so'}" in lines and f"  {AMSYNTH_VST}" in lines
    assert not any("notes.txt" in line for line in lines)


@needs_dawdreamer
def test_plugin_params_lists_the_names_a_plugin_knob_map_takes(capsys):
    require_file(AMSYNTH_VST, "amsynth")
    assert main(["plugin", "params", "amsynth_vst.so"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    names = [row[1] for row in rows]
    assert [int(row[0]) for row in rows] == list(range(len(rows)))  # every index, in order
    assert names[:2] == ["amp_attack", "amp_decay"] and names[11] == "filter_cutoff"
    # Every parameter the packaged amsynth plugin map sets is one the command lists.
    knob_map = load_knob_map("amsynth_plugin")
    used = {m.parameter for m in knob_map.knobs.values()} | set(knob_map.init_parameters())
    assert used and used <= set(names)


def test_plugin_params_of_a_missing_plugin_is_one_error_line(capsys):
    assert main(["plugin", "params", "no_such_plugin.so"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ddsp-gym: error: no plugin 'no_such_plugin.so'") and err.count("\n") == 1
    assert "DDSP_GYM_VST_PATH" in err
