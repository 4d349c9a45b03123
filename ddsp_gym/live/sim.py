"""The sim backend: the block plant rendered live, block thread -> FIFO -> the output
callback (tested with a fake stream, no sound card needed).

Two live inputs join the block thread when given: an effect's audio (a
:class:`~ddsp_gym.live.inputs.CaptureInput`: one block taken from the input FIFO per
block rendered) and a beat to play along with (a
:class:`~ddsp_gym.live.clock.ClockTracker` fed by a MIDI clock: before each block the
task's clock is set to the tracker's tempo and phase, mapped to stream time).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.live.agents import Agent
from ddsp_gym.live.buffers import SampleFifo, StreamResampler
from ddsp_gym.live.clock import ClockEstimate, ClockTracker
from ddsp_gym.live.core import BlockCore
from ddsp_gym.live.inputs import CaptureInput
from ddsp_gym.live.session import LiveError, LiveSession, OutputStream, StreamOpener

DEFAULT_LATENCY_BLOCKS = 2  # blocks rendered ahead of the callback (128 ms at 16 kHz)


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
        capture: CaptureInput | None = None,
        beat: ClockTracker | None = None,
        clock_timeout_s: float = 5.0,
    ) -> None:
        super().__init__(core, agent, out_dir)
        if capture is not None and not core.plant.needs_input:
            raise ValueError(f"{core.env_id} is an instrument: it takes no audio input")
        if beat is not None and not core.follows_a_beat:
            raise ValueError(f"{core.env_id}'s task follows no beat: a clock is for JamPartner-v0")
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
        self.capture = capture
        self.beat = beat
        self.clock_timeout_s = clock_timeout_s
        self.beat_estimate: ClockEstimate | None = None
        self.beat_lost_blocks = 0  # blocks rendered on the last beat held, no clock heard
        self._anchor: float | None = None  # wall time at which stream time 0 is heard
        self.output_latency_s = 0.0

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
            # Lockstep (the live env): a stepping agent has until the FIFO would run dry,
            # less half a block for the render, to post this block's target.
            slack = self.fifo.available / self.device_rate - 0.5 * self.core.plant.block_seconds
            target = self._next_target(wait_s=slack if self._playing else 0.0)
            audio_in = None
            if self.capture is not None:
                audio_in = self.capture.read_block(timeout=self.capture.block_s)
            if self.beat is not None:
                self._follow_beat()
            if audio_in is None:
                audio, reward, info = self.core.render(target)
            else:
                audio, reward, info = self.core.render(target, audio_in)
            self.fifo.write(self.resampler.process(audio))
            self._played(audio, target, reward, info)
            self._work(time.perf_counter() - began)

    def _follow_beat(self) -> None:
        """Set the task's clock from the MIDI clock, in stream time as it will be heard.

        The block about to be rendered is heard after the FIFO's queued samples and the
        device's output latency: that fixes the wall time of stream time 0 (smoothed over
        blocks, as the callback's timing jitters). A beat heard at wall time B then lies
        at stream time B - anchor, and the task, which looks for onsets ``latency_s``
        before its beats, gets its grid shifted by ``latency_s`` to match: the output
        latency is the measured one, not the param's guess.
        """
        now = self.clock()
        heard_at = now + self.fifo.available / self.device_rate + self.output_latency_s
        anchor = heard_at - self.core.stream_time
        self._anchor = (
            anchor if self._anchor is None else self._anchor + 0.1 * (anchor - self._anchor)
        )
        estimate = self.beat.estimate(now)
        if estimate is None:
            self.beat_lost_blocks += self.beat_estimate is not None
            return  # hold the last beat (a flywheel) until the clock comes back
        self.beat_estimate = estimate
        beat_stream = estimate.beat_s - self._anchor + float(self.core.params.latency_s)
        self.core.set_beat(estimate.tempo_bpm, beat_stream)

    def start(self, prefill_timeout: float = 10.0) -> None:
        """Compile, fill the FIFO, then open the stream (the first callback finds blocks)."""
        self.core.warm_up(live_input=self.capture is not None)
        if self.beat is not None:
            from ddsp_gym.live.clock import wait_for_lock

            if wait_for_lock(self.beat, self.clock_timeout_s, self.clock) is None:
                self._fail(f"no MIDI clock received within {self.clock_timeout_s} s")
                raise LiveError(
                    f"no MIDI clock received within {self.clock_timeout_s} s: is the sender "
                    "running, connected to the --clock port, and sending clock (0xF8)?"
                )
        if self.capture is not None:
            self.capture.start()
        self._spawn(self._block_loop, "live-block")
        full = self.fifo.wait(
            lambda f: f.space < self.device_block or self._stop.is_set(), prefill_timeout
        )
        if self._stop.is_set():  # asked to stop (SIGTERM) before a sound was made
            return
        if not full:
            self._fail("the block thread did not fill the buffer in time")
            raise LiveError(self.errors[-1])
        with self._new_obs:  # and booked them (the FIFO is written first)
            self._new_obs.wait_for(
                lambda: self.blocks >= self.latency_blocks or self._stop.is_set(), 5.0
            )
        if self.agent is not None:
            self._spawn(self._agent_loop, "live-agent")
        self._playing = True
        self.started_at = self.clock()
        self._stream = self._open_stream(self.callback, self.device_rate)
        self.output_latency_s = float(getattr(self._stream, "latency", 0.0) or 0.0)

    def _stop_devices(self) -> None:
        self._playing = False
        stream, self._stream = self._stream, None
        try:
            if stream is not None:
                stream.close()
        finally:
            if self.capture is not None:
                self.capture.close()

    @property
    def input_xruns(self) -> int:
        return self.capture.xruns if self.capture is not None else 0

    def info(self) -> dict[str, Any]:
        info = super().info()
        if self.capture is not None:
            info["input_overruns"] = self.capture.overruns
            info["input_underruns"] = self.capture.underruns
        if self.beat is not None:
            info["clock"] = self._clock_info()
        return info

    def _clock_info(self) -> dict[str, Any]:
        est = self.beat_estimate
        locked = est is not None and self.beat.estimate(self.clock()) is not None
        return {
            "locked": locked,
            "tempo_bpm": round(est.tempo_bpm, 3) if est is not None else None,
            "ticks": est.ticks if est is not None else 0,
            "dropped_ticks": est.dropped_ticks if est is not None else 0,
            "jitter_ms": round(1e3 * est.jitter_s, 3) if est is not None else None,
            "lost_blocks": self.beat_lost_blocks,
        }

    def summary(self) -> dict[str, Any]:
        return {
            **super().summary(),
            "device_rate": self.device_rate,
            "latency_blocks": self.latency_blocks,
            "frames_played": self.frames_played,
            "output_latency_s": self.output_latency_s,
            **(
                {"input_overruns": self.capture.overruns, "input_underruns": self.capture.underruns}
                if self.capture is not None
                else {}
            ),
            **({"clock": self._clock_info()} if self.beat is not None else {}),
        }
