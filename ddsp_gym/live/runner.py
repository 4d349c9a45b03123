"""Live mode: a streaming env played in real time, with the agent at its own rate.

Three threads, and the audio callback, which never waits on any of them:

* the **agent thread** reads the newest observation, asks the agent for an action (in
  the env's own action space: delta or absolute knobs), turns it into unit knob targets
  and posts them to a :class:`TargetSlot`; it runs as fast or as slow as the agent does;
* the **block thread** owns the stream's state. At each block edge it takes the newest
  target (or keeps the last one: the ramp makes a held knob a constant) and
  - ``sim``: renders the block with the same jitted ``transition`` the offline env steps
    (so live and offline audio agree block for block), and writes it, resampled to the
    device rate, into a :class:`SampleFifo`;
  - ``hardware``: sends the knob targets to the synth over MIDI (the knob map's CCs,
    only what changed) and scores the block captured back from it with the same
    ``score_played`` (features, task reward, penalties) as the offline env;
* the **recorder thread** writes the WAV and the knob log (JSONL), so file I/O never
  delays a block.

The sim's output callback only copies samples out of the FIFO; when a block is not
ready in time it plays zeros and counts an xrun (``late_blocks``); the device's own
over/underrun flags count too (``device_xruns``); on JACK the server's logged xruns are
reported beside them (``server_xruns``). ``info["xruns"]`` is their sum so far.

Stopping: every exit path (the time is up, Ctrl-C, SIGTERM, an exception, ``atexit``)
goes through :meth:`LiveSession.stop`, which panics the synth (all notes off, all sound
off, all channels: a message list that needs no state). A process killed outright
(SIGKILL) runs none of that: the hardware backend therefore starts a watchdog process
first (:mod:`ddsp_gym.live.watchdog`) that panics when the runner's pipe closes.

    summary = run_live("ddsp_gym/Drone-v0", backend="sim", agent="random-walk", seconds=10)
    ddsp-gym live ddsp_gym/Drone-v0 --backend hardware --seconds 60 --out live_out
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import json
import math
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ddsp_gym.backends.errors import HardwareError
from ddsp_gym.live import watchdog

LIVE_BACKENDS = ("sim", "hardware", "plugin")
AGENTS = ("random-walk", "scripted")
DEFAULT_LATENCY_BLOCKS = 2  # blocks rendered ahead of the callback (128 ms at 16 kHz)
# The synth each plant plays by default on the hardware backend (a knob map per plant).
DEFAULT_KNOB_MAPS = {"drone": "amsynth_drone"}
DEFAULT_MIDI_OUT = "amsynth:midi_in"
DEFAULT_AUDIO_IN = "amsynth"
AFTER_STOP_S = 0.5  # hardware: how long the capture runs on after the panic
STOP_PANICS = 4  # hardware: panics sent at most while the synth is still heard
SILENT_DBFS = -60.0  # a synth quieter than this after the stop counts as silent
FLOOR_DBFS = -120.0  # the level reported for digital silence
EXIT_INTERRUPTED = 130


class LiveError(HardwareError):
    """A live session could not start (its devices, its watchdog, its first blocks)."""


# ---- the pieces the threads share (pure, testable without a sound card) -----------------


class SampleFifo:
    """A mono sample FIFO between one writer thread and the audio callback.

    The callback never blocks on the writer: :meth:`read_into` copies what is there and
    zero-fills the rest (an underrun). The lock is held only for array copies.
    """

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 frame, got {capacity}")
        self.capacity = capacity
        self._buf = np.zeros(capacity, np.float32)
        self._start = 0
        self._count = 0
        self._cond = threading.Condition(threading.Lock())
        self.dropped = 0  # frames a full FIFO refused (a writer faster than the reader)

    @property
    def available(self) -> int:
        return self._count

    @property
    def space(self) -> int:
        return self.capacity - self._count

    def write(self, x: np.ndarray) -> int:
        """Append as much of ``x`` as fits; returns the frames written (the rest is dropped)."""
        x = np.asarray(x, np.float32).reshape(-1)
        with self._cond:
            n = min(len(x), self.capacity - self._count)
            end = (self._start + self._count) % self.capacity
            first = min(n, self.capacity - end)
            self._buf[end : end + first] = x[:first]
            self._buf[: n - first] = x[first:n]
            self._count += n
            self.dropped += len(x) - n
            self._cond.notify_all()
        return n

    def read_into(self, out: np.ndarray) -> int:
        """Fill ``out`` (1-D) from the FIFO, zeros where it runs dry; returns frames copied."""
        with self._cond:
            n = min(len(out), self._count)
            first = min(n, self.capacity - self._start)
            out[:first] = self._buf[self._start : self._start + first]
            out[first:n] = self._buf[: n - first]
            self._start = (self._start + n) % self.capacity
            self._count -= n
            self._cond.notify_all()
        out[n:] = 0.0
        return n

    def wait(self, predicate: Callable[[SampleFifo], bool], timeout: float) -> bool:
        """Wait until ``predicate(self)`` holds (re-checked after each read or write)."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)


