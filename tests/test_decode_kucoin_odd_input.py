"""The native KuCoin decoder reads odd input as the former Python decoder (orjson + d[key] +
float()/int()) did: pinned here, since that Python code is gone. Every expected value below is
what the Python decoder gave for the same frame (compared frame by frame before it was
deleted), except the one deliberate difference at the end."""
from __future__ import annotations

import pytest

from feeds import DecodeError
from feeds.native.kucoin import KucoinDecoder
from shm.record import Flag, Side

MS = 1_000_000


def frame(topic: str, subject: str, data: str) -> bytes:
    return ('{"type":"message","topic":"%s","subject":"%s","data":%s}' % (topic, subject, data)).encode()


def match(data: str) -> bytes:
    return frame("/market/match:X", "trade.l3match", data)


def l2(changes: str, time: str = "1", first: str = "1", last: str = "2") -> bytes:
    return frame("/market/level2:X", "trade.l2update",
                 '{"changes":%s,"sequenceStart":%s,"sequenceEnd":%s,"time":%s}' % (changes, first, last, time))


def rows(records) -> list[tuple]:
    return [(int(r["side"]), float(r["price"]), float(r["size"]), int(r["id"])) for r in records]


def test_numbers_as_float_and_int_read_them():
    dec = KucoinDecoder()
    (r,) = dec.decode(match('{"time":1.9,"side":"Sell","price":1,"size":2.5,"sequence":true}'))
    assert (int(r["ts_event"]), int(r["side"]), float(r["price"]), float(r["size"]), int(r["id"])) == \
        (1, Side.SELL, 1.0, 2.5, 1)                      # int(1.9) truncates; int(True) is 1
    (r,) = dec.decode(match('{"time":" 1_0 ","side":"b","price":"1e-5","size":"0.10000000000000001","sequence":"7"}'))
    assert (int(r["ts_event"]), int(r["side"]), float(r["price"]), float(r["size"])) == (10, Side.BUY, 1e-05, 0.1)
    (r,) = dec.decode(match('{"time":"\uff11\uff12","side":"s","price":"\uff11.5","size":"\u00a02","sequence":-3}'))
    assert (int(r["ts_event"]), float(r["price"]), float(r["size"]), int(r["id"])) == (12, 1.5, 2.0, -3)
    for bad in ('"side":"BUY ","sequence":1', '"side":"buy","sequence":"1.5"', '"side":"buy","sequence":null',
                '"side":"buy","sequence":9223372036854775808'):
        with pytest.raises(DecodeError):
            dec.decode(match('{"time":1,"price":"1","size":"2",%s}' % bad))


def test_duplicate_keys_the_last_wins():
    dec = KucoinDecoder()
    r = dec.decode(b'{"type":"ack","topic":"/market/match:X","topic":"/market/match:Y","subject":"level1",'
                   b'"subject":"trade.l3match","type":"message",'
                   b'"data":{"time":1,"side":"buy","price":"1","price":"3","size":"2","sequence":5}}')
    assert dec.symbol(int(r["instrument"][0])) == "Y" and r["price"][0] == 3.0


def test_the_symbol_is_everything_after_the_first_colon():
    dec = KucoinDecoder()
    for topic, symbol in (("/market/match:X:Y", "X:Y"), ("/market/match:", ""), ("\u00e9:\u00c9TH-USDT", "\u00c9TH-USDT")):
        r = dec.decode(frame(topic, "trade.l3match", '{"time":1,"side":"buy","price":"1","size":"2","sequence":5}'))
        assert dec.symbol(int(r["instrument"][0])) == symbol
    with pytest.raises(DecodeError):
        dec.decode(frame("no-colon", "trade.l3match", '{"time":1,"side":"buy","price":"1","size":"2","sequence":5}'))


def test_ticker_time_is_Time_or_time_or_the_receive_time():
    dec = KucoinDecoder()
    quote = '"bestBid":"1","bestBidSize":"2","bestAsk":"3","bestAskSize":"4"'
    for stamps, ts in (('"Time":5,"time":7', 5 * MS), ('"Time":0,"time":7', 7 * MS), ('"Time":"","time":"7"', 7 * MS),
                       ('"time":0', 99), ('"Time":null', 99), ('', 99)):
        (r,) = dec.decode(frame("/market/ticker:X", "trade.ticker", "{%s%s%s}" % (stamps, "," if stamps else "", quote)), 99)
        assert int(r["ts_event"]) == ts
    with pytest.raises(DecodeError):                    # float(""): no NAN for a ticker's empty price
        dec.decode(frame("/market/ticker:X", "trade.ticker", '{"bestBid":"","bestBidSize":"2","bestAsk":"3","bestAskSize":"4"}'))


def test_level1_sides_as_python_indexed_them():
    dec = KucoinDecoder()
    (r,) = dec.decode(frame("/spotMarket/level1:X", "level1", '{"bids":"12","asks":["3","4",5],"timestamp":"7"}'))
    assert (float(r["bid_price"]), float(r["bid_size"]), float(r["ask_price"]), float(r["ask_size"])) == (1.0, 2.0, 3.0, 4.0)
    for bad in ('{"1":2}', '["1"]', '"1"', 'null', '[[1],2]'):
        with pytest.raises(DecodeError):
            dec.decode(frame("/spotMarket/level1:X", "level1", '{"bids":%s,"asks":["3","4"],"timestamp":1}' % bad))


