"""Bitget v2 decoder against the documented examples (../shared/wire-samples/bitget_v2.json),
the `books` seq/checksum events with raw level strings, control and malformed frames,
subscribe() and the REST parsers."""
from __future__ import annotations


import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.bitget import LEVEL_STRINGS, BitgetDecoder, parse_instruments, parse_trades, subscribe
from feeds.checksum import bitget_checksum
from shm.record import Flag, Kind, Side
import wire_samples



@pytest.fixture(scope="module")
def msgs():
    doc = wire_samples.document("bitget_v2.json")
    return {m["channel"].split(" ")[0]: m["payload"] for m in doc["messages"]}


def test_trade(msgs):
    dec = BitgetDecoder()
    r = dec.decode(orjson.dumps(msgs["trade"]), ts_recv=9)
    assert len(r) == 1
    t = r[0]
    assert t["kind"] == Kind.TRADE and t["side"] == Side.BUY       # documented: taker side
    assert (t["price"], t["size"], t["id"]) == (26293.4, 0.0013, 1000000000)
    assert t["ts_event"] == 1695709835822 * 1_000_000 and t["ts_recv"] == 9
    assert t["flags"] == Flag.LAST
    assert dec.symbol(int(t["instrument"])) == "BTCUSDT"
    assert dec.instruments.market(int(t["instrument"])) == "spot"


def test_books5_snapshot(msgs):
    dec = BitgetDecoder()
    r = dec.decode(orjson.dumps(msgs["books5"]))
    assert len(r) == 4 and (r["kind"] == Kind.BOOK).all()
    assert list(r["side"]) == [Side.BID, Side.BID, Side.ASK, Side.ASK]
    assert list(r["price"]) == [26274.8, 26274.7, 26274.9, 26275.0]
    assert list(r["size"]) == [0.0009, 0.0027, 0.0009, 0.05]
    assert all(f & Flag.SNAPSHOT for f in r["flags"]) and r[-1]["flags"] & Flag.LAST
    assert (r["id"] == 123).all() and (r["ts_event"] == 1695710946294 * 1_000_000).all()
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == (True, 123, 123, -1, None)


def test_candles_decode_to_nothing(msgs):
    dec = BitgetDecoder()
    assert len(dec.decode(orjson.dumps(msgs["candle1m"]))) == 0
    assert "ETHUSDT" not in [s for s, _ in dec.instruments._ids]   # nothing registered


def test_ticker_is_a_quote(msgs):
    dec = BitgetDecoder()
    r = dec.decode(orjson.dumps(msgs["ticker"]))
    assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
    assert (r[0]["bid_price"], r[0]["bid_size"], r[0]["ask_price"], r[0]["ask_size"]) == \
        (27000.0, 2.71, 27000.5, 8.76)
    assert r[0]["ts_event"] == 1695715383021 * 1_000_000
    assert dec.instruments.market(int(r[0]["instrument"])) == "perp"   # SUSDT-FUTURES


def test_books1_is_a_quote():
    p = {"action": "snapshot", "arg": {"instType": "SPOT", "channel": "books1", "instId": "BTCUSDT"},
         "data": [{"asks": [["26274.9", "0.0009"]], "bids": [["26274.8", "0.0009"]],
                   "seq": 7, "ts": "1695710946294"}], "ts": 1695710946294}
    r = BitgetDecoder().decode(orjson.dumps(p))
    assert len(r) == 1 and r[0]["kind"] == Kind.QUOTE
    assert (r[0]["bid_price"], r[0]["ask_price"]) == (26274.8, 26274.9)


def _books(action, bids, asks, seq, checksum, pseq=None):
    d = {"asks": asks, "bids": bids, "checksum": checksum, "seq": seq, "ts": "1695710946294"}
    if pseq is not None:
        d["pseq"] = pseq
    return orjson.dumps({"action": action, "arg": {"instType": "SPOT", "channel": "books",
                                                   "instId": "ETHUSDT"}, "data": [d],
                         "ts": 1695710946294})


def test_books_snapshot_then_update_with_checksum():
    bids = [["3366.1", "7"]]
    asks = [["3366.8", "9"], ["3368", "8"], ["3372", "8"]]
    dec = BitgetDecoder()
    r = dec.decode(_books("snapshot", bids, asks, 100, 0))
    assert len(r) == 4 and all(f & Flag.SNAPSHOT for f in r["flags"])
    (ev,) = dec.book_events
    # snapshots are not checksummed; the level texts are kept exactly as sent ("3368")
    assert (ev.snapshot, ev.first, ev.last, ev.checksum) == (True, 100, 100, None)
    assert LEVEL_STRINGS[ev.instrument] == ([3366.1], ["3366.1:7"], [3366.8, 3368.0, 3372.0],
                                            ["3366.8:9", "3368:8", "3372:8"])

    r = dec.decode(_books("update", [["3366.1", "0"]], [], 101, -12345, pseq=100))
    assert len(r) == 1 and r[0]["size"] == 0.0 and not r[0]["flags"] & Flag.SNAPSHOT
    assert r[0]["id"] == 101
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last, ev.prev, ev.checksum) == (False, 101, 101, 100, -12345)


def _keeper():
    from feeds.book import BookKeeper
    v = venue("bitget")
    return BookKeeper(v.book_rule, depth=v.book_depth, checksum=v.extra["book_checksum"])


