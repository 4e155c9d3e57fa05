"""Book keeping: each venue's sequence rule (gaps, resets, stale/duplicate messages), REST
seeding with buffered deltas, crossed books, checksum hook, and the shm top-N table."""
from __future__ import annotations

import numpy as np
import pytest

from feeds.book import BookKeeper, rule
from feeds.book_table import BookTable
from feeds.decoder import BookEvent
from shm.batch import RecordBatch
from shm.record import RECORD, Flag, Kind, Side, Status


class FakeWriter:
    def __init__(self):
        self.statuses = []
        self.published = []

    def status(self, code, instrument=0, a=0.0, b=0.0):
        self.statuses.append((Status(code), instrument, a, b))

    def publish_buffer(self, buf, n):
        self.published.append(np.frombuffer(bytes(buf[:n * 64]), RECORD).copy())


class FakeRing:
    def __init__(self):
        self.counters = {}

    def add(self, name, delta=1):
        self.counters[name] = self.counters.get(name, 0) + delta


class Frame:
    """A decoder's output for one frame: book records in a batch + BookEvents."""

    def __init__(self):
        self.out = RecordBatch()
        self.events = []

    def msg(self, inst, bids=(), asks=(), first=-1, last=-1, prev=-1, snapshot=False, checksum=None):
        start = self.out.n
        flags = Flag.SNAPSHOT if snapshot else 0
        for p, s in bids:
            self.out.add(Kind.BOOK, inst, 0, 0, Side.BID, flags, p, s, max(last, 0))
        for p, s in asks:
            self.out.add(Kind.BOOK, inst, 0, 0, Side.ASK, flags, p, s, max(last, 0))
        self.events.append(BookEvent(inst, start, self.out.n, snapshot, first, last, prev, checksum))
        return self


def keeper(name, **kw):
    w, r = FakeWriter(), FakeRing()
    requested = []
    k = BookKeeper(name, writer=w, ring=r, request_snapshot=requested.append, **kw)
    return k, w, r, requested


def run(k, frame):
    return k.check(frame.events, frame.out.buf)


def codes(w):
    return [s[0] for s in w.statuses]


# -- Binance spot: U/u, REST seed ------------------------------------------------------------------

def test_binance_spot_seed_buffer_and_gap():
    k, w, r, req = keeper("binance_spot")
    # deltas before any snapshot are held back and a snapshot is requested once
    assert run(k, Frame().msg(1, bids=[(100, 1)], first=99, last=101)) == [(0, 1)]
    assert run(k, Frame().msg(1, asks=[(102, 3)], first=102, last=104)) == [(0, 1)]
    assert req == [1]
    # REST snapshot at id 100: event 99..101 straddles it, 102..104 follows
    assert k.rest_snapshot(1, 100, [("99", "5")], [("101", "2")])
    b = k.books[1]
    assert b.last_id == 104
    assert dict(b.asks) == {101.0: 2.0, 102.0: 3.0} and b.best()[:2] == (100.0, 1.0)
    snap = w.published[-1]
    assert (snap["flags"] & Flag.SNAPSHOT).all() and snap["id"][0] == 104
    assert not (snap["flags"] & Flag.RESYNCED).any()          # initial sync, not a RE-sync
    assert Status.GAP not in codes(w) and r.counters.get("gaps", 0) == 0
    # steady state: contiguous applies, stale is dropped, a gap resyncs
    assert run(k, Frame().msg(1, bids=[(100, 0)], first=105, last=105)) is None
    assert 100.0 not in b.bids and b.best()[0] == 99.0
    assert run(k, Frame().msg(1, bids=[(90, 1)], first=103, last=105)) == [(0, 1)]   # stale
    assert run(k, Frame().msg(1, bids=[(98, 1)], first=110, last=111)) == [(0, 1)]   # gap
    assert codes(w)[-1] == Status.GAP and w.statuses[-1][2:] == (106.0, 110.0)
    assert r.counters["gaps"] == 1 and req == [1, 1]


