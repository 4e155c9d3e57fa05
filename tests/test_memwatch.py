"""Memory sampling from outside: a child's figure includes the processes it started (the
compactor's Parquet writer), itemized by name, so the budget counts what the box pays; shared
memory segments count apart, also in the process that created them."""
from __future__ import annotations

import subprocess
import sys

from appliance import memwatch

# a parent that starts a child holding 64 MB of touched memory, says so, and waits for stdin
PARENT = r"""
import subprocess, sys
kid = subprocess.Popen([sys.executable, "-c",
    "import sys; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); print('ready', flush=True); sys.stdin.read()"],
    stdin=subprocess.PIPE, stdout=subprocess.PIPE)
assert kid.stdout.readline().strip() == b"ready"
print(kid.pid, flush=True)
sys.stdin.read()
kid.stdin.close()
kid.wait()
"""


def test_sample_with_descendants_counts_the_processes_a_child_started():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        kid_pid = int(parent.stdout.readline())
        alone = memwatch.sample(parent.pid)
        kid = memwatch.sample(kid_pid)
        both = memwatch.sample(parent.pid, descendants=True)
        assert kid.uss > 60 * memwatch.MB
        assert alone.uss < 40 * memwatch.MB
        assert both.uss >= alone.uss + kid.uss - 4 * memwatch.MB     # sampled at slightly different moments
        assert both.pss > alone.pss + 60 * memwatch.MB
    finally:
        parent.stdin.close()
        parent.wait(timeout=30)
    assert memwatch.sample(parent.pid) is None


def test_descendants_are_itemized_by_name():
    import psutil
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        kid_pid = int(parent.stdout.readline())
        both = memwatch.sample(parent.pid, descendants=True)
        assert list(both.kids) == [psutil.Process(kid_pid).name()]
        part = both.kids[psutil.Process(kid_pid).name()]
        assert part["n"] == 1 and part["uss"] > 60 * memwatch.MB and part["pss"] > 60 * memwatch.MB
        assert both.as_dict()["kids"] == both.kids
        assert "kids" not in memwatch.sample(parent.pid).as_dict()     # nothing to itemize
    finally:
        parent.stdin.close()
        parent.wait(timeout=30)


# a process that creates a segment maps it under the hidden name it was built under
CREATOR = r"""
import sys
import numpy as np
from shm import Ring
from shm.record import RECORD
ring = Ring.create(sys.argv[1], 1 << 16)
with ring.writer(announce=False) as w:
    w.publish(np.zeros(1 << 16, RECORD))          # every page of the 4 MiB ring touched
print("ready", flush=True)
sys.stdin.read()
ring.close()
"""


def test_a_segment_counts_as_shm_in_the_process_that_created_it(shm_names):
    name = shm_names("ring")
    proc = subprocess.Popen([sys.executable, "-c", CREATOR, name], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdout.readline().strip() == b"ready"
        with open(f"/proc/{proc.pid}/maps") as f:
            assert memwatch.SHM_CREATING_PREFIX in f.read()      # what this test is about
        mem = memwatch.sample(proc.pid)
        assert mem.shm >= 4 * memwatch.MB                         # the ring's pages, none in uss/pss
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)


def test_segment_paths():
    assert memwatch.is_segment("/dev/shm/tickring.demo.binance")
    assert memwatch.is_segment("/dev/shm/.tickring.creating-4242-0a1b2c3d (deleted)")
    assert not memwatch.is_segment("/dev/shm/other")
    assert not memwatch.is_segment("/usr/lib/x86_64-linux-gnu/libc.so.6")


def test_the_soak_gives_a_childs_descendants_rows_of_their_own(monkeypatch):
    """The compactor's own slope is not blurred by its writer's runs: the fork server (always
    there) gets a slope, the writer (a process per run, seen now and then) only its max."""
    from tools import bench_soak
    clock = [0.0]
    monkeypatch.setattr(bench_soak.time, "monotonic", lambda: clock[0])
    rec = bench_soak.Recorder(warmup_s=60)
    mb = 1 << 20
    for k, i in enumerate(range(0, 3600, 5)):
        clock[0] = float(i)
        kids = {"parquet-forks": {"uss": 3 * mb, "pss": 4 * mb, "n": 1}}
        if k % 10 == 0:
            kids["parquet-writer"] = {"uss": 35 * mb, "pss": 40 * mb, "n": 1}
        uss = 30 * mb + sum(v["uss"] for v in kids.values())
        pss = 32 * mb + sum(v["pss"] for v in kids.values())
        rec({"rings": [], "memory": {"pss": pss},
             "processes": [{"name": "compactor", "pid": 9, "restarts": 0, "recycles": 0,
                            "memory": {"uss": uss, "pss": pss, "kids": kids}}]})
    out = rec.report(60, 100, ["x"])["processes"]
    assert out["compactor"]["uss_max_mb"] == 30.0 and out["compactor"]["uss_slope_mb_per_h"] == 0.0
    assert out["compactor/parquet-forks"]["uss_slope_mb_per_h"] == 0.0
    writer = out["compactor/parquet-writer"]
    assert writer["transient"] and writer["uss_slope_mb_per_h"] is None
    assert writer["uss_max_mb"] == 35.0 and writer["pss_max_mb"] == 40.0
