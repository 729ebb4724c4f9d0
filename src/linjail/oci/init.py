"""The container's process: the jail's first process becomes it (PID 1 inside,
unless the config joins a pod's pid namespace: then the pod's PID 1 is another's).

linjail's reaper does not stand in front of process.args (README
"linjail-oci"): tini, catatonit and systemd expect to be PID 1, conmon and
containerd-shim wait for the PID in --pid-file and read its wait status, and
the kernel's rules for PID 1 (signals without a handler are not delivered,
its exit ends every other process of the container) are then exactly the
runtime spec's.  This module is the lifecycle's Become for it:

  before_pivot (host paths in view)     become (after pivot_root)
  ---------------------------------     --------------------------------------
  maskedPaths, readonlyPaths            rootfsPropagation, cwd (in the root,
  sysctls (this process's namespaces,   no magic link), look process.args[0]
    through the host's /proc)             up in the config's PATH
  oomScoreAdj, domainname               setsid, the terminal, rlimits, umask
  root read-only                        the jail's seccomp filter, the
  open exec.fifo (O_RDWR)                 config's (stacked: both apply)
                                        bounding set, setgroups/setgid/setuid
                                          with the capability sets kept
                                        no_new_privs; ready (create returns)
                                        read exec.fifo: `start` writes a byte
                                        execve(process.args)

Errors before ready are `create`'s one line; after it the container's
process can only say it on its own stderr and exit 127.
"""
from __future__ import annotations

import fcntl
import os
import resource
import stat

from ..errors import JailError, write_fd
from ..kernel import libc
from .cgroups import write_value as _write

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ..confine.rootfs import Root
    from ..lifecycle.confinement import Confinement
    from .cgroups import Cgroups
    from .config import Container, Process

_PROPAGATION = {"private": libc.MS_PRIVATE, "slave": libc.MS_SLAVE,
                "shared": 1 << 20, "unbindable": 1 << 17}



