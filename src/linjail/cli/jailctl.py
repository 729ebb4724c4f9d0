"""jailctl: the administrator's other verbs (build, remove, sysctl, rc.conf service)."""
from __future__ import annotations

import os
import sys

from ..errors import JailError, UsageError
from .jailctl_usage import USAGE


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("jailctl", _jailctl, argv)


def _need_root(what: str) -> None:
    if os.geteuid() != 0:
        raise JailError(f"{what}: Operation not permitted")


def _jailctl(args: list[str]) -> int:
    # each verb's module is imported when that verb runs, not before: start-up
    # time (STYLE 13); none of them imports this module
    if not args or args[0] in ("-h", "--help", "help"):
        if not args:
            raise UsageError(USAGE)
        sys.stdout.write(USAGE + "\n")
        return 0
    verb, rest = args[0], args[1:]
    if verb == "remove":
        return _remove(rest)
    if verb == "build":
        return _build(rest)
    if verb == "doctor":
        from .jailctl_doctor import main_doctor
        return main_doctor(rest, sys.stdout, sys.stderr)
    if verb == "sysctl":
        from .jailctl_sysctl import main_sysctl
        return main_sysctl(rest, sys.stdout, sys.stderr)
    if verb == "destroy":
        from .jailctl_build import main_destroy
        return main_destroy(rest, sys.stdout, sys.stderr)
    if verb.endswith(("start", "stop", "restart", "status")):
        # with rc.subr's prefixes: onestart, forcestop, faststatus ...
        from .jailctl_rc import main_rc, split_action
        if split_action(verb) is not None:
            return main_rc(verb, rest, sys.stdout, sys.stderr)
    raise UsageError(USAGE)


def _remove(args: list[str]) -> int:
    import getopt
    try:
        # glibc's getopt, which Linux users type to: options may follow the JID
        opts, rest = getopt.gnu_getopt(args, "t:")
    except getopt.GetoptError:
        raise UsageError(USAGE) from None
    grace = 1.0
    for _, val in opts:
        grace = _seconds(val)
    if len(rest) != 1:
        raise UsageError(USAGE)
    _need_root("remove")
    from .jexec import parse_jail
    jid = parse_jail(rest[0], "jailctl: remove")
    if isinstance(jid, str):
        from ..lifecycle import sweep
        rec = sweep.jail_named(jid)
        if rec is None:
            raise JailError(f"remove: {jid}: no such jail")
        jid = rec.jid
    from ..lifecycle.remove import remove_jail
    remove_jail(jid, grace)
    return 0


def _seconds(text: str) -> float:
    """`-t`: a plain decimal number of seconds (float() also took inf, nan, 1_0)."""
    whole, _, frac = text.partition(".")
    if not (whole or frac) or not all(p == "" or (p.isascii() and p.isdigit())
                                      for p in (whole, frac)) or len(text) > 20:
        raise JailError(f"remove: -t {text}: not a number of seconds")
    return float(text)


def _build(args: list[str]) -> int:
    if len(args) >= 3 and args[1] == "--service":
        _need_root("build")
        from ..roots.service import build_service
        build_service(args[0], args[2:], log=lambda line: print(line, file=sys.stderr))
        return 0
    from .jailctl_build import main_build
    return main_build(args, sys.stdout, sys.stderr)