class TargetSlot:
    """The agent's mailbox: the newest knob target wins.

    A queue that keeps only its newest item: the block thread wants where the agent
    wants the knobs *now*; an older target the agent has already replaced would only
    delay it. ``posted`` / ``taken`` count both ends (an agent faster than the blocks
    posts more than is taken).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: np.ndarray | None = None
        self.posted = 0
        self.taken = 0

    def put(self, target: np.ndarray) -> None:
        with self._lock:
            self._value = np.asarray(target, np.float32).copy()
            self.posted += 1

    def take(self) -> np.ndarray | None:
        """The newest target not taken yet, or None (keep the last one)."""
        with self._lock:
            value, self._value = self._value, None
            self.taken += value is not None
            return value


class StreamResampler:
    """Rational-ratio resampling of a block stream with carried filter state.

    Zero-stuff by ``up``, low-pass (a windowed-sinc FIR through ``lfilter`` with its state
    carried from block to block), keep every ``down``-th sample with the phase carried
    too: blocks in a row give the same samples as one long call (no seams at the edges).
    """

    def __init__(self, from_rate: int, to_rate: int, taps_per_phase: int = 16) -> None:
        from scipy import signal as sps

        if from_rate <= 0 or to_rate <= 0:
            raise ValueError(f"sample rates must be > 0, got {from_rate} and {to_rate}")
        g = math.gcd(from_rate, to_rate)
        self.up, self.down = to_rate // g, from_rate // g
        self.from_rate, self.to_rate = from_rate, to_rate
        if self.up == self.down == 1:
            self.taps = np.ones(1)
        else:
            n = 2 * taps_per_phase * max(self.up, self.down) + 1
            self.taps = sps.firwin(n, 0.9 / max(self.up, self.down)) * self.up
        self._zi = np.zeros(len(self.taps) - 1)
        self._offset = 0  # index of the next kept sample in the next upsampled chunk
        self._lfilter = sps.lfilter

    def process(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float64).reshape(-1)
        if self.up == self.down == 1:
            return x.astype(np.float32)
        z = np.zeros(len(x) * self.up)
        z[:: self.up] = x
        y, self._zi = self._lfilter(self.taps, 1.0, z, zi=self._zi)
        kept = y[self._offset :: self.down]
        self._offset = (self._offset - len(y)) % self.down
        return kept.astype(np.float32)


def dbfs(x: np.ndarray) -> float:
    """Peak level in dBFS, floored at FLOOR_DBFS (digital silence; JSON has no -inf)."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    return max(FLOOR_DBFS, 20.0 * math.log10(peak)) if peak > 0 else FLOOR_DBFS


# ---- the block core: the offline env's functions, one block at a time ---------------------


