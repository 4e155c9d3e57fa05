"""The native Bitget decoder reads odd input as the former Python decoder (orjson + float(),
int(), dict lookups) did, and keeps the level texts as it did: pinned here, since that Python
code is gone. Every expected value below is what the Python decoder (and its checksum hook)
gave for the same frames (compared frame by frame before it was deleted), except the
deliberate differences at the end."""
from __future__ import annotations

import math

import orjson
import pytest

from feeds import DecodeError
from feeds.bitget import LEVEL_STRINGS, BitgetDecoder, book_checksum
from feeds.checksum import bitget_checksum
from feeds.wire import id_from_str
from shm.record import Flag, Side

MS = 1_000_000


def frame(channel: str, data, action: str = "update", inst_type="SPOT", inst_id="BTCUSDT") -> bytes:
    arg = {"channel": channel, "instId": inst_id}
    if inst_type is not None:
        arg["instType"] = inst_type
    return orjson.dumps({"action": action, "arg": arg, "data": data, "ts": 1})


def trade(dec, **fields):
    t = {"ts": "1", "price": "1", "size": "1", "side": "buy", "tradeId": "1"}
    t.update(fields)
    (r,) = dec.decode(frame("trade", [t]))
    return int(r["ts_event"]), int(r["side"]), float(r["price"]), float(r["size"]), int(r["id"])


def books(dec, action, bids, asks, inst_id="ODDUSDT", **fields):
    d = {"asks": asks, "bids": bids, "seq": 1, "ts": "1"}
    d.update(fields)
    return dec.decode(frame("books", [d], action, inst_id=inst_id))


@pytest.fixture
def dec():
    d = BitgetDecoder()
    yield d
    for inst in list(d.instruments._symbols):
        LEVEL_STRINGS.pop(inst, None)


def test_numbers_as_float_and_int_read_them(dec):
    assert trade(dec, ts=5, price=1, size=2.5, side="s", tradeId=7) == (5 * MS, Side.SELL, 1.0, 2.5, 7)
    assert trade(dec, ts=" 1_0 ", price="1e-5", size="0.10000000000000001", side="SELL") == \
        (10 * MS, Side.SELL, 1e-05, 0.1, 1)
    assert trade(dec, ts="١٢", price="１.5", size="\u00a02", side="Buy") == (12 * MS, Side.BUY, 1.5, 2.0, 1)
    for bad in ({"price": ""}, {"price": None}, {"size": []}, {"side": "bid"}, {"ts": "1.5"},
                {"ts": 1.5e300}, {"ts": "9223372036855"}):
        with pytest.raises(DecodeError):
            trade(dec, **bad)


def test_trade_ids_as_the_python_rule_reads_them(dec):
    assert trade(dec, tradeId="007")[4] == 7
    assert trade(dec, tradeId=True)[4] == 1
    assert trade(dec, tradeId=-3)[4] == -3
    assert trade(dec, tradeId="")[4] == id_from_str("")
    assert trade(dec, tradeId="abc")[4] == id_from_str("abc")
    assert trade(dec, tradeId="9223372036854775807")[4] == 9223372036854775807
    assert trade(dec, tradeId="9223372036854775808")[4] == id_from_str("9223372036854775808")
    assert trade(dec, tradeId="١٢")[4] == 12
    for bad in ("²", 1.5, None, [], 9223372036854775808):
        with pytest.raises(DecodeError):
            trade(dec, tradeId=bad)


def test_the_market_is_the_inst_types(dec):
    def market(**arg):
        dec.decode(frame("trade", [{"ts": "1", "price": "1", "size": "1", "side": "buy", "tradeId": "1"}], **arg))
        return dec.instruments.market(int(dec.out.array()[0]["instrument"]))
    assert market(inst_type="spot") == "spot"
    assert [market(inst_type=t, inst_id="A") for t in ("USDT-FUTURES", "", 5, True)] == ["perp"] * 4
    assert market(inst_type=None, inst_id="B") == "spot"            # none: the decoder's market,
    dec.market = "perp"                                             # read each time
    assert market(inst_type=None, inst_id="C") == "perp"
    assert dec.instruments._symbols[dec.instruments.id("A", "perp")] == ("A", "perp")
    with pytest.raises(DecodeError):
        dec.decode(frame("trade", [], inst_type=["SPOT"]))


