# cython: language_level=3
"""OKX v5 public frames -> records, in C: the rules feeds/okx.py's docstring lists, implemented
once, here (feeds/okx.py declares the venue and uses this decoder).

The result is exactly what the former Python decoder (orjson + dict lookups + float()/int())
gave, odd inputs included, because every value takes one of two paths: the documented type
(decimal strings, arrays of levels, integer sequence ids) is read in C; anything else is turned
into the Python object orjson would have made (`py_value`) and put through the very expression
the Python code applied (`float(v)`, `int(v)`, `b[0][0]`, truthiness, iteration), so Python's
own rules decide. Object keys are matched in one pass over each object, the last duplicate
winning as in a dict. Deliberate differences, all on frames OKX never sends: a book message's
seqId / prevSeqId / checksum that is no integer (a bool or a whole float counts, as a number
equal to it) is a DecodeError instead of a BookEvent holding that value; JSON nested deeper
than orjson's 1024 levels is not refused when the deep part is a field the decoder never reads.
"""
cimport cython
from libc.math cimport NAN
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memcmp, memcpy

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_LIQUIDATION, K_MARK, K_TRADE, S_ASK, S_BID,
                          put_level, put_quote, tickring_record)

from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_is_arr, yyjson_is_null, yyjson_is_obj,
                    yyjson_is_str, yyjson_val)
from .values cimport (dbl, first_level, key_is, level_pair, ms_to_ns_late, need, num, sequence,
                      text_is, truthy, value_of, whole)

from feeds.decoder import DecodeError
from feeds.wire import SIDES

cdef enum:
    NAME_MAX = 31

cdef enum Channel:
    CH_BOOK = 1
    CH_BBO
    CH_TRADES
    CH_TICKERS
    CH_MARK
    CH_FUNDING
    CH_LIQUIDATIONS

CHANNELS = {
    "books": CH_BOOK, "books-l2-tbt": CH_BOOK, "books50-l2-tbt": CH_BOOK, "books5": CH_BOOK,
    "books-elp": CH_BOOK, "bbo-tbt": CH_BBO, "trades": CH_TRADES, "trades-all": CH_TRADES,
    "tickers": CH_TICKERS, "mark-price": CH_MARK, "funding-rate": CH_FUNDING,
    "liquidation-orders": CH_LIQUIDATIONS}
# events answered with nothing ("notice" is the service-upgrade shutdown notice)
CONTROL_EVENTS = ("subscribe", "unsubscribe", "error", "login", "channel-conn-count",
                  "channel-conn-count-error")


# -- small name tables (channels, control events, side strings), matched on the raw bytes ------

cdef struct Name:
    char text[NAME_MAX + 1]
    size_t n
    int value


cdef struct Names:
    Name names[16]
    int count


cdef int fill(Names *t, dict names) except -1:
    t.count = 0
    for text, value in names.items():
        b = text.encode()
        if len(b) > NAME_MAX or t.count == 16:
            raise ValueError(f"okx: name table cannot hold {text!r}")
        memcpy(t.names[t.count].text, <const char *>b, len(b))
        t.names[t.count].n = len(b)
        t.names[t.count].value = value
        t.count += 1
    return 0


cdef inline int lookup(const Names *t, const char *s, size_t n) noexcept:
    """The value of the name s[:n]; -1 when it is not in the table."""
    cdef int i
    for i in range(t.count):
        if t.names[i].n == n and memcmp(t.names[i].text, s, n) == 0:
            return t.names[i].value
    return -1


cdef Names _channels, _control, _sides
fill(&_channels, CHANNELS)
fill(&_control, {e: 1 for e in CONTROL_EVENTS})
fill(&_sides, SIDES)                 # feeds.wire's side strings, the table every venue shares


# -- values (the rest: values.pxd) --------------------------------------------------------------

cdef inline Py_ssize_t items(yyjson_val *v, yyjson_val **first) except -1:
    """`for x in v` over a message list: its elements. An empty string or object iterates to
    nothing as in Python; anything else (a string's characters, an object's keys) is no
    message, so the TypeError Python hits at the first element comes here. (values.pxd's
    items, but for the error's words.)"""
    if yyjson_is_arr(v):
        first[0] = unsafe_yyjson_get_first(v)
        return unsafe_yyjson_get_len(v)
    if (yyjson_is_str(v) or yyjson_is_obj(v)) and unsafe_yyjson_get_len(v) == 0:
        return 0
    raise TypeError(f"expected a list, got {py_value(v)!r:.60}")


