"""The sim backend: the block plant rendered live, block thread -> FIFO -> the output
callback (tested with a fake stream, no sound card needed)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.live.agents import Agent
from ddsp_gym.live.buffers import SampleFifo, StreamResampler
from ddsp_gym.live.core import BlockCore
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
