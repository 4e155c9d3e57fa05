"""The worker publishes once per socket read (feeds/worker.py): frames that picows says are not
the last of their read leave their records held back, the read's last frame publishes them.

The ring must hold exactly what per-frame publishing gives - same records, same order, STATUS
records (a gap the keeper finds mid-read) in the same place - with the same counters; a read
that ends on a control frame (no last data frame) is published by the loop's backstop."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

import feeds
from shm.record import Kind

READ = 7            # frames per simulated socket read


class _Conn:
    index = 0

    def rotate(self, reason):
        pass


class _Sock:
    incoming = got_data = False
    last_frame_ns = 0
    conn = _Conn()


def _worker(shm_names, venue, tag):
    from feeds.worker import FeedWorker
    w = FeedWorker(venue, ["X"], shm_names(f"ring{tag}"), registry=shm_names(f"reg{tag}"),
                   ring_capacity=1 << 16)
    w._open_shm()
    w.keeper.request_snapshot = lambda inst: None
    sock = _Sock()
    sock.decoder = feeds.venue(venue).decoder(w.instruments)
    return w, sock


def _ring(w):
    """Published records with the clock fields zeroed (each run stamps its own time)."""
    ring = w.ring
    a = ring.records[:ring.published].copy()
    a["ts_recv"] = 0
    a["ts_event"][a["kind"] == Kind.STATUS] = 0
    return a


def _counters(w):
    return {k: w.ring.word(k) for k in ("frames", "messages", "bytes_in", "gaps", "resyncs",
                                        "decode_errors")}


def _close(w):
    w.writer.close()
    w.ring.close()


@pytest.fixture(scope="module")
def bybit_frames():
    from tools.bench_feed import record_flood
    warm, frames = record_flood("bybit", 2, 1500)
    return warm, frames


@pytest.mark.parametrize("gap", [False, True])
def test_read_batches_publish_what_per_frame_publishing_does(shm_names, bybit_frames, gap):
    warm, frames = bybit_frames
    frames = list(frames)
    if gap:                                 # a book delta lost mid-read: the keeper's STATUS
        book = [i for i, f in enumerate(frames) if b'"orderbook.' in f and b'"delta"' in f]
        del frames[book[len(book) // 2]]
    a, sa = _worker(shm_names, "bybit", "a")
    b, sb = _worker(shm_names, "bybit", "b")
    try:
        for f in warm:
            a.on_frame(f, sa)
            b.on_frame(f, sb)
        for f in frames:
            a.on_frame(f, sa)                # one frame per read: published at once

        async def reads():
            b._loop = asyncio.get_running_loop()
            for i, f in enumerate(frames):
                b.on_frame(f, sb, (i + 1) % READ != 0 and i + 1 < len(frames))
                if (i + 1) % READ == 0:
                    await asyncio.sleep(0)
        asyncio.run(reads())
        ra, rb = _ring(a), _ring(b)
        assert len(ra) == len(rb) > len(frames)
        assert np.array_equal(ra, rb)
        assert _counters(a) == _counters(b)
        if gap:
            assert a.ring.word("gaps") >= 1 and (ra["kind"] == Kind.STATUS).any()
    finally:
        _close(a)
        _close(b)


def test_a_read_ending_on_a_control_frame_is_published_by_the_backstop(shm_names, bybit_frames):
    warm, frames = bybit_frames
    w, s = _worker(shm_names, "bybit", "c")
    try:
        for f in warm:
            w.on_frame(f, s)

        async def read():
            w._loop = asyncio.get_running_loop()
            before = w.ring.published
            for f in frames[:5]:
                w.on_frame(f, s, True)          # the read's last frame was a PING: never "last"
            held = w.ring.published
            await asyncio.sleep(0)              # the loop's next turn
            await asyncio.sleep(0)
            return before, held, w.ring.published
        before, held, after = asyncio.run(read())
        assert held == before                   # held back while the read went on
        assert after > before                   # ... and published without another frame
        assert w.lane.holding == 0 and w.ring.word("messages") > 0
    finally:
        _close(w)


def test_a_bad_frame_mid_read_drops_only_its_own_records(shm_names, bybit_frames):
    warm, frames = bybit_frames
    trades = [f for f in frames if b'"publicTrade.' in f][:4]
    a, sa = _worker(shm_names, "bybit", "d")
    b, sb = _worker(shm_names, "bybit", "e")
    try:
        for f in warm:
            a.on_frame(f, sa)
            b.on_frame(f, sb)
        bad = trades[1][:-5]                    # truncated JSON

        async def read():
            b._loop = asyncio.get_running_loop()
            for f in (trades[0], bad, trades[2]):
                b.on_frame(f, sb, True)
            b.on_frame(trades[3], sb, False)
        for f in (trades[0], bad, trades[2], trades[3]):
            a.on_frame(f, sa)
        asyncio.run(read())
        assert np.array_equal(_ring(a), _ring(b))
        assert b.ring.word("decode_errors") == 1
    finally:
        _close(a)
        _close(b)
