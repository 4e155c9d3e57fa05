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

