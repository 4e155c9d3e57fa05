"""A tickring command that loaded pyarrow exits through tools/cli.py's _exit_past_arrow.

pyarrow 26 sometimes aborts at interpreter exit after Parquet I/O ("terminate called without
an active exception", exit -6, apache/arrow#34314): about 1 run in 10 here when the I/O is the
last thing a process does, which is what `tickring candles/quality/replay` do. The CLI then
exits with os._exit after flushing: the command's status and output must come through."""
from __future__ import annotations

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = """
import io, sys, pyarrow as pa, pyarrow.parquet as pq
buf = io.BytesIO(); pq.write_table(pa.table({"a": list(range(1000))}), buf)
assert pq.read_table(io.BytesIO(buf.getvalue())).num_rows == 1000
import tools.cli
real = tools.cli.os._exit
tools.cli.os._exit = lambda code: (sys.stderr.write(f"_exit({code})\\n"), real(code))
tools.cli.main(sys.argv[1:])
"""


def run(*args):
    return subprocess.run([sys.executable, "-c", SCRIPT, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)


def test_status_and_output_come_through_the_arrow_safe_exit():
    ok = run("--help")
    assert ok.returncode == 0 and "Usage:" in ok.stdout and "_exit(0)" in ok.stderr
    bad = run("no-such-command")
    assert bad.returncode == 2 and "No such command" in bad.stderr and "_exit(2)" in bad.stderr
