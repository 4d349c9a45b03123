"""A listening session on disk: its settings, an append-only vote log, cached candidate audio.

One folder per session under a root folder, named by a server-made id (never a path from a
request: ids must match :data:`SESSION_ID_PATTERN`)::

    ROOT/<id>/session.json    what is being tuned (env or plant, backend, seed, knobs)
    ROOT/<id>/votes.jsonl     one record a line: votes and undos, appended with fsync
    ROOT/<id>/audio/*.wav     candidate renders (hardware: the recorded takes)
    ROOT/<id>/.lock           fcntl lock file: one writer at a time, across processes

The log is the session: the search (:class:`~ddsp_gym.preference.search.PreferenceSearch`)
is a pure function of (seed, votes), so resuming after a restart, a crash or an undo is
replaying the log and asking the search again. Every record carries ``seq``, its line
number; the pair shown to the listener is named by the log's length at the time (its
*pair id*), so a vote that answers any other pair (a replay, a second tab that has not
caught up) is refused with :class:`StaleVoteError` and changes nothing.

A crash while appending can leave a half-written last line: loading keeps every complete
record, reports the dropped bytes (:attr:`SessionState.recovered`), and the next write cuts
the file back to its complete part first. A bad line anywhere else is corruption, which
no write touches (:class:`SessionCorruptError`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.preference.search import OUTCOMES, PreferenceSearch, Vote

SESSION_ID_PATTERN = re.compile(r"^[0-9a-f]{16}$")
FORMAT_VERSION = 1
# The searches a session can use: "model" (the GP over knob positions, any backend) and
# "sound" (the same GP with its kernel over the sim plant's renders' sound descriptors,
# ddsp_gym.preference.sound_features; docs/preference.md).
SEARCHES: tuple[str, ...] = ("model", "sound")


class SessionError(ValueError):
    """Base of the session store's errors; the message says what happened."""


class SessionNotFoundError(SessionError):
    """No session of that id (or the id is not one the server could have made)."""


class StaleVoteError(SessionError):
    """A vote or undo for a pair that is no longer the current one (replayed or stale)."""


class NothingToUndoError(SessionError):
    """Undo with no vote left."""


class SessionCorruptError(SessionError):
    """The log has a bad record before its last line: not a crash mid-append."""


@dataclass(frozen=True)
class KnobInfo:
    """One knob as the page shows it: name, physical range and unit."""

    name: str
    low: float
    high: float
    unit: str = ""
    curve: str = "linear"

    def physical(self, unit: float) -> float:
        """A unit position's physical value (the :class:`~ddsp_gym.knobs.KnobSpec` law)."""
        u = min(max(float(unit), 0.0), 1.0)
        if self.curve == "log":
            return float(np.exp(np.log(self.low) + u * (np.log(self.high) - np.log(self.low))))
        return self.low + u * (self.high - self.low)


@dataclass(frozen=True)
class SessionConfig:
    """What a session tunes; written once to ``session.json``.

    ``env_id`` or ``plant`` names the sound; ``backend`` and ``options`` (the backend's
    ``hardware=`` / ``plugin=`` settings) say where it plays; ``seed`` seeds the search;
    ``search`` names it (:data:`SEARCHES`). Sessions saved before ``search`` existed
    have none in their ``session.json`` and load as "model", the search they used.
    """

    knobs: tuple[KnobInfo, ...]
    env_id: str | None = None
    plant: str | None = None
    backend: str = "sim"
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    search: str = "model"

    def __post_init__(self) -> None:
        if (self.env_id is None) == (self.plant is None):
            raise ValueError("a session tunes an env (env_id) or a plant, exactly one")
        if self.search not in SEARCHES:
            raise ValueError(f"search is one of {SEARCHES}, not {self.search!r}")
        if self.search == "sound" and self.backend != "sim":
            raise ValueError("search 'sound' renders candidates offline: it needs backend sim")
        if not self.knobs:
            raise ValueError("a session needs at least one knob")

    @property
    def target(self) -> str:
        """The env id or plant name, for messages."""
        return self.env_id or f"plant {self.plant}"

    def same_sound(self, other: SessionConfig) -> bool:
        """Do both configs play the same sound the same way (the seed aside)?"""
        return (self.env_id, self.plant, self.backend, self.options) == (
            other.env_id,
            other.plant,
            other.backend,
            other.options,
        )

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SessionConfig:
        data = dict(data)
        if data.pop("format", None) != FORMAT_VERSION:
            raise SessionCorruptError(f"session.json is not format {FORMAT_VERSION}")
        knobs = tuple(KnobInfo(**k) for k in data.pop("knobs"))
        return cls(knobs=knobs, **data)


