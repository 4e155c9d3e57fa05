"""OKX v5 decoder and venue declaration, checked against the venue's documented examples
(../shared/wire-samples/okx_v5.json) plus documented control messages."""
from __future__ import annotations

import math

import orjson
import pytest

from feeds import DecodeError, decoder_for, venue
from feeds.okx import VENUE, OkxDecoder, market_of
from shm.record import Flag, Kind, Side
import wire_samples

MS = 1_000_000
TS_RECV = 1_700_000_000_000_000_999


def sample(channel: str, kind: str) -> dict:
    doc = wire_samples.document("okx_v5.json")
    for m in doc["messages"]:
        if m["channel"] == channel and m["kind"] == kind:
            return m["payload"]
    raise LookupError(channel)


def frame(payload: dict) -> bytes:
    return orjson.dumps(payload)


def check_book_levels(r, d: dict, flags: int) -> None:
    n_b, n_a = len(d["bids"]), len(d["asks"])
    assert len(r) == n_b + n_a
    assert list(r["side"]) == [Side.BID] * n_b + [Side.ASK] * n_a
    assert list(r["price"]) == [float(lv[0]) for lv in d["bids"]] + [float(lv[0]) for lv in d["asks"]]
    assert list(r["size"]) == [float(lv[1]) for lv in d["bids"]] + [float(lv[1]) for lv in d["asks"]]
    assert set(r["id"]) == {d["seqId"]}
    assert set(r["ts_event"]) == {int(d["ts"]) * MS}
    assert [int(f) & ~Flag.LAST for f in r["flags"]] == [flags] * len(r)
    assert int(r["flags"][-1]) & Flag.LAST


def test_books_snapshot_sample():
    p = sample("books", "snapshot")
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    check_book_levels(r, p["data"][0], Flag.SNAPSHOT)
    assert r["price"][0] == 8476.97 and r["size"][0] == 256.0
    assert r["ts_recv"][0] == TS_RECV
    (ev,) = dec.book_events
    assert (ev.start, ev.end, ev.snapshot, ev.first, ev.last, ev.prev) == (0, 16, True, 123456, 123456, -1)
    assert ev.checksum is None                       # deprecated, sent as 0
    assert dec.symbol(ev.instrument) == "BTC-USDT" and dec.instruments.market(ev.instrument) == "spot"


def test_books_update_sample():
    p = sample("books", "update")
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    check_book_levels(r, p["data"][0], 0)
    (ev,) = dec.book_events
    assert (ev.snapshot, ev.first, ev.last, ev.prev) == (False, 123457, 123457, 123456)


def test_books_nonzero_checksum_is_passed_on():
    p = sample("books", "update")
    d = dict(p["data"][0], checksum=-855196043)
    dec = OkxDecoder()
    dec.decode(frame(dict(p, data=[d])))
    assert dec.book_events[0].checksum == -855196043


def test_books_keepalive_update_without_levels():
    p = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
         "data": [{"asks": [], "bids": [], "ts": "1597026383085", "checksum": 0,
                   "prevSeqId": 123457, "seqId": 123457}]}
    dec = OkxDecoder()
    assert len(dec.decode(frame(p))) == 0
    (ev,) = dec.book_events
    assert ev.start == ev.end and ev.prev == ev.last == 123457


def test_bbo_tbt_sample_is_a_quote():
    p = sample("bbo-tbt", "snapshot")
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.QUOTE]
    assert (r["bid_price"][0], r["bid_size"][0], r["ask_price"][0], r["ask_size"][0]) == \
        (111.05, 57745.0, 111.06, 55154.0)
    assert r["ts_event"][0] == 1670324386802 * MS
    assert dec.book_events == []
    inst = int(r["instrument"][0])
    assert dec.symbol(inst) == "BCH-USDT-SWAP" and dec.instruments.market(inst) == "perp"


