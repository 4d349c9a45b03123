"""Physiology reward over Lab Streaming Layer, on this machine only: the LSL round trip,
a lost stream, delay compensation, smoothing, the simulated listener, BioFeedback-v1."""

from __future__ import annotations

import json
import math
import os
import shlex
import subprocess
import sys
import threading
import time
import uuid
import warnings

import gymnasium as gym
import numpy as np
import pytest

from ddsp_gym.physiology import (
    LOCAL_CONFIG,
    PhysiologyReward,
    SimulatedPhysiology,
    StreamNotFound,
    StreamQuery,
    StreamReader,
    Taste,
    audio_features,
    smoothed,
)
from ddsp_gym.physiology.simulated import CHANNELS
from ddsp_gym.physiology.stream import lsl, wait_for
from ddsp_gym.rewards import make_reward_source
from tests.conftest import make, require

require("pylsl", "the physiology tests need pylsl: pip install 'ddsp_gym[physiology]'")

BIO = "ddsp_gym/BioFeedback-v1"
VOLUME = "ddsp_gym/VolumeMatch-v1"
SR = 16_000


def _tone(hz: float, seconds: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _noise(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    return (0.3 * np.random.default_rng(seed).standard_normal(int(seconds * SR))).astype(np.float32)


def _level(calm: float, channel: int = 0) -> float:
    """A noiseless listener's settled value of ``channel`` at ``calm``."""
    _, _, rest, calm_level, _ = CHANNELS[channel]
    return rest + (calm_level - rest) * calm


class Publisher:
    """A device stand-in: an LSL outlet pushing ``value(t)`` at ``rate_hz`` from a thread,
    stamped with the LSL clock, until :meth:`stop` (which destroys the outlet)."""

    def __init__(self, value=lambda t: 1.0, rate_hz: float = 100.0) -> None:
        pylsl = lsl()
        self.name = f"ddsp_gym-test-{uuid.uuid4().hex[:8]}"
        info = pylsl.StreamInfo(self.name, "Test", 1, rate_hz, pylsl.cf_double64, self.name)
        info.desc().append_child("channels").append_child("channel").append_child_value(
            "label", "hr"
        )
        self.outlet = pylsl.StreamOutlet(info)
        self.value, self.period, self.clock = value, 1.0 / rate_hz, pylsl.local_clock
        self.pushed: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            stamp = self.clock()
            value = float(self.value(stamp))
            self.pushed.append((stamp, value))  # first: a reader may see the sample at once
            self.outlet.push_sample([value], stamp)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.outlet = None  # pylsl destroys the outlet: the stream is gone


# ---- machine-only LSL ----------------------------------------------------------------

_PROBE = r"""
import importlib.util, json, os, sys, uuid
spec = importlib.util.spec_from_file_location("stream", sys.argv[1])
stream = sys.modules["stream"] = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stream)
pylsl = stream.lsl(sys.argv[2])
sid = uuid.uuid4().hex
outlet = pylsl.StreamOutlet(pylsl.StreamInfo("probe", "Test", 1, 10, pylsl.cf_double64, sid))
found = pylsl.resolve_byprop("source_id", sid, minimum=1, timeout=5.0)
inodes = set()
for fd in os.listdir("/proc/self/fd"):  # liblsl's threads open and close some as we look
    try:
        link = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if link.startswith("socket:"):
        inodes.add(link[8:-1])
binds = []
for table in ("/proc/net/udp", "/proc/net/udp6"):
    for line in open(table).read().splitlines()[1:]:
        fields = line.split()
        address, port = fields[1].split(":")
        if fields[9] in inodes and int(port, 16) == 16571:  # liblsl's multicast port
            binds.append(address)
print(json.dumps({"resolved": len(found), "binds": binds,
                  "config": os.environ.get("LSLAPICFG")}))
"""


def _probe(tmp_path, *configs: str, namespace: bool = False) -> list[dict] | dict:
    """Open, resolve and inspect an LSL stream in a fresh process per config; with
    ``namespace``, inside a user network namespace holding only loopback (skips where
    unprivileged user namespaces are not available)."""
    stream_py = os.path.join(os.path.dirname(LOCAL_CONFIG), "stream.py")
    env = {k: v for k, v in os.environ.items() if k != "LSLAPICFG"}
    env["HOME"] = str(tmp_path)  # no ~/lsl_api/lsl_api.cfg of the user's
    runs = [shlex.join([sys.executable, "-c", _PROBE, stream_py, c]) for c in configs]
    argv = ["sh", "-c", " && ".join(runs)]
    if namespace:
        argv = ["unshare", "-rn", "sh", "-c", " && ".join(["ip link set lo up", *runs])]
    try:
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=60)  # fmt: skip
    except FileNotFoundError:
        pytest.skip("unshare (util-linux) is not installed")
    if namespace and done.returncode and "unshare" in done.stderr:
        pytest.skip(f"user network namespaces are not available here: {done.stderr[-300:]}")
    assert done.returncode == 0, done.stderr[-2000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == len(configs), done.stdout
    return reports if len(reports) > 1 else reports[0]


def test_the_local_config_keeps_lsl_discovery_on_loopback(tmp_path):
    local = _probe(tmp_path, "local")
    assert local["config"] == str(LOCAL_CONFIG.resolve()) and local["resolved"] == 1
    # The multicast responder listens on 127.0.0.1 only (hex, little-endian: 0100007F).
    assert local["binds"] == ["0100007F"], local


def test_lsl_works_in_a_loopback_only_network_namespace_and_the_probe_can_tell(tmp_path):
    """In a network namespace with no interface but loopback, the local config's round trip
    works (LSL needs nothing else); liblsl's own default config, probed only there (where
    its site-wide multicast cannot leave the machine), listens on every interface."""
    local, system = _probe(tmp_path, "local", "system", namespace=True)
    assert local["resolved"] == 1 and local["binds"] == ["0100007F"], local
    assert system["config"] is None and system["resolved"] == 1
    assert "00000000" in system["binds"], system  # 0.0.0.0: the probe tells them apart


def test_local_lsl_config_refuses_a_second_config_once_liblsl_runs(tmp_path):
    lsl()  # this process runs liblsl under the local config from here on
    other = tmp_path / "other.cfg"
    other.write_text("[multicast]\nResolveScope = link\n")
    with pytest.raises(RuntimeError, match="reads its config once"):
        lsl(other)
    with pytest.raises(FileNotFoundError):
        lsl(tmp_path / "missing.cfg")


# ---- the LSL round trip and a lost stream ------------------------------------------


def test_lsl_round_trip_values_and_timestamps_arrive():
    publisher = Publisher(value=lambda t: 60.0 + (t % 1.0))
    try:
        # Raw timestamps (no clock sync, no dejitter): they must come back exactly.
        query = StreamQuery.parse(publisher.name)
        reader = StreamReader(query, resolve_timeout_s=5.0, clock_sync=False)
        reader.connect()
        assert reader.channel_labels == ["hr"] and reader.nominal_srate == 100.0
        until = lsl().local_clock() + 0.3
        started = time.monotonic()
        wait_for(reader, until, timeout_s=2.0)
        assert time.monotonic() - started < 2.0
        got = reader.samples
        assert got.shape[1] == 2 and len(got) >= 10 and got[-1, 0] >= until
        sent = dict(publisher.pushed)
        for stamp, value in got.tolist():  # every sample arrived as sent
            assert sent[stamp] == value
        reader.close()
    finally:
        publisher.stop()


def test_a_stream_not_found_is_a_clear_error_at_reset():
    env = make(VOLUME, reward=PhysiologyReward(stream="name=nobody-here", resolve_timeout_s=0.3))
    with pytest.raises(StreamNotFound, match="no LSL stream with name='nobody-here'"):
        env.reset(seed=0)


def test_a_lost_stream_truncates_the_episode_and_keeps_the_samples(tmp_path):
    publisher = Publisher(value=lambda t: 70.0)
    record = tmp_path / "session.csv"
    source = PhysiologyReward(
        stream=publisher.name, channel="hr", goal="target", target=65.0, delay_s=0.05,
        window_s=0.1, timeout_s=0.5, resolve_timeout_s=5.0, record=str(record),
    )  # fmt: skip
    env = make(VOLUME, reward=source)
    env.reset(seed=0)
    for _ in range(3):
        _, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
        assert reward == pytest.approx(-5.0) and not truncated and not terminated
        assert info["reward_source"]["stream_lost"] is False
        assert info["reward_source"]["samples"] >= 5
    kept = len(source.samples)
    publisher.stop()  # the device's app quits mid-episode
    started = time.monotonic()
    with pytest.warns(UserWarning, match="physiology stream lost"):
        _, reward, terminated, truncated, info = env.step(np.zeros(1, np.float32))
    assert time.monotonic() - started < 0.5 + 1.0  # the timeout, not a hang
    assert truncated and not terminated and reward == 0.0
    assert info["reward_source"]["stream_lost"] is True
    assert "sent nothing for 0.5 s" in info["reward_source"]["error"]
    assert len(source.samples) >= kept > 0  # nothing read so far is lost
    # Stepping on regardless does not wait again, nor raise.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert env.step(np.zeros(1, np.float32))[3]
    # The next episode looks for the stream again and says it is gone.
    source.resolve_timeout_s = 0.3
    with pytest.raises(StreamNotFound):
        env.reset(seed=1)
    env.close()
    saved = np.loadtxt(record, delimiter=",", skiprows=1)
    assert record.read_text().splitlines()[0] == "timestamp,hr"
    np.testing.assert_array_equal(saved, source.samples)
    assert len(saved) >= kept and np.all(saved[:, 1] == 70.0)


# ---- delay compensation and smoothing -----------------------------------------------


def _listener(**options) -> PhysiologyReward:
    source = PhysiologyReward(noise=0.0, tau_s=0.01, latency_s=1.0, **options)
    source.begin_episode(np.zeros(8, np.float32), True)
    source._sample_rate = SR
    return source


@pytest.mark.parametrize("time_scale", [0.0, 40.0])
def test_delay_compensation_reads_the_response_to_this_sound(time_scale):
    """A listener that answers 1 s after each sound: read 1 s late, the window holds this
    sound's response; read at once, the previous sound's."""
    calm_tone = Taste.draw(0).calm(audio_features(_tone(500.0), SR))
    calm_noise = Taste.draw(0).calm(audio_features(_noise(), SR))
    assert abs(calm_tone - calm_noise) > 0.2  # the two sounds move the listener apart
    compensated = _listener(delay_s=1.0, window_s=1.0, time_scale=time_scale)
    naive = _listener(delay_s=0.0, window_s=1.0, time_scale=time_scale)
    try:
        for source in (compensated, naive):
            source.rate(_tone(500.0), {})
        noise_now = compensated.rate(_noise(), {})
        noise_naive = naive.rate(_noise(), {})
        threads = [s.simulator._thread for s in (compensated, naive)]
        assert all(t is not None and t.is_alive() for t in threads) == (time_scale > 0)
    finally:
        compensated.close()
        naive.close()
    assert not any(t is not None and t.is_alive() for t in threads)  # close() stops them
    assert noise_now.reward == pytest.approx(_level(calm_noise), abs=1e-3)
    assert noise_naive.reward == pytest.approx(_level(calm_tone), abs=1e-3)
    assert noise_now.info["samples"] == noise_naive.info["samples"] == 10  # 1 s at 10 Hz


def test_smoothing_mean_median_and_ema():
    stamps = np.arange(10) * 0.1
    values = np.array([1.0] * 9 + [11.0])  # one artefact at the end
    assert smoothed(stamps, values, "mean") == pytest.approx(2.0)
    assert smoothed(stamps, values, "median") == 1.0
    # EMA: the last sample moves it by 1 - exp(-dt / tau) of the jump.
    assert smoothed(stamps, values, "ema", tau_s=0.5) == pytest.approx(
        1.0 + 10.0 * (1 - math.exp(-0.1 / 0.5))
    )
    with pytest.raises(ValueError, match="smoothing must be one of"):
        smoothed(stamps, values, "mode")
    with pytest.raises(ValueError, match="no samples"):
        smoothed(stamps[:0], values[:0], "mean")


def test_median_smoothing_resists_an_artefact_in_the_stream():
    spike = {"at": math.inf}  # a 50 ms artefact 0.1 s into the window
    publisher = Publisher(lambda t: 200.0 if 0.1 <= t - spike["at"] < 0.15 else 60.0)
    readings = {}
    try:
        for method in ("mean", "median"):
            source = PhysiologyReward(stream=publisher.name, smoothing=method, channel=0,
                                      delay_s=0.0, window_s=0.3)  # fmt: skip
            source.begin_episode(np.zeros(8, np.float32), True)
            spike["at"] = lsl().local_clock()
            readings[method] = source.rate(np.zeros(8, np.float32), {}).info["value"]
            source.close()
    finally:
        publisher.stop()
    assert readings["median"] == 60.0 and 70.0 < readings["mean"] < 110.0, readings


@pytest.mark.parametrize(
    "options, message",
    [
        ({"goal": "up"}, "goal must be one of"),
        ({"goal": "target"}, "needs a finite target"),
        ({"smoothing": "max"}, "smoothing must be one of"),
        ({"window_s": 0.0}, "window_s must be > 0"),
        ({"delay_s": -1.0}, "delay_s must be >= 0"),
        ({"channel": "ecg"}, "channels are"),
        ({"stream": "type="}, "expected PROP=VALUE"),
    ],
)
def test_bad_options_are_refused(options, message):
    with pytest.raises(ValueError, match=message):
        PhysiologyReward(**options)


def test_goals_turn_the_value_into_a_reward():
    def judge(**options):
        return PhysiologyReward(**options)._judge(0.6)

    assert judge(goal="maximize", success_at=0.5) == (0.6, -0.6, True)
    assert judge(goal="minimize", scale=2.0) == (-0.3, 0.6, False)
    reward, distance, success = judge(goal="target", target=0.5, success_at=0.05)
    assert (reward, distance, success) == (pytest.approx(-0.1), pytest.approx(0.1), False)


# ---- the simulated listener ---------------------------------------------------------


def test_the_simulated_listener_is_deterministic_for_a_seed():
    features = audio_features(_tone(400.0), SR)

    def run(seed, restart=7):
        sim = SimulatedPhysiology(seed=seed)
        sim.restart(restart)
        return np.concatenate([sim.hear(features, 2.0)[1] for _ in range(3)])

    np.testing.assert_array_equal(run(3), run(3))
    assert not np.array_equal(run(3)[:, 1:], run(4)[:, 1:])  # another listener
    assert not np.array_equal(run(3)[:, 1:], run(3, restart=8)[:, 1:])  # another episode
    samples = run(3)
    assert np.all(np.diff(samples[:, 0]) > 0)  # the clock only goes on
    # It responds with a lag: the first second of each sound is still the rest level's.
    assert np.all(np.abs(samples[:9, 1] - _level(0.3)) < 5 * CHANNELS[0][4])
    assert Taste.draw(3) != Taste.draw(4)


def test_the_listener_prefers_warm_steady_pure_sounds_in_its_own_taste():
    taste = Taste.draw(0)
    at_home = taste.calm(audio_features(_tone(taste.preferred_centroid_hz), SR))
    assert at_home > 0.9
    assert taste.calm(audio_features(_tone(taste.preferred_centroid_hz * 8), SR)) < at_home / 2
    assert taste.calm(audio_features(_noise(), SR)) < at_home / 2
    chirp = np.sin(2 * np.pi * np.cumsum(np.geomspace(200, 3200, SR // 2)) / SR)
    assert taste.calm(audio_features(chirp.astype(np.float32), SR)) < at_home / 2


# ---- BioFeedback-v1 ----------------------------------------------------------------


def test_the_registry_names_the_physiology_source():
    spec = gym.spec(BIO)
    assert spec.kwargs["reward"]["source"] == "physiology"
    source = make_reward_source(spec.kwargs["reward"])
    assert isinstance(source, PhysiologyReward) and source.simulated
    source.close()  # never connected: nothing to stop


def test_biofeedback_episodes_run_and_replay_for_a_seed():
    actions = np.random.default_rng(0).uniform(-1, 1, (6, 6)).astype(np.float32)
    runs = []
    for _ in range(2):
        env = make(BIO)
        env.reset(seed=5)
        steps = [env.step(a) for a in actions]
        env.reset(seed=5)  # the same episode again on the same env
        again = [env.step(a)[1] for a in actions]
        source = env.unwrapped.reward_source
        thread = source.simulator._thread
        runs.append([s[1] for s in steps])
        assert again == runs[-1]
        env.close()
        assert source.simulator is None and (thread is None or not thread.is_alive())
    assert runs[0] == runs[1]
    for _, reward, terminated, truncated, info in steps:
        report = info["reward_source"]
        assert np.isfinite(reward) and not truncated and not terminated
        assert report["value"] == reward and report["samples"] == 20  # 2 s at 10 Hz
    assert len(set(runs[0])) == len(runs[0])  # it answers each sound


def _episode_calm(env) -> float:
    return Taste.draw(0).calm(audio_features(env.unwrapped.current_audio(), SR))


def test_a_hill_climb_calms_the_listener_more_than_random_knobs():
    """Random knobs against a (1+1) hill climb on the noisy, lagged reward, same budget;
    judged by the listener's hidden calm of the final sound, not by the reward."""
    budget, seeds = 40, (0, 1)
    env = make(BIO)
    random_calm, climbed_calm = [], []
    for seed in seeds:
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        for _ in range(budget):
            env.step(rng.uniform(-1, 1, 6).astype(np.float32))
            random_calm.append(_episode_calm(env))
        env.reset(seed=seed)
        best = rng.uniform(-1, 1, 6).astype(np.float32)
        best_reward = env.step(best)[1]
        for _ in range(budget - 1):
            candidate = np.clip(best + rng.normal(0, 0.3, 6), -1, 1).astype(np.float32)
            reward = env.step(candidate)[1]
            if reward > best_reward:
                best, best_reward = candidate, reward
        env.step(best)
        climbed_calm.append(_episode_calm(env))
    env.close()
    assert np.mean(climbed_calm) > np.mean(random_calm) + 0.2, (climbed_calm, np.mean(random_calm))


# ---- the CLI ------------------------------------------------------------------------


def test_cli_listen_prints_a_streams_channels_and_rate(capsys):
    from ddsp_gym.cli import main

    publisher = Publisher(value=lambda t: 61.0, rate_hz=50.0)
    try:
        assert main(["physiology", "listen", publisher.name, "--seconds", "0.5"]) == 0
    finally:
        publisher.stop()
    report = json.loads(capsys.readouterr().out)
    assert report["channels"] == ["hr"] and report["nominal_rate_hz"] == 50.0
    assert report["samples"] >= 10 and report["last"] == {"hr": 61.0}
    assert 25.0 < report["measured_rate_hz"] < 75.0
    assert main(["physiology", "listen", "name=nobody-here", "--timeout", "0.3"]) == 2
    assert "no LSL stream with name='nobody-here'" in capsys.readouterr().err


def test_cli_bench_writes_its_results(tmp_path, capsys):
    from ddsp_gym.cli import main

    assert main(["physiology", "bench", "--seeds", "1", "--budget", "3", "-o", str(tmp_path)]) == 0
    saved = json.loads((tmp_path / "physiology.json").read_text())
    assert saved["budget"] == 3 and len(saved["rows"]) == 1
    assert 0.0 < saved["mean"]["random_mean_calm"] < 1.0
    assert "| mean |" in (tmp_path / "physiology.md").read_text()
    assert main(["physiology", "bench", "--budget", "1"]) == 2


def test_a_channel_the_stream_lacks_is_a_clear_error_at_reset():
    publisher = Publisher()
    try:
        source = PhysiologyReward(stream=publisher.name, channel="alpha")
        with pytest.raises(ValueError, match=r"no channel 'alpha'; its channels: \['hr'\]"):
            source.begin_episode(np.zeros(8, np.float32), True)
        assert source.reader is None
        source = PhysiologyReward(stream=publisher.name, channel=3)
        with pytest.raises(ValueError, match="channel 3 is out of range"):
            source.begin_episode(np.zeros(8, np.float32), True)
    finally:
        publisher.stop()
