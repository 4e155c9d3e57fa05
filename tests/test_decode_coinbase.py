"""Coinbase decoder against the documented message examples (../shared/wire-samples/coinbase.json),
control frames, malformed frames, the sequence_num gap rule, subscribe() and the REST parsers."""
from __future__ import annotations

import calendar
import json

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.coinbase import LOST, CoinbaseDecoder, parse_instruments, parse_trades, subscribe
from shm.record import Flag, Kind, Side
import wire_samples



def utc_ns(y, mo, d, h, mi, s, ns=0):
    return calendar.timegm((y, mo, d, h, mi, s)) * 1_000_000_000 + ns


@pytest.fixture(scope="module")
def msgs():
    doc = wire_samples.document("coinbase.json")
    return {m["channel"]: m["payload"] for m in doc["messages"]}


def frame(payload) -> bytes:
    return orjson.dumps(payload)


def test_market_trades_snapshot(msgs):
    dec = CoinbaseDecoder()
    r = dec.decode(frame(msgs["market_trades"]), ts_recv=123)
    assert len(r) == 1
    t = r[0]
    assert t["kind"] == Kind.TRADE
    assert t["price"] == 1260.01 and t["size"] == 0.3
    # documented side "BUY" is the maker's side: the aggressor sold
    assert t["side"] == Side.SELL
    assert t["id"] == 0                     # "000000000"
    assert t["ts_event"] == utc_ns(2019, 8, 14, 20, 42, 27, 265_000_000)
    assert t["ts_recv"] == 123
    assert t["flags"] == Flag.LAST
    assert dec.symbol(int(t["instrument"])) == "ETH-USD"
    assert dec.book_events == []


def test_ticker_is_a_quote(msgs):
    dec = CoinbaseDecoder()
    r = dec.decode(frame(msgs["ticker"]))
    assert len(r) == 1
    q = r[0]
    assert q["kind"] == Kind.QUOTE
    assert (q["bid_price"], q["bid_size"]) == (21931.98, 8000.21)
    assert (q["ask_price"], q["ask_size"]) == (21933.98, 8038.07770938)
    assert q["ts_event"] == utc_ns(2023, 2, 9, 20, 30, 37, 167_359_596)
    assert dec.symbol(int(q["instrument"])) == "BTC-USD"


def test_level2_snapshot(msgs):
    dec = CoinbaseDecoder()
    r = dec.decode(frame(msgs["level2 (received as channel l2_data)"]))
    assert len(r) == 2
    assert list(r["kind"]) == [Kind.BOOK, Kind.BOOK]
    assert list(r["side"]) == [Side.BID, Side.BID]
    assert list(r["price"]) == [21921.73, 21921.3]
    assert list(r["size"]) == [0.06317902, 0.02]
    assert list(r["flags"]) == [Flag.SNAPSHOT, Flag.SNAPSHOT | Flag.LAST]
    assert (r["ts_event"] == utc_ns(2023, 2, 9, 20, 32, 50, 714_964_855)).all()
    assert (r["id"] == 0).all()              # sequence_num
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.checksum) == (0, 2, True, 0, 0, None)
    assert dec.symbol(ev.instrument) == "BTC-USD"


def test_level2_update_offer_delete(msgs):
    p = json.loads(json.dumps(msgs["level2 (received as channel l2_data)"]))
    p["sequence_num"] = 5
    p["events"][0]["type"] = "update"
    p["events"][0]["updates"] = [{"side": "offer", "event_time": "2023-02-09T20:32:50.7Z",
                                  "price_level": "21922.5", "new_quantity": "0"}]
    dec = CoinbaseDecoder()
    r = dec.decode(frame(p))
    assert len(r) == 1
    assert r[0]["side"] == Side.ASK and r[0]["size"] == 0.0 and r[0]["price"] == 21922.5
    assert r[0]["flags"] == Flag.LAST        # no SNAPSHOT
    assert r[0]["id"] == 5
    assert dec.book_events[0].snapshot is False


def test_candles_decode_to_nothing(msgs):
    dec = CoinbaseDecoder()
    assert len(dec.decode(frame(msgs["candles"]))) == 0
    assert dec.book_events == [] and dec.notices == []


