"""jls(8) in FreeBSD's formats (usr.sbin/jls/jls.c; facts only):

  jls [-dhNnqsv] [-c] [-j jail] [--libxo json] [param ...]

  (options, no param)  the table `   JID  IP Address      Hostname      Path`
  -N                   the same with the jail's name instead of its JID
  -v                   four lines per jail: jid hostname path / name state /
                       cpuset id / one line per address
  -n, -h, -s, params   parameters: name=value (-n), a header line (-h),
                       what jail(8) needs to recreate the jail (-s), quoted
                       values (-q)
  --libxo json         the same data as JSON, in jls's libxo structure

Jails are listed in JID order, as FreeBSD lists them.  cpuset.id is the
inode number of the jail's cgroup (Linux has no cpuset ids); dying is
always false (a removed jail is gone at once).
"""
from __future__ import annotations

import sys

from ..errors import JailError, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..state.registry import JailRecord
    Value = bool | str | list[str]

USAGE = "usage: jls [-cdhNnqsv] [-j jail] [--json | --libxo json] [param ...]"
OPTIONS = "acdj:hNnqsv"

PRINT_DEFAULT, PRINT_HEADER, PRINT_NAMEVAL, PRINT_QUOTED = 0x01, 0x02, 0x04, 0x08
PRINT_SKIP, PRINT_VERBOSE, PRINT_JAIL_NAME = 0x10, 0x20, 0x40

#: parameters whose value the jail's own jailsys parameter decides (-s skips
#: them unless it is "new"), as jls.c finds them by the name before the dot
_JAILSYS_PARENTS = {"host.hostname": "host", "ip4.addr": "ip4", "ip6.addr": "ip6"}


def all_parameters() -> list[str]:
    """jls's "all": every parameter, top-level ones first, then by name."""
    from ..config.params import PARAMS
    names = [p.name for p in PARAMS if p.kernel] + ["host"]
    return sorted(set(names), key=lambda n: ("." in n, n))


def values(rec: JailRecord, hostname: str) -> dict[str, Value]:
    """Each parameter's value for REC, as jailparam_export would give it."""
    knobs = rec.knobs
    ip4 = [a for a in rec.ips if ":" not in a]
    ip6 = [_ip6(a) for a in rec.ips if ":" in a]
    sysv = "new" if knobs.get("sysvipc_allowed") else "disable"
    return {
        "jid": str(rec.jid), "name": rec.name or str(rec.jid), "path": rec.path,
        "host": "new", "host.hostname": hostname,
        "ip4": "new" if ip4 else "disable", "ip4.addr": ip4,
        "ip6": "new" if ip6 else "disable", "ip6.addr": ip6,
        "persist": bool(rec.persist), "enforce_statfs": str(knobs.get("enforce_statfs", 2)),
        "children.max": "0", "children.cur": "0", "devfs_ruleset": str(rec.devfs_ruleset),
        "dying": False, "cpuset.id": str(rec.cgroup_ino), "parent": "0",
        "allow.set_hostname": bool(knobs.get("set_hostname_allowed", 1)),
        "allow.sysvipc": bool(knobs.get("sysvipc_allowed", 0)),
        "allow.raw_sockets": bool(knobs.get("allow_raw_sockets", 0)),
        "allow.chflags": bool(knobs.get("chflags_allowed", 0)),
        "allow.socket_af": not knobs.get("socket_unixiproute_only", 1),
        "allow.reserved_ports": True,
        "unprivileged_root": bool(rec.uid_base),
        "unprivileged_root.uid": str(rec.uid_base),
        "sysvmsg": sysv, "sysvsem": sysv, "sysvshm": sysv,
    }


def _ip6(text: str) -> str:
    import ipaddress
    return str(ipaddress.ip_address(text))


def _writable(name: str) -> bool:
    from ..config.params import BY_NAME
    p = BY_NAME.get(name)
    return p is None or not p.readonly


class Args:
    def __init__(self) -> None:
        self.pflags = 0
        self.jail = ""
        self.check = False
        self.json = False
        self.params: list[str] = []


