from __future__ import annotations

import json

import pytest

from ddsp_gym.agents import provenance, recovery


def test_recovery_writes_results_and_resumes_without_redoing_cells(tmp_path, monkeypatch):
    rows = recovery.run_recovery(["ddsp_gym/VolumeMatch-v1"], 2, tmp_path)
    assert [r["variant"] for r in rows] == list(recovery.VARIANTS)
    assert all(r["recovered"] == 2 and r["budget"] == 50 for r in rows)
    saved = json.loads((tmp_path / "recovery.json").read_text())["rows"]
    assert saved == rows
    assert (
        "| ddsp_gym/VolumeMatch-v1 | gradient, restarts | 2/2 |"
        in (tmp_path / "recovery.md").read_text()
    )

    def must_not_run(*args):
        raise AssertionError("a finished cell was run again")

    monkeypatch.setattr(recovery, "recover_env", must_not_run)
    assert recovery.run_recovery(["ddsp_gym/VolumeMatch-v1"], 2, tmp_path) == rows
    with pytest.raises(AssertionError, match="run again"):
        recovery.run_recovery(["ddsp_gym/VolumeMatch-v1"], 3, tmp_path)  # new seed count


def _row(env_id: str, variant: str, seeds: int, **extra) -> dict:
    return {
        "env_id": env_id,
        "variant": variant,
        "seeds": seeds,
        "recovered": seeds,
        "median_steps": 3.0,
        "median_param_error": 0.01,
        "budget": 50,
        "wall_s": 0.5,
        **extra,
    }


def test_rows_from_another_code_version_are_rerun_and_matching_ones_kept(
    tmp_path, monkeypatch, capsys
):
    now, before = "e" * 40, "1" * 40
    monkeypatch.setattr(provenance, "code_version", lambda: now)
    env_id = "ddsp_gym/VolumeMatch-v1"
    stored = [
        _row(env_id, "no restarts", 2, wall_s=11.0, code_version=now),
        _row(env_id, "restarts", 2, wall_s=12.0, code_version=before),
    ]
    (tmp_path / "recovery.json").write_text(json.dumps({"rows": stored}))
    calls = []

    def fake(env, seeds, variant):
        calls.append((env, seeds, variant))
        return _row(env, variant, seeds)

    monkeypatch.setattr(recovery, "recover_env", fake)
    rows = recovery.run_recovery([env_id], 2, tmp_path)
    assert calls == [(env_id, 2, "restarts")]
    assert "1 cell from another code version will be rerun" in capsys.readouterr().err
    assert rows == [stored[0], {**_row(env_id, "restarts", 2), "code_version": now}]
    assert json.loads((tmp_path / "recovery.json").read_text())["rows"] == rows
    assert "All cells from commit eeeeeeeeeeee." in (tmp_path / "recovery.md").read_text()


def test_rows_stored_before_versions_were_recorded_are_rerun(tmp_path, monkeypatch):
    monkeypatch.setattr(provenance, "code_version", lambda: "f" * 40)
    env_id = "ddsp_gym/VolumeMatch-v1"
    legacy = [_row(env_id, v, 2) for v in recovery.VARIANTS]  # no code_version
    (tmp_path / "recovery.json").write_text(json.dumps({"rows": legacy}))
    monkeypatch.setattr(recovery, "recover_env", lambda e, s, v: _row(e, v, s, wall_s=2.0))
    rows = recovery.run_recovery([env_id], 2, tmp_path)
    assert [r["wall_s"] for r in rows] == [2.0, 2.0]
    assert all(r["code_version"] == "f" * 40 for r in rows)
