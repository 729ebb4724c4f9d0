"""The operations of the runtime spec (runtime.md "Operations") on jails.

  create   config.json -> Container -> JailSpec; the lifecycle's start()
           with ContainerInit as the first process; the jail is in the
           registry (jls shows it) and its process waits on exec.fifo
  start    a byte into exec.fifo: process.args runs
  state    the state JSON
  kill     a signal to the container's process (--all: to every process
           of the jail's cgroup); through a pidfd, so a reused PID is safe
  delete   a stopped container's remains: the jail's record and cgroups,
           the state directory (--force kills a live one first)
  run      create + start, then (without --detach) wait, exit with the
           process's status, and delete

Status transitions are exactly runtime.md's: creating -> created (create
returned) -> running (start) -> stopped (the process is gone); kill and
delete refuse what the spec says they must refuse.
"""
from __future__ import annotations

import _signal as signal   # the C module: no enum import
import os
import sys
import time

from ..errors import JailError
from ..fsutil import atomic_write
from ..state import registry
from . import store

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..lifecycle.relay import Pty
    from ..lifecycle.start import Started
    from .cgroups import Write
    from .config import Container
    from ..model import Knobs


# --- create ----------------------------------------------------------------------------

def _now() -> str:
    """RFC 3339 in UTC with nanoseconds, as runc writes "created"."""
    ns = time.time_ns()
    t = time.gmtime(ns // 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{ns % 1_000_000_000:09d}Z"


def other_name(cid: str, root: str) -> str:
    """The jail's name when a live jail already has the container's id as
    its name (a container of the same id under another --root: ids are
    unique per root only): the id, `~` and 8 hex digits of the root's path.
    (The registry says so when the jail is made: no lookup beforehand.)"""
    import zlib
    return f"{cid}~{zlib.crc32(os.path.realpath(root).encode()):08x}"


def create(root: str, cid: str, bundle: str, *, pid_file: str = "",
           console_socket: str = "", preserve_fds: int = 0,
           tty: Pty | None = None) -> tuple[store.State, Started]:
    """Make container CID from BUNDLE and leave its process waiting for start.

    TTY (run in the foreground, no console socket): the terminal the
    caller relays; the container's process gets a pty of its own devpts."""
    from . import config
    from ..state.knobs import get_defaults
    store.check_id(cid)
    if os.geteuid() != 0:
        raise JailError("linjail-oci runs as root (rootless containers are not supported)")
    try:
        bundle = os.path.realpath(bundle or ".", strict=True)
    except OSError as err:
        raise JailError(f"bundle {bundle}: {os.strerror(err.errno or 2)}") from None
    knobs = oci_knobs(get_defaults())
    c, doc = config.load(bundle, knobs)
    if c.process is None:
        raise JailError("config.json: process: missing (nothing to run)")
    from .cgroups import plan as resources_plan
    writes = resources_plan(c.resources)      # refused now, before anything is made
    if c.process.terminal and not console_socket and tty is None:
        raise JailError("process.terminal is true: --console-socket is required")
    if not c.process.terminal and console_socket:
        raise JailError("--console-socket given but process.terminal is false")
    path = store.make_dir(root, cid)
    st = store.State(id=cid, bundle=bundle, rootfs=c.root, created=_now(),
                     annotations=c.annotations, creator=os.getpid(),
                     creator_start=registry.starttime(os.getpid()) or 0)
    try:
        return st, _create(root, path, c, doc, st, pid_file, console_socket, preserve_fds,
                           tty, writes)
    except BaseException:
        from .cgroups import Cgroups
        Cgroups(st.cgroups_path, st.cgroups_made, st.cgroup_dirs).remove()
        store.remove(root, cid)
        raise


def _create(root: str, path: str, c: Container, doc: dict[str, Any], st: store.State,
            pid_file: str, console_socket: str, preserve_fds: int,
            tty: Pty | None, writes: list[Write]) -> Started:
    from . import jsonio as json
    from . import config
    from .init import ContainerInit
    from ..lifecycle.start import start
    from ..state.knobs import get_defaults
    store.write(root, st)
    atomic_write(os.path.join(path, "config.json"), json.dumps(doc).encode(), mode=0o600)
    fifo = store.fifo_path(root, st.id)
    os.mkfifo(fifo, 0o600)
    bpf = None
    if c.seccomp is not None:
        from .seccomp import compile_config
        bpf = compile_config(c.seccomp)
    st.jail = st.id
    from .cgroups import Cgroups
    cg = Cgroups.for_container(c.cgroups_path, other_name(st.id, root))
    # a cgroup mount shows the v1 hierarchies the container is in (rootfs.mount_cgroups)
    c = c.replace(mounts=tuple(m.replace(options=",".join(sorted(cg.dirs)))
                               if m.kind == "cgroup" else m for m in c.mounts))
    # jexec's processes count in the container's cgroups too (from the record's first write)
    spec = config.to_spec(c, st.jail, oci_knobs(get_defaults())).replace(
        v1dirs=tuple(sorted(set(cg.dirs.values()))))
    st.cgroups_path, st.cgroup_dirs, st.cgroups_made = cg.path, cg.dirs, cg.made
    store.write(root, st)        # first: a create killed now leaves what delete removes
    cg.create(writes, c.resources)   # (a failure: create() removes what it made)
    store.write(root, st)
    pass_fds = _preserved(preserve_fds)
    assert c.process is not None
    placeholder = None
    sock = None
    if c.process.terminal and tty is None:
        sock = _connect(console_socket)
        placeholder = os.openpty()        # stands in for the jail's own pty (start())
    elif c.process.terminal and tty is not None:
        placeholder = (-1, tty.slave)
    try:
        stdio = (placeholder[1],) * 3 if placeholder else (0, 1, 2)
        # the library's errors carry no program name (errors.py): raised as they are
        init = ContainerInit(c, fifo, bpf, cg, st.id)
        try:
            started = start(spec, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                            pty_slave=placeholder[1] if placeholder else None,
                            pass_fds=pass_fds, become=init)
        except JailError as err:
            if err.message != f'"{st.jail}" already exists':
                raise
            st.jail = other_name(st.id, root)      # nothing was made: again, renamed
            started = start(spec.replace(name=st.jail), stdin=stdio[0], stdout=stdio[1],
                            stderr=stdio[2], pty_slave=placeholder[1] if placeholder else None,
                            pass_fds=pass_fds, become=init)
        for fd in (started.go_fd, started.status_fd):
            os.close(fd)
        if c.process.terminal:
            if started.pty_master is None:
                raise JailError("process.terminal: the container has no devpts to make "
                                "its terminal on")
            if c.process.console_size:
                _winsize(started.pty_master, *c.process.console_size)
            if sock is not None:
                from ..kernel import unixsock
                unixsock.send(sock, b"/dev/ptmx", [started.pty_master])
                os.close(started.pty_master)
            elif tty is not None:
                tty.adopt(started.pty_master)
    finally:
        if placeholder and tty is None:
            os.close(placeholder[0])
            os.close(placeholder[1])
        if sock is not None:
            os.close(sock)
    st.pid = started.pid
    st.starttime = started.record.starttime
    st.jid = started.jid
    st.v2cgroup = started.record.cgroup
    st.creator = st.creator_start = 0
    store.write(root, st)
    if pid_file:
        write_pid_file(pid_file, started.pid)
    return started


def _preserved(n: int) -> tuple[int, ...]:
    """--preserve-fds N: fds 3 .. 3+N-1 go into the container, as the jail
    rule allows (pipes and stream sockets); anything else is refused."""
    if n < 0:
        raise JailError("--preserve-fds: must not be negative")
    from ..lifecycle import stdio
    fds = tuple(range(3, 3 + n))
    for fd in fds:
        kind = stdio.classify(fd)
        if kind not in ("pipe", "stream"):
            raise JailError(f"--preserve-fds: fd {fd} is a {kind}: only pipes and stream "
                            f"sockets cross into a jail")
    return fds


def _connect(path: str) -> int:
    import _socket
    sock = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as err:
        sock.close()
        raise JailError(f"--console-socket {path}: {os.strerror(err.errno or 0)}") from None
    return sock.detach()


def _winsize(fd: int, rows: int, cols: int) -> None:
    import fcntl
    import struct
    import termios
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def write_pid_file(path: str, pid: int) -> None:
    """The PID, no newline (runc's pid file), written atomically."""
    full = os.path.abspath(path)
    try:
        atomic_write(full, str(pid).encode(), mode=0o644)
    except OSError as err:
        raise JailError(f"--pid-file {path}: {os.strerror(err.errno or 0)}") from None


# --- start, state, kill -----------------------------------------------------------------

def start(root: str, cid: str) -> None:
    with store.Lock(root, cid):
        st = store.read(root, cid)
        now = store.status(root, st)
        if now != "created":
            raise JailError(f"cannot start a container that is {now}: {cid}")
        fifo = store.fifo_path(root, cid)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOFOLLOW)
        except OSError:
            # no reader: the process died between the status and here
            raise JailError(f"cannot start a container that is stopped: {cid}") from None
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
        os.unlink(fifo)
    _after_hooks(root, st, "poststart", "running")


