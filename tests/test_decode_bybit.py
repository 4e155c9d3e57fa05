"""Bybit v5 decoder and venue declaration, checked against the venue's documented examples
(../shared/wire-samples/bybit_v5.json) plus documented control messages."""
from __future__ import annotations

import math

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.bybit import VENUE, BybitDecoder
from feeds.wire import id_from_str
from shm.record import Flag, Kind, Side
import wire_samples

MS = 1_000_000
TS_RECV = 1_700_000_000_000_000_777


def sample(channel: str, kind: str) -> dict:
    doc = wire_samples.document("bybit_v5.json")
    for m in doc["messages"]:
        if m["channel"] == channel and m["kind"] == kind:
            return m["payload"]
    raise LookupError(channel)


def frame(payload: dict) -> bytes:
    return orjson.dumps(payload)


def test_orderbook_snapshot_sample():
    p = sample("orderbook.50 (linear)", "snapshot")
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 4
    assert list(r["side"]) == [Side.BID, Side.BID, Side.ASK, Side.ASK]
    assert list(r["price"]) == [16493.50, 16493.00, 16611.00, 16612.00]
    assert list(r["size"]) == [0.006, 0.100, 0.029, 0.213]
    assert set(r["id"]) == {18521288}
    assert set(r["ts_event"]) == {1672304484978 * MS}
    assert all(int(f) & Flag.SNAPSHOT for f in r["flags"])
    assert int(r["flags"][-1]) & Flag.LAST and not int(r["flags"][0]) & Flag.LAST
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == \
        (0, 4, True, 18521288, 18521288, -1, None)
    assert dec.symbol(ev.instrument) == "BTCUSDT"
    assert dec.instruments.market(ev.instrument) == "perp"


def test_orderbook_delta_sample():
    p = sample("orderbook.50 (linear)", "delta")
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 12
    assert list(r["side"]) == [Side.BID] * 5 + [Side.ASK] * 7
    assert list(r["price"][:5]) == [30247.20, 30245.40, 30242.10, 30240.30, 30240.00]
    assert list(r["size"][:5]) == [30.028, 0.224, 1.593, 1.305, 0.0]       # 0 deletes
    assert list(r["size"][5:]) == [0.0, 0.892, 1.778, 0.0, 2.947, 0.659, 4.591]
    assert set(r["id"]) == {177400507}
    assert not any(int(f) & Flag.SNAPSHOT for f in r["flags"])
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last, ev.prev) == (False, 177400507, 177400507, -1)
    assert (ev.start, ev.end) == (0, 12)


def test_orderbook_u1_is_a_snapshot():
    p = sample("orderbook.50 (linear)", "delta")
    p = dict(p, data=dict(p["data"], u=1))
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p))
    assert all(int(f) & Flag.SNAPSHOT for f in r["flags"])
    assert dec.book_events[0].snapshot


def test_orderbook_full_spot_sample():
    p = sample("orderbook.full (spot; delta-only, seed from REST)", "delta")
    dec = BybitDecoder(market="spot")
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 5 and set(r["side"]) == {Side.BID}
    assert list(r["price"]) == [0.4758, 0.4757, 0.4755, 0.4753, 0.4752]
    assert list(r["size"]) == [2342.47, 1735.35, 952.38, 522.68, 387.21]
    assert set(r["id"]) == {278547}
    assert set(r["ts_event"]) == {1784103477732 * MS}
    (ev,) = dec.book_events
    assert not ev.snapshot and ev.last == 278547
    assert dec.symbol(ev.instrument) == "MNTUSDT" and dec.instruments.market(ev.instrument) == "spot"


def test_public_trade_sample():
    p = sample("publicTrade (linear)", "snapshot")
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.TRADE
    assert r["price"][0] == 16578.50 and r["size"][0] == 0.001
    assert r["side"][0] == Side.BUY
    assert r["ts_event"][0] == 1672304486865 * MS
    assert r["id"][0] == id_from_str("20f43950-d8dd-5b31-9112-a178eb6023af") > 0
    assert r["flags"][0] == Flag.LAST
    assert dec.symbol(int(r["instrument"][0])) == "BTCUSDT"


