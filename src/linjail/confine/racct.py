"""Resource usage of a jail, in FreeBSD's racct terms (`rctl -u`, `jls --json`).

Each number comes from where Linux keeps it:
- memoryuse: the memory controller's charge (memory.current, v1
  memory.usage_in_bytes, page cache included) when the jail has a memory
  cgroup; otherwise the sum of its processes' VmRSS (no v1 migration is made
  just to report it: a jail without a memory rule on a hybrid host).
- cputime: cpu.stat usage_usec of its cgroup2 directory (present without
  the cpu controller), seconds; pcpu: the same over a short sample window.
- maxproc, nthr: processes and threads of its cgroup; openfiles: their
  descriptors; datasize stacksize vmemoryuse memorylocked swapuse: the
  sums of VmData VmStk VmSize VmLck VmSwap (/proc/PID/status).
- the IPC resources: /proc/sysvipc/* read inside its IPC namespace.
- pseudoterminals: the ptys of its own devpts; wallclock: its age.
- readbps ...: io.stat or blkio.throttle.io_service* over the sample window,
  when it has an io/blkio cgroup; 0 otherwise.
"""
from __future__ import annotations

import os
import time

from ..config.rctl import RESOURCES
from . import cglayout, cgroup

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..state.registry import JailRecord

_STATUS = {"VmRSS": "rss", "VmData": "datasize", "VmStk": "stacksize", "VmSize": "vmemoryuse",
           "VmLck": "memorylocked", "VmSwap": "swapuse", "Threads": "nthr"}


def zero() -> dict[str, int]:
    return {name: 0 for name in RESOURCES}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _processes(pids: list[int], out: dict[str, int], fds: bool = True) -> None:
    for pid in pids:
        text = _read(f"/proc/{pid}/status")
        if text is None:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(":")
            name = _STATUS.get(key)
            if name is None:
                continue
            parts = value.split()
            amount = int(parts[0]) if parts else 0
            out[name] = out.get(name, 0) + (amount if name == "nthr" else amount * 1024)
        if fds:
            try:
                out["openfiles"] += len(os.listdir(f"/proc/{pid}/fd"))
            except OSError:
                pass


def cpu_usec(rec: JailRecord) -> int:
    text = _read(os.path.join(rec.cgroup, "cpu.stat")) or ""
    for line in text.splitlines():
        if line.startswith("usage_usec "):
            return int(line.split()[1])
    # v1 only: cpuacct of the jail's v1 cgroup, if it has one
    for path in cglayout.v1_dirs(rec.jid):
        ns = _read(os.path.join(path, "cpuacct.usage"))
        if ns is not None:
            return int(ns) // 1000
    return 0


def memory(rec: JailRecord, rss: int) -> int:
    current = _read(os.path.join(rec.cgroup, "memory.current"))
    if current is not None:
        return int(current)
    for path in cglayout.v1_dirs(rec.jid):
        usage = _read(os.path.join(path, "memory.usage_in_bytes"))
        if usage is not None:
            # v1 leaves the charges of a process with the cgroup it came
            # from: a jail that joined after its start is charged only for
            # what it allocated since
            return max(int(usage), rss)
    return rss


def oom_kills(rec: JailRecord) -> int:
    """Processes the kernel's OOM killer ended inside the jail's memory
    cgroup (memory.events oom_kill, v1 memory.oom_control oom_kill)."""
    places = [(os.path.join(rec.cgroup, "memory.events"), "oom_kill")]
    places += [(os.path.join(p, "memory.oom_control"), "oom_kill")
               for p in cglayout.v1_dirs(rec.jid)]
    for path, key in places:
        for line in (_read(path) or "").splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    return 0


def light(rec: JailRecord) -> dict[str, int]:
    """What `jls --json` shows: memory (bytes), CPU time (µs), processes."""
    pids = cgroup.pids(rec.cgroup)
    out = {"rss": 0, "openfiles": 0}
    _processes(pids, out, fds=False)
    return {"memoryuse": memory(rec, out["rss"]), "cputime_usec": cpu_usec(rec),
            "maxproc": len(pids)}


