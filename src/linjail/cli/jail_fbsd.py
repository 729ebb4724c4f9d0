"""jail(8) in FreeBSD's forms, beside DragonFly's (cli/jail.py dispatches here
when an option only FreeBSD has is given):

  jail [-dhilqv] [-J jid_file] [-u user | -U user] -c|-m|-cm|-r param=value ... [command=...]
  jail [-dqv] [-f conf] -c|-m|-cm|-r|-rc [jail]
  jail [-qv] [-f conf] -r|-R ['*' | jail ...]
  jail [-dhilqv] [-J jid_file] [-u user | -U user] [-n name] path hostname ip command ...

Exit status 0, or 1 if anything failed (FreeBSD: a jail's command status is
not passed on in these forms; the legacy form keeps DragonFly's).
"""
from __future__ import annotations

import os
import sys

from ..errors import JailError, UsageError
from .jail_dfly import build_spec, parse, settle_knobs, warn_reachable

# the lifecycle modules load inside the forms that need them: `jail` imports
# this module for wants_freebsd() on every start (start-up time, STYLE 13)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, TextIO
    from ..config.jailconf import Conf
    from ..config.params import FbJail
    from ..lifecycle.fbsd import Out
    from ..model import JailSpec

FB_OPTIONS = "cdf:hiJ:lmn:p:qrRs:u:U:v"
#: letters that only FreeBSD's jail(8) has: any of them selects this module
FB_ONLY = frozenset("cdfhJmnpqrRsv")
CONF_FILE = "/etc/jail.conf"
USAGE = """usage: jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            -[cmr] param=value ... [command=command ...]
       jail [-dqv] [-f file] -[cmr] [jail]
       jail [-qv] [-f file] -[rR] ['*' | jail ...]
       jail [-dhilqv] [-J jid_file] [-u username] [-U username]
            [-n jailname] [-s securelevel]
            path hostname [ip[,...]] command ..."""


