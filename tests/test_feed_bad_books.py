"""A book message whose sequence field is a string or a float ("123", 1.5: a fuzzed or buggy
frame) is a malformed frame: the worker counts it (decode_errors, STATUS DECODE_ERROR),
publishes none of its records, resyncs every book the frame carried (STATUS GAP, then
RESYNC once rebuilt), lets no exception reach the connection, and keeps going.

In-process: FeedWorker.on_frame with hand-made frames, a ring, a registry and a book table.
"""
from __future__ import annotations

import orjson
import pytest

import feeds
from feeds.book import SYNCED, WAITING
from feeds.worker import FeedWorker
from shm.record import Kind, Side, Status


class _Conn:
    index = 0

    def __init__(self):
        self.rotations = []

    def rotate(self, reason):
        self.rotations.append(reason)


class _Sock:
    def __init__(self, worker):
        self.conn, self.incoming, self.serial = _Conn(), False, 1
        self.got_data, self.got_data_at, self.last_frame_ns = False, 0.0, 0
        self.decoder = worker.venue.decoder(worker.instruments)


def _lv(base: float, n: int = 3, okx: bool = False) -> list:
    return [[f"{base + i:.1f}", f"{i + 1}.5"] + (["0", "1"] if okx else []) for i in range(n)]


# -- frames per venue: (snapshot or None, delta) builders; ids are ints unless a test says not --
def _binance(seq, bids, asks, first=None, prev=None, usdm=False):
    d = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": seq if first is None else first, "u": seq,
         "b": bids, "a": asks}
    if usdm:
        d["T"] = 1
        d["pu"] = seq - 1 if prev is None else prev
    return {"stream": "btcusdt@depth@100ms", "data": d}


def _bybit(seq, bids, asks, snapshot=False):
    return {"topic": "orderbook.50.BTCUSDT", "ts": 1, "type": "snapshot" if snapshot else "delta",
            "data": {"s": "BTCUSDT", "b": bids, "a": asks, "u": seq, "seq": 7}}


def _okx_entry(seq, bids, asks, prev=None, snapshot=False):
    return {"asks": asks, "bids": bids, "ts": "1", "checksum": 0,
            "prevSeqId": -1 if snapshot else (seq - 1 if prev is None else prev), "seqId": seq}


def _okx(*entries, snapshot=False):
    return {"arg": {"channel": "books", "instId": "BTC-USDT"},
            "action": "snapshot" if snapshot else "update", "data": list(entries)}


def _delta(venue: str, seq: int, bids=None, asks=None) -> dict:
    """A good delta moving one level on each side."""
    bids = _lv(100.0, 1) if bids is None else bids
    asks = _lv(200.0, 1) if asks is None else asks
    if venue == "binance":
        return _binance(seq, bids, asks)
    if venue == "binance_usdm":          # U..u straddles the REST snapshot's id (USD-M rule)
        return _binance(seq, bids, asks, first=seq - 1, usdm=True)
    if venue == "bybit":
        return _bybit(seq, bids, asks)
    return _okx(_okx_entry(seq, [b + ["0", "1"] for b in bids], [a + ["0", "1"] for a in asks]))


# bad frames: (venue, label, frame builder given the next good sequence number, with a table
# only). Each of them made BookKeeper.check or the table flush raise out of on_frame. (A float
# id that compares like a number without raising - bybit u=1.5 with no levels - is a stale or
# out-of-sequence message to the keeper: dropped, or a GAP; a float or string id on a message
# with levels is already a decoder error, since the id is packed into every BOOK record.)
BAD = [
    ("binance", "U string", lambda s: _binance(s, _lv(100.0, 1), [], first="123"), False),
    ("binance", "u string, no levels", lambda s: _binance("123", [], [], first=s), False),
    ("binance_usdm", "u string, no levels", lambda s: _binance("123", [], [], first=s, prev=s - 1, usdm=True), False),
    ("binance_usdm", "u float, no levels", lambda s: _binance(1.5, [], [], first=s, prev=s - 1, usdm=True), True),
    ("bybit", "u string, no levels", lambda s: _bybit("123", [], []), False),
    ("okx", "prevSeqId string", lambda s: _okx(_okx_entry(s, _lv(100.0, 1, okx=True), [], prev="123")), False),
    ("okx", "seqId string, no levels", lambda s: _okx(_okx_entry("123", [], [], prev=s - 1)), False),
    # the float passes the sequence check (prev matches) and only the table's int slot field
    # rejects it: without a table the next message's prevSeqId is the GAP that resyncs
    ("okx", "seqId float, no levels", lambda s: _okx(_okx_entry(1.5, [], [], prev=s - 1)), True),
    # a good message applied, then a bad one in the same frame: the book was half-touched
    ("okx", "good then prevSeqId string", lambda s: _okx(
        _okx_entry(s, _lv(90.0, 1, okx=True), _lv(200.0, 1, okx=True)),
        _okx_entry(s + 1, _lv(100.0, 1, okx=True), [], prev="123")), False),
]
CASES = [(v, label, bad, table) for v, label, bad, table_only in BAD
         for table in ((True,) if table_only else (True, False))]


