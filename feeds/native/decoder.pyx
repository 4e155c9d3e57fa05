# cython: language_level=3
"""The base of every compiled venue decoder: the feeds.decoder contract, in C.

Same contract as feeds/decoder.py (bytes of one frame in, RECORDs out, one BookEvent per book
message, notices, DecodeError for a malformed frame, nothing and no error for control frames),
so tests and tools use a native decoder exactly like a Python one: `decode()`, `feed()`,
`book_events`, `notices`, `symbol()`. What is native is how a venue subclass does it:
`feed_c` walks a yyjson document of the frame and writes records in place into `out`
(`room`), book messages into a C array (`push_event`), and looks instrument ids up in a C
hash of the raw symbol bytes (`inst`), so a frame costs no Python object on the common path.
The feed's fast lane calls `feed_frame` and reads `evs`/`nev` directly.
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcmp, memcpy, memset

from shm._batch cimport RecordBatch
from shm._record cimport F_LAST, tickring_record

from .text cimport text_to_double, text_to_int64
from .json cimport (unsafe_yyjson_get_first, unsafe_yyjson_get_len, unsafe_yyjson_get_next,
                    unsafe_yyjson_get_str, yyjson_get_bool, yyjson_get_real, yyjson_get_sint,
                    yyjson_get_uint, yyjson_is_arr, yyjson_is_bool, yyjson_is_obj, yyjson_is_real,
                    yyjson_is_sint, yyjson_is_str, yyjson_is_uint, yyjson_val)
from .json cimport (yyjson_alc_dyn_free, yyjson_alc_dyn_new, yyjson_doc_free, yyjson_doc_get_root,
                    yyjson_read_err, yyjson_read_opts)

from feeds.decoder import BookEvent, DecodeError, InstrumentMap

cdef enum:
    KEY_MAX = 50          # SymSlot.key holds up to this many bytes (and a NUL)
    UPPER_MAX = 128
    DEPTH_MAX = 1024      # orjson's nesting limit


cdef object py_value(yyjson_val *v, int depth=0):
    """The value as orjson.loads gives it, for the slow paths that apply Python's own rules
    (a number where a string is documented, a level list that is an object...)."""
    cdef yyjson_val *e
    cdef size_t i, n
    if depth > DEPTH_MAX:
        raise ValueError("nested deeper than orjson reads")
    if yyjson_is_str(v):
        return PyUnicode_DecodeUTF8(unsafe_yyjson_get_str(v), unsafe_yyjson_get_len(v), NULL)
    if yyjson_is_uint(v):
        return yyjson_get_uint(v)
    if yyjson_is_sint(v):
        return yyjson_get_sint(v)
    if yyjson_is_real(v):
        return yyjson_get_real(v)
    if yyjson_is_bool(v):
        return bool(yyjson_get_bool(v))
    if yyjson_is_arr(v):
        out = []
        n = unsafe_yyjson_get_len(v)
        e = unsafe_yyjson_get_first(v)
        for i in range(n):
            out.append(py_value(e, depth + 1))
            e = unsafe_yyjson_get_next(e)
        return out
    if yyjson_is_obj(v):
        d = {}
        n = unsafe_yyjson_get_len(v)
        e = unsafe_yyjson_get_first(v)
        for i in range(n):            # a key, then its value (the next value after the key)
            d[py_value(e, depth + 1)] = py_value(e + 1, depth + 1)
            e = unsafe_yyjson_get_next(e + 1)
        return d
    return None


cdef inline uint64_t _fnv1a(const char *s, Py_ssize_t n) noexcept nogil:
    cdef uint64_t h = 1469598103934665603ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <unsigned char>s[i]) * 1099511628211ULL
    return h | 1          # 0 marks an empty slot


cdef class NativeDecoder:
    """Base of compiled venue decoders. Subclasses set `venue` (and `default_market`) and
    implement `feed_c`; a venue whose symbols name their market overrides `market_of`."""

    venue = ""
    default_market = "spot"

    def __cinit__(self, *args, **kwargs):
        self.evcap = 16
        self.evs = <BookEv *>PyMem_Malloc(self.evcap * sizeof(BookEv))
        self.symcap = 64
        self.syms = <SymSlot *>PyMem_Malloc(self.symcap * sizeof(SymSlot))
        self.alc = yyjson_alc_dyn_new()
        if self.evs == NULL or self.syms == NULL or self.alc == NULL:
            raise MemoryError()
        memset(self.syms, 0, self.symcap * sizeof(SymSlot))
        self.nev = 0
        self.nsyms = 0
        self.doc = NULL

    def __dealloc__(self):
        if self.doc != NULL:
            yyjson_doc_free(self.doc)
        if self.alc != NULL:
            yyjson_alc_dyn_free(self.alc)
        PyMem_Free(self.evs)
        PyMem_Free(self.syms)

    def __init__(self, instruments=None, market=None):
        self.instruments = instruments or InstrumentMap(self.venue)
        self.market = market or self.default_market
        # one per socket (OKX plans 23 of them): start small, a snapshot grows it once
        self.out = RecordBatch(128)
        self.notices = []
        self.long_syms = {}

    # -- for venue subclasses --------------------------------------------------------------------
    cdef yyjson_val *parse(self, const char *p, Py_ssize_t n) except NULL:
        """The frame as a yyjson document (valid until the next parse); DecodeError if not JSON."""
        cdef yyjson_read_err err
        if self.doc != NULL:
            yyjson_doc_free(self.doc)
        self.doc = yyjson_read_opts(<char *>p, n, 0, self.alc, &err)
        if self.doc == NULL:
            raise DecodeError(f"{self.venue}: not JSON ({err.msg.decode()} at byte {err.pos}): "
                              f"{PyBytes_FromStringAndSize(p, min(n, 120))!r}")
        return yyjson_doc_get_root(self.doc)

    cdef uint32_t inst(self, const char *s, Py_ssize_t n) except 0:
        """Instrument id of a native symbol (its raw bytes), registered on first sight."""
        cdef uint64_t h
        cdef Py_ssize_t mask, i
        cdef SymSlot *slot
        if n > KEY_MAX:
            return self._long(s, n)
        h = _fnv1a(s, n)
        mask = self.symcap - 1
        i = <Py_ssize_t>(h & mask)
        while True:
            slot = &self.syms[i]
            if slot.hash == 0:
                return self._register(s, n, h)
            if slot.hash == h and slot.length == n and memcmp(slot.key, s, n) == 0:
                return slot.inst
            i = (i + 1) & mask

    cdef uint32_t inst_upper(self, const char *s, Py_ssize_t n) except 0:
        """inst() of the symbol upper-cased (a stream name's "btcusdt" is "BTCUSDT")."""
        cdef char buf[UPPER_MAX]
        cdef Py_ssize_t i
        cdef char c
        if n > UPPER_MAX:
            key = PyBytes_FromStringAndSize(s, n).upper()
            return self._long(PyBytes_AS_STRING(key), n)
        for i in range(n):
            c = s[i]
            buf[i] = c - 32 if 97 <= c <= 122 else c
        return self.inst(buf, n)

    cdef uint32_t _long(self, const char *s, Py_ssize_t n) except 0:
        key = PyBytes_FromStringAndSize(s, n)
        i = self.long_syms.get(key)
        if i is None:
            i = self.long_syms[key] = self._new_id(key.decode())
        return i

    cdef uint32_t _register(self, const char *s, Py_ssize_t n, uint64_t h) except 0:
        cdef uint32_t i = self._new_id(PyBytes_FromStringAndSize(s, n).decode())
        cdef SymSlot *slot
        cdef Py_ssize_t mask, j
        if (self.nsyms + 1) * 2 > self.symcap:
            self._grow_syms()
        mask = self.symcap - 1
        j = <Py_ssize_t>(h & mask)
        while self.syms[j].hash != 0:
            j = (j + 1) & mask
        slot = &self.syms[j]
        slot.hash = h
        slot.inst = i
        slot.length = <unsigned char>n
        memcpy(slot.key, s, n)
        self.nsyms += 1
        return i

    cdef int _grow_syms(self) except -1:
        cdef SymSlot *old = self.syms
        cdef Py_ssize_t oldcap = self.symcap, k, j, mask
        cdef SymSlot *new = <SymSlot *>PyMem_Malloc(oldcap * 2 * sizeof(SymSlot))
        if new == NULL:
            raise MemoryError()
        memset(new, 0, oldcap * 2 * sizeof(SymSlot))
        mask = oldcap * 2 - 1
        for k in range(oldcap):
            if old[k].hash != 0:
                j = <Py_ssize_t>(old[k].hash & mask)
                while new[j].hash != 0:
                    j = (j + 1) & mask
                new[j] = old[k]
        self.syms = new
        self.symcap = oldcap * 2
        PyMem_Free(old)
        return 0

    def _new_id(self, str symbol):
        i = self.instruments.id(symbol, self.market_of(symbol))
        if not 0 < i < (1 << 32):
            raise ValueError(f"{self.venue}: instrument id {i} of {symbol!r} is out of range")
        return i

    cpdef str market_of(self, str symbol):
        """The market a native symbol belongs to on this decoder's connection."""
        return self.market

    cdef tickring_record *room(self, Py_ssize_t k) except NULL:
        """Record out.n, with room for k records (the caller bumps out.n)."""
        return <tickring_record *>self.out.room(k)

    cdef int push_event(self, uint32_t instrument, Py_ssize_t start, Py_ssize_t end, bint snapshot,
                        int64_t first, int64_t last, int64_t prev, bint has_checksum,
                        int64_t checksum) except -1:
        cdef BookEv *e
        if self.nev == self.evcap:
            e = <BookEv *>PyMem_Realloc(self.evs, self.evcap * 2 * sizeof(BookEv))
            if e == NULL:
                raise MemoryError()
            self.evs = e
            self.evcap *= 2
        e = &self.evs[self.nev]
        e.instrument = instrument
        e.start = start
        e.end = end
        e.snapshot = snapshot
        e.first = first
        e.last = last
        e.prev = prev
        e.has_checksum = has_checksum
        e.checksum = checksum
        self.nev += 1
        return 0

    cdef int note_book(self, uint32_t instrument) except -1:
        """Called by a venue as it starts decoding a book message of `instrument`: if the frame
        then fails, the worker resyncs these books (they lost an update) - see failed_books."""
        cdef int i
        for i in range(self.nframe_books):
            if self.frame_books[i] == instrument:
                return 0
        if self.nframe_books < 8:
            self.frame_books[self.nframe_books] = instrument
            self.nframe_books += 1
        return 0

    cdef int mark_last(self, Py_ssize_t n0) except -1:
        cdef RecordBatch out = self.out
        if out.n > n0:
            (<tickring_record *>PyByteArray_AS_STRING(out.buf))[out.n - 1].flags |= F_LAST
        return 0

    cdef int fail(self, Py_ssize_t n0, str why) except -1:
        """Drop what this frame wrote and raise DecodeError (the worker counts and skips it)."""
        self.out.n = n0
        self.nev = 0
        raise DecodeError(f"{self.venue}: {why}")

    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        raise NotImplementedError

    cdef int feed_frame(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1:
        cdef Py_ssize_t n0 = self.out.n
        self.nev = 0
        self.nframe_books = 0
        try:
            self.feed_c(p, n, ts_recv)
        except DecodeError:
            self.out.n = n0
            self.nev = 0
            raise
        except (KeyError, ValueError, TypeError, OverflowError, IndexError, UnicodeError) as e:
            self.fail(n0, f"{type(e).__name__}: {e}; frame {PyBytes_FromStringAndSize(p, min(n, 120))!r}")
        self.mark_last(n0)
        return 0

    # -- the Python contract (feeds/decoder.py) --------------------------------------------------
    def feed(self, frame, long long ts_recv):
        """Append the records of one frame to self.out (see feeds/decoder.py)."""
        if type(frame) is bytes:
            self.feed_frame(PyBytes_AS_STRING(frame), PyBytes_GET_SIZE(frame), ts_recv)
        elif type(frame) is bytearray:
            self.feed_frame(PyByteArray_AS_STRING(frame), PyByteArray_GET_SIZE(frame), ts_recv)
        else:
            if isinstance(frame, str):
                frame = frame.encode()
            b = bytes(frame)
            self.feed_frame(PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), ts_recv)

    def decode(self, frame, long long ts_recv=0):
        """Records of one frame as a numpy array of shm.RECORD (tests and raw-capture replay)."""
        self.out.n = 0
        self.nev = 0
        self.notices.clear()
        self.feed(frame, ts_recv)
        return self.out.array()

    @property
    def book_events(self):
        """The last frame's book messages as feeds.decoder.BookEvent (a new list each time)."""
        cdef Py_ssize_t i
        cdef BookEv *e
        out = []
        for i in range(self.nev):
            e = &self.evs[i]
            out.append(BookEvent(e.instrument, e.start, e.end, bool(e.snapshot), e.first, e.last,
                                 e.prev, e.checksum if e.has_checksum else None))
        return out

    def clear_events(self):
        self.nev = 0

    @property
    def failed_books(self):
        """Instruments whose book messages the last frame began (after a DecodeError: the books
        that lost an update and must be resynced; a frame with more than 8 keeps the first 8)."""
        return [self.frame_books[i] for i in range(self.nframe_books)]

    def symbol(self, instrument):
        """The venue-native symbol of an instrument id, e.g. "BTCUSDT"."""
        return self.instruments.symbol(instrument)


def parse_decimal(bytes text):
    """text.pxd's text_to_double (what native decoders use for prices and sizes), for tests."""
    return text_to_double(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))


def parse_int(bytes text):
    """text.pxd's text_to_int64, for tests."""
    return text_to_int64(PyBytes_AS_STRING(text), PyBytes_GET_SIZE(text))
