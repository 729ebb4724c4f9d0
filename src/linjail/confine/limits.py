"""rctl rules made real: cgroup limits, rlimits, IPC sysctls, devpts max=.

  rules (config/rctl.py) --plan()--> Plan --apply_host / jail_* / update_running--> kernel
                         rctlplan.py         this module

The host side writes the jail's cgroups: memory, pids and cpu limits and io
throttling, each in the hierarchy that has the controller (cglayout.py):
the jail's cgroup2 directory, or `<v1 mount>/linjail/<JID>` which the jail
joins only when a rule needs that controller (a jail without rules never
pays a v1 migration).  The jail side runs in the jail's first process: the
IPC sysctls of its own IPC namespace (written through the host's /proc
before the jail's read-only /proc replaces it), devpts `max=` at mount
time, and rlimits just before the reaper is exec'd (inherited by every
process of the jail; jailed root lacks CAP_SYS_RESOURCE and cannot raise
them).  A rule added to a running jail reaches its processes with
prlimit(2), setns(2) into its IPC namespace, and fspick(2)/fsconfig(2) on
its devpts.
"""
from __future__ import annotations

import os
import resource

from ..config.rctl import SIGNALS, Rule, RuleError
from . import cglayout, rctlwatch
from .rctlplan import CONTROLLER, IO_KEYS, RLIMITS
from .rctlplan import Plan as Plan, plan as plan     # this module's callers name them here

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import JailSpec
    from ..state.registry import JailRecord

CPU_PERIOD = 100000          # µs: the kernel's default CFS period
IPCMNI = 32768               # include/linux/ipc.h: at most this many ids


def check_linux(rule: Rule) -> None:
    """What linjail cannot do of a rule FreeBSD would accept (one line each)."""
    if rule.subject != "jail":
        raise RuleError(0, "only the jail subject is supported on linjail")
    if rule.per not in ("jail", "process"):
        raise RuleError(0, f"per-{rule.per} accounting is not supported; use /jail or /process")
    if rule.per == "process" and rule.resource not in RLIMITS:
        raise RuleError(0, f"{rule.resource}/process is not supported; /process applies to "
                        + ", ".join(RLIMITS))
    if rule.action == "devctl":
        raise RuleError(0, "devctl has no counterpart on Linux (no devd); use log")
    if rule.action in SIGNALS and not SIGNALS[rule.action]:
        raise RuleError(0, f"{rule.action.upper()} does not exist on Linux")
    if rule.action == "deny" and rule.resource == "msgqqueued":
        raise RuleError(0, "msgqqueued has no limit on Linux (msgqsize and nmsgq do)")
    if rule.action == "deny" and rule.resource in RLIMITS and rule.amount is not None \
            and rule.resource == "openfiles" and rule.amount > _nr_open():
        raise RuleError(0, f"openfiles above fs.nr_open ({_nr_open()})")


def check_host(rule: Rule) -> None:
    """The controller a limiting rule needs exists on this host."""
    if rule.action in ("deny", "throttle") and rule.resource in CONTROLLER:
        cglayout.discover().where(CONTROLLER[rule.resource])


def _nr_open() -> int:
    try:
        with open("/proc/sys/fs/nr_open") as f:
            return int(f.read())
    except (OSError, ValueError):
        return 1 << 20


# --- host side: cgroups -------------------------------------------------------------

def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    except OSError as e:
        raise OSError(e.errno, f"{path}: {text.strip()}: {e.strerror}") from None
    finally:
        os.close(fd)


def _max(value: int | None) -> str:
    return "max" if value is None else str(value)


def block_device(path: str) -> tuple[int, int]:
    """The whole disk holding PATH (io.max and blkio refuse partitions)."""
    dev = os.stat(path).st_dev
    major, minor = os.major(dev), os.minor(dev)
    if major == 0:
        raise OSError(19, f"the jail's root {path} is on no block device ({major}:{minor}); "
                      "readbps/writebps/readiops/writeiops need one")
    sysdir = f"/sys/dev/block/{major}:{minor}"
    if os.path.exists(os.path.join(sysdir, "partition")):
        with open(os.path.join(os.path.realpath(sysdir), "..", "dev")) as f:
            major, minor = (int(x) for x in f.read().split(":"))
    return major, minor


