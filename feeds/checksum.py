"""Order-book checksums as the venues define them (pure functions, used by the book keeper and
the simulator).

Both venues checksum the *local* book after applying a message, so these functions take the
book keeper's sorted levels, best first: asks low -> high, bids high -> low, each level a
(price, size) pair.

Kraken websocket v2 (`book` channel, docs.kraken.com guides/spot-ws-book-v2):
  top 10 asks then top 10 bids; each price and qty written with the pair's fixed precision
  (AssetPairs `pair_decimals` / `lot_decimals`, v2 `instrument` price_precision/qty_precision),
  '.' removed, leading zeros stripped, price then qty, all concatenated; CRC32 as unsigned 32-bit.
  The wire carries JSON numbers without trailing zeros (0.566 for 0.5660), so the precision is
  required: the docs' MATIC/USD example only reproduces with 4 / 8 decimals.
  Levels may be floats (formatted with the precision) or strings already in fixed precision.

Bitget v2 (`books` channel): the first 25 levels interleaved "bid1p:bid1s:ask1p:ask1s:bid2p:..."
  (a shorter side simply stops contributing), using the venue's ORIGINAL price/size strings
  (the decoder keeps them per level: feeds/native/bitget.pyx, which computes this checksum of
  the keeper's book in C); CRC32 compared as a signed 32-bit int.
"""
from __future__ import annotations

from zlib import crc32

KRAKEN_LEVELS = 10
BITGET_LEVELS = 25


def _kraken_field(value, decimals: int) -> str:
    text = value if isinstance(value, str) else f"{value:.{decimals}f}"
    return text.replace(".", "").lstrip("0")


def kraken_string(asks, bids, price_decimals: int, qty_decimals: int) -> str:
    """The string Kraken v2 checksums (exposed for tests and debugging)."""
    parts = []
    for levels in (asks, bids):
        for i, (p, q) in enumerate(levels):
            if i == KRAKEN_LEVELS:
                break
            parts.append(_kraken_field(p, price_decimals))
            parts.append(_kraken_field(q, qty_decimals))
    return "".join(parts)


def kraken_checksum(asks, bids, price_decimals: int, qty_decimals: int) -> int:
    """Kraken v2 book CRC32 (unsigned) over the top 10 levels of each side.

    asks: [(price, qty)] ascending; bids: [(price, qty)] descending (at least the top 10).
    """
    return crc32(kraken_string(asks, bids, price_decimals, qty_decimals).encode()) & 0xFFFFFFFF


def bitget_string(bids, asks) -> str:
    """The string Bitget checksums: top 25 levels interleaved bid, ask, bid, ask, ..."""
    parts = []
    nb = min(len(bids), BITGET_LEVELS)
    na = min(len(asks), BITGET_LEVELS)
    for i in range(max(nb, na)):
        if i < nb:
            parts.append(bids[i][0])
            parts.append(bids[i][1])
        if i < na:
            parts.append(asks[i][0])
            parts.append(asks[i][1])
    return ":".join(parts)


def signed32(value: int) -> int:
    """An unsigned 32-bit value as the signed int32 venues like Bitget/OKX publish."""
    value &= 0xFFFFFFFF
    return value - 0x1_0000_0000 if value & 0x8000_0000 else value


def bitget_checksum(bids, asks) -> int:
    """Bitget v2 book CRC32 as a signed int32 over the top 25 levels (original strings).

    bids: [(price_str, size_str)] descending; asks: [(price_str, size_str)] ascending.
    """
    return signed32(crc32(bitget_string(bids, asks).encode()))


def matches(venue_value: int | str | None, local: int) -> bool:
    """Compare a venue checksum with a local one regardless of the signedness either uses."""
    if venue_value is None:
        return True
    return (int(venue_value) & 0xFFFFFFFF) == (local & 0xFFFFFFFF)
