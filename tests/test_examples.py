"""The consumer examples run as processes against rings fed by a producer process."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import shm
from shm.record import Flag, Kind

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")

# Two venues list BTC-USDT. Venue "va" first gets 4 fixed trades (3 buys of 1 @ 100, a sell of
# 1 @ 104), then both venues quote forever: va 100/101, vb 102/103 (crossed by +1).
PRODUCER = r"""
import sys, time
import shm
from shm.registry import Registry
ring_a, ring_b, reg_name = sys.argv[1:4]
reg = Registry.create(reg_name)
ia = reg.add("va", "BTCUSDT", "BTC-USDT", "spot")
ib = reg.add("vb", "BTC-USDT", "BTC-USDT", "spot")
ra, rb = shm.Ring.create(ring_a, capacity=1 << 12), shm.Ring.create(ring_b, capacity=1 << 12)
wa, wb = ra.writer(), rb.writer()
now = time.time_ns()
for side, px in ((1, 100.0), (1, 100.0), (1, 100.0), (2, 104.0)):
    wa.write(now, now, ia, shm.Kind.TRADE, side, 0, px, 1.0, 1)
print("ready", flush=True)
while True:
    now = time.time_ns()
    b = shm.RecordBatch(2)
    b.add_quote(ia, now, now, 0, 100.0, 5.0, 101.0, 6.0)
    wa.publish_buffer(b.buf, b.n)
    b.clear()
    b.add_quote(ib, now, now, 0, 102.0, 1.0, 103.0, 2.0)
    wb.publish_buffer(b.buf, b.n)
    time.sleep(0.005)
"""


@pytest.fixture
def live(shm_names):
    ra, rb, reg = shm_names("ns.va"), shm_names("ns.vb"), shm_names("ns.registry")
    p = subprocess.Popen([sys.executable, "-c", PRODUCER, ra, rb, reg], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield ra, rb, reg
    finally:
        p.kill()
        p.wait()


def example(name, *args, timeout=30):
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name), *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_spread_monitor_reads_two_rings_zero_copy(live):
    ra, rb, _ = live
    r = example("spread_monitor.py", ra, rb, "--symbol", "BTC-USDT", "--interval", "0.2",
                "--count", "2", "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 2
    last = rows[-1]
    assert last["bid_venue"] == "vb" and last["best_bid"] == 102.0
    assert last["ask_venue"] == "va" and last["best_ask"] == 101.0
    assert last["cross_spread"] == 1.0
    assert last["venues"] == {"va": {"bid": 100.0, "ask": 101.0}, "vb": {"bid": 102.0, "ask": 103.0}}
    r = example("spread_monitor.py", ra, rb, "--symbol", "BTC-USDT", "--interval", "0.2", "--count", "1")
    assert r.returncode == 0 and "bid 102@vb  ask 101@va  spread +1  CROSSED" in r.stdout


def test_spread_monitor_errors(live):
    ra, _, _ = live
    r = example("spread_monitor.py", ra, "no-such-ring-xyz", "--symbol", "BTC-USDT")
    assert r.returncode == 2 and "no ring named 'no-such-ring-xyz'" in r.stderr
    r = example("spread_monitor.py", ra, "--symbol", "DOGE-USDT")
    assert r.returncode == 2 and "DOGE-USDT is not listed" in r.stderr


def test_flow_imbalance_and_vwap(live):
    ra, _, _ = live
    r = example("flow_imbalance.py", ra, "--from", "oldest", "--once", "--json", "--window", "60")
    assert r.returncode == 0, r.stderr
    (row,) = [json.loads(x) for x in r.stdout.splitlines()]
    assert row["symbol"] == "BTCUSDT" and row["trades"] == 4
    assert row["buy_volume"] == 3.0 and row["sell_volume"] == 1.0
    assert row["imbalance"] == pytest.approx(0.5) and row["vwap"] == pytest.approx(101.0)
    r = example("flow_imbalance.py", ra, "--from", "oldest", "--once")
    assert r.returncode == 0 and "imbalance +0.500" in r.stdout and "vwap 101" in r.stdout


def test_signal_writer_publishes_into_its_own_ring(live, shm_names):
    ra, _, _ = live
    out = shm_names("signals")
    r = example("signal_writer.py", ra, "--out", out, "--from", "oldest", "--interval", "0.1",
                "--count", "1")
    assert r.returncode == 0, r.stderr
    ring = shm.Ring.attach(out)
    try:
        recs = ring.reader(start="oldest", register=False).read(100, timeout=0)
        sig = recs[recs["kind"] == Kind.MARK]
        assert len(sig) == 1
        s = sig[0]
        assert s["flags"] & Flag.DERIVED and s["instrument"] == 1
        assert s["price"] == pytest.approx(100.4)          # EMA(0.1) of 100, 100, 100, 104
        assert s["size"] == pytest.approx(0.1439)          # EMA(0.1) of +1, +1, +1, -1
        assert s["ask_price"] == 104.0
        assert ring.info()["producer_pid"] == 0            # the example detached cleanly
    finally:
        ring.close()
    # a consumer tool reads the signal ring like any other
    t = subprocess.run([sys.executable, "-m", "tools.cli", "tail", "x", "--ring", out, "--from",
                        "oldest", "--kind", "mark", "--count", "1", "--json"], cwd=ROOT,
                       capture_output=True, text=True, timeout=30)
    assert t.returncode == 0, t.stderr
    obj = json.loads(t.stdout)
    assert obj["price"] == pytest.approx(100.4) and "derived" in obj["flags"]


def doc_consumer() -> str:
    """The first python block of docs/consumers.md: the complete consumer the docs promise."""
    text = open(os.path.join(ROOT, "docs", "consumers.md")).read()
    start = text.index("```python\n") + len("```python\n")
    return text[start:text.index("```", start)]


def test_the_consumer_in_the_docs_runs(shm_names, tmp_path):
    import time
    from shm.registry import Registry
    ns = shm_names("ns")
    reg = Registry.create(f"{ns}.registry")
    iid = reg.add("binance", "BTCUSDT", "BTC-USDT", "spot")
    ring = shm.Ring.create(f"{ns}.binance", capacity=1 << 10)
    script = tmp_path / "consumer.py"
    script.write_text(doc_consumer())
    p = subprocess.Popen([sys.executable, str(script), ring.name, "3"], cwd=str(tmp_path),
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while not any(c["pid"] == p.pid for c in ring.consumers()):   # attached and waiting
            assert p.poll() is None, p.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        with ring.writer(announce=False) as w:
            w.status(shm.Status.GAP, iid, 10, 12)
            for k in range(3):
                w.write(1, 2 + k, iid, Kind.TRADE, shm.Side.BUY if k else shm.Side.SELL,
                        Flag.REPLAY if k == 2 else 0, 50_000.0 + k, 0.5, k)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        lines = out.splitlines()
        assert lines == ["binance BTCUSDT sell 0.5 @ 50000.0 recv 2 replay=False",
                         "binance BTCUSDT buy 0.5 @ 50001.0 recv 3 replay=False",
                         "binance BTCUSDT buy 0.5 @ 50002.0 recv 4 replay=True"]
        assert f"status GAP on instrument {iid}" in err
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        ring.close()
        reg.close()
