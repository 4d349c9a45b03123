"""Live mode without a sound card: the FIFO, the target mailbox, the resampler, the sim
session driven by a fake output stream, the watchdog's loop, the command's errors.

The rig tests (real JACK, amsynth, SIGKILL and SIGINT) are in tests/test_live_rig.py.
"""

from __future__ import annotations

import json
import os
import threading
from types import SimpleNamespace

import jax
import numpy as np
import pytest

from ddsp_gym.cli import main
from ddsp_gym.live import watchdog
from ddsp_gym.live.agents import RandomWalk, Scripted, make_agent
from ddsp_gym.live.buffers import SampleFifo, StreamResampler, TargetSlot
from ddsp_gym.live.core import BlockCore
from ddsp_gym.live.runner import open_session, report_markdown, run_session
from ddsp_gym.live.sim import SimLive
from ddsp_gym.streaming.gym_env import make_streaming_functional

DRONE = "ddsp_gym/Drone-v0"


# ---- FIFO and mailbox ---------------------------------------------------------------------


def test_fifo_copies_in_order_across_the_wrap_and_zero_fills_an_underrun():
    fifo = SampleFifo(5)
    assert fifo.write(np.arange(4)) == 4
    out = np.full(3, -1.0, np.float32)
    assert fifo.read_into(out) == 3 and out.tolist() == [0, 1, 2]
    assert fifo.write(np.arange(4, 8)) == 4  # wraps around the end of the buffer
    out = np.full(7, -1.0, np.float32)
    assert fifo.read_into(out) == 5
    assert out.tolist() == [3, 4, 5, 6, 7, 0, 0]  # ran dry: zeros, not stale samples
    assert fifo.available == 0


def test_fifo_refuses_what_does_not_fit_and_counts_it():
    fifo = SampleFifo(4)
    assert fifo.write(np.ones(6)) == 4
    assert fifo.dropped == 2 and fifo.space == 0
    with pytest.raises(ValueError, match="capacity"):
        SampleFifo(0)


def test_target_slot_keeps_only_the_newest():
    slot = TargetSlot()
    assert slot.take() is None
    slot.put(np.array([0.1]))
    slot.put(np.array([0.7]))
    assert slot.take().tolist() == pytest.approx([0.7])
    assert slot.take() is None
    assert (slot.posted, slot.taken) == (2, 1)


