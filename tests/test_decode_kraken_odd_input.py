"""The native Kraken decoder reads odd input as the former Python decoder (orjson + float(),
int(), dict lookups, feeds.isotime.iso_ns) did, and its checksum writes every field as the
Python rule f"{v:.{d}f}" does: pinned here, since that Python code is gone. Every expected value
below is what the Python decoder gave for the same frame (compared frame by frame before it
was deleted), except the deliberate differences at the end."""
from __future__ import annotations

import math

import pytest

from feeds import DecodeError, kraken
from feeds.checksum import kraken_checksum
from feeds.kraken import KrakenDecoder
from feeds.native import kraken as native
from feeds.native.book import Book
from shm.record import Flag, Side

BOOK = '{"channel":"book","type":"%s","data":[{"symbol":"%s","bids":%s,"asks":%s,"checksum":%s%s}]}'
STAMP = 1696613755000000000          # 2023-10-06T17:35:55Z


@pytest.fixture(autouse=True)
def precisions():
    """The precision tables are module-wide (keyed by instrument id, which another test's
    decoder may have used too): each test starts from empty ones and leaves them as found."""
    saved = (dict(native.PRECISION), dict(native.INFERRED), native.INST_PRECISION.items())
    native.PRECISION.clear()
    native.INFERRED.clear()
    native.INST_PRECISION.clear()
    yield
    native.PRECISION.clear()
    native.PRECISION.update(saved[0])
    native.INFERRED.clear()
    native.INFERRED.update(saved[1])
    native.INST_PRECISION.clear()
    for k, v in saved[2]:
        native.INST_PRECISION[k] = v


def book(dec, type_, symbol, bids, asks, checksum="1", rest="", ts_recv=5):
    r = dec.decode(BOOK % (type_, symbol, bids, asks, checksum, rest), ts_recv)
    return ([(int(x["ts_event"]), int(x["side"]), float(x["price"]), float(x["size"]), int(x["flags"]))
             for x in r], [tuple(e) for e in dec.book_events])


def test_numbers_as_float_reads_them():
    dec = KrakenDecoder()
    levels, events = book(dec, "update", "N/1", '[{"price":"1e-5","qty":"0.10000000000000001"},'
                          '{"price":" 1","qty":"١٢"}]', '[{"price":9007199254740993,"qty":true}]')
    assert levels == [(5, Side.BID, 1e-05, 0.1, 0), (5, Side.BID, 1.0, 12.0, 0),
                      (5, Side.ASK, 9007199254740992.0, 1.0, Flag.LAST)]   # an int: nearest double
    assert events == [(1, 0, 3, False, -1, -1, -1, 1)]
    for bad in ('[{"price":null,"qty":1}]', '[{"price":[],"qty":1}]', '[{"price":"x","qty":1}]',
                '[{"qty":1}]', '[[1,2]]', '"ab"', '[5]', '5', 'null'):
        with pytest.raises(DecodeError):
            book(dec, "update", "N/1", bad, "[]")


def test_empty_lists_and_duplicate_keys():
    dec = KrakenDecoder()
    # "" and {} iterate to nothing; the last of repeated keys wins, as in a dict
    assert book(dec, "update", "N/1", '""', "{}", '"12"') == ([], [(1, 0, 0, False, -1, -1, -1, 12)])
    assert book(dec, "update", "N/1", '[{"price":1,"qty":2,"price":3}]', "[]", "1", ',"checksum":4') == \
        ([(5, Side.BID, 3.0, 2.0, Flag.LAST)], [(1, 0, 1, False, -1, -1, -1, 4)])
    for ch in ("trade", "ticker", "status"):
        assert len(dec.decode(b'{"channel":"%s","data":""}' % ch.encode())) == 0
        assert len(dec.decode(b'{"channel":"%s","data":{}}' % ch.encode())) == 0
    with pytest.raises(DecodeError):
        dec.decode(b'{"channel":"book","type":"update","data":"x"}')