class BlockCore:
    """A streaming env's state and jitted functions, stepped one block at a time.

    The functional env is rebuilt with absolute control: the agent thread converts its
    actions (delta or absolute, as the env says) to unit knob targets, and each block
    ramps to the target it takes. Rewards, features and penalties are the offline env's.
    """

    def __init__(self, env_id: str, seed: int = 0, **env_kwargs: Any) -> None:
        import gymnasium as gym
        import jax

        import ddsp_gym  # noqa: F401  (registers the ids)
        from ddsp_gym.streaming.gym_env import StreamingDDSPEnv

        try:
            env = gym.make(env_id, disable_env_checker=True, **env_kwargs).unwrapped
        except gym.error.Error as err:
            raise ValueError(f"unknown env {env_id!r}: {err}") from None
        if not isinstance(env, StreamingDDSPEnv):
            raise ValueError(
                f"{env_id} is not a streaming env: live mode plays kind: streaming ids "
                "(ddsp_gym/Drone-v0, ddsp_gym/PerformerAssistant-v0, ddsp_gym/JamPartner-v0)"
            )
        self.env_id = env_id
        self.control = env.functional.control
        self.max_delta = float(env.params.max_delta)
        self.fenv = dataclasses.replace(env.functional, control="absolute")
        self.params = env.params
        self.plant = self.fenv.plant
        self.knob_names = self.plant.knob_names
        self.observation_space = env.observation_space
        self.action_space = env.action_space
        self._transition = jax.jit(self.fenv.transition)
        self._score = jax.jit(self.fenv.score_played)
        self._observe = jax.jit(self.fenv._observation)
        _, self.state = jax.jit(self.fenv.reset_env)(jax.random.PRNGKey(seed), self.params)
        self._jax = jax

    @property
    def block_size(self) -> int:
        return self.plant.block_size

    @property
    def sample_rate(self) -> int:
        return self.plant.sample_rate

    @property
    def knobs(self) -> np.ndarray:
        return np.asarray(self.state.knobs, np.float32)

    def observation(self) -> np.ndarray:
        return np.asarray(self._observe(self.state), np.float32)

    def target_after(self, knobs: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Unit knob targets after ``action`` from ``knobs``, as the offline env moves them."""
        a = np.clip(np.asarray(action, np.float32).reshape(-1), -1.0, 1.0)
        if a.shape[0] != len(self.knob_names) or not np.all(np.isfinite(a)):
            raise ValueError(
                f"an action must be {len(self.knob_names)} finite numbers "
                f"({', '.join(self.knob_names)}), got {action!r}"
            )
        if self.control == "absolute":
            return (a + 1.0) / 2.0
        return np.clip(knobs + self.max_delta * a, 0.0, 1.0).astype(np.float32)

    def warm_up(self, hardware: bool = False) -> None:
        """Compile before the audio starts (the first call of a jitted function compiles)."""
        action = 2.0 * self.knobs - 1.0
        if hardware:
            out = self._score(
                self.state, self.state.knobs, self.state.audio, None, self.state.plant, self.params
            )
        else:
            out = self._transition(self.state, action, self.params)
        self._jax.block_until_ready(out)
        self._jax.block_until_ready(self._observe(self.state))

    def _finish(self, state, reward, info) -> tuple[float, dict[str, float]]:
        self.state = state
        return float(reward), {k: float(v) for k, v in info.items()}

    def render(self, target: np.ndarray) -> tuple[np.ndarray, float, dict[str, float]]:
        """Render the next block ramping to ``target``: (audio, reward, reward terms)."""
        action = 2.0 * np.asarray(target, np.float32) - 1.0
        state, reward, info = self._transition(self.state, action, self.params)
        reward, info = self._finish(state, reward, info)
        return np.asarray(state.audio, np.float32), reward, info

    def score(self, target: np.ndarray, audio: np.ndarray) -> tuple[float, dict[str, float]]:
        """Score a block played elsewhere (captured from a synth) with the knobs at ``target``."""
        if self.plant.needs_input:
            raise NotImplementedError("scoring a captured block of an effect plant")
        state, reward, info = self._score(
            self.state, np.asarray(target, np.float32), np.asarray(audio, np.float32),
            None, self.state.plant, self.params,
        )  # fmt: skip
        return self._finish(state, reward, info)

    def physical(self, knobs: np.ndarray) -> dict[str, float]:
        return {
            spec.name: float(spec.to_physical(float(u)))
            for spec, u in zip(self.plant.knob_specs, knobs, strict=True)
        }


# ---- agents -------------------------------------------------------------------------------

Agent = Callable[[np.ndarray], np.ndarray]


class RandomWalk:
    """Uniform actions: under delta control, each knob wanders by up to ``max_delta``."""

    def __init__(self, num_knobs: int, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.num_knobs = num_knobs

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.num_knobs).astype(np.float32)


class Scripted:
    """A deterministic sweep: knob k follows 0.5 + 0.35 sin(2 pi t / period_k), t counted
    in blocks seen (periods 8-20 s at 64-ms blocks); actions chase it in the env's
    control mode (delta: as far as ``max_delta`` allows per block)."""

    def __init__(self, num_knobs: int, control: str, max_delta: float, block_s: float) -> None:
        self.num_knobs, self.control, self.max_delta = num_knobs, control, max_delta
        self.periods_s = np.linspace(8.0, 20.0, num_knobs)
        self.block_s = block_s
        self.calls = 0

    def target(self, t: float) -> np.ndarray:
        return 0.5 + 0.35 * np.sin(2.0 * np.pi * t / self.periods_s)

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        goal = self.target(self.calls * self.block_s)
        self.calls += 1
        if self.control == "absolute":
            return (2.0 * goal - 1.0).astype(np.float32)
        knobs = obs[: self.num_knobs]
        return np.clip((goal - knobs) / self.max_delta, -1.0, 1.0).astype(np.float32)


class PolicyAgent:
    """A trained Stable-Baselines3 policy (``PPO.save`` zip); actions sampled as in training."""

    def __init__(self, path: Path, deterministic: bool = False) -> None:
        try:
            from stable_baselines3 import PPO
        except ImportError as err:
            raise ValueError(
                f"a .zip agent needs stable-baselines3 (pip install 'ddsp_gym[sb3]'): {err}"
            ) from None
        self.model = PPO.load(str(path), device="cpu")
        self.deterministic = deterministic

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        action, _ = self.model.predict(obs, deterministic=self.deterministic)
        return np.asarray(action, np.float32)


def make_agent(spec: str, core: BlockCore, seed: int = 0) -> Agent:
    """``random-walk``, ``scripted`` or a path to an SB3 ``.zip``."""
    d = len(core.knob_names)
    if spec == "random-walk":
        return RandomWalk(d, seed)
    if spec == "scripted":
        return Scripted(d, core.control, core.max_delta, core.plant.block_seconds)
    path = Path(spec)
    if path.suffix == ".zip":
        if not path.is_file():
            raise ValueError(f"agent file {spec!r} does not exist")
        agent = PolicyAgent(path)
        shape = getattr(agent.model.observation_space, "shape", None)
        if shape != core.observation_space.shape:
            raise ValueError(
                f"{spec} was trained on observations of shape {shape}, but "
                f"{core.env_id} gives {core.observation_space.shape}"
            )
        return agent
    raise ValueError(f"--agent must be one of {AGENTS} or a PATH.zip, got {spec!r}")


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

    def request_stop(self, reason: str) -> None:
        """Ask the session to stop (safe from a signal handler: it only sets flags)."""
        self.stop_reason = self.stop_reason or reason
        self._stop.set()

    def _fail(self, message: str) -> None:
        self.errors.append(message)
        self.stop_reason = self.stop_reason or "error"
        self._stop.set()

    # -- block bookkeeping (called by the block thread) ----------------------------------

    def _next_target(self) -> np.ndarray:
        newest = self.slot.take()
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
    def xruns(self) -> int:
        return self.late_blocks + self.device_xruns

    def info(self) -> dict[str, Any]:
        """The latest block's reward terms and knobs, and the xrun counts so far."""
        return {
            **self.last,
            "block": self.blocks,
            "xruns": self.xruns,
            "late_blocks": self.late_blocks,
            "device_xruns": self.device_xruns,
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


class SimLive(LiveSession):
    """The block plant rendered live: block thread -> FIFO -> the output callback."""

    backend = "sim"

    def __init__(
        self,
        core: BlockCore,
        agent: Agent,
        open_stream: StreamOpener,
        device_rate: int,
        out_dir: Path | None = None,
        latency_blocks: int = DEFAULT_LATENCY_BLOCKS,
    ) -> None:
        super().__init__(core, agent, out_dir)
        if latency_blocks < 1:
            raise ValueError(f"latency_blocks must be >= 1, got {latency_blocks}")
        self.device_rate = device_rate
        self.resampler = StreamResampler(core.sample_rate, device_rate)
        self.device_block = core.block_size * device_rate // core.sample_rate
        if self.device_block * core.sample_rate != core.block_size * device_rate:
            raise ValueError(
                f"a {core.block_size}-sample block at {core.sample_rate} Hz is not a whole "
                f"number of frames at the device's {device_rate} Hz"
            )
        self.fifo = SampleFifo(latency_blocks * self.device_block)
        self.latency_blocks = latency_blocks
        self._open_stream = open_stream
        self._stream: OutputStream | None = None
        self._playing = False
        self.frames_played = 0

    def callback(self, outdata: np.ndarray, frames: int, time_info, status) -> None:
        """The audio callback: copy samples out of the FIFO. Never waits, never raises."""
        mono = np.empty(frames, np.float32)
        got = self.fifo.read_into(mono)
        outdata[:] = mono[:, None]
        # One xrun per callback at most: ours (the block was not ready) or else the device's.
        if self._playing and got < frames:
            self.late_blocks += 1
        elif status is not None and getattr(status, "output_underflow", False):
            self.device_xruns += 1
        self.frames_played += frames

    def _block_loop(self) -> None:
        while not self._stop.is_set():
            if not self.fifo.wait(lambda f: f.space >= self.device_block, timeout=0.1):
                continue
            began = time.perf_counter()
            target = self._next_target()
            audio, reward, info = self.core.render(target)
            self.fifo.write(self.resampler.process(audio))
            self._played(audio, target, reward, info)
            self._work(time.perf_counter() - began)

    def start(self, prefill_timeout: float = 10.0) -> None:
        """Compile, fill the FIFO, then open the stream (the first callback finds blocks)."""
        self.core.warm_up()
        self._spawn(self._block_loop, "live-block")
        full = self.fifo.wait(
            lambda f: f.space < self.device_block or self._stop.is_set(), prefill_timeout
        )
        if self._stop.is_set():  # asked to stop (SIGTERM) before a sound was made
            return
        if not full:
            self._fail("the block thread did not fill the buffer in time")
            raise LiveError(self.errors[-1])
        self._spawn(self._agent_loop, "live-agent")
        self._playing = True
        self.started_at = self.clock()
        self._stream = self._open_stream(self.callback, self.device_rate)

    def _stop_devices(self) -> None:
        self._playing = False
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "device_rate": self.device_rate,
            "latency_blocks": self.latency_blocks,
            "frames_played": self.frames_played,
        }


# ---- devices (sounddevice / rtmidi), opened only by the live command ------------------------


class _CallbackStream:
    """A started sounddevice stream that closes once and never hangs (audio._OpenStream)."""

    def __init__(self, kind: str, device, callback, samplerate: int, hostapi: str | None):
        from ddsp_gym.backends import audio

        self._audio = audio
        sd = audio.acquire_portaudio()
        try:
            if device is None:
                index = sd.default.device[0 if kind == "input" else 1]
                if index is None or index < 0:
                    raise audio.AudioDeviceNotFoundError(
                        f"no default audio {kind} device; name one (--audio-{kind[:-3]}). "
                        f"Devices:\n{audio.format_devices(audio.list_audio_devices())}"
                    )
                info = audio.list_audio_devices()[index]
            else:
                info = audio.find_device(device, kind, hostapi)
            self.info = info
            if kind == "input":
                stream = sd.InputStream(
                    device=info["index"], channels=info["inputs"], samplerate=samplerate,
                    dtype="float32", callback=callback,
                )  # fmt: skip
            else:
                stream = sd.OutputStream(
                    device=info["index"], channels=min(2, info["outputs"]),
                    samplerate=samplerate, dtype="float32", callback=callback,
                )  # fmt: skip
        except BaseException:
            audio.release_portaudio()
            raise
        self._handle = audio._OpenStream(stream)
        stream.start()

    def close(self) -> None:
        self._handle.close()


def device_rate(device, kind: str, hostapi: str | None) -> int:
    """The device's default sample rate (JACK: the server's)."""
    from ddsp_gym.backends import audio

    if device is None:
        with audio.portaudio() as sd:
            return int(sd.query_devices(kind=kind)["default_samplerate"])
    return int(audio.find_device(device, kind, hostapi)["default_samplerate"])


class Watchdog:
    """The note watchdog process (:mod:`ddsp_gym.live.watchdog`) and our pipe to it."""

    def __init__(self, port: str, api: str = "auto", heartbeat_s: float = 2.0) -> None:
        command = [
            sys.executable, "-m", "ddsp_gym.live.watchdog", port,
            "--api", api, "--heartbeat-s", str(heartbeat_s),
        ]  # fmt: skip
        # Its own session: a Ctrl-C or a group kill aimed at the runner leaves it running.
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True
        )
        line = self._read_line(timeout=15.0)
        if line != "ready":
            self.process.kill()
            self.process.wait(timeout=5)
            raise LiveError(f"the note watchdog did not start: {line or 'no answer'}")

    def _read_line(self, timeout: float) -> str:
        import select

        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return ""
        return self.process.stdout.readline().decode(errors="replace").strip()

    @property
    def pid(self) -> int:
        return self.process.pid

    def beat(self) -> bool:
        """One heartbeat; False if the watchdog is gone."""
        try:
            os.write(self.process.stdin.fileno(), watchdog.HEARTBEAT)
            return True
        except OSError:
            return False

    def close(self, timeout: float = 3.0) -> None:
        """Say "clean exit", close the pipe (the watchdog panics once more and exits) and
        wait for it. Called after the runner's own panic and silence check."""
        with contextlib.suppress(OSError):
            os.write(self.process.stdin.fileno(), watchdog.CLEAN_EXIT)
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=timeout)


