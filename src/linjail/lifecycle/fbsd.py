"""FreeBSD's jail(8) operations: create, remove and modify one jail, with the
exec.* hooks in FreeBSD's order (usr.sbin/jail/jail.c startcommands and
stopcommands).

  create                                   remove (jail -r)
  ------                                   ----------------
  exec.prepare        host                 exec.prestop        host
  exec.prestart       host                 exec.stop           in the jail
  the jail is made: addresses, mounts,     SIGTERM, stop.timeout seconds
  /dev, /proc (in the jail's own           the jail is removed (SIGKILL, its
  namespace: host hooks never see them)    host side released)
  exec.created        host                 exec.poststop       host
  exec.start, command in the jail          exec.release        host
  exec.poststart      host

Every command must succeed.  A failed create is undone in reverse: the jail
is removed (if it was made) and exec.release runs (if exec.prepare did).  A
failed exec.prestop or exec.stop leaves the jail running, as on FreeBSD.
Host commands get JID, JNAME and JPATH in their environment (not with
exec.clean); commands in the jail get jail(8)'s own environment.

The jail's PID 1 runs with `persist` while the commands run (jail.c does the
same), and loses it afterwards unless the persist parameter is set: a jail
whose commands left no process then ends.
"""
from __future__ import annotations

import os
import sys

from ..config.params import FbJail
from ..errors import JailError
from ..model import JailSpec
from ..state import registry
from . import sweep

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

#: reaper.c: the persist switch, sent from the host
SIG_PERSIST_ON = 40
SIG_PERSIST_OFF = 41
#: characters that make jail(8) hand a command line to /bin/sh -c (command.c)
_SHELL_CHARS = set("!\"$&'()*;<>?[\\]`{|}~")


class Out:
    """jail(8)'s messages: notes on stdout (-q hides them, -v adds some),
    warnings on stderr as `jail: NAME: text`."""

    def __init__(self, verbose: int = 0, print_jid: bool = False) -> None:
        self.verbose = verbose          # -1 quiet (-q, -i), 0, 1 (-v)
        self.print_jid = print_jid

    def note(self, label: str, text: str, always: bool = False) -> None:
        """jail_note: shown for jails with a name (or always), unless quiet."""
        if self.verbose > 0 or (self.verbose == 0 and (label or always)):
            sys.stdout.write(f"{label}: {text}\n" if label else f"{text}\n")
            sys.stdout.flush()

    def warn(self, label: str, text: str) -> None:
        sys.stdout.flush()
        sys.stderr.write(f"jail: {label}: {text}\n" if label else f"jail: {text}\n")
        sys.stderr.flush()


def split_command(line: str) -> tuple[list[str], bool]:
    """command.c: a line with shell characters runs as /bin/sh -c LINE; other
    lines are split on blanks and run directly (a PATH search), in the
    background when they end with a lone '&'."""
    special = [i for i, c in enumerate(line) if c in _SHELL_CHARS]
    if special and not (line[special[0]] == "&" and special[0] == len(line) - 1):
        return ["/bin/sh", "-c", line], False
    background = bool(special)
    words = (line[:-1] if background else line).split()
    return words, background


def jail_env(fj: FbJail, jid: int) -> dict[str, str]:
    """JID, JNAME, JPATH for host commands (FreeBSD's jail tests expect them)."""
    env = {"JNAME": fj.name or fj.label or (str(jid) if jid else ""), "JPATH": fj.path}
    if jid:
        env["JID"] = str(jid)
    return env


# -- running commands ---------------------------------------------------------------

def _status_text(code: int) -> str:
    return f"exited on signal {code - 128}" if code > 128 else "failed"


