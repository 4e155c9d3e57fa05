# Native order books, their table slot writer and the book keeper's per-frame path
# (feeds/native/book.pyx). The feed's fast lane cimports KeeperCore and calls check_c and
# flush_table_c with the native decoder's BookEv array and batch buffer.
from cpython.ref cimport PyObject
from libc.stdint cimport int64_t, uint32_t

from shm._seqlock cimport SeqlockSlots

from .decoder cimport BookEv


cdef struct Level:
    double key                # bids: the price; asks: minus the price (so both sides ascend)
    double size


cdef struct BookSide:
    Level *lv                 # ascending by key: the best level is the last one
    Py_ssize_t n
    Py_ssize_t cap


cdef class Book:
    cdef BookSide bid
    cdef BookSide ask
    cdef uint32_t inst
    cdef int64_t last                # last_id, unless odd_id
    cdef bint odd_id                 # last_id is not an int64 (a malformed frame's "123" or 1.5)
    cdef object odd_value            # ... and this is it; C paths leave such a book to Python
    cdef bint dirty                  # in its keeper's dirty list
    cdef public int state            # feeds.book SYNCED (0) / WAITING (1)
    cdef public bint fresh
    cdef public bint crossed
    cdef public bint after_gap
    cdef public list buffer
    cdef public object requested_ns
    cdef public object checked_ns
    cdef public long long resyncs
    cdef public long long gaps

    cdef int apply_c(self, const char *buf, Py_ssize_t start, Py_ssize_t end) except -1
    cdef int set_level(self, int side, double price, double size) except -1


cdef class BookChecksum:
    # a venue's book checksum computed in C from the book's top levels (Kraken, Bitget): the
    # keeper verifies it on every book message that carries one without a Python call. A venue
    # subclasses it in its native module and hangs an instance on its hook as `.native`.
    cdef int64_t of_book(self, Book b, int depth) except? -1


cdef class BookSlotWriter:
    cdef SeqlockSlots slots
    cdef char *row                   # the slot being packed (itemsize bytes)
    cdef int depth                   # levels per side in a slot
    cdef bint warned
    cdef object warn                 # warn(instrument): the first instrument beyond the slots

    # the book's slot := its top min(depth, self.depth) levels, header, state
    cdef int write(self, Book b, int depth, int64_t ts_recv) except -1


cdef class KeeperCore:
    cdef public dict books           # instrument -> Book (made by book(); never removed)
    cdef public int depth
    cdef public bint overlap         # a connection rotation is in progress
    cdef public int _kind            # the rule's check as a small int (feeds/book.py _FAST_KIND)
    cdef public bint _reset_on_one
    cdef public bint _plain          # nothing after an apply but the crossed check (no truncate, checksum)
    cdef public bint _native_after   # truncate / checksum after an apply, both in C (native_checksum)
    cdef public bint _truncate       # keep `depth` levels per side (the rule's truncate)
    cdef public BookChecksum native_checksum
    cdef object table_obj
    cdef BookSlotWriter slot_writer  # the table's C writer (None: no table, or another layout)
    cdef PyObject **by_id            # instrument id -> Book (owned references), ids < nby
    cdef Py_ssize_t nby
    cdef PyObject **dirty_books      # books touched since the last flush (owned references)
    cdef Py_ssize_t ndirty
    cdef Py_ssize_t dirty_cap

    cdef Book book_c(self, uint32_t instrument)
    cdef int mark_dirty(self, Book b) except -1
    cdef int clear_dirty(self) except -1
    # one book message; 1 when its records must be held back. ev/bufobj: the Python event and
    # buffer for the slow path (None: made from e and buf when needed)
    cdef int event_c(self, BookEv *e, object ev, char *buf, object bufobj) except -1

    # the fast lane's entries: a frame's book messages (buf: the decoder's batch, record i at
    # byte i * 64) -> None or the [(start, end)] record ranges to hold back; then the table
    cdef object check_c(self, BookEv *evs, Py_ssize_t nev, char *buf)
    cdef int flush_table_c(self, int64_t ts_recv) except -1
