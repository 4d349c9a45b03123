"""Live inputs and the live env, without a sound card: an effect fed by a fake input device
(its output is the offline env's on the same input, block for block), a recording played
in real time, JamPartner following a synthetic MIDI clock, and ``LiveEnv`` (gymnasium's
check_env, the offline env's rewards for the same knob trajectory, xruns, close)."""

from __future__ import annotations

import json
import threading
import time
from types import SimpleNamespace
from typing import Any

import jax
import numpy as np
import pytest
import soundfile as sf
from gymnasium.utils.env_checker import check_env

from ddsp_gym.cli import main
from ddsp_gym.live import LiveEnv
from ddsp_gym.live.clock import TICKS_PER_BEAT, ClockTracker
from ddsp_gym.live.core import BlockCore
from ddsp_gym.live.inputs import CaptureInput
from ddsp_gym.live.session import LiveError
from ddsp_gym.live.sim import SimLive
from ddsp_gym.streaming.gym_env import make_streaming_functional

PERFORMER = "ddsp_gym/PerformerAssistant-v0"
JAM = "ddsp_gym/JamPartner-v0"
DRONE = "ddsp_gym/Drone-v0"


class Held:
    """Delta 0: the knobs stay where the reset put them."""

    def __init__(self, d: int) -> None:
        self.d = d

    def __call__(self, obs):
        return np.zeros(self.d, np.float32)


class PullStream:
    """The output device, pulled by the test."""

    def __init__(self, callback, rate):
        self.callback, self.closed = callback, False

    def pull(self, frames: int) -> np.ndarray:
        out = np.full((frames, 1), np.nan, np.float32)
        self.callback(out, frames, None, SimpleNamespace(output_underflow=False))
        return out[:, 0]

    def close(self):
        self.closed = True


class FakeInputDevice:
    """An input device that delivers ``signal`` in 256-frame periods, as fast as the
    capture FIFO takes them (a device never waits; here the test's feeder does, so that
    nothing is dropped and the comparison is exact)."""

    def __init__(self, signal: np.ndarray):
        self.signal, self.closed = signal, False
        self.capture: CaptureInput | None = None

    def open(self, callback, rate):
        def feed():
            for start in range(0, len(self.signal), 256):
                chunk = self.signal[start : start + 256, None]
                while self.capture.fifo.space < len(chunk) and not self.closed:
                    time.sleep(0.002)
                if self.closed:
                    return
                callback(chunk, len(chunk), None, SimpleNamespace(input_overflow=False))

        threading.Thread(target=feed, daemon=True).start()
        return self

    def close(self):
        self.closed = True


def pulled_session(core: BlockCore, agent: Any, **options: Any) -> tuple[SimLive, list]:
    """A SimLive whose output streams are PullStreams the test pulls (returned in a list
    that fills when the session opens its output)."""
    streams: list[PullStream] = []

    def open_output(callback: Any, rate: int) -> PullStream:
        streams.append(PullStream(callback, rate))
        return streams[-1]

    return SimLive(core, agent, open_output, 16_000, **options), streams