def test_odd_inst_ids_and_unknown_channels_register(dec):
    dec.decode(frame("trade", [], inst_id=5))                        # an instId registered by value
    assert (5, "spot") in dec.instruments
    with pytest.raises(DecodeError):
        dec.decode(frame("nope", [], inst_id="NEW"))                 # registered, then refused
    assert ("NEW", "spot") in dec.instruments
    dec.decode(frame("candle1m", [["1"]], inst_id="CANDLE"))         # candles: nothing at all
    assert ("CANDLE", "spot") not in dec.instruments
    for bad in ([1], {"a": 1}):
        with pytest.raises(DecodeError):
            dec.decode(frame("trade", [], inst_id=bad))


@pytest.mark.parametrize("raw", [b"pong", b'{"event":null}', b'{"code":1}', b'{"arg":null,"code":0}',
                                 b'{"arg":{"channel":"trade","instId":"X"}}', b'{"event":"x","arg":5}'])
def test_control_frames_are_nothing(dec, raw):
    assert len(dec.decode(raw)) == 0 and dec.book_events == []


@pytest.mark.parametrize("raw", [b"{}", b"[]", b'"pong"', b"pong ", b'{"arg":5,"data":[]}',
                                 b'{"arg":{"channel":5},"data":[]}', b'{"arg":{"instId":"X"},"data":[]}',
                                 b'{"arg":{"channel":"trade"},"data":[]}'])
def test_malformed_frames(dec, raw):
    with pytest.raises(DecodeError):
        dec.decode(raw)


def test_level_shapes_as_python_indexed_them(dec):
    # a level that is a string is its characters; an object's keys are its levels; extra
    # elements are ignored; numbers are their str() in the texts
    r = books(dec, "snapshot", ["12", [3, 4.5, "x"]], {"67": 1, "89": 2})
    assert [(int(x["side"]), x["price"], x["size"]) for x in r] == \
        [(Side.BID, 1.0, 2.0), (Side.BID, 3.0, 4.5), (Side.ASK, 6.0, 7.0), (Side.ASK, 8.0, 9.0)]
    assert LEVEL_STRINGS[int(r[0]["instrument"])] == ([1.0, 3.0], ["1:2", "3:4.5"], [6.0, 8.0], ["6:7", "8:9"])
    r = books(dec, "snapshot", [[True, "1"]], "")
    assert LEVEL_STRINGS[int(r[0]["instrument"])] == ([1.0], ["True:1"], [], [])
    for bad in ([["1"]], [[]], ["1"], [5], [{"0": 1}], 5, None):
        with pytest.raises(DecodeError):
            books(dec, "snapshot", bad, [])


def test_level_texts_follow_the_levels(dec):
    r = books(dec, "snapshot", [["3368", "1"], ["-0", "2"]], [["3369.10", "0.500"]])
    inst = int(r[0]["instrument"])
    books(dec, "update", [["3368.0", "1.0"], ["0", "0.0"], ["3367", "-0"]], [["3369.1", "0"]])
    assert LEVEL_STRINGS[inst] == ([3368.0], ["3368.0:1.0"], [], [])   # -0 and 0 are one level
    books(dec, "update", [], [["3370", "nan"], ["3371", "1"]])
    assert LEVEL_STRINGS[inst][3] == ["3370:nan", "3371:1"]             # a NaN size is a size