def test_trades_sample():
    p = sample("trades", "update")
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    assert len(r) == 1 and r["kind"][0] == Kind.TRADE
    assert r["id"][0] == 130639474
    assert r["price"][0] == 42219.9 and r["size"][0] == 0.12060306
    assert r["side"][0] == Side.BUY
    assert r["ts_event"][0] == 1630048897897 * MS
    assert r["flags"][0] == Flag.LAST
    assert dec.symbol(int(r["instrument"][0])) == "BTC-USDT"


def test_tickers_sample_is_a_quote():
    p = sample("tickers", "update")
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.QUOTE]
    assert (r["bid_price"][0], r["bid_size"][0], r["ask_price"][0], r["ask_size"][0]) == \
        (8888.88, 5.0, 9999.99, 11.0)
    assert r["ts_event"][0] == 1597026383085 * MS
    # an illiquid instrument sends "" for a missing side
    d = dict(p["data"][0], bidPx="", bidSz="")
    r = dec.decode(frame(dict(p, data=[d])))
    assert math.isnan(r["bid_price"][0]) and r["ask_price"][0] == 9999.99


def test_candle_sample_decodes_to_nothing():
    assert len(OkxDecoder().decode(frame(sample("candle1D (on /ws/v5/business)", "update")))) == 0


def test_mark_price_documented_example():
    p = {"arg": {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
         "data": [{"instType": "SWAP", "instId": "BTC-USDT-SWAP", "markPx": "42310.6", "ts": "1630049139746"}]}
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.MARK]
    assert r["price"][0] == 42310.6 and math.isnan(r["size"][0]) and math.isnan(r["ask_price"][0])
    assert r["id"][0] == 0 and r["ts_event"][0] == 1630049139746 * MS
    assert dec.instruments.market(int(r["instrument"][0])) == "perp"


def test_funding_rate_documented_example():
    p = {"arg": {"channel": "funding-rate", "instId": "BTC-USD-SWAP"},
         "data": [{"formulaType": "noRate", "fundingRate": "0.0001875391284828", "fundingTime": "1700726400000",
                   "impactValue": "", "instId": "BTC-USD-SWAP", "instType": "SWAP", "interestRate": "",
                   "maxFundingRate": "0.00375", "method": "current_period", "minFundingRate": "-0.00375",
                   "nextFundingRate": "", "nextFundingTime": "1700755200000", "premium": "0.0001233824646391",
                   "settFundingRate": "0.0001699799259033", "settState": "settled", "ts": "1700724675402"}]}
    r = OkxDecoder().decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.MARK]
    assert math.isnan(r["price"][0]) and r["size"][0] == 0.0001875391284828
    assert r["id"][0] == 1700726400000 * MS and r["ts_event"][0] == 1700724675402 * MS


def test_liquidation_orders_documented_example():
    # okx.com/docs-v5 "Liquidation orders channel" response example
    p = {"id": "1512", "arg": {"channel": "liquidation-orders", "instType": "SWAP"},
         "data": [{"details": [{"bkLoss": "0", "bkPx": "0.007831", "ccy": "", "posSide": "short",
                                "side": "buy", "sz": "13", "ts": "1692266434010"}],
                   "instFamily": "IOST-USDT", "instId": "IOST-USDT-SWAP", "instType": "SWAP", "uly": "IOST-USDT"}]}
    dec = OkxDecoder()
    r = dec.decode(frame(p), TS_RECV)
    assert list(r["kind"]) == [Kind.LIQUIDATION]
    assert r["side"][0] == Side.BUY and r["price"][0] == 0.007831 and r["size"][0] == 13.0
    assert r["ts_event"][0] == 1692266434010 * MS
    assert dec.symbol(int(r["instrument"][0])) == "IOST-USDT-SWAP"


