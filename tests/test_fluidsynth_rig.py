"""The hardware backend on the rig's second synth: FluidSynth playing a GM soundfont.

FluidSynth implements the SoundFont 2.01 NRPNs (MSB 120: the preset's generators) and
RPN 0, and applies an NRPN value when the data-entry MSB arrives, with the LSB it
last received: the synth that showed NRPN values depending on the previous take.
Marked ``hardware`` and run on the rig like ``test_hardware_rig.py``.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.backends.hardware import HardwareBackend
from ddsp_gym.backends.knob_map import load_knob_map
from ddsp_gym.plants import make_plant
from ddsp_gym.tasks import make_task_with_settings
from tests.conftest import V0_KWARGS

pytestmark = pytest.mark.hardware

FLUIDSYNTH = {"midi_out": "fluidsynth:midi_00", "audio_in": "fluidsynth", "max_retries": 5}


@pytest.fixture
def synth(rig_fluidsynth):
    return rig_fluidsynth


@pytest.fixture(scope="module")
def latency_store(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("fluidsynth") / "latency.json")


@pytest.fixture
def cutoff(synth, latency_store):
    """CutoffSweeper's twin on FluidSynth, its cutoff on NRPN 15368 (MSB 120, LSB 8)."""
    options = {**FLUIDSYNTH, "knob_map": "fluidsynth_cutoff", "latency_store": latency_store}
    hw = HardwareBackend(make_plant("filtered_saw"), options)
    yield hw
    hw.close()


def unit_of(value: int) -> np.ndarray:
    """The knob position that sends NRPN value ``value`` on the cutoff map."""
    spec = make_plant("filtered_saw").knob_specs[0]
    return np.array([load_knob_map("fluidsynth_cutoff").knobs["cutoff"].unit_of(value, spec)])


def f0_hz(x: np.ndarray, sample_rate: int) -> float:
    """The strongest partial's frequency (Hann window, zero-padded FFT, parabolic peak)."""
    n = 1 << 18
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size), n))
    k = int(np.argmax(spectrum[20:])) + 20
    a, b, c = np.log(spectrum[k - 1 : k + 2])
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sample_rate / n


def test_an_nrpn_value_sounds_the_same_whatever_came_before(cutoff):
    task, _ = make_task_with_settings("spectrum")  # CutoffSweeper's distance (MR-STFT)
    sr = cutoff.plant.sample_rate

    def distance(a, b) -> float:
        return float(task.distance(task.features(a.audio, sr), task.features(b.audio, sr)))

    value, other = 9728, 11007  # LSB 0 and LSB 127: 782 Hz and 3.4 kHz of cutoff
    assert (value & 0x7F, other & 0x7F) == (0, 127)
    alone = cutoff.render(unit_of(value))  # the value alone, after the init patch's NRPNs
    again = cutoff.render(unit_of(value))
    noise = distance(cutoff.render(unit_of(value)), again)  # the synth's repeat noise
    cutoff.render(unit_of(other))  # a different value, LSB 127...
    after = cutoff.render(unit_of(value))  # ...then the value
    assert alone.sent["cutoff"].value == after.sent["cutoff"].value == value
    for take in (alone, after):
        assert distance(take, again) <= 2 * noise + 1e-3, (distance(take, again), noise)
    # What the MIDI 1.0 order (MSB, then LSB) played here: the value with the previous
    # take's LSB, 127 steps (254 cents of cutoff) off. The test would have seen it.
    stale = cutoff.render(unit_of(value + 127))
    assert stale.sent["cutoff"].value == value + 127
    assert distance(stale, again) > 20 * (noise + 1e-3), (distance(stale, again), noise)


def test_replaying_the_hidden_value_succeeds_after_any_history(synth, latency_store):
    hardware = {**FLUIDSYNTH, "knob_map": "fluidsynth_cutoff", "latency_store": latency_store}
    cutoff = "ddsp_gym/CutoffSweeper-v1"  # absolute control: an action is the knob setting
    with gym.make(cutoff, backend="hardware", hardware=hardware, **V0_KWARGS) as env:
        for seed in (1, 2):
            env.reset(seed=seed)
            hidden = 2.0 * np.asarray(env.unwrapped.state.target_knobs) - 1.0
            env.step(np.clip(-hidden, -1, 1))  # somewhere else first
            _, _, terminated, _, info = env.step(hidden.astype(np.float32))
            rule = info["hardware"]["success_rule"]
            assert terminated and info["distance"] <= rule["sim_threshold"], (info, rule)


def test_pitch_bend_moves_the_pitch_as_the_maps_law_says(synth, latency_store):
    plant = make_plant("sine")
    options = {**FLUIDSYNTH, "knob_map": "fluidsynth_sine", "latency_store": latency_store}
    with HardwareBackend(plant, options) as hw:
        for u in (0.3, 0.5, 0.8):
            take = hw.render(np.array([u], np.float32))
            sent = take.sent["frequency"]
            measured = f0_hz(take.raw, take.samplerate)
            cents = 1200 * np.log2(measured / sent.physical)
            assert abs(cents) < 3.0, (u, sent, measured, cents)  # the law, within 3 cents
            # ...and the law is the twin's knob: the requested pitch within a bend step
            assert sent.physical == pytest.approx(
                float(plant.knob_specs[0].to_physical(u)), rel=2e-4
            )