def test_l2update_rows_as_python_iterated_them():
    dec = KucoinDecoder()
    # a price "0" row makes no record whatever else it holds (even nothing else); a number 0 is a price
    r = dec.decode(l2('{"bids":[["0"],"0x",[0,"1","2"]],"asks":[["5","6","7","8"]]}'))
    assert rows(r) == [(Side.BID, 0.0, 1.0, 2), (Side.ASK, 5.0, 6.0, 7)]
    # a string of rows is its characters, an object of rows its keys: "0" characters skip
    r = dec.decode(l2('{"bids":"000","asks":{"123":1,"0ab":2}}'))
    assert rows(r) == [(Side.ASK, 1.0, 2.0, 3)] and dec.book_events[0][1:3] == (0, 1)
    for bad in ('"1"', '5', 'null', '[[]]', '[["1","2"]]', '[{"0":1}]', '{"12":1}'):
        with pytest.raises(DecodeError):
            dec.decode(l2('{"bids":%s,"asks":[]}' % bad))


def test_times_beyond_int64_fail_only_where_a_record_carries_them():
    dec = KucoinDecoder()
    big = '"99999999999999999999"'
    assert len(dec.decode(l2('{"bids":[["0","1","2"]],"asks":[]}', time=big))) == 0
    assert dec.book_events[0].last == 2
    with pytest.raises(DecodeError):
        dec.decode(l2('{"bids":[["1","1","2"]],"asks":[]}', time=big))
    depth = '{"bids":%s,"asks":"","timestamp":9223372036855}'
    assert len(dec.decode(frame("/spotMarket/level2Depth5:X", "level2", depth % "[]"))) == 0
    with pytest.raises(DecodeError):
        dec.decode(frame("/spotMarket/level2Depth5:X", "level2", depth % '[["1","2"]]'))


def test_depth_levels_as_python_iterated_them():
    dec = KucoinDecoder()
    r = dec.decode(frame("/spotMarket/level2Depth5:X", "level2", '{"bids":{"12":1},"asks":[["3","4",5]],"timestamp":1.5}'))
    assert [(int(x["side"]), float(x["price"]), float(x["size"]), int(x["id"])) for x in r] == \
        [(Side.BID, 1.0, 2.0, 0), (Side.ASK, 3.0, 4.0, 0)]
    assert int(r["ts_event"][0]) == MS and all(int(f) & Flag.SNAPSHOT for f in r["flags"])
    for bad in ('"1"', '[["1"]]', '{"1":2}', '5'):
        with pytest.raises(DecodeError):
            dec.decode(frame("/spotMarket/level2Depth5:X", "level2", '{"bids":%s,"asks":[],"timestamp":1}' % bad))


def test_instruments_are_registered_where_python_registered_them():
    dec = KucoinDecoder()
    # a trade or a book message: as soon as the subject is known, even if its data then fails
    for topic, subject in (("/market/match:A", "trade.l3match"), ("/market/level2:B", "trade.l2update"),
                           ("/spotMarket/level2Depth5:C", "level2")):
        with pytest.raises(DecodeError):
            dec.decode(frame(topic, subject, "[]"))
    # level1: only once bids and asks exist; a ticker: once data is an object
    for topic, subject, data in (("/spotMarket/level1:D", "level1", '{"bids":[]}'),
                                 ("/market/ticker:E", "trade.ticker", "[]")):
        with pytest.raises(DecodeError):
            dec.decode(frame(topic, subject, data))
    for topic, subject, data in (("/spotMarket/level1:F", "level1", '{"bids":[],"asks":[]}'),
                                 ("/market/ticker:G", "trade.ticker", "{}")):
        with pytest.raises(DecodeError):
            dec.decode(frame(topic, subject, data))
    assert [s for s, _ in dec.instruments._ids] == ["A", "B", "C", "F", "G"]


@pytest.mark.parametrize("raw,error", [
    (b'{"type":"ping","topic":5}', False),
    (b'{"type":"notice"}', False),
    (b'{"type":"message","subject":"trade.candles.add"}', False),     # no topic, no data: ignored
    (b'{"type":"Message"}', True),
    (b'{"type":["ack"]}', True),
    (b'{"type":"message","subject":"trade.l3match","topic":["x",":","X"],"data":{}}', True),
    (b'[{"type":"ack"}]', True),
])
def test_control_and_ignored_frames(raw, error):
    dec = KucoinDecoder()
    if error:
        with pytest.raises(DecodeError):
            dec.decode(raw)
    else:
        assert len(dec.decode(raw)) == 0 and dec.book_events == [] and dec.notices == []
    assert dec.instruments._ids == {}


def test_sequence_fields_are_int_of_the_value_within_int64():
    """The deliberate difference: Python took int() of sequenceStart/sequenceEnd and put even a
    big int into the BookEvent; here int() of them must fit int64, or the frame is malformed."""
    dec = KucoinDecoder()
    dec.decode(l2('{"bids":[],"asks":[]}', first='" 5"', last="true"))
    assert (dec.book_events[0].first, dec.book_events[0].last) == (5, 1)
    dec.decode(l2('{"bids":[],"asks":[]}', first="5.9", last="-9223372036854775808"))
    assert (dec.book_events[0].first, dec.book_events[0].last) == (5, -2 ** 63)
    for bad in ('"5.0"', 'null', '[]', '9223372036854775808', '"99999999999999999999"', '1e300'):
        with pytest.raises(DecodeError):
            dec.decode(l2('{"bids":[],"asks":[]}', first=bad))
