"""The MIDI clock tracker on synthetic tick streams: jitter, the rig's late deliveries,
tempo changes, dropouts, Start / Stop, and no clock at all (no MIDI needed)."""

from __future__ import annotations

import numpy as np
import pytest

from ddsp_gym.live.clock import CLOCK, START, STOP, TICKS_PER_BEAT, ClockTracker


def tick_grid(bpm: float, n: int, t0: float = 10.0) -> np.ndarray:
    return t0 + np.arange(n) * 60.0 / (bpm * TICKS_PER_BEAT)


def feed(tracker: ClockTracker, times) -> None:
    for t in times:
        tracker.tick(float(t))


def phase_error_s(est, true_beat: float) -> float:
    """Signed distance from ``true_beat`` to the nearest beat the estimate predicts."""
    period = est.beat_period_s
    return (est.beat_s - true_beat + period / 2) % period - period / 2


def test_jittered_clock_gives_tempo_and_phase():
    rng = np.random.default_rng(0)
    sent = tick_grid(120.0, 400)
    tracker = ClockTracker()
    feed(tracker, sent + rng.normal(0.0, 0.001, sent.shape))
    est = tracker.estimate(sent[-1] + 0.01)
    assert est is not None and est.running
    assert est.tempo_bpm == pytest.approx(120.0, rel=2e-3)
    # Tick 0 is a beat. (Gaussian jitter is two-sided, unlike real arrivals: the line
    # through the least late quarter sits a little early.)
    assert abs(phase_error_s(est, sent[0])) < 0.004
    assert est.dropped_ticks == 0 and est.ticks == 400
    assert est.beat_phase(sent[240]) == pytest.approx(0.0, abs=0.01) or est.beat_phase(
        sent[240]
    ) == pytest.approx(1.0, abs=0.01)


def test_rig_like_late_deliveries_are_compensated():
    # The JACK rig delivers MIDI once per audio period: 0-21 ms late. The line follows the
    # earliest-arriving quarter of the ticks, ~3 ms late: that is the latency to compensate.
    rng = np.random.default_rng(1)
    sent = tick_grid(120.0, 300)
    arrived = sent + rng.uniform(0.0, 0.021, sent.shape)
    tracker = ClockTracker(latency_s=0.003)
    feed(tracker, arrived)
    est = tracker.estimate(arrived[-1])
    assert est.tempo_bpm == pytest.approx(120.0, rel=0.005)
    assert abs(phase_error_s(est, sent[0])) < 0.003
    assert est.dropped_ticks == 0  # late deliveries are not lost ticks
    # Uncompensated, the beat lands that much late: the latency is what moves it.
    raw = ClockTracker()
    feed(raw, arrived)
    assert phase_error_s(raw.estimate(arrived[-1]), sent[0]) == pytest.approx(0.003, abs=0.003)


def test_a_tempo_change_is_followed_and_the_new_grid_locked():
    rng = np.random.default_rng(2)
    before = tick_grid(120.0, 192)
    interval = 60.0 / (90.0 * TICKS_PER_BEAT)
    after = before[-1] + interval * np.arange(1, 241)  # tick 192 onwards, a beat at 192
    arrived = np.concatenate([before, after]) + rng.normal(0.0, 0.0005, 432)
    tracker = ClockTracker()
    true_beat = before[-1] + interval  # tick 192: a multiple of 24
    # Within two beats of the change (the 96-tick window alone would take four).
    feed(tracker, arrived[: 192 + 48])
    est = tracker.estimate(arrived[192 + 47])
    assert est.tempo_bpm == pytest.approx(90.0, rel=0.01)
    assert abs(phase_error_s(est, true_beat)) < 0.003
    assert tracker.tempo_resets >= 1
    feed(tracker, arrived[192 + 48 :])
    est = tracker.estimate(arrived[-1])
    assert est.tempo_bpm == pytest.approx(90.0, rel=2e-3)
    assert abs(phase_error_s(est, true_beat)) < 0.002 and est.dropped_ticks == 0


