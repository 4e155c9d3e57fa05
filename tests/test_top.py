"""`tickring top`: the pure renderer, the collector against a live producer, and the real curses
screen in a pseudo-terminal (80x24) that quits on `q`."""
from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import time

import pytest

from tools.top import Collector, LocalBook, render

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRODUCER = r"""
import sys, time
import shm
from shm.registry import Registry
ring_name, reg_name = sys.argv[1], sys.argv[2]
reg = Registry.create(reg_name)
venue = ring_name.rsplit(".", 1)[-1]
btc = reg.add(venue, "BTCUSDT", "BTC-USDT", "spot", 0.01, 1e-5)
ring = shm.Ring.create(ring_name, capacity=1 << 14)
w = ring.writer()
b = shm.RecordBatch(64)
now = time.time_ns()
for k in range(5):
    b.add(shm.Kind.BOOK, btc, now, now, shm.Side.BID, shm.Flag.SNAPSHOT, 100.0 - k, 1.0 + k)
    b.add(shm.Kind.BOOK, btc, now, now, shm.Side.ASK, shm.Flag.SNAPSHOT, 101.0 + k, 2.0 + k)
w.publish_buffer(b.buf, b.n)
print("ready", flush=True)
i = 0
while True:
    b.clear()
    now = time.time_ns()
    b.add(shm.Kind.TRADE, btc, now, now, shm.Side.BUY if i % 2 else shm.Side.SELL, 0, 100.5, 0.25, i)
    b.add(shm.Kind.BOOK, btc, now, now, shm.Side.BID, 0, 99.5, 3.0)
    w.publish_buffer(b.buf, b.n)
    ring.add("messages", 1)
    i += 1
    time.sleep(0.002)
"""


