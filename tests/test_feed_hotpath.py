"""The feed hot path's shortcuts give exactly what the plain code gives.

- the checksum hooks' fast and native variants (`book_checksum.from_book`, `.native`) against
  the hooks themselves;
- BookKeeper.check's in-sync fast path (C) against the full _verdict path, rule by rule, and
  check_c (the native lane's entry) against check;
- RecordBatch.reserve and the inline LAST byte against add()/mark_last();
- the native Book against a dict model of a book;
- the native table slot writer against the field-by-field numpy one, after random deltas and
  after every recorded simulator frame, and seen whole by a reader.
"""
from __future__ import annotations

import random

import numpy as np
import pytest

import feeds
from feeds import bitget, kraken
from feeds.book import NO_ASK, NO_BID, RULES, Book, BookKeeper
from feeds.decoder import BookEvent
from shm.batch import LAST, LAST_BYTE_FROM_END, RecordBatch, pack_level
from shm.record import Flag, Kind, Side


def _random_book(rnd: random.Random, n_bids: int, n_asks: int, instrument: int = 1) -> Book:
    b = Book(instrument)
    mid = 100.0
    levels = [(1, round(mid - 0.01 * (i + 1) - rnd.randrange(3) * 0.001, 3), round(rnd.uniform(0.001, 9), 5))
              for i in range(n_bids)]
    levels += [(2, round(mid + 0.01 * (i + 1) + rnd.randrange(3) * 0.001, 3), round(rnd.uniform(0.001, 9), 5))
               for i in range(n_asks)]
    rnd.shuffle(levels)
    b.apply(levels)
    return b


@pytest.mark.parametrize("n_bids,n_asks", [(0, 0), (3, 0), (0, 4), (12, 7), (30, 30), (25, 40)])
def test_kraken_fast_checksum_equals_hook(n_bids, n_asks):
    rnd = random.Random(n_bids * 100 + n_asks)
    kraken._INST_PRECISION[1] = (3, 5)
    for depth in (25, 25, 6):
        b = _random_book(rnd, n_bids, n_asks)
        bids, asks = b.top(depth)
        want = kraken.book_checksum(bids, asks, 1)
        assert kraken.book_checksum.from_book(b, depth) == want
        # memoized texts: a second call (cache hits) gives the same
        assert kraken.book_checksum.from_book(b, depth) == want


def _bitget_strings(b: Book) -> tuple[list, list, list, list]:
    """LEVEL_STRINGS of a book: venue strings with trailing zeros the floats do not keep."""
    bpx, apx = sorted(b.bids), sorted(b.asks)
    return (bpx, [f"{p:.4f}:{b.bids[p]:.6f}" for p in bpx], apx, [f"{p:.4f}:{b.asks[p]:.6f}" for p in apx])


@pytest.mark.parametrize("n_bids,n_asks", [(0, 0), (5, 0), (0, 5), (30, 20), (20, 30), (25, 25)])
def test_bitget_native_checksum_equals_hook(n_bids, n_asks):
    rnd = random.Random(n_bids * 100 + n_asks)
    b = _random_book(rnd, n_bids, n_asks, instrument=7)
    bitget.LEVEL_STRINGS[7] = _bitget_strings(b)
    bids, asks = b.top(25)
    bp, _ = b.top_prices(25)
    want = bitget.book_checksum(bids, asks, 7)
    assert bitget.book_checksum.native(b, 25) == want
    assert want == bitget.bitget_checksum([(f"{p:.4f}", f"{s:.6f}") for p, s in bids],
                                          [(f"{p:.4f}", f"{s:.6f}") for p, s in asks])
    if bp:                       # the keeper's top differs from the decoder's texts
        bpx, bpc, apx, apc = bitget.LEVEL_STRINGS[7]
        bitget.LEVEL_STRINGS[7] = (bpx[:-1], bpc[:-1], apx, apc)
        assert bitget.book_checksum.native(b, 25) == bitget.book_checksum(bids, asks, 7)
        assert bitget.book_checksum(bids, asks, 7) != want          # repr() text for that level
    bitget.LEVEL_STRINGS.pop(7, None)


