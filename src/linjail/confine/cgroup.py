"""One cgroup v2 directory per jail: it names the jail's processes (SPEC §7).

Hosts here are hybrid (v1 controllers under /sys/fs/cgroup/*, cgroup2 at
/sys/fs/cgroup/unified), so the cgroup2 mount is looked up in mountinfo, never
assumed.  Killing a jail is writing 1 to its cgroup.kill (Linux 5.14).
"""
from __future__ import annotations

import os
import _signal as signal   # the C module: no enum import
import time

from ..kernel import mountinfo

_ROOT: str | None = None


def cgroup2_root() -> str:
    global _ROOT
    if _ROOT is None:
        for m in mountinfo.read():
            if m.fstype == "cgroup2":
                _ROOT = m.point
                break
        else:
            raise OSError(2, "no cgroup2 file system is mounted")
    return _ROOT


_BASE: str | None = None


def jail_cgroup(jid: int) -> str:
    """`linjail/JID` at the cgroup2 root, or below jail.service when systemd
    delegated that unit to us (cglayout.v2_base)."""
    global _BASE
    if _BASE is None:
        from . import cglayout
        _BASE = cglayout.v2_base(cgroup2_root(), cglayout.systemd_booted())[0]
    return os.path.join(_BASE, str(jid))


def claim(jid: int) -> int | None:
    """Make the cgroup of jail JID, or None if it exists: the directory is
    the host-wide claim on JID, whatever registry allocates it (veth `ljhN`,
    rule `iif ljhN` and cgroup `linjail/N` are host objects, while a private
    LINJAIL_STATE_DIR counts JIDs of its own).  Returns the directory's inode,
    which the record keeps: a later release proves with it that the claim is
    still its own (kernfs never reuses an inode number within a boot)."""
    path = jail_cgroup(jid)
    try:
        os.mkdir(path)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return claim(jid)
    except FileExistsError:
        return None
    return os.stat(path).st_ino


def claimed(jid: int, ino: int) -> bool:
    """True while the claim made with inode INO still holds jail JID's cgroup."""
    try:
        return ino != 0 and os.stat(jail_cgroup(jid)).st_ino == ino
    except OSError:
        return False


def join(path: str, pid: int = 0) -> None:
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(pid))


def pids(path: str) -> list[int]:
    try:
        with open(os.path.join(path, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def signal_all(path: str, sig: int, skip: int = 0) -> None:
    for pid in pids(path):
        if pid != skip:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass


def kill(path: str) -> None:
    try:
        with open(os.path.join(path, "cgroup.kill"), "w") as f:
            f.write("1")
    except FileNotFoundError:
        signal_all(path, signal.SIGKILL)


def remove(path: str, timeout: float = 2.0) -> None:
    """Kill what is left and remove the directory (waits for it to empty)."""
    if not os.path.isdir(path):
        return
    deadline = time.monotonic() + timeout
    while True:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            kill(path)
            time.sleep(0.01)
