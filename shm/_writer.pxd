# The ring producer's commit in C (shm/_writer.pyx), for shm.ring.Writer and the feed's fast lane.
from libc.stdint cimport uint64_t


cdef class WriterCore:
    cdef uint64_t *u              # the ring header, 8-byte words (shm.layout.RING indices)
    cdef char *data               # slot 0
    cdef Py_ssize_t cap
    cdef Py_ssize_t mask
    cdef Py_ssize_t rs            # record size
    cdef uint64_t next            # position of the next record to publish
    cdef uint64_t claim_pos       # never moves backwards (a restarted producer keeps it)
    cdef Py_ssize_t i_claim, i_publish, i_waiters
    cdef Py_ssize_t seq_word0     # word index of slot 0's seq; a slot's seq is every rs/8 words
    cdef Py_ssize_t seq_stride

    cdef int commit(self, const char *src, Py_ssize_t n) except -1
