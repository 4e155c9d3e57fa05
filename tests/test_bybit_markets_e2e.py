"""One Bybit worker carries spot and linear at once: "BTCUSDT" and "perp:BTCUSDT" are two
instruments on two routes (/v5/public/spot and /v5/public/linear), each with its own trades."""
from __future__ import annotations

import pytest

from shm import Kind, Registry, Ring
from shm.errors import SegmentNotFound

from test_feed_e2e import Feed, wait_for

pytest.importorskip("feeds.sim")


def test_bybit_spot_and_linear_in_one_worker(shm_names):
    from feeds.sim import start_in_background
    sim = start_in_background(["bybit"], symbols=2, rate=400, seed=5)
    feed = None
    try:
        sym = sim.symbols("bybit")[0]
        feed = Feed("bybit", sim, names=shm_names, symbols=[sym, f"perp:{sym}"])
        assert feed.n_conns == 2            # one socket per route

        def mapped():
            try:
                feed.ring = feed.ring or Ring.attach(feed.ring_name)
                feed.registry = feed.registry or Registry.attach(feed.reg_name)
                return True
            except SegmentNotFound:
                return False
        wait_for(mapped, 20, "the worker's ring and registry")
        feed.reader = feed.ring.reader("oldest", name="e2e")
        feed.chunks, feed.ids = [], {}

        def ids_by_market():
            feed.poll()
            return {i.market: i.id for i in feed.registry.all() if i.symbol == sym}

        def both_traded():
            ids = ids_by_market()
            t = feed.poll()
            t = t[t["kind"] == Kind.TRADE]
            return len(ids) == 2 and all((t["instrument"] == i).any() for i in ids.values())
        wait_for(both_traded, 20, "trades of both the spot and the linear instrument")
        ids = ids_by_market()
        assert set(ids) == {"spot", "perp"} and ids["spot"] != ids["perp"]

        ring = feed.poll()                  # first what the ring holds, then what the sim sent
        for market, inst in ids.items():
            recent = sim.state("bybit", sym, market=market, trades=2000)["trades"]["recent"]
            sent = {int(tid): (float(px), float(sz)) for tid, px, sz, _side, _ts in recent}
            mine = ring[(ring["kind"] == Kind.TRADE) & (ring["instrument"] == inst)]
            assert len(mine) > 0
            for tid, px, sz in zip(mine["id"], mine["price"], mine["size"]):
                assert sent.get(int(tid)) == (px, sz), f"{market} trade {tid} is not that market's trade"
    finally:
        if feed is not None:
            feed.close()
        sim.stop()
    assert feed.rc == 0
