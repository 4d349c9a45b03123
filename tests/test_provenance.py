"""The code version results record: a checkout's commit (and its changes), else the version."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import ddsp_gym
from ddsp_gym.agents import provenance


def git(repo: Path, *args: str) -> str:
    """Run git in ``repo`` as a throwaway identity; its stdout."""
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    return subprocess.run([*command, *args], check=True, capture_output=True, text=True).stdout


@pytest.fixture
def checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A git repository holding a fake package (code) and results, one commit, with
    ``code_folders`` pointing at its package and agents."""
    repo = tmp_path / "repo"
    for name, text in {
        "pkg/core.py": "A = 1\n",
        "agents/bench.py": "B = 2\n",
        "envs_registry.yaml": "envs: []\n",
        "results/bench.json": "{}\n",
        ".gitignore": "venv/\n",
    }.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "start")
    folders = [repo / "pkg", repo / "agents", repo / "envs_registry.yaml"]
    monkeypatch.setattr(provenance, "code_folders", lambda: folders)
    return repo


def test_a_clean_checkout_is_its_head_commit(checkout: Path):
    head = git(checkout, "log", "-1", "--format=%H").strip()
    assert provenance.code_version() == head and len(head) == 40
    assert provenance.version_label(head) == head[:12]
    assert provenance.single_version_line([{"code_version": head}] * 2) == (
        f"All cells from commit {head[:12]}."
    )


def test_changed_code_is_dirty_and_the_same_changes_give_the_same_version(checkout: Path):
    clean = provenance.code_version()
    (checkout / "pkg" / "core.py").write_text("A = 3\n")
    dirty = provenance.code_version()
    assert dirty.startswith(clean + "+dirty.") and len(dirty) == 40 + len("+dirty.") + 8
    assert provenance.code_version() == dirty  # the same edit: a run resumes its cells
    (checkout / "pkg" / "core.py").write_text("A = 4\n")
    assert provenance.code_version() not in (clean, dirty)  # another edit: they rerun
    (checkout / "pkg" / "core.py").write_text("A = 1\n")
    assert provenance.code_version() == clean
    (checkout / "envs_registry.yaml").write_text("envs: [x]\n")
    assert "+dirty." in provenance.code_version()
    assert "uncommitted changes" in provenance.version_label(provenance.code_version())


def test_results_untracked_files_and_commits_are_not_code_changes(checkout: Path):
    clean = provenance.code_version()
    (checkout / "results" / "bench.json").write_text('{"cells": []}\n')  # the bench's output
    (checkout / "pkg" / "scratch.py").write_text("untracked\n")
    assert provenance.code_version() == clean
    git(checkout, "commit", "-q", "-am", "results")  # a commit of results only
    assert provenance.code_version() == clean
    (checkout / "pkg" / "core.py").write_text("A = 5\n")
    git(checkout, "commit", "-q", "-am", "change")
    committed = provenance.code_version()
    assert committed != clean and "+dirty." not in committed


def test_outside_a_checkout_the_package_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(provenance, "code_folders", lambda: [tmp_path, tmp_path])
    assert provenance.code_version() == f"ddsp_gym {ddsp_gym.__version__}"


def test_a_package_the_checkout_does_not_track_gets_the_package_version(
    checkout: Path, monkeypatch: pytest.MonkeyPatch
):
    """A venv inside a checkout (ignored) installs the package: HEAD is not its code."""
    site = checkout / "venv" / "site-packages" / "ddsp_gym"
    site.mkdir(parents=True)
    (site / "__init__.py").write_text("")
    monkeypatch.setattr(provenance, "code_folders", lambda: [site, site])
    assert provenance.code_version() == f"ddsp_gym {ddsp_gym.__version__}"


def test_this_checkout_reports_its_own_commit():
    repo = Path(ddsp_gym.__file__).resolve().parents[1]
    if not (repo / ".git").exists():
        pytest.skip("ddsp_gym is installed, not run from a checkout")
    folders = [str(f) for f in provenance.code_folders()]
    last = git(repo, "log", "-1", "--format=%H", "--", *folders).strip()
    assert provenance.code_version().split("+dirty.")[0] == last


def test_tables_date_their_cells_by_a_line_or_a_column():
    lines = ["| env | x |", "|---|---|", "| A | 1 |", "| B | 2 |"]
    same = [{"code_version": "a" * 40}, {"code_version": "a" * 40}]
    assert provenance.dated_table(lines, same).endswith(
        "| B | 2 |\n\nAll cells from commit aaaaaaaaaaaa."
    )
    mixed = [{"code_version": "b" * 40 + "+dirty.0123abcd"}, {}]
    assert provenance.dated_table(lines, mixed).splitlines() == [
        "| env | x | code version |",
        "|---|---|---|",
        "| A | 1 | bbbbbbbbbbbb + uncommitted changes 0123abcd |",
        "| B | 2 | unknown |",
    ]
    installed = [{"code_version": "ddsp_gym 0.1.0"}]
    assert provenance.single_version_line(installed) == "All cells from version ddsp_gym 0.1.0."
    assert "unknown code version" in provenance.single_version_line([{}])
