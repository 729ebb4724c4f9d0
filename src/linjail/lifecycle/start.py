"""Creating a jail: the ordered steps, and their undo in reverse.

Two processes take part before the jail's own PID 1 runs:

  launcher (host)                         first process (becomes the jail's PID 1)
  ---------------                         ----------------------------------------
  allocate JID (its cgroup is the claim),
  write the "starting" record
  clone3: PID 1 of a new PID ns,  ------> unshare(NS IPC NET); UTS owned by an
  born in the jail's cgroup               empty user ns; sethostname; IPv6
                                          defaults; say "N"
  create veth into the new netns  <------
  host routes, rule; say "n"      ------> bind root (nodev), /dev, /proc, /sys, fstab
                                          unshare(CGROUP); addresses and routes
                                          pivot_root; -U lookup; -l environment
                                          close fds; caps; seccomp
                                          exec the reaper from a sealed memfd
  EOF on the report pipe = exec'd
  record "running"; print JID (-i)
  send 'g' ---------------------------->  reaper forks the command
  read the command's wait status  <-----  reaper reports it

Any failure before 'g' kills the first process and undoes the host steps;
the jail never ran anything.  The launcher is not needed afterwards: the
reaper keeps the jail alive while any process lives in it.

The columns are the tables HOST_STEPS and JAIL_STEPS (run by
lifecycle/plan.py; the mounts are lifecycle/mounts.py's operations);
HOST_STEPS walked backwards is the teardown of every jail (release):
after a failed start, for `jailctl remove`, for the sweep of dead jails.
LINJAIL_DEBUG=1 prints each step as it runs.

With jail.unprivileged_root=1 (the default, issue 11) the clone3 above
makes no PID namespace: the first process first makes the jail's user
namespace (as the range's first uid), the launcher writes its maps and makes
the idmapped trees, and the first process clones the jail's PID 1 into that
namespace (CLONE_PARENT: the launcher's child) and exits; PID 1 goes on
with the steps below and attaches the trees.  confine/userns.py has the
full diagram; the hooks are the steps "user namespace" of both tables.

A Become (the OCI runtime, linjail.oci) replaces the reaper: the first
process itself becomes the jail's PID 1 and its own command.  It is told
when the mounts are made (before pivot_root, host paths still in view) and,
after pivot_root, runs in place of the steps that exec the reaper; closing
the report pipe (its `ready`) is what lets start() return.
"""
from __future__ import annotations

import _signal as signal   # the C module: `signal` would import enum (startup cost)
import errno
import fcntl
import os
import struct
import time

from ..errors import JailError, OpError, as_bytes, os_error
from ..kernel import libc
from ..model import JailSpec, User
from ..kernel import unixsock
from ..record import Record, record
from ..state import registry
from . import confinement, plan
from .plan import Step
from .stdio import Prepared, close_all_but, place, prepare

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Protocol

    from ..confine.limits import HostLimits, Plan
    from ..confine.net import HostNet
    from ..confine.rootfs import Root
    from ..confine.userns import Trees
    from .mounts import RootMount

    class Become(Protocol):
        """What the first process becomes in place of the reaper (start()'s BECOME)."""

        def join(self, pid: int) -> None:
            """(the launcher) Move the first process PID into the cgroups it
            needs beside the jail's own, before it runs anything."""

        def prepared(self, pid: int) -> None:
            """(the launcher) The jail's namespaces exist, its first process
            PID waits before pivot_root (OCI's createRuntime hooks)."""

        def before_pivot(self, root: Root) -> list[int]:
            """Every mount is made, pivot_root comes next: the last look at
            the host's paths.  Returns descriptors to keep past pivot_root."""

        def become(self, kept: list[int], confine: confinement.Confinement,
                   ready: Callable[[], None]) -> None:
            """After pivot_root, 0-2 and PASS_FDS in place (KEPT: the new
            numbers of before_pivot's descriptors).  Calls READY once nothing
            can fail that the launcher should report (start() returns then),
            and never returns."""

REAPER = os.path.join(os.path.dirname(os.path.dirname(__file__)), "reaper", "linjail-reaper")
_NS_FLAGS = libc.CLONE_NEWNS | libc.CLONE_NEWIPC | libc.CLONE_NEWNET


@record(frozen=False)
class Started(Record):
    """A jail whose command runs; `status_fd` delivers the command's wait status."""
    jid: int
    pid: int
    status_fd: int
    go_fd: int
    record: registry.JailRecord
    #: the master of a pty in the jail's own devpts, when one was asked for
    pty_master: int | None = None
    #: what the host side keeps of the jail's stdio: relays to drain at the end
    stdio: Prepared | None = None


def check_stdio(fds: tuple[int | None, int | None, int | None]) -> None:
    """A directory must never reach the jail as a descriptor (openat escapes)."""
    import stat
    for fd, name in zip(fds, ("standard input", "standard output", "standard error")):
        if fd is None:
            continue
        try:
            mode = os.fstat(fd).st_mode
        except OSError:
            continue
        if stat.S_ISDIR(mode):
            raise JailError(f"{name} is a directory: refusing to pass it into a jail")


def start(spec: JailSpec, *, stdin: int | None = 0, stdout: int | None = 1,
          stderr: int | None = 2, pty_slave: int | None = None,
          pass_fds: tuple[int, ...] = (), become: Become | None = None) -> Started:
    """Create the jail and wait until its PID 1 is ready; the command has not run.

    STDIN..STDERR (None: closed) become what stdio.prepare makes of them;
    PASS_FDS (pipes and stream sockets above 2) keep their numbers.
    Call go(started) to let the command run.  With BECOME, the first process
    becomes what BECOME makes of it instead of the reaper (status_fd and
    go_fd then lead nowhere).
    """
    ctx = Launcher(spec, (stdin, stdout, stderr), pty_slave, pass_fds, become)
    plan.run(HOST_STEPS, ctx, "launcher")
    # from here on the jail exists; removing it is remove_jail's job
    assert ctx.rec is not None and ctx.handed is not None
    return Started(ctx.rec.jid, ctx.pid, ctx.status_r, ctx.go_w, ctx.rec, ctx.master,
                   ctx.handed)


