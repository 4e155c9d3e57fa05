# cython: language_level=3
"""Bybit v5 public frames -> records, in C: the rules feeds/bybit.py's docstring states
(publicTrade, orderbook.N / orderbook.full, orderbook.1 and tickers quotes merged per
instrument, linear MARK, allLiquidation / liquidation, op responses and other topics -> nothing).

Bit for bit what the former Python decoder (orjson + float()/int()) gave, including how it took
odd input: a repeated key counts once, the last one (a dict); numbers where strings are
documented are read as float()/int() read them; a value float()/int() reject makes the frame a
DecodeError; where the Python code iterated a dict or a string (`for lv in levels`) this walks
the keys or characters the same way (a rare path, in Python). Decided differently, on purpose:
a book message's `u` must be an integer even when it carries no levels (Python passed any value
into the BookEvent, which the book keeper cannot use).
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport NAN, trunc
from libc.stdint cimport INT64_MAX, int64_t, uint32_t, uint64_t
from libc.string cimport memcmp

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_LIQUIDATION, K_MARK, K_TRADE, S_ASK, S_BID,
                          S_BUY, S_SELL, put_level, put_quote, tickring_record)

from .decoder cimport NativeDecoder, py_value
from .insttable cimport InstTable, inst_slot, inst_table_free, inst_table_init
from .json cimport (YYJSON_TYPE_ARR, YYJSON_TYPE_BOOL, YYJSON_TYPE_NULL, YYJSON_TYPE_NUM,
                    YYJSON_TYPE_OBJ, YYJSON_TYPE_STR, unsafe_yyjson_get_first,
                    unsafe_yyjson_get_len, unsafe_yyjson_get_next, unsafe_yyjson_get_str,
                    yyjson_arr_get_first, yyjson_arr_size, yyjson_get_bool, yyjson_get_len,
                    yyjson_get_real, yyjson_get_sint, yyjson_get_str, yyjson_get_type,
                    yyjson_get_uint, yyjson_is_arr, yyjson_is_obj, yyjson_is_real, yyjson_is_sint,
                    yyjson_is_str, yyjson_is_uint, yyjson_obj_size, yyjson_type, yyjson_val)
from .text cimport text_to_double, text_to_int64
from .values cimport TICKRING_MS as MS, TICKRING_MS_MAX as MS_LIMIT, id_digits, short_keys, text_is

from feeds.decoder import DecodeError
from feeds.wire import id_from_str


# -- Python's float()/int() of a JSON value, without a Python object on the common path ----------

cdef double _float_other(yyjson_val *v) except? -1.0:
    """float() of a JSON value that is not a string (float(None), float([]) raise TypeError)."""
    if yyjson_is_real(v):
        return yyjson_get_real(v)
    if yyjson_is_uint(v):
        return <double>yyjson_get_uint(v)        # correctly rounded, as float(int) is
    if yyjson_is_sint(v):
        return <double>yyjson_get_sint(v)
    if yyjson_get_type(v) == YYJSON_TYPE_BOOL:
        return 1.0 if yyjson_get_bool(v) else 0.0
    raise TypeError("float() argument must be a string or a real number")


cdef inline double _float(yyjson_val *v) except? -1.0:
    """float(value): a price or size."""
    if yyjson_is_str(v):
        return text_to_double(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    return _float_other(v)


cdef inline double _num(yyjson_val *v) except? -1.0:
    """feeds.wire.num(value): "" and null are NAN (not available), anything else float()."""
    if yyjson_is_str(v):
        if unsafe_yyjson_get_len(v) == 0:
            return NAN
        return text_to_double(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    if yyjson_get_type(v) == YYJSON_TYPE_NULL:
        return NAN
    return _float_other(v)


cdef int _int_ms(yyjson_val *v, int64_t *out) except -1:
    """int(value) * MS into out: 0. 1 when the product leaves int64 (Python failed only when the
    value was packed into a record, so the caller decides when that error happens). Raises what
    int() raises (int(None), int("x"), ...)."""
    cdef int64_t x
    cdef uint64_t u
    cdef double d
    cdef Py_ssize_t n
    cdef yyjson_type t = yyjson_get_type(v)
    if t == YYJSON_TYPE_NUM:
        if yyjson_is_uint(v):
            u = yyjson_get_uint(v)
            if u > <uint64_t>MS_LIMIT:
                return 1
            x = <int64_t>u
        elif yyjson_is_sint(v):
            x = yyjson_get_sint(v)
        else:
            d = trunc(yyjson_get_real(v))        # int(float) truncates; JSON reals are finite
            if d > <double>MS_LIMIT or d < -<double>MS_LIMIT:
                return 1
            x = <int64_t>d
    elif t == YYJSON_TYPE_STR:
        n = unsafe_yyjson_get_len(v)
        if n <= 18:                              # no 18-character int() overflows int64
            x = text_to_int64(unsafe_yyjson_get_str(v), n)
        else:
            big = int(PyUnicode_DecodeUTF8(unsafe_yyjson_get_str(v), n, NULL))
            if not -MS_LIMIT <= big <= MS_LIMIT:
                return 1
            x = big
    elif t == YYJSON_TYPE_BOOL:
        x = yyjson_get_bool(v)
    else:
        raise TypeError("int() argument must be a string or a real number")
    if x > MS_LIMIT or x < -MS_LIMIT:
        return 1
    out[0] = x * MS
    return 0


cdef int64_t _int64(yyjson_val *v) except? -1:
    """A value packed as an int64 (struct "q"): an integer or a bool, nothing else."""
    cdef uint64_t u
    if yyjson_is_uint(v):
        u = yyjson_get_uint(v)
        if u > <uint64_t>INT64_MAX:
            raise OverflowError("int64 out of range")
        return <int64_t>u
    if yyjson_is_sint(v):
        return yyjson_get_sint(v)
    if yyjson_get_type(v) == YYJSON_TYPE_BOOL:
        return yyjson_get_bool(v)
    raise TypeError("required argument is not an integer")


cdef inline bint _eq_one(yyjson_val *v) noexcept:
    """value == 1 in Python (1, 1.0 and true; not "1")."""
    if yyjson_is_uint(v) or yyjson_is_sint(v):
        return yyjson_get_sint(v) == 1
    if yyjson_is_real(v):
        return yyjson_get_real(v) == 1.0
    return yyjson_get_type(v) == YYJSON_TYPE_BOOL and yyjson_get_bool(v)


cdef int _side(yyjson_val *v) except -1:
    """feeds.wire.side(): the venues' side strings -> BUY/SELL, ValueError for anything else."""
    cdef const char *s
    cdef size_t n
    if yyjson_is_str(v):
        s = unsafe_yyjson_get_str(v)
        n = unsafe_yyjson_get_len(v)
        if n == 3 and (memcmp(s, b"Buy", 3) == 0 or memcmp(s, b"buy", 3) == 0 or memcmp(s, b"BUY", 3) == 0):
            return S_BUY
        if n == 4 and (memcmp(s, b"Sell", 4) == 0 or memcmp(s, b"sell", 4) == 0 or memcmp(s, b"SELL", 4) == 0):
            return S_SELL
        if n == 1 and (s[0] == b"b" or s[0] == b"s"):
            return S_BUY if s[0] == b"b" else S_SELL
    raise ValueError("unknown side")


