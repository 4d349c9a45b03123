"""A saved preference session: a folder with its settings and an append-only vote log.

A session is ``session.json`` (knob count, search seed and strategy, anything the app
wants to keep) and ``votes.jsonl``, one vote per line, each appended and flushed to disk
(fsync) before :meth:`Session.add` returns. The pairs, the model and the best patch are
pure functions of (seed, votes) (:class:`~ddsp_gym.preference.search.PreferenceSearch`),
so these two files are the whole state: reopening the folder after a restart or a crash
gives back the same next pair. A crash mid-append can leave at most a partial last line,
a vote that was never acknowledged; :func:`load_votes` drops it (and only it) with a
warning, and refuses any other bad line, naming it, so nothing is lost silently.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddsp_gym.preference.search import PreferenceSearch, Vote

SETTINGS_FILE = "session.json"
VOTES_FILE = "votes.jsonl"


def vote_to_json(vote: Vote) -> str:
    """One vote as a JSON line (no newline)."""
    return json.dumps({"a": list(vote.a), "b": list(vote.b), "outcome": vote.outcome})


def vote_from_json(entry: dict[str, Any]) -> Vote:
    """A vote from its JSON object; a clear ValueError on a malformed one."""
    try:
        return Vote(tuple(map(float, entry["a"])), tuple(map(float, entry["b"])), entry["outcome"])
    except (KeyError, TypeError) as err:
        raise ValueError(
            f"a vote is {{'a': [...], 'b': [...], 'outcome': ...}}, got {entry!r}"
        ) from err


def load_votes(path: str | Path) -> list[Vote]:
    """The votes of a ``.jsonl`` log (one per line) or a ``.json`` list of votes."""
    path = Path(path)
    text = path.read_text()
    if path.suffix == ".json":
        entries = json.loads(text)
        if not isinstance(entries, list):
            raise ValueError(f"{path}: a .json votes file holds a list of votes")
        return [vote_from_json(entry) for entry in entries]
    votes = []
    lines = text.split("\n")
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            votes.append(vote_from_json(json.loads(line)))
        except (json.JSONDecodeError, ValueError) as err:
            last = number == len(lines) and not text.endswith("\n")
            if last and isinstance(err, json.JSONDecodeError):
                warnings.warn(f"{path}:{number}: dropped a partial last vote (a crash mid-write)",
                              stacklevel=2)  # fmt: skip
                continue
            raise ValueError(f"{path}:{number}: not a vote ({err})") from err
    return votes


def save_votes(path: str | Path, votes: Sequence[Vote]) -> None:
    """Write ``votes`` as a ``.jsonl`` log, atomically (a temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(vote_to_json(vote) + "\n" for vote in votes))
    os.replace(tmp, path)


class Session:
    """A preference session saved in ``folder``; reopening the folder resumes it exactly."""

    def __init__(self, folder: str | Path, n_knobs: int | None = None, seed: int = 0, *,
                 strategy: str = "model", **extra: Any) -> None:  # fmt: skip
        self.folder = Path(folder)
        settings_path = self.folder / SETTINGS_FILE
        if settings_path.exists():
            self.settings = json.loads(settings_path.read_text())
            if n_knobs is not None and n_knobs != self.settings["n_knobs"]:
                raise ValueError(f"{self.folder} is a {self.settings['n_knobs']}-knob session, "
                                 f"not {n_knobs}")  # fmt: skip
        else:
            if n_knobs is None:
                raise FileNotFoundError(f"no session in {self.folder}; give n_knobs to start one")
            self.folder.mkdir(parents=True, exist_ok=True)
            self.settings = {"n_knobs": int(n_knobs), "seed": int(seed), "strategy": strategy,
                             **extra}  # fmt: skip
            tmp = settings_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.settings, indent=1))
            os.replace(tmp, settings_path)
        self.search = PreferenceSearch(self.settings["n_knobs"], self.settings["seed"],
                                       strategy=self.settings["strategy"])  # fmt: skip
        votes_path = self.folder / VOTES_FILE
        self.votes: list[Vote] = load_votes(votes_path) if votes_path.exists() else []
        if votes_path.exists():
            save_votes(votes_path, self.votes)  # rewrite without a dropped partial line

    def next_pair(self):
        """The pair to ask about now."""
        return self.search.next_pair(self.votes)

    def best(self):
        """The best patch so far."""
        return self.search.best(self.votes)

    def add(self, vote: Vote) -> None:
        """Record ``vote``: on disk (flushed and fsynced) before it counts."""
        if len(vote.a) != self.settings["n_knobs"]:
            raise ValueError(f"the session has {self.settings['n_knobs']} knobs, the vote "
                             f"{len(vote.a)}")  # fmt: skip
        with open(self.folder / VOTES_FILE, "a") as log:
            log.write(vote_to_json(vote) + "\n")
            log.flush()
            os.fsync(log.fileno())
        self.votes.append(vote)
