"""`tickring bench feed`'s same-run floor and its in-process frames.

The flood figure is read against a floor measured in the same flood (a picows client on the
worker's CPU that only receives, or also orjson-parses, each frame), and the in-process figure
must use the frames the flood sends: recorded from a flood that starts at the first subscribe,
a venue that subscribes with several messages (Kraken: trade, ticker, book) gave trades only.
Structure and sanity only: speed figures belong in `tickring bench feed --json`."""
from __future__ import annotations

import os

import pytest


@pytest.fixture
def flooding_sim():
    from feeds.sim import start_in_background
    sim = start_in_background(["binance"], symbols=2, rate=0, seed=5)       # rate 0: flood
    try:
        yield sim
    finally:
        sim.stop()


def test_floor_counts_and_parses_the_flood(flooding_sim):
    from feeds.sim.bench import FLOOR_WORK, floor
    syms = flooding_sim.symbols("binance")
    cpu = sorted(os.sched_getaffinity(0))[-1]
    for work in FLOOR_WORK:
        r = floor(flooding_sim, "binance", syms, 1.0, cpu=cpu, work=work, warmup=0.2)
        assert set(r) == {"frames_per_s", "cpu_us_per_frame", "cpu_share"}, r
        assert r["frames_per_s"] > 1000, (work, r)
        assert r["cpu_us_per_frame"] > 0 and 0 < r["cpu_share"] <= 1.5, (work, r)
    with pytest.raises(ValueError, match="floor work"):
        floor(flooding_sim, "binance", syms, 0.1, work="decode")


def test_flood_reports_its_floor_and_ratios(shm_names):
    from tools.bench_feed import bench_flood
    r = bench_flood("binance", 2, 1.0, shm_names(""), capacity_seconds=0.5)
    assert set(r["floor"]) == {"recv_only", "recv_orjson"}
    for work, f in r["floor"].items():
        assert f["frames_per_s"] > 0 and f["cpu_us_per_frame"] > 0, (work, f)
        ratio = r["cpu_per_frame_vs_floor"][work]
        assert ratio > 0
        assert ratio == pytest.approx(r["cpu_us_per_frame"] / f["cpu_us_per_frame"], rel=0.02)
    assert r["frames_per_s"] > 0 and r["msgs_per_s"] > 0 and r["bytes_per_frame"] > 0
    assert r["decode_errors"] == 0 and r["gaps_in_flood"] == 0


def test_in_process_frames_are_the_flood_mix(shm_names):
    """Kraken subscribes trade, ticker and book in three messages: the recorded flood must
    carry all three, and the warm-up (snapshots) must sync the books before the timed part."""
    from tools.bench_feed import bench_in_process, record_flood
    warm, frames = record_flood("kraken", 2, 3000)
    assert len(frames) == 3000 and warm
    channels = {c for c in (b'"channel":"trade"', b'"channel":"ticker"', b'"channel":"book"')
                if any(c in f for f in frames)}
    assert len(channels) == 3, channels
    r = bench_in_process("kraken", frames, shm_names(""), warm)
    assert r["frames"] == 3000 and r["decode_errors"] == 0 and r["gaps"] == 0
    assert r["records_per_msg"] > 1.0           # book messages carry several levels
