"""Lab Streaming Layer on this machine: the config, the lazy pylsl import, a stream reader.

liblsl (bundled in pylsl's wheels) reads its configuration once per process, when the
first outlet, inlet or resolver starts, from the file named by the environment variable
``LSLAPICFG`` (else ``lsl_api.cfg`` in the working directory, ``~/lsl_api/lsl_api.cfg``,
``/etc/lsl_api/lsl_api.cfg``). By default LSL multicasts stream discovery to the whole
site; :func:`local_lsl_config` points ``LSLAPICFG`` at the packaged ``lsl_local.cfg``
(machine scope, loopback addresses, TTL 0) *before* pylsl is imported, which this
module does only inside :func:`lsl`, so nothing of a test or demo leaves the machine.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np

LOCAL_CONFIG = Path(__file__).with_name("lsl_local.cfg")
ENV_VAR = "LSLAPICFG"

# LSLAPICFG as it was when this process first imported pylsl through lsl() (liblsl reads
# its config once, so a later, different request cannot take effect).
_config_at_import: str | None = None


class StreamNotFound(RuntimeError):
    """No LSL stream matched the query within the resolve timeout."""


class StreamLost(RuntimeError):
    """A connected LSL stream sent nothing for longer than the timeout."""


def local_lsl_config(path: str | Path | None = None) -> Path:
    """Point liblsl at a config file (default the packaged machine-only one); returns it.

    Sets ``LSLAPICFG``; call it before pylsl is first imported (or used) in the process:
    liblsl reads its config once. If pylsl was already loaded through :func:`lsl` under
    another config, this is an error (the new config could not take effect).
    """
    path = Path(path) if path is not None else LOCAL_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"LSL config file {path} does not exist")
    wanted = str(path.resolve())
    if _config_at_import is not None and _config_at_import != wanted:
        raise RuntimeError(
            f"liblsl already runs in this process with LSLAPICFG={_config_at_import!r}; it "
            f"reads its config once, so {wanted} cannot take effect. Set the config before "
            "the first LSL stream of the process (lsl_config= of the first reward source)"
        )
    os.environ[ENV_VAR] = wanted
    return path


def lsl(config: str | Path | None = "local") -> ModuleType:
    """pylsl, imported after its config is set: ``"local"`` (the machine-only config),
    ``"system"`` (liblsl's own search: ``LSLAPICFG`` as the user set it, lsl_api.cfg...)
    or a path to a config file."""
    global _config_at_import
    if config == "local":
        local_lsl_config()
    elif config != "system":
        local_lsl_config(config)
    try:
        import pylsl
    except ImportError as err:  # an optional extra
        raise ImportError(
            "the physiology reward needs pylsl (its wheels bundle liblsl): "
            "pip install 'ddsp_gym[physiology]'"
        ) from err
    if _config_at_import is None:
        _config_at_import = os.environ.get(ENV_VAR, "")
    return pylsl


@dataclass(frozen=True)
class StreamQuery:
    """Which LSL stream to read: one property (name, type, source_id...) and its value."""

    prop: str
    value: str

    @classmethod
    def parse(cls, text: str) -> StreamQuery:
        """``"Muse"`` (a stream name), ``"type=EEG"``, ``"source_id=abc123"``..."""
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"stream must be a stream name or PROP=VALUE, not {text!r}")
        prop, sep, value = text.partition("=")
        if not sep:
            return cls("name", text.strip())
        if not prop.strip() or not value.strip():
            raise ValueError(f"stream {text!r}: expected PROP=VALUE, e.g. type=EEG")
        return cls(prop.strip(), value.strip())


class StreamReader:
    """An LSL inlet: resolves one stream, pulls its samples, keeps every one it pulled.

    ``clock_sync``: map the sender's timestamps into this machine's LSL clock
    (liblsl's clock offset estimate and dejitter): right for a device on another
    machine; wrong for a stream whose timestamps are a simulation's own clock.
    """

    def __init__(
        self,
        query: StreamQuery,
        resolve_timeout_s: float = 5.0,
        clock_sync: bool = True,
        config: str | Path | None = "local",
    ) -> None:
        self.query = query
        self.resolve_timeout_s = resolve_timeout_s
        self.clock_sync = clock_sync
        self._pylsl = lsl(config)
        self._inlet = None
        self.channel_labels: list[str] = []
        self.nominal_srate = 0.0
        self._chunks: list[np.ndarray] = []  # (n, 1 + channels): timestamp, values

    def connect(self) -> None:
        """Resolve the stream and open an inlet to it (:class:`StreamNotFound` if none)."""
        pylsl = self._pylsl
        found = pylsl.resolve_byprop(
            self.query.prop, self.query.value, minimum=1, timeout=self.resolve_timeout_s
        )
        if not found:
            raise StreamNotFound(
                f"no LSL stream with {self.query.prop}={self.query.value!r} answered within "
                f"{self.resolve_timeout_s} s (is the device's LSL app running, and on this "
                "machine or under an lsl_config that reaches it?)"
            )
        flags = pylsl.proc_clocksync | pylsl.proc_dejitter if self.clock_sync else 0
        inlet = pylsl.StreamInlet(found[0], max_buflen=360, processing_flags=flags)
        inlet.open_stream(timeout=self.resolve_timeout_s)
        info = inlet.info(timeout=self.resolve_timeout_s)
        self.nominal_srate = float(info.nominal_srate())
        self.channel_labels = _channel_labels(info)
        self._inlet = inlet

    @property
    def connected(self) -> bool:
        return self._inlet is not None

    def pull(self, wait_s: float = 0.0) -> int:
        """Pull what has arrived (waiting up to ``wait_s`` for a first sample); returns how
        many samples came. Raises :class:`StreamLost` if liblsl reports the stream gone."""
        if self._inlet is None:
            raise RuntimeError("connect() first")
        try:
            values, stamps = self._inlet.pull_chunk(timeout=0.0)
            if not stamps and wait_s > 0:
                sample, stamp = self._inlet.pull_sample(timeout=wait_s)
                if sample is None:
                    return 0
                more, more_stamps = self._inlet.pull_chunk(timeout=0.0)
                values, stamps = [sample, *more], [stamp, *more_stamps]
        except self._pylsl.LostError as err:
            raise StreamLost(f"LSL stream {self.query.value!r} is gone: {err}") from err
        if not stamps:
            return 0
        chunk = np.column_stack([np.asarray(stamps, np.float64), np.asarray(values, np.float64)])
        self._chunks.append(chunk)
        return len(stamps)

    @property
    def samples(self) -> np.ndarray:
        """Every sample pulled so far, (n, 1 + channels): timestamp, then the channels."""
        if not self._chunks:
            return np.zeros((0, 1 + max(len(self.channel_labels), 1)))
        if len(self._chunks) > 1:
            self._chunks = [np.concatenate(self._chunks)]
        return self._chunks[0]

    def between(self, start: float, end: float) -> np.ndarray:
        """The samples stamped in ``[start, end)`` (walks back from the newest chunk, so a
        long session's history is not copied per rating)."""
        picked = []
        for chunk in reversed(self._chunks):
            picked.append(chunk[(chunk[:, 0] >= start) & (chunk[:, 0] < end)])
            if chunk[0, 0] < start:
                break
        if not picked:
            return np.zeros((0, 1 + len(self.channel_labels)))
        return np.concatenate(picked[::-1])

    def last_before(self, end: float) -> np.ndarray | None:
        """The newest sample stamped before ``end`` (None if none)."""
        for chunk in reversed(self._chunks):
            earlier = chunk[chunk[:, 0] < end]
            if len(earlier):
                return earlier[-1]
        return None

    @property
    def newest_timestamp(self) -> float:
        return float(self._chunks[-1][-1, 0]) if self._chunks else -np.inf

    def close(self) -> None:
        if self._inlet is not None:
            self._inlet.close_stream()
            self._inlet = None


def _channel_labels(info) -> list[str]:
    """Channel labels from a stream's <desc><channels><channel><label> (XDF convention),
    else ch0, ch1..."""
    labels = []
    channel = info.desc().child("channels").child("channel")
    while not channel.empty() and len(labels) < info.channel_count():
        labels.append(channel.child_value("label"))
        channel = channel.next_sibling("channel")
    if len(labels) != info.channel_count() or not all(labels):
        labels = [f"ch{i}" for i in range(info.channel_count())]
    return labels


def wait_for(reader: StreamReader, until: float, timeout_s: float, poll_s: float = 0.05) -> None:
    """Pull until a sample stamped at or after ``until`` arrived; :class:`StreamLost` when
    nothing arrives for ``timeout_s`` of wall time (so a dead stream costs at most that)."""
    last_arrival = time.monotonic()
    while reader.newest_timestamp < until:
        if reader.pull(wait_s=poll_s):
            last_arrival = time.monotonic()
        elif time.monotonic() - last_arrival > timeout_s:
            raise StreamLost(
                f"LSL stream {reader.query.value!r} sent nothing for {timeout_s} s "
                f"(waiting for its samples up to t={until:.3f})"
            )


SMOOTHING = ("mean", "median", "ema")


def smoothed(stamps: np.ndarray, values: np.ndarray, method: str, tau_s: float = 1.0) -> float:
    """One value for a window's samples: their ``"mean"``, ``"median"`` (robust to
    artefacts: blinks, motion) or ``"ema"`` (an exponential moving average run through
    the window with time constant ``tau_s``, its last value: recent samples weigh more)."""
    if values.size == 0:
        raise ValueError("no samples to smooth")
    if method == "mean":
        return float(np.mean(values))
    if method == "median":
        return float(np.median(values))
    if method == "ema":
        level = float(values[0])
        for dt, x in zip(np.diff(stamps).tolist(), values[1:].tolist(), strict=True):
            level += (1.0 - np.exp(-max(dt, 0.0) / tau_s)) * (x - level)
        return level
    raise ValueError(f"smoothing must be one of {SMOOTHING}, not {method!r}")