def test_spot_trade_numeric_id_is_kept():
    p = sample("publicTrade (linear)", "snapshot")
    t = dict(p["data"][0], i="2290000000061666327", S="Sell")
    r = BybitDecoder(market="spot").decode(frame(dict(p, data=[t, t])))
    assert list(r["id"]) == [2290000000061666327] * 2
    assert list(r["side"]) == [Side.SELL] * 2
    assert list(r["flags"]) == [0, Flag.LAST]


def test_linear_ticker_snapshot_gives_quote_and_mark():
    p = sample("tickers (linear perpetual)", "snapshot")
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.QUOTE, Kind.MARK]
    q, m = r[0], r[1]
    assert (q["bid_price"], q["bid_size"], q["ask_price"], q["ask_size"]) == \
        (66666.60, 23789.165, 66666.70, 23775.469)
    assert q["ts_event"] == 1760325052630 * MS
    assert m["price"] == 66666.60 and m["size"] == -0.005 and m["ask_price"] == 115418.19
    assert m["id"] == 1760342400000 * MS
    assert m["flags"] == Flag.LAST
    assert dec.symbol(int(m["instrument"])) == "BTCUSDT"


def test_linear_ticker_delta_merges_changed_fields():
    dec = BybitDecoder(market="perp")
    dec.decode(frame(sample("tickers (linear perpetual)", "snapshot")))
    delta = {"topic": "tickers.BTCUSDT", "type": "delta", "cs": 9532239430, "ts": 1760325052730,
             "data": {"symbol": "BTCUSDT", "bid1Price": "66666.50", "bid1Size": "1.5"}}
    r = dec.decode(frame(delta))
    assert list(r["kind"]) == [Kind.QUOTE]
    assert (r["bid_price"][0], r["bid_size"][0], r["ask_price"][0]) == (66666.50, 1.5, 66666.70)
    r = dec.decode(frame({"topic": "tickers.BTCUSDT", "type": "delta", "ts": 1760325052830,
                          "data": {"symbol": "BTCUSDT", "markPrice": "66670.00"}}))
    assert list(r["kind"]) == [Kind.MARK]
    assert r["price"][0] == 66670.0 and r["size"][0] == -0.005 and r["ask_price"][0] == 115418.19
    # a delta for a symbol never seen: the missing fields are NAN, not invented
    r = dec.decode(frame({"topic": "tickers.ETHUSDT", "type": "delta", "ts": 1,
                          "data": {"symbol": "ETHUSDT", "ask1Price": "3000"}}))
    assert r["ask_price"][0] == 3000.0 and math.isnan(r["bid_price"][0])


def test_spot_ticker_sample_has_no_bbo_and_decodes_to_nothing():
    dec = BybitDecoder(market="spot")
    assert len(dec.decode(frame(sample("tickers (spot)", "snapshot")))) == 0


def test_orderbook_1_is_a_quote():
    p = {"topic": "orderbook.1.BTCUSDT", "ts": 1672304484978, "type": "snapshot",
         "data": {"s": "BTCUSDT", "b": [["16493.50", "0.006"]], "a": [["16611.00", "0.029"]],
                  "u": 18521288, "seq": 7961638724}, "cts": 1672304484976}
    dec = BybitDecoder(market="spot")
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.QUOTE]
    assert (r["bid_price"][0], r["bid_size"][0], r["ask_price"][0], r["ask_size"][0]) == \
        (16493.50, 0.006, 16611.00, 0.029)
    assert dec.book_events == []


def test_kline_sample_decodes_to_nothing():
    assert len(BybitDecoder().decode(frame(sample("kline", "snapshot")))) == 0


def test_all_liquidation_documented_example():
    # docs/v5/websocket/public/all-liquidation.mdx
    p = {"topic": "allLiquidation.ROSEUSDT", "type": "snapshot", "ts": 1739502303204,
         "data": [{"T": 1739502302929, "s": "ROSEUSDT", "S": "Sell", "v": "20000", "p": "0.04499"}]}
    dec = BybitDecoder(market="perp")
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.LIQUIDATION
    assert r["side"][0] == Side.BUY          # a short position liquidated => a BUY order
    assert r["price"][0] == 0.04499 and r["size"][0] == 20000.0
    assert r["ts_event"][0] == 1739502302929 * MS
    assert dec.symbol(int(r["instrument"][0])) == "ROSEUSDT"