class Launcher:
    """The context of HOST_STEPS: a start's (from its spec), or what a
    record alone tells (of_record: the teardown of a jail another process
    started, which may have been killed with -9 on the way)."""

    def __init__(self, spec: JailSpec | None,
                 stdio: tuple[int | None, int | None, int | None] = (None, None, None),
                 pty_slave: int | None = None, pass_fds: tuple[int, ...] = (),
                 become: Become | None = None) -> None:
        self.spec = spec
        self.stdio = stdio
        self.pty_slave = pty_slave
        self.pass_fds = pass_fds
        self.become = become          # in place of the reaper (OCI)
        #: the host objects named after the JID are this jail's (a start's
        #: are; a record's if it still holds its claim: owns_host_side)
        self.owner = True
        self.reaper = b""
        self.handed: Prepared | None = None
        self.rec: registry.JailRecord | None = None
        self.host: HostLimits | None = None           # rctl's part, if rules name it
        self.confine: confinement.Confinement | None = None
        # the launcher's ends and the first process's (-1: closed)
        self.report_r = self.cmd_w = self.status_r = self.go_w = -1
        self.theirs: tuple[int, ...] = ()
        self.pid = 0                  # the first process
        self.moved: Callable[[], None] | None = None   # waits for the cgroup move
        self.hostnet: HostNet | None = None
        self.master: int | None = None
        self.starttime = 0            # the running record's facts (_running_facts)
        self.exec_plan: confinement.ExecPlan | None = None

    @classmethod
    def of_record(cls, rec: registry.JailRecord) -> Launcher:
        ctx = cls(None)
        ctx.rec = rec
        ctx.owner = owns_host_side(rec)
        return ctx

    @property
    def networked(self) -> bool:
        return self.spec is not None and bool(self.spec.ips or self.spec.interface)


def _check_stdio(c: Launcher) -> None:
    check_stdio(c.stdio)


def _read_reaper(c: Launcher) -> None:
    try:
        with open(REAPER, "rb") as f:
            c.reaper = f.read()
    except OSError as err:
        code = err.errno or 0
        raise OpError("open", REAPER, code, detail="missing (`make dev` builds it)"
                      if code == errno.ENOENT else "") from None


def _prepare_stdio(c: Launcher) -> None:
    c.handed = prepare(c.stdio, REAPER, keep=() if c.pty_slave is None else (c.pty_slave,))


def _close_stdio(c: Launcher) -> None:
    if c.handed is not None:
        c.handed.close()


def _allocate(c: Launcher) -> None:
    """The JID: its claim (the jail's cgroup) and its "starting" record,
    which names every host object before it exists (the cgroup, the veth
    and its rules are named after the JID): a launcher killed at any point
    leaves a record through which the next command releases them."""
    from ..confine import cgroup
    from ..confine import userns
    assert c.spec is not None
    # chflags_allowed=1 takes the user namespace away (the front end said so)
    c.spec = spec = c.spec.replace(knobs=userns.settle(c.spec.knobs)[0])
    owner_start = registry.starttime(os.getpid()) or 0
    name_veth: Callable[[int], str] = lambda jid: ""
    if spec.ips and not spec.interface:
        from ..confine.net import host_ifname as name_veth
    c.rec = registry.allocate(lambda jid: registry.JailRecord(
        jid=jid, hostname=spec.hostname, path=spec.path, ips=[str(a) for a in spec.ips],
        bootid=registry.boot_id(), owner_pid=os.getpid(), owner_start=owner_start,
        name=spec.name, created=time.time(), knobs=spec.knobs.as_dict(),
        persist=int(spec.persist),
        cgroup=cgroup.jail_cgroup(jid), hostif=name_veth(jid), v1dirs=":".join(spec.v1dirs)),
        claim=cgroup.claim, unclaim=lambda jid: cgroup.remove(cgroup.jail_cgroup(jid)),
        want=spec.jid, name=spec.name if spec.unique_name else "", release_dead=release,
        uid_range=userns.wanted(spec.knobs), idmap=spec.idmap)
    plan.trace("launcher", f"jid: {c.rec.jid}, cgroup {c.rec.cgroup}, record \"starting\"")


def _free_jid(c: Launcher) -> None:
    """The claim last, then the record: while the cgroup exists no other
    jail can take the JID, so what is named after it is this jail's.  A
    record's teardown keeps the record when the cgroup stays (the next look
    retries); a failed start drops its record anyway (an empty claim left
    behind is the sweep's: sweep_claims)."""
    rec = c.rec
    if rec is None:
        return
    try:
        if c.owner and rec.cgroup:
            from ..confine import cgroup
            cgroup.remove(rec.cgroup)
    except OSError:
        if c.spec is None:
            raise
        registry.delete(rec.jid, rec)
        raise
    registry.delete(rec.jid, rec)


def _confinement(c: Launcher) -> None:
    assert c.spec is not None
    c.confine = confinement.prepare(c.spec.knobs)
    if c.networked:
        from ..confine import net  # noqa: F401  (once, before the fork: both sides use it)
    from ..kernel import netlink  # noqa: F401  (the first process brings lo up)


def _rctl_exists(c: Launcher) -> bool:
    # rules naming this jail are written into its cgroups now, before any
    # process of it runs; none (the usual case) costs one stat()
    from ..state import rctl
    return rctl.exists()


def _rctl_rules(c: Launcher) -> None:
    from ..confine import limits
    assert c.spec is not None and c.rec is not None
    c.spec, c.host = limits.for_start(c.spec, c.rec)


def _release_v1(c: Launcher) -> None:
    if c.owner and c.rec is not None:
        from ..confine import cglayout
        cglayout.release(c.rec.jid)     # the v1 cgroups an rctl rule made it join


def _pipes(c: Launcher) -> None:
    # first process -> launcher: its progress, its error, the jail's pty master
    c.report_r, report_w = unixsock.pair()
    cmd_r, c.cmd_w = os.pipe2(os.O_CLOEXEC)           # launcher -> first process
    c.status_r, status_w = os.pipe2(os.O_CLOEXEC)     # reaper -> launcher
    go_r, c.go_w = os.pipe2(os.O_CLOEXEC)             # launcher -> reaper
    c.theirs = (report_w, cmd_r, status_w, go_r)


def _close_pipes(c: Launcher) -> None:
    for fd in (c.report_r, c.cmd_w, c.go_w, c.status_r) + c.theirs:
        if fd >= 0:
            _close(fd)
    c.report_r = c.cmd_w = c.go_w = c.status_r = -1
    c.theirs = ()


