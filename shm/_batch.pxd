# RecordBatch with its buffer reachable from C: native decoders and the feed's fast lane append
# records with a pointer instead of a Python call per record (shm/_batch.pyx).

cdef class RecordBatch:
    cdef public bytearray buf     # n valid records of 64 bytes, packed; capacity cap
    cdef public Py_ssize_t n
    cdef public Py_ssize_t cap

    cdef char *room(self, Py_ssize_t k) except NULL     # pointer to record n, room for k more
