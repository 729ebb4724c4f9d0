"""`jailctl start|stop|restart|status`: DragonFly's /etc/rc.d/jail (SPEC §8).

Start is an ordered table of steps; each step that changes something pushes
its undo, and a jail that fails to start has them run in reverse (STYLE 8).
The jail itself is made by the same library as `jail` (run_jail), through a
small Backend so the steps are unit-tested with a recording fake.

Which jail runs under which name is kept in id files (lifecycle/idfiles.py).
"""
from __future__ import annotations

import _signal as signal   # the C module: `signal` would import enum (startup cost)
import os
import stat
from dataclasses import dataclass, field
from typing import Callable, Protocol, Sequence, TextIO

from linjail.config import fstab
from linjail.config.jails import (FatalConfig, JailConfig, RcVars, StartFailure, build_spec,
                                  checkyesno,
                                  real_root, resolve, split_command, valid_name)
from linjail.display import shown
from linjail.errors import JailError, as_bytes, described, render
from linjail.lifecycle.idfiles import DirLock, id_path, read_id, unlink_quiet, varrun, write_id
from linjail.lifecycle.rc_jailconf import ConfJails
from linjail.model import JailSpec, Knobs, Mount
from linjail.state.hostfile import HostFile, HostFileError, open_host_file

#: rc.d/jail: `killall -j JID -TERM; sleep 1; killall -j JID -KILL`
STOP_GRACE = 1.0


class RunningJail(Protocol):
    """What rc.d reads of a running jail's registry record
    (linjail.state.registry.JailRecord, or a test's fake)."""

    @property
    def jid(self) -> int: ...

    @property
    def pid(self) -> int: ...

    @property
    def starttime(self) -> int: ...

    @property
    def ips(self) -> Sequence[str]: ...

    @property
    def name(self) -> str: ...


class Backend(Protocol):
    """The jail library as rc.d needs it; RealBackend or a test's fake."""

    def run_jail(self, spec: JailSpec, *, stdin: int, stdout: int, stderr: int,
                 on_jid: Callable[[int], None] | None = None) -> int: ...

    def exec_in_jail(self, jid: int, argv: Sequence[str], *, env: dict[str, str],
                     stdin: int, stdout: int, stderr: int) -> int: ...

    def remove_jail(self, jid: int, grace: float = 1.0) -> None: ...

    def lookup(self, jid: int) -> RunningJail | None: ...

    def has_processes(self, jid: int) -> bool: ...

    def jail_paths(self) -> list[str]: ...

    def get_defaults(self) -> Knobs: ...

    def set_defaults(self, knobs: Knobs) -> None: ...


class RealBackend:
    """The real library; imports load only when a step needs them (STYLE 13)."""

    def run_jail(self, spec: JailSpec, *, stdin: int, stdout: int, stderr: int,
                 on_jid: Callable[[int], None] | None = None) -> int:
        from linjail.lifecycle.start import run_jail
        return run_jail(spec, stdin=stdin, stdout=stdout, stderr=stderr, on_jid=on_jid)

    def exec_in_jail(self, jid: int, argv: Sequence[str], *, env: dict[str, str],
                     stdin: int, stdout: int, stderr: int) -> int:
        from linjail.lifecycle.attach import exec_in_jail
        return exec_in_jail(jid, argv, env=env, stdin=stdin, stdout=stdout, stderr=stderr)

    def remove_jail(self, jid: int, grace: float = 1.0) -> None:
        from linjail.lifecycle.remove import remove_jail
        remove_jail(jid, grace)

    def lookup(self, jid: int) -> RunningJail | None:
        from linjail.lifecycle import sweep
        rec: RunningJail | None = sweep.jail(jid)
        return rec

    def has_processes(self, jid: int) -> bool:
        """Whether jail JID has a process besides its PID 1.

        Its PID 1 reports the command's status and only then sees that no
        process is left and exits: until it has, the record is still live.
        """
        from linjail.confine import cgroup
        from linjail.lifecycle import sweep
        rec = sweep.jail(jid)
        return rec is not None and any(p != rec.pid for p in cgroup.pids(rec.cgroup))

    def jail_paths(self) -> list[str]:
        from linjail.lifecycle import sweep
        return [r.path for r in sweep.jails()]

    def get_defaults(self) -> Knobs:
        from linjail.state import knobs
        return knobs.get_defaults()

    def set_defaults(self, value: Knobs) -> None:
        from linjail.state import knobs
        knobs.set_defaults(value)


