"""MIDI message encoding against the MIDI 1.0 specification, and port-name matching."""

from __future__ import annotations

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


def test_nrpn_selects_parameter_sets_data_then_deselects():
    messages = midi.nrpn(1, 1000, 5000)
    assert messages == [
        [0xB0, 99, 1000 >> 7],
        [0xB0, 98, 1000 & 0x7F],
        [0xB0, 6, 5000 >> 7],
        [0xB0, 38, 5000 & 0x7F],
        [0xB0, 101, 127],
        [0xB0, 100, 127],
    ]
    coarse = midi.rpn(1, 0, 24, fine=False)  # pitch-bend range 24 semitones
    assert coarse == [[0xB0, 101, 0], [0xB0, 100, 0], [0xB0, 6, 24], [0xB0, 101, 127],
                      [0xB0, 100, 127]]  # fmt: skip
    with pytest.raises(ValueError, match="parameter value"):
        midi.nrpn(1, 0, 200, fine=False)


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
