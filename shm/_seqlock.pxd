# The seqlock writer protocol of shm tables (shm/table.py), declared once: shm/_seqlock.pyx
# (Table.store/write/write_many) and native writers (feeds/native/book.pyx) store slots with it.
from libc.stdint cimport uint64_t

cdef extern from *:
    """
    #include <stdint.h>
    #include <string.h>
    /* One slot write: the sequence word odd, the row, the sequence even again. The sequence
       stores are aligned 8-byte stores; the fences keep the compiler (and a weakly ordered CPU)
       from moving row bytes outside the odd window, so a reader that sees the same even
       sequence before and after its copy has a whole row. */
    static inline void tickring_seqlock_store(uint64_t *seq, char *dst, const char *row, size_t n) {
        uint64_t s = __atomic_load_n(seq, __ATOMIC_RELAXED);
        __atomic_store_n(seq, s + 1, __ATOMIC_RELAXED);     /* odd: being written */
        __atomic_thread_fence(__ATOMIC_RELEASE);
        memcpy(dst, row, n);
        __atomic_store_n(seq, s + 2, __ATOMIC_RELEASE);     /* even: consistent */
    }
    """
    void seqlock_store "tickring_seqlock_store"(uint64_t *seq, char *dst, const char *row,
                                                 size_t n) noexcept nogil


cdef class SeqlockSlots:
    cdef Py_buffer view              # the table's mapping, held until release()
    cdef char *base                  # its first byte; NULL once released (the table closed)
    cdef Py_ssize_t data_offset      # slot 0's sequence word
    cdef Py_ssize_t stride           # bytes per slot (sequence word + row, padded)
    cdef readonly Py_ssize_t slots
    cdef readonly Py_ssize_t itemsize     # bytes of a row
    cdef Py_ssize_t updates_offset   # the header's `updates` counter

    # slot i := itemsize bytes at row, under the seqlock; counts one update
    cdef int store_c(self, Py_ssize_t i, const char *row) except -1
