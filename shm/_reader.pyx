# cython: language_level=3
"""A ring consumer's wait and copy, in C: what shm.ring.Reader does on every read.

    wait: spin on the publish word (a pause per probe, the clock every 64), then block on its
          futex after setting `waiters` (re-checking publish first), at most _MAX_BLOCK_S a turn
    read: copy [next, min(publish, next + max)) into a new buffer, THEN read claim: positions
          below claim - capacity may have been overwritten during the copy - drop and count them

Both run without the GIL. shm.ring.Reader (registration, zero-copy views, numpy arrays)
subclasses ReaderCore; the protocol itself is described in shm/ring.py.
"""
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_FromStringAndSize
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libc.string cimport memcpy

from . import layout as L

cdef extern from *:
    """
    #include <time.h>
    #include <unistd.h>
    #include <sys/syscall.h>
    #include <linux/futex.h>
    static inline uint64_t tickring_load64r(volatile uint64_t *p) { return *p; }
    static inline void tickring_store64r(volatile uint64_t *p, uint64_t v) { *p = v; }
    static inline void tickring_pause(void) { __builtin_ia32_pause(); }
    static inline void tickring_barrier(void) { __asm__ __volatile__("" ::: "memory"); }
    static inline int64_t tickring_real_ns(void) {
        struct timespec t; clock_gettime(CLOCK_REALTIME, &t);
        return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
    }
    typedef struct timespec timespec_r;
    static inline int64_t tickring_mono_ns(void) {
        struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t);
        return (int64_t)t.tv_sec * 1000000000LL + t.tv_nsec;
    }
    static inline long tickring_futex_wait(void *addr, uint32_t expected, int64_t ns) {
        struct timespec t; t.tv_sec = ns / 1000000000LL; t.tv_nsec = ns % 1000000000LL;
        return syscall(SYS_futex, addr, FUTEX_WAIT, expected, &t, NULL, 0);
    }
    """
    uint64_t tickring_load64r(uint64_t *p) nogil
    void tickring_store64r(uint64_t *p, uint64_t v) nogil
    void tickring_pause() nogil
    void tickring_barrier() nogil
    int64_t tickring_mono_ns() nogil
    int64_t tickring_real_ns() nogil
    ctypedef struct timespec_r:
        pass
    long tickring_futex_wait(void *addr, uint32_t expected, int64_t ns) nogil

cdef int64_t MAX_BLOCK_NS = 50_000_000     # a missed wake-up costs at most this; an idle consumer wakes 20x/s