def run_host(fj: FbJail, line: str, jid: int, out: Out) -> bool:
    """One host command (exec.prepare, prestart, created, poststart, prestop,
    poststop, release): as the exec.system_user, in jail(8)'s environment
    plus JID/JNAME/JPATH, or a clean one (exec.clean)."""
    import subprocess
    argv, background = split_command(line)
    if not argv:
        return True
    comline = " ".join(argv)
    if out.verbose > 0:
        who = f" as {fj.system_user}" if fj.system_user else ""
        out.note(fj.label, f"run command{who}: {comline}", always=True)
    user = None
    if fj.system_user or fj.clean:
        from ..users import lookup_host_user
        name = fj.system_user or _current_user()
        user = lookup_host_user(name)
        if user is None:
            out.warn(fj.label, f"{name}: no such user")
            return False
    if fj.clean:
        assert user is not None
        env = {"PATH": "/bin:/usr/bin", "USER": user.name, "HOME": user.home,
               "SHELL": user.shell or "/bin/sh"}
        if "TERM" in os.environ:
            env["TERM"] = os.environ["TERM"]
        cwd: str | None = user.home
    else:
        env = {**os.environ, **jail_env(fj, jid)}
        cwd = None
    kwargs: dict[str, object] = {}
    if fj.system_user and user is not None:
        kwargs = {"user": user.uid, "group": user.gid, "extra_groups": list(user.groups)}
    try:
        proc = subprocess.Popen(argv, env=env, cwd=cwd, start_new_session=background,
                                **kwargs)  # type: ignore[call-overload]
    except OSError as err:
        if err.filename == cwd and cwd is not None:
            out.warn(fj.label, f"chdir {cwd}: {err.strerror}")
        else:
            out.warn(fj.label, f"exec {argv[0]}: {err.strerror}")
        return False
    if background:
        return True
    try:
        code = proc.wait(timeout=fj.exec_timeout or None)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        out.warn(fj.label, f"{comline}: timed out")
        return False
    if code != 0:
        out.warn(fj.label, f"{comline}: {_status_text(128 - code if code < 0 else code)}")
        return False
    return True


