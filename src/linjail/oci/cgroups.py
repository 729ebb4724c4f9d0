"""linux.cgroupsPath and linux.resources: the container's cgroups beside the jail's own.

Every jail has its cgroup2 directory (linjail/JID: its identity, `jailctl
remove`, the freezer of pause/resume).  An OCI container also has what its
caller names in linux.cgroupsPath, because the caller reads its statistics
there (containerd, podman, Kubernetes' cAdvisor): on a host with v1
hierarchies (these hybrid hosts) the container's processes join
<hierarchy>/<cgroupsPath> in every v1 hierarchy the kernel mounts, as runc
does, and linux.resources are written there.  An absolute cgroupsPath is
relative to each hierarchy's root, a relative one to the cgroup of the
runtime itself (runc's rule); without one the path is
/linjail-oci/<id>~<8 hex digits of --root's path> (ids are unique per root).

  plan(resources)  config -> [(controller, file, value)], validated: what
                   this host cannot enforce is refused in one line
  Cgroups          the directories: create (cpuset's cpus and mems copied
                   down the path), write, join (the launcher moves the first
                   process before it runs anything), update, remove (every
                   directory it made, deepest first)
  freeze           pause/resume: cgroup2's core cgroup.freeze (Linux 5.2) in
                   the jail's own directory, which every cgroup2 directory
                   has whatever controllers are enabled (hybrid hosts too)

On a cgroup2-only host the controllers live in the jail's own directory
(rctl's layout); cgroupsPath is not a second place there (a process is in
one cgroup2 directory), and the limits go to the jail's directory.  Per
controller: a v1 hierarchy the kernel mounts takes the v1 writes (plan);
otherwise cgroup2 takes the v2 ones (plan_v2) when its root offers the
controller (cglayout.discover): create() enables it for the jails' subtree
(cglayout.enable_v2, as rctl does), join() finds it listed in the jail's
cgroup.controllers and writes there before the first process runs anything.
linux.resources.unified (cgroup2 file -> value) is written as given, for
files of controllers enabled that way only.
"""
from __future__ import annotations

import os
import time

from ..errors import JailError
from .config import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..confine.cglayout import Layout

#: the v1 hierarchies a container joins, when the kernel mounts them
HIERARCHIES = ("memory", "pids", "cpu", "cpuacct", "cpuset", "blkio", "devices", "freezer",
               "hugetlb", "net_cls", "net_prio", "perf_event")
#: the devices every jail has (config.JAIL_DEVICES), and its ptys (136:*): always
#: allowed after the config's rules, as runc appends its own
JAIL_DEVICE_RULES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                     "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm")    # = devices.JAIL_DEVICE_RULES
UNLIMITED = "-1"
#: where a container without linux.cgroupsPath goes, in each v1 hierarchy
DEFAULT_PARENT = "/linjail-oci"

Write = tuple[str, str, str]        # (controller, file, value)


def _int(res: dict[str, Any], key: str, where: str, low: int | None = None) -> int | None:
    value = res.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ConfigError(f"{where}.{key}", "not an integer")
    if low is not None and value < low:
        raise ConfigError(f"{where}.{key}", f"{value}: below {low}")
    return value


def _section(res: dict[str, Any], key: str) -> dict[str, Any]:
    value = res.get(key) or {}
    if not isinstance(value, dict):
        raise ConfigError(f"linux.resources.{key}", "not an object")
    return value


def plan(res: dict[str, Any]) -> list[Write]:
    """The v1 writes linux.resources asks for, in the order they must be made."""
    where = "linux.resources"
    for key in ("hugepageLimits", "network", "rdma"):
        if res.get(key) not in (None, {}, []):
            raise ConfigError(f"{where}.{key}", "not supported by linjail-oci")
    out: list[Write] = []
    out += _memory(_section(res, "memory"), f"{where}.memory")
    pids = _section(res, "pids")
    limit = _int(pids, "limit", f"{where}.pids")
    if limit is not None:
        out.append(("pids", "pids.max", "max" if limit <= 0 else str(limit)))
    out += _cpu(_section(res, "cpu"), f"{where}.cpu")
    out += _blkio(_section(res, "blockIO"), f"{where}.blockIO")
    out += _devices(res.get("devices"), f"{where}.devices")
    return out


