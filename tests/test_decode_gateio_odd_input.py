"""The native Gate.io decoder reads odd input as the former Python decoder (orjson + float(),
int(), dict lookups) did: pinned here, since that Python code is gone. Every expected value
below is what the Python decoder gave for the same frame (compared frame by frame before it
was deleted), except the one deliberate difference at the end."""
from __future__ import annotations

import pytest

from feeds import DecodeError
from feeds.gateio import GateioDecoder
from feeds.wire import id_from_str
from shm.record import Flag, Side

MS = 1_000_000


def frame(channel: str, result: str, event: str = "update") -> bytes:
    return ('{"time":1,"channel":"%s","event":"%s","result":%s}' % (channel, event, result)).encode()


def trade(dec, fields: str):
    (r,) = dec.decode(frame("spot.trades", '{"currency_pair":"X_Y",' + fields + "}"))
    return int(r["ts_event"]), int(r["side"]), float(r["price"]), float(r["size"]), int(r["id"])


def test_numbers_as_float_and_int_read_them():
    dec = GateioDecoder()
    # JSON numbers where strings are documented; create_time_ms as a number is rounded (half even)
    assert trade(dec, '"id":5,"create_time_ms":1606292218213.4578,"side":"b","price":1,"amount":2.5') == \
        (1606292218213458000, Side.BUY, 1.0, 2.5, 5)
    # no create_time_ms (or null): create_time in seconds, int() of it
    assert trade(dec, '"id":5,"create_time_ms":null,"create_time":" 1_0 ","side":"SELL","price":"1e-5",'
                      '"amount":"0.10000000000000001"') == (10_000_000_000, Side.SELL, 1e-05, 0.1, 5)
    assert trade(dec, '"id":5,"create_time":"１２","side":"Buy","price":"１.5","amount":"\u00a02"') == \
        (12_000_000_000, Side.BUY, 1.5, 2.0, 5)
    for bad in ('"price":null', '"price":[]', '"side":"bid"', '"create_time_ms":1.5e300'):
        with pytest.raises(DecodeError):
            dec.decode(frame("spot.trades", '{"currency_pair":"X","id":1,"side":"b","price":"1",'
                                            '"amount":"1","create_time_ms":"1",' + bad + "}"))


@pytest.mark.parametrize("ms,ns", [
    ("1606292218213.4578", 1606292218213457800),
    ("1606292218213.", 1606292218213000000),     # an empty fraction is none
    ("12.1234567", 12123456),                    # 6 fraction digits at most: ns
    ("12.-5", 12 * MS - 50000),                  # int() of the padded fraction "-50000"
    ("12. 5", 12 * MS + 50000),
    ("12.1_2", 12 * MS + 12000),
    ("١٢.٣", 12 * MS + 300000),                  # Unicode digits, counted as characters
])
def test_create_time_ms_strings_as_ms_str_ns_reads_them(ms, ns):
    dec = GateioDecoder()
    assert trade(dec, '"id":1,"side":"b","price":"1","amount":"1","create_time_ms":"%s"' % ms)[0] == ns


@pytest.mark.parametrize("ms", ['".5"', '"1.x"', '"9223372036854.775808"', '[]', '{}'])
def test_create_time_ms_that_ms_str_ns_refuses(ms):
    with pytest.raises(DecodeError):
        GateioDecoder().decode(frame("spot.trades", '{"currency_pair":"X","id":1,"side":"b","price":"1",'
                                                    '"amount":"1","create_time_ms":%s}' % ms))


def test_trade_ids_as_id_from_str_reads_them():
    dec = GateioDecoder()
    base = '"side":"b","price":"1","amount":"1","create_time_ms":"1",'
    assert trade(dec, base + '"id":"007"')[4] == 7
    assert trade(dec, base + '"id":true')[4] == 1
    assert trade(dec, base + '"id":-3')[4] == -3
    assert trade(dec, base + '"id":null,"id_market":"42"')[4] == 42         # id null: id_market
    assert trade(dec, base + '"id_market":"abc"')[4] == id_from_str("abc")   # opaque: the hash
    assert trade(dec, base + '"id":""')[4] == id_from_str("")
    assert trade(dec, base + '"id":"9223372036854775808"')[4] == id_from_str("9223372036854775808")
    assert trade(dec, base + '"id":"١٢"')[4] == 12
    for bad in ('"id":"²"', '"id":1.5', '"id":[]', '"id":null', '"id":9223372036854775808'):
        with pytest.raises(DecodeError):
            dec.decode(frame("spot.trades", "{" + base + '"currency_pair":"X",' + bad + "}"))


def test_a_list_of_trades_and_duplicate_keys():
    dec = GateioDecoder()
    r = dec.decode(frame("spot.trades", '[{"currency_pair":"A","id":1,"side":"b","price":"1","amount":"1",'
                                        '"create_time_ms":"1"},{"currency_pair":"B","currency_pair":"C",'
                                        '"id":2,"side":"s","price":"2","price":"3","amount":"1","create_time":1}]'))
    assert [dec.symbol(int(i)) for i in r["instrument"]] == ["A", "C"] and list(r["price"]) == [1.0, 3.0]
    assert list(r["flags"]) == [0, Flag.LAST]
    assert len(dec.decode(frame("spot.trades", "[]"))) == 0
    # the last "event" decides whether there is data
    assert len(dec.decode(b'{"channel":"spot.trades","event":"update","event":"subscribe","result":{}}')) == 0


