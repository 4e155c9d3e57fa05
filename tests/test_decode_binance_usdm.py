"""Binance USD-M futures decoder and venue declaration, checked against the venue's documented
examples (../shared/wire-samples/binance_usdm_futures.json) plus documented control messages."""
from __future__ import annotations

import math

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.binance_usdm import VENUE, BinanceUsdmDecoder
from shm.record import Flag, Kind, Side
import wire_samples

MS = 1_000_000
TS_RECV = 1_700_000_000_000_000_001


def sample(channel_prefix: str) -> dict:
    doc = wire_samples.document("binance_usdm_futures.json")
    for m in doc["messages"]:
        if m["channel"].startswith(channel_prefix):
            return m["payload"]
    raise LookupError(channel_prefix)


def combined(stream: str, payload) -> bytes:
    return orjson.dumps({"stream": stream, "data": payload})


def test_aggtrade_sample():
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("btcusdt@aggTrade", sample("aggTrade")), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.TRADE
    assert r["id"][0] == 5933014
    assert r["price"][0] == 0.001 and r["size"][0] == 100.0     # q (includes RPI fills)
    assert r["side"][0] == Side.SELL
    assert r["ts_event"][0] == 123456785 * MS
    assert r["ts_recv"][0] == TS_RECV and r["flags"][0] == Flag.LAST
    inst = int(r["instrument"][0])
    assert dec.symbol(inst) == "BTCUSDT" and dec.instruments.market(inst) == "perp"


def test_bookticker_sample():
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("bnbusdt@bookTicker", sample("bookTicker")), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.QUOTE
    assert (r["bid_price"][0], r["bid_size"][0], r["ask_price"][0], r["ask_size"][0]) == \
        (25.3519, 31.21, 25.3652, 40.66)
    assert r["ts_event"][0] == 1568014460893 * MS
    assert dec.symbol(int(r["instrument"][0])) == "BNBUSDT"


def test_depth_diff_sample_carries_pu():
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("btcusdt@depth@100ms", sample("depth (diff)")), TS_RECV)
    assert list(r["side"]) == [Side.BID, Side.ASK]
    assert list(r["price"]) == [0.0024, 0.0026] and list(r["size"]) == [10.0, 100.0]
    assert list(r["id"]) == [160, 160]
    assert list(r["ts_event"]) == [123456789 * MS] * 2
    assert list(r["flags"]) == [0, Flag.LAST]
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.prev) == (0, 2, False, 157, 160, 149)


def test_partial_depth_sample_is_a_snapshot_by_stream_name():
    p = sample("depth (partial")
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("btcusdt@depth5@100ms", p), TS_RECV)
    assert len(r) == 10
    assert all(int(f) & Flag.SNAPSHOT for f in r["flags"])
    assert list(r["side"]) == [Side.BID] * 5 + [Side.ASK] * 5
    assert list(r["price"][:5]) == [7403.89, 7403.90, 7404.00, 7404.85, 7405.43]
    assert list(r["size"][5:]) == [3.340, 4.525, 2.475, 4.800, 0.175]
    assert set(r["id"]) == {390497878}
    (ev,) = dec.book_events
    assert ev.snapshot and (ev.first, ev.last, ev.prev) == (390497796, 390497878, -1)
    # the same payload on the diff stream is a delta
    r = dec.decode(combined("btcusdt@depth@100ms", p), TS_RECV)
    assert not any(int(f) & Flag.SNAPSHOT for f in r["flags"])
    assert dec.book_events[0].prev == 390497794


