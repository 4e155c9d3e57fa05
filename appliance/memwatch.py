"""Per-process memory, measured from outside (psutil reads /proc/<pid>/smaps), never on the hot
path: the supervisor samples each child every few seconds.

Why "besides the rings": a ring is a MAP_SHARED file in /dev/shm; pages only its producer has
touched count as that process's private memory (USS), so a worker's USS would grow with its
ring until the ring wrapped. The appliance's budget (<= 250 MB besides the rings) and the
recycle limits are about the heap, so mappings of tickring segments are counted apart: those of
/dev/shm/tickring.*, and those of the process that created a segment, which maps it under the
hidden name it was built under (/dev/shm/.tickring.creating-<pid>-..., "(deleted)" once linked
into place, see shm/segment.py): the compactor's candle ring and tables, ~10 MB in the demo,
used to count as its heap and grew it until the candle ring wrapped.

  uss  private memory besides tickring segments (what a recycle frees)
  pss  proportional set size besides tickring segments (what the box pays; sums across processes)
  shm  PSS of the tickring segments it maps (reported, never limited)
  kids with descendants: their share of uss/pss per process name (the compactor's
       "parquet-forks" and "parquet-writer"), so a report can tell them from the parent
"""
from __future__ import annotations

from dataclasses import dataclass, field

import psutil

from shm.layout import PREFIX

SHM_PREFIX = "/dev/shm/" + PREFIX
SHM_CREATING_PREFIX = "/dev/shm/." + PREFIX + "creating-"     # shm/segment.py: create()
MB = 1 << 20


def is_segment(path: str) -> bool:
    """A mapping of a tickring shared-memory segment, under its name or its creation name."""
    return path.startswith(SHM_PREFIX) or path.startswith(SHM_CREATING_PREFIX)


@dataclass
class Mem:
    uss: int
    pss: int
    shm: int
    rss: int
    kids: dict = field(default_factory=dict)     # descendant name -> {"uss": n, "pss": n, "n": processes}

    def as_dict(self) -> dict:
        d = {"uss": self.uss, "pss": self.pss, "shm": self.shm, "rss": self.rss}
        if self.kids:
            d["kids"] = self.kids
        return d


def _one(proc: psutil.Process) -> Mem:
    uss = pss = shm = rss = 0
    for m in proc.memory_maps(grouped=True):
        if is_segment(m.path):
            shm += m.pss
            continue
        uss += m.private_clean + m.private_dirty
        pss += m.pss
        rss += m.rss
    return Mem(uss, pss, shm, rss)


def sample(pid: int, descendants: bool = False) -> Mem | None:
    """Memory of one process, or None if it is gone (or not ours to read). With descendants,
    plus the processes it started (the compactor's Parquet writers and the process it forks
    them from): what it costs the box, not only its own address space; `kids` says how much of
    it is theirs, by process name."""
    try:
        proc = psutil.Process(pid)
        total = _one(proc)
        kids = proc.children(recursive=True) if descendants else []
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, FileNotFoundError):
        return None
    for kid in kids:
        try:
            m = _one(kid)
            name = kid.name()
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess, FileNotFoundError):
            continue                           # it finished meanwhile
        part = total.kids.setdefault(name, {"uss": 0, "pss": 0, "n": 0})
        part["uss"] += m.uss
        part["pss"] += m.pss
        part["n"] += 1
        total = Mem(total.uss + m.uss, total.pss + m.pss, total.shm + m.shm, total.rss + m.rss, total.kids)
    return total


class Watch:
    """Keeps each child's latest sample and says who is over its limit.

    A child is over its limit after `strikes` consecutive samples above it, so one transient
    peak (a big REST snapshot) does not cost a restart.
    """

    def __init__(self, strikes: int = 2):
        self.strikes = strikes
        self.latest: dict[str, Mem] = {}
        self._over: dict[str, int] = {}

    def update(self, name: str, pid: int, limit_mb: float) -> bool:
        """Sample one child (with the processes it started); True when it should be recycled."""
        mem = sample(pid, descendants=True)
        if mem is None:
            return False
        self.latest[name] = mem
        if limit_mb and mem.uss > limit_mb * MB:
            self._over[name] = self._over.get(name, 0) + 1
        else:
            self._over[name] = 0
        if self._over[name] >= self.strikes:
            self._over[name] = 0
            return True
        return False

    def forget(self, name: str) -> None:
        self._over.pop(name, None)