def _memory(mem: dict[str, Any], where: str) -> list[Write]:
    out: list[Write] = []
    limit = _int(mem, "limit", where)
    swap = _int(mem, "swap", where)
    if swap is not None:
        # memsw is memory+swap and may never be below the memory limit:
        # opened up first, then the limit, then its own value
        out.append(("memory", "memory.memsw.limit_in_bytes", UNLIMITED))
    if limit is not None:
        out.append(("memory", "memory.limit_in_bytes", str(limit)))
    if swap is not None:
        out.append(("memory", "memory.memsw.limit_in_bytes", str(swap)))
    if mem.get("kernel") is not None:
        # Linux 6.x takes the write and enforces nothing (kmem accounting is
        # part of the memory limit since 5.x): it would not hold
        raise ConfigError(f"{where}.kernel", "kernel memory limits are no longer enforced "
                          "by Linux (they count in memory.limit)")
    for key, name in (("reservation", "memory.soft_limit_in_bytes"),
                      ("kernelTCP", "memory.kmem.tcp.limit_in_bytes")):
        value = _int(mem, key, where)
        if value is not None:
            out.append(("memory", name, str(value)))
    swappiness = _int(mem, "swappiness", where, 0)
    if swappiness is not None:
        if swappiness > 100:
            raise ConfigError(f"{where}.swappiness", f"{swappiness}: above 100")
        out.append(("memory", "memory.swappiness", str(swappiness)))
    if mem.get("disableOOMKiller"):
        out.append(("memory", "memory.oom_control", "1"))
    if mem.get("useHierarchy") is False:
        raise ConfigError(f"{where}.useHierarchy", "false: this kernel is always hierarchical")
    return out


def _cpu(cpu: dict[str, Any], where: str) -> list[Write]:
    out: list[Write] = []
    for key, name in (("shares", "cpu.shares"), ("period", "cpu.cfs_period_us"),
                      ("quota", "cpu.cfs_quota_us"), ("burst", "cpu.cfs_burst_us"),
                      ("realtimePeriod", "cpu.rt_period_us"),
                      ("realtimeRuntime", "cpu.rt_runtime_us"), ("idle", "cpu.idle")):
        value = _int(cpu, key, where)
        if value is not None:
            out.append(("cpu", name, str(value)))
    for key, name in (("cpus", "cpuset.cpus"), ("mems", "cpuset.mems")):
        value = cpu.get(key)
        if value:
            if not isinstance(value, str):
                raise ConfigError(f"{where}.{key}", "not a string")
            out.append(("cpuset", name, value))
    return out


def _blkio(blk: dict[str, Any], where: str) -> list[Write]:
    out: list[Write] = []
    for key in ("weight", "leafWeight", "weightDevice"):
        if blk.get(key) not in (None, [], 0):
            raise ConfigError(f"{where}.{key}", "I/O weights are not supported by linjail-oci "
                              "(this host's blkio has no proportional weights)")
    for key, name in (("throttleReadBpsDevice", "blkio.throttle.read_bps_device"),
                      ("throttleWriteBpsDevice", "blkio.throttle.write_bps_device"),
                      ("throttleReadIOPSDevice", "blkio.throttle.read_iops_device"),
                      ("throttleWriteIOPSDevice", "blkio.throttle.write_iops_device")):
        for i, dev in enumerate(blk.get(key) or []):
            at = f"{where}.{key}[{i}]"
            if not isinstance(dev, dict):
                raise ConfigError(at, "not an object")
            major, minor = _int(dev, "major", at, 0), _int(dev, "minor", at, 0)
            rate = _int(dev, "rate", at, 0)
            if major is None or minor is None or rate is None:
                raise ConfigError(at, "major, minor and rate are required")
            out.append(("blkio", name, f"{major}:{minor} {rate}"))
    return out