class ContainerInit:
    """start()'s Become for one container."""

    def __init__(self, c: Container, fifo: str, seccomp_bpf: bytes | None = None,
                 cgroups: Cgroups | None = None, cid: str = "") -> None:
        assert c.process is not None
        self.c = c
        self.p: Process = c.process
        self.fifo = fifo
        self.seccomp_bpf = seccomp_bpf
        self.cgroups = cgroups
        self.cid = cid
        self.fifo_fd = -1        # opened before the user namespace (before_userns)
        # after pivot_root the package's files are out of reach: what runs
        # there is imported now, and only if this container needs it
        if c.hooks:
            from . import hooks  # noqa: F401  (two kinds run after pivot_root)
        if self.p.terminal:
            import termios  # noqa: F401

    def state(self, status: str, pid: int) -> bytes:
        from .hooks import state_json
        return state_json(self.cid, status, pid, self.c.bundle, self.c.annotations)

    # --- the launcher ---------------------------------------------------------------------

    def join(self, pid: int) -> None:
        if self.cgroups is not None:
            self.cgroups.join(pid)

    def prepared(self, pid: int) -> None:
        # prestart (deprecated) is older than the "creating" status: the
        # validation suite wants "created" for it, as runc gave it
        for kind, status in (("prestart", "created"), ("createRuntime", "creating")):
            if self.c.hooks.get(kind):
                from . import hooks
                hooks.run(kind, self.c.hooks[kind], self.state(status, pid))

    # --- the first process, still host root ------------------------------------------------

    def before_userns(self) -> None:
        """(a config with a user namespace) What jailed root may not do:
        open exec.fifo (host root's, 0600) and lower the OOM score; both
        outlive the user namespace's steps (descriptor, inherited value)."""
        self.fifo_fd = os.open(self.fifo, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)
        if self.p.oom_score_adj is not None:
            _write("/proc/self/oom_score_adj", str(self.p.oom_score_adj),
                   "process.oomScoreAdj")

    # --- before pivot_root ----------------------------------------------------------------

    def before_pivot(self, root: Root) -> list[int]:
        from ..confine import rootfs
        for path in self.c.masked:
            rootfs.mask(root, path.lstrip("/"))
        for path in self.c.readonly_paths:
            rootfs.make_readonly(root, path.lstrip("/"))
        for key, value in self.c.sysctl:
            _write(os.path.join("/proc/sys", key.replace(".", "/")), value,
                   f"linux.sysctl.{key}")
        if self.p.oom_score_adj is not None and self.fifo_fd < 0:
            _write("/proc/self/oom_score_adj", str(self.p.oom_score_adj),
                   "process.oomScoreAdj")
        if any(kind == "uts" for kind, _ in self.c.join):
            # the runtime spec: the names are set in the container's UTS
            # namespace, a joined one too (runc does the same); the pod's
            # own names when the config gives none
            if self.c.hostname:
                libc.sethostname(self.c.hostname.encode())
            if self.c.domainname:
                libc.setdomainname(self.c.domainname.encode())
        elif self.c.domainname:
            libc.setdomainname(self.c.domainname.encode())
        if self.c.hooks.get("createContainer"):
            from . import hooks
            # the host's /proc is still this process's: /proc/self is its host PID
            hooks.run("createContainer", self.c.hooks["createContainer"],
                      self.state("creating", int(os.readlink("/proc/self"))))
        if self.c.readonly:
            rootfs.readonly_root(root)
        # O_RDWR: this process is a writer too, so its read blocks until
        # `start` writes (a FIFO without writers would read EOF at once)
        if self.fifo_fd >= 0:
            return [self.fifo_fd]
        return [os.open(self.fifo, os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW)]

    # --- after pivot_root -----------------------------------------------------------------

    def become(self, kept: list[int], confine: Confinement,
               ready: Callable[[], None]) -> None:
        p = self.p
        if self.c.propagation:
            flag = _PROPAGATION[self.c.propagation.lstrip("r")]
            rec = libc.MS_REC if self.c.propagation.startswith("r") else 0
            libc.mount(None, "/", None, flag | rec)
        os.setsid()
        if p.terminal and os.isatty(0):
            import termios
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        host_pid = int(os.readlink("/proc/self")) if self.c.hooks.get("startContainer") else 0
        exe, env = prepare(p, confine, self.seccomp_bpf)
        fifo = kept[0]
        ready()
        # from here on the launcher is gone: failures are the container's own
        while True:
            try:
                got = os.read(fifo, 1)
                break
            except InterruptedError:
                continue
        if not got:
            os._exit(1)
        os.close(fifo)
        if self.c.hooks.get("startContainer"):
            from . import hooks
            try:
                hooks.run("startContainer", self.c.hooks["startContainer"],
                          self.state("running", host_pid))
            except JailError as err:
                write_fd(2, f"linjail-oci: {err.message}\n")
                os._exit(127)
        execute(p, exe, env, self.seccomp_bpf)


class ExecProcess:
    """attach.Hooks.become for `linjail-oci exec`: the process joined the
    container's namespaces and cgroups (lifecycle/attach.py), has its
    descriptors, session and terminal; this makes it the process the
    config's process object (or exec's options) describe, as create does."""

    def __init__(self, p: Process, seccomp_bpf: bytes | None) -> None:
        self.p = p
        self.seccomp_bpf = seccomp_bpf

    def __call__(self, confine: Confinement) -> None:
        try:
            exe, env = prepare(self.p, confine, self.seccomp_bpf)
        except JailError as err:
            write_fd(2, f"linjail-oci: {err.message}\n")
            os._exit(127 if err.message.startswith("exec") else 1)
        except OSError as err:
            write_fd(2, f"linjail-oci: {err.strerror}\n")
            os._exit(1)
        execute(self.p, exe, env, self.seccomp_bpf)


