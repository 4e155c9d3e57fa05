# Per-instrument C state of a decoder (Bybit's ticker merge, Coinbase's book sequences): a table
# of fixed-size slots by instrument id, open addressing (Fibonacci hash, linear probing), kept at
# most half full. Each slot is a C struct whose first field is its `uint32_t inst` (0: free).
from cpython.mem cimport PyMem_Free, PyMem_Malloc
from libc.stdint cimport uint32_t
from libc.string cimport memcpy, memset


cdef struct InstTable:
    char *slots               # cap slots of `size` bytes
    Py_ssize_t size
    Py_ssize_t cap            # a power of two
    Py_ssize_t n              # slots in use


cdef inline char *inst_slots_new(Py_ssize_t cap, Py_ssize_t size) except NULL:
    cdef char *s = <char *>PyMem_Malloc(cap * size)
    if s == NULL:
        raise MemoryError()
    memset(s, 0, cap * size)
    return s


cdef inline int inst_table_init(InstTable *t, Py_ssize_t size) except -1:
    """An empty table of slots of size bytes (16 of them to start)."""
    t.slots = inst_slots_new(16, size)
    t.size = size
    t.cap = 16
    t.n = 0
    return 0


cdef inline void inst_table_free(InstTable *t) noexcept:
    PyMem_Free(t.slots)
    t.slots = NULL


cdef inline Py_ssize_t inst_home(uint32_t inst, Py_ssize_t cap) noexcept:
    return <Py_ssize_t>((inst * <uint32_t>2654435761) & (cap - 1))


cdef inline int inst_table_grow(InstTable *t) except -1:
    """Twice the slots, every instrument moved to its place in them."""
    cdef Py_ssize_t cap = t.cap * 2, k, j
    cdef char *new = inst_slots_new(cap, t.size)
    cdef char *old = t.slots
    cdef uint32_t inst
    for k in range(t.cap):
        inst = (<uint32_t *>(old + k * t.size))[0]
        if inst != 0:
            j = inst_home(inst, cap)
            while (<uint32_t *>(new + j * t.size))[0] != 0:
                j = (j + 1) & (cap - 1)
            memcpy(new + j * t.size, old + k * t.size, t.size)
    t.slots = new
    t.cap = cap
    PyMem_Free(old)
    return 0


cdef inline void *inst_slot(InstTable *t, uint32_t inst, bint *fresh) except NULL:
    """The slot of inst (!= 0); on first sight a zeroed one with its inst set, fresh[0] True."""
    cdef Py_ssize_t i
    cdef char *s
    cdef uint32_t k
    while True:
        i = inst_home(inst, t.cap)
        while True:
            s = t.slots + i * t.size
            k = (<uint32_t *>s)[0]
            if k == inst:
                fresh[0] = False
                return s
            if k == 0:
                break
            i = (i + 1) & (t.cap - 1)
        if (t.n + 1) * 2 <= t.cap:
            break
        inst_table_grow(t)                  # then look again in the larger table
    (<uint32_t *>s)[0] = inst
    t.n += 1
    fresh[0] = True
    return s