def _current_user() -> str:
    import pwd
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def run_in_jail(fj: FbJail, jid: int, argv: list[str], out: Out) -> bool:
    """One command in the jail (exec.start, command, exec.stop): attached
    like jexec, as exec.jail_user, output to exec.consolelog if set."""
    from .attach import exec_in_jail
    if not argv:
        return True
    comline = " ".join(argv)
    if out.verbose > 0:
        who = f" as {fj.jail_user}" if fj.jail_user else ""
        out.note(fj.label, f"run command in jail{who}: {comline}", always=True)
    log = -1
    if fj.consolelog:
        try:
            log = os.open(fj.consolelog, os.O_WRONLY | os.O_CREAT | os.O_APPEND |
                          os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            out.warn(fj.label, f"open {fj.consolelog}: {err.strerror}")
            return False
    host_user = None
    user = None
    if fj.jail_user:
        if fj.system_jail_user:
            from ..users import host_user as lookup
            try:
                host_user = lookup(fj.jail_user)
            except JailError as err:
                out.warn(fj.label, err.message)
                return False
        else:
            user = fj.jail_user
    prefix = f"jail: {fj.label}: " if fj.label else "jail: "
    try:
        sys.stdout.flush()
        code = exec_in_jail(jid, argv, stdout=log if log >= 0 else 1,
                            stderr=log if log >= 0 else 2, user=user, host_user=host_user,
                            interactive=log < 0, login=fj.clean,
                            cwd=None if fj.clean else "/",
                            exec_error=prefix + "exec {cmd}: {err}")
    except JailError as err:
        out.warn(fj.label, err.message)
        return False
    finally:
        if log >= 0:
            os.close(log)
    if code == 127 and log < 0:
        # not executed (attach's exec_error line, or sh's "not found"): the
        # user has that one line already
        return False
    if code != 0:
        out.warn(fj.label, f"{comline}: {_status_text(code)}")
        return False
    return True


def run_hook(fj: FbJail, hook: str, jid: int, out: Out) -> bool:
    """Every command of HOOK in order; the first failure stops them."""
    if hook == "command" and fj.command_argv:
        # the command line's command=...: one argv, run as given (jail.c)
        return run_in_jail(fj, jid, list(fj.commands(hook)), out)
    for line in fj.commands(hook):
        if hook in ("exec.start", "exec.stop", "command"):
            if not run_in_jail(fj, jid, split_command(line)[0], out):
                return False
        elif not run_host(fj, line, jid, out):
            return False
    return True


# -- create ----------------------------------------------------------------------------

def to_spec(fj: FbJail) -> JailSpec:
    """The JailSpec the jail is made from (its commands run separately), by
    the one spec builder with FreeBSD's words (config/spec.py)."""
    from ..config.spec import SpecInput, build
    if fj.label and fj.path and not fj.path.startswith("/"):
        raise JailError(f"path {fj.path}: not an absolute pathname")
    ips = tuple(ip for ip in fj.ips
                if not (fj.ip4_disabled and ip.version == 4)
                and not (fj.ip6_disabled and ip.version == 6))
    return build(SpecInput(path=fj.path, hostname=fj.hostname or os.uname().nodename,
                           ips=ips, name=fj.name, knobs=fj.knobs, devfs=fj.devfs,
                           procfs=fj.procfs, mounts=fj.mounts,
                           interface=fj.interface or None, jid=fj.jid, persist=True,
                           unique_name=True), "freebsd")


def default_route_interfaces() -> set[str]:
    """The interfaces that carry the host's default routes (IPv4 and IPv6)."""
    found: set[str] = set()
    try:
        with open("/proc/net/route") as f:
            for line in f.read().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 7 and fields[1] == "00000000" and fields[7] == "00000000":
                    found.add(fields[0])
    except OSError:
        pass
    try:
        with open("/proc/net/ipv6_route") as f:
            for line in f.read().splitlines():
                fields = line.split()
                if len(fields) >= 10 and fields[0] == "0" * 32 and fields[1] == "00" \
                        and fields[9] != "lo":
                    found.add(fields[9])
    except OSError:
        pass
    return found


def existing(fj: FbJail) -> registry.JailRecord | None:
    """The running jail FJ's jid or name names (jail.c running_jid)."""
    if fj.jid:
        rec = sweep.jail(fj.jid)
        return rec if rec is not None and rec.state == "running" else None
    name = fj.name or fj.label
    return find(name) if name else None


def find(word: str) -> registry.JailRecord | None:
    """A running jail by JID or name (state.c running_jail)."""
    if word.isascii() and word.isdigit() and 0 < len(word.lstrip("0")) <= 10:
        rec = sweep.jail(int(word.lstrip("0")))
        if rec is not None and rec.state == "running":
            return rec
    for rec in sweep.jails():
        if rec.state == "running" and (rec.name or str(rec.jid)) == word:
            return rec
    return None


def quoted_name(fj: FbJail) -> str:
    """jail.c jail_quoted_warnx: the name to quote in "X" already exists."""
    return fj.label or (str(fj.jid) if fj.jid else "") or fj.name


def create(fj: FbJail, out: Out, on_created: Callable[[int], None] | None = None) -> int:
    """Create the jail and run its start commands; its JID, or 0 after a
    failure (already reported; everything done undone)."""
    if existing(fj) is not None:
        out.warn("", f'"{quoted_name(fj)}" already exists')
        return 0
    try:
        spec = to_spec(fj)
        from ..confine.userns import settle
        knobs, why = settle(spec.knobs)
        if why:
            out.warn(fj.label, f"warning: {why}")
            spec = spec.replace(knobs=knobs)
        if fj.interface and fj.interface in default_route_interfaces():
            raise JailError(f"interface {fj.interface}: carries the host's default route; "
                            f"a jail needs an interface of its own")
    except JailError as err:
        out.warn(fj.label, err.message)
        return 0
    if not run_hook(fj, "exec.prepare", 0, out):
        return 0
    jid = 0
    try:
        if not run_hook(fj, "exec.prestart", 0, out):
            raise _Failed
        jid = _make(spec, fj, out)
        if not jid:
            raise _Failed
        if out.print_jid:
            sys.stdout.write(f"{jid}\n")
            sys.stdout.flush()
        out.note(fj.label, "created")
        if on_created is not None:
            on_created(jid)
        for hook in ("exec.created", "exec.start", "command", "exec.poststart"):
            if not run_hook(fj, hook, jid, out):
                raise _Failed
    except _Failed:
        if jid:
            _remove_now(jid)
            out.note(fj.label, "removed")
        run_hook(fj, "exec.release", jid, out)
        return 0
    if not fj.persist:
        set_persist(jid, False)
    return jid


class _Failed(Exception):
    pass


def _make(spec: JailSpec, fj: FbJail, out: Out) -> int:
    """The jail itself, its PID 1 persisting and already released to reap."""
    from . import start
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    try:
        started = start.start(spec, stdin=null, stdout=null, stderr=null)
    except JailError as err:
        text = kernel_text(err.message)
        if text.endswith("already exists"):
            out.warn("", text)
        else:
            out.warn(fj.label, text)
        return 0
    except OSError as err:
        out.warn(fj.label, err.strerror or str(err))
        return 0
    finally:
        os.close(null)
    rec = started.record
    rec.devfs_ruleset = fj.devfs_ruleset
    rec.persist = int(fj.persist)
    registry.write(rec)
    start.go(started)
    os.close(started.status_fd)
    return started.jid


def kernel_text(message: str) -> str:
    """A library message as FreeBSD's jail(8) words it: jail(2)'s own
    refusal, `jail: X` (DragonFly's form shows `jail: jail: X`), is
    libjail's `jail_set: X`."""
    if message.startswith("jail: "):
        return "jail_set: " + message[len("jail: "):]
    return message


def _remove_now(jid: int, grace: float = 0.0) -> None:
    from .remove import remove_jail
    try:
        remove_jail(jid, grace)
    except JailError:
        pass       # already gone


def set_persist(jid: int, on: bool) -> None:
    """Switch the jail's PID 1 between persisting and ending with its last
    process (reaper.c); the record says which."""
    rec = sweep.jail(jid)
    if rec is None:
        return
    try:
        os.kill(rec.pid, SIG_PERSIST_ON if on else SIG_PERSIST_OFF)
    except ProcessLookupError:
        return
    with registry.Lock():
        again = registry.read(jid)
        if again is not None and again.pid == rec.pid:
            again.persist = int(on)
            registry.write(again)


# -- remove ------------------------------------------------------------------------------

def remove(rec: registry.JailRecord, fj: FbJail | None, out: Out, label: str,
           note: bool) -> bool:
    """exec.prestop, exec.stop, SIGTERM and stop.timeout, removal,
    exec.poststop, exec.release.  FJ (from jail.conf) brings the commands;
    without it the jail is just removed."""
    jid = rec.jid
    if fj is not None:
        fj = fj.replace(label=label, path=fj.path or rec.path)
        for hook in ("exec.prestop", "exec.stop"):
            if not run_hook(fj, hook, jid, out):
                return False
    grace = float(fj.stop_timeout if fj is not None else 10)
    from .remove import remove_jail
    try:
        remove_jail(jid, grace)
    except JailError:
        pass            # it ended by itself meanwhile: removed all the same
    if note:
        out.note(label, "removed", always=True)
    if fj is not None:
        ok = run_hook(fj, "exec.poststop", jid, out)
        return run_hook(fj, "exec.release", jid, out) and ok
    return True


# -- modify ------------------------------------------------------------------------------

#: parameters a running jail cannot change (jail.c rdtun_params)
CREATE_ONLY = ("path", "jid", "mount", "mount.fstab", "mount.devfs", "mount.procfs",
               "interface", "ip4", "ip6", "unprivileged_root")


def changes_need_restart(rec: registry.JailRecord, fj: FbJail) -> str:
    """The first create-only parameter FJ changes, or ""."""
    for name in CREATE_ONLY:
        if name not in fj.given:
            continue
        if name == "path":
            try:
                if os.path.realpath(fj.path) == rec.path:
                    continue
            except OSError:
                pass
        elif name == "jid" and fj.jid == rec.jid:
            continue
        elif name == "unprivileged_root" and \
                dict(fj.knobs).get(name) == (1 if rec.uid_base else 0):
            continue
        return name
    return ""


def modify(rec: registry.JailRecord, fj: FbJail, out: Out) -> bool:
    """jail -m: addresses (live), hostname, name, persist and the allow.*
    knobs of a running jail."""
    label = fj.label
    rdtun = changes_need_restart(rec, fj)
    if rdtun:
        out.warn(label, f"{rdtun} cannot be changed after creation")
        return False
    try:
        if "name" in fj.given and fj.name != (rec.name or str(rec.jid)):
            _rename(rec, fj.name)
        if "host.hostname" in fj.given:
            _set_hostname(rec, fj.hostname)
        if {"ip4.addr", "ip6.addr"} & fj.given:
            from .addresses import change as change_addresses
            keep4 = "ip4.addr" not in fj.given
            keep6 = "ip6.addr" not in fj.given
            old = [a for a in rec.ips]
            new = [a for a in old if (keep4 and ":" not in a) or (keep6 and ":" in a)]
            new += [str(ip) for ip in fj.ips if str(ip) not in new]
            change_addresses(rec, new)
        if fj.knobs:
            _set_knobs(rec, dict(fj.knobs), out, label)
        if "devfs_ruleset" in fj.given:
            _update(rec.jid, lambda r: setattr(r, "devfs_ruleset", fj.devfs_ruleset))
        if "persist" in fj.given:
            set_persist(rec.jid, fj.persist)
    except JailError as err:
        out.warn(label, kernel_text(err.message))
        return False
    except OSError as err:
        out.warn(label, err.strerror or str(err))
        return False
    out.note(label, "updated")
    return True


def _update(jid: int, change: Callable[[registry.JailRecord], None]) -> None:
    with registry.Lock():
        rec = registry.read(jid)
        if rec is None:
            raise JailError(f'"{jid}" not found')
        change(rec)
        registry.write(rec)


def _rename(rec: registry.JailRecord, name: str) -> None:
    with registry.Lock():
        for other in registry.all_records():
            if other.jid != rec.jid and other.live() and (other.name or str(other.jid)) == name:
                raise JailError(f'"{name}" already exists')
        again = registry.read(rec.jid)
        if again is None:
            raise JailError(f'"{rec.jid}" not found')
        again.name = name if name != str(rec.jid) else ""
        registry.write(again)


def _set_hostname(rec: registry.JailRecord, hostname: str) -> None:
    """sethostname(2) in the jail's UTS namespace, from the host."""
    from ..kernel import libc
    fd = os.open(f"/proc/{rec.pid}/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    own = os.open("/proc/self/ns/uts", os.O_RDONLY | os.O_CLOEXEC)
    try:
        if not registry.pid_alive(rec.pid, rec.starttime):
            raise JailError(f'"{rec.jid}" not found')
        libc.setns(fd, libc.CLONE_NEWUTS)
        try:
            libc.sethostname(hostname.encode())
        finally:
            libc.setns(own, libc.CLONE_NEWUTS)
    finally:
        os.close(fd)
        os.close(own)
    _update(rec.jid, lambda r: setattr(r, "hostname", hostname))


def _set_knobs(rec: registry.JailRecord, knobs: dict[str, int], out: Out, label: str) -> None:
    changed = [k for k, v in knobs.items() if rec.knobs.get(k) != v]

    def apply(r: registry.JailRecord) -> None:
        r.knobs = {**r.knobs, **knobs}
    _update(rec.jid, apply)
    if changed:
        # the seccomp filter of a running process cannot be changed (SPEC §5)
        sys.stderr.write(f"jail: {label + ': ' if label else ''}allow.* and enforce_statfs "
                         f"apply to processes started in the jail from now on; its running "
                         f"processes keep the limits they started with\n")
        sys.stderr.flush()