def _clone(c: Launcher) -> None:
    """The jail's PID 1, born in the jail's cgroup (clone3): moving it there
    by writing cgroup.procs waits for an RCU grace period (5-15 ms here,
    cgroup_threadgroup_rwsem).  The first process unshares its cgroup
    namespace only after "n".  With a user namespace (the record's
    uid_base) no PID namespace yet: the first process makes the user
    namespace, then clones the jail's PID 1 into it (_user_namespace)."""
    assert c.spec is not None and c.rec is not None and c.handed is not None
    assert c.confine is not None
    base = c.rec.uid_base
    pidns = [path for kind, path in c.spec.join if kind == "pid"]
    if pidns and base:
        raise JailError(f"jail: {pidns[0]}: a jail with a user namespace of its own "
                        f"cannot join a pid namespace")
    if base:
        from ..confine import userns
        # the jail's null device is jailed root's
        userns.own_stdio(c.handed.fds, base, userns.gid_base(c.spec.idmap))
    if pidns:
        pid = _clone_into(pidns[0], c.rec.cgroup)
    else:
        cgroup_fd = os.open(c.rec.cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            pid = libc.clone3((0 if base else libc.CLONE_NEWPID) | libc.CLONE_INTO_CGROUP,
                              cgroup_fd)
        finally:
            os.close(cgroup_fd)
    if pid == 0:
        ours = (c.report_r, c.cmd_w, c.status_r, c.go_w)
        stdio = (c.handed.fds[0], c.handed.fds[1], c.handed.fds[2])
        _first_process(FirstProcess(c.spec, c.rec.jid, c.reaper, stdio, c.pty_slave,
                                    c.pass_fds, c.theirs, c.confine, c.become, base),
                       ours)   # never returns
    c.pid = pid
    c.handed.handed_over()
    for fd in c.theirs:
        os.close(fd)
    c.theirs = ()


def _clone_into(path: str, cgroup: str) -> int:
    """clone3 into the pid namespace PATH names (a pod's: the jail's
    process is not its PID 1, and its exit ends only this jail): the
    launcher's children go there while it clones, then its own again."""
    target = _open_namespace("pid", path)
    own = cgroup_fd = -1
    try:
        own = os.open("/proc/self/ns/pid", os.O_RDONLY | os.O_CLOEXEC)
        cgroup_fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            libc.setns(target, libc.CLONE_NEWPID)
        except OSError as err:     # not below this one (EINVAL), or its user namespace's
            raise JailError(f"jail: {path}: cannot join this pid namespace "
                            f"({os.strerror(err.errno or 0)})") from None
        try:
            pid = libc.clone3(libc.CLONE_INTO_CGROUP, cgroup_fd)
        except OSError as err:     # ENOMEM: its PID 1 is gone
            libc.setns(own, libc.CLONE_NEWPID)
            raise JailError(f"jail: {path}: cannot start a process in this pid namespace "
                            f"({os.strerror(err.errno or 0)})") from None
        if pid:                    # (the child is the first process: it stays there)
            libc.setns(own, libc.CLONE_NEWPID)
    finally:
        for fd in (target, own, cgroup_fd):
            if fd >= 0:
                libc.close(fd)
    return pid


def _show_clone(c: Launcher) -> str:
    joined = dict(c.spec.join if c.spec is not None else ()).get("pid")
    if joined:
        return f"into the pid namespace {joined}, in the jail's cgroup"
    return "PID 1 of a new PID namespace, in the jail's cgroup"


def _user_namespace(c: Launcher) -> None:
    """The host side of the jail's user namespace (confine/userns.py): its
    maps, the idmapped trees; then the first process clones the jail's PID 1
    (the launcher's child) and ends.  (A failure: the first process is
    c.pid still, which the clone's undo kills.)"""
    from ..confine import userns
    assert c.spec is not None and c.rec is not None
    report = c.report_r
    c.pid = userns.host_side(c.pid, report, c.spec, c.rec.uid_base,
                             lambda msg: _report_error(msg + _read_report(report)[0]))


def _running_facts(c: Launcher) -> None:
    """What the running record will say, worked out while the first process
    sets up: its start time, the plan of jexec's fast path."""
    assert c.spec is not None and c.confine is not None and c.rec is not None
    c.starttime = registry.starttime(c.pid) or 0
    # none for a jail in v1 cgroups of its own (jexec_fast.c joins no v1 cgroup),
    # nor for an OCI config's mappings (it knows only 0 BASE 65536): Python's way
    c.exec_plan = None if c.spec.v1dirs or c.spec.idmap is not None else \
        confinement.exec_plan(c.spec.knobs, c.confine, c.rec.jid)


def _devices(c: Launcher) -> None:
    """The jail's device policy on its cgroup2 directory (confine/devices.py
    JAIL_RULES): the nodes of its /dev and its ptys, whatever mount a node
    is on.  Every mount of a jail is nodev but its /dev, which holds
    linjail's nodes only; the program also stops a descriptor of a host
    device node that reached the jail (a host daemon's socket bound in)
    from being reopened through /proc/self/fd, whose magic link leads to
    the node's own mount.  Done while the first process makes its
    namespaces, before it makes /dev (mknod of its nodes is allowed)."""
    from ..confine import devices
    assert c.rec is not None
    devices.confine(c.rec.cgroup, devices.JAIL_RULES)


def _kill_first(c: Launcher) -> None:
    # (a record's jail: its processes die with its cgroup, _free_jid)
    if c.pid:
        _kill_and_reap(c.pid)


def _join_v1(c: Launcher) -> None:
    """The v1 hierarchies an rctl rule (or an OCI cgroupsPath) needs can only
    be written: a thread does it while the first process mounts; "n" waits
    for it."""
    joins = [j.join for j in (c.host, c.become) if j is not None]
    pid = c.pid

    def join_all() -> None:
        for join in joins:
            join(pid)
    c.moved = _in_thread(join_all)


def _wait_moved(c: Launcher) -> None:
    if c.moved is not None:
        c.moved()


def _wait_namespaces(c: Launcher) -> None:
    msg = os.read(c.report_r, 1)
    if msg != b"N":
        raise _report_error(msg + _read_report(c.report_r)[0])


def _veth(c: Launcher) -> None:
    from ..confine import net
    assert c.spec is not None and c.rec is not None
    try:
        c.hostnet = net.setup_host(c.rec.jid, c.pid, c.spec.ips, c.spec.interface)
    except OSError:
        # the first process may have died first: its reason is the real one
        _close(c.cmd_w)
        c.cmd_w = -1
        msg = _read_report(c.report_r)[0]
        if msg:
            raise _report_error(msg) from None
        raise
    c.rec.hostif = c.hostnet.ifname


def _remove_veth(c: Launcher) -> None:
    """The veth, its routes and rules (net.teardown_host: each step
    tolerates an object already gone).  A jail without one imports
    nothing (confine/net.py and ipaddress: ~3 ms of every teardown)."""
    if c.hostnet is None and not (c.owner and c.rec is not None and c.rec.hostif):
        return
    from ..confine import net
    if c.hostnet is None and c.owner and c.rec is not None and c.rec.hostif:
        import ipaddress
        rec = c.rec
        c.hostnet = net.HostNet(rec.jid, rec.hostif,
                                tuple(ipaddress.ip_address(a) for a in rec.ips))
    if c.hostnet is not None:
        net.teardown_host(c.hostnet)


def _show_veth(c: Launcher) -> str:
    assert c.spec is not None
    if c.spec.interface:
        return f"macvlan eth0 on {c.spec.interface}"
    hostif = c.rec.hostif if c.rec is not None else ""
    return f"{hostif} <-> eth0, routes, rule to table 4242: " + \
        " ".join(map(str, c.spec.ips))


def _prepared(c: Launcher) -> None:
    assert c.become is not None
    c.become.prepared(c.pid)


def _go_on(c: Launcher) -> None:
    try:
        os.write(c.cmd_w, b"n")
    except BrokenPipeError:
        pass                  # the first process is gone: its report says why
    os.close(c.cmd_w)
    c.cmd_w = -1


def _wait_exec(c: Launcher) -> None:
    msg, c.master = _read_report(c.report_r, with_fd=True)
    if msg.startswith(b"P"):       # the pty's master came; an error may follow it
        msg = msg[1:]
    if msg:
        if c.master is not None:
            _close(c.master)
            c.master = None
        raise _report_error(msg)
    os.close(c.report_r)
    c.report_r = -1


def _running(c: Launcher) -> None:
    assert c.spec is not None and c.rec is not None
    rec = c.rec
    rec.pid = c.pid
    rec.starttime = c.starttime
    rec.state = "running"
    exec_plan = c.exec_plan
    if exec_plan is not None:    # what jexec's fast path executes (reaper/jexec_fast.c)
        registry.set_exec_plan(rec, exec_plan.caps, exec_plan.seccomp, exec_plan.v1)
    registry.write(rec)
    if c.host is not None:
        c.host.started(rec, c.spec.console_log)    # rctl's watcher, if a rule needs one


#: The host side: the launcher, from the spec to a jail whose PID 1 waits
#: for 'g'.  Walked backwards it is the teardown (release): a failed start
#: undoes the steps it did, `jailctl remove` and the sweep of dead jails
#: undo them all from the record.
HOST_STEPS: tuple[Step[Launcher], ...] = (
    Step("check stdio", _check_stdio),
    Step("reaper", _read_reaper, show=lambda c: REAPER),
    Step("stdio", _prepare_stdio, _close_stdio, local=True),
    Step("jid", _allocate, _free_jid, show=lambda c: None, claim=True),
    Step("confinement", _confinement),
    Step("rctl", _rctl_rules, _release_v1, when=_rctl_exists),
    Step("pipes", _pipes, _close_pipes, local=True),
    Step("clone", _clone, _kill_first, local=True,
         show=_show_clone),
    Step("user namespace", _user_namespace, when=lambda c: c.rec is not None and
         bool(c.rec.uid_base), show=lambda c: "maps, idmapped trees; PID 1 cloned into it"),
    Step("running facts", _running_facts),
    Step("devices", _devices, show=lambda c: "eBPF program on the jail's cgroup: its /dev's "
         "nodes and ptys, nothing else"),
    Step("v1 cgroups", _join_v1, _wait_moved, local=True,
         when=lambda c: c.host is not None or c.become is not None),
    Step("namespaces", _wait_namespaces),
    Step("veth", _veth, _remove_veth, when=lambda c: c.networked, show=_show_veth),
    Step("cgroups joined", _wait_moved,
         when=lambda c: c.host is not None or c.become is not None),
    Step("prepared", _prepared, when=lambda c: c.become is not None),
    Step("go on", _go_on),
    Step("exec", _wait_exec),
    Step("running", _running),
)


def release(rec: registry.JailRecord) -> bool:
    """The teardown of a jail whose processes are gone, from its record
    alone: HOST_STEPS walked backwards (idempotent).  The cgroup goes last
    but the record: while it exists, no other jail can take the JID, so the
    veth and rules named after it are this jail's.  If anything cannot be
    removed, the claim and the record stay and the next command retries.
    True if the jail is gone."""
    with registry.Lock():
        return plan.unwind(HOST_STEPS, Launcher.of_record(rec), f"teardown of {rec.jid}")


def owns_host_side(rec: registry.JailRecord) -> bool:
    """True if REC still holds the host-wide claim on its JID (its cgroup,
    made by cgroup.claim), so the cgroup, veth and rules named after that
    JID are its own.  A record of another registry with the same JID, or
    one whose claim was released and taken again, owns nothing.  Records
    written before claims existed carry no inode: they are believed only in
    the default registry, where no other jail can have their JID."""
    from ..confine import cgroup
    if rec.cgroup and rec.cgroup != cgroup.jail_cgroup(rec.jid):
        return False
    if rec.hostif and rec.hostif != f"ljh{rec.jid}":
        return False
    if rec.cgroup_ino == 0:
        return registry.state_dir() == registry.DEFAULT_STATE_DIR
    return cgroup.claimed(rec.jid, rec.cgroup_ino)


def _in_thread(work: Callable[[], None]) -> Callable[[], None]:
    """Run WORK in a thread now; the returned function waits for it and
    raises what it raised.  (_thread: `threading` costs an import.)"""
    import _thread
    done = _thread.allocate_lock()
    done.acquire()
    failure: list[BaseException] = []

    def body() -> None:
        try:
            work()
        except BaseException as err:  # handed to the waiter
            failure.append(err)
        finally:
            done.release()
    _thread.start_new_thread(body, ())

    def wait() -> None:
        done.acquire()
        done.release()
        if failure:
            raise failure[0]
    return wait


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _kill_and_reap(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _read_report(fd: int, with_fd: bool = False) -> tuple[bytes, int | None]:
    """Everything the first process says until it execs (EOF), and a pty master."""
    chunks = []
    master = None
    while True:
        try:
            data, fds = unixsock.recv(fd, 4096, 1)
        except InterruptedError:
            continue
        for extra in fds:
            if with_fd and master is None:
                master = extra
            else:
                os.close(extra)
        if not data:
            break
        chunks.append(data)
    return b"".join(chunks), master


def _report_error(msg: bytes) -> JailError:
    """The first process's error (_report_failure) as it was raised there."""
    if msg.startswith(b"E"):
        fields = msg[1:].decode("utf-8", "surrogateescape").split("\0", 3)
        if len(fields) == 4 and fields[0].isdigit():
            code, op, obj, text = fields
            if op or int(code):
                return OpError(op, obj or None, int(code), shown=text)
        return JailError(fields[-1])
    return JailError("jail: the jail's first process died during setup")


# --- the first process ----------------------------------------------------------------

class FirstProcess:
    """The context of JAIL_STEPS: what the launcher hands the first process,
    and what its steps make on the way (its root, the reaper's copy, the
    user, the environment, the reaper's argv)."""

    def __init__(self, spec: JailSpec, jid: int, reaper: bytes,
                 stdio: tuple[int | None, int | None, int | None], pty_slave: int | None,
                 pass_fds: tuple[int, ...], theirs: tuple[int, ...],
                 confine: confinement.Confinement, become: Become | None = None,
                 base: int = 0) -> None:
        self.spec = spec
        self.jid = jid
        self.reaper = reaper
        self.stdio = stdio
        self.pty_slave = pty_slave
        self.pass_fds = pass_fds
        self.report_w, self.cmd_r, self.status_w, self.go_r = theirs
        self.confine = confine
        self.limits: Plan | None = None      # rctl's rules for the jail side
        self.root: Root | None = None
        self.dev = False                     # the jail's own /dev is mounted
        self.memfd = -1                      # the reaper's sealed copy
        self.caller: dict[str, str] = {}     # the environment jail was started with
        self.user: User | None = None
        self.env: dict[str, str] = {}
        self.argv: list[str] = []
        self.become = become                 # in place of the reaper (OCI)
        self.base = base                     # the jail's host ids (0: no user namespace)
        self.trees: Trees | None = None      # made by the launcher (base): to attach
        self.kept: list[int] = []            # become's descriptors past pivot_root

    @property
    def networked(self) -> bool:
        return bool(self.spec.ips or self.spec.interface)


class LauncherGone(Exception):
    """The launcher gave up before "n" (the first process ends silently)."""


def _first_process(ctx: FirstProcess, ours: tuple[int, ...]) -> None:
    global _REPORT_FD
    _REPORT_FD = ctx.report_w
    # after pivot_root the package's files are out of reach: import now what
    # a user (-u, -U, -l) needs; without one, nothing (startup cost)
    spec = ctx.spec
    if spec.login or spec.jail_user is not None or spec.host_user is not None:
        from .. import users  # noqa: F401
    if os.environ.get("LINJAIL_DEBUG"):
        import traceback  # noqa: F401
    try:   # whatever happens, this process never returns into the launcher's code
        try:
            del ours
            plan.run(JAIL_STEPS, ctx, "first process")
        except LauncherGone:
            pass          # it undoes the host side; nobody reads a report
        except JailError as err:
            _report_failure(err)
        except OSError as err:
            _report_failure(os_error(err))
        except BaseException as err:   # a bug: say so in one line, with the type
            _report_failure(JailError(f"internal error: {type(err).__name__}: {err}"))
    finally:
        os._exit(1)


def _trace() -> bytes:
    if not os.environ.get("LINJAIL_DEBUG"):
        return b""
    import traceback
    return as_bytes("\n" + traceback.format_exc())


def _report_failure(err: JailError) -> None:
    """ERR to the launcher, which raises it again (_report_error): `E`, then
    errno, operation, object and message, NUL-separated; the traceback
    follows the message with LINJAIL_DEBUG."""
    fields = (str(err.errno), err.op, err.obj or "", err.message)
    _report(b"E" + b"\0".join(as_bytes(f) for f in fields) + _trace())


_REPORT_FD = -1    # where the first process reports; it moves above the others before exec


def _report(data: bytes) -> None:
    try:
        os.write(_REPORT_FD, data)
    except OSError:
        pass


def _keep_descriptors(p: FirstProcess) -> None:
    # before anything resolves a path: only what the jail is given stays
    # open (a directory the caller leaked would be a way out: SPEC §7)
    keep = [fd for fd in p.stdio if fd is not None] + list(p.pass_fds) + \
        [p.report_w, p.cmd_r, p.status_w, p.go_r]
    out = plan.tracing()
    if out >= 0:    # jail -v: the step lines go on to the launcher's stderr
        out = libc.fcntl(out, fcntl.F_DUPFD_CLOEXEC, 3)
        plan.trace_to(out)
        keep.append(out)
    close_all_but(keep)


def _die_with_launcher(p: FirstProcess) -> None:
    # until the reaper is exec'd (reset before exec); and no ptrace, no
    # /proc/PID/fd for jailed root meanwhile
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
    libc.prctl(libc.PR_SET_DUMPABLE, 0)


def _user_namespace_made(p: FirstProcess) -> None:
    # returns in the jail's PID 1, in the jail's user namespace; this
    # process's /proc files are host root's (non-dumpable) from then on
    p.caller = caller_environment()
    from ..confine import userns
    early = getattr(p.become, "before_userns", None)
    if early is not None:       # (an OCI container: what host root must open)
        early()
    rules = None
    if p.spec.limits:
        from ..confine import limits
        rules = limits.plan(p.spec.limits)
    p.trees = userns.stage(p.base, p.spec.path, p.report_w, rules,
                           userns.gid_base(p.spec.idmap))


def _unshare(p: FirstProcess) -> None:
    # (a pid namespace is joined by the launcher: _clone)
    joins = [(kind, path) for kind, path in p.spec.join if kind != "pid"]
    own = [_open_namespace(kind, path) for kind, path in joins]
    libc.unshare(_NS_FLAGS & ~sum(_JOINABLE[kind] for kind, _ in joins))
    for fd, (kind, _) in zip(own, joins):
        libc.setns(fd, _JOINABLE[kind])
        libc.close(fd)


def _show_namespaces(p: FirstProcess) -> str:
    joined = {kind for kind, _ in p.spec.join}
    made = " ".join(k for k in ("mnt", "ipc", "net") if k not in joined)
    return made + "".join(f"; join {kind} {path}" for kind, path in p.spec.join
                          if kind != "pid")


def _joined(p: FirstProcess, kind: str) -> bool:
    return any(k == kind for k, _ in p.spec.join)


#: the namespaces a jail may join by path (JailSpec.join), and their flags;
#: a pid namespace is joined by the launcher (_clone), the others by the first process
_JOINABLE = {"net": libc.CLONE_NEWNET, "ipc": libc.CLONE_NEWIPC, "uts": libc.CLONE_NEWUTS,
             "pid": libc.CLONE_NEWPID}
_NS_GET_NSTYPE = 0xB703         # linux/nsfs.h: _IO(0xb7, 0x3)
#: the nsfs inode numbers of the initial namespaces (linux/nsfs.h, init_ns_ino: ipc, uts
#: and pid since Linux 3.8, net and mnt since 6.18; before, theirs were dynamic numbers,
#: all at or above 0xF0000000, so never one of these)
_INITIAL = {"ipc": 0xEFFFFFFF, "uts": 0xEFFFFFFE, "pid": 0xEFFFFFFC, "net": 0xEFFFFFF9,
            "mnt": 0xEFFFFFF8}


def _open_namespace(kind: str, path: str) -> int:
    """A namespace file to join: it must be one of KIND (an nsfs file: a
    bind mount of one or a symlink to one is the namespace it names), and
    not the host's, which a jail never shares.  The host's is the initial
    namespace of its type (its fixed nsfs inode), the one this process is
    in, and PID 1's (when this process may look at PID 1's: not in every
    container).  All three, because a runtime started in a namespace of
    its own (`ip netns exec`, a runtime inside a container) is not in the
    initial one, and a bind mount of the initial one looks like any other
    nsfs file."""
    if kind not in _JOINABLE:
        raise JailError(f"jail: {path}: joining a {kind} namespace is not supported")
    try:
        fd = libc.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as err:
        raise JailError(f"jail: {path}: {os.strerror(err.errno or 0)}") from None
    try:
        import fcntl as _fcntl
        if _fcntl.ioctl(fd, _NS_GET_NSTYPE) != _JOINABLE[kind]:
            raise JailError(f"jail: {path}: not a {kind} namespace")
        if _host_namespace(kind, os.fstat(fd)):
            raise JailError(f"jail: {path}: the host's {kind} namespace: a jail never "
                            f"shares it")
    except OSError as err:
        libc.close(fd)
        raise JailError(f"jail: {path}: not a {kind} namespace "
                        f"({os.strerror(err.errno or 0)})") from None
    except BaseException:
        libc.close(fd)
        raise
    return fd


def _host_namespace(kind: str, st: os.stat_result) -> bool:
    own = os.stat(f"/proc/self/ns/{kind}")     # its st_dev is the nsfs's
    if st.st_dev != own.st_dev:
        return False        # (an nsfs file: NS_GET_NSTYPE answered)
    if st.st_ino in (_INITIAL[kind], own.st_ino):
        return True
    try:
        init = os.stat(f"/proc/1/ns/{kind}")
    except OSError:
        return False        # PID 1's are not this process's to see
    return (st.st_dev, st.st_ino) == (init.st_dev, init.st_ino)


def _ipc_limits(p: FirstProcess) -> None:
    from ..confine import limits
    p.limits = limits.plan(p.spec.limits)
    limits.jail_ipc(p.limits)


def _hostname(p: FirstProcess) -> None:
    libc.enter_owned_uts()
    libc.sethostname(as_bytes(p.spec.hostname))


def _ipv6_defaults(p: FirstProcess) -> None:
    from ..confine import net
    net.prepare_jail_namespace()


def _say_namespaces(p: FirstProcess) -> None:
    libc.write(p.report_w, b"N")


def _attach_root(p: FirstProcess) -> None:
    p.root = _root_mount(p).execute()


def _root_mount(p: FirstProcess) -> RootMount:
    from .mounts import RootMount   # (here: jexec imports this module, not the mounts)
    return RootMount(p.spec.path, p.spec.overlay,
                     p.trees.root if p.trees is not None else -1)


def _mount_all(p: FirstProcess, late: bool = False) -> None:
    from .mounts import DevMount, ExtraMount, mounts
    assert p.root is not None
    extra = p.limits.devpts_options() if p.limits is not None else ""
    for op in mounts(p.spec, extra, late, p.trees):
        if op.applies(p.root):
            plan.trace("first process", f"mount: {op.describe()}")
            op.execute(p.root)
            p.dev = p.dev or isinstance(op, DevMount) or \
                (isinstance(op, ExtraMount) and op.mount.kind == "devpts")


def _own_pty(p: FirstProcess) -> None:
    # a pty of the jail's own devpts replaces the launcher's host pty
    from ..confine import rootfs
    assert p.root is not None
    master, slave = rootfs.open_pty(p.root)
    p.stdio = tuple(slave if fd == p.pty_slave else fd for fd in p.stdio)  # type: ignore
    unixsock.send(p.report_w, b"P", [master])
    libc.close(master)


def _wait_for_launcher(p: FirstProcess) -> None:
    if libc.read(p.cmd_r, 1) != b"n":
        raise LauncherGone()
    libc.close(p.cmd_r)


def _unshare_cgroup(p: FirstProcess) -> None:
    # in the jail's cgroup since birth (clone3), and in rctl's v1 ones once
    # "n" came: the cgroup namespace's root is the jail's own cgroup
    libc.unshare(libc.CLONE_NEWCGROUP)


def _network(p: FirstProcess) -> None:
    if p.networked:
        from ..confine import net
        net.setup_jail(p.jid, p.spec.ips, p.spec.interface)
        return
    from ..kernel import netlink
    with netlink.Netlink() as nl:
        nl.set_up(1)


def _show_network(p: FirstProcess) -> str:
    if p.spec.interface:
        return f"lo, eth0 on {p.spec.interface}: " + " ".join(map(str, p.spec.ips))
    if p.spec.ips:
        return "lo, eth0: " + " ".join(map(str, p.spec.ips))
    return "lo"


def _before_pivot(p: FirstProcess) -> None:
    assert p.become is not None and p.root is not None
    p.kept = p.become.before_pivot(p.root)


def _become(p: FirstProcess) -> None:
    """The first process after pivot_root when a Become replaces the reaper:
    0-2 and PASS_FDS in place, then the report pipe and its descriptors above
    them (close-on-exec), rctl's rlimits; the Become takes it from there and
    never returns."""
    global _REPORT_FD
    assert p.become is not None
    base = max((2, *p.pass_fds)) + 1
    mapping: dict[int, int | None] = {0: p.stdio[0], 1: p.stdio[1], 2: p.stdio[2]}
    mapping.update({fd: fd for fd in p.pass_fds})
    mapping[base] = p.report_w
    mapping.update({base + 1 + i: fd for i, fd in enumerate(p.kept)})
    place(mapping, cloexec=range(base, base + 1 + len(p.kept)))
    p.report_w = _REPORT_FD = base
    if p.limits is not None:
        p.limits.set_rlimits()

    def ready() -> None:
        global _REPORT_FD
        libc.prctl(libc.PR_SET_PDEATHSIG, 0)    # the launcher is about to leave
        libc.close(base)                        # EOF: start() returns
        _REPORT_FD = -1
    p.become.become(list(range(base + 1, base + 1 + len(p.kept))), p.confine, ready)
    os._exit(1)


def _copy_reaper(p: FirstProcess) -> None:
    p.memfd = _reaper_memfd(p.reaper)
    if not p.base:   # (with a user namespace: read by the step "user namespace")
        p.caller = caller_environment()     # the host's /proc: the jail may have none


def _pivot_root(p: FirstProcess) -> None:
    from ..confine import rootfs
    assert p.root is not None
    rootfs.enter(p.root)


def _user(p: FirstProcess) -> None:
    p.user = _resolve_user(p.spec)
    p.env = _environment(p.spec, p.user, p.caller)


def _home(p: FirstProcess) -> None:
    assert p.user is not None
    enter_home(p.user.home)


def _place_descriptors(p: FirstProcess) -> None:
    # 0-2 the command's stdio (None: closed), the passed pipes and sockets at
    # their numbers, then status, go, memfd, report (and -v's stderr) above
    # them; nothing else survives.
    global _REPORT_FD
    base = max((2, *p.pass_fds)) + 1
    mapping: dict[int, int | None] = {0: p.stdio[0], 1: p.stdio[1], 2: p.stdio[2]}
    mapping.update({fd: fd for fd in p.pass_fds})
    mapping.update({base: p.status_w, base + 1: p.go_r, base + 2: p.memfd,
                    base + 3: p.report_w})
    out = plan.tracing()
    if out >= 0:
        mapping[base + 4] = out
    place(mapping, cloexec=(base + 2, base + 3, base + 4))
    if out >= 0:
        plan.trace_to(base + 4)
    p.memfd = base + 2
    p.report_w = _REPORT_FD = base + 3
    p.argv = _reaper_argv(p.spec, p.user, base, base + 1)


def _rlimits(p: FirstProcess) -> None:
    assert p.limits is not None
    p.limits.set_rlimits()   # rctl's rlimits, inherited by every process of the jail


def _drop_caps(p: FirstProcess) -> None:
    from ..confine import caps
    caps.drop(p.confine.keep)


def _load_seccomp(p: FirstProcess) -> None:
    from ..confine import seccomp
    seccomp.install(p.confine.bpf)


def _exec_reaper(p: FirstProcess) -> None:
    libc.prctl(libc.PR_SET_PDEATHSIG, 0)
    libc.execve(p.memfd, p.argv, p.env)


def _show_userns(p: FirstProcess) -> str:
    lines = p.spec.idmap[0] if p.spec.idmap else ((0, p.base, 65536),)
    return ", ".join(f"{a}-{a + n - 1} -> {b}-{b + n - 1}" for a, b, n in lines) + \
        "; PID 1 cloned into it"


#: The jail side: the first process, from fork to the exec of the reaper.
#: Its undo is the kernel's: when it exits, its namespaces and mounts go.
JAIL_STEPS: tuple[Step[FirstProcess], ...] = (
    Step("close descriptors", _keep_descriptors),
    Step("die with the launcher", _die_with_launcher),
    Step("user namespace", _user_namespace_made, when=lambda p: bool(p.base),
         show=_show_userns),
    Step("namespaces", _unshare, show=_show_namespaces),
    Step("ipc limits", _ipc_limits, when=lambda p: bool(p.spec.limits)),
    Step("ping sockets", lambda p: _allow_ping_sockets(), when=lambda p: not _joined(p, "net")),
    Step("hostname", _hostname, show=lambda p: p.spec.hostname,
         when=lambda p: not _joined(p, "uts")),
    Step("ipv6 defaults", _ipv6_defaults, when=lambda p: p.networked),
    Step("namespaces made", _say_namespaces),
    Step("mount", _attach_root, show=lambda p: _root_mount(p).describe()),
    Step("mounts", _mount_all, show=lambda p: None),    # one line per mount
    Step("pty", _own_pty, when=lambda p: p.pty_slave is not None and p.dev),
    Step("wait for the launcher", _wait_for_launcher),
    Step("cgroup namespace", _unshare_cgroup),
    # a cgroup file system shows the cgroup namespace it is mounted in: it,
    # and the mounts after it, wait for the jail's own
    Step("late mounts", lambda p: _mount_all(p, late=True), show=lambda p: None),
    Step("network", _network, show=_show_network),
    Step("before pivot_root", _before_pivot, when=lambda p: p.become is not None),
    Step("reaper", _copy_reaper, when=lambda p: p.become is None),
    Step("pivot_root", _pivot_root, show=lambda p: f"{p.spec.path} -> /"),
    # (never returns: what follows is the reaper's way)
    Step("become", _become, when=lambda p: p.become is not None),
    Step("user", _user, show=lambda p: p.spec.jail_user or (
        p.spec.host_user.name if p.spec.host_user else "")),
    Step("home", _home, when=lambda p: p.spec.login),
    Step("place descriptors", _place_descriptors),
    Step("rlimits", _rlimits, when=lambda p: p.limits is not None),
    Step("capabilities", _drop_caps),
    Step("seccomp", _load_seccomp),
    Step("exec", _exec_reaper, show=lambda p: "linjail-reaper -- " + " ".join(p.spec.command)),
)


def enter_home(home: str) -> None:
    """chdir to HOME inside the jail's root, which is / by now.

    Resolved with openat2(RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS) and entered
    with fchdir, then checked with getcwd: a home of /proc/self/fd/N (a
    descriptor of the host) or a symlink out of the root cannot become the
    command's cwd (CVE-2024-21626).  Anything else is a missing home.
    """
    try:
        enter_dir(home)
    except OSError:
        raise JailError("no home directory") from None


def enter_dir(path: str) -> None:
    """chdir to PATH resolved in the root (/) without magic links; OSError if
    it cannot be, or if the result is not below the root."""
    root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fd = libc.openat2(root, path, os.O_PATH | os.O_DIRECTORY,
                          libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS)
    finally:
        os.close(root)
    try:
        os.fchdir(fd)
    finally:
        os.close(fd)
    if not os.getcwd().startswith("/"):
        raise OSError(2, os.strerror(2), path)


def _allow_ping_sockets() -> None:
    """Let jailed root use ICMP datagram sockets once the filter allows them.

    socket(AF_INET[6], SOCK_DGRAM, IPPROTO_ICMP[V6]) also checks the
    per-network-namespace net.ipv4.ping_group_range, which a new namespace
    sets to "1 0" (nobody): with allow_raw_sockets=1 they failed with EACCES
    (found by tests/e2e/test_knobs.py).  Group 0 only: jailed root, as for
    raw sockets.  Whether they may be opened at all stays the seccomp
    filter's decision (EPERM while the knob is 0), so a later per-jail change
    of the knob needs nothing here.  /proc/sys/net is the writer's namespace.
    """
    try:
        libc.write_file("/proc/sys/net/ipv4/ping_group_range", b"0 0")
    except FileNotFoundError:
        pass        # a kernel without IPv4 ping sockets


def _reaper_memfd(reaper: bytes) -> int:
    """A sealed in-memory copy of the reaper: /proc/1/exe is no host file."""
    fd = libc.memfd_create("linjail-reaper", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    libc.write(fd, reaper)
    libc.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK |
               fcntl.F_SEAL_GROW | fcntl.F_SEAL_WRITE)
    return fd


def _resolve_user(spec: JailSpec) -> User | None:
    if spec.jail_user is not None:
        # through the root's own resolver: no symlink, no fifo (SPEC §7)
        from ..confine.rootfs import jail_user
        return jail_user(spec.jail_user, spec.path)
    return spec.host_user


def _environment(spec: JailSpec, user: User | None,
                 caller: dict[str, str]) -> dict[str, str]:
    if spec.login and user is not None:
        from ..users import login_env
        env = login_env(user, caller.get("TERM"))
    else:
        env = caller
    # PID 1 carries the jail's facts for processes inside (SPEC §5): the reaper
    # strips LINJAIL_* before it execs the command.
    env["LINJAIL_JAILED"] = "1"
    env["LINJAIL_KNOBS"] = ",".join(f"{k}={v}" for k, v in spec.knobs.as_dict().items())
    return env


def caller_environment() -> dict[str, str]:
    """The environment this process was started with.

    Not os.environ: CPython's locale coercion (PEP 538) adds LC_CTYPE to it
    when the caller's locale is C, and the jail must get what the caller had.
    """
    try:
        with open("/proc/self/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return dict(os.environ)
    env = {}
    for item in raw.split(b"\0"):
        key, sep, value = item.partition(b"=")
        if sep:
            env[os.fsdecode(key)] = os.fsdecode(value)
    return env


def _reaper_argv(spec: JailSpec, user: User | None, status_fd: int, go_fd: int) -> list[str]:
    if user is None:
        ids = ["-1", "-1", "-"]     # the reaper's "no user": no set*id call
    else:
        from ..users import invalid_ids
        why = invalid_ids(user)
        if why:   # -1 would read as "no user" and run the command as root
            raise JailError(f"{user.name}: {why}")
        ids = [str(user.uid), str(user.gid), ",".join(map(str, user.groups)) or "-"]
    persist = ["-p"] if spec.persist else []     # FreeBSD's persist (reaper.c)
    return ["linjail-reaper", str(status_fd), str(go_fd), *ids, *persist, "--", *spec.command]


# --- waiting for the command -----------------------------------------------------------

def shell_status(st: int) -> int:
    """A wait status as a shell reports it: the exit code, or 128+N for signal N."""
    return os.WEXITSTATUS(st) if os.WIFEXITED(st) else 128 + os.WTERMSIG(st)


def wait_status(status_fd: int, pid: int) -> int:
    """The command's exit status as a shell reports it (128+N for signal N)."""
    data = b""
    while len(data) < 4:
        try:
            chunk = os.read(status_fd, 4 - len(data))
        except InterruptedError:
            continue
        if not chunk:
            break
        data += chunk
    os.close(status_fd)
    if len(data) == 4:
        (st,) = struct.unpack("i", data)
        return shell_status(st)
    # the reaper died before reporting (killed by jailctl remove): its own status
    try:
        _, st = os.waitpid(pid, 0)
        return shell_status(st)
    except ChildProcessError:
        return 128 + int(signal.SIGKILL)


def run_jail(spec: JailSpec, *, stdin: int, stdout: int, stderr: int,
             on_jid: Callable[[int], None] | None = None) -> int:
    """Create the jail, run its command, wait for it; the jail may live on."""
    with SigintDeferred() as intr:
        started = start(spec, stdin=stdin, stdout=stdout, stderr=stderr)
        try:
            if on_jid is not None:
                on_jid(started.jid)
            intr.check()
        except BaseException:
            abandon(started)
            raise
        go(started)
    return finish(started)


def finish(started: Started) -> int:
    """The command's status, once the relays hold everything it wrote."""
    status = wait_status(started.status_fd, started.pid)
    if started.stdio is not None:
        started.stdio.drain()
    return status


class SigintDeferred:
    """Ctrl-C waits while a jail is being made (issue 16, item 3).

    A KeyboardInterrupt in the middle of start() could land anywhere, even
    inside an import (Python then reports a RuntimeError), and an undo that
    is itself interrupted leaves things half-made.  So SIGINT is blocked
    while the jail is made; the caller asks check() at the point where it
    can still abandon the jail (the command has not run), and a Ctrl-C that
    comes later fires when the block ends — after go(), where the caller's
    handler passes it to the command.  Children forked meanwhile inherit the
    block: the reaper (reaper.c) and jexec's command unblock it before exec.
    """

    def __enter__(self) -> "SigintDeferred":
        self.old = signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])
        return self

    def check(self) -> None:
        """KeyboardInterrupt if a Ctrl-C came while blocked (it stays pending)."""
        if signal.SIGINT in signal.sigpending():
            raise KeyboardInterrupt

    def __exit__(self, *exc: object) -> None:
        signal.pthread_sigmask(signal.SIG_SETMASK, self.old)   # a pending one fires here


def go(started: Started) -> None:
    """Let the jail's command run: the reaper waits for this byte."""
    os.write(started.go_fd, b"g")
    os.close(started.go_fd)


def abandon(started: Started) -> None:
    """Undo a jail whose command never ran (`jail -i` could not print the
    JID, or Ctrl-C came before go()): its PID 1 is killed, the host side and
    the record released — nothing is left half-made."""
    _kill_and_reap(started.pid)
    for fd in (started.go_fd, started.status_fd, started.pty_master):
        if fd is not None:
            _close(fd)
    if started.stdio is not None:
        started.stdio.close()
    release(started.record)
