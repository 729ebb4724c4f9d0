"""jail_attach: running a command inside a running jail (`jexec`, rc.conf's exec_stop).

  jexec (host)          joiner (host PID ns, jail's other namespaces)     command (in the jail)
  ------------          -------------------------------------------       ---------------------
  lookup, ns fds
  clone3 into the  -->  non-dumpable; [setns user: jail root]; setns
  jail's cgroup         cgroup ipc uts net pid mnt; -U lookup; fork --->  setsid; close fds;
                        report its PID; wait; exit with its status       caps; seccomp; setuid;
  forward signals,                                                        chdir /; execvp
  relay the pty

The joiner and the command stay non-dumpable until execve, so jailed root
(without CAP_SYS_PTRACE) cannot read their memory, descriptors or
/proc/PID/exe, which name host files (runc CVE-2016-9962, CVE-2019-5736).
The joiner is never visible inside the jail: it stays in the host's PID
namespace.  In a jail with a user namespace (issue 11) it enters that one
first and becomes jailed root (confine/userns.py join), before any other.
"""
from __future__ import annotations

import _signal as signal   # the C module: `signal` would import enum (startup cost)
import fcntl
import os
import stat
import struct
import sys
import termios
import warnings  # noqa: F401  os.execvpe imports it, after we have entered the jail

from ..errors import JailError, one_line, render, write_fd
from ..record import Record, record
from ..kernel import libc
from ..model import Knobs, User
from ..state import registry
from ..kernel import unixsock
from . import confinement, sweep
from .start import (REAPER, SigintDeferred, caller_environment, check_stdio, enter_dir,
                    shell_status)
from .stdio import Prepared, close_all_but, place, prepare

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Mapping, Sequence
    from ..confine.limits import Plan

    from .relay import Pty

# order: cgroup first (its view is computed from the cgroup we just joined),
# the mount namespace last (it changes our root and cwd)
_NAMESPACES = (("cgroup", libc.CLONE_NEWCGROUP), ("ipc", libc.CLONE_NEWIPC),
               ("uts", libc.CLONE_NEWUTS), ("net", libc.CLONE_NEWNET),
               ("pid", libc.CLONE_NEWPID), ("mnt", libc.CLONE_NEWNS))


@record()
class Hooks(Record):
    """What a caller other than jexec changes (linjail-oci exec).

    BECOME runs in the command once it is in the jail with its descriptors,
    session and terminal, in place of the rest (cwd, rlimits, confinement,
    user, exec): it never returns.  DETACH: the command lives on by itself
    (the joiner leaves once it runs, so it goes to the nearest subreaper:
    conmon, containerd-shim), exec_in_jail returns 0.  ON_PID gets the
    command's host PID as soon as it exists.  CONSOLE gets the master of a
    pty of the jail's own devpts, which is then the command's terminal
    (instead of relaying the caller's)."""
    become: Callable[[confinement.Confinement], None] | None = None
    detach: bool = False
    on_pid: Callable[[int], None] | None = None
    console: Callable[[int], None] | None = None


def _attach_failed(jid: int | str, text: str = "Invalid argument") -> JailError:
    return JailError(f"jail_attach({jid}) failed: {text}")


def open_namespaces(rec: registry.JailRecord) -> list[tuple[int, int]]:
    fds = []
    # a jail with a user namespace: that one first (confine/userns.py join)
    order = ((("user", libc.CLONE_NEWUSER),) if rec.uid_base else ()) + _NAMESPACES
    try:
        for name, flag in order:
            fds.append((os.open(f"/proc/{rec.pid}/ns/{name}", os.O_RDONLY | os.O_CLOEXEC),
                        flag))
    except OSError:
        for fd, _ in fds:
            os.close(fd)
        raise _attach_failed(rec.jid) from None
    # the PID might have been reused between the lookup and the opens
    if not registry.pid_alive(rec.pid, rec.starttime):
        for fd, _ in fds:
            os.close(fd)
        raise _attach_failed(rec.jid)
    return fds


