"""The watcher of one jail's rctl rules that act after the fact.

FreeBSD's racctd(9) wakes once a second, updates every container's usage
and applies the rules whose action is `log`, `devctl` or a signal; `deny`
acts at allocation time.  On Linux the cgroups, rlimits and IPC limits deny
by themselves (confine/limits.py); what remains — log and signal actions,
wallclock, and telling that the memory limit killed a process — is done by
this process: started by `jail`/`jailctl start` or `rctl -a` for a jail that
has such a rule (rctlplan.Plan.needs_watcher), once a second it reads the
jail's usage (racct.py)
and its rules, acts once when a rule becomes exceeded (again only after the
usage went back under it, as FreeBSD's rrl_exceeded), and exits with the
jail or when no such rule is left.  STATE/rctl/watch.JID names it, so that
there is one per jail.

Messages go to syslog (/dev/log) when there is one, else to STATE/rctl/log,
and to the jail's console log when rc.conf gave one:
  rctl: rule "jail:www:maxproc:log=50" matched by jail www (jid 7), usage 51
  rctl: jail www (jid 7): a process was killed by the memoryuse limit
"""
from __future__ import annotations

import os
import time

from ..fsutil import atomic_write
from ..state import registry
from .rctlplan import plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config.rctl import Rule
    from ..state.registry import JailRecord

TICK = 1.0


def _watch_file(jid: int) -> str:
    return os.path.join(registry.state_dir(), "rctl", f"watch.{jid}")


def running(jid: int) -> bool:
    try:
        with open(_watch_file(jid)) as f:
            pid, start = (int(x) for x in f.read().split()[:2])
    except (OSError, ValueError):
        return False
    return registry.pid_alive(pid, start)


def ensure(rec: JailRecord, console_log: str | None = None) -> None:
    """Start the jail's watcher unless one runs; returns at once."""
    if running(rec.jid):
        return
    child = os.fork()
    if child == 0:
        try:
            _detach()
            if os.fork() == 0:
                _main(rec, console_log)
        finally:
            os._exit(0)
    os.waitpid(child, 0)


def _detach() -> None:
    """Nothing of the caller's: no descriptor (a test's capture pipe would
    never see EOF), its own session, / as cwd."""
    from ..kernel import libc
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    libc.close_range(3)
    os.setsid()
    os.chdir("/")


def _main(rec: JailRecord, console_log: str | None) -> None:
    from ..kernel import libc
    try:
        libc.prctl(15, int.from_bytes(b"rctl-watch\0", "little"))  # PR_SET_NAME
    except OSError:
        pass
    me = os.getpid()
    path = _watch_file(rec.jid)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    atomic_write(path, f"{me} {registry.starttime(me) or 0}\n".encode())
    try:
        Watcher(rec, console_log).loop()
    finally:
        try:
            with open(path) as f:
                mine = f.read().split()[:1] == [str(me)]
            if mine:
                os.unlink(path)
        except OSError:
            pass


class Watcher:
    def __init__(self, rec: JailRecord, console_log: str | None) -> None:
        self.rec = rec
        self.console_log = console_log
        self.exceeded: set[str] = set()
        self.oom = -1
        self.cpu = (-1, 0.0)

    def loop(self) -> None:
        from ..state import rctl as store
        try:
            pidfd = os.pidfd_open(self.rec.pid)
        except OSError:
            return
        import select
        while registry.pid_alive(self.rec.pid, self.rec.starttime):
            rules = store.for_jail(self.rec.name, self.rec.jid)
            if not plan(rules).needs_watcher(self.console_log):
                return
            self.tick(rules)
            if select.select([pidfd], [], [], TICK)[0]:
                return            # the jail's PID 1 is gone: the jail ended

    def tick(self, rules: list[Rule]) -> None:
        from . import racct
        rec = self.rec
        oom = racct.oom_kills(rec)
        if self.oom >= 0 and oom > self.oom:
            self.say(f"rctl: jail {self.label()}: a process was killed by the memoryuse "
                     f"limit", console=True)
        self.oom = oom
        watched = [r for r in rules
                   if r.action not in ("deny", "throttle") or r.resource == "wallclock"]
        if not watched:
            return
        usage = racct.usage(rec, window=0)
        now, cpu = time.monotonic(), racct.cpu_usec(rec)
        last_cpu, last_t = self.cpu
        usage["pcpu"] = round((cpu - last_cpu) / 1e6 / (now - last_t) * 100) \
            if last_cpu >= 0 and now > last_t else 0
        self.cpu = (cpu, now)
        for r in watched:
            key = r.text()
            value = usage.get(r.resource, 0)
            if r.amount is not None and value > r.amount:
                if key not in self.exceeded:
                    self.exceeded.add(key)
                    self.act(r, value)
            else:
                self.exceeded.discard(key)

    def label(self) -> str:
        return f"{self.rec.name or self.rec.jid} (jid {self.rec.jid})"

    def act(self, r: Rule, value: int) -> None:
        from ..config.rctl import SIGNALS
        from . import cgroup
        if r.action == "log":
            self.say(f'rctl: rule "{r.text()}" matched by jail {self.label()}, '
                     f"usage {value}", console=True)
        elif r.action == "sigkill":
            cgroup.kill(self.rec.cgroup)
        elif r.action in SIGNALS:
            # the reaper (the jail's PID 1) ignores most signals: the others
            cgroup.signal_all(self.rec.cgroup, SIGNALS[r.action], skip=self.rec.pid)

    def say(self, text: str, console: bool = False) -> None:
        _syslog(text)
        if console and self.console_log:
            try:
                fd = os.open(self.console_log, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW
                             | os.O_CLOEXEC)
            except OSError:
                return
            try:
                os.write(fd, (text + "\n").encode())
            finally:
                os.close(fd)


def log_path() -> str:
    return os.path.join(registry.state_dir(), "rctl", "log")


def _syslog(text: str) -> None:
    """LOG_USER|LOG_WARNING to /dev/log, else a line in STATE/rctl/log."""
    import socket
    if os.path.exists("/dev/log"):
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
                s.sendto(f"<12>{text}".encode(), "/dev/log")
                return
        except OSError:
            pass
    stamp = time.strftime("%Y-%m-%d %H:%M:%S")
    fd = os.open(log_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
    try:
        os.write(fd, f"{stamp} {text}\n".encode())
    finally:
        os.close(fd)

