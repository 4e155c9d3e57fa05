"""The supervisor with trivial children (a spec is argv + limits): restart with a new epoch while
a reader keeps reading, memory recycling, clean SIGTERM, namespace ownership."""
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
from appliance.process_table import ChildSpec
from appliance.supervisor import AlreadyRunning, Supervisor
from shm import Kind, Ring, Status, segment

# A stand-in feed worker: produces records into its ring until SIGTERM.
PRODUCER = r"""
import signal, sys, time
from shm.ring import Ring
ring = Ring.attach(sys.argv[1])
w = ring.writer()
ring.add("connections")          # "connected", as a feed worker says once its websocket is open
stop = []
signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
ballast = bytearray(int(sys.argv[2]) << 20) if len(sys.argv) > 2 else b""
for i in range(0, len(ballast), 4096):
    ballast[i] = 1
i = 0
while not stop:
    w.write(0, time.time_ns(), 1, 1, 1, 0, 100.0 + i, 1.0, i)
    ring.add("messages")
    i += 1
    if i % 20 == 0:
        time.sleep(0.001)
w.close()
"""


def wait_for(cond, timeout=20.0, step=None, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if step is not None:
            step()
        else:
            time.sleep(0.02)
        value = cond()
        if value:
            return value
    raise AssertionError(f"timed out waiting for {what}")


def make_cfg(ns, capacity=1 << 12, **sup):
    return config.from_dict({"namespace": ns, "simulator": {"enabled": True},
                             "metrics": {"port": 0}, "rings": {"capacity": capacity},
                             "supervisor": {"restart_backoff_s": 0.05, "memory_check_s": 0.2,
                                            "status_interval_s": 0.2, "stop_timeout_s": 5, **sup}})


def producer_spec(cfg, label, ballast_mb=0, limit_mb=0.0):
    argv = [sys.executable, "-c", PRODUCER, cfg.shm_name(label)]
    if ballast_mb:
        argv.append(str(ballast_mb))
    return ChildSpec(name=f"feed.{label}", argv=argv, kind="worker", ring=cfg.shm_name(label),
                     venue=label, memory_limit_mb=limit_mb, cpu=sorted(os.sched_getaffinity(0))[0])


def test_sigkilled_worker_restarts_with_new_epoch_while_reader_keeps_reading(shm_names):
    cfg = make_cfg(shm_names("ns"), capacity=1 << 17)     # seconds of data: a loaded box never laps the reader
    sup = Supervisor(cfg, specs=[producer_spec(cfg, "w1")])
    sup.start()
    try:
        step = lambda: sup.step(0.02)  # noqa: E731
        ring = Ring.attach(cfg.shm_name("w1"))
        wait_for(lambda: ring.published > 100, step=step, what="first records")
        reader = ring.reader(start="oldest", name="test")
        child = sup.children[0]
        first_pid = child.pid
        assert child.spec.cpu in os.sched_getaffinity(first_pid)
        assert os.sched_getaffinity(first_pid) == {child.spec.cpu}
        epoch0 = ring.epoch
        seen = []

        def read_and_step():
            sup.step(0.01)
            batch = reader.read(4096, timeout=0.01)
            seen.append(batch)

        wait_for(lambda: sum(len(b) for b in seen) > 200, step=read_and_step, what="reading")
        os.kill(first_pid, signal.SIGKILL)
        wait_for(lambda: child.pid and child.pid != first_pid and ring.epoch > epoch0,
                 step=read_and_step, what="restart")
        count_at_restart = sum(len(b) for b in seen)
        wait_for(lambda: sum(len(b) for b in seen) > count_at_restart + 200, step=read_and_step,
                 what="records after the restart")
        records = __import__("numpy").concatenate(seen)
        status = records[(records["kind"] == Kind.STATUS) & (records["id"] == Status.EPOCH)]
        assert ring.epoch == epoch0 + 1
        assert int(status["price"][-1]) == ring.epoch            # the reader saw the epoch change in-band
        seqs = records["seq"].astype("int64")
        assert (seqs[1:] - seqs[:-1] == 1).all() or reader.lost > 0   # no record twice, none skipped unseen
        assert child.restarts == 1
        assert sup.snapshot["processes"][1]["restarts"] == 1
        reader.close()
        ring.close()
    finally:
        sup.stop()
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == psutil.STATUS_ZOMBIE


def test_child_above_memory_limit_is_recycled(shm_names):
    cfg = make_cfg(shm_names("ns"))
    sup = Supervisor(cfg, specs=[producer_spec(cfg, "fat", ballast_mb=64, limit_mb=30)])
    sup.start()
    try:
        child = sup.children[0]
        first = wait_for(lambda: child.pid, step=lambda: sup.step(0.05), what="start")
        wait_for(lambda: child.recycles >= 1 and child.pid and child.pid != first,
                 step=lambda: sup.step(0.05), what="recycle")
        assert child.restarts == 0                     # a recycle is not counted as a crash
        assert any("recycled" in e for e in sup.events)
    finally:
        sup.stop()


def test_namespace_owned_by_a_live_appliance_is_refused(shm_names):
    cfg = make_cfg(shm_names("ns"))
    first = Supervisor(cfg, specs=[])
    first.start()
    try:
        with pytest.raises(AlreadyRunning, match="already running in namespace"):
            Supervisor(cfg, specs=[]).start()
    finally:
        first.stop()
    second = Supervisor(cfg, specs=[])                 # free again after a clean stop
    second.start()
    second.stop()


RUNNER = r"""
import sys, os
from appliance import config
from appliance.process_table import ChildSpec
from appliance.supervisor import Supervisor
ns, producer = sys.argv[1], sys.argv[2]
cfg = config.from_dict({"namespace": ns, "simulator": {"enabled": True}, "metrics": {"port": 0},
                        "rings": {"capacity": 4096},
                        "supervisor": {"status_interval_s": 0.1, "stop_timeout_s": 5}})
specs = [ChildSpec(name=f"feed.w{i}", argv=[sys.executable, "-c", producer, cfg.shm_name(f"w{i}")],
                   kind="worker", ring=cfg.shm_name(f"w{i}"), venue=f"w{i}") for i in range(2)]
sys.exit(Supervisor(cfg, specs=specs).run())
"""


def start_runner(ns, env=None):
    return subprocess.Popen([sys.executable, "-c", RUNNER, ns, PRODUCER], env=env)


def state_of(ns):
    path = segment.path_of(f"{ns}.supervisor")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def test_sigterm_stops_everything_cleanly(shm_names):
    ns = shm_names("ns")
    proc = start_runner(ns)
    try:
        state = wait_for(lambda: (s := state_of(ns)) and s["ready"] and s, what="ready state file")
        pids = [p["pid"] for p in state["processes"] if p["kind"] == "worker"]
        assert len(pids) == 2 and all(pids)
        assert {r["name"] for r in state["rings"]} == {f"{ns}.w0", f"{ns}.w1"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    for pid in pids:
        assert not psutil.pid_exists(pid)
    assert [n for n in segment.list_segments() if n.startswith(ns)] == []


def test_sd_notify_ready_then_watchdog_then_stopping(shm_names, tmp_path):
    import socket
    ns = shm_names("ns")
    sock_path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(sock_path)
    sock.settimeout(15)
    env = dict(os.environ, NOTIFY_SOCKET=sock_path, WATCHDOG_USEC="200000")
    proc = start_runner(ns, env)
    messages = []
    try:
        def watchdog_after_ready():
            ready = [i for i, m in enumerate(messages) if m.startswith("READY=1")]
            return ready and any(m == "WATCHDOG=1" for m in messages[ready[0]:])
        while not watchdog_after_ready():
            messages.append(sock.recv(4096).decode())
        proc.send_signal(signal.SIGTERM)
        while not any("STOPPING=1" in m for m in messages):
            messages.append(sock.recv(4096).decode())
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    kinds = [m.split("\n")[0].split("=")[0] for m in messages]
    ready = kinds.index("READY")
    assert "WATCHDOG" in kinds[ready + 1:] and "WATCHDOG" not in kinds[:ready]   # READY, then WATCHDOGs
    assert kinds[-1] == "STOPPING"
    assert "STATUS=" in messages[ready] and "rings" in messages[ready]


def test_tickring_children_are_forked_from_the_zygote_and_supervised(shm_names):
    from appliance.process_table import tickring_argv
    cfg = make_cfg(shm_names("ns"))
    ring_name = cfg.shm_name("src")
    cpu = sorted(os.sched_getaffinity(0))[-1]
    # a real tickring command as the child: a reader that runs until SIGTERM
    spec = ChildSpec(name="tail", argv=tickring_argv("tail", "src", "--ring", ring_name), cpu=cpu,
                     ring=None)
    Ring.create(ring_name, 1 << 10).close()
    sup = Supervisor(cfg, specs=[spec])
    sup.start()
    try:
        assert sup.zygote is not None and sup.zygote.pid
        child = sup.children[0]
        first = wait_for(lambda: child.pid, step=lambda: sup.step(0.05), what="start")
        proc = psutil.Process(first)
        assert proc.ppid() == os.getpid()                       # re-parented to the supervisor
        assert os.sched_getaffinity(first) == {cpu}
        # the zygote is a fork of this process (it shares our imports' pages)
        assert sup.zygote.proc.pid in {p.pid for p in psutil.Process().children()}
        os.kill(first, signal.SIGKILL)
        wait_for(lambda: child.pid and child.pid != first, step=lambda: sup.step(0.05), what="restart")
        assert child.restarts == 1 and child.last_exit == -signal.SIGKILL
        assert "zygote" in {p["name"] for p in sup.snapshot["processes"]}
        second = child.pid
        zygote_pid = sup.zygote.pid
    finally:
        sup.stop()
    assert not psutil.pid_exists(second)
    assert not psutil.pid_exists(zygote_pid)


def test_inspect_sees_the_appliance_its_rings_and_processes(shm_names):
    from tools import inspect as tinspect
    cfg = make_cfg(shm_names("ns"))
    sup = Supervisor(cfg, specs=[producer_spec(cfg, "w1")])
    sup.start()
    try:
        wait_for(lambda: sup.ready, step=lambda: sup.step(0.05), what="ready")
        sup.step(0.3)                                   # one more status: the state file is fresh
        data = tinspect.collect()
        app = next(a for a in data["appliances"] if a["namespace"] == cfg.namespace)
        assert app["alive"] and app["ready"]
        worker = next(p for p in app["processes"] if p["name"] == "feed.w1")
        assert worker["pid"] == sup.children[0].pid and worker["cpus"] == [sup.children[0].spec.cpu]
        ring = next(r for r in data["rings"] if r["name"] == cfg.shm_name("w1"))
        assert ring["producer_pid"] == worker["pid"] and ring["producer_alive"]
        assert ring["connection"] == "connected (1)"
        text = tinspect.render(data)
        assert cfg.shm_name("w1") in text and "feed.w1" in text
    finally:
        sup.stop()


def test_status_view_renders_a_snapshot():
    from appliance.status_view import render
    snap = {"namespace": "demo", "started_ns": time.time_ns(), "ready": True, "metrics": None,
            "rings": [{"name": "demo.binance", "venue": "binance", "rate": 1234.0, "published": 99,
                       "epoch": 2, "capacity": 1024, "record_size": 64,
                       "counters": {"connections": 1, "reconnects": 3, "gaps": 1, "decode_errors": 0},
                       "consumers": [{"lag": 17, "alive": True}]}],
            "processes": [{"name": "feed.binance", "pid": 42, "cpu": 1, "state": "running", "restarts": 1,
                           "recycles": 0, "ring": "demo.binance", "memory": {"uss": 10 << 20, "pss": 12 << 20}}],
            "memory": {"pss": 12 << 20}, "quality": {"binance": {"excellent": 98, "good": 2}},
            "events": ["09:00:00 feed.binance: died"]}
    text = "\n".join(render(snap))
    assert "binance" in text and "1,234" in text and "98 excellent, 2 good" in text
    assert "died" in text and "ready" in text


def test_gctune_freezes_and_raises_gen0():
    code = ("import gc, json; from appliance.gctune import after_startup; "
            "s = after_startup(); print(json.dumps(s))")
    out = json.loads(subprocess.check_output([sys.executable, "-c", code]))
    assert out["threshold"][0] == 50_000 and out["frozen"] > 1000


def test_keep_shm_leaves_the_rings_for_readers_and_the_next_start(shm_names):
    ns = shm_names("ns")
    cfg = config.from_dict({"namespace": ns, "keep_shm": True, "simulator": {"enabled": True},
                            "metrics": {"enabled": False}, "rings": {"capacity": 1 << 12}})
    sup = Supervisor(cfg, specs=[producer_spec(cfg, "w1")])
    sup.start()
    try:
        wait_for(lambda: sup.ready, step=lambda: sup.step(0.05), what="ready")
    finally:
        sup.stop()
    left = sorted(n for n in segment.list_segments() if n.startswith(ns))
    assert left == sorted([f"{ns}.w1", f"{ns}.registry"])         # no lock, no state file
    ring = Ring.attach(f"{ns}.w1")
    epoch = ring.epoch
    again = Supervisor(cfg, specs=[producer_spec(cfg, "w1")])
    again.start()
    try:
        wait_for(lambda: ring.epoch == epoch + 1, step=lambda: again.step(0.05), what="new epoch")
    finally:
        again.stop()
        ring.close()


def running(pid):
    """Alive and not a zombie (orphans may be re-parented to this test process if an earlier
    test made it a child subreaper; reap them)."""
    try:
        if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            return True
    except psutil.NoSuchProcess:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    return False


def test_children_die_with_a_killed_supervisor(shm_names):
    ns = shm_names("ns")
    proc = start_runner(ns)
    try:
        state = wait_for(lambda: (s := state_of(ns)) and s["ready"] and s, what="ready")
        pids = [p["pid"] for p in state["processes"] if p["kind"] == "worker"]
        proc.kill()                                     # no clean stop: PR_SET_PDEATHSIG does it
        proc.wait()
        wait_for(lambda: not any(running(p) for p in pids), timeout=10, what="orphans to exit")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_metrics_are_served_from_the_loop(shm_names):
    import threading
    import urllib.request
    cfg = make_cfg(shm_names("ns"))
    sup = Supervisor(cfg, specs=[producer_spec(cfg, "w1")])
    sup.start()
    try:
        wait_for(lambda: sup.ready, step=lambda: sup.step(0.05), what="ready")
        wait_for(lambda: "feed.w1" in sup.memwatch.latest, step=lambda: sup.step(0.05), what="memory sample")
        sup.step(0.25)
        got = {}
        url = f"http://127.0.0.1:{sup._metrics.port}/metrics"
        t = threading.Thread(target=lambda: got.update(body=urllib.request.urlopen(url, timeout=10).read()))
        t.start()
        wait_for(lambda: "body" in got, step=lambda: sup.step(0.05), what="scrape")
        t.join()
        text = got["body"].decode()
        ring = cfg.shm_name("w1")
        assert f'tickring_ring_epoch{{ring="{ring}"}} 1.0' in text
        assert f'tickring_ring_connections{{ring="{ring}"}} 1.0' in text
        assert 'tickring_process_uss_bytes{process="feed.w1"}' in text
        assert 'tickring_process_restarts_total{process="feed.w1"} 0.0' in text
        assert "tickring_ready 1.0" in text
    finally:
        sup.stop()


def test_grade_names_match_the_compactor():
    from appliance import supervisor
    schema = pytest.importorskip("appliance.compactor.schema")
    assert supervisor.GRADES == tuple(schema.GRADES)


def test_soak_recorder_reports_slopes_from_snapshots(monkeypatch):
    from tools import bench_soak
    clock = [0.0]
    monkeypatch.setattr(bench_soak.time, "monotonic", lambda: clock[0])
    rec = bench_soak.Recorder(warmup_s=60)
    mb = 1 << 20
    for i in range(0, 3600, 5):            # one hour: the worker grows 2 MB/h, the supervisor is flat
        clock[0] = float(i)
        rec({"rings": [{"counters": {"messages": i * 10}, "published": i * 20, "capacity": 1024, "record_size": 64}],
             "processes": [{"name": "feed.x", "pid": 7, "restarts": 0, "recycles": 0,
                            "memory": {"uss": int((10 + 2 * i / 3600) * mb), "pss": 12 * mb}},
                           {"name": "supervisor", "pid": 1, "restarts": 0, "recycles": 0,
                            "memory": {"uss": 20 * mb, "pss": 22 * mb}}],
             "memory": {"pss": 34 * mb}})
    out = rec.report(60, 100, ["x"])
    assert abs(out["processes"]["feed.x"]["uss_slope_mb_per_h"] - 2.0) < 0.05
    assert out["processes"]["supervisor"]["uss_slope_mb_per_h"] == 0.0
    assert out["total_pss_mb_max"] == 34.0 and out["messages"] == 35950
    assert out["targets"]["total_mb_le_250"] and not out["targets"]["uss_slope_lt_1mb_per_h"]


def test_soak_recorder_reports_how_high_and_how_often_the_total_peaks(monkeypatch):
    """A brief peak (the compactor's Parquet writer) fails the target, and p50/p95 and the
    share of samples over it say how rare it was."""
    from tools import bench_soak
    clock = [0.0]
    monkeypatch.setattr(bench_soak.time, "monotonic", lambda: clock[0])
    rec = bench_soak.Recorder(warmup_s=60)
    mb = 1 << 20
    for k, i in enumerate(range(0, 3600, 5)):
        clock[0] = float(i)
        total = 300 if k % 20 == 0 else 200
        rec({"rings": [], "processes": [], "memory": {"pss": total * mb}})
    out = rec.report(60, 100, ["x"])
    assert out["total_pss_mb_max"] == 300.0 and out["total_pss_mb_p50"] == 200.0
    assert out["total_pss_mb_p95"] == 200.0            # 35 peaks in 708 samples: under 5 %
    assert 0.04 < out["total_pss_share_over_target"] < 0.06
    assert not out["targets"]["total_mb_le_250"]


# a child that forks two grandchildren and prints their pids: one named as the compactor's
# Parquet fork server, one not; each exits once its parent is gone (as PDEATHSIG makes them)
ORPHAN_PARENT = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None)
pids = []
for name in (b"parquet-forks", b"other-child"):
    pid = os.fork()
    if pid == 0:
        libc.prctl(15, ctypes.c_char_p(name), 0, 0, 0)
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.01)
        os._exit(0)
    pids.append(pid)