class ExecFailure(StartFailure):
    """exec_start failed: rc.d/jail prints what it wrote after the reason."""


class ExecTimeout(BaseException):
    """exec_timeout passed: raised by SIGALRM into the wait for exec_start or
    exec_stop (a BaseException, like KeyboardInterrupt: no `except Exception`
    in the library swallows it; the library undoes what it was doing)."""


class Deadline:
    """FreeBSD's exec.timeout for one command: SIGALRM after SECONDS (0: none).

    Armed once the jail exists, disarmed as soon as the wait returns; the
    caller turns ExecTimeout into a failed start or a warning.
    """

    def __init__(self, seconds: int) -> None:
        self.seconds = seconds
        self.armed = False
        self.old: object = None

    def arm(self) -> None:
        if self.seconds <= 0 or self.armed:
            return
        self.old = signal.signal(signal.SIGALRM, self._expired)
        self.armed = True
        signal.setitimer(signal.ITIMER_REAL, float(self.seconds))

    def disarm(self) -> None:
        if not self.armed:
            return
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, self.old if self.old is not None else signal.SIG_DFL)
        self.armed = False

    @staticmethod
    def _expired(signum: int, frame: object) -> None:
        raise ExecTimeout


# -- steps with undo ----------------------------------------------------------

class Undo:
    """What a start did, to be undone in reverse if a later step fails."""

    def __init__(self) -> None:
        self.actions: list[tuple[str, Callable[[], None]]] = []

    def push(self, what: str, action: Callable[[], None]) -> None:
        self.actions.append((what, action))

    def unwind(self, warn: Callable[[str], None]) -> None:
        while self.actions:
            what, action = self.actions.pop()
            try:
                action()
            except (OSError, JailError) as e:
                text = e.message if isinstance(e, JailError) else str(e)
                warn(f"undoing {what}: {text}")


@dataclass
class StartJob:
    """One jail's start in progress."""
    cfg: JailConfig
    spec: JailSpec | None = None
    log: HostFile | None = None
    jid: int = 0
    id_error: str = ""
    undo: Undo = field(default_factory=Undo)

    def output(self) -> bytes:
        """What exec_start wrote (the console log is truncated at each start)."""
        if self.log is None:
            return b""
        try:
            return os.pread(self.log.fd, 1 << 20, 0)
        except OSError:
            return b""                 # a device (/dev/null): nothing to show

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


@dataclass(frozen=True)
class Step:
    name: str
    run: Callable[["RcService", StartJob], None]


def run_steps(steps: Sequence[Step], svc: "RcService", job: StartJob) -> None:
    try:
        for step in steps:
            step.run(svc, job)
    except BaseException:
        job.undo.unwind(svc.warn)
        raise


def _step_plan(svc: "RcService", job: StartJob) -> None:
    """Validate and build the JailSpec: nothing is changed yet."""
    cfg = job.cfg
    root = real_root(cfg.rootdir)
    mounts: tuple[Mount, ...] = ()
    if cfg.mount_enable:
        if not os.path.exists(cfg.fstab):
            raise FatalConfig(f"{cfg.fstab} does not exist")      # rc.d/jail: err 3
        try:
            entries = fstab.read(cfg.fstab)
        except fstab.FstabError as e:
            raise StartFailure(str(e)) from None
        roots = (cfg.rootdir, root)
        for entry in entries:
            if fstab.symlink_in_path(root, fstab.inside(entry.target, roots)):
                # rc.d/jail's check: warn, mount nothing from this fstab
                svc.warn(f"{entry.target} has symlink as parent - not mounting from {cfg.fstab}")
                break
        else:
            mounts = fstab.to_mounts(entries, roots)
    job.spec = build_spec(cfg, root=root, knobs=svc.backend.get_defaults(), mounts=mounts)
    from ..confine.userns import settle
    knobs, why = settle(job.spec.knobs)
    if why:
        svc.warn(f"{cfg.name}: {why}")
        job.spec = job.spec.replace(knobs=knobs)


