"""A seeded simulated listener: physiology that responds to what it hears, with lag and noise.

:class:`SimulatedPhysiology` is the model (pure numpy, no LSL): each sound it hears sets
a hidden "calm" level from the sound's features, which its signals approach after a dead
time through a first-order lag, sampled at ``rate_hz`` with Gaussian noise.
:class:`SimulatedStream` publishes those samples over LSL (an outlet on the machine-only
config), on a simulated clock that runs ``time_scale`` times faster than real time
(0: as fast as the reader can take them).

The listener's taste is hidden and drawn from its seed: calm rises for sounds whose
spectral centroid is near a preferred brightness (250-1200 Hz, log-uniform), falls with
filter sweeps (the centroid's motion in octaves) and with noisiness (spectral flatness).
So "warm, steady, pure" calms it, within its own idea of warm.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field

import numpy as np

from ddsp_gym.physiology.stream import lsl

# The simulated signals: name, unit, rest level, calm level (calm in [0, 1] interpolates),
# noise std. Heart-rate coherence (HRV) and heart rate follow calm as in HRV-biofeedback
# studies' direction of effect (values are illustrative, not fitted); EEG alpha
# (relative band power) rises with relaxed attention.
CHANNELS: tuple[tuple[str, str, float, float, float], ...] = (
    ("coherence", "score", 0.2, 0.9, 0.03),
    ("heart_rate", "bpm", 78.0, 64.0, 1.5),
    ("alpha", "relative power", 0.15, 0.5, 0.02),
)
CHANNEL_NAMES = tuple(c[0] for c in CHANNELS)
REST_CALM = 0.3


def audio_features(audio: np.ndarray, sample_rate: int, frame: int = 512) -> dict[str, float]:
    """What the listener hears of a sound: its power-weighted spectral centroid (Hz), the
    centroid's motion (power-weighted std of its log2, octaves) and spectral flatness."""
    audio = np.asarray(audio, np.float64).ravel()
    hop = frame // 2
    if audio.size < frame:
        audio = np.pad(audio, (0, frame - audio.size))
    n = 1 + (audio.size - frame) // hop
    frames = np.lib.stride_tricks.sliding_window_view(audio, frame)[::hop][:n]
    power = np.abs(np.fft.rfft(frames * np.hanning(frame), axis=1)) ** 2 + 1e-12
    freqs = np.fft.rfftfreq(frame, 1.0 / sample_rate)
    energy = power.sum(axis=1)
    weight = energy / energy.sum()
    centroids = (power * freqs).sum(axis=1) / energy
    log_c = np.log2(np.maximum(centroids, 20.0))
    mean_log = float(np.sum(weight * log_c))
    motion = float(np.sqrt(np.sum(weight * (log_c - mean_log) ** 2)))
    flatness = np.exp(np.mean(np.log(power), axis=1)) / np.mean(power, axis=1)
    return {
        "centroid_hz": float(2.0**mean_log),
        "centroid_motion": motion,
        "flatness": float(np.sum(weight * flatness)),
    }


@dataclass(frozen=True)
class Taste:
    """A simulated listener's hidden preferences (drawn from its seed)."""

    preferred_centroid_hz: float
    width_octaves: float  # how far from the preferred brightness calm halves (about)
    motion_octaves: float  # centroid motion that costs calm a factor e
    flatness_weight: float  # calm lost at full noisiness

    @classmethod
    def draw(cls, seed: int) -> Taste:
        rng = np.random.default_rng([seed, 0x7A57E])
        return cls(
            preferred_centroid_hz=float(np.exp(rng.uniform(np.log(250.0), np.log(1200.0)))),
            width_octaves=float(rng.uniform(0.8, 1.3)),
            motion_octaves=float(rng.uniform(0.25, 0.5)),
            flatness_weight=float(rng.uniform(0.5, 0.9)),
        )

    def calm(self, features: dict[str, float]) -> float:
        """How calming a sound is, in [0, 1]."""
        off = np.log2(max(features["centroid_hz"], 1.0) / self.preferred_centroid_hz)
        brightness = np.exp(-0.5 * (off / self.width_octaves) ** 2)
        steadiness = np.exp(-features["centroid_motion"] / self.motion_octaves)
        purity = 1.0 - self.flatness_weight * min(max(features["flatness"], 0.0), 1.0)
        return float(brightness * steadiness * purity)


