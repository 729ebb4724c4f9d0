"""jail(8) in DragonFly's syntax (SPEC §2):

  jail [-i] [-l -u username | -U username] path hostname ip-list command ...

argv -> the spec builder's input (config/spec.py) -> a JailSpec.  FreeBSD's
legacy form (jail_fbsd.py) is this one plus a few options, and builds on it.
"""
from __future__ import annotations

import os
import sys

from ..errors import UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config.spec import SpecInput
    from ..model import JailSpec

USAGE = "Usage: jail [-i] [-l -u username | -U username] path hostname ip-list command ..."


def parse(args: list[str]) -> SpecInput:
    """argv -> the spec builder's input (config/spec.py); only the usage is
    checked here, the rest by build_spec()."""
    from ..config.spec import OptionError, SpecInput, jail_options, split_ip_list
    try:
        opts = jail_options(args, "jail")
    except OptionError as err:
        # libc's getopt prints its own line first: `jail: illegal option -- x`
        raise UsageError(USAGE, f"jail: {err.diagnostic}" if err.diagnostic else "") \
            from None
    path, hostname, iplist, *command = opts.operands
    return SpecInput(path=path, hostname=hostname, ips=split_ip_list(iplist),
                     command=tuple(command), login=opts.login, host_user=opts.host_user,
                     jail_user=opts.jail_user, print_jid=opts.print_jid)


def build_spec(given: SpecInput) -> JailSpec:
    """The one builder's JailSpec, in DragonFly's order: what jail(8) checks
    once the command line is read, and the knobs a new jail copies."""
    from ..config.spec import build
    return build(given, "jail", may_create=_may_create)


def _may_create() -> bool:
    from ._main import jailed
    return os.geteuid() == 0 and not jailed()


def settle_knobs(spec: JailSpec) -> JailSpec:
    """chflags_allowed=1 takes the user namespace away (issue 11): say so."""
    from ..confine.userns import settle
    knobs, why = settle(spec.knobs)
    if why:
        sys.stderr.write(f"jail: warning: {why}\n")
    return spec.replace(knobs=knobs)


def warn_reachable(path: str) -> None:
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
