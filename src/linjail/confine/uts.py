"""A jail's UTS namespace seen from the host: the hostname it has now
(jailed root may have changed it with sethostname(2) since the start)."""
from __future__ import annotations

import os


def current_hostname(pid: int, fallback: str) -> str:
    """The hostname of the UTS namespace of PID (the jail's PID 1), read by
    entering it and coming back; FALLBACK (the record's) when that fails
    (PID gone, or not root: only root may setns(2))."""
    from ..kernel import libc    # ctypes: loaded by the callers that get this far
    try:
        fd = os.open(f"/proc/{pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return fallback
    own = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(fd, libc.CLONE_NEWUTS)
        try:
            return os.uname().nodename
        finally:
            libc.setns(own, libc.CLONE_NEWUTS)
    except OSError:
        return fallback
    finally:
        os.close(fd)
        os.close(own)
