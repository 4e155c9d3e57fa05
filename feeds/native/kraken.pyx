# cython: language_level=3
"""Kraken spot websocket v2 frames -> records, and Kraken's book checksum, in C: the rules
feeds/kraken.py's docstring states (trade, ticker, book with its checksum precisions; heartbeat,
status and the other channels, method answers -> nothing; maintenance -> "shutdown"),
implemented once, here (feeds/kraken.py declares the venue and hooks the checksum up).

The records, book events, notices, precisions and errors are what the former Python decoder
(orjson, dict lookups, float(), int(), feeds.isotime.iso_ns) gave, odd input included: a
repeated key counts once, the last one; a number where one is documented is read as float()
reads it (a string too); "" and {} are empty lists, other non-lists fail; timestamps of another
form than the venue's go to iso_ns() itself, and a time beyond int64 fails only where a record
packs it; a symbol that is no string is registered by value, as the dict cache did; the
precision learnt from a book message (and a failure learning it) comes before its checksum is
read. Decided differently, on purpose (frames Kraken never sends): a checksum whose int() leaves
int64 is a malformed frame (Python put the big int into the BookEvent, whose check then
failed); a precision that is no pair of C ints is refused where it is stored (Python failed in
the keeper's checksum). The Python decoder's `last_levels` (raw level dicts per instrument,
read by nothing but a test) is gone.

The checksum (BookChecksum `KrakenChecksum`, and `levels_checksum` for the Python hook) writes
each price and size with the pair's precision exactly as f"{v:.{d}f}" does, by integer
arithmetic on the double's exact value (round half to even, as Python's correctly rounded
formatting); a value this cannot do exactly (not finite, >= 2**63, more than 19 decimals) is
formatted by Python. A book's top levels barely change between messages, so the texts of the
last values written are kept (a small cache keyed by the exact double and precision).
"""
cimport cython
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_CheckExact
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.number cimport PyNumber_Index
from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t
from libc.string cimport memset

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_TRADE, S_ASK, S_BID, put_level, put_quote,
                          tickring_record)

from .book cimport Book, BookChecksum, BookSide
from .crc32 cimport crc32_update
from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_is_null, yyjson_is_obj, yyjson_is_str,
                    yyjson_val)
from .values cimport (items, iso_stamp, key_is, need, number, side_of, symbol_by_value, text_is,
                      time_packable, truthy, value_of, whole)

from feeds.decoder import DecodeError

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    int Py_DTSF_ADD_DOT_0