@pytest.mark.parametrize("raw", [
    b"pong",
    b'{"id": "1512", "event": "subscribe", "arg": {"channel": "books", "instId": "BTC-USDT"}, "connId": "a4d3ae55"}',
    b'{"event": "unsubscribe", "arg": {"channel": "tickers", "instId": "LTC-USD-200327"}, "connId": "a4d3ae55"}',
    b'{"id": "1512", "event": "error", "code": "60012", "msg": "Invalid request: {\\"op\\": \\"subscribe\\", \\"argss\\":[{ \\"channel\\" : \\"tickers\\", \\"instId\\" : \\"LTC-USD-200327\\"}]}", "connId": "a4d3ae55"}',
    b'{"event": "channel-conn-count", "channel": "orders", "connCount": "2", "connId": "abcd1234"}',
])
def test_control_frames_are_empty(raw):
    dec = OkxDecoder()
    assert len(dec.decode(raw)) == 0 and dec.notices == [] and dec.book_events == []


def test_service_upgrade_notice_is_shutdown():
    dec = OkxDecoder()
    raw = b'{"event": "notice", "code": "64008", "msg": "The connection will soon be closed for a service upgrade. Please reconnect.", "connId": "a4d3ae55"}'
    assert len(dec.decode(raw)) == 0
    assert dec.notices == ["shutdown"]


@pytest.mark.parametrize("raw", [
    b"ping?",
    b'{"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [{"instId": "BTC-USDT", "tradeId": "x", "px": "1", "sz": "1", "side": "buy", "ts": "1"}]}',
    b'{"arg": {"channel": "trades", "instId": "BTC-USDT"}, "data": [{"instId": "BTC-USDT", "tradeId": "1", "px": "1", "sz": "1", "side": "up", "ts": "1"}]}',
    b'{"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "merge", "data": []}',
    b'{"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update", "data": [{"asks": [["1"]], "bids": [], "ts": "1", "seqId": 2, "prevSeqId": 1}]}',
    b'{"arg": {"channel": "tickers", "instId": "BTC-USDT"}, "data": [{"instId": "BTC-USDT"}]}',
    b'{"event": "surprise"}',
])
def test_malformed_frames_raise_decode_error(raw):
    dec = OkxDecoder()
    with pytest.raises(DecodeError):
        dec.decode(raw)
    assert dec.out.n == 0 and dec.book_events == []


def test_market_of():
    assert [market_of(s) for s in ("BTC-USDT", "BTC-USDT-SWAP", "BTC-USD-250627", "BTC-USD-250627-60000-C")] == \
        ["spot", "perp", "future", "option"]


def test_venue_declaration():
    assert venue("okx") is VENUE
    assert isinstance(decoder_for("okx"), OkxDecoder)
    assert VENUE.ws_url == "wss://ws.okx.com:8443" and VENUE.rest_url == "https://www.okx.com"
    assert VENUE.book_rule == "okx"
    assert (VENUE.limits.connect_attempts, VENUE.limits.connect_window_s) == (3, 1.0)
    assert VENUE.limits.subscribe_msgs_per_s == pytest.approx(480 / 3600)
    assert VENUE.limits.streams_per_connection < 30
    assert (VENUE.ping.mode, VENUE.ping.payload, VENUE.ping.pong) == ("text", b"ping", b"pong")
    assert VENUE.ping.interval_s < 30


def test_subscribe_shape():
    ((path, msgs),) = VENUE.subscribe(["BTC-USDT", "BTC-USDT-SWAP"],
                                      ["trades", "quotes", "book", "mark", "liquidations"])
    assert path == "/ws/v5/public"
    args = [a for m in msgs for a in orjson.loads(m)["args"]]
    assert all(orjson.loads(m)["op"] == "subscribe" for m in msgs)
    assert args == [
        {"channel": "trades", "instId": "BTC-USDT"}, {"channel": "tickers", "instId": "BTC-USDT"},
        {"channel": "books", "instId": "BTC-USDT"},
        {"channel": "trades", "instId": "BTC-USDT-SWAP"}, {"channel": "tickers", "instId": "BTC-USDT-SWAP"},
        {"channel": "books", "instId": "BTC-USDT-SWAP"}, {"channel": "mark-price", "instId": "BTC-USDT-SWAP"},
        {"channel": "funding-rate", "instId": "BTC-USDT-SWAP"},
        {"channel": "liquidation-orders", "instType": "SWAP"}]
    ((_, msgs),) = VENUE.subscribe([f"C{i}-USDT" for i in range(40)], ["trades"])
    assert [len(orjson.loads(m)["args"]) for m in msgs] == [29, 11]
    assert VENUE.subscribe(["BTC-USDT"], ["liquidations"]) == []


