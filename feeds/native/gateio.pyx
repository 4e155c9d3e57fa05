# cython: language_level=3
"""Gate.io spot v4 frames -> records, in C: the rules feeds/gateio.py's docstring lists
(spot.trades, spot.book_ticker, spot.order_book_update, spot.obu, spot.order_book; other
channels, subscribe answers and pongs -> nothing), implemented once, here (feeds/gateio.py
declares the venue and uses this decoder).

The records, book events and errors are the ones the former Python decoder (orjson + dict
lookups + float()/int()) gave, odd input included: a repeated key counts once, the last one (a
dict); a number where a string is documented is read as float()/int() read it; a level list
that is a string or an object is iterated as Python iterated it (a rare path, in Python); a
symbol that is no string is registered by value, as the dict cache did; create_time_ms other
than an ASCII decimal string, and trade ids other than short digit strings or integers, go
through the Python rules themselves (feeds.gateio.ms_str_ns, feeds.wire.id_from_str). A time
is checked against int64 only where it is packed into a record, as struct packing did.
Decided differently, on purpose: a book message's U, u or lastUpdateId whose int() leaves int64
is a malformed frame even when nothing packs it (Python put the big int into the BookEvent,
which holds int64s here).
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memcpy, memset

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_TRADE, S_ASK, S_BID, put_level, put_quote,
                          tickring_record)

from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_bool, yyjson_get_sint, yyjson_get_uint,
                    yyjson_is_arr, yyjson_is_bool, yyjson_is_null, yyjson_is_obj, yyjson_is_sint,
                    yyjson_is_str, yyjson_is_uint, yyjson_val)
from .text cimport text_to_int64
from .values cimport (dbl, id_digits, key_is, ms_to_ns, ms_to_ns_late, need, py_levels, side_of,
                      symbol_by_value, text_is, truthy, value_of, whole)

from feeds.decoder import DecodeError
from feeds.wire import id_from_str

cdef int64_t MS = 1000000                # ns per ms
cdef int64_t SECONDS_MAX = 9223372036    # |s| beyond this overflows int64 as ns
cdef int64_t MS_WHOLE_MAX = 9223372036853    # |ms| whose ns plus a fraction (< 1 ms) fit int64

cdef enum Channel:
    CH_OTHER, CH_IGNORED, CH_TRADES, CH_BOOK_TICKER, CH_UPDATE, CH_OBU, CH_ORDER_BOOK

# the keys of a result object read here; its values land in a table indexed by these
cdef enum:
    KEY_t, KEY_s, KEY_u, KEY_U, KEY_b, KEY_B, KEY_a, KEY_A
    KEY_full, KEY_id, KEY_id_market, KEY_create_time, KEY_create_time_ms, KEY_side
    KEY_currency_pair, KEY_amount, KEY_price, KEY_lastUpdateId, KEY_bids, KEY_asks
    KEY_OTHER
    NKEYS

cdef uint8_t ONE_CHAR[256]               # one-character key -> its KEY_ slot
memset(ONE_CHAR, KEY_OTHER, 256)
for _key, _slot in {"t": KEY_t, "s": KEY_s, "u": KEY_u, "U": KEY_U, "b": KEY_b, "B": KEY_B,
                    "a": KEY_a, "A": KEY_A}.items():
    ONE_CHAR[ord(_key)] = _slot


cdef inline void collect(yyjson_val *obj, yyjson_val **f) noexcept:
    """f[KEY_x] = obj's value of key "x" (NULL: absent). The last of duplicate keys wins, as
    in the dict orjson made."""
    cdef size_t left = unsafe_yyjson_get_len(obj)
    cdef yyjson_val *key = unsafe_yyjson_get_first(obj)
    cdef const char *k
    cdef size_t n
    cdef int slot
    memset(f, 0, NKEYS * sizeof(yyjson_val *))
    while left:
        n = unsafe_yyjson_get_len(key)
        k = unsafe_yyjson_get_str(key)
        slot = KEY_OTHER
        if n == 1:
            slot = ONE_CHAR[<uint8_t>k[0]]
        elif n == 2:
            if k[0] == b'i' and k[1] == b'd':
                slot = KEY_id
        elif n == 4:
            if memcmp(k, b"side", 4) == 0:
                slot = KEY_side
            elif memcmp(k, b"full", 4) == 0:
                slot = KEY_full
            elif memcmp(k, b"bids", 4) == 0:
                slot = KEY_bids
            elif memcmp(k, b"asks", 4) == 0:
                slot = KEY_asks
        elif n == 5 and memcmp(k, b"price", 5) == 0:
            slot = KEY_price
        elif n == 6 and memcmp(k, b"amount", 6) == 0:
            slot = KEY_amount
        elif n == 9 and memcmp(k, b"id_market", 9) == 0:
            slot = KEY_id_market
        elif n == 11 and memcmp(k, b"create_time", 11) == 0:
            slot = KEY_create_time
        elif n == 12 and memcmp(k, b"lastUpdateId", 12) == 0:
            slot = KEY_lastUpdateId
        elif n == 13 and memcmp(k, b"currency_pair", 13) == 0:
            slot = KEY_currency_pair
        elif n == 14 and memcmp(k, b"create_time_ms", 14) == 0:
            slot = KEY_create_time_ms
        f[slot] = key + 1
        key = unsafe_yyjson_get_next(key + 1)
        left -= 1


cdef int channel_of(yyjson_val *v) except -1:
    """The channel a frame names; TypeError for a list or an object (`ch in _IGNORED` hashed it)."""
    cdef const char *s
    cdef size_t n
    if not yyjson_is_str(v):
        if yyjson_is_arr(v) or yyjson_is_obj(v):
            raise TypeError(f"unhashable channel {py_value(v)!r:.60}")
        return CH_OTHER
    s = unsafe_yyjson_get_str(v)
    n = unsafe_yyjson_get_len(v)
    if n < 8 or memcmp(s, b"spot.", 5) != 0:
        return CH_OTHER
    s += 5
    n -= 5
    if n == 6 and memcmp(s, b"trades", 6) == 0:
        return CH_TRADES
    if n == 11 and memcmp(s, b"book_ticker", 11) == 0:
        return CH_BOOK_TICKER
    if n == 17 and memcmp(s, b"order_book_update", 17) == 0:
        return CH_UPDATE
    if n == 3 and memcmp(s, b"obu", 3) == 0:
        return CH_OBU
    if n == 10 and memcmp(s, b"order_book", 10) == 0:
        return CH_ORDER_BOOK
    if ((n == 12 and memcmp(s, b"candlesticks", 12) == 0) or (n == 7 and memcmp(s, b"tickers", 7) == 0)
            or (n == 4 and (memcmp(s, b"pong", 4) == 0 or memcmp(s, b"ping", 4) == 0))):
        return CH_IGNORED
    return CH_OTHER


# -- values as the Python decoder read them --------------------------------------------------------

cdef int64_t ms_text_ns(const char *s, Py_ssize_t n) except? -1:
    """feeds.gateio.ms_str_ns of a string ("1606292218213.4578" ms -> ns, no float loss): int()
    of the part before the first ".", plus int() of the first 6 characters after it padded with
    zeros, read as ns. A fraction beyond ASCII is left to the Python function (characters, not
    bytes, are counted there)."""
    cdef const char *dot = <const char *>memchr(s, b'.', n)
    cdef Py_ssize_t whole_n = dot - s if dot != NULL else n
    cdef Py_ssize_t frac_n = n - whole_n - 1 if dot != NULL else 0
    cdef Py_ssize_t i
    cdef char digits[6]
    cdef int64_t ms, frac = 0
    for i in range(frac_n):
        if <uint8_t>dot[1 + i] >= 0x80:
            return py_ms_str_ns(PyUnicode_DecodeUTF8(s, n, NULL))
    ms = text_to_int64(s, whole_n)       # OverflowError beyond int64: so would the ns be
    if frac_n:
        memset(digits, b'0', 6)
        memcpy(digits, dot + 1, min(frac_n, 6))
        frac = text_to_int64(digits, 6)
    if -MS_WHOLE_MAX <= ms <= MS_WHOLE_MAX:
        return ms * MS + frac
    return ms * <object>MS + frac        # near the edge of int64: Python's ints decide


cdef int64_t py_ms_str_ns(value) except? -1:
    """The Python rule itself (a number, or a fraction beyond ASCII), as an int64."""
    from feeds.gateio import ms_str_ns
    return ms_str_ns(value)


cdef int64_t trade_time(yyjson_val **f) except? -1:
    """ms_str_ns(create_time_ms) if it is not None, else int(create_time) seconds -> ns."""
    cdef yyjson_val *v = f[KEY_create_time_ms]
    cdef int64_t sec
    if v != NULL and not yyjson_is_null(v):
        if yyjson_is_str(v):
            return ms_text_ns(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        return py_ms_str_ns(py_value(v))
    sec = whole(need(f[KEY_create_time], "create_time"))
    if not -SECONDS_MAX <= sec <= SECONDS_MAX:
        raise OverflowError(f"create_time {sec} s out of range")
    return sec * 1000000000


cdef int64_t trade_id(yyjson_val **f) except? -1:
    """feeds.wire.id_from_str(id if it is not None else id_market): an integer is itself, a
    short ASCII digit string is read here, any other string goes to id_from_str."""
    cdef yyjson_val *v = f[KEY_id]
    cdef int64_t x
    if v == NULL or yyjson_is_null(v):
        v = need(f[KEY_id_market], "id_market")
    if yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        return yyjson_get_sint(v)
    if yyjson_is_bool(v):
        return yyjson_get_bool(v)
    if yyjson_is_uint(v):                # id_from_str gave it back; struct packing refused it
        raise OverflowError(f"trade id {yyjson_get_uint(v)} beyond int64")
    if not yyjson_is_str(v):             # a float, null, list, object: it has no isdigit()
        raise TypeError(f"trade id {py_value(v)!r:.60} is not a string")
    if id_digits(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), &x):
        return x
    return id_from_str(py_value(v))


cdef int put_levels(tickring_record *r, yyjson_val *levels, list levels_py, Py_ssize_t k,
                    int64_t ts, int64_t ts_recv, uint32_t inst, uint8_t side, uint16_t flags,
                    int64_t uid) except -1:
    """One BOOK record per level: of an array of k [price, size, ...] levels, or of levels_py."""
    cdef yyjson_val *lv
    cdef yyjson_val *x
    cdef double price, size
    cdef Py_ssize_t j
    if levels_py is not None:
        for j in range(k):
            price, size = levels_py[j]
            put_level(r + j, ts, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, uid)
        return 0
    if k == 0:
        return 0
    lv = unsafe_yyjson_get_first(levels)
    for j in range(k):
        if yyjson_is_arr(lv):
            if unsafe_yyjson_get_len(lv) < 2:
                raise IndexError("a level needs a price and a size")
            x = unsafe_yyjson_get_first(lv)
            price = dbl(x)
            size = dbl(unsafe_yyjson_get_next(x))
        else:                            # Python indexed whatever it was: "12" is (1.0, 2.0)
            level = py_value(lv)
            price = float(level[0])
            size = float(level[1])
        put_level(r + j, ts, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, uid)
        lv = unsafe_yyjson_get_next(lv)
    return 0


# -- the decoder --------------------------------------------------------------------------------

cdef class GateioDecoder(NativeDecoder):
    """Gate.io spot v4 frames -> records (feeds/gateio.py's docstring says what and how)."""

    venue = "gateio"
    default_market = "spot"
    cdef dict odd_symbols     # symbols that are not strings -> instrument id

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *key
        cdef yyjson_val *channel = NULL
        cdef yyjson_val *event = NULL
        cdef yyjson_val *result = NULL
        cdef size_t left
        cdef int ch
        if not yyjson_is_obj(root):
            raise TypeError(f"a frame must be an object: {py_value(root)!r:.60}")
        left = unsafe_yyjson_get_len(root)
        key = unsafe_yyjson_get_first(root)
        while left:                      # the last of duplicate keys wins, as in a dict
            if key_is(key, b"channel", 7):
                channel = value_of(key)
            elif key_is(key, b"event", 5):
                event = value_of(key)
            elif key_is(key, b"result", 6):
                result = value_of(key)
            key = unsafe_yyjson_get_next(value_of(key))
            left -= 1
        need(channel, "channel")
        if not (text_is(event, b"update", 6) or text_is(event, b"all", 3)):
            return 0                     # subscribe/unsubscribe answers, pong
        ch = channel_of(channel)
        if ch == CH_IGNORED:
            return 0
        need(result, "result")
        if ch == CH_TRADES:
            return self.trades(result, ts_recv)
        if ch == CH_BOOK_TICKER:
            return self.quote(result, ts_recv)
        if ch == CH_UPDATE or ch == CH_OBU:
            return self.update(result, ch == CH_OBU, ts_recv)
        if ch == CH_ORDER_BOOK:
            return self.snapshot(result, ts_recv)
        raise DecodeError(f"gateio: unexpected channel {py_value(channel)!r}")

    cdef uint32_t symbol_id(self, yyjson_val *v) except 0:
        """Instrument id of a symbol field, registered on first sight (a symbol that is no
        string by value, as the Python decoder's dict cache did)."""
        if yyjson_is_str(v):
            return self.inst(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        symbol = py_value(v)
        if self.odd_symbols is None:
            self.odd_symbols = {}
        return symbol_by_value(self, self.odd_symbols, symbol)

    cdef int trades(self, yyjson_val *result, int64_t ts_recv) except -1:
        """spot.trades -> TRADE (side = the taker's, id = `id`, else id_market); one trade per
        message, a list is read too."""
        cdef yyjson_val *f[NKEYS]
        cdef yyjson_val *t = result
        cdef Py_ssize_t count = 1, i
        cdef tickring_record *r
        cdef uint32_t inst
        cdef int64_t ts
        cdef int side
        cdef double price, size
        if yyjson_is_arr(result):
            count = unsafe_yyjson_get_len(result)
            t = unsafe_yyjson_get_first(result)
        r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(t):
                raise TypeError(f"a trade must be an object: {py_value(t)!r:.60}")
            collect(t, f)
            inst = self.symbol_id(need(f[KEY_currency_pair], "currency_pair"))
            ts = trade_time(f)
            side = side_of(need(f[KEY_side], "side"))
            price = dbl(need(f[KEY_price], "price"))
            size = dbl(need(f[KEY_amount], "amount"))
            put_level(r + i, ts, ts_recv, inst, K_TRADE, side, 0, price, size, 0.0, trade_id(f))
            t = unsafe_yyjson_get_next(t)
        self.out.n += count
        return 0

    cdef int quote(self, yyjson_val *result, int64_t ts_recv) except -1:
        """spot.book_ticker -> QUOTE of b/B/a/A, ts t (ms)."""
        cdef yyjson_val *f[NKEYS]
        if not yyjson_is_obj(result):
            raise TypeError(f"result must be an object: {py_value(result)!r:.60}")
        collect(result, f)
        cdef uint32_t inst = self.symbol_id(need(f[KEY_s], "s"))
        cdef int64_t ts = ms_to_ns(need(f[KEY_t], "t"))
        cdef double bid = dbl(need(f[KEY_b], "b"))
        cdef double bid_size = dbl(need(f[KEY_B], "B"))
        cdef double ask = dbl(need(f[KEY_a], "a"))
        cdef double ask_size = dbl(need(f[KEY_A], "A"))
        put_quote(self.room(1), ts, ts_recv, inst, 0, bid, bid_size, ask, ask_size)
        self.out.n += 1
        return 0

    cdef uint32_t obu_symbol(self, yyjson_val *s) except 0:
        """spot.obu names its pair in result.s: "ob.BTC_USDT.50" -> BTC_USDT (s.split(".")[1])."""
        cdef const char *text
        cdef const char *dot
        cdef const char *end
        cdef size_t n
        if not yyjson_is_str(s):
            raise TypeError(f"s {py_value(s)!r:.60} is not a string")
        text = unsafe_yyjson_get_str(s)
        n = unsafe_yyjson_get_len(s)
        dot = <const char *>memchr(text, b'.', n)
        if dot == NULL:
            raise IndexError(f"s {py_value(s)!r:.60} names no pair")
        dot += 1
        end = <const char *>memchr(dot, b'.', text + n - dot)
        if end == NULL:
            end = text + n
        return self.inst(dot, end - dot)

    cdef int update(self, yyjson_val *result, bint obu, int64_t ts_recv) except -1:
        """spot.order_book_update / spot.obu -> BOOK per level (amounts absolute, "0" deletes),
        id u, SNAPSHOT when `full`; BookEvent(first=U, last=u, prev=-1)."""
        cdef yyjson_val *f[NKEYS]
        cdef uint32_t inst
        cdef bint snap
        cdef int64_t ts, first, last
        cdef int ts_too_big
        cdef list bids_py = None, asks_py = None
        cdef Py_ssize_t nb = 0, na = 0, start
        cdef tickring_record *r
        if not yyjson_is_obj(result):
            raise TypeError(f"result must be an object: {py_value(result)!r:.60}")
        collect(result, f)
        need(f[KEY_s], "s")
        inst = self.obu_symbol(f[KEY_s]) if obu else self.symbol_id(f[KEY_s])
        self.note_book(inst)             # from here a failure costs the book an update
        snap = truthy(f[KEY_full])
        last = whole(need(f[KEY_u], "u"))
        # absent b/a are no levels; any other value has a len() (or the frame is malformed)
        if f[KEY_b] != NULL:
            if yyjson_is_arr(f[KEY_b]):
                nb = unsafe_yyjson_get_len(f[KEY_b])
            else:
                bids_py = py_levels(f[KEY_b])
                nb = len(bids_py)
        if f[KEY_a] != NULL:
            if yyjson_is_arr(f[KEY_a]):
                na = unsafe_yyjson_get_len(f[KEY_a])
            else:
                asks_py = py_levels(f[KEY_a])
                na = len(asks_py)
        ts_too_big = ms_to_ns_late(need(f[KEY_t], "t"), &ts)
        if ts_too_big and nb + na:       # packed into every level; with none Python never did
            raise OverflowError("t beyond int64 in ns")
        start = self.out.n
        r = self.room(nb + na)
        put_levels(r, f[KEY_b], bids_py, nb, ts, ts_recv, inst, S_BID, F_SNAPSHOT if snap else 0,
                   last)
        put_levels(r + nb, f[KEY_a], asks_py, na, ts, ts_recv, inst, S_ASK,
                   F_SNAPSHOT if snap else 0, last)
        self.out.n = start + nb + na
        first = whole(need(f[KEY_U], "U"))
        self.push_event(inst, start, self.out.n, snap, first, last, -1, False, 0)
        return 0

    cdef int snapshot(self, yyjson_val *result, int64_t ts_recv) except -1:
        """spot.order_book -> BOOK levels flagged SNAPSHOT, id lastUpdateId;
        BookEvent(snapshot, first=last=lastUpdateId, prev=-1)."""
        cdef yyjson_val *f[NKEYS]
        cdef uint32_t inst
        cdef int64_t ts, u
        cdef int ts_too_big
        cdef list bids_py = None, asks_py = None
        cdef Py_ssize_t nb, na, start
        cdef tickring_record *r
        if not yyjson_is_obj(result):
            raise TypeError(f"result must be an object: {py_value(result)!r:.60}")
        collect(result, f)
        inst = self.symbol_id(need(f[KEY_s], "s"))
        self.note_book(inst)
        ts_too_big = ms_to_ns_late(need(f[KEY_t], "t"), &ts)
        u = whole(need(f[KEY_lastUpdateId], "lastUpdateId"))
        if yyjson_is_arr(need(f[KEY_bids], "bids")):
            nb = unsafe_yyjson_get_len(f[KEY_bids])
        else:
            bids_py = py_levels(f[KEY_bids])
            nb = len(bids_py)
        if yyjson_is_arr(need(f[KEY_asks], "asks")):
            na = unsafe_yyjson_get_len(f[KEY_asks])
        else:
            asks_py = py_levels(f[KEY_asks])
            na = len(asks_py)
        if ts_too_big and nb + na:
            raise OverflowError("t beyond int64 in ns")
        start = self.out.n
        r = self.room(nb + na)
        put_levels(r, f[KEY_bids], bids_py, nb, ts, ts_recv, inst, S_BID, F_SNAPSHOT, u)
        put_levels(r + nb, f[KEY_asks], asks_py, na, ts, ts_recv, inst, S_ASK, F_SNAPSHOT, u)
        self.out.n = start + nb + na
        self.push_event(inst, start, self.out.n, True, u, u, -1, False, 0)
        return 0
