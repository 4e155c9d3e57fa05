"""Is the process behind a pid in a header still there? (producers, consumers, table writers)"""
import os


def pid_alive(pid: int) -> bool:
    """True while a process with this pid exists (even one we may not signal)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
