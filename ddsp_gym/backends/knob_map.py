"""Knob maps: how each knob of a sim twin reaches a device (YAML, validated).

A map names, for every knob of the twin, the MIDI transport (7-bit CC, 14-bit
CC pair, NRPN, pitch bend or program change), its channel, the device values
at the knob's two ends and the curve between them. Unit knob positions are
quantized to the transport's resolution; :meth:`KnobMap.encode` returns the
messages, the device values actually sent and the unit positions they stand
for. A *plugin map* has the same schema with ``type: param``: the knob sets a
hosted plugin's parameter by its name (``parameter``) to a normalized value in
[0, 1], not quantized. The schema is documented in ``ddsp_gym/backends/README.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ddsp_gym.backends import midi
from ddsp_gym.backends.errors import KnobMapError
from ddsp_gym.knobs import KnobSpec

TRANSPORTS: dict[str, int] = {  # transport -> largest device value
    "param": 1,  # a plugin parameter: normalized value in [0, 1], continuous
    "cc": midi.MAX_7BIT,
    "cc14": midi.MAX_14BIT,
    "nrpn": midi.MAX_14BIT,
    "rpn": midi.MAX_14BIT,
    "pitch_bend": midi.MAX_14BIT,
    "program_change": midi.MAX_7BIT,
}
KNOB_TRANSPORTS = ("cc", "cc14", "nrpn", "pitch_bend", "program_change", "param")
MIDI_TRANSPORTS = tuple(t for t in TRANSPORTS if t != "param")
PLUGIN_TRANSPORT = "param"
CURVES = ("linear", "power", "table", "law")
LAW_KINDS = ("linear", "exponential", "power", "log10")

_TOP_KEYS = {
    "device",
    "description",
    "channel",
    "note",
    "settle_ms",
    "init",
    "knobs",
    "probe",
    "plugin",
}
_KNOB_KEYS = {
    "type",
    "number",
    "channel",
    "parameter",
    "range",
    "curve",
    "exponent",
    "points",
    "law",
    "fine",
}
_INIT_KEYS = {"type", "number", "channel", "parameter", "value", "fine"}
_LAW_KEYS = {"kind", "min", "max", "base", "offset", "scale"}


def _fail(where: str, message: str) -> KnobMapError:
    return KnobMapError(f"{where}: {message}")


def _int(value: Any, where: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or int(value) != value:
        raise _fail(where, f"expected an integer in [{low}, {high}], got {value!r}")
    if not low <= value <= high:
        raise _fail(where, f"{value} is out of range [{low}, {high}]")
    return int(value)


def _float(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(where, f"expected a finite number, got {value!r}")
    return float(value)


def _unknown_keys(raw: Mapping, allowed: set[str], where: str) -> None:
    extra = sorted(set(raw) - allowed)
    if extra:
        raise _fail(where, f"unknown field(s) {extra}; allowed: {sorted(allowed)}")


def value_limit(transport: str, fine: bool = True) -> int:
    """The largest device value of a transport: a coarse (``fine: false``) NRPN or RPN
    carries a 7-bit value (the data entry MSB), so its laws and ranges span 0..127."""
    if transport in ("nrpn", "rpn") and not fine:
        return midi.MAX_7BIT
    return TRANSPORTS[transport]


def _number_limit(transport: str) -> tuple[int, int] | None:
    """Valid controller/parameter numbers per transport (None: the transport has none)."""
    return {
        "cc": (0, 119),  # 120-127 are channel mode messages
        "cc14": (0, 31),
        "nrpn": (0, midi.MAX_14BIT),
        "rpn": (0, midi.MAX_14BIT),
    }.get(transport)


@dataclass(frozen=True)
class Law:
    """The device's own law from its value to the twin's physical unit.

    ``p = min + (max - min) * v / v_max`` is the device parameter for device value
    ``v``; the physical value is ``scale * (offset + g(p))`` with ``g(p)`` =
    ``base * p`` (linear), ``base ** p`` (exponential), ``p ** base`` (power) or
    ``base * log10(p)`` (log10, e.g. dB of a volume parameter).
    """

    kind: str
    min: float
    max: float
    base: float = 1.0
    offset: float = 0.0
    scale: float = 1.0

    def physical(self, v: np.ndarray, v_max: int) -> np.ndarray:
        p = self.min + (self.max - self.min) * np.asarray(v, np.float64) / v_max
        if self.kind == "linear":
            g = self.base * p
        elif self.kind == "exponential":
            g = np.power(self.base, p)
        elif self.kind == "power":
            g = np.power(np.maximum(p, 0.0), self.base)
        else:
            g = self.base * np.log10(np.maximum(p, 1e-12))
        return self.scale * (self.offset + g)

    def device_value(self, x: np.ndarray, v_max: int) -> np.ndarray:
        """Continuous device value (before rounding) for physical value(s) ``x``."""
        y = np.asarray(x, np.float64) / self.scale - self.offset
        if self.kind == "linear":
            p = y / self.base
        elif self.kind == "exponential":
            p = np.log(np.maximum(y, 1e-300)) / math.log(self.base)
        elif self.kind == "power":
            p = np.power(np.maximum(y, 0.0), 1.0 / self.base)
        else:
            p = np.power(10.0, y / self.base)
        return (p - self.min) / (self.max - self.min) * v_max


@dataclass(frozen=True)
class KnobMapping:
    """How one knob travels: transport, address, range of device values and curve."""

    name: str
    type: str
    number: int | None
    channel: int
    range: tuple[float, float]  # integers for MIDI transports; in [0, 1] for "param"
    curve: str = "linear"
    exponent: float = 1.0
    points: tuple[tuple[float, float], ...] = ()
    law: Law | None = None
    parameter: str | None = None
    fine: bool = True

    @property
    def v_max(self) -> int:
        return value_limit(self.type, self.fine)

    @property
    def quantized(self) -> bool:
        """MIDI values are integers; a plugin parameter takes any normalized float."""
        return self.type != PLUGIN_TRANSPORT

    def device_value(self, unit: float, spec: KnobSpec) -> int | float:
        """Unit position in [0, 1] -> the device value to send (an integer for MIDI)."""
        u = float(np.clip(unit, 0.0, 1.0))
        lo, hi = self.range
        if self.curve == "law":
            v = float(self.law.device_value(float(spec.to_physical(u)), self.v_max))
        elif self.curve == "table":
            us, vs = zip(*self.points, strict=True)
            v = float(np.interp(u, us, vs))
        else:
            fraction = u**self.exponent if self.curve == "power" else u
            v = lo + fraction * (hi - lo)
        if not self.quantized:
            return float(np.clip(v, min(lo, hi), max(lo, hi)))
        return int(np.clip(round(v), min(lo, hi), max(lo, hi)))

    def unit_of(self, value: int, spec: KnobSpec) -> float:
        """The unit position that device value ``value`` stands for (inverse of the curve)."""
        lo, hi = self.range
        if self.curve == "law":
            return float(spec.to_unit(float(self.law.physical(value, self.v_max))))
        if self.curve == "table":
            us, vs = zip(*self.points, strict=True)
            order = np.argsort(vs)
            return float(np.interp(value, np.asarray(vs)[order], np.asarray(us)[order]))
        fraction = float(np.clip((value - lo) / (hi - lo), 0.0, 1.0))
        return fraction ** (1.0 / self.exponent) if self.curve == "power" else fraction

    def messages(self, value: int) -> list[midi.Message]:
        """The MIDI messages that set this knob to device value ``value`` (none for a param)."""
        if self.type == PLUGIN_TRANSPORT:
            return []
        return transport_messages(self.type, self.channel, self.number, value, self.fine)


@dataclass(frozen=True)
class InitMessage:
    """A fixed setting sent when the device is opened and on every reset (the "init patch")."""

    type: str
    number: int | None
    channel: int
    value: int | float  # a float in [0, 1] for a plugin parameter ("param")
    parameter: str | None = None
    fine: bool = True

    def messages(self) -> list[midi.Message]:
        if self.type == PLUGIN_TRANSPORT:
            return []
        return transport_messages(self.type, self.channel, self.number, self.value, self.fine)


def transport_messages(
    transport: str, channel: int, number: int | None, value: int, fine: bool = True
) -> list[midi.Message]:
    if transport == "cc":
        return [midi.control_change(channel, number, value)]
    if transport == "cc14":
        return midi.control_change_14bit(channel, number, value)
    if transport == "nrpn":
        return midi.nrpn(channel, number, value, fine)
    if transport == "rpn":
        return midi.rpn(channel, number, value, fine)
    if transport == "pitch_bend":
        return [midi.pitch_bend(channel, value)]
    if transport == "program_change":
        return [midi.program_change(channel, value)]
    raise ValueError(f"unknown transport {transport!r}")


@dataclass(frozen=True)
class SentKnob:
    """What one knob turned into on the wire."""

    value: int | float  # the device value sent (a normalized float for a plugin parameter)
    unit: float  # the unit position that value stands for (the quantized knob)
    physical: float  # that unit position in the twin's physical unit


@dataclass(frozen=True)
class KnobMap:
    """A validated knob map. Build with :func:`load_knob_map` or :func:`parse_knob_map`."""

    device: str
    knobs: dict[str, KnobMapping]
    channel: int = 1
    note: int = 60
    velocity: int = 127
    settle_ms: float = 50.0
    init: tuple[InitMessage, ...] = ()
    probe: dict[str, float] = field(default_factory=dict)
    source: str = "<dict>"
    plugin: str | None = None  # plugin maps: the plugin file (a name or a path)

    @property
    def is_plugin_map(self) -> bool:
        """True when the knobs set plugin parameters by name (``type: param``), not MIDI."""
        return all(m.type == PLUGIN_TRANSPORT for m in self.knobs.values())

    def init_parameters(self) -> dict[str, float]:
        """Plugin maps: {parameter name: normalized value} of the init patch."""
        return {str(m.parameter): float(m.value) for m in self.init}

    def check_specs(self, specs: Sequence[KnobSpec]) -> None:
        """Every knob of the twin must be mapped, and nothing else."""
        names = [s.name for s in specs]
        missing = [n for n in names if n not in self.knobs]
        unknown = sorted(set(self.knobs) - set(names))
        if missing or unknown:
            raise KnobMapError(
                f"{self.source}: the map does not fit the twin's knobs {names}: "
                f"missing {missing}, unknown {unknown}"
            )
        bad_probe = sorted(set(self.probe) - set(names))
        if bad_probe:
            raise KnobMapError(f"{self.source}: probe names unknown knobs {bad_probe}")

    def init_messages(self) -> list[midi.Message]:
        return [m for item in self.init for m in item.messages()]

    def encode(
        self, unit_knobs: Sequence[float], specs: Sequence[KnobSpec]
    ) -> tuple[list[midi.Message], dict[str, SentKnob]]:
        """Unit knob positions (d,) in the twin's order -> (messages, what was sent per knob)."""
        self.check_specs(specs)
        unit_knobs = np.asarray(unit_knobs, np.float64).reshape(-1)
        if unit_knobs.shape[0] != len(specs):
            raise ValueError(f"expected {len(specs)} knob positions, got {unit_knobs.shape[0]}")
        messages: list[midi.Message] = []
        sent: dict[str, SentKnob] = {}
        for spec, u in zip(specs, unit_knobs, strict=True):
            mapping = self.knobs[spec.name]
            value = mapping.device_value(float(u), spec)
            unit = mapping.unit_of(value, spec)
            sent[spec.name] = SentKnob(value, unit, float(spec.to_physical(unit)))
            messages += mapping.messages(value)
        return messages, sent

    def quantize(self, unit_knobs: Sequence[float], specs: Sequence[KnobSpec]) -> np.ndarray:
        """The unit positions the device can actually reach nearest to ``unit_knobs``."""
        _, sent = self.encode(unit_knobs, specs)
        return np.array([sent[s.name].unit for s in specs], np.float32)

    def note_messages(self) -> tuple[midi.Message, midi.Message]:
        """(note on, note off) of the note each instrument-mode take plays."""
        return (
            midi.note_on(self.channel, self.note, self.velocity),
            midi.note_off(self.channel, self.note),
        )