def test_bitget_level_strings_are_the_venue_text():
    dec = bitget.BitgetDecoder()
    snap = (b'{"action":"snapshot","arg":{"instType":"SPOT","channel":"books","instId":"BTCUSDT"},'
            b'"data":[{"asks":[["27000.50","0.0500"],["27001","2"]],"bids":[["26999.0","1.10"]],'
            b'"seq":1,"ts":"1"}]}')
    dec.decode(snap)
    inst = dec.instruments.id("BTCUSDT", "spot")
    assert bitget.LEVEL_STRINGS[inst] == ([26999.0], ["26999.0:1.10"], [27000.5, 27001.0],
                                          ["27000.50:0.0500", "27001:2"])
    assert bitget.book_checksum([(26999.0, 1.1)], [(27000.5, 0.05), (27001.0, 2.0)], inst) == \
        bitget.bitget_checksum([("26999.0", "1.10")], [("27000.50", "0.0500"), ("27001", "2")])
    dec.decode(snap.replace(b'"snapshot"', b'"update"').replace(b'"0.0500"', b'"0"')
               .replace(b'"1.10"', b'"1.20"').replace(b'["27001","2"]', b'["26999.5","3.0"]'))
    assert bitget.LEVEL_STRINGS[inst] == ([26999.0], ["26999.0:1.20"], [26999.5, 27001.0],
                                          ["26999.5:3.0", "27001:2"])
    bitget.LEVEL_STRINGS.pop(inst, None)


def _general(keeper, ev, buf):
    """BookKeeper.check without its fast path: the general path for one event."""
    if keeper.apply_event(keeper.book(ev.instrument), ev, buf):
        return [(ev.start, ev.end)]
    return None


class _Writer:
    def __init__(self):
        self.status_calls = []

    def status(self, code, instrument, a, b):
        self.status_calls.append((int(code), instrument, a, b))

    def publish_buffer(self, buf, n):
        self.status_calls.append(("book", bytes(buf[:n * 64])))


def _events(rnd: random.Random, rule_name: str, n: int):
    """A stream of one instrument's book messages: snapshot, then deltas with the rule's ids,
    some stale, some skipped, some out of range, crossing prices now and then."""
    seq = 100
    out = []
    for i in range(n):
        snap = i == 0 or rnd.random() < 0.03
        step = rnd.choice([1, 1, 1, 1, 1, 2, 0, -1, 3])
        first = seq + 1
        seq = seq + step if not snap else seq + 1
        last = seq
        prev = first - 1 if rnd.random() < 0.85 else rnd.choice((first - 2, first))
        if rule_name == "lost":
            prev = -2 if rnd.random() < 0.05 else -1
        if rule_name == "bybit" and rnd.random() < 0.02:
            last = first = 1
        levels = []
        for _ in range(rnd.randrange(0, 4)):
            side = rnd.choice((1, 2))
            price = round(100 + (rnd.uniform(-2, 0.3) if side == 1 else rnd.uniform(-0.3, 2)), 1)
            size = rnd.choice((0.0, round(rnd.uniform(0.1, 5), 2)))
            levels.append((side, price, size))
        out.append((snap, first, last, prev, levels))
    return out


def _via_c(keeper, ev, buf):
    """BookKeeper.check through check_c, the native lane's entry (slow path events and buffer
    made from the C structs)."""
    return keeper._check_via_c([ev], buf)


