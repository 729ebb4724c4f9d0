"""jail(8), DragonFly syntax (SPEC §2)."""
from __future__ import annotations

import os
import sys

from ..errors import JailError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import JailSpec

USAGE = "Usage: jail [-i] [-l -u username | -U username] path hostname ip-list command ..."
HOSTNAME_MAX = 64   # Linux's limit (DragonFly: 255): SPEC §2


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("jail", _jail, argv)


def parse(args: list[str]) -> "object":
    """argv -> JailSpec; every check that needs no jail, in DragonFly's order."""
    from ..model import JailSpec, parse_ip_list
    from .getopt import GetoptError, getopt
    try:
        opts, rest = getopt(args, "ilu:U:")
    except GetoptError as err:
        raise UsageError(USAGE, f"jail: {err}") from None
    print_jid = login = False
    user = juser = None
    for opt, val in opts:
        if opt == "-i":
            print_jid = True
        elif opt == "-l":
            login = True
        elif opt == "-u":
            user = val
        elif opt == "-U":
            juser = val
    if (user is not None and juser is not None) or len(rest) < 4 or \
            (login and user is None and juser is None):
        raise UsageError(USAGE)
    path, hostname, iplist, *command = rest
    host_user = None
    if user is not None:
        from ..users import host_user as lookup
        host_user = lookup(user)
    try:
        if not path:    # realpath(3) of "" is ENOENT; Python's would be the cwd
            raise FileNotFoundError(2, os.strerror(2))
        resolved = os.path.realpath(path, strict=True)
    except OSError as err:
        raise JailError(f"jail: realpath: {path}: {os.strerror(err.errno or 2)}",
                        bare=True) from None
    if not os.path.isdir(resolved):
        raise JailError(f"jail: chdir: {resolved}: Not a directory", bare=True)
    try:
        ips = parse_ip_list(iplist)
    except ValueError as err:
        raise JailError(f"Invalid value {err.args[0]}", stdout=True, bare=True) from None
    overlay = None
    if os.path.lexists(resolved + ".linjail-thin"):    # a thin jail (thinroot.py)
        from ..thinroot import overlay_for
        try:
            overlay = overlay_for(resolved)
        except JailError as err:
            raise JailError(f"jail: {err.message}", bare=True) from None
    return JailSpec(path=resolved, hostname=hostname, ips=ips, command=tuple(command),
                    login=login, host_user=host_user, jail_user=juser,
                    print_jid=print_jid, overlay=overlay)


def _jail(args: list[str]) -> int:
    from ..lifecycle import stdio
    stdio.occupy_closed()                 # first: nothing of ours may land on 0-2
    passed = stdio.passable(stdio.inherited())
    from .jail_fbsd import wants_freebsd
    if wants_freebsd(args):     # -c/-m/-r, -f, -n ...: FreeBSD's forms
        from .jail_fbsd import main_fbsd
        return main_fbsd(args)
    spec = checks_and_knobs(parse(args))
    from ..lifecycle import relay
    return relay.run_interactive(spec, passed)


def checks_and_knobs(spec: "object") -> "JailSpec":
    """What DragonFly's jail checks once the command line is read, and the
    knobs a new jail copies."""
    from ..model import JailSpec
    assert isinstance(spec, JailSpec)
    from ._main import jailed
    if os.geteuid() != 0 or jailed():
        raise JailError("jail: jail: Operation not permitted", bare=True)
    try:
        # a hostname is text (jls, rc.conf, the record); argv bytes that are
        # not UTF-8 are kept as lone surrogates, which do not encode
        name = spec.hostname.encode()
    except UnicodeEncodeError:
        raise JailError(f"jail: {spec.hostname}: hostname is not valid UTF-8", bare=True) \
            from None
    if len(name) > HOSTNAME_MAX:
        raise JailError("jail: jail: File name too long", bare=True)
    _warn_reachable(spec.path)
    from ..state.knobs import get_defaults
    return spec.replace(knobs=get_defaults())


def _warn_reachable(path: str) -> None:
    """FreeBSD's advice: a jail root only root can reach (SPEC §7)."""
    import stat
    p = path
    while True:
        try:
            st = os.stat(p)
        except OSError:
            return
        if st.st_uid == 0 and not st.st_mode & (stat.S_IXGRP | stat.S_IXOTH):
            return      # this directory stops every other user
        parent = os.path.dirname(p)
        if parent == p:
            break
        p = parent
    sys.stderr.write(f"jail: warning: {path} can be reached by users other than root; "
                     f"keep jails under a directory of mode 0700\n")