def test_binance_spot_snapshot_older_than_stream_is_refetched():
    k, w, r, req = keeper("binance_spot")
    run(k, Frame().msg(1, bids=[(100, 1)], first=200, last=205))
    assert not k.rest_snapshot(1, 150, [], [])         # 151..199 missing: too old
    assert k.books[1].state == 1
    assert k.rest_snapshot(1, 201, [("99", "1")], [("101", "1")])
    assert k.books[1].last_id == 205


def test_resync_touches_only_the_gapped_instrument():
    k, w, r, req = keeper("binance_spot")
    for inst in (1, 2):
        run(k, Frame().msg(inst, bids=[(100, 1)], first=10, last=10))
        k.rest_snapshot(inst, 10, [("100", "1")], [("101", "1")])
    f = Frame().msg(1, bids=[(99, 1)], first=20, last=21).msg(2, bids=[(99, 2)], first=11, last=11)
    assert run(k, f) == [(0, 1)]                      # only instrument 1's records held back
    assert k.books[2].state == 0 and k.books[2].last_id == 11
    assert k.books[1].state == 1
    gaps = [s for s in w.statuses if s[0] == Status.GAP]
    assert [g[1] for g in gaps] == [1]
    # the resync publishes RESYNC then a SNAPSHOT|RESYNCED book
    n_before = len(w.published)
    assert k.rest_snapshot(1, 21, [("98", "4")], [("102", "4")])
    assert codes(w)[-1] == Status.RESYNC and w.statuses[-1][1] == 1
    snap = w.published[n_before]
    assert set(snap["instrument"]) == {1}
    assert (snap["flags"] & (Flag.SNAPSHOT | Flag.RESYNCED) == (Flag.SNAPSHOT | Flag.RESYNCED)).all()
    assert r.counters["resyncs"] == 1 and r.counters["gaps"] == 1


# -- Binance USD-M: U/u/pu ---------------------------------------------------------------------------

def test_binance_usdm_prev_rule():
    k, w, r, req = keeper("binance_usdm")
    run(k, Frame().msg(1, bids=[(100, 1)], first=95, last=102, prev=94))
    run(k, Frame().msg(1, bids=[(100, 2)], first=103, last=105, prev=102))
    assert k.rest_snapshot(1, 100, [("99", "1")], [("101", "1")])   # U <= 100 <= u: first applies
    assert k.books[1].last_id == 105 and k.books[1].bids[100.0] == 2.0
    assert run(k, Frame().msg(1, asks=[(101, 0)], first=106, last=110, prev=105)) is None
    assert run(k, Frame().msg(1, asks=[(101, 5)], first=106, last=110, prev=105)) == [(0, 1)]  # duplicate
    assert run(k, Frame().msg(1, asks=[(101, 5)], first=120, last=125, prev=115)) == [(0, 1)]  # pu != u
    assert codes(w)[-1] == Status.GAP and w.statuses[-1][2:] == (110.0, 115.0)


def test_binance_usdm_first_event_must_straddle_snapshot():
    k, w, r, req = keeper("binance_usdm")
    run(k, Frame().msg(1, bids=[(1, 1)], first=5, last=6, prev=4))
    assert k.rest_snapshot(1, 50, [("1", "1")], [("2", "1")])     # buffer older: dropped
    assert k.books[1].fresh
    assert run(k, Frame().msg(1, bids=[(1, 2)], first=40, last=49, prev=39)) == [(0, 1)]  # u < id: drop
    assert run(k, Frame().msg(1, bids=[(1, 3)], first=45, last=55, prev=44)) is None     # straddles
    assert k.books[1].last_id == 55 and not k.books[1].fresh


