"""The ring protocol under real concurrency: separate processes, tiny rings, forced laps."""
from __future__ import annotations

import multiprocessing as mp
import os
import random
import signal
import time

import numpy as np
import pytest

import shm
from shm import layout as L
from shm.errors import LayoutMismatch, RingNotFound, SegmentExists, ShmError

CTX = mp.get_context("fork")


def stamp(seqs: np.ndarray) -> np.ndarray:
    """Records whose every field is derived from seq, so any tear is detectable."""
    r = shm.empty(len(seqs))
    s = seqs.astype(np.int64)
    r["ts_event"] = s * 11
    r["ts_recv"] = s ^ 0x5A5A5A5A
    r["instrument"] = (s & 0xFFFF) + 1
    r["kind"] = shm.Kind.TRADE
    r["side"] = 1 + (s & 1)
    r["flags"] = s & 0xFF
    r["price"] = s * 1.5
    r["size"] = (s % 997) + 0.25
    r["ask_price"] = -s * 2.0
    r["id"] = s * 7 + 3
    return r


def torn(batch: np.ndarray) -> int:
    """How many records in batch disagree with stamp(seq) in any byte."""
    if len(batch) == 0:
        return 0
    expect = stamp(batch["seq"])
    expect["seq"] = batch["seq"]
    got_rows = batch.view(np.uint8).reshape(len(batch), -1)
    want_rows = expect.view(np.uint8).reshape(len(batch), -1)
    return int(np.count_nonzero((got_rows != want_rows).any(axis=1)))


def _reader_proc(name, total, slow, ready, results):
    ring = shm.Ring.attach(name)
    reader = ring.reader(start=0, name=f"r{os.getpid()}", spin_us=20)
    ready.set()
    received = bad = dup_or_disorder = 0
    last = -1
    rng = random.Random(os.getpid())
    while reader.next < total:
        batch = reader.read(max_records=rng.randint(1, 200), timeout=1.0)
        if len(batch):
            seqs = batch["seq"].astype(np.int64)
            if seqs[0] <= last or np.any(np.diff(seqs) <= 0):
                dup_or_disorder += 1
            last = int(seqs[-1])
            received += len(batch)
            bad += torn(batch)
        if slow:
            time.sleep(0.0005)  # a slow consumer, to be lapped (not synchronization)
    results.put({"received": received, "lost": reader.lost, "torn": bad, "disorder": dup_or_disorder,
                 "slow": slow})
    reader.close()
    ring.close()


def _writer_proc(name, total, go):
    ring = shm.Ring.attach(name)
    writer = ring.writer(announce=False)
    go.wait()
    rng = random.Random(7)
    p = 0
    while p < total:
        n = min(rng.choice((1, 1, 2, 5, 17, 63, 100)), total - p)
        writer.publish(stamp(np.arange(p, p + n)))
        p += n
    writer.close()
    ring.close()


def test_one_writer_three_readers_no_tears_exact_accounting(shm_names):
    name = shm_names("spmc")
    ring = shm.Ring.create(name, capacity=64)
    total = 300_000
    results = CTX.Queue()
    go = CTX.Event()
    readers = []
    for slow in (False, False, True):
        ready = CTX.Event()
        p = CTX.Process(target=_reader_proc, args=(name, total, slow, ready, results))
        p.start()
        assert ready.wait(20)
        readers.append(p)
    writer = CTX.Process(target=_writer_proc, args=(name, total, go))
    writer.start()
    go.set()
    writer.join(120)
    outs = [results.get(timeout=120) for _ in readers]
    for p in readers:
        p.join(10)
    assert writer.exitcode == 0
    assert ring.published == total
    for out in outs:
        assert out["torn"] == 0, out
        assert out["disorder"] == 0, out
        assert out["received"] + out["lost"] == total, out
    slow = [o for o in outs if o["slow"]][0]
    assert slow["lost"] > 0, "the slow reader should have been lapped on a 64-record ring"
    ring.close()


