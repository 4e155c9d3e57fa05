"""The native Coinbase decoder reads odd input as the former Python decoder (orjson + float(),
dict lookups, feeds.isotime.iso_ns) did: pinned here, since that Python code is gone. Every
expected value below is what the Python decoder gave for the same frames (compared frame by
frame before it was deleted), except the deliberate differences at the end."""
from __future__ import annotations

import orjson
import pytest

from feeds import DecodeError
from feeds.isotime import iso_ns
from feeds.native.coinbase import CoinbaseDecoder, parse_iso
from shm.record import Flag, Side

T0 = "2023-02-09T20:32:50Z"


def frame(payload) -> bytes:
    return orjson.dumps(payload)


def trade(**fields) -> bytes:
    t = {"trade_id": "7", "product_id": "BTC-USD", "price": "1", "size": "2", "side": "BUY",
         "time": T0} | fields
    return frame({"channel": "market_trades", "timestamp": T0, "events": [{"trades": [t]}]})


def l2(seq, *events, stamp=T0) -> bytes:
    m = {"channel": "l2_data", "timestamp": stamp, "events": list(events)}
    if seq is not None:
        m["sequence_num"] = seq
    return frame(m)


def event(product="BTC-USD", typ="update", updates=...):
    if updates is ...:
        updates = [{"side": "bid", "price_level": "1", "new_quantity": "2"}]
    return {"type": typ, "product_id": product, "updates": updates}


def test_numbers_as_float_reads_them():
    dec = CoinbaseDecoder()
    for text, value in (("1e-5", 1e-05), ("0.10000000000000001", 0.1), (" 1", 1.0), ("1_0", 10.0),
                        ("١٢", 12.0), (3, 3.0), (2.5, 2.5), (True, 1.0)):
        (r,) = dec.decode(trade(price=text))
        assert r["price"] == value
    for bad in ("", "x", None, [], {}):
        with pytest.raises(DecodeError):
            dec.decode(trade(size=bad))


def test_trade_ids_as_id_from_str_reads_them():
    dec = CoinbaseDecoder()
    assert dec.decode(trade(trade_id="000000000"))["id"][0] == 0
    assert dec.decode(trade(trade_id=42))["id"][0] == 42                # an int is itself
    assert dec.decode(trade(trade_id=True))["id"][0] == 1
    assert dec.decode(trade(trade_id="١٢"))["id"][0] == 12               # str.isdigit() digits
    opaque = dec.decode(trade(trade_id="34b080bf-fcfd"))["id"][0]
    assert opaque == dec.decode(trade(trade_id="34b080bf-fcfd"))["id"][0] >= 0   # a stable hash
    big = dec.decode(trade(trade_id="9" * 25))["id"][0]                  # beyond int64: hashed
    assert 0 <= big < 2 ** 63
    for bad in (1.5, None, [], 2 ** 64 - 1, "²"):
        with pytest.raises(DecodeError):
            dec.decode(trade(trade_id=bad))


def test_duplicate_keys_the_last_wins():
    dec = CoinbaseDecoder()
    raw = trade().replace(b'"price":"1"', b'"price":"1","price":"3"')
    raw = raw.replace(b'"channel":"market_trades"', b'"channel":"ticker","channel":"market_trades"')
    (r,) = dec.decode(raw)
    assert r["price"] == 3.0


def test_timestamps_of_other_forms_go_through_iso_ns():
    dec = CoinbaseDecoder()
    for text in ("2023-02-09T20:19:35.5+02:00", "2023-02-09 20:19:35.1z", "2023-02-09T20:19:35",
                 "2023-02-09T20:19:35.1234567891Z", "2023-02-09T20:19:35-0500",
                 "2023-02-31T00:00:00Z", "2023-02-09T23:59:60Z"):
        (r,) = dec.decode(trade(time=text))
        assert r["ts_event"] == iso_ns(text)
    for bad in ("", "yesterday", "2023-02-09T20:19:35.Z", "2023-02-09T24:00:00Z", 5, None):
        with pytest.raises(DecodeError):
            dec.decode(trade(time=bad))


@pytest.mark.parametrize("text", [
    "2023-02-09T20:19:35.39625135Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999Z",
    "1677-09-21T00:12:43.145224192Z", "2262-04-11T23:47:16.854775807Z", "2024-02-29T23:59:59.999999999Z",
    "2023-02-09t20:19:35.1z", "2023-10-06T19:35:55.5+02:00", "２０２３-02-09T20:19:35Z"])
def test_native_stamps_equal_iso_ns(text):
    assert parse_iso(text.encode()) == iso_ns(text)


def test_times_beyond_int64_fail_only_where_a_record_packs_them():
    dec = CoinbaseDecoder()
    assert parse_iso(b"2262-04-11T23:47:16.854775808Z") is None
    assert parse_iso(b"0000-03-01T00:00:00Z") is None
    late = "9999-12-31T23:59:59Z"
    assert len(dec.decode(l2(0, event(updates=[]), stamp=late))) == 0     # no level: no error
    assert len(dec.book_events) == 1
    with pytest.raises(DecodeError):
        dec.decode(l2(1, event(), stamp=late))
    ticker_batch = {"channel": "ticker_batch", "timestamp": late,
                    "events": [{"tickers": [{"product_id": "BTC-USD", "price": "1"}]}]}
    assert len(dec.decode(frame(ticker_batch))) == 0
    with pytest.raises(DecodeError):
        dec.decode(trade(time=late))


