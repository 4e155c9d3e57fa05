"""The native Binance decoders read odd input as the former Python decoders (orjson + float(),
int(), dict lookups) did: pinned here, since that Python code is gone. Every expected value
below is what the Python decoder gave for the same frame (compared frame by frame before it
was deleted), except the one deliberate difference at the end."""
from __future__ import annotations

import math

import pytest

from feeds import DecodeError
from feeds.native.binance import BinanceDecoder, BinanceUsdmDecoder
from shm.record import Flag, Side

MS = 1_000_000


def trade(dec, frame):
    (r,) = dec.decode(frame)
    return int(r["ts_event"]) // MS, int(r["side"]), float(r["price"]), float(r["size"]), int(r["id"])


def test_numbers_as_float_and_int_read_them():
    dec = BinanceDecoder()
    # JSON numbers where strings are documented; int(1.9) truncates; a bool id is 0/1
    assert trade(dec, b'{"e":"trade","s":"X","T":1.9,"m":"false","p":1,"q":2.5,"t":true}') == \
        (1, Side.SELL, 1.0, 2.5, 1)                      # "false" is a non-empty string: true
    # Python's text rules: underscores and blanks, exponents, beyond-ASCII digits and spaces
    assert trade(dec, b'{"e":"trade","s":"X","T":" 1_0 ","m":[],"p":"1e-5","q":"0.10000000000000001","t":7}') == \
        (10, Side.BUY, 1e-05, 0.1, 7)
    assert trade(dec, '{"e":"trade","s":"X","T":"１２","m":0.0,"p":"１.5","q":"\u00a02","t":-3}'.encode()) == \
        (12, Side.BUY, 1.5, 2.0, -3)
    for bad in (b'"1.5"', b'null', b'"x"', b'[]', b'1e300'):          # int()/struct refuse these ids
        with pytest.raises(DecodeError):
            dec.decode(b'{"e":"trade","s":"X","T":1,"m":1,"p":"1","q":"2","t":' + bad + b'}')


def test_duplicate_keys_the_last_wins():
    dec = BinanceDecoder()
    r = dec.decode(b'{"e":"trade","s":"X","s":"Y","T":1,"m":true,"p":"1","p":"3","q":"2","t":5}')
    assert dec.symbol(int(r["instrument"][0])) == "Y" and r["price"][0] == 3.0


def test_level_lists_as_python_iterated_them():
    dec = BinanceDecoder()
    # a string level is its characters, an object of levels is its keys
    r = dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["1","2"],"34"],"a":{"56":0}}')
    assert list(zip(r["side"], r["price"], r["size"])) == [(Side.BID, 1.0, 2.0), (Side.BID, 3.0, 4.0),
                                                           (Side.ASK, 5.0, 6.0)]
    assert len(dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":"","a":{}}')) == 0
    for bad in (b'"1"', b'null', b'5', b'[["1"]]', b'[{"0":1}]', b'[[["1"],"2"]]'):
        with pytest.raises(DecodeError):
            dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":' + bad + b',"a":[]}')


def test_values_checked_only_when_packed():
    dec = BinanceDecoder()
    # E beyond int64 in ns: no levels, nothing packs it; with a level it is malformed
    assert len(dec.decode(b'{"e":"depthUpdate","E":9223372036855,"s":"X","U":1,"u":2,"b":[],"a":[]}')) == 0
    with pytest.raises(DecodeError):
        dec.decode(b'{"e":"depthUpdate","E":9223372036855,"s":"X","U":1,"u":2,"b":[["1","2"]],"a":[]}')
    # a non-integer u is refused only when it is packed into a level (see the last test)
    with pytest.raises(DecodeError):
        dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2.0,"b":[["1","2"]],"a":[]}')


def test_symbols_that_are_not_strings():
    spot = BinanceDecoder()
    r = spot.decode(b'{"e":"trade","s":5,"T":1,"m":true,"p":"1","q":"2","t":5}')
    assert spot.symbol(int(r["instrument"][0])) == 5                 # registered by value, as before
    with pytest.raises(DecodeError):                                  # USD-M's market test refused it
        BinanceUsdmDecoder().decode(b'{"e":"aggTrade","s":5,"T":1,"m":true,"p":"1","q":"2","a":5}')


def test_mark_funding_time_beyond_int64_registers_the_symbol_first():
    dec = BinanceUsdmDecoder()
    with pytest.raises(DecodeError):
        dec.decode(b'{"e":"markPriceUpdate","E":1,"s":"NEWSYM","p":"1","i":null,"r":"","T":"99999999999999999999"}')
    assert ("NEWSYM", "perp") in dec.instruments
    with pytest.raises(DecodeError):                                  # int("x") fails before it
        dec.decode(b'{"e":"markPriceUpdate","E":1,"s":"OTHER","p":"1","i":null,"r":"","T":"x"}')
    assert ("OTHER", "perp") not in dec.instruments
    (r,) = dec.decode(b'{"e":"markPriceUpdate","E":1,"s":"BTCUSDT_250627","p":"1","i":null,"r":"","T":0}')
    assert math.isnan(r["size"]) and math.isnan(r["ask_price"]) and r["id"] == 0


def test_liquidation_falls_back_when_filled_values_are_zero():
    (r,) = BinanceUsdmDecoder().decode(
        b'{"e":"forceOrder","E":1,"o":{"s":"X","S":"b","q":"2","p":"3","ap":"0","z":"-0","T":1}}')
    assert (int(r["side"]), float(r["price"]), float(r["size"])) == (Side.BUY, 3.0, 2.0)


@pytest.mark.parametrize("stream,snapshot", [
    ("x@depth5@100ms", True), ("x@depth@100ms", False), ("x@abcde9", True),   # char 6 after "@"
    ("x@depth\u00b2", True),            # str.isdigit() takes a superscript two
    ("\u00e9\u00e9@depth5", True),      # characters, not bytes, before the "@"
    ("x@", False),
])
def test_usdm_partial_depth_is_named_by_its_stream(stream, snapshot):
    dec = BinanceUsdmDecoder()
    frame = ('{"stream":"%s","data":{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"pu":0,"b":[],"a":[]}}'
             % stream).encode()
    dec.decode(frame)
    assert dec.book_events[0].snapshot is snapshot


def test_spot_partial_depth_symbol_is_the_upper_cased_stream_prefix():
    dec = BinanceDecoder()
    r = dec.decode('{"stream":"\u00dftc@depth5","data":{"lastUpdateId":3,"bids":[["1","2"]],"asks":[]}}'.encode())
    assert dec.symbol(int(r["instrument"][0])) == "SSTC"             # str.upper(): "ß" -> "SS"
    assert int(r["flags"][0]) == Flag.SNAPSHOT | Flag.LAST


def test_sequence_fields_must_be_integers():
    """The deliberate difference: Python put any JSON value into the BookEvent (the keeper then
    refused it); here a sequence field is an integer, or the frame is malformed."""
    dec = BinanceDecoder()
    dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":157.0,"u":true,"b":[],"a":[]}')
    assert (dec.book_events[0].first, dec.book_events[0].last) == (157, 1)
    for bad in (b'"157"', b'157.5', b'null', b'[]'):
        with pytest.raises(DecodeError):
            dec.decode(b'{"e":"depthUpdate","E":1,"s":"X","U":' + bad + b',"u":160,"b":[],"a":[]}')
