"""What every live session shares: the agent thread, the block bookkeeping, the recorder
thread (WAV and knob log), stop and summary (:class:`LiveSession`); the backends are
:mod:`ddsp_gym.live.sim` and :mod:`ddsp_gym.live.hardware`."""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ddsp_gym.backends.errors import HardwareError
from ddsp_gym.live.agents import Agent
from ddsp_gym.live.buffers import TargetSlot
from ddsp_gym.live.core import BlockCore


class LiveError(HardwareError):
    """A live session could not start (its devices, its watchdog, its first blocks)."""


# ---- recording ------------------------------------------------------------------------------


class Recorder:
    """Writes the session's audio (WAV) and one JSON line per block on its own thread."""

    def __init__(self, out_dir: Path, sample_rate: int) -> None:
        import soundfile as sf

        out_dir.mkdir(parents=True, exist_ok=True)
        self.wav_path = out_dir / "live.wav"
        self.log_path = out_dir / "knobs.jsonl"
        self._wav = sf.SoundFile(self.wav_path, "w", sample_rate, 1, "PCM_16")
        self._log = open(self.log_path, "w")  # noqa: SIM115 - closed by close()
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="live-recorder", daemon=True)
        self._thread.start()
        self.error: BaseException | None = None

    def add(self, audio: np.ndarray, record: dict[str, Any]) -> None:
        self._queue.put((audio, record))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            audio, record = item
            try:
                self._wav.write(np.clip(audio, -1.0, 1.0))
                self._log.write(json.dumps(record) + "\n")
            except Exception as err:  # noqa: BLE001 - reported by close()
                self.error = err

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=10.0)
        self._wav.close()
        self._log.close()


# ---- sessions -------------------------------------------------------------------------------


class OutputStream(Protocol):
    def close(self) -> None: ...


StreamOpener = Callable[[Callable, int], OutputStream]