@pytest.mark.parametrize("msg", [
    # docs/v5/websocket/wss-authentication.mdx (slug /v5/ws/connect)
    {"success": True, "ret_msg": "pong", "conn_id": "0970e817-426e-429a-a679-ff7f55e0b16a", "op": "ping"},
    {"success": True, "ret_msg": "pong", "conn_id": "465772b1-7630-4fdc-a492-e003e6f0f260", "req_id": "", "op": "ping"},
    {"args": ["1672916271846"], "op": "pong"},
    {"success": True, "ret_msg": "subscribe", "conn_id": "2324d924-aa4d-45b0-a858-7b8be29ab52b", "req_id": "10001", "op": "subscribe"},
    {"success": True, "ret_msg": "", "conn_id": "3cd84cb1-4d06-4a05-930a-2efe5fc70f0f", "req_id": "", "op": "subscribe"},
    {"success": True, "conn_id": "aa01fbfffe80af37-00000001", "data": {"failTopics": [], "successTopics": ["orderbook.100.BTC-6JAN23-18000-C"]}, "type": "COMMAND_RESP"},
    {"success": False, "ret_msg": "error:handler not found", "conn_id": "x", "req_id": "1", "op": "subscribe"},
])
def test_control_frames_are_empty(msg):
    dec = BybitDecoder()
    assert len(dec.decode(frame(msg))) == 0 and dec.notices == [] and dec.book_events == []


@pytest.mark.parametrize("raw", [
    b"pong",
    b'{"topic": "publicTrade.BTCUSDT", "ts": 1, "data": [{"T": 1, "s": "BTCUSDT", "S": "Hold", "v": "1", "p": "1", "i": "1"}]}',
    b'{"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": {"s": "BTCUSDT", "b": [], "a": []}}',
    b'{"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": {"s": "BTCUSDT", "b": [["1", "x"]], "a": [], "u": 5}}',
    b'{"topic": "tickers.BTCUSDT", "ts": 1, "data": {"symbol": "BTCUSDT", "bid1Price": "abc"}}',
    b'{"nothing": "here"}',
])
def test_malformed_frames_raise_decode_error(raw):
    dec = BybitDecoder(market="perp")
    with pytest.raises(DecodeError):
        dec.decode(raw)
    assert dec.out.n == 0 and dec.book_events == []


def test_venue_declaration():
    assert venue("bybit") is VENUE
    assert isinstance(decoder_for("bybit"), BybitDecoder)
    assert VENUE.ws_url == "wss://stream.bybit.com" and VENUE.rest_url == "https://api.bybit.com"
    assert VENUE.book_rule == "bybit"
    assert (VENUE.limits.connect_attempts, VENUE.limits.connect_window_s) == (500, 300.0)
    assert VENUE.limits.symbols_per_subscribe == 10
    assert VENUE.ping.mode == "text" and VENUE.ping.interval_s == 20
    assert orjson.loads(VENUE.ping.payload) == {"op": "ping"}
    # the worker builds each connection's decoder with this market
    assert VENUE.extra["market_for_path"]("/v5/public/spot") == "spot"
    assert VENUE.extra["market_for_path"]("/v5/public/linear") == "perp"


def test_subscribe_shape_per_market():
    ((path, msgs),) = VENUE.subscribe(["BTCUSDT", "ETHUSDT"], ["trades", "quotes", "book", "mark"], market="spot")
    assert path == "/v5/public/spot"
    args = [a for m in msgs for a in orjson.loads(m)["args"]]
    assert all(orjson.loads(m)["op"] == "subscribe" for m in msgs)
    assert args == ["publicTrade.BTCUSDT", "orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT",
                    "publicTrade.ETHUSDT", "orderbook.1.ETHUSDT", "orderbook.50.ETHUSDT"]
    ((path, msgs),) = VENUE.subscribe(["BTCUSDT"], ["trades", "quotes", "book", "mark", "liquidations"], market="perp")
    assert path == "/v5/public/linear"
    args = [a for m in msgs for a in orjson.loads(m)["args"]]
    assert args == ["publicTrade.BTCUSDT", "tickers.BTCUSDT", "orderbook.50.BTCUSDT", "allLiquidation.BTCUSDT"]
    ((_, msgs),) = VENUE.subscribe([f"S{i}USDT" for i in range(25)], ["trades"], market="spot")
    assert [len(orjson.loads(m)["args"]) for m in msgs] == [10, 10, 5]    # spot: 10 args per request


