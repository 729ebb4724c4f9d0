"""jls(8) (SPEC §3)."""
from __future__ import annotations

import os
import sys

from ..display import escape

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..state.registry import JailRecord


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("jls", _jls, argv)


def format_ips(ips: list[str]) -> str:
    import ipaddress
    if not ips:
        return "(none)"
    return " ".join(str(ipaddress.ip_address(a)) for a in reversed(ips))


def _jls(args: list[str]) -> int:
    if args and args != ["--json"]:     # FreeBSD's options and parameters
        from .jls_fbsd import main_fbsd
        return main_fbsd(args)
    as_json = args == ["--json"]
    from ._main import jailed
    if jailed():
        return 0
    from ..confine.uts import current_hostname
    from ..lifecycle import sweep
    from ..state import registry
    jails = [r for r in sweep.jails() if r.state == "running"]
    root = os.geteuid() == 0
    rows = []
    for r in jails:
        host = r.hostname
        if root:        # others cannot enter the UTS namespace: they read the record
            host = current_hostname(r.pid, r.hostname)
            if host != r.hostname:
                registry.refresh_hostname(r, host)
        rows.append((r, host))
    out = sys.stdout
    if as_json:
        import json
        from ..confine import racct
        out.write(json.dumps([{"jid": r.jid, "name": r.name, "hostname": h, "path": r.path,
                               "ips": list(reversed(r.ips)), "pid": r.pid,
                               "state": r.state, "persist": bool(r.persist),
                               "knobs": r.knobs, **_ids(r),
                               **_usage(racct.light(r))}
                              for r, h in rows], indent=1) + "\n")
        return 0
    if not rows:
        return 0
    out.write("JID\tHostname\tPath\t\tIPs\n")
    for r, h in rows:
        out.write("%-8s%-15s %-15s %s\n" % (r.jid, escape(h), escape(r.path),
                                             format_ips(r.ips)))
    return 0


def _ids(r: JailRecord) -> dict[str, Any]:
    """The user namespace's host ids: uid_base (jail uid 0), uid_count (the
    uids mapped), and uid_map/gid_map as [jail id, host id, count] lines
    (an OCI config's own, or [0, uid_base, 65536])."""
    uids, gids = r.id_maps()
    return {"uid_base": r.uid_base, "uid_count": sum(n for _, _, n in uids),
            "uid_map": [list(line) for line in uids], "gid_map": [list(line) for line in gids]}


def _usage(u: dict[str, int]) -> dict[str, int | float]:
    """rctl's usage (confine/racct.py): memory in bytes, CPU time in
    seconds, processes of the jail's cgroup."""
    return {"memory": u["memoryuse"], "cputime": round(u["cputime_usec"] / 1e6, 3),
            "processes": u["maxproc"]}