@pytest.mark.parametrize("rule_name", sorted(r for r in RULES if r))
def test_keeper_fast_path_matches_general_path(rule_name):
    rnd = random.Random(rule_name)
    stream = _events(rnd, "lost" if RULES[rule_name].check == "lost" else rule_name, 400)
    results = []
    for fast in (True, False, _via_c):
        w = _Writer()
        keeper = BookKeeper(rule_name, writer=w, clock=lambda: 1)
        seen = []
        for snap, first, last, prev, levels in stream:
            batch = RecordBatch(8)
            for side, price, size in levels:
                batch.add(Kind.BOOK, 1, 0, 0, side, Flag.SNAPSHOT if snap else 0, price, size, last)
            ev = BookEvent(1, 0, batch.n, snap, first, last, prev, None)
            if keeper.rule.seed == "rest" and snap:
                keeper.rest_snapshot(1, last, [], [])
                continue
            if fast is _via_c:
                drops = _via_c(keeper, ev, batch.buf)
            else:
                drops = keeper.check([ev], batch.buf) if fast else _general(keeper, ev, batch.buf)
            b = keeper.books[1]
            seen.append((drops, bytes(batch.buf[:batch.n * 64]), sorted(b.bids.items()),
                         sorted(b.asks.items()), b.last_id, b.state, b.crossed, b.fresh))
        results.append((seen, w.status_calls, keeper.gaps, keeper.crossings))
    assert results[0] == results[1] == results[2]
    assert any(s[0] is None for s in results[0][0])          # the stream exercised applies ...
    assert results[0][2] > 0 or rule_name in ("kraken", "") # ... and gaps where a rule has them


def test_reserve_and_inline_last_match_add_and_mark_last():
    a = RecordBatch(2)
    b = RecordBatch(2)
    for i in range(5):
        a.add(Kind.BOOK, 3, 10, 20, Side.BID, 0, 1.5 + i, 2.0, 7)
        buf = b.reserve(1)
        pack_level(buf, b.n << 6, 0, 10, 20, 3, int(Kind.BOOK), int(Side.BID), 0, 1.5 + i, 2.0, 0.0, 7)
        b.n += 1
    a.mark_last()
    b.buf[(b.n << 6) - LAST_BYTE_FROM_END] |= LAST
    assert a.n == b.n == 5 and b.cap >= 5
    assert bytes(a.buf[:a.n * 64]) == bytes(b.buf[:b.n * 64])
    arr = b.array()
    assert list(arr["flags"]) == [0, 0, 0, 0, int(Flag.LAST)]
    assert np.allclose(arr["price"], [1.5, 2.5, 3.5, 4.5, 5.5])


def _levels(n: int, base: float) -> list:
    return [[f"{base + i * 0.01:.2f}", f"{1 + i % 7}.5"] for i in range(n)]


BIG = {     # venue -> a book frame of 1500 + 1500 levels (more than a batch starts with)
    "binance": lambda b, a: {"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 5, "u": 9, "b": b, "a": a}},
    "binance_usdm": lambda b, a: {"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": 5, "u": 9, "pu": 4, "b": b, "a": a}},
    "bybit": lambda b, a: {"topic": "orderbook.50.BTCUSDT", "ts": 1, "type": "delta",
                           "data": {"s": "BTCUSDT", "b": b, "a": a, "u": 9, "seq": 3}},
    "okx": lambda b, a: {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "update",
                         "data": [{"bids": b, "asks": a, "ts": "1", "checksum": 0, "prevSeqId": 8,
                                   "seqId": 9}]},
    "bitget": lambda b, a: {"action": "update", "arg": {"instType": "SPOT", "channel": "books",
                                                        "instId": "BTCUSDT"},
                            "data": [{"asks": a, "bids": b, "checksum": 5, "seq": 9, "ts": "1"}]},
    "kraken": lambda b, a: {"channel": "book", "type": "update", "data": [{
        "symbol": "BTC/USD", "checksum": 5, "timestamp": "2023-10-06T17:35:55.440295Z",
        "bids": [{"price": float(p), "qty": float(q)} for p, q in b],
        "asks": [{"price": float(p), "qty": float(q)} for p, q in a]}]},
}


@pytest.mark.parametrize("venue", sorted(BIG))
def test_decoders_grow_their_batch_for_big_messages(venue):
    """A message with more levels than the batch holds decodes whole: reserve() grows it."""
    import orjson
    bids, asks = _levels(1500, 100.0), _levels(1500, 200.0)
    dec = feeds.decoder_for(venue)
    arr = dec.decode(orjson.dumps(BIG[venue](bids, asks)), 5)
    assert len(arr) == 3000
    assert list(arr["side"][:1500]) == [int(Side.BID)] * 1500
    assert arr["price"][1499] == pytest.approx(114.99) and arr["price"][1500] == pytest.approx(200.0)
    assert list(arr["flags"]).count(int(Flag.LAST)) == 1 and arr["flags"][-1] == int(Flag.LAST)
    (ev,) = dec.book_events
    assert (ev.start, ev.end) == (0, 3000) and type(ev) is BookEvent