def _devices(rules: Any, where: str) -> list[Write]:
    """The device rules in order, after a deny of everything, then the
    jail's own devices, as runc appends its defaults (the jail's /dev holds
    no other node: allowing more names nodes no jail has).  A rule of the
    config denying one of the jail's devices after its last "a" rule holds:
    the jail's rule then leaves out what it denies (c 1:3 rw denied: /dev/null
    no longer opens), all but mknod ("m"), which linjail itself needs for the
    nodes of the jail's /dev after the process joined its cgroups (the
    jail's processes make none: CAP_MKNOD is never kept)."""
    from ..confine import devices
    if rules is None:
        return []
    if not isinstance(rules, list):
        raise ConfigError(where, "not a list")
    out: list[Write] = [("devices", "devices.deny", "a")]
    denied: list[tuple[str, int, int, str, str]] = []      # since the last "a" rule
    for i, rule in enumerate(rules):
        at = f"{where}[{i}]"
        if not isinstance(rule, dict):
            raise ConfigError(at, "not an object")
        kind = rule.get("type") or "a"
        access = rule.get("access") or "rwm"
        if kind not in ("a", "b", "c") or not isinstance(access, str) or \
                not access or set(access) - set("rwm"):
            raise ConfigError(at, "type must be a, b or c and access of r, w, m")
        major, minor = _int(rule, "major", at, -1), _int(rule, "minor", at, -1)
        for number in (major, minor):
            if number is not None and number > devices.MAX_NUMBER:
                raise ConfigError(at, f"{number}: not a device number")
        spec = "a" if kind == "a" else \
            f"{kind} {'*' if major in (None, -1) else major}:" \
            f"{'*' if minor in (None, -1) else minor} {access}"
        allow = bool(rule.get("allow"))
        out.append(("devices", "devices.allow" if allow else "devices.deny", spec))
        if kind == "a":
            denied = []
        elif not allow and kind == "c":
            denied.append((spec, -1 if major is None else major,
                           -1 if minor is None else minor, access, at))
    for rule in JAIL_DEVICE_RULES:
        _, numbers, access = rule.split(" ")
        major, minor = (-1 if n == "*" else int(n) for n in numbers.split(":"))
        for spec, dmajor, dminor, daccess, at in denied:
            if dmajor not in (-1, major) or -1 not in (dminor, minor) and dminor != minor:
                continue
            if minor == -1 and dminor != -1:
                raise ConfigError(at, f"{spec}: a part of the jail's devices "
                                  f"{rule.rsplit(' ', 1)[0]} cannot be denied")
            access = "".join(a for a in access if a == "m" or a not in daccess)
        out.append(("devices", "devices.allow", f"c {numbers} {access}"))
    return out


def device_rules(writes: list[Write]) -> list[tuple[bool, str]]:
    """The devices writes of WRITES as (allow, v1 line): what the cgroup2
    device program is made of (confine/devices.py)."""
    return [(name == "devices.allow", value) for ctrl, name, value in writes
            if ctrl == "devices"]


# --- cgroup2 ---------------------------------------------------------------------------------

#: the v2 controller a v1 hierarchy's writes become ("" : none)
V2_OF_V1 = {"memory": "memory", "pids": "pids", "cpu": "cpu", "cpuset": "cpuset",
            "blkio": "io", "devices": ""}


def cpu_weight(shares: int) -> int:
    """cgroup v1 cpu.shares [2, 262144] -> cgroup2 cpu.weight [1, 10000], as
    runc (>= 1.3.2) converts: a quadratic in log2(shares), so the defaults
    1024 -> 100 and both ends map onto each other; 0 means unset."""
    import math
    if shares <= 0:
        return 0
    if shares <= 2:
        return 1
    if shares >= 262144:
        return 10000
    log = math.log2(shares)
    return min(10000, math.ceil(10 ** ((log * log + 125 * log) / 612 - 7 / 34)))


def _max_or(value: int) -> str:
    return "max" if value < 0 else str(value)


def plan_v2(res: dict[str, Any], controllers: set[str]) -> list[Write]:
    """The cgroup2 writes of linux.resources for the v2 CONTROLLERS (those
    without a v1 hierarchy here), then linux.resources.unified's."""
    where = "linux.resources"
    out: list[Write] = []
    if "memory" in controllers:
        out += _memory_v2(_section(res, "memory"), f"{where}.memory")
    pids = _int(_section(res, "pids"), "limit", f"{where}.pids")
    if "pids" in controllers and pids is not None:
        out.append(("pids", "pids.max", "max" if pids <= 0 else str(pids)))
    cpu = _section(res, "cpu")
    if "cpu" in controllers:
        out += _cpu_v2(cpu, f"{where}.cpu")
    if "cpuset" in controllers:
        out += [("cpuset", name, value) for c, name, value in _cpu(cpu, f"{where}.cpu")
                if c == "cpuset"]
    if "io" in controllers:
        out += [("io", "io.max", f"{dev} {key}={'max' if rate == '0' else rate}")
                for _, name, value in _blkio(_section(res, "blockIO"), f"{where}.blockIO")
                for dev, rate in [value.split(" ")]
                for key in [{"read_bps_device": "rbps", "write_bps_device": "wbps",
                             "read_iops_device": "riops",
                             "write_iops_device": "wiops"}[name.split(".")[-1]]]]
    return out


