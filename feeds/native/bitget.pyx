# cython: language_level=3
"""Bitget v2 public frames -> records, in C, and the `books` checksum of the keeper's book: the
rules feeds/bitget.py's docstring lists, implemented once, here (feeds/bitget.py declares the
venue and uses this decoder and checksum).

The records, book events and errors are the ones the former Python decoder (orjson + dict
lookups + float()/int()) gave, odd input included: a repeated key counts once, the last one (a
dict); a number where a string is documented is read as float()/int() read it; a level or level
list of another shape (a string, an object) is indexed and iterated as Python did (a rare path,
in Python); trade ids other than short ASCII digit strings or integers, and instIds that are no
strings, go through the Python rules themselves. A time or `seq` is checked against int64 only
where it is packed into a record, as struct packing did.

The level texts. Bitget checksums its ORIGINAL "price:size" strings, so the decoder keeps, per
instrument and side, the text of every live `books` level (replaced on a snapshot, size 0
removes; kept across connections, as the book is: a module-wide table by instrument id). A side
is a sorted C array keyed like the keeper's Book (bids: the price, asks: minus the price, best
last), so the checksum walks the book's top levels and the texts side by side and finds each
level's text by its price (equal floats), with a binary search only where the two disagree. A
book level without a text (the book and the texts disagree) contributes repr(price):repr(size),
as the Python hook did; the book's size never replaces the text's.

Decided differently, on purpose (frames Bitget never sends): a `books` level whose price is NaN
keeps no text (Python's sorted list took it at the front, where later bisects went wrong); a
book message's seq, pseq or checksum whose int() leaves int64 is a malformed frame even where
nothing packs it (Python put the big int into the BookEvent, which holds int64s here).
"""
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.math cimport isnan
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memmove, strlen

from shm._record cimport (F_SNAPSHOT, K_BOOK, K_TRADE, S_ASK, S_BID, put_level, put_quote,
                          tickring_record)

from .book cimport Book, BookChecksum, Level
from .crc32 cimport crc32_update
from .decoder cimport NativeDecoder, py_value
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_bool, yyjson_get_sint, yyjson_get_uint,
                    yyjson_is_arr, yyjson_is_bool, yyjson_is_null, yyjson_is_obj, yyjson_is_sint,
                    yyjson_is_str, yyjson_is_uint, yyjson_val)
from .values cimport (dbl, first_level, id_digits, items, key_is, level_pair, ms_to_ns,
                      ms_to_ns_late, need, py_items, py_pair, side_of, text_is, truthy, value_of,
                      whole_late)

from feeds.decoder import DecodeError
from feeds.wire import id_from_str

cdef extern from "Python.h":
    char *PyOS_double_to_string(double val, char format_code, int precision, int flags,
                                int *ptype) except NULL
    int Py_DTSF_ADD_DOT_0


cdef enum:
    CHECKSUM_LEVELS = 25      # feeds.checksum.BITGET_LEVELS
    KEY_MAX = 120             # instId bytes read into the cache key on the stack
    TAG_SPOT = 1              # the cache key's first byte: the market the instType says
    TAG_PERP = 2
    COPY_WIDE = 32            # a piece this short is copied as 32 bytes: its buffer holds 32
    TEXT_SLACK = 64           # the checksum string's buffer has this much room past its end


# -- the level texts: per instrument and side, "price:size" of every live level ----------------

cdef struct Piece:
    char *s                   # "price_text:size_text", not NUL-terminated
    Py_ssize_t n
    Py_ssize_t cap


cdef struct TextSide:
    double *key               # ascending, as the keeper's Book: bids the price, asks minus it
    Piece *piece              # the text of key[i]
    Py_ssize_t n
    Py_ssize_t cap


cdef inline Py_ssize_t lower_bound(const double *key, Py_ssize_t n, double k) noexcept nogil:
    """The first index whose key is >= k (n if none)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if key[mid] < k:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int piece_set(Piece *pc, const char *a, Py_ssize_t na, const char *b, Py_ssize_t nb) except -1:
    """pc := a[:na] + ":" + b[:nb] (nb < 0: a is the whole text). The buffer holds at least
    COPY_WIDE bytes, whatever the text's length."""
    cdef Py_ssize_t n = na + 1 + nb if nb >= 0 else na
    cdef Py_ssize_t cap = n if n > COPY_WIDE else COPY_WIDE
    cdef char *s
    if cap > pc.cap:
        s = <char *>PyMem_Realloc(pc.s, cap)
        if s == NULL:
            raise MemoryError()
        pc.s = s
        pc.cap = cap
    memcpy(pc.s, a, na)
    if nb >= 0:
        pc.s[na] = b":"
        memcpy(pc.s + na + 1, b, nb)
    pc.n = n
    return 0


