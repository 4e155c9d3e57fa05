# cython: language_level=3
"""Coinbase Advanced Trade (and legacy Exchange feed) frames -> records, in C: the rules
feeds/coinbase.py's docstring states (market_trades, ticker, l2_data, the sequence_num gap rule
with its per-connection state, the Exchange feed's match/ticker/snapshot/l2update, control
channels -> nothing), implemented once, here (feeds/coinbase.py declares the venue).

The records, book events, notices and errors are what the former Python decoder (orjson, dict
lookups, float(), feeds.isotime.iso_ns) gave, odd input included: a repeated key counts once,
the last one; a number where a string is documented is read as float() read it; where Python
iterated a string or an object as a level list, a rare path does the same in Python; timestamps
of another form than the venue's ("...T20:19:35.396Z") go to iso_ns() itself; a time beyond
int64 fails where a record packs it, so a message without records still passes. Decided
differently, on purpose (frames Coinbase never sends):
- sequence_num must be an integer (a bool counts): Python kept a "7" or a 7.5 as the
  connection's last sequence and failed on every later frame, or packed it into a book record;
  here that frame alone is malformed and the state is left as it was.
- product_id must be a string: Python registered a number or null as a symbol (which the shm
  registry refuses anyway, normalize() needs a str).
"""
cimport cython
from libc.stdint cimport INT64_MAX, int64_t, uint32_t

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_TRADE, S_ASK, S_BID, S_BUY, S_SELL, put_level,
                          put_quote, tickring_record)

from .decoder cimport NativeDecoder, py_value
from .insttable cimport InstTable, inst_slot, inst_table_free, inst_table_init
from .isotime cimport iso_ns_text
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_uint, yyjson_is_arr, yyjson_is_bool,
                    yyjson_is_null, yyjson_is_obj, yyjson_is_sint, yyjson_is_str, yyjson_is_uint,
                    yyjson_val)
from .values cimport (dbl, id_digits, iso_stamp, items, key_is, level_pair, member, need, py_pair,
                      sequence, side_of, text_is, time_packable, truthy, value_of, whole)

from feeds.book import LOST as _LOST
from feeds.decoder import DecodeError
from feeds.wire import id_from_str

cdef int64_t LOST = _LOST        # BookEvent.prev of a book message after messages were lost

# channels and Exchange-feed message types that carry nothing decoded here
IGNORED = (b"heartbeats", b"subscriptions", b"status", b"candles", b"user",
           b"futures_balance_summary")
EXCHANGE_IGNORED = (b"error", b"subscriptions", b"heartbeat", b"status", b"received", b"open",
                    b"done", b"change", b"activate")


cdef bint one_of(yyjson_val *v, tuple names) noexcept:
    """v is a string equal to one of names (bytes)."""
    if not yyjson_is_str(v):
        return False
    for name in names:
        if key_is(v, <bytes>name, len(<bytes>name)):
            return True
    return False


cdef int book_side(yyjson_val *v) except -1:
    """{"bid": BID, "offer": ASK, "ask": ASK}[v]."""
    if text_is(v, b"bid", 3):
        return S_BID
    if text_is(v, b"offer", 5) or text_is(v, b"ask", 3):
        return S_ASK
    raise KeyError(f"book side {py_value(v)!r:.60}")


cdef int stamp(yyjson_val *v, int64_t *ns) except -1:
    """iso_ns(v) into ns[0]: 0; 1 when beyond int64 (the caller raises where it packs a record:
    packable). Errors call it "time"."""
    return iso_stamp(v, ns, b"time")


cdef inline int packable(int over) except -1:
    return time_packable(over, b"time")


cdef int64_t trade_id(yyjson_val *v) except? -1:
    """feeds.wire.id_from_str(v): decimal digits are the id, other text a stable hash, an
    integer itself."""
    cdef int64_t x
    if yyjson_is_str(v):
        if id_digits(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), &x):
            return x
        return id_from_str(py_value(v))
    if yyjson_is_uint(v) or yyjson_is_sint(v) or yyjson_is_bool(v):
        return whole(v)                    # an int is itself (int64 or OverflowError, as packed)
    raise TypeError(f"trade_id {py_value(v)!r:.60} is no str or int")    # no .isdigit()


cdef inline int take(object level, Py_ssize_t i, double *out) except -1:
    """float(level[i]) of a level of an odd shape, by Python's rules (a string's characters...)."""
    out[0] = float(level[i])
    return 0


cdef struct BookSeq:
    uint32_t inst            # 0: an empty slot
    int64_t seq              # sequence_num of the instrument's last l2_data event (-1: none yet)


