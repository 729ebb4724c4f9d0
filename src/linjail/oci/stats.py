"""`linjail-oci events`: a container's cgroup statistics and OOM events, as runc prints them.

The JSON is runc's (types/events.go, and the field order and empty
sections of runc 1.1.5 as Debian 12 ships it, which clients here read):

  {"type":"stats","id":ID,"data":{"cpu":{"usage":{...},"throttling":{...}},
   "cpuset":{...},"memory":{...},"pids":{...},"blkio":{...},"hugetlb":{...},
   "intel_rdt":{},"network_interfaces":null}}
  {"type":"oom","id":ID}

Per section, the container's v1 directory of that controller when it has one
(Cgroups.dirs: hybrid and v1 hosts), else the jail's own cgroup2 directory
(cgroup2-only hosts; cpu.stat is in every cgroup2 directory).  The files and
what each number becomes are runc's: v1 cpuacct.usage (ns), usage_percpu,
usage_all (per CPU system/user), cpuacct.stat (USER_HZ ticks, made ns),
cpu.stat (throttling), cpuset.*, memory.{,memsw.,kmem.,kmem.tcp.}{usage_in_bytes,
max_usage_in_bytes,failcnt,limit_in_bytes} and memory.stat, pids.current and
pids.max (max is 0), blkio's recursive tables, hugetlb.SIZE.*; v2 cpu.stat
(usec made ns), memory.current/max, memory.swap.current/max (reported as
memory+swap, as v1 does), memory.stat (cache is "file"), pids.current/max
(or the lines of cgroup.procs), io.stat (rbytes/wbytes/rios/wios),
hugetlb.SIZE.current and .events.  A number "max" is 2^64-1.

OOM: v1 memory.oom_control through cgroup.event_control and an eventfd; v2
memory.events (a change wakes poll() with POLLPRI) whose oom_kill count
grew.  Imported by `events` only (json, select: nothing of the start path).
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

MAX = (1 << 64) - 1
_NS = 1_000_000_000


def _text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def _uint(text: str | None) -> int | None:
    """Go's GetCgroupParamUint: "max" is 2^64-1, a negative number 0."""
    if text is None:
        return None
    t = text.strip()
    if t == "max":
        return MAX
    try:
        value = int(t)
    except ValueError:
        return None
    return 0 if value < 0 else value


def _file_uint(path: str) -> int | None:
    return _uint(_text(path))


def _keyed(path: str) -> dict[str, int]:
    """A flat keyed file (memory.stat, cpu.stat): name -> number."""
    out: dict[str, int] = {}
    for line in (_text(path) or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            value = _uint(parts[1])
            if value is not None:
                out[parts[0]] = value
    return out


def _list(text: str | None) -> list[int]:
    """A cpuset list ("0-3,6") as its numbers."""
    out: list[int] = []
    for part in (text or "").strip().split(","):
        lo, _, hi = part.partition("-")
        if lo.isdigit() and (not hi or hi.isdigit()):
            out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def _clock_ticks() -> int:
    try:
        return os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError):
        return 100


# --- the sections ----------------------------------------------------------------------------

def _cpu_v1(acct: str | None, cpu: str | None) -> dict[str, Any]:
    usage: dict[str, Any] = {}
    kernel = user = 0
    if acct and os.path.isdir(acct):
        total = _file_uint(os.path.join(acct, "cpuacct.usage")) or 0
        percpu = [int(v) for v in (_text(os.path.join(acct, "cpuacct.usage_percpu")) or ""
                                   ).split() if v.isdigit()]
        pk: list[int] = []
        pu: list[int] = []
        for line in (_text(os.path.join(acct, "cpuacct.usage_all")) or "").splitlines()[1:]:
            cols = line.split(" ")
            if len(cols) == 3 and cols[1].isdigit() and cols[2].isdigit():
                pu.append(int(cols[1]))
                pk.append(int(cols[2]))
        ticks = _keyed(os.path.join(acct, "cpuacct.stat"))
        hz = _clock_ticks()
        user = ticks.get("user", 0) * _NS // hz
        kernel = ticks.get("system", 0) * _NS // hz
        if total:
            usage["total"] = total
        for key, values in (("percpu", percpu), ("percpu_kernel", pk), ("percpu_user", pu)):
            if values:
                usage[key] = values
    usage["kernel"] = kernel
    usage["user"] = user
    throttling = _throttling(_keyed(os.path.join(cpu, "cpu.stat")) if cpu else {}, 1)
    return {"usage": usage, "throttling": throttling}


def _throttling(stat: dict[str, int], scale: int) -> dict[str, int]:
    out = {"periods": stat.get("nr_periods", 0),
           "throttledPeriods": stat.get("nr_throttled", 0),
           "throttledTime": stat.get("throttled_time", stat.get("throttled_usec", 0) * scale)}
    return {k: v for k, v in out.items() if v}