def _ipc(pid: int, out: dict[str, int]) -> None:
    from ..kernel import libc
    try:
        theirs = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return
    own = os.open("/proc/self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(theirs, libc.CLONE_NEWIPC)
        try:
            tables = {name: _read(f"/proc/sysvipc/{name}") or "" for name in ("msg", "sem", "shm")}
        finally:
            libc.setns(own, libc.CLONE_NEWIPC)
    finally:
        os.close(own)
        os.close(theirs)
    for name, text in tables.items():
        lines = text.splitlines()
        if not lines:
            continue
        head = lines[0].split()
        for line in lines[1:]:
            row = dict(zip(head, line.split()))
            if name == "msg":
                out["nmsgq"] += 1
                out["msgqqueued"] += int(row.get("qnum", 0))
                out["msgqsize"] += int(row.get("cbytes", 0))
            elif name == "sem":
                out["nsem"] += int(row.get("nsems", 0))
            else:
                out["nshm"] += 1
                out["shmsize"] += int(row.get("size", 0))


def _ptys(pid: int) -> int:
    from ..kernel import libc
    try:
        root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        pts = libc.openat2(root, "dev/pts", os.O_RDONLY | os.O_DIRECTORY,
                           libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_SYMLINKS |
                           libc.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return 0
    finally:
        os.close(root)
    try:
        return sum(1 for name in os.listdir(pts) if name.isdigit())
    finally:
        os.close(pts)


def _io(rec: JailRecord) -> dict[str, int]:
    """Cumulative bytes and operations read and written."""
    out = {"readbps": 0, "writebps": 0, "readiops": 0, "writeiops": 0}
    text = _read(os.path.join(rec.cgroup, "io.stat"))
    if text:
        for line in text.splitlines():
            for item in line.split()[1:]:
                key, _, value = item.partition("=")
                name = {"rbytes": "readbps", "wbytes": "writebps", "rios": "readiops",
                        "wios": "writeiops"}.get(key)
                if name:
                    out[name] += int(value)
        return out
    for path in cglayout.v1_dirs(rec.jid):
        for fname, unit in (("blkio.throttle.io_service_bytes", "bps"),
                            ("blkio.throttle.io_serviced", "iops")):
            for line in (_read(os.path.join(path, fname)) or "").splitlines():
                parts = line.split()
                if len(parts) == 3 and parts[1] in ("Read", "Write"):
                    out[f"{parts[1].lower()}{unit}"] += int(parts[2])
    return out


def usage(rec: JailRecord | None, window: float = 0.25) -> dict[str, int]:
    """Every racct resource of the jail (all zero when it does not run)."""
    out = zero()
    if rec is None:
        return out
    cpu0, io0, t0 = cpu_usec(rec), _io(rec), time.monotonic()
    pids = cgroup.pids(rec.cgroup)
    out["rss"] = 0
    _processes(pids, out)
    out["maxproc"] = len(pids)
    out["memoryuse"] = memory(rec, out.pop("rss"))
    swap = _read(os.path.join(rec.cgroup, "memory.swap.current"))
    if swap is not None:
        out["swapuse"] = int(swap)
    _ipc(rec.pid, out)
    out["pseudoterminals"] = _ptys(rec.pid)
    out["wallclock"] = int(time.time() - rec.created) if rec.created else 0
    if window > 0:
        time.sleep(max(0.0, window - (time.monotonic() - t0)))
    cpu1, io1, t1 = cpu_usec(rec), _io(rec), time.monotonic()
    out["cputime"] = cpu1 // 1000000
    dt = max(t1 - t0, 1e-6)
    out["pcpu"] = round((cpu1 - cpu0) / 1e6 / dt * 100)
    for key in io1:
        out[key] = int((io1[key] - io0[key]) / dt)
    return out