def test_rest_snapshot_documented_example():
    assert VENUE.snapshot_request("BTCUSDT") == (
        "/v5/market/orderbook", {"category": "spot", "symbol": "BTCUSDT", "limit": 50})
    assert VENUE.snapshot_request("BTCUSDT", market="perp")[1]["category"] == "linear"
    body = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {
        "s": "BTCUSDT", "a": [["16638.64", "0.008479"]], "b": [["16638.27", "0.305749"]],
        "ts": 1672765737733, "u": 5277055}, "retExtInfo": {}, "time": 1672765737734})
    assert VENUE.parse_snapshot(body) == (5277055, [(16638.27, 0.305749)], [(16638.64, 0.008479)])
    with pytest.raises(ValueError, match="retCode=10001"):
        VENUE.parse_snapshot(b'{"retCode": 10001, "retMsg": "params error", "result": {}}')


def test_rest_instruments_documented_examples():
    linear = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [
        {"symbol": "BTCUSDT", "contractType": "LinearPerpetual", "status": "Trading",
         "baseCoin": "BTC", "quoteCoin": "USDT",
         "priceFilter": {"minPrice": "0.10", "maxPrice": "1999999.80", "tickSize": "0.10"},
         "lotSizeFilter": {"maxOrderQty": "1190.000", "minOrderQty": "0.001", "qtyStep": "0.001"}}]}})
    spot = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
        {"symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "status": "Trading",
         "lotSizeFilter": {"basePrecision": "0.000001", "quotePrecision": "0.00000001"},
         "priceFilter": {"tickSize": "0.01"}}]}})
    assert VENUE.parse_instruments(linear) == [
        {"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT", "market": "perp", "tick_size": 0.1, "lot_size": 0.001}]
    assert VENUE.parse_instruments(spot) == [
        {"symbol": "BTCUSDT", "base": "BTC", "quote": "USDT", "market": "spot", "tick_size": 0.01, "lot_size": 0.000001}]
    assert [p[1]["category"] for p in VENUE.extra["instruments_requests"]] == ["spot", "linear"]


def test_rest_trades_documented_example():
    assert VENUE.trades_request("BTCUSDT", 0) == (
        "/v5/market/recent-trade", {"category": "spot", "symbol": "BTCUSDT", "limit": 60})
    body = orjson.dumps({"retCode": 0, "retMsg": "OK", "result": {"category": "spot", "list": [
        {"execId": "2100000000007764263", "symbol": "BTCUSDT", "price": "16618.49", "size": "0.00012",
         "side": "Buy", "time": "1672052955758", "isBlockTrade": False}]}, "retExtInfo": {}, "time": 1672053054358})
    assert VENUE.parse_trades(body) == [(2100000000007764263, 1672052955758 * MS, 16618.49, 0.00012, Side.BUY)]


def _all_samples():
    return [(m["channel"], m["payload"]) for m in wire_samples.document("bybit_v5.json")["messages"]]


@pytest.mark.parametrize("channel,payload", _all_samples())
def test_every_documented_message_decodes(channel, payload):
    """Every sample decodes on the connection of its market; klines and the spot ticker
    (no bid/ask) give nothing, the rest give records ending with LAST."""
    market = "spot" if "spot" in channel else "perp"
    r = BybitDecoder(market=market).decode(frame(payload), TS_RECV)
    if channel in ("kline", "tickers (spot)"):
        assert len(r) == 0
    else:
        assert len(r) >= 1 and int(r["flags"][-1]) & Flag.LAST