def test_timestamps():
    dec = KrakenDecoder()
    one = '[{"price":1,"qty":1}]'
    # book and ticker: no time (or "", 0, null) -> ts_recv; an offset is honoured
    assert book(dec, "update", "N/1", one, "[]", rest=',"timestamp":""')[0][0][0] == 5
    assert book(dec, "update", "N/1", one, "[]", rest=',"timestamp":0')[0][0][0] == 5
    offset = ',"timestamp":"2023-10-06T17:35:55.44+02:00"'
    assert book(dec, "update", "N/1", one, "[]", rest=offset)[0][0][0] == STAMP + 440_000_000 - 7200 * 10**9
    (q,) = dec.decode(b'{"channel":"ticker","data":[{"symbol":"T/1","bid":"1","bid_qty":2,"ask":3.5,'
                      b'"ask_qty":true,"timestamp":null}]}', 5)
    assert (q["ts_event"], q["price"], q["size"], q["ask_price"], q["ask_size"]) == (5, 1.0, 2.0, 3.5, 1.0)
    # a time beyond int64 fails only where a record is packed: a message without levels passes
    far = ',"timestamp":"9999-12-31T23:59:59Z"'
    assert book(dec, "update", "N/1", "[]", "[]", rest=far) == ([], [(1, 0, 0, False, -1, -1, -1, 1)])
    with pytest.raises(DecodeError):
        book(dec, "update", "N/1", one, "[]", rest=far)
    # a time that is no string, and a trade's "" (it always has a time), are malformed
    with pytest.raises(DecodeError):
        book(dec, "update", "N/1", "[]", "[]", rest=',"timestamp":5')
    with pytest.raises(DecodeError):
        dec.decode(b'{"channel":"trade","data":[{"symbol":"T/1","side":"s","price":1,"qty":2,'
                   b'"trade_id":"7","timestamp":""}]}')


def test_symbols_that_are_not_strings_register_by_value():
    dec = KrakenDecoder()
    ids = []
    for sym in ("7", "7.0", "true", '"7"'):
        (r,) = dec.decode(b'{"channel":"trade","data":[{"symbol":%s,"side":"b","price":1,"qty":2,'
                          b'"trade_id":1,"timestamp":"2023-10-06T17:35:55Z"}]}' % sym.encode())
        ids.append(int(r["instrument"]))
    assert ids == [1, 1, 2, 3]                # 7 and 7.0 are one dict key; "7" is another
    with pytest.raises(DecodeError):
        dec.decode(b'{"channel":"trade","data":[{"symbol":["a"],"side":"b","price":1,"qty":2,'
                   b'"trade_id":1,"timestamp":"2023-10-06T17:35:55Z"}]}')


def test_control_frames_and_status():
    dec = KrakenDecoder()
    assert len(dec.decode(b'{"channel":null,"method":null}')) == 0        # a method key: an answer
    for bad in (b'{"channel":null}', b'{"method":"pong","channel":"surprise"}', b'[]', b'"x"'):
        with pytest.raises(DecodeError):
            dec.decode(bad)
    # each maintenance element is a notice, as it comes: one before a bad element stays
    with pytest.raises(DecodeError):
        dec.decode(b'{"channel":"status","data":[{"system":"maintenance"},5]}')
    assert dec.notices == ["shutdown"]


def test_checksum_values_as_int_reads_them():
    dec = KrakenDecoder()
    for text, value in (('"12"', 12), ("12.7", 12), ("true", 1), ("-3", -3)):
        assert book(dec, "update", "N/1", "[]", "[]", text)[1][0][7] == value
    for bad in ('"1e5"', "null", "[]", '"x"'):
        with pytest.raises(DecodeError):
            book(dec, "update", "N/1", "[]", "[]", bad)


def test_precision_learnt_as_the_python_decoder_learnt_it():
    dec = KrakenDecoder()
    # the most decimals of repr(float(x)) over a snapshot: 0.5661 -> 4, 1.5e-05 -> 6, 1e16 -> 0
    book(dec, "snapshot", "P/1", '[{"price":0.5660,"qty":740.0},{"price":"0.5661","qty":1.5e-05}]',
         '[{"price":1e16,"qty":3}]')
    p1 = dec.book_events[0].instrument
    assert native.INST_PRECISION[p1] == native.INFERRED["P/1"] == (4, 6)
    book(dec, "snapshot", "P/1", '[{"price":0.5,"qty":1}]', "[]")          # never decreases
    book(dec, "update", "P/1", '[{"price":0.123456789,"qty":1}]', "[]")    # updates do not teach
    assert native.INST_PRECISION[p1] == (4, 6)
    book(dec, "update", "P/2", '[{"price":0.12,"qty":1.5}]', "[]")         # ... but a first message does
    assert native.INST_PRECISION[dec.book_events[0].instrument] == (2, 1)
    # an unlisted snapshot with inf or nan has no precision: malformed; a listed one does not care
    with pytest.raises(DecodeError):
        book(dec, "snapshot", "P/3", '[{"price":"inf","qty":1}]', "[]")
    native.PRECISION["P/3"] = (1, 2)
    book(dec, "snapshot", "P/3", '[{"price":"inf","qty":1}]', "[]")
    assert native.INST_PRECISION[dec.book_events[0].instrument] == (1, 2)
    assert "P/3" not in native.INFERRED
    # learnt before the checksum is read: a message without one fails, its precision stays
    with pytest.raises(DecodeError):
        dec.decode(b'{"channel":"book","type":"snapshot","data":[{"symbol":"P/4","bids":'
                   b'[{"price":1.25,"qty":1}],"asks":[]}]}')
    assert ("P/4", "spot") in dec.instruments
    assert native.INFERRED["P/4"] == native.INST_PRECISION[dec.instruments.id("P/4", "spot")] == (2, 0)