cdef extern from *:
    """
    #include <string.h>

    static const uint64_t kraken_pow10[20] = {
        1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
        100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
        10000000000000ULL, 100000000000000ULL, 1000000000000000ULL, 10000000000000000ULL,
        100000000000000000ULL, 1000000000000000000ULL, 10000000000000000000ULL};

    /* the 8 digits of u < 10**8 as ASCII, zeros first, the first digit in the lowest byte (a
       little-endian store writes them in order): the halves, quarters and digits are split side
       by side in lanes of one word (n / 100 = n * 10486 >> 20 for n < 10**4, n / 10 =
       n * 103 >> 10 for n < 100; no lane carries into the next) */
    static inline uint64_t kraken_digits8(uint32_t u) {
        uint64_t v = (uint64_t)(u / 10000) | ((uint64_t)(u % 10000) << 32);
        uint64_t q = ((v * 10486) >> 20) & 0x0000007F0000007FULL;
        v = q | ((v - q * 100) << 16);
        q = ((v * 103) >> 10) & 0x000F000F000F000FULL;
        v = q | ((v - q * 10) << 8);
        return v | 0x3030303030303030ULL;
    }

    /* u < 10**w (w <= 20) zero-padded to w digits at out, in 8-byte stores (room for
       max(w, 8) bytes): the digits go straight to the text, none is read back */
    static inline void kraken_put_digits(uint64_t u, int w, char *out) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint64_t c;
        if (w <= 8) {
            if (w > 0) {
                c = kraken_digits8((uint32_t)u) >> (8 * (8 - w));
                memcpy(out, &c, 8);
            }
        } else if (w <= 16) {
            c = kraken_digits8((uint32_t)(u / 100000000)) >> (8 * (16 - w));
            memcpy(out, &c, 8);
            c = kraken_digits8((uint32_t)(u % 100000000));
            memcpy(out + w - 8, &c, 8);
        } else {
            c = kraken_digits8((uint32_t)(u / 10000000000000000ULL)) >> (8 * (24 - w));
            memcpy(out, &c, 8);
            u %= 10000000000000000ULL;
            c = kraken_digits8((uint32_t)(u / 100000000));
            memcpy(out + w - 16, &c, 8);
            c = kraken_digits8((uint32_t)(u % 100000000));
            memcpy(out + w - 8, &c, 8);
        }
    #else
        while (w > 0) {
            out[--w] = (char)('0' + u % 10);
            u /= 10;
        }
    #endif
    }

    /* the number of decimal digits of u (0 for 0) */
    static inline int kraken_ndigits(uint64_t u) {
        int t = ((64 - __builtin_clzll(u | 1)) * 1233) >> 12;      /* ~ log10(2**bits) */
        return t + 1 - (u < kraken_pow10[t]);
    }

    /* A checksum field: f"{v:.{d}f}" without its "." and leading zeros (feeds/checksum.py),
       written to out (room for 48 bytes); its length, or -1 when v is not finite, >= 2**63 or
       d is outside 0..19 (the caller has Python format it).

       Exact: the double is m * 2**e with integers m < 2**53 and e, so v * 10**d is the integer
       m * 10**d scaled by 2**e, held whole in 128 bits (m * 10**19 < 2**117) and rounded to the
       nearest integer n, a tie to the even one: the digits Python's correctly rounded 'f'
       formatting prints. Positive: the digits of n ("" for 0: every digit was a leading zero).
       Negative: "-" then n padded to d + 1 digits (the "0" before the point is not stripped
       after a "-"). */
    static int kraken_field(double v, int d, char *out) {
        uint64_t bits, m, u;
        unsigned __int128 n, x, half;
        int exponent, neg, k, len = 0, width;
        memcpy(&bits, &v, 8);
        neg = (int)(bits >> 63);
        exponent = (int)((bits >> 52) & 0x7FF);
        m = bits & ((1ULL << 52) - 1);
        if (exponent == 0x7FF || d < 0 || d > 19)
            return -1;
        if (exponent == 0) {
            k = 1074;                                   /* zero, subnormal: m * 2**-1074 */
        } else {
            m |= 1ULL << 52;
            k = 1075 - exponent;                        /* v = m * 2**-k */
        }
        if (k <= 0) {
            if (k < -10)
                return -1;                              /* v >= 2**63 */
            n = ((unsigned __int128)m << -k) * kraken_pow10[d];
        } else {
            x = (unsigned __int128)m * kraken_pow10[d];
            if (k >= 118) {
                n = 0;                                  /* x < 2**117 <= half of 2**k */
            } else {
                half = (unsigned __int128)1 << (k - 1);
                n = x >> k;
                x &= (half << 1) - 1;                   /* the remainder */
                if (x > half || (x == half && (n & 1)))
                    n += 1;
            }
        }
        if (n >> 64) {                                  /* 20 digits or more (rare) */
            uint64_t lo = (uint64_t)(n % kraken_pow10[19]);
            uint64_t hi = (uint64_t)(n / kraken_pow10[19]);
            char tmp[48];
            int p = 48;
            for (k = 0; k < 19; k++) {
                tmp[--p] = (char)('0' + lo % 10);
                lo /= 10;
            }
            while (hi) {
                tmp[--p] = (char)('0' + hi % 10);
                hi /= 10;
            }
            if (neg)
                out[len++] = '-';
            memcpy(out + len, tmp + p, 48 - p);
            return len + 48 - p;
        }
        u = (uint64_t)n;
        width = kraken_ndigits(u);
        if (neg) {
            out[len++] = '-';
            if (width < d + 1)
                width = d + 1;
        }
        kraken_put_digits(u, width, out + len);
        return len + width;
    }

    /* kraken_field through a cache of its last texts: a book's top levels barely change between
       messages, so most of its 40 fields were written moments ago. Keyed by the exact double
       and d (a pure function of both); direct-mapped, a miss simply computes and replaces. */
    typedef struct {
        uint64_t bits;
        int32_t d;                                      /* -1: empty */
        int32_t len;
        char text[24];
    } kraken_memo_entry;

    static kraken_memo_entry kraken_memo[4096];

    static void kraken_memo_init(void) {
        int i;
        for (i = 0; i < 4096; i++)
            kraken_memo[i].d = -1;
    }

    static inline int kraken_field_cached(double v, int d, char *out) {
        uint64_t bits;
        kraken_memo_entry *e;
        int k;
        if ((unsigned)d > 19)
            return kraken_field(v, d, out);             /* never cached (nor the -1 of empty) */
        memcpy(&bits, &v, 8);
        e = &kraken_memo[((bits * 0x9E3779B97F4A7C15ULL) >> 52) ^ (uint64_t)(d & 0xFF)];
        if (e->bits == bits && e->d == d) {
            memcpy(out, e->text, 24);
            return e->len;
        }
        k = kraken_field(v, d, out);
        if (k >= 0 && k <= 24) {
            e->bits = bits;
            e->d = d;
            e->len = k;
            memcpy(e->text, out, 24);
        }
        return k;
    }
    """
    int kraken_field(double v, int d, char *out) noexcept nogil
    int kraken_field_cached(double v, int d, char *out) noexcept nogil
    void kraken_memo_init() noexcept nogil