class _DictBook:
    """A book as dicts, the plain model the native Book must match."""

    def __init__(self):
        self.bids, self.asks = {}, {}

    def apply(self, levels):
        for side, price, size in levels:
            d = self.bids if side == 1 else self.asks
            if size:
                d[price] = size
            else:
                d.pop(price, None)

    def truncate(self, n):
        self.bids = dict(sorted(self.bids.items(), reverse=True)[:n])
        self.asks = dict(sorted(self.asks.items())[:n])

    def top(self, n):
        return sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n]


def test_native_book_matches_a_dict_book():
    """Book (sorted C arrays) keeps what a dict book keeps through inserts, updates, deletes of
    the best levels and of unknown levels, truncation, clear() and apply(); best prices, top(n),
    top_prices/top_sizes, best() and sorted_levels() read it best first."""
    rnd = random.Random(11)
    model, b = _DictBook(), Book(1)
    for step in range(3000):
        batch = RecordBatch(8)
        levels = []
        for _ in range(rnd.randrange(1, 6)):
            side = rnd.choice((1, 2))
            px = b.top_prices(1 << 30)[side - 1]       # best first
            if rnd.random() < 0.3:               # delete an existing (often the best) level
                price = px[0] if px and rnd.random() < 0.6 else round(rnd.uniform(99, 101), 2)
                size = 0.0
            else:
                price = round(rnd.uniform(99, 100.2) if side == 1 else rnd.uniform(99.8, 101), 2)
                size = round(rnd.uniform(0.1, 3), 2)
            batch.add(Kind.BOOK, 1, 0, 0, side, 0, price, size, 0)
            levels.append((side, price, size))
        b.apply_records(batch.buf, 0, batch.n)
        model.apply(levels)
        if step % 50 == 7:
            n = rnd.choice((0, 3, 10))
            b.truncate(n)
            model.truncate(n)
        if step % 700 == 300:
            b.clear()
            model = _DictBook()
            lv = [(1, 99.5, 1.0), (2, 100.5, 2.0), (1, 99.4, 0.0), (2, 100.5, 3.0)]
            b.apply(lv)
            model.apply(lv)
        bids, asks = model.top(1 << 30)
        assert b.sorted_levels() == (bids, asks) and (b.bids, b.asks) == (model.bids, model.asks)
        assert (b.best_bid, b.best_ask) == (bids[0][0] if bids else NO_BID, asks[0][0] if asks else NO_ASK)
        assert b.best() == (bids[0] if bids else (0.0, 0.0)) + (asks[0] if asks else (0.0, 0.0))
        assert b.is_crossed() == (b.best_bid >= b.best_ask)
        for n in (0, 1, 7, 30):
            assert b.top(n) == (bids[:n], asks[:n])
            assert b.top_prices(n) == ([p for p, _ in bids[:n]], [p for p, _ in asks[:n]])
            assert b.top_sizes(n) == ([s for _, s in bids[:n]], [s for _, s in asks[:n]])
        assert len(b) == len(bids) + len(asks)


def test_book_keeps_an_odd_update_id_for_python():
    """A malformed frame's id ("123", 1.5) is kept as given (the slow path compares it as it
    always did, resync() resets it); a plain int goes back to C."""
    b = Book(4)
    assert b.last_id == -1 and b.state == 1 and b.buffer == [] and b.checked_ns is None
    for odd in ("123", 1.5, 1 << 70, True):
        b.last_id = odd
        assert b.last_id is odd
    b.last_id = 77
    assert b.last_id == 77 and type(b.last_id) is int