# ---- parsing ---------------------------------------------------------------------------


def _unit_float(value: Any, where: str) -> float:
    v = _float(value, where)
    if not 0.0 <= v <= 1.0:
        raise _fail(where, f"a plugin parameter's normalized value lies in [0, 1], got {v}")
    return v


def _parse_range(raw: Any, where: str, v_max: int, continuous: bool = False) -> tuple:
    if raw is None:
        return (0, v_max)
    if not isinstance(raw, list | tuple) or len(raw) != 2:
        raise _fail(where, f"expected [low, high] device values, got {raw!r}")
    if continuous:
        lo, hi = _unit_float(raw[0], f"{where}[0]"), _unit_float(raw[1], f"{where}[1]")
    else:
        lo = _int(raw[0], f"{where}[0]", 0, v_max)
        hi = _int(raw[1], f"{where}[1]", 0, v_max)
    if lo == hi:
        raise _fail(where, "the two ends must differ")
    return (lo, hi)


def _parse_law(raw: Any, where: str) -> Law:
    if not isinstance(raw, Mapping):
        raise _fail(where, "expected a mapping with kind, min, max (and base, offset, scale)")
    _unknown_keys(raw, _LAW_KEYS, where)
    kind = raw.get("kind")
    if kind not in LAW_KINDS:
        raise _fail(f"{where}.kind", f"must be one of {LAW_KINDS}, got {kind!r}")
    for key in ("min", "max"):
        if key not in raw:
            raise _fail(where, f"lacks {key!r}")
    law = Law(
        kind=kind,
        min=_float(raw["min"], f"{where}.min"),
        max=_float(raw["max"], f"{where}.max"),
        base=_float(raw.get("base", 1.0), f"{where}.base"),
        offset=_float(raw.get("offset", 0.0), f"{where}.offset"),
        scale=_float(raw.get("scale", 1.0), f"{where}.scale"),
    )
    if law.max == law.min:
        raise _fail(where, "min and max must differ")
    if law.scale == 0 or (law.kind in ("linear", "log10") and law.base == 0):
        raise _fail(where, "scale and base must be non-zero")
    if law.kind == "exponential" and (law.base <= 0 or law.base == 1):
        raise _fail(f"{where}.base", "an exponential law needs base > 0 and != 1")
    if law.kind == "power" and law.base <= 0:
        raise _fail(f"{where}.base", "a power law needs base > 0")
    return law