cdef void side_clear(TextSide *s) noexcept:
    cdef Py_ssize_t i
    for i in range(s.n):
        PyMem_Free(s.piece[i].s)
    s.n = 0


cdef int side_update(TextSide *s, double k, double size, const char *a, Py_ssize_t na,
                     const char *b, Py_ssize_t nb) except -1:
    """A level arrived: its text replaces the one of an equal key (size != 0), or the level is
    removed (size 0), or a new level takes its text. A NaN key keeps none (see the docstring)."""
    cdef Py_ssize_t i = lower_bound(s.key, s.n, k), cap
    cdef double *keys
    cdef Piece *pieces
    cdef Piece text
    if i < s.n and s.key[i] == k:
        if size != 0.0:
            return piece_set(&s.piece[i], a, na, b, nb)     # the key stays (0.0 vs -0.0)
        PyMem_Free(s.piece[i].s)
        memmove(s.key + i, s.key + i + 1, (s.n - i - 1) * sizeof(double))
        memmove(s.piece + i, s.piece + i + 1, (s.n - i - 1) * sizeof(Piece))
        s.n -= 1
        return 0
    if size == 0.0 or isnan(k):
        return 0
    text.s = NULL
    text.cap = 0
    piece_set(&text, a, na, b, nb)          # first: a failure leaves the side as it was
    if s.n == s.cap:
        cap = s.cap * 2 if s.cap else 32
        keys = <double *>PyMem_Realloc(s.key, cap * sizeof(double))
        if keys == NULL:
            PyMem_Free(text.s)
            raise MemoryError()
        s.key = keys
        pieces = <Piece *>PyMem_Realloc(s.piece, cap * sizeof(Piece))
        if pieces == NULL:
            PyMem_Free(text.s)
            raise MemoryError()
        s.piece = pieces
        s.cap = cap
    memmove(s.key + i + 1, s.key + i, (s.n - i) * sizeof(double))
    memmove(s.piece + i + 1, s.piece + i, (s.n - i) * sizeof(Piece))
    s.key[i] = k
    s.piece[i] = text
    s.n += 1
    return 0


cdef class LevelTexts:
    """One instrument's level texts (the decoder's; the checksum reads them)."""
    cdef TextSide bid
    cdef TextSide ask

    def __dealloc__(self):
        side_clear(&self.bid)
        side_clear(&self.ask)
        PyMem_Free(self.bid.key)
        PyMem_Free(self.bid.piece)
        PyMem_Free(self.ask.key)
        PyMem_Free(self.ask.piece)

    cdef void clear(self) noexcept:
        side_clear(&self.bid)
        side_clear(&self.ask)


cdef dict TEXTS = {}          # instrument id -> LevelTexts, for every decoder of the process


cdef LevelTexts texts_of(uint32_t inst, bint fresh):
    """The instrument's texts; emptied when fresh (a snapshot), made on first sight."""
    cdef LevelTexts t = TEXTS.get(inst)
    if t is None:
        t = TEXTS[inst] = LevelTexts()
    elif fresh:
        t.clear()
    return t


cdef list side_view(TextSide *s, double sign):
    """[(price, text)] of a side, prices ascending."""
    cdef Py_ssize_t i
    out = [(sign * s.key[i], PyUnicode_DecodeUTF8(s.piece[i].s, s.piece[i].n, NULL))
           for i in range(s.n)]
    if sign < 0:
        out.reverse()
    return out