class HardwareLive(LiveSession):
    """A real synth played live: knob targets out as MIDI, its audio captured and scored."""

    backend = "hardware"

    def __init__(
        self,
        core: BlockCore,
        agent: Agent,
        out_dir: Path | None = None,
        midi_out: str = DEFAULT_MIDI_OUT,
        audio_in: str | None = DEFAULT_AUDIO_IN,
        knob_map: str | None = None,
        midi_api: str = "auto",
        hostapi: str | None = None,
        heartbeat_s: float = 2.0,
    ) -> None:
        from ddsp_gym.backends.knob_map import load_knob_map

        if core.plant.needs_input:
            raise NotImplementedError(
                f"{core.env_id} processes an input stream (an effect); live hardware mode "
                "plays instruments over MIDI (ddsp_gym/Drone-v0), not effects yet"
            )
        plant_name = type(core.plant).__name__
        name = knob_map or _default_map(core)
        if name is None:
            raise ValueError(
                f"no knob map for {core.env_id}'s plant ({plant_name}); give --knob-map "
                "(a YAML map whose knobs are " + ", ".join(core.knob_names) + ")"
            )
        self.knob_map = load_knob_map(name)
        self.knob_map.check_specs(core.plant.knob_specs)
        super().__init__(core, agent, out_dir)
        self.midi_out, self.audio_in, self.midi_api = midi_out, audio_in, midi_api
        self.hostapi, self.heartbeat_s = hostapi, heartbeat_s
        self.midi = None
        self.watchdog: Watchdog | None = None
        self._stream: _CallbackStream | None = None
        self._capture: SampleFifo | None = None
        self._sent: dict[str, int] = {}
        self._tail: list[np.ndarray] | None = None
        self.after_stop_peak_dbfs: float | None = None
        self.panics_sent = 0
        self.device_rate = 0
        self.dropped_frames = 0
        self.watchdog_lost = False

    # -- MIDI -------------------------------------------------------------------------

    def _send_knobs(self, target: np.ndarray, force: bool = False) -> None:
        _, sent = self.knob_map.encode(target, self.core.plant.knob_specs)
        # Only what changed goes out: a MIDI cable carries ~1000 CCs a second, and a synth
        # may restart its parameter smoothing on every message.
        for spec in self.core.plant.knob_specs:
            value = sent[spec.name].value
            if force or self._sent.get(spec.name) != value:
                self.midi.send_all(self.knob_map.knobs[spec.name].messages(value))
                self._sent[spec.name] = value

    def panic(self) -> None:
        """All notes off and all sound off on every channel; never raises."""
        if self.midi is not None:
            self.midi.panic()

    # -- audio ------------------------------------------------------------------------

    def callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        mono = indata.mean(axis=1) if indata.ndim == 2 else indata
        if status is not None and getattr(status, "input_overflow", False):
            self.device_xruns += 1
        tail = self._tail
        if tail is not None:
            tail.append(mono.copy())
            return
        written = self._capture.write(mono)
        if written < frames:
            self.dropped_frames += frames - written

    def _block_loop(self) -> None:
        need = self.device_block
        downsample = StreamResampler(self.device_rate, self.core.sample_rate)
        pending = self.target.copy()
        while not self._stop.is_set():
            if not self._capture.wait(lambda f: f.available >= need, timeout=0.2):
                continue
            if self._capture.available >= self._capture.capacity - need:
                self.late_blocks += 1  # fell a whole block behind the capture
            began = time.perf_counter()
            chunk = np.empty(need, np.float32)
            self._capture.read_into(chunk)
            audio = downsample.process(chunk)
            reward, info = self.core.score(pending, audio)
            self._played(audio, pending, reward, info)
            pending = self._next_target()
            self._send_knobs(pending)
            if self.watchdog is not None and not self.watchdog.beat():
                self.watchdog_lost = True
            self._work(time.perf_counter() - began)

    def start(self) -> None:
        from ddsp_gym.backends.midi import MidiOutput, reset_all_controllers

        self.core.warm_up(hardware=True)
        self.device_rate = device_rate(self.audio_in, "input", self.hostapi)
        self.device_block = self.core.block_size * self.device_rate // self.core.sample_rate
        self._capture = SampleFifo(4 * self.device_block)
        # The watchdog first: from the first note-on, a killed runner is silenced.
        self.watchdog = Watchdog(self.midi_out, self.midi_api, self.heartbeat_s)
        atexit.register(self.panic)
        self.midi = MidiOutput(self.midi_out, self.midi_api, f"ddsp_gym-live-{os.getpid()}")
        self.midi.panic()
        self.midi.send_all([reset_all_controllers(self.knob_map.channel)])
        self.midi.send_all(self.knob_map.init_messages())
        self._send_knobs(self.target, force=True)
        time.sleep(self.knob_map.settle_ms / 1000.0)
        self._stream = _CallbackStream(
            "input", self.audio_in, self.callback, self.device_rate, self.hostapi
        )
        self.midi.send(self.knob_map.note_messages()[0])
        self.started_at = self.clock()
        self._spawn(self._block_loop, "live-block")
        self._spawn(self._agent_loop, "live-agent")

    def _stop_devices(self) -> None:
        """Panic and listen (is the synth silent?), panic again while it is not; close all.

        A synth that misses an audio period (an xrun) misses that period's MIDI too, so
        one panic can be lost; the messages are idempotent, so they are simply resent.
        """
        try:
            for attempt in range(1, STOP_PANICS + 1):
                self.panic()
                self.panics_sent = attempt
                if self._stream is None:
                    break
                self._tail = []
                time.sleep(AFTER_STOP_S)
                tail = np.concatenate(self._tail) if self._tail else np.zeros(0, np.float32)
                last = tail[len(tail) // 2 :]  # after the release (and amsynth's smoothing)
                self.after_stop_peak_dbfs = dbfs(last) if len(last) else None
                if self.after_stop_peak_dbfs is None or self.after_stop_peak_dbfs < SILENT_DBFS:
                    break
        finally:
            stream, self._stream = self._stream, None
            midi, self.midi = self.midi, None
            try:
                if stream is not None:
                    stream.close()
            finally:
                if midi is not None:
                    midi.close()  # panics again, lets it go out, closes the port
                if self.watchdog is not None:
                    self.watchdog.close()
                with contextlib.suppress(Exception):
                    atexit.unregister(self.panic)

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "device_rate": self.device_rate,
            "midi_out": self.midi_out,
            "audio_in": self.audio_in,
            "knob_map": self.knob_map.source,
            "dropped_frames": self.dropped_frames,
            "after_stop_peak_dbfs": self.after_stop_peak_dbfs,
            "panics_sent": self.panics_sent,
            "watchdog_pid": self.watchdog.pid if self.watchdog is not None else None,
            "watchdog_lost": self.watchdog_lost,
        }


