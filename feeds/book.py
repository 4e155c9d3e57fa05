"""Per-instrument L2 books: snapshot + deltas under each venue's sequence rule.

The decoder already packed every level into its RecordBatch and described each book message
with a BookEvent (feeds/decoder.py); the keeper reads those levels back from the batch (no
second JSON parse) and touches only the levels of the message.

What the ring shows a consumer, per instrument:
- while the book is in sync: the deltas as the venue sent them;
- on a sequence gap: STATUS GAP (price = expected id, size = received id); the instrument's
  book records are then held back (the keeper buffers them) until the book is rebuilt;
- after a resync: STATUS RESYNC (price = update id of the rebuilt book), then the book as
  BOOK records flagged SNAPSHOT|RESYNCED (the first one clears the consumer's book), then
  deltas again.
Other instruments are never touched by one instrument's gap.

Two ways to rebuild, declared per rule:
- seed "rest": the venue's deltas need a REST snapshot (Binance, Gate.io, KuCoin). Deltas are
  buffered while it is fetched; buffered deltas newer than the snapshot are applied on top, and
  the merged book is published, so nothing between snapshot and stream is lost.
- seed "venue": the venue sends a snapshot on subscribe (Bybit, OKX, Coinbase, Kraken,
  Bitget). The worker gets a fresh one by rotating the connection (make-before-break).

Crossed books are counted once per crossing (ring counter `crossed`, STATUS CROSSED) and the
last record of the offending message gets Flag.CROSSED. Checksums: a venue that publishes one
gives `Venue.extra["book_checksum"](bids, asks, instrument) -> int` (levels best first as
(price, size) floats); a mismatch is treated like a gap (STATUS CHECKSUM, resync). The hook
may carry `.from_book(book, depth) -> int | None`, the same value read from the book's top
prices and sizes (Book.top_prices/top_sizes: no tuple per level); None falls back to the hook.

The books and the per-frame path are native (feeds/native/book.pyx): `Book` keeps each side in a
sorted C array, and `BookKeeper` subclasses `KeeperCore`, whose `check()` (and `check_c`, for the
worker's native lane) runs an in-sequence delta on a synced book in C, rule by rule as
`_verdict` would, and hands everything else to the slow paths below: verdicts, gaps, resyncs,
REST snapshot merges, crossed transitions, checksums, truncation.
"""
from __future__ import annotations

import struct
import time
from dataclasses import dataclass
from typing import Callable

from shm.batch import RecordBatch
from shm.record import RECORD_SIZE, Flag, Kind, Side, Status

from .native.book import FAST_KIND as _FAST_KIND
from .native.book import LOST  # BookEvent.prev after a loss (the C path's value, declared there)
from .native.book import NO_ASK, NO_BID, Book, KeeperCore  # noqa: F401  (NO_*: an empty side)

# side, flags, price, size of one packed RECORD (offsets 29, 30, 32, 40)
LEVEL = struct.Struct("<29xBHdd16x")
assert LEVEL.size == RECORD_SIZE
_FLAGS = struct.Struct("<H")
FLAGS_OFFSET = 30

APPLY, DROP, GAP, RESET = 0, 1, 2, 3
SYNCED, WAITING = 0, 1
MAX_BUFFERED = 20_000          # deltas held per instrument while a snapshot is fetched


def _follows_snapshot(check: str, first: int, last: int, prev: int, last_id: int) -> bool:
    """Does the first delta past a REST snapshot (lastUpdateId = last_id) continue it? "prev"
    (Binance USD-M): U <= lastUpdateId <= u straddles it, or pu == lastUpdateId follows it
    directly; the other rules: it starts at most one past it (first < 0: a one-id event)."""
    if first < 0:
        first = last
    if check == "prev":
        return first <= last_id <= last or prev == last_id
    return first <= last_id + 1