def exec_in_jail(jid: int, argv: Sequence[str], *, env: Mapping[str, str] | None = None,
                 stdin: int | None = 0, stdout: int | None = 1, stderr: int | None = 2,
                 user: str | None = None, host_user: User | None = None,
                 interactive: bool = False, cwd: str | None = None, login: bool = False,
                 exec_error: str = "", closed: frozenset[int] = frozenset(),
                 pass_fds: tuple[int, ...] = (), hooks: Hooks = Hooks()) -> int:
    """Run ARGV in jail JID like jexec; returns its exit status (128+N for a signal).

    FreeBSD's additions: CWD instead of /; LOGIN (jexec -l, jail(8)'s
    exec.clean): a clean environment for the user (root without one), the
    user's home as the directory unless CWD is given, and an empty ARGV runs
    the user's login shell.  EXEC_ERROR formats an exec failure ({cmd},
    {err}) instead of jexec's own line.  The descriptors follow the same rule
    as a jail's first command (stdio.py): pipes and stream sockets pass
    (PASS_FDS, above 2), the rest is replaced."""
    rec = sweep.jail(jid)
    if rec is None or rec.state != "running":
        raise _attach_failed(jid)
    check_stdio((stdin, stdout, stderr))
    knobs = Knobs.from_dict(rec.knobs)
    confine = confinement.prepare(knobs)
    if rec.exec_knobs != registry.knobs_text(rec.knobs) and not rec.v1dirs and \
            not rec.uid_map:     # (an OCI config's mappings: Python's way, userns.py)
        # the next jexec into this jail may be the launcher's own (C)
        plan = confinement.exec_plan(knobs, confine, rec.jid)
        if plan is not None:
            registry.remember_exec_plan(rec, plan.caps, plan.seccomp, plan.v1)
    nsfds = open_namespaces(rec)
    try:
        from . import relay
        pty = relay.Pty() if hooks.console else relay.maybe_pty() if interactive else None
        # CLOSED: fds 0-2 the caller did not have: the command has none either
        fds = (None if 0 in closed else stdin, None if 1 in closed else stdout,
               None if 2 in closed else stderr)
        handed = prepare(pty.stdio(fds) if pty else fds, REAPER,
                         keep=(pty.slave,) if pty else ())
        if rec.uid_base:
            from ..confine import userns
            gids = rec.id_maps()[1]
            userns.own_stdio(handed.fds, rec.uid_base,
                             next((h for j, h, _ in gids if j == 0), 0))
    except BaseException:
        for fd, _ in nsfds:
            os.close(fd)
        raise
    try:
        return _exec(rec, nsfds, confine, argv, env, handed, pty, user, host_user,
                     interactive, pass_fds, (cwd, login, exec_error), hooks)
    finally:
        handed.close()


def _exec(rec: registry.JailRecord, nsfds: list[tuple[int, int]],
          confine: confinement.Confinement, argv: Sequence[str], env: Mapping[str, str] | None,
          handed: Prepared, pty: Pty | None, user: str | None,
          host_user: User | None, interactive: bool, pass_fds: tuple[int, ...],
          how: tuple[str | None, bool, str], hooks: Hooks) -> int:
    cwd, login, exec_error = how
    from . import relay
    environment = caller_environment() if env is None else dict(env)
    stdio = (handed.fds[0], handed.fds[1], handed.fds[2])
    pid_r, pid_w = unixsock.pair()
    from .. import users  # noqa: F401  (the joiner needs it after entering the jail)
    import select  # noqa: F401  (write_fd waits with it on a full non-blocking stderr)
    from ..confine import cgroup  # noqa: F401  (imported once, not in the joiner)
    from ..state import rctl
    if rctl.exists():
        from ..confine import limits  # noqa: F401  (rctl rules exist: the joiner uses it)
    if user is not None or login:
        from ..confine import rootfs  # noqa: F401  (-U, -l read the jail's files with it)
    target = 0

    def forward(sig: int) -> None:
        try:
            os.kill(target, sig)
        except ProcessLookupError:
            pass
    cgroup_fd = _open_cgroup(rec.cgroup)
    # Ctrl-C waits until the command exists, then reaches it (start.py)
    with SigintDeferred():
        try:
            # the joiner starts in the jail's cgroup: no migration (libc.clone3)
            joiner = os.fork() if cgroup_fd is None else \
                libc.clone3(libc.CLONE_INTO_CGROUP, cgroup_fd)
        finally:
            if cgroup_fd is not None:
                os.close(cgroup_fd)
        if joiner == 0:
            try:    # never back into the launcher's code, whatever escapes
                os.close(pid_r)
                _joiner(rec, nsfds, confine, list(argv), environment, stdio, pid_w, user,
                        host_user, pty.slave if pty else None, (cwd, login, exec_error),
                        pass_fds, joined=cgroup_fd is not None, hooks=hooks)
            finally:
                os._exit(1)
        handed.handed_over()
        os.close(pid_w)
        for fd, _ in nsfds:
            os.close(fd)
        if pty is not None:
            os.close(pty.slave)
        data, fds = unixsock.recv(pid_r, 4, 1)
        os.close(pid_r)
        if fds and pty is not None:
            pty.adopt(fds[0])      # a pty of the jail's own devpts
        target = struct.unpack("i", data)[0] if len(data) == 4 else joiner
        if hooks.on_pid is not None and len(data) == 4:
            hooks.on_pid(target)
        if hooks.console is not None and pty is not None:
            hooks.console(pty.master)      # the caller's terminal: none to relay
            os.close(pty.master)
            pty = None
        if interactive:
            relay.forward_signals(forward, pty)
    # jexec's launcher blocked the signals it passes on from its start
    # (launcher.c): one that came meanwhile reaches the command now
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _PASSED_ON)
    if pty is not None:
        # a pidfd becomes readable when the joiner exits: the relay's stop signal
        done = os.pidfd_open(joiner)
        relay.relay(pty, done)
        os.close(done)
    while True:
        try:
            st = os.waitpid(joiner, 0)[1]
            break
        except InterruptedError:
            continue
    if hooks.detach:
        return shell_status(st)       # the joiner's: 0 once the command runs
    handed.drain()
    return shell_status(st)