def test_live_input_is_processed_as_the_offline_env_processes_it():
    n, blocks = 1024, 6
    rng = np.random.default_rng(0)
    t = np.arange(blocks * n + 8 * n) / 16_000
    signal = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + rng.uniform(-0.2, 0.2, t.shape))).astype(
        np.float32
    )
    core = BlockCore(PERFORMER, seed=4, input=np.zeros(1, np.float32))
    device = FakeInputDevice(signal)
    capture = CaptureInput(device.open, 16_000, core.sample_rate, core.block_size)
    device.capture = capture
    session, streams = pulled_session(core, Held(6), capture=capture)
    session.start()
    played = []
    for _ in range(blocks):
        assert session.fifo.wait(lambda f: f.available >= n, 10.0)
        played.append(streams[0].pull(n))
    session.stop("test")
    # Offline: the same reset (its warm-up heard silence), then the same input, held knobs.
    fenv, params = make_streaming_functional(PERFORMER)
    warm = np.zeros(fenv.warmup_blocks * n, np.float32)
    params = params._replace(input_audio=jax.numpy.asarray(np.concatenate([warm, signal])))
    _, state = fenv.reset(jax.random.PRNGKey(4), params)
    transition, offline = jax.jit(fenv.transition), []
    for _ in range(blocks):
        state, _, _ = transition(state, np.zeros(6, np.float32), params)
        offline.append(np.asarray(state.audio))
    np.testing.assert_allclose(np.concatenate(played), np.concatenate(offline), atol=1e-5)
    assert np.std(np.concatenate(played)) > 1e-3  # the effect had something to process
    assert capture.overruns == 0 and capture.underruns == 0 and session.xruns == 0
    assert device.closed and streams[0].closed


def test_an_input_that_stops_is_an_underrun_and_the_output_goes_on():
    core = BlockCore(PERFORMER, seed=0, input=np.zeros(1, np.float32))
    silent = SimpleNamespace(close=lambda: None)
    capture = CaptureInput(lambda cb, r: silent, 16_000, 16_000, core.block_size)
    capture.block_s = 0.01  # do not wait long for an input that never comes
    session, streams = pulled_session(core, Held(6), capture=capture)
    session.start()
    assert session.fifo.wait(lambda f: f.available >= 1024, 5.0)
    out = streams[0].pull(1024)
    session.stop("test")
    assert np.all(np.isfinite(out))
    assert capture.underruns >= 2 and session.xruns >= 2
    assert session.info()["input_underruns"] == capture.underruns
    # Over the top: a callback the FIFO cannot take counts an overrun.
    capture.callback(np.zeros((5000, 2), np.float32), 5000, None, None)
    assert capture.overruns == 1


def test_a_recording_plays_in_real_time_through_the_command(tmp_path, capsys):
    wav = tmp_path / "take.wav"
    t = np.arange(16_000) / 16_000
    sf.write(wav, 0.3 * np.sin(2 * np.pi * 330 * t), 16_000)
    out = tmp_path / "live"
    code = main(
        ["live", PERFORMER, "--input", str(wav), "--audio-out", "null", "--seconds", "1.5",
         "--out", str(out), "--agent", "scripted"]
    )  # fmt: skip
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    # 1.5 s of 64-ms blocks in real time, plus the blocks rendered ahead.
    assert 18 <= summary["blocks"] <= 30 and summary["errors"] == []
    played, rate = sf.read(out / "live.wav")
    assert rate == 16_000 and np.std(played) > 1e-3
    capsys.readouterr()
    missing = str(tmp_path / "nope.wav")
    assert main(["live", PERFORMER, "--input", missing, "--audio-out", "null"]) != 0
    assert "no such file" in capsys.readouterr().err


def test_jam_partner_follows_an_incoming_clock():
    core = BlockCore(JAM, seed=1)
    tracker = ClockTracker(latency_s=0.0)
    interval = 60.0 / (97.0 * TICKS_PER_BEAT)
    stop = threading.Event()
    first = time.monotonic() + 0.01

    def sender():
        k = 0
        while not stop.is_set():
            due = first + k * interval
            time.sleep(max(0.0, due - time.monotonic()))
            tracker.tick(due)  # timestamps as sent: a jitter-free clock
            k += 1

    threading.Thread(target=sender, daemon=True).start()
    session, streams = pulled_session(core, Held(8), beat=tracker)
    try:
        session.start()
        for _ in range(4):
            assert session.fifo.wait(lambda f: f.available >= 1024, 5.0)
            streams[0].pull(1024)
        assert session.fifo.wait(lambda f: f.available >= 1024, 5.0)
        clock = session.core.state.task.clock
        assert float(clock.tempo_bpm) == pytest.approx(97.0, rel=1e-3)
        assert float(clock.jitter_s) == 0.0
        # The grid's beats, mapped to wall time, fall on the sender's beats (+ latency_s,
        # which the task subtracts again when it scores onsets).
        wall_beat = float(clock.offset_s) + session._anchor - float(core.params.latency_s)
        period = 24 * interval
        error = (wall_beat - first + period / 2) % period - period / 2
        assert abs(error) < 0.01
        info = session.info()["clock"]
        assert info["locked"] and info["tempo_bpm"] == pytest.approx(97.0, rel=1e-3)
        obs = session.core.observation()
        assert obs[-3] == pytest.approx(97.0 / 200.0, rel=1e-3)  # the observed tempo
    finally:
        stop.set()
        session.stop("test")


