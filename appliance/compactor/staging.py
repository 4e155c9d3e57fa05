"""The file side of the commit protocol, without Arrow: staged files live in <root>/.staging/
until a checkpoint names them; then they are renamed into their hive partition and the
directories fsynced. Both the compactor (which never loads pyarrow) and the Parquet writers use
it; see checkpoint.py for the protocol as a whole."""
from __future__ import annotations

import os

STAGING = ".staging"


def fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class Staging:
    """Names final files, moves staged files into place, removes orphans."""

    def __init__(self, root: str):
        self.root = os.path.abspath(root)
        self.staging = os.path.join(self.root, STAGING)
        os.makedirs(self.staging, exist_ok=True)
        self.files_written = 0
        self.rows_written = 0
        self.bytes_written = 0
        self._claimed: set[str] = set()

    def final_name(self, rel_dir: str, start: int, end: int) -> str:
        """<rel_dir>/<start>_<end>.parquet, or -1, -2... when that name is taken (on disk or by a
        file not yet committed)."""
        base = os.path.join(rel_dir, f"{start}_{end}")
        name, k = base + ".parquet", 1
        while name in self._claimed or os.path.exists(os.path.join(self.root, name)):
            name, k = f"{base}-{k}.parquet", k + 1
        self._claimed.add(name)
        return name

    def commit(self, pairs: list[tuple[str, str]]) -> None:
        """Rename staged files into place (idempotent: a pair already moved is skipped) and
        fsync the directories so the renames survive a power cut."""
        dirs = set()
        for staged, final in pairs:
            src = os.path.join(self.root, staged)
            dst = os.path.join(self.root, final)
            if not os.path.exists(src):
                continue                       # moved before a crash
            d = os.path.dirname(dst)
            if not os.path.isdir(d):
                os.makedirs(d, exist_ok=True)
                # new partition directories: their parents must learn about them too
                dirs.update({os.path.dirname(d), os.path.dirname(os.path.dirname(d))})
            os.rename(src, dst)
            self.files_written += 1
            dirs.add(d)
            self._claimed.discard(final)
        for d in dirs:
            fsync_dir(d)
        if pairs:
            fsync_dir(self.staging)

    def remove_orphans(self, keep: set[str]) -> int:
        """Delete staged files no checkpoint refers to (a crash before their checkpoint)."""
        n = 0
        for entry in os.listdir(self.staging):
            rel = os.path.join(STAGING, entry)
            if rel not in keep:
                os.unlink(os.path.join(self.root, rel))
                n += 1
        return n
