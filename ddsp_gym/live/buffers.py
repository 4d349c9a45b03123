"""Live mode's real-time plumbing, no JAX: the sample FIFO between the block thread and
the audio callback, the agent's one-slot target mailbox, a block-stream resampler, and
the peak level in dBFS."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

import numpy as np

FLOOR_DBFS = -120.0  # the level reported for digital silence


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
        self._cond = threading.Condition(threading.Lock())
        self._value: np.ndarray | None = None
        self.posted = 0
        self.taken = 0
        self.taken_seq = 0  # the ``posted`` count of the newest target taken (0: none yet)

    def put(self, target: np.ndarray) -> int:
        """Post a target; returns its sequence number (1, 2, ...)."""
        with self._cond:
            self._value = np.asarray(target, np.float32).copy()
            self.posted += 1
            self._cond.notify_all()
            return self.posted

    def take(self, wait_s: float = 0.0) -> np.ndarray | None:
        """The newest target not taken yet, or None (keep the last one).

        ``wait_s`` > 0: wait that long for one to be posted (the live env's lockstep:
        the block thread gives a stepping agent until its deadline, never longer).
        """
        with self._cond:
            if wait_s > 0.0 and self._value is None:
                self._cond.wait_for(lambda: self._value is not None, wait_s)
            value, self._value = self._value, None
            if value is not None:
                self.taken += 1
                self.taken_seq = self.posted
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
