"""Venue book checksums: Kraken v2 reproduces the docs' MATIC/USD snapshot and update values;
Bitget reproduces the docs' interleaving example and publishes signed int32."""
from __future__ import annotations

import zlib

import pytest

from feeds.checksum import (bitget_checksum, bitget_string, kraken_checksum, kraken_string,
                            matches, signed32)
import wire_samples



@pytest.fixture(scope="module")
def kraken_book():
    doc = wire_samples.document("kraken_v2.json")
    snap = next(m["payload"] for m in doc["messages"]
                if m["channel"] == "book" and m["kind"] == "snapshot")["data"][0]
    upd = next(m["payload"] for m in doc["messages"]
               if m["channel"] == "book" and m["kind"] == "update")["data"][0]
    return snap, upd


def _sorted(levels: dict, reverse: bool):
    return sorted(levels.items(), reverse=reverse)


def test_kraken_docs_snapshot(kraken_book):
    snap, _ = kraken_book
    asks = {lv["price"]: lv["qty"] for lv in snap["asks"]}
    bids = {lv["price"]: lv["qty"] for lv in snap["bids"]}
    # MATIC/USD: price precision 4, qty precision 8 (the wire shows 0.566 for 0.5660)
    assert kraken_checksum(_sorted(asks, False), _sorted(bids, True), 4, 8) == snap["checksum"]
    assert kraken_string(_sorted(asks, False), _sorted(bids, True), 4, 8).startswith(
        "5668441079769741" "5669465540412487")


def test_kraken_docs_update(kraken_book):
    snap, upd = kraken_book
    asks = {lv["price"]: lv["qty"] for lv in snap["asks"]}
    bids = {lv["price"]: lv["qty"] for lv in snap["bids"]}
    for lv in upd["bids"]:
        bids[lv["price"]] = lv["qty"]
    assert kraken_checksum(_sorted(asks, False), _sorted(bids, True), 4, 8) == upd["checksum"]


def test_kraken_uses_top_ten_only_and_detects_a_change(kraken_book):
    snap, _ = kraken_book
    asks = _sorted({lv["price"]: lv["qty"] for lv in snap["asks"]}, False)
    bids = _sorted({lv["price"]: lv["qty"] for lv in snap["bids"]}, True)
    deeper = asks + [(0.6, 1.0)]
    assert kraken_checksum(deeper, bids, 4, 8) == snap["checksum"]
    changed = [asks[0]] + [(asks[1][0], asks[1][1] + 1e-8)] + asks[2:]
    assert kraken_checksum(changed, bids, 4, 8) != snap["checksum"]


def test_kraken_string_levels_and_hand_case():
    # hand-computed: asks 45285.2/0.00100000 -> "452852" + "100000"; bids 45283.5/0.10000000
    s = kraken_string([("45285.2", "0.00100000")], [("45283.5", "0.10000000")], 1, 8)
    assert s == "452852" "100000" "452835" "10000000"
    assert kraken_checksum([(45285.2, 0.001)], [(45283.5, 0.1)], 1, 8) == \
        zlib.crc32(s.encode()) & 0xFFFFFFFF


def test_bitget_docs_interleaving_example():
    # docs: one bid, three asks -> "3366.1:7:3366.8:9:3368:8:3372:8"
    bids = [("3366.1", "7")]
    asks = [("3366.8", "9"), ("3368", "8"), ("3372", "8")]
    assert bitget_string(bids, asks) == "3366.1:7:3366.8:9:3368:8:3372:8"
    cs = bitget_checksum(bids, asks)
    assert -2**31 <= cs < 2**31
    assert cs == signed32(zlib.crc32(b"3366.1:7:3366.8:9:3368:8:3372:8"))


def test_bitget_top_25_and_original_strings():
    bids = [(f"{100 - i}.0", "1") for i in range(30)]
    asks = [(f"{101 + i}.0", "2") for i in range(30)]
    s = bitget_string(bids, asks)
    assert s.count(":") == 25 * 4 - 1 and s.startswith("100.0:1:101.0:2:99.0:1")
    # "1.0" and "1" are different strings: the checksum must see what the venue sent
    assert bitget_checksum([("1.0", "1")], []) != bitget_checksum([("1", "1")], [])


def test_signedness_helpers():
    assert signed32(0xFFFFFFFF) == -1 and signed32(5) == 5
    assert matches(-1, 0xFFFFFFFF) and matches(0xFFFFFFFF, -1)
    assert not matches(1, 2)
    assert matches(None, 123)