@cython.final
cdef class CoinbaseDecoder(NativeDecoder):
    """Coinbase frames -> records (feeds/coinbase.py's docstring says what and how). One per
    connection: it keeps the connection's sequence_num state."""

    venue = "coinbase"
    default_market = "spot"

    cdef public int64_t last_sequence    # sequence_num of the previous frame (-1: none yet)
    cdef public int64_t sequence_gaps    # breaks seen in sequence_num
    cdef int64_t run_start               # first sequence_num of the current unbroken run
    cdef InstTable books                 # instrument -> its BookSeq (last l2 sequence_num)
    cdef bint side_is_maker              # feeds.coinbase.SIDE_IS_MAKER: trade sides are inverted

    def __cinit__(self, *args, **kwargs):
        inst_table_init(&self.books, sizeof(BookSeq))
        self.last_sequence = -1
        self.sequence_gaps = 0
        self.run_start = 0

    def __dealloc__(self):
        inst_table_free(&self.books)

    def __init__(self, instruments=None, market=None):
        super().__init__(instruments, market)
        from feeds.coinbase import SIDE_IS_MAKER      # the venue file holds the switch
        self.side_is_maker = SIDE_IS_MAKER

    cdef inline int taker(self, yyjson_val *side) except -1:
        """TRADE side of a match's documented `side` (the maker's, see feeds/coinbase.py)."""
        cdef int s = side_of(side)
        if self.side_is_maker:
            return S_SELL if s == S_BUY else S_BUY
        return s

    cdef uint32_t inst_of(self, yyjson_val *product_id) except 0:
        if not yyjson_is_str(product_id):
            raise TypeError(f"product_id {py_value(product_id)!r:.60} is not a string")
        return self.inst(unsafe_yyjson_get_str(product_id), unsafe_yyjson_get_len(product_id))

    cdef int64_t book_prev(self, uint32_t inst, int64_t seq) except? -3:
        """BookEvent.prev of an l2 event of inst at seq: the instrument's previous sequence_num
        (-1 for its first) if nothing was lost since, else LOST; seq becomes its last."""
        cdef bint fresh
        cdef BookSeq *slot = <BookSeq *>inst_slot(&self.books, inst, &fresh)
        cdef int64_t pb
        if fresh:
            slot.seq = -1
        pb = slot.seq
        slot.seq = seq
        return pb if (pb < 0 or pb >= self.run_start) else LOST

    # -- a frame ---------------------------------------------------------------------------------
    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *channel = NULL
        cdef yyjson_val *seq = NULL
        cdef yyjson_val *events = NULL
        cdef yyjson_val *timestamp = NULL
        cdef size_t i
        cdef int64_t s = -1, last
        if not yyjson_is_obj(root):
            raise TypeError(f"not an object: {py_value(root)!r:.60}")
        k = unsafe_yyjson_get_first(root)
        for i in range(unsafe_yyjson_get_len(root)):
            v = value_of(k)
            if key_is(k, b"channel", 7):
                channel = v
            elif key_is(k, b"sequence_num", 12):
                seq = v
            elif key_is(k, b"events", 6):
                events = v
            elif key_is(k, b"timestamp", 9):
                timestamp = v
            k = unsafe_yyjson_get_next(v)
        # the connection's sequence: every frame counts, whatever it carries (and a frame that
        # fails later still moved it, as it did in Python)
        if seq != NULL and not yyjson_is_null(seq):
            sequence(seq, &s, False)
            last = self.last_sequence
            if last >= 0 and (last == INT64_MAX or s != last + 1):
                self.sequence_gaps += 1
                self.run_start = s
                self.notices.append("sequence_gap")
            self.last_sequence = s
        if channel == NULL or yyjson_is_null(channel):
            return self.exchange(root, ts_recv)
        if yyjson_is_str(channel):
            if key_is(channel, b"market_trades", 13):
                return self.trades(events, ts_recv)
            if key_is(channel, b"l2_data", 7) or key_is(channel, b"level2", 6):
                return self.book(timestamp, events, s, ts_recv)
            if key_is(channel, b"ticker", 6) or key_is(channel, b"ticker_batch", 12):
                return self.ticker(timestamp, events, ts_recv)
            if one_of(channel, IGNORED):
                return 0
        raise DecodeError(f"coinbase: unexpected channel {py_value(channel)!r:.60}")

    # -- Advanced Trade channels (records are written in place; stamps parsed in C) --------------
    cdef int trades(self, yyjson_val *events, int64_t ts_recv) except -1:
        """market_trades -> TRADE per trade (side = the aggressor's), ts = the trade's time."""
        cdef yyjson_val *ev
        cdef yyjson_val *t
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *side
        cdef yyjson_val *product_id
        cdef yyjson_val *time
        cdef yyjson_val *price
        cdef yyjson_val *size
        cdef yyjson_val *tid
        cdef Py_ssize_t nev = items(need(events, "events"), &ev), count, i, j
        cdef size_t x
        cdef tickring_record *r
        cdef uint32_t inst
        cdef int sd, over
        cdef int64_t ts, i64
        cdef double px, sz
        for i in range(nev):
            if not yyjson_is_obj(ev):
                raise TypeError(f"event {py_value(ev)!r:.60} is not an object")
            count = items(need(member(ev, b"trades", 6), "trades"), &t)
            r = self.room(count)
            for j in range(count):
                if not yyjson_is_obj(t):
                    raise TypeError(f"trade {py_value(t)!r:.60} is not an object")
                side = product_id = time = price = size = tid = NULL
                k = unsafe_yyjson_get_first(t)
                for x in range(unsafe_yyjson_get_len(t)):
                    v = value_of(k)
                    if key_is(k, b"side", 4):
                        side = v
                    elif key_is(k, b"product_id", 10):
                        product_id = v
                    elif key_is(k, b"time", 4):
                        time = v
                    elif key_is(k, b"price", 5):
                        price = v
                    elif key_is(k, b"size", 4):
                        size = v
                    elif key_is(k, b"trade_id", 8):
                        tid = v
                    k = unsafe_yyjson_get_next(v)
                sd = self.taker(need(side, "side"))
                inst = self.inst_of(need(product_id, "product_id"))
                over = stamp(need(time, "time"), &ts)
                px = dbl(need(price, "price"))
                sz = dbl(need(size, "size"))
                i64 = trade_id(need(tid, "trade_id"))
                packable(over)
                put_level(r + j, ts, ts_recv, inst, K_TRADE, sd, 0, px, sz, 0.0, i64)
                t = unsafe_yyjson_get_next(t)
            self.out.n += count
            ev = unsafe_yyjson_get_next(ev)
        return 0

    cdef int ticker(self, yyjson_val *timestamp, yyjson_val *events, int64_t ts_recv) except -1:
        """ticker / ticker_batch -> QUOTE per ticker with a best bid (ticker_batch has none),
        ts = the envelope's timestamp."""
        cdef yyjson_val *ev
        cdef yyjson_val *t
        cdef yyjson_val *nxt
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *bid
        cdef yyjson_val *product_id
        cdef yyjson_val *bid_qty
        cdef yyjson_val *ask
        cdef yyjson_val *ask_qty
        cdef int64_t ts
        cdef int over = stamp(need(timestamp, "timestamp"), &ts)
        cdef Py_ssize_t nev = items(need(events, "events"), &ev), count, i, j, w
        cdef size_t x
        cdef tickring_record *r
        cdef uint32_t inst
        cdef double bp, bq, ap, aq
        for i in range(nev):
            if not yyjson_is_obj(ev):
                raise TypeError(f"event {py_value(ev)!r:.60} is not an object")
            count = items(need(member(ev, b"tickers", 7), "tickers"), &t)
            r = self.room(count)
            w = 0
            for j in range(count):
                nxt = unsafe_yyjson_get_next(t)
                if not yyjson_is_obj(t):
                    raise TypeError(f"ticker {py_value(t)!r:.60} is not an object")
                bid = product_id = bid_qty = ask = ask_qty = NULL
                k = unsafe_yyjson_get_first(t)
                for x in range(unsafe_yyjson_get_len(t)):
                    v = value_of(k)
                    if key_is(k, b"best_bid", 8):
                        bid = v
                    elif key_is(k, b"product_id", 10):
                        product_id = v
                    elif key_is(k, b"best_bid_quantity", 17):
                        bid_qty = v
                    elif key_is(k, b"best_ask", 8):
                        ask = v
                    elif key_is(k, b"best_ask_quantity", 17):
                        ask_qty = v
                    k = unsafe_yyjson_get_next(v)
                t = nxt
                if not truthy(bid):
                    continue
                inst = self.inst_of(need(product_id, "product_id"))
                bp = dbl(bid)
                bq = dbl(need(bid_qty, "best_bid_quantity"))
                ap = dbl(need(ask, "best_ask"))
                aq = dbl(need(ask_qty, "best_ask_quantity"))
                packable(over)
                put_quote(r + w, ts, ts_recv, inst, 0, bp, bq, ap, aq)
                w += 1
            self.out.n += w
            ev = unsafe_yyjson_get_next(ev)
        return 0

    cdef int book(self, yyjson_val *timestamp, yyjson_val *events, int64_t seq,
                  int64_t ts_recv) except -1:
        """l2_data -> BOOK per update (id = sequence_num) and a BookEvent per event, prev by
        the sequence rule; ts = the envelope's timestamp."""
        cdef yyjson_val *ev
        cdef yyjson_val *u
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *product_id
        cdef yyjson_val *typ
        cdef yyjson_val *updates
        cdef yyjson_val *side
        cdef yyjson_val *price
        cdef yyjson_val *qty
        cdef int64_t ts
        cdef int over = stamp(need(timestamp, "timestamp"), &ts)
        cdef Py_ssize_t nev = items(need(events, "events"), &ev), count, i, j, start
        cdef size_t x
        cdef tickring_record *r
        cdef uint32_t inst
        cdef bint snap
        cdef int sd
        cdef double px, sz
        for i in range(nev):
            if not yyjson_is_obj(ev):
                raise TypeError(f"event {py_value(ev)!r:.60} is not an object")
            product_id = typ = updates = NULL
            k = unsafe_yyjson_get_first(ev)
            for x in range(unsafe_yyjson_get_len(ev)):
                v = value_of(k)
                if key_is(k, b"product_id", 10):
                    product_id = v
                elif key_is(k, b"type", 4):
                    typ = v
                elif key_is(k, b"updates", 7):
                    updates = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(need(product_id, "product_id"))
            self.note_book(inst)
            snap = text_is(need(typ, "type"), b"snapshot", 8)
            count = items(need(updates, "updates"), &u)
            start = self.out.n
            r = self.room(count)
            for j in range(count):
                if not yyjson_is_obj(u):
                    raise TypeError(f"update {py_value(u)!r:.60} is not an object")
                side = price = qty = NULL
                k = unsafe_yyjson_get_first(u)
                for x in range(unsafe_yyjson_get_len(u)):
                    v = value_of(k)
                    if key_is(k, b"side", 4):
                        side = v
                    elif key_is(k, b"price_level", 11):
                        price = v
                    elif key_is(k, b"new_quantity", 12):
                        qty = v
                    k = unsafe_yyjson_get_next(v)
                sd = book_side(need(side, "side"))
                px = dbl(need(price, "price_level"))
                sz = dbl(need(qty, "new_quantity"))
                packable(over)
                put_level(r + j, ts, ts_recv, inst, K_BOOK, sd, F_SNAPSHOT if snap else 0, px, sz,
                          0.0, seq)
                u = unsafe_yyjson_get_next(u)
            self.out.n = start + count
            self.push_event(inst, start, start + count, snap, seq, seq, self.book_prev(inst, seq),
                            False, 0)
            ev = unsafe_yyjson_get_next(ev)
        return 0

    # -- the legacy Exchange feed (keyed by `type`, no envelope; replayed captures) --------------
    cdef int exchange(self, yyjson_val *m, int64_t ts_recv) except -1:
        cdef yyjson_val *t = need(member(m, b"type", 4), "type")
        cdef yyjson_val *bid
        cdef yyjson_val *tm
        cdef uint32_t inst
        cdef int sd, over = 0
        cdef int64_t ts, tid
        cdef double px, sz, bq, ap, aq
        cdef Py_ssize_t start
        cdef bint snap
        if text_is(t, b"match", 5) or text_is(t, b"last_match", 10):
            sd = self.taker(need(member(m, b"side", 4), "side"))
            inst = self.inst_of(need(member(m, b"product_id", 10), "product_id"))
            over = stamp(need(member(m, b"time", 4), "time"), &ts)
            px = dbl(need(member(m, b"price", 5), "price"))
            sz = dbl(need(member(m, b"size", 4), "size"))
            tid = trade_id(need(member(m, b"trade_id", 8), "trade_id"))
            packable(over)
            put_level(self.room(1), ts, ts_recv, inst, K_TRADE, sd, 0, px, sz, 0.0, tid)
            self.out.n += 1
        elif text_is(t, b"ticker", 6):
            bid = member(m, b"best_bid", 8)
            if truthy(bid):
                inst = self.inst_of(need(member(m, b"product_id", 10), "product_id"))
                tm = member(m, b"time", 4)
                if truthy(tm):
                    over = stamp(tm, &ts)
                else:
                    ts = ts_recv
                px = dbl(bid)
                bq = dbl(need(member(m, b"best_bid_size", 13), "best_bid_size"))
                ap = dbl(need(member(m, b"best_ask", 8), "best_ask"))
                aq = dbl(need(member(m, b"best_ask_size", 13), "best_ask_size"))
                packable(over)
                put_quote(self.room(1), ts, ts_recv, inst, 0, px, bq, ap, aq)
                self.out.n += 1
        elif text_is(t, b"snapshot", 8) or text_is(t, b"l2update", 8):
            snap = text_is(t, b"snapshot", 8)
            inst = self.inst_of(need(member(m, b"product_id", 10), "product_id"))
            self.note_book(inst)
            tm = member(m, b"time", 4)
            if truthy(tm):
                over = stamp(tm, &ts)
            else:
                ts = ts_recv
            start = self.out.n
            if snap:
                self.levels(need(member(m, b"bids", 4), "bids"), inst, ts, over, ts_recv, S_BID)
                self.levels(need(member(m, b"asks", 4), "asks"), inst, ts, over, ts_recv, S_ASK)
            else:
                self.changes(need(member(m, b"changes", 7), "changes"), inst, ts, over, ts_recv)
            # level2 on the Exchange feed guarantees delivery and carries no sequence
            self.push_event(inst, start, self.out.n, snap, -1, -1, -1, False, 0)
        elif not one_of(t, EXCHANGE_IGNORED):
            raise DecodeError(f"coinbase: unexpected message type {py_value(t)!r:.60}")
        return 0

    cdef int levels(self, yyjson_val *lvs, uint32_t inst, int64_t ts, int over, int64_t ts_recv,
                    int side) except -1:
        """Exchange snapshot bids/asks [[price, size], ...] -> BOOK (SNAPSHOT)."""
        cdef yyjson_val *lv
        cdef Py_ssize_t count, i
        cdef tickring_record *r
        cdef double px, sz
        if not yyjson_is_arr(lvs):
            for o in py_value(lvs):          # a string's characters, an object's keys: Python's way
                py_pair(o, &px, &sz)
                packable(over)
                put_level(self.room(1), ts, ts_recv, inst, K_BOOK, side, F_SNAPSHOT, px, sz, 0.0, 0)
                self.out.n += 1
            return 0
        count = unsafe_yyjson_get_len(lvs)
        lv = unsafe_yyjson_get_first(lvs)
        r = self.room(count)
        for i in range(count):
            level_pair(lv, &px, &sz)
            packable(over)
            put_level(r + i, ts, ts_recv, inst, K_BOOK, side, F_SNAPSHOT, px, sz, 0.0, 0)
            lv = unsafe_yyjson_get_next(lv)
        self.out.n += count
        return 0

    cdef int changes(self, yyjson_val *cs, uint32_t inst, int64_t ts, int over,
                     int64_t ts_recv) except -1:
        """Exchange l2update changes [["buy"|"sell", price, size], ...] -> BOOK."""
        cdef yyjson_val *c
        cdef yyjson_val *a
        cdef Py_ssize_t count, i
        cdef tickring_record *r
        cdef int side
        cdef double px, sz
        if not yyjson_is_arr(cs):
            for o in py_value(cs):           # a string's characters, an object's keys: Python's way
                side = S_BID if o[0] == "buy" else S_ASK
                take(o, 1, &px)
                take(o, 2, &sz)
                packable(over)
                put_level(self.room(1), ts, ts_recv, inst, K_BOOK, side, 0, px, sz, 0.0, 0)
                self.out.n += 1
            return 0
        count = unsafe_yyjson_get_len(cs)
        c = unsafe_yyjson_get_first(cs)
        r = self.room(count)
        for i in range(count):
            if yyjson_is_arr(c) and unsafe_yyjson_get_len(c) >= 3:
                a = unsafe_yyjson_get_first(c)
                side = S_BID if text_is(a, b"buy", 3) else S_ASK
                a = unsafe_yyjson_get_next(a)
                px = dbl(a)
                sz = dbl(unsafe_yyjson_get_next(a))
            else:
                o = py_value(c)
                side = S_BID if o[0] == "buy" else S_ASK
                take(o, 1, &px)
                take(o, 2, &sz)
            packable(over)
            put_level(r + i, ts, ts_recv, inst, K_BOOK, side, 0, px, sz, 0.0, 0)
            c = unsafe_yyjson_get_next(c)
        self.out.n += count
        return 0


def parse_iso(bytes text):
    """isotime.pxd's iso_ns_text (what this decoder stamps records with), for tests: the ns, or
    None where the time does not fit int64."""
    cdef int64_t ns
    if iso_ns_text(text, len(text), &ns):
        return None
    return ns
