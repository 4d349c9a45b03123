"""MIDI message encoding against the MIDI 1.0 specification, and port-name matching."""

from __future__ import annotations

import numpy as np
import pytest

from ddsp_gym.backends import midi
from ddsp_gym.backends.errors import MidiPortNotFoundError
from tests.conftest import require


def test_channel_voice_messages():
    assert midi.note_on(1, 60, 100) == [0x90, 60, 100]
    assert midi.note_off(16, 60) == [0x8F, 60, 0]
    assert midi.control_change(10, 74, 127) == [0xB9, 74, 127]
    assert midi.program_change(2, 5) == [0xC1, 5]


def test_pitch_bend_sends_lsb_first_and_centres_at_8192():
    assert midi.pitch_bend(1, 8192) == [0xE0, 0x00, 0x40]
    assert midi.pitch_bend(1, 0) == [0xE0, 0x00, 0x00]
    assert midi.pitch_bend(1, 16383) == [0xE0, 0x7F, 0x7F]
    assert midi.pitch_bend(1, 300) == [0xE0, 300 & 0x7F, 300 >> 7]


def test_14bit_controller_pairs_msb_with_lsb_on_cc_plus_32():
    assert midi.control_change_14bit(1, 1, 10000) == [[0xB0, 1, 78], [0xB0, 33, 16]]
    assert 78 * 128 + 16 == 10000
    with pytest.raises(ValueError, match="14-bit CC number"):
        midi.control_change_14bit(1, 40, 0)


def test_nrpn_sends_lsb_msb_then_the_number_and_lsb_again_then_deselects():
    messages = midi.nrpn(1, 1000, 5000)
    select = [[0xB0, 99, 1000 >> 7], [0xB0, 98, 1000 & 0x7F]]
    lsb, msb = [0xB0, 38, 5000 & 0x7F], [0xB0, 6, 5000 >> 7]
    assert messages == [*select, lsb, msb, *select, lsb, [0xB0, 101, 127], [0xB0, 100, 127]]
    # The number is (MSB << 7) | LSB: a manual's "NRPN MSB 120, LSB 8" is 15368.
    assert midi.nrpn(3, (120 << 7) | 8, 8192)[:2] == [[0xB2, 99, 120], [0xB2, 98, 8]]
    # Coarse: the 7-bit value is the MSB, with LSB 0, sent the same way.
    coarse = midi.rpn(1, 0, 24, fine=False)  # pitch-bend range 24 semitones
    assert coarse == [[0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 38, 0], [0xB0, 6, 24],
                      [0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 38, 0],
                      [0xB0, 101, 127], [0xB0, 100, 127]]  # fmt: skip
    with pytest.raises(ValueError, match="parameter value"):
        midi.nrpn(1, 0, 200, fine=False)


class DataEntryReceiver:
    """A synth's NRPN parser, in the variants found in the wild.

    ``applies_at``: "msb" (the value is applied when CC 6 arrives, with the stored
    LSB: FluidSynth), "lsb" (when CC 38 arrives, with the stored MSB) or "both".
    ``clears_lsb``: CC 6 resets the stored LSB to 0 (MIDI 1.0's advice for 14-bit
    controllers). ``forgets``: the selection is dropped after a value is applied, so
    a later data entry goes to parameter 0 (FluidSynth).
    """

    def __init__(self, applies_at: str, clears_lsb: bool = False, forgets: bool = False):
        self.applies_at, self.clears_lsb, self.forgets = applies_at, clears_lsb, forgets
        self.cc = [0] * 128
        self.selected: int | None = None
        self.values: dict[int, int] = {}

    def receive(self, message: list[int]) -> None:
        number, value = message[1], message[2]
        if number == 99:
            self.cc[98], self.selected = 0, value << 7
        elif number == 98:
            self.selected = (self.cc[99] << 7) | value
        elif number in (100, 101):
            self.selected = None
        if number == 6 and self.clears_lsb:
            self.cc[38] = 0
        self.cc[number] = value
        if (number == 6 and self.applies_at in ("msb", "both")) or (
            number == 38 and self.applies_at in ("lsb", "both")
        ):
            self.apply()

    def apply(self) -> None:
        if self.selected is None:
            return
        self.values[self.selected] = (self.cc[6] << 7) | self.cc[38]
        if self.forgets:
            self.selected = 0