def test_exchange_feed_messages(msgs):
    dec = CoinbaseDecoder()
    q = dec.decode(frame(msgs["exchange: ticker"]))
    assert len(q) == 1 and q[0]["kind"] == Kind.QUOTE
    assert (q[0]["bid_price"], q[0]["bid_size"], q[0]["ask_price"], q[0]["ask_size"]) == \
        (1285.04, 0.46688654, 1285.27, 1.5663704)
    assert q[0]["ts_event"] == utc_ns(2022, 10, 19, 23, 28, 22, 61_769_000)

    t = dec.decode(frame(msgs["exchange: match (trade)"]))
    assert len(t) == 1 and t[0]["kind"] == Kind.TRADE
    assert t[0]["side"] == Side.BUY          # maker "sell" => up-tick, aggressor bought
    assert (t[0]["price"], t[0]["size"], t[0]["id"]) == (400.23, 5.23512, 10)

    s = dec.decode(frame(msgs["exchange: level2 snapshot"]))
    assert list(s["side"]) == [Side.BID, Side.ASK]
    assert list(s["price"]) == [10101.10, 10102.55]
    assert all(f & Flag.SNAPSHOT for f in s["flags"])
    assert dec.book_events[0].snapshot and dec.book_events[0].first == -1

    u = dec.decode(frame(msgs["exchange: level2 l2update (single change)"]))
    assert len(u) == 1 and u[0]["side"] == Side.BID
    assert (u[0]["price"], u[0]["size"]) == (10101.8, 0.162567)
    assert not u[0]["flags"] & Flag.SNAPSHOT


@pytest.mark.parametrize("payload", [
    {"channel": "heartbeats", "client_id": "", "timestamp": "2023-06-23T20:31:26.122969572Z",
     "sequence_num": 0, "events": [{"current_time": "2023-06-23 20:31:56.121961769 +0000 UTC",
                                    "heartbeat_counter": "3049"}]},
    {"channel": "subscriptions", "client_id": "", "timestamp": "2023-02-09T20:32:50.714964855Z",
     "sequence_num": 1, "events": [{"subscriptions": {"level2": ["BTC-USD"]}}]},
    {"type": "error", "message": "failure to subscribe", "reason": "bad product"},
    {"channel": "status", "client_id": "", "timestamp": "2023-02-09T20:29:49.753424311Z",
     "sequence_num": 0, "events": [{"type": "snapshot", "products": []}]},
])
def test_control_frames_produce_nothing(payload):
    dec = CoinbaseDecoder()
    assert len(dec.decode(frame(payload))) == 0
    assert dec.book_events == []


@pytest.mark.parametrize("raw", [
    b"not json",
    b"[]",
    b'{"channel": "market_trades", "timestamp": "2023-02-09T20:19:35Z", "sequence_num": 0}',
    b'{"channel": "bogus", "events": []}',
    b'{"channel": "market_trades", "sequence_num": 0, "events": [{"trades": [{"trade_id": "1",'
    b' "product_id": "ETH-USD", "price": "x", "size": "1", "side": "BUY",'
    b' "time": "2019-08-14T20:42:27.265Z"}]}]}',
    b'{"channel": "ticker", "timestamp": "yesterday", "sequence_num": 0,'
    b' "events": [{"tickers": [{"product_id": "BTC-USD", "best_bid": "1",'
    b' "best_bid_quantity": "1", "best_ask": "2", "best_ask_quantity": "1"}]}]}',
])
def test_malformed_frames_raise(raw):
    dec = CoinbaseDecoder()
    with pytest.raises(DecodeError):
        dec.decode(raw)


def test_malformed_frame_leaves_no_partial_records(msgs):
    p = json.loads(json.dumps(msgs["market_trades"]))
    good = dict(p["events"][0]["trades"][0])
    bad = dict(good, side="SIDEWAYS")
    p["events"][0]["trades"] = [good, bad]
    dec = CoinbaseDecoder()
    dec.feed(frame(msgs["market_trades"]), 0)
    assert dec.out.n == 1
    with pytest.raises(DecodeError):
        dec.feed(frame(p), 0)
    assert dec.out.n == 1                   # the good trade of the bad frame was rolled back


def _l2(seq, product, typ="update"):
    return frame({"channel": "l2_data", "client_id": "", "timestamp": "2023-02-09T20:32:50Z",
                  "sequence_num": seq, "events": [{"type": typ, "product_id": product, "updates": [
                      {"side": "bid", "event_time": "2023-02-09T20:32:50Z", "price_level": "1",
                       "new_quantity": "2"}]}]})