kraken_memo_init()

cdef enum:
    CHECKSUM_LEVELS = 10      # feeds.checksum.KRAKEN_LEVELS: the top 10 asks, then bids
    FIELD_MAX = 48            # the most a field's fast path writes
    TEXT_MAX = 2048           # checksum text gathered before it is CRC'd (40 fields fit)
    DIRECT_IDS = 1 << 22      # instrument ids below this have their precision in a C array
    DEFAULT_DECIMALS = 8      # a book whose precision is unknown (none learnt, none listed)

DEFAULT_PRECISION = (DEFAULT_DECIMALS, DEFAULT_DECIMALS)

# checksum precisions: v2 symbol -> (price_decimals, qty_decimals) from the instrument list
# (feeds.kraken.parse_instruments fills it); symbol -> the most decimals seen in its snapshots
PRECISION = {}
INFERRED = {}


# -- instrument id -> precision -------------------------------------------------------------------

cdef struct Precision:
    int32_t price
    int32_t qty
    bint known


@cython.final
cdef class InstrumentPrecisions:
    """instrument id -> (price_decimals, qty_decimals) its checksum uses: the decoder learns
    them and the checksum reads them in C (ids below DIRECT_IDS in an array; any other key in
    a dict); a mapping to Python (feeds.kraken._INST_PRECISION, tests)."""

    cdef Precision *direct
    cdef Py_ssize_t cap
    cdef dict others

    def __cinit__(self):
        self.direct = NULL
        self.cap = 0
        self.others = {}

    def __dealloc__(self):
        PyMem_Free(self.direct)

    cdef inline bint has(self, uint32_t inst):
        if inst < DIRECT_IDS:
            return inst < self.cap and self.direct[inst].known
        return inst in self.others

    cdef int of(self, uint32_t inst, int *price, int *qty) except -1:
        """price/qty := the instrument's precision, else the default."""
        if inst < DIRECT_IDS:
            if inst < self.cap and self.direct[inst].known:
                price[0] = self.direct[inst].price
                qty[0] = self.direct[inst].qty
                return 0
        else:
            pair = self.others.get(inst)
            if pair is not None:
                price[0], qty[0] = pair
                return 0
        price[0] = qty[0] = DEFAULT_DECIMALS
        return 0

    cdef int put(self, object key, object pair) except -1:
        """The precision of key := pair (two ints, each stored as a C int)."""
        cdef int32_t price, qty
        cdef Py_ssize_t cap
        cdef Precision *grown
        a, b = pair
        price = PyNumber_Index(a)        # an int (a float is no precision: f"{v:.1.5f}" failed)
        qty = PyNumber_Index(b)
        if not direct_key(key):
            self.others[key] = (price, qty)
            return 0
        if key >= self.cap:
            cap = min(max(64, self.cap * 2, key + 1), DIRECT_IDS)
            grown = <Precision *>PyMem_Realloc(self.direct, cap * sizeof(Precision))
            if grown == NULL:
                raise MemoryError()
            memset(grown + self.cap, 0, (cap - self.cap) * sizeof(Precision))
            self.direct = grown
            self.cap = cap
        self.direct[<Py_ssize_t>key] = Precision(price, qty, True)
        return 0

    # -- the mapping ----------------------------------------------------------------------------
    def __setitem__(self, key, pair):
        self.put(key, pair)

    def __contains__(self, key):
        if direct_key(key):
            return key < self.cap and self.direct[<Py_ssize_t>key].known
        return key in self.others

    def get(self, key, default=None):
        cdef Precision p
        if not direct_key(key):
            return self.others.get(key, default)
        if key < self.cap and self.direct[<Py_ssize_t>key].known:
            p = self.direct[<Py_ssize_t>key]
            return (p.price, p.qty)
        return default

    def __getitem__(self, key):
        if key not in self:
            raise KeyError(key)
        return self.get(key)

    def __delitem__(self, key):
        if key not in self:
            raise KeyError(key)
        if direct_key(key):
            self.direct[<Py_ssize_t>key].known = False
        else:
            del self.others[key]

    def keys(self):
        cdef Py_ssize_t i
        return [i for i in range(self.cap) if self.direct[i].known] + list(self.others)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self):
        return len(self.keys())

    def items(self):
        return [(k, self.get(k)) for k in self.keys()]

    def clear(self):
        if self.cap:
            memset(self.direct, 0, self.cap * sizeof(Precision))
        self.others.clear()

    def __repr__(self):
        return f"InstrumentPrecisions({dict(self.items())!r})"