def test_mark_price_documented_example():
    # developers.binance.com .../usds-margined-futures/websocket-market-streams/Mark-Price-Stream
    p = {"e": "markPriceUpdate", "E": 1562305380000, "s": "BTCUSDT", "p": "11794.15000000",
         "i": "11784.62659091", "P": "11784.25641265", "r": "0.00038167", "T": 1562306400000}
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("btcusdt@markPrice@1s", p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.MARK
    assert r["price"][0] == 11794.15 and r["size"][0] == 0.00038167
    assert r["ask_price"][0] == 11784.62659091
    assert r["id"][0] == 1562306400000 * MS
    assert r["ts_event"][0] == 1562305380000 * MS
    # the all-market array stream and a delivery contract without funding
    q = dict(p, s="BTCUSDT_250627", r="", T=0)
    r = dec.decode(combined("!markPrice@arr@1s", [p, q]), TS_RECV)
    assert len(r) == 2 and list(r["flags"]) == [0, Flag.LAST]
    assert math.isnan(r["size"][1]) and r["id"][1] == 0
    assert dec.instruments.market(int(r["instrument"][1])) == "future"


def test_force_order_documented_example():
    # developers.binance.com .../usds-margined-futures/websocket-market-streams/Liquidation-Order-Streams
    p = {"e": "forceOrder", "E": 1568014460893, "o": {
        "s": "BTCUSDT", "S": "SELL", "o": "LIMIT", "f": "IOC", "q": "0.014", "p": "9910",
        "ap": "9910", "X": "FILLED", "l": "0.014", "z": "0.014", "T": 1568014460893}}
    dec = BinanceUsdmDecoder()
    r = dec.decode(combined("btcusdt@forceOrder", p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.LIQUIDATION
    assert r["side"][0] == Side.SELL
    assert r["price"][0] == 9910.0 and r["size"][0] == 0.014
    assert r["ts_event"][0] == 1568014460893 * MS
    assert dec.symbol(int(r["instrument"][0])) == "BTCUSDT"


def test_kline_decodes_to_nothing():
    assert len(BinanceUsdmDecoder().decode(combined("btcusdt@kline_1m", sample("kline")))) == 0


@pytest.mark.parametrize("frame", [
    b'{"result": null, "id": 1}',
    b'{"code": 0, "msg": "Unknown property", "id": 1}',
    b'{"code": 1, "msg": "Invalid value type: expected Boolean"}',
])
def test_control_frames_are_empty(frame):
    dec = BinanceUsdmDecoder()
    assert len(dec.decode(frame)) == 0 and dec.notices == []


def test_server_shutdown_notice():
    dec = BinanceUsdmDecoder()
    assert len(dec.decode(b'{"stream":"!serverShutdown","data":{"e":"serverShutdown","E":1770123456789}}')) == 0
    assert dec.notices == ["shutdown"]


@pytest.mark.parametrize("frame", [
    b"{",
    b'{"e": "markPriceUpdate", "E": 1, "s": "BTCUSDT", "p": "1", "i": "1", "r": "0"}',     # no T
    b'{"e": "forceOrder", "E": 1, "o": {"s": "BTCUSDT", "S": "HOLD", "q": "1", "p": "1", "ap": "1", "z": "1", "T": 1}}',
    b'{"e": "depthUpdate", "E": 1, "s": "X", "U": 1, "u": 2, "b": [], "a": []}',            # no pu
    b'{"stream": "nodepthname", "data": {"e": "depthUpdate", "E": 1, "T": 1, "s": "X", "U": 1, "u": 2, "pu": 0, "b": [], "a": []}}',
])
def test_malformed_frames_raise_decode_error(frame):
    with pytest.raises(DecodeError):
        BinanceUsdmDecoder().decode(frame)


def test_venue_declaration():
    assert venue("binance_usdm") is VENUE
    assert isinstance(decoder_for("binance_usdm"), BinanceUsdmDecoder)
    assert VENUE.ws_url == "wss://fstream.binance.com"
    assert VENUE.rest_url == "https://fapi.binance.com"
    assert VENUE.book_rule == "binance_usdm"
    assert set(VENUE.channels) == {"trades", "quotes", "book", "mark", "liquidations"}
    assert VENUE.limits.subscribe_msgs_per_s == 10
    assert VENUE.limits.max_connection_age_s == 86_400
    assert VENUE.ping.mode == "server" and VENUE.ping.interval_s == 180


def test_subscribe_routes_streams_to_public_and_market():
    plan = dict(VENUE.subscribe(["BTCUSDT"], ["trades", "quotes", "book", "mark", "liquidations"]))
    assert set(plan) == {"/public/stream", "/market/stream"}
    public = [s for m in plan["/public/stream"] for s in orjson.loads(m)["params"]]
    market = [s for m in plan["/market/stream"] for s in orjson.loads(m)["params"]]
    assert public == ["btcusdt@bookTicker", "btcusdt@depth@100ms"]
    assert market == ["btcusdt@aggTrade", "btcusdt@markPrice@1s", "btcusdt@forceOrder"]
    assert [p for p, _ in VENUE.subscribe(["BTCUSDT"], ["trades"])] == ["/market/stream"]
    assert [p for p, _ in VENUE.subscribe(["BTCUSDT"], ["book"])] == ["/public/stream"]


def test_rest_parsers_documented_examples():
    assert VENUE.snapshot_request("BTCUSDT") == ("/fapi/v1/depth", {"symbol": "BTCUSDT", "limit": 1000})
    body = b'{"lastUpdateId": 1027024, "E": 1589436922972, "T": 1589436922959, ' \
           b'"bids": [["4.00000000", "431.00000000"]], "asks": [["4.00000200", "12.00000000"]]}'
    assert VENUE.parse_snapshot(body) == (1027024, [(4.0, 431.0)], [(4.000002, 12.0)])

    info = orjson.dumps({"symbols": [
        {"symbol": "BLZUSDT", "pair": "BLZUSDT", "contractType": "PERPETUAL", "status": "TRADING",
         "baseAsset": "BLZ", "quoteAsset": "USDT", "marginAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "maxPrice": "300", "minPrice": "0.0001", "tickSize": "0.0001"},
                     {"filterType": "LOT_SIZE", "maxQty": "10000000", "minQty": "1", "stepSize": "1"}]},
        {"symbol": "BTCUSDT_250627", "pair": "BTCUSDT", "contractType": "CURRENT_QUARTER",
         "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
         "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.1"},
                     {"filterType": "LOT_SIZE", "stepSize": "0.001"}]}]})
    assert VENUE.instruments_request == ("/fapi/v1/exchangeInfo", {})
    assert VENUE.parse_instruments(info) == [
        {"symbol": "BLZUSDT", "base": "BLZ", "quote": "USDT", "market": "perp", "tick_size": 0.0001, "lot_size": 1.0},
        {"symbol": "BTCUSDT_250627", "base": "BTC", "quote": "USDT", "market": "future", "tick_size": 0.1, "lot_size": 0.001}]

    assert VENUE.trades_request("btcusdt", 26129) == (
        "/fapi/v1/aggTrades", {"symbol": "BTCUSDT", "fromId": 26129, "limit": 1000})
    trades = b'[{"a": 26129, "p": "0.01633102", "q": "4.70443515", "f": 27781, "l": 27781, ' \
             b'"T": 1498793709153, "m": true}]'
    assert VENUE.parse_trades(trades) == [(26129, 1498793709153 * MS, 0.01633102, 4.70443515, Side.SELL)]


def _all_samples():
    return [(m["channel"], m["payload"]) for m in wire_samples.document("binance_usdm_futures.json")["messages"]]


@pytest.mark.parametrize("channel,payload", _all_samples())
def test_every_documented_message_decodes(channel, payload):
    r = BinanceUsdmDecoder().decode(orjson.dumps(payload), TS_RECV)
    if channel == "kline":
        assert len(r) == 0
    else:
        assert len(r) >= 1 and int(r["flags"][-1]) & Flag.LAST
