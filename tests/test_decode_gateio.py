"""Gate.io spot v4 decoder against the documented examples (../shared/wire-samples/gateio_v4.json),
control and malformed frames, subscribe()/restamp and the REST parsers (snapshot id seeding)."""
from __future__ import annotations

import json
import time

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.gateio import (GateioDecoder, ms_str_ns, parse_instruments, parse_snapshot, parse_trades,
                          restamp, snapshot_request, subscribe, trades_request)
from shm.record import Flag, Kind, Side
import wire_samples



@pytest.fixture(scope="module")
def msgs():
    doc = wire_samples.document("gateio_v4.json")
    return {m["channel"].split(" ")[0]: m["payload"] for m in doc["messages"]}


def test_trade(msgs):
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(msgs["spot.trades"]), ts_recv=5)
    assert len(r) == 1
    t = r[0]
    assert t["kind"] == Kind.TRADE and t["side"] == Side.SELL        # only the taker side is sent
    assert (t["price"], t["size"], t["id"]) == (0.4705, 16.47, 309143071)
    assert t["ts_event"] == 1606292218213457800                      # "1606292218213.4578" ms
    assert t["flags"] == Flag.LAST
    assert dec.symbol(int(t["instrument"])) == "GT_USDT"


def test_book_ticker(msgs):
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(msgs["spot.book_ticker"]))
    assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
    assert (r[0]["bid_price"], r[0]["bid_size"], r[0]["ask_price"], r[0]["ask_size"]) == \
        (19177.79, 0.0003341504, 19179.38, 0.09)
    assert r[0]["ts_event"] == 1606293275123 * 1_000_000
    assert dec.symbol(int(r[0]["instrument"])) == "BTC_USDT"


def test_order_book_update(msgs):
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(msgs["spot.order_book_update"]))
    assert len(r) == 3 and (r["kind"] == Kind.BOOK).all()
    assert list(r["side"]) == [Side.BID, Side.BID, Side.ASK]
    assert list(r["price"]) == [19137.74, 19088.37, 19137.75]
    assert list(r["size"]) == [0.0001, 0.0, 0.6135]               # "0" deletes
    assert (r["id"] == 48776306).all()
    assert list(r["flags"]) == [0, 0, Flag.LAST]
    assert (r["ts_event"] == 1606294781123 * 1_000_000).all()
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == \
        (0, 3, False, 48776301, 48776306, -1, None)


def test_order_book_update_full_is_a_snapshot(msgs):
    p = json.loads(json.dumps(msgs["spot.order_book_update"]))
    p["result"]["full"] = True
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(p))
    assert all(f & Flag.SNAPSHOT for f in r["flags"])
    assert dec.book_events[0].snapshot is True


def test_obu_channel():
    p = {"channel": "spot.obu", "result": {"t": 1747054612673, "full": True, "s": "ob.BTC_USDT.50",
                                            "u": 73460015, "U": 73460010,
                                            "b": [["104027.1", "10.07"]], "a": [["104027.2", "0.5"]]},
         "time_ms": 1747054612848, "event": "update"}
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(p))
    assert len(r) == 2 and dec.symbol(int(r[0]["instrument"])) == "BTC_USDT"
    ev = dec.book_events[0]
    assert (ev.snapshot, ev.first, ev.last) == (True, 73460010, 73460015)


def test_order_book_snapshot(msgs):
    dec = GateioDecoder()
    r = dec.decode(orjson.dumps(msgs["spot.order_book"]))
    assert len(r) == 10
    assert list(r["side"]) == [Side.BID] * 5 + [Side.ASK] * 5
    assert r[0]["price"] == 19079.55 and r[5]["price"] == 19080.24 and r[2]["size"] == 0.00011808
    assert all(f & Flag.SNAPSHOT for f in r["flags"])
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.last) == (True, 48791820)


@pytest.mark.parametrize("name", ["spot.candlesticks", "spot.tickers"])
def test_undecoded_channels_give_nothing(msgs, name):
    assert len(GateioDecoder().decode(orjson.dumps(msgs[name]))) == 0


