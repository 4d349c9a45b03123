from __future__ import annotations

import json

import pytest

from ddsp_gym.agents import recovery


def test_recovery_writes_results_and_resumes_without_redoing_cells(tmp_path, monkeypatch):
    rows = recovery.run_recovery(["ddsp_gym/VolumeMatch-v0"], 2, tmp_path)
    assert [r["variant"] for r in rows] == list(recovery.VARIANTS)
    assert all(r["recovered"] == 2 and r["budget"] == 50 for r in rows)
    saved = json.loads((tmp_path / "recovery.json").read_text())["rows"]
    assert saved == rows
    assert (
        "| ddsp_gym/VolumeMatch-v0 | gradient, restarts | 2/2 |"
        in (tmp_path / "recovery.md").read_text()
    )

    def must_not_run(*args):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(recovery, "recover_env", must_not_run)
    assert recovery.run_recovery(["ddsp_gym/VolumeMatch-v0"], 2, tmp_path) == rows
    with pytest.raises(AssertionError, match="run again"):
        recovery.run_recovery(["ddsp_gym/VolumeMatch-v0"], 3, tmp_path)  # new seed count
