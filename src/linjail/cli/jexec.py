"""jexec(8) (SPEC §4)."""
from __future__ import annotations

import os

from ..errors import JailError, UsageError

USAGE = "usage: jexec [-u username | -U username] jid command ..."
_INT_MAX = 2**31 - 1
_INT_MIN = -2**31


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("jexec", _jexec, argv)


def parse_jid(text: str, prog: str = "jexec") -> int | str:
    """strtol(3) semantics; a non-numeric word may be a jail's name."""
    digits = text.lstrip(" \t\n\v\f\r")
    if digits[:1] in ("+", "-"):
        digits = digits[1:]
    if not (digits.isascii() and digits.isdigit()):
        if text[:1].isascii() and (text[:1].isalpha() or text[:1] == "_") and \
                text.replace("_", "a").isascii() and text.replace("_", "a").isalnum():
            return text
        raise JailError(f"{prog}: cannot parse jail id: {text}.", bare=True)
    # strtol gives ERANGE however long the number; int() refuses more than
    # 4300 digits (CPython's limit), so the length decides first
    significant = digits.lstrip("0") or "0"
    value = int(significant) if len(significant) <= 10 else _INT_MAX + 1
    if text.lstrip(" \t\n\v\f\r")[:1] == "-":
        value = -value if value <= _INT_MAX else _INT_MIN - 1
    if not _INT_MIN <= value <= _INT_MAX:
        raise JailError(f"{prog}: invalid jail id: {text}: Result too large", bare=True)
    return value


def parse_jail(text: str, prog: str = "jexec") -> int | str:
    """parse_jid, but any word that is the name of a running jail is that
    jail (FreeBSD's names may hold '-', '.' ...); other words fail as
    parse_jid says."""
    try:
        return parse_jid(text, prog)
    except JailError:
        if text and os.geteuid() == 0:
            from ..lifecycle import sweep
            rec = sweep.jail_named(text)
            if rec is not None:
                return text
        raise


def _jexec(args: list[str]) -> int:
    from ..lifecycle import stdio
    stdio.occupy_closed()                 # first: nothing of ours may land on 0-2
    passed = stdio.passable(stdio.inherited())
    from ..config.getopt import GetoptError, getopt
    try:
        opts, rest = getopt(args, "d:lnu:U:")
    except GetoptError as err:
        raise UsageError(USAGE, f"jexec: {err}") from None
    user = juser = workdir = None
    login = False
    for opt, val in opts:
        if opt == "-u":
            user = val
        elif opt == "-U":
            juser = val
        elif opt == "-d":
            workdir = val
        elif opt == "-l":
            login = True
        # -n: FreeBSD's "specified name", unused there too
    # FreeBSD: with -l and no command, the user's login shell; without -l a
    # missing command stays DragonFly's usage error
    if (user is not None and juser is not None) or len(rest) < (1 if login else 2):
        raise UsageError(USAGE)
    jid_text, *command = rest
    jid = parse_jail(jid_text)
    from ._main import jailed
    inside = jailed()
    if isinstance(jid, str) and not inside:
        # a name becomes its JID first, for every user (FreeBSD's jail_getid)
        from ..lifecycle import sweep
        rec = sweep.jail_named(jid)
        if rec is None:
            raise JailError(f"jexec: cannot parse jail id: {jid}.", bare=True)
        jid = rec.jid
    if os.geteuid() != 0 or inside or isinstance(jid, str):    # (a str only inside)
        raise JailError(f"jexec: jail_attach({jid}) failed: Operation not permitted",
                        bare=True)
    host_user = None
    if user is not None:
        from ..users import host_user as lookup
        host_user = lookup(user)
    from ..lifecycle.attach import exec_in_jail
    closed = stdio.CLOSED
    return exec_in_jail(jid, command, user=juser, host_user=host_user, interactive=True,
                        cwd=workdir, login=login,
                        stdin=None if 0 in closed else 0, stdout=None if 1 in closed else 1,
                        stderr=None if 2 in closed else 2, pass_fds=passed)
