"""A Gymnasium env that steps live: ``LiveEnv("ddsp_gym/Drone-v0", backend="sim")``.

The same API as the offline streaming env, on a live session (:mod:`ddsp_gym.live.runner`):
``step(action)`` turns the action into knob targets exactly as the offline step does,
posts them to the block thread and returns the observation and reward of the block that
played them. The audio never waits for it: the block thread gives a stepping agent until
its deadline (the FIFO about to run dry) and otherwise holds the knobs, so an agent slower
than real time only gets fewer, later blocks (``info["held_blocks"]``); ``info["xruns"]``
counts what the sound card missed. ``reset()`` cannot rewind a sound that has played:
it silences the running session and starts a fresh stream (the offline reset's state
for the seed). ``close()`` stops and silences.

Why a wrapper and not ``gym.make(ID, backend="live")``: a registered env's ``backend`` says
*what makes the sound* (the JAX plant, a synth over MIDI, a plugin), which the offline
env renders as fast as it can. Live is *when*: a wall clock, threads and devices owned
by the env, a reset that cannot rewind. The wrapper takes the same id and plays that
env's own jitted block functions (:class:`~ddsp_gym.live.core.BlockCore`), so an agent
trained offline is stepped live unchanged (docs/streaming.md, "The live env").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from ddsp_gym.live.runner import check_clock_latency, make_core, open_session
from ddsp_gym.live.session import LiveError, LiveSession

LIVE_ENV_BACKENDS = ("sim", "hardware")


class LiveEnv(gym.Env[np.ndarray, np.ndarray]):
    """A streaming env played live, one block per step (see the module docstring).

    Args:
        env_id: a streaming id (``ddsp_gym/Drone-v0``, ``PerformerAssistant-v0``,
            ``JamPartner-v0``).
        backend: "sim" (the JAX plant out through the sound card) or "hardware" (the
            drone on the rig's synth over MIDI).
        audio_out: the sim's output device; "null" (default): no sound card, a clocked
            null output paces the stream in real time (tests, headless machines).
        step_timeout_s: how long ``step`` waits for its block before it raises.
        **options: :func:`ddsp_gym.live.runner.open_session`'s (``live_input``,
            ``clock``, ``latency_blocks``, ``hostapi``, ``out_dir``, ...).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        env_id: str,
        backend: str = "sim",
        audio_out: str | None = "null",
        step_timeout_s: float = 5.0,
        out_dir: Path | None = None,
        **options: Any,
    ) -> None:
        if backend not in LIVE_ENV_BACKENDS:
            raise ValueError(f"backend must be one of {LIVE_ENV_BACKENDS}, got {backend!r}")
        if not step_timeout_s > 0:
            raise ValueError(f"step_timeout_s must be > 0, got {step_timeout_s}")
        if "clock_latency_ms" in options:  # fail here, not at the first reset
            check_clock_latency(options["clock_latency_ms"])
        self.env_id, self.backend = env_id, backend
        self.step_timeout_s = step_timeout_s
        # Built and compiled once; each reset plays a fresh stream on it.
        self.core = make_core(env_id, options.get("live_input"))
        self._open = lambda: open_session(
            env_id, backend=backend, agent=None, audio_out=audio_out, out_dir=out_dir,
            core=self.core, **options,
        )  # fmt: skip
        self.session: LiveSession | None = None
        self.action_space = self.core.action_space
        self.observation_space = self.core.observation_space
        self.max_episode_steps = gym.spec(env_id).max_episode_steps
        self._knobs = self.core.knobs.copy()
        self._steps = 0
        self._block = 0

    # ---- gymnasium API --------------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._stop_session("reset")
        stream_seed = int(self.np_random.integers(0, 2**31 - 1)) if seed is None else seed
        self.core.reset(stream_seed)
        obs = self.core.observation()  # before a block plays: the offline reset's
        self.session = self._open()
        self.session.lockstep = True
        self._knobs = self.core.knobs.copy()
        self._steps = 0
        self.session.start()
        self._block = self.session.blocks  # the blocks rendered ahead at the start
        return obs, {"knobs": self.core.physical(self._knobs)}

    def step(self, action):
        session = self._require_session()
        target = self.core.target_after(self._knobs, action)  # raises on NaN, wrong shape
        seq = session.post(target)
        played = session.wait_played(seq, self.step_timeout_s)
        if played is None:
            reason = "; ".join(session.errors) or session.stop_reason or "no block in time"
            raise LiveError(
                f"the live stream did not play the action within {self.step_timeout_s} s ({reason})"
            )
        obs, reward, terms, block = played
        held = block - self._block - 1
        self._block = block
        self._knobs = target
        self._steps += 1
        info: dict[str, Any] = dict(terms)
        info.update(
            knobs=self.core.physical(target),
            xruns=session.xruns,
            held_blocks=held,
            block=block,
        )
        truncated = self.max_episode_steps is not None and self._steps >= self.max_episode_steps
        return np.asarray(obs, np.float32), float(reward), False, truncated, info

    def close(self) -> None:
        self._stop_session("closed")

    # ---- helpers ---------------------------------------------------------------------------

    def _require_session(self) -> LiveSession:
        if self.session is None:
            raise RuntimeError("call reset() before step()")
        if self.session.done:
            raise LiveError(
                f"the live session stopped: {self.session.stop_reason}; "
                + "; ".join(self.session.errors)
            )
        return self.session

    def _stop_session(self, reason: str) -> None:
        if self.session is not None:
            self.session.stop(reason)
