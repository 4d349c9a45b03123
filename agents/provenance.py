"""Which code made a stored result, so benchmarks resume only cells of the running code.

``ddsp-gym bench`` and ``ddsp-gym recovery`` write results cell by cell and resume
an interrupted run by skipping the cells already there. A cell from older code is
not a result of this code: each cell records :func:`code_version`, and only cells
whose version equals the running code's are kept; the others are run again.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

import ddsp_gym

VERSION_KEY = "code_version"
DIRTY = "+dirty."


def code_folders() -> list[Path]:
    """What the results depend on: the ddsp_gym package, the agents and the env registry.

    Results files (``results/*.json``), tests and docs are left out: the benchmark
    writing its own results must not make the checkout's code look changed.
    """
    package = Path(ddsp_gym.__file__).resolve().parent
    agents = Path(__file__).resolve().parent
    registry = (package / "envs_registry.yaml").resolve()  # a link to the top-level file
    return [package, agents, registry]


def _git(folder: Path, *args: str) -> str:
    """stdout of ``git -C folder args`` (CalledProcessError, OSError if git fails)."""
    done = subprocess.run(
        ["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=30, check=True
    )
    return done.stdout


def code_version() -> str:
    """The running code's version: the commit that last changed it, or the package version.

    In a git checkout that tracks the package: the last commit that changed a file under
    :func:`code_folders` (40 hex digits; a commit of docs or results leaves it), plus
    ``+dirty.<8 hex>`` when tracked files under :func:`code_folders` differ from it
    (``git status --porcelain``); the hex digits hash their ``git diff HEAD``, so the
    same uncommitted changes give the same version and other changes another. An
    installed package (no checkout, or one that does not track it): ``ddsp_gym
    <__version__>``.
    """
    folders = code_folders()
    try:
        root = Path(_git(folders[0], "rev-parse", "--show-toplevel").strip())
        if not _git(root, "ls-files", "--", str(folders[0])).strip():
            raise FileNotFoundError("the package is not tracked by this checkout")
        paths = ["--", *map(str, folders)]
        commit = _git(root, "log", "-1", "--format=%H", *paths).strip()
        if _git(root, "status", "--porcelain", "--untracked-files=no", *paths).strip():
            diff = _git(root, "diff", "HEAD", "--binary", *paths)
            commit += DIRTY + hashlib.sha1(diff.encode()).hexdigest()[:8]
        return commit
    except (OSError, subprocess.SubprocessError):
        return f"ddsp_gym {ddsp_gym.__version__}"


def put(
    records: list[dict[str, Any]], record: dict[str, Any], key: Callable[[dict], Hashable]
) -> list[dict[str, Any]]:
    """``records`` with ``record`` in place of the stored ones of its key (a rerun stale
    cell keeps its place in the file), or appended when there is none."""
    same = [i for i, r in enumerate(records) if key(r) == key(record)]
    if not same:
        return [*records, record]
    kept = [r for i, r in enumerate(records) if i not in same[1:]]
    kept[same[0]] = record
    return kept


def _commit_of(version: str) -> tuple[str, str] | None:
    """(commit, dirty hash or "") of a git version; None for a package version."""
    commit, _, diff = version.partition(DIRTY)
    if len(commit) == 40 and all(c in "0123456789abcdef" for c in commit):
        return commit, diff
    return None


def version_label(version: str | None) -> str:
    """A version for a table: a commit's first 12 digits (and its diff's hash), else as is."""
    if version is None:
        return "unknown"
    git = _commit_of(version)
    if git is None:
        return version
    commit, diff = git
    return commit[:12] + (f" + uncommitted changes {diff}" if diff else "")


def is_current(record: dict[str, Any], version: str) -> bool:
    """Was ``record`` made by code of ``version``? (Records from before versions: no.)"""
    return record.get(VERSION_KEY) == version


def announce_stale(count: int) -> None:
    """Say once, on stderr, how many stored cells are rerun for being from other code."""
    if count:
        noun = "cell" if count == 1 else "cells"
        print(f"{count} {noun} from another code version will be rerun", file=sys.stderr)


def single_version_line(records: Sequence[dict[str, Any]]) -> str | None:
    """The line that dates every record when they share one version; None when they don't."""
    versions = {r.get(VERSION_KEY) for r in records}
    if len(versions) != 1:
        return None
    (version,) = versions
    if version is None:
        return "All cells from an unknown code version (stored before versions were recorded)."
    kind = "version" if _commit_of(version) is None else "commit"
    return f"All cells from {kind} {version_label(version)}."


def add_version_column(lines: list[str], records: Sequence[dict[str, Any]]) -> list[str]:
    """Markdown table ``lines`` (header, rule, one row per record) with a last column
    naming each row's code version."""
    header, rule, *rows = lines
    labelled = [
        f"{row} {version_label(r.get(VERSION_KEY))} |" for row, r in zip(rows, records, strict=True)
    ]
    return [f"{header} code version |", f"{rule}---|", *labelled]


def dated_table(lines: list[str], records: Sequence[dict[str, Any]]) -> str:
    """A Markdown table dated by its code: one line under it when every record shares a
    version, else a column naming each row's."""
    if not records:
        return "\n".join(lines)
    line = single_version_line(records)
    if line is None:
        return "\n".join(add_version_column(lines, records))
    return "\n".join(lines) + f"\n\n{line}"
