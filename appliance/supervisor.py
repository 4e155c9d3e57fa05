"""The supervisor: owns the shared memory, runs the children of the process table, keeps them
alive and within their memory, and talks to systemd.

One thread, one loop (select on a signal wake-up pipe and the metrics socket, ~5 Hz):
  - reap children; a crashed child restarts after a capped exponential backoff (a restarted
    feed worker continues its ring with a bumped epoch and an in-band STATUS EPOCH record,
    see shm.ring.Writer); readers keep their mapping because the supervisor owns the segment;
  - every memory_check_s: each child's USS/PSS besides the rings (appliance.memwatch); a child
    above its limit is recycled (SIGTERM, grace, SIGKILL, restart at once);
  - every status_interval_s: one snapshot dict (rings, rates, lag, processes, memory) feeds the
    state file in /dev/shm (read by `tickring inspect`), the Prometheus metrics, the live status
    view and sd_notify STATUS=; WATCHDOG=1 is sent from this loop, so a hung loop is restarted
    by systemd;
  - SIGTERM/SIGINT: STOPPING=1, workers get SIGTERM (they stop reading sockets), then the
    compactor (it drains the rings and flushes Parquet), SIGKILL after stop_timeout_s, shared
    memory removed unless keep_shm; exit 0.
Single-threaded on purpose: children are forked with a preexec hook (CPU pin, parent-death
signal), which is only safe when no other thread can hold a lock at fork time.
"""
from __future__ import annotations

import collections
import ctypes
import errno
import fcntl
import json
import logging
import os
import select
import signal
import subprocess
import sys
import time

import psutil

from shm import segment as shm_segment
from shm.errors import ShmError
from shm.registry import Registry
from shm.liveness import pid_alive as _pid_alive
from shm.ring import Ring

from . import malloctune, memwatch
from .compactor.forkserver import SERVER_NAME, WRITER_NAME
from .config import Config
from .process_table import ChildSpec, build, names, tickring_argv
from .sdnotify import Notifier, child_env
from .zygote import Zygote, set_subreaper

log = logging.getLogger("tickring.supervisor")
PR_SET_PDEATHSIG = 1
TICK_S = 0.2
# appliance.compactor.schema.GRADES, not imported: it would load pyarrow into the supervisor
GRADES = ("excellent", "good", "degraded", "limited")
ORPHAN_NAMES = (SERVER_NAME.decode(), WRITER_NAME.decode())   # see Supervisor._reap_orphans
RETRYING_AFTER_S = 10.0   # a producing worker without a connection by then is retrying


class AlreadyRunning(ShmError):
    """Another live appliance owns this namespace."""


class Child:
    """Run-time state of one ChildSpec."""

    def __init__(self, spec: ChildSpec):
        self.spec = spec
        self.proc: subprocess.Popen | None = None
        self.state = "new"            # new, running, backoff, recycling, stopping, exited
        self.started_mono = 0.0
        self.next_start = 0.0
        self.restarts = 0             # restarts after a crash
        self.recycles = 0             # restarts because of memory
        self.crashes_in_row = 0
        self.last_exit: int | None = None
        self.kill_at = 0.0

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc is not None and self.proc.returncode is None else 0


def _libc():
    try:
        return ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


def _child_preexec(cpu: int | None, parent: int):
    """Runs in the child between fork and exec: die with the supervisor, pin to the CPU."""
    def hook():
        if _LIBC is not None:
            _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:        # the supervisor died before prctl took effect
            os._exit(1)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return hook


