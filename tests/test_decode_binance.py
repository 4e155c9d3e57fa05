"""Binance spot decoder and venue declaration, checked against the venue's documented examples
(../shared/wire-samples/binance_spot.json) plus documented control messages."""
from __future__ import annotations


import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.binance import VENUE, BinanceDecoder
from shm.record import Flag, Kind, Side
import wire_samples

MS = 1_000_000
TS_RECV = 1_700_000_000_123_456_789


def sample(channel_prefix: str, kind: str | None = None) -> dict:
    doc = wire_samples.document("binance_spot.json")
    for m in doc["messages"]:
        if m["channel"].startswith(channel_prefix) and (kind is None or m["kind"] == kind):
            return m["payload"]
    raise LookupError(channel_prefix)


def combined(stream: str, payload: dict) -> bytes:
    return orjson.dumps({"stream": stream, "data": payload})


def test_trade_sample_raw_and_combined():
    p = sample("trade")
    for frame in (orjson.dumps(p), combined("bnbbtc@trade", p)):
        dec = BinanceDecoder()
        r = dec.decode(frame, TS_RECV)
        assert len(r) == 1
        assert r["kind"][0] == Kind.TRADE
        assert dec.symbol(int(r["instrument"][0])) == "BNBBTC"
        assert r["id"][0] == 12345
        assert r["price"][0] == 0.001 and r["size"][0] == 100.0
        assert r["side"][0] == Side.SELL          # m=true: buyer is maker => seller aggressed
        assert r["ts_event"][0] == 1672515782136 * MS
        assert r["ts_recv"][0] == TS_RECV
        assert r["flags"][0] == Flag.LAST
        assert dec.book_events == []


def test_trade_buyer_taker_is_buy():
    p = dict(sample("trade"), m=False)
    r = BinanceDecoder().decode(orjson.dumps(p))
    assert r["side"][0] == Side.BUY