cdef inline int64_t ms_ns_now(yyjson_val *v) except? -1:
    """int(v) * 1_000_000 for a record written right away (OverflowError if it leaves int64,
    the time named)."""
    cdef int64_t ns
    if ms_to_ns_late(v, &ns):
        raise OverflowError(f"time {py_value(v)!r} ms out of range")
    return ns


cdef inline int side_of(yyjson_val *v) except -1:
    """feeds.wire.side(v): the side string -> Side (ValueError for anything else)."""
    cdef int s = -1
    if yyjson_is_str(v):
        s = lookup(&_sides, unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    if s < 0:
        raise ValueError(f"unknown side {py_value(v)!r}")
    return s


cdef tuple py_level(lv):
    """(float(lv[0]), float(lv[1])) of an item of a level list that is no array (the characters
    of a string, say), as the Python code read it."""
    return float(lv[0]), float(lv[1])


cdef int top_of(yyjson_val *side, double *px, double *sz) except -1:
    """bbo-tbt: float(b[0][0]), float(b[0][1]) if b else NAN."""
    if not truthy(side):
        px[0] = sz[0] = NAN
        return 0
    return first_level(side, px, sz)


# -- the decoder --------------------------------------------------------------------------------

@cython.final
cdef class OkxDecoder(NativeDecoder):
    """OKX v5 public frames -> records (feeds/okx.py's docstring says what and how)."""

    venue = "okx"
    default_market = "spot"

    cpdef str market_of(self, str symbol):
        from feeds.okx import market_of       # instIds say it: BTC-USDT, BTC-USDT-SWAP, ...
        return market_of(symbol)

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *arg = NULL
        cdef yyjson_val *data = NULL
        cdef yyjson_val *action = NULL
        cdef yyjson_val *event = NULL
        cdef yyjson_val *channel = NULL
        cdef yyjson_val *inst_id = NULL
        cdef size_t i
        cdef int ch
        if n == 4 and memcmp(p, b"pong", 4) == 0:
            return 0
        root = self.parse(p, n)
        if not yyjson_is_obj(root):
            raise DecodeError(f"okx: not an object: {py_value(root)!r:.60}")
        k = unsafe_yyjson_get_first(root)
        for i in range(unsafe_yyjson_get_len(root)):
            v = value_of(k)
            if key_is(k, b"arg", 3):
                arg = v
            elif key_is(k, b"data", 4):
                data = v
            elif key_is(k, b"action", 6):
                action = v
            elif key_is(k, b"event", 5):
                event = v
            k = unsafe_yyjson_get_next(v)
        if data == NULL or yyjson_is_null(data) or arg == NULL or yyjson_is_null(arg):
            return self.control(event, root)
        if not yyjson_is_obj(arg):
            raise TypeError(f"arg is not an object: {py_value(arg)!r:.60}")
        k = unsafe_yyjson_get_first(arg)
        for i in range(unsafe_yyjson_get_len(arg)):
            v = value_of(k)
            if key_is(k, b"channel", 7):
                channel = v
            elif key_is(k, b"instId", 6):
                inst_id = v
            k = unsafe_yyjson_get_next(v)
        need(channel, "channel")
        if not yyjson_is_str(channel):
            if yyjson_is_arr(channel) or yyjson_is_obj(channel):
                raise TypeError("unhashable channel")     # `ch in BOOK_CHANNELS` raised
            return 0
        ch = lookup(&_channels, unsafe_yyjson_get_str(channel), unsafe_yyjson_get_len(channel))
        if ch == CH_BOOK:
            return self.books(inst_id, action, data, ts_recv)
        if ch == CH_TRADES:
            return self.trades(data, ts_recv)
        if ch == CH_TICKERS:
            return self.tickers(data, ts_recv)
        if ch == CH_BBO:
            return self.bbo(inst_id, data, ts_recv)
        if ch == CH_MARK:
            return self.mark_price(data, ts_recv)
        if ch == CH_FUNDING:
            return self.funding(data, ts_recv)
        if ch == CH_LIQUIDATIONS:
            return self.liquidations(data, ts_recv)
        return 0                    # candle*, index-tickers, open-interest, ...: not decoded

    cdef int control(self, yyjson_val *event, yyjson_val *root) except -1:
        """A frame without data/arg: an event (nothing, or the shutdown notice) or an error."""
        if yyjson_is_str(event):
            if key_is(event, b"notice", 6):
                self.notices.append("shutdown")
                return 0
            if lookup(&_control, unsafe_yyjson_get_str(event), unsafe_yyjson_get_len(event)) > 0:
                return 0
        raise DecodeError(f"okx: unrecognised message (keys {sorted(py_value(root))[:8]})")

    cdef uint32_t inst_of(self, yyjson_val *inst_id) except 0:
        """Instrument of an instId value (registered on first sight; it must be a string)."""
        need(inst_id, "instId")
        if not yyjson_is_str(inst_id):
            raise TypeError(f"instId {py_value(inst_id)!r:.60} is not a string")
        return self.inst(unsafe_yyjson_get_str(inst_id), unsafe_yyjson_get_len(inst_id))

    # -- channels ------------------------------------------------------------------------------------
    cdef int books(self, yyjson_val *inst_id, yyjson_val *action, yyjson_val *data,
                   int64_t ts_recv) except -1:
        """books* -> BOOK per level, bids then asks; a BookEvent per message."""
        cdef uint32_t inst = self.inst_of(inst_id)
        self.note_book(inst)
        cdef bint snap
        cdef yyjson_val *d
        cdef Py_ssize_t count, i
        if action == NULL or text_is(action, b"snapshot", 8):
            snap = True                              # books5 sends no action: all snapshots
        elif text_is(action, b"update", 6):
            snap = False
        else:
            raise DecodeError(f"okx: unknown book action {py_value(action)!r}")
        count = items(data, &d)
        for i in range(count):
            self.book_message(d, inst, snap, ts_recv)
            d = unsafe_yyjson_get_next(d)
        return 0

    cdef int book_message(self, yyjson_val *d, uint32_t inst, bint snap, int64_t ts_recv) except -1:
        """One element of a books* data list: its levels and its BookEvent."""
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *ts = NULL
        cdef yyjson_val *seq_v = NULL
        cdef yyjson_val *prev_v = NULL
        cdef yyjson_val *checksum_v = NULL
        cdef yyjson_val *bids = NULL
        cdef yyjson_val *asks = NULL
        cdef size_t i
        cdef int64_t t = 0, seq = -1, prev = -1, checksum = 0
        cdef bint big, has_checksum = False
        cdef Py_ssize_t start, nb, na
        cdef tickring_record *r
        cdef list bids_py = None, asks_py = None
        if not yyjson_is_obj(d):
            raise TypeError(f"book message {py_value(d)!r:.60} is not an object")
        k = unsafe_yyjson_get_first(d)
        for i in range(unsafe_yyjson_get_len(d)):
            v = value_of(k)
            if key_is(k, b"ts", 2):
                ts = v
            elif key_is(k, b"asks", 4):
                asks = v
            elif key_is(k, b"bids", 4):
                bids = v
            elif key_is(k, b"seqId", 5):
                seq_v = v
            elif key_is(k, b"prevSeqId", 9):
                prev_v = v
            elif key_is(k, b"checksum", 8):
                checksum_v = v
            k = unsafe_yyjson_get_next(v)
        big = ms_to_ns_late(need(ts, "ts"), &t)
        if not snap and prev_v != NULL:           # snapshots: prev -1, prevSeqId not read
            sequence(prev_v, &prev, True)
        if truthy(checksum_v):                    # OKX sends 0 (deprecated): no checksum
            sequence(checksum_v, &checksum, True)
            has_checksum = True
        need(bids, "bids")
        need(asks, "asks")
        # levels: a list of [px, sz, ...] lists in C; any other shape through Python
        if yyjson_is_arr(bids):
            nb = unsafe_yyjson_get_len(bids)
        else:
            bids_py = [py_level(lv) for lv in py_value(bids)]
            nb = len(bids_py)
        if yyjson_is_arr(asks):
            na = unsafe_yyjson_get_len(asks)
        else:
            asks_py = [py_level(lv) for lv in py_value(asks)]
            na = len(asks_py)
        if big and nb + na:
            raise OverflowError(f"time {py_value(ts)!r} ms out of range")
        if seq_v != NULL:                         # the id of every level: packed as an integer
            sequence(seq_v, &seq, nb + na == 0)
        start = self.out.n
        r = self.room(nb + na)
        self.side_levels(r, bids, bids_py, nb, S_BID, t, ts_recv, inst, snap, seq)
        self.side_levels(r + nb, asks, asks_py, na, S_ASK, t, ts_recv, inst, snap, seq)
        self.out.n = start + nb + na
        self.push_event(inst, start, start + nb + na, snap, seq, seq, prev, has_checksum, checksum)
        return 0

    cdef int side_levels(self, tickring_record *r, yyjson_val *levels, list levels_py, Py_ssize_t n,
                         uint8_t side, int64_t t, int64_t ts_recv, uint32_t inst, bint snap,
                         int64_t seq) except -1:
        cdef uint16_t flags = F_SNAPSHOT if snap else 0
        cdef yyjson_val *lv
        cdef double px, sz
        cdef Py_ssize_t i
        if levels_py is not None:
            for i in range(n):
                px, sz = levels_py[i]
                put_level(r + i, t, ts_recv, inst, K_BOOK, side, flags, px, sz, 0.0, seq)
            return 0
        lv = unsafe_yyjson_get_first(levels)
        for i in range(n):
            level_pair(lv, &px, &sz)
            put_level(r + i, t, ts_recv, inst, K_BOOK, side, flags, px, sz, 0.0, seq)
            lv = unsafe_yyjson_get_next(lv)
        return 0

    cdef int trades(self, yyjson_val *data, int64_t ts_recv) except -1:
        """trades / trades-all -> TRADE (side = the taker's)."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *inst_id
        cdef yyjson_val *ts
        cdef yyjson_val *side
        cdef yyjson_val *px
        cdef yyjson_val *sz
        cdef yyjson_val *trade_id
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t t
        cdef int sd
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"trade {py_value(d)!r:.60} is not an object")
            inst_id = ts = side = px = sz = trade_id = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"instId", 6):
                    inst_id = v
                elif key_is(k, b"ts", 2):
                    ts = v
                elif key_is(k, b"px", 2):
                    px = v
                elif key_is(k, b"sz", 2):
                    sz = v
                elif key_is(k, b"side", 4):
                    side = v
                elif key_is(k, b"tradeId", 7):
                    trade_id = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(inst_id)
            t = ms_ns_now(need(ts, "ts"))
            sd = side_of(need(side, "side"))
            put_level(r + i, t, ts_recv, inst, K_TRADE, sd, 0, dbl(need(px, "px")),
                      dbl(need(sz, "sz")), 0.0, whole(need(trade_id, "tradeId")))
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int tickers(self, yyjson_val *data, int64_t ts_recv) except -1:
        """tickers -> QUOTE of bidPx/bidSz/askPx/askSz ("" = not available -> NAN)."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *inst_id
        cdef yyjson_val *ts
        cdef yyjson_val *bp
        cdef yyjson_val *bs
        cdef yyjson_val *ap
        cdef yyjson_val *az
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t t
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"ticker {py_value(d)!r:.60} is not an object")
            inst_id = ts = bp = bs = ap = az = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"instId", 6):
                    inst_id = v
                elif key_is(k, b"ts", 2):
                    ts = v
                elif key_is(k, b"bidPx", 5):
                    bp = v
                elif key_is(k, b"bidSz", 5):
                    bs = v
                elif key_is(k, b"askPx", 5):
                    ap = v
                elif key_is(k, b"askSz", 5):
                    az = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(inst_id)
            t = ms_ns_now(need(ts, "ts"))
            put_quote(r + i, t, ts_recv, inst, 0, num(need(bp, "bidPx")), num(need(bs, "bidSz")),
                      num(need(ap, "askPx")), num(need(az, "askSz")))
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int bbo(self, yyjson_val *inst_id, yyjson_val *data, int64_t ts_recv) except -1:
        """bbo-tbt -> QUOTE (an empty side -> NAN); kept out of the book (see feeds/okx.py)."""
        cdef uint32_t inst = self.inst_of(inst_id)
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *ts
        cdef yyjson_val *bids
        cdef yyjson_val *asks
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t j
        cdef int64_t t
        cdef double bp, bs, ap, az
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"bbo {py_value(d)!r:.60} is not an object")
            ts = bids = asks = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"ts", 2):
                    ts = v
                elif key_is(k, b"bids", 4):
                    bids = v
                elif key_is(k, b"asks", 4):
                    asks = v
                k = unsafe_yyjson_get_next(v)
            need(bids, "bids")
            need(asks, "asks")
            t = ms_ns_now(need(ts, "ts"))
            top_of(bids, &bp, &bs)
            top_of(asks, &ap, &az)
            put_quote(r + i, t, ts_recv, inst, 0, bp, bs, ap, az)
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int mark_price(self, yyjson_val *data, int64_t ts_recv) except -1:
        """mark-price -> MARK price=markPx (funding and index NAN, id 0)."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *inst_id
        cdef yyjson_val *ts
        cdef yyjson_val *px
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t t
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"mark price {py_value(d)!r:.60} is not an object")
            inst_id = ts = px = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"instId", 6):
                    inst_id = v
                elif key_is(k, b"ts", 2):
                    ts = v
                elif key_is(k, b"markPx", 6):
                    px = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(inst_id)
            t = ms_ns_now(need(ts, "ts"))
            put_level(r + i, t, ts_recv, inst, K_MARK, 0, 0, dbl(need(px, "markPx")), NAN, NAN, 0)
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int funding(self, yyjson_val *data, int64_t ts_recv) except -1:
        """funding-rate -> MARK funding=fundingRate, id=fundingTime in ns (0 if absent/empty)."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *inst_id
        cdef yyjson_val *ts
        cdef yyjson_val *rate
        cdef yyjson_val *funding_time
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t t
        cdef double fr
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"funding rate {py_value(d)!r:.60} is not an object")
            inst_id = ts = rate = funding_time = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"instId", 6):
                    inst_id = v
                elif key_is(k, b"ts", 2):
                    ts = v
                elif key_is(k, b"fundingRate", 11):
                    rate = v
                elif key_is(k, b"fundingTime", 11):
                    funding_time = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(inst_id)
            t = ms_ns_now(need(ts, "ts"))
            fr = num(need(rate, "fundingRate"))
            put_level(r + i, t, ts_recv, inst, K_MARK, 0, 0, NAN, fr, NAN,
                      ms_ns_now(funding_time) if truthy(funding_time) else 0)
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int liquidations(self, yyjson_val *data, int64_t ts_recv) except -1:
        """liquidation-orders -> LIQUIDATION per detail (side = the order's, price bkPx)."""
        cdef yyjson_val *d
        cdef yyjson_val *x
        cdef yyjson_val *k
        cdef yyjson_val *v
        cdef yyjson_val *inst_id
        cdef yyjson_val *details
        cdef yyjson_val *ts
        cdef yyjson_val *side
        cdef yyjson_val *px
        cdef yyjson_val *sz
        cdef Py_ssize_t count = items(data, &d), i, nx, ix
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t t
        cdef int sd
        cdef tickring_record *r
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"liquidation {py_value(d)!r:.60} is not an object")
            inst_id = details = NULL
            k = unsafe_yyjson_get_first(d)
            for j in range(unsafe_yyjson_get_len(d)):
                v = value_of(k)
                if key_is(k, b"instId", 6):
                    inst_id = v
                elif key_is(k, b"details", 7):
                    details = v
                k = unsafe_yyjson_get_next(v)
            inst = self.inst_of(inst_id)
            nx = items(need(details, "details"), &x)
            r = self.room(nx)
            for ix in range(nx):
                if not yyjson_is_obj(x):
                    raise TypeError(f"liquidation detail {py_value(x)!r:.60} is not an object")
                ts = side = px = sz = NULL
                k = unsafe_yyjson_get_first(x)
                for j in range(unsafe_yyjson_get_len(x)):
                    v = value_of(k)
                    if key_is(k, b"ts", 2):
                        ts = v
                    elif key_is(k, b"side", 4):
                        side = v
                    elif key_is(k, b"bkPx", 4):
                        px = v
                    elif key_is(k, b"sz", 2):
                        sz = v
                    k = unsafe_yyjson_get_next(v)
                t = ms_ns_now(need(ts, "ts"))
                sd = side_of(need(side, "side"))
                put_level(r + ix, t, ts_recv, inst, K_LIQUIDATION, sd, 0, dbl(need(px, "bkPx")),
                          dbl(need(sz, "sz")), 0.0, 0)
                x = unsafe_yyjson_get_next(x)
            self.out.n += nx
            d = unsafe_yyjson_get_next(d)
        return 0

