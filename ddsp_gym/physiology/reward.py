"""PhysiologyReward: an env's reward read from a Lab Streaming Layer stream.

Each rated sound has an onset on the stream's clock; the reward is the chosen channel,
smoothed over the window ``[onset + delay_s, onset + delay_s + window_s)`` (delay
compensation: physiology answers seconds after the sound), turned into a reward by the
goal. A stream that sends nothing for ``timeout_s`` is *lost*: the rating says so
(``info["reward_source"]["stream_lost"]``) and asks the env to truncate the episode;
nothing raises, and every sample read so far stays in :attr:`PhysiologyReward.samples`
(and in the ``record`` CSV when the source closes). docs/physiology.md has the details.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ddsp_gym.physiology.simulated import CHANNEL_NAMES, SimulatedPhysiology, SimulatedStream
from ddsp_gym.physiology.simulated import audio_features as _features
from ddsp_gym.physiology.stream import (
    SMOOTHING,
    StreamLost,
    StreamNotFound,
    StreamQuery,
    StreamReader,
    lsl,
    smoothed,
    wait_for,
)
from ddsp_gym.rewards import ExternalReward, Rating

GOALS = ("maximize", "minimize", "target")
SIMULATED = "simulated"


class PhysiologyReward(ExternalReward):
    """Rewards each sound by a physiological signal read over LSL (EEG band power, heart
    rate, any scalar channel).

    Args (all YAML-able: ``reward: {source: physiology, ...}``):
        stream: ``"simulated"`` (a seeded simulated listener published over LSL in this
            process) or the stream to resolve: a name, or ``PROP=VALUE`` (``type=EEG``,
            ``source_id=...``).
        channel: the channel, by label (``"alpha"``) or index.
        goal: ``"maximize"``, ``"minimize"`` or ``"target"`` (reach ``target``).
        target: the value to reach (``goal="target"``).
        success_at: success (the episode terminates) when the value is at least this
            (maximize), at most this (minimize) or within this of ``target``; None: never.
        scale: reward = value / scale (maximize), -value / scale (minimize),
            -|value - target| / scale (target); ``distance`` is -reward * scale.
        delay_s: delay compensation: the window starts this long after the sound's onset.
        window_s: length of the window the value is read from.
        smoothing: ``"mean"``, ``"median"`` or ``"ema"`` over the window (``ema_tau_s``).
        timeout_s: a stream silent this long (wall time) is lost.
        resolve_timeout_s: how long the first reset looks for the stream.
        clock_sync: map a device's timestamps into this machine's clock (default: yes
            for a device stream, no for the simulated one, whose stamps are its own clock).
        play: play each sound on the default audio output (sounddevice) as it is rated,
            for a person wearing the device (the onset is when playback starts).
        lsl_config: ``"local"`` (this machine only, the default), ``"system"`` (liblsl's
            own config search, for a device on the lab network) or a config file path.
        record: a CSV path: every sample read is written there on :meth:`close`.
        seed, time_scale, latency_s, tau_s, noise: the simulated listener's (ignored for a
            device stream): its seed, simulated seconds per wall second (0: as fast as
            possible), response dead time, lag time constant and noise scale.
    """

    def __init__(
        self,
        stream: str = SIMULATED,
        channel: str | int = "coherence",
        goal: str = "maximize",
        target: float | None = None,
        success_at: float | None = None,
        scale: float = 1.0,
        delay_s: float = 2.0,
        window_s: float = 2.0,
        smoothing: str = "mean",
        ema_tau_s: float = 1.0,
        timeout_s: float = 5.0,
        resolve_timeout_s: float = 5.0,
        clock_sync: bool | None = None,
        play: bool = False,
        lsl_config: str = "local",
        record: str | None = None,
        seed: int = 0,
        time_scale: float = 0.0,
        latency_s: float = 1.0,
        tau_s: float = 1.0,
        noise: float = 1.0,
    ) -> None:
        if goal not in GOALS:
            raise ValueError(f"goal must be one of {GOALS}, not {goal!r}")
        if goal == "target" and (target is None or not math.isfinite(target)):
            raise ValueError("goal='target' needs a finite target value")
        if smoothing not in SMOOTHING:
            raise ValueError(f"smoothing must be one of {SMOOTHING}, not {smoothing!r}")
        for name, value in (("delay_s", delay_s), ("time_scale", time_scale)):
            if not value >= 0:
                raise ValueError(f"{name} must be >= 0, not {value}")
        for name, value in (
            ("window_s", window_s),
            ("timeout_s", timeout_s),
            ("resolve_timeout_s", resolve_timeout_s),
            ("scale", scale),
            ("ema_tau_s", ema_tau_s),
        ):
            if not value > 0:
                raise ValueError(f"{name} must be > 0, not {value}")
        self.simulated = stream == SIMULATED
        self.query = None if self.simulated else StreamQuery.parse(stream)
        self.stream, self.channel, self.goal = stream, channel, goal
        self.target, self.success_at, self.scale = target, success_at, scale
        self.delay_s, self.window_s = delay_s, window_s
        self.smoothing, self.ema_tau_s = smoothing, ema_tau_s
        self.timeout_s, self.resolve_timeout_s = timeout_s, resolve_timeout_s
        self.clock_sync = (not self.simulated) if clock_sync is None else clock_sync
        self.play, self.lsl_config = play, lsl_config
        self.record = Path(record) if record else None
        self.seed, self.time_scale = seed, time_scale
        self._sim_options = {"latency_s": latency_s, "tau_s": tau_s, "noise": noise}
        if self.simulated and isinstance(channel, str) and channel not in CHANNEL_NAMES:
            raise ValueError(
                f"the simulated stream's channels are {CHANNEL_NAMES}, not {channel!r}"
            )
        self.simulator: SimulatedStream | None = None
        self.reader: StreamReader | None = None
        self.lost: str | None = None  # why the stream was lost (None: it is not)
        self._channel_index = 0
        self._history: list[np.ndarray] = []  # samples of closed inlets
        self._labels: list[str] = []
        self._sample_rate: int | None = None
        self._episode_start = 0.0  # the stream's clock at the episode's start

    # ---- connection ------------------------------------------------------------------

    def _connect(self) -> None:
        """Start the simulated listener (if any) and open the inlet: at the first reset, so
        gym.make stays cheap and a missing stream is reported where an episode starts."""
        if self.simulated:
            physiology = SimulatedPhysiology(seed=self.seed, **self._sim_options)
            self.simulator = SimulatedStream(physiology, time_scale=self.time_scale,
                                             config=self.lsl_config)  # fmt: skip
            query = StreamQuery("source_id", self.simulator.source_id)
        else:
            query = self.query
        reader = StreamReader(query, self.resolve_timeout_s, self.clock_sync, self.lsl_config)
        try:
            reader.connect()
            self._channel_index = _channel_index(self.channel, reader.channel_labels)
        except BaseException:  # leave no inlet or simulated listener behind
            reader.close()
            if self.simulator is not None:
                self.simulator.close()
                self.simulator = None
            raise
        self.reader = reader

    def begin_episode(self, target_audio: np.ndarray, target_known: bool) -> None:
        """Connect at the first episode (:class:`StreamNotFound` if the stream is not
        there); after a lost stream, reconnect. The simulated listener starts every
        episode at rest, its noise seeded by ``seed`` and the episode's target sound, so
        ``reset(seed=s)`` replays an episode exactly."""
        if self.reader is None or self.lost:
            self._close_stream()
            self._connect()
            self.lost = None
        self._episode_start = (
            self.simulator.physiology.now
            if self.simulator is not None
            else lsl(self.lsl_config).local_clock()
        )
        if self.simulator is not None:
            digest = hashlib.blake2b(np.ascontiguousarray(target_audio).tobytes(), digest_size=8)
            self.simulator.physiology.restart(int.from_bytes(digest.digest(), "little"))

    # ---- rating ----------------------------------------------------------------------

    def score(self, fenv, params, state, knobs, audio):
        self._sample_rate = int(fenv.plant.sample_rate)  # the listener hears at the plant's
        return super().score(fenv, params, state, knobs, audio)

    def rate(self, audio: np.ndarray, knobs: Mapping[str, float]) -> Rating:
        if self.reader is None:
            raise RuntimeError("call env.reset() first: it connects the physiology stream")
        if self.lost:
            return self._lost_rating(self.lost, warn=False)
        onset = self._present(audio)
        start, end = onset + self.delay_s, onset + self.delay_s + self.window_s
        try:
            wait_for(self.reader, end, self.timeout_s)
        except StreamLost as err:
            self.lost = str(err)
            return self._lost_rating(self.lost, warn=True)
        window = self.reader.between(start, end)
        column = 1 + self._channel_index
        if len(window):
            value = smoothed(window[:, 0], window[:, column], self.smoothing, self.ema_tau_s)
        else:  # a window shorter than the sample period: the value the stream held
            held = self.reader.last_before(end)
            value = float((held if held is not None else self.reader.samples[-1])[column])
        reward, distance, success = self._judge(value)
        info = {
            "value": value,
            "onset_s": onset - self._episode_start,  # on the stream's clock
            "samples": len(window),
            "stream_lost": False,
        }
        return Rating(reward, success=success, distance=distance, info=info)

    def _present(self, audio: np.ndarray) -> float:
        """Let the listener hear ``audio``; returns its onset on the stream's clock."""
        if self.simulator is not None:
            features = _features(audio, self._sample_rate or 16_000)
            return self.simulator.hear(features, self.delay_s + self.window_s)
        onset = lsl(self.lsl_config).local_clock()
        if self.play:
            _play(audio, self._sample_rate or 16_000)
        return onset

    def _judge(self, value: float) -> tuple[float, float, bool]:
        """(reward, distance, success) of a smoothed value under the goal."""
        if self.goal == "maximize":
            distance = -value
            success = self.success_at is not None and value >= self.success_at
        elif self.goal == "minimize":
            distance = value
            success = self.success_at is not None and value <= self.success_at
        else:
            distance = abs(value - self.target)
            success = self.success_at is not None and distance <= self.success_at
        return -distance / self.scale, distance, bool(success)

    def _lost_rating(self, why: str, warn: bool) -> Rating:
        if warn:
            warnings.warn(f"physiology stream lost; truncating the episode: {why}", stacklevel=4)
        info = {"stream_lost": True, "error": why}
        return Rating(0.0, success=False, distance=math.nan, info=info, truncate=True)

    # ---- samples and closing -----------------------------------------------------------

    @property
    def samples(self) -> np.ndarray:
        """Every sample read so far (across reconnections), (n, 1 + channels): timestamp,
        then the channel values."""
        parts = [*self._history]
        if self.reader is not None:
            parts.append(self.reader.samples)
        if not parts:
            return np.zeros((0, 1 + len(CHANNEL_NAMES) if self.simulated else 2))
        return np.concatenate(parts)

    @property
    def channel_labels(self) -> list[str]:
        return self.reader.channel_labels if self.reader is not None else self._labels

    def save_samples(self, path: str | Path) -> Path:
        """Write :attr:`samples` as CSV (``timestamp,<channel labels>``); returns the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        header = ",".join(["timestamp", *self.channel_labels])
        np.savetxt(path, self.samples, delimiter=",", header=header, comments="", fmt="%.17g")
        return path

    def _close_stream(self) -> None:
        """Close the inlet (keeping its samples) and stop the simulated listener."""
        if self.reader is not None:
            if self.reader.connected:
                try:
                    self.reader.pull()  # what is still in flight belongs to the record too
                except StreamLost:
                    pass
                self.reader.close()
            self._history.append(self.reader.samples)
            self._labels = self.reader.channel_labels
            self.reader = None
        if self.simulator is not None:
            self.simulator.close()
            self.simulator = None

    def close(self) -> None:
        """Stop the simulated listener's thread and outlet, close the inlet, write
        ``record``. Safe to call twice."""
        self._close_stream()
        if self.record is not None and self._history:
            self.save_samples(self.record)


def _channel_index(channel: str | int, labels: list[str]) -> int:
    if isinstance(channel, int) and not isinstance(channel, bool):
        if 0 <= channel < len(labels):
            return channel
        raise ValueError(f"channel {channel} is out of range: the stream has {len(labels)}")
    if channel in labels:
        return labels.index(channel)
    raise ValueError(f"the stream has no channel {channel!r}; its channels: {labels}")


def _play(audio: np.ndarray, sample_rate: int) -> None:
    try:
        import sounddevice as sd
    except ImportError as err:
        raise ImportError("play=True needs sounddevice: pip install 'ddsp_gym[hardware]'") from err
    sd.play(np.asarray(audio, np.float32), sample_rate, blocking=False)


__all__ = ["PhysiologyReward", "StreamLost", "StreamNotFound", "GOALS"]
