"""Named shared-memory segments in /dev/shm: create, attach, validate the common header, unlink.

Every segment starts with the common header of shm/layout.py and a JSON description of its
dtype, so any tool can attach to any segment and know what it holds.
"""
from __future__ import annotations

import fcntl
import json
import mmap
import os
import secrets
import time
from contextlib import contextmanager

import numpy as np

from . import layout as L
from .errors import LayoutMismatch, SegmentExists, SegmentNotFound
from .platform import require_x86_64
from .record import dtype_hash

SHM_DIR = "/dev/shm"


def path_of(name: str) -> str:
    return os.path.join(SHM_DIR, L.PREFIX + name)


_CREATING = f".{L.PREFIX}creating-"


def remove_stale_creations() -> int:
    """Unlink half-built segments of processes that died while creating them (create() builds
    a segment under a hidden name with its pid, then links it into place). Returns how many."""
    from .liveness import pid_alive
    n = 0
    try:
        entries = os.listdir(SHM_DIR)
    except OSError:
        return 0
    for entry in entries:
        if not entry.startswith(_CREATING):
            continue
        pid = entry[len(_CREATING):].split("-", 1)[0]
        if pid.isdigit() and not pid_alive(int(pid)):
            try:
                os.unlink(os.path.join(SHM_DIR, entry))
                n += 1
            except OSError:
                pass
    return n


def list_segments(magic: int | None = None) -> list[str]:
    """Names (without prefix) of tickring segments, optionally only those with a given magic."""
    try:
        entries = sorted(os.listdir(SHM_DIR))
    except FileNotFoundError:
        return []
    names = []
    for entry in entries:
        if not entry.startswith(L.PREFIX):
            continue
        if magic is not None:
            try:
                with open(os.path.join(SHM_DIR, entry), "rb") as f:
                    head = f.read(8)
            except OSError:
                continue
            if len(head) < 8 or int.from_bytes(head, "little") != magic:
                continue
        names.append(entry[len(L.PREFIX):])
    return names


def _format(field: np.dtype) -> str:
    """A field's format string; sub-arrays keep their shape ("(20, 2)<f8", not "|V320")."""
    return f"{field.shape}{field.base.str}" if field.subdtype else field.str


def dtype_to_json(dtype: np.dtype) -> str:
    names = list(dtype.names)
    return json.dumps({"names": names,
                       "formats": [_format(dtype.fields[n][0]) for n in names],
                       "offsets": [dtype.fields[n][1] for n in names],
                       "itemsize": dtype.itemsize})


def dtype_from_json(text: str) -> np.dtype:
    return np.dtype(json.loads(text))