def test_rest_snapshot_documented_example():
    assert VENUE.snapshot_request("BTC-USDT") == ("/api/v5/market/books", {"instId": "BTC-USDT", "sz": 400})
    body = b'{"code": "0", "msg": "", "data": [{"asks": [["41006.8", "0.60038921", "0", "1"]], ' \
           b'"bids": [["41006.3", "0.30178218", "0", "2"]], "ts": "1629966436396"}]}'
    assert VENUE.parse_snapshot(body) == (-1, [(41006.3, 0.30178218)], [(41006.8, 0.60038921)])
    with pytest.raises(ValueError, match="51001"):
        VENUE.parse_snapshot(b'{"code": "51001", "msg": "Instrument ID does not exist", "data": []}')


def test_rest_instruments_documented_example():
    body = orjson.dumps({"code": "0", "msg": "", "data": [
        {"instType": "SPOT", "instId": "BTC-USDT", "uly": "", "instFamily": "", "baseCcy": "BTC",
         "quoteCcy": "USDT", "settleCcy": "", "ctVal": "", "tickSz": "0.1", "lotSz": "0.00000001",
         "minSz": "0.00001", "state": "live"},
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "uly": "BTC-USDT", "instFamily": "BTC-USDT",
         "baseCcy": "", "quoteCcy": "", "settleCcy": "USDT", "ctVal": "0.01", "ctValCcy": "BTC",
         "tickSz": "0.1", "lotSz": "0.01", "state": "live"},
        {"instType": "SPOT", "instId": "OLD-USDT", "baseCcy": "OLD", "quoteCcy": "USDT",
         "tickSz": "0.1", "lotSz": "1", "state": "suspend"}]})
    assert VENUE.parse_instruments(body) == [
        {"symbol": "BTC-USDT", "base": "BTC", "quote": "USDT", "market": "spot", "tick_size": 0.1, "lot_size": 0.00000001},
        {"symbol": "BTC-USDT-SWAP", "base": "BTC", "quote": "USDT", "market": "perp", "tick_size": 0.1, "lot_size": 0.01}]
    assert [p[1]["instType"] for p in VENUE.extra["instruments_requests"]] == ["SPOT", "SWAP", "FUTURES"]


def test_rest_trades_documented_example():
    assert VENUE.trades_request("BTC-USDT", 130639470) == (
        "/api/v5/market/history-trades", {"instId": "BTC-USDT", "type": "1", "before": "130639470", "limit": "100"})
    body = orjson.dumps({"code": "0", "msg": "", "data": [
        {"instId": "BTC-USDT", "side": "sell", "sz": "0.00001", "px": "29963.2", "tradeId": "242720721", "ts": "1654162641568"},
        {"instId": "BTC-USDT", "side": "buy", "sz": "0.1", "px": "29963.1", "tradeId": "242720720", "ts": "1654162640000"}]})
    assert VENUE.parse_trades(body) == [
        (242720720, 1654162640000 * MS, 29963.1, 0.1, Side.BUY),
        (242720721, 1654162641568 * MS, 29963.2, 0.00001, Side.SELL)]


def _all_samples():
    return [(m["channel"], m["payload"]) for m in wire_samples.document("okx_v5.json")["messages"]]


@pytest.mark.parametrize("channel,payload", _all_samples())
def test_every_documented_message_decodes(channel, payload):
    r = OkxDecoder().decode(frame(payload), TS_RECV)
    if channel.startswith("candle"):
        assert len(r) == 0
    else:
        assert len(r) >= 1 and int(r["flags"][-1]) & Flag.LAST