# ---- resampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(("src", "dst"), [(16_000, 48_000), (48_000, 16_000)])
def test_resampler_blocks_equal_one_call_and_keep_the_tone(src, dst):
    t = np.arange(src) / src
    tone = 0.5 * np.sin(2 * np.pi * 440.0 * t)
    whole = StreamResampler(src, dst).process(tone)
    streamed = StreamResampler(src, dst)
    pieces = np.concatenate([streamed.process(b) for b in np.split(tone, 10)])
    assert len(whole) == len(pieces) == dst
    np.testing.assert_allclose(pieces, whole, atol=1e-6)  # no seams at block edges
    spectrum = np.abs(np.fft.rfft(whole[dst // 4 :] * np.hanning(len(whole) - dst // 4)))
    freq = np.argmax(spectrum) * dst / (len(whole) - dst // 4)
    assert freq == pytest.approx(440.0, abs=2.0)
    assert np.max(np.abs(whole[dst // 4 :])) == pytest.approx(0.5, abs=0.03)


def test_resampler_refuses_a_bad_rate():
    with pytest.raises(ValueError, match="sample rates"):
        StreamResampler(16_000, 0)


# ---- the sim session, driven by a fake output stream ---------------------------------------


class FakeStream:
    """Stands in for the sounddevice stream: the test pulls blocks when it likes."""

    def __init__(self, callback, rate):
        self.callback, self.rate, self.closed = callback, rate, False

    def pull(self, frames: int, underflow: bool = False) -> np.ndarray:
        out = np.full((frames, 1), np.nan, np.float32)
        self.callback(out, frames, None, SimpleNamespace(output_underflow=underflow))
        return out[:, 0]

    def close(self):
        self.closed = True


class Held:
    """An agent that never moves the knobs (delta 0): the stream plays its start knobs."""

    def __call__(self, obs):
        return np.zeros(5, np.float32)


@pytest.fixture(scope="module")
def core_factory():
    return lambda: BlockCore(DRONE, seed=3)


def sim_session(core, agent, tmp_path=None, rate=16_000, latency_blocks=2):
    streams = []

    def opener(callback, r):
        streams.append(FakeStream(callback, r))
        return streams[-1]

    session = SimLive(core, agent, opener, rate, tmp_path, latency_blocks)
    return session, streams


def test_live_audio_is_the_offline_stream_block_for_block(core_factory, tmp_path):
    core = core_factory()
    knobs0 = core.knobs.copy()
    session, streams = sim_session(core, Held(), tmp_path)
    session.start()
    n = core.block_size
    played = []
    for _ in range(6):
        assert session.fifo.wait(lambda f: f.available >= n, 5.0)
        played.append(streams[0].pull(n))
    session.stop("test")
    # Offline: the same reset, stepped with actions that hold the knobs where they are.
    fenv, params = make_streaming_functional(DRONE)
    _, state = fenv.reset(jax.random.PRNGKey(3), params)
    np.testing.assert_allclose(np.asarray(state.knobs), knobs0)
    offline, transition = [], jax.jit(fenv.transition)
    for _ in range(6):
        state, _, _ = transition(state, np.zeros(5, np.float32), params)
        offline.append(np.asarray(state.audio))
    np.testing.assert_allclose(np.concatenate(played), np.concatenate(offline), atol=1e-5)
    assert session.late_blocks == 0 and session.xruns == 0
    assert streams[0].closed
    # The recording and the knob log hold every rendered block (more than played: the
    # FIFO renders ahead).
    log = [json.loads(line) for line in (tmp_path / "knobs.jsonl").read_text().splitlines()]
    assert len(log) == session.blocks >= 6
    assert log[0]["block"] == 1 and set(log[0]["knobs"]) == set(core.knob_names)
    assert {"reward", "novelty", "slew", "xruns"} <= set(log[0])
    import soundfile as sf

    wav, rate = sf.read(tmp_path / "live.wav")
    assert rate == 16_000 and len(wav) == session.blocks * n


class Gate:
    """Wraps a core's render so the test decides when a block may be rendered."""

    def __init__(self, core):
        self.core, self.open = core, threading.Event()
        self.open.set()
        self._render = core.render
        core.render = self.render

    def render(self, target):
        self.open.wait(10.0)
        return self._render(target)


def test_a_block_not_ready_in_time_is_an_xrun_and_the_callback_does_not_wait(core_factory):
    core = core_factory()
    gate = Gate(core)
    session, streams = sim_session(core, Held(), latency_blocks=2)
    session.start()
    n = core.block_size
    gate.open.clear()  # the block thread stalls (a slow render, a busy machine)
    streams[0].pull(n)  # the FIFO held 2 blocks: this one is fine
    assert session.fifo.wait(lambda f: f.available == n, 5.0)
    streams[0].pull(n)  # the last rendered block; the stalled render made no new one
    late = streams[0].pull(n)  # nothing left: silence, counted
    assert np.all(late == 0.0)
    assert session.late_blocks == 1 and session.info()["xruns"] == 1
    gate.open.set()
    assert session.fifo.wait(lambda f: f.available >= n, 5.0)
    streams[0].pull(n)
    assert session.late_blocks == 1  # caught up: no new xrun
    assert session.fifo.wait(lambda f: f.available >= n, 5.0)
    streams[0].pull(n // 2, underflow=True)  # the device's own flag counts too
    assert session.device_xruns == 1 and session.xruns == 2
    session.stop("test")


def test_a_hung_agent_never_stops_the_audio(core_factory):
    core = core_factory()
    hang = threading.Event()

    def stuck_agent(obs):
        hang.wait(10.0)  # an agent far slower than the blocks
        return np.ones(5, np.float32)

    session, streams = sim_session(core, stuck_agent)
    session.start()
    n = core.block_size
    for _ in range(8):
        assert session.fifo.wait(lambda f: f.available >= n, 5.0)
        assert np.any(streams[0].pull(n) != 0.0)
    assert session.late_blocks == 0 and session.slot.posted == 0
    hang.set()
    session.stop("test")


def test_agent_targets_reach_the_stream_and_the_agent_error_stops_it(core_factory):
    core = core_factory()
    start_knobs = core.knobs.copy()
    session, streams = sim_session(core, Scripted(5, "delta", 0.1, core.plant.block_seconds))
    session.start()
    n = core.block_size
    for _ in range(30):
        assert session.fifo.wait(lambda f: f.available >= n, 5.0)
        streams[0].pull(n)
    session.stop("test")
    assert session.slot.taken > 0
    assert np.max(np.abs(session.target - start_knobs)) > 0.05  # the sweep moved the knobs
    np.testing.assert_allclose(core.knobs, session.target, atol=1e-6)  # the stream got there

    core = core_factory()

    def broken(obs):
        raise RuntimeError("policy exploded")

    session, streams = sim_session(core, broken)
    session.start()
    assert session._stop.wait(5.0)
    session.stop()
    assert session.stop_reason == "error"
    assert "policy exploded" in session.errors[0]


def test_run_session_stops_cleanly_on_time_and_summarizes(core_factory):
    core = core_factory()
    session, streams = sim_session(core, RandomWalk(5, 0))
    stop = threading.Event()

    def drive():  # a fake sound card pulling in real time's stead
        while not stop.is_set():
            if session.fifo.wait(lambda f: f.available >= 256, 0.05):
                streams[0].pull(256)

    ticks = []
    thread = threading.Thread(target=drive, daemon=True)
    session_start = session.start

    def start():
        session_start()
        thread.start()

    session.start = start
    summary = run_session(session, 0.5, on_tick=ticks.append, tick_s=0.1)
    stop.set()
    assert summary["stop_reason"] == "time up" and summary["blocks"] > 0
    assert summary["xruns"] == summary["late_blocks"] + summary["device_xruns"]
    assert len(ticks) >= 3 and streams[0].closed
    assert 0 < summary["block_thread_ms_mean"] <= summary["block_thread_ms_max"]
    text = report_markdown(summary, "test")
    assert "xruns" in text and DRONE in text


def test_target_after_follows_the_env_controls(core_factory):
    core = core_factory()
    knobs = np.full(5, 0.5, np.float32)
    np.testing.assert_allclose(core.target_after(knobs, np.ones(5)), 0.6)  # max_delta 0.1
    np.testing.assert_allclose(core.target_after(knobs, -5 * np.ones(5)), 0.4)  # clipped
    with pytest.raises(ValueError, match="5 finite numbers"):
        core.target_after(knobs, np.array([np.nan, 0, 0, 0, 0]))
    with pytest.raises(ValueError, match="5 finite numbers"):
        core.target_after(knobs, np.zeros(3))


def test_scripted_agent_is_deterministic_and_chases_its_sweep():
    a, b = Scripted(3, "delta", 0.1, 0.064), Scripted(3, "delta", 0.1, 0.064)
    obs = np.zeros(10, np.float32)
    assert np.array_equal(a(obs), b(obs))
    assert np.all(a(np.ones(10, np.float32)) < 0)  # knobs above the sweep: move down


# ---- errors -----------------------------------------------------------------------------------


def test_bad_requests_get_clear_errors(core_factory, tmp_path):
    with pytest.raises(ValueError, match="not a streaming env"):
        BlockCore("ddsp_gym/SineTuner-v1")
    with pytest.raises(ValueError, match="agent must be one of"):
        make_agent("clever", core_factory())
    with pytest.raises(ValueError, match="does not exist"):
        make_agent(str(tmp_path / "none.zip"), core_factory())
    with pytest.raises(NotImplementedError, match="plugin backend is not supported yet"):
        open_session(DRONE, backend="plugin")
    with pytest.raises(ValueError, match="--backend must be one of"):
        open_session(DRONE, backend="cloud")


def test_the_command_reports_errors_in_one_line(capsys, tmp_path):
    assert main(["live", DRONE, "--backend", "plugin", "--out", str(tmp_path)]) == 2
    assert "plugin backend is not supported yet" in capsys.readouterr().err
    assert main(["live"]) == 2
    assert "give a streaming env id" in capsys.readouterr().err
    assert main(["live", "ddsp_gym/Nope-v0", "--out", str(tmp_path)]) == 2


# ---- the watchdog's loop ---------------------------------------------------------------------


class FakePort:
    def __init__(self):
        self.panics = 0

    def panic(self):
        self.panics += 1


def test_watchdog_panics_when_the_pipe_closes():
    read, write = os.pipe()
    port = FakePort()
    os.write(write, b"...")
    os.close(write)  # what the kernel does when the runner dies, SIGKILL included
    assert watchdog.watch(read, port, heartbeat_s=5.0, log=lambda m: None) == "eof"
    assert port.panics == 1
    os.close(read)


def test_watchdog_panics_once_when_the_heartbeat_stops():
    read, write = os.pipe()
    port, lines = FakePort(), []
    thread = threading.Thread(target=watchdog.watch, args=(read, port, 0.05, lines.append))
    thread.start()
    os.write(write, b".")
    threading.Event().wait(0.3)  # several heartbeat periods of silence
    assert port.panics == 1 and "no heartbeat" in lines[0]
    os.close(write)
    thread.join(5.0)
    assert port.panics == 2 and not thread.is_alive()
    os.close(read)


def test_the_drone_map_fits_the_drone_and_moves_every_knob_monotonically():
    from ddsp_gym.backends.knob_map import load_knob_map
    from ddsp_gym.streaming.drone import DroneVoice

    knob_map, specs = load_knob_map("amsynth_drone"), DroneVoice().knob_specs
    knob_map.check_specs(specs)
    sent = [knob_map.encode(np.full(5, u), specs)[1] for u in np.linspace(0, 1, 9)]
    for spec in specs:
        values = [s[spec.name].value for s in sent]
        assert values == sorted(values) and values[0] < values[-1], (spec.name, values)
    # The level law: -30..-6 dB is master_vol 23..90 ((v / 127)^2 amplitude).
    assert (sent[0]["level"].value, sent[-1]["level"].value) == (23, 90)


def test_sigterm_stops_the_session_cleanly(core_factory, tmp_path):
    import signal

    core = core_factory()
    session, streams = sim_session(core, RandomWalk(5, 0), tmp_path)
    previous = signal.getsignal(signal.SIGTERM)
    sent = []

    def terminate_once_playing(s) -> None:
        # On a tick, i.e. once the session has started: a fixed timer could fire while a
        # loaded machine is still compiling the block function, before any stream opens.
        if not sent:
            sent.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    summary = run_session(session, 30.0, on_tick=terminate_once_playing, tick_s=0.05)
    assert summary["stop_reason"].startswith("terminated")
    assert signal.getsignal(signal.SIGTERM) is previous  # the handler is put back
    assert streams[0].closed and not any(t.is_alive() for t in session._threads)
    assert (tmp_path / "knobs.jsonl").read_text().count("\n") == session.blocks


def test_watchdog_tells_a_clean_stop_from_a_death():
    read, write = os.pipe()
    port = FakePort()
    os.write(write, watchdog.HEARTBEAT * 3 + watchdog.CLEAN_EXIT)
    os.close(write)
    assert watchdog.watch(read, port, heartbeat_s=5.0, log=lambda m: None) == "clean"
    assert port.panics == 1  # once more for good measure; no 3-s panic window after it
    os.close(read)
