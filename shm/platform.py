"""The memory protocol rests on x86-64 store ordering; other CPUs are refused, not corrupted."""
import platform

from .errors import ShmError

SUPPORTED = ("x86_64", "amd64")


def require_x86_64() -> None:
    """Raise unless this CPU gives the ordering the ring protocol relies on (see shm/layout.py)."""
    machine = platform.machine().lower()
    if machine not in SUPPORTED:
        raise ShmError(
            f"tickring's lock-free shared memory needs x86-64 store ordering; this machine is "
            f"{machine!r}. Run tickring on an x86-64 host.")
