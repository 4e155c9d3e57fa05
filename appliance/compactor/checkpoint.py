"""Per-venue checkpoints: where in the ring the Parquet data ends, plus the little state
(forming candles, last trade ids, open backfills) needed to continue exactly there.

Commit protocol, a redo log of one entry:
  1. the new files are written and fsynced in <root>/.staging/
  2. the checkpoint is replaced atomically (tmp file, fsync, rename, fsync dir); it names the
     ring position after the last saved record AND the staged files with their final names
  3. the staged files are renamed into place, directories fsynced
A crash before 2 leaves the old checkpoint: the staged files are orphans (deleted at start) and
the rows are read again from the ring. A crash after 2 is rolled forward at start (step 3 is
idempotent). So rows are never lost while the ring holds them, and never saved twice.
"""
from __future__ import annotations

import json
import os

from .staging import Staging, fsync_dir

DIR = ".checkpoints"


class Checkpoints:
    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.dir = os.path.join(self.root, DIR)
        os.makedirs(self.dir, exist_ok=True)

    def path(self, venue: str) -> str:
        return os.path.join(self.dir, f"{venue}.json")

    def load(self, venue: str) -> dict | None:
        try:
            with open(self.path(venue), "rb") as f:
                return json.loads(f.read())
        except FileNotFoundError:
            return None
        except ValueError as e:
            # only a rename ever replaces it, so this is damage from outside: say so, start over
            raise ValueError(f"checkpoint {self.path(venue)} is unreadable ({e}); move it away to "
                             f"start that venue from the ring's oldest record") from None

    def save(self, venue: str, data: dict) -> None:
        path = self.path(venue)
        tmp = path + ".tmp"
        with open(tmp, "wb") as f:
            f.write(json.dumps(data, separators=(",", ":")).encode())
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, path)
        fsync_dir(self.dir)

    def all(self) -> dict[str, dict]:
        out = {}
        for entry in os.listdir(self.dir):
            if entry.endswith(".json"):
                venue = entry[:-5]
                d = self.load(venue)
                if d is not None:
                    out[venue] = d
        return out


def recover(root: str) -> tuple[int, int]:
    """At start: finish the renames every checkpoint promised, delete every other staged file.
    Returns (files moved into place, orphans removed)."""
    sink = Staging(root)
    before = sink.files_written
    for ck in Checkpoints(root).all().values():
        sink.commit([tuple(p) for p in ck.get("pending", [])])
    return sink.files_written - before, sink.remove_orphans(set())