def _memory_v2(mem: dict[str, Any], where: str) -> list[Write]:
    out: list[Write] = []
    limit = _int(mem, "limit", where)
    swap = _int(mem, "swap", where)
    if limit is not None:
        out.append(("memory", "memory.max", _max_or(limit)))
    if swap is not None:
        # OCI's swap is memory+swap (v1's memsw); memory.swap.max is swap alone
        if swap < 0:
            out.append(("memory", "memory.swap.max", "max"))
        elif limit is None or limit <= 0:
            raise ConfigError(f"{where}.swap", "needs memory.limit on cgroup2 "
                              "(swap is memory+swap)")
        elif swap < limit:
            raise ConfigError(f"{where}.swap", f"{swap}: below memory.limit ({limit})")
        else:
            out.append(("memory", "memory.swap.max", str(swap - limit)))
    reservation = _int(mem, "reservation", where)
    if reservation is not None:
        out.append(("memory", "memory.low", _max_or(reservation)))
    for key in ("kernel", "kernelTCP", "swappiness"):
        if mem.get(key) is not None:
            raise ConfigError(f"{where}.{key}", "has no cgroup2 equivalent")
    if mem.get("disableOOMKiller"):
        raise ConfigError(f"{where}.disableOOMKiller", "has no cgroup2 equivalent")
    if mem.get("useHierarchy") is False:
        raise ConfigError(f"{where}.useHierarchy", "false: this kernel is always hierarchical")
    return out


def _cpu_v2(cpu: dict[str, Any], where: str) -> list[Write]:
    out: list[Write] = []
    shares = _int(cpu, "shares", where, 0)
    if shares:
        out.append(("cpu", "cpu.weight", str(cpu_weight(shares))))
    quota, period = _int(cpu, "quota", where), _int(cpu, "period", where, 1)
    if quota is not None or period is not None:
        shown = "max" if quota is None or quota < 0 else str(quota)
        out.append(("cpu", "cpu.max", f"{shown} {period or 100000}"))
    burst = _int(cpu, "burst", where, 0)
    if burst is not None:
        out.append(("cpu", "cpu.max.burst", str(burst)))
    idle = _int(cpu, "idle", where)
    if idle is not None:
        out.append(("cpu", "cpu.idle", str(idle)))
    for key in ("realtimePeriod", "realtimeRuntime"):
        if cpu.get(key):
            raise ConfigError(f"{where}.{key}", "has no cgroup2 equivalent")
    return out


def unified(res: dict[str, Any], enabled: set[str]) -> list[Write]:
    """linux.resources.unified: each cgroup2 file of an ENABLED controller."""
    where = "linux.resources.unified"
    files = res.get("unified") or {}
    if not isinstance(files, dict):
        raise ConfigError(where, "not an object")
    if files and not enabled:
        raise ConfigError(where, "needs cgroup2 controllers (this host has cgroup v1 ones)")
    out: list[Write] = []
    for name, value in files.items():
        ctrl = name.split(".", 1)[0]
        if "/" in name or name in (".", "..") or "\0" in name or "." not in name:
            raise ConfigError(f"{where}.{name}", "not a cgroup2 file name")
        if not isinstance(value, str):
            raise ConfigError(f"{where}.{name}", "not a string")
        if ctrl not in enabled:
            raise ConfigError(f"{where}.{name}", f"the {ctrl} controller is not enabled in "
                              "this host's cgroup2")
        out.append((ctrl, name, value))
    return out


