# cython: language_level=3
"""The ring producer's commit, in C: the protocol of shm/ring.py, written once.

    1. claim   := p+n   (own aligned 8-byte store)
    2. copy the records into their slots (bulk copy), then store each slot's seq (own stores)
    3. publish := p+n   (own aligned 8-byte store)
    4. if waiters: waiters := 0; futex-wake the publish word

x86-64 keeps stores in program order (TSO) and does not tear aligned 8-byte stores, so plain
volatile stores are the whole protocol (shm/platform.py refuses other CPUs at start-up). The
volatile accesses keep the compiler from merging or reordering them; the bulk copy is a
memcpy that ends before the seq stores begin.

shm.ring.Writer (Python: registration, status records, numpy arrays) subclasses WriterCore;
the feed's fast lane calls `commit` directly with its batch buffer.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport uint32_t, uint64_t
from libc.string cimport memcpy

from . import layout as L

cdef extern from *:
    """
    #include <unistd.h>
    #include <sys/syscall.h>
    #include <linux/futex.h>
    #include <limits.h>
    static inline void tickring_store64(volatile uint64_t *p, uint64_t v) { *p = v; }
    static inline uint64_t tickring_load64(volatile uint64_t *p) { return *p; }
    static inline void tickring_compiler_barrier(void) { __asm__ __volatile__("" ::: "memory"); }
    static inline long tickring_futex_wake_all(void *addr) {
        return syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
    }
    """
    void tickring_store64(uint64_t *p, uint64_t v) nogil
    uint64_t tickring_load64(uint64_t *p) nogil
    void tickring_compiler_barrier() nogil
    long tickring_futex_wake_all(void *addr) nogil


cdef class WriterCore:
    """A ring's producer state and commit. `_attach_core(ring)` maps it onto a shm.ring.Ring."""

    def _attach_core(self, ring):
        cdef Py_ssize_t off
        seg = ring.seg
        self.u = <uint64_t *><size_t>seg.base_address
        off = seg.word("data_offset")
        self.data = <char *>self.u + off
        self.cap = ring.capacity
        self.mask = ring.mask
        self.rs = ring.record_size
        self.i_claim = L.RING["claim"].index
        self.i_publish = L.RING["publish"].index
        self.i_waiters = L.RING["waiters"].index
        self.next = self.u[self.i_publish]                     # continue after the last complete record
        self.claim_pos = max(self.u[self.i_claim], self.next)  # claim never moves backwards
        self.seq_word0 = off // 8
        self.seq_stride = self.rs // 8

    @property
    def _next(self):
        return self.next

    @_next.setter
    def _next(self, v):
        self.next = v

    cdef int commit(self, const char *src, Py_ssize_t n) except -1:
        cdef uint64_t p = self.next
        cdef uint64_t end, q
        cdef Py_ssize_t rs = self.rs, slot, first
        cdef uint64_t *u = self.u
        if n <= 0:
            return 0
        if n > self.cap:                       # only the newest cap records can survive
            src += (n - self.cap) * rs
            p += <uint64_t>(n - self.cap)
            self.next = p
            n = self.cap
        end = p + <uint64_t>n
        if end > self.claim_pos:
            self.claim_pos = end
        tickring_store64(&u[self.i_claim], self.claim_pos)
        tickring_compiler_barrier()
        slot = <Py_ssize_t>(p & <uint64_t>self.mask)
        first = self.cap - slot
        if n <= first:
            memcpy(self.data + slot * rs, src, n * rs)
        else:
            memcpy(self.data + slot * rs, src, first * rs)
            memcpy(self.data, src + first * rs, (n - first) * rs)
        tickring_compiler_barrier()
        # each slot's seq: its own aligned 8-byte store after the bulk copy, never inside it
        q = p
        while q < end:
            tickring_store64(&u[self.seq_word0 + <Py_ssize_t>(q & <uint64_t>self.mask) * self.seq_stride], q)
            q += 1
        tickring_compiler_barrier()
        tickring_store64(&u[self.i_publish], end)
        self.next = end
        if tickring_load64(&u[self.i_waiters]):
            tickring_store64(&u[self.i_waiters], 0)
            tickring_futex_wake_all(&u[self.i_publish])
        return 0

    def publish_buffer(self, buf, Py_ssize_t n):
        """Publish the first n records packed in a bytes-like buffer (the feed hot path).
        Their seq fields in `buf` are ignored: the ring stores each slot's seq itself."""
        cdef Py_buffer view
        cdef uint64_t p = self.next
        PyObject_GetBuffer(buf, &view, PyBUF_SIMPLE)
        try:
            if n * self.rs > view.len:
                raise ValueError(f"publish_buffer: {n} records need {n * self.rs} bytes, the buffer has {view.len}")
            self.commit(<const char *>view.buf, n)
        finally:
            PyBuffer_Release(&view)
        return p