def _run(dec, keeper, frame):
    dec.out.clear()
    dec.book_events.clear()
    dec.feed(frame, 0)
    keeper.check(dec.book_events, dec.out.buf)


def test_book_keeper_checksum_hook_uses_original_strings():
    bids = [["26274.8", "0.0009"], ["26274.7", "0.0500"]]
    asks = [["26274.9", "0.0100"], ["26275.0", "1.2000"]]
    dec = BitgetDecoder()
    keeper = _keeper()
    _run(dec, keeper, _books("snapshot", bids, asks, 1, None))
    # after the update the venue's book is bid 26274.8/0.0009, bid 26274.6/0.3000, asks as before
    after_b = [("26274.8", "0.0009"), ("26274.6", "0.3000")]
    good = bitget_checksum(after_b, [tuple(a) for a in asks])
    _run(dec, keeper, _books("update", [["26274.7", "0"], ["26274.6", "0.3000"]], [], 2, good))
    assert keeper.checksum_errors == 0 and keeper.gaps == 0
    # the same book with "0.3" instead of "0.3000" is a different checksum: strings matter
    assert bitget_checksum([("26274.8", "0.0009"), ("26274.6", "0.3")],
                           [tuple(a) for a in asks]) != good
    _run(dec, keeper, _books("update", [["26274.8", "0.0010"]], [], 3, good))   # stale checksum
    assert keeper.checksum_errors == 1


@pytest.mark.parametrize("raw", [
    b"pong",
    b'{"event": "subscribe", "arg": {"instType": "SPOT", "channel": "trade", "instId": "BTCUSDT"}}',
    b'{"event": "error", "code": 30001, "msg": "instType:SPOT,channel:trade,instId:NOPE'
    b' doesn\'t exist"}',
    b'{"event": "unsubscribe", "arg": {"instType": "SPOT", "channel": "books", "instId": "BTCUSDT"}}',
])
def test_control_frames_produce_nothing(raw):
    dec = BitgetDecoder()
    assert len(dec.decode(raw)) == 0 and dec.book_events == [] and dec.notices == []


@pytest.mark.parametrize("raw", [
    b"ping?",
    b"{}",
    b'{"action": "snapshot", "arg": {"instType": "SPOT", "channel": "trade", "instId": "BTCUSDT"},'
    b' "data": [{"ts": "1", "price": "1", "size": "1", "side": "up", "tradeId": "1"}]}',
    b'{"action": "snapshot", "arg": {"instType": "SPOT", "channel": "books", "instId": "BTCUSDT"},'
    b' "data": [{"bids": [["1"]], "asks": [], "seq": 1, "ts": "1"}]}',
    b'{"action": "snapshot", "arg": {"instType": "SPOT", "channel": "nope", "instId": "BTCUSDT"},'
    b' "data": []}',
])
def test_malformed_frames_raise(raw):
    with pytest.raises(DecodeError):
        BitgetDecoder().decode(raw)


def test_subscribe_shape():
    ((path, messages),) = subscribe(["BTCUSDT", "ETHUSDT"], ["trades", "quotes", "book"])
    assert path == ""
    args = [a for m in messages for a in orjson.loads(m)["args"]]
    assert all(orjson.loads(m)["op"] == "subscribe" for m in messages)
    assert {(a["channel"], a["instId"]) for a in args} == {
        (c, s) for c in ("trade", "books1", "books") for s in ("BTCUSDT", "ETHUSDT")}
    assert all(a["instType"] == "SPOT" for a in args)
    many = subscribe([f"S{i}USDT" for i in range(40)], ["trades"])[0][1]
    assert all(len(orjson.loads(m)["args"]) <= venue("bitget").limits.symbols_per_subscribe
               for m in many) and len(many) == 2


def test_rest_parsers():
    symbols = {"code": "00000", "msg": "success", "requestTime": 1695808949356, "data": [{
        "symbol": "BTCUSDT", "baseCoin": "BTC", "quoteCoin": "USDT", "minTradeAmount": "0",
        "maxTradeAmount": "10000000000", "takerFeeRate": "0.002", "makerFeeRate": "0.002",
        "pricePrecision": "2", "quantityPrecision": "4", "quotePrecision": "6",
        "status": "online", "minTradeUSDT": "5"}]}
    (i,) = parse_instruments(orjson.dumps(symbols))
    assert (i["symbol"], i["base"], i["quote"], i["market"]) == ("BTCUSDT", "BTC", "USDT", "spot")
    assert i["tick_size"] == pytest.approx(0.01) and i["lot_size"] == pytest.approx(0.0001)
    fills = {"code": "00000", "msg": "success", "data": [
        {"symbol": "BTCUSDT", "tradeId": "1", "side": "sell", "price": "2.38735", "size": "2.7",
         "ts": "1695808949356"}]}
    assert parse_trades(orjson.dumps(fills)) == [(1, 1695808949356 * 1_000_000, 2.38735, 2.7,
                                                 Side.SELL)]
    with pytest.raises(ValueError):
        parse_instruments(b'{"code": "40034", "msg": "Parameter does not exist"}')


def test_declaration():
    v = venue("bitget")
    assert v.ws_url == "wss://ws.bitget.com/v2/ws/public" and v.rest_url == "https://api.bitget.com"
    assert v.book_rule == "bitget" and v.ping.payload == b"ping" and v.ping.pong == b"pong"
    assert 0 < v.limits.max_connection_age_s <= 24 * 3600
    assert isinstance(decoder_for("bitget"), BitgetDecoder)