def test_aggtrade_sample():
    p = sample("aggTrade")
    dec = BinanceDecoder()
    r = dec.decode(combined("bnbbtc@aggTrade", p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.TRADE
    assert r["id"][0] == 12345 and r["side"][0] == Side.SELL
    assert r["price"][0] == 0.001 and r["size"][0] == 100.0
    assert r["ts_event"][0] == 1672515782136 * MS
    assert dec.symbol(int(r["instrument"][0])) == "BNBBTC"


def test_bookticker_sample():
    p = sample("bookTicker")
    dec = BinanceDecoder()
    r = dec.decode(combined("bnbusdt@bookTicker", p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.QUOTE
    assert r["bid_price"][0] == 25.3519 and r["bid_size"][0] == 31.21
    assert r["ask_price"][0] == 25.3652 and r["ask_size"][0] == 40.66
    assert r["ts_event"][0] == 0                  # spot bookTicker has no event time
    assert r["flags"][0] == Flag.LAST
    assert dec.symbol(int(r["instrument"][0])) == "BNBUSDT"


def test_depth_diff_sample():
    p = sample("depth (diff)")
    dec = BinanceDecoder()
    r = dec.decode(combined("bnbbtc@depth@100ms", p), TS_RECV)
    assert len(r) == 2
    assert list(r["kind"]) == [Kind.BOOK, Kind.BOOK]
    assert list(r["side"]) == [Side.BID, Side.ASK]
    assert list(r["price"]) == [0.0024, 0.0026]
    assert list(r["size"]) == [10.0, 100.0]
    assert list(r["id"]) == [160, 160]
    assert list(r["ts_event"]) == [1672515782136 * MS] * 2
    assert list(r["flags"]) == [0, Flag.LAST]
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == (0, 2, False, 157, 160, -1, None)
    assert dec.symbol(ev.instrument) == "BNBBTC"


def test_partial_depth_is_a_snapshot_named_by_its_stream():
    # documented partial book depth payload (web-socket-streams.md "Partial Book Depth Streams")
    p = {"lastUpdateId": 160, "bids": [["0.0024", "10"]], "asks": [["0.0026", "100"]]}
    dec = BinanceDecoder()
    r = dec.decode(combined("bnbbtc@depth5@100ms", p), TS_RECV)
    assert len(r) == 2
    assert all(f & Flag.SNAPSHOT for f in r["flags"])
    assert list(r["id"]) == [160, 160]
    (ev,) = dec.book_events
    assert ev.snapshot and ev.last == 160 and ev.prev == -1
    assert dec.symbol(ev.instrument) == "BNBBTC"
    with pytest.raises(DecodeError):           # raw partial depth: no way to know the symbol
        dec.decode(orjson.dumps(p))


def test_kline_decodes_to_nothing():
    p = sample("kline")
    dec = BinanceDecoder()
    assert len(dec.decode(combined("bnbbtc@kline_1m", p))) == 0
    assert len(dec.decode(orjson.dumps(p))) == 0


@pytest.mark.parametrize("frame", [
    b'{"result": null, "id": 1}',                               # SUBSCRIBE ack
    b'{"result": ["btcusdt@aggTrade"], "id": 3}',               # LIST_SUBSCRIPTIONS
    b'{"code": 0, "msg": "Unknown property", "id": 5}',         # documented error shapes
    b'{"code": 2, "msg": "Invalid request: missing field `method` at line 1 column 73"}',
    b'{"code": 3, "msg": "Invalid JSON: expected value at line 1 column 2"}',
])
def test_control_frames_are_empty(frame):
    dec = BinanceDecoder()
    assert len(dec.decode(frame)) == 0
    assert dec.notices == [] and dec.book_events == []


def test_server_shutdown_raw_and_combined():
    dec = BinanceDecoder()
    assert len(dec.decode(b'{"e": "serverShutdown", "E": 1770123456789}')) == 0
    assert dec.notices == ["shutdown"]
    frame = b'{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1770123456789}}'
    assert len(dec.decode(frame)) == 0
    assert dec.notices == ["shutdown"]


@pytest.mark.parametrize("frame", [
    b"not json",
    b'{"stream": "bnbbtc@trade", "data": {"e": "trade", "s": "BNBBTC"}}',       # missing fields
    b'{"e": "trade", "E": 1, "s": "BNBBTC", "t": 1, "p": "x", "q": "1", "T": 1, "m": true}',
    b'{"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 2, "b": [["1"]], "a": []}',
    b'{"e": "aggTrade", "s": "X", "a": "not-an-int", "p": "1", "q": "1", "T": 1, "m": true}',
    b'{"hello": "world"}',
    b'[1, 2]',
])
def test_malformed_frames_raise_decode_error(frame):
    with pytest.raises(DecodeError):
        BinanceDecoder().decode(frame)


def test_malformed_frame_leaves_no_partial_records():
    dec = BinanceDecoder()
    dec.out.clear()
    good = orjson.dumps(sample("trade"))
    dec.feed(good, 1)
    bad = b'{"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 2, "b": [["1", "2"]], "a": [["x", "1"]]}'
    with pytest.raises(DecodeError):
        dec.feed(bad, 2)
    assert dec.out.n == 1 and dec.book_events == []


def test_venue_declaration():
    assert venue("binance") is VENUE
    assert isinstance(decoder_for("binance"), BinanceDecoder)
    assert VENUE.ws_url == "wss://stream.binance.com:9443"
    assert VENUE.rest_url == "https://api.binance.com"
    assert VENUE.book_rule == "binance_spot"
    assert VENUE.limits.streams_per_connection == 1024
    assert VENUE.limits.subscribe_msgs_per_s == 5
    assert (VENUE.limits.connect_attempts, VENUE.limits.connect_window_s) == (300, 300.0)
    assert VENUE.limits.max_connection_age_s == 86_400
    assert VENUE.ping.mode == "server"


def test_subscribe_shape():
    plan = VENUE.subscribe(["BTCUSDT", "ETHUSDT"], ["trades", "quotes", "book", "mark"])
    assert len(plan) == 1
    path, msgs = plan[0]
    assert path == "/stream"
    streams = []
    for i, m in enumerate(msgs):
        d = orjson.loads(m)
        assert d["method"] == "SUBSCRIBE" and d["id"] == i + 1
        streams += d["params"]
    assert streams == ["btcusdt@trade", "btcusdt@bookTicker", "btcusdt@depth@100ms",
                       "ethusdt@trade", "ethusdt@bookTicker", "ethusdt@depth@100ms"]
    many = VENUE.subscribe([f"S{i}USDT" for i in range(150)], ["trades"])
    assert [len(orjson.loads(m)["params"]) for m in many[0][1]] == [100, 50]
    assert VENUE.subscribe(["BTCUSDT"], ["mark"]) == []


def test_rest_snapshot_documented_example():
    assert VENUE.snapshot_request("btcusdt") == ("/api/v3/depth", {"symbol": "BTCUSDT", "limit": 1000})
    body = orjson.dumps(sample("REST depth snapshot", "rest_snapshot"))
    assert VENUE.parse_snapshot(body) == (1027024, [(4.0, 431.0)], [(4.000002, 12.0)])
    with pytest.raises(ValueError):
        VENUE.parse_snapshot(b"<html>")


def test_rest_instruments_documented_example():
    body = orjson.dumps({"timezone": "UTC", "serverTime": 1565246363776, "symbols": [
        {"symbol": "ETHBTC", "status": "TRADING", "baseAsset": "ETH", "quoteAsset": "BTC",
         "filters": [{"filterType": "PRICE_FILTER", "minPrice": "0.00000100",
                      "maxPrice": "100000.00000000", "tickSize": "0.00000100"},
                     {"filterType": "LOT_SIZE", "minQty": "0.00100000",
                      "maxQty": "100000.00000000", "stepSize": "0.00100000"}]},
        {"symbol": "OLDBTC", "status": "BREAK", "baseAsset": "OLD", "quoteAsset": "BTC", "filters": []},
    ]})
    path, _ = VENUE.instruments_request
    assert path == "/api/v3/exchangeInfo"
    assert VENUE.parse_instruments(body) == [
        {"symbol": "ETHBTC", "base": "ETH", "quote": "BTC", "market": "spot",
         "tick_size": 0.000001, "lot_size": 0.001}]


def test_rest_trades_documented_example():
    assert VENUE.trades_request("BTCUSDT", 28000) == (
        "/api/v3/historicalTrades", {"symbol": "BTCUSDT", "fromId": 28000, "limit": 1000})
    body = b'[{"id": 28457, "price": "4.00000100", "qty": "12.00000000", "quoteQty": "48.000012", ' \
           b'"time": 1499865549590, "isBuyerMaker": true, "isBestMatch": true}]'
    assert VENUE.parse_trades(body) == [(28457, 1499865549590 * MS, 4.000001, 12.0, Side.SELL)]


def _all_samples():
    return [(m["channel"], m["kind"], m["payload"]) for m in wire_samples.document("binance_spot.json")["messages"]]


@pytest.mark.parametrize("channel,kind,payload", _all_samples())
def test_every_documented_message_decodes(channel, kind, payload):
    """Every sample: market data -> records whose last one is flagged LAST; klines and REST
    bodies -> nothing (REST bodies go through parse_snapshot, not the stream decoder)."""
    if kind == "rest_snapshot":
        return
    r = BinanceDecoder().decode(orjson.dumps(payload), TS_RECV)
    if channel == "kline":
        assert len(r) == 0
    else:
        assert len(r) >= 1 and int(r["flags"][-1]) & Flag.LAST
        assert set(r["ts_recv"]) == {TS_RECV}