cdef class LevelStrings:
    """instrument -> (bid prices, bid texts, ask prices, ask texts), prices ascending, texts
    "price:size" as the venue sent them: the decoder's level texts seen from Python (tests,
    debugging). Reads and writes copy: a tuple read is not the table, one written replaces it."""

    def __getitem__(self, instrument):
        cdef LevelTexts t = TEXTS[instrument]
        bids = side_view(&t.bid, 1.0)
        asks = side_view(&t.ask, -1.0)
        return ([p for p, _ in bids], [s for _, s in bids], [p for p, _ in asks],
                [s for _, s in asks])

    def __setitem__(self, instrument, value):
        cdef LevelTexts t = LevelTexts()
        bid_prices, bid_texts, ask_prices, ask_texts = value
        for price, text in zip(bid_prices, bid_texts):
            b = text.encode()
            side_update(&t.bid, price, 1.0, b, len(b), b"", -1)
        for price, text in zip(ask_prices, ask_texts):
            b = text.encode()
            side_update(&t.ask, -price, 1.0, b, len(b), b"", -1)
        TEXTS[instrument] = t

    def __delitem__(self, instrument):
        del TEXTS[instrument]

    def __contains__(self, instrument):
        return instrument in TEXTS

    def __len__(self):
        return len(TEXTS)

    def __iter__(self):
        return iter(list(TEXTS))

    def get(self, instrument, default=None):
        return self[instrument] if instrument in TEXTS else default

    def pop(self, instrument, *default):
        if instrument in TEXTS:
            value = self[instrument]
            del TEXTS[instrument]
            return value
        if default:
            return default[0]
        raise KeyError(instrument)


LEVEL_STRINGS = LevelStrings()


# -- the checksum ---------------------------------------------------------------------------------

cdef char *_text = NULL         # the checksum string being built (reused)
cdef Py_ssize_t _text_cap = 0


cdef int text_grow(Py_ssize_t n) except -1:
    """_text holds n + TEXT_SLACK bytes (and some more, to grow less often)."""
    global _text, _text_cap
    cdef Py_ssize_t cap = 2 * (n + TEXT_SLACK)
    cdef char *grown = <char *>PyMem_Realloc(_text, cap)
    if grown == NULL:
        raise MemoryError()
    _text = grown
    _text_cap = cap
    return 0


cdef Py_ssize_t put_float(Py_ssize_t at, double x) except -1:
    """repr(x) at _text[at:]; the end."""
    cdef char *r = PyOS_double_to_string(x, b"r", 0, Py_DTSF_ADD_DOT_0, NULL)
    cdef Py_ssize_t n = strlen(r)
    try:
        if at + n + TEXT_SLACK > _text_cap:
            text_grow(at + n)
        memcpy(_text + at, r, n)
    finally:
        PyMem_Free(r)
    return at + n


cdef Py_ssize_t put_repr(Py_ssize_t at, const Level *lv, double sign) except -1:
    """A book level without a text: "repr(price):repr(size):" at _text[at:]; the end."""
    at = put_float(at, sign * lv.key)
    _text[at] = b":"
    at = put_float(at + 1, lv.size)
    _text[at] = b":"
    return at + 1


cdef inline Py_ssize_t put_text(Py_ssize_t at, const Level *lv, double sign, const TextSide *s,
                                Py_ssize_t *hint) except -1:
    """The text of one book level and a ":" at _text[at:]; the end. hint: where the side's
    next text is expected (the book and the texts walk down together)."""
    cdef Py_ssize_t i = hint[0]
    cdef const Piece *pc
    if s == NULL:
        return put_repr(at, lv, sign)
    if not (0 <= i < s.n and s.key[i] == lv.key):
        i = lower_bound(s.key, s.n, lv.key)           # texts and book disagree here: search
        if not (i < s.n and s.key[i] == lv.key):
            hint[0] = i - 1
            return put_repr(at, lv, sign)
    hint[0] = i - 1
    pc = &s.piece[i]
    if at + pc.n + TEXT_SLACK > _text_cap:
        text_grow(at + pc.n)
    if pc.n <= COPY_WIDE:       # one fixed-size copy: pieces and _text have the room (see enum)
        memcpy(_text + at, pc.s, COPY_WIDE)
    else:
        memcpy(_text + at, pc.s, pc.n)
    at += pc.n
    _text[at] = b":"
    return at + 1