@dataclass(frozen=True)
class Pair:
    """The two patches the listener compares now; ``id`` is the log length when shown."""

    id: int
    a: tuple[float, ...]
    b: tuple[float, ...]


@dataclass(frozen=True)
class SessionState:
    """A session as loaded from disk: the votes in force, the pair to answer, the history.

    ``history`` holds one entry per vote in force: the outcome and the best patch after it
    (unit positions), as written at vote time. ``recovered`` says what a crash left
    behind and loading dropped (None: the log was whole).
    """

    votes: tuple[Vote, ...]
    history: tuple[dict[str, Any], ...]
    pair: Pair
    log_length: int
    recovered: str | None = None


def new_session_id() -> str:
    """A fresh random id that matches :data:`SESSION_ID_PATTERN` (64 random bits)."""
    return secrets.token_hex(8)


def check_session_id(session_id: str) -> str:
    """``session_id`` if it could be one of ours, else :class:`SessionNotFoundError`.

    The check comes before the id touches the file system, so no request can name a
    path (``..``, ``/``, a drive) through it.
    """
    if not isinstance(session_id, str) or not SESSION_ID_PATTERN.fullmatch(session_id):
        raise SessionNotFoundError(f"no session {session_id!r} (ids are 16 hex digits)")
    return session_id


def _fsync_dir(path: Path) -> None:
    """Make a rename or a new file in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` whole or not at all (temp file, fsync, os.replace)."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def parse_log(data: bytes) -> tuple[list[dict[str, Any]], int, str | None]:
    """(complete records, bytes they take, what was dropped) of a ``votes.jsonl``'s bytes.

    A last line without its newline, or one that does not parse, is what a crash
    mid-append leaves: it is dropped and reported. Any other bad line raises
    :class:`SessionCorruptError`.
    """
    records: list[dict[str, Any]] = []
    good = 0
    lines = data.split(b"\n")
    # After the last newline comes "" for a whole file, else the unfinished line.
    for i, line in enumerate(lines):
        last = i == len(lines) - 1
        if last and not line:
            break
        try:
            if last:
                raise ValueError("no newline at the end")
            record = json.loads(line)
            _check_record(record, len(records))
        except (ValueError, TypeError, KeyError) as err:
            if last or (i == len(lines) - 2 and lines[-1] == b""):
                dropped = len(data) - good
                return (
                    records,
                    good,
                    (
                        f"dropped an incomplete last record ({dropped} bytes: {err}); "
                        f"{len(records)} complete records kept"
                    ),
                )
            raise SessionCorruptError(f"votes.jsonl line {i + 1} is damaged: {err}") from None
        records.append(record)
        good += len(line) + 1
    return records, good, None


def _check_record(record: Any, seq: int) -> None:
    """Raise ValueError unless ``record`` is a well-formed record number ``seq``."""
    if not isinstance(record, dict) or record.get("seq") != seq:
        raise ValueError(f"record {seq} is out of sequence")
    kind = record.get("type")
    if kind == "vote":
        Vote(tuple(record["a"]), tuple(record["b"]), record["outcome"])
        if record["pair"] != seq:
            raise ValueError(f"vote {seq} answers pair {record['pair']}")
    elif kind != "undo":
        raise ValueError(f"unknown record type {kind!r}")


def replay(records: Sequence[dict[str, Any]]) -> tuple[list[Vote], list[dict[str, Any]]]:
    """The votes in force after the log's votes and undos, and their history entries."""
    votes: list[Vote] = []
    history: list[dict[str, Any]] = []
    for record in records:
        if record["type"] == "vote":
            votes.append(Vote(tuple(record["a"]), tuple(record["b"]), record["outcome"]))
            history.append(
                {"seq": record["seq"], "outcome": record["outcome"], "best": record["best"]}
            )
        elif votes:
            votes.pop()
            history.pop()
    return votes, history