def _after_hooks(root: str, st: store.State, kind: str, status: str,
                 doc: dict[str, Any] | None = None) -> None:
    """poststart, poststop: a failure is a warning (runtime.md), on stderr."""
    if doc is None:
        doc = stored_config(root, st.id, hooks_only=True)
    if "hooks" not in doc:
        return          # (the usual case: neither config.py nor hooks.py is loaded)
    from . import hooks
    from .config import parse_hooks
    given = parse_hooks(doc).get(kind)
    if not given:
        return
    state = hooks.state_json(st.id, status, st.pid if status != "stopped" else 0, st.bundle,
                             st.annotations)
    for line in hooks.warn_all(kind, given, state):
        sys.stderr.write(f"linjail-oci: warning: {line}\n")


def state(root: str, cid: str) -> dict[str, Any]:
    return store.view(root, store.read(root, cid))


SIGNALS = {name: num for num, name in enumerate(
    ("", "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
     "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
     "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "PWR", "SYS"))
    if name}
SIGNALS.update({"IOT": 6, "POLL": 29, "CLD": 17})


def parse_signal(text: str) -> int:
    """runc's forms: a number, NAME or SIGNAME (any case), RTMIN+N, RTMAX-N."""
    name = text.upper()
    name = name[3:] if name.startswith("SIG") else name
    num = -1
    if text.isdigit():
        num = int(text)
    elif name in SIGNALS:
        num = SIGNALS[name]
    else:
        for base, sign, first in (("RTMIN", "+", 34), ("RTMAX", "-", 64)):
            rest = name[len(base):] if name.startswith(base) else None
            if rest == "":
                num = first
            elif rest is not None and rest[:1] == sign and rest[1:].isdigit():
                num = first + int(rest[1:]) if sign == "+" else first - int(rest[1:])
    if not 0 < num <= 64:
        raise JailError(f"unknown signal {text!r}")
    return num


def kill(root: str, cid: str, sig: int, every: bool = False) -> None:
    with store.Lock(root, cid):
        st = store.read(root, cid)
        now = store.status(root, st)
        if now not in ("created", "running", "paused"):
            raise JailError(f"container {cid} is {now}: cannot send it a signal")
        if every:
            from ..confine import cgroup
            for pid in cgroup.pids(st.v2cgroup):
                _signal_pid(pid, None, sig)
            if now == "paused" and sig == signal.SIGKILL:
                return
            return
        if not _signal_pid(st.pid, st.starttime, sig):
            raise JailError(f"container {cid} is stopped: cannot send it a signal")


def _signal_pid(pid: int, start: int | None, sig: int) -> bool:
    """SIG to PID through a pidfd, after checking (with START) that the PID
    is still the one recorded; False if it is gone."""
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        return False
    try:
        if start is not None and not registry.pid_alive(pid, start):
            return False
        signal.pidfd_send_signal(fd, sig)
        return True
    except ProcessLookupError:
        return False
    finally:
        os.close(fd)


# --- delete -------------------------------------------------------------------------------

def delete(root: str, cid: str, force: bool = False) -> None:
    with store.Lock(root, cid):
        st = store.read(root, cid)
        now = store.status(root, st)
        if now != "stopped":
            if not force:
                raise JailError(f"cannot delete container {cid} that is not stopped: {now}")
            _kill_all(st)
        doc = _remove(root, st)
    _after_hooks(root, st, "poststop", "stopped", doc)


def _remove(root: str, st: store.State) -> dict[str, Any]:
    """destroy(), keeping the stored config for the poststop hooks."""
    doc = stored_config(root, st.id, hooks_only=True) if os.path.exists(
        os.path.join(store.container_dir(root, st.id), "config.json")) else {}
    destroy(root, st)
    return doc


def _kill_all(st: store.State, timeout: float = 10.0) -> None:
    """SIGKILL to every process of the jail (thawed first: a frozen process
    dies only once thawed), then wait until the container's process is gone."""
    from ..confine import cgroup
    from . import cgroups
    if st.v2cgroup:
        if cgroups.frozen(st.v2cgroup):
            try:
                cgroups.freeze(st.v2cgroup, False)
            except OSError:
                pass
        cgroup.kill(st.v2cgroup)
    _signal_pid(st.pid, st.starttime, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while registry.pid_alive(st.pid, st.starttime):
        if time.monotonic() > deadline:
            raise JailError(f"container {st.id}: its process did not die")
        time.sleep(0.01)


def destroy(root: str, st: store.State) -> None:
    """Release what a stopped container left: its jail's record and cgroups
    (the one teardown, lifecycle/start.release), then its directory."""
    from ..lifecycle.start import release
    from .cgroups import Cgroups
    if st.jid:
        with registry.Lock():
            rec = registry.read(st.jid)
            if rec is not None and rec.name == st.jail and not rec.live():
                release(rec)
    Cgroups(st.cgroups_path, st.cgroups_made, st.cgroup_dirs).remove()
    store.remove(root, st.id)


# --- run ----------------------------------------------------------------------------------

def run(root: str, cid: str, bundle: str, *, pid_file: str = "", console_socket: str = "",
        preserve_fds: int = 0, detach: bool = False, keep: bool = False) -> int:
    """create + start; without DETACH wait for the process and return its
    status as a shell reports it, deleting the container unless KEEP.  In
    the foreground a config asking for a terminal gets one relayed to the
    caller's (as `jail` relays a jail's), signals go to the process."""
    from ..lifecycle.start import shell_status
    if detach:
        create(root, cid, bundle, pid_file=pid_file, console_socket=console_socket,
               preserve_fds=preserve_fds)
        start(root, cid)
        return 0
    from ..lifecycle import relay
    tty = None if console_socket else relay.Pty()
    try:
        st, started = create(root, cid, bundle, pid_file=pid_file,
                             console_socket=console_socket, preserve_fds=preserve_fds,
                             tty=tty)
    except BaseException:
        if tty is not None:
            os.close(tty.master)
            os.close(tty.slave)
        raise
    if tty is not None:
        os.close(tty.slave)
        if started.pty_master is None:      # no terminal asked for: nothing to relay
            os.close(tty.master)
            tty = None
    try:
        start(root, cid)
    except BaseException:
        _abandon(root, st)
        raise

    def forward(sig: int) -> None:
        _signal_pid(st.pid, st.starttime, sig)
    relay.forward_signals(forward, tty)
    if tty is not None:
        done = os.pidfd_open(started.pid)
        relay.relay(tty, done)
        os.close(done)
    while True:
        try:
            _, status = os.waitpid(started.pid, 0)
            break
        except InterruptedError:
            continue
    if started.stdio is not None:
        started.stdio.drain()
    if not keep:
        with store.Lock(root, cid):
            final = store.read(root, cid)
            doc = _remove(root, final)
        _after_hooks(root, final, "poststop", "stopped", doc)
    return shell_status(status)


def _abandon(root: str, st: store.State) -> None:
    try:
        with store.Lock(root, st.id):
            _kill_all(st)
            destroy(root, st)
    except JailError:
        pass


# --- exec, pause, resume, ps, update ------------------------------------------------------

def stored_config(root: str, cid: str, hooks_only: bool = False) -> dict[str, Any]:
    """The config.json the container was created from (its copy in ROOT/ID).

    HOOKS_ONLY (poststart, poststop): {} for a copy without the text
    `"hooks"`, unparsed.  The copy is create's jsonio.dumps, which never
    escapes an ASCII key, so a copy without that text has no hooks."""
    from . import jsonio as json
    path = os.path.join(store.container_dir(root, cid), "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
        if hooks_only and b'"hooks"' not in data:
            return {}
        doc: dict[str, Any] = json.loads(data)
    except (OSError, ValueError) as err:
        raise JailError(f"{path}: {err}") from None
    return doc


def exec_(root: str, cid: str, process: dict[str, Any], *, detach: bool = False,
          pid_file: str = "", console_socket: str = "", preserve_fds: int = 0) -> int:
    """Run PROCESS (a process object) in the container, as create runs its
    own: the container's namespaces and cgroups, the jail's confinement and
    the config's seccomp profile, the user and capabilities it names.  The
    process's status (128+N for signal N), or 0 with DETACH once it runs."""
    from ..lifecycle import attach, sweep
    from ..model import Knobs
    from . import config
    from .init import ExecProcess
    st = store.read(root, cid)
    now = store.status(root, st)
    if now not in ("created", "running"):
        raise JailError(f"cannot exec in a container that is {now}: {cid}")
    rec = sweep.jail(st.jid)
    if rec is None:
        raise JailError(f"cannot exec in a container that is stopped: {cid}")
    p = config.process_of(process, Knobs.from_dict(rec.knobs))
    if rec.uid_map:                 # the config's user namespace: ids it maps
        config.check_mapped(p, rec.id_maps())
    if p.terminal and detach and not console_socket:
        raise JailError("exec --tty --detach needs --console-socket")
    if console_socket and not p.terminal:
        raise JailError("--console-socket given without --tty (process.terminal)")
    bpf = None
    profile = stored_config(root, cid).get("linux", {}).get("seccomp")
    if profile:
        from .seccomp import compile_config
        bpf = compile_config(profile)
    sock = _connect(console_socket) if console_socket else None

    def console(master: int) -> None:
        assert sock is not None
        if p.console_size:
            _winsize(master, *p.console_size)
        from ..kernel import unixsock
        unixsock.send(sock, b"/dev/ptmx", [master])
    hooks = attach.Hooks(become=ExecProcess(p, bpf), detach=detach,
                         on_pid=(lambda pid: write_pid_file(pid_file, pid)) if pid_file else None,
                         console=console if sock is not None else None)
    try:
        return attach.exec_in_jail(st.jid, p.args, env={}, interactive=p.terminal,
                                   pass_fds=_preserved(preserve_fds), hooks=hooks)
    except JailError as err:
        if "jail_attach" in err.message:
            raise JailError(f"cannot exec in a container that is stopped: {cid}") from None
        raise
    finally:
        if sock is not None:
            os.close(sock)


def exec_process(root: str, cid: str, args: list[str], *, env: list[str], cwd: str,
                 user: str, groups: list[str], caps: list[str], tty: bool,
                 no_new_privs: bool) -> dict[str, Any]:
    """runc exec's process from its options: the container's own process
    object with ARGS, ENV (a NAME given again replaces the old value), CWD,
    USER (uid[:gid]), more GROUPS and CAPS (added to every set)."""
    import copy
    base = copy.deepcopy(stored_config(root, cid).get("process") or {})
    if not args:
        raise JailError("exec: a command is required")
    base["args"] = list(args)
    if env:
        names = {e.split("=", 1)[0] for e in env}
        base["env"] = [e for e in base.get("env") or [] if e.split("=", 1)[0] not in names]
        base["env"] += env
    if cwd:
        base["cwd"] = cwd
    user_obj = dict(base.get("user") or {})
    if user:
        uid, _, gid = user.partition(":")
        if not uid.isdigit() or (gid and not gid.isdigit()):
            raise JailError(f"--user {user}: not uid[:gid] (numbers)")
        user_obj["uid"], user_obj["gid"] = int(uid), int(gid or 0)
    for g in groups:
        if not g.isdigit():
            raise JailError(f"--additional-gids {g}: not a number")
        user_obj.setdefault("additionalGids", []).append(int(g))
    base["user"] = user_obj
    if caps:
        sets = base.setdefault("capabilities", {})
        for kind in ("bounding", "effective", "permitted", "inheritable", "ambient"):
            sets[kind] = list(dict.fromkeys((sets.get(kind) or []) + caps))
    if no_new_privs:
        base["noNewPrivileges"] = True
    base["terminal"] = tty
    return base


def pause(root: str, cid: str, on: bool) -> None:
    """pause (cgroup.freeze of the jail's cgroup2 directory) or resume."""
    from . import cgroups
    with store.Lock(root, cid):
        st = store.read(root, cid)
        now = store.status(root, st)
        want = "running" if on else "paused"
        if now != want:
            raise JailError(f"container {cid} is {now}, not {want}")
        try:
            cgroups.freeze(st.v2cgroup, on)
        except OSError as err:
            raise JailError(f"{'pause' if on else 'resume'}: {err.strerror or err}") from None


def pids(root: str, cid: str) -> list[int]:
    """The host PIDs of every process of the container (its jail's cgroup)."""
    from ..confine import cgroup
    st = store.read(root, cid)
    if store.status(root, st) == "stopped":
        return []
    return sorted(cgroup.pids(st.v2cgroup))


def update(root: str, cid: str, resources: dict[str, Any]) -> None:
    """New linux.resources for a created, running or paused container."""
    from .cgroups import Cgroups, plan
    from .config import ConfigError
    if resources.get("devices"):
        raise ConfigError("linux.resources.devices", "cannot be changed once created")
    writes = plan(resources)
    with store.Lock(root, cid):
        st = store.read(root, cid)
        now = store.status(root, st)
        if now == "stopped":
            raise JailError(f"cannot update a container that is stopped: {cid}")
        Cgroups(st.cgroups_path, st.cgroups_made, st.cgroup_dirs).update(
            writes, resources, st.v2cgroup)


# --- spec -------------------------------------------------------------------------------------

def spec_template(args: tuple[str, ...] = ("sh",)) -> dict[str, Any]:
    """`linjail-oci spec`: a config.json a jail can be, runc's template
    adapted: the jail's capability set, its /dev, /proc and read-only /sys,
    its own namespaces, the runtimes' masked and read-only paths."""
    from ..confine import caps, rootfs
    from ..state.knobs import get_defaults
    from .config import OCI_VERSION
    names = [f"CAP_{caps.NAMES[c]}" for c in sorted(caps.keep_set(get_defaults()))]
    proc_masked = [f"/proc/{p}" for p in rootfs.PROC_MASKED_FILES + rootfs.PROC_MASKED_DIRS]
    return {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True, "user": {"uid": 0, "gid": 0}, "args": list(args),
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {k: names for k in ("bounding", "effective", "permitted")},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "linjail",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount",
                                                  "cgroup")],
            "maskedPaths": proc_masked + [f"/sys/{d}" for d in rootfs.SYS_MASKED_DIRS],
            "readonlyPaths": [f"/proc/{p}" for p in rootfs.PROC_READONLY],
        },
    }


def write_spec(bundle: str) -> None:
    from . import jsonio as json
    path = os.path.join(bundle or ".", "config.json")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise JailError(f"{path} exists: remove it first") from None
    except OSError as err:
        raise JailError(f"{path}: {os.strerror(err.errno or 0)}") from None
    try:
        os.write(fd, (json.dumps(spec_template(), indent=4) + "\n").encode())
    finally:
        os.close(fd)


def oci_knobs(knobs: Knobs) -> Knobs:
    """A container follows its config.json, not jail.unprivileged_root
    (issue 11): a user namespace only when linux.namespaces asks for one,
    with the config's own mappings (config.to_spec sets the knob then)."""
    return knobs.replace(unprivileged_root=0)
