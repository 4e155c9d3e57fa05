"""The compactor spools row groups and leaves Parquet to a short-lived writer process forked from
a small server it starts: neither the compactor nor the server loads pyarrow, flushes commit in
order, a failed writer (or a server gone) checkpoints nothing (the rows are read again from the
ring at the next start), and no writer outlives its compactor."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest

from appliance.compactor.checkpoint import Checkpoints, recover
from appliance.compactor.jobs import WriterFailed, WriterJobs
from appliance.compactor.spool import SpoolFile
from appliance.compactor.staging import Staging
from shm import Registry, Ring
from shm.record import RECORD, Kind, Side

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

COMPACT = r"""
import json, sys, time
sys.path.insert(0, sys.argv[1])
from appliance.compactor.process import Compactor
comp = Compactor({"rings": {"binance": sys.argv[2]}, "root": sys.argv[4], "registry": sys.argv[3],
                  "row_group_rows": 1000, "timeframes": ["1s"], "backfill": False})
want = int(sys.argv[5])
deadline = time.monotonic() + 60
while comp.streams[0].reader.next < want and time.monotonic() < deadline:
    if comp.step() == 0:
        comp.wait(0.01)
comp.flush()
runs = comp.jobs.runs
server_maps = open(f"/proc/{comp.jobs.server.pid}/maps").read()
comp.close()
print(json.dumps({"pyarrow_loaded": any(m.split(".")[0] == "pyarrow" for m in sys.modules), "writer_runs": runs,
                  "server_maps_pyarrow": "pyarrow" in server_maps}))
