# cython: language_level=3
"""KuCoin spot public frames -> records, in C: the rules feeds/kucoin.py's docstring states
(trade.l3match, trade.ticker, level1, trade.l2update, level2 depth snapshots; candles and
snapshot subjects and the welcome/ack/pong/error/notice/ping frames -> nothing), implemented
once, here (feeds/kucoin.py declares the venue and uses this decoder).

Exactly what the former Python decoder (orjson + d[key] + float()/int()) gave, odd input
included: documented types (decimal strings, [price, size, sequence] lists) are read in C;
anything else becomes the Python object orjson made of it (`py_value`) and goes through the
expression the Python code applied (`float(b[0])`, `row[0] != "0"`, iterating a string's
characters or a dict's keys), so Python's own rules decide. A repeated key: the last one counts,
as in a dict. Instruments are registered at the point the Python code registered them (level1
and ticker only once `data` proved an object with the looked-up keys).

Deliberate differences, on frames KuCoin never sends: a sequenceStart / sequenceEnd whose int()
leaves int64 is a DecodeError (Python put the big int into the BookEvent, which holds int64s
here; values.pxd's stricter `sequence` is for venues whose Python decoder passed the raw value
on, while this one took int() of it, so "5" stays 5); JSON nested deeper than orjson's 1024
levels is not refused when the deep part is a field never read.
"""
cimport cython
from libc.stdint cimport int64_t, uint8_t, uint32_t
from libc.string cimport memchr, memcmp

from shm._record cimport F_SNAPSHOT, K_BOOK, K_TRADE, S_ASK, S_BID, put_level, put_quote, tickring_record

from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_is_arr, yyjson_is_obj, yyjson_is_str, yyjson_val)
from .values cimport (dbl, key_is, level_pair, ms_to_ns, ms_to_ns_late, need, py_items, py_pair,
                      side_of, text_is, truthy, value_of, whole)

from feeds.decoder import DecodeError


cdef inline bint is_control(yyjson_val *t) noexcept:
    """The frame types answered with nothing: welcome (the greeting the worker waits for before
    subscribing), ack, pong (the answer to our ping), error, notice, ping."""
    if not yyjson_is_str(t):
        return False
    return (key_is(t, b"welcome", 7) or key_is(t, b"ack", 3) or key_is(t, b"pong", 4) or
            key_is(t, b"error", 5) or key_is(t, b"notice", 6) or key_is(t, b"ping", 4))


cdef inline bint is_ignored(yyjson_val *s) noexcept:
    """Subjects subscribed to elsewhere or never: no records."""
    return (text_is(s, b"trade.candles.update", 20) or text_is(s, b"trade.candles.add", 17) or
            text_is(s, b"trade.snapshot", 14))


cdef inline yyjson_val *object_data(yyjson_val *d) except NULL:
    """data as the Python code read it (d["x"], d.get): an object, else the TypeError there."""
    if not yyjson_is_obj(d):
        raise TypeError(f"data {py_value(d)!r:.60} is not an object")
    return d


cdef int top_fields(yyjson_val *d, yyjson_val **bids, yyjson_val **asks,
                    yyjson_val **stamp) except -1:
    """level1 and level2 data: its bids and asks (d["bids"], d["asks"]) and timestamp (NULL:
    absent)."""
    cdef yyjson_val *k
    cdef yyjson_val *v
    cdef size_t i
    bids[0] = asks[0] = stamp[0] = NULL
    object_data(d)
    k = unsafe_yyjson_get_first(d)
    for i in range(unsafe_yyjson_get_len(d)):
        v = value_of(k)
        if key_is(k, b"bids", 4):
            bids[0] = v
        elif key_is(k, b"asks", 4):
            asks[0] = v
        elif key_is(k, b"timestamp", 9):
            stamp[0] = v
        k = unsafe_yyjson_get_next(v)
    need(bids[0], "bids")
    need(asks[0], "asks")
    return 0


cdef object py_row(object row):
    """A change row that is no list of 3+ values, as the Python code read it: None (no record)
    when row[0] is the string "0", else (float(row[0]), float(row[1]), int(row[2]))."""
    if row[0] != "0":
        return float(row[0]), float(row[1]), int(row[2])
    return None