def test_level_lists_as_python_iterated_them():
    dec = GateioDecoder()
    # a string level is its characters, an object of levels is its keys; absent b/a: no levels
    r = dec.decode(frame("spot.order_book_update", '{"t":1,"s":"X","U":1,"u":2,"b":[["1","2"],"34"],"a":{"56":0}}'))
    assert list(zip(r["side"], r["price"], r["size"])) == [(Side.BID, 1.0, 2.0), (Side.BID, 3.0, 4.0),
                                                           (Side.ASK, 5.0, 6.0)]
    assert len(dec.decode(frame("spot.order_book_update", '{"t":1,"s":"X","U":1,"u":2}'))) == 0
    r = dec.decode(frame("spot.order_book", '{"t":1,"s":"X","lastUpdateId":2,"bids":{"12":1},"asks":""}'))
    assert list(zip(r["price"], r["size"])) == [(1.0, 2.0)]
    for bad in ('"b":null', '"b":"1"', '"b":5', '"b":[["1"]]', '"b":[{"0":1}]', '"b":[[["1"],"2"]]'):
        with pytest.raises(DecodeError):
            dec.decode(frame("spot.order_book_update", '{"t":1,"s":"X","U":1,"u":2,"a":[],' + bad + "}"))


def test_values_checked_only_when_packed():
    dec = GateioDecoder()
    # t beyond int64 in ns: no levels, nothing packs it; with a level it is malformed
    assert len(dec.decode(frame("spot.order_book_update", '{"t":9223372036855,"s":"X","U":1,"u":2}'))) == 0
    with pytest.raises(DecodeError):
        dec.decode(frame("spot.order_book_update", '{"t":9223372036855,"s":"X","U":1,"u":2,"b":[["1","2"]]}'))
    # U and u are int() of the value, as Python read them
    dec.decode(frame("spot.order_book_update", '{"t":1,"s":"X","U":" 5","u":6.9,"full":"no"}'))
    ev = dec.book_events[0]
    assert (ev.first, ev.last, ev.snapshot) == (5, 6, True)


def test_symbols():
    dec = GateioDecoder()
    r = dec.decode(frame("spot.book_ticker", '{"t":1,"s":5,"b":"1","B":"1","a":"2","A":"1"}'))
    assert dec.symbol(int(r["instrument"][0])) == 5                  # registered by value, as before
    with pytest.raises(DecodeError):                                  # unhashable
        dec.decode(frame("spot.book_ticker", '{"t":1,"s":[],"b":"1","B":"1","a":"2","A":"1"}'))
    # spot.obu: the pair is s.split(".")[1]
    r = dec.decode(frame("spot.obu", '{"t":1,"s":".X..","U":1,"u":2,"b":[["1","2"]]}'))
    assert dec.symbol(int(r["instrument"][0])) == "X"
    with pytest.raises(DecodeError):
        dec.decode(frame("spot.obu", '{"t":1,"s":"ob","U":1,"u":2}'))


def test_control_and_unknown_frames():
    dec = GateioDecoder()
    assert len(dec.decode(b'{"channel":[1],"event":"subscribe"}')) == 0     # not an update: nothing
    assert len(dec.decode(b'{"channel":"spot.mystery","event":"unsubscribe"}')) == 0
    assert len(dec.decode(b'{"channel":"spot.tickers","event":"all"}')) == 0  # ignored even without result
    for bad in (b'{"event":"subscribe"}', b'{"channel":[1],"event":"update"}', b'[]',
                b'{"channel":"spot.mystery","event":"update","result":{}}'):
        with pytest.raises(DecodeError):
            dec.decode(bad)


def test_a_book_frame_that_fails_names_its_book():
    dec = GateioDecoder()
    with pytest.raises(DecodeError):
        dec.decode(frame("spot.order_book_update", '{"t":1,"s":"X","U":1,"u":"x"}'))
    assert [dec.symbol(i) for i in dec.failed_books] == ["X"]


def test_sequence_fields_beyond_int64_are_malformed():
    """The deliberate difference: Python put int() of U / u / lastUpdateId into the BookEvent,
    however big (struct packing refused only a u written into a level); a BookEvent holds int64s
    here, so such a frame is malformed even when it carries no levels."""
    dec = GateioDecoder()
    for result in ('{"t":1,"s":"X","U":9223372036854775808,"u":2}',
                   '{"t":1,"s":"X","U":1,"u":"99999999999999999999"}',
                   '{"t":1,"s":"X","U":1e20,"u":2,"b":[["1","2"]]}'):
        with pytest.raises(DecodeError):
            dec.decode(frame("spot.order_book_update", result))
    with pytest.raises(DecodeError):
        dec.decode(frame("spot.order_book", '{"t":1,"s":"X","lastUpdateId":1e19,"bids":[],"asks":[]}'))