def v2_split(writes: list[Write], v1: dict[str, str], res: dict[str, Any],
             offered: set[str]) -> tuple[list[Write], list[Write]]:
    """(the v1 writes for the hierarchies mounted in V1, the cgroup2 writes
    for the rest); a controller neither offers: one line."""
    needed: set[str] = set()
    for ctrl, name, _ in writes:
        if ctrl in v1:
            continue
        if ctrl == "devices":
            # cgroup2's device controller is an eBPF program (Cgroups.join)
            continue
        v2 = V2_OF_V1.get(ctrl, "")
        if not v2 or v2 not in offered:
            raise ConfigError("linux.resources", f"{name}: the {ctrl} cgroup controller "
                              "is not available on this host")
        needed.add(v2)
    v2writes = plan_v2(res, needed) if needed else []
    # unified: the controllers cgroup2 offers and no v1 hierarchy holds
    return [w for w in writes if w[0] in v1], v2writes + unified(
        res, {c for c in offered if c not in v1 and c not in ("blkio",)})


def write_v2(path: str, writes: list[Write]) -> None:
    """The cgroup2 WRITES into the jail's directory PATH, each controller
    listed in its cgroup.controllers (enabled by the parent) first."""
    from ..confine.cglayout import controllers
    enabled = controllers(path)
    for ctrl, name, _ in writes:
        if ctrl not in enabled:
            raise JailError(f"{os.path.join(path, name)}: the {ctrl} controller is not "
                            "enabled in this cgroup")
    for ctrl, name, value in writes:
        write_value(os.path.join(path, name), value)


def v2_of(pid: int, v2root: str) -> str:
    """PID's cgroup2 directory (the 0:: line of /proc/PID/cgroup)."""
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            if line.startswith("0::"):
                return os.path.join(v2root, line[3:].strip().lstrip("/"))
    raise JailError(f"/proc/{pid}/cgroup: no cgroup2 line")


# --- the directories -----------------------------------------------------------------------

def _v1_mounts() -> dict[str, str]:
    """controller -> the mount point of its v1 hierarchy (kernel/mountinfo.py)."""
    from ..kernel import mountinfo
    out: dict[str, str] = {}
    for m in mountinfo.read():
        if m.fstype == "cgroup":
            for opt in m.super_options.split(","):
                if opt in HIERARCHIES and opt not in out:
                    out[opt] = m.point
    return out


def _own(controller: str) -> str:
    """This process's cgroup in the v1 hierarchy of CONTROLLER."""
    with open("/proc/self/cgroup") as f:
        for line in f:
            _, names, path = line.rstrip("\n").split(":", 2)
            if controller in names.split(","):
                return path
    return "/"


def check_path(path: str) -> None:
    parts = path.split("/")
    if ".." in parts or not path.strip("/") or "\0" in path:
        raise ConfigError("linux.cgroupsPath", f"{path}: not a cgroup below the hierarchy's "
                          "root")