"""


def trades(ids, n, t0):
    rec = np.zeros(n, RECORD)
    rec["seq"] = np.arange(n)
    rec["ts_recv"] = t0 + np.arange(n) * 1000
    rec["ts_event"] = rec["ts_recv"] - 1_000_000
    rec["kind"] = Kind.TRADE
    rec["instrument"] = np.array(ids)[np.arange(n) % len(ids)]
    rec["side"] = Side.BUY
    rec["price"] = 100 + np.arange(n) % 7
    rec["size"] = 1.5
    rec["id"] = np.arange(n) + 1
    return rec


def test_compactor_never_loads_pyarrow_and_its_writer_makes_the_files(tmp_path, shm_names):
    ring_name, reg_name = shm_names("ring"), shm_names("reg")
    reg = Registry.create(reg_name, capacity=64)
    ids = [reg.add("binance", s, n, "spot") for s, n in (("BTCUSDT", "BTC-USDT"), ("ETHUSDT", "ETH-USDT"))]
    ring = Ring.create(ring_name, 1 << 14)
    n = 5000
    w = ring.writer(announce=False)
    w.publish(trades(ids, n, time.time_ns() - 10_000_000_000))
    root = str(tmp_path / "pq")
    try:
        out = subprocess.run([sys.executable, "-c", COMPACT, ROOT, ring_name, reg_name, root, str(n)],
                             capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        report = json.loads(out.stdout.strip().splitlines()[-1])
        assert report["pyarrow_loaded"] is False
        assert report["server_maps_pyarrow"] is False          # the process writers fork from
        assert report["writer_runs"] >= 1
        files = sorted(os.path.join(d, f) for d, _, fs in os.walk(os.path.join(root, "trades")) for f in fs)
        t = pq.ParquetFile(files[0])
        assert len(files) == 1 and t.metadata.num_rows == n
        assert t.metadata.num_row_groups == 5                 # row groups of row_group_rows
        table = t.read()
        assert table.column("seq").to_pylist() == list(range(n))
        assert table.column("symbol").to_pylist()[:2] == ["BTCUSDT", "ETHUSDT"]
        assert os.listdir(os.path.join(root, ".staging")) == []
        assert json.load(open(os.path.join(root, ".checkpoints", "binance.json")))["next_seq"] == n
    finally:
        w.close()
        ring.close()
        reg.close()


def _flush(staging, venue, rows):
    f = SpoolFile(staging.root, "trades", venue, "2026-01-01", "record", 16384)
    f.append(rows, int(rows["ts_recv"][0]), int(rows["ts_recv"][-1]))
    return f.finish(staging)


def test_flushes_commit_in_order_even_one_without_files(tmp_path):
    staging, ckpts = Staging(str(tmp_path)), Checkpoints(str(tmp_path))
    saved = []
    save = ckpts.save
    ckpts.save = lambda venue, data: (saved.append(venue), save(venue, data))
    jobs = WriterJobs(staging, ckpts, lambda i: f"S{i}", {})
    t0 = 1_767_225_600_000_000_000
    jobs.submit("va", [_flush(staging, "va", trades([1], 300, t0))], {"next_seq": 300})
    jobs.submit("vb", [], {"next_seq": 0})            # nothing to write, but behind va's files
    jobs.submit("va", [_flush(staging, "va", trades([1], 200, t0 + 10**9))], {"next_seq": 500})
    jobs.drain()
    jobs.close()
    assert saved == ["va", "vb", "va"]
    assert ckpts.load("va")["next_seq"] == 500
    files = [os.path.join(d, f) for d, _, fs in os.walk(os.path.join(str(tmp_path), "trades")) for f in fs]
    assert sorted(pq.ParquetFile(f).metadata.num_rows for f in files) == [200, 300]
    assert jobs.rows_written == 500 and not jobs.busy


def test_a_failed_writer_checkpoints_nothing_and_leaves_only_orphans(tmp_path):
    root = str(tmp_path)
    staging, ckpts = Staging(root), Checkpoints(root)
    jobs = WriterJobs(staging, ckpts, lambda i: "", {})
    entry = _flush(staging, "va", trades([1], 100, 1_767_225_600_000_000_000))
    entry["rows"] = 150                                # the spool ends early: the writer fails
    with pytest.raises(WriterFailed, match="exited with 1 writing va"):
        jobs.submit("va", [entry], {"next_seq": 100})
        jobs.drain()
    jobs.close()
    assert ckpts.load("va") is None
    assert not os.path.exists(os.path.join(root, "trades"))
    moved, orphans = recover(root)                      # the next start cleans .staging
    assert moved == 0 and orphans >= 2                 # spool + manifest (+ a partial file)
    assert os.listdir(os.path.join(root, ".staging")) == []


def test_a_venue_due_publishes_the_venues_half_way_there_in_the_same_writer_run(tmp_path, shm_names):
    from appliance.compactor.process import Compactor
    reg_name = shm_names("reg")
    reg = Registry.create(reg_name, capacity=64)
    rings = {v: Ring.create(shm_names(v), 1 << 12) for v in ("vb", "vc", "va")}   # va resolves last
    ids = {v: reg.add(v, "BTCUSDT", "BTC-USDT", "spot") for v in rings}
    t0 = time.time_ns() - 10_000_000_000
    for v, n in (("va", 1000), ("vb", 600), ("vc", 300)):     # max_rows 1000: va due, vb half way
        with rings[v].writer(announce=False) as w:
            w.publish(trades([ids[v]], n, t0))
    comp = Compactor({"rings": {v: r.name for v, r in rings.items()}, "root": str(tmp_path), "registry": reg_name,
                      "max_rows": 1000, "timeframes": ["1h"], "backfill": False})
    try:
        runs = comp.jobs.runs
        while sum(s.reader.next for s in comp.streams) < 1900:
            comp.step()
        comp.jobs.drain()
        assert comp.jobs.runs == runs + 1
        saved = {v: (comp.checkpoints.load(v) or {}).get("next_seq") for v in rings}
        assert saved == {"va": 1000, "vb": 600, "vc": 0}
        comp.flush()
    finally:
        comp.close()
        for r in rings.values():
            r.close()
        reg.close()


def _blocked_on_fifo(pid: int) -> None:
    deadline = time.monotonic() + 60
    while open(f"/proc/{pid}/wchan").read() != "wait_for_partner":   # opening the FIFO
        assert time.monotonic() < deadline, "the writer never opened its manifest"
        time.sleep(0.01)


def _gone(proc, what: str) -> None:
    import psutil
    try:
        proc.wait(timeout=30)
    except psutil.TimeoutExpired:
        proc.kill()
        raise AssertionError(f"the {what} outlived its compactor")
    except psutil.NoSuchProcess:
        pass


def test_the_forked_writer_and_its_server_die_with_the_compactor(tmp_path):
    """A writer must not outlive a killed compactor: the restarted one cleans .staging and would
    race it. The manifest here is a FIFO nobody writes, so the writer blocks until killed."""
    import psutil
    fifo = str(tmp_path / "manifest")
    os.mkfifo(fifo)
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys\n"
        "from appliance.compactor.forkserver import ForkServer\n"
        "server = ForkServer.start()\n"
        "print(server.pid, server.run(sys.argv[1]), flush=True)\n"
        "sys.stdin.read()\n"), fifo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    server_pid, writer_pid = map(int, parent.stdout.readline().split())
    server, writer = psutil.Process(server_pid), psutil.Process(writer_pid)
    _blocked_on_fifo(writer_pid)
    assert (server.name(), writer.name()) == ("parquet-forks", "parquet-writer")
    assert writer.ppid() == server_pid and server.ppid() == parent.pid
    parent.kill()
    parent.wait()
    parent.stdin.close()
    parent.stdout.close()
    _gone(server, "fork server")
    _gone(writer, "writer")


def test_close_kills_a_running_writer_and_stops_the_server(tmp_path):
    import psutil
    fifo = str(tmp_path / "manifest")
    os.mkfifo(fifo)
    jobs = WriterJobs(Staging(str(tmp_path)), Checkpoints(str(tmp_path)), lambda i: "", {})
    writer = psutil.Process(jobs.server.run(fifo))
    jobs.running = (writer.pid, [], fifo)
    _blocked_on_fifo(writer.pid)
    server = jobs.server.pid
    jobs.close()
    assert not writer.is_running() or writer.status() == psutil.STATUS_ZOMBIE
    assert not psutil.pid_exists(server)                 # reaped


def test_a_server_gone_is_a_writer_failed(tmp_path):
    import signal
    root = str(tmp_path)
    staging, ckpts = Staging(root), Checkpoints(root)
    jobs = WriterJobs(staging, ckpts, lambda i: "", {})
    os.kill(jobs.server.pid, signal.SIGKILL)
    with pytest.raises(WriterFailed, match="fork server .* is gone writing va"):
        jobs.submit("va", [_flush(staging, "va", trades([1], 100, 1_767_225_600_000_000_000))], {"next_seq": 100})
        jobs.drain()
    jobs.close()
    assert ckpts.load("va") is None


def test_the_writer_loads_pyarrow_lean_and_it_still_works():
    probe = ("import json, os, io\n"
             "from appliance.compactor import pyarrow_lean\n"
             "dropped = pyarrow_lean.load()\n"
             "import pyarrow as pa, pyarrow.parquet as pq\n"
             "buf = io.BytesIO(); pq.write_table(pa.table({'a': [1, 2, 3]}), buf)\n"
             "print(json.dumps({'dropped': dropped, 'pool': pa.default_memory_pool().backend_name,\n"
             "                  'back': pq.read_table(io.BytesIO(buf.getvalue())).column('a').to_pylist()}))\n"
             # as the writer does: pyarrow 26 aborts ~1 exit in 10 after Parquet I/O (tools/cli.py)
             "import sys; sys.stdout.flush(); os._exit(0)\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["dropped"] > 4 << 20           # ~23 MB on pyarrow 26
    assert report["pool"] == "system" and report["back"] == [1, 2, 3]


def test_the_writer_started_by_hand_dies_with_its_parent(tmp_path):
    """`python -m appliance.compactor.parquet_job MANIFEST PARENT` (debugging) keeps the rule."""
    import psutil
    fifo = str(tmp_path / "manifest")
    os.mkfifo(fifo)
    parent = subprocess.Popen([sys.executable, "-c", (
        "import os, subprocess, sys\n"
        "w = subprocess.Popen([sys.executable, '-m', 'appliance.compactor.parquet_job', sys.argv[1], str(os.getpid())])\n"
        "print(w.pid, flush=True)\n"
        "sys.stdin.read()\n"), fifo], stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=ROOT)
    writer = psutil.Process(int(parent.stdout.readline()))
    _blocked_on_fifo(writer.pid)
    parent.kill()
    parent.wait()
    parent.stdin.close()
    parent.stdout.close()
    _gone(writer, "writer")