def test_binance_usdm_event_ending_at_the_snapshot_then_its_successor():
    """The snapshot's lastUpdateId is often the u of an event (the snapshot includes it): that
    event is dropped, and the next one, pu == lastUpdateId and U past it, continues the book
    (it used to be a GAP, then a resync, again and again: bench feed's in-process phase)."""
    k, w, r, req = keeper("binance_usdm")
    run(k, Frame().msg(1, bids=[(1, 1)], first=5, last=6, prev=4))
    assert k.rest_snapshot(1, 50, [("1", "1")], [("2", "1")])
    assert run(k, Frame().msg(1, bids=[(1, 2)], first=50, last=50, prev=49)) == [(0, 1)]  # in the snapshot
    assert run(k, Frame().msg(1, bids=[(1, 3)], first=51, last=53, prev=50)) is None       # follows it
    assert k.books[1].last_id == 53 and not k.books[1].fresh and k.gaps == 0
    assert run(k, Frame().msg(1, bids=[(1, 4)], first=60, last=61, prev=58)) == [(0, 1)]   # a real gap
    assert k.gaps == 1
    # the same with the successor buffered while the snapshot was fetched: it is merged
    k2, *_ = keeper("binance_usdm")
    run(k2, Frame().msg(1, bids=[(1, 5)], first=51, last=53, prev=50))
    assert k2.rest_snapshot(1, 50, [("1", "1")], [("2", "1")])
    assert k2.books[1].last_id == 53 and k2.books[1].bids[1.0] == 5.0


# -- Bybit: u increments, u == 1 resets, snapshots --------------------------------------------------------

def test_bybit_rules():
    k, w, r, req = keeper("bybit")
    assert run(k, Frame().msg(1, bids=[(1, 1)], last=7)) == [(0, 1)]      # delta before snapshot
    assert req == []                                                    # venue sends one
    assert run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], last=8, snapshot=True)) is None
    assert run(k, Frame().msg(1, bids=[(10, 2)], last=9)) is None
    assert run(k, Frame().msg(1, bids=[(10, 3)], last=9)) == [(0, 1)]     # duplicate
    f = Frame().msg(1, bids=[(20, 1)], asks=[(21, 1)], last=1)          # service restart
    assert run(k, f) is None
    assert dict(k.books[1].bids) == {20.0: 1.0}
    arr = f.out.array()
    assert (arr["flags"] & Flag.SNAPSHOT).all()                         # consumers reset too
    assert run(k, Frame().msg(1, bids=[(20, 2)], last=2)) is None
    assert run(k, Frame().msg(1, bids=[(20, 3)], last=5)) == [(0, 1)]     # gap
    assert codes(w) == [Status.GAP] and w.statuses[0][2:] == (3.0, 5.0)
    assert req == [1]                                                   # worker rotates for a snapshot
    assert run(k, Frame().msg(1, bids=[(20, 3)], last=6)) == [(0, 1)]     # held until the snapshot
    f = Frame().msg(1, bids=[(30, 1)], asks=[(31, 1)], last=7, snapshot=True)
    assert run(k, f) is None
    assert codes(w) == [Status.GAP, Status.RESYNC]
    assert (f.out.array()["flags"] & Flag.RESYNCED).all()
    assert r.counters == {"gaps": 1, "resyncs": 1}


# -- OKX: seqId / prevSeqId ---------------------------------------------------------------------------------

def test_okx_rules():
    k, w, r, req = keeper("okx")
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], last=100, prev=-1, snapshot=True))
    assert run(k, Frame().msg(1, bids=[(10, 2)], last=105, prev=100)) is None
    assert run(k, Frame().msg(1, last=105, prev=105)) is None             # keepalive
    assert run(k, Frame().msg(1, bids=[(10, 3)], last=3, prev=200)) is None  # reset after maintenance
    assert k.books[1].last_id == 3
    assert run(k, Frame().msg(1, bids=[(10, 4)], last=9, prev=3)) is None
    assert run(k, Frame().msg(1, bids=[(10, 4)], last=9, prev=3)) == [(0, 1)]    # duplicate
    assert run(k, Frame().msg(1, bids=[(10, 5)], last=20, prev=15)) == [(0, 1)]  # gap
    assert codes(w) == [Status.GAP] and r.counters["gaps"] == 1 and req == [1]


def test_overlap_drops_an_older_snapshot_from_the_new_socket():
    k, w, r, req = keeper("okx")
    run(k, Frame().msg(1, bids=[(10, 1)], last=100, snapshot=True))
    run(k, Frame().msg(1, bids=[(10, 2)], last=101, prev=100))
    k.overlap = True
    assert run(k, Frame().msg(1, bids=[(9, 9)], last=100, snapshot=True)) == [(0, 1)]
    assert k.books[1].bids[10.0] == 2.0