@dataclass
class SimulatedPhysiology:
    """The listener's signals over simulated time: heard sounds move them, lagged and noisy.

    Samples lie on the grid ``(k + 0.5) / rate_hz`` of simulated seconds; a sound heard at
    onset ``t0`` (a grid boundary) moves the calm target at ``t0 + latency_s`` and the
    signals follow it with time constant ``tau_s``. :meth:`restart` returns the listener
    to rest and reseeds its noise; the clock runs on (stream timestamps never go back).
    """

    seed: int = 0
    rate_hz: float = 10.0
    latency_s: float = 1.0
    tau_s: float = 1.0
    noise: float = 1.0  # scales every channel's noise std (0: noiseless)
    taste: Taste = field(init=False)

    def __post_init__(self) -> None:
        if self.rate_hz <= 0 or self.tau_s <= 0 or self.latency_s < 0 or self.noise < 0:
            raise ValueError(
                "SimulatedPhysiology needs rate_hz > 0, tau_s > 0, latency_s >= 0, noise >= 0"
            )
        self.taste = Taste.draw(self.seed)
        self._k = 0  # next sample index on the grid
        self.restart(self.seed)

    @property
    def now(self) -> float:
        """The simulated time of the next onset (a grid boundary)."""
        return self._k / self.rate_hz

    def restart(self, seed: int) -> None:
        """Back to rest, noise reseeded with ``seed``; the clock goes on."""
        self._rng = np.random.default_rng([self.seed, seed])
        self._calm = REST_CALM
        self._level = REST_CALM
        self._changes: list[tuple[float, float]] = []  # (time, new calm target)

    def hear(self, features: dict[str, float], duration_s: float) -> tuple[float, np.ndarray]:
        """Hear a sound for ``duration_s`` from now: (onset, samples (n, 1 + channels) of
        timestamp and channel values), the last stamped at least half a period after
        ``onset + duration_s``."""
        onset = self.now
        self._changes.append((onset + self.latency_s, self.taste.calm(features)))
        n = int(np.ceil(duration_s * self.rate_hz)) + 1
        out = np.empty((n, 1 + len(CHANNELS)))
        dt = 1.0 / self.rate_hz
        follow = 1.0 - np.exp(-dt / self.tau_s)
        stds = np.array([c[4] for c in CHANNELS]) * self.noise
        rest = np.array([c[2] for c in CHANNELS])
        calm_levels = np.array([c[3] for c in CHANNELS])
        for j in range(n):
            t = (self._k + j + 0.5) / self.rate_hz
            while self._changes and self._changes[0][0] <= t:
                self._calm = self._changes.pop(0)[1]
            self._level += follow * (self._calm - self._level)
            out[j, 0] = t
            out[j, 1:] = rest + (calm_levels - rest) * self._level
        out[:, 1:] += self._rng.standard_normal((n, len(CHANNELS))) * stds
        self._k += n
        return onset, out


class SimulatedStream:
    """A :class:`SimulatedPhysiology` published as an LSL stream (double64 samples stamped
    with its simulated clock), for tests and demos.

    ``time_scale``: simulated seconds per wall second (1: real time, 20: twenty times
    faster); 0 pushes each sound's response at once. A paced stream pushes from a
    thread, so the reader waits as it would for a device. The stream's source_id is
    unique (``ddsp_gym-sim-<hex>``): envs in one process never read each other's.
    """

    TYPE = "Physiology"

    def __init__(
        self,
        physiology: SimulatedPhysiology,
        name: str = "ddsp_gym-simulated-listener",
        time_scale: float = 0.0,
        config: str | None = "local",
    ) -> None:
        if time_scale < 0:
            raise ValueError(f"time_scale must be >= 0 (0: as fast as possible), not {time_scale}")
        pylsl = lsl(config)
        self.physiology = physiology
        self.time_scale = time_scale
        self.source_id = f"ddsp_gym-sim-{uuid.uuid4().hex}"
        info = pylsl.StreamInfo(
            name, self.TYPE, len(CHANNELS), physiology.rate_hz, pylsl.cf_double64, self.source_id
        )
        channels = info.desc().append_child("channels")
        for label, unit, *_ in CHANNELS:
            channel = channels.append_child("channel")
            channel.append_child_value("label", label)
            channel.append_child_value("unit", unit)
        self._outlet = pylsl.StreamOutlet(info, chunk_size=1, max_buffered=360)
        self._lock = threading.Lock()
        self._queue: list[np.ndarray] = []
        self._wake = threading.Condition(self._lock)
        self._stop = False
        self._thread: threading.Thread | None = None
        if time_scale > 0:
            self._thread = threading.Thread(target=self._pace, name="sim-physiology", daemon=True)
            self._thread.start()

    def hear(self, features: dict[str, float], duration_s: float) -> float:
        """The listener hears a sound for ``duration_s`` simulated seconds; its response is
        published; returns the onset (stream time)."""
        onset, samples = self.physiology.hear(features, duration_s)
        if self._thread is None:
            self._push(samples)
        else:
            with self._wake:
                self._queue.append(samples)
                self._wake.notify()
        return onset

    def _push(self, samples: np.ndarray) -> None:
        outlet = self._outlet
        if outlet is None:  # closed (a lost stream): the listener is gone
            return
        for row in samples.tolist():
            outlet.push_sample(row[1:], row[0])

    def _pace(self) -> None:
        """Push each queued sample when the wall clock reaches its simulated time."""
        while True:
            with self._wake:
                while not self._queue and not self._stop:
                    self._wake.wait()
                if self._stop:
                    return
                samples = self._queue.pop(0)
            start_wall, start_sim = time.monotonic(), samples[0, 0]
            for row in samples:
                due = start_wall + (row[0] - start_sim) / self.time_scale
                with self._wake:
                    if self._wake.wait_for(lambda: self._stop, max(due - time.monotonic(), 0)):
                        return
                self._push(row[None, :])

    def close(self) -> None:
        """Stop the pacing thread and destroy the outlet (readers see the stream end)."""
        with self._wake:
            self._stop = True
            self._wake.notify_all()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None
        self._outlet = None  # pylsl destroys the outlet when its last reference goes