def _records(w, after: int):
    a = w.ring.reader(after, register=False).read(1 << 14, timeout=0)
    return a


def _start(venue: str, shm_names, table: bool):
    w = FeedWorker(venue, ["BTCUSDT"], shm_names("ring"), registry=shm_names("reg"),
                   book_table=shm_names("tbl") if table else None, ring_capacity=1 << 14)
    w._open_shm()
    requested = []
    w.keeper.request_snapshot = requested.append      # no REST / rotation in-process
    return w, _Sock(w), requested


def _sync(w, sock, venue: str, seq: int, requested) -> int:
    """Bring the book in sync at update id `seq` (REST snapshot or venue snapshot frame);
    returns the instrument id."""
    bids, asks = _lv(95.0), _lv(205.0)
    if feeds.venue(venue).book_rule.startswith("binance"):
        if not requested:                             # the first delta asks for a snapshot
            w.on_frame(orjson.dumps(_delta(venue, seq)), sock)
        inst = requested[-1]
        assert w.keeper.rest_snapshot(inst, seq, bids, asks, 1)
        return inst
    if venue == "bybit":
        w.on_frame(orjson.dumps(_bybit(seq, bids, asks, snapshot=True)), sock)
    else:
        w.on_frame(orjson.dumps(_okx(_okx_entry(seq, [b + ["0", "1"] for b in bids],
                                                [a + ["0", "1"] for a in asks], snapshot=True),
                                     snapshot=True)), sock)
    (inst,) = w.keeper.books
    return inst


def _table_matches_book(w, inst):
    row = w.table.read(inst)
    b = w.keeper.books[inst]
    bids, asks = b.top(w.keeper.depth)
    assert w.table.levels(inst) == (bids, asks)
    assert int(row["state"]) & 1 == (1 if b.state == SYNCED else 0)


@pytest.mark.parametrize("venue,label,bad,table", CASES,
                         ids=[f"{v}-{l}-{'table' if t else 'no-table'}" for v, l, _, t in CASES])
def test_bad_sequence_field_is_a_counted_skipped_frame_and_resyncs(shm_names, venue, label, bad, table):
    w, sock, requested = _start(venue, shm_names, table)
    try:
        inst = _sync(w, sock, venue, 100, requested)
        w.on_frame(orjson.dumps(_delta(venue, 101)), sock)
        assert w.keeper.books[inst].state == SYNCED and w.keeper.books[inst].last_id == 101
        requested.clear()
        before = w.ring.published
        frames = w.ring.word("frames")

        w.on_frame(orjson.dumps(bad(102)), sock)      # must not raise

        assert w.ring.word("frames") == frames + 1
        assert w.decode_errors == 1 and w.ring.word("decode_errors") == 1
        recs = _records(w, before)
        assert set(recs["kind"].tolist()) == {int(Kind.STATUS)}      # nothing of the frame
        codes = [(int(r["id"]), int(r["instrument"])) for r in recs]
        assert (int(Status.DECODE_ERROR), 0) in codes
        assert (int(Status.GAP), inst) in codes
        b = w.keeper.books[inst]
        assert b.state == WAITING and not b.bids and not b.asks and type(b.last_id) is int
        if feeds.venue(venue).book_rule.startswith("binance"):
            assert requested == [inst]                # a REST snapshot is asked for
        else:
            assert requested == [inst]                # the socket is rotated / resubscribed
        assert not sock.decoder.book_events and not w.keeper.dirty
        if table:
            _table_matches_book(w, inst)              # the slot shows the emptied, unsynced book

        # the next good frames work: rebuilt book, deltas published again
        before = w.ring.published
        _sync(w, sock, venue, 200, requested)
        w.on_frame(orjson.dumps(_delta(venue, 201, bids=_lv(99.0, 1), asks=[])), sock)
        recs = _records(w, before)
        statuses = [int(r["id"]) for r in recs[recs["kind"] == Kind.STATUS]]
        assert int(Status.RESYNC) in statuses
        book = recs[recs["kind"] == Kind.BOOK]
        last = book[-1]
        assert (int(last["side"]), float(last["price"]), int(last["id"])) == (int(Side.BID), 99.0, 201)
        assert b.state == SYNCED and b.last_id == 201 and b.bids[99.0] == 1.5
        assert w.decode_errors == 1
        if table:
            _table_matches_book(w, inst)
    finally:
        w.writer.close()
        w.ring.close()
        w.registry.close()
        if w.table is not None:
            w.table.close()


def test_good_frames_take_no_resync(shm_names):
    """The handler only runs when the keeper raises: a plain gap stays a plain gap."""
    w, sock, requested = _start("bybit", shm_names, True)
    try:
        inst = _sync(w, sock, "bybit", 100, requested)
        w.on_frame(orjson.dumps(_delta("bybit", 101)), sock)
        w.on_frame(orjson.dumps(_delta("bybit", 103)), sock)        # a real gap
        assert w.decode_errors == 0 and w.ring.word("decode_errors") == 0
        assert w.keeper.gaps == 1 and w.keeper.books[inst].state == WAITING
    finally:
        w.writer.close()
        w.ring.close()
        w.registry.close()
        w.table.close()
