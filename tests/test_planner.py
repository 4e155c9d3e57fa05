"""Connection planning respects each venue's declared limits."""
from __future__ import annotations

import pytest

import feeds
from feeds.decoder import Decoder
from feeds.planner import plan, shards
from feeds.venue import Limits, Ping, Venue


def fake_venue(streams=10, attempts=4, window=2.0, routes=("/ws",)):
    def subscribe(symbols, channels):
        return [(r, [{"op": "subscribe", "args": [f"{c}:{s}" for s in symbols for c in channels]}])
                for r in routes]
    return Venue(name="fake", ws_url="ws://x", rest_url="http://x", decoder=Decoder,
                 limits=Limits(streams_per_connection=streams, subscribe_msgs_per_s=5,
                               connect_attempts=attempts, connect_window_s=window),
                 ping=Ping("none"), channels=("trades", "quotes", "book"), subscribe=subscribe)


def test_shards_never_exceed_streams_per_connection():
    syms = [f"S{i}" for i in range(23)]
    for per_conn in (1, 3, 10, 1024):
        for chans in (["trades"], ["trades", "book"], ["trades", "quotes", "book"]):
            parts = shards(syms, chans, per_conn)
            assert sum(parts, []) == syms
            assert all(len(p) * len(chans) <= max(per_conn, len(chans)) for p in parts)


def test_plan_shards_and_staggers():
    v = fake_venue(streams=6, attempts=4, window=2.0)
    syms = [f"S{i}" for i in range(7)]
    p = plan(v, syms, ["trades", "book"])
    assert [c.symbols for c in p] == [("S0", "S1", "S2"), ("S3", "S4", "S5"), ("S6",)]
    assert all(len(c.symbols) * len(c.channels) <= 6 for c in p)
    assert [c.index for c in p] == [0, 1, 2]
    # initial connects use about half the budget (2 per 2 s window) -> 1 s apart
    assert [c.start_delay_s for c in p] == [0.0, 1.0, 2.0]
    starts = [c.start_delay_s for c in p]
    for s in starts:
        assert sum(1 for t in starts if s <= t < s + 2.0) <= 2


def test_plan_starts_a_small_burst_together():
    v = fake_venue(streams=1, attempts=300, window=300.0)
    p = plan(v, [f"S{i}" for i in range(40)], ["trades"])
    starts = [c.start_delay_s for c in p]
    assert starts[:15] == [0.0] * 15 and starts[15] == 2.0      # 15 at once, then 2 s apart
    for s in starts:                                             # never over half the limit + burst
        assert sum(1 for t in starts if s <= t < s + 300.0) <= 150 + 15
    assert all(isinstance(m, bytes) for c in p for m in c.messages)


def test_plan_one_socket_per_route():
    v = fake_venue(routes=("/public", "/market"))
    p = plan(v, ["A"], ["trades"])
    assert [c.path for c in p] == ["/public", "/market"]


def test_plan_refuses_unknown_channels_and_no_symbols():
    v = fake_venue()
    with pytest.raises(ValueError, match="no channel"):
        plan(v, ["A"], ["candles"])
    with pytest.raises(ValueError, match="no symbols"):
        plan(v, [], None)


@pytest.mark.parametrize("name", feeds.implemented())
def test_real_venues_plan_within_limits(name):
    v = feeds.venue(name)
    syms = {"okx": [f"C{i}-USDT" for i in range(50)]}.get(name, [f"C{i}USDT" for i in range(50)])
    p = plan(v, syms, list(v.channels))
    assert p
    lim = v.limits
    for c in p:
        assert len(c.symbols) * len(c.channels) <= max(lim.streams_per_connection, len(c.channels))
    starts = sorted(c.start_delay_s for c in p)
    for s in starts:                                 # the documented limit is never exceeded
        assert sum(1 for t in starts if s <= t < s + lim.connect_window_s) <= lim.connect_attempts


def test_url_override_keeps_the_default_path():
    from feeds.worker import with_default_path
    assert with_default_path(None, "wss://ws.kraken.com/v2") == "wss://ws.kraken.com/v2"
    assert with_default_path("ws://127.0.0.1:9000", "wss://ws.kraken.com/v2") == "ws://127.0.0.1:9000/v2"
    assert with_default_path("ws://127.0.0.1:9000/", "wss://x.com/ws/v4/") == "ws://127.0.0.1:9000/ws/v4/"
    assert with_default_path("ws://127.0.0.1:9000/other", "wss://x.com/v2") == "ws://127.0.0.1:9000/other"
    assert with_default_path("ws://127.0.0.1:9000", "wss://stream.binance.com:9443") == "ws://127.0.0.1:9000"


def test_normalized_names():
    from feeds.worker import normalize
    assert normalize("BTCUSDT") == "BTC-USDT"
    assert normalize("btc-usdt-swap") == "BTC-USDT"
    assert normalize("XBT/USD") == "XBT-USD"
    assert normalize("ETH_BTC") == "ETH-BTC"
    assert normalize("WEIRD") == "WEIRD"


def test_market_prefixed_symbols_get_their_own_routes():
    import feeds
    from feeds.planner import plan
    plans = plan(feeds.venue("bybit"), ["BTCUSDT", "ETHUSDT", "perp:BTCUSDT"], ["trades", "book"])
    assert [(p.path, p.symbols) for p in plans] == [
        ("/v5/public/spot", ("BTCUSDT", "ETHUSDT")), ("/v5/public/linear", ("BTCUSDT",))]


def test_market_prefix_errors_name_the_problem():
    import feeds
    from feeds.planner import plan
    with pytest.raises(ValueError, match="no market 'options'.*spot, perp"):
        plan(feeds.venue("bybit"), ["options:BTCUSDT"])
    with pytest.raises(ValueError, match="without a market prefix"):
        plan(feeds.venue("okx"), ["perp:BTC-USDT-SWAP"])
