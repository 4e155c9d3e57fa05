"""The process the compactor forks its Parquet writers from ("parquet-forks" in ps/top).

Why: a writer started as a fresh interpreter pays for CPython and numpy again, ~10 MB of its
peak; forked from a process that holds them, only pyarrow's pages and the data are new. The
compactor itself is a poor parent by the time it writes: its backfill threads may hold a lock
at the moment of a fork (the child gets it held, and can deadlock on it). So the compactor
forks this small single-threaded process as it starts, before its rings, tables and threads
exist (WriterJobs), and asks it for each writer run. It never loads pyarrow; a writer does
(parquet_job.py), and exits.

Protocol, one JSON line each way on a socketpair:
  compactor -> {"manifest": path}    it forks a writer on that manifest, answers {"pid": n}
  compactor -> {"kill": true}        (while a writer runs) SIGKILL it
  server    -> {"exit": code, "result": {...} or null}    once the writer is gone (reaped)
EOF from the compactor: it kills a running writer and exits.

Lifetimes: this process dies with the compactor and a writer with this process
(PR_SET_PDEATHSIG, SIGKILL), so no writer outlives the compactor that started it: a restarted
compactor removes what a writer left in .staging and must not race one still writing there.
It keeps no descriptor of the compactor's but its socket and stdio (the Parquet root's lock
must not outlive a compactor that crashed) and ignores Ctrl-C (the compactor's flush needs it).
Its memory is what the compactor changes of the pages they shared at the fork: the compactor
collects and freezes its objects first (a collection writes every object's header), and the
server hands back its free heap pages at once.
"""
from __future__ import annotations

import ctypes
import gc
import json
import os
import select
import signal
import socket
import sys

from appliance import malloctune

PR_SET_PDEATHSIG = 1
PR_SET_NAME = 15
SERVER_NAME = b"parquet-forks"
WRITER_NAME = b"parquet-writer"

_libc = ctypes.CDLL(None, use_errno=True)


class ServerGone(OSError):
    """The fork server exited (killed, or it failed); its traceback, if any, is on stderr."""


class _Lines:
    """JSON lines from a socket, read without blocking when asked."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.buf = bytearray()
        self.eof = False

    def next(self, block: bool) -> dict | None:
        """The next message; None when none is complete (not blocking) or at EOF (see .eof)."""
        while b"\n" not in self.buf:
            if self.eof or (not block and not select.select([self.sock], [], [], 0)[0]):
                return None
            chunk = self.sock.recv(65536)
            if not chunk:
                self.eof = True
                return None
            self.buf += chunk
        line, _, rest = bytes(self.buf).partition(b"\n")
        self.buf = bytearray(rest)
        return json.loads(line)


def _send(sock: socket.socket, msg: dict) -> None:
    sock.sendall(json.dumps(msg, separators=(",", ":")).encode() + b"\n")


class ForkServer:
    """The compactor's handle: `run()` a writer, `poll()`/`wait()` for its end, `kill()` it."""

    def __init__(self, pid: int, sock: socket.socket):
        self.pid = pid
        self.sock = sock
        self.lines = _Lines(sock)
        self.writer: int | None = None           # pid of the writer running, if any

    @classmethod
    def start(cls) -> "ForkServer":
        ours, theirs = socket.socketpair()
        sys.stdout.flush()
        sys.stderr.flush()
        # what both processes hold now leaves the collector's view: a collection in either
        # would write every object's GC header and so copy every page of them (as the zygote)
        gc.collect()
        gc.freeze()
        parent = os.getpid()
        pid = os.fork()
        if pid == 0:
            ours.close()
            _server(theirs, parent)                # never returns
        theirs.close()
        return cls(pid, ours)

    def run(self, manifest: str) -> int:
        """Fork a writer on `manifest` (parquet_job.py); its pid."""
        assert self.writer is None, "one writer at a time"
        try:
            _send(self.sock, {"manifest": manifest})
            reply = self.lines.next(block=True)
        except OSError:
            reply = None
        if reply is None or "pid" not in reply:
            raise ServerGone(f"the Parquet writers' fork server (pid {self.pid}) is gone")
        self.writer = reply["pid"]
        return self.writer

    def poll(self) -> tuple[int, dict | None] | None:
        """(exit code, result) once the writer is gone, else None. Does not block."""
        return self._done(block=False)

    def wait(self) -> tuple[int, dict | None]:
        return self._done(block=True)

    def kill(self) -> None:
        """SIGKILL the running writer (wait() then says how it ended)."""
        if self.writer is not None:
            try:
                _send(self.sock, {"kill": True})
            except OSError:
                pass                                # gone already: wait() says so

    def close(self) -> None:
        """Stop the server (a running writer is killed with it) and reap it."""
        self.sock.close()
        try:
            os.waitpid(self.pid, 0)
        except ChildProcessError:
            pass

    def _done(self, block: bool):
        reply = self.lines.next(block)
        if reply is None:
            if self.lines.eof:
                self.writer = None
                raise ServerGone(f"the Parquet writers' fork server (pid {self.pid}) is gone")
            return None
        self.writer = None
        return reply["exit"], reply.get("result")