def test_a_failing_message_keeps_what_it_changed(dec):
    r = books(dec, "snapshot", [["1", "1"]], [["2", "2"]])
    inst = int(r[0]["instrument"])
    with pytest.raises(DecodeError):                                   # the snapshot reset and its
        books(dec, "snapshot", [["1.0", "5"]], 5)                      # bids stay: bad asks came later
    assert LEVEL_STRINGS[inst] == ([1.0], ["1.0:5"], [], [])
    with pytest.raises(DecodeError):
        books(dec, "update", [["0.5", "1"]], [], pseq="x")             # pseq is read after the levels
    assert LEVEL_STRINGS[inst][1] == ["0.5:1", "1.0:5"]
    with pytest.raises(DecodeError):
        books(dec, "update", [["0.5", "2"]], [], ts="9223372036855")  # ts fails where it is packed
    assert LEVEL_STRINGS[inst][1] == ["0.5:1", "1.0:5"]


def test_book_sequence_fields_as_int_reads_them(dec):
    books(dec, "update", [], [], seq="5", pseq=4.9, checksum=True)
    (ev,) = dec.book_events
    assert (ev.first, ev.last, ev.prev, ev.checksum) == (5, 5, 4, 1)
    books(dec, "update", [], [], checksum=None)
    assert dec.book_events[0].checksum is None
    books(dec, "snapshot", [], [], checksum="x")                       # snapshots: not read
    assert dec.book_events[0].checksum is None
    books(dec, "update", [], [], ts="9223372036855")                  # a time nothing packs
    assert len(dec.book_events) == 1
    for bad in ({"seq": None}, {"seq": "x"}, {"pseq": None}, {"checksum": ""}, {"checksum": []}):
        with pytest.raises(DecodeError):
            books(dec, "update", [], [], **bad)


def test_books5_and_books1_shapes(dec):
    r = dec.decode(frame("books5", [{"asks": {"34": 0}, "bids": ["12"], "seq": "9", "ts": "2"}]))
    assert [(x["price"], x["size"], x["id"], bool(x["flags"] & Flag.SNAPSHOT)) for x in r] == \
        [(1.0, 2.0, 9, True), (3.0, 4.0, 9, True)]
    assert dec.book_events[0].snapshot and dec.book_events[0].checksum is None
    assert len(dec.decode(frame("books1", [{"asks": [], "bids": [["1", "2"]], "ts": "x"}]))) == 0
    (q,) = dec.decode(frame("books1", [{"asks": ["34"], "bids": [["1", "2", "x"]], "ts": "3"}]))
    assert (q["bid_price"], q["bid_size"], q["ask_price"], q["ask_size"]) == (1.0, 2.0, 3.0, 4.0)
    for bad in ({"asks": [["1"]], "bids": [["1", "2"]], "ts": "1"}, {"asks": 5, "bids": 1, "ts": "1"}):
        with pytest.raises(DecodeError):
            dec.decode(frame("books1", [bad]))


def test_checksum_of_levels_without_a_text(dec):
    r = books(dec, "snapshot", [["100.10", "1.50"]], [["100.20", "2"]])
    inst = int(r[0]["instrument"])
    # the texts' size wins over the book's; a level without a text is repr(price):repr(size)
    assert book_checksum([(100.1, 9.0), (1e-05, 1e16)], [(100.2, 2.0), (math.inf, 0.5)], inst) == \
        bitget_checksum([("100.10", "1.50"), ("1e-05", "1e+16")], [("100.20", "2"), ("inf", "0.5")])
    assert book_checksum([], [], inst) == 0
    assert book_checksum([(1.0, 1.0)], [], 999_999) == bitget_checksum([("1.0", "1.0")], [])


# -- deliberate differences -------------------------------------------------------------------------

def test_deliberate_a_nan_price_keeps_no_text(dec):
    # Python's sorted list took it at the front, where later bisects went wrong
    r = books(dec, "snapshot", [["nan", "1"], ["5", "1"]], [])
    assert math.isnan(r[0]["price"])                                   # the record is as it was
    assert LEVEL_STRINGS[int(r[0]["instrument"])] == ([5.0], ["5:1"], [], [])


@pytest.mark.parametrize("field", ["seq", "pseq", "checksum"])
def test_deliberate_sequence_fields_beyond_int64_are_malformed(dec, field):
    # Python put the big int into the BookEvent (which holds int64s now) when no level packed it
    with pytest.raises(DecodeError):
        books(dec, "update", [], [], **{field: "9223372036854775808"})
