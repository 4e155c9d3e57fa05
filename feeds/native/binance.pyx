# cython: language_level=3
"""Binance spot and USD-M futures frames -> records, compiled: the frame rules feeds/binance.py
and feeds/binance_usdm.py describe in their docstrings (what is decoded, how), implemented here
once for both venues (BinanceUsdmDecoder differs where `usdm` is tested).

The records, book events, notices and errors are the ones the Python decoders gave, including
for odd values: a number where a string is documented is read as float()/int() read it, a
missing key is a KeyError where a dict lookup raised one; where the Python code iterated a
string or an object as a level list, or registered a number as a spot symbol, a rare path does
the same in Python. Decided differently, on purpose: a BookEvent's sequence fields (U, u, pu,
lastUpdateId) are integers here (a bool or an integral number counts), else the frame is
malformed; Python passed any value into the BookEvent and the book keeper refused it. Either
way the book is resynced: book messages are noted (note_book) before their fields are read.

How: one pass over each JSON object's keys files the values read here into a table by key
(the last of duplicate keys wins, as in a dict), so a message costs one walk of its keys, then
plain C reads of the values.
"""
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport NAN
from libc.stdint cimport INT64_MAX, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memchr, memcmp, memset

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_LIQUIDATION, K_MARK, K_TRADE, S_ASK, S_BID,
                          S_BUY, S_SELL, put_level, put_quote, tickring_record)

from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_bool, yyjson_get_real, yyjson_get_sint,
                    yyjson_get_uint, yyjson_is_arr, yyjson_is_bool, yyjson_is_null,
                    yyjson_is_num, yyjson_is_obj, yyjson_is_real, yyjson_is_sint, yyjson_is_str,
                    yyjson_is_uint, yyjson_val)
from .text cimport text_to_double, text_to_int64
from .values cimport TICKRING_MS as MS, TICKRING_MS_MAX as MAX_MS, py_levels, truthy

from feeds.decoder import DecodeError

# the keys read here; a message's values land in a table indexed by these
cdef enum:
    KEY_e, KEY_E, KEY_s, KEY_t, KEY_a, KEY_p, KEY_q, KEY_T, KEY_m, KEY_b, KEY_B, KEY_A, KEY_u
    KEY_U, KEY_o, KEY_S, KEY_z, KEY_r, KEY_i
    KEY_pu, KEY_ap, KEY_lastUpdateId, KEY_bids, KEY_asks, KEY_result, KEY_code, KEY_stream
    KEY_data
    KEY_OTHER                   # every other key
    NKEYS

cdef uint8_t ONE_CHAR[256]      # one-character key -> its KEY_ slot
memset(ONE_CHAR, KEY_OTHER, 256)
for _key, _slot in {"e": KEY_e, "E": KEY_E, "s": KEY_s, "t": KEY_t, "a": KEY_a, "p": KEY_p,
                    "q": KEY_q, "T": KEY_T, "m": KEY_m, "b": KEY_b, "B": KEY_B, "A": KEY_A,
                    "u": KEY_u, "U": KEY_U, "o": KEY_o, "S": KEY_S, "z": KEY_z, "r": KEY_r,
                    "i": KEY_i}.items():
    ONE_CHAR[ord(_key)] = _slot