# -- the server process -------------------------------------------------------------------------
def _server(sock: socket.socket, parent: int) -> None:
    """In the forked server: shed the compactor's state, then serve. Never returns."""
    code = 0
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:                  # it died before prctl took effect
            os._exit(1)
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(SERVER_NAME), 0, 0, 0)
        malloctune.trim()        # free heap pages: not ours to keep once the compactor reuses them
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        fd = sock.fileno()
        os.closerange(3, fd)
        os.closerange(fd + 1, os.sysconf("SC_OPEN_MAX"))
        _serve(sock)
    except BaseException:                           # noqa: BLE001 - reported, then exit 1
        import traceback
        traceback.print_exc()
        code = 1
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)


def _serve(sock: socket.socket) -> None:
    lines = _Lines(sock)
    me = os.getpid()
    while True:
        req = lines.next(block=True)
        if req is None:                             # the compactor closed or died
            return
        if "manifest" not in req:                   # a kill that came after its writer ended
            continue
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            os.close(sock.detach())                 # detach: the object must not close a reused fd later
            _writer(req["manifest"], w, me)         # never returns
        os.close(w)
        _send(sock, {"pid": pid})
        out = bytearray()
        while True:
            ready = select.select([r] if lines.eof else [r, sock], [], [])[0]
            if sock in ready:
                msg = lines.next(block=False)
                if lines.eof or (msg is not None and msg.get("kill")):
                    os.kill(pid, signal.SIGKILL)    # our child, not reaped yet: the pid is its own
            if r in ready:
                chunk = os.read(r, 65536)
                if not chunk:
                    break
                out += chunk
        os.close(r)
        _, status = os.waitpid(pid, 0)
        if lines.eof:
            return
        code = os.waitstatus_to_exitcode(status)
        result = json.loads(out) if code == 0 and out.strip() else None
        _send(sock, {"exit": code, "result": result})


def _writer(manifest: str, out_fd: int, server: int) -> None:
    """In a forked writer: write the manifest's files, report on `out_fd`. Never returns."""
    code = 1
    try:
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != server:
            os._exit(1)
        _libc.prctl(PR_SET_NAME, ctypes.c_char_p(WRITER_NAME), 0, 0, 0)
        from .parquet_job import run
        result = run(manifest)
        with os.fdopen(out_fd, "wb") as f:
            f.write(json.dumps(result).encode())
        code = 0
    except BaseException:                           # noqa: BLE001 - the traceback is the report
        import traceback
        traceback.print_exc()
    finally:
        try:
            sys.stderr.flush()
        finally:
            os._exit(code)
