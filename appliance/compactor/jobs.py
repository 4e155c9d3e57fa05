"""The compactor's side of Parquet writing: flushes queue here, a writer process
(parquet_job.py) turns their spools into Parquet files, and each flush is committed in order
once its files are written: checkpoint saved, then files renamed into place (checkpoint.py).

Writers are forked from a small process WriterJobs starts with the compactor, before the
compactor has threads (forkserver.py): a writer shares CPython and numpy with it and pays only
for pyarrow and its data (measured on the demo soak's flushes: ~62 MB at its peak as a fresh
interpreter, ~35 MB forked with pyarrow loaded lean). One writer runs at a time and takes
every flush queued when it starts, so a burst of flushes (several venues at a rotation
boundary, or shutdown) costs one pyarrow load. The compactor keeps reading its rings meanwhile.
A flush without files (a venue's first checkpoint) is committed at once when nothing is ahead
of it.
"""
from __future__ import annotations

import json
import os
import uuid
from collections import deque
from dataclasses import dataclass

from .checkpoint import Checkpoints
from .forkserver import ForkServer, ServerGone
from .staging import STAGING, Staging


class WriterFailed(RuntimeError):
    """The Parquet writer process failed; nothing of its flushes was checkpointed."""


@dataclass
class Flush:
    venue: str
    files: list          # manifest entries (spool.py)
    checkpoint: dict     # saved once the files are written; names them in "pending"


class WriterJobs:
    def __init__(self, staging: Staging, checkpoints: Checkpoints, symbol_of, labels: dict[int, str]):
        self.staging = staging
        self.checkpoints = checkpoints
        self.symbol_of = symbol_of
        self.labels = labels
        self.queue: deque[Flush] = deque()
        self.running: tuple[int, list[Flush], str] | None = None     # writer pid, its flushes, manifest
        self.server = ForkServer.start()
        self.runs = 0
        self.rows_written = 0
        self.bytes_written = 0

    @property
    def busy(self) -> bool:
        return self.running is not None or bool(self.queue)

    def submit(self, venue: str, files: list[dict], checkpoint: dict) -> None:
        """Queue a flush; the next poll() starts a writer on everything queued by then. A flush
        without files, with nothing ahead of it, is committed at once."""
        checkpoint["pending"] = [(f["staged"], f["final"]) for f in files]
        self.queue.append(Flush(venue, files, checkpoint))
        if self.running is None:
            self._commit_fileless()

    def poll(self) -> None:
        """Commit what the writer finished; start it on what is queued. Cheap when idle."""
        if self.running is not None:
            done = self._ended(self.server.poll)
            if done is None:
                return
            self._finished(*done)
        self._commit_fileless()
        if self.queue:
            self._start()

    def drain(self) -> None:
        """Write and commit everything queued (shutdown)."""
        while self.busy:
            if self.running is not None:
                self._finished(*self._ended(self.server.wait))
            self.poll()

    def close(self) -> None:
        """Stop a writer still running (the compactor stops on an error) and the fork server:
        the writer's files stay uncommitted and the next start removes them."""
        if self.running is not None:
            self.server.kill()
            try:
                self.server.wait()
            except ServerGone:
                pass
            self.running = None
        self.server.close()

    # -- internals -------------------------------------------------------------------------------
    def _start(self) -> None:
        flushes = list(self.queue)
        self.queue.clear()
        files = [f for fl in flushes for f in fl.files]
        ids = sorted({i for f in files for i in f["instruments"]})
        manifest = {"root": self.staging.root, "files": files,
                    "symbols": {str(i): self.symbol_of(i) for i in ids},
                    "labels": {str(k): v for k, v in self.labels.items()}}
        path = os.path.join(self.staging.root, STAGING, f"job-{uuid.uuid4().hex}.json")
        with open(path, "w") as f:
            json.dump(manifest, f, separators=(",", ":"))
        try:
            pid = self.server.run(path)
        except ServerGone as e:
            self._failed(str(e), flushes)
        self.running = (pid, flushes, path)
        self.runs += 1

    def _ended(self, how) -> tuple[int, dict | None] | None:
        """server.poll or server.wait; a server gone is a writer failed."""
        try:
            return how()
        except ServerGone as e:
            flushes = self.running[1]
            self.running = None
            self._failed(str(e), flushes)

    def _finished(self, code: int, done: dict | None) -> None:
        pid, flushes, path = self.running
        self.running = None
        if code != 0 or done is None:
            self._failed(f"the Parquet writer (pid {pid}) exited with {code}", flushes)
        self.rows_written += done["rows"]
        self.bytes_written += done["bytes"]
        os.unlink(path)
        for fl in flushes:
            self._commit(fl)

    @staticmethod
    def _failed(what: str, flushes: list[Flush]):
        venues = ", ".join(sorted({fl.venue for fl in flushes}))
        raise WriterFailed(f"{what} writing {venues}; see its traceback above; the rows stay in the "
                           f"rings and are read again at the next start")

    def _commit_fileless(self) -> None:
        while self.queue and not self.queue[0].files:
            self._commit(self.queue.popleft())          # nothing to write: in order, at once

    def _commit(self, fl: Flush) -> None:
        self.checkpoints.save(fl.venue, fl.checkpoint)
        self.staging.commit([tuple(p) for p in fl.checkpoint["pending"]])
