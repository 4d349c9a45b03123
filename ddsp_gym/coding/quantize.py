"""Knob tracks to integers and bits: uniform quantization in unit travel, bit allocation,
bit packing.

A knob's unit travel [0, 1] is cut into 2^b - 1 equal steps (b bits): the grid includes
both ends, so a knob at its stop is coded exactly. Log knobs (pitch, cutoff) are thereby
quantized in log frequency, which is how pitch error is heard.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

MAX_BITS = 16
# Extra bits over the base depth, by knob name: pitch error is heard at a few cents
# (8 extra bits over 40-1600 Hz give ~12 cents at base 1), levels at about 1 dB.
PITCH_KNOB_NAMES = ("f0", "pitch", "frequency", "carrier_hz")
LEVEL_KNOB_NAMES = ("harmonic_level", "noise_level", "level", "gain")
PITCH_EXTRA_BITS = 3
LEVEL_EXTRA_BITS = 1
NOISE_SHAPE_FEWER_BITS = 1  # noise band shapes: the ear resolves noise spectra coarsely


def knob_bits(knob_names: Sequence[str], base_bits: int) -> list[int]:
    """Bits per knob for a base depth: pitch +3, levels +1, noise shapes -1, in 1..16."""
    bits = []
    for name in knob_names:
        extra = 0
        if name in PITCH_KNOB_NAMES:
            extra = PITCH_EXTRA_BITS
        elif name in LEVEL_KNOB_NAMES:
            extra = LEVEL_EXTRA_BITS
        elif name.startswith("noise_"):
            extra = -NOISE_SHAPE_FEWER_BITS
        bits.append(int(np.clip(base_bits + extra, 1, MAX_BITS)))
    return bits


def payload_bits_per_second(bits: Sequence[int], frame_rate: float) -> float:
    """Bits per second of the integer tracks: one value per knob per frame."""
    return float(sum(bits)) * frame_rate


def bits_for_budget(knob_names: Sequence[str], frame_rate: float, kbps: float) -> list[int]:
    """The deepest allocation (:func:`knob_bits`) whose tracks fit ``kbps`` at ``frame_rate``.

    Raises ValueError when even one bit per knob is over budget, naming the least it takes.
    """
    if not kbps > 0:
        raise ValueError(f"--kbps must be positive, got {kbps}")
    best = None
    for base in range(1, MAX_BITS + 1):
        bits = knob_bits(knob_names, base)
        if payload_bits_per_second(bits, frame_rate) <= kbps * 1000.0:
            best = bits
    if best is None:
        least = payload_bits_per_second(knob_bits(knob_names, 1), frame_rate) / 1000.0
        raise ValueError(
            f"{kbps:g} kbps is below the least this plant takes at {frame_rate:g} frames/s "
            f"({least:.2f} kbps at 1 base bit); lower --frame-rate or raise --kbps"
        )
    return best


def quantize(unit: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """Unit knob tracks (T, d) in [0, 1] -> integers (T, d), knob j in 0 .. 2^bits[j] - 1."""
    levels = (1 << np.asarray(bits, np.int64)) - 1
    clipped = np.clip(np.asarray(unit, np.float64), 0.0, 1.0)
    return np.rint(clipped * levels).astype(np.int64)


def dequantize(codes: np.ndarray, bits: Sequence[int]) -> np.ndarray:
    """Integer tracks (T, d) -> unit knob positions (T, d) on the quantizer's grid."""
    levels = (1 << np.asarray(bits, np.int64)) - 1
    return (np.asarray(codes, np.float64) / levels).astype(np.float32)


def pack_bits(codes: np.ndarray, bits: Sequence[int]) -> bytes:
    """Integer tracks (T, d) -> bytes: frame after frame, knob after knob, each value in
    its bits[j] bits, most significant first; the last byte zero-padded."""
    codes = np.asarray(codes, np.int64)
    levels = (1 << np.asarray(bits, np.int64)) - 1
    if codes.ndim != 2 or codes.shape[1] != len(bits):
        raise ValueError(f"codes of shape {codes.shape} do not match {len(bits)} bit depths")
    if np.any(codes < 0) or np.any(codes > levels):
        raise ValueError("a code is outside its knob's bit depth")
    # Each value's bits, MSB first: shifts (max_bits-1 .. 0), then keep each knob's last b.
    shifts = np.arange(MAX_BITS - 1, -1, -1)
    all_bits = (codes[:, :, None] >> shifts) & 1  # (T, d, MAX_BITS)
    keep = shifts[None, :] < np.asarray(bits)[:, None]  # (d, MAX_BITS)
    stream = all_bits[:, keep].reshape(-1) if codes.size else np.zeros(0, np.int64)
    return np.packbits(stream.astype(np.uint8)).tobytes()


