"""What was measured of each device set-up, kept between runs in one JSON file.

The file (``~/.cache/ddsp_gym/latency.json``, or the hardware option
``latency_store``) maps a set-up key (mode, ports, devices, rate, block size,
knob map: :meth:`HardwareBackend.store_key`) to an entry:

* ``frames``, ``ms``, ``samplerate``, ``measured``: the round-trip latency, measured
  when a backend first opens the set-up (or by ``ddsp-gym hw calibrate``);
* ``input_noise_dbfs``: the input's RMS level with no note playing, and
  ``level_offset_db``: the device's RMS minus its twin's at mid knobs (both from
  ``hw calibrate``; the take checks use them to call a leaking, far too quiet take
  silent);
* ``take_noise``: ``{task key: {...}}``, the distance between repeated takes of one
  setting in each task's unit (``hw calibrate``; the success rule uses it).

A missing or unreadable file is an empty store; a read-only one only costs a new
measurement next time.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def default_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ddsp_gym" / "latency.json"


def read_table(path: Path) -> dict[str, Any]:
    try:
        table = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def read_entry(path: Path, key: str) -> dict[str, Any]:
    """The set-up's entry ({} if none)."""
    entry = read_table(path).get(key)
    return entry if isinstance(entry, dict) else {}


def merge(entry: dict[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """``entry`` updated by ``fields``; mappings (``take_noise``) are merged key by key."""
    merged = dict(entry)
    for name, value in fields.items():
        if isinstance(value, dict) and isinstance(merged.get(name), dict):
            merged[name] = {**merged[name], **value}
        else:
            merged[name] = value
    return merged


def update_entry(path: Path, key: str, **fields: Any) -> None:
    """Merge ``fields`` into the set-up's entry and write the file back."""
    table = read_table(path)
    table[key] = merge(table.get(key) or {}, fields)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(table, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only home only costs a re-measurement next time