@cython.final
cdef class KucoinDecoder(NativeDecoder):
    """KuCoin spot public frames of one connection -> records (see feeds/kucoin.py)."""

    venue = "kucoin"
    default_market = "spot"

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *type_ = NULL
        cdef yyjson_val *subject = NULL
        cdef yyjson_val *topic = NULL
        cdef yyjson_val *data = NULL
        cdef const char *s
        cdef const char *colon
        cdef size_t i, tn
        if not yyjson_is_obj(root):
            raise TypeError(f"a frame that is not an object: {py_value(root)!r:.60}")
        k = unsafe_yyjson_get_first(root)
        for i in range(unsafe_yyjson_get_len(root)):
            v = value_of(k)
            if key_is(k, b"type", 4):
                type_ = v
            elif key_is(k, b"subject", 7):
                subject = v
            elif key_is(k, b"topic", 5):
                topic = v
            elif key_is(k, b"data", 4):
                data = v
            k = unsafe_yyjson_get_next(v)
        if not text_is(type_, b"message", 7):
            if is_control(type_):
                return 0
            raise DecodeError(f"kucoin: unexpected message type "
                              f"{py_value(type_) if type_ != NULL else None!r:.60}")
        need(subject, "subject")
        if is_ignored(subject):
            return 0
        # the symbol follows the topic's first ":" ("/market/match:BTC-USDT"); a topic that is no
        # string failed in Python too (no .index, or an unhashable list for a symbol)
        need(topic, "topic")
        if not yyjson_is_str(topic):
            raise TypeError(f"topic {py_value(topic)!r:.60} is not a string")
        s = unsafe_yyjson_get_str(topic)
        tn = unsafe_yyjson_get_len(topic)
        colon = <const char *>memchr(s, 58, tn)
        if colon == NULL:
            raise ValueError("topic has no ':'")
        s = colon + 1
        tn -= <size_t>(colon + 1 - unsafe_yyjson_get_str(topic))
        need(data, "data")
        if text_is(subject, b"trade.l3match", 13):
            return self.match(s, tn, data, ts_recv)
        if text_is(subject, b"trade.l2update", 14):
            return self.l2update(s, tn, data, ts_recv)
        if text_is(subject, b"level1", 6):
            return self.level1(s, tn, data, ts_recv)
        if text_is(subject, b"trade.ticker", 12):
            return self.ticker(s, tn, data, ts_recv)
        if text_is(subject, b"level2", 6):
            return self.depth(s, tn, data, ts_recv)
        raise DecodeError(f"kucoin: unexpected subject {py_value(subject)!r:.60}")

    # -- subjects ----------------------------------------------------------------------------------
    cdef int match(self, const char *sym, size_t sn, yyjson_val *d, int64_t ts_recv) except -1:
        """trade.l3match -> TRADE: time in ns, side = the taker's, id = int(sequence)."""
        cdef uint32_t inst = self.inst(sym, sn)         # registered before data is read
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *time = NULL
        cdef yyjson_val *side = NULL
        cdef yyjson_val *price = NULL
        cdef yyjson_val *size = NULL
        cdef yyjson_val *seq = NULL
        cdef size_t i
        cdef int64_t ts, trade_id
        cdef int sd
        cdef double px, sz
        object_data(d)
        k = unsafe_yyjson_get_first(d)
        for i in range(unsafe_yyjson_get_len(d)):
            v = value_of(k)
            if key_is(k, b"time", 4):
                time = v
            elif key_is(k, b"side", 4):
                side = v
            elif key_is(k, b"price", 5):
                price = v
            elif key_is(k, b"size", 4):
                size = v
            elif key_is(k, b"sequence", 8):
                seq = v
            k = unsafe_yyjson_get_next(v)
        ts = whole(need(time, "time"))
        sd = side_of(need(side, "side"))
        px = dbl(need(price, "price"))
        sz = dbl(need(size, "size"))
        trade_id = whole(need(seq, "sequence"))
        put_level(self.room(1), ts, ts_recv, inst, K_TRADE, sd, 0, px, sz, 0.0, trade_id)
        self.out.n += 1
        return 0

    cdef int l2update(self, const char *sym, size_t sn, yyjson_val *d, int64_t ts_recv) except -1:
        """trade.l2update -> BOOK per change row (bids, then asks), id = the row's sequence; a
        row whose price is "0" only advances the sequence (no record). One BookEvent."""
        cdef uint32_t inst = self.inst(sym, sn)
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *time = NULL
        cdef yyjson_val *changes = NULL
        cdef yyjson_val *first_v = NULL
        cdef yyjson_val *last_v = NULL
        cdef yyjson_val *bids = NULL
        cdef yyjson_val *asks = NULL
        cdef size_t i
        cdef int64_t ts = 0, first, last
        cdef bint big
        cdef Py_ssize_t start
        self.note_book(inst)
        object_data(d)
        k = unsafe_yyjson_get_first(d)
        for i in range(unsafe_yyjson_get_len(d)):
            v = value_of(k)
            if key_is(k, b"time", 4):
                time = v
            elif key_is(k, b"changes", 7):
                changes = v
            elif key_is(k, b"sequenceStart", 13):
                first_v = v
            elif key_is(k, b"sequenceEnd", 11):
                last_v = v
            k = unsafe_yyjson_get_next(v)
        big = ms_to_ns_late(need(time, "time"), &ts)
        need(changes, "changes")
        if not yyjson_is_obj(changes):
            raise TypeError(f"changes {py_value(changes)!r:.60} is not an object")
        k = unsafe_yyjson_get_first(changes)
        for i in range(unsafe_yyjson_get_len(changes)):
            v = value_of(k)
            if key_is(k, b"bids", 4):
                bids = v
            elif key_is(k, b"asks", 4):
                asks = v
            k = unsafe_yyjson_get_next(v)
        start = self.out.n
        self.rows(need(bids, "bids"), S_BID, ts, big, inst, ts_recv)
        self.rows(need(asks, "asks"), S_ASK, ts, big, inst, ts_recv)
        # int() of them, as the Python code read them ("5" and 5.5 are 5); beyond int64: refused
        first = whole(need(first_v, "sequenceStart"))
        last = whole(need(last_v, "sequenceEnd"))
        self.push_event(inst, start, self.out.n, False, first, last, -1, False, 0)
        return 0

    cdef int rows(self, yyjson_val *rows, uint8_t side, int64_t ts, bint big, uint32_t inst,
                  int64_t ts_recv) except -1:
        """One side's change rows -> BOOK records at out.n (out.n is moved past them)."""
        cdef tickring_record *r
        cdef yyjson_val *row = NULL
        cdef yyjson_val *x
        cdef Py_ssize_t count, i, j = 0
        cdef double px, sz
        cdef int64_t seq
        cdef list odd = None
        if yyjson_is_arr(rows):
            count = unsafe_yyjson_get_len(rows)
            row = unsafe_yyjson_get_first(rows)
        else:
            odd = py_items(rows)
            count = len(odd)
        r = self.room(count)
        for i in range(count):
            if odd is None and yyjson_is_arr(row) and unsafe_yyjson_get_len(row) >= 3:
                x = unsafe_yyjson_get_first(row)
                if text_is(x, b"0", 1):          # price "0": the sequence advances, no level
                    row = unsafe_yyjson_get_next(row)
                    continue
                px = dbl(x)
                x = unsafe_yyjson_get_next(x)
                sz = dbl(x)
                seq = whole(unsafe_yyjson_get_next(x))
            else:
                t = py_row(odd[i] if odd is not None else py_value(row))
                if t is None:
                    if odd is None:
                        row = unsafe_yyjson_get_next(row)
                    continue
                px, sz, seq = t
            if big:
                raise OverflowError("time out of range")
            put_level(r + j, ts, ts_recv, inst, K_BOOK, side, 0, px, sz, 0.0, seq)
            j += 1
            if odd is None:
                row = unsafe_yyjson_get_next(row)
        self.out.n += j
        return 0

    cdef int level1(self, const char *sym, size_t sn, yyjson_val *d, int64_t ts_recv) except -1:
        """level1 -> QUOTE of bids/asks = [price, size]."""
        cdef yyjson_val *bids
        cdef yyjson_val *asks
        cdef yyjson_val *stamp
        cdef uint32_t inst
        cdef int64_t ts
        cdef double bp, bs, ap, az
        top_fields(d, &bids, &asks, &stamp)
        inst = self.inst(sym, sn)                      # registered once bids and asks exist
        ts = ms_to_ns(need(stamp, "timestamp"))
        level_pair(bids, &bp, &bs)
        level_pair(asks, &ap, &az)
        put_quote(self.room(1), ts, ts_recv, inst, 0, bp, bs, ap, az)
        self.out.n += 1
        return 0

    cdef int ticker(self, const char *sym, size_t sn, yyjson_val *d, int64_t ts_recv) except -1:
        """trade.ticker -> QUOTE of bestBid/bestBidSize/bestAsk/bestAskSize; ts = "Time" (the
        documented spelling) or "time" in ms, whichever is set, else ts_recv."""
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *Time = NULL
        cdef yyjson_val *time = NULL
        cdef yyjson_val *bp = NULL
        cdef yyjson_val *bs = NULL
        cdef yyjson_val *ap = NULL
        cdef yyjson_val *az = NULL
        cdef size_t i
        cdef uint32_t inst
        cdef int64_t ts
        cdef double bid, bid_size, ask, ask_size
        object_data(d)
        k = unsafe_yyjson_get_first(d)
        for i in range(unsafe_yyjson_get_len(d)):
            v = value_of(k)
            if key_is(k, b"Time", 4):
                Time = v
            elif key_is(k, b"time", 4):
                time = v
            elif key_is(k, b"bestBid", 7):
                bp = v
            elif key_is(k, b"bestBidSize", 11):
                bs = v
            elif key_is(k, b"bestAsk", 7):
                ap = v
            elif key_is(k, b"bestAskSize", 11):
                az = v
            k = unsafe_yyjson_get_next(v)
        inst = self.inst(sym, sn)
        if not truthy(Time):                           # d.get("Time") or d.get("time")
            Time = time
        ts = ms_to_ns(Time) if truthy(Time) else ts_recv
        bid = dbl(need(bp, "bestBid"))
        bid_size = dbl(need(bs, "bestBidSize"))
        ask = dbl(need(ap, "bestAsk"))
        ask_size = dbl(need(az, "bestAskSize"))
        put_quote(self.room(1), ts, ts_recv, inst, 0, bid, bid_size, ask, ask_size)
        self.out.n += 1
        return 0

    cdef int depth(self, const char *sym, size_t sn, yyjson_val *d, int64_t ts_recv) except -1:
        """level2 (level2Depth5/50) -> BOOK snapshot levels, bids then asks (id 0; no sequence)."""
        cdef uint32_t inst = self.inst(sym, sn)
        cdef yyjson_val *bids
        cdef yyjson_val *asks
        cdef yyjson_val *stamp
        cdef int64_t ts = 0
        cdef bint big
        cdef Py_ssize_t start, nb, na
        cdef list bids_py = None, asks_py = None
        cdef tickring_record *r
        self.note_book(inst)
        top_fields(d, &bids, &asks, &stamp)
        big = ms_to_ns_late(need(stamp, "timestamp"), &ts)
        if yyjson_is_arr(bids):
            nb = unsafe_yyjson_get_len(bids)
        else:
            bids_py = py_items(bids)
            nb = len(bids_py)
        if yyjson_is_arr(asks):
            na = unsafe_yyjson_get_len(asks)
        else:
            asks_py = py_items(asks)
            na = len(asks_py)
        if big and nb + na:
            raise OverflowError(f"timestamp {py_value(stamp)!r} ms out of range")
        start = self.out.n
        r = self.room(nb + na)
        levels(r, bids, bids_py, nb, S_BID, ts, inst, ts_recv)
        levels(r + nb, asks, asks_py, na, S_ASK, ts, inst, ts_recv)
        self.out.n = start + nb + na
        self.push_event(inst, start, start + nb + na, True, -1, -1, -1, False, 0)
        return 0


cdef int levels(tickring_record *r, yyjson_val *levels, list levels_py, Py_ssize_t n, uint8_t side,
                int64_t ts, uint32_t inst, int64_t ts_recv) except -1:
    """One side's snapshot levels -> BOOK records r[0:n] (a JSON array, or levels_py: the items
    of any other shape)."""
    cdef yyjson_val *lv = NULL
    cdef Py_ssize_t i
    cdef double px, sz
    if levels_py is None:
        lv = unsafe_yyjson_get_first(levels)
    for i in range(n):
        if levels_py is None:
            level_pair(lv, &px, &sz)
            lv = unsafe_yyjson_get_next(lv)
        else:
            py_pair(levels_py[i], &px, &sz)
        put_level(r + i, ts, ts_recv, inst, K_BOOK, side, F_SNAPSHOT, px, sz, 0.0, 0)
    return 0