def _step_console(svc: "RcService", job: StartJob) -> None:
    """Open the console log, overwritten at each start (rc.d: `tail +2 > log`).

    It may sit in a tree jailed root controls: opened without following a
    symlink there, and only if it is a regular file (state/hostfile.py).
    """
    assert job.spec is not None
    own = [job.spec.path] + ([job.spec.overlay[1]] if job.spec.overlay else [])
    try:
        log = open_host_file(job.cfg.consolelog, svc.jail_trees(own), read=True)
    except HostFileError as e:
        raise StartFailure(e.message) from None
    job.log = log
    if stat.S_ISREG(os.fstat(log.fd).st_mode):        # not /dev/null
        try:
            os.ftruncate(log.fd, 0)
        except OSError as e:
            raise StartFailure(f"{log.path}: {e.strerror}") from None
    # a log we created and nothing wrote to is not worth leaving behind
    job.undo.push(f"console log {log.path}", log.remove_if_empty)


def _step_create(svc: "RcService", job: StartJob) -> None:
    """`jail FLAGS -i ROOTDIR HOSTNAME IP EXEC_START`, waiting for exec_start."""
    assert job.spec is not None
    path = svc.id_path(job.cfg.name)

    deadline = Deadline(job.cfg.exec_timeout)

    def on_jid(jid: int) -> None:
        # record the jail as soon as it exists, so that a jailctl killed while
        # exec_start runs leaves a jail that `stop` can find
        job.jid = jid
        job.undo.push(f"jail {jid}", lambda: svc.remove_quietly(jid, path))
        try:
            write_id(path, jid)
        except OSError as e:
            job.id_error = f"{path}: {e.strerror}"
        deadline.arm()         # exec_start runs from now on

    assert job.log is not None
    null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
    try:
        try:
            status = svc.backend.run_jail(job.spec, stdin=null, stdout=job.log.fd,
                                          stderr=job.log.fd, on_jid=on_jid)
        finally:
            deadline.disarm()
    except ExecTimeout:
        # FreeBSD's jail(8): "COMMAND: timed out", and the jail is removed (undo)
        raise ExecFailure(f"{job.cfg.exec_start}: timed out") from None
    except (JailError, OSError) as e:     # the library's words, with their hint
        raise StartFailure(described(e)) from None
    finally:
        os.close(null)
    if job.id_error:
        raise StartFailure(job.id_error)
    if status != 0:
        # rc.d/jail: `echo " cannot start jail \"NAME\": "`, then the output
        raise ExecFailure("")


def _step_record(svc: "RcService", job: StartJob) -> None:
    """No id file for a jail that has ended (exec_start left no process)."""
    if not svc.backend.has_processes(job.jid):
        unlink_quiet(svc.id_path(job.cfg.name))


START_STEPS: tuple[Step, ...] = (
    Step("plan", _step_plan),
    Step("console log", _step_console),
    Step("create", _step_create),
    Step("record", _step_record),
)


# -- the service --------------------------------------------------------------

