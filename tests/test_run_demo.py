"""`tickring run` (the demo) end to end: the simulator, real feed workers and the compactor under
the supervisor; a SIGKILLed worker continues its ring with a new epoch; --duration exits 0
and leaves no process and no segment behind."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from appliance import config
from shm import segment

VENUES = config.simulated_venues()
pytestmark = pytest.mark.skipif(not VENUES, reason="no venue is both implemented and simulated")


def state(ns):
    try:
        with open(segment.path_of(f"{ns}.supervisor")) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def wait_for(cond, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_demo_runs_restarts_a_killed_worker_and_stops_clean(shm_names):
    ns = shm_names("demo")
    proc = subprocess.Popen([sys.executable, "-m", "tools.cli", "run", "--namespace", ns, "--duration", "60",
                             "--symbols", "100", "--rate", "100", "--no-view"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen_pids = set()
    try:
        def flowing():      # every venue has its ring and a live producer; data flows
            s = state(ns)
            return s if s and s["ready"] and len(s["rings"]) == len(VENUES) and \
                all(r["producer_alive"] for r in s["rings"]) and \
                any(r["counters"]["messages"] > 0 for r in s["rings"]) else None
        s = wait_for(flowing, 40, "a producer on every venue ring and messages")
        seen_pids |= {p["pid"] for p in s["processes"] if p["pid"]}
        busy = {r["name"] for r in s["rings"] if r["counters"]["messages"] > 0}
        worker = next(p for p in s["processes"] if p["kind"] == "worker" and p["ring"] in busy)
        ring = next(r for r in s["rings"] if r["name"] == worker["ring"])
        assert ring["epoch"] >= 1 and ring["producer_pid"] == worker["pid"]
        os.kill(worker["pid"], signal.SIGKILL)

        def restarted():
            s = state(ns)
            r = next(x for x in s["rings"] if x["name"] == worker["ring"]) if s else None
            return s if r and r["epoch"] > ring["epoch"] and r["producer_alive"] \
                and r["published"] > ring["published"] else None
        s = wait_for(restarted, 20, "the killed worker's ring to continue with a new epoch")
        p = next(x for x in s["processes"] if x["name"] == worker["name"])
        assert p["restarts"] == 1 and p["pid"] != worker["pid"]
        seen_pids |= {p["pid"] for p in s["processes"] if p["pid"]}
        proc.send_signal(signal.SIGTERM)               # what systemd and Ctrl-C do
        assert proc.wait(timeout=30) == 0, proc.stderr.read().decode()[-2000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
    left = [pid for pid in seen_pids if psutil.pid_exists(pid)
            and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE]
    assert left == []
    assert [n for n in segment.list_segments() if n.startswith(ns)] == []