class HostLimits:
    """The cgroup side of one jail's plan; apply() may run again on changes."""

    def __init__(self, p: Plan, jid: int, v2_cgroup: str, root: str,
                 layout: cglayout.Layout | None = None) -> None:
        self.plan = p
        self.jid = jid
        self.v2_cgroup = v2_cgroup
        self.root = root
        self.layout = layout or cglayout.discover()
        #: controller -> (kind, directory of the jail's cgroup for it)
        self.dirs: dict[str, tuple[str, str]] = {}

    def check(self) -> None:
        """Every controller the plan needs exists (MissingController names it)."""
        for ctrl in sorted(self.plan.controllers()):
            self.layout.where(ctrl)
        if self.plan.io:
            block_device(self.root)

    def prepare(self) -> None:
        """Create the cgroups and write the limits; no process is moved yet."""
        self.check()
        for ctrl in sorted(self.plan.controllers()):
            kind, base = self.layout.where(ctrl)
            if kind == "v2":
                cglayout.enable_v2(self.layout, ctrl)
                self.dirs[ctrl] = ("v2", self.v2_cgroup)
            else:
                v1name = cglayout.V1_NAME[ctrl]
                path = self.layout.v1_dir(v1name, self.jid)
                os.makedirs(path, exist_ok=True)
                self.dirs[ctrl] = ("v1", path)
        self.write()

    def write(self) -> None:
        p = self.plan
        for ctrl, (kind, path) in self.dirs.items():
            if ctrl == "memory":
                self._memory(kind, path)
            elif ctrl == "pids":
                _write(os.path.join(path, "pids.max"), _max(p.pids))
            elif ctrl == "cpu":
                if kind == "v2":
                    quota = "max" if p.cpu is None else str(p.cpu * CPU_PERIOD // 100)
                    _write(os.path.join(path, "cpu.max"), f"{quota} {CPU_PERIOD}")
                else:
                    _write(os.path.join(path, "cpu.cfs_period_us"), str(CPU_PERIOD))
                    quota = "-1" if p.cpu is None else str(p.cpu * CPU_PERIOD // 100)
                    _write(os.path.join(path, "cpu.cfs_quota_us"), quota)
            elif ctrl == "io":
                self._io(kind, path)

    def _memory(self, kind: str, path: str) -> None:
        p = self.plan
        if kind == "v2":
            _write(os.path.join(path, "memory.max"), _max(p.memory))
            if os.path.exists(os.path.join(path, "memory.swap.max")):
                _write(os.path.join(path, "memory.swap.max"), _max(p.swap))
            elif p.swap is not None:
                raise cglayout.MissingController("memory swap accounting (memory.swap.max)")
            return
        # v1: memsw (memory+swap) must stay >= limit_in_bytes: open it up first
        memsw = os.path.join(path, "memory.memsw.limit_in_bytes")
        has_memsw = os.path.exists(memsw)
        if p.swap is not None and not has_memsw:
            raise cglayout.MissingController("memory swap accounting (memory.memsw.*)")
        if has_memsw:
            _write(memsw, "-1")
        _write(os.path.join(path, "memory.limit_in_bytes"),
               "-1" if p.memory is None else str(p.memory))
        if p.swap is not None:
            _write(memsw, str((p.memory or 0) + p.swap))

    def _io(self, kind: str, path: str) -> None:
        major, minor = block_device(self.root)
        if kind == "v2":
            parts = " ".join(f"{key}={_max(self.plan.io.get(res))}"
                             for res, (key, _) in IO_KEYS.items())
            _write(os.path.join(path, "io.max"), f"{major}:{minor} {parts}")
            return
        for res, (_, name) in IO_KEYS.items():
            _write(os.path.join(path, name), f"{major}:{minor} {self.plan.io.get(res, 0)}")

    def started(self, rec: JailRecord, console_log: str | None) -> None:
        """The jail runs: its watcher, if a rule acts after the fact."""
        from ..state import rctl as store
        if plan(store.for_jail(rec.name, rec.jid)).needs_watcher(console_log):
            rctlwatch.ensure(rec, console_log)

    def join(self, pid: int) -> None:
        """Move PID (the jail's first process, before its command runs) into
        the v1 cgroups; the v2 one is the caller's (cgroup.join)."""
        for kind, path in self.dirs.values():
            if kind == "v1":
                _write(os.path.join(path, "cgroup.procs"), str(pid))

    def join_all(self) -> None:
        """Move every process of a running jail into its v1 cgroups.

        A process that forks while the others move can leave a child behind;
        repeat until the v2 cgroup (the jail's processes) has nobody left out.
        """
        from . import cgroup
        for kind, path in self.dirs.values():
            if kind != "v1":
                continue
            for _ in range(20):
                inside = set(cgroup.pids(path))
                missing = [p for p in cgroup.pids(self.v2_cgroup) if p not in inside]
                if not missing:
                    break
                for pid in missing:
                    try:
                        _write(os.path.join(path, "cgroup.procs"), str(pid))
                    except OSError:
                        pass      # it exited meanwhile


def for_start(spec: JailSpec, rec: JailRecord) -> tuple[JailSpec, HostLimits | None]:
    """The rules of a jail being started: its cgroups are created and
    limited now (the first process joins the v1 ones through join());
    the spec carries the rules to the jail side.  Errors are one line."""
    from ..errors import JailError
    from ..state import rctl as store
    rules = store.for_jail(spec.name, rec.jid)
    if not rules:
        return spec, None
    host = HostLimits(plan(rules), rec.jid, rec.cgroup, spec.path)
    try:
        host.prepare()
    except OSError as e:
        cglayout.release(rec.jid)
        raise JailError(f"rctl: {e.strerror or e}") from None
    return spec.replace(limits=tuple(rules)), host


def join_v1(jid: int) -> None:
    """jexec: the joining process enters the jail's v1 cgroups too."""
    for path in cglayout.v1_dirs(jid):
        _write(os.path.join(path, "cgroup.procs"), "0")


def attach(rec: JailRecord) -> Plan | None:
    """What a process joining a running jail (jexec) takes on besides its
    cgroup2 directory: the jail's v1 cgroups now, and the plan whose
    rlimits the command sets with jail_rlimits() once its descriptors are
    in place (a low openfiles would refuse their moves)."""
    join_v1(rec.jid)
    from ..state import rctl as store
    rules = store.for_jail(rec.name, rec.jid)
    return plan(rules) if rules else None


# --- jail side ----------------------------------------------------------------------

def jail_ipc(p: Plan) -> None:
    """The IPC sysctls of the calling process's (the jail's) IPC namespace.

    Written through the host's /proc/sys, which still shows this process's
    namespaces: the ipc sysctls are per IPC namespace (ipc/ipc_sysctl.c).
    """
    if not p.ipc:
        return
    k = "/proc/sys/kernel/"
    v = p.ipc
    if "nmsgq" in v:
        _write(k + "msgmni", str(min(v["nmsgq"], IPCMNI)))
    if "msgqsize" in v:
        _write(k + "msgmnb", str(min(v["msgqsize"], (1 << 31) - 1)))
    if "nshm" in v:
        _write(k + "shmmni", str(min(v["nshm"], IPCMNI)))
    if "shmsize" in v:
        page = os.sysconf("SC_PAGE_SIZE")
        _write(k + "shmall", str((v["shmsize"] + page - 1) // page))
        _write(k + "shmmax", str(v["shmsize"]))
    if "nsem" in v or "nsemop" in v:
        with open(k + "sem") as f:
            msl, mns, opm, mni = (int(x) for x in f.read().split())
        mns = min(v.get("nsem", mns), (1 << 31) - 1)
        opm = min(v.get("nsemop", opm), (1 << 31) - 1)
        _write(k + "sem", f"{msl} {mns} {opm} {mni}")


def jail_rlimits(p: Plan, pid: int = 0) -> None:
    p.set_rlimits(pid)


# --- a running jail -----------------------------------------------------------------

def update_running(rec: JailRecord, rules: list[Rule]) -> None:
    """Bring a running jail to RULES: cgroups, rlimits, IPC sysctls, devpts."""
    from . import cgroup
    p = plan(rules)
    host = HostLimits(p, rec.jid, rec.cgroup, rec.path)
    host.check()
    # controllers already in use stay (a lifted limit is written as "max")
    for ctrl in ("memory", "pids", "cpu", "io"):
        kind, base = host.layout.where(ctrl) if _available(host.layout, ctrl) else ("", "")
        if not kind:
            continue
        if kind == "v1":
            path = host.layout.v1_dir(cglayout.V1_NAME[ctrl], rec.jid)
            if os.path.isdir(path):
                host.dirs[ctrl] = ("v1", path)
        elif ctrl in _v2_enabled(rec.cgroup):
            host.dirs[ctrl] = ("v2", rec.cgroup)
    missing = p.controllers() - set(host.dirs)
    if missing:
        extra = HostLimits(p.replace(), rec.jid, rec.cgroup, rec.path, host.layout)
        extra.plan = p
        for ctrl in sorted(missing):
            kind, _ = host.layout.where(ctrl)
            if kind == "v2":
                cglayout.enable_v2(host.layout, ctrl)
                host.dirs[ctrl] = ("v2", rec.cgroup)
            else:
                path = host.layout.v1_dir(cglayout.V1_NAME[ctrl], rec.jid)
                os.makedirs(path, exist_ok=True)
                host.dirs[ctrl] = ("v1", path)
    host.write()
    host.join_all()
    _update_rlimits(p, cgroup.pids(rec.cgroup))
    _update_ipc(p, rec.pid, rec.uid_base)
    _update_pty(p, rec.pid)


def _available(layout: cglayout.Layout, ctrl: str) -> bool:
    try:
        layout.where(ctrl)
        return True
    except OSError:
        return False


def _v2_enabled(path: str) -> set[str]:
    return cglayout.controllers(path)


def _update_rlimits(p: Plan, pids: list[int]) -> None:
    for name, res in RLIMITS.items():
        if name in p.rlimits:
            value = (p.rlimits[name], p.rlimits[name])
        else:
            value = resource.getrlimit(res)      # lifted: what a new jail would get
        for pid in pids:
            try:
                current = resource.prlimit(pid, res)
                if name not in p.rlimits and current == value:
                    continue
                resource.prlimit(pid, res, value)
            except (ProcessLookupError, PermissionError):
                pass


def _update_ipc(p: Plan, pid: int, base: int = 0) -> None:
    """The IPC sysctls of a running jail's namespace, written from the host.
    With a user namespace (BASE) only its root may write them (ipc_sysctl.c
    compares the writer's euid): this thread is host uid BASE meanwhile."""
    from ..kernel import libc
    own = os.open("/proc/self/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    theirs = os.open(f"/proc/{pid}/ns/ipc", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(theirs, libc.CLONE_NEWIPC)
        try:
            if base:
                os.seteuid(base)
            jail_ipc(p)
        finally:
            if base:
                os.seteuid(0)
            libc.setns(own, libc.CLONE_NEWIPC)
    finally:
        os.close(own)
        os.close(theirs)


def _update_pty(p: Plan, pid: int) -> None:
    """devpts max= of a running jail, through fspick(2)/fsconfig(2): no
    setns, no path resolved outside the jail's root."""
    from ..kernel import libc
    try:
        root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        pts = libc.openat2(root, "dev/pts", os.O_PATH | os.O_DIRECTORY,
                           libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_SYMLINKS |
                           libc.RESOLVE_NO_MAGICLINKS)
    except OSError:
        os.close(root)
        return        # a jail without linjail's /dev
    try:
        if os.stat(pts).st_dev == os.stat(root).st_dev:
            return    # not a mount: devfs_enable=NO
        # a devpts remount resets every option it is not given
        # (fs/devpts/inode.c parse_mount_options): those of rootfs.mount_dev;
        # without a rule, devpts' own default NR_UNIX98_PTY_MAX
        libc.reconfigure(pts, [("ptmxmode", "0666"), ("mode", "0620"),
                               ("max", str(p.pty_max if p.pty_max is not None else 1 << 20))])
    finally:
        os.close(pts)
        os.close(root)