@dataclass(frozen=True)
class Rule:
    """A venue's sequence rule.

    check: "range"     - first <= last_id + 1 <= last; events with last <= last_id are stale
                         (Binance spot U/u, Gate.io U/u, KuCoin sequenceStart/End)
           "prev"      - prev == last_id (Binance USD-M pu, OKX prevSeqId)
           "increment" - last == last_id + 1 (Bybit u, Bitget seq)
           "prev_opt"  - "prev" when the venue sent a previous id (Bitget pseq), else
                         "increment" (Bitget seq: one more per book message)
           "lost"      - the decoder marks a message after a loss with prev == LOST (-2)
                         (Coinbase: sequence_num is per connection, only the decoder sees it)
           "none"      - no sequence (Kraken v2: checksum instead)
    """
    name: str
    seed: str                   # "rest" or "venue"
    check: str
    reset_on_one: bool = False  # Bybit: u == 1 => service restarted, the delta is a snapshot
    seq_reset: bool = False     # OKX: seqId < prevSeqId => sequence restarted after maintenance
    truncate: bool = False      # Kraken: keep only book_depth levels (its checksum needs it)


RULES = {
    "binance_spot": Rule("binance_spot", "rest", "range"),
    "binance_usdm": Rule("binance_usdm", "rest", "prev"),
    "bybit": Rule("bybit", "venue", "increment", reset_on_one=True),
    "okx": Rule("okx", "venue", "prev", seq_reset=True),
    "coinbase": Rule("coinbase", "venue", "lost"),
    "kraken": Rule("kraken", "venue", "none", truncate=True),
    "bitget": Rule("bitget", "venue", "prev_opt"),
    "gateio": Rule("gateio", "rest", "range"),
    "kucoin": Rule("kucoin", "rest", "range"),
    "": Rule("", "venue", "none"),
}


def rule(name: str) -> Rule:
    try:
        return RULES[name]
    except KeyError:
        raise KeyError(f"unknown book rule {name!r}; known: {', '.join(r for r in RULES if r)}") from None


def _or_flags(buf, start: int, end: int, flag: int) -> None:
    """Set a flag on records [start, end) of a packed batch, in place."""
    for i in range(start, end):
        off = i * RECORD_SIZE + FLAGS_OFFSET
        _FLAGS.pack_into(buf, off, _FLAGS.unpack_from(buf, off)[0] | flag)


def levels_of(buf, start: int, end: int) -> list[tuple[int, float, float]]:
    """(side, price, size) of records [start, end) of a packed batch."""
    mv = memoryview(buf)[start * RECORD_SIZE:end * RECORD_SIZE]
    return [(side, price, size) for side, _flags, price, size in LEVEL.iter_unpack(mv)]


