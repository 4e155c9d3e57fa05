# cython: language_level=3
"""Order books and the book keeper's per-frame path in C (used by feeds/book.py).

- `Book`: one instrument's L2 book. Each side is a C array of (key, size) sorted ascending by
  key, the best level last (key = price for bids, -price for asks), so the levels a delta
  touches - nearly always near the top - are found by binary search and inserted or deleted
  with a short memmove, and the best price and the top N are read off the end.
- `BookSlotWriter`: a book's slot of the top-N table (feeds/book_table.py's layout), packed in
  C and stored under the table's seqlock (shm/_seqlock.pxd).
- `KeeperCore`: the base of feeds.book.BookKeeper holding its per-frame path. An in-sequence
  delta on a synced book (the common case) is checked, applied, tested for crossing and marked
  for the table flush without a Python call; everything else goes to the Python slow path
  (BookKeeper.apply_event, _after_apply) with the same event and buffer as before.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE
from cpython.long cimport PyLong_AsLongLongAndOverflow, PyLong_CheckExact
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.memoryview cimport PyMemoryView_FromMemory
from cpython.object cimport PyObject_IsTrue
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_Check, PyTuple_GET_ITEM, PyTuple_GET_SIZE
from libc.stdint cimport int64_t, uint16_t, uint32_t
from libc.string cimport memmove, memset

from shm._record cimport S_BID, tickring_record
from shm._seqlock cimport SeqlockSlots

import struct

from feeds.decoder import BookEvent

cdef extern from "Python.h":
    int PyBUF_WRITE

cdef enum:
    REC = 64
    HEAD = 64                 # slot header bytes (feeds/book_table.py book_dtype)
    SYNCED_STATE = 0          # Book.state (feeds/book.py SYNCED)
    K_NONE = 0                # BookKeeper._kind (feeds/book.py _FAST_KIND)
    K_LOST = 1
    K_RANGE = 2
    K_PREV = 3
    K_INCREMENT = 4
    K_PREV_OPT = 5
    LOST_PREV = -2            # BookEvent.prev after the decoder saw messages lost
    DIRECT_IDS = 1 << 22      # instrument ids below this are looked up in a C array

# the same values for Python (feeds/book.py): declared here once
LOST = LOST_PREV
FAST_KIND = {"none": K_NONE, "lost": K_LOST, "range": K_RANGE, "prev": K_PREV,
             "increment": K_INCREMENT, "prev_opt": K_PREV_OPT}

SLOT_SYNCED = 1               # slot `state` bits (feeds/book_table.py)
SLOT_CROSSED = 2
NO_BID = float("-inf")
NO_ASK = float("inf")
cdef double C_NO_BID = NO_BID
cdef double C_NO_ASK = NO_ASK
_pack_id = struct.Struct("<q").pack    # an update id of another type, as the table packs it


# -- one side of a book ------------------------------------------------------------------------------
cdef inline Py_ssize_t lower_bound(const Level *lv, Py_ssize_t n, double key) noexcept nogil:
    """The first index whose key is >= key (n if none)."""
    cdef Py_ssize_t lo = 0, hi = n, mid
    while lo < hi:
        mid = (lo + hi) >> 1
        if lv[mid].key < key:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef int side_set(BookSide *s, double key, double size) except -1:
    """Set a level (size != 0) or delete it (size 0; an unknown level is not an error). An
    existing level keeps its key: a dict keeps its first key too (0.0 vs -0.0)."""
    cdef Py_ssize_t n = s.n
    cdef Level *lv = s.lv
    cdef Py_ssize_t i = lower_bound(lv, n, key)
    cdef Py_ssize_t cap
    if i < n and lv[i].key == key:
        if size != 0.0:
            lv[i].size = size
        else:
            memmove(lv + i, lv + i + 1, (n - i - 1) * sizeof(Level))
            s.n = n - 1
        return 0
    if size == 0.0:
        return 0
    if n == s.cap:
        cap = s.cap * 2 if s.cap else 64
        lv = <Level *>PyMem_Realloc(s.lv, cap * sizeof(Level))
        if lv == NULL:
            raise MemoryError()
        s.lv = lv
        s.cap = cap
    memmove(lv + i + 1, lv + i, (n - i) * sizeof(Level))
    lv[i].key = key
    lv[i].size = size
    s.n = n + 1
    return 0


cdef inline void side_keep(BookSide *s, Py_ssize_t n) noexcept:
    """Keep the best n levels (the last n)."""
    if n < 0:
        n = 0
    if s.n > n:
        memmove(s.lv, s.lv + (s.n - n), n * sizeof(Level))
        s.n = n


cdef inline double best_bid(Book b) noexcept:
    return b.bid.lv[b.bid.n - 1].key if b.bid.n else C_NO_BID


cdef inline double best_ask(Book b) noexcept:
    return -b.ask.lv[b.ask.n - 1].key if b.ask.n else C_NO_ASK


cdef list side_prices(const BookSide *s, Py_ssize_t n, double sign):
    """Prices of the best n levels, best first."""
    cdef Py_ssize_t i, top = s.n - 1
    if n > s.n:
        n = s.n
    return [sign * s.lv[top - i].key for i in range(n)]


cdef list side_sizes(const BookSide *s, Py_ssize_t n):
    cdef Py_ssize_t i, top = s.n - 1
    if n > s.n:
        n = s.n
    return [s.lv[top - i].size for i in range(n)]


cdef list side_levels(const BookSide *s, Py_ssize_t n, double sign):
    """(price, size) of the best n levels, best first."""
    cdef Py_ssize_t i, top = s.n - 1
    if n > s.n:
        n = s.n
    return [(sign * s.lv[top - i].key, s.lv[top - i].size) for i in range(n)]


cdef const char *records_of(object buf, Py_ssize_t start, Py_ssize_t end, Py_buffer *view) except NULL:
    """Records [start, end) of a packed batch; the buffer is held in view until released."""
    PyObject_GetBuffer(buf, view, PyBUF_SIMPLE)
    if start < 0 or end > view.len // REC:
        PyBuffer_Release(view)
        raise ValueError(f"records [{start}, {end}) are outside a batch of {view.len // REC}")
    return <const char *>view.buf


cdef class Book:
    """One instrument's L2 book (the module docstring says how it is stored).

    The keeper's state of the book travels with it: last_id (the venue's update id), state
    (SYNCED/WAITING), fresh, crossed, the deltas held while a snapshot is fetched, gap and
    resync counts. `bids`/`asks` are dicts made on each read (tests, tools), not the storage.
    """

    def __init__(self, uint32_t instrument):
        self.inst = instrument
        self.last = -1
        self.state = 1                   # WAITING
        self.fresh = False               # just seeded from REST: the first delta may straddle
        self.crossed = False
        self.buffer = []                 # (first, last, prev, levels) held while WAITING
        self.requested_ns = 0            # when a snapshot was requested (0 = none outstanding)
        self.resyncs = 0
        self.gaps = 0
        self.after_gap = False           # the next sync is a RE-sync (STATUS RESYNC, Flag.RESYNCED)
        self.checked_ns = None           # last venue checksum verification (None = never)

    def __dealloc__(self):
        PyMem_Free(self.bid.lv)
        PyMem_Free(self.ask.lv)

    @property
    def instrument(self):
        return self.inst

    @property
    def last_id(self):
        return self.odd_value if self.odd_id else self.last

    @last_id.setter
    def last_id(self, value):
        cdef int overflow = 0
        cdef long long v
        if PyLong_CheckExact(value):
            v = PyLong_AsLongLongAndOverflow(value, &overflow)
            if not overflow:
                self.last = v
                self.odd_id = False
                self.odd_value = None
                return
        self.odd_id = True
        self.odd_value = value

    @property
    def best_bid(self):
        return best_bid(self)

    @property
    def best_ask(self):
        return best_ask(self)

    @property
    def bids(self):
        """{price: size} of the bids, best first (a new dict)."""
        return dict(side_levels(&self.bid, self.bid.n, 1.0))

    @property
    def asks(self):
        return dict(side_levels(&self.ask, self.ask.n, -1.0))

    # -- changes --------------------------------------------------------------------------------------
    cdef int set_level(self, int side, double price, double size) except -1:
        if side == S_BID:
            return side_set(&self.bid, price, size)
        return side_set(&self.ask, -price, size)

    cdef int apply_c(self, const char *buf, Py_ssize_t start, Py_ssize_t end) except -1:
        cdef const tickring_record *r = <const tickring_record *>buf + start
        cdef Py_ssize_t i
        for i in range(end - start):
            if r[i].side == S_BID:
                side_set(&self.bid, r[i].price, r[i].size)
            else:
                side_set(&self.ask, -r[i].price, r[i].size)
        return 0

    def clear(self):
        self.bid.n = 0
        self.ask.n = 0
        self.crossed = False

    def apply(self, levels):
        """Apply (side, price, size) levels; size 0 deletes (deleting an unknown level is normal)."""
        for side, price, size in levels:
            self.set_level(S_BID if side == 1 else 0, price, size)

    def apply_records(self, buf, Py_ssize_t start, Py_ssize_t end):
        """Apply BOOK records [start, end) of a packed batch."""
        cdef Py_buffer view
        cdef const char *p = records_of(buf, start, end, &view)
        try:
            self.apply_c(p, start, end)
        finally:
            PyBuffer_Release(&view)

    def truncate(self, Py_ssize_t n):
        """Keep the best n levels per side (venues that stop sending levels out of scope)."""
        side_keep(&self.bid, n)
        side_keep(&self.ask, n)

    # -- reads -----------------------------------------------------------------------------------------
    def is_crossed(self):
        return best_bid(self) >= best_ask(self)

    def best(self):
        """(bid price, bid size, ask price, ask size); 0.0 for an empty side."""
        cdef const BookSide *b = &self.bid
        cdef const BookSide *a = &self.ask
        return (b.lv[b.n - 1].key if b.n else 0.0, b.lv[b.n - 1].size if b.n else 0.0,
                -a.lv[a.n - 1].key if a.n else 0.0, a.lv[a.n - 1].size if a.n else 0.0)

    def top(self, Py_ssize_t n):
        """The best n levels of each side as (price, size), best first."""
        return side_levels(&self.bid, n, 1.0), side_levels(&self.ask, n, -1.0)

    def top_prices(self, Py_ssize_t n):
        """The best n prices of each side, best first (what a checksum walks; no tuples)."""
        return side_prices(&self.bid, n, 1.0), side_prices(&self.ask, n, -1.0)

    def top_sizes(self, Py_ssize_t n):
        """The sizes of top_prices(n), in the same order."""
        return side_sizes(&self.bid, n), side_sizes(&self.ask, n)

    def sorted_levels(self):
        """Every level, best first."""
        return side_levels(&self.bid, self.bid.n, 1.0), side_levels(&self.ask, self.ask.n, -1.0)

    def __len__(self):
        return self.bid.n + self.ask.n

    def __repr__(self):
        return (f"<Book {self.inst} last_id={self.last_id!r} state={self.state} "
                f"{self.bid.n} bids {self.ask.n} asks best {self.best()}>")


# -- the top-N table ------------------------------------------------------------------------------------
cdef class BookSlotWriter:
    """Writes books into the slots of a table of feeds.book_table.book_dtype(depth): the header
    (instrument, n_bids, n_asks, state, ts_recv, update_id, top of book), then `depth` (price,
    size) levels per side, best first, zeros past a side's last level - packed here, then
    stored under the seqlock in one copy."""

    def __cinit__(self, SeqlockSlots slots, int depth, warn):
        if slots.itemsize != HEAD + 32 * depth or depth < 0:
            raise ValueError(f"a {slots.itemsize}-byte slot is not a book slot of depth {depth}")
        self.slots = slots
        self.depth = depth
        self.warn = warn
        self.row = <char *>PyMem_Malloc(slots.itemsize)
        if self.row == NULL:
            raise MemoryError()
        memset(self.row, 0, slots.itemsize)

    def __dealloc__(self):
        PyMem_Free(self.row)

    cdef int write(self, Book b, int depth, int64_t ts_recv) except -1:
        cdef char *row = self.row
        cdef int n = depth if depth < self.depth else self.depth
        cdef Py_ssize_t nb, na, d
        cdef const Level *lv
        cdef double *out
        cdef int64_t last
        if b.inst >= self.slots.slots:
            if not self.warned:
                self.warned = True
                self.warn(b.inst)
            return 0
        # the id first: one of the wrong type raises (as struct packing it did) before the slot
        # is touched
        last = int.from_bytes(_pack_id(b.odd_value), "little", signed=True) if b.odd_id else b.last
        if n < 0:
            n = 0
        nb = b.bid.n if b.bid.n < n else n
        na = b.ask.n if b.ask.n < n else n
        (<uint32_t *>row)[0] = b.inst
        (<uint16_t *>(row + 4))[0] = <uint16_t>nb
        (<uint16_t *>(row + 6))[0] = <uint16_t>na
        (<uint32_t *>(row + 8))[0] = (SLOT_SYNCED if b.state == SYNCED_STATE else 0) | \
            (SLOT_CROSSED if b.crossed else 0)
        (<uint32_t *>(row + 12))[0] = 0
        (<int64_t *>(row + 16))[0] = ts_recv
        (<int64_t *>(row + 24))[0] = last
        out = <double *>(row + 32)           # top of book, then the levels, best first
        out[0] = out[1] = out[2] = out[3] = 0.0
        out = <double *>(row + HEAD)
        if nb:
            lv = b.bid.lv + b.bid.n - 1          # the best bid; deeper levels below it
            (<double *>(row + 32))[0] = lv.key
            (<double *>(row + 32))[1] = lv.size
            for d in range(nb):
                out[2 * d] = lv[-d].key
                out[2 * d + 1] = lv[-d].size
        memset(out + 2 * nb, 0, 16 * (self.depth - nb))
        out = <double *>(row + HEAD + 16 * self.depth)
        if na:
            lv = b.ask.lv + b.ask.n - 1
            (<double *>(row + 32))[2] = -lv.key
            (<double *>(row + 32))[3] = lv.size
            for d in range(na):
                out[2 * d] = -lv[-d].key
                out[2 * d + 1] = lv[-d].size
        memset(out + 2 * na, 0, 16 * (self.depth - na))
        return self.slots.store_c(b.inst, row)

    def update(self, Book book, int depth, int64_t ts_recv=0):
        """Write one book into its slot (its instrument id); BookTable.update."""
        self.write(book, depth, ts_recv)


# -- the keeper ---------------------------------------------------------------------------------------------
cdef class DirtyBooks:
    """A view of the instruments whose table slot is due (BookKeeper.dirty): add, clear, len,
    iteration, `in`. The set itself lives in the keeper, in C."""

    cdef KeeperCore core

    def __cinit__(self, KeeperCore core):
        self.core = core

    def add(self, instrument):
        self.core.mark_dirty(self.core.books[instrument])

    def clear(self):
        self.core.clear_dirty()

    def __len__(self):
        return self.core.ndirty

    def __iter__(self):
        cdef Py_ssize_t j
        return iter([(<Book>self.core.dirty_books[j]).inst for j in range(self.core.ndirty)])

    def __contains__(self, instrument):
        b = self.core.books.get(instrument)
        return b is not None and (<Book>b).dirty


cdef object event_object(BookEv *e):
    return BookEvent(e.instrument, e.start, e.end, bool(e.snapshot), e.first, e.last, e.prev,
                     e.checksum if e.has_checksum else None)


cdef object batch_view(char *buf, BookEv *e):
    """The batch as a writable memoryview up to the event's last record: the slow path's
    buffer (it edits flags in place), made only when the slow path runs."""
    return PyMemoryView_FromMemory(buf, (e.end if e.end > e.start else e.start) * REC, PyBUF_WRITE)


cdef bint int64_of(object o, int64_t *out) noexcept:
    """An exact int that fits int64 (what the C path takes; anything else goes to Python)."""
    cdef int overflow = 0
    cdef long long v
    if not PyLong_CheckExact(o):
        return False
    v = PyLong_AsLongLongAndOverflow(o, &overflow)
    if overflow:
        return False
    out[0] = v
    return True


cdef bint to_bookev(object ev, BookEv *e, Py_ssize_t nrec) except -1:
    """A feeds.decoder.BookEvent as a BookEv; False when a field is not a plain int in range (a
    malformed frame's "123" or 1.5: the Python path keeps its old behaviour for those)."""
    cdef int64_t inst, start, end
    if not PyTuple_Check(ev) or PyTuple_GET_SIZE(ev) != 8:
        return False
    if not (int64_of(<object>PyTuple_GET_ITEM(ev, 0), &inst) and
            int64_of(<object>PyTuple_GET_ITEM(ev, 1), &start) and
            int64_of(<object>PyTuple_GET_ITEM(ev, 2), &end) and
            int64_of(<object>PyTuple_GET_ITEM(ev, 4), &e.first) and
            int64_of(<object>PyTuple_GET_ITEM(ev, 5), &e.last) and
            int64_of(<object>PyTuple_GET_ITEM(ev, 6), &e.prev)):
        return False
    if inst < 0 or inst > 0xFFFFFFFF or start < 0 or end > nrec:
        return False
    e.instrument = <uint32_t>inst
    e.start = start
    e.end = end
    e.snapshot = PyObject_IsTrue(<object>PyTuple_GET_ITEM(ev, 3))
    ck = <object>PyTuple_GET_ITEM(ev, 7)
    e.has_checksum = ck is not None
    e.checksum = 0
    if e.has_checksum and not int64_of(ck, &e.checksum):
        return False
    return True


cdef class BookChecksum:
    """A venue's book checksum in C (book.pxd). Called from Python too: checksum(book, depth)."""

    cdef int64_t of_book(self, Book b, int depth) except? -1:
        raise NotImplementedError(f"{type(self).__name__} does not compute a checksum")

    def __call__(self, Book book, int depth):
        return self.of_book(book, depth)


cdef class KeeperCore:
    """The per-frame path of feeds.book.BookKeeper (its subclass; the module docstring)."""

    def __cinit__(self, *args, **kwargs):
        self.books = {}
        self.depth = 20
        self.table_obj = None
        self.slot_writer = None

    def __dealloc__(self):
        cdef Py_ssize_t j
        for j in range(self.nby):
            Py_XDECREF(self.by_id[j])
        for j in range(self.ndirty):
            Py_XDECREF(self.dirty_books[j])
        PyMem_Free(self.by_id)
        PyMem_Free(self.dirty_books)

    # -- books and the table --------------------------------------------------------------------------
    def book(self, instrument):
        """The book of an instrument, made on first use."""
        b = self.books.get(instrument)
        if b is None:
            b = self.books[instrument] = Book(instrument)
            self._index(b)
        return b

    cdef Book book_c(self, uint32_t instrument):
        cdef PyObject *p
        if instrument < self.nby:
            p = self.by_id[instrument]
            if p != NULL:
                return <Book>p
        return self.book(instrument)

    def _index(self, Book b):
        cdef Py_ssize_t i = b.inst, cap
        cdef PyObject **grown
        if i >= DIRECT_IDS:
            return
        if i >= self.nby:
            cap = max(i + 1, 2 * self.nby, 64)
            grown = <PyObject **>PyMem_Realloc(self.by_id, cap * sizeof(PyObject *))
            if grown == NULL:
                raise MemoryError()
            memset(grown + self.nby, 0, (cap - self.nby) * sizeof(PyObject *))
            self.by_id = grown
            self.nby = cap
        Py_INCREF(b)
        Py_XDECREF(self.by_id[i])
        self.by_id[i] = <PyObject *>b

    @property
    def table(self):
        """feeds.book_table.BookTable (or None), written at most once per frame per instrument."""
        return self.table_obj

    @table.setter
    def table(self, table):
        self.table_obj = table
        self.slot_writer = None
        if table is not None and getattr(table, "_fast", False):
            self.slot_writer = table.book_writer()

    @property
    def dirty(self):
        """Instruments whose table slot is due at the next flush_table (a DirtyBooks view)."""
        return DirtyBooks(self)

    cdef int mark_dirty(self, Book b) except -1:
        cdef PyObject **grown
        if b.dirty:
            return 0
        if self.ndirty == self.dirty_cap:
            grown = <PyObject **>PyMem_Realloc(self.dirty_books,
                                               (self.dirty_cap * 2 + 16) * sizeof(PyObject *))
            if grown == NULL:
                raise MemoryError()
            self.dirty_books = grown
            self.dirty_cap = self.dirty_cap * 2 + 16
        Py_INCREF(b)
        self.dirty_books[self.ndirty] = <PyObject *>b
        self.ndirty += 1
        b.dirty = True
        return 0

    def touch(self, Book b):
        """The book changed: its table slot is written at the next flush_table."""
        self.mark_dirty(b)

    cdef int clear_dirty(self) except -1:
        cdef Py_ssize_t j, n = self.ndirty
        cdef PyObject *p
        self.ndirty = 0
        for j in range(n):
            p = self.dirty_books[j]
            (<Book>p).dirty = False
            Py_DECREF(<object>p)
        return 0

    cdef int flush_table_c(self, int64_t ts_recv) except -1:
        cdef Py_ssize_t j
        cdef Book b
        if self.ndirty == 0:
            return 0
        for j in range(self.ndirty):
            b = <Book>self.dirty_books[j]
            if b.odd_id:           # an id a slot cannot hold raises before any slot is written
                _pack_id(b.odd_value)
        if self.slot_writer is not None:
            for j in range(self.ndirty):
                self.slot_writer.write(<Book>self.dirty_books[j], self.depth, ts_recv)
        elif self.table_obj is not None:          # a table of another layout: its Python update
            for j in range(self.ndirty):
                self.table_obj.update(<Book>self.dirty_books[j], self.depth, ts_recv)
        return self.clear_dirty()

    def flush_table(self, int64_t ts_recv=0):
        """Write each instrument touched since the last flush into the top-N table once."""
        self.flush_table_c(ts_recv)

    # -- the per-frame path -----------------------------------------------------------------------------
    cdef int event_c(self, BookEv *e, object ev, char *buf, object bufobj) except -1:
        cdef Book b = self.book_c(e.instrument)
        cdef int64_t last_id, last = e.last
        cdef int k = self._kind
        cdef bint ok
        if not e.snapshot and b.state == SYNCED_STATE and not b.odd_id:
            # the common case, a delta in sequence on a synced book: the APPLY outcomes of
            # BookKeeper._verdict; anything else (DROP, GAP, RESET, fresh) takes the slow path
            if k == K_NONE:
                ok = True
            elif k == K_LOST:
                ok = e.prev != LOST_PREV
            elif last >= 0 and not b.fresh:
                last_id = b.last
                ok = False
                if last_id >= 0 and not (self._reset_on_one and last == 1):
                    if k == K_PREV_OPT:
                        k = K_PREV if e.prev >= 0 else K_INCREMENT
                    if k == K_RANGE:
                        ok = last_id < last and e.first <= last_id + 1
                    elif k == K_PREV:
                        ok = e.prev == last_id
                    else:                       # increment (last >= 0: last - 1 cannot overflow)
                        ok = last - 1 == last_id
                    if ok:
                        b.last = last
            else:
                ok = False
            if ok:
                b.apply_c(buf, e.start, e.end)
                if self._native_after:          # truncate and checksum in C, then as if plain
                    if self._truncate:
                        side_keep(&b.bid, self.depth)
                        side_keep(&b.ask, self.depth)
                    if e.has_checksum and self.native_checksum.of_book(b, self.depth) != e.checksum:
                        self._checksum_mismatch(b, event_object(e) if ev is None else ev,
                                                batch_view(buf, e) if bufobj is None else bufobj)
                        return 0
                    if b.crossed or best_bid(b) >= best_ask(b):
                        self._after_apply(b, event_object(e) if ev is None else ev,
                                          batch_view(buf, e) if bufobj is None else bufobj, True)
                    elif self.table_obj is not None:
                        self.mark_dirty(b)
                    return 0
                if not self._plain or b.crossed or best_bid(b) >= best_ask(b):
                    self._after_apply(b, event_object(e) if ev is None else ev,
                                      batch_view(buf, e) if bufobj is None else bufobj)
                elif self.table_obj is not None:
                    self.mark_dirty(b)
                return 0
        if self.apply_event(b, event_object(e) if ev is None else ev,
                            batch_view(buf, e) if bufobj is None else bufobj):
            return 1
        return 0

    cdef object check_c(self, BookEv *evs, Py_ssize_t nev, char *buf):
        cdef Py_ssize_t j
        drops = None
        for j in range(nev):
            if self.event_c(&evs[j], None, buf, None):
                if drops is None:
                    drops = []
                drops.append((evs[j].start, evs[j].end))
        return drops

    def _check_via_c(self, events, bytearray buf):
        """check() through check_c, the fast lane's entry (tests): the events become a BookEv
        array, and the slow path gets events and a buffer made from it."""
        cdef Py_ssize_t n = len(events), j
        cdef BookEv *evs = <BookEv *>PyMem_Malloc((n or 1) * sizeof(BookEv))
        if evs == NULL:
            raise MemoryError()
        try:
            for j in range(n):
                if not to_bookev(events[j], &evs[j], PyByteArray_GET_SIZE(buf) // REC):
                    raise TypeError(f"not a BookEv: {events[j]!r}")
                evs[j].has_checksum = events[j][7] is not None
                evs[j].checksum = events[j][7] if evs[j].has_checksum else 0
            return self.check_c(evs, n, PyByteArray_AS_STRING(buf))
        finally:
            PyMem_Free(evs)

    def check(self, events, buf):
        """Apply a frame's book events (feeds.decoder.BookEvent); return the record ranges
        [start, end) to hold back, or None.

        `buf` is the decoder's batch buffer; flags of its records may be edited in place
        (SNAPSHOT for a Bybit u == 1 reset, CROSSED, RESYNCED).
        """
        cdef Py_buffer view
        cdef char *p = NULL
        cdef Py_ssize_t nrec = 0
        cdef BookEv e
        cdef bint held = False
        cdef bint is_bytearray = type(buf) is bytearray
        if not is_bytearray:
            PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
            held = True
            p = <char *>view.buf
            nrec = view.len // REC
        drops = None
        try:
            for ev in events:
                if is_bytearray:        # read per event: a slow path could have resized it
                    p = PyByteArray_AS_STRING(buf)
                    nrec = PyByteArray_GET_SIZE(buf) // REC
                if to_bookev(ev, &e, nrec):
                    if not self.event_c(&e, ev, p, buf):
                        continue
                elif not self.apply_event(self.book(ev[0]), ev, buf):
                    continue
                if drops is None:
                    drops = []
                drops.append((ev[1], ev[2]))
        finally:
            if held:
                PyBuffer_Release(&view)
        return drops
