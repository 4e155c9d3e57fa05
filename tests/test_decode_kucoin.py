"""KuCoin decoder against the documented examples (../shared/wire-samples/kucoin.json), the
bullet-public token handshake, control and malformed frames, subscribe() and the REST parsers."""
from __future__ import annotations

import json

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.kucoin import (KucoinDecoder, connect_url, parse_instruments, parse_snapshot,
                          parse_trades, subscribe)
from shm.record import Flag, Kind, Side
import wire_samples



@pytest.fixture(scope="module")
def msgs():
    doc = wire_samples.document("kucoin.json")
    # market data keyed by the channel's first word; REST examples by kind (rest_snapshot/_token)
    return {(m["kind"] if m["kind"].startswith("rest") else m["channel"].split(" ")[0]): m["payload"]
            for m in doc["messages"]}


def test_ticker_is_a_quote(msgs):
    dec = KucoinDecoder()
    r = dec.decode(orjson.dumps(msgs["ticker"]))
    assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
    assert (r[0]["bid_price"], r[0]["bid_size"], r[0]["ask_price"], r[0]["ask_size"]) == \
        (0.049, 0.036, 0.08, 0.18)
    assert r[0]["ts_event"] == 1704873323416 * 1_000_000      # the example's capitalised "Time"
    assert r[0]["flags"] == Flag.LAST
    assert dec.symbol(int(r[0]["instrument"])) == "BTC-USDT"


def test_level1_is_a_quote(msgs):
    r = KucoinDecoder().decode(orjson.dumps(msgs["level1"]))
    assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
    assert (r[0]["bid_price"], r[0]["bid_size"], r[0]["ask_price"], r[0]["ask_size"]) == \
        (68145.7, 1.29267802, 68145.8, 0.51987471)
    assert r[0]["ts_event"] == 1729816058766 * 1_000_000


def test_depth5_snapshot(msgs):
    dec = KucoinDecoder()
    r = dec.decode(orjson.dumps(msgs["level2Depth5"]))
    assert len(r) == 10
    assert list(r["side"]) == [Side.BID] * 5 + [Side.ASK] * 5
    assert r[0]["price"] == 67996.6 and r[5]["price"] == 67996.7 and r[8]["size"] == 0.11446863
    assert all(f & Flag.SNAPSHOT for f in r["flags"]) and r[-1]["flags"] & Flag.LAST
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last) == (True, -1, -1)


def test_level2_increment(msgs):
    dec = KucoinDecoder()
    r = dec.decode(orjson.dumps(msgs["level2"]))
    assert len(r) == 1
    assert (r[0]["kind"], r[0]["side"], r[0]["price"], r[0]["size"], r[0]["id"]) == \
        (Kind.BOOK, Side.ASK, 67993.3, 1.21427407, 14701689783)
    assert r[0]["flags"] == Flag.LAST and r[0]["ts_event"] == 1729816425625 * 1_000_000
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == \
        (False, 14701689783, 14701689783, -1, None)


def test_level2_price_zero_row_only_advances_sequence(msgs):
    p = json.loads(json.dumps(msgs["level2"]))
    p["data"]["changes"]["bids"] = [["0", "0", "14701689784"], ["67990", "0", "14701689785"]]
    p["data"]["sequenceEnd"] = 14701689785
    dec = KucoinDecoder()
    r = dec.decode(orjson.dumps(p))
    assert list(r["price"]) == [67990.0, 67993.3]             # the price-0 row made no record
    assert r[0]["size"] == 0.0                                # size 0 deletes
    assert dec.book_events[0].last == 14701689785


def test_match_trade(msgs):
    dec = KucoinDecoder()
    r = dec.decode(orjson.dumps(msgs["match"]))
    assert len(r) == 1
    t = r[0]
    assert (t["kind"], t["side"], t["price"], t["size"]) == (Kind.TRADE, Side.BUY, 67523.0, 0.003)
    assert t["id"] == 11067996711960577                       # int(sequence)
    assert t["ts_event"] == 1729843222921000000               # ns string
    assert dec.symbol(int(t["instrument"])) == "BTC-USDT"


def test_klines_decode_to_nothing(msgs):
    dec = KucoinDecoder()
    assert len(dec.decode(orjson.dumps(msgs["klines"]))) == 0
    assert dec.instruments._ids == {}


@pytest.mark.parametrize("payload", [
    {"id": "hQvf8jkno", "type": "welcome"},
    {"id": "1545910660739", "type": "ack"},
    {"id": "1545910590801", "type": "pong"},
    {"id": "1545910660739", "type": "error", "code": 404, "data": "topic /market/nope is not found"},
])
def test_control_frames_produce_nothing(payload):
    dec = KucoinDecoder()
    assert len(dec.decode(orjson.dumps(payload))) == 0
    assert dec.book_events == [] and dec.notices == []