class Cgroups:
    """The container's v1 directories; what it made is recorded for remove()."""

    def __init__(self, path: str, made: list[str] | None = None,
                 dirs: dict[str, str] | None = None) -> None:
        self.path = path
        self.made = made or []
        self.dirs = dirs or {}
        #: what join() writes into the jail's cgroup2 directory, and its mount
        self.v2_writes: list[Write] = []
        self.v2root = ""
        #: the device rules join() attaches to it as an eBPF program
        self.device_rules: list[tuple[bool, str]] = []

    @classmethod
    def for_container(cls, path: str, name: str) -> "Cgroups":
        if path:
            check_path(path)
        else:
            path = f"{DEFAULT_PARENT}/{name}"
        mounts = _v1_mounts()
        dirs: dict[str, str] = {}
        for ctrl, mnt in mounts.items():
            base = path if path.startswith("/") else os.path.join(_own(ctrl), path)
            dirs[ctrl] = os.path.normpath(os.path.join(mnt, base.lstrip("/")))
        return cls(path, [], dirs)

    def _split(self, writes: list[Write], res: dict[str, Any] | None,
               layout: Layout | None) -> tuple[list[Write], list[Write], Layout]:
        from ..confine.cglayout import discover
        lay = layout or discover()
        offered = set(lay.v2_controllers) if lay.v2 else set()
        v1, v2 = v2_split(writes, self.dirs, res or {}, offered)
        return v1, v2, lay

    def create(self, writes: list[Write], res: dict[str, Any] | None = None,
               layout: Layout | None = None) -> None:
        """Make the directories (and write WRITES) before any process joins.
        A controller WRITES needs that this host has neither in a v1
        hierarchy nor in cgroup2: one line.  The cgroup2 ones (RES's) are
        enabled for the jails' subtree now and written by join()."""
        from ..confine.cglayout import enable_v2
        self.device_rules = device_rules(writes)
        writes, self.v2_writes, lay = self._split(writes, res, layout)
        self.v2root = lay.v2
        if self.device_rules and not lay.v2 and "devices" not in self.dirs:
            raise ConfigError("linux.resources.devices", "needs cgroup2 (its device "
                              "programs) or a v1 devices hierarchy: this host has neither")
        for ctrl in sorted({c for c, _, _ in self.v2_writes}):
            enable_v2(lay, ctrl)
        for ctrl, path in self.dirs.items():
            self._mkdirs(ctrl, path)
        for ctrl, name, value in writes:
            write_value(os.path.join(self.dirs[ctrl], name), value)

    def _mkdirs(self, ctrl: str, path: str) -> None:
        missing = []
        p = path
        while not os.path.isdir(p):
            missing.append(p)
            p = os.path.dirname(p)
        for d in reversed(missing):
            try:
                os.mkdir(d, 0o755)
            except FileExistsError:
                continue
            self.made.append(d)
            if ctrl == "cpuset":
                # a new cpuset has no CPU and no node: its parent's, as runc does
                for name in ("cpuset.cpus", "cpuset.mems"):
                    with open(os.path.join(os.path.dirname(d), name)) as f:
                        write_value(os.path.join(d, name), f.read().strip() or "\n")

    def update(self, writes: list[Write], res: dict[str, Any] | None = None,
               v2dir: str = "", layout: Layout | None = None) -> None:
        writes, v2, _ = self._split(writes, res, layout)
        if v2:
            write_v2(v2dir, v2)
        for ctrl, name, value in writes:
            write_value(os.path.join(self.dirs[ctrl], name), value)

    def join(self, pid: int) -> None:
        for path in self.dirs.values():
            write_value(os.path.join(path, "cgroup.procs"), str(pid))
        if self.v2_writes or self.device_rules and self.v2root:
            # PID is in the jail's cgroup since its birth and runs nothing yet
            v2dir = v2_of(pid, self.v2root)
            if self.v2_writes:
                write_v2(v2dir, self.v2_writes)
            if self.device_rules and self.v2root:
                # on a hybrid host too: both the program and v1's controller hold
                from ..confine import devices
                devices.confine(v2dir, self.device_rules)

    def remove(self, timeout: float = 2.0) -> None:
        """Every directory this container made, deepest first (a process that
        is still exiting can hold one for a moment)."""
        from ..confine.cglayout import remove_dirs
        remove_dirs(sorted(self.made, key=len, reverse=True), timeout)
        if self.path.startswith(DEFAULT_PARENT + "/"):
            # linjail-oci's own parent: the last container out removes it
            for d in self.dirs.values():
                try:
                    os.rmdir(os.path.dirname(d))
                except OSError:
                    pass


def write_value(path: str, value: str, what: str = "") -> None:
    """VALUE into the kernel file PATH (cgroupfs, /proc/sys), no symlink
    followed; a failure is one line naming WHAT (or the path) and the value."""
    shown = f"{what}: {path}" if what else path
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except OSError as err:
        raise JailError(f"{shown}: {os.strerror(err.errno or 0)}") from None
    try:
        os.write(fd, value.encode())
    except OSError as err:
        raise JailError(f"{shown}: {value}: {os.strerror(err.errno or 0)}") from None
    finally:
        os.close(fd)



# --- pause and resume ----------------------------------------------------------------------

def _read(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def frozen(v2cgroup: str) -> bool:
    """Whether the container's cgroup2 directory V2CGROUP is frozen."""
    from .store import frozen as is_frozen
    return is_frozen(v2cgroup)


def freeze(v2cgroup: str, on: bool, timeout: float = 5.0) -> None:
    """Write V2CGROUP's cgroup.freeze and wait until cgroup.events says it holds."""
    path = os.path.join(v2cgroup, "cgroup.freeze")
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, b"1" if on else b"0")
    finally:
        os.close(fd)
    want = f"frozen {int(on)}"
    deadline = time.monotonic() + timeout
    while want not in _read(os.path.join(v2cgroup, "cgroup.events")).splitlines():
        if time.monotonic() > deadline:
            raise OSError(110, f"{path}: the cgroup did not become "
                          f"{'frozen' if on else 'thawed'}")
        time.sleep(0.005)
