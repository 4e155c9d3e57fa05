# cython: language_level=3
"""The writer side of a seqlock table's slots, in C (the protocol: shm/_seqlock.pxd).

shm.Table keeps one `SeqlockSlots` over its mapping; its Python writers (store, write,
write_many) and native writers (the book keeper's table flush, feeds/native/book.pyx) all go
through `store_c`, so the protocol exists once. The mapping's buffer is held until `release()`
(Table.close), after which a write raises instead of touching unmapped memory.
"""
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyBuffer_Release, PyObject_GetBuffer
from libc.stdint cimport int64_t, uint64_t

from .layout import SLOT_SEQ_SIZE as _SEQ

cdef Py_ssize_t SEQ = _SEQ


cdef class SeqlockSlots:
    """`slots` rows of `itemsize` bytes in `mapping`, slot i's sequence word at
    data_offset + i * stride (its row right after), the update counter at updates_offset."""

    def __cinit__(self, mapping, Py_ssize_t data_offset, Py_ssize_t stride, Py_ssize_t slots,
                  Py_ssize_t itemsize, Py_ssize_t updates_offset):
        self.base = NULL
        PyObject_GetBuffer(mapping, &self.view, PyBUF_SIMPLE | PyBUF_WRITABLE)
        if (data_offset % 8 or stride % 8 or updates_offset % 8 or itemsize > stride - SEQ
                or slots < 0 or data_offset + slots * stride > self.view.len
                or updates_offset + 8 > self.view.len):
            PyBuffer_Release(&self.view)
            raise ValueError("seqlock slots do not fit the mapping")
        self.base = <char *>self.view.buf
        self.data_offset = data_offset
        self.stride = stride
        self.slots = slots
        self.itemsize = itemsize
        self.updates_offset = updates_offset

    def __dealloc__(self):
        self.release()

    def release(self):
        """Let go of the mapping (before it is closed); later writes raise ValueError."""
        if self.base != NULL:
            self.base = NULL
            PyBuffer_Release(&self.view)

    cdef int store_c(self, Py_ssize_t i, const char *row) except -1:
        cdef char *slot
        if self.base == NULL:
            raise ValueError("the table is closed")
        if i < 0 or i >= self.slots:
            raise IndexError(f"slot {i} out of range (0..{self.slots - 1})")
        slot = self.base + self.data_offset + i * self.stride
        seqlock_store(<uint64_t *>slot, slot + SEQ, row, self.itemsize)
        (<uint64_t *>(self.base + self.updates_offset))[0] += 1
        return 0

    def store(self, Py_ssize_t i, const unsigned char[::1] row):
        """Slot i := row (exactly itemsize bytes, the dtype's layout)."""
        if row.shape[0] != self.itemsize:
            raise ValueError(f"a row is {self.itemsize} bytes, got {row.shape[0]}")
        self.store_c(i, <const char *>&row[0] if self.itemsize else <const char *>NULL)

    def store_many(self, const int64_t[::1] indices, const unsigned char[::1] rows):
        """Slot indices[j] := row j of rows (len(indices) rows of itemsize bytes, packed)."""
        cdef Py_ssize_t j, n = indices.shape[0]
        if rows.shape[0] != n * self.itemsize:
            raise ValueError(f"{n} rows are {n * self.itemsize} bytes, got {rows.shape[0]}")
        for j in range(n):
            self.store_c(indices[j], <const char *>&rows[0] + j * self.itemsize)