def parse(args: list[str]) -> Args:
    from ..config.getopt import GetoptError, getopt
    rest: list[str] = []
    words: list[str] = []
    a = Args()
    i = 0
    while i < len(args):          # libxo's own options may come anywhere
        arg = args[i]
        if arg == "--libxo" and i + 1 < len(args) or arg.startswith("--libxo="):
            style = args[i + 1] if arg == "--libxo" else arg[len("--libxo="):]
            i += 1 if arg == "--libxo" else 0
            if style.split(",")[0] not in ("json", "text"):
                raise JailError(f"unknown libxo style: {style}")
            a.json = style.split(",")[0] == "json"
        else:
            words.append(arg)
        i += 1
    try:
        opts, rest = getopt(words, OPTIONS)
    except GetoptError as err:
        raise UsageError(f"jls: {USAGE}", f"jls: {err}") from None
    for opt, val in opts:
        c = opt[1]
        if c == "j":
            a.jail = val
        elif c == "c":
            a.check = True
        elif c == "h":
            a.pflags = (a.pflags & ~(PRINT_SKIP | PRINT_VERBOSE)) | PRINT_HEADER
        elif c == "N":
            a.pflags |= PRINT_JAIL_NAME
        elif c == "n":
            a.pflags = (a.pflags & ~PRINT_VERBOSE) | PRINT_NAMEVAL
        elif c == "q":
            a.pflags |= PRINT_QUOTED
        elif c == "s":
            a.pflags = (a.pflags & ~(PRINT_HEADER | PRINT_VERBOSE)) | \
                PRINT_NAMEVAL | PRINT_QUOTED | PRINT_SKIP
        elif c == "v":
            a.pflags = (a.pflags & ~(PRINT_HEADER | PRINT_NAMEVAL | PRINT_SKIP)) | \
                PRINT_VERBOSE
        # -a and -d (dying jails too): there are none to add
    a.params = rest
    return a


def main_fbsd(args: list[str]) -> int:
    a = parse(args)
    from ._main import jailed
    if jailed():
        return 0
    if a.params:
        a.pflags &= ~PRINT_VERBOSE
        names: list[str] = []
        for p in a.params:
            expanded = all_parameters() if p == "all" else [p]
            for n in expanded:
                if n not in all_parameters():
                    raise JailError(f"unknown parameter: {n}")
                if n not in names:
                    names.append(n)
    elif a.pflags & (PRINT_HEADER | PRINT_NAMEVAL):
        names = all_parameters()
    else:
        names = []
        if not a.pflags & PRINT_VERBOSE:
            a.pflags |= PRINT_DEFAULT
    jails = _select(a.jail)
    if a.check:
        return 0 if jails else 1
    out: list[str] = []
    if a.json:
        sys.stdout.write(_json(a.pflags, names, jails))
        return 0
    if a.pflags & PRINT_VERBOSE:
        out.append("   JID  Hostname                      Path")
        out.append("        Name                          State")
        out.append("        CPUSetID")
        out.append("        IP Address(es)")
    elif a.pflags & PRINT_DEFAULT:
        out.append(" JID             IP Address      Hostname                      Path"
                   if a.pflags & PRINT_JAIL_NAME else
                   "   JID  IP Address      Hostname                      Path")
    elif a.pflags & PRINT_HEADER:
        out.append(" ".join(names))
    for rec, host in jails:
        out.extend(_text(a.pflags, names, rec, host))
    if out:
        sys.stdout.write("\n".join(out) + "\n")
    return 0


def _select(which: str) -> list[tuple[JailRecord, str]]:
    """The running jails (JID order), or the one -j names; with the
    hostname each has now."""
    import os
    from ..confine.uts import current_hostname
    from ..lifecycle import sweep
    jails = sorted((r for r in sweep.jails() if r.state == "running"),
                   key=lambda r: r.jid)
    if which:
        if which.isascii() and which.isdigit() and int(which) > 0:
            jails = [r for r in jails if r.jid == int(which)]
            if not jails:
                raise JailError(f"jail {int(which)} not found")
        else:
            jails = [r for r in jails if (r.name or str(r.jid)) == which]
            if not jails:
                raise JailError(f'jail "{which}" not found')
    root = os.geteuid() == 0
    return [(r, current_hostname(r.pid, r.hostname) if root else r.hostname) for r in jails]