cdef inline void collect(yyjson_val *obj, yyjson_val **f) noexcept nogil:
    """f[KEY_x] = obj's value of key "x" (NULL: absent). The last of duplicate keys wins, as
    in the dict orjson made."""
    cdef size_t left = unsafe_yyjson_get_len(obj)
    cdef yyjson_val *key = unsafe_yyjson_get_first(obj)
    cdef const char *k
    cdef size_t n
    memset(f, 0, NKEYS * sizeof(yyjson_val *))
    while left:
        n = unsafe_yyjson_get_len(key)
        k = unsafe_yyjson_get_str(key)
        if n == 1:
            f[ONE_CHAR[<uint8_t>k[0]]] = key + 1
        elif n == 2:
            if k[0] == b'p' and k[1] == b'u':
                f[KEY_pu] = key + 1
            elif k[0] == b'a' and k[1] == b'p':
                f[KEY_ap] = key + 1
        elif n == 4:
            if memcmp(k, b"bids", 4) == 0:
                f[KEY_bids] = key + 1
            elif memcmp(k, b"asks", 4) == 0:
                f[KEY_asks] = key + 1
            elif memcmp(k, b"data", 4) == 0:
                f[KEY_data] = key + 1
            elif memcmp(k, b"code", 4) == 0:
                f[KEY_code] = key + 1
        elif n == 6:
            if memcmp(k, b"stream", 6) == 0:
                f[KEY_stream] = key + 1
            elif memcmp(k, b"result", 6) == 0:
                f[KEY_result] = key + 1
        elif n == 12 and memcmp(k, b"lastUpdateId", 12) == 0:
            f[KEY_lastUpdateId] = key + 1
        key = unsafe_yyjson_get_next(key + 1)
        left -= 1


# -- JSON values as the Python decoder read them ---------------------------------------------------

cdef inline yyjson_val *required(yyjson_val *v, const char *key) except NULL:
    """d[key]: KeyError when absent."""
    if v == NULL:
        raise KeyError(key.decode())
    return v


cdef str kind_of(yyjson_val *v):
    """The Python type name of a JSON value, for messages."""
    if yyjson_is_null(v):
        return "NoneType"
    if yyjson_is_bool(v):
        return "bool"
    if yyjson_is_real(v):
        return "float"
    if yyjson_is_num(v):
        return "int"
    if yyjson_is_str(v):
        return "str"
    return "list" if yyjson_is_arr(v) else "dict"



cdef inline double to_float(yyjson_val *v, const char *key) except? -1.0:
    """float(d[key])."""
    if v == NULL:
        raise KeyError(key.decode())
    if yyjson_is_str(v):
        return text_to_double(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
    if yyjson_is_real(v):
        return yyjson_get_real(v)
    if yyjson_is_sint(v):
        return <double>yyjson_get_sint(v)
    if yyjson_is_uint(v):
        return <double>yyjson_get_uint(v)
    if yyjson_is_bool(v):
        return 1.0 if yyjson_get_bool(v) else 0.0
    raise TypeError(f"{key.decode()}: float() argument must be a string or a real number, "
                    f"not '{kind_of(v)}'")


cdef double num_or_nan(yyjson_val *v, const char *key) except? -1.0:
    """feeds.wire.num(d[key]): "" and null are NAN (not available), anything else float()."""
    if v != NULL and (yyjson_is_null(v) or (yyjson_is_str(v) and unsafe_yyjson_get_len(v) == 0)):
        return NAN
    return to_float(v, key)


cdef int int_of_text(const char *s, Py_ssize_t n, int64_t *out) except -1:
    """int() of a JSON string into out[0]: 0, or 1 when int() gives a number beyond int64."""
    try:
        out[0] = text_to_int64(s, n)
    except OverflowError:
        return 1
    return 0


cdef int int_of(yyjson_val *v, int64_t *out, const char *key) except -1:
    """int(d[key]) into out[0]: 0, or 1 when int() gives a number beyond int64 (the Python
    decoder failed on it later, packing the record). Raises where int() raises."""
    cdef double x
    if v == NULL:
        raise KeyError(key.decode())
    if yyjson_is_sint(v):
        out[0] = yyjson_get_sint(v)
        return 0
    if yyjson_is_uint(v):
        if yyjson_get_uint(v) > <uint64_t>INT64_MAX:
            return 1
        out[0] = <int64_t>yyjson_get_uint(v)
        return 0
    if yyjson_is_str(v):
        return int_of_text(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), out)
    if yyjson_is_real(v):                        # int(1.5e12) truncates, as a C cast does
        x = yyjson_get_real(v)
        if not -9223372036854775808.0 <= x < 9223372036854775808.0:
            return 1
        out[0] = <int64_t>x
        return 0
    if yyjson_is_bool(v):
        out[0] = yyjson_get_bool(v)
        return 0
    raise TypeError(f"{key.decode()}: int() argument must be a string or a real number, "
                    f"not '{kind_of(v)}'")