cdef int64_t _trade_id(yyjson_val *v) except? -1:
    """feeds.wire.id_from_str(i): a numeric id is itself, an opaque one (linear UUIDs) a hash."""
    cdef int64_t x
    if yyjson_is_str(v):
        if id_digits(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), &x):
            return x
        return id_from_str(_text(v))
    return _int64(v)            # int -> itself (a bool too); a float or null had no .isdigit()


# -- the rare shapes Python's `for x in value` also walked: a dict's keys, a string's characters --

cdef str _text(yyjson_val *v):
    return PyUnicode_DecodeUTF8(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), NULL)


cdef int _empty_or_fail(yyjson_val *v) except -1:
    """`for t in value` over something not a list: {} and "" give nothing; a non-empty dict or
    string gives keys/characters that are not trade objects (TypeError); the rest is no iterable."""
    if yyjson_is_obj(v) and yyjson_obj_size(v) == 0:
        return 0
    if yyjson_is_str(v) and unsafe_yyjson_get_len(v) == 0:
        return 0
    raise TypeError("not a list of objects")


cdef list _keys(yyjson_val *obj):
    """The keys of an object as a dict has them (a repeated key once, where it first came)."""
    cdef yyjson_val *k = unsafe_yyjson_get_first(obj)
    cdef size_t j
    keys = {}
    for j in range(unsafe_yyjson_get_len(obj)):
        keys[_text(k)] = None
        k = unsafe_yyjson_get_next(k + 1)
    return list(keys)


