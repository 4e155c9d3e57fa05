"""Memory sampling from outside: a child's figure includes the processes it started (the
compactor's Parquet writer), so the budget counts what the box pays."""
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