cdef inline bint direct_key(object key):
    return type(key) is int and 0 <= key < DIRECT_IDS


cdef InstrumentPrecisions PRECISIONS = InstrumentPrecisions()
INST_PRECISION = PRECISIONS


cdef int decimals(double x) except -1:
    """feeds.kraken's former _decimals: the decimals of repr(x), the number as the venue wrote
    it (740.0 -> 0, 1.5e-05 -> 6); ValueError for inf and nan, as r.index(".") raised."""
    cdef char *r = PyOS_double_to_string(x, b'r', 0, Py_DTSF_ADD_DOT_0, NULL)
    cdef Py_ssize_t n = 0, dot = -1, e = -1
    cdef int frac
    try:
        while r[n]:
            if r[n] == b'.' and dot < 0:
                dot = n
            elif r[n] == b'e' and e < 0:
                e = n
            n += 1
        if e >= 0:
            frac = e - dot - 1 if 0 <= dot < e else 0
            frac -= int(r[e + 1:n].decode())
            return frac if frac > 0 else 0
        if n >= 2 and r[n - 2] == b'.' and r[n - 1] == b'0':
            return 0
        if dot < 0:
            raise ValueError("substring not found")
        return n - dot - 1
    finally:
        PyMem_Free(r)


cdef int learn_precision(uint32_t inst, object symbol, const tickring_record *r, Py_ssize_t n) except -1:
    """The precision of an instrument for its checksum, from a book message's records (its
    levels as float() read them): the listed one, else the most decimals seen in the symbol's
    snapshots (never decreasing)."""
    cdef Py_ssize_t i
    cdef int pd = 0, qd = 0
    known = PRECISION.get(symbol)
    if known is None:
        for i in range(n):
            pd = max(pd, decimals(r[i].price))
            qd = max(qd, decimals(r[i].size))
        old = INFERRED.get(symbol, (0, 0))
        known = INFERRED[symbol] = (max(pd, old[0]), max(qd, old[1]))
    PRECISIONS.put(inst, known)
    return 0


