# The native decoder contract (feeds/native/decoder.pyx): what a venue's compiled decoder
# inherits and what the feed's fast lane reads without a Python call.
from libc.stdint cimport int64_t, uint32_t, uint64_t

from shm._batch cimport RecordBatch
from shm._record cimport tickring_record

from .json cimport yyjson_alc, yyjson_doc, yyjson_val


# a JSON value as the Python object orjson.loads gives (for the rare paths that apply Python's
# own rules to odd shapes); ValueError beyond orjson's nesting limit
cdef object py_value(yyjson_val *v, int depth=*)


cdef struct BookEv:
    # one order-book message: feeds.decoder.BookEvent as a C struct (same fields and meaning)
    uint32_t instrument
    Py_ssize_t start          # BOOK records [start, end) of the decoder's batch
    Py_ssize_t end
    bint snapshot
    int64_t first             # -1: the venue has no such field
    int64_t last
    int64_t prev
    bint has_checksum
    int64_t checksum


cdef struct SymSlot:
    # the symbol -> instrument id cache: open addressing, keys copied in (symbols <= 47 bytes)
    uint64_t hash
    uint32_t inst
    unsigned char length
    char key[51]


cdef class NativeDecoder:
    cdef public RecordBatch out          # records of the frames fed since the caller cleared it
    cdef public list notices             # "shutdown", ...: what the worker must act on
    cdef public object instruments       # feeds.decoder.InstrumentMap
    cdef public str market               # for venues whose frames do not say the market
    cdef BookEv *evs                     # book messages of the last frame fed
    cdef Py_ssize_t nev
    cdef Py_ssize_t evcap
    cdef yyjson_alc *alc                 # reused between frames: no malloc per frame once warm
    cdef yyjson_doc *doc                 # the last frame's document (freed by the next parse)
    cdef SymSlot *syms
    cdef Py_ssize_t symcap
    cdef Py_ssize_t nsyms
    cdef dict long_syms                  # symbols too long for the C cache
    cdef uint32_t frame_books[8]         # instruments of the book messages this frame began
    cdef int nframe_books                # (kept when the frame fails: their books lost an update)

    # for venue subclasses
    cdef yyjson_val *parse(self, const char *p, Py_ssize_t n) except NULL
    cdef uint32_t inst(self, const char *s, Py_ssize_t n) except 0
    cdef uint32_t inst_upper(self, const char *s, Py_ssize_t n) except 0
    cdef tickring_record *room(self, Py_ssize_t k) except NULL
    cdef int push_event(self, uint32_t instrument, Py_ssize_t start, Py_ssize_t end, bint snapshot,
                        int64_t first, int64_t last, int64_t prev, bint has_checksum,
                        int64_t checksum) except -1
    cdef int mark_last(self, Py_ssize_t n0) except -1
    cdef int note_book(self, uint32_t instrument) except -1   # a book message of it starts here
    cdef int fail(self, Py_ssize_t n0, str why) except -1
    cdef uint32_t _long(self, const char *s, Py_ssize_t n) except 0
    cdef uint32_t _register(self, const char *s, Py_ssize_t n, uint64_t h) except 0
    cdef int _grow_syms(self) except -1
    cpdef str market_of(self, str symbol)     # the market of a symbol first seen (a Python hook)

    # the venue's frame rules: append the frame's records to out, its book messages to evs
    cdef int feed_c(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1
    # fast lane entry: nev = 0, feed_c, LAST on the frame's last record; DecodeError on a bad frame
    cdef int feed_frame(self, const char *p, Py_ssize_t n, int64_t ts_recv) except -1
