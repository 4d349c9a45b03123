"""The ``code.json`` format: a versioned header plus the bit-packed knob tracks.

```json
{"format": "ddsp-gym-code", "version": 1, "plant": "harmonic_noise",
 "sample_rate": 16000, "frame_rate": 50, "n_samples": 16000, "n_frames": 51, "seed": 0,
 "knobs": ["f0", ...], "bits": [7, ...], "packing": "rice", "payload": "<base64>"}
```

``payload`` is the integer tracks, base64-encoded, packed as ``packing`` says: "fixed",
frame-major, each value in its knob's bits (most significant first,
:func:`ddsp_gym.coding.quantize.pack_bits`), or "rice", knob-major, first values and
Rice-coded changes (:func:`ddsp_gym.coding.quantize.rice_pack`). Frame
``t`` sits at sample ``t * sample_rate / frame_rate``; the decoder ramps the knobs linearly
between frames. :func:`read_code` checks every field and raises :class:`CodeFormatError`
naming the file and what is wrong with it.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ddsp_gym.coding.quantize import (
    MAX_BITS,
    pack_bits,
    packed_size,
    rice_pack,
    rice_size_bits,
    rice_unpack,
    unpack_bits,
)

FORMAT_NAME = "ddsp-gym-code"
FORMAT_VERSION = 1
# How the integer tracks are packed: "fixed" (each value in its knob's bits) or "rice"
# (each knob's first value, then its frame-to-frame changes Rice-coded: lossless, smaller
# for smooth tracks, variable rate).
PACKINGS = ("fixed", "rice")


class CodeFormatError(ValueError):
    """A code file that cannot be decoded: unreadable, corrupt or of another version."""


@dataclass(frozen=True)
class Code:
    """A decoded code file: header fields and the integer tracks (n_frames, n_knobs)."""

    plant: str
    sample_rate: int
    frame_rate: int
    n_samples: int
    seed: int
    knobs: tuple[str, ...]
    bits: tuple[int, ...]
    codes: np.ndarray
    packing: str = "fixed"

    @property
    def n_frames(self) -> int:
        return int(self.codes.shape[0])

    @property
    def hop(self) -> int:
        """Samples between frames."""
        return self.sample_rate // self.frame_rate

    @property
    def duration_s(self) -> float:
        return self.n_samples / self.sample_rate

    @property
    def payload_bytes(self) -> int:
        if self.packing == "rice":
            return -(-rice_size_bits(self.codes, self.bits) // 8)
        return packed_size(self.n_frames, self.bits)

    def payload(self) -> bytes:
        """The packed tracks."""
        pack = rice_pack if self.packing == "rice" else pack_bits
        return pack(self.codes, self.bits)

    @property
    def payload_bps(self) -> float:
        """Bits per second of the packed tracks (whole bytes), over the sound's length."""
        return 8.0 * self.payload_bytes / self.duration_s

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "plant": self.plant,
            "sample_rate": self.sample_rate,
            "frame_rate": self.frame_rate,
            "n_samples": self.n_samples,
            "n_frames": self.n_frames,
            "seed": self.seed,
            "knobs": list(self.knobs),
            "bits": list(self.bits),
            "packing": self.packing,
            "payload": base64.b64encode(self.payload()).decode("ascii"),
        }


def write_code(path: str | Path, code: Code) -> Path:
    """Write ``code`` as compact JSON (no spaces: the file's size is its bitrate)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(code.to_json(), separators=(",", ":")))
    return path


def _field(doc: dict[str, Any], name: str, kind: type, where: str) -> Any:
    if name not in doc:
        raise CodeFormatError(f"{where}: the field {name!r} is missing")
    value = doc[name]
    # bool is an int in Python; a true/false where a number belongs is corruption.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CodeFormatError(
            f"{where}: {name!r} should be {kind.__name__}, got {type(value).__name__}"
        )
    return value


def code_from_json(doc: Any, where: str = "code") -> Code:
    """Check a parsed code document field by field and return its :class:`Code`.

    Knob names are checked against the plant's by the decoder, which knows the plants.
    """
    if not isinstance(doc, dict):
        raise CodeFormatError(f"{where}: not a code file (a JSON object is expected)")
    if doc.get("format") != FORMAT_NAME:
        raise CodeFormatError(f"{where}: not a {FORMAT_NAME} file (format {doc.get('format')!r})")
    version = _field(doc, "version", int, where)
    if version != FORMAT_VERSION:
        raise CodeFormatError(
            f"{where}: format version {version}; this ddsp-gym reads version {FORMAT_VERSION}"
        )
    plant = _field(doc, "plant", str, where)
    sample_rate = _field(doc, "sample_rate", int, where)
    frame_rate = _field(doc, "frame_rate", int, where)
    n_samples = _field(doc, "n_samples", int, where)
    n_frames = _field(doc, "n_frames", int, where)
    seed = _field(doc, "seed", int, where)
    knobs = _field(doc, "knobs", list, where)
    bits = _field(doc, "bits", list, where)
    packing = _field(doc, "packing", str, where)
    payload_text = _field(doc, "payload", str, where)
    if packing not in PACKINGS:
        raise CodeFormatError(f"{where}: unknown packing {packing!r} (one of {PACKINGS})")
    if sample_rate <= 0 or frame_rate <= 0 or sample_rate % frame_rate:
        raise CodeFormatError(
            f"{where}: frame_rate {frame_rate} must divide sample_rate {sample_rate}"
        )
    if n_samples <= 0 or n_frames < 2:
        raise CodeFormatError(f"{where}: needs n_samples > 0 and n_frames >= 2")
    hop = sample_rate // frame_rate
    if not (n_frames - 2) * hop < n_samples <= (n_frames - 1) * hop:
        raise CodeFormatError(
            f"{where}: {n_frames} frames at {frame_rate}/s do not cover {n_samples} samples"
        )
    if not all(isinstance(k, str) for k in knobs) or len(set(knobs)) != len(knobs):
        raise CodeFormatError(f"{where}: 'knobs' should be distinct names")
    if len(bits) != len(knobs) or not all(
        isinstance(b, int) and not isinstance(b, bool) and 1 <= b <= MAX_BITS for b in bits
    ):
        raise CodeFormatError(
            f"{where}: 'bits' should hold one depth of 1..{MAX_BITS} per knob ({len(knobs)})"
        )
    try:
        payload = base64.b64decode(payload_text, validate=True)
    except (binascii.Error, ValueError):
        raise CodeFormatError(f"{where}: the payload is not valid base64") from None
    try:
        unpack = rice_unpack if packing == "rice" else unpack_bits
        codes = unpack(payload, n_frames, bits)
    except ValueError as err:
        raise CodeFormatError(f"{where}: {err}") from None
    return Code(
        plant, sample_rate, frame_rate, n_samples, seed, tuple(knobs), tuple(bits), codes, packing
    )


def read_code(path: str | Path) -> Code:
    """Load and check a code file; :class:`CodeFormatError` says what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise CodeFormatError(f"{path}: no such file")
    try:
        doc = json.loads(path.read_text())
    except UnicodeDecodeError:
        raise CodeFormatError(f"{path}: not a code file (not text)") from None
    except json.JSONDecodeError as err:
        raise CodeFormatError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    return code_from_json(doc, str(path))