# -- crossed books, checksums, truncation -----------------------------------------------------------------------

def test_crossed_book_is_counted_once_and_flagged():
    k, w, r, req = keeper("coinbase")
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], snapshot=True))
    f = Frame().msg(1, bids=[(12, 1)])
    run(k, f)
    assert f.out.array()["flags"][-1] & Flag.CROSSED
    run(k, Frame().msg(1, bids=[(12, 2)]))                               # still crossed: not again
    assert r.counters["crossed"] == 1
    assert [s for s in w.statuses if s[0] == Status.CROSSED] == [(Status.CROSSED, 1, 12.0, 11.0)]
    run(k, Frame().msg(1, bids=[(12, 0)]))
    run(k, Frame().msg(1, bids=[(13, 1)]))                               # crosses again
    assert r.counters["crossed"] == 2


def test_checksum_mismatch_resyncs():
    def crc(bids, asks, inst):
        return int(sum(p * s for p, s in bids + asks))
    k, w, r, req = keeper("kraken", depth=2, checksum=crc)
    run(k, Frame().msg(1, bids=[(10, 1), (9, 1), (8, 1)], asks=[(11, 1)], snapshot=True,
                       checksum=10 + 9 + 11))
    assert len(k.books[1].bids) == 2                                     # truncated to the depth
    assert run(k, Frame().msg(1, asks=[(11, 2)], checksum=10 + 9 + 22)) is None
    run(k, Frame().msg(1, asks=[(11, 3)], checksum=12345))
    assert Status.CHECKSUM in codes(w) and k.books[1].state == 1 and req == [1]
    assert r.counters["gaps"] == 1


def test_unknown_rule_is_a_clear_error():
    with pytest.raises(KeyError, match="unknown book rule"):
        rule("nasdaq")


# -- shm top-N table -----------------------------------------------------------------------------------------------

def test_book_table_holds_top_n(shm_names):
    table = BookTable.create(shm_names("books"), depth=3, slots=8)
    try:
        k, w, r, req = keeper("okx", table=table, depth=3)
        f = Frame().msg(5, bids=[(10, 1), (9, 2), (8, 3), (7, 4)], asks=[(11, 1), (12, 2)],
                        last=1, snapshot=True)
        run(k, f)
        k.flush_table(123)
        reader = BookTable.attach(shm_names("books"))
        bids, asks = reader.levels(5)
        assert bids == [(10, 1), (9, 2), (8, 3)] and asks == [(11, 1), (12, 2)]
        row = reader.read(5)
        assert row["ts_recv"] == 123 and row["bid_price"] == 10 and row["ask_size"] == 1
        assert row["update_id"] == 1 and row["state"] & 1
        v = table.table.version(5)
        k.flush_table(124)                                  # nothing changed: no write
        assert table.table.version(5) == v
        run(k, Frame().msg(5, bids=[(10, 0)], last=2, prev=1))
        k.flush_table(125)
        assert reader.levels(5)[0] == [(9, 2), (8, 3), (7, 4)]
        reader.close()
    finally:
        table.close()


def test_best_prices_follow_adds_and_deletes():
    k, w, r, req = keeper("coinbase")
    run(k, Frame().msg(1, bids=[(10, 1), (9, 1), (8, 1)], asks=[(11, 1), (12, 1)], snapshot=True))
    b = k.books[1]
    assert b.best() == (10.0, 1.0, 11.0, 1.0)
    run(k, Frame().msg(1, bids=[(10, 0), (9.5, 2)], asks=[(11, 0)]))     # best levels deleted
    assert b.best() == (9.5, 2.0, 12.0, 1.0)
    run(k, Frame().msg(1, bids=[(9.5, 0), (9, 0), (8, 0)], asks=[(12, 0)]))
    assert b.best() == (0.0, 0.0, 0.0, 0.0) and not b.is_crossed()
    run(k, Frame().msg(1, bids=[(5, 1)], asks=[(7, 1), (6, 1)]))
    assert b.best() == (5.0, 1.0, 6.0, 1.0)
    assert b.top(1) == ([(5.0, 1.0)], [(6.0, 1.0)])