def packed_size(n_frames: int, bits: Sequence[int]) -> int:
    """Bytes that :func:`pack_bits` writes for ``n_frames`` frames."""
    return -(-n_frames * int(sum(bits)) // 8)


def unpack_bits(payload: bytes, n_frames: int, bits: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`pack_bits`: bytes -> integer tracks (n_frames, d).

    Raises ValueError when the payload's length is not what the frames and bits take."""
    expected = packed_size(n_frames, bits)
    if len(payload) != expected:
        raise ValueError(
            f"the payload holds {len(payload)} bytes; {n_frames} frames of "
            f"{sum(bits)} bits take {expected}"
        )
    total = n_frames * int(sum(bits))
    stream = np.unpackbits(np.frombuffer(payload, np.uint8))[:total].astype(np.int64)
    shifts = np.arange(MAX_BITS - 1, -1, -1)
    keep = shifts[None, :] < np.asarray(bits)[:, None]  # (d, MAX_BITS)
    all_bits = np.zeros((n_frames, len(bits), MAX_BITS), np.int64)
    all_bits[:, keep] = stream.reshape(n_frames, -1)
    return np.sum(all_bits << shifts, axis=-1)


# ---- Delta + Rice coding: smooth tracks cost fewer bits -------------------------------------

RICE_PARAM_BITS = 4  # each knob's Rice parameter k (0..15), stored before its track


def _zigzag(deltas: np.ndarray) -> np.ndarray:
    """Signed -> unsigned: 0, -1, 1, -2, 2 ... -> 0, 1, 2, 3, 4 ..."""
    return np.where(deltas >= 0, 2 * deltas, -2 * deltas - 1)


def _unzigzag(values: np.ndarray) -> np.ndarray:
    return np.where(values % 2 == 0, values // 2, -(values + 1) // 2)


def _rice_param(values: np.ndarray) -> tuple[int, int]:
    """(best k, total bits of ``values`` Rice-coded with it): each value costs
    (v >> k) + 1 + k bits (quotient in unary, a stop bit, k low bits)."""
    costs = [int(np.sum((values >> k) + 1 + k)) for k in range(1 << RICE_PARAM_BITS)]
    best = int(np.argmin(costs))
    return best, costs[best]


def rice_size_bits(codes: np.ndarray, bits: Sequence[int]) -> int:
    """Bits :func:`rice_pack` writes for integer tracks (T, d), before byte padding."""
    total = 0
    for j, b in enumerate(bits):
        track = np.asarray(codes[:, j], np.int64)
        total += RICE_PARAM_BITS + b + _rice_param(_zigzag(np.diff(track)))[1]
    return total


def rice_pack(codes: np.ndarray, bits: Sequence[int]) -> bytes:
    """Integer tracks (T, d) -> bytes, knob after knob: its Rice parameter k (4 bits), its
    first value in bits[j] bits, then each frame-to-frame change, zigzagged, as a Rice
    code (quotient in unary ones, a zero, k low bits). Lossless; a smooth track's
    changes are small, so it costs well under bits[j] a frame."""
    codes = np.asarray(codes, np.int64)
    levels = (1 << np.asarray(bits, np.int64)) - 1
    if codes.ndim != 2 or codes.shape[1] != len(bits) or codes.shape[0] < 1:
        raise ValueError(f"codes of shape {codes.shape} do not match {len(bits)} bit depths")
    if np.any(codes < 0) or np.any(codes > levels):
        raise ValueError("a code is outside its knob's bit depth")
    out: list[int] = []
    for j, b in enumerate(bits):
        values = _zigzag(np.diff(codes[:, j]))
        k, _ = _rice_param(values)
        out += [(k >> s) & 1 for s in range(RICE_PARAM_BITS - 1, -1, -1)]
        out += [(int(codes[0, j]) >> s) & 1 for s in range(b - 1, -1, -1)]
        for v in values.tolist():
            out += [1] * (v >> k) + [0] + [(v >> s) & 1 for s in range(k - 1, -1, -1)]
    return np.packbits(np.asarray(out, np.uint8)).tobytes()


def rice_unpack(payload: bytes, n_frames: int, bits: Sequence[int]) -> np.ndarray:
    """Inverse of :func:`rice_pack`. Raises ValueError when the payload ends early, a
    value leaves its knob's range, or bytes are left over past the padding."""
    stream = np.unpackbits(np.frombuffer(payload, np.uint8)).tolist()
    pos = 0

    def read(n: int) -> int:
        nonlocal pos
        if pos + n > len(stream):
            raise ValueError("the payload ends inside a track")
        value = 0
        for bit in stream[pos : pos + n]:
            value = (value << 1) | bit
        pos += n
        return value

    codes = np.zeros((n_frames, len(bits)), np.int64)
    for j, b in enumerate(bits):
        k = read(RICE_PARAM_BITS)
        codes[0, j] = read(b)
        deltas = []
        for _ in range(n_frames - 1):
            try:
                stop = stream.index(0, pos)
            except ValueError:
                raise ValueError("the payload ends inside a track") from None
            quotient, pos = stop - pos, stop + 1
            deltas.append((quotient << k) | read(k))
        codes[1:, j] = codes[0, j] + np.cumsum(_unzigzag(np.asarray(deltas, np.int64)))
        if np.any(codes[:, j] < 0) or np.any(codes[:, j] >= 1 << b):
            raise ValueError(f"track {j} leaves its {b}-bit range")
    if len(stream) - pos >= 8:
        raise ValueError(f"{(len(stream) - pos) // 8} bytes follow the last track")
    return codes


def rice_bits_for_budget(
    knob_names: Sequence[str], unit: np.ndarray, seconds: float, kbps: float
) -> list[int]:
    """The deepest allocation (:func:`knob_bits`) whose Rice-packed tracks of ``unit``
    (T, d) fit ``kbps`` over ``seconds`` (whole bytes): a variable-rate budget, met by
    this sound's payload. Raises ValueError naming what one base bit takes."""
    if not kbps > 0:
        raise ValueError(f"--kbps must be positive, got {kbps}")
    best, least = None, None
    for base in range(1, MAX_BITS + 1):
        bits = knob_bits(knob_names, base)
        size = 8 * -(-rice_size_bits(quantize(unit, bits), bits) // 8)
        least = size if least is None else least
        if size <= kbps * 1000.0 * seconds:
            best = bits
    if best is None:
        raise ValueError(
            f"{kbps:g} kbps is below what this sound's tracks take at 1 base bit "
            f"({least / seconds / 1000.0:.2f} kbps); lower --frame-rate or raise --kbps"
        )
    return best