def _default_map(core: BlockCore) -> str | None:
    from ddsp_gym.streaming import STREAM_PLANTS

    for name, cls in STREAM_PLANTS.items():
        if type(core.plant) is cls:
            return DEFAULT_KNOB_MAPS.get(name)
    return None


# ---- one call: build, run, stop on every path -------------------------------------------------


def open_session(
    env_id: str,
    backend: str = "sim",
    agent: str = "random-walk",
    out_dir: Path | None = None,
    seed: int = 0,
    audio_out: str | None = None,
    audio_in: str | None = DEFAULT_AUDIO_IN,
    midi_out: str = DEFAULT_MIDI_OUT,
    knob_map: str | None = None,
    hostapi: str | None = None,
    latency_blocks: int = DEFAULT_LATENCY_BLOCKS,
) -> LiveSession:
    """A session ready to ``start()`` (nothing sounds yet)."""
    if backend not in LIVE_BACKENDS:
        raise ValueError(f"--backend must be one of {LIVE_BACKENDS}, got {backend!r}")
    if backend == "plugin":
        raise NotImplementedError(
            "live mode's plugin backend is not supported yet (DawDreamer renders offline, "
            "faster than real time); use --backend sim, or hardware for the rig's synth"
        )
    core = BlockCore(env_id, seed=seed)
    the_agent = make_agent(agent, core, seed)
    if backend == "sim":

        def opener(callback, rate):
            return _CallbackStream("output", audio_out, callback, rate, hostapi)

        rate = device_rate(audio_out, "output", hostapi)
        return SimLive(core, the_agent, opener, rate, out_dir, latency_blocks)
    return HardwareLive(
        core, the_agent, out_dir, midi_out=midi_out, audio_in=audio_in,
        knob_map=knob_map, hostapi=hostapi,
    )  # fmt: skip