@pytest.mark.parametrize("raw", [
    b"",
    b'{"type": "surprise"}',
    b'{"type": "message", "topic": "/market/match:BTC-USDT", "subject": "trade.l3match",'
    b' "data": {"price": "1", "size": "1", "side": "buy", "time": "1", "sequence": "zz"}}',
    b'{"type": "message", "topic": "/market/level2:BTC-USDT", "subject": "trade.l2update",'
    b' "data": {"changes": {"asks": [], "bids": []}, "time": 1}}',
    b'{"type": "message", "topic": "/x:BTC-USDT", "subject": "mystery", "data": {}}',
    b'{"type": "message", "topic": "no-colon", "subject": "level1", "data": {}}',
])
def test_malformed_frames_raise(raw):
    with pytest.raises(DecodeError):
        KucoinDecoder().decode(raw)


def test_connect_url_from_bullet_public(msgs):
    token_doc = msgs["rest_token"]
    url, ping_s, timeout_s = connect_url(orjson.dumps(token_doc), connect_id="c1")
    token = token_doc["data"]["token"]
    assert url == f"wss://ws-api-spot.kucoin.com/?token={token}&connectId=c1"
    assert (ping_s, timeout_s) == (18.0, 10.0)
    url2, _, _ = connect_url(token_doc)
    assert "connectId=" in url2 and url2 != url                # a fresh id when none is given
    url3, _, _ = connect_url(token_doc, connect_id="c2", ws_base="ws://127.0.0.1:4321")
    assert url3 == f"ws://127.0.0.1:4321/?token={token}&connectId=c2"    # simulator / proxy
    with pytest.raises(ValueError):
        connect_url(b'{"code": "400100", "msg": "bad"}')


def test_rest_snapshot_and_instruments(msgs):
    seq, bids, asks = parse_snapshot(orjson.dumps(msgs["rest_snapshot"]))
    assert seq == 14610502970
    assert bids == [(66976.4, 0.69109872), (66976.3, 0.14377)]
    assert asks == [(66976.5, 0.05408199), (66976.8, 0.0005)]
    symbols = {"code": "200000", "data": [{
        "symbol": "BTC-USDT", "name": "BTC-USDT", "baseCurrency": "BTC", "quoteCurrency": "USDT",
        "feeCurrency": "USDT", "market": "USDS", "baseMinSize": "0.00001", "quoteMinSize": "0.1",
        "baseMaxSize": "10000000000", "quoteMaxSize": "99999999", "baseIncrement": "0.00000001",
        "quoteIncrement": "0.000001", "priceIncrement": "0.1", "priceLimitRate": "0.1",
        "minFunds": "0.1", "isMarginEnabled": True, "enableTrading": True}]}
    assert parse_instruments(orjson.dumps(symbols)) == [{
        "symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "market": "spot",
        "tick_size": 0.1, "lot_size": 1e-8}]
    hist = {"code": "200000", "data": [{"sequence": "1545896668571", "price": "0.07",
                                        "size": "0.004", "side": "buy",
                                        "time": 1545904567062140823}]}
    assert parse_trades(orjson.dumps(hist)) == [(1545896668571, 1545904567062140823, 0.07, 0.004,
                                                 Side.BUY)]


def test_subscribe_shape():
    ((path, messages),) = subscribe(["BTC-USDT", "ETH-USDT"], ["trades", "quotes", "book"])
    assert path == ""
    docs = [orjson.loads(m) for m in messages]
    assert [d["topic"] for d in docs] == ["/market/match:BTC-USDT,ETH-USDT",
                                          "/spotMarket/level1:BTC-USDT,ETH-USDT",
                                          "/market/level2:BTC-USDT,ETH-USDT"]
    assert all(d["type"] == "subscribe" and d["privateChannel"] is False for d in docs)
    assert len({d["id"] for d in docs}) == 3
    big = subscribe([f"S{i}-USDT" for i in range(150)], ["trades"])[0][1]
    assert len(big) == 2                                      # max 100 symbols per topic


def test_declaration():
    v = venue("kucoin")
    assert v.rest_url == "https://api.kucoin.com" and v.book_rule == "kucoin"
    assert callable(v.extra["connect_url"]) and v.extra["token_request"][1] == "/api/v1/bullet-public"
    assert b'"ping"' in v.ping.payload()
    assert isinstance(decoder_for("kucoin"), KucoinDecoder)