# -- the checksum ----------------------------------------------------------------------------------

cdef struct Text:
    uint32_t crc              # of what was flushed
    Py_ssize_t n
    char buf[TEXT_MAX]


cdef inline void flush(Text *t) noexcept:
    t.crc = crc32_update(t.crc, t.buf, t.n)
    t.n = 0


cdef int put_text(Text *t, bytes text) except -1:
    flush(t)
    t.crc = crc32_update(t.crc, PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
    return 0


cdef bytes py_field(object value, int d):
    """The field rule in Python, for what kraken_field leaves to it."""
    text = value if isinstance(value, str) else f"{value:.{d}f}"
    return text.replace(".", "").lstrip("0").encode()


cdef inline int put_field(Text *t, double v, int d) except -1:
    cdef int k
    if t.n > TEXT_MAX - FIELD_MAX:
        flush(t)
    k = kraken_field_cached(v, d, t.buf + t.n)
    if k >= 0:
        t.n += k
        return 0
    return put_text(t, py_field(v, d))


cdef int put_value(Text *t, object value, int d) except -1:
    """A level's price or size as the Python hook gets it: a float, else Python's rule."""
    if PyFloat_CheckExact(value):
        return put_field(t, PyFloat_AS_DOUBLE(value), d)
    return put_text(t, py_field(value, d))


cdef int put_side(Text *t, const BookSide *s, Py_ssize_t n, double sign, int pd, int qd) except -1:
    """The best n levels of a side (the last ones of its array), best first: price, size."""
    cdef Py_ssize_t i, top = s.n - 1
    if n > s.n:
        n = s.n
    for i in range(n):
        put_field(t, sign * s.lv[top - i].key, pd)      # as Book.top_prices reads it
        put_field(t, s.lv[top - i].size, qd)
    return 0


@cython.final
cdef class KrakenChecksum(BookChecksum):
    """Kraken's book checksum of the keeper's book (feeds.checksum.kraken_checksum of its top
    10 asks and bids at the instrument's precision), in C: the keeper verifies it per message."""

    cdef int64_t of_book(self, Book b, int depth) except? -1:
        cdef Text t
        cdef int pd, qd
        cdef Py_ssize_t n = depth if depth < CHECKSUM_LEVELS else CHECKSUM_LEVELS
        PRECISIONS.of(b.inst, &pd, &qd)
        t.crc = 0
        t.n = 0
        if n > 0:
            put_side(&t, &b.ask, n, -1.0, pd, qd)
            put_side(&t, &b.bid, n, 1.0, pd, qd)
        flush(&t)
        return t.crc


CHECKSUM = KrakenChecksum()


def levels_checksum(asks, bids, int price_decimals, int qty_decimals):
    """feeds.checksum.kraken_checksum(asks, bids, ...) with this module's field rule: the top
    10 of each list of (price, qty), floats (or texts already at the precision)."""
    cdef Text t
    cdef int i
    t.crc = 0
    t.n = 0
    for levels in (asks, bids):
        for i, (p, q) in enumerate(levels):
            if i == CHECKSUM_LEVELS:
                break
            put_value(&t, p, price_decimals)
            put_value(&t, q, qty_decimals)
    flush(&t)
    return t.crc


def fast_field(double value, int decimals):
    """The checksum's field text of a float as its C path writes it (f"{value:.{decimals}f}"
    without "." and leading zeros), or None where Python formats it instead; for tests."""
    cdef char out[FIELD_MAX]
    cdef int k = kraken_field(value, decimals, out)
    return None if k < 0 else out[:k].decode()


# -- the decoder -----------------------------------------------------------------------------------

cdef int stamp(yyjson_val *v, int64_t *ns) except -1:
    """iso_ns(v) into ns[0]: 0; 1 when beyond int64 (the caller raises where it packs a record:
    packable). A time that is no string has no iso_ns (ISO_NS.get hashed it, iso_ns sliced it).
    Errors call it "timestamp"."""
    return iso_stamp(v, ns, b"timestamp")


cdef inline int packable(int over) except -1:
    return time_packable(over, b"timestamp")


cdef inline yyjson_val *mapping(yyjson_val *v, str what) except NULL:
    """v, which Python read with [key] or .get(key): it must be an object."""
    if not yyjson_is_obj(v):
        raise TypeError(f"{what} {py_value(v)!r:.60} is not an object")
    return v


@cython.final
cdef class KrakenDecoder(NativeDecoder):
    """Kraken spot v2 frames -> records (feeds/kraken.py's docstring says what and how)."""

    venue = "kraken"
    default_market = "spot"
    cdef dict odd_symbols     # symbols that are not strings -> instrument id

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root = self.parse(p, n)
        cdef yyjson_val *key
        cdef yyjson_val *channel = NULL
        cdef yyjson_val *type_ = NULL
        cdef yyjson_val *data = NULL
        cdef bint answer = False
        cdef size_t left
        mapping(root, "frame")
        left = unsafe_yyjson_get_len(root)
        key = unsafe_yyjson_get_first(root)
        while left:                      # the last of duplicate keys wins, as in a dict
            if key_is(key, b"channel", 7):
                channel = value_of(key)
            elif key_is(key, b"data", 4):
                data = value_of(key)
            elif key_is(key, b"type", 4):
                type_ = value_of(key)
            elif key_is(key, b"method", 6) or key_is(key, b"error", 5):
                answer = True
            key = unsafe_yyjson_get_next(value_of(key))
            left -= 1
        if channel == NULL or yyjson_is_null(channel):
            if answer:                   # acks (success true/false), pong, errors
                return 0
            raise DecodeError("kraken: message without channel or method")
        if text_is(channel, b"book", 4):
            return self.book(need(type_, "type"), need(data, "data"), ts_recv)
        if text_is(channel, b"trade", 5):
            return self.trades(need(data, "data"), ts_recv)
        if text_is(channel, b"ticker", 6):
            return self.ticker(need(data, "data"), ts_recv)
        if (text_is(channel, b"heartbeat", 9) or text_is(channel, b"ohlc", 4)
                or text_is(channel, b"instrument", 10) or text_is(channel, b"level3", 6)
                or text_is(channel, b"executions", 10) or text_is(channel, b"balances", 8)):
            return 0
        if text_is(channel, b"status", 6):
            return self.status(need(data, "data"))
        raise DecodeError(f"kraken: unexpected channel {py_value(channel)!r}")

    cdef uint32_t symbol_id(self, yyjson_val *v) except 0:
        """Instrument id of a symbol field, registered on first sight (a symbol that is no
        string by value, as the Python decoder's dict cache did)."""
        if yyjson_is_str(v):
            return self.inst(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v))
        symbol = py_value(v)
        if self.odd_symbols is None:
            self.odd_symbols = {}
        return symbol_by_value(self, self.odd_symbols, symbol)

    cdef int status(self, yyjson_val *data) except -1:
        """status: system "maintenance" -> the "shutdown" notice (per element, as it comes)."""
        cdef yyjson_val *d
        cdef yyjson_val *key
        cdef yyjson_val *system
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t left
        for i in range(count):
            mapping(d, "status")
            system = NULL
            left = unsafe_yyjson_get_len(d)
            key = unsafe_yyjson_get_first(d)
            while left:
                if key_is(key, b"system", 6):
                    system = value_of(key)
                key = unsafe_yyjson_get_next(value_of(key))
                left -= 1
            if text_is(system, b"maintenance", 11):
                self.notices.append("shutdown")
            d = unsafe_yyjson_get_next(d)
        return 0

    cdef int trades(self, yyjson_val *data, int64_t ts_recv) except -1:
        """trade -> TRADE per trade (side = the taker's, id = trade_id)."""
        cdef yyjson_val *t
        cdef yyjson_val *key
        cdef yyjson_val *symbol
        cdef yyjson_val *timestamp
        cdef yyjson_val *side
        cdef yyjson_val *price
        cdef yyjson_val *qty
        cdef yyjson_val *trade_id
        cdef Py_ssize_t count = items(data, &t), i
        cdef size_t left
        cdef uint32_t inst
        cdef int64_t ts
        cdef int sd
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            mapping(t, "trade")
            symbol = timestamp = side = price = qty = trade_id = NULL
            left = unsafe_yyjson_get_len(t)
            key = unsafe_yyjson_get_first(t)
            while left:
                if key_is(key, b"symbol", 6):
                    symbol = value_of(key)
                elif key_is(key, b"side", 4):
                    side = value_of(key)
                elif key_is(key, b"price", 5):
                    price = value_of(key)
                elif key_is(key, b"qty", 3):
                    qty = value_of(key)
                elif key_is(key, b"trade_id", 8):
                    trade_id = value_of(key)
                elif key_is(key, b"timestamp", 9):
                    timestamp = value_of(key)
                key = unsafe_yyjson_get_next(value_of(key))
                left -= 1
            inst = self.symbol_id(need(symbol, "symbol"))
            packable(stamp(need(timestamp, "timestamp"), &ts))
            sd = side_of(need(side, "side"))
            put_level(r + i, ts, ts_recv, inst, K_TRADE, sd, 0, number(need(price, "price")),
                      number(need(qty, "qty")), 0.0, whole(need(trade_id, "trade_id")))
            t = unsafe_yyjson_get_next(t)
        self.out.n += count
        return 0

    cdef int ticker(self, yyjson_val *data, int64_t ts_recv) except -1:
        """ticker -> QUOTE of bid/bid_qty/ask/ask_qty (ts = the message's timestamp, else ts_recv)."""
        cdef yyjson_val *t
        cdef yyjson_val *key
        cdef yyjson_val *symbol
        cdef yyjson_val *timestamp
        cdef yyjson_val *bid
        cdef yyjson_val *bid_qty
        cdef yyjson_val *ask
        cdef yyjson_val *ask_qty
        cdef Py_ssize_t count = items(data, &t), i
        cdef size_t left
        cdef uint32_t inst
        cdef int64_t ts
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            mapping(t, "ticker")
            symbol = timestamp = bid = bid_qty = ask = ask_qty = NULL
            left = unsafe_yyjson_get_len(t)
            key = unsafe_yyjson_get_first(t)
            while left:
                if key_is(key, b"symbol", 6):
                    symbol = value_of(key)
                elif key_is(key, b"bid", 3):
                    bid = value_of(key)
                elif key_is(key, b"bid_qty", 7):
                    bid_qty = value_of(key)
                elif key_is(key, b"ask", 3):
                    ask = value_of(key)
                elif key_is(key, b"ask_qty", 7):
                    ask_qty = value_of(key)
                elif key_is(key, b"timestamp", 9):
                    timestamp = value_of(key)
                key = unsafe_yyjson_get_next(value_of(key))
                left -= 1
            inst = self.symbol_id(need(symbol, "symbol"))
            ts = ts_recv
            if truthy(timestamp):
                packable(stamp(timestamp, &ts))
            put_quote(r + i, ts, ts_recv, inst, 0, number(need(bid, "bid")),
                      number(need(bid_qty, "bid_qty")), number(need(ask, "ask")),
                      number(need(ask_qty, "ask_qty")))
            t = unsafe_yyjson_get_next(t)
        self.out.n += count
        return 0

    cdef int book(self, yyjson_val *type_, yyjson_val *data, int64_t ts_recv) except -1:
        """book -> BOOK per level, bids then asks in wire order (SNAPSHOT on type snapshot), and
        a BookEvent per symbol with its checksum; the instrument's checksum precision is learnt
        from every snapshot and from its first message."""
        cdef bint snap = text_is(type_, b"snapshot", 8)
        cdef yyjson_val *d
        cdef Py_ssize_t count = items(data, &d), i
        for i in range(count):
            self.book_message(d, snap, ts_recv)
            d = unsafe_yyjson_get_next(d)
        return 0

    cdef int book_message(self, yyjson_val *d, bint snap, int64_t ts_recv) except -1:
        cdef yyjson_val *key
        cdef yyjson_val *symbol = NULL
        cdef yyjson_val *timestamp = NULL
        cdef yyjson_val *bids = NULL
        cdef yyjson_val *asks = NULL
        cdef yyjson_val *checksum = NULL
        cdef yyjson_val *b = NULL
        cdef yyjson_val *a = NULL
        cdef size_t left
        cdef uint32_t inst
        cdef int64_t ts = ts_recv
        cdef int over = 0
        cdef Py_ssize_t nb, na, start
        cdef tickring_record *r
        cdef uint16_t flags = F_SNAPSHOT if snap else 0
        mapping(d, "book message")
        left = unsafe_yyjson_get_len(d)
        key = unsafe_yyjson_get_first(d)
        while left:
            if key_is(key, b"symbol", 6):
                symbol = value_of(key)
            elif key_is(key, b"bids", 4):
                bids = value_of(key)
            elif key_is(key, b"asks", 4):
                asks = value_of(key)
            elif key_is(key, b"checksum", 8):
                checksum = value_of(key)
            elif key_is(key, b"timestamp", 9):
                timestamp = value_of(key)
            key = unsafe_yyjson_get_next(value_of(key))
            left -= 1
        inst = self.symbol_id(need(symbol, "symbol"))
        self.note_book(inst)
        if truthy(timestamp):
            over = stamp(timestamp, &ts)
        nb = items(need(bids, "bids"), &b)
        na = items(need(asks, "asks"), &a)
        if nb + na:
            packable(over)
        start = self.out.n
        r = self.room(nb + na)
        put_levels(r, b, nb, ts, ts_recv, inst, S_BID, flags)
        put_levels(r + nb, a, na, ts, ts_recv, inst, S_ASK, flags)
        self.out.n = start + nb + na
        if snap or not PRECISIONS.has(inst):
            learn_precision(inst, py_value(symbol), r, nb + na)
        self.push_event(inst, start, start + nb + na, snap, -1, -1, -1, True,
                        whole(need(checksum, "checksum")))
        return 0


cdef int put_levels(tickring_record *r, yyjson_val *lv, Py_ssize_t n, int64_t ts, int64_t ts_recv,
                    uint32_t inst, uint8_t side, uint16_t flags) except -1:
    """One BOOK record per level object {"price", "qty"} (qty 0 deletes)."""
    cdef yyjson_val *key
    cdef yyjson_val *price
    cdef yyjson_val *qty
    cdef size_t left
    cdef Py_ssize_t i
    for i in range(n):
        mapping(lv, "level")
        price = qty = NULL
        left = unsafe_yyjson_get_len(lv)
        key = unsafe_yyjson_get_first(lv)
        while left:
            if key_is(key, b"price", 5):
                price = value_of(key)
            elif key_is(key, b"qty", 3):
                qty = value_of(key)
            key = unsafe_yyjson_get_next(value_of(key))
            left -= 1
        put_level(r + i, ts, ts_recv, inst, K_BOOK, side, flags, number(need(price, "price")),
                  number(need(qty, "qty")), 0.0, 0)
        lv = unsafe_yyjson_get_next(lv)
    return 0