def _quote(pflags: int, value: str) -> str:
    """jls.c quoted_print."""
    if not value:
        return '""' if pflags & PRINT_QUOTED else ""
    qc = '"' if "'" in value else "'" if '"' in value else \
        '"' if (" " in value or "\t" in value) else ""
    return f"{qc}{value}{qc}" if qc and pflags & PRINT_QUOTED else value


def _text(pflags: int, names: list[str], rec: JailRecord, host: str) -> list[str]:
    from ..display import escape
    v = values(rec, host)
    host, path, name = escape(host), escape(rec.path), escape(str(v["name"]))
    ip4, ip6 = v["ip4.addr"], v["ip6.addr"]
    assert isinstance(ip4, list) and isinstance(ip6, list)
    if pflags & PRINT_VERBOSE:
        lines = [f"{rec.jid:6d}  {host[:29]:<29} {path[:74]}",
                 f"        {name[:29]:<29} ACTIVE", f"        {v['cpuset.id']}"]
        for addr in [*ip4, *ip6]:
            lines.append(f"        {addr}")
        return lines
    if pflags & PRINT_DEFAULT:
        first = ip4[0] if ip4 else ""
        head = f" {name:<15} " if pflags & PRINT_JAIL_NAME else f"{rec.jid:6d}  "
        return [f"{head}{first[:15]:<15} {host[:29]:<29} {path[:74]}"]
    parts: list[str] = []
    for pname in names:
        value = v[pname]
        if pflags & PRINT_SKIP:
            parent = _JAILSYS_PARENTS.get(pname)
            if not _writable(pname) or (parent is not None and v[parent] != "new"):
                continue
        if pflags & PRINT_NAMEVAL and isinstance(value, bool):
            parts.append(pname if value else _noname(pname))
            continue
        text = ",".join(value) if isinstance(value, list) else \
            ("true" if value is True else "false" if value is False else value)
        if pname in ("host.hostname", "path", "name"):
            text = escape(text)
        prefix = f"{pname}=" if pflags & PRINT_NAMEVAL else ""
        if not text:
            shown = '""' if pflags & PRINT_QUOTED else ("" if pflags & PRINT_NAMEVAL else "-")
        else:
            shown = _quote(pflags, text)
        parts.append(prefix + shown)
    return [" ".join(parts)]


def _noname(name: str) -> str:
    head, dot, last = name.rpartition(".")
    return f"{head}{dot}no{last}"


def _json(pflags: int, names: list[str], jails: list[tuple[JailRecord, str]]) -> str:
    """jls --libxo json: {"__version": "2", "jail-information": {"jail": [...]}}."""
    import json
    items = []
    for rec, host in jails:
        v = values(rec, host)
        ip4, ip6 = v["ip4.addr"], v["ip6.addr"]
        assert isinstance(ip4, list) and isinstance(ip6, list)
        item: dict[str, object]
        if pflags & PRINT_VERBOSE:
            item = {"jid": rec.jid, "hostname": host, "path": rec.path, "name": v["name"],
                    "state": "ACTIVE", "cpusetid": rec.cgroup_ino}
            if ip4:
                item["ipv4_addrs"] = ip4
            if ip6:
                item["ipv6_addrs"] = ip6
        elif pflags & PRINT_DEFAULT:
            item = {"name": v["name"]} if pflags & PRINT_JAIL_NAME else {"jid": rec.jid}
            item.update({"ipv4": ip4[0] if ip4 else "", "hostname": host, "path": rec.path})
        else:
            item = {}
            for pname in names:
                value = v[pname]
                if pflags & PRINT_SKIP:
                    parent = _JAILSYS_PARENTS.get(pname)
                    if not _writable(pname) or (parent is not None and v[parent] != "new"):
                        continue
                item[pname] = value
        items.append(json.dumps(item, separators=(",", ":"), ensure_ascii=False))
    return ('{"__version": "2", "jail-information": {"jail": [' + ", ".join(items)
            + "]}\n}\n")