class RcService:
    """start/stop/restart/status over one rc.conf, printing as rc.d/jail does."""

    def __init__(self, rc: RcVars, backend: Backend, out: TextIO, err: TextIO,
                 directory: str | None = None) -> None:
        self.rc = rc
        self.backend = backend
        self.out = out
        self.err = err
        self.directory = directory if directory is not None else varrun()
        self.conf_jails = ConfJails(self)      # FreeBSD's jail.conf beside rc.conf

    # output
    def say(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    def warn(self, message: str) -> None:
        self.out.flush()
        self.err.write(f"jailctl: WARNING: {message}\n")
        self.err.flush()

    def id_path(self, name: str) -> str:
        return id_path(name, self.directory)

    def jail_trees(self, own: Sequence[str]) -> tuple[str, ...]:
        """Every tree some jail's root may write: roots of the jail at hand, of
        every jail in rc.conf and of every running jail, and thin jails' layers."""
        from linjail.thinroot import layer_path
        roots = set(own)
        roots.update(v for k, v in self.rc.values.items()
                     if k.startswith("jail_") and k.endswith("_rootdir") and v)
        roots.update(self.backend.jail_paths())
        trees: set[str] = set()
        for root in roots:
            real = os.path.realpath(root)
            trees.update((real, os.path.realpath(layer_path(real))))
        return tuple(sorted(trees))

    # id files
    def running(self, name: str) -> RunningJail | None:
        """The running jail NAME's id file names; a stale id file is removed.

        Running: the registry record of that JID is live (its boot id, and the
        PID and start time of its PID 1, say so) and it is the record of jail NAME,
        not of another jail that got the JID after a reboot or a wrap.
        """
        path = self.id_path(name)
        exists, jid = read_id(path)
        if not exists:
            return None
        rec = self.backend.lookup(jid) if jid is not None else None
        if rec is not None and rec.name == name:
            return rec
        try:
            os.unlink(path)
        except OSError:
            pass              # gone already, or `status` run by a user: still stale
        return None

    def remove_quietly(self, jid: int, path: str) -> None:
        if self.backend.lookup(jid) is not None:
            try:
                self.backend.remove_jail(jid, STOP_GRACE)
            except JailError:
                # its PID 1 ended (a failed exec.start) and the jail was
                # released between the two looks: removed all the same
                if self.backend.lookup(jid) is not None:
                    raise
        unlink_quiet(path)

    def _names(self, names: list[str], force: bool) -> list[str] | None:
        """The jails to act on, or None when rc.conf disables the service."""
        if not names and not force and not self.rc.jail_enable(self.warn):
            return None
        # FreeBSD: with jail.conf, an empty jail_list means all its jails
        return names or self.rc.jail_list() or self.conf_jails.all_names()

    # start
    def start(self, names: list[str], force: bool = False) -> int:
        todo = self._names(names, force)
        if todo is None:
            return 0
        with DirLock(self.directory):
            self._default_knobs()
            self._rctl_rules()
            self.say("Starting jails:")
            failed = False
            try:
                for name in todo:
                    if self.conf_jails.defines(name):
                        failed |= not self.conf_jails.start_one(name)
                        continue
                    failed |= not self._start_one(resolve(self.rc, name, self.warn))
            except (JailError, OSError):
                self.say("\n")     # end the pending line before the error
                raise
            self.say(".\n")
        return 1 if failed else 0

    def _rctl_rules(self) -> None:
        """rc.d/rctl: with rctl_enable, each rule of rctl_rules is added (rctl -a)
        before the jails start; a refused rule is rctl's one line on stderr."""
        if not checkyesno(self.rc.get("rctl_enable") or "NO", "rctl_enable", self.warn):
            return
        from linjail.lifecycle import rctlrules

        def err(text: str) -> None:
            self.out.flush()
            self.err.write(f"rctl: {text}\n")
            self.err.flush()
        rctlrules.load_file(self.rc.get("rctl_rules") or "/etc/rctl.conf", err)

    def _default_knobs(self) -> None:
        current = self.backend.get_defaults()
        want, changed = self.rc.default_knobs(current, self.warn)
        if changed:
            try:
                self.backend.set_defaults(want)
            except OSError as e:
                raise JailError(f"jail.defaults: {e.strerror}") from None
        self.say("Default global settings for jails:" + "".join(f" {w}" for w in changed)
                 + ".\n")

    def _start_one(self, cfg: JailConfig) -> bool:
        if self.running(cfg.name) is not None:
            self.say(f" [{cfg.hostname} already running ({self.id_path(cfg.name)} exists)]")
            return True
        job = StartJob(cfg)
        try:
            run_steps(START_STEPS, self, job)
        except StartFailure as e:
            self.say(f" cannot start jail \"{cfg.name}\": {e.reason}\n")
            if isinstance(e, ExecFailure):
                self.say(shown(job.output()))
            return False
        finally:
            job.close()
        self.say(f" {cfg.hostname}")
        return True

    # stop
    def stop(self, names: list[str], force: bool = False) -> int:
        todo = self._names(names, force)
        if todo is None:
            return 0
        failed = False
        with DirLock(self.directory):
            self.say("Stopping jails:")
            if checkyesno(self.rc.get("jail_reverse_stop") or "NO", "jail_reverse_stop",
                          self.warn):
                todo = list(reversed(todo))    # FreeBSD's jail_reverse_stop
            try:
                for name in todo:
                    if self.conf_jails.defines(name):
                        failed |= not self.conf_jails.stop_one(name)
                        continue
                    failed |= not self._stop_one(name)
            except (JailError, OSError):
                self.say("\n")     # end the pending line before the error
                raise
            self.say(".\n")
        return 1 if failed else 0

    def _stop_one(self, name: str) -> bool:
        if not valid_name(name):
            raise FatalConfig(f"Invalid jail name {name!r}")
        rec = self.running(name)
        if rec is None:
            # not a failure: the jail is stopped, which is what was asked
            self.say(f" cannot stop jail {name}. No jail id in {self.directory}\n")
            return True
        cfg = resolve(self.rc, name, self.warn)
        if cfg.exec_stop:
            self._exec_stop(cfg, rec.jid)
        try:
            # exec_stop may already have ended the jail (its last daemon gone):
            # that is a stopped jail, not a failure
            if self.backend.lookup(rec.jid) is not None:
                self.backend.remove_jail(rec.jid, STOP_GRACE)
        except (JailError, OSError) as e:
            if self.backend.lookup(rec.jid) is not None:
                self.say(f" cannot stop jail {name}: {described(e)}\n")
                return False
        unlink_quiet(self.id_path(name))
        self.say(f" {cfg.hostname}")
        return True

    def _exec_stop(self, cfg: JailConfig, jid: int) -> None:
        """`env -i jexec JID EXEC_STOP >> consolelog 2>&1`; its failure is ignored."""
        try:
            argv = split_command(cfg.exec_stop, cfg.var("exec_stop"))
        except StartFailure as e:
            self.warn(e.reason)
            return
        log: HostFile | None = None
        try:
            log = open_host_file(cfg.consolelog, self.jail_trees([cfg.rootdir]), append=True)
            out = log.fd
        except HostFileError as e:
            self.warn(e.message)
            out = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        null = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
        deadline = Deadline(cfg.exec_timeout)
        try:
            try:
                deadline.arm()
                self.backend.exec_in_jail(jid, argv, env={}, stdin=null, stdout=out,
                                          stderr=out)
            finally:
                deadline.disarm()
        except ExecTimeout:
            # the stop goes on: SIGTERM, a second, SIGKILL end it with the jail
            self.warn(f"{cfg.name}: {cfg.exec_stop}: timed out")
        except JailError as e:
            os.write(out, as_bytes(render("jexec", e) + "\n"))    # as jexec says it
        finally:
            os.close(null)
            if log is not None:
                log.close()
            else:
                os.close(out)

    # restart, status
    def restart(self, names: list[str], force: bool = False) -> int:
        todo = self._names(names, force)
        if todo is None:
            return 0
        stopped = self.stop(todo, True)
        started = self.start(todo, True)
        return started or stopped

    def status(self, names: list[str], force: bool = False) -> int:
        """One line per configured jail; 0 if all run, else 3 (LSB: not running)."""
        todo = names or self.rc.jail_list() or self.conf_jails.all_names()
        code = 0
        for name in todo:
            if self.conf_jails.defines(name):
                code = max(code, self.conf_jails.status_one(name))
                continue
            if not valid_name(name):
                raise FatalConfig(f"Invalid jail name {name!r}")
            rec = self.running(name)
            if rec is None:
                self.say(f"{name}: stopped\n")
                code = 3
            else:
                ips = " ".join(rec.ips) or "(none)"
                self.say(f"{name}: running, jid {rec.jid}, addresses {ips}"
                         f"{_oom_note(rec)}\n")
        return code


def _oom_note(rec: RunningJail) -> str:
    """rctl: processes the jail's memory limit killed, if any (racct.oom_kills)."""
    if not hasattr(rec, "cgroup"):
        return ""          # a test's fake record
    from linjail.confine import racct
    kills = racct.oom_kills(rec)  # type: ignore[arg-type]
    if not kills:
        return ""
    return f", {kills} process{'es' if kills > 1 else ''} killed by its memoryuse limit"
