# cython: language_level=3
"""The worker's per-frame path in C: socket -> decoder -> book keeper -> ring.

`FastSocket` is the base of feeds.connection.Socket: picows calls its `on_ws_frame` through the
C vtable (no Python call per frame), and a data frame goes straight to the worker's `Lane`
with a pointer into picows's receive buffer. Everything that is not a complete data frame
(control frames, fragments, a greeting still awaited) goes to the Python subclass's
`on_other_frame`.

`Lane.frame` is feeds.worker.FeedWorker's on_frame (its docstring says what a frame does),
written once, here: counters in the ring header, the decoder (a native one is called in C; a
Python one through feed()), the keeper, records held back until the socket read's last frame
(picows's last_in_buffer; at most BATCH_RECORDS) and published with one commit. The rare
cases call back into the worker's Python: a malformed frame, a keeper error, venue notices, a
connection rotation's dedupe (overlap/dedupe set), a read that ended on a control frame (the
call_soon backstop). `on_payload` is the same path for a bytes payload (tests, pongs).
"""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING
from libc.stdint cimport int64_t, uint64_t

from picows.picows cimport WSFrame, WSListener, WSMsgType, WSTransport

from shm._batch cimport RecordBatch
from shm._writer cimport WriterCore

from .book cimport KeeperCore
from .decoder cimport NativeDecoder

from shm import layout as L

cdef extern from "<time.h>" nogil:
    ctypedef long time_t
    struct timespec:
        time_t tv_sec
        long tv_nsec
    int clock_gettime(int clk_id, timespec *tp)
    int CLOCK_REALTIME

cdef enum:
    REC = 64
    HOLD_MAX = 64          # records of one socket read held back at most (~35 frames, ~0.5 ms flooded)

BATCH_RECORDS = HOLD_MAX

cdef Py_ssize_t FRAMES = L.RING["frames"].index
cdef Py_ssize_t MESSAGES = L.RING["messages"].index
cdef Py_ssize_t BYTES_IN = L.RING["bytes_in"].index
cdef Py_ssize_t LAST_RECV = L.RING["last_recv_ns"].index


cdef inline int64_t now_ns() noexcept nogil:
    cdef timespec t
    clock_gettime(CLOCK_REALTIME, &t)
    return <int64_t>t.tv_sec * 1000000000 + t.tv_nsec


cdef class FastSocket(WSListener):
    """A picows listener whose data frames reach the lane without a Python call (see above)."""

    cdef public object decoder        # the socket's decoder (a NativeDecoder or a Python one)
    cdef public object lane           # the worker's Lane (None: every frame to on_other_frame)
    cdef public object wait_for       # a greeting expected first (KuCoin "welcome"), or None
    cdef public bint retired          # closed on purpose: frames still buffered are not ours
    cdef public bint incoming         # the new socket of a rotation in progress
    cdef public long long last_frame_ns
    cdef public long _burst           # frames since the event loop last had a turn

    cpdef on_ws_frame(self, WSTransport transport, WSFrame frame):
        cdef WSMsgType mt
        if self.retired:
            return
        self._burst += 1
        if (self._burst & 63) == 0:
            self._fair_share()
        mt = frame.msg_type
        if (mt == WSMsgType.TEXT or mt == WSMsgType.BINARY) and frame.fin and \
                self.wait_for is None and self.lane is not None:
            (<Lane>self.lane).from_socket(self, frame.payload_ptr, frame.payload_size,
                                          not frame.last_in_buffer)
        else:
            self.on_other_frame(transport, frame)