cdef int _text_level(str lv, double *price, double *size, bint price_if_size) except -1:
    """[price, size] given as a string: Python read its first two characters (float(lv[0]),
    float(lv[1])). price_if_size: the price is read only when the size is not 0 (level-1 quote)."""
    if len(lv) < 2:
        raise IndexError("string index out of range")
    size[0] = float(lv[1:2])                 # slices: one-character str, not a code point
    if not price_if_size or size[0] != 0.0:
        price[0] = float(lv[0:1])
    return 0


cdef inline int _level(yyjson_val *lv, double *price, double *size, bint price_if_size) except -1:
    """One [price, size, ...] level as float(lv[0]), float(lv[1])."""
    cdef yyjson_val *p
    if yyjson_is_arr(lv):
        if yyjson_arr_size(lv) < 2:
            raise IndexError("list index out of range")
        p = yyjson_arr_get_first(lv)
        size[0] = _float(unsafe_yyjson_get_next(p))
        if not price_if_size or size[0] != 0.0:
            price[0] = _float(p)
        return 0
    if yyjson_is_str(lv):
        return _text_level(_text(lv), price, size, price_if_size)
    if yyjson_is_obj(lv):
        raise KeyError(0)
    raise TypeError("level is not subscriptable")


cdef Py_ssize_t _levels_len(yyjson_val *v) except -1:
    """len(levels): a list, a dict or a string (whose characters then fail as levels)."""
    cdef yyjson_type t = yyjson_get_type(v)
    if t == YYJSON_TYPE_ARR or t == YYJSON_TYPE_STR:
        return unsafe_yyjson_get_len(v)      # a string: only whether it is empty matters
    if t == YYJSON_TYPE_OBJ:
        return len(_keys(v))
    raise TypeError("levels have no len()")


cdef object _hashable(yyjson_val *v):
    """A non-string JSON value as the Python object orjson made of it (a symbol that is not a
    string); a list or an object is unhashable."""
    if yyjson_is_arr(v) or yyjson_is_obj(v):
        raise TypeError("unhashable type")
    return py_value(v)


cdef inline void _trade_fields(yyjson_val *t, yyjson_val **T, yyjson_val **sym, yyjson_val **S,
                               yyjson_val **v, yyjson_val **p, yyjson_val **i) noexcept:
    """A publicTrade / allLiquidation object's T, s, S, v, p and i (NULL: absent; the last of a
    repeated key, as in a dict)."""
    cdef yyjson_val *f[6]
    short_keys(t, b"TsSvpi", 6, f)
    T[0], sym[0], S[0], v[0], p[0], i[0] = f[0], f[1], f[2], f[3], f[4], f[5]


# -- per-instrument ticker merge state ------------------------------------------------------------

cdef struct Merge:
    uint32_t inst                # 0: a free slot
    bint has_quote               # quote[] was set (else the next update starts from NAN)
    bint has_mark
    bint funding_overflow        # next_funding beyond int64: every MARK fails until it is replaced
    double quote[4]              # bid, bid size, ask, ask size (orderbook.1 and tickers share it)
    double mark[3]               # mark, funding rate, index
    int64_t next_funding         # ns; 0 until seen