def wants_freebsd(args: list[str]) -> bool:
    """Whether ARGS use an option only FreeBSD's jail(8) has (the options
    before the first operand, as getopt reads them)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--" or not arg.startswith("-") or arg == "-":
            return False
        j = 1
        while j < len(arg):
            letter = arg[j]
            if letter in FB_ONLY:
                return True
            at = FB_OPTIONS.find(letter)
            if at < 0 or letter == ":":
                return False          # DragonFly's parser reports it
            if FB_OPTIONS[at + 1:at + 2] == ":":
                if j + 1 == len(arg):
                    i += 1
                break
            j += 1
        i += 1
    return False


class Options:
    def __init__(self) -> None:
        self.ops = ""                 # the letters of c, m, r, R given
        self.cfname = CONF_FILE
        self.docf = True
        self.jid_file = ""
        self.verbose = 0
        self.print_jid = False
        self.pairs: list[tuple[str, list[str]]] = []   # parameters the options imply
        self.legacy: list[str] = []   # DragonFly-compatible options for the legacy form
        self.name = ""
        self.securelevel = False
        self.ip_hostname = False


def main_fbsd(args: list[str]) -> int:
    from ..config.getopt import GetoptError, getopt
    try:
        opts, rest = getopt(args, FB_OPTIONS)
    except GetoptError as err:
        raise UsageError(USAGE, f"jail: {err}") from None
    o = Options()
    for opt, val in opts:
        letter = opt[1]
        if letter in "cmrR":
            o.ops += letter
        elif letter == "f":
            o.cfname = val
        elif letter == "h":
            o.pairs.append(("ip_hostname", []))
            o.ip_hostname = True
            o.docf = False
        elif letter == "i":
            o.print_jid = True
            o.verbose = -1
            o.legacy.append("-i")
        elif letter == "J":
            o.jid_file = val
        elif letter == "l":
            o.pairs.append(("exec.clean", []))
            o.legacy.append("-l")
            o.docf = False
        elif letter == "n":
            o.pairs.append(("name", [val]))
            o.name = val
            o.docf = False
        elif letter == "q":
            o.verbose = -1
        elif letter == "s":
            o.pairs.append(("securelevel", [val]))
            o.securelevel = True
            o.docf = False
        elif letter == "u":
            o.pairs += [("exec.jail_user", [val]), ("exec.system_jail_user", [])]
            o.legacy += ["-u", val]
            o.docf = False
        elif letter == "U":
            o.pairs += [("exec.jail_user", [val]), ("exec.system_jail_user", ["false"])]
            o.legacy += ["-U", val]
            o.docf = False
        elif letter == "v":
            o.verbose = 1
        # -d (allow.dying) and -p (parallel limit): nothing to do here,
        # linjail has no dying jails and runs one command at a time
    if o.verbose > 0:     # also each step of making or removing a jail, on stderr
        from ..lifecycle import plan
        plan.trace_to(2)
    if not o.ops:
        return _legacy(o, rest)
    from ._main import jailed
    if os.geteuid() != 0 or jailed():
        what = "jail_remove" if set(o.ops) <= set("rR") else "jail_set"
        raise JailError(f"{what}: Operation not permitted")
    from ..lifecycle.fbsd import Out
    out = Out(o.verbose, o.print_jid)
    if set(o.ops) <= set("rR"):
        return _remove_named(o, rest, out)
    if len(rest) > 1 or (len(rest) == 1 and "=" in rest[0]):
        if "R" in o.ops:
            raise UsageError(USAGE)
        return _command_line_jail(o, rest, out)
    if "R" in o.ops or not o.docf:
        raise UsageError(USAGE)
    return _config_jails(o, rest[0] if rest else None, out)


# -- the legacy form, with FreeBSD's extra options ---------------------------------------

def _legacy(o: Options, rest: list[str]) -> int:
    """path hostname ip command: DragonFly's form (jail_dfly.py), plus -n name,
    -J jid_file, -h; -s securelevel is refused."""
    from ..lifecycle.fbsd_ops import quoted
    if o.securelevel:
        raise JailError("securelevel: Linux has no securelevel; not supported")
    given = parse([*o.legacy, "--", *rest])
    if o.name:
        from ..config.params import build
        build([("name", [o.name])])      # the same checks as name=...
        given = given.replace(name=o.name, unique_name=True)
    spec = build_spec(given)
    if o.ip_hostname:
        from ..config.params import _resolve_hostname
        extra = [ip for ip in _resolve_hostname(spec.hostname, "") if ip not in spec.ips]
        spec = spec.replace(ips=spec.ips + tuple(extra))
    warn_reachable(spec.path)
    spec = settle_knobs(spec)
    jfp = _open_jid_file(o.jid_file)

    def on_jid(jid: int) -> None:
        if jfp is not None:
            ips = ",".join(quoted(str(a)) for a in spec.ips if a.version == 4)
            ip6 = ",".join(quoted(str(a)) for a in spec.ips if a.version == 6)
            ips = ",".join(x for x in (ips, ip6) if x)
            jfp.write(f"{jid}\t{quoted(spec.path)}\t{quoted(spec.hostname)}\t{ips}\t"
                      f"{' '.join(quoted(c) for c in spec.command)}\n")
            jfp.flush()
    try:
        return run_legacy(spec, on_jid)
    finally:
        if jfp is not None:
            jfp.close()


def run_legacy(spec: JailSpec, on_jid: Callable[[int], None]) -> int:
    """relay.run_interactive with a callback once the JID is known."""
    from ..lifecycle import relay, start
    pty = relay.maybe_pty()
    stdio = pty.stdio() if pty else (0, 1, 2)
    started = start.start(spec, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                          pty_slave=pty.slave if pty else None)
    if pty is not None:
        os.close(pty.slave)
        if started.pty_master is not None:
            pty.adopt(started.pty_master)
    if spec.print_jid:
        sys.stdout.write(f"{started.jid}\n")
        sys.stdout.flush()
    on_jid(started.jid)

    def to_jail(sig: int) -> None:
        try:
            os.kill(started.pid, sig)
        except ProcessLookupError:
            pass
    relay.forward_signals(to_jail, pty)
    start.go(started)
    if pty is not None:
        relay.relay(pty, started.status_fd)
    return start.wait_status(started.status_fd, started.pid)


def _open_jid_file(path: str) -> TextIO | None:
    if not path:
        return None
    try:
        return open(path, "w")
    except OSError as err:
        raise JailError(f"open {path}: {err.strerror}") from None


# -- one jail on the command line ----------------------------------------------------------

def _command_line_pairs(o: Options, rest: list[str]) -> list[tuple[str, list[str]]]:
    """jail.c: `command` takes the rest of the line; ip4.addr/ip6.addr split
    at commas; a word without '=' is a boolean parameter."""
    pairs = list(o.pairs)
    i = 0
    while i < len(rest):
        arg = rest[i]
        if arg == "command" or arg.startswith("command="):
            argv = ([arg[8:]] if arg.startswith("command=") else []) + rest[i + 1:]
            pairs.append(("command", argv))
            break
        name, eq, value = arg.partition("=")
        if name in ("ip4.addr", "ip6.addr") and eq:
            pairs.append((name, value.split(",")))
        elif eq:
            pairs.append((name, [value]))
        else:
            pairs.append((name, []))
        i += 1
    return pairs


def _command_line_jail(o: Options, rest: list[str], out: Out) -> int:
    from ..lifecycle.fbsd_ops import operate
    from ..config.params import build
    try:
        fj = build(_command_line_pairs(o, rest), "", command_argv=True)
    except JailError as err:
        out.warn("", err.message)
        return 1
    jfp = _open_jid_file(o.jid_file)
    try:
        return 0 if operate(o.ops, fj, out, jfp) else 1
    finally:
        if jfp is not None:
            jfp.close()


def _remove_named(o: Options, rest: list[str], out: Out) -> int:
    from ..lifecycle.fbsd_ops import stop_order
    from ..config import jailconf
    from ..lifecycle import fbsd
    if not o.docf or not rest:
        raise UsageError(USAGE)
    if "R" not in o.ops and any("=" in a for a in rest):
        raise UsageError(USAGE)
    conf = None
    if "R" not in o.ops and (o.cfname == "-" or os.path.exists(o.cfname)):
        conf = jailconf.parse_file(o.cfname)
    note = conf is not None or len(rest) > 1 or jailconf.wild_name(rest[0])
    failed = False
    for target in rest:
        if jailconf.wild_name(target):
            names = _wild_targets(conf, target)
            for name in stop_order(conf, names, out):
                failed |= not _remove_one(conf, name, out, note, wild=True)
            continue
        if conf is not None and conf.find(target) is not None:
            for name in stop_order(conf, [target], out):
                failed |= not _remove_one(conf, name, out, note, wild=name != target)
            continue
        rec = fbsd.find(target)
        if rec is None:
            out.warn("", f'"{target}" not found')
            failed = True
            continue
        # a running jail the configuration does not define: just removed,
        # unless its name is defined there (jail -r JID of a configured jail)
        name = rec.name or str(rec.jid)
        if conf is not None and conf.find(name) is not None:
            failed |= not _remove_one(conf, name, out, note)
        else:
            failed |= not fbsd.remove(rec, None, out, name, note)
    return 1 if failed else 0


def _wild_targets(conf: Conf | None, pattern: str) -> list[str]:
    """Running jails (and, with a configuration, its jails) matching PATTERN."""
    from ..config import jailconf
    from ..lifecycle import sweep
    names: list[str] = []
    if isinstance(conf, jailconf.Conf):
        names = [n for n in conf.names() if jailconf.wild_match(n, pattern)]
    for rec in sweep.jails():
        name = rec.name or str(rec.jid)
        if rec.state == "running" and name not in names and jailconf.wild_match(name, pattern):
            names.append(name)
    return names


def _remove_one(conf: Conf | None, name: str, out: Out, note: bool, wild: bool = False) -> bool:
    from ..config import jailconf
    from ..config.params import build
    from ..lifecycle import fbsd
    fj = None
    if isinstance(conf, jailconf.Conf) and conf.find(name) is not None:
        try:
            fj = build(jailconf.resolve(conf, name), name)
        except JailError as err:
            out.warn("", err.message)
            return False
        rec = fbsd.existing(fj)
    else:
        rec = fbsd.find(name)
    if rec is None:
        if not wild:
            out.warn("", f'"{name}" not found')
        return wild
    return fbsd.remove(rec, fj, out, name, note)


# -- jails of a configuration file ------------------------------------------------------------

def _config_jails(o: Options, target: str | None, out: Out) -> int:
    from ..lifecycle.fbsd_ops import depends, operate, start_order, stop_order
    from ..config import jailconf
    from ..config.params import build
    from ..lifecycle import fbsd
    conf = jailconf.parse_file(o.cfname)
    if target is None or target == "*":
        names, wild = conf.names(), True
    elif jailconf.wild_name(target):
        names, wild = [n for n in conf.names() if jailconf.wild_match(n, target)], True
    else:
        if conf.find(target) is None:
            raise JailError(f'"{target}" not found')
        names, wild = [target], False
    jfp = _open_jid_file(o.jid_file)
    failed: set[str] = set()
    stopping = set(o.ops) <= set("rR")
    try:
        order = stop_order(conf, names, out) if stopping else \
            start_order(conf, names, out, failed)
        for name in order:
            if name in failed:
                continue
            deps = depends(conf, name)
            bad = [d for d in deps if d in failed]
            if bad:
                if out.verbose >= 0:
                    out.warn(name, "skipped")
                failed.add(name)
                continue
            try:
                fj = build(jailconf.resolve(conf, name), name)
            except JailError as err:
                out.warn("", err.message)
                failed.add(name)
                continue
            is_dep = name not in names
            if not operate(o.ops, fj, out, jfp, wild=wild or is_dep):
                failed.add(name)
    finally:
        if jfp is not None:
            jfp.close()
    return 1 if failed else 0