def test_a_failed_frame_keeps_the_sequence_state_it_reached():
    dec = CoinbaseDecoder()
    dec.decode(l2(0, event(typ="snapshot")))
    bad = event("ETH-USD", updates=[{"side": "sideways", "price_level": "1", "new_quantity": "2"}])
    with pytest.raises(DecodeError):
        dec.decode(l2(5, event(), bad))              # a gap, BTC's event, then ETH's fails
    assert dec.failed_books == [1, 2]                # both books it began resync
    assert dec.notices == ["sequence_gap"] and dec.sequence_gaps == 1 and dec.last_sequence == 5
    dec.decode(l2(6, event()))
    assert dec.book_events[0].prev == 5              # BTC's event of the failed frame counted


def test_registration_points():
    dec = CoinbaseDecoder()
    with pytest.raises(DecodeError):
        dec.decode(trade(product_id="A-USD", side="SIDEWAYS"))      # side first: nothing registered
    with pytest.raises(DecodeError):
        dec.decode(trade(product_id="B-USD", price="x"))            # registered, then refused
    (r,) = dec.decode(trade(product_id="C-USD"))
    assert ("A-USD", "spot") not in dec.instruments and dec.symbol(int(r["instrument"])) == "C-USD"
    assert int(r["instrument"]) == 2


def test_message_lists_as_python_iterated_them():
    dec = CoinbaseDecoder()
    assert len(dec.decode(l2(0, event(updates="")))) == 0           # "" and {} are empty lists
    assert len(dec.decode(l2(1, event(updates={})))) == 0
    assert len(dec.book_events) == 1
    for bad in ("x", {"a": 1}, 5, None, [["bid", "1", "2"]]):
        with pytest.raises(DecodeError):
            dec.decode(l2(2, event(updates=bad)))
    empty = {"channel": "market_trades", "events": {}}
    assert len(dec.decode(frame(empty))) == 0


def test_exchange_feed_level_lists_as_python_iterated_them():
    dec = CoinbaseDecoder()
    # a string level is its characters, an object of levels its keys; no time: ts_recv
    r = dec.decode(frame({"type": "snapshot", "product_id": "BTC-USD", "bids": [["1", "2"], "34"],
                          "asks": {"56": 0}}), ts_recv=9)
    assert list(zip(r["side"], r["price"], r["size"])) == [(Side.BID, 1.0, 2.0), (Side.BID, 3.0, 4.0),
                                                           (Side.ASK, 5.0, 6.0)]
    assert (r["ts_event"] == 9).all() and (r["flags"] & Flag.SNAPSHOT).all()
    r = dec.decode(frame({"type": "l2update", "product_id": "BTC-USD", "time": "",
                          "changes": ["b12", ["buy", 3, "4", "x"]]}), ts_recv=9)
    assert list(zip(r["side"], r["price"], r["size"])) == [(Side.ASK, 1.0, 2.0), (Side.BID, 3.0, 4.0)]
    (ev,) = dec.book_events
    assert (ev.first, ev.last, ev.prev, ev.snapshot) == (-1, -1, -1, False)
    for bad in ({"bids": "12", "asks": []}, {"bids": [], "asks": [{"0": 1}]}, {"bids": []}):
        with pytest.raises(DecodeError):
            dec.decode(frame({"type": "snapshot", "product_id": "BTC-USD"} | bad))


# -- decided differently, on purpose ------------------------------------------------------------------

@pytest.mark.parametrize("seq", ["7", 7.0, 7.5, None, 2 ** 63])
def test_sequence_num_must_be_an_integer(seq):
    """Python kept a "7" as the connection's last sequence (and failed every later frame) or
    packed a 7.0 into a book record; here that frame alone is malformed."""
    dec = CoinbaseDecoder()
    dec.decode(l2(3, event(typ="snapshot")))
    raw = trade().replace(b'"timestamp"', b'"sequence_num":' + orjson.dumps(seq) + b',"timestamp"')
    if seq is None:                                   # null is no sequence_num at all
        assert len(dec.decode(raw)) == 1
    else:
        with pytest.raises(DecodeError):
            dec.decode(raw)
    assert dec.last_sequence == 3 and dec.sequence_gaps == 0
    dec.decode(l2(4, event()))
    assert dec.book_events[0].prev == 3
    assert dec.decode(l2(True, event()))["id"][0] == 1              # a bool is an int
    assert dec.book_events[0].first == 1 and dec.sequence_gaps == 1


@pytest.mark.parametrize("product", [5, None, True, ["BTC-USD"]])
def test_product_id_must_be_a_string(product):
    """Python registered a number or null as a symbol (the shm registry refuses it anyway)."""
    dec = CoinbaseDecoder()
    with pytest.raises(DecodeError):
        dec.decode(trade(product_id=product))
