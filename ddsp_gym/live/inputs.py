"""Live audio input for an effect env (PerformerAssistant-v0): a sound card's input stream
whose callback only writes into a FIFO, and the block thread's side that takes one
block of it at a time, resampled to the plant's rate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ddsp_gym.live.buffers import SampleFifo, StreamResampler
from ddsp_gym.live.session import OutputStream, StreamOpener

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".aiff", ".aif")
FIFO_BLOCKS = 4  # capture held at most: a block thread this far behind drops input


def is_audio_file(spec: str) -> bool:
    """Does ``--input`` name a recording (played in real time) rather than a device?"""
    return Path(spec).suffix.lower() in AUDIO_SUFFIXES


class CaptureInput:
    """An input stream's samples, a block at a time, for the block thread.

    The input callback copies into a :class:`SampleFifo` and returns: it never waits.
    A full FIFO (the block thread fell :data:`FIFO_BLOCKS` behind) drops what does not
    fit and counts an **overrun**, as does the device's own overflow flag; a block not
    captured in time is zero-filled where short and counts an **underrun**. Both are
    xruns of the session (``info["xruns"]``).
    """

    def __init__(
        self,
        open_stream: StreamOpener,
        device_rate: int,
        sample_rate: int,
        block_size: int,
    ) -> None:
        self.device_rate = device_rate
        self.device_block = block_size * device_rate // sample_rate
        if self.device_block * sample_rate != block_size * device_rate:
            raise ValueError(
                f"a {block_size}-sample block at {sample_rate} Hz is not a whole number of "
                f"frames at the input device's {device_rate} Hz"
            )
        self.block_s = block_size / sample_rate
        self.fifo = SampleFifo(FIFO_BLOCKS * self.device_block)
        self.resampler = StreamResampler(device_rate, sample_rate)
        self._open_stream = open_stream
        self._stream: OutputStream | None = None
        self.overruns = 0
        self.underruns = 0
        self.frames_in = 0

    @property
    def xruns(self) -> int:
        return self.overruns + self.underruns

    def callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        """The input callback: copy into the FIFO. Never waits, never raises."""
        mono = indata.mean(axis=1) if indata.ndim == 2 else indata
        written = self.fifo.write(mono)
        self.frames_in += frames
        # One xrun per callback at most: ours (the FIFO was full) or else the device's.
        if written < frames or (status is not None and getattr(status, "input_overflow", False)):
            self.overruns += 1

    def start(self) -> None:
        self._stream = self._open_stream(self.callback, self.device_rate)

    def read_block(self, timeout: float) -> np.ndarray:
        """The next block at the plant's rate; waits up to ``timeout`` for it to arrive."""
        need = self.device_block
        self.fifo.wait(lambda f: f.available >= need, timeout)
        chunk = np.empty(need, np.float32)
        if self.fifo.read_into(chunk) < need:
            self.underruns += 1
        return self.resampler.process(chunk)

    def close(self) -> None:
        stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()
