"""A pre-loaded parent ("zygote") the supervisor forks its tickring children from.

Why: every feed worker imports the same ~20 MB of modules (numpy, picows, orjson, the venue
tables). Started with exec, each pays for its own copy; forked from one process that imported
them and froze them out of the GC (gc.freeze), they share those pages copy-on-write. With nine
workers that is the difference between ~200 MB and well under 100 MB of memory besides the rings.

How: the supervisor forks the zygote first thing in its start-up (before it creates shared
memory, threads, signal handlers or sockets), so the zygote shares the supervisor's own imports
(CPython, numpy, psutil, click, shm) too instead of loading a second copy: measured, ~15 MB less
than an exec'd zygote. The forked zygote closes every inherited descriptor but its socket,
takes the children's environment, and serves one JSON line per child:
{"args": [tickring CLI args], "cpu": n|null, "env": {...}, "log": path|null, "name": str}.
The zygote double-forks so the child is re-parented to the supervisor (a child subreaper),
which then waits for it, signals it and measures it like any other child; the zygote answers
{"pid": n}. The child pins itself, takes its env and log file, and runs `tools.cli.main(args)`.
It asks for SIGTERM when the supervisor dies only once it is the supervisor's child (the
re-parenting itself would otherwise deliver the signal). `python -m appliance.zygote FD` is
the same loop started with exec (kept for debugging).
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import signal
import socket
import sys
import time

PR_SET_NAME = 15
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
M_ARENA_MAX = -8
PRELOAD = ("numpy", "orjson", "picows", "psutil", "click", "asyncio", "ssl", "shm", "shm.registry",
           "shm.table", "feeds", "feeds.worker", "tools.cli", "tools.feed", "tools.errors")

_libc = ctypes.CDLL(None, use_errno=True)


def set_subreaper() -> bool:
    """Make this process adopt orphaned descendants (the supervisor calls it once)."""
    return _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


def _preload() -> None:
    import importlib
    for name in PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    try:
        import feeds
        for v in feeds.implemented():
            feeds.venue(v)
    except Exception:      # a broken venue module shows up when its worker starts, not here
        pass
    gc.collect()
    gc.freeze()


def _child(req: dict, supervisor: int, conn: socket.socket) -> None:
    """In the grandchild: become the requested tickring process. Never returns."""
    code = 1
    try:
        os.close(conn.detach())              # detach first: the object must not close a reused fd later
        os.setsid()
        deadline = time.monotonic() + 5.0
        while os.getppid() != supervisor and time.monotonic() < deadline:
            time.sleep(0.0005)               # wait to be re-parented to the supervisor
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != supervisor:
            os._exit(1)
        name = str(req.get("name", "tickring"))[:15].encode()
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(name), 0, 0, 0)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)      # what a freshly exec'd Python has
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        if req.get("cpu") is not None:
            os.sched_setaffinity(0, {int(req["cpu"])})
        os.environ.clear()
        os.environ.update(req.get("env") or {})
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        if req.get("log"):
            fd = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
            os.dup2(fd, 1)
            os.dup2(fd, 2)
            os.close(fd)
        import random
        random.seed()                        # forked children must not share a random sequence
        gc.unfreeze()                        # the child's own start-up is collected normally;
        gc.freeze()                          # what the zygote loaded stays frozen
        sys.argv = ["tickring", *req["args"]]
        from tools.cli import main
        try:
            main(req["args"])
            code = 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def _spawn(req: dict, supervisor: int, conn: socket.socket) -> dict:
    r, w = os.pipe()
    mid = os.fork()
    if mid == 0:                             # intermediate: fork the real child, report, exit
        os.close(r)
        try:
            pid = os.fork()
            if pid == 0:
                os.close(w)
                _child(req, supervisor, conn)
            os.write(w, f"{pid}\n".encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        line = f.readline()
    os.waitpid(mid, 0)
    if not line.strip():
        return {"error": "fork failed"}
    return {"pid": int(line)}


def serve(fd: int) -> None:
    """The zygote's loop: one request per line on the inherited socket `fd` until EOF."""
    supervisor = os.getppid()
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != supervisor:
        return
    signal.signal(signal.SIGINT, signal.SIG_IGN)         # Ctrl-C is the supervisor's business
    conn = socket.socket(fileno=fd)
    _preload()
    conn.sendall(b'{"ready": true}\n')
    buf = conn.makefile("rb")
    for line in buf:
        try:
            reply = _spawn(json.loads(line), supervisor, conn)
        except Exception as e:               # noqa: BLE001 - reported to the supervisor
            reply = {"error": repr(e)}
        conn.sendall(json.dumps(reply).encode() + b"\n")


class ZygoteProc:
    """A forked child seen from the supervisor, with the subset of Popen's API it uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.returncode = -9 if self.returncode is None else self.returncode
                return self.returncode
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"pid {self.pid} still running")
            time.sleep(0.01)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        try:
            self.send_signal(signal.SIGKILL)
        except ProcessLookupError:
            pass


def _forked(fd: int, env: dict) -> None:
    """In the freshly forked zygote: shed the supervisor's state, then serve. Never returns."""
    code = 0
    try:
        os.setsid()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD, signal.SIGUSR1, signal.SIGUSR2):
            signal.signal(sig, signal.SIG_DFL)
        os.closerange(3, fd)                     # the namespace lock, a simulator's pipes, ...
        os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        os.environ.clear()
        os.environ.update(env)
        arenas = env.get("MALLOC_ARENA_MAX")    # malloc read the environment long ago
        if arenas and arenas.isdigit():
            _libc.mallopt(M_ARENA_MAX, int(arenas))
        serve(fd)
    except BaseException:
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


class Zygote:
    """The supervisor's handle on the zygote process."""

    START_TIMEOUT_S = 60.0

    def __init__(self, env: dict):
        self.sock, theirs = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        # what both processes hold now leaves the collector's view: a collection in either would
        # write every object's GC header and so copy every page of them (the zygote's first
        # collect alone used to); frozen, they stay shared
        gc.collect()
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self.sock.close()
            _forked(theirs.detach(), env)
        self.proc = ZygoteProc(pid)
        theirs.close()
        self.sock.settimeout(self.START_TIMEOUT_S)
        self.reader = self.sock.makefile("rb")
        first = self.reader.readline()
        if not first:
            self.close()
            raise OSError("the zygote exited during start-up")
        self.sock.settimeout(10.0)

    @property
    def pid(self) -> int:
        return self.proc.pid if self.proc.poll() is None else 0

    def spawn(self, args: list[str], cpu: int | None, env: dict, log: str | None, name: str) -> ZygoteProc:
        req = {"args": args, "cpu": cpu, "env": env, "log": log, "name": name}
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        line = self.reader.readline()
        if not line:
            raise OSError("the zygote is gone")
        reply = json.loads(line)
        if "pid" not in reply:
            raise OSError(f"the zygote could not fork: {reply.get('error')}")
        return ZygoteProc(reply["pid"])

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(5)
            except ProcessLookupError:
                pass
            except TimeoutError:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
