"""`jailctl start|stop|restart|status [-f FILE]... [--force] [name ...]` (SPEC §8).

The counterpart of DragonFly's `/etc/rc.d/jail`.  cli/jailctl.py dispatches
these actions here, also with rc.subr's prefixes (`onestart`, `forcestop`,
`faststatus` ...).  Errors print as `jailctl: message` (cli/_main.py).
"""
from __future__ import annotations

import getopt
import os
from typing import TextIO

from linjail.config.jails import DEFAULT_KNOBS, GLOBAL_VARS, RcVars
from linjail.config.rcconf import config_files, read_files
from linjail.errors import JailError
from linjail.lifecycle.rc import Backend, RcService, RealBackend

ACTIONS = ("start", "stop", "restart", "status")
USAGE = "usage: jailctl start|stop|restart|status [--force] [-f file] ... [name ...]"


def builtin_defaults() -> dict[str, str]:
    """What /etc/defaults/rc.conf holds for jails: the base the files build on."""
    values = {v.name: v.default for v in GLOBAL_VARS}
    values.update({d.var: d.default for d in DEFAULT_KNOBS})
    return values


#: rc.subr's prefixes and whether they run the action although jail_enable
#: is NO: `one` (FreeBSD) and `force` (both) do.  `force` also goes on past a
#: failed precmd or required_* check; rc.d/jail has none, so it is `one`
#: here.  `fast` (skip the pid check: rc.d/jail has none) and `quiet`
#: (FreeBSD) change nothing.
PREFIXES: dict[str, bool] = {"": False, "one": True, "force": True, "fast": False,
                             "quiet": False}


def split_action(action: str) -> tuple[str, bool] | None:
    """`start` -> (start, False); `onestart`/`forcestart` -> (start, True)."""
    for prefix, force in PREFIXES.items():
        if action.startswith(prefix) and action[len(prefix):] in ACTIONS:
            return action[len(prefix):], force
    return None


def main_rc(action: str, argv: list[str], out: TextIO, err: TextIO,
            backend: Backend | None = None) -> int:
    parsed = split_action(action)
    try:
        opts, names = getopt.gnu_getopt(argv, "f:", ["force", "file="])
    except getopt.GetoptError:
        parsed = None
    if parsed is None:
        err.write(USAGE + "\n")
        return 1
    verb, force = parsed
    files = [arg for opt, arg in opts if opt in ("-f", "--file")]
    force = force or any(opt == "--force" for opt, _ in opts)
    # errors go to jailctl's one handler (cli/_main.py): `jailctl: message`
    if backend is None and verb != "status" and os.geteuid() != 0:
        raise JailError(f"{verb}: Operation not permitted")
    paths, missing_ok = config_files(files)
    rc = RcVars(read_files(paths, missing_ok=missing_ok, base=builtin_defaults()))
    service = RcService(rc, backend if backend is not None else RealBackend(), out, err)
    code: int = getattr(service, verb)(names, force)
    return code