def _parse_points(raw: Any, where: str, v_max: int) -> tuple[tuple[float, float], ...]:
    if not isinstance(raw, list) or len(raw) < 2:
        raise _fail(where, "a table curve needs at least two [unit, value] points")
    points = []
    for i, point in enumerate(raw):
        if not isinstance(point, list | tuple) or len(point) != 2:
            raise _fail(f"{where}[{i}]", f"expected [unit, value], got {point!r}")
        u = _float(point[0], f"{where}[{i}][0]")
        v = _float(point[1], f"{where}[{i}][1]")
        if not 0.0 <= u <= 1.0 or not 0 <= v <= v_max:
            raise _fail(f"{where}[{i}]", f"unit must be in [0, 1] and value in [0, {v_max}]")
        points.append((u, v))
    us = [p[0] for p in points]
    vs = np.diff([p[1] for p in points])
    if us[0] != 0.0 or us[-1] != 1.0 or np.any(np.diff(us) <= 0):
        raise _fail(where, "unit positions must rise strictly from 0 to 1")
    if not (np.all(vs > 0) or np.all(vs < 0)):
        raise _fail(where, "device values must be strictly monotonic (else it cannot be inverted)")
    return tuple(points)


def _parse_transport(raw: Mapping, where: str, kinds: Sequence[str]) -> tuple[str, int | None]:
    transport = raw.get("type")
    if transport not in kinds:
        raise _fail(f"{where}.type", f"must be one of {list(kinds)}, got {transport!r}")
    limits = _number_limit(transport)
    if limits is None:
        if "number" in raw:
            raise _fail(f"{where}.number", f"a {transport} message has no number")
        return transport, None
    if "number" not in raw:
        raise _fail(where, f"a {transport} mapping needs a 'number'")
    return transport, _int(raw["number"], f"{where}.number", *limits)