@contextlib.contextmanager
def _sigterm_stops(session: LiveSession):
    """SIGTERM asks ``session`` to stop (SIGINT raises KeyboardInterrupt, as ever).

    The handler only sets the session's stop flag, which the run loop checks: an
    exception raised at an arbitrary point of the main thread could land in some
    library's ``except Exception`` and be lost.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        session.request_stop(f"terminated (signal {signum})")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def run_session(
    session: LiveSession,
    seconds: float,
    on_tick: Callable[[LiveSession], None] | None = None,
    tick_s: float = 0.25,
) -> dict[str, Any]:
    """Start, run for ``seconds`` (or until Ctrl-C, SIGTERM or an error), stop -> summary.

    The session is stopped (the synth silenced, the files closed) on every path out.
    """
    if not seconds > 0:
        raise ValueError(f"seconds must be > 0, got {seconds}")
    with _sigterm_stops(session):
        try:
            session.start()
            end = time.monotonic() + seconds
            while not session.done and time.monotonic() < end:
                time.sleep(min(tick_s, max(0.0, end - time.monotonic())))
                if on_tick is not None:
                    on_tick(session)
            session.stop("time up")
        except KeyboardInterrupt:
            session.stop("interrupted (Ctrl-C)")
        finally:
            session.stop("error")
    summary = session.summary()
    summary["seconds_requested"] = seconds
    return summary


def run_live(env_id: str, seconds: float = 10.0, **options: Any) -> dict[str, Any]:
    """Play ``env_id`` live for ``seconds``: :func:`open_session`'s options -> the summary."""
    return run_session(open_session(env_id, **options), seconds)