def _trade(seq):
    return frame({"channel": "market_trades", "client_id": "", "timestamp": "2023-02-09T20:32:50Z",
                  "sequence_num": seq, "events": [{"type": "update", "trades": [
                      {"trade_id": str(seq), "product_id": "BTC-USD", "price": "1", "size": "1",
                       "side": "SELL", "time": "2023-02-09T20:32:50Z"}]}]})


def test_sequence_gap_is_visible_in_book_events():
    dec = CoinbaseDecoder()
    evs = []                       # book_events holds the last frame's (a native decoder's)

    def feed(f):
        dec.feed(f, 0)
        evs.extend(dec.book_events)

    for f in (_l2(0, "BTC-USD", "snapshot"), _l2(1, "ETH-USD", "snapshot"), _trade(2),
              _l2(3, "BTC-USD")):
        feed(f)
    # prev = the instrument's previous l2 sequence_num while nothing was lost
    assert [(e.first, e.last, e.prev) for e in evs] == [(0, 0, -1), (1, 1, -1), (3, 3, 0)]
    assert dec.sequence_gaps == 0 and dec.notices == []
    feed(_trade(5))                                            # sequence 4 was lost
    assert dec.notices == ["sequence_gap"]
    feed(_l2(6, "BTC-USD"))
    feed(_l2(7, "ETH-USD"))
    feed(_l2(8, "BTC-USD"))
    btc_after, eth_after, btc_next = evs[3:]
    assert dec.sequence_gaps == 1
    assert btc_after.prev == LOST and eth_after.prev == LOST   # both books need a resync
    assert btc_next.prev == 6                                  # a new unbroken run again
    feed(_l2(0, "BTC-USD", "snapshot"))                        # a new connection restarts at 0
    assert evs[-1].snapshot and dec.sequence_gaps == 2


def test_subscribe_shape():
    out = subscribe(["BTC-USD", "ETH-USD"], ["trades", "quotes", "book"])
    assert len(out) == 1
    path, messages = out[0]
    assert path == ""
    assert all(isinstance(m, bytes) for m in messages)
    docs = [orjson.loads(m) for m in messages]
    assert [d["channel"] for d in docs] == ["market_trades", "ticker", "level2", "heartbeats"]
    assert all(d["type"] == "subscribe" and d["product_ids"] == ["BTC-USD", "ETH-USD"]
               for d in docs)
    with pytest.raises(ValueError):
        subscribe(["BTC-USD"], ["mark"])


def test_rest_parsers():
    products = {"products": [
        {"product_id": "BTC-USD", "price": "21000", "base_increment": "0.00000001",
         "quote_increment": "0.01", "price_increment": "0.01", "product_type": "SPOT",
         "base_currency_id": "BTC", "quote_currency_id": "USD", "status": "online"},
        {"product_id": "BIP-20DEC30-CDE", "base_increment": "1", "quote_increment": "5",
         "price_increment": "5", "product_type": "FUTURE", "base_currency_id": "",
         "quote_currency_id": "USD",
         "future_product_details": {"contract_expiry_type": "PERPETUAL"}}],
        "num_products": 2}
    inst = parse_instruments(orjson.dumps(products))
    assert inst[0] == {"symbol": "BTC-USD", "base": "BTC", "quote": "USD", "market": "spot",
                       "tick_size": 0.01, "lot_size": 1e-8}
    assert inst[1]["market"] == "perp" and inst[1]["tick_size"] == 5.0
    trades = {"trades": [{"trade_id": "34b080bf-fcfd-445a-832b-46b5ddc65601",
                          "product_id": "BTC-USD", "price": "140.91", "size": "4",
                          "time": "2021-05-31T09:59:59.123Z", "side": "BUY", "bid": "", "ask": ""}],
              "best_bid": "291.13", "best_ask": "292.40"}
    (t,) = parse_trades(orjson.dumps(trades))
    assert t[1:] == (utc_ns(2021, 5, 31, 9, 59, 59, 123_000_000), 140.91, 4.0, Side.SELL)
    assert isinstance(t[0], int) and t[0] >= 0                 # opaque id -> stable int64


def test_declaration():
    v = venue("coinbase")
    assert v.ws_url == "wss://advanced-trade-ws.coinbase.com"
    assert v.rest_url == "https://api.coinbase.com"
    assert v.book_rule == "coinbase" and set(v.channels) == {"trades", "quotes", "book"}
    assert isinstance(decoder_for("coinbase"), CoinbaseDecoder)
    assert v.limits.subscribe_msgs_per_s <= 8