@pytest.mark.parametrize("payload", [
    {"time": 1606292218, "time_ms": 1606292218231, "channel": "spot.trades", "event": "subscribe",
     "error": None, "result": {"status": "success"}},
    {"time": 1606292218, "time_ms": 1606292218231, "channel": "spot.pong", "event": "",
     "error": None, "result": None},
    {"time": 1606292218, "time_ms": 1606292218231, "channel": "spot.order_book_update",
     "event": "subscribe", "error": {"code": 2, "message": "unknown currency pair NOPE_USDT"},
     "result": None},
    {"time": 1606292218, "time_ms": 1606292218231, "channel": "spot.trades",
     "event": "unsubscribe", "error": None, "result": {"status": "success"}},
])
def test_control_frames_produce_nothing(payload):
    dec = GateioDecoder()
    assert len(dec.decode(orjson.dumps(payload))) == 0 and dec.book_events == []


@pytest.mark.parametrize("raw", [
    b"<html>",
    b'{"event": "update"}',
    b'{"channel": "spot.book_ticker", "event": "update", "result": {"t": 1, "s": "BTC_USDT",'
    b' "b": "1", "B": "1", "a": "2"}}',
    b'{"channel": "spot.order_book_update", "event": "update", "result": {"t": 1, "s": "X_Y",'
    b' "U": 1, "b": [], "a": []}}',
    b'{"channel": "spot.mystery", "event": "update", "result": {}}',
])
def test_malformed_frames_raise(raw):
    with pytest.raises(DecodeError):
        GateioDecoder().decode(raw)


def test_ms_str_ns():
    assert ms_str_ns("1606292218213.4578") == 1606292218213457800
    assert ms_str_ns("1606292218213") == 1606292218213000000
    assert ms_str_ns(1606292218213) == 1606292218213000000


def test_subscribe_shape_and_restamp():
    ((path, messages),) = subscribe(["BTC_USDT", "ETH_USDT"], ["trades", "quotes", "book"])
    assert path == ""
    docs = [orjson.loads(m) for m in messages]
    assert [(d["channel"], d["payload"]) for d in docs] == [
        ("spot.order_book_update", ["BTC_USDT", "100ms"]),
        ("spot.order_book_update", ["ETH_USDT", "100ms"]),
        ("spot.trades", ["BTC_USDT", "ETH_USDT"]),
        ("spot.book_ticker", ["BTC_USDT", "ETH_USDT"])]
    assert all(d["event"] == "subscribe" and abs(d["time"] - time.time()) < 60 for d in docs)
    old = orjson.dumps(dict(docs[0], time=1))
    fresh = orjson.loads(restamp(old))
    assert abs(fresh["time"] - time.time()) < 60 and fresh["payload"] == docs[0]["payload"]


def test_rest_parsers():
    path, params = snapshot_request("BTC_USDT")
    assert path == "/api/v4/spot/order_book" and params["with_id"] == "true"
    body = {"id": 123456, "current": 1623898993123, "update": 1623898993121,
            "asks": [["1.52", "1.151"], ["1.53", "1.218"]], "bids": [["1.17", "201.863"]]}
    assert parse_snapshot(orjson.dumps(body)) == (123456, [(1.17, 201.863)],
                                                   [(1.52, 1.151), (1.53, 1.218)])
    with pytest.raises(ValueError):
        parse_snapshot(orjson.dumps({"asks": [], "bids": []}))
    pairs = [{"id": "ETH_USDT", "base": "ETH", "quote": "USDT", "fee": "0.2",
              "min_base_amount": "0.001", "min_quote_amount": "1.0", "amount_precision": 3,
              "precision": 6, "trade_status": "tradable", "sell_start": 1516378650,
              "buy_start": 1516378650}]
    (i,) = parse_instruments(orjson.dumps(pairs))
    assert (i["symbol"], i["base"], i["quote"]) == ("ETH_USDT", "ETH", "USDT")
    assert i["tick_size"] == pytest.approx(1e-6) and i["lot_size"] == pytest.approx(1e-3)
    assert trades_request("BTC_USDT", 42)[1]["last_id"] == "42"
    assert "last_id" not in trades_request("BTC_USDT", 0)[1]
    trades = [{"id": "1232893232", "create_time": "1548000000",
               "create_time_ms": "1548000000123.456", "side": "buy", "amount": "0.15",
               "price": "0.03"}]
    assert parse_trades(orjson.dumps(trades)) == [(1232893232, 1548000000123456000, 0.03, 0.15,
                                                   Side.BUY)]


def test_declaration():
    v = venue("gateio")
    assert v.ws_url == "wss://api.gateio.ws/ws/v4/" and v.rest_url == "https://api.gateio.ws"
    assert v.book_rule == "gateio" and v.snapshot_request is not None
    assert b"spot.ping" in v.ping.payload()
    assert isinstance(decoder_for("gateio"), GateioDecoder)