cdef class Lane:
    """One worker's per-frame path (module docstring). Built by FeedWorker once its ring,
    writer and keeper exist."""

    cdef object worker
    cdef WriterCore writer
    cdef uint64_t *u
    cdef KeeperCore keeper
    cdef bint has_table              # the keeper writes a book table after each frame
    cdef RecordBatch held            # the batch whose records a socket read holds back
    cdef Py_ssize_t n0               # the current frame's first record in it
    cdef Py_ssize_t sent             # records of it already published
    cdef bint armed                  # the backstop is scheduled
    cdef public int overlaps         # connection rotations in progress (worker.overlap)
    cdef public int dedupe           # 1 while trades must be deduped (rotation + tail)

    def __init__(self, worker, WriterCore writer, KeeperCore keeper, table):
        self.worker = worker
        self.writer = writer
        self.u = writer.u
        self.keeper = keeper
        self.has_table = table is not None
        self.held = None

    # -- entry points ------------------------------------------------------------------------------
    cdef int from_socket(self, FastSocket sock, const char *p, Py_ssize_t n, bint more) except -1:
        cdef int64_t ts = now_ns()
        cdef uint64_t *u = self.u
        u[FRAMES] += 1
        u[BYTES_IN] += <uint64_t>n
        u[LAST_RECV] = <uint64_t>ts
        sock.last_frame_ns = ts
        return self.frame(sock, sock.decoder, p, n, more, ts, None)

    def on_payload(self, payload, sock, bint more=False):
        """A frame's payload as bytes (tests, matched text pongs): the same path."""
        cdef int64_t ts = now_ns()
        if type(payload) is not bytes:
            payload = bytes(payload)
        cdef uint64_t *u = self.u
        u[FRAMES] += 1
        u[BYTES_IN] += <uint64_t>PyBytes_GET_SIZE(payload)
        u[LAST_RECV] = <uint64_t>ts
        sock.last_frame_ns = ts
        self.frame(sock, sock.decoder, PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload),
                   more, ts, payload)

    # -- one frame ----------------------------------------------------------------------------------
    cdef int frame(self, object sock, object dec, const char *p, Py_ssize_t n, bint more,
                   int64_t ts, object payload) except -1:
        cdef RecordBatch out
        cdef NativeDecoder nd = None
        cdef Py_ssize_t n0, nrec
        cdef object drops = None
        cdef object bev = None
        cdef bint has_books
        worker = self.worker
        if isinstance(dec, NativeDecoder):
            nd = <NativeDecoder>dec
            out = nd.out
        else:
            out = <RecordBatch>dec.out
        if self.held is not out:
            if self.held is not None:          # another socket's read ended on a control frame
                self.flush_held()
            out.n = 0
        n0 = self.n0 = out.n                   # records before n0: earlier frames of this read
        # decode
        try:
            if nd is not None:
                nd.feed_frame(p, n, ts)
                has_books = nd.nev > 0
            else:
                if payload is None:
                    payload = PyBytes_FromStringAndSize(p, n)
                dec.feed(payload, ts)
                bev = dec.book_events
                has_books = len(bev) > 0
        except Exception as e:                 # DecodeError, or a decoder bug: never the connection
            out.n = n0
            if nd is None:
                dec.book_events.clear()
                worker._bad_frame(self._bytes(payload, p, n), e, sock)
            elif nd.nframe_books:              # book messages lost: their books resync
                worker._bad_books(self._bytes(payload, p, n), e, sock, ts, nd.failed_books)
            else:
                worker._bad_frame(self._bytes(payload, p, n), e, sock)
            return 0
        # books
        if has_books:
            try:
                if self.overlaps:              # a rotation: the worker's dedupe path (Python)
                    drops = worker._books(bev if bev is not None else nd.book_events, out.buf, sock, ts)
                elif nd is not None:
                    drops = self.keeper.check_c(nd.evs, nd.nev, PyByteArray_AS_STRING(out.buf))
                    if self.has_table:
                        self.keeper.flush_table_c(ts)
                else:
                    drops = self.keeper.check(bev, out.buf)
                    if self.has_table:
                        self.keeper.flush_table_c(ts)
                    bev.clear()                # after the flush: _bad_books needs them if it raises
            except Exception as e:             # a sequence field of the wrong type, or a keeper bug
                out.n = n0
                worker._bad_books(self._bytes(payload, p, n), e, sock, ts)
                return 0
        # notices, publish
        try:
            notices = nd.notices if nd is not None else dec.notices
            if notices:
                worker._notices(notices, sock)
            nrec = out.n
            if nrec > n0:
                self.u[MESSAGES] += 1
                if self.dedupe or drops:
                    self.flush_held()          # earlier frames' records, then this one's filtered
                    worker._publish_filtered(out, nrec, drops, sock, n0)
                    return 0
            elif nrec == 0:
                return 0
            if more and nrec < HOLD_MAX:
                self.held = out
                self.n0 = nrec
                if not self.armed:
                    self.armed = True
                    worker._loop.call_soon(self._backstop)
                return 0
            self.writer.commit(PyByteArray_AS_STRING(out.buf) + self.sent * REC, nrec - self.sent)
            self.sent = 0
            out.n = 0
            self.held = None
        except Exception as e:                 # a bug of ours: skip the frame, counted, never the socket
            if nd is not None:
                nd.notices.clear()
            else:
                dec.notices.clear()
            out.n = n0
            worker._worker_error(self._bytes(payload, p, n), e, sock)
        return 0

    cdef object _bytes(self, object payload, const char *p, Py_ssize_t n):
        return payload if payload is not None else PyBytes_FromStringAndSize(p, n)

    # -- held-back records ----------------------------------------------------------------------------
    cpdef flush_held(self):
        """Publish the held-back records of earlier frames (those before the current frame's
        first record, n0): before anything else is written to the ring, and at the end of a
        socket read that frame() did not see end."""
        cdef RecordBatch out = self.held
        cdef Py_ssize_t n0 = self.n0, sent = self.sent
        if out is None:
            return
        if n0 > sent:
            self.writer.commit(PyByteArray_AS_STRING(out.buf) + sent * REC, n0 - sent)
        if n0 >= out.n:                        # outside a frame: all of it
            out.n = 0
            self.sent = self.n0 = 0
            self.held = None
        else:                                  # mid-frame (the keeper writes): the frame's own stay
            self.sent = n0

    def drop_held(self):
        """Forget the held batch (its records were published another way)."""
        self.held = None
        self.sent = 0

    def _backstop(self):
        self.armed = False
        self.flush_held()

    @property
    def holding(self):
        """Records held back right now (tests)."""
        return 0 if self.held is None else self.n0 - self.sent