cdef int ms_of(yyjson_val *v, int64_t *out, const char *key) except -1:
    """int(d[key]) * MS (ms -> ns) into out[0]: 0, or 1 when that is beyond int64."""
    if int_of(v, out, key):
        return 1
    if out[0] > MAX_MS or out[0] < -MAX_MS:
        return 1
    out[0] *= MS
    return 0


cdef int too_big(const char *key) except -1:
    raise OverflowError(f"{key.decode()}: beyond int64 in ns")


cdef int64_t id_of(yyjson_val *v, const char *key) except? -1:
    """d[key] as a record id (what struct packs as 'q'): an integer within int64, or a bool."""
    if v == NULL:
        raise KeyError(key.decode())
    if yyjson_is_sint(v):
        return yyjson_get_sint(v)
    if yyjson_is_uint(v) and yyjson_get_uint(v) <= <uint64_t>INT64_MAX:
        return <int64_t>yyjson_get_uint(v)
    if yyjson_is_bool(v):
        return yyjson_get_bool(v)
    raise TypeError(f"{key.decode()}: an id must be an integer within int64, not '{kind_of(v)}'")


cdef int64_t seq_of(yyjson_val *v, const char *key) except? -1:
    """d[key] as a BookEvent sequence field. The Python decoder passed the JSON value through
    unchecked; here it is an integer (a bool or an integral number compare equal to one)."""
    cdef double x
    if v != NULL and yyjson_is_real(v):
        x = yyjson_get_real(v)
        if -9223372036854775808.0 <= x < 9223372036854775808.0 and x == <double>(<int64_t>x):
            return <int64_t>x                    # (range first: casting beyond int64 is undefined)
    elif v == NULL or yyjson_is_num(v) or yyjson_is_bool(v):
        return id_of(v, key)                     # KeyError when absent
    raise TypeError(f"{key.decode()}: a sequence field must be an integer, not '{kind_of(v)}'")


cdef uint8_t side_of(yyjson_val *v) except 0:
    """feeds.wire.SIDES[d["S"]]: buy/Buy/BUY/b -> BUY, sell/Sell/SELL/s -> SELL."""
    cdef const char *s
    cdef size_t n
    required(v, "S")
    if yyjson_is_str(v):
        s = unsafe_yyjson_get_str(v)
        n = unsafe_yyjson_get_len(v)
        if n == 1 and s[0] == b'b':
            return S_BUY
        if n == 1 and s[0] == b's':
            return S_SELL
        if n == 3 and (memcmp(s, b"buy", 3) == 0 or memcmp(s, b"Buy", 3) == 0
                       or memcmp(s, b"BUY", 3) == 0):
            return S_BUY
        if n == 4 and (memcmp(s, b"sell", 4) == 0 or memcmp(s, b"Sell", 4) == 0
                       or memcmp(s, b"SELL", 4) == 0):
            return S_SELL
        raise ValueError(f"unknown side {PyUnicode_DecodeUTF8(s, n, NULL)!r}")
    raise ValueError(f"unknown side of type {kind_of(v)}")


cdef int put_levels(tickring_record *r, yyjson_val *levels, list levels_py, Py_ssize_t k,
                    int64_t ts, int64_t ts_recv, uint32_t inst, uint8_t side, uint16_t flags,
                    int64_t uid) except -1:
    """One BOOK record per level: of an array of k [price, size, ...] levels, or of levels_py
    (py_levels: a level list that is not an array)."""
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
            price = to_float(x, "price")
            size = to_float(unsafe_yyjson_get_next(x), "size")
        else:                            # Python indexed whatever it was: "12" is (1.0, 2.0)
            level = py_value(lv)
            price = float(level[0])
            size = float(level[1])
        put_level(r + j, ts, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, uid)
        lv = unsafe_yyjson_get_next(lv)
    return 0


