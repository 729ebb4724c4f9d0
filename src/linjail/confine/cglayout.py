"""Where each cgroup controller lives on this host: discovered, never assumed.

Three layouts exist in the wild:

- cgroup2 only (most servers today, systemd as PID 1): every controller is
  listed in the v2 root's cgroup.controllers; a subtree gets one only when
  its parent enables it in cgroup.subtree_control (cgroup-v2.rst "Enabling
  and Disabling"), and only a cgroup without processes of its own may
  enable controllers for its children ("no internal processes").
- hybrid (these hosts): v1 hierarchies at /sys/fs/cgroup/<controller>
  (cpu, memory, pids, blkio ...) and a cgroup2 without those controllers at
  /sys/fs/cgroup/unified;
- cgroup v1 only (old hosts): no cgroup2 at all.

/proc/self/mountinfo says which file systems are mounted where (a v1 mount
names its controllers in its super options); the v2 root's
cgroup.controllers says what cgroup2 offers.  A controller bound to a v1
hierarchy never appears in cgroup2 (a controller lives in one hierarchy).

Delegation (systemd.resource-control(5) Delegate=, systemd's
CGROUP_DELEGATION.md): on a host whose PID 1 is systemd, a program may only
manage cgroups below a unit it was delegated.  jail.service carries
`Delegate=yes`; when its cgroup exists and systemd marked it delegated
(the `trusted.delegate` extended attribute, systemd >= 251), linjail's
subtree is `jail.service/linjail`, and the unit's own processes are moved
to the leaf `jail.service/supervisor` when a controller must be enabled
(the name systemd's DelegateSubgroup= uses).  Otherwise the subtree is
`linjail` at the cgroup2 root, as on hosts without systemd.
"""
from __future__ import annotations

import os

from ..kernel.mountinfo import parse as parse_mounts
from ..record import Record, record

#: v1 controllers linjail may use (what rctl's resources need)
V1_CONTROLLERS = ("memory", "pids", "cpu", "cpuacct", "blkio")
#: the v1 name of a v2 controller
V1_NAME = {"memory": "memory", "pids": "pids", "cpu": "cpu", "io": "blkio"}
SUBTREE = "linjail"
DELEGATED_UNIT = "system.slice/jail.service"
SUPERVISOR = "supervisor"


class MissingController(OSError):
    """A controller a rule needs is not available; the message names it."""

    def __init__(self, controller: str, where: str = "") -> None:
        text = f"the {controller} cgroup controller is not available on this host"
        if where:
            text += f" ({where})"
        super().__init__(2, text)
        self.controller = controller


@record()
class Layout(Record):
    v2: str = ""                        # the cgroup2 mount point, "" if none
    v2_controllers: frozenset[str] = frozenset()
    v1: dict[str, str] = {}             # v1 controller -> its hierarchy's mount point
    base: str = ""                      # linjail's v2 subtree
    top: str = ""                       # the highest v2 cgroup linjail may write to

    def where(self, controller: str) -> tuple[str, str]:
        """("v2", base) or ("v1", mount point) for a v2 controller name."""
        if controller in self.v2_controllers and self.v2:
            return "v2", self.base
        v1name = V1_NAME[controller]
        if v1name in self.v1:
            return "v1", self.v1[v1name]
        raise MissingController(controller if controller == v1name
                                else f"{controller} (v1: {v1name})")

    def v1_dir(self, controller: str, jid: int) -> str:
        return os.path.join(self.v1[controller], SUBTREE, str(jid))


def parse_mountinfo(text: str) -> tuple[str, dict[str, str]]:
    """(cgroup2 mount point or "", {v1 controller: mount point})."""
    v2 = ""
    v1: dict[str, str] = {}
    for m in parse_mounts(text):
        if m.fstype == "cgroup2" and not v2:
            v2 = m.point
        elif m.fstype == "cgroup":
            for opt in m.super_options.split(","):
                if opt in V1_CONTROLLERS and opt not in v1:
                    v1[opt] = m.point
    return v2, v1


def _read(path: str) -> str:
    with open(path) as f:
        return f.read()


def controllers(path: str) -> set[str]:
    try:
        return set(_read(os.path.join(path, "cgroup.controllers")).split())
    except OSError:
        return set()


def _delegated(path: str) -> bool:
    try:
        return os.getxattr(path, "trusted.delegate") == b"1"
    except OSError:
        return False