def session_votes(folder: str | Path) -> list[Vote]:
    """The votes in force in a session folder (its log replayed: votes less undos), for a
    reward model trained on a person's session (``PreferenceReward(session=folder)``)."""
    path = Path(folder) / "votes.jsonl"
    if not path.is_file():
        raise SessionNotFoundError(f"{folder} is not a listening session: it has no votes.jsonl")
    records, _, _ = parse_log(path.read_bytes())
    return replay(records)[0]


class Session:
    """One session folder. Thread- and process-safe: every read and write of the log
    happens under a thread lock and an fcntl lock on ``.lock``, and re-reads the log
    (two servers or tabs see each other's votes)."""

    def __init__(self, folder: Path, config: SessionConfig) -> None:
        self.folder = folder
        self.id = folder.name
        self.config = config
        self._search: PreferenceSearch | None = None
        self._search_lock = threading.Lock()
        self._thread_lock = threading.Lock()
        # next_pair/best may fit a model: remember them per log length (pure functions).
        self._pairs: dict[tuple[int, tuple[Vote, ...]], Pair] = {}
        self._best: dict[tuple[Vote, ...], tuple[float, ...]] = {}
        self._memo_lock = threading.Lock()

    @property
    def search(self) -> PreferenceSearch:
        """The session's search, made on first use ("sound" builds the sim plant to
        describe its candidates' sounds: JAX, seconds)."""
        with self._search_lock:
            if self._search is None:
                self._search = _make_search(self.config)
            return self._search

    @property
    def log_path(self) -> Path:
        return self.folder / "votes.jsonl"

    @property
    def audio_folder(self) -> Path:
        return self.folder / "audio"

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold this session against other threads and other processes."""
        with self._thread_lock, open(self.folder / ".lock", "a+b") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    # ---- reading ----------------------------------------------------------------------

    def _read(self) -> tuple[list[dict[str, Any]], int, str | None]:
        try:
            data = self.log_path.read_bytes()
        except FileNotFoundError:
            data = b""
        return parse_log(data)

    def _state(self, records: list[dict[str, Any]], recovered: str | None) -> SessionState:
        votes, history = replay(records)
        n = len(records)
        key = (n, tuple(votes))
        if key not in self._pairs:
            a, b = self.search.next_pair(votes)
            self._pairs[key] = Pair(n, _unit_tuple(a), _unit_tuple(b))
            _forget_oldest(self._pairs)
        return SessionState(tuple(votes), tuple(history), self._pairs[key], n, recovered)

    def state(self) -> SessionState:
        """The session now: votes in force, the pair to answer, the history."""
        with self.locked():
            records, _, recovered = self._read()
            return self._state(records, recovered)

    def candidate(self, pair_id: int, side: str) -> tuple[float, ...]:
        """Patch ``side`` ("a" or "b") of pair ``pair_id``: the current pair or one the log
        holds a vote on; :class:`SessionNotFoundError` for any other."""
        if side not in ("a", "b"):
            raise ValueError(f"a pair's sides are 'a' and 'b', not {side!r}")
        with self.locked():
            records, _, recovered = self._read()
            state = self._state(records, recovered)
        if pair_id == state.pair.id:
            return state.pair.a if side == "a" else state.pair.b
        if 0 <= pair_id < len(records) and records[pair_id]["type"] == "vote":
            return tuple(records[pair_id][side])
        raise SessionNotFoundError(f"pair {pair_id} was never shown in this session")

    def best(self, votes: Sequence[Vote]) -> tuple[float, ...]:
        """The search's best patch after ``votes`` (remembered: it may fit a model)."""
        key = tuple(votes)
        with self._memo_lock:  # best() runs outside the session lock too
            hit = self._best.get(key)
        if hit is None:
            hit = _unit_tuple(self.search.best(list(votes)))
            with self._memo_lock:
                self._best[key] = hit
                _forget_oldest(self._best)
        return hit

    # ---- writing ----------------------------------------------------------------------

    def _append(self, record: dict[str, Any], good_bytes: int) -> None:
        """Append one record durably, first cutting off what a crash left half-written."""
        with open(self.log_path, "ab") as f:
            if f.tell() != good_bytes:
                f.truncate(good_bytes)
                f.seek(good_bytes)
            f.write(json.dumps(record, separators=(",", ":")).encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())

    def vote(self, pair_id: int, outcome: str) -> SessionState:
        """Answer pair ``pair_id`` with ``outcome``; refused unless it is the current pair."""
        if outcome not in OUTCOMES:
            raise ValueError(f"a vote is one of {OUTCOMES}, not {outcome!r}")
        with self.locked():
            records, good, _ = self._read()
            state = self._state(records, None)
            _require_current(pair_id, state, "vote")
            vote = Vote(state.pair.a, state.pair.b, outcome)  # type: ignore[arg-type]
            best = self.best([*state.votes, vote])
            record = {
                "seq": state.log_length,
                "type": "vote",
                "pair": state.pair.id,
                "a": list(state.pair.a),
                "b": list(state.pair.b),
                "outcome": outcome,
                "best": list(best),
                "time": round(time.time(), 3),
            }
            self._append(record, good)
            return self._state([*records, record], None)

    def undo(self, pair_id: int) -> SessionState:
        """Take back the last vote in force; ``pair_id`` must name the current pair (so a
        replayed undo, or one from a tab behind the others, takes back nothing)."""
        with self.locked():
            records, good, _ = self._read()
            state = self._state(records, None)
            _require_current(pair_id, state, "undo")
            if not state.votes:
                raise NothingToUndoError("there is no vote to undo")
            record = {"seq": state.log_length, "type": "undo", "time": round(time.time(), 3)}
            self._append(record, good)
            return self._state([*records, record], None)