cdef bint names_partial_depth(yyjson_val *stream) except -1:
    """USD-M: is this stream a partial (top-N snapshot) one, "<symbol>@depth<N>[@speed]"?
    The Python rule, kept: stream[stream.index("@") + 6:stream.index("@") + 7].isdigit()."""
    cdef const char *s
    cdef Py_ssize_t n, i, j
    cdef const char *at
    if stream == NULL:
        return False
    if not yyjson_is_str(stream):
        raise TypeError(f"stream name must be a string, not '{kind_of(stream)}'")
    s = unsafe_yyjson_get_str(stream)
    n = unsafe_yyjson_get_len(stream)
    at = <const char *>memchr(s, b'@', n)
    if at == NULL:
        raise ValueError("stream name without '@'")
    i = at - s
    for j in range(i + 1, min(i + 7, n)):
        if <uint8_t>s[j] >= 0x80:        # Python counts characters, not bytes: ask it
            text = PyUnicode_DecodeUTF8(s, n, NULL)
            j = text.index("@")
            return text[j + 6:j + 7].isdigit()
    return i + 6 < n and b'0' <= s[i + 6] <= b'9'


cdef class BinanceDecoder(NativeDecoder):
    """Binance spot market-data frames -> records (feeds/binance.py says what and how)."""

    venue = "binance"
    default_market = "spot"
    cdef bint usdm      # USD-M rules: depth carries pu, depth<N> streams are snapshots, MARK, LIQUIDATION
    cdef dict odd_symbols     # symbols that are not strings (odd_symbol) -> instrument id

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *f[NKEYS]
        cdef yyjson_val *data
        cdef yyjson_val *stream
        if yyjson_is_obj(root):
            collect(root, f)
            data = f[KEY_data]
            if data != NULL and not yyjson_is_null(data) and f[KEY_stream] != NULL:
                # combined-stream wrapper {"stream": name, "data": payload or [payloads]}
                stream = NULL if yyjson_is_null(f[KEY_stream]) else f[KEY_stream]
                if yyjson_is_arr(data):
                    return self.each(data, stream, ts_recv)
                return self.payload(data, stream, ts_recv)
            return self.message(root, f, NULL, ts_recv)
        if yyjson_is_arr(root):                  # array streams ("!markPrice@arr" on /ws)
            return self.each(root, NULL, ts_recv)
        raise TypeError(f"a frame must be an object or an array, not '{kind_of(root)}'")

    cdef int each(self, yyjson_val *arr, yyjson_val *stream, int64_t ts_recv) except -1:
        cdef size_t left = unsafe_yyjson_get_len(arr)
        cdef yyjson_val *d = unsafe_yyjson_get_first(arr)
        while left:
            self.payload(d, stream, ts_recv)
            d = unsafe_yyjson_get_next(d)
            left -= 1
        return 0

    cdef int payload(self, yyjson_val *d, yyjson_val *stream, int64_t ts_recv) except -1:
        cdef yyjson_val *f[NKEYS]
        if not yyjson_is_obj(d):
            raise TypeError(f"a payload must be an object, not '{kind_of(d)}'")
        collect(d, f)
        return self.message(d, f, stream, ts_recv)

    cdef int message(self, yyjson_val *d, yyjson_val **f, yyjson_val *stream,
                     int64_t ts_recv) except -1:
        """One payload, its keys filed in f; stream: its stream name (NULL: none)."""
        cdef yyjson_val *e = f[KEY_e]
        cdef const char *name
        cdef size_t n
        if e == NULL or yyjson_is_null(e):
            if f[KEY_u] != NULL and f[KEY_b] != NULL and f[KEY_A] != NULL:
                return self.quote(f, ts_recv)                 # spot bookTicker: no "e"
            if f[KEY_lastUpdateId] != NULL:
                return self.partial(f, stream, ts_recv)       # spot partial depth: no "e"
            if f[KEY_result] != NULL or f[KEY_code] != NULL:
                return 0                                      # SUBSCRIBE ack / error
            keys = []
            n = unsafe_yyjson_get_len(d)
            e = unsafe_yyjson_get_first(d)
            while n:
                keys.append(PyUnicode_DecodeUTF8(unsafe_yyjson_get_str(e),
                                                 unsafe_yyjson_get_len(e), NULL))
                e = unsafe_yyjson_get_next(e + 1)
                n -= 1
            raise DecodeError(f"{self.venue}: unrecognised message (keys {sorted(set(keys))[:8]})")
        if not yyjson_is_str(e):
            return 0                             # not an event type decoded here
        name = unsafe_yyjson_get_str(e)
        n = unsafe_yyjson_get_len(e)
        if n == 5 and memcmp(name, b"trade", 5) == 0:
            return self.trade(f, f[KEY_t], b"t", ts_recv)
        if n == 8 and memcmp(name, b"aggTrade", 8) == 0:
            return self.trade(f, f[KEY_a], b"a", ts_recv)
        if n == 11 and memcmp(name, b"depthUpdate", 11) == 0:
            return self.depth(f, stream, ts_recv)
        if n == 10 and memcmp(name, b"bookTicker", 10) == 0:
            return self.quote(f, ts_recv)
        if n == 14 and memcmp(name, b"serverShutdown", 14) == 0:
            self.notices.append("shutdown")
            return 0
        if self.usdm:
            if n == 15 and memcmp(name, b"markPriceUpdate", 15) == 0:
                return self.mark(f, ts_recv)
            if n == 10 and memcmp(name, b"forceOrder", 10) == 0:
                return self.liquidation(f, ts_recv)
        return 0                                 # kline, tickers, ...: not decoded

    cdef uint32_t symbol_id(self, yyjson_val *v, const char *key) except 0:
        """Instrument id of a symbol field, registered on first sight."""
        if yyjson_is_str(required(v, key)):
            return self.inst(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        return self.odd_symbol(py_value(v))

    cdef uint32_t odd_symbol(self, symbol) except 0:
        """A symbol that is not a string: the Python decoder registered a number, null or a bool
        as a spot symbol, by value (1, 1.0 and true are one, as dict keys; the appliance's
        registry refuses it), and USD-M's market test ("_" in symbol) raised TypeError."""
        if self.usdm:
            raise TypeError(f"a symbol must be a string, not '{type(symbol).__name__}'")
        if self.odd_symbols is None:
            self.odd_symbols = {}
        i = self.odd_symbols.get(symbol)             # TypeError for a list or an object
        if i is None:
            try:
                i = self.instruments.id(symbol, self.market)
            except AttributeError as e:              # a malformed frame to the Python decoder
                raise TypeError(str(e)) from None
            self.odd_symbols[symbol] = i
        return i

    cdef int trade(self, yyjson_val **f, yyjson_val *id_value, const char *id_key,
                   int64_t ts_recv) except -1:
        """trade / aggTrade -> TRADE; m (buyer is maker) true => the aggressor sold."""
        cdef uint32_t inst = self.symbol_id(f[KEY_s], b"s")
        cdef int64_t ts
        if ms_of(f[KEY_T], &ts, b"T"):
            too_big(b"T")
        cdef uint8_t side = S_SELL if truthy(required(f[KEY_m], b"m")) else S_BUY
        cdef double price = to_float(f[KEY_p], b"p")
        cdef double size = to_float(f[KEY_q], b"q")
        cdef int64_t trade_id = id_of(id_value, id_key)
        put_level(self.room(1), ts, ts_recv, inst, K_TRADE, side, 0, price, size, 0.0, trade_id)
        self.out.n += 1
        return 0

    cdef int quote(self, yyjson_val **f, int64_t ts_recv) except -1:
        """bookTicker -> QUOTE; ts_event E (spot sends none: 0)."""
        cdef uint32_t inst = self.symbol_id(f[KEY_s], b"s")
        cdef int64_t ts = 0
        if f[KEY_E] != NULL and ms_of(f[KEY_E], &ts, b"E"):
            too_big(b"E")
        cdef double bid = to_float(f[KEY_b], b"b")
        cdef double bid_size = to_float(f[KEY_B], b"B")
        cdef double ask = to_float(f[KEY_a], b"a")
        cdef double ask_size = to_float(f[KEY_A], b"A")
        put_quote(self.room(1), ts, ts_recv, inst, 0, bid, bid_size, ask, ask_size)
        self.out.n += 1
        return 0

    cdef Py_ssize_t levels(self, yyjson_val *bids, yyjson_val *asks, const char *bids_key,
                           const char *asks_key, uint32_t inst, int64_t ts, bint ts_too_big,
                           int64_t ts_recv, uint16_t flags, yyjson_val *u, const char *u_key,
                           int64_t *last) except -1:
        """BOOK records of the bid then the ask levels, id u (feeds.wire.pack_book); returns
        the index of the first, out.n is past the last; last = u as a sequence field."""
        cdef list bids_py = None         # a level list that is not an array (py_levels)
        cdef list asks_py = None
        cdef Py_ssize_t nb, na
        cdef Py_ssize_t start = self.out.n
        cdef tickring_record *r
        if yyjson_is_arr(required(bids, bids_key)):
            nb = unsafe_yyjson_get_len(bids)
        else:
            bids_py = py_levels(bids)
            nb = len(bids_py)
        if yyjson_is_arr(required(asks, asks_key)):
            na = unsafe_yyjson_get_len(asks)
        else:
            asks_py = py_levels(asks)
            na = len(asks_py)
        # ts and u are packed into every record; without records Python never checked them
        if ts_too_big and nb + na:
            too_big(b"E")
        last[0] = id_of(u, u_key) if nb + na else seq_of(u, u_key)
        r = self.room(nb + na)
        put_levels(r, bids, bids_py, nb, ts, ts_recv, inst, S_BID, flags, last[0])
        put_levels(r + nb, asks, asks_py, na, ts, ts_recv, inst, S_ASK, flags, last[0])
        self.out.n = start + nb + na
        return start

    cdef int depth(self, yyjson_val **f, yyjson_val *stream, int64_t ts_recv) except -1:
        """depthUpdate -> BOOK per level, id u, ts E; BookEvent(first=U, last=u, prev=pu on
        USD-M else -1). USD-M partial depth has the same shape: its stream name says so."""
        cdef bint snapshot = self.usdm and names_partial_depth(stream)
        cdef uint32_t inst = self.symbol_id(f[KEY_s], b"s")
        cdef int64_t ts, first, last, prev = -1
        self.note_book(inst)                     # from here a failure costs the book an update
        cdef int ts_too_big = ms_of(f[KEY_E], &ts, b"E")
        required(f[KEY_u], b"u")
        cdef Py_ssize_t start = self.levels(f[KEY_b], f[KEY_a], b"b", b"a", inst, ts, ts_too_big,
                                            ts_recv, F_SNAPSHOT if snapshot else 0, f[KEY_u], b"u",
                                            &last)
        first = seq_of(f[KEY_U], b"U")
        if self.usdm and not snapshot:
            prev = seq_of(f[KEY_pu], b"pu")
        self.push_event(inst, start, self.out.n, snapshot, first, last, prev, False, 0)
        return 0

    cdef int partial(self, yyjson_val **f, yyjson_val *stream, int64_t ts_recv) except -1:
        """Spot partial depth {lastUpdateId, bids, asks} -> BOOK levels flagged SNAPSHOT of the
        symbol its stream names; BookEvent(snapshot, first=last=lastUpdateId, prev=-1)."""
        cdef int64_t u
        if stream == NULL:
            raise DecodeError(f"{self.venue}: partial depth without a stream name (use /stream)")
        cdef uint32_t inst = self.stream_symbol(stream)
        self.note_book(inst)
        cdef Py_ssize_t start = self.levels(f[KEY_bids], f[KEY_asks], b"bids", b"asks", inst, 0,
                                            False, ts_recv, F_SNAPSHOT, f[KEY_lastUpdateId],
                                            b"lastUpdateId", &u)
        self.push_event(inst, start, self.out.n, True, u, u, -1, False, 0)
        return 0

    cdef uint32_t stream_symbol(self, yyjson_val *stream) except 0:
        """inst() of a stream name's part before "@", upper-cased ("bnbbtc@depth5" -> BNBBTC)."""
        cdef const char *s
        cdef const char *at
        cdef Py_ssize_t n, k, j
        if not yyjson_is_str(stream):
            raise TypeError(f"stream name must be a string, not '{kind_of(stream)}'")
        s = unsafe_yyjson_get_str(stream)
        n = unsafe_yyjson_get_len(stream)
        at = <const char *>memchr(s, b'@', n)
        k = at - s if at != NULL else n
        for j in range(k):
            if <uint8_t>s[j] >= 0x80:            # str.upper() beyond ASCII ("ß" -> "SS")
                key = PyUnicode_DecodeUTF8(s, n, NULL).split("@", 1)[0].upper().encode()
                return self.inst(key, len(key))
        return self.inst_upper(s, k)

    cdef int mark(self, yyjson_val **f, int64_t ts_recv) except -1:
        """USD-M markPriceUpdate -> MARK: price p, size funding rate r (NAN: none), extra index
        price i, id next funding time T in ns, ts E."""
        cdef int64_t funding, ts
        # int(T) is read before the symbol (as the Python decoder did); its ns are checked later
        cdef int funding_too_big = ms_of(f[KEY_T], &funding, b"T")
        cdef uint32_t inst = self.symbol_id(f[KEY_s], b"s")
        if ms_of(f[KEY_E], &ts, b"E"):
            too_big(b"E")
        cdef double price = to_float(f[KEY_p], b"p")
        cdef double rate = num_or_nan(f[KEY_r], b"r")
        cdef double index = num_or_nan(f[KEY_i], b"i")
        if funding_too_big:
            too_big(b"T")
        put_level(self.room(1), ts, ts_recv, inst, K_MARK, 0, 0, price, rate, index, funding)
        self.out.n += 1
        return 0

    cdef int liquidation(self, yyjson_val **f, int64_t ts_recv) except -1:
        """USD-M forceOrder -> LIQUIDATION: side S, price ap (p when ap is 0), size z (q when z
        is 0), ts T, all from the order object o."""
        cdef yyjson_val *o[NKEYS]
        cdef yyjson_val *order = required(f[KEY_o], b"o")
        cdef int64_t ts
        if not yyjson_is_obj(order):
            raise TypeError(f"o: the order must be an object, not '{kind_of(order)}'")
        collect(order, o)
        cdef double price = to_float(o[KEY_ap], b"ap")
        if price == 0.0:
            price = to_float(o[KEY_p], b"p")
        cdef double size = to_float(o[KEY_z], b"z")
        if size == 0.0:
            size = to_float(o[KEY_q], b"q")
        cdef uint8_t side = side_of(o[KEY_S])
        cdef uint32_t inst = self.symbol_id(o[KEY_s], b"s")
        if ms_of(o[KEY_T], &ts, b"T"):
            too_big(b"T")
        put_level(self.room(1), ts, ts_recv, inst, K_LIQUIDATION, side, 0, price, size, 0.0, 0)
        self.out.n += 1
        return 0


cdef class BinanceUsdmDecoder(BinanceDecoder):
    """Binance USD-M futures market-data frames -> records (feeds/binance_usdm.py says what)."""

    venue = "binance_usdm"
    default_market = "perp"

    def __cinit__(self, *args, **kwargs):
        self.usdm = True

    cpdef str market_of(self, str symbol):
        """Delivery contracts ("BTCUSDT_250627") are "future", the rest "perp"."""
        return "future" if "_" in symbol else "perp"