def test_reader_attaching_mid_stream_and_start_positions(shm_names):
    with shm.Ring.create(shm_names(), capacity=128) as ring:
        w = ring.writer(announce=False)
        w.publish(stamp(np.arange(1000)))
        latest = ring.reader(start="latest")
        oldest = ring.reader(start="oldest")
        absolute = ring.reader(start=500)
        assert len(latest.read(timeout=0)) == 0
        got = oldest.read(max_records=10_000, timeout=0)
        assert got["seq"][0] == 1000 - 128 and len(got) == 128 and oldest.lost == 0
        got = absolute.read(max_records=10_000, timeout=0)
        assert absolute.lost == (1000 - 128) - 500 and got["seq"][0] == 1000 - 128
        w.publish(stamp(np.arange(1000, 1010)))
        got = latest.read(timeout=0)
        assert list(got["seq"]) == list(range(1000, 1010))
        assert torn(got) == 0
        for r in (latest, oldest, absolute):
            r.close()
        w.close()
        ring.unlink()


def _restart_writer(name, start_evt, count):
    ring = shm.Ring.attach(name)
    w = ring.writer()
    start_evt.set()
    p = w.next_seq
    while True:  # publish until killed
        w.publish(stamp(np.arange(p, p + count)))
        p += count


def test_producer_restart_bumps_epoch_and_readers_continue(shm_names):
    name = shm_names()
    ring = shm.Ring.create(name, capacity=1 << 12)
    reader = ring.reader(start=0)
    started = CTX.Event()
    first = CTX.Process(target=_restart_writer, args=(name, started, 3))
    first.start()
    assert started.wait(20)
    deadline = time.monotonic() + 20
    while ring.published < 2000 and time.monotonic() < deadline:
        pass
    os.kill(first.pid, signal.SIGKILL)
    first.join(10)
    epoch_before = ring.epoch
    got = [reader.read(max_records=100_000, timeout=0)]
    w = ring.writer()        # the restarted producer: the dead pid no longer blocks it
    assert ring.epoch == epoch_before + 1
    w.publish(stamp(np.arange(w.next_seq, w.next_seq + 10)))
    while reader.available:
        got.append(reader.read(max_records=100_000, timeout=0))
    allrec = shm.concat(got)
    assert allrec.dtype == shm.RECORD
    seqs = allrec["seq"].astype(np.int64)
    assert np.all(np.diff(seqs) == 1), "no duplicates, no holes while the ring held everything"
    status = allrec[allrec["kind"] == shm.Kind.STATUS]
    assert len(status) == 2 and all(status["id"] == shm.Status.EPOCH)
    assert status["price"][-1] == epoch_before + 1
    assert torn(allrec[allrec["kind"] == shm.Kind.TRADE]) == 0
    assert reader.lost == 0
    w.close()
    reader.close()
    ring.close()


def test_a_second_live_producer_is_refused(shm_names):
    with shm.Ring.create(shm_names(), capacity=64) as ring:
        w = ring.writer()
        started = CTX.Event()
        p = CTX.Process(target=_restart_writer, args=(ring.name, started, 1))
        p.start()
        p.join(20)
        assert p.exitcode != 0, "the second producer must fail while the first is alive"
        assert not started.is_set()
        w.close()


def _doomed_reader(name, ready):
    ring = shm.Ring.attach(name)
    r = ring.reader(start="latest", name="doomed", spin_us=0)
    ready.set()
    r.read(timeout=None)       # blocks on the futex until killed