def test_no_clock_is_a_clear_error():
    core = BlockCore(JAM, seed=1)
    session = SimLive(
        core, Held(8), lambda cb, r: PullStream(cb, r), 16_000,
        beat=ClockTracker(), clock_timeout_s=0.2,
    )  # fmt: skip
    with pytest.raises(LiveError, match="no MIDI clock received within 0.2 s"):
        session.start()
    session.stop("test")
    with pytest.raises(ValueError, match="follows no beat"):
        SimLive(BlockCore(DRONE), Held(5), lambda cb, r: None, 16_000, beat=ClockTracker())


# ---- the live env -------------------------------------------------------------------------


def test_live_env_passes_check_env():
    env = LiveEnv(DRONE, latency_blocks=3)
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()


def test_live_env_rewards_are_the_offline_env_for_the_same_knob_trajectory(tmp_path):
    env = LiveEnv(DRONE, latency_blocks=3, out_dir=tmp_path)
    obs0, _ = env.reset(seed=5)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (12, 5)).astype(np.float32)
    live = [env.step(a) for a in actions]
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(5, np.nan, np.float32))  # refused; nothing posted
    session = env.session
    env.close()
    assert session.done and session.stop_reason == "closed"
    # Offline: the same reset; the blocks rendered ahead and any held block hold the knobs.
    fenv, params = make_streaming_functional(DRONE)
    obs, state = fenv.reset(jax.random.PRNGKey(5), params)
    np.testing.assert_allclose(obs0, np.asarray(obs), atol=1e-6)
    transition = jax.jit(fenv.transition)
    hold = np.zeros(5, np.float32)
    for _ in range(3):
        state, _, _ = transition(state, hold, params)
    held = 0
    for a, (obs, reward, terminated, truncated, info) in zip(actions, live, strict=True):
        for _ in range(info["held_blocks"]):
            state, _, _ = transition(state, hold, params)
        held += info["held_blocks"]
        state, off_reward, _ = transition(state, a, params)
        assert reward == pytest.approx(float(off_reward), abs=1e-4)
        # Float rounding: the live core sets knobs as 2u - 1 then (a + 1) / 2.
        np.testing.assert_allclose(obs, np.asarray(fenv._observation(state)), atol=1e-3)
        assert not terminated and not truncated and info["xruns"] == 0
    assert held <= 2  # a fast agent gets (nearly) every block
    log = (tmp_path / "knobs.jsonl").read_text().splitlines()
    assert len(log) == session.blocks >= 3 + 12


def test_live_env_refuses_what_it_cannot_do():
    with pytest.raises(ValueError, match="backend"):
        LiveEnv(DRONE, backend="plugin")
    env = LiveEnv(DRONE)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(np.zeros(5, np.float32))
    env.close()


def test_live_inputs_on_the_wrong_env_are_refused(tmp_path):
    wav = tmp_path / "take.wav"
    sf.write(wav, np.zeros(1600), 16_000)
    with pytest.raises(ValueError, match="instrument"):
        LiveEnv(DRONE, live_input=str(wav))
    with pytest.raises(ValueError, match="clock-latency-ms"):
        LiveEnv(JAM, clock="virtual", clock_latency_ms=-1.0)