def _parse_knob(name: str, raw: Any, where: str, channel: int) -> KnobMapping:
    if not isinstance(raw, Mapping):
        raise _fail(where, "expected a mapping (type, number, range, curve, ...)")
    _unknown_keys(raw, _KNOB_KEYS, where)
    transport, number = _parse_transport(raw, where, KNOB_TRANSPORTS)
    fine = _parse_fine(raw, where, transport)
    v_max = value_limit(transport, fine)
    is_param = transport == PLUGIN_TRANSPORT
    if is_param:
        _check_param_fields(raw, where)
    curve = raw.get("curve", "law" if "law" in raw else "table" if "points" in raw else "linear")
    if curve not in CURVES:
        raise _fail(f"{where}.curve", f"must be one of {CURVES}, got {curve!r}")
    mapping = dict(
        name=name,
        type=transport,
        number=number,
        channel=_int(raw.get("channel", channel), f"{where}.channel", 1, 16),
        range=_parse_range(raw.get("range"), f"{where}.range", v_max, continuous=is_param),
        curve=curve,
        parameter=None if raw.get("parameter") is None else str(raw["parameter"]),
        fine=fine,
    )
    if curve == "power":
        exponent = _float(raw.get("exponent", 1.0), f"{where}.exponent")
        if exponent <= 0:
            raise _fail(f"{where}.exponent", "must be > 0")
        mapping["exponent"] = exponent
    elif "exponent" in raw:
        raise _fail(f"{where}.exponent", "only a power curve takes an exponent")
    if curve == "table":
        mapping["points"] = _parse_points(raw.get("points"), f"{where}.points", v_max)
    elif "points" in raw:
        raise _fail(f"{where}.points", "only a table curve takes points")
    if curve == "law":
        if "law" not in raw:
            raise _fail(where, "curve 'law' needs a 'law' mapping")
        mapping["law"] = _parse_law(raw["law"], f"{where}.law")
    elif "law" in raw:
        raise _fail(f"{where}.law", "a law needs curve: law")
    return KnobMapping(**mapping)