def test_book_table_fast_update_equals_numpy_update(shm_names):
    """BookTable.update's native path writes the same slot bytes as the field-by-field one."""
    from feeds.book_table import BookTable
    table = BookTable.create(shm_names("book"), depth=5, slots=16)
    try:
        assert table._fast
        rnd = random.Random(5)
        for n_bids, n_asks, state, crossed, depth in [(0, 0, 1, False, 5), (3, 7, 0, True, 5),
                                                      (9, 2, 0, False, 5), (9, 9, 1, False, 3),
                                                      (1, 0, 0, False, 5)]:
            b = _random_book(rnd, n_bids, n_asks)
            b.state, b.crossed, b.last_id = state, crossed, rnd.randrange(-1, 1 << 40)
            table.update(b, depth, 1_700_000_000_000_000_123)
            fast = table.read(1).tobytes()
            table._fast = False
            table.update(b, depth, 1_700_000_000_000_000_123)
            table._fast = True
            assert table.read(1).tobytes() == fast
            row = table.read(1)
            assert (int(row["n_bids"]), int(row["n_asks"])) == (min(n_bids, depth), min(n_asks, depth))
    finally:
        table.close()


def test_reserve_grows_an_empty_batch():
    b = RecordBatch(0)
    buf = b.reserve(3)
    assert b.cap >= 3 and len(buf) >= 3 * 64
    b.add(Kind.TRADE, 1, 2, 3, Side.BUY, 0, 1.0, 2.0, 4)
    assert b.array()["id"][0] == 4


def _ref_bytes(ref, b: Book, depth: int, ts: int) -> bytes:
    """The slot the field-by-field (numpy) path writes for a book."""
    ref.update(b, depth, ts)
    return ref.read(b.instrument).tobytes()


@pytest.mark.parametrize("depth", [5, 3])
def test_book_table_slot_follows_random_deltas(shm_names, depth):
    """The native slot writer gives the numpy re-pack's bytes after every change: inserts and
    deletes at the best levels, sides shorter than the depth, several levels of one price in a
    batch, truncation, clear() and apply()."""
    from feeds.book_table import BookTable
    table = BookTable.create(shm_names("img"), depth=5, slots=8)
    ref = BookTable.create(shm_names("ref"), depth=5, slots=8)
    ref._fast = False
    try:
        rnd = random.Random(depth)
        b = Book(3)
        for step in range(1500):
            batch = RecordBatch(8)
            for _ in range(rnd.randrange(1, 6)):
                side = rnd.choice((1, 2))
                px = b.top_prices(1 << 30)[side - 1]
                r = rnd.random()
                if r < 0.35 and px:                 # delete, often the best level
                    price = px[0] if rnd.random() < 0.5 else rnd.choice(px)
                    size = 0.0
                elif r < 0.45:                      # delete a level that is not there
                    price, size = round(rnd.uniform(90, 110), 2), 0.0
                else:                               # a few prices only: sides stay short
                    price = round(rnd.uniform(99, 100) if side == 1 else rnd.uniform(100.01, 101), 1)
                    size = round(rnd.uniform(0.1, 3), 2)
                batch.add(Kind.BOOK, 3, 0, 0, side, 0, price, size, 0)
            b.apply_records(batch.buf, 0, batch.n)
            if step % 97 == 5:
                b.truncate(rnd.choice((2, 4, 25)))
            if step % 211 == 100:
                b.clear()
                b.apply([(1, 99.5, 1.0), (2, 100.5, 2.0)])
            b.last_id = step
            b.crossed = b.is_crossed()
            table.update(b, depth, step)
            assert table.read(3).tobytes() == _ref_bytes(ref, b, depth, step), step
    finally:
        table.close()
        ref.close()