def _make_search(config: SessionConfig) -> PreferenceSearch:
    n_knobs = len(config.knobs)
    if config.search == "model":
        return PreferenceSearch(n_knobs, seed=config.seed)
    from ddsp_gym.preference.candidates import SoundSpec, make_env
    from ddsp_gym.preference.sound_features import SoundFeatures

    plant = make_env(SoundSpec.of(config)).plant
    return PreferenceSearch(n_knobs, config.seed, features=SoundFeatures.of_plant(plant))


def _require_current(pair_id: int, state: SessionState, what: str) -> None:
    if pair_id != state.pair.id:
        raise StaleVoteError(
            f"this {what} answers pair {pair_id}, but the current pair is {state.pair.id} "
            "(a replayed request, or another tab voted first); reload the session"
        )


def _forget_oldest(cache: dict, keep: int = 32) -> None:
    """Bound a memo (keys hold whole vote lists): drop the oldest entries."""
    while len(cache) > keep:
        del cache[next(iter(cache))]


def _unit_tuple(values: Any) -> tuple[float, ...]:
    """Unit knob positions as plain floats (exact through JSON), clipped to [0, 1]."""
    return tuple(float(v) for v in np.clip(np.asarray(values, dtype=float), 0.0, 1.0))


class SessionStore:
    """The root folder of all sessions: create one, open one by id."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)
        self._open: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, config: SessionConfig) -> Session:
        """A new session folder with its ``session.json`` (written atomically)."""
        while True:
            session_id = new_session_id()
            folder = self.root / session_id
            try:
                folder.mkdir()
                break
            except FileExistsError:  # 64 random bits: never in practice, but cheap to handle
                continue
        (folder / "audio").mkdir()
        write_atomic(folder / "session.json", json.dumps(config.to_json(), indent=1).encode())
        return self.open(session_id)

    def open(self, session_id: str) -> Session:
        """The session of ``session_id``; :class:`SessionNotFoundError` if there is none."""
        check_session_id(session_id)
        with self._lock:
            if session_id in self._open:
                return self._open[session_id]
            folder = self.root / session_id
            try:
                data = json.loads((folder / "session.json").read_text())
            except FileNotFoundError:
                raise SessionNotFoundError(f"no session {session_id!r} in {self.root}") from None
            except ValueError as err:
                raise SessionCorruptError(f"session {session_id}: session.json: {err}") from None
            try:
                config = SessionConfig.from_json(data)
            except (TypeError, ValueError, KeyError) as err:
                raise SessionCorruptError(f"session {session_id}: session.json: {err}") from None
            (folder / "audio").mkdir(exist_ok=True)
            session = Session(folder, config)
            self._open[session_id] = session
            return session


__all__ = [
    "KnobInfo",
    "NothingToUndoError",
    "Pair",
    "SESSION_ID_PATTERN",
    "Session",
    "SessionConfig",
    "SessionCorruptError",
    "SessionError",
    "SessionNotFoundError",
    "SessionState",
    "SessionStore",
    "StaleVoteError",
    "check_session_id",
    "parse_log",
    "replay",
]