def _parse_fine(raw: Mapping, where: str, transport: str) -> bool:
    """``fine`` (default true): 14-bit NRPN/RPN data, else 7-bit (the data entry MSB)."""
    if "fine" not in raw:
        return True
    if transport not in ("nrpn", "rpn"):
        raise _fail(f"{where}.fine", f"only an NRPN or RPN is fine or coarse, not a {transport}")
    if not isinstance(raw["fine"], bool):
        raise _fail(f"{where}.fine", f"expected true or false, got {raw['fine']!r}")
    return raw["fine"]


def _check_param_fields(raw: Mapping, where: str) -> None:
    """A plugin parameter is addressed by its name alone: no channel, no fine/coarse."""
    name = raw.get("parameter")
    if not isinstance(name, str) or not name:
        raise _fail(
            f"{where}.parameter",
            "type: param needs 'parameter', the plugin parameter's name "
            "(`ddsp-gym plugin params PATH` lists them)",
        )
    extra = sorted({"channel", "fine"} & set(raw))
    if extra:
        raise _fail(where, f"a plugin parameter (type: param) takes no {extra}")


def _parse_init(raw: Any, where: str, channel: int) -> InitMessage:
    if not isinstance(raw, Mapping):
        raise _fail(where, "expected a mapping (type, number, value)")
    _unknown_keys(raw, _INIT_KEYS, where)
    transport, number = _parse_transport(raw, where, tuple(TRANSPORTS))
    if transport == PLUGIN_TRANSPORT:
        _check_param_fields(raw, where)
        if "value" not in raw:
            raise _fail(where, "lacks 'value'")
        return InitMessage(
            type=transport,
            number=None,
            channel=channel,
            value=_unit_float(raw["value"], f"{where}.value"),
            parameter=str(raw["parameter"]),
        )
    fine = _parse_fine(raw, where, transport)
    v_max = value_limit(transport, fine)
    if "value" not in raw:
        raise _fail(where, "lacks 'value'")
    return InitMessage(
        type=transport,
        number=number,
        channel=_int(raw.get("channel", channel), f"{where}.channel", 1, 16),
        value=_int(raw["value"], f"{where}.value", 0, v_max),
        parameter=None if raw.get("parameter") is None else str(raw["parameter"]),
        fine=fine,
    )