@pytest.mark.parametrize("value", [
    0.0, -0.0, 0.5, 1.5, 2.5, -2.5, 0.125, 0.375, 0.005, 0.015, -0.001, -0.005, 9.995, 99.995,
    1e-5, 1.5e-7, 5e-324, 0.1 + 0.2, 64706.03, 0.5666, 4831.75496356, 1e15, 1e16, 1e18,
    9007199254740993.0, 2.0 ** 63 - 1024, 123456789.123456789, math.nextafter(0.125, 1),
    math.nextafter(0.125, 0), math.nextafter(2.5, 3), math.nextafter(2.5, 2)])
def test_checksum_field_is_python_formatting(value):
    """The C path writes f"{v:.{d}f}" without "." and leading zeros, rounding half to even on
    the exact double (0.125 -> "12" at 2 decimals, 0.375 -> "38"), "-" and all digits kept
    for a negative value."""
    for d in range(20):
        assert native.fast_field(value, d) == f"{value:.{d}f}".replace(".", "").lstrip("0"), d


@pytest.mark.parametrize("value,d", [(math.inf, 2), (-math.inf, 2), (math.nan, 2), (2.0 ** 63, 0),
                                     (1e19, 0), (1e300, 2), (1.5, 20), (1.5, -1)])
def test_checksum_field_leaves_the_rest_to_python(value, d):
    assert native.fast_field(value, d) is None


def test_checksum_of_odd_books_is_the_python_rule():
    """Negative, zero, tiny, huge and NaN values and precisions beyond the C path's: of_book
    (the keeper's C checksum) and the hook equal feeds.checksum.kraken_checksum."""
    b = Book(77)
    b.apply([(1, 0.0, 1.5), (1, -0.5, 2.0), (1, 1e-9, math.nan), (1, 1.25, -3.0),
             (2, 3e20, 1.0), (2, 2.0, 5e-324), (2, 1.0 + 2 ** -40, 0.001)])
    bids, asks = b.top(25)
    for pd, qd in ((2, 5), (0, 0), (19, 19), (20, 3), (8, 25)):
        kraken._INST_PRECISION[77] = (pd, qd)
        want = kraken_checksum(asks, bids, pd, qd)
        assert kraken.book_checksum.native(b, 25) == kraken.book_checksum(bids, asks, 77) == want
        assert kraken.book_checksum.native(b, 25) == want                  # cached texts: the same
    del kraken._INST_PRECISION[77]                                          # unknown: 8 / 8
    assert kraken.book_checksum.native(b, 25) == kraken_checksum(asks, bids, 8, 8)
    kraken._INST_PRECISION[77] = (-1, 2)                                    # Python's own error
    with pytest.raises(ValueError):
        kraken.book_checksum.native(b, 25)


# -- decided differently, on purpose ----------------------------------------------------------------

def test_checksum_beyond_int64_is_malformed():
    """Python put int() of it in the BookEvent whatever its size (the keeper then saw a mismatch
    and resynced); a BookEvent holds an int64, so the frame is malformed (its book resyncs)."""
    dec = KrakenDecoder()
    with pytest.raises(DecodeError):
        book(dec, "update", "N/1", "[]", "[]", str(2 ** 63))
    assert dec.failed_books == [1]


def test_a_precision_is_two_c_ints():
    """Python stored any pair and failed in the keeper's checksum; a precision is read in C."""
    for bad in ((1.5, 2), (2 ** 40, 2), (1,), "ab"):
        with pytest.raises((TypeError, ValueError, OverflowError)):
            kraken._INST_PRECISION[78] = bad
