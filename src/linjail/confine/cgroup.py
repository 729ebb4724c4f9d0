"""One cgroup v2 directory per jail: it names the jail's processes (SPEC §7).

Hosts here are hybrid (v1 controllers under /sys/fs/cgroup/*, cgroup2 at
/sys/fs/cgroup/unified), so the cgroup2 mount is looked up in mountinfo, never
assumed.  Killing a jail is writing 1 to its cgroup.kill (Linux 5.14).
"""
from __future__ import annotations

import os
import _signal as signal   # the C module: no enum import
import time

_ROOT: str | None = None


def cgroup2_root() -> str:
    global _ROOT
    if _ROOT is None:
        with open("/proc/self/mountinfo") as f:
            for line in f:
                pre, _, post = line.partition(" - ")
                if post.split(" ", 1)[0] == "cgroup2":
                    _ROOT = pre.split()[4]
                    break
            else:
                raise OSError(2, "no cgroup2 file system is mounted")
    return _ROOT


def jail_cgroup(jid: int) -> str:
    return os.path.join(cgroup2_root(), "linjail", str(jid))


def create(jid: int) -> str:
    path = jail_cgroup(jid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    try:
        os.mkdir(path)
    except FileExistsError:
        # a leftover of a jail whose record was already cleaned: reuse only if empty
        if pids(path):
            raise
    return path


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
