"""Kraken v2 decoder against the documented examples (../shared/wire-samples/kraken_v2.json),
control frames, maintenance notice, malformed frames, subscribe() and the REST parsers."""
from __future__ import annotations

import calendar
import json

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.checksum import kraken_checksum
from feeds.kraken import KrakenDecoder, parse_instruments, parse_trades, rest_pair, subscribe
from shm.record import Flag, Kind, Side
import wire_samples



def utc_ns(y, mo, d, h, mi, s, ns=0):
    return calendar.timegm((y, mo, d, h, mi, s)) * 1_000_000_000 + ns


@pytest.fixture(scope="module")
def msgs():
    doc = wire_samples.document("kraken_v2.json")
    return [(m["channel"], m["kind"], m["payload"]) for m in doc["messages"]]


def pick(msgs, channel_prefix, kind):
    return next(p for c, k, p in msgs if c.startswith(channel_prefix) and k == kind)


def test_book_snapshot(msgs):
    p = pick(msgs, "book", "snapshot")
    dec = KrakenDecoder()
    r = dec.decode(orjson.dumps(p), ts_recv=7)
    d = p["data"][0]
    assert len(r) == 20
    assert (r["kind"] == Kind.BOOK).all()
    bids, asks = r[:10], r[10:]
    assert (bids["side"] == Side.BID).all() and (asks["side"] == Side.ASK).all()
    assert list(bids["price"]) == [lv["price"] for lv in d["bids"]]
    assert list(asks["size"]) == [lv["qty"] for lv in d["asks"]]
    assert bids[0]["price"] == 0.5666 and asks[0]["price"] == 0.5668
    assert all(f & Flag.SNAPSHOT for f in r["flags"])
    assert [bool(f & Flag.LAST) for f in r["flags"]] == [False] * 19 + [True]
    assert (r["ts_event"] == utc_ns(2023, 10, 6, 17, 35, 55, 440_295_000)).all()
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot) == (0, 20, True)
    assert (ev.first, ev.last, ev.prev) == (-1, -1, -1)
    assert ev.checksum == 2439117997
    assert dec.symbol(ev.instrument) == "MATIC/USD"
    # the levels as sent reproduce the venue's checksum with the pair's precision (4 / 8)
    lb, la = d["bids"], d["asks"]
    asks_l = sorted((lv["price"], lv["qty"]) for lv in la)
    bids_l = sorted(((lv["price"], lv["qty"]) for lv in lb), reverse=True)
    assert kraken_checksum(asks_l, bids_l, 4, 8) == ev.checksum


def test_book_update(msgs):
    p = pick(msgs, "book", "update")
    dec = KrakenDecoder()
    r = dec.decode(orjson.dumps(p))
    assert len(r) == 1
    assert (r[0]["side"], r[0]["price"], r[0]["size"]) == (Side.BID, 0.5657, 1098.3947558)
    assert r[0]["flags"] == Flag.LAST
    (ev,) = dec.book_events
    assert ev.snapshot is False and ev.checksum == 2114181697


def test_book_keeper_checksum_hook(msgs):
    from feeds.book import BookKeeper
    v = venue("kraken")
    keeper = BookKeeper(v.book_rule, depth=v.book_depth, checksum=v.extra["book_checksum"])
    dec = KrakenDecoder()

    def run(payload):
        dec.out.clear()
        dec.book_events.clear()
        dec.feed(orjson.dumps(payload), 0)
        keeper.check(dec.book_events, dec.out.buf)

    run(pick(msgs, "book", "snapshot"))      # precision 4/8 inferred from the snapshot
    run(pick(msgs, "book", "update"))
    assert keeper.checksum_errors == 0
    bad = json.loads(json.dumps(pick(msgs, "book", "update")))
    bad["data"][0]["bids"][0]["qty"] = 1.0   # the venue's checksum no longer matches our book
    run(bad)
    assert keeper.checksum_errors == 1


def test_book_qty_zero_deletes():
    p = {"channel": "book", "type": "update", "data": [{
        "symbol": "BTC/USD", "bids": [], "asks": [{"price": 45285.2, "qty": 0}],
        "checksum": 1, "timestamp": "2023-10-06T17:35:55.440295Z"}]}
    r = KrakenDecoder().decode(orjson.dumps(p))
    assert r[0]["side"] == Side.ASK and r[0]["size"] == 0.0


def test_ticker_snapshot_and_update(msgs):
    for kind, ask in (("snapshot", (0.10036, 1361.44813783)), ("update", (0.10035, 740.0))):
        dec = KrakenDecoder()
        r = dec.decode(orjson.dumps(pick(msgs, "ticker", kind)))
        assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
        assert (r[0]["bid_price"], r[0]["bid_size"]) == (0.10025, 740.0)
        assert (r[0]["ask_price"], r[0]["ask_size"]) == ask
        assert r[0]["ts_event"] == utc_ns(2023, 9, 25, 9, 4, 31, 742_648_000)
        assert dec.symbol(int(r[0]["instrument"])) == "ALGO/USD"