class Supervisor:
    """Run an appliance: `Supervisor(cfg).run()` returns the exit code (0 after a clean stop)."""

    def __init__(self, cfg: Config, specs: list[ChildSpec] | None = None, endpoints: dict | None = None,
                 notifier: Notifier | None = None, on_status=None, log_dir: str = "",
                 extra_info: dict | None = None):
        self.cfg = cfg
        self.names = names(cfg)
        self.children = [Child(s) for s in (specs if specs is not None else build(cfg, endpoints))]
        self.notifier = notifier or Notifier()
        self.on_status = on_status
        self.log_dir = log_dir
        self.extra_info = extra_info or {}
        self.rings: dict[str, Ring] = {}
        self.registry: Registry | None = None
        self.memwatch = memwatch.Watch()
        self.events: collections.deque = collections.deque(maxlen=8)
        self.snapshot: dict = {}
        self.ready = False
        self.stopping = False
        self.started_ns = 0
        self._stop_requested = False
        self._lock_fd = -1
        self._wake_r = self._wake_w = -1
        self._old_handlers: dict = {}
        self._prev_counts: dict = {}
        self._metrics = None
        self.zygote: Zygote | None = None
        self._quality_table = None
        self._next_mem = self._next_status = self._next_watchdog = 0.0
        self._next_summary = time.monotonic() + 10.0

    # ------------------------------------------------------------------ public
    def run(self, duration: float | None = None) -> int:
        """Start, supervise until SIGTERM/SIGINT (or `duration` seconds), stop. Returns 0."""
        self.start()
        try:
            end = None if duration is None else time.monotonic() + duration
            while not self._stop_requested:
                if end is not None and time.monotonic() >= end:
                    break
                self.step(TICK_S if end is None else max(0.0, min(TICK_S, end - time.monotonic())))
        finally:
            self.stop()
        return 0

    def request_stop(self) -> None:
        self._stop_requested = True
        if self._wake_w >= 0:
            try:
                os.write(self._wake_w, b"\0")
            except OSError:
                pass

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        self.started_ns = time.time_ns()
        self._acquire_namespace()
        try:
            self._start_zygote()            # first: it forks from this process (appliance/zygote.py)
            if self.cfg.supervisor.cpu is not None:
                os.sched_setaffinity(0, {self.cfg.supervisor.cpu})
            self._create_shm()
            self._install_signals()
            self._start_metrics()
            now = time.monotonic()
            for child in self.children:
                self._spawn(child, now)
            self._status(now)
        except BaseException:
            self.stop()
            raise

    def reserve(self) -> None:
        """Take the namespace now (before slow preparations such as starting the simulator);
        raises AlreadyRunning when a live appliance owns it. `release()` gives it back."""
        self._acquire_namespace()

    def release(self) -> None:
        self._release_namespace()

    def use_endpoints(self, endpoints: dict) -> None:
        """Rebuild the children from the config with these venue endpoints (before start)."""
        self.children = [Child(s) for s in build(self.cfg, endpoints)]

    def _acquire_namespace(self) -> None:
        if self._lock_fd >= 0:
            return
        path = shm_segment.path_of(self.names["lock"])
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o640)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            ns = self.cfg.namespace or "(default, no prefix)"
            raise AlreadyRunning(f"a tickring appliance (pid {holder}) is already running in namespace "
                                 f"{ns}; stop it first, or set another `namespace` in the config") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd
        # a ring whose producer is alive but not ours: an orphan of a supervisor that was killed
        for venue, ring_name in self.names["rings"].items():
            try:
                ring = Ring.attach(ring_name)
            except ShmError:
                continue
            pid, state = ring.word("producer_pid"), ring.word("producer_state")
            ring.close()
            if pid and state == 1 and _pid_alive(pid):
                self._release_namespace()
                raise AlreadyRunning(f"ring {ring_name!r} is still produced by live pid {pid} (left over "
                                     f"from an appliance that was killed?); stop that process first")

    def _release_namespace(self) -> None:
        if self._lock_fd >= 0:
            shm_segment.unlink(self.names["lock"])
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _create_shm(self) -> None:
        cfg = self.cfg
        self.registry = Registry.create(self.names["registry"], cfg.registry.capacity, exist_ok=True)
        capacities = {v.name: v.ring_capacity or cfg.rings.capacity for v in cfg.enabled_venues}
        rings = {c.spec.ring: capacities.get(c.spec.venue, cfg.rings.capacity)
                 for c in self.children if c.spec.ring}
        for ring_name, cap in rings.items():
            ring = Ring.create(ring_name, cap, exist_ok=True)
            if ring.capacity != cap:
                log.warning("ring %s exists with capacity %d (config says %d); keeping it so readers "
                            "keep their mapping (remove it with `tickring rm` to resize)",
                            ring_name, ring.capacity, cap)
            self.rings[ring_name] = ring

    def _install_signals(self) -> None:
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            self._old_handlers[sig] = signal.signal(sig, lambda *_: self.request_stop())

    def _start_metrics(self) -> None:
        m = self.cfg.metrics
        if not m.enabled:
            return
        from .metrics import MetricsServer
        try:
            self._metrics = MetricsServer(m.address, m.port, lambda: self.snapshot)
        except OSError as e:
            raise ShmError(f"cannot serve metrics on {m.address}:{m.port}: {e.strerror}; set "
                           f"[metrics] port to a free port (0 = any) or enabled = false") from None
        log.info("metrics on http://%s:%d/metrics", m.address, self._metrics.port)

    # ------------------------------------------------------------------ children
    def _base_env(self) -> dict:
        env = child_env(os.environ)
        env["MALLOC_ARENA_MAX"] = str(self.cfg.memory.malloc_arena_max)
        return env

    def _start_zygote(self) -> None:
        prefix = tickring_argv()
        if not self.cfg.supervisor.preload or not any(c.spec.argv[:len(prefix)] == prefix for c in self.children):
            return
        if not set_subreaper():
            log.warning("cannot become a child subreaper; children are started with exec")
            return
        try:
            self.zygote = Zygote(self._base_env())
        except OSError as e:
            log.warning("zygote failed to start (%s); children are started with exec", e)
            self.zygote = None

    def _spawn_forked(self, child: Child, env: dict):
        """Fork a tickring child from the zygote; None when it cannot (then exec is used)."""
        prefix = tickring_argv()
        spec = child.spec
        if self.zygote is None or spec.argv[:len(prefix)] != prefix:
            return None
        logf = os.path.join(self.log_dir, f"{spec.name}.log") if self.log_dir else None
        for attempt in (1, 2):
            try:
                return self.zygote.spawn(spec.argv[len(prefix):], spec.cpu, env, logf, spec.name)
            except (OSError, ValueError) as e:
                log.warning("zygote spawn of %s failed (%s)%s", spec.name, e,
                            "; restarting the zygote" if attempt == 1 else "; using exec")
                self.zygote.close()
                self.zygote = None
                if attempt == 1:
                    self._start_zygote()
                    if self.zygote is None:
                        return None
        return None

    def _spawn(self, child: Child, now: float) -> None:
        spec = child.spec
        env = self._base_env()
        env.update(spec.env)
        for path, text in spec.files.items():
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
        proc = self._spawn_forked(child, env)
        if proc is not None:
            child.proc = proc
            child.state = "running"
            child.started_mono = now
            self.memwatch.forget(spec.name)
            log.info("started %s pid %d cpu %s (forked from the zygote)", spec.name, proc.pid, spec.cpu)
            return
        out = None
        if self.log_dir:
            os.makedirs(self.log_dir, exist_ok=True)
            out = open(os.path.join(self.log_dir, f"{spec.name}.log"), "ab")
        try:
            child.proc = subprocess.Popen(spec.argv, env=env, stdin=subprocess.DEVNULL, stdout=out,
                                          stderr=subprocess.STDOUT if out else None,
                                          start_new_session=True, close_fds=True,
                                          preexec_fn=_child_preexec(spec.cpu, os.getpid()))
        except OSError as e:
            log.error("cannot start %s (%s): %s", spec.name, spec.argv[0], e)
            self._event(f"{spec.name}: cannot start: {e.strerror}")
            child.proc = None
            self._schedule_restart(child, now, crashed=True)
            return
        finally:
            if out is not None:
                out.close()
        child.state = "running"
        child.started_mono = now
        self.memwatch.forget(spec.name)
        log.info("started %s pid %d cpu %s", spec.name, child.proc.pid, spec.cpu)

    def _schedule_restart(self, child: Child, now: float, crashed: bool) -> None:
        sv = self.cfg.supervisor
        if crashed:
            if child.started_mono and now - child.started_mono >= sv.stable_after_s:
                child.crashes_in_row = 0
            child.crashes_in_row += 1
            delay = min(sv.restart_backoff_max_s, sv.restart_backoff_s * 2 ** (child.crashes_in_row - 1))
        else:
            delay = 0.0
        child.state = "backoff"
        child.next_start = now + delay

    def _reap(self, now: float) -> None:
        for child in self.children:
            proc = child.proc
            if proc is None or child.state in ("backoff", "exited"):
                continue
            code = proc.poll()
            if code is None:
                if child.state == "recycling" and now >= child.kill_at:
                    proc.kill()
                continue
            child.last_exit = code
            name = child.spec.name
            if child.state == "recycling":
                child.recycles += 1
                self._event(f"{name}: recycled (memory above {child.spec.memory_limit_mb:.0f} MB)")
                self._schedule_restart(child, now, crashed=False)
            elif self.stopping:
                child.state = "exited"
            else:
                child.restarts += 1
                how = f"signal {-code}" if code < 0 else f"exit code {code}"
                self._schedule_restart(child, now, crashed=True)
                self._event(f"{name}: died ({how}), restart #{child.restarts} in "
                            f"{child.next_start - now:.1f}s")
                log.warning("%s pid %d died (%s); restarting in %.1fs", name, proc.pid, how,
                            child.next_start - now)

    def _reap_orphans(self) -> None:
        """Collect the compactor's Parquet fork server and writers when they outlived it.

        The supervisor is a child subreaper (appliance/zygote.py), so a process whose parent
        died is re-parented to it; the compactor's "parquet-forks" and "parquet-writer" die with
        the compactor (PDEATHSIG) and would stay zombies, since _reap only waits for children
        it started. Only zombies by those names are collected: a waitpid(-1) could take the
        exit status of a child something else here waits for (the demo's simulator)."""
        try:
            kids = psutil.Process().children()
        except psutil.Error:
            return
        for p in kids:
            try:
                if p.status() == psutil.STATUS_ZOMBIE and p.name().startswith(ORPHAN_NAMES):
                    os.waitpid(p.pid, os.WNOHANG)
            except (psutil.Error, ChildProcessError):
                pass

    def _restart_due(self, now: float) -> None:
        for child in self.children:
            if child.state == "backoff" and now >= child.next_start and not self.stopping:
                self._spawn(child, now)

    def _check_memory(self, now: float) -> None:
        for child in self.children:
            if child.state != "running" or not child.pid:
                continue
            if self.memwatch.update(child.spec.name, child.pid, child.spec.memory_limit_mb):
                mem = self.memwatch.latest[child.spec.name]
                log.warning("%s uses %.1f MB USS, above its limit %.0f MB: recycling", child.spec.name,
                            mem.uss / memwatch.MB, child.spec.memory_limit_mb)
                self._terminate(child, grace=min(5.0, self.cfg.supervisor.stop_timeout_s), now=now)
                child.state = "recycling"
        # reading a child's /proc/<pid>/smaps allocates and frees ~100 KB strings every few
        # seconds; glibc keeps what they leave in its heap, which showed as the supervisor's
        # own growth (2.4 MB/h in a 30-minute soak): give it back before measuring ourselves
        malloctune.trim()
        sup = memwatch.sample(os.getpid())
        if sup is not None:
            self.memwatch.latest["supervisor"] = sup
        if self.zygote is not None and self.zygote.pid:
            zmem = memwatch.sample(self.zygote.pid)
            if zmem is not None:
                self.memwatch.latest["zygote"] = zmem

    def _terminate(self, child: Child, grace: float, now: float) -> None:
        if child.pid:
            try:
                child.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        child.kill_at = now + grace

    # ------------------------------------------------------------------ the loop
    def step(self, timeout: float = TICK_S) -> None:
        """One turn of the loop: wait for a signal/metrics request or `timeout`, then do the work."""
        fds = [self._wake_r] + ([self._metrics.fileno()] if self._metrics else [])
        try:
            readable, _, _ = select.select(fds, [], [], timeout)
        except InterruptedError:
            readable = []
        if self._wake_r in readable:
            try:
                while os.read(self._wake_r, 512):
                    pass
            except BlockingIOError:
                pass
        if self._metrics and self._metrics.fileno() in readable:
            self._metrics.handle()
        now = time.monotonic()
        self._reap(now)
        self._reap_orphans()
        self._restart_due(now)
        if now >= self._next_mem:
            self._next_mem = now + self.cfg.supervisor.memory_check_s
            self._check_memory(now)
        if now >= self._next_status:
            self._next_status = now + self.cfg.supervisor.status_interval_s
            self._status(now)
        interval = self.notifier.watchdog_interval()
        if interval and self.ready and now >= self._next_watchdog:   # start-up is TimeoutStartSec's job
            self._next_watchdog = now + interval
            self.notifier.watchdog()

    def _status(self, now: float) -> None:
        snap = self._build_snapshot()
        self.snapshot = snap
        if not self.ready and self._is_ready():
            self.ready = True
            snap["ready"] = True
            self.notifier.ready(self._summary(snap))
            self._event("ready: every worker connected or retrying")
            log.info("ready")
        elif self.ready:
            self.notifier.status(self._summary(snap))
        self._write_state(snap)
        every = self.cfg.supervisor.log_summary_s
        if every and now >= self._next_summary:
            self._next_summary = now + every
            log.info("status: %s", self._summary(snap))
        if self.on_status is not None:
            self.on_status(snap)

    def _is_ready(self) -> bool:
        """Every worker is connected (a websocket open) or retrying: it produces its ring but has
        no connection after RETRYING_AFTER_S, or it already crashed and is being restarted."""
        now = time.monotonic()
        for child in self.children:
            if child.spec.kind == "worker" and child.spec.ring in self.rings:
                if child.restarts or child.recycles:
                    continue
                ring = self.rings[child.spec.ring]
                if not child.pid or ring.word("producer_pid") != child.pid:
                    return False
                connected = ring.word("connections") > 0 or ring.word("reconnects") > 0
                if not connected and now - child.started_mono < RETRYING_AFTER_S:
                    return False
            elif child.state == "new":
                return False
        return True

    # ------------------------------------------------------------------ snapshot
    def _build_snapshot(self) -> dict:
        now_ns = time.time_ns()
        procs = []
        sup_mem = self.memwatch.latest.get("supervisor")
        procs.append({"name": "supervisor", "kind": "supervisor", "pid": os.getpid(), "state": "running",
                      "cpu": self.cfg.supervisor.cpu, "restarts": 0, "recycles": 0, "exit_code": None,
                      "limit_mb": 0, "memory": sup_mem.as_dict() if sup_mem else None})
        if self.zygote is not None and self.zygote.pid:
            zmem = self.memwatch.latest.get("zygote")
            procs.append({"name": "zygote", "kind": "zygote", "pid": self.zygote.pid, "state": "running",
                          "cpu": None, "restarts": 0, "recycles": 0, "exit_code": None, "limit_mb": 0,
                          "memory": zmem.as_dict() if zmem else None})
        for c in self.children:
            mem = self.memwatch.latest.get(c.spec.name) if c.pid else None
            procs.append({"name": c.spec.name, "kind": c.spec.kind, "pid": c.pid, "state": c.state,
                          "cpu": c.spec.cpu, "restarts": c.restarts, "recycles": c.recycles,
                          "exit_code": c.last_exit, "limit_mb": c.spec.memory_limit_mb,
                          "venue": c.spec.venue, "ring": c.spec.ring,
                          "memory": mem.as_dict() if mem else None})
        rings = []
        venue_of = {c.spec.ring: c.spec.venue for c in self.children if c.spec.ring}
        for name, ring in self.rings.items():
            info = ring.info()
            prev = self._prev_counts.get(name)
            msgs, pub = info["counters"]["messages"], info["published"]
            rate = rec_rate = 0.0
            if prev is not None and now_ns > prev[0]:
                dt = (now_ns - prev[0]) / 1e9
                rate = max(0, msgs - prev[1]) / dt
                rec_rate = max(0, pub - prev[2]) / dt
            self._prev_counts[name] = (now_ns, msgs, pub)
            info["venue"] = venue_of.get(name)
            info["rate"] = rate
            info["records_rate"] = rec_rate
            rings.append(info)
        quality = self._quality()
        uss = sum(p["memory"]["uss"] for p in procs if p["memory"])
        pss = sum(p["memory"]["pss"] for p in procs if p["memory"])
        return {"namespace": self.cfg.namespace, "pid": os.getpid(), "config": self.cfg.source,
                "started_ns": self.started_ns, "updated_ns": now_ns, "ready": self.ready,
                "stopping": self.stopping,
                "metrics": (f"http://{self.cfg.metrics.address}:{self._metrics.port}/metrics"
                            if self._metrics else None),
                "registry": self.names["registry"], "processes": procs, "rings": rings,
                "memory": {"uss": uss, "pss": pss}, "quality": quality, "events": list(self.events),
                **self.extra_info}

    def _quality(self) -> dict:
        """venue -> {grade: instruments} from the compactor's quality table (once it exists)."""
        if self._quality_table is None:
            try:
                from shm.table import Table
                self._quality_table = Table.attach(self.names["quality_table"])
            except (ShmError, ValueError):
                return {}
        try:
            rows = self._quality_table.read_all()
        except (TimeoutError, ValueError):
            return {}
        rows = rows[rows["ts"] > 0]
        out: dict = {}
        for venue, grade in zip(rows["venue"].tolist(), rows["grade"].tolist()):
            name = venue.decode(errors="replace") if isinstance(venue, bytes) else str(venue)
            label = GRADES[grade] if grade < len(GRADES) else str(grade)
            per = out.setdefault(name, {})
            per[label] = per.get(label, 0) + 1
        return out

    @staticmethod
    def _summary(snap: dict) -> str:
        rate = sum(r["rate"] for r in snap["rings"])
        up = sum(1 for p in snap["processes"] if p["pid"])
        restarts = sum(p["restarts"] + p["recycles"] for p in snap["processes"])
        reconnects = sum(r["counters"]["reconnects"] for r in snap["rings"])
        gaps = sum(r["counters"]["gaps"] for r in snap["rings"])
        return (f"{len(snap['rings'])} rings, {rate:,.0f} msg/s, {up} processes up, {restarts} restarts, "
                f"{reconnects} reconnects, {gaps} gaps, {snap['memory']['pss'] / memwatch.MB:.0f} MB PSS")

    def _write_state(self, snap: dict) -> None:
        path = shm_segment.path_of(self.names["state"])
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o640)
        with os.fdopen(fd, "w") as f:
            json.dump(snap, f)
        os.replace(tmp, path)

    def _event(self, text: str) -> None:
        self.events.append(f"{time.strftime('%H:%M:%S')} {text}")

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Stop children in stop_order (workers, then the compactor), clean up, release the namespace."""
        if self.stopping:
            return
        self.stopping = True
        self.notifier.stopping("stopping: workers first, then the compactor flushes")
        timeout = self.cfg.supervisor.stop_timeout_s
        deadline = time.monotonic() + timeout
        orders = sorted({c.spec.stop_order for c in self.children})
        for i, order in enumerate(orders):
            group = [c for c in self.children if c.spec.stop_order == order]
            for c in group:
                if c.pid:
                    try:
                        c.proc.send_signal(signal.SIGTERM)
                    except ProcessLookupError:
                        pass
                c.state = "stopping" if c.pid else "exited"
            # earlier groups (workers) get a share of the time; the last (compactor) the rest
            left = deadline - time.monotonic()
            group_deadline = time.monotonic() + (left if i == len(orders) - 1 else left * 0.4)
            self._wait_exit(group, group_deadline)
        for c in self.children:
            if c.proc is not None and c.proc.poll() is None:
                log.error("%s did not stop within %.0fs: SIGKILL", c.spec.name, timeout)
                c.proc.kill()
                c.proc.wait()
            c.state = "exited"
        if self._metrics is not None:
            self._metrics.close()
            self._metrics = None
        if self.zygote is not None:
            self.zygote.close()
            self.zygote = None
        self._cleanup_shm()
        self._restore_signals()
        self._release_namespace()
        self.notifier.close()

    def _wait_exit(self, group: list[Child], deadline: float) -> None:
        while time.monotonic() < deadline:
            if all(c.proc is None or c.proc.poll() is not None for c in group):
                return
            time.sleep(0.02)

    def _cleanup_shm(self) -> None:
        if self._quality_table is not None:
            self._quality_table.close()
            self._quality_table = None
        for ring in self.rings.values():
            ring.close()
        if self.registry is not None:
            self.registry.close()
        self.rings = {}
        self.registry = None
        for path in [shm_segment.path_of(self.names["state"])] + [p for c in self.children for p in c.spec.files]:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        if self.cfg.keep_shm:
            return
        owned = [self.names["registry"], *self.names["rings"].values(), *self.names["book_tables"].values(),
                 self.names["candle_ring"], self.names["candle_table"], self.names["quality_table"]]
        owned += [c.spec.ring for c in self.children if c.spec.ring]
        if self.cfg.namespace:        # everything in our namespace is ours (tables the children made)
            prefix = self.cfg.namespace + "."
            owned += [n for n in shm_segment.list_segments() if n.startswith(prefix)
                      and n != self.names["lock"]]
        for name in set(owned):
            shm_segment.unlink(name)

    def _restore_signals(self) -> None:
        for sig, handler in self._old_handlers.items():
            signal.signal(sig, handler)
        self._old_handlers = {}
        if self._wake_w >= 0:
            signal.set_wakeup_fd(-1)
            os.close(self._wake_r)
            os.close(self._wake_w)
            self._wake_r = self._wake_w = -1


def pids_of(snapshot: dict) -> dict:
    """name -> pid of the processes in a snapshot (tests, inspect)."""
    return {p["name"]: p["pid"] for p in snapshot.get("processes", [])}


def state_path(cfg: Config) -> str:
    return shm_segment.path_of(names(cfg)["state"])


def read_state(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


if __name__ == "__main__":      # pragma: no cover - debugging aid
    logging.basicConfig(level=logging.INFO)
    from .config import load
    sys.exit(Supervisor(load(sys.argv[1])).run())