#: what jexec's launcher blocks until the command's PID is known (launcher.c;
#: relay.FORWARDED and SIGWINCH), unblocked for the command
_PASSED_ON = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1,
              signal.SIGUSR2, signal.SIGCONT, signal.SIGWINCH)


def _open_cgroup(path: str) -> int | None:
    """The jail's cgroup2 directory to clone the joiner into, or None: then
    the joiner joins it itself (and says why it cannot)."""
    if not path:
        return None
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return None


def _joiner(rec: registry.JailRecord, nsfds: list[tuple[int, int]],
            confine: confinement.Confinement, argv: list[str], env: dict[str, str],
            stdio: tuple[int | None, int | None, int | None], pid_w: int, user: str | None,
            host_user: User | None, pty_slave: int | None,
            how: tuple[str | None, bool, str] = (None, False, ""),
            pass_fds: tuple[int, ...] = (), joined: bool = False,
            hooks: Hooks = Hooks()) -> None:
    code = 1
    try:
        # the launcher passes the caller's signals to the command; a Ctrl-C
        # at a terminal also reaches this helper, which is no part of it
        for sig in (signal.SIGINT, signal.SIGQUIT):
            signal.signal(sig, signal.SIG_IGN)
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        # before entering anything: only what the command is given stays open
        # (and the caller's 0-2, where the joiner itself reports)
        close_all_but([0, 1, 2] + [fd for fd in stdio if fd is not None] + list(pass_fds) +
                      [pid_w] + [fd for fd, _ in nsfds])
        if rec.cgroup and not joined:
            from ..confine import cgroup
            cgroup.join(rec.cgroup)
        for path in filter(None, rec.v1dirs.split(":")):   # an OCI cgroupsPath
            libc.write_file(os.path.join(path, "cgroup.procs"), b"0")
        rlimits = None
        if "linjail.confine.limits" in sys.modules:     # rctl rules exist
            from ..confine import limits
            rlimits = limits.attach(rec)   # its v1 cgroups; rctl's rlimits, if any
        for fd, flag in nsfds:
            if flag == libc.CLONE_NEWUSER:
                from ..confine import userns
                if rlimits is not None:
                    userns.raise_hard_limits(rlimits)    # while host root may
                userns.join(fd)
            else:
                libc.setns(fd, flag)
            os.close(fd)
        master = None
        if pty_slave is not None:
            master, slave = _jail_pty()
            if master is not None:
                stdio = tuple(slave if fd == pty_slave else fd for fd in stdio)  # type: ignore
        who = host_user
        if user is not None:
            # the joiner holds every capability: no symlink, no fifo (SPEC §7)
            from ..confine.rootfs import jail_user
            who = jail_user(user, rec.path)
        cwd, login, exec_error = how
        if login:
            from ..confine.rootfs import jail_user
            from ..users import login_env
            if who is None:
                who = jail_user("root", rec.path)
            env = login_env(who, env.get("TERM"))
            if cwd is None:
                cwd = who.home
            if not argv:     # the user's login shell, named as login(1) names it
                shell = who.shell or "/bin/sh"
                argv = [shell, "-" + os.path.basename(shell)]
            else:
                argv = [argv[0], *argv]
        else:
            argv = [argv[0], *argv]
        child = os.fork()
        if child == 0:
            try:
                _command(argv, env, stdio, pass_fds, confine, who, rlimits, cwd or "/",
                         exec_error, hooks.become)
            finally:
                os._exit(1)
        unixsock.send(pid_w, struct.pack("i", child), [master] if master else [])
        os.close(pid_w)
        if hooks.detach:
            os._exit(0)       # the command goes to the nearest subreaper
        if master is not None:
            os.close(master)
        for given in set(stdio):
            if given is not None and given > 2:
                os.close(given)
        while True:
            try:
                st = os.waitpid(child, 0)[1]
                break
            except InterruptedError:
                continue
        code = shell_status(st)
    except JailError as err:    # this process is jexec's: it says jexec's line
        write_fd(2, render("jexec", err) + "\n")
    except OSError as err:
        write_fd(2, f"jexec: {err.strerror}\n")
    except BaseException as err:
        write_fd(2, one_line(f"jexec: internal error: {type(err).__name__}: {err}") + "\n")
    os._exit(code)