class Segment:
    """An mmap of /dev/shm/tickring.<name> with a uint64 view of its header."""

    def __init__(self, name: str, fd: int, mm: mmap.mmap, created: bool):
        self.name = name
        self.path = path_of(name)
        self._fd = fd
        self.mm = mm
        self.created = created
        self.words = np.frombuffer(mm, dtype="<u8", count=L.RING_HEADER_SIZE // 8)
        self.base_address = self.words.ctypes.data

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def create(cls, name: str, size: int, magic: int, dtype: np.dtype, capacity: int,
               data_offset: int, exist_ok: bool = False) -> "Segment":
        require_x86_64()
        _check_name(name)
        path = path_of(name)
        if os.path.exists(path):
            if exist_ok:
                return cls.attach(name, magic, dtype)
            raise SegmentExists(f"a segment named {name!r} already exists ({path}); "
                                f"attach to it, or remove it with `tickring rm {name}`")
        # Built under a hidden name and linked into place only once its header is complete, so
        # no process ever attaches to a half-initialized segment.
        remove_stale_creations()
        tmp = os.path.join(SHM_DIR, f"{_CREATING}{os.getpid()}-{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, L.SEGMENT_MODE)
        try:
            os.fchmod(fd, L.SEGMENT_MODE)
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        seg = cls(name, fd, mm, created=True)
        desc = dtype_to_json(dtype).encode()
        assert len(desc) <= L.DTYPE_MAX, "dtype description too long"
        mm[L.DTYPE_OFFSET:L.DTYPE_OFFSET + len(desc)] = desc
        w = seg.words
        c = L.COMMON
        w[c["layout_version"].index] = L.LAYOUT_VERSION
        w[c["schema_hash"].index] = dtype_hash(dtype)
        w[c["record_size"].index] = dtype.itemsize
        w[c["capacity"].index] = capacity
        w[c["created_ns"].index] = time.time_ns()
        w[c["data_offset"].index] = data_offset
        w[c["dtype_len"].index] = len(desc)
        w[c["magic"].index] = magic
        try:
            os.link(tmp, path)                 # atomic publication; fails if the name is taken
        except FileExistsError:
            seg.close()
            if exist_ok:
                return cls.attach(name, magic, dtype)
            raise SegmentExists(f"a segment named {name!r} already exists ({path}); "
                                f"attach to it, or remove it with `tickring rm {name}`") from None
        finally:
            os.unlink(tmp)
        seg.path = path
        return seg

    @classmethod
    def attach(cls, name: str, magic: int, dtype: np.dtype | None = None, writable: bool = True,
               not_found: type[SegmentNotFound] = SegmentNotFound, kind: str = "segment") -> "Segment":
        require_x86_64()
        _check_name(name)
        path = path_of(name)
        try:
            fd = os.open(path, os.O_RDWR if writable else os.O_RDONLY)
        except FileNotFoundError:
            live = list_segments(magic)
            listing = ", ".join(live) if live else "none"
            plural = "registries" if kind == "registry" else f"{kind}s"
            raise not_found(f"no {kind} named {name!r}; live {plural}: {listing}") from None
        except PermissionError:
            raise SegmentNotFound(f"no permission to open {path}; is this user in the tickring group?") from None
        size = os.fstat(fd).st_size
        if size < L.RING_HEADER_SIZE:
            os.close(fd)
            raise LayoutMismatch(f"{path} is {size} bytes, too small to be a tickring {kind}")
        prot = mmap.PROT_READ | (mmap.PROT_WRITE if writable else 0)
        mm = mmap.mmap(fd, size, mmap.MAP_SHARED, prot)
        seg = cls(name, fd, mm, created=False)
        try:
            seg._validate(magic, dtype, kind)
        except BaseException:
            seg.close()
            raise
        return seg

    def _validate(self, magic: int, dtype: np.dtype | None, kind: str) -> None:
        w, c = self.words, L.COMMON
        if int(w[c["magic"].index]) != magic:
            raise LayoutMismatch(f"{self.path} is not a tickring {kind} (bad magic number)")
        version = int(w[c["layout_version"].index])
        if version != L.LAYOUT_VERSION:
            raise LayoutMismatch(f"{kind} {self.name!r} has layout version {version}; this tickring "
                                 f"reads version {L.LAYOUT_VERSION}. Restart the appliance that wrote it "
                                 f"with the same tickring version.")
        stored = self.dtype
        if int(w[c["schema_hash"].index]) != dtype_hash(stored):
            raise LayoutMismatch(f"{kind} {self.name!r}: schema hash does not match its dtype description")
        if dtype is not None and dtype_hash(dtype) != dtype_hash(stored):
            raise LayoutMismatch(f"{kind} {self.name!r} holds records of another schema "
                                 f"(hash {dtype_hash(stored):#x}, expected {dtype_hash(dtype):#x})")

    @property
    def dtype(self) -> np.dtype:
        n = int(self.words[L.COMMON["dtype_len"].index])
        return dtype_from_json(bytes(self.mm[L.DTYPE_OFFSET:L.DTYPE_OFFSET + n]).decode())

    def word(self, name: str, table: dict[str, L.Word] = L.COMMON) -> int:
        return int(self.words[table[name].index])

    @contextmanager
    def locked(self):
        """An exclusive flock on the segment, for rare multi-writer bookkeeping (registration)."""
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Unmap. Views handed out (numpy arrays) must be dropped first."""
        self.words = None
        if self.mm is not None:
            try:
                self.mm.close()
            except BufferError:
                pass  # a caller still holds a view; the mapping goes when it does
            self.mm = None
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def unlink(self) -> None:
        unlink(self.name)


def unlink(name: str) -> bool:
    """Remove /dev/shm/tickring.<name>; readers keep their mapping until they close it."""
    try:
        os.unlink(path_of(name))
        return True
    except FileNotFoundError:
        return False


def _check_name(name: str) -> None:
    if not name or "/" in name or len(name) > 200 or not name.isprintable():
        raise ValueError(f"bad segment name {name!r}: use letters, digits, '_', '-' or '.'")