def prepare(p: Process, confine: Confinement, bpf: bytes | None) -> tuple[str, dict[str, str]]:
    """Everything before the exec of process.args: its directory (in the
    root, no magic link), the program found, rlimits, umask, the jail's
    seccomp filter and the config's, the user and capabilities,
    no_new_privs.  (executable, environment)."""
    from ..lifecycle.start import enter_dir
    try:
        enter_dir(p.cwd)
    except OSError as err:
        raise JailError(f"process.cwd {p.cwd}: {os.strerror(err.errno or 0)}") from None
    env = dict(item.split("=", 1) for item in p.env)
    exe = lookup(p.args[0], env.get("PATH"))
    for res, soft, hard in p.rlimits:
        resource.setrlimit(res, (_rlim(soft), _rlim(hard)))
    os.umask(p.umask if p.umask is not None else 0o022)
    from ..confine import seccomp
    seccomp.install(confine.bpf)           # the jail's own filter, first
    if bpf is not None and not p.no_new_privileges:
        # without no_new_privs a filter needs CAP_SYS_ADMIN: load it now
        # (what follows must pass it, as with runc)
        seccomp.install(bpf)
    _identity(p, confine.keep)
    if p.no_new_privileges:
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    return exe, env


def execute(p: Process, exe: str, env: dict[str, str], bpf: bytes | None) -> None:
    """The config's filter (with no_new_privs it comes last), the signals
    at their defaults, execve; a failure is the process's own (status 127)."""
    from ..confine import seccomp
    try:
        if bpf is not None and p.no_new_privileges:
            seccomp.install(bpf)
        libc.default_signals()
        os.execve(exe, list(p.args), env)
    except OSError as err:
        write_fd(2, f"linjail-oci: exec {p.args[0]}: {os.strerror(err.errno or 0)}\n")
    os._exit(127)


def lookup(name: str, path: str | None) -> str:
    """process.args[0] as runc finds it: a name with a slash as is, any other
    in the config's PATH (exec.LookPath); an executable regular file."""
    if "/" in name:
        candidates = [name]
    else:
        if not path:
            raise JailError(f'exec: "{name}": executable file not found in $PATH '
                            f'(process.env has no PATH)')
        candidates = [os.path.join(d or ".", name) for d in path.split(":")]
    for cand in candidates:
        try:
            st = os.stat(cand)
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
            return cand
    if "/" in name:
        try:
            st = os.stat(name)
        except OSError as err:
            raise JailError(f"exec: {name}: {os.strerror(err.errno or 0)}") from None
        raise JailError(f"exec: {name}: {os.strerror(13)}")
    raise JailError(f'exec: "{name}": executable file not found in $PATH')


def _rlim(value: int) -> int:
    return resource.RLIM_INFINITY if value >= 0xFFFFFFFFFFFFFFFF else value


def _identity(p: Process, keep: frozenset[int]) -> None:
    """Bounding set, user, then the other capability sets, as runc orders them.

    Without process.capabilities the process has the jail's set (KEEP) as a
    jail's command has.  With them, every set is already within KEEP
    (config.py).  PR_SET_KEEPCAPS carries the permitted set across setuid
    to a user other than root; the ambient set is what such a user keeps
    across execve (capabilities(7))."""
    from ..confine import caps
    want = p.caps
    caps.drop(keep if want is None else want.bounding)   # ambient, inheritable cleared
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    os.setgroups(list(p.groups))
    os.setgid(p.gid)
    os.setuid(p.uid)
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)
    if want is None:
        eff, perm, _ = libc.capget()
        libc.capset(eff & caps.mask(keep), perm & caps.mask(keep), 0)
        return
    try:
        libc.capset(caps.mask(want.effective), caps.mask(want.permitted),
                    caps.mask(want.inheritable))
    except OSError as err:
        raise JailError(f"process.capabilities: capset: {err.strerror} (effective must be "
                        f"within permitted)") from None
    for cap in sorted(want.ambient):
        try:
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)
        except OSError as err:
            if p.uid == 0:
                # root gets its bounding set at execve whatever the ambient
                # set says (runc's own template asks for ambient capabilities
                # it does not make inheritable; runc ignores the failure)
                continue
            raise JailError(f"process.capabilities.ambient: CAP_{caps.NAMES[cap]}: "
                            f"{err.strerror} (it must be permitted and inheritable)") from None
