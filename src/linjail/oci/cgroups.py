"""The container's cgroups: the jail's own cgroup2 directory (identity,
kill, freeze) and the directories linux.cgroupsPath names.

Freezing uses cgroup2's core cgroup.freeze (Linux 5.2), which every cgroup2
directory has whatever controllers are enabled: on hybrid hosts too, where
the v2 hierarchy carries no controller, the jail's own directory freezes
every process of it.
"""
from __future__ import annotations

import os
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from .store import State


def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def frozen(st: State) -> bool:
    return bool(st.v2cgroup) and _read(os.path.join(st.v2cgroup, "cgroup.freeze")).strip() == "1"


def freeze(st: State, on: bool, timeout: float = 5.0) -> None:
    """Write cgroup.freeze and wait until cgroup.events says it holds."""
    path = os.path.join(st.v2cgroup, "cgroup.freeze")
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"1" if on else b"0")
    finally:
        os.close(fd)
    want = f"frozen {int(on)}"
    deadline = time.monotonic() + timeout
    while want not in _read(os.path.join(st.v2cgroup, "cgroup.events")).splitlines():
        if time.monotonic() > deadline:
            raise OSError(110, f"{path}: the cgroup did not become "
                          f"{'frozen' if on else 'thawed'}")
        time.sleep(0.005)
