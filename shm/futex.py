"""Cross-process futex wait/wake on a 32-bit word in shared memory (Linux, via libc syscall).

A blocked consumer costs no CPU; the producer only issues FUTEX_WAKE when the ring's `waiters`
word says someone may sleep, so an uncontended publish makes no system call.
"""
from __future__ import annotations

import ctypes
import errno
import os

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long
SYS_futex = 202          # x86-64
FUTEX_WAIT = 0           # shared (not PRIVATE): works across processes on a shared mapping
FUTEX_WAKE = 1
_WAKE_ALL = 0x7FFFFFFF


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def wait(address: int, expected: int, timeout_s: float) -> None:
    """Sleep while the u32 at address equals expected, at most timeout_s. Spurious wakes are fine."""
    ts = _Timespec(int(timeout_s), int((timeout_s % 1.0) * 1e9))
    r = _syscall(SYS_futex, ctypes.c_void_p(address), FUTEX_WAIT, ctypes.c_uint32(expected & 0xFFFFFFFF),
                 ctypes.byref(ts), None, 0)
    if r == -1:
        e = ctypes.get_errno()
        if e not in (errno.EAGAIN, errno.ETIMEDOUT, errno.EINTR):
            raise OSError(e, os.strerror(e))


def wake_all(address: int) -> int:
    """Wake every waiter on the word at address; returns how many woke."""
    return _syscall(SYS_futex, ctypes.c_void_p(address), FUTEX_WAKE, _WAKE_ALL, None, None, 0)
