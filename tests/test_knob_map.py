"""Knob maps: schema validation with clear errors, quantization, the packaged maps."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest

from ddsp_gym.backends.errors import KnobMapError
from ddsp_gym.backends.knob_map import load_knob_map, packaged_maps, parse_knob_map
from ddsp_gym.backends.rig import amsynth_controllers
from ddsp_gym.knobs import KnobSpec
from ddsp_gym.plants import make_plant

LINEAR = KnobSpec("level", 0.0, 1.0)
CUTOFF = KnobSpec("cutoff", 100.0, 4000.0, "log", "Hz")

BASE = {
    "device": "test synth",
    "channel": 2,
    "knobs": {"level": {"type": "cc", "number": 7}},
}


def with_knob(**fields) -> dict:
    document = copy.deepcopy(BASE)
    document["knobs"]["level"] = {"type": "cc", "number": 7, **fields}
    return document


@pytest.mark.parametrize(
    "document, message",
    [
        ({"knobs": {}}, "knobs: expected a non-empty mapping"),
        ({**BASE, "colour": "red"}, r"unknown field\(s\) \['colour'\]"),
        (with_knob(number=130), r"knobs.level.number: 130 is out of range \[0, 119\]"),
        (with_knob(number=120), "out of range"),  # 120-127 are channel mode messages
        (with_knob(type="sysex"), "knobs.level.type: must be one of"),
        (with_knob(channel=17), r"knobs.level.channel: 17 is out of range \[1, 16\]"),
        (with_knob(range=[0, 200]), r"knobs.level.range\[1\]: 200 is out of range"),
        (with_knob(range=[5, 5]), "the two ends must differ"),
        (with_knob(curve="cubic"), "knobs.level.curve: must be one of"),
        (with_knob(exponent=2.0), "only a power curve takes an exponent"),
        (with_knob(curve="power", exponent=-1.0), "exponent: must be > 0"),
        (with_knob(curve="table", points=[[0, 0], [0.5, 90], [1, 60]]), "strictly monotonic"),
        (with_knob(curve="table", points=[[0.2, 0], [1, 60]]), "rise strictly from 0 to 1"),
        (with_knob(curve="law"), "curve 'law' needs a 'law' mapping"),
        (with_knob(law={"kind": "sigmoid", "min": 0, "max": 1}), "law.kind: must be one of"),
        (with_knob(law={"kind": "exponential", "min": 0, "max": 1, "base": 1}), "base > 0"),
        (with_knob(type="pitch_bend"), "a pitch_bend message has no number"),
        (
            {**BASE, "knobs": {"a": {"type": "cc", "number": 7}, "b": {"type": "cc", "number": 7}}},
            "knobs.b: uses the same address as 'a'",
        ),
        ({**BASE, "init": [{"type": "cc", "number": 1}]}, r"init\[0\]: lacks 'value'"),
        ({**BASE, "init": [{"type": "cc", "number": 1, "value": 300}]}, "init.0.|out of range"),
        ({**BASE, "note": {"number": 200}}, r"note.number: 200 is out of range"),
        ({**BASE, "probe": {"level": 2.0}}, "unit positions lie in"),
    ],
)
def test_invalid_maps_name_the_offending_field(document, message):
    with pytest.raises(KnobMapError, match=message):
        parse_knob_map(document, "my.yaml")


def test_errors_name_the_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("knobs:\n  level: {type: cc, number: 999}\n")
    with pytest.raises(KnobMapError, match=r"broken.yaml: knobs.level.number"):
        load_knob_map(path)
    path.write_text("knobs: [unclosed\n")
    with pytest.raises(KnobMapError, match="not valid YAML"):
        load_knob_map(path)
    with pytest.raises(KnobMapError, match="packaged maps"):
        load_knob_map("no_such_map")


def test_the_map_must_fit_the_twin():
    knob_map = parse_knob_map(BASE)
    with pytest.raises(KnobMapError, match=r"missing \['cutoff'\], unknown \[\]"):
        knob_map.check_specs([LINEAR, CUTOFF])
    with pytest.raises(KnobMapError, match=r"unknown \['level'\]"):
        knob_map.check_specs([CUTOFF])


def test_7bit_cc_quantizes_to_128_steps_and_reports_what_was_sent():
    knob_map = parse_knob_map(BASE)
    messages, sent = knob_map.encode([0.5], [LINEAR])
    # 0.5 * 127 = 63.5 rounds to 64 (banker's rounding would give 64 too)
    assert messages == [[0xB1, 7, 64]]  # channel 2 -> status nibble 1
    assert sent["level"].value == 64
    assert sent["level"].unit == pytest.approx(64 / 127)
    assert sent["level"].physical == pytest.approx(64 / 127, abs=1e-6)
    grid = np.linspace(0, 1, 1001)
    quantized = np.array([knob_map.quantize([u], [LINEAR])[0] for u in grid])
    assert len(np.unique(np.round(quantized * 127))) == 128
    assert np.max(np.abs(quantized - grid)) <= 0.5 / 127 + 1e-6


def test_14bit_cc_splits_msb_and_lsb_and_is_finer():
    document = with_knob(type="cc14", number=1)
    knob_map = parse_knob_map(document)
    messages, sent = knob_map.encode([0.3], [LINEAR])
    value = round(0.3 * 16383)
    assert sent["level"].value == value
    assert messages == [[0xB1, 1, value >> 7], [0xB1, 33, value & 0x7F]]
    assert abs(sent["level"].unit - 0.3) <= 0.5 / 16383


def test_reversed_range_and_power_curve_invert_exactly():
    knob_map = parse_knob_map(with_knob(range=[100, 20], curve="power", exponent=2.0))
    _, sent = knob_map.encode([0.5], [LINEAR])
    assert sent["level"].value == round(100 + 0.25 * (20 - 100))  # 80
    assert sent["level"].unit == pytest.approx(math.sqrt((80 - 100) / (20 - 100)))


def test_table_curve_interpolates_and_inverts():
    knob_map = parse_knob_map(with_knob(curve="table", points=[[0, 0], [0.5, 100], [1, 127]]))
    _, sent = knob_map.encode([0.25], [LINEAR])
    assert sent["level"].value == 50
    assert sent["level"].unit == pytest.approx(0.25)


def test_exponential_law_matches_the_device_formula():
    # amsynth: cutoff = 16^p * f_note, p = -0.5 + 2 v / 127
    law = {"kind": "exponential", "base": 16, "min": -0.5, "max": 1.5, "scale": 130.8128}
    knob_map = parse_knob_map({"knobs": {"cutoff": {"type": "cc", "number": 74, "law": law}}})
    for u in (0.0, 0.37, 1.0):
        _, sent = knob_map.encode([u], [CUTOFF])
        v = sent["cutoff"].value
        device_hz = 130.8128 * 16 ** (-0.5 + 2 * v / 127)
        wanted_hz = float(CUTOFF.to_physical(u))
        assert sent["cutoff"].physical == pytest.approx(device_hz, rel=1e-4)
        # the nearest 7-bit step: within half a step (2/127 of log16) of what was asked
        assert abs(math.log(device_hz / wanted_hz, 16)) <= 1 / 127 + 1e-6


def test_nrpn_pitch_bend_and_program_change_transports():
    document = {
        "knobs": {
            "a": {"type": "nrpn", "number": 300},
            "b": {"type": "pitch_bend", "channel": 3},
            "c": {"type": "program_change", "range": [0, 7]},
        }
    }
    knob_map = parse_knob_map(document)
    specs = [KnobSpec("a", 0, 1), KnobSpec("b", 0, 1), KnobSpec("c", 0, 1)]
    messages, sent = knob_map.encode([1.0, 0.5, 1.0], specs)
    assert sent["a"].value == 16383 and sent["b"].value == 8192 and sent["c"].value == 7
    assert messages[:4] == [[0xB0, 99, 2], [0xB0, 98, 44], [0xB0, 38, 127], [0xB0, 6, 127]]
    assert [0xE2, 0x00, 0x40] in messages
    assert messages[-1] == [0xC0, 7]


def test_coarse_nrpn_spans_7_bits_without_a_range():
    # fine: false alone used to fail naming `range`, which the user never set.
    knob_map = parse_knob_map({"knobs": {"level": {"type": "nrpn", "number": 300, "fine": False}}})
    messages, sent = knob_map.encode([0.5], [LINEAR])
    assert sent["level"].value == 64 and sent["level"].unit == pytest.approx(64 / 127)
    assert [0xB0, 6, 64] in messages and [0xB0, 38, 0] in messages  # MSB 64, LSB 0
    # A law scales to 0..127, not to 16383 (every position used to be sent as 127).
    law = {"kind": "linear", "min": 0.0, "max": 1.0}
    document = {"knobs": {"level": {"type": "nrpn", "number": 300, "fine": False, "law": law}}}
    knob_map = parse_knob_map(document)
    values = [knob_map.encode([u], [LINEAR])[1]["level"].value for u in (0.0, 0.25, 0.5, 1.0)]
    assert values == [0, 32, 64, 127]
    with pytest.raises(KnobMapError, match=r"knobs.level.range\[1\]: 200 is out of range"):
        parse_knob_map(with_knob(type="nrpn", fine=False, range=[0, 200]))
    with pytest.raises(KnobMapError, match="knobs.level.fine: only an NRPN or RPN"):
        parse_knob_map(with_knob(fine=False))
    with pytest.raises(KnobMapError, match="knobs.level.fine: expected true or false"):
        parse_knob_map(with_knob(type="nrpn", fine="no"))


@pytest.mark.parametrize(
    "map_name, plant",
    [
        ("amsynth", "amsynth_twin"),
        ("amsynth_sine", "sine"),
        ("amsynth_cutoff", "filtered_saw"),
        ("amsynth_volume", "gain"),
        ("fluidsynth_cutoff", "filtered_saw"),
        ("fluidsynth_sine", "sine"),
    ],
)
def test_packaged_maps_fit_their_twins(map_name, plant):
    assert map_name in packaged_maps()
    knob_map = load_knob_map(map_name)
    specs = make_plant(plant).knob_specs
    knob_map.check_specs(specs)
    # Quantization is idempotent and stays near the requested positions.
    rng = np.random.default_rng(0)
    for _ in range(20):
        u = rng.uniform(0, 1, len(specs))
        q = knob_map.quantize(u, specs)
        np.testing.assert_allclose(knob_map.quantize(q, specs), q, atol=1e-5)
        assert np.max(np.abs(q - u)) < 0.1


def test_amsynth_map_agrees_with_the_twin_it_drives():
    twin = make_plant("amsynth_twin")
    knob_map = load_knob_map("amsynth")
    init = {m.parameter: m.value for m in knob_map.init}
    # amsynth envelope time = 0.0005 + (v / 127 * 2.5)^3 s (Parameter.cpp, power law)
    assert twin.filter_decay_s == pytest.approx(0.0005 + (init["filter_decay"] / 127 * 2.5) ** 3)
    assert twin.osc2_detune == pytest.approx(1.25 ** (-1 + 2 * init["osc2_detune"] / 127))
    assert twin.note == knob_map.note
    assert twin.level == pytest.approx(2.035 * (init["master_vol"] / 127) ** 2)
    # The cutoff law puts the twin's 100-4000 Hz inside amsynth's 0..127.
    cutoff = [s for s in twin.knob_specs if s.name == "cutoff"][0]
    _, sent = knob_map.encode(np.full(6, 1.0), twin.knob_specs)
    assert sent["cutoff"].value < 127 and sent["cutoff"].physical == pytest.approx(
        cutoff.high, rel=0.03
    )


def test_fluidsynth_maps_address_soundfont_generators_by_nrpn():
    # SF2 2.01 NRPNs: MSB 120, LSB = generator; FluidSynth offsets the preset's value by
    # (v - 8192) * step (2 cents for the cutoff): the map's law puts 100-7000 Hz inside.
    knob_map = load_knob_map("fluidsynth_cutoff")
    cutoff = knob_map.knobs["cutoff"]
    assert (cutoff.type, cutoff.number >> 7, cutoff.number & 0x7F) == ("nrpn", 120, 8)
    spec = make_plant("filtered_saw").knob_specs[0]
    for u in (0.0, 0.5, 1.0):
        v = cutoff.device_value(u, spec)
        cents = 4823.25 + 2 * (v - 8192)
        assert 8.1758 * 2 ** (cents / 1200) == pytest.approx(float(spec.to_physical(u)), rel=1e-3)
    programs = [m.value for m in knob_map.init if m.type == "program_change"]
    assert programs == [38]  # 0-based on the wire: GM's "Synth Bass 1" is program 39
    sine = load_knob_map("fluidsynth_sine")
    bend_range = [m for m in sine.init if m.type == "rpn" and m.number == 0]
    assert [(m.value, m.fine) for m in bend_range] == [(25, False)]


def test_rig_writes_one_controller_line_per_cc_from_all_amsynth_maps():
    lines = amsynth_controllers()
    assert len(lines) == 128
    assert lines[74] == "filter_cutoff" and lines[7] == "master_vol" and lines[76] == "osc_mix"
    # data entry / (N)RPN / sustain controllers stay unmapped so amsynth handles them itself
    for cc in (6, 38, 64, 98, 99, 100, 101):
        assert lines[cc] == "null"


def test_conflicting_maps_are_refused(tmp_path):
    a = tmp_path / "amsynth_a.yaml"
    b = tmp_path / "amsynth_b.yaml"
    a.write_text("knobs: {x: {type: cc, number: 20, parameter: osc_mix}}\n")
    b.write_text("knobs: {y: {type: cc, number: 20, parameter: filter_cutoff}}\n")
    with pytest.raises(Exception, match="CC 20 is 'osc_mix'"):
        amsynth_controllers([str(a), str(b)])