def test_trades(msgs):
    dec = KrakenDecoder()
    r = dec.decode(orjson.dumps(pick(msgs, "trade", "snapshot")))
    assert len(r) == 2 and (r["kind"] == Kind.TRADE).all()
    assert list(r["id"]) == [4665846, 4665847]
    assert list(r["side"]) == [Side.BUY, Side.BUY]
    assert list(r["size"]) == [6423.46326, 1136.19677815]
    assert (r["price"] == 0.5147).all()
    assert list(r["ts_event"]) == [utc_ns(2023, 9, 25, 7, 48, 36, 925_533_000),
                                   utc_ns(2023, 9, 25, 7, 49, 36, 925_603_000)]
    assert list(r["flags"]) == [0, Flag.LAST]


def test_ohlc_decodes_to_nothing(msgs):
    dec = KrakenDecoder()
    assert len(dec.decode(orjson.dumps(pick(msgs, "ohlc", "snapshot")))) == 0


@pytest.mark.parametrize("payload", [
    {"channel": "heartbeat"},
    {"method": "pong", "req_id": 101, "time_in": "2023-09-24T14:10:23.799685Z",
     "time_out": "2023-09-24T14:10:23.799703Z"},
    {"method": "subscribe", "result": {"channel": "ticker", "snapshot": True, "symbol": "ALGO/USD"},
     "success": True, "time_in": "2023-09-25T09:04:31.742599Z",
     "time_out": "2023-09-25T09:04:31.742648Z"},
    {"method": "subscribe", "error": "Currency pair not supported", "success": False,
     "symbol": "NOPE/USD", "time_in": "2023-09-25T09:04:31.742599Z",
     "time_out": "2023-09-25T09:04:31.742648Z"},
    {"channel": "status", "type": "update", "data": [
        {"version": "2.0.0", "system": "online", "api_version": "v2", "connection_id": 1}]},
])
def test_control_frames_produce_nothing(payload):
    dec = KrakenDecoder()
    assert len(dec.decode(orjson.dumps(payload))) == 0
    assert dec.notices == [] and dec.book_events == []


def test_maintenance_status_is_a_shutdown_notice():
    dec = KrakenDecoder()
    r = dec.decode(orjson.dumps({"channel": "status", "type": "update", "data": [
        {"version": "2.0.0", "system": "maintenance", "api_version": "v2", "connection_id": 1}]}))
    assert len(r) == 0 and dec.notices == ["shutdown"]


@pytest.mark.parametrize("raw", [
    b"{",
    b'"text"',
    b'{"channel": "book", "type": "update", "data": [{"symbol": "BTC/USD", "bids": []}]}',
    b'{"channel": "trade", "type": "update", "data": [{"symbol": "BTC/USD", "side": "buy",'
    b' "price": 1, "qty": 1, "trade_id": 1, "timestamp": "not-a-time"}]}',
    b'{"channel": "surprise", "data": []}',
    b'{"hello": 1}',
])
def test_malformed_frames_raise(raw):
    with pytest.raises(DecodeError):
        KrakenDecoder().decode(raw)


def test_subscribe_shape():
    ((path, messages),) = subscribe(["BTC/USD", "ETH/USD"], ["book", "quotes", "trades"])
    assert path == ""
    docs = [orjson.loads(m) for m in messages]
    assert [d["params"]["channel"] for d in docs] == ["book", "ticker", "trade"]
    assert all(d["method"] == "subscribe" and d["params"]["symbol"] == ["BTC/USD", "ETH/USD"]
               for d in docs)
    assert docs[0]["params"]["depth"] >= venue("kraken").book_depth
    assert docs[1]["params"]["event_trigger"] == "bbo"


def test_rest_parsers():
    pairs = {"error": [], "result": {"XXBTZUSD": {
        "altname": "XBTUSD", "wsname": "XBT/USD", "base": "XXBT", "quote": "ZUSD",
        "pair_decimals": 1, "lot_decimals": 8, "cost_decimals": 5, "tick_size": "0.1",
        "ordermin": "0.0001", "status": "online"}}}
    (i,) = parse_instruments(orjson.dumps(pairs))
    assert i == {"symbol": "BTC/USD", "base": "BTC", "quote": "USD", "market": "spot",
                 "tick_size": 0.1, "lot_size": 1e-8, "price_decimals": 1, "qty_decimals": 8}
    assert rest_pair("BTC/USD") == "XBTUSD"
    trades = {"error": [], "result": {"XXBTZUSD": [
        ["30243.40000", "0.34507674", 1688669597.8277369, "b", "m", "", 61044952],
        ["30243.30000", "0.00376960", 1688669598.2804112, "s", "l", "", 61044953]],
        "last": "1688671969993150842"}}
    t = parse_trades(orjson.dumps(trades))
    assert [x[0] for x in t] == [61044952, 61044953]
    assert t[0][2:] == (30243.4, 0.34507674, Side.BUY) and t[1][4] == Side.SELL
    assert t[0][1] == 1688669597827737000
    with pytest.raises(ValueError):
        parse_instruments(b'{"error": ["EGeneral:Invalid arguments"], "result": {}}')


def test_declaration():
    v = venue("kraken")
    assert v.ws_url == "wss://ws.kraken.com/v2" and v.rest_url == "https://api.kraken.com"
    assert v.book_rule == "kraken"
    assert isinstance(decoder_for("kraken"), KrakenDecoder)