print(*pids, flush=True)
time.sleep(600)
"""


def test_orphaned_parquet_processes_are_reaped_others_left(shm_names, tmp_path):
    """A killed compactor's parquet-forks is re-parented to the supervisor (a child subreaper)
    and must not stay a zombie; a zombie by another name is left to whoever waits for it."""
    from appliance.zygote import set_subreaper
    assert set_subreaper()               # as the appliance is (the zygote's children need it)
    cfg = make_cfg(shm_names("ns"))
    out = tmp_path / "pids"
    spec = ChildSpec(name="compactor", argv=[sys.executable, "-c", f"import sys; sys.stdout = open({str(out)!r}, 'w'); exec({ORPHAN_PARENT!r})"],
                     kind="compactor", ring=None)
    sup = Supervisor(cfg, specs=[spec])
    sup.start()
    other = None
    try:
        child = sup.children[0]
        first = wait_for(lambda: child.pid, step=lambda: sup.step(0.05), what="start")
        pids = wait_for(lambda: out.exists() and out.read_text().split(), what="grandchild pids")
        forks, other = (int(p) for p in pids)
        os.kill(first, signal.SIGKILL)

        def state(pid):
            try:
                return psutil.Process(pid).status()
            except psutil.NoSuchProcess:
                return "gone"
        wait_for(lambda: state(forks) == "gone" and state(other) == psutil.STATUS_ZOMBIE,
                 step=lambda: sup.step(0.05), what="parquet-forks reaped, the other a zombie")
    finally:
        sup.stop()
        if other is not None:
            try:
                os.waitpid(other, os.WNOHANG)
            except ChildProcessError:
                pass
