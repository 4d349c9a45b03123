"""The hardware backend for real, on the software rig (JACK dummy driver + amsynth + rtmidi).

`make test` starts the rig before pytest and stops it after; run alone, the
module fixture starts it (and stops what it started). Without the rig's tools
these tests skip with the reason, except under CI (environment variable CI),
where a missing rig is a failure.

The dummy driver runs in real time (a 0.4 s note costs 0.4 s), so takes are
short; the module takes about two and a half minutes, most of them the 50 envs
dropped without close() (each one made, reset and stepped: two takes).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest
import yaml

import ddsp_gym  # noqa: F401  (registers the envs)
from ddsp_gym.backends import audio, midi, rig
from ddsp_gym.backends.calibrate import centroid_hz
from ddsp_gym.backends.errors import (
    AudioDeviceNotFoundError,
    DeviceLostError,
    MidiPortNotFoundError,
    SilentTakeError,
)
from ddsp_gym.backends.hardware import HardwareBackend
from ddsp_gym.backends.knob_map import map_path
from ddsp_gym.cli import main
from ddsp_gym.plants import make_plant
from tests.conftest import V0_KWARGS

pytestmark = pytest.mark.hardware

SYNTH = {"midi_out": "amsynth:midi_in", "audio_in": "amsynth"}


@pytest.fixture
def synth(rig_synth):
    """The rig with amsynth up (conftest's ``rig_synth``)."""
    return rig_synth


@pytest.fixture(scope="module")
def latency_store(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("hw") / "latency.json")


@pytest.fixture
def closing():
    """Collects envs/backends and closes them even when a test fails."""
    things = []
    yield things.append
    for thing in reversed(things):
        thing.close()


def make_hw(env_id: str, latency_store: str, **hardware) -> gym.Env:
    options = {"latency_store": latency_store, "max_retries": 5, **hardware}
    return gym.make(
        env_id, backend="hardware", hardware=options, disable_env_checker=True, **V0_KWARGS
    )


def our_jack_ports() -> list[str]:
    pid = str(os.getpid())
    return [p for p in audio.jack_ports() if p.split(":")[0].endswith(pid)]


def child_processes() -> set[int]:
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {int(pid) for t in tasks.iterdir() for pid in (t / "children").read_text().split()}


def test_cc_sweep_moves_the_recorded_centroid_monotonically(synth, latency_store, closing):
    plant = make_plant("filtered_saw")
    hw = HardwareBackend(plant, {**SYNTH, "knob_map": "amsynth_cutoff",
                                 "latency_store": latency_store, "max_retries": 5})  # fmt: skip
    closing(hw)
    centroids, sent = [], []
    for u in np.linspace(0.0, 1.0, 6):
        take = hw.render(np.array([u], np.float32))
        centroids.append(centroid_hz(take.audio, plant.sample_rate))
        sent.append(take.sent["cutoff"].value)
    assert sent == sorted(sent) and len(set(sent)) == 6
    assert np.all(np.diff(centroids) > 0), centroids
    assert centroids[-1] > 2 * centroids[0]  # power centroid of a 110 Hz saw: ~110 -> ~310 Hz


def test_the_sim_twin_matches_the_real_synth(synth, latency_store, closing):
    # Leftovers from another program (a bent pitch, a mod wheel) must not survive the init.
    leftover = midi.MidiOutput("amsynth:midi_in", client_name="leftover")
    leftover.send_all([midi.pitch_bend(1, 16383), midi.control_change(1, 1, 127)])
    leftover.close()
    twin = make_plant("amsynth_twin")
    hw = HardwareBackend(twin, {**SYNTH, "knob_map": "amsynth", "latency_store": latency_store,
                                "max_retries": 5})  # fmt: skip
    closing(hw)
    rng = np.random.default_rng(0)
    for _ in range(3):
        knobs = rng.uniform(0.0, 1.0, 6).astype(np.float32)
        knobs[1] = min(knobs[1], 0.8)  # away from self-oscillating resonance
        take = hw.render(knobs)
        sim = np.asarray(twin.render(take.knobs, jax.random.PRNGKey(0)))
        assert np.corrcoef(take.audio, sim)[0, 1] > 0.95
        assert audio.rms_dbfs(take.audio) == pytest.approx(audio.rms_dbfs(sim), abs=1.0)


def test_loopback_latency_is_measured_and_compensated_within_1ms(rig_config, latency_store,
                                                                  closing):  # fmt: skip
    plant = make_plant("gain")
    hw = HardwareBackend(
        plant,
        {
            "mode": "effect", "audio_in": "system", "audio_out": "system", "hostapi": "JACK",
            "input_channels": 1, "jack_connections": [["{client}:out_0", "{client}:in_0"]],
            "latency": "measure", "max_output_dbfs": -6.0, "latency_store": latency_store,
            "max_retries": 5,
        },
    )  # fmt: skip
    closing(hw)
    assert 0 < hw.latency_frames < 0.2 * hw.samplerate  # a measured, plausible round trip
    t = np.arange(plant.n_samples) / plant.sample_rate
    chirp = np.sin(2 * np.pi * (100 * t + 7800 * t**2)).astype(np.float32)  # 100 Hz -> 4 kHz
    take = hw.render(np.array([0.5], np.float32), chirp)
    # The limiter: a full-scale program never leaves the interface above -6 dBFS.
    assert take.peak_dbfs <= -6.0 + 0.01 and -6.1 < take.limiter_gain_db <= -6.0
    # Compensated: the take lines up with what was sent, at the device rate and at 16 kHz.
    sent_48k = audio.resample(chirp, plant.sample_rate, hw.samplerate)
    one_ms = hw.samplerate // 1000
    lag_late, q_late = audio.xcorr_lag(sent_48k[:9000], take.raw, one_ms * 5)
    lag_early, q_early = audio.xcorr_lag(take.raw[:9000], sent_48k, one_ms * 5)
    residual = lag_late if q_late >= q_early else -lag_early
    assert abs(residual) <= one_ms and max(q_late, q_early) > 0.99
    expected = chirp * 10 ** (take.limiter_gain_db / 20)
    assert np.corrcoef(take.audio[:3900], expected[:3900])[0, 1] > 0.99


def test_a_synth_killed_mid_take_fails_that_take_and_reset_recovers(synth, latency_store,
                                                                     closing):  # fmt: skip
    env = make_hw("ddsp_gym/RealSynthPatch-v1", latency_store)
    closing(env)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    # The take: 40 ms settle, then about 0.47 s of recording; the synth dies 0.25 s in.
    killer = threading.Timer(0.25, rig.kill_synth, args=(synth,))
    start = time.monotonic()
    killer.start()
    with pytest.raises(DeviceLostError, match="amsynth:midi_in' has gone away during the take"):
        env.step(env.action_space.sample())
    killer.join()
    assert time.monotonic() - start < 1.5  # that take, not a later one
    rig.start_synth(synth, log=lambda *_: None)
    obs, info = env.reset(seed=1)
    assert np.all(np.isfinite(obs)) and info["hardware"]["peak_dbfs"] > -40
    _, reward, _, _, info = env.step(np.zeros(6, np.float32))
    assert np.isfinite(reward) and info["hardware"]["peak_dbfs"] > -40


def test_a_synth_turned_down_to_a_leak_gives_the_silence_error(synth, latency_store, closing):
    # master_vol 4 of 127 (45 in the map): the take peaks near -54 dBFS, above the absolute
    # -60 dBFS threshold, but some 45 dB below what the twin plays at these knobs.
    document = yaml.safe_load(map_path("amsynth_cutoff").read_text())
    for message in document["init"]:
        if message.get("parameter") == "master_vol":
            message["value"] = 4
    options = {**SYNTH, "knob_map": document, "latency_store": latency_store, "max_retries": 5,
               "settle_ms": 300}  # amsynth glides to a new volume  # fmt: skip
    hw = HardwareBackend(make_plant("filtered_saw"), options)
    closing(hw)
    with pytest.raises(SilentTakeError, match=r"dB below what the twin plays"):
        hw.render(np.array([0.5], np.float32))


def test_wrong_port_or_device_names_list_the_real_ones(synth, latency_store):
    plant = make_plant("amsynth_twin")
    with pytest.raises(MidiPortNotFoundError, match=r"'Moog Sub 37'(.|\n)*'amsynth:midi_in'"):
        HardwareBackend(plant, {**SYNTH, "knob_map": "amsynth", "midi_out": "Moog Sub 37"})
    with pytest.raises(AudioDeviceNotFoundError, match=r"'Scarlett'(.|\n)*'amsynth'(.|\n)*"):
        HardwareBackend(plant, {**SYNTH, "knob_map": "amsynth", "audio_in": "Scarlett"})
    assert not our_jack_ports()  # a failed open leaves nothing behind


def test_a_wrong_but_existing_midi_port_is_blamed_too(synth, rig_fluidsynth, closing):
    # The notes go to FluidSynth while amsynth is recorded: the port exists, the take is
    # silent, and the error names the MIDI side as well as the audio input.
    plant = make_plant("amsynth_twin")
    hw = HardwareBackend(plant, {**SYNTH, "midi_out": "fluidsynth:midi_00",
                                 "knob_map": "amsynth", "latency": 21.3})  # fmt: skip
    closing(hw)
    with pytest.raises(SilentTakeError) as error:
        hw.render(np.full(6, 0.5, np.float32))
    message = str(error.value)
    assert "audio_in='amsynth'" in message
    assert "midi_out='fluidsynth:midi_00' the port of the synth that audio_in records" in message
    assert "MIDI channel 1" in message and "note 48" in message


def test_a_silent_take_is_detected(synth, latency_store, closing):
    # The dummy driver's capture ports carry silence: an unplugged cable.
    plant = make_plant("amsynth_twin")
    hw = HardwareBackend(plant, {**SYNTH, "audio_in": "system", "knob_map": "amsynth",
                                 "latency": 21.3})  # fmt: skip
    closing(hw)
    with pytest.raises(SilentTakeError, match=r"silent \(peak -inf dBFS.*audio_in='system'"):
        hw.render(np.full(6, 0.5, np.float32))


def test_close_leaves_no_stuck_notes_and_nothing_of_ours_running(synth, latency_store):
    env = make_hw("ddsp_gym/RealSynthPatch-v1", latency_store)
    env.reset(seed=2)
    env.step(env.action_space.sample())
    # A note left on (say the agent crashed between note on and note off) drones forever...
    env.unwrapped.backend.midi.send(midi.note_on(1, 60, 100))
    listener = audio.AudioEngine(audio.StreamConfig(input_device="amsynth"))
    try:
        assert audio.peak_dbfs(listener.capture(4800).audio) > -40  # the drone is audible
        env.close()
        assert audio.peak_dbfs(listener.capture(4800).audio) == -np.inf  # ...until close()
    finally:
        listener.close()
    env.close()  # closing twice is harmless
    assert not our_jack_ports()
    info = rig.status(synth)
    rig_pids = {info["jackd_pid"], info["amsynth_pid"], info["fluidsynth_pid"]}
    assert child_processes() <= rig_pids  # jack_connect & co. were waited for


DROP_SCRIPT = """
import gc, json, sys
import gymnasium as gym
import numpy as np
import ddsp_gym
from ddsp_gym.backends import midi, ownership

hardware = json.loads(sys.argv[1])
target = np.sin(2 * np.pi * 110 * np.arange(4000) / 16000).astype(np.float32)  # one take a reset


def make():
    return gym.make("ddsp_gym/CutoffSweeper-v1", backend="hardware", hardware=hardware,
                    target=target, disable_env_checker=True)


for i in range(50):
    env = make()
    env.reset(seed=i)
    env.step(env.action_space.sample())
    if i % 3 == 0:
        env.unwrapped.myself = env  # a reference cycle: only the cyclic collector frees it
    del env  # dropped without close()
    if i % 5 == 4:
        gc.collect()
env = make()  # another env plays after all the drops
env.reset(seed=99)
_, reward, *_ = env.step(np.zeros(1, np.float32))
assert np.isfinite(reward)
print("HELD", len(ownership._open) + ownership.orphans())
env.unwrapped.backend.midi.send(midi.note_on(1, 57, 100))  # left on: the exit handler stops it
print("EXIT")
"""


def test_envs_dropped_without_close_do_not_crash_python_or_leave_notes_on(synth, latency_store):
    # PortAudio used to call a collected stream's callback: abort (exit 134) or SIGSEGV/SIGILL.
    hardware = {**SYNTH, "knob_map": "amsynth_cutoff", "latency_store": latency_store,
                "max_retries": 5}  # fmt: skip
    child = subprocess.run(
        [sys.executable, "-c", DROP_SCRIPT, json.dumps(hardware)],
        capture_output=True, text=True, timeout=400, cwd=Path(__file__).resolve().parent.parent,
    )  # fmt: skip
    assert child.returncode == 0, child.stderr[-3000:]
    assert "EXIT" in child.stdout
    # Every dropped env's stream and port were closed on the way, not kept until exit.
    assert child.stdout.split("HELD ")[1].split()[0] == "2"  # the last env's two
    with audio.AudioEngine(audio.StreamConfig(input_device="amsynth")) as listener:
        assert audio.peak_dbfs(listener.capture(4800).audio) == -np.inf  # no stuck note


def test_the_env_is_a_context_manager_through_gymnasiums_wrappers(synth, latency_store):
    with make_hw("ddsp_gym/RealSynthPatch-v1", latency_store) as env:
        assert isinstance(env, gym.Wrapper)  # gym.make's wrappers pass the with-block on
        env.reset(seed=4)
        backend = env.unwrapped.backend
        assert backend.engine.is_open and backend.midi.is_open
    assert backend.engine is None and backend.midi is None
    assert not our_jack_ports()
    env.close()  # closing again is harmless


def test_level1_envs_run_on_the_synth_with_their_maps(synth, latency_store, closing):
    env = make_hw("ddsp_gym/SineTuner-v1", latency_store, knob_map="amsynth_sine", **SYNTH)
    closing(env)
    sim = gym.make("ddsp_gym/SineTuner-v1", **V0_KWARGS)
    assert env.observation_space == sim.observation_space
    assert env.action_space == sim.action_space
    assert env.spec.nondeterministic and env.unwrapped.nondeterministic
    env.reset(seed=3)
    target = np.asarray(env.unwrapped.state.target_knobs)
    _, on_target, terminated, _, info = env.step((2 * target - 1).astype(np.float32))
    assert terminated and info["distance"] < 5.0  # cents: pitch bend tunes amsynth
    assert "reward_grad" not in info and set(info["knobs"]) == {"frequency"}
    _, off_target, _, _, info = env.step((2 * target - 1 + 0.3).astype(np.float32))
    assert off_target < on_target - 0.1 and info["distance"] > 100
    with pytest.raises(NotImplementedError, match="no gradient"):
        env.unwrapped.reward_and_grad(np.zeros(1, np.float32))
    reward, grad = env.unwrapped.twin_reward_and_grad(np.zeros(1, np.float32))
    assert np.isfinite(reward) and grad.shape == (1,)


def test_expose_grad_on_hardware_is_refused(rig_config):
    with pytest.raises(ValueError, match="expose_grad=True needs backend='sim'"):
        gym.make("ddsp_gym/RealSynthPatch-v1", backend="hardware", expose_grad=True)


def test_hw_list_and_rig_status_commands(synth, rig_fluidsynth, capsys):
    assert main(["hw", "list"]) == 0
    out = capsys.readouterr().out
    assert "'amsynth:midi_in'" in out and "'amsynth'" in out
    assert main(["hw", "rig", "status"]) == 0
    status = capsys.readouterr().out
    assert "amsynth   : ports up" in status and "fluidsynth: ports up" in status
    assert main(["hw", "list", "--api", "usb"]) == 2
    assert "unknown MIDI API 'usb'" in capsys.readouterr().err


CRASH_SCRIPT = """
import os, signal, sys, time
from ddsp_gym.backends import audio
from ddsp_gym.backends.errors import HardwareTimeoutError
engine = audio.AudioEngine(audio.StreamConfig(input_device="system", input_channels=1))
engine.capture(4800)
os.kill(int(sys.argv[1]), signal.SIGKILL)
try:
    engine.capture(4800)
except HardwareTimeoutError as err:
    print("TIMEOUT:", err)
start = time.monotonic()
engine.close()
print(f"CLOSED in {time.monotonic() - start:.1f} s")
"""


def test_an_audio_server_crash_times_out_and_nothing_hangs(rig_config, tmp_path):
    # A private JACK server, so the shared rig survives; the check runs in a child process
    # because PortAudio stays stuck on the dead server's stream in the process that had it.
    # One fixed name: JACK keeps a killed server's slot (of 8) until that name registers again.
    name = "ddsp_gym_crash_test"
    env = dict(os.environ, JACK_DEFAULT_SERVER=name, JACK_NO_START_SERVER="1")
    command = ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", "48000", "-p", "1024"]

    def start_server() -> subprocess.Popen:
        with open(tmp_path / "jackd.log", "ab") as log:
            server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while subprocess.run(["jack_lsp"], env=env, capture_output=True).returncode != 0:
            log_text = (tmp_path / "jackd.log").read_text(errors="replace")
            assert time.monotonic() < deadline and server.poll() is None, log_text[-500:]
            time.sleep(0.1)
        return server

    server = start_server()
    try:
        child = subprocess.run(
            [sys.executable, "-c", CRASH_SCRIPT, str(server.pid)],
            env=env, capture_output=True, text=True, timeout=60,
            cwd=Path(__file__).resolve().parent.parent,
        )  # fmt: skip
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        # Start and stop it cleanly once more: the crashed server's slot is given back.
        server = start_server()
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=10)
        for stale in Path("/dev/shm").glob(f"jack_sem.*_{name}_*"):  # the child's client
            stale.unlink(missing_ok=True)
    assert child.returncode == 0, child.stderr[-2000:]
    assert "TIMEOUT: a 0.10 s take did not finish" in child.stdout
    assert "audio server stopped?" in child.stdout
    closed = float(child.stdout.split("CLOSED in ")[1].split()[0])
    assert closed < 5.0