cdef class ReaderCore:
    """A consumer's position and counters (shm.ring.Reader subclasses it)."""

    cdef uint64_t *u
    cdef char *data
    cdef uint64_t cap
    cdef uint64_t mask
    cdef Py_ssize_t rs
    cdef Py_ssize_t i_claim, i_publish, i_waiters
    cdef public uint64_t next        # the next position this consumer reads
    cdef public uint64_t lost        # records it lost to laps
    cdef public uint64_t received
    cdef public int64_t spin_ns
    cdef public Py_ssize_t _report_word   # this consumer's slot in the ring's consumer table (word
                                         # index), or -1: its position is reported there per read

    def _attach_core(self, ring, double spin_us):
        seg = ring.seg
        self.u = <uint64_t *><size_t>seg.base_address
        self.data = <char *>self.u + <Py_ssize_t>seg.word("data_offset")
        self.cap = ring.capacity
        self.mask = ring.mask
        self.rs = ring.record_size
        self.i_claim = L.RING["claim"].index
        self.i_publish = L.RING["publish"].index
        self.i_waiters = L.RING["waiters"].index
        self.spin_ns = <int64_t>(spin_us * 1000) if spin_us < 1e15 else (<int64_t>1 << 62)
        self._report_word = -1

    cdef void report_c(self) noexcept nogil:
        """Position, lost count and time into the consumer table (what `inspect` shows as lag)."""
        cdef Py_ssize_t b = self._report_word
        if b >= 0:
            tickring_store64r(&self.u[b + 1], self.next)
            tickring_store64r(&self.u[b + 2], self.lost)
            tickring_store64r(&self.u[b + 4], <uint64_t>tickring_real_ns())

    def _report(self):
        self.report_c()

    @property
    def available(self):
        return tickring_load64r(&self.u[self.i_publish]) - self.next

    cdef uint64_t wait_c(self, int64_t timeout_ns) noexcept nogil:
        """The publish cursor once it is past `next`, or at the timeout (< 0: none)."""
        cdef uint64_t *pubw = &self.u[self.i_publish]
        cdef uint64_t nxt = self.next, pub = tickring_load64r(pubw)
        cdef int64_t t0, now, spin_end, deadline, left
        cdef unsigned int probe = 0
        if pub > nxt or timeout_ns == 0:
            return pub
        t0 = tickring_mono_ns()
        deadline = -1 if timeout_ns < 0 else t0 + timeout_ns
        spin_end = t0 + self.spin_ns
        if deadline >= 0 and spin_end > deadline:
            spin_end = deadline
        now = t0
        while now < spin_end:
            pub = tickring_load64r(pubw)
            if pub > nxt:
                return pub
            tickring_pause()
            probe += 1
            if (probe & 63) == 0:
                now = tickring_mono_ns()
        while True:
            tickring_store64r(&self.u[self.i_waiters], 1)
            tickring_barrier()
            pub = tickring_load64r(pubw)
            if pub > nxt:
                return pub
            left = MAX_BLOCK_NS
            if deadline >= 0:
                left = deadline - tickring_mono_ns()
                if left <= 0:
                    return pub
                if left > MAX_BLOCK_NS:
                    left = MAX_BLOCK_NS
            tickring_futex_wait(pubw, <uint32_t>pub, left)     # the low 32 bits: the futex word
            pub = tickring_load64r(pubw)
            if pub > nxt:
                return pub

    def wait(self, timeout):
        """Wait until a record past our position is published; returns the publish cursor.
        timeout: seconds (None: for ever)."""
        cdef int64_t t = -1 if timeout is None else <int64_t>(timeout * 1e9)
        cdef uint64_t pub
        with nogil:
            pub = self.wait_c(t)
        return pub

    def _read_bytes(self, Py_ssize_t max_records, timeout):
        """(bytearray of the valid records, how many) - the copying read's C part."""
        cdef int64_t t = -1 if timeout is None else <int64_t>(timeout * 1e9)
        cdef uint64_t pub, nxt, claim, n, slot, first, bad
        cdef char *dst
        with nogil:
            pub = self.wait_c(t)
        nxt = self.next
        if pub <= nxt:
            return None, 0
        if pub - nxt > self.cap:                   # already lapped before we start
            self.lost += pub - self.cap - nxt
            nxt = pub - self.cap
        n = pub - nxt
        if n > <uint64_t>max_records:
            n = max_records
        buf = PyByteArray_FromStringAndSize(NULL, <Py_ssize_t>(n * self.rs))
        dst = PyByteArray_AS_STRING(buf)
        slot = nxt & self.mask
        first = self.cap - slot
        with nogil:
            if n <= first:
                memcpy(dst, self.data + slot * self.rs, n * self.rs)
            else:
                memcpy(dst, self.data + slot * self.rs, first * self.rs)
                memcpy(dst + first * self.rs, self.data, (n - first) * self.rs)
            tickring_barrier()
            claim = tickring_load64r(&self.u[self.i_claim])   # AFTER the copy
        self.next = nxt + n
        bad = 0
        if claim > self.cap + nxt:
            bad = claim - self.cap - nxt
            if bad > n:
                bad = n
            self.lost += bad
        self.received += n - bad
        self.report_c()
        return buf, <Py_ssize_t>bad