def test_reader_killed_with_sigkill_blocks_nobody(shm_names):
    name = shm_names()
    ring = shm.Ring.create(name, capacity=256)
    ready = CTX.Event()
    p = CTX.Process(target=_doomed_reader, args=(name, ready))
    p.start()
    assert ready.wait(20)
    os.kill(p.pid, signal.SIGKILL)
    p.join(10)
    dead = {c["name"]: c for c in ring.consumers()}["doomed"]
    assert dead["alive"] is False            # visible as dead from outside
    other = ring.reader(start="latest", name="survivor")
    assert other._slot == dead["slot"]       # and its slot is reused by the next registration
    w = ring.writer(announce=False)
    for i in range(10):
        w.publish(stamp(np.arange(i * 100, i * 100 + 100)))
    assert ring.published == 1000
    got = other.read(max_records=10_000, timeout=0)
    assert len(got) + other.lost == 1000 and torn(got) == 0
    cons = {c["name"]: c for c in ring.consumers()}
    assert "doomed" not in cons and cons["survivor"]["alive"] is True
    assert cons["survivor"]["position"] == 1000 and cons["survivor"]["lag"] == 0
    other.close()
    w.close()
    ring.unlink()
    ring.close()


def _blocked_reader(name, ready, results):
    ring = shm.Ring.attach(name)
    r = ring.reader(start="latest", spin_us=0)
    ready.set()
    t0 = time.perf_counter()
    got = r.read(timeout=10)
    results.put((len(got), time.perf_counter() - t0))
    r.close()


def test_blocked_consumer_wakes_on_publish(shm_names):
    name = shm_names()
    ring = shm.Ring.create(name, capacity=256)
    ready, results = CTX.Event(), CTX.Queue()
    p = CTX.Process(target=_blocked_reader, args=(name, ready, results))
    p.start()
    assert ready.wait(20)
    widx = L.RING["waiters"].index
    deadline = time.monotonic() + 10
    while ring._u64[widx] == 0 and time.monotonic() < deadline:
        pass                    # the consumer announced it is about to sleep
    w = ring.writer(announce=False)
    w.publish(stamp(np.arange(5)))
    n, waited = results.get(timeout=15)
    p.join(10)
    assert n == 5
    assert waited < 9, "woken by the publish, not by the 10 s timeout"
    w.close()
    ring.close()


def test_zero_copy_view_reports_overwritten_records(shm_names):
    with shm.Ring.create(shm_names(), capacity=64) as ring:
        w = ring.writer(announce=False)
        r = ring.reader(start=0)
        w.publish(stamp(np.arange(32)))
        v = r.view(max_records=32, timeout=0)
        assert len(v) == 32 and torn(v.copy()) == 0
        assert not v.flags.writeable
        assert r.release() == 0
        v = r.view(max_records=32, timeout=0)
        assert len(v) == 0
        r.release()
        w.publish(stamp(np.arange(32, 48)))
        v = r.view(max_records=64, timeout=0)
        assert len(v) == 16
        w.publish(stamp(np.arange(48, 48 + 70)))   # laps the view while it is "in use"
        bad = r.release()
        assert bad == 16 and r.lost == 16
        del v
        w.close()
        r.close()


def test_missing_ring_names_the_live_rings(shm_names):
    a = shm.Ring.create(shm_names("alpha"), capacity=64)
    with pytest.raises(RingNotFound) as e:
        shm.Ring.attach(shm_names("alpah"))
    assert shm_names("alpha") in str(e.value) and "live rings" in str(e.value)
    a.close()


def test_wrong_layout_version_or_schema_is_refused(shm_names):
    name = shm_names()
    ring = shm.Ring.create(name, capacity=64)
    other = np.dtype([("seq", "<u8"), ("x", "<f8")])
    with pytest.raises(LayoutMismatch, match="another schema"):
        shm.Ring.attach(name, dtype=other)
    ring._u64[L.COMMON["layout_version"].index] = L.LAYOUT_VERSION + 1
    with pytest.raises(LayoutMismatch, match="layout version"):
        shm.Ring.attach(name)
    ring._u64[L.COMMON["layout_version"].index] = L.LAYOUT_VERSION
    ring._u64[L.COMMON["schema_hash"].index] ^= 1
    with pytest.raises(LayoutMismatch, match="schema hash"):
        shm.Ring.attach(name)
    ring.close()


def test_bad_capacity_and_duplicate_name(shm_names):
    with pytest.raises(ValueError, match="power of two"):
        shm.Ring.create(shm_names("bad"), capacity=1000)
    assert shm_names("bad") not in shm.Ring.names()
    ring = shm.Ring.create(shm_names("dup"), capacity=64)
    with pytest.raises(SegmentExists):
        shm.Ring.create(shm_names("dup"), capacity=64)
    ring.close()