# ---- reports and the terminal view ---------------------------------------------------------


def format_line(session: LiveSession) -> str:
    info = session.info()
    knobs = " ".join(f"{k}={v:.3g}" for k, v in info["knobs"].items())
    return f"block {info['block']:>5}  reward {info['reward']:+.3f}  xruns {info['xruns']}  {knobs}"


class TerminalView:
    """Knobs, reward and xruns: a rich table redrawn in place on a TTY, plain lines else."""

    def __init__(self, stream=None, plain_every_s: float = 1.0) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._live = None

    def __enter__(self) -> TerminalView:
        if self.tty:
            from rich.live import Live

            self._live = Live(refresh_per_second=8, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def _table(self, session: LiveSession):
        from rich.table import Table

        info = session.info()
        table = Table(title=f"{session.core.env_id} live ({session.backend})  Ctrl-C stops")
        table.add_column("knob")
        table.add_column("value", justify="right")
        table.add_column("bar")
        for spec in session.core.plant.knob_specs:
            value = info["knobs"][spec.name]
            unit = float(spec.to_unit(value))
            table.add_row(f"{spec.name} ({spec.unit})", f"{value:.4g}", "#" * round(20 * unit))
        table.add_row("reward", f"{info['reward']:+.3f}", "")
        for term, value in sorted(info.get("terms", {}).items()):
            if term not in ("peak", "loudness_db"):
                table.add_row(f"  {term}", f"{value:+.3f}", "")
        table.add_row("block", str(info["block"]), "")
        table.add_row(
            "xruns", str(info["xruns"]), f"late {info['late_blocks']} device {info['device_xruns']}"
        )
        return table

    def update(self, session: LiveSession) -> None:
        if self._live is not None:
            self._live.update(self._table(session))
            return
        now = time.monotonic()
        if now - self._last_plain >= self.plain_every_s:
            self._last_plain = now
            print(format_line(session), file=self.stream, flush=True)


def report_markdown(summary: dict[str, Any], command: str) -> str:
    """A short markdown report of one live session (results/live_rig.md)."""

    def row(name: str, value: Any) -> str:
        return f"| {name} | {value} |"

    after = summary.get("after_stop_peak_dbfs")
    lines = [
        f"# Live mode: {summary['env_id']} on the {summary['backend']} backend",
        "",
        f"Written by `{command}` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}).",
        "",
        "| what | value |",
        "|---|---|",
        row("seconds played", summary["seconds_played"]),
        row(
            "blocks",
            f"{summary['blocks']} x {summary['block_size']} samples at {summary['sample_rate']} Hz",
        ),  # fmt: skip
        row("device rate", f"{summary.get('device_rate')} Hz"),
        row("xruns (info['xruns'])", summary["xruns"]),
        row("  late blocks", summary["late_blocks"]),
        row("  device over/underruns", summary["device_xruns"]),
        row("jackd's logged xruns", summary["server_xruns"]),
        row(
            "machine load (1-min average, start / stop)",
            f"{summary['load_avg_1min_at_start']} / {summary['load_avg_1min_at_stop']} "
            f"on {summary['cpu_count']} cores",
        ),
        row(
            "mean reward per block",
            f"{summary['mean_reward']:.3f}" if summary["mean_reward"] is not None else "-",
        ),  # fmt: skip
        row(
            "agent targets posted / taken",
            f"{summary['targets_posted']} / {summary['targets_taken']}",
        ),  # fmt: skip
        row("stop", summary["stop_reason"]),
    ]
    if summary["backend"] == "hardware":
        lines += [
            row("synth, knob map", f"{summary['midi_out']}, {Path(summary['knob_map']).name}"),
            row("dropped capture frames", summary["dropped_frames"]),
            row(
                "synth peak 0.25-0.5 s after the stop",
                f"{after:.1f} dBFS" if after is not None else "-",
            ),  # fmt: skip
        ]
    if summary["errors"]:
        lines += ["", "Errors: " + "; ".join(summary["errors"])]
    return "\n".join(lines) + "\n"