def test_a_dropout_keeps_the_phase_and_counts_the_missing_ticks():
    rng = np.random.default_rng(3)
    sent = tick_grid(120.0, 300)
    kept = np.concatenate([sent[:100], sent[148:]])  # two beats lost (1 s)
    tracker = ClockTracker(stale_s=0.5)
    for t in kept[:100]:
        tracker.tick(float(t) + rng.normal(0.0, 0.001))
    # During the gap the clock is gone: no estimate rather than a stale one.
    assert tracker.estimate(sent[100]) is not None
    assert tracker.estimate(sent[100] + 0.6) is None
    feed(tracker, kept[100:] + rng.normal(0.0, 0.001, len(kept) - 100))
    est = tracker.estimate(sent[-1])
    assert est.dropped_ticks == 48
    assert est.tempo_bpm == pytest.approx(120.0, rel=2e-3)
    assert abs(phase_error_s(est, sent[0])) < 0.002


def test_no_clock_gives_none_and_start_stop_set_the_downbeat():
    tracker = ClockTracker(min_ticks=12)
    assert tracker.estimate(0.0) is None
    feed(tracker, tick_grid(100.0, 11))
    assert tracker.estimate(10.5) is None  # 11 ticks: not enough yet
    # A Start mid-stream: the next tick is beat 1, whatever came before.
    tracker.message(START, 11.0)
    grid = tick_grid(100.0, 50, t0=11.013)
    for t in grid:
        tracker.message(CLOCK, float(t))
    est = tracker.estimate(grid[-1])
    assert est.running and abs(phase_error_s(est, grid[0])) < 1e-6
    assert est.tempo_bpm == pytest.approx(100.0, rel=1e-6)
    tracker.message(STOP, grid[-1])
    assert not tracker.estimate(grid[-1]).running  # ticks still give the tempo


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="window"):
        ClockTracker(window=2)
    with pytest.raises(ValueError, match="min_ticks"):
        ClockTracker(window=8, min_ticks=9)
    with pytest.raises(ValueError, match="stale_s"):
        ClockTracker(stale_s=0.0)


def test_a_loaded_machine_delivering_late_and_in_bursts_loses_nothing():
    # The rig under load: JACK-period quantization, plus a 150-ms stall once a second
    # after which the held-up ticks arrive at once (a burst at the same instant). A
    # least-squares line through all the ticks would put the beat ~11 ms late; the
    # line through the least late quarter does not lean toward the stalls.
    rng = np.random.default_rng(4)
    sent = tick_grid(120.0, 480)
    arrived = sent + rng.uniform(0.0, 0.021, sent.shape)
    for stall in np.arange(10.3, sent[-1], 1.0):
        held = (arrived > stall) & (arrived < stall + 0.15)
        arrived[held] = stall + 0.15
    arrived = np.maximum.accumulate(arrived)
    tracker = ClockTracker(latency_s=0.003)
    for k, t in enumerate(arrived):
        tracker.tick(float(t))
        if k > 100 and k % 24 == 0:
            est = tracker.estimate(float(t))
            assert est is not None and est.tempo_bpm == pytest.approx(120.0, rel=0.01)
    est = tracker.estimate(float(arrived[-1]))
    assert est.dropped_ticks == 0 and tracker.tempo_resets == 0
    assert abs(phase_error_s(est, sent[0])) < 0.008


def test_a_long_delay_that_ends_is_not_taken_for_lost_ticks():
    # For a second every tick comes 60 ms (3 intervals) late, at its pace (the JACK graph
    # running late under load): from arrival times alone that is what 3 lost ticks look
    # like too. Counting every tick received keeps the count right here.
    rng = np.random.default_rng(6)
    sent = tick_grid(120.0, 400)
    arrived = sent + rng.uniform(0.0, 0.021, sent.shape)
    arrived[200:248] += 0.0625
    arrived = np.maximum.accumulate(arrived)
    tracker = ClockTracker(latency_s=0.003)
    feed(tracker, arrived)
    est = tracker.estimate(float(arrived[-1]))
    assert est.dropped_ticks == 0
    assert abs(phase_error_s(est, sent[0])) < 0.004
    assert est.tempo_bpm == pytest.approx(120.0, rel=0.005)
