"""feeds/native/crc32.pyx: the CRC-32 the Kraken and Bitget checksums share is zlib.crc32, in
one call or continued over pieces, through the tables alone and with PCLMULQDQ folding (where
the CPU has it) on every length around the 16- and 64-byte block edges."""
from __future__ import annotations

import random
import zlib

import pytest

from feeds.native.crc32 import crc32


@pytest.mark.parametrize("simd", [True, False])
def test_every_short_length_and_block_edge(simd):
    rnd = random.Random(7)
    for n in list(range(0, 200)) + [255, 256, 257, 750, 1023, 1024, 1025, 4096 + 13]:
        data = bytes(rnd.randrange(256) for _ in range(n))
        assert crc32(data, 0, simd) == zlib.crc32(data), n


@pytest.mark.parametrize("simd", [True, False])
def test_continued_over_pieces(simd):
    rnd = random.Random(11)
    for _ in range(300):
        data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 900)))
        cut = rnd.randrange(0, len(data) + 1)
        start = rnd.choice([0, 1, 0xFFFFFFFF, rnd.randrange(1 << 32)])
        assert crc32(data, start, simd) == zlib.crc32(data, start)
        assert crc32(data[cut:], crc32(data[:cut], start, simd), simd) == zlib.crc32(data, start)



def test_simd_says_whether_the_cpu_folds():
    assert isinstance(crc32.simd, bool)
