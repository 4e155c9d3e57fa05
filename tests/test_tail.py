"""`tickring tail` against a live ring fed by a producer process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A producer process: registers two instruments, then writes trades and quotes until killed.
PRODUCER = r"""
import sys, time
import numpy as np
import shm
from shm.registry import Registry
ring_name, reg_name = sys.argv[1], sys.argv[2]
reg = Registry.create(reg_name)
btc = reg.add("binance", "BTCUSDT", "BTC-USDT", "spot", 0.01, 1e-5)
eth = reg.add("binance", "ETHUSDT", "ETH-USDT", "spot", 0.01, 1e-4)
ring = shm.Ring.create(ring_name, capacity=1 << 12)
w = ring.writer()
print("ready", flush=True)
i = 0
while True:
    b = shm.RecordBatch(8)
    now = time.time_ns()
    b.add(shm.Kind.TRADE, btc, now - 1000, now, shm.Side.BUY, shm.Flag.LAST, 50000.0 + i, 0.5, i)
    b.add(shm.Kind.TRADE, eth, now - 1000, now, shm.Side.SELL, shm.Flag.LAST, 3000.0 + i, 2.0, i)
    b.add_quote(btc, now - 1000, now, shm.Flag.LAST, 49999.5, 1.0, 50000.5, 2.0)
    w.publish_buffer(b.buf, b.n)
    i += 1
    time.sleep(0.002)
"""


def run(*args, timeout=20):
    return subprocess.run([sys.executable, "-m", "tools.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def live(shm_names):
    ring, reg = shm_names("binance"), shm_names("registry")
    p = subprocess.Popen([sys.executable, "-c", PRODUCER, ring, reg], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield ring, reg
    finally:
        p.kill()
        p.wait()


def test_tail_human_filters_symbol_and_kind(live):
    ring, reg = live
    r = run("tail", "binance", "--ring", ring, "--registry", reg, "--from", "oldest",
            "--symbol", "BTCUSDT", "--kind", "trade", "--count", "5")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 5
    for line in lines:
        assert "BTCUSDT" in line and "trade" in line and "buy" in line
        assert "ETHUSDT" not in line and "quote" not in line


def test_tail_json_one_object_per_line(live):
    ring, reg = live
    r = run("tail", "binance", "--ring", ring, "--registry", reg, "--json", "--count", "9",
            "--symbol", "BTC-USDT")
    assert r.returncode == 0, r.stderr
    objs = [json.loads(line) for line in r.stdout.strip().splitlines()]
    assert len(objs) == 9
    kinds = {o["kind"] for o in objs}
    assert kinds <= {"trade", "quote"} and "quote" in kinds
    for o in objs:
        assert o["symbol"] == "BTCUSDT" and o["venue"] == "binance"
        assert isinstance(o["ts_recv"], int) and o["ts_recv"] > 1_600_000_000 * 10**9
        if o["kind"] == "quote":
            assert o["bid_price"] == 49999.5 and o["ask_size"] == 2.0
        else:
            assert o["side"] == "buy" and o["size"] == 0.5


def test_tail_without_registry_falls_back_to_ids(live):
    ring, _ = live
    r = run("tail", "binance", "--ring", ring, "--registry", "no-such-registry-here",
            "--from", "oldest", "--symbol", "2", "--count", "3")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 3 and all("#2 " in line for line in lines)


def test_tail_missing_ring_lists_live_rings(live):
    ring, reg = live
    r = run("tail", "binanse", "--registry", reg, "--count", "1")
    assert r.returncode != 0
    assert "no ring named 'binanse'" in r.stderr
    assert ring in r.stderr                      # the live ring is named as an alternative
    assert "Traceback" not in r.stderr


def test_tail_unknown_symbol_names_known_ones(live):
    ring, reg = live
    r = run("tail", "binance", "--ring", ring, "--registry", reg, "--symbol", "DOGEUSDT")
    assert r.returncode != 0
    assert "DOGEUSDT" in r.stderr and "BTCUSDT" in r.stderr and "ETHUSDT" in r.stderr
    assert "Traceback" not in r.stderr


def test_tail_idle_ring_empty_result(shm_names):
    import shm
    name = shm_names("idle")
    ring = shm.Ring.create(name, capacity=64)
    try:
        r = run("tail", "x", "--ring", name, "--registry", shm_names("noreg"), "--from", "oldest",
                "--kind", "trade", "--idle-exit", "0.3")
        assert r.returncode == 0, r.stderr
        assert r.stdout == ""
        assert "no matching records" in r.stderr
    finally:
        ring.close()


def test_tail_finds_a_namespaced_ring_and_its_registry(shm_names):
    """`tickring tail VENUE` reads '<namespace>.VENUE' (the demo's rings) and that namespace's registry."""
    import shm
    from shm.registry import Registry
    ns = shm_names("ns")
    venue = f"v{os.getpid()}"
    reg = Registry.create(f"{ns}.registry")
    ring = shm.Ring.create(f"{ns}.{venue}", capacity=64)
    try:
        iid = reg.add(venue, "SOLUSDT", "SOL-USDT")
        with ring.writer(announce=False) as w:
            w.write(1, 2, iid, shm.Kind.TRADE, shm.Side.SELL, 0, 150.25, 3.0, 77)
        r = run("tail", venue, "--from", "oldest", "--count", "1")
        assert r.returncode == 0, r.stderr
        assert "SOLUSDT" in r.stdout and "150.25" in r.stdout and "sell" in r.stdout
    finally:
        ring.close()
        reg.close()