class BookKeeper(KeeperCore):
    """All books of one worker (one venue). Single-threaded, called once per frame.

    writer: the ring writer (STATUS records, published snapshots); counters via ring.add().
    request_snapshot(instrument): called when a book needs rebuilding (the worker fetches the
    REST snapshot and calls `rest_snapshot()`, or rotates the connection for a venue snapshot).
    table: optional feeds.book_table.BookTable, written at most once per frame per instrument.

    From KeeperCore (native): books, book(instrument), check(events, buf) (the per-frame entry:
    record ranges to hold back, or None), flush_table(ts_recv), dirty, table, depth, overlap.
    """

    def __init__(self, rule_name: str, writer=None, ring=None,
                 request_snapshot: Callable[[int], None] | None = None, table=None,
                 depth: int = 20, checksum: Callable | None = None, clock=time.time_ns,
                 checksum_interval_ns: int = 0):
        self.rule = rule(rule_name)
        self.writer = writer
        self.ring = ring
        self.request_snapshot = request_snapshot or (lambda instrument: None)
        self.table = table
        self.depth = depth
        self.checksum = checksum
        # verify a venue checksum at most this often per instrument (0 = every message): a
        # book that diverged stays diverged, so a later check still catches it, and the
        # sort + string formatting of 25 levels per message is the costliest part of the path
        self.checksum_interval_ns = checksum_interval_ns
        self.overlap = False        # a connection rotation is in progress: duplicates expected
        self.clock = clock
        self._batch = RecordBatch(256)
        self.gaps = self.resyncs = self.crossings = self.checksum_errors = 0
        # a checksum hook may carry a faster variant reading the Book itself
        # (`hook.from_book(book, depth) -> int`, or None to fall back to the hook): no
        # (price, size) tuples per level per message
        self._checksum_from_book = getattr(checksum, "from_book", None)
        # the C fast path: the rule as a small int, and whether _after_apply has anything to
        # do beyond the crossed check (truncate, checksum)
        self._kind = _FAST_KIND[self.rule.check]
        self._reset_on_one = self.rule.reset_on_one
        self._plain = not self.rule.truncate and checksum is None
        # a checksum hook with a native variant (`hook.native`, a feeds.native.book.BookChecksum)
        # is verified in C on every message; truncation then happens in C too
        native = getattr(checksum, "native", None)
        self.native_checksum = native
        self._truncate = self.rule.truncate
        self._native_after = native is not None and not checksum_interval_ns

    # -- bookkeeping helpers -----------------------------------------------------------------
    def _status(self, code: Status, instrument: int, a: float = 0.0, b: float = 0.0) -> None:
        if self.writer is not None:
            self.writer.status(code, instrument, a, b)

    def _count(self, name: str) -> None:
        if self.ring is not None:
            self.ring.add(name)

    # -- the slow paths of the per-frame entry (KeeperCore.check) -------------------------------
    def apply_event(self, b: Book, ev, buf) -> bool:
        """The general path for one event (check() takes it for everything but an in-sequence
        delta on a synced book): the venue rule's verdict, then apply, reset, resync or hold.
        True when the event's records must be held back. From the C path, `buf` is a
        memoryview of the batch (flags are edited through it)."""
        resync = ev.snapshot and b.after_gap and b.state == WAITING
        verdict = self._verdict(b, ev)
        if verdict == APPLY:
            if ev.snapshot:
                b.clear()
                if resync:
                    _or_flags(buf, ev.start, ev.end, Flag.RESYNCED)
            b.apply_records(buf, ev.start, ev.end)
            self._after_apply(b, ev, buf)
        elif verdict == RESET:              # Bybit u == 1: consumers must treat it as a snapshot
            b.clear()
            b.apply_records(buf, ev.start, ev.end)
            _or_flags(buf, ev.start, ev.end, Flag.SNAPSHOT)
            self._after_apply(b, ev, buf)
        else:
            if verdict == GAP:
                self._gap(b, ev, buf)
            elif b.state == WAITING and self.rule.seed == "rest" and not ev.snapshot:
                self._hold(b, ev, buf)
            return ev.end > ev.start
        return False

    def _verdict(self, b: Book, ev) -> int:
        r = self.rule
        if ev.snapshot:
            if self.overlap and b.state == SYNCED and 0 <= ev.last <= b.last_id:
                return DROP                  # the new socket's snapshot is older than our book
            if b.state == WAITING:
                self._synced(b, ev.last)
            b.last_id = ev.last                  # -1: a snapshot without an id (see below)
            return APPLY
        if b.state == WAITING:
            if r.seed == "rest" and not b.requested_ns:
                self._request(b)
            return DROP
        last, last_id = ev.last, b.last_id
        check = r.check
        if check == "lost":
            return GAP if ev.prev == LOST else APPLY
        if check == "prev_opt":
            check = "prev" if ev.prev >= 0 else "increment"
        if check == "none" or last < 0:
            return APPLY
        if last_id < 0:                     # after a snapshot that carried no id: start here
            b.last_id = last
            return APPLY
        if r.reset_on_one and last == 1:
            b.last_id = 1
            return RESET
        if b.fresh:                         # first delta after a REST snapshot may straddle it
            if last <= last_id:             # in the snapshot already (USD-M: u == lastUpdateId too)
                return DROP
            if _follows_snapshot(check, ev.first, last, ev.prev, last_id):
                b.fresh = False
                b.last_id = last
                return APPLY
            return GAP
        if check == "range":
            if last <= last_id:
                return DROP
            if ev.first > last_id + 1:
                return GAP
        elif check == "prev":
            prev = ev.prev
            if prev != last_id:
                if r.seq_reset and last < prev:
                    b.last_id = last
                    return APPLY
                if last <= last_id:
                    return DROP
                return GAP
        else:  # increment
            if last != last_id + 1:
                if last <= last_id:
                    return DROP
                return GAP
        b.last_id = last
        return APPLY

    def _after_apply(self, b: Book, ev, buf, verified: bool = False) -> None:
        """After a message was applied: truncate, verify the venue checksum, note a crossing,
        mark the table slot. verified: the C path did the truncation and the checksum."""
        if not verified:
            if self.rule.truncate:
                b.truncate(self.depth)
            if self.checksum is not None and ev.checksum is not None and self._checksum_due(b):
                if self._local_checksum(b) != ev.checksum:
                    self._checksum_mismatch(b, ev, buf)
                    return
        crossed = b.is_crossed()
        if crossed and not b.crossed:
            self.crossings += 1
            self._count("crossed")
            bp, _, ap, _ = b.best()
            self._status(Status.CROSSED, b.instrument, bp, ap)
            if ev.end > ev.start:
                _or_flags(buf, ev.end - 1, ev.end, Flag.CROSSED)
        b.crossed = crossed
        if self.table is not None:
            self.touch(b)

    def _checksum_mismatch(self, b: Book, ev, buf) -> None:
        """Our book's checksum is not the venue's: like a gap (STATUS CHECKSUM, resync)."""
        self.checksum_errors += 1
        self._status(Status.CHECKSUM, b.instrument, float(ev.checksum), 0.0)
        self._gap(b, ev, buf, status=False)

    def _local_checksum(self, b: Book) -> int:
        """The venue checksum of our book (the native or fast variant when the hook has one)."""
        if self.native_checksum is not None:
            return self.native_checksum(b, self.depth)
        fast = self._checksum_from_book
        if fast is not None:
            value = fast(b, self.depth)
            if value is not None:
                return value
        bids, asks = b.top(self.depth)
        return self.checksum(bids, asks, b.instrument)

    def _checksum_due(self, b: Book) -> bool:
        if not self.checksum_interval_ns:
            return True
        now = self.clock()
        if b.checked_ns is not None and now - b.checked_ns < self.checksum_interval_ns:
            return False
        b.checked_ns = now
        return True

    # -- gaps and resyncs ------------------------------------------------------------------------
    def _gap(self, b: Book, ev, buf, status: bool = True) -> None:
        prev_rule = self.rule.check in ("prev", "lost") or self.rule.check == "prev_opt" and ev.prev >= 0
        expected = b.last_id if prev_rule else b.last_id + 1
        received = ev.prev if prev_rule else ev.first if ev.first >= 0 else ev.last
        self._lose(b, expected, received, status)
        if self.rule.seed == "rest":
            self._hold(b, ev, buf)
        self._request(b)

    def _lose(self, b: Book, expected, received, status: bool = True) -> None:
        """Count a gap, tell consumers (STATUS GAP) and empty the book until it is rebuilt."""
        expected, received = float(expected), float(received)   # raises before any change
        self.gaps += 1
        b.gaps += 1
        self._count("gaps")
        if status:
            self._status(Status.GAP, b.instrument, expected, received)
        b.state = WAITING
        b.fresh = False
        b.after_gap = True
        b.clear()
        b.buffer.clear()
        b.requested_ns = 0
        self.touch(b)

    def resync(self, instrument: int) -> None:
        """Rebuild a book that a frame could not be applied to whole (the worker skipped the
        frame: the keeper may have applied part of it, or kept an id of the wrong type).

        Like a gap: STATUS GAP (price = the book's last good id, size = -1: unknown), the book
        emptied and WAITING, a snapshot requested; STATUS RESYNC follows when it is rebuilt.
        """
        b = self.book(instrument)
        if type(b.last_id) is not int:         # a "123" or 1.5 the frame left behind
            b.last_id = -1
        self._lose(b, b.last_id, -1)
        self._request(b)

    def _request(self, b: Book) -> None:
        b.requested_ns = self.clock()
        self.request_snapshot(b.instrument)

    def _hold(self, b: Book, ev, buf) -> None:
        if len(b.buffer) >= MAX_BUFFERED:       # the snapshot is late: what we hold is useless
            b.buffer.clear()
        b.buffer.append((ev.first, ev.last, ev.prev, levels_of(buf, ev.start, ev.end)))

    def _synced(self, b: Book, last_id: int) -> None:
        """The book became valid again (venue snapshot or merged REST snapshot)."""
        b.state = SYNCED
        b.requested_ns = 0
        b.buffer.clear()
        b.last_id = last_id
        if b.after_gap:
            b.after_gap = False
            b.resyncs += 1
            self.resyncs += 1
            self._count("resyncs")
            self._status(Status.RESYNC, b.instrument, float(last_id), 0.0)

    def overdue(self, older_than_ns: int) -> list[int]:
        """Instruments whose requested snapshot has not arrived for `older_than_ns` (ask again)."""
        now = self.clock()
        out = []
        for b in self.books.values():
            if b.state == WAITING and b.requested_ns and now - b.requested_ns > older_than_ns:
                b.requested_ns = now
                out.append(b.instrument)
        return out

    def venue_snapshot_done(self, instrument: int) -> bool:
        """True if the instrument is in sync (used by the worker after a rotation)."""
        b = self.books.get(instrument)
        return b is not None and b.state == SYNCED

    def rest_snapshot(self, instrument: int, last_id: int, bids, asks, ts_recv: int = 0) -> bool:
        """A REST snapshot arrived: seed the book, replay what was buffered, publish the result.

        Returns False when the snapshot is older than the buffered stream (the caller fetches
        another one). bids/asks: iterables of (price, size) as numbers or decimal strings.
        """
        b = self.book(instrument)
        if b.state == SYNCED:                  # a late answer to an old request
            return True
        chk = self.rule.check
        pending = [e for e in b.buffer if e[1] > last_id] if chk != "prev" else \
            [e for e in b.buffer if e[1] >= last_id]
        if pending:
            first, last, prev, _ = pending[0]
            if not _follows_snapshot(chk, first, last, prev, last_id):
                b.requested_ns = 0
                return False
        b.clear()
        b.apply((1, float(p), float(s)) for p, s in bids)
        b.apply((2, float(p), float(s)) for p, s in asks)
        cur = last_id
        for first, last, prev, levels in pending:
            if cur != last_id:                 # continuity inside the buffer
                if chk == "prev" and prev != cur or chk != "prev" and first > cur + 1:
                    b.buffer = [e for e in b.buffer if e[1] > cur]
                    b.requested_ns = 0
                    return False
            b.apply(levels)
            cur = last
        resync = b.after_gap
        self._synced(b, cur)
        b.fresh = not pending                  # the first live delta may straddle the snapshot
        if self.rule.truncate:
            b.truncate(self.depth)
        self.publish_book(b, cur, ts_recv, Flag.SNAPSHOT | (Flag.RESYNCED if resync else 0))
        b.crossed = b.is_crossed()
        self.touch(b)
        self.flush_table(ts_recv)
        return True

    def publish_book(self, b: Book, update_id: int, ts_recv: int, flags: int) -> None:
        """Publish the whole book as BOOK records (the first clears a consumer's book)."""
        if self.writer is None:
            return
        out = self._batch
        out.clear()
        ts = ts_recv or self.clock()
        bids, asks = b.sorted_levels()
        for p, v in bids:
            out.add(Kind.BOOK, b.instrument, 0, ts, Side.BID, flags, p, v, update_id)
        for p, v in asks:
            out.add(Kind.BOOK, b.instrument, 0, ts, Side.ASK, flags, p, v, update_id)
        if out.n:
            out.mark_last()
            self.writer.publish_buffer(out.buf, out.n)