def v2_base(v2: str, systemd: bool) -> tuple[str, str]:
    """(linjail's subtree, the highest cgroup it may write to)."""
    if systemd:
        unit = os.path.join(v2, DELEGATED_UNIT)
        if os.path.isdir(unit) and _delegated(unit):
            return os.path.join(unit, SUBTREE), unit
    return os.path.join(v2, SUBTREE), v2


def systemd_booted(run: str = "/run/systemd/system") -> bool:
    """sd_booted(3): systemd is PID 1 when this directory exists."""
    return os.path.isdir(run)


_LAYOUT: Layout | None = None


def discover(mountinfo: str = "/proc/self/mountinfo", systemd: bool | None = None) -> Layout:
    """The host's layout (cached for the process when read from the host)."""
    global _LAYOUT
    host = mountinfo == "/proc/self/mountinfo" and systemd is None
    if host and _LAYOUT is not None:
        return _LAYOUT
    v2, v1 = parse_mountinfo(_read(mountinfo))
    base = top = ""
    offered: set[str] = set()
    if v2:
        base, top = v2_base(v2, systemd_booted() if systemd is None else systemd)
        offered = controllers(v2)
    layout = Layout(v2=v2, v2_controllers=frozenset(offered), v1=v1, base=base, top=top)
    if host:
        _LAYOUT = layout
    return layout


def _write(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def enable_v2(layout: Layout, controller: str) -> None:
    """Make CONTROLLER available to the jails' cgroups (children of base).

    Walks up from base to the first cgroup that has it, then enables it
    downwards in each subtree_control; never above `top`.
    """
    base = layout.base
    os.makedirs(base, exist_ok=True)
    if controller in _subtree(base):
        return
    chain = []
    path = base
    while controller not in controllers(path):
        if path == layout.top or len(path) <= len(layout.v2):
            raise MissingController(controller, f"not offered to {path}")
        chain.append(path)
        path = os.path.dirname(path)
    for child in reversed(chain):
        _enable_in(os.path.dirname(child), controller, layout)
    _enable_in(base, controller, layout)


def _subtree(path: str) -> set[str]:
    try:
        return set(_read(os.path.join(path, "cgroup.subtree_control")).split())
    except OSError:
        return set()


def _enable_in(path: str, controller: str, layout: Layout) -> None:
    control = os.path.join(path, "cgroup.subtree_control")
    try:
        _write(control, f"+{controller}")
    except OSError as e:
        if e.errno != 16 or path == layout.v2:       # EBUSY: processes of its own
            raise OSError(e.errno, f"{control}: +{controller}: {e.strerror}") from None
        _evacuate(path)
        _write(control, f"+{controller}")


def _evacuate(path: str) -> None:
    """Move the processes of a delegated unit's cgroup into its supervisor
    leaf, so the unit may enable controllers for linjail's subtree."""
    leaf = os.path.join(path, SUPERVISOR)
    os.makedirs(leaf, exist_ok=True)
    for pid in _read(os.path.join(path, "cgroup.procs")).split():
        try:
            _write(os.path.join(leaf, "cgroup.procs"), pid)
        except ProcessLookupError:
            pass


def v1_paths(jid: int, layout: Layout | None = None) -> list[str]:
    """Where jail JID's v1 cgroups are when it has them: one per hierarchy."""
    lay = layout or discover()
    return list(dict.fromkeys(os.path.join(mnt, SUBTREE, str(jid)) for mnt in lay.v1.values()))


def v1_dirs(jid: int, layout: Layout | None = None) -> list[str]:
    """The v1 cgroups jail JID has (those a rule made it join)."""
    return [path for path in v1_paths(jid, layout) if os.path.isdir(path)]


def release(jid: int, timeout: float = 1.0) -> None:
    """Remove the v1 cgroups of a jail whose processes are gone.

    rmdir can fail with EBUSY for a moment after the last task left (a
    process the OOM killer ended is still exiting): retried up to TIMEOUT,
    since nothing else would come back for it once the JID is free."""
    remove_dirs(v1_dirs(jid), timeout)


def remove_dirs(paths: list[str], timeout: float = 1.0) -> None:
    """rmdir each of PATHS in order, each retried until TIMEOUT (from now)
    while it is busy; what cannot be removed by then is left."""
    import time
    deadline = time.monotonic() + timeout
    for path in paths:
        while True:
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                if time.monotonic() > deadline:
                    break
                time.sleep(0.01)