class LiveSession:
    """What both backends share: the agent thread, the block bookkeeping, stop, summary."""

    backend = "?"

    def __init__(
        self, core: BlockCore, agent: Agent, out_dir: Path | None = None, clock=time.monotonic
    ) -> None:
        self.core = core
        self.agent = agent
        self.clock = clock
        self.slot = TargetSlot()
        self.target = core.knobs.copy()
        self.recorder = Recorder(out_dir, core.sample_rate) if out_dir is not None else None
        self.out_dir = out_dir
        self._stop = threading.Event()
        self._new_obs = threading.Condition()
        self._obs = core.observation()
        self._obs_block = 0
        self._obs_seq = 0  # the target sequence number the newest block played
        self._obs_reward: float = 0.0
        self._obs_terms: dict[str, float] = {}
        # The live env's lockstep: the block thread waits for a new target until its
        # deadline (an agent that steps in time gets one action per block).
        self.lockstep = False
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self.blocks = 0
        self.reward_sum = 0.0
        self.late_blocks = 0
        self.device_xruns = 0
        self.work_s_sum = 0.0  # the block thread's time per block: render/score, I/O
        self.work_s_max = 0.0
        self.last: dict[str, Any] = {"reward": 0.0, "knobs": core.physical(self.target)}
        self.started_at: float | None = None
        self.stop_reason: str | None = None
        self._stopped = False
        self.on_close: list[Callable[[], None]] = []  # after the devices, at stop
        self._server_xruns_before = _server_xruns()
        self._load_at_start = _load_avg()

    # -- the agent thread --------------------------------------------------------------

    def _agent_loop(self) -> None:
        seen = -1
        d = len(self.core.knob_names)
        while not self._stop.is_set():
            with self._new_obs:
                self._new_obs.wait_for(
                    lambda s=seen: self._obs_block != s or self._stop.is_set(), timeout=0.2
                )
                obs, block = self._obs, self._obs_block
            if block == seen or self._stop.is_set():
                continue
            seen = block
            try:
                action = self.agent(obs)
                self.slot.put(self.core.target_after(obs[:d], action))
            except Exception as err:  # noqa: BLE001 - the session stops and reports it
                self._fail(f"the agent failed: {type(err).__name__}: {err}")
                return

    def post(self, target: np.ndarray) -> int:
        """Post knob targets from outside (the live env); returns their sequence number."""
        return self.slot.put(target)

    def wait_played(self, seq: int, timeout: float) -> tuple[np.ndarray, float, dict, int] | None:
        """The newest block once one has played target ``seq`` (or a later one):
        (observation, reward, reward terms, block count), or None after ``timeout``."""
        with self._new_obs:
            ok = self._new_obs.wait_for(
                lambda: self._obs_seq >= seq or self._stop.is_set(), timeout
            )
            if not ok or self._obs_seq < seq:
                return None
            return self._obs, self._obs_reward, dict(self._obs_terms), self._obs_block

    def request_stop(self, reason: str) -> None:
        """Ask the session to stop (safe from a signal handler: it only sets flags)."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.stop_reason = self.stop_reason or "error"
        self._stop.set()

    # -- block bookkeeping (called by the block thread) ----------------------------------

    def _next_target(self, wait_s: float = 0.0) -> np.ndarray:
        newest = self.slot.take(wait_s if self.lockstep else 0.0)
        if newest is not None:
            self.target = newest
        return self.target

    def _played(self, audio: np.ndarray, target: np.ndarray, reward: float, info: dict) -> None:
        """Publish a block's observation and reward; record it."""
        obs = self.core.observation()
        self.blocks += 1
        self.reward_sum += reward
        knobs = self.core.physical(target)
        self.last = {"reward": reward, "knobs": knobs, "terms": info}
        with self._new_obs:
            self._obs, self._obs_block = obs, self.blocks
            self._obs_seq = self.slot.taken_seq
            self._obs_reward, self._obs_terms = reward, info
            self._new_obs.notify_all()
        if self.recorder is not None:
            t = self.blocks * self.core.plant.block_seconds
            # t: stream time (blocks played); wall: the clock since the start. A device
            # that drops periods (the JACK dummy driver under load) falls behind the wall.
            wall = self.clock() - self.started_at if self.started_at is not None else 0.0
            record = {
                "block": self.blocks, "t": round(t, 4), "wall": round(wall, 4),
                "knobs": knobs, "reward": reward,
            }  # fmt: skip
            record.update(info)
            record["xruns"] = self.xruns
            self.recorder.add(audio, record)

    def _work(self, seconds: float) -> None:
        """Book the block thread's time for one block (its margin against the deadline)."""
        self.work_s_sum += seconds
        self.work_s_max = max(self.work_s_max, seconds)

    # -- xruns and info -------------------------------------------------------------------

    @property
    def server_xruns(self) -> int | None:
        now = _server_xruns()
        if now is None or self._server_xruns_before is None:
            return None
        return max(0, now - self._server_xruns_before)

    @property
    def input_xruns(self) -> int:
        """Over/underruns of a live audio input (the sim backend's effect input)."""
        return 0

    @property
    def xruns(self) -> int:
        return self.late_blocks + self.device_xruns + self.input_xruns

    def info(self) -> dict[str, Any]:
        """The latest block's reward terms and knobs, and the xrun counts so far."""
        return {
            **self.last,
            "block": self.blocks,
            "xruns": self.xruns,
            "late_blocks": self.late_blocks,
            "device_xruns": self.device_xruns,
            "input_xruns": self.input_xruns,
            "targets_posted": self.slot.posted,
            "targets_taken": self.slot.taken,
        }

    # -- running ------------------------------------------------------------------------

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def guarded() -> None:
            try:
                target()
            except Exception as err:  # noqa: BLE001 - reported, and the session stops
                self._fail(f"{name} failed: {type(err).__name__}: {err}")

        thread = threading.Thread(target=guarded, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def start(self) -> None:
        raise NotImplementedError

    def _stop_devices(self) -> None:
        raise NotImplementedError

    def stop(self, reason: str = "stopped") -> None:
        """Stop the threads and the devices, silence the synth, close the files. Idempotent."""
        if self._stopped:
            return
        self._stopped = True
        self.stop_reason = self.stop_reason or reason
        self._stop.set()
        with self._new_obs:
            self._new_obs.notify_all()
        try:
            self._stop_devices()
        finally:
            for close in self.on_close:
                try:
                    close()
                except Exception as err:  # noqa: BLE001 - reported, the rest still closes
                    self.errors.append(f"closing failed: {type(err).__name__}: {err}")
            for thread in self._threads:
                thread.join(timeout=5.0)
            if self.recorder is not None:
                self.recorder.close()
                if self.recorder.error is not None:
                    self.errors.append(f"recording failed: {self.recorder.error}")

    @property
    def done(self) -> bool:
        return self._stop.is_set()

    def summary(self) -> dict[str, Any]:
        block_s = self.core.plant.block_seconds
        out = {
            "env_id": self.core.env_id,
            "backend": self.backend,
            "blocks": self.blocks,
            "seconds_played": round(self.blocks * block_s, 3),
            "block_size": self.core.block_size,
            "sample_rate": self.core.sample_rate,
            "mean_reward": self.reward_sum / self.blocks if self.blocks else None,
            "xruns": self.xruns,
            "late_blocks": self.late_blocks,
            "device_xruns": self.device_xruns,
            "input_xruns": self.input_xruns,
            "server_xruns": self.server_xruns,
            "targets_posted": self.slot.posted,
            "targets_taken": self.slot.taken,
            "block_thread_ms_mean": round(1e3 * self.work_s_sum / self.blocks, 3)
            if self.blocks
            else None,
            "block_thread_ms_max": round(1e3 * self.work_s_max, 3),
            "stop_reason": self.stop_reason,
            "errors": self.errors,
            # Xruns depend on what else the machine runs: the load beside them.
            "cpu_count": os.cpu_count(),
            "load_avg_1min_at_start": self._load_at_start,
            "load_avg_1min_at_stop": _load_avg(),
        }
        if self.recorder is not None:
            out["wav"] = str(self.recorder.wav_path)
            out["knob_log"] = str(self.recorder.log_path)
        return out


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def _server_xruns() -> int | None:
    """Xruns the rig's jackd has logged so far (None where no rig log exists)."""
    try:
        from ddsp_gym.backends import rig

        config = rig.RigConfig.default()
        if not (config.state_dir / "jackd.log").is_file():
            return None
        return rig.xrun_count(config)
    except Exception:  # noqa: BLE001 - a report detail, never a reason to fail
        return None