@pytest.fixture
def live(shm_names):
    ring, reg = shm_names("ns.tvenue"), shm_names("ns.registry")
    p = subprocess.Popen([sys.executable, "-c", PRODUCER, ring, reg], cwd=ROOT,
                         stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield ring, reg, ring.rsplit(".", 1)[0], p.pid
    finally:
        p.kill()
        p.wait()


def sample_snapshot(n_venues=3):
    venues = [{"ring": f"demo.v{i}", "venue": f"venue{i}", "msgs_per_s": 1234.0 * (i + 1),
               "records_per_s": 5000.0, "published": 10, "age_ns": 2_500_000, "lag": 12, "lost": 0,
               "consumers": 1, "gaps": i, "reconnects": 0, "decode_errors": 0, "connections": 1,
               "producer_pid": 1, "producer_alive": i != 1, "memory": 50 << 20,
               "grade": "good"} for i in range(n_venues)]
    sel = {"ring": "demo.v0", "venue": "venue0", "instrument": 1, "symbol": "BTCUSDT",
           "normalized": "BTC-USDT", "market": "spot", "source": "ring",
           "bids": [(100.0 - i, 1.0) for i in range(30)], "asks": [(101.0 + i, 2.0) for i in range(30)],
           "trades": [(1_763_683_200_000_000_000 + i, 1, 100.5, 0.25) for i in range(30)]}
    return {"now_ns": 1_763_683_200_000_000_000, "namespace": "demo", "venues": venues, "selected": sel}


def test_render_fits_80x24_and_shows_everything():
    lines = render(sample_snapshot(), 80, 24)
    assert len(lines) == 24
    assert all(len(line) < 80 for line in lines)
    text = "\n".join(lines)
    for want in ("venue0", "venue1*", "1.2k", "2.5ms", "good", "50.0MiB", "BTCUSDT", "bid 100",
                 "ask 101", "spread 1", "last trades", "buy"):
        assert want in text, want
    # the ladder: asks above bids, best levels next to the separator
    ask_rows = [i for i, line in enumerate(lines) if line.startswith("ask")]
    bid_rows = [i for i, line in enumerate(lines) if line.startswith("bid")]
    assert ask_rows and bid_rows and max(ask_rows) < min(bid_rows)
    assert "101" in lines[max(ask_rows)] and "100" in lines[min(bid_rows)]


def test_render_small_and_empty_screens():
    lines = render({"now_ns": 1, "namespace": None, "venues": [], "selected": None}, 40, 10)
    assert len(lines) == 10 and "no rings" in "\n".join(lines)
    lines = render(sample_snapshot(12), 80, 24)
    assert len(lines) == 24 and any("more rings" in line for line in lines)


def test_local_book_snapshot_then_deltas():
    import numpy as np
    from shm.record import RECORD, Flag, Kind, Side
    r = np.zeros(5, RECORD)
    r["kind"] = Kind.BOOK
    r["side"] = [Side.BID, Side.ASK, Side.BID, Side.BID, Side.ASK]
    r["flags"] = [Flag.SNAPSHOT, Flag.SNAPSHOT, 0, 0, 0]
    r["price"] = [10, 11, 9, 10, 12]
    r["size"] = [1, 1, 2, 0, 3]
    b = LocalBook()
    b.bids[5.0] = 1.0                     # stale level: the snapshot clears it
    b.apply(r)
    assert b.top(5) == ([(9.0, 2.0)], [(11.0, 1.0), (12.0, 3.0)])


def test_collector_reads_a_live_ring(live):
    import numpy as np
    from appliance.compactor.schema import QUALITY_SLOT
    from shm.table import Table
    ring, reg, ns, pid = live
    quality = Table.create(f"{ns}.quality", QUALITY_SLOT, 4)
    row = np.zeros(1, QUALITY_SLOT)
    row["ts"], row["instrument"], row["grade"], row["venue"] = 1, 1, 2, b"tvenue"
    quality.write(1, row[0])
    col = Collector(namespace=ns, symbol="BTCUSDT")
    try:
        col.snapshot()
        deadline = time.monotonic() + 10
        while True:
            time.sleep(0.1)
            snap = col.snapshot()
            sel = snap["selected"]
            if sel and sel["trades"] and snap["venues"][0]["msgs_per_s"]:
                break
            assert time.monotonic() < deadline, snap
        (v,) = snap["venues"]
        assert v["ring"] == ring and v["producer_alive"] and v["producer_pid"] == pid
        assert v["grade"] == "degraded"
        assert v["msgs_per_s"] > 0 and v["records_per_s"] > 0 and v["memory"] > 0
        assert v["age_ns"] is not None and v["age_ns"] < 60e9
        assert sel["symbol"] == "BTCUSDT" and sel["normalized"] == "BTC-USDT"
        assert sel["bids"][0] == (100.0, 1.0) and sel["asks"][0] == (101.0, 2.0)
        assert (99.5, 3.0) in sel["bids"]
        assert sel["trades"][0][2] == 100.5
        text = "\n".join(render(snap))
        assert "tvenue" in text and "BTCUSDT" in text and "degraded" in text
    finally:
        col.close()
        quality.close()


def test_top_once_and_json(live):
    ring, reg, ns, _ = live
    r = subprocess.run([sys.executable, "-m", "tools.cli", "top", "--namespace", ns, "--once"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "tvenue" in r.stdout and "BTCUSDT" in r.stdout and len(r.stdout.splitlines()) == 24
    r = subprocess.run([sys.executable, "-m", "tools.cli", "top", "--namespace", ns, "--json"],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    import json
    snap = json.loads(r.stdout)
    assert snap["venues"][0]["ring"] == ring


def test_top_needs_a_terminal():
    r = subprocess.run([sys.executable, "-m", "tools.cli", "top"], cwd=ROOT, capture_output=True,
                       text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert r.returncode != 0 and "needs a terminal" in r.stderr and "Traceback" not in r.stderr


def test_top_full_screen_in_a_pty_quits_on_q(live):
    ring, reg, ns, _ = live
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = dict(os.environ, TERM="xterm")
    p = subprocess.Popen([sys.executable, "-m", "tools.cli", "top", "--namespace", ns],
                         cwd=ROOT, stdin=slave, stdout=slave, stderr=slave, env=env,
                         start_new_session=True)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + 20
        while b"BTCUSDT" not in out or b"tvenue" not in out:
            assert time.monotonic() < deadline, out[-2000:]
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    break
        os.write(master, b"\x1b[B")          # arrow down: move the selection, must not crash
        os.write(master, b"q")
        deadline = time.monotonic() + 10
        while p.poll() is None:
            assert time.monotonic() < deadline, "top did not quit on q"
            r, _, _ = select.select([master], [], [], 0.1)
            if r:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    pass
        assert p.returncode == 0, out[-2000:]
        assert b"Traceback" not in out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_collector_survives_a_ring_going_away(live):
    from shm.segment import unlink
    ring, reg, ns, pid = live
    col = Collector(namespace=ns)
    try:
        assert [v["ring"] for v in col.snapshot()["venues"]] == [ring]
        os.kill(pid, 9)
        unlink(ring)
        snap = col.snapshot()
        assert snap["venues"] == [] and snap["selected"] is None
        assert "no rings" in "\n".join(render(snap))
    finally:
        col.close()