def test_segments_are_0640(shm_names):
    ring = shm.Ring.create(shm_names(), capacity=64)
    assert os.stat(ring.seg.path).st_mode & 0o777 == 0o640
    ring.close()


def test_other_architectures_are_refused(monkeypatch, shm_names):
    import platform
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(ShmError, match="x86-64"):
        shm.Ring.create(shm_names(), capacity=64)


def _create_or_attach(name, go, out):
    go.wait()
    try:
        ring = shm.Ring.create(name, capacity=1 << 12, exist_ok=True)
        out.put((ring.seg.created, ring.capacity, ""))
        ring.close()
    except Exception as e:  # noqa: BLE001 - the test reports any error
        out.put((False, 0, repr(e)))


def test_racing_creators_never_see_a_half_built_segment(shm_names):
    """Creation is atomic (built under a hidden name, linked into place): 6 processes racing to
    create-or-attach one name all succeed, exactly one of them created it."""
    for round_ in range(5):
        name = shm_names(f"race{round_}")
        go, out = CTX.Event(), CTX.Queue()
        procs = [CTX.Process(target=_create_or_attach, args=(name, go, out)) for _ in range(6)]
        for p in procs:
            p.start()
        go.set()
        results = [out.get(timeout=30) for _ in procs]
        for p in procs:
            p.join(10)
        assert [r[2] for r in results] == [""] * 6
        assert sum(r[0] for r in results) == 1 and {r[1] for r in results} == {1 << 12}
    assert not [n for n in os.listdir("/dev/shm") if "creating" in n]


def _resident_kb(path: str) -> int:
    """Resident kB of this process's mapping(s) of the file at `path` (from /proc/self/smaps;
    matched by inode: the creator mapped it under its temporary name)."""
    inode = str(os.stat(path).st_ino)
    kb, inside = 0, False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()
            if "-" in head[0] and len(head) >= 5 and ":" in head[3]:     # a mapping's first line
                inside = head[4] == inode
            elif inside and head[0] == "Rss:":
                kb += int(head[1])
    return kb


def test_writer_and_reader_map_every_page_up_front(shm_names):
    """No first-touch page faults on the hot path: creating the writer commits and maps every
    page of the ring, and a reader in another mapping maps them too."""
    from shm.segment import path_of
    name = shm_names("pf")
    ring = shm.Ring.create(name, capacity=1 << 12)            # 256 KiB of records
    data_kb = (1 << 12) * 64 // 1024
    w = ring.writer(announce=False)
    assert _resident_kb(path_of(name)) >= data_kb
    other = shm.Ring.attach(name)                             # a second, separate mapping
    assert _resident_kb(path_of(name)) < 2 * data_kb
    r = other.reader(start="latest")
    assert _resident_kb(path_of(name)) >= 2 * data_kb, "the reader's mapping is populated too"
    r.close()
    w.close()
    other.close()
    ring.close()


def test_a_segment_half_built_by_a_dead_process_is_removed(shm_names):
    """create() builds under `.tickring.creating-<pid>-...` and links into place; a creator that
    died in between leaves that file behind, and the next create() removes it (not a live one)."""
    import subprocess
    import sys
    from shm.segment import SHM_DIR
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = os.path.join(SHM_DIR, f".tickring.creating-{dead.pid}-deadbeef")
    live = os.path.join(SHM_DIR, f".tickring.creating-{os.getpid()}-feedface")
    for path in (stale, live):
        with open(path, "wb") as f:
            f.write(b"\0" * 64)
    try:
        shm.Ring.create(shm_names("after"), capacity=1 << 4).close()
        assert not os.path.exists(stale), "a dead creator's half-built segment is removed"
        assert os.path.exists(live), "a live creator's is left alone"
    finally:
        for path in (stale, live):
            if os.path.exists(path):
                os.unlink(path)
