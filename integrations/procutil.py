"""Process helpers shared by the lab and its server processes (Linux only)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import time
from pathlib import Path

__all__ = [
    "die_with_parent",
    "kill_pids",
    "pid_alive",
    "read_pidfile",
]

_PR_SET_PDEATHSIG = 1


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def die_with_parent(expected_parent: int | None = None) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies.

    Used as ``preexec_fn`` (it survives the exec of ``ip netns exec`` and of python, neither is
    set-uid) and again by the server itself. If the parent is already gone by then, the signal
    would never come, so exit at once instead of lingering as an orphan.
    """
    _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if expected_parent is not None and os.getppid() != expected_parent:
        os._exit(1)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead, its namespace references are gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def read_pidfile(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def kill_pids(pids: list[int], timeout: float = 1.0) -> None:
    """SIGTERM, then SIGKILL what is left after ``timeout``; reap our own children."""
    pids = [p for p in pids if p > 1 and p != os.getpid()]
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    remaining = list(pids)
    while remaining and time.monotonic() < deadline:
        _reap(remaining)
        remaining = [p for p in remaining if pid_alive(p)]
        if remaining:
            time.sleep(0.005)
    for pid in remaining:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        _reap(remaining)
        remaining = [p for p in remaining if pid_alive(p)]
        if remaining:
            time.sleep(0.005)


def _reap(pids: list[int]) -> None:
    # Collect the listed pids if they are our own exited children, so they do not linger as
    # zombies. Never waitpid(-1): that would steal exit codes from the caller's Popen objects.
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
