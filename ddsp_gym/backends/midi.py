"""MIDI out with python-rtmidi: message encoders (pure) and an output port with a panic button.

Channels are 1-16 as printed on gear; the encoders return raw byte lists, one
list per MIDI message, ready for ``rtmidi.MidiOut.send_message``.

References: MIDI 1.0 Detailed Specification (MMA, 1996): channel voice
messages, 14-bit controllers (MSB at CC n, LSB at CC n + 32 for n < 32),
registered/non-registered parameter numbers (CC 101/100 and 99/98, data entry
CC 6/38, "null" parameter 127/127), channel mode messages (CC 120 all sound
off, 121 reset all controllers, 123 all notes off).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence

from ddsp_gym.backends import ownership
from ddsp_gym.backends.errors import (
    HARDWARE_EXTRA_HINT,
    HardwareDependencyError,
    HardwareError,
    MidiPortNotFoundError,
)

Message = list[int]

MAX_7BIT = 127
MAX_14BIT = 16383
PITCH_BEND_CENTER = 8192

CC_DATA_ENTRY_MSB = 6
CC_DATA_ENTRY_LSB = 38
CC_NRPN_LSB = 98
CC_NRPN_MSB = 99
CC_RPN_LSB = 100
CC_RPN_MSB = 101
CC_ALL_SOUND_OFF = 120
CC_RESET_ALL_CONTROLLERS = 121
CC_ALL_NOTES_OFF = 123

# API names accepted by the backend -> python-rtmidi API constant names.
MIDI_APIS: dict[str, str] = {
    "auto": "API_UNSPECIFIED",
    "alsa": "API_LINUX_ALSA",
    "jack": "API_UNIX_JACK",
    "coremidi": "API_MACOSX_CORE",
    "winmm": "API_WINDOWS_MM",
}


# ---- encoders -------------------------------------------------------------------------


def _check(value: int, low: int, high: int, what: str) -> int:
    if isinstance(value, bool) or int(value) != value or not low <= value <= high:
        raise ValueError(f"{what} must be an integer in [{low}, {high}], got {value!r}")
    return int(value)


def _status(kind: int, channel: int) -> int:
    return kind | (_check(channel, 1, 16, "MIDI channel") - 1)


def note_on(channel: int, note: int, velocity: int) -> Message:
    return [_status(0x90, channel), _check(note, 0, 127, "note"), _check(velocity, 1, 127, "vel")]


def note_off(channel: int, note: int, velocity: int = 0) -> Message:
    return [_status(0x80, channel), _check(note, 0, 127, "note"), _check(velocity, 0, 127, "vel")]


def control_change(channel: int, number: int, value: int) -> Message:
    """One 7-bit controller message (CC ``number`` 0-127, ``value`` 0-127)."""
    return [
        _status(0xB0, channel),
        _check(number, 0, 127, "CC number"),
        _check(value, 0, MAX_7BIT, "CC value"),
    ]


def control_change_14bit(channel: int, number: int, value: int) -> list[Message]:
    """A 14-bit controller: MSB on CC ``number`` (0-31), then LSB on CC ``number + 32``."""
    number = _check(number, 0, 31, "14-bit CC number (the MSB controller)")
    value = _check(value, 0, MAX_14BIT, "14-bit CC value")
    return [
        control_change(channel, number, value >> 7),
        control_change(channel, number + 32, value & 0x7F),
    ]


def _parameter_number(
    channel: int, msb_cc: int, lsb_cc: int, parameter: int, value: int, fine: bool
) -> list[Message]:
    """Select ``parameter``, set it so that every receiver gets the exact value, deselect.

    Receivers differ in when a data entry takes effect: many (FluidSynth among them)
    apply the value at the MSB (CC 6), combined with the LSB (CC 38) they last
    received; others apply at the LSB, with the MSB they last received. The MIDI
    1.0 order, MSB then LSB, gives the first kind the *previous* value's LSB, so the
    same knob value sounded different after different histories. Here the data goes
    out as LSB, MSB, then the parameter number again and the LSB again: the MSB
    arrives with this value's LSB already stored, and the last LSB arrives with
    this value's MSB stored, so both kinds end at the exact value (the first LSB
    may briefly apply a mixed value to an LSB receiver, before the note plays).
    The number is re-sent because some receivers forget the selection once a value
    is applied (FluidSynth resets it to 0), so the last LSB would otherwise land on
    another parameter. A coarse (``fine=False``) 7-bit value is the MSB with LSB 0,
    sent the same way. Finally the null parameter (127/127) is selected, so a stray
    data entry changes nothing.
    """
    parameter = _check(parameter, 0, MAX_14BIT, "parameter number")
    value = _check(value, 0, MAX_14BIT if fine else MAX_7BIT, "parameter value")
    data = value if fine else value << 7
    select = [
        control_change(channel, msb_cc, parameter >> 7),
        control_change(channel, lsb_cc, parameter & 0x7F),
    ]
    lsb = control_change(channel, CC_DATA_ENTRY_LSB, data & 0x7F)
    msb = control_change(channel, CC_DATA_ENTRY_MSB, data >> 7)
    deselect = [
        control_change(channel, CC_RPN_MSB, 127),
        control_change(channel, CC_RPN_LSB, 127),
    ]
    return [*select, lsb, msb, *select, lsb, *deselect]


def nrpn(channel: int, parameter: int, value: int, fine: bool = True) -> list[Message]:
    """NRPN ``parameter`` := ``value`` (14-bit; 7-bit when not ``fine``).

    ``parameter`` is the 14-bit number (MSB << 7) | LSB, sent as CC 99 (MSB) and CC 98
    (LSB): a manual's "NRPN MSB 120, LSB 8" is parameter 120 * 128 + 8 = 15368. The
    data is sent as described in :func:`_parameter_number`.
    """
    return _parameter_number(channel, CC_NRPN_MSB, CC_NRPN_LSB, parameter, value, fine)


def rpn(channel: int, parameter: int, value: int, fine: bool = True) -> list[Message]:
    """Registered parameter (e.g. 0 = pitch-bend range: coarse value in semitones)."""
    return _parameter_number(channel, CC_RPN_MSB, CC_RPN_LSB, parameter, value, fine)


def pitch_bend(channel: int, value: int) -> Message:
    """Pitch bend, ``value`` 0-16383 with 8192 = no bend (LSB first on the wire)."""
    value = _check(value, 0, MAX_14BIT, "pitch-bend value")
    return [_status(0xE0, channel), value & 0x7F, value >> 7]


def program_change(channel: int, program: int) -> Message:
    return [_status(0xC0, channel), _check(program, 0, 127, "program number")]


def all_sound_off(channel: int) -> Message:
    return control_change(channel, CC_ALL_SOUND_OFF, 0)


def reset_all_controllers(channel: int) -> Message:
    """Pitch bend to centre, modulation and pedals off (MMA RP-015)."""
    return control_change(channel, CC_RESET_ALL_CONTROLLERS, 0)


def all_notes_off(channel: int) -> Message:
    return control_change(channel, CC_ALL_NOTES_OFF, 0)


def panic_messages(channels: Iterable[int] = range(1, 17)) -> list[Message]:
    """All notes off, then all sound off, on every channel (silences any conforming synth)."""
    out = []
    for channel in channels:
        out += [all_notes_off(channel), all_sound_off(channel)]
    return out


# ---- ports ----------------------------------------------------------------------------


def import_rtmidi():
    """python-rtmidi, or a clear error naming the extra to install."""
    try:
        import rtmidi
    except ImportError as err:
        raise HardwareDependencyError(
            f"the hardware backend needs python-rtmidi ({err}); {HARDWARE_EXTRA_HINT}"
        ) from None
    return rtmidi


def api_name(rtapi: int) -> str:
    rtmidi = import_rtmidi()
    for name, constant in MIDI_APIS.items():
        if getattr(rtmidi, constant, None) == rtapi:
            return name
    return f"api#{rtapi}"


def _candidate_apis(api: str) -> list[int]:
    if api not in MIDI_APIS:
        raise ValueError(f"unknown MIDI API {api!r}; choose one of {sorted(MIDI_APIS)}")
    rtmidi = import_rtmidi()
    compiled = list(rtmidi.get_compiled_api())
    if api == "auto":
        return compiled
    constant = getattr(rtmidi, MIDI_APIS[api], None)
    if constant not in compiled:
        names = [api_name(c) for c in compiled]
        raise HardwareError(
            f"MIDI API {api!r} is not compiled into this python-rtmidi (available: {names})"
        )
    return [constant]


def _probe(rtapi: int, client_name: str) -> tuple[object | None, list[str], str | None]:
    """(a MidiOut on ``rtapi`` or None, its port names, an error text if the API is down)."""
    rtmidi = import_rtmidi()
    try:
        out = rtmidi.MidiOut(rtapi=rtapi, name=client_name)
        return out, list(out.get_ports()), None
    except (rtmidi.RtMidiError, SystemError, RuntimeError) as err:
        return None, [], str(err) or type(err).__name__


def list_midi_outputs(api: str = "auto") -> dict[str, list[str] | str]:
    """{API name: its output port names, or the reason the API is unavailable}."""
    listing: dict[str, list[str] | str] = {}
    for rtapi in _candidate_apis(api):
        out, ports, error = _probe(rtapi, "ddsp_gym-list")
        listing[api_name(rtapi)] = ports if error is None else f"unavailable ({error})"
        if out is not None:
            out.delete()
    return listing


def match_port(wanted: str, ports: Sequence[str]) -> int | None:
    """Index of ``wanted`` in ``ports``: exact name first, else a unique case-insensitive
    substring (ALSA adds client:port numbers to names). Ambiguity is an error."""
    if wanted in ports:
        return list(ports).index(wanted)
    hits = [i for i, p in enumerate(ports) if wanted.lower() in p.lower()]
    if len(hits) > 1:
        raise MidiPortNotFoundError(
            f"MIDI port {wanted!r} is ambiguous; it matches {[ports[i] for i in hits]}"
        )
    return hits[0] if hits else None


def _format_listing(listing: dict[str, list[str] | str]) -> str:
    lines = []
    for name, ports in listing.items():
        shown = ports if isinstance(ports, str) else (", ".join(map(repr, ports)) or "(none)")
        lines.append(f"  {name}: {shown}")
    return "\n".join(lines)


class _Port:
    """An open rtmidi output and the notes it holds; what :mod:`ownership` keeps alive.

    Separate from :class:`MidiOutput` so that a dropped ``MidiOutput`` can be
    collected while its port waits, still open, to be silenced and closed on a
    Python thread.
    """

    is_midi = True

    def __init__(self, out, name: str) -> None:
        self.out = out
        self.name = name
        self.held: set[tuple[int, int]] = set()
        self.lock = threading.Lock()
        self.closed = False

    def __repr__(self) -> str:
        return f"<MIDI port {self.name!r}>"

    def send(self, message: Message) -> None:
        status = message[0] & 0xF0
        key = ((message[0] & 0x0F) + 1, message[1]) if status in (0x80, 0x90) else None
        with self.lock:
            if self.closed:
                raise HardwareError(f"MIDI port {self.name!r} is closed")
            self.out.send_message(message)
            if key is not None:
                if status == 0x90 and message[2] > 0:
                    self.held.add(key)
                else:
                    self.held.discard(key)

    def panic(self) -> None:
        """Note-off for every held note, then all notes off and all sound off everywhere.

        Best effort: a port that has gone away is not an error here (panic runs on
        the way out of other errors).
        """
        with self.lock:
            if self.closed:
                return
            messages = [note_off(ch, note) for ch, note in sorted(self.held)]
            try:
                for message in messages + panic_messages():
                    self.out.send_message(message)
            except Exception:  # noqa: BLE001 - the port may be gone; silencing must not raise
                pass
            self.held.clear()

    def ports(self) -> list[str] | None:
        """Every output port the API lists now (None if the API does not answer)."""
        with self.lock:
            if self.closed:
                return None
            try:
                return list(self.out.get_ports())
            except Exception:  # noqa: BLE001 - an API whose server died answers nothing
                return None

    def close(self, flush_s: float = 0.1) -> None:
        """Silence, let the silence go out, close. Idempotent.

        Some APIs (rtmidi over JACK) queue messages until the next audio period and
        drop what is still queued when the port closes, so the panic gets
        ``flush_s`` seconds (a few periods) to go out first.
        """
        if self.closed:
            return
        self.panic()
        time.sleep(flush_s)
        with self.lock:
            self.closed = True
            try:
                self.out.close_port()
            finally:
                self.out.delete()
        ownership.release(self)


class MidiOutput:
    """An open MIDI output port that remembers held notes and can always be silenced.

    ``close()`` it (or use it as a context manager); one dropped without closing is
    silenced and closed on the next device operation of a Python thread, or at exit
    (:mod:`ddsp_gym.backends.ownership`).

    Args:
        port: the port to open, as listed by :func:`list_midi_outputs` (exact
            name or a unique substring).
        api: "auto" (first compiled API that has the port), "alsa", "jack",
            "coremidi" or "winmm".
        client_name: this program's MIDI client name (JACK/ALSA show it).
    """

    def __init__(self, port: str, api: str = "auto", client_name: str = "ddsp_gym") -> None:
        self.wanted = port
        self.api = api
        self.client_name = client_name
        self.port_name: str | None = None
        self.rtapi: int | None = None
        self._port: _Port | None = None
        self._finalizer = None
        self.open()

    def __enter__(self) -> MidiOutput:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def open(self) -> None:
        """(Re)open the port; raises :class:`MidiPortNotFoundError` listing the real ports."""
        ownership.reap()
        self._close_port(flush_s=0.0)
        listing: dict[str, list[str] | str] = {}
        for rtapi in _candidate_apis(self.api):
            out, ports, error = _probe(rtapi, self.client_name)
            listing[api_name(rtapi)] = ports if error is None else f"unavailable ({error})"
            index = match_port(self.wanted, ports) if error is None else None
            if index is not None:
                out.open_port(index, "out")
                self.port_name, self.rtapi = ports[index], rtapi
                self._port = _Port(out, ports[index])
                self._finalizer = ownership.adopt(self, self._port)
                return
            if out is not None:
                out.delete()
        raise MidiPortNotFoundError(
            f"no MIDI output port {self.wanted!r} (api={self.api}). Ports that exist:\n"
            + _format_listing(listing)
        )

    @property
    def is_open(self) -> bool:
        return self._port is not None

    def port_exists(self) -> bool:
        """Is the port we opened still listed (the device may have gone away)?

        Asks the open client (cheap enough for every take); a closed one asks a
        fresh probe client.
        """
        if self.rtapi is None or self.port_name is None:
            return False
        ports = self._port.ports() if self._port is not None else None
        if ports is None:
            out, ports, error = _probe(self.rtapi, f"{self.client_name}-probe")
            if out is not None:
                out.delete()
            if error is not None:
                return False
        return self.port_name in ports

    def send(self, message: Message) -> None:
        port = self._port
        if port is None:
            raise HardwareError(f"MIDI port {self.wanted!r} is closed")
        port.send(message)

    def send_all(self, messages: Iterable[Message]) -> None:
        for message in messages:
            self.send(message)

    @property
    def held_notes(self) -> frozenset[tuple[int, int]]:
        """(channel, note) pairs switched on and not yet off."""
        return frozenset(self._port.held) if self._port is not None else frozenset()

    def panic(self) -> None:
        """Note-off for every held note, then all notes off and all sound off on every channel.

        Best effort: never raises.
        """
        if self._port is not None:
            self._port.panic()

    def _close_port(self, flush_s: float) -> None:
        port, self._port = self._port, None
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None
        if port is not None:
            port.close(flush_s)

    def close(self, flush_s: float = 0.1) -> None:
        """Silence everything we may have started, then close the port (see ``_Port.close``)."""
        self._close_port(flush_s)
        ownership.reap()