cdef int64_t checksum_of(LevelTexts t, const Level *bids, Py_ssize_t nbids, const Level *asks,
                         Py_ssize_t nasks, Py_ssize_t depth) except? -1:
    """Bitget's signed CRC32 of "bid1:ask1:bid2:ask2:..." over the top min(depth, 25) levels of
    each side (a shorter side stops contributing); levels as the Book keeps them (best last)."""
    cdef Py_ssize_t n = min(depth, <Py_ssize_t>CHECKSUM_LEVELS), nb, na, i, at = 0
    cdef Py_ssize_t hb = -1, ha = -1
    cdef TextSide *tb = NULL
    cdef TextSide *ta = NULL
    cdef uint32_t crc
    if n < 0:
        n = 0
    nb = min(nbids, n)
    na = min(nasks, n)
    if t is not None:
        tb = &t.bid
        ta = &t.ask
        hb = tb.n - 1
        ha = ta.n - 1
    if _text_cap == 0:
        text_grow(0)
    for i in range(max(nb, na)):
        if i < nb:
            at = put_text(at, &bids[nbids - 1 - i], 1.0, tb, &hb)
        if i < na:
            at = put_text(at, &asks[nasks - 1 - i], -1.0, ta, &ha)
    crc = crc32_update(0, _text, at - 1 if at else 0)           # without the last ":"
    return <int64_t>crc - 0x100000000 if crc & 0x80000000 else <int64_t>crc


cdef class BitgetChecksum(BookChecksum):
    """The keeper's native check (book_checksum.native): the checksum of its Book's top levels."""

    cdef int64_t of_book(self, Book b, int depth) except? -1:
        return checksum_of(TEXTS.get(b.inst), b.bid.lv, b.bid.n, b.ask.lv, b.ask.n, depth)


def levels_checksum(bids, asks, instrument) -> int:
    """The same checksum of (price, size) levels, best first (the Python hook's form): the
    levels are laid out as the Book keeps them and go through the same C."""
    cdef Py_ssize_t nb, na, i
    cdef Level *lv
    bids = bids[:CHECKSUM_LEVELS]
    asks = asks[:CHECKSUM_LEVELS]
    nb = len(bids)
    na = len(asks)
    lv = <Level *>PyMem_Malloc((nb + na + 1) * sizeof(Level))
    if lv == NULL:
        raise MemoryError()
    try:
        for i in range(nb):
            lv[nb - 1 - i].key = bids[i][0]
            lv[nb - 1 - i].size = bids[i][1]
        for i in range(na):
            lv[nb + na - 1 - i].key = -<double>asks[i][0]
            lv[nb + na - 1 - i].size = asks[i][1]
        return checksum_of(TEXTS.get(instrument), lv, nb, lv + nb, na, CHECKSUM_LEVELS)
    finally:
        PyMem_Free(lv)


# -- values as the Python decoder read them -----------------------------------------------------------

def _py_trade_id(i):
    """The Python decoder's trade id rule (the native path reads short digit strings itself)."""
    return int(i) if type(i) is str and len(i) < 19 and i.isdigit() else id_from_str(i)


cdef int64_t trade_id(yyjson_val *v) except? -1:
    cdef int64_t x
    if yyjson_is_str(v):
        if id_digits(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), &x):
            return x
    elif yyjson_is_sint(v) or (yyjson_is_uint(v) and yyjson_get_uint(v) < (<uint64_t>1 << 63)):
        return yyjson_get_sint(v)
    elif yyjson_is_bool(v):
        return yyjson_get_bool(v)
    try:
        return _py_trade_id(py_value(v))      # OverflowError beyond int64, as packing raised
    except AttributeError as e:                # a float or null has no isdigit()
        raise TypeError(str(e)) from None


cdef bytes py_text(x):
    """f"{x}" of a level's price or size as the Python decoder wrote it, as UTF-8."""
    return f"{x}".encode()


# -- the decoder ----------------------------------------------------------------------------------