@pytest.mark.parametrize("venue", ["binance", "bybit", "okx", "bitget"])
def test_book_table_equals_keeper_books_after_recorded_frames(shm_names, venue):
    """A burst of simulator frames through a worker with a book table: after every frame each
    book's slot holds the keeper's top N (and the very bytes a whole re-pack writes)."""
    from feeds.book_table import BookTable
    from feeds.worker import FeedWorker
    from tools.bench_feed import record_frames
    frames = record_frames(venue, 3, 1500)
    w = FeedWorker(venue, ["X"], shm_names("ring"), registry=shm_names("reg"),
                   book_table=shm_names("tbl"), ring_capacity=1 << 16)
    w._open_shm()
    ref = BookTable.create(shm_names("ref"), depth=w.table.depth, slots=64)
    ref._fast = False
    try:
        w.keeper.request_snapshot = lambda inst: None
        v = feeds.venue(venue)

        class Sock:
            incoming = got_data = False
            last_frame_ns = 0

            class conn:
                index = 0

                def rotate(reason):
                    pass
        sock = Sock()
        sock.decoder = v.decoder(w.instruments)
        seed = v.decoder(w.instruments)             # REST venues: a snapshot at the first delta
        for f in frames if w.keeper.rule.seed == "rest" else ():
            seed.decode(f)
            for ev in seed.book_events:
                if w.keeper.book(ev.instrument).state != 0:
                    w.keeper.rest_snapshot(ev.instrument, ev.first - 1, [], [])
        checked = 0
        for f in frames:
            w.on_frame(f, sock)
            for i, b in w.keeper.books.items():
                row = w.table.read(i)
                bids, asks = b.top(w.keeper.depth)
                assert w.table.levels(i) == (bids, asks)
                assert int(row["update_id"]) == b.last_id
                assert row.tobytes() == _ref_bytes(ref, b, w.keeper.depth, int(row["ts_recv"]))
                checked += 1
        assert w.ring.word("decode_errors") == 0 and w.ring.word("gaps") == 0
        assert checked > 1000 and all(b.state == 0 for b in w.keeper.books.values())
    finally:
        ref.close()
        w.writer.close()
        w.ring.close()
        w.registry.close()
        w.table.close()


def _read_slots(name: str, instrument: int, stop, bad, reads) -> None:
    """Child process: read one slot until told to stop; count reads whose levels do not all
    carry the slot's update id as their size (a torn slot)."""
    from feeds.book_table import BookTable
    t = BookTable.attach(name)
    n = torn = 0
    while not stop.is_set():
        row = t.read(instrument)
        uid = float(row["update_id"])
        nb, na = int(row["n_bids"]), int(row["n_asks"])
        sizes = list(row["bids"][:nb, 1]) + list(row["asks"][:na, 1])
        if any(s != uid for s in sizes) or (nb and row["bid_size"] != uid):
            torn += 1
        n += 1
    t.close()
    bad.value, reads.value = torn, n


def test_book_table_readers_never_see_a_torn_slot(shm_names):
    """The image is stored inside the seqlock: a reader in another process always gets one
    whole frame's slot (every level's size is set to the frame's update id here)."""
    import multiprocessing as mp
    from feeds.book_table import BookTable
    name = shm_names("torn")
    table = BookTable.create(name, depth=5, slots=8)
    ctx = mp.get_context("fork")
    stop, bad, reads = ctx.Event(), ctx.Value("q", -1), ctx.Value("q", -1)
    proc = ctx.Process(target=_read_slots, args=(name, 2, stop, bad, reads))
    try:
        b = Book(2)
        rnd = random.Random(3)
        prices = {1: [99.0, 98.0, 97.0, 96.0, 95.0, 94.0], 2: [101.0, 102.0, 103.0, 104.0, 105.0, 106.0]}
        b.last_id = 0
        table.update(b, 5, 0)
        proc.start()
        for step in range(1, 6000):
            batch = RecordBatch(16)
            book_bids, book_asks = b.bids, b.asks
            for side, px in prices.items():
                for p in px:
                    present = p in (book_bids if side == 1 else book_asks)
                    keep = rnd.random() < 0.9 if present else rnd.random() < 0.3
                    batch.add(Kind.BOOK, 2, 0, 0, side, 0, p, float(step) if keep else 0.0, step)
            b.apply_records(batch.buf, 0, batch.n)
            b.last_id = step
            table.update(b, 5, step)
    finally:
        stop.set()
        if proc.pid is not None:
            proc.join(10)
        table.close()
    assert proc.exitcode == 0
    assert reads.value > 100 and bad.value == 0