def test_bitget_seq_increments_or_pseq():
    k, w, r, req = keeper("bitget")
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], first=5, last=5, snapshot=True))
    assert run(k, Frame().msg(1, bids=[(10, 2)], first=6, last=6)) is None          # seq + 1
    assert run(k, Frame().msg(1, bids=[(10, 3)], first=9, last=9, prev=6)) is None  # pseq given
    assert run(k, Frame().msg(1, bids=[(10, 4)], first=11, last=11)) == [(0, 1)]    # skipped 10
    assert codes(w) == [Status.GAP] and req == [1]


def test_coinbase_lost_marker():
    k, w, r, req = keeper("coinbase")
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], first=1, last=1, snapshot=True))
    assert run(k, Frame().msg(1, bids=[(10, 2)], first=7, last=7, prev=1)) is None
    assert run(k, Frame().msg(1, bids=[(10, 3)], first=12, last=12, prev=-2)) == [(0, 1)]
    assert codes(w) == [Status.GAP] and req == [1]


def test_snapshot_without_an_id_then_sequenced_deltas():
    """A venue snapshot with no sequence (KuCoin depth snapshots) must not make every later
    delta look like a gap: the next delta sets the position."""
    k, w, r, req = keeper("kucoin")
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], snapshot=True))
    assert run(k, Frame().msg(1, bids=[(10, 2)], first=500, last=502)) is None
    assert run(k, Frame().msg(1, bids=[(10, 3)], first=503, last=503)) is None
    assert run(k, Frame().msg(1, bids=[(10, 4)], first=505, last=505)) == [(0, 1)]   # a real gap
    assert codes(w) == [Status.GAP]


def test_checksum_verification_can_be_throttled():
    clock = [0]
    calls = []

    def crc(bids, asks, inst):
        calls.append(inst)
        return 7
    w, r = FakeWriter(), FakeRing()
    k = BookKeeper("kraken", writer=w, ring=r, checksum=crc, clock=lambda: clock[0],
                   checksum_interval_ns=100)
    run(k, Frame().msg(1, bids=[(10, 1)], asks=[(11, 1)], snapshot=True, checksum=7))
    clock[0] = 50
    run(k, Frame().msg(1, bids=[(10, 2)], checksum=7))        # within the interval: not verified
    assert len(calls) == 1
    clock[0] = 150
    run(k, Frame().msg(1, bids=[(10, 3)], checksum=99))       # due: verified, mismatch -> resync
    assert len(calls) == 2 and Status.CHECKSUM in codes(w)


def test_table_flush_with_an_id_the_slot_cannot_hold_writes_nothing(shm_names):
    """A book left with a malformed frame's id (1.5) makes flush_table raise before any slot of
    that flush is written; the books stay due, and a resync makes the flush whole again."""
    import struct
    table = BookTable.create(shm_names("books"), depth=3, slots=8)
    try:
        k, w, r, req = keeper("okx", table=table, depth=3)
        run(k, Frame().msg(2, bids=[(10, 1)], asks=[(11, 1)], last=5, snapshot=True)
            .msg(3, bids=[(20, 1)], asks=[(21, 1)], last=7, snapshot=True))
        k.flush_table(1)
        versions = [table.table.version(i) for i in (2, 3)]
        run(k, Frame().msg(2, bids=[(10, 2)], last=6, prev=5).msg(3, last=1.5, prev=7))
        assert set(k.dirty) == {2, 3} and k.books[3].last_id == 1.5
        with pytest.raises(struct.error):
            k.flush_table(2)
        assert [table.table.version(i) for i in (2, 3)] == versions and len(k.dirty) == 2
        k.resync(3)
        k.flush_table(3)
        assert not k.dirty and table.levels(2)[0] == [(10.0, 2.0)]
        row = table.read(3)
        assert row["update_id"] == -1 and row["n_bids"] == 0 and not row["state"] & 1
    finally:
        table.close()