# ("msb", clears_lsb=True) is missing on purpose: a receiver that drops the LSB when the
# MSB arrives and applies only then takes 7-bit values only (a coarse NRPN, tested below).
RECEIVERS = [
    ("msb", False, False), ("msb", False, True), ("lsb", False, False), ("both", False, False),
    ("both", True, False), ("lsb", True, False), ("lsb", False, True),
]  # fmt: skip


@pytest.mark.parametrize("applies_at, clears_lsb, forgets", RECEIVERS)
def test_every_kind_of_receiver_ends_at_the_exact_value_whatever_came_before(
    applies_at, clears_lsb, forgets
):
    rng = np.random.default_rng(0)
    for _ in range(200):
        synth = DataEntryReceiver(applies_at, clears_lsb, forgets)
        for _ in range(3):  # a history of other values, on this parameter and others
            other = int(rng.choice([15368, 15369, 300]))
            for message in midi.nrpn(1, other, int(rng.integers(0, 16384))):
                synth.receive(message)
        value = int(rng.integers(0, 16384))
        synth.values.pop(0, None)
        before = dict(synth.values)
        for message in midi.nrpn(1, 15368, value):
            synth.receive(message)
        assert synth.values[15368] == value
        # Nothing else changed (a forgetful receiver must not set parameter 0).
        assert {k: v for k, v in synth.values.items() if k != 15368} == {
            k: v for k, v in before.items() if k != 15368
        }


@pytest.mark.parametrize("applies_at, clears_lsb", [("msb", True), ("msb", False), ("lsb", False)])
def test_a_coarse_value_arrives_as_the_msb_with_lsb_0(applies_at, clears_lsb):
    synth = DataEntryReceiver(applies_at, clears_lsb)
    for value in (127, 5, 64):
        for message in midi.nrpn(1, 300, value, fine=False):
            synth.receive(message)
        assert synth.values[300] == value << 7


def test_the_midi_1_order_gives_an_msb_receiver_the_previous_lsb():
    # Why the order above: MSB then LSB leaves FluidSynth at the history's LSB.
    synth = DataEntryReceiver("msb", forgets=True)
    for message in midi.nrpn(1, 15368, 127):  # LSB 127 stored
        synth.receive(message)
    for number, value in ((99, 120), (98, 8), (6, 64), (38, 0)):  # 8192 the MIDI 1.0 way
        synth.receive([0xB0, number, value])
    assert synth.values[15368] == (64 << 7) | 127 != 8192


def test_panic_covers_every_channel_with_notes_off_and_sound_off():
    messages = midi.panic_messages()
    assert len(messages) == 32
    assert [0xB0, 123, 0] in messages and [0xBF, 120, 0] in messages


@pytest.mark.parametrize(
    "call",
    [
        lambda: midi.note_on(0, 60, 100),
        lambda: midi.note_on(17, 60, 100),
        lambda: midi.note_on(1, 128, 100),
        lambda: midi.note_on(1, 60, 0),  # velocity 0 is a note-off in disguise
        lambda: midi.control_change(1, 74, 128),
        lambda: midi.pitch_bend(1, 16384),
        lambda: midi.control_change(1, 74, 1.5),
    ],
)
def test_out_of_range_values_are_refused(call):
    with pytest.raises(ValueError, match="must be an integer in"):
        call()


def test_port_matching_exact_then_unique_substring():
    ports = ["amsynth:midi_in", "Midi Through:Midi Through Port-0 14:0", "USB MIDI 1 20:0"]
    assert midi.match_port("amsynth:midi_in", ports) == 0
    assert midi.match_port("usb midi", ports) == 2
    assert midi.match_port("nothing", ports) is None
    with pytest.raises(MidiPortNotFoundError, match="ambiguous"):
        midi.match_port("midi", ports)


def test_unknown_api_is_a_clear_error():
    require("rtmidi", "MIDI output needs python-rtmidi: pip install 'ddsp_gym[hardware]'")
    with pytest.raises(ValueError, match="unknown MIDI API 'usb'"):
        midi.MidiOutput("x", api="usb")
