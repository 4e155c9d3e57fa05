"""`tickring rm`: removes stale segments, refuses what a live process still needs."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import shm
from shm.segment import list_segments, path_of

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRODUCER = r"""
import sys, time
import shm
ring = shm.Ring.create(sys.argv[1], capacity=64)
w = ring.writer()
print("ready", flush=True)
time.sleep(600)
"""


def run(*args):
    return subprocess.run([sys.executable, "-m", "tools.cli", "rm", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=30)


@pytest.fixture
def producer(shm_names):
    name = shm_names("live")
    p = subprocess.Popen([sys.executable, "-c", PRODUCER, name], cwd=ROOT, stdout=subprocess.PIPE,
                         text=True)
    try:
        assert p.stdout.readline().strip() == "ready"
        yield name
    finally:
        p.kill()
        p.wait()


def stale_ring(name: str) -> None:
    ring = shm.Ring.create(name, capacity=64)
    ring.writer().close()
    ring.close()


def test_rm_refuses_a_ring_with_a_live_producer_unless_forced(producer):
    r = run(producer)
    assert r.returncode != 0
    assert "live producer" in r.stdout and "--force" in r.stdout
    assert producer in list_segments()
    r = run(producer, "--force")
    assert r.returncode == 0, r.stderr
    assert producer not in list_segments()


def test_rm_removes_a_stale_ring_and_reports_a_missing_name(shm_names):
    name = shm_names("stale")
    stale_ring(name)
    r = run(name)
    assert r.returncode == 0, r.stderr
    assert "removed" in r.stdout and name not in list_segments()
    r = run(name)
    assert r.returncode != 0 and f"no segment named {name!r}" in r.stderr
    assert "Traceback" not in r.stderr


def test_rm_all_stale_keeps_live_rings_and_rings_with_consumers(shm_names, producer):
    stale, watched = shm_names("stale"), shm_names("watched")
    stale_ring(stale)
    stale_ring(watched)
    ring = shm.Ring.attach(watched)
    reader = ring.reader(start="oldest")            # a live consumer (this process)
    try:
        prefix = stale.rsplit("-", 1)[0] + "-*"
        r = run("--all-stale", prefix, "--dry-run")
        assert r.returncode == 0, r.stderr
        assert f"would remove  ring     {stale}" in r.stdout and stale in list_segments()
        r = run("--all-stale", prefix, "--json")
        assert r.returncode == 0, r.stderr
        res = {x["name"]: x for x in json.loads(r.stdout)["results"]}
        assert res[stale]["action"] == "removed"
        assert res[watched]["action"] == "kept" and "consumer" in res[watched]["reason"]
        left = list_segments()
        assert stale not in left and watched in left
    finally:
        reader.close()
        ring.close()


def test_rm_all_stale_keeps_live_producers(producer):
    r = run("--all-stale", producer)
    assert r.returncode == 0, r.stderr
    assert "kept" in r.stdout and producer in list_segments()


def test_rm_refuses_segments_of_a_running_appliance(shm_names):
    ns = shm_names("ns")
    lock = f"{ns}.supervisor.lock"
    with open(path_of(lock), "w") as f:
        f.write(f"{os.getpid()}\n")                 # a "supervisor" that is alive: this process
    ring = f"{ns}.binance"
    stale_ring(ring)
    r = run(ring)
    assert r.returncode != 0 and "running appliance" in r.stdout and ring in list_segments()
    r = run(lock)
    assert r.returncode != 0 and "supervisor" in r.stdout
    os.unlink(path_of(lock))
    r = run(ring)
    assert r.returncode == 0 and ring not in list_segments()


def test_rm_needs_names_or_all_stale():
    r = run()
    assert r.returncode != 0 and "--all-stale" in r.stderr
