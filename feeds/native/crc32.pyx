# cython: language_level=3
"""zlib's CRC-32 in C for the venue book checksums (feeds/native/kraken.pyx, bitget.pyx): one copy
of the code and its tables. Other modules cimport crc32_update (crc32.pxd); crc32() is the same
from Python, for tests."""
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.stdint cimport uint32_t

cdef extern from *:
    """
    #include <string.h>

    /* CRC32 (zlib's: polynomial 0xEDB88320 reflected, ~0 in and out). A checksum string is a few
       hundred bytes (Bitget's 25 + 25 levels ~750, Kraken's 10 + 10 ~300): on x86-64 with
       PCLMULQDQ its 16-byte blocks are folded with carry-less multiplies (Intel's "Fast CRC
       Computation for Generic Polynomials Using PCLMULQDQ"; the constants are the Linux
       kernel's crc32-pclmul ones), the rest is read 8 bytes at a time through tables (slicing
       by 8). */
    static uint32_t tickring_crc_table[8][256];
    static int tickring_crc_clmul = 0;

    #if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    #include <immintrin.h>
    #define TICKRING_CRC_HAVE_CLMUL 1

    /* the CRC state (not inverted) after len bytes; len >= 64 and a multiple of 16 */
    __attribute__((target("pclmul,sse4.1")))
    static uint32_t tickring_crc32_clmul(const unsigned char *buf, size_t len, uint32_t crc) {
        const __m128i k1k2 = _mm_set_epi64x(0x01c6e41596LL, 0x0154442bd4LL);
        const __m128i k3k4 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL);
        const __m128i k5k0 = _mm_set_epi64x(0, 0x0163cd6124LL);
        const __m128i poly = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL);
        const __m128i low32 = _mm_setr_epi32(~0, 0, ~0, 0);
        __m128i x1, x2, x3, x4, x5, x6, x7, x8;
        x1 = _mm_loadu_si128((const __m128i *)(buf + 0x00));
        x2 = _mm_loadu_si128((const __m128i *)(buf + 0x10));
        x3 = _mm_loadu_si128((const __m128i *)(buf + 0x20));
        x4 = _mm_loadu_si128((const __m128i *)(buf + 0x30));
        x1 = _mm_xor_si128(x1, _mm_cvtsi32_si128((int)crc));
        buf += 64;
        len -= 64;
        while (len >= 64) {                 /* four blocks of 16 in parallel */
            x5 = _mm_clmulepi64_si128(x1, k1k2, 0x00);
            x6 = _mm_clmulepi64_si128(x2, k1k2, 0x00);
            x7 = _mm_clmulepi64_si128(x3, k1k2, 0x00);
            x8 = _mm_clmulepi64_si128(x4, k1k2, 0x00);
            x1 = _mm_clmulepi64_si128(x1, k1k2, 0x11);
            x2 = _mm_clmulepi64_si128(x2, k1k2, 0x11);
            x3 = _mm_clmulepi64_si128(x3, k1k2, 0x11);
            x4 = _mm_clmulepi64_si128(x4, k1k2, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, x5), _mm_loadu_si128((const __m128i *)(buf + 0x00)));
            x2 = _mm_xor_si128(_mm_xor_si128(x2, x6), _mm_loadu_si128((const __m128i *)(buf + 0x10)));
            x3 = _mm_xor_si128(_mm_xor_si128(x3, x7), _mm_loadu_si128((const __m128i *)(buf + 0x20)));
            x4 = _mm_xor_si128(_mm_xor_si128(x4, x8), _mm_loadu_si128((const __m128i *)(buf + 0x30)));
            buf += 64;
            len -= 64;
        }
        /* fold the four into one */
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x2), x5);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x3), x5);
        x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
        x1 = _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x1, k3k4, 0x11), x4), x5);
        while (len >= 16) {                 /* the remaining blocks of 16 */
            x5 = _mm_clmulepi64_si128(x1, k3k4, 0x00);
            x1 = _mm_clmulepi64_si128(x1, k3k4, 0x11);
            x1 = _mm_xor_si128(_mm_xor_si128(x1, _mm_loadu_si128((const __m128i *)buf)), x5);
            buf += 16;
            len -= 16;
        }
        /* 128 bits -> 64 -> 32 (Barrett reduction) */
        x2 = _mm_clmulepi64_si128(x1, k3k4, 0x10);
        x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), x2);
        x2 = _mm_srli_si128(x1, 4);
        x1 = _mm_and_si128(x1, low32);
        x1 = _mm_xor_si128(_mm_clmulepi64_si128(x1, k5k0, 0x00), x2);
        x2 = _mm_and_si128(x1, low32);
        x2 = _mm_clmulepi64_si128(x2, poly, 0x10);
        x2 = _mm_and_si128(x2, low32);
        x2 = _mm_clmulepi64_si128(x2, poly, 0x00);
        x1 = _mm_xor_si128(x1, x2);
        return (uint32_t)_mm_extract_epi32(x1, 1);
    }
    #endif

    static void tickring_crc_init(void) {
        uint32_t i, c;
        int k;
        for (i = 0; i < 256; i++) {
            c = i;
            for (k = 0; k < 8; k++)
                c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            tickring_crc_table[0][i] = c;
        }
        for (i = 0; i < 256; i++) {
            c = tickring_crc_table[0][i];
            for (k = 1; k < 8; k++) {
                c = tickring_crc_table[0][c & 0xff] ^ (c >> 8);
                tickring_crc_table[k][i] = c;
            }
        }
    #ifdef TICKRING_CRC_HAVE_CLMUL
        __builtin_cpu_init();
        tickring_crc_clmul = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
    #endif
    }

    /* the CRC state (not inverted) after n more bytes, through the tables */
    static uint32_t tickring_crc32_tables(const unsigned char *p, size_t n, uint32_t c) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        uint32_t lo, hi;
        while (n >= 8) {
            memcpy(&lo, p, 4);
            memcpy(&hi, p + 4, 4);
            lo ^= c;
            c = tickring_crc_table[7][lo & 0xff] ^ tickring_crc_table[6][(lo >> 8) & 0xff] ^
                tickring_crc_table[5][(lo >> 16) & 0xff] ^ tickring_crc_table[4][lo >> 24] ^
                tickring_crc_table[3][hi & 0xff] ^ tickring_crc_table[2][(hi >> 8) & 0xff] ^
                tickring_crc_table[1][(hi >> 16) & 0xff] ^ tickring_crc_table[0][hi >> 24];
            p += 8;
            n -= 8;
        }
    #endif
        while (n--)
            c = tickring_crc_table[0][(c ^ *p++) & 0xff] ^ (c >> 8);
        return c;
    }

    /* zlib.crc32(s[:n], crc) */
    static uint32_t tickring_crc32(uint32_t crc, const char *s, size_t n, int simd) {
        const unsigned char *p = (const unsigned char *)s;
        uint32_t c = ~crc;
    #ifdef TICKRING_CRC_HAVE_CLMUL
        if (simd && tickring_crc_clmul && n >= 64) {
            size_t blocks = n & ~(size_t)15;
            c = tickring_crc32_clmul(p, blocks, c);
            p += blocks;
            n -= blocks;
        }
    #endif
        return tickring_crc32_tables(p, n, c) ^ 0xFFFFFFFFu;
    }
    """
    void tickring_crc_init() noexcept nogil
    uint32_t tickring_crc32(uint32_t crc, const char *s, size_t n, bint simd) noexcept nogil
    bint tickring_crc_clmul

tickring_crc_init()



cdef uint32_t crc32_update(uint32_t crc, const char *s, size_t n) noexcept nogil:
    return tickring_crc32(crc, s, n, True)


def crc32(bytes data, uint32_t crc=0, bint simd=True):
    """zlib.crc32(data, crc) as the checksums compute it (simd=False: the tables alone;
    crc32.simd: whether this CPU folds with PCLMULQDQ)."""
    return tickring_crc32(crc, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data), simd)


crc32.simd = bool(tickring_crc_clmul)