cdef class BybitDecoder(NativeDecoder):
    """Bybit v5 public frames of one connection -> records (see feeds/bybit.py)."""

    venue = "bybit"
    default_market = "spot"

    cdef InstTable merge         # instrument -> its Merge

    def __cinit__(self, *args, **kwargs):
        inst_table_init(&self.merge, sizeof(Merge))

    def __dealloc__(self):
        inst_table_free(&self.merge)

    cpdef str market_of(self, str symbol):
        """Dated contracts ("BTCUSDT-26DEC25") ride the linear/inverse routes as futures."""
        if self.market != "spot" and "-" in symbol:
            return "future"
        return self.market

    cdef Merge *_merge_of(self, uint32_t inst) except NULL:
        """The merge state of an instrument (a zeroed slot on first sight)."""
        cdef bint fresh
        return <Merge *>inst_slot(&self.merge, inst, &fresh)

    cdef uint32_t _symbol(self, yyjson_val *v) except 0:
        """Instrument id of a symbol value. Not a string (never on the wire): what Python did,
        the value itself as the symbol on a spot connection, TypeError on the others."""
        if yyjson_is_str(v):
            return self.inst(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        symbol = _hashable(v)
        if self.market != "spot":
            raise TypeError("a symbol that is not a string")     # "-" in symbol
        i = self.instruments.id(symbol, self.market)
        if not 0 < i < (1 << 32):
            raise ValueError(f"bybit: instrument id {i} of {symbol!r} is out of range")
        return i

    # -- the frame --------------------------------------------------------------------------------
    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *topic = NULL
        cdef yyjson_val *type_ = NULL
        cdef yyjson_val *ts = NULL
        cdef yyjson_val *data = NULL
        cdef yyjson_val *k
        cdef bint control = False
        cdef const char *s
        cdef size_t i, kn, tn
        if not yyjson_is_obj(root):
            raise TypeError("a frame that is not an object")
        # one pass over the keys; a repeated key: the last one counts (a dict)
        k = unsafe_yyjson_get_first(root)
        for i in range(unsafe_yyjson_get_len(root)):
            s = unsafe_yyjson_get_str(k)
            kn = unsafe_yyjson_get_len(k)
            if kn == 5 and memcmp(s, b"topic", 5) == 0:
                topic = k + 1
            elif kn == 4 and memcmp(s, b"data", 4) == 0:
                data = k + 1
            elif kn == 2 and memcmp(s, b"ts", 2) == 0:
                ts = k + 1
            elif kn == 4 and memcmp(s, b"type", 4) == 0:
                type_ = k + 1
            elif (kn == 2 and memcmp(s, b"op", 2) == 0) or (kn == 7 and memcmp(s, b"success", 7) == 0):
                control = True
            k = unsafe_yyjson_get_next(k + 1)
        if topic == NULL or yyjson_get_type(topic) == YYJSON_TYPE_NULL:
            if control or (type_ != NULL and text_is(type_, b"COMMAND_RESP", 12)):
                return 0                                     # acks, pongs, failures
            raise DecodeError("bybit: unrecognised message (no topic, no op)")
        if not yyjson_is_str(topic):
            raise TypeError("topic is not a string")
        s = unsafe_yyjson_get_str(topic)
        tn = unsafe_yyjson_get_len(topic)
        if tn >= 10 and memcmp(s, b"orderbook.", 10) == 0:
            if tn >= 12 and s[10] == b"1" and s[11] == b".":
                return self._top_of_book(type_, ts, data, ts_recv)
            return self._book(type_, ts, data, ts_recv)
        if tn >= 12 and memcmp(s, b"publicTrade.", 12) == 0:
            return self._trades(data, ts_recv)
        if tn >= 8 and memcmp(s, b"tickers.", 8) == 0:
            return self._ticker(type_, ts, data, ts_recv)
        if tn >= 15 and memcmp(s, b"allLiquidation.", 15) == 0:
            return self._liquidations(data, ts_recv)
        if tn >= 12 and memcmp(s, b"liquidation.", 12) == 0:
            return self._liquidation(data, ts_recv)
        return 0                                             # kline.*, other topics: not decoded

    cdef int _trades(self, yyjson_val *data, int64_t ts_recv) except -1:
        """publicTrade: one TRADE per trade object."""
        cdef yyjson_val *t
        cdef yyjson_val *T
        cdef yyjson_val *sym
        cdef yyjson_val *S
        cdef yyjson_val *v
        cdef yyjson_val *p
        cdef yyjson_val *tid
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t ts
        cdef int side
        cdef double price, size
        cdef int64_t trade_id
        if data == NULL:
            raise KeyError("data")
        if not yyjson_is_arr(data):
            return _empty_or_fail(data)
        t = yyjson_arr_get_first(data)
        for j in range(unsafe_yyjson_get_len(data)):
            if not yyjson_is_obj(t):
                raise TypeError("a trade that is not an object")
            _trade_fields(t, &T, &sym, &S, &v, &p, &tid)
            # in Python's order: the symbol is registered before the other fields are read
            if sym == NULL:
                raise KeyError("s")
            inst = self._symbol(sym)
            if T == NULL or S == NULL or p == NULL or v == NULL or tid == NULL:
                raise KeyError("T/S/p/v/i")
            if _int_ms(T, &ts):
                raise OverflowError("T out of range")
            side = _side(S)
            price = _float(p)
            size = _float(v)
            trade_id = _trade_id(tid)
            put_level(self.room(1), ts, ts_recv, inst, K_TRADE, side, 0, price, size, 0.0, trade_id)
            self.out.n += 1
            t = unsafe_yyjson_get_next(t)
        return 0

    cdef uint32_t _book_data(self, yyjson_val *data, yyjson_val **b, yyjson_val **a,
                             yyjson_val **u) except 0:
        """An orderbook.* message's data: its b, a and u (NULL: absent) and the instrument of its
        s, registered as Python did, before the other fields are read."""
        cdef yyjson_val *f[4]
        if data == NULL:
            raise KeyError("data")
        if not yyjson_is_obj(data):
            raise TypeError("data is not an object")
        short_keys(data, b"sbau", 4, f)
        b[0], a[0], u[0] = f[1], f[2], f[3]
        if f[0] == NULL:
            raise KeyError("s")
        return self._symbol(f[0])

    cdef int _book(self, yyjson_val *type_, yyjson_val *ts_v, yyjson_val *data, int64_t ts_recv) except -1:
        """orderbook.N / orderbook.full: BOOK per level (bids, then asks) and a BookEvent."""
        cdef yyjson_val *b
        cdef yyjson_val *a
        cdef yyjson_val *u
        cdef uint32_t inst
        cdef bint snap
        cdef int64_t ts = 0, uid
        cdef bint ts_overflow
        cdef Py_ssize_t nb, na, start
        cdef tickring_record *r
        inst = self._book_data(data, &b, &a, &u)
        self.note_book(inst)
        if u == NULL or type_ == NULL or b == NULL or a == NULL or ts_v == NULL:
            raise KeyError("u/type/b/a/ts")
        snap = text_is(type_, b"snapshot", 8) or _eq_one(u)     # u == 1: service restart
        ts_overflow = _int_ms(ts_v, &ts)
        nb = _levels_len(b)
        na = _levels_len(a)
        uid = _int64(u)
        start = self.out.n
        if nb + na:
            if ts_overflow:
                raise OverflowError("ts out of range")
            r = self.room(nb + na)
            self._put_levels(r, b, ts, ts_recv, inst, S_BID, F_SNAPSHOT if snap else 0, uid)
            self._put_levels(r + nb, a, ts, ts_recv, inst, S_ASK, F_SNAPSHOT if snap else 0, uid)
            self.out.n = start + nb + na
        self.push_event(inst, start, start + nb + na, snap, uid, uid, -1, False, 0)
        return 0

    cdef int _put_levels(self, tickring_record *r, yyjson_val *levels, int64_t ts, int64_t ts_recv,
                         uint32_t inst, int side, int flags, int64_t uid) except -1:
        """BOOK records of one side's levels at r (room made by the caller)."""
        cdef yyjson_val *lv
        cdef size_t j
        cdef double price = 0.0, size = 0.0
        if yyjson_is_arr(levels):
            lv = yyjson_arr_get_first(levels)
            for j in range(unsafe_yyjson_get_len(levels)):
                _level(lv, &price, &size, False)
                put_level(r + j, ts, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, uid)
                lv = unsafe_yyjson_get_next(lv)
        elif yyjson_is_obj(levels):                      # a dict: Python walked its keys
            for j, key in enumerate(_keys(levels)):
                _text_level(key, &price, &size, False)
                put_level(r + j, ts, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, uid)
        elif unsafe_yyjson_get_len(levels):              # a string: one-character "levels"
            raise IndexError("string index out of range")
        return 0

    cdef int _top_of_book(self, yyjson_val *type_, yyjson_val *ts_v, yyjson_val *data, int64_t ts_recv) except -1:
        """orderbook.1: the best bid/offer merged into the instrument's quote, one QUOTE."""
        cdef yyjson_val *b
        cdef yyjson_val *a
        cdef yyjson_val *u
        cdef uint32_t inst
        cdef int64_t ts
        cdef Merge *m
        inst = self._book_data(data, &b, &a, &u)
        m = self._merge_of(inst)
        # Python's short circuit: type and u are read only for an instrument already quoted
        if m.has_quote:
            if type_ == NULL:
                raise KeyError("type")
            if not text_is(type_, b"snapshot", 8):
                if u == NULL:
                    raise KeyError("u")
        if not m.has_quote or text_is(type_, b"snapshot", 8) or _eq_one(u):
            m.has_quote = True
            m.quote[0] = m.quote[1] = m.quote[2] = m.quote[3] = NAN
        # the state changes level by level: a bad level later in the frame keeps the earlier ones
        if b == NULL:
            raise KeyError("b")
        _merge_levels(m.quote, b)
        if a == NULL:
            raise KeyError("a")
        _merge_levels(m.quote + 2, a)
        if ts_v == NULL:
            raise KeyError("ts")
        if _int_ms(ts_v, &ts):
            raise OverflowError("ts out of range")
        put_quote(self.room(1), ts, ts_recv, inst, 0, m.quote[0], m.quote[1], m.quote[2], m.quote[3])
        self.out.n += 1
        return 0

    cdef int _ticker(self, yyjson_val *type_, yyjson_val *ts_v, yyjson_val *data, int64_t ts_recv) except -1:
        """tickers: QUOTE from the bid/ask fields, MARK (not spot) from mark/funding/index; both
        merged with the instrument's last values (deltas carry only the changed fields)."""
        cdef yyjson_val *k
        cdef yyjson_val *sym = NULL
        cdef yyjson_val *bid = NULL
        cdef yyjson_val *bid_size = NULL
        cdef yyjson_val *ask = NULL
        cdef yyjson_val *ask_size = NULL
        cdef yyjson_val *mark = NULL
        cdef yyjson_val *funding = NULL
        cdef yyjson_val *index = NULL
        cdef yyjson_val *next_funding = NULL
        cdef const char *s
        cdef size_t i, kn
        cdef uint32_t inst
        cdef int64_t ts = 0, nf = 0
        cdef bint ts_overflow, nf_overflow, snap
        cdef Merge *m
        if data == NULL:
            raise KeyError("data")
        if not yyjson_is_obj(data):
            raise TypeError("data is not an object")
        k = unsafe_yyjson_get_first(data)
        for i in range(unsafe_yyjson_get_len(data)):
            s = unsafe_yyjson_get_str(k)
            kn = unsafe_yyjson_get_len(k)
            if kn == 9:
                if memcmp(s, b"bid1Price", 9) == 0:
                    bid = k + 1
                elif memcmp(s, b"ask1Price", 9) == 0:
                    ask = k + 1
                elif memcmp(s, b"markPrice", 9) == 0:
                    mark = k + 1
            elif kn == 8:
                if memcmp(s, b"bid1Size", 8) == 0:
                    bid_size = k + 1
                elif memcmp(s, b"ask1Size", 8) == 0:
                    ask_size = k + 1
            elif kn == 6 and memcmp(s, b"symbol", 6) == 0:
                sym = k + 1
            elif kn == 11 and memcmp(s, b"fundingRate", 11) == 0:
                funding = k + 1
            elif kn == 10 and memcmp(s, b"indexPrice", 10) == 0:
                index = k + 1
            elif kn == 15 and memcmp(s, b"nextFundingTime", 15) == 0:
                next_funding = k + 1
            k = unsafe_yyjson_get_next(k + 1)
        if sym == NULL:
            raise KeyError("symbol")
        inst = self._symbol(sym)
        if ts_v == NULL:
            raise KeyError("ts")
        ts_overflow = _int_ms(ts_v, &ts)         # fails when the record is written, as in Python
        snap = type_ != NULL and text_is(type_, b"snapshot", 8)
        if bid != NULL or ask != NULL or bid_size != NULL or ask_size != NULL:
            m = self._merge_of(inst)
            if not m.has_quote or snap:
                m.has_quote = True
                m.quote[0] = m.quote[1] = m.quote[2] = m.quote[3] = NAN
            if bid != NULL:
                m.quote[0] = _num(bid)
            if bid_size != NULL:
                m.quote[1] = _num(bid_size)
            if ask != NULL:
                m.quote[2] = _num(ask)
            if ask_size != NULL:
                m.quote[3] = _num(ask_size)
            if ts_overflow:
                raise OverflowError("ts out of range")
            put_quote(self.room(1), ts, ts_recv, inst, 0, m.quote[0], m.quote[1], m.quote[2], m.quote[3])
            self.out.n += 1
        if (mark != NULL or funding != NULL or index != NULL or next_funding != NULL) and self.market != "spot":
            m = self._merge_of(inst)
            if not m.has_mark or snap:
                m.has_mark = True
                m.mark[0] = m.mark[1] = m.mark[2] = NAN
                m.next_funding = 0
                m.funding_overflow = False
            if mark != NULL:
                m.mark[0] = _num(mark)
            if funding != NULL:
                m.mark[1] = _num(funding)
            if index != NULL:
                m.mark[2] = _num(index)
            if next_funding != NULL:
                if yyjson_is_str(next_funding) and unsafe_yyjson_get_len(next_funding) == 0:
                    nf_overflow = False                                  # "" -> 0
                else:
                    nf_overflow = _int_ms(next_funding, &nf)
                m.next_funding = nf
                m.funding_overflow = nf_overflow
            if ts_overflow or m.funding_overflow:
                raise OverflowError("ts or nextFundingTime out of range")
            put_level(self.room(1), ts, ts_recv, inst, K_MARK, 0, 0, m.mark[0], m.mark[1], m.mark[2],
                      m.next_funding)
            self.out.n += 1
        return 0

    cdef int _liquidations(self, yyjson_val *data, int64_t ts_recv) except -1:
        """allLiquidation: LIQUIDATION per object; the side is the liquidation order's (the
        opposite of the reported position side)."""
        cdef yyjson_val *t
        cdef yyjson_val *T
        cdef yyjson_val *sym
        cdef yyjson_val *S
        cdef yyjson_val *v
        cdef yyjson_val *p
        cdef yyjson_val *tid
        cdef size_t j
        cdef uint32_t inst
        cdef int64_t ts
        cdef int side
        cdef double price, size
        if data == NULL:
            raise KeyError("data")
        if not yyjson_is_arr(data):
            return _empty_or_fail(data)
        t = yyjson_arr_get_first(data)
        for j in range(unsafe_yyjson_get_len(data)):
            if not yyjson_is_obj(t):
                raise TypeError("a liquidation that is not an object")
            _trade_fields(t, &T, &sym, &S, &v, &p, &tid)         # (i is not read)
            if sym == NULL:
                raise KeyError("s")
            inst = self._symbol(sym)
            if T == NULL or S == NULL or p == NULL or v == NULL:
                raise KeyError("T/S/p/v")
            if _int_ms(T, &ts):
                raise OverflowError("T out of range")
            side = S_SELL if _side(S) == S_BUY else S_BUY
            price = _float(p)
            size = _float(v)
            put_level(self.room(1), ts, ts_recv, inst, K_LIQUIDATION, side, 0, price, size, 0.0, 0)
            self.out.n += 1
            t = unsafe_yyjson_get_next(t)
        return 0

    cdef int _liquidation(self, yyjson_val *data, int64_t ts_recv) except -1:
        """liquidation (deprecated): one object {symbol, side, price, size, updatedTime}."""
        cdef yyjson_val *k
        cdef yyjson_val *sym = NULL
        cdef yyjson_val *T = NULL
        cdef yyjson_val *S = NULL
        cdef yyjson_val *p = NULL
        cdef yyjson_val *v = NULL
        cdef const char *s
        cdef size_t i, kn
        cdef uint32_t inst
        cdef int64_t ts
        cdef int side
        cdef double price, size
        if data == NULL:
            raise KeyError("data")
        if not yyjson_is_obj(data):
            raise TypeError("data is not an object")
        k = unsafe_yyjson_get_first(data)
        for i in range(unsafe_yyjson_get_len(data)):
            s = unsafe_yyjson_get_str(k)
            kn = unsafe_yyjson_get_len(k)
            if kn == 6 and memcmp(s, b"symbol", 6) == 0:
                sym = k + 1
            elif kn == 11 and memcmp(s, b"updatedTime", 11) == 0:
                T = k + 1
            elif kn == 4 and memcmp(s, b"side", 4) == 0:
                S = k + 1
            elif kn == 5 and memcmp(s, b"price", 5) == 0:
                p = k + 1
            elif kn == 4 and memcmp(s, b"size", 4) == 0:
                v = k + 1
            k = unsafe_yyjson_get_next(k + 1)
        if sym == NULL:
            raise KeyError("symbol")
        inst = self._symbol(sym)
        if T == NULL or S == NULL or p == NULL or v == NULL:
            raise KeyError("updatedTime/side/price/size")
        if _int_ms(T, &ts):
            raise OverflowError("updatedTime out of range")
        side = S_SELL if _side(S) == S_BUY else S_BUY
        price = _float(p)
        size = _float(v)
        put_level(self.room(1), ts, ts_recv, inst, K_LIQUIDATION, side, 0, price, size, 0.0, 0)
        self.out.n += 1
        return 0


cdef int _merge_levels(double *q, yyjson_val *levels) except -1:
    """Level-1 levels into q = [price, size]: each one replaces it, size 0 clears it (NAN)."""
    cdef yyjson_val *lv
    cdef size_t j
    cdef double price = NAN, size = NAN
    if yyjson_is_arr(levels):
        lv = yyjson_arr_get_first(levels)
        for j in range(unsafe_yyjson_get_len(levels)):
            _level(lv, &price, &size, True)
            _merge_one(q, price, size)
            lv = unsafe_yyjson_get_next(lv)
    elif yyjson_is_obj(levels):                          # a dict: Python walked its keys
        for key in _keys(levels):
            _text_level(key, &price, &size, True)
            _merge_one(q, price, size)
    elif yyjson_is_str(levels):
        if unsafe_yyjson_get_len(levels):                # one-character "levels"
            raise IndexError("string index out of range")
    else:
        raise TypeError("levels are not iterable")
    return 0


cdef inline void _merge_one(double *q, double price, double size) noexcept:
    if size != 0.0:                      # Python's `if size` (NAN is true)
        q[0] = price
        q[1] = size
    else:
        q[0] = NAN
        q[1] = NAN
