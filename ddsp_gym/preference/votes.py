"""Plain vote files: a list of votes as JSON (``.json``) or one vote a line (``.jsonl``).

The exchange format of votes outside a listening session (the app's session folders are
:mod:`ddsp_gym.preference.session`): a simulated rater's votes, votes exported for a
reward model (``PreferenceReward(votes=path)``). A partial last line of a ``.jsonl`` (a
crash mid-append, a vote never acknowledged) is dropped with a warning; any other bad
line is refused, naming it, so nothing is lost silently.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ddsp_gym.preference.search import Vote


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