def parse_knob_map(document: Any, source: str = "<dict>") -> KnobMap:
    """Validate a parsed YAML document; every error names the file and the field."""
    if not isinstance(document, Mapping):
        raise _fail(source, "a knob map must be a mapping with at least 'knobs'")
    _unknown_keys(document, _TOP_KEYS, source)
    channel = _int(document.get("channel", 1), f"{source}: channel", 1, 16)
    note = document.get("note", {})
    if not isinstance(note, Mapping) or set(note) - {"number", "velocity"}:
        raise _fail(f"{source}: note", "expected {number: 0-127, velocity: 1-127}")
    knobs_raw = document.get("knobs")
    if not isinstance(knobs_raw, Mapping) or not knobs_raw:
        raise _fail(f"{source}: knobs", "expected a non-empty mapping of knob name -> mapping")
    knobs = {
        str(name): _parse_knob(str(name), raw, f"{source}: knobs.{name}", channel)
        for name, raw in knobs_raw.items()
    }
    init_raw = document.get("init", [])
    if not isinstance(init_raw, list):
        raise _fail(f"{source}: init", "expected a list of messages")
    probe = document.get("probe", {})
    if not isinstance(probe, Mapping):
        raise _fail(f"{source}: probe", "expected {knob name: unit position}")
    for name, u in probe.items():
        if not 0.0 <= _float(u, f"{source}: probe.{name}") <= 1.0:
            raise _fail(f"{source}: probe.{name}", "unit positions lie in [0, 1]")
    init = tuple(
        _parse_init(raw, f"{source}: init[{i}]", channel) for i, raw in enumerate(init_raw)
    )
    kinds = {m.type == PLUGIN_TRANSPORT for m in (*knobs.values(), *init)}
    if len(kinds) > 1:
        raise _fail(
            source,
            "mixes plugin parameters (type: param) with MIDI messages: a map drives either "
            "a plugin (every knob and init entry type: param) or a MIDI device (none)",
        )
    plugin = document.get("plugin")
    if plugin is not None and (not isinstance(plugin, str) or kinds != {True}):
        raise _fail(f"{source}: plugin", "names the plugin file of a plugin map (type: param)")
    addresses: dict[tuple, str] = {}
    for name, m in knobs.items():
        key = (m.type, m.parameter) if m.type == PLUGIN_TRANSPORT else (m.type, m.channel, m.number)
        if key in addresses:
            raise _fail(f"{source}: knobs.{name}", f"uses the same address as {addresses[key]!r}")
        addresses[key] = name
    settle = _float(document.get("settle_ms", 50.0), f"{source}: settle_ms")
    if settle < 0:
        raise _fail(f"{source}: settle_ms", "must be >= 0")
    return KnobMap(
        device=str(document.get("device", "unnamed device")),
        knobs=knobs,
        channel=channel,
        note=_int(note.get("number", 60), f"{source}: note.number", 0, 127),
        velocity=_int(note.get("velocity", 127), f"{source}: note.velocity", 1, 127),
        settle_ms=settle,
        init=init,
        probe={str(k): float(v) for k, v in probe.items()},
        source=source,
        plugin=plugin,
    )


def packaged_maps() -> list[str]:
    """Names of the maps shipped with ddsp_gym (``ddsp_gym/backends/maps/*.yaml``)."""
    folder = resources.files("ddsp_gym.backends") / "maps"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def map_path(name_or_path: str | Path) -> Path:
    """A packaged map name (``"amsynth"``, ``"maps/amsynth.yaml"``) or a file path -> its path."""
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = path.name[:-5] if path.name.endswith(".yaml") else path.name
    packaged = Path(str(resources.files("ddsp_gym.backends") / "maps" / f"{stem}.yaml"))
    if packaged.is_file():
        return packaged
    raise KnobMapError(
        f"no knob map {str(name_or_path)!r}: not a file, and not one of the packaged maps "
        f"{packaged_maps()}"
    )


def load_knob_map(source: str | Path | Mapping | KnobMap) -> KnobMap:
    """Load and validate a knob map from a file path, a packaged map name or a dict."""
    if isinstance(source, KnobMap):
        return source
    if isinstance(source, Mapping):
        return parse_knob_map(source)
    path = map_path(source)
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise KnobMapError(f"{path}: not valid YAML ({err})") from None
    return parse_knob_map(document, str(path))