def _jail_pty() -> tuple[int | None, int]:
    """A pty pair from the jail's devpts, or (None, -1) if it has none.

    Only /dev/pts/ptmx of the devpts instance linjail mounted is accepted:
    no symlink on the way (jailed root owns /dev), and the node must be the
    5:2 character device (jailed root cannot make device nodes).
    """
    try:
        master = libc.openat2(-100, "/dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY,
                              libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_SYMLINKS |
                              libc.RESOLVE_NO_MAGICLINKS)
    except OSError:
        return None, -1
    st = os.fstat(master)
    if not stat.S_ISCHR(st.st_mode) or st.st_rdev != os.makedev(5, 2):
        os.close(master)
        return None, -1
    fcntl.ioctl(master, libc.TIOCSPTLCK, b"\0\0\0\0")
    slave = fcntl.ioctl(master, libc.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave


def _command(argv: list[str], env: dict[str, str],
             stdio: tuple[int | None, int | None, int | None], pass_fds: tuple[int, ...],
             confine: confinement.Confinement, who: User | None,
             rlimits: Plan | None = None, cwd: str = "/", exec_error: str = "",
             become: Callable[[confinement.Confinement], None] | None = None) -> None:
    """ARGV is the file to execute followed by the command's own argv."""
    try:
        mapping: dict[int, int | None] = {0: stdio[0], 1: stdio[1], 2: stdio[2]}
        mapping.update({fd: fd for fd in pass_fds})
        place(mapping)
        os.setsid()
        if os.isatty(0):
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        if become is not None:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _PASSED_ON)
            become(confine)         # never returns
            os._exit(1)
        try:
            enter_dir(cwd)      # in the jail's root, no magic link (start.py)
        except OSError as err:
            write_fd(2, one_line(f"jexec: chdir(): {cwd}: {os.strerror(err.errno or 0)}") + "\n")
            os._exit(1)
        if rlimits is not None:
            from ..confine import limits     # loaded by the joiner: no file is read
            limits.jail_rlimits(rlimits)
        confinement.apply(confine)
        if who is not None:
            os.setgroups(list(who.groups))
            os.setgid(who.gid)
            os.setuid(who.uid)
        # what Python and the launcher changed is not the command's: SIGPIPE
        # and SIGXFSZ ignored, SIGINT/SIGQUIT ignored (the joiner), SIGINT
        # blocked (SigintDeferred), the signals jexec passes on blocked (the
        # launcher); caught signals reset at exec by themselves
        libc.default_signals()     # (also what whoever started jexec ignored)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _PASSED_ON)
        # dies with the joiner, which dies with jexec: `kill -9 jexec` ends the
        # command, as on DragonFly where jexec is the command (after setuid:
        # a change of credentials clears the setting)
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)
        try:
            os.execvpe(argv[0], argv[1:], env)
        except OSError as err:
            text = os.strerror(err.errno or 0)
            if exec_error:      # the caller's own line; 127 says it was printed
                write_fd(2, one_line(exec_error.format(cmd=argv[0], err=text)) + "\n")
                os._exit(127)
            write_fd(2, one_line(f"jexec: execvp({argv[0]}) failed: {text}") + "\n")
    except BaseException as err:
        write_fd(2, one_line(f"jexec: {err}") + "\n")
    os._exit(1)