cdef class BitgetDecoder(NativeDecoder):
    """Bitget v2 public frames -> records (feeds/bitget.py's docstring says what and how)."""

    venue = "bitget"
    default_market = "spot"

    def _new_id(self, str key):
        # the C symbol cache's keys are the market tag then the instId (see instrument())
        i = self.instruments.id(key[1:], "spot" if ord(key[0]) == TAG_SPOT else "perp")
        if not 0 < i < (1 << 32):
            raise ValueError(f"bitget: instrument id {i} of {key[1:]!r} is out of range")
        return i

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef yyjson_val *root
        cdef yyjson_val *k
        cdef yyjson_val *arg = NULL
        cdef yyjson_val *data = NULL
        cdef yyjson_val *action = NULL
        cdef yyjson_val *channel = NULL
        cdef yyjson_val *inst_type = NULL
        cdef yyjson_val *inst_id = NULL
        cdef bint has_event = False, has_code = False
        cdef size_t i, left
        cdef const char *ch
        cdef size_t chn
        cdef uint32_t inst
        if n == 4 and memcmp(p, b"pong", 4) == 0:
            return 0
        root = self.parse(p, n)
        if not yyjson_is_obj(root):                 # m.get(...): AttributeError in Python
            raise TypeError(f"a frame must be an object: {py_value(root)!r:.60}")
        k = unsafe_yyjson_get_first(root)
        left = unsafe_yyjson_get_len(root)
        while left:                                 # the last of duplicate keys wins, as in a dict
            if key_is(k, b"arg", 3):
                arg = value_of(k)
            elif key_is(k, b"data", 4):
                data = value_of(k)
            elif key_is(k, b"action", 6):
                action = value_of(k)
            elif key_is(k, b"event", 5):
                has_event = True
            elif key_is(k, b"code", 4):
                has_code = True
            k = unsafe_yyjson_get_next(value_of(k))
            left -= 1
        if has_event or arg == NULL or yyjson_is_null(arg):
            if has_event or has_code:               # acks, errors, login answers
                return 0
            raise DecodeError("bitget: message without arg or event")
        if data == NULL:
            return 0
        if not yyjson_is_obj(arg):
            raise TypeError(f"arg {py_value(arg)!r:.60} is not an object")
        k = unsafe_yyjson_get_first(arg)
        left = unsafe_yyjson_get_len(arg)
        while left:
            if key_is(k, b"channel", 7):
                channel = value_of(k)
            elif key_is(k, b"instType", 8):
                inst_type = value_of(k)
            elif key_is(k, b"instId", 6):
                inst_id = value_of(k)
            k = unsafe_yyjson_get_next(value_of(k))
            left -= 1
        if not yyjson_is_str(need(channel, "channel")):   # ch.startswith: AttributeError
            raise TypeError(f"channel {py_value(channel)!r:.60} is not a string")
        ch = unsafe_yyjson_get_str(channel)
        chn = unsafe_yyjson_get_len(channel)
        if chn >= 6 and memcmp(ch, b"candle", 6) == 0:
            return 0
        inst = self.instrument(inst_type, inst_id)   # registered even for an unknown channel
        if chn == 5 and memcmp(ch, b"trade", 5) == 0:
            return self.trades(data, inst, ts_recv)
        if chn == 5 and memcmp(ch, b"books", 5) == 0:
            self.note_book(inst)                    # from here a failure costs the book an update
            return self.books(data, inst, text_is(need(action, "action"), b"snapshot", 8), True,
                              ts_recv)
        if (chn == 6 and memcmp(ch, b"books5", 6) == 0) or (chn == 7 and memcmp(ch, b"books15", 7) == 0):
            self.note_book(inst)
            return self.books(data, inst, True, False, ts_recv)
        if chn == 6 and memcmp(ch, b"books1", 6) == 0:
            return self.books1(data, inst, ts_recv)
        if chn == 6 and memcmp(ch, b"ticker", 6) == 0:
            return self.ticker(data, inst, ts_recv)
        raise DecodeError(f"bitget: unexpected channel {py_value(channel)!r}")

    cdef uint32_t instrument(self, yyjson_val *inst_type, yyjson_val *inst_id) except 0:
        """The instrument of arg's instId in the market its instType says (SPOT/spot: spot, any
        other: perp; none: the decoder's market, read each time as it may change)."""
        cdef char key[KEY_MAX + 1]
        cdef size_t n
        if inst_type != NULL and (yyjson_is_arr(inst_type) or yyjson_is_obj(inst_type)):
            raise TypeError(f"unhashable instType {py_value(inst_type)!r:.60}")
        need(inst_id, "instId")
        if inst_type == NULL or yyjson_is_null(inst_type):
            return self.py_instrument(inst_id, self.market)
        if not yyjson_is_str(inst_id) or unsafe_yyjson_get_len(inst_id) > KEY_MAX:
            return self.py_instrument(inst_id, "spot" if (text_is(inst_type, b"SPOT", 4) or
                                                          text_is(inst_type, b"spot", 4)) else "perp")
        # the C cache: the market as a tag byte before the instId
        n = unsafe_yyjson_get_len(inst_id)
        key[0] = TAG_SPOT if text_is(inst_type, b"SPOT", 4) or text_is(inst_type, b"spot", 4) else TAG_PERP
        memcpy(key + 1, unsafe_yyjson_get_str(inst_id), n)
        return self.inst(key, n + 1)

    cdef uint32_t py_instrument(self, yyjson_val *inst_id, str market) except 0:
        """instruments.id(instId, market) of an odd instId (a number, a long string), by value."""
        if yyjson_is_arr(inst_id) or yyjson_is_obj(inst_id):
            raise TypeError(f"unhashable instId {py_value(inst_id)!r:.60}")
        try:
            i = self.instruments.id(py_value(inst_id), market)
        except AttributeError as e:              # a malformed frame to the Python decoder
            raise TypeError(str(e)) from None
        if not 0 < i < (1 << 32):
            raise ValueError(f"bitget: instrument id {i} is out of range")
        return i

    cdef int trades(self, yyjson_val *data, uint32_t inst, int64_t ts_recv) except -1:
        """trade -> TRADE (side = the taker's, id = tradeId)."""
        cdef yyjson_val *t
        cdef yyjson_val *k
        cdef yyjson_val *ts
        cdef yyjson_val *side
        cdef yyjson_val *price
        cdef yyjson_val *size
        cdef yyjson_val *tid
        cdef Py_ssize_t count = items(data, &t), i
        cdef size_t left
        cdef int64_t ns
        cdef int sd
        cdef double px, sz
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(t):
                raise TypeError(f"trade {py_value(t)!r:.60} is not an object")
            ts = side = price = size = tid = NULL
            k = unsafe_yyjson_get_first(t)
            left = unsafe_yyjson_get_len(t)
            while left:
                if key_is(k, b"ts", 2):
                    ts = value_of(k)
                elif key_is(k, b"side", 4):
                    side = value_of(k)
                elif key_is(k, b"price", 5):
                    price = value_of(k)
                elif key_is(k, b"size", 4):
                    size = value_of(k)
                elif key_is(k, b"tradeId", 7):
                    tid = value_of(k)
                k = unsafe_yyjson_get_next(value_of(k))
                left -= 1
            ns = ms_to_ns(need(ts, "ts"))
            sd = side_of(need(side, "side"))
            px = dbl(need(price, "price"))
            sz = dbl(need(size, "size"))
            put_level(r + i, ns, ts_recv, inst, K_TRADE, sd, 0, px, sz, 0.0,
                      trade_id(need(tid, "tradeId")))
            t = unsafe_yyjson_get_next(t)
        self.out.n += count
        return 0

    cdef int books1(self, yyjson_val *data, uint32_t inst, int64_t ts_recv) except -1:
        """books1 -> QUOTE of bids[0]/asks[0] when both sides have levels."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *ts
        cdef yyjson_val *bids
        cdef yyjson_val *asks
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t left
        cdef int64_t ns
        cdef double bp, bs, ap, az
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"books1 message {py_value(d)!r:.60} is not an object")
            ts = bids = asks = NULL
            k = unsafe_yyjson_get_first(d)
            left = unsafe_yyjson_get_len(d)
            while left:
                if key_is(k, b"ts", 2):
                    ts = value_of(k)
                elif key_is(k, b"bids", 4):
                    bids = value_of(k)
                elif key_is(k, b"asks", 4):
                    asks = value_of(k)
                k = unsafe_yyjson_get_next(value_of(k))
                left -= 1
            need(bids, "bids")
            need(asks, "asks")
            if truthy(bids) and truthy(asks):
                ns = ms_to_ns(need(ts, "ts"))
                first_level(bids, &bp, &bs)              # books1: float(b[0][0]), ...
                first_level(asks, &ap, &az)
                put_quote(self.room(1), ns, ts_recv, inst, 0, bp, bs, ap, az)
                self.out.n += 1
            d = unsafe_yyjson_get_next(d)
        return 0

    cdef int ticker(self, yyjson_val *data, uint32_t inst, int64_t ts_recv) except -1:
        """ticker -> QUOTE of bidPr/bidSz/askPr/askSz."""
        cdef yyjson_val *d
        cdef yyjson_val *k
        cdef yyjson_val *ts
        cdef yyjson_val *bp
        cdef yyjson_val *bs
        cdef yyjson_val *ap
        cdef yyjson_val *az
        cdef Py_ssize_t count = items(data, &d), i
        cdef size_t left
        cdef int64_t ns
        cdef double bid, bid_size, ask, ask_size
        cdef tickring_record *r = self.room(count)
        for i in range(count):
            if not yyjson_is_obj(d):
                raise TypeError(f"ticker {py_value(d)!r:.60} is not an object")
            ts = bp = bs = ap = az = NULL
            k = unsafe_yyjson_get_first(d)
            left = unsafe_yyjson_get_len(d)
            while left:
                if key_is(k, b"ts", 2):
                    ts = value_of(k)
                elif key_is(k, b"bidPr", 5):
                    bp = value_of(k)
                elif key_is(k, b"bidSz", 5):
                    bs = value_of(k)
                elif key_is(k, b"askPr", 5):
                    ap = value_of(k)
                elif key_is(k, b"askSz", 5):
                    az = value_of(k)
                k = unsafe_yyjson_get_next(value_of(k))
                left -= 1
            ns = ms_to_ns(need(ts, "ts"))
            bid = dbl(need(bp, "bidPr"))
            bid_size = dbl(need(bs, "bidSz"))
            ask = dbl(need(ap, "askPr"))
            ask_size = dbl(need(az, "askSz"))
            put_quote(r + i, ns, ts_recv, inst, 0, bid, bid_size, ask, ask_size)
            d = unsafe_yyjson_get_next(d)
        self.out.n += count
        return 0

    cdef int books(self, yyjson_val *data, uint32_t inst, bint snap, bint full,
                   int64_t ts_recv) except -1:
        """books (full: keeps the level texts) / books5 / books15: one book message per element."""
        cdef yyjson_val *d
        cdef Py_ssize_t count = items(data, &d), i
        for i in range(count):
            self.book_message(d, inst, snap, full, ts_recv)
            d = unsafe_yyjson_get_next(d)
        return 0

    cdef int book_message(self, yyjson_val *d, uint32_t inst, bint snap, bint full,
                          int64_t ts_recv) except -1:
        """BOOK per level, bids then asks (SNAPSHOT on snapshots, id = seq); BookEvent(first =
        last = seq, prev = pseq, checksum on updates). In the Python decoder's order: a failure
        after the texts changed leaves them changed."""
        cdef yyjson_val *k
        cdef yyjson_val *ts = NULL
        cdef yyjson_val *seq_v = NULL
        cdef yyjson_val *pseq_v = NULL
        cdef yyjson_val *checksum_v = NULL
        cdef yyjson_val *bids = NULL
        cdef yyjson_val *asks = NULL
        cdef size_t left
        cdef int64_t ns = 0, seq = -1, prev = -1, checksum = 0
        cdef int big                       # ts (1) or seq (2) leaves int64: fails where packed
        cdef bint has_checksum = False
        cdef uint16_t flags = F_SNAPSHOT if snap else 0
        cdef Py_ssize_t start
        cdef LevelTexts texts = None
        if not yyjson_is_obj(d):
            raise TypeError(f"book message {py_value(d)!r:.60} is not an object")
        k = unsafe_yyjson_get_first(d)
        left = unsafe_yyjson_get_len(d)
        while left:
            if key_is(k, b"ts", 2):
                ts = value_of(k)
            elif key_is(k, b"seq", 3):
                seq_v = value_of(k)
            elif key_is(k, b"pseq", 4):
                pseq_v = value_of(k)
            elif key_is(k, b"checksum", 8):
                checksum_v = value_of(k)
            elif key_is(k, b"bids", 4):
                bids = value_of(k)
            elif key_is(k, b"asks", 4):
                asks = value_of(k)
            k = unsafe_yyjson_get_next(value_of(k))
            left -= 1
        big = ms_to_ns_late(need(ts, "ts"), &ns)
        if seq_v != NULL and whole_late(seq_v, &seq):
            big = 2
        need(bids, "bids")
        need(asks, "asks")
        start = self.out.n
        if full:
            texts = texts_of(inst, snap)
            self.side_levels(bids, texts, S_BID, flags, ns, ts_recv, inst, seq, big)
            self.side_levels(asks, texts, S_ASK, flags, ns, ts_recv, inst, seq, big)
        else:
            self.plain_levels(bids, asks, flags, ns, ts_recv, inst, seq, big)
        if pseq_v != NULL and whole_late(pseq_v, &prev):
            raise OverflowError("pseq beyond int64")
        if not snap and checksum_v != NULL and not yyjson_is_null(checksum_v):
            if whole_late(checksum_v, &checksum):
                raise OverflowError("checksum beyond int64")
            has_checksum = True
        if big == 2:                       # no level packed it (see the docstring)
            raise OverflowError("seq beyond int64")
        self.push_event(inst, start, self.out.n, snap, seq, seq, prev, has_checksum, checksum)
        return 0

    cdef int side_levels(self, yyjson_val *levels, LevelTexts texts, uint8_t side, uint16_t flags,
                         int64_t ns, int64_t ts_recv, uint32_t inst, int64_t seq,
                         int big) except -1:
        """One side of a `books` message: a BOOK record per level, each level's text kept (its
        price and size as sent, "price:size"), level by level as the Python decoder did."""
        cdef TextSide *s = &texts.bid if side == S_BID else &texts.ask
        cdef Py_ssize_t count, j
        cdef yyjson_val *lv = NULL
        cdef yyjson_val *x0
        cdef yyjson_val *x1
        cdef list odd = None
        cdef double price, size
        cdef tickring_record *r
        cdef bytes a, b
        if yyjson_is_arr(levels):
            count = unsafe_yyjson_get_len(levels)
            lv = unsafe_yyjson_get_first(levels)
        else:
            odd = py_items(levels)
            count = len(odd)
        r = self.room(count)
        for j in range(count):
            if odd is None and yyjson_is_arr(lv) and unsafe_yyjson_get_len(lv) >= 2:
                x0 = unsafe_yyjson_get_first(lv)
                x1 = unsafe_yyjson_get_next(x0)
                price = dbl(x0)
                size = dbl(x1)
                if big:
                    raise OverflowError("ts or seq beyond int64")
                put_level(r + j, ns, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, seq)
                if yyjson_is_str(x0) and yyjson_is_str(x1):
                    side_update(s, price if side == S_BID else -price, size,
                                unsafe_yyjson_get_str(x0), unsafe_yyjson_get_len(x0),
                                unsafe_yyjson_get_str(x1), unsafe_yyjson_get_len(x1))
                else:
                    a = py_text(py_value(x0))
                    b = py_text(py_value(x1))
                    side_update(s, price if side == S_BID else -price, size, a, len(a), b, len(b))
            else:                          # Python's indexing: "12" is ("1", "2"), [x] fails
                level = odd[j] if odd is not None else py_value(lv)
                ps = level[0]
                price = float(ps)
                zs = level[1]
                size = float(zs)
                if big:
                    raise OverflowError("ts or seq beyond int64")
                put_level(r + j, ns, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, seq)
                a = py_text(ps)
                b = py_text(zs)
                side_update(s, price if side == S_BID else -price, size, a, len(a), b, len(b))
            if odd is None:
                lv = unsafe_yyjson_get_next(lv)
        self.out.n += count
        return 0

    cdef int plain_levels(self, yyjson_val *bids, yyjson_val *asks, uint16_t flags, int64_t ns,
                          int64_t ts_recv, uint32_t inst, int64_t seq, int big) except -1:
        """books5 / books15 (feeds.wire.pack_book): len(bids) + len(asks), then bids, asks."""
        cdef list odd_bids = None, odd_asks = None
        cdef Py_ssize_t nb, na
        cdef tickring_record *r
        if yyjson_is_arr(bids):
            nb = unsafe_yyjson_get_len(bids)
        else:
            odd_bids = py_items(bids)
            nb = len(odd_bids)
        if yyjson_is_arr(asks):
            na = unsafe_yyjson_get_len(asks)
        else:
            odd_asks = py_items(asks)
            na = len(odd_asks)
        r = self.room(nb + na)
        put_plain(r, bids, odd_bids, nb, S_BID, flags, ns, ts_recv, inst, seq, big)
        put_plain(r + nb, asks, odd_asks, na, S_ASK, flags, ns, ts_recv, inst, seq, big)
        self.out.n += nb + na
        return 0


cdef int put_plain(tickring_record *r, yyjson_val *levels, list odd, Py_ssize_t count,
                   uint8_t side, uint16_t flags, int64_t ns, int64_t ts_recv, uint32_t inst,
                   int64_t seq, int big) except -1:
    """BOOK records of [price, size, ...] levels: float(lv[0]), float(lv[1]) each."""
    cdef yyjson_val *lv = NULL
    cdef double price, size
    cdef Py_ssize_t j
    if odd is None and count:
        lv = unsafe_yyjson_get_first(levels)
    for j in range(count):
        if odd is None:
            level_pair(lv, &price, &size)
        else:
            py_pair(odd[j], &price, &size)
        if big:
            raise OverflowError("ts or seq beyond int64")
        put_level(r + j, ns, ts_recv, inst, K_BOOK, side, flags, price, size, 0.0, seq)
        if odd is None:
            lv = unsafe_yyjson_get_next(lv)
    return 0
