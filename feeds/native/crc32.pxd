# zlib's CRC-32 in C, for the venue checksums (Kraken, Bitget): one copy of the code and its
# tables (feeds/native/crc32.pyx), called through Cython's cross-module C function pointer.
from libc.stdint cimport uint32_t

# zlib.crc32(s[:n], crc): a running CRC (0 to start; feed it its own result to continue)
cdef uint32_t crc32_update(uint32_t crc, const char *s, size_t n) noexcept nogil
