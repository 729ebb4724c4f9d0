"""Stopping a jail from the host: SIGTERM, a grace period, SIGKILL (SPEC §8 stop)."""
from __future__ import annotations

import _signal as signal   # the C module: no enum import
import time

from ..errors import JailError
from ..state import registry
from . import sweep


def remove_jail(jid: int, grace: float = 1.0) -> None:
    """SIGTERM every process of jail JID, wait GRACE seconds, SIGKILL the rest,
    and return once the jail is gone and its host side released."""
    from ..confine import cgroup
    from .start import release      # (here: the start path's imports only for a remove)
    rec = sweep.jail(jid)
    if rec is None or rec.state != "running":
        raise JailError(f"remove: {jid}: no such jail")
    cg = rec.cgroup
    # PID 1 is left out: it passes SIGTERM to the command and ends by itself
    # when the last process is gone
    cgroup.signal_all(cg, signal.SIGTERM, skip=rec.pid)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not registry.pid_alive(rec.pid, rec.starttime):
            break
        if [p for p in cgroup.pids(cg) if p != rec.pid] == []:
            break
        time.sleep(0.01)
    cgroup.kill(cg)
    while registry.pid_alive(rec.pid, rec.starttime) or cgroup.pids(cg):
        time.sleep(0.005)
    release(rec)