def _cpu_v2(v2: str) -> dict[str, Any]:
    stat = _keyed(os.path.join(v2, "cpu.stat"))
    usage: dict[str, Any] = {}
    if stat.get("usage_usec"):
        usage["total"] = stat["usage_usec"] * 1000
    usage["kernel"] = stat.get("system_usec", 0) * 1000
    usage["user"] = stat.get("user_usec", 0) * 1000
    return {"usage": usage, "throttling": _throttling(stat, 1000)}


_CPUSET_NUMBERS = ("cpu_exclusive", "mem_hardwall", "mem_exclusive", "memory_migrate",
                   "memory_spread_page", "memory_spread_slab", "memory_pressure",
                   "sched_load_balance", "sched_relax_domain_level")


def _cpuset_v1(path: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cpus = _list(_text(os.path.join(path, "cpuset.cpus"))) if path else []
    mems = _list(_text(os.path.join(path, "cpuset.mems"))) if path else []
    values = {}
    for name in _CPUSET_NUMBERS:
        text = (_text(os.path.join(path, f"cpuset.{name}")) or "0").strip() if path else "0"
        values[name] = int(text) if text.lstrip("-").isdigit() else 0
    if cpus:
        out["cpus"] = cpus
    out["cpu_exclusive"] = values["cpu_exclusive"]
    if mems:
        out["mems"] = mems
    for name in _CPUSET_NUMBERS[1:]:
        out[name] = values[name]
    return out


def _entry(usage: int, limit: int, max_usage: int, failcnt: int) -> dict[str, int]:
    out = {"limit": limit}
    if usage:
        out["usage"] = usage
    if max_usage:
        out["max"] = max_usage
    out["failcnt"] = failcnt
    return out


def _memory_entry_v1(path: str, module: str) -> dict[str, int]:
    usage = _file_uint(os.path.join(path, f"{module}.usage_in_bytes"))
    if usage is None:
        return _entry(0, 0, 0, 0)
    return _entry(usage, _file_uint(os.path.join(path, f"{module}.limit_in_bytes")) or 0,
                  _file_uint(os.path.join(path, f"{module}.max_usage_in_bytes")) or 0,
                  _file_uint(os.path.join(path, f"{module}.failcnt")) or 0)


def _memory(raw: dict[str, int], cache_key: str, entries: list[dict[str, int]]
            ) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if raw.get(cache_key):
        out["cache"] = raw[cache_key]
    for key, entry in zip(("usage", "swap", "kernel", "kernelTCP"), entries):
        out[key] = entry
    if raw:
        out["raw"] = dict(sorted(raw.items()))
    return out


def _memory_v1(path: str) -> dict[str, Any]:
    return _memory(_keyed(os.path.join(path, "memory.stat")), "cache",
                   [_memory_entry_v1(path, m)
                    for m in ("memory", "memory.memsw", "memory.kmem", "memory.kmem.tcp")])


def _memory_v2(v2: str) -> dict[str, Any]:
    raw = _keyed(os.path.join(v2, "memory.stat"))
    usage = _file_uint(os.path.join(v2, "memory.current"))
    if usage is None:
        return {}
    limit = _file_uint(os.path.join(v2, "memory.max")) or 0
    swap = _file_uint(os.path.join(v2, "memory.swap.current"))
    swap_limit = _file_uint(os.path.join(v2, "memory.swap.max")) or 0 if swap is not None else 0
    # as v1 reports it: memory+swap (runc's fs2 does the same sums)
    swap_usage = (swap or 0) + usage
    if swap is not None and swap_limit != MAX:
        swap_limit = (swap_limit + limit) & MAX
    zero = _entry(0, 0, 0, 0)
    return _memory(raw, "file", [_entry(usage, limit, 0, 0), _entry(swap_usage, swap_limit,
                                                                      0, 0), zero, zero])


def _pids(path: str, v2: bool) -> dict[str, int]:
    current = _file_uint(os.path.join(path, "pids.current"))
    limit = _file_uint(os.path.join(path, "pids.max"))
    if current is None and v2:
        current = len((_text(os.path.join(path, "cgroup.procs")) or "").splitlines())
        limit = 0
    out = {}
    if current:
        out["current"] = current
    if limit and limit != MAX:
        out["limit"] = limit
    return out


#: the v1 blkio tables: (runc's key, file stem); the first family whose
#: file exists is read (BFQ, then CFQ, then the throttle policy's)
_BLKIO_V1 = (
    ("blkio.bfq.", (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                    ("ioServicedRecursive", "io_serviced_recursive"))),
    ("blkio.", (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                ("ioServicedRecursive", "io_serviced_recursive"),
                ("ioQueueRecursive", "io_queued_recursive"),
                ("ioServiceTimeRecursive", "io_service_time_recursive"),
                ("ioWaitTimeRecursive", "io_wait_time_recursive"),
                ("ioMergedRecursive", "io_merged_recursive"),
                ("ioTimeRecursive", "time_recursive"),
                ("sectorsRecursive", "sectors_recursive"))),
    ("blkio.throttle.", (("ioServiceBytesRecursive", "io_service_bytes_recursive"),
                         ("ioServicedRecursive", "io_serviced_recursive"))))


def _blkio_entry(major: int, minor: int, op: str, value: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, v in (("major", major), ("minor", minor), ("op", op), ("value", value)):
        if v:
            out[key] = v
    return out


def _blkio_v1(path: str) -> dict[str, Any]:
    for prefix, tables in _BLKIO_V1:
        if _text(os.path.join(path, prefix + tables[0][1])) is None:
            continue
        out: dict[str, Any] = {}
        for key, stem in tables:
            entries = []
            for line in (_text(os.path.join(path, prefix + stem)) or "").splitlines():
                cols = line.split()
                dev = cols[0].split(":") if cols else []
                if len(dev) != 2 or not all(d.isdigit() for d in dev) or len(cols) not in (2, 3):
                    continue            # "Total N": the sum runc skips too
                op = cols[1] if len(cols) == 3 else ""
                value = _uint(cols[-1]) or 0
                entries.append(_blkio_entry(int(dev[0]), int(dev[1]), op, value))
            if entries:
                out[key] = entries
        return out
    return {}


def _blkio_v2(v2: str) -> dict[str, Any]:
    served: list[dict[str, Any]] = []
    count: list[dict[str, Any]] = []
    for line in (_text(os.path.join(v2, "io.stat")) or "").splitlines():
        cols = line.split()
        dev = cols[0].split(":") if cols else []
        if len(dev) != 2 or not all(d.isdigit() for d in dev):
            continue
        for item in cols[1:]:
            name, _, value = item.partition("=")
            table = {"rbytes": served, "wbytes": served, "rios": count, "wios": count}.get(name)
            if table is None or not value.isdigit():
                continue
            table.append(_blkio_entry(int(dev[0]), int(dev[1]),
                                      "Read" if name[0] == "r" else "Write", int(value)))
    out: dict[str, Any] = {}
    if served:
        out["ioServiceBytesRecursive"] = served
    if count:
        out["ioServicedRecursive"] = count
    return out


def _hugetlb(path: str, v2: bool) -> dict[str, dict[str, int]]:
    try:
        names = os.listdir(path)
    except OSError:
        return {}
    suffix = ".current" if v2 else ".usage_in_bytes"
    out: dict[str, dict[str, int]] = {}
    for name in sorted(names):
        if not (name.startswith("hugetlb.") and name.endswith(suffix)):
            continue
        size = name[len("hugetlb."):-len(suffix)]
        if "." in size:                 # hugetlb.2MB.rsvd.current
            continue
        usage = _file_uint(os.path.join(path, name)) or 0
        if v2:
            peak = 0
            failcnt = _keyed(os.path.join(path, f"hugetlb.{size}.events")).get("max", 0)
        else:
            peak = _file_uint(os.path.join(path, f"hugetlb.{size}.max_usage_in_bytes")) or 0
            failcnt = _file_uint(os.path.join(path, f"hugetlb.{size}.failcnt")) or 0
        entry: dict[str, int] = {}
        if usage:
            entry["usage"] = usage
        if peak:
            entry["max"] = peak
        entry["failcnt"] = failcnt
        out[size] = entry
    return out


def stats(dirs: dict[str, str], v2: str) -> dict[str, Any]:
    """runc's Stats of a container whose v1 directories are DIRS (controller
    -> directory) and whose cgroup2 directory is V2."""
    def v1(ctrl: str) -> str | None:
        path = dirs.get(ctrl)
        return path if path and os.path.isdir(path) else None
    data: dict[str, Any] = {}
    acct, cpu = v1("cpuacct"), v1("cpu")
    data["cpu"] = _cpu_v1(acct, cpu) if acct or cpu or not v2 else _cpu_v2(v2)
    data["cpuset"] = _cpuset_v1(v1("cpuset"))
    mem = v1("memory")
    data["memory"] = _memory_v1(mem) if mem else (_memory_v2(v2) if v2 else {})
    if data["memory"] == {}:
        zero = _entry(0, 0, 0, 0)
        data["memory"] = {"usage": zero, "swap": zero, "kernel": zero, "kernelTCP": zero}
    pids = v1("pids")
    data["pids"] = _pids(pids, False) if pids else (_pids(v2, True) if v2 else {})
    blk = v1("blkio")
    data["blkio"] = _blkio_v1(blk) if blk else (_blkio_v2(v2) if v2 else {})
    huge = v1("hugetlb")
    data["hugetlb"] = _hugetlb(huge, False) if huge else (_hugetlb(v2, True) if v2 else {})
    data["intel_rdt"] = {}
    data["network_interfaces"] = None
    return data


# --- OOM notifications ---------------------------------------------------------------------

class OomWatch:
    """A descriptor that becomes readable when the container's memory cgroup
    may have OOM-killed something; fired() says whether it did."""

    def __init__(self, dirs: dict[str, str], v2: str) -> None:
        self.fd = -1
        self.v2_events = ""
        self.count = 0
        self.kind = ""
        self.mem = ""
        mem = dirs.get("memory")
        if mem and os.path.isdir(mem):
            self._v1(mem)
        elif v2 and os.path.exists(os.path.join(v2, "memory.events")):
            self.v2_events = os.path.join(v2, "memory.events")
            self.fd = os.open(self.v2_events, os.O_RDONLY | os.O_CLOEXEC)
            self.count = self._oom_kills()
            self.kind = "v2"

    def _v1(self, mem: str) -> None:
        control = os.open(os.path.join(mem, "memory.oom_control"), os.O_RDONLY | os.O_CLOEXEC)
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        try:
            with open(os.path.join(mem, "cgroup.event_control"), "w") as f:
                f.write(f"{efd} {control}")
        except OSError:
            os.close(efd)
            raise
        finally:
            os.close(control)
        self.fd = efd
        self.kind = "v1"
        self.mem = mem

    def _oom_kills(self) -> int:
        try:
            data = os.pread(self.fd, 4096, 0).decode()
        except OSError:
            return self.count
        for line in data.splitlines():
            name, _, value = line.partition(" ")
            if name == "oom_kill" and value.strip().isdigit():
                return int(value)
        return self.count

    def events(self) -> int:
        """POLLIN for an eventfd, POLLPRI for a kernfs file."""
        import select
        return select.POLLIN if self.kind == "v1" else select.POLLPRI

    def fired(self) -> bool:
        """Called once the descriptor is ready: whether an OOM happened."""
        if self.kind == "v1":
            try:
                os.eventfd_read(self.fd)
            except OSError:
                return False
            # the eventfd also fires when the cgroup is removed
            return os.path.exists(os.path.join(self.mem, "memory.oom_control"))
        now = self._oom_kills()
        grew = now > self.count
        self.count = now
        return grew

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


# --- the command ---------------------------------------------------------------------------

def duration(text: str) -> float:
    """Go's time.ParseDuration, as runc reads --interval: "5s", "1m30s",
    "1.5h", "500ms", "100us"; seconds."""
    import re
    from ..errors import JailError
    units = {"ns": 1e-9, "us": 1e-6, "\u00b5s": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
             "h": 3600.0}
    if text == "0":
        return 0.0
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise JailError(f"--interval {text}: not a duration (5s, 1m30s, 500ms)")
    return sum(float(n) * units[u] for n, u in parts)


def events(root: str, cid: str, once: bool, interval_text: str) -> int:
    """runc's events: a "stats" line once (ONCE: --stats) or every
    interval, and an "oom" line when the container's memory cgroup kills;
    the stream ends when the container stops.  The command's status."""
    import json
    import select
    import sys
    import time
    from ..errors import JailError
    from ..state import registry
    from . import store
    interval = duration(interval_text)
    if interval <= 0:
        raise JailError("duration interval must be greater than 0")
    st = store.read(root, cid)
    if store.status(root, st) == "stopped":
        raise JailError(f"container with id {cid} is not running")

    def emit(kind: str, data: object = None) -> bool:
        event: dict[str, object] = {"type": kind, "id": cid}
        if data is not None:
            event["data"] = data
        sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
        sys.stdout.flush()
        return not getattr(sys.stdout, "error", 0)
    if once:
        emit("stats", stats(st.cgroup_dirs, st.v2cgroup))
        return 0
    try:
        pidfd = os.pidfd_open(st.pid)
    except OSError:
        raise JailError(f"container with id {cid} is not running") from None
    watch = OomWatch(st.cgroup_dirs, st.v2cgroup)
    try:
        if not registry.pid_alive(st.pid, st.starttime):
            raise JailError(f"container with id {cid} is not running")
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if watch.fd >= 0:
            poller.register(watch.fd, watch.events())
        due = time.monotonic() + interval
        while True:
            ready = {fd for fd, _ in poller.poll(max(0.0, due - time.monotonic()) * 1000)}
            if watch.fd in ready and watch.fired() and not emit("oom"):
                return 1
            if pidfd in ready:
                return 0            # the container's process is gone: stopped
            if time.monotonic() >= due:
                due += interval
                if not emit("stats", stats(st.cgroup_dirs, st.v2cgroup)):
                    return 1
    finally:
        watch.close()
        os.close(pidfd)
