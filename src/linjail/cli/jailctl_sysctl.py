"""jailctl sysctl: the seed's knobs, sysctl(8) style (SPEC §5).

  jail.<knob>            alias of jail.defaults.<knob>: what a new jail copies
  jail.defaults.<knob>   the template
  jail.<jid>.<knob>      that running jail's own value (unprivileged_root:
                         read-only, the jail has or has not its user namespace)
  jail.jailed            read-only: 0 on the host, 1 inside a jail
  jail.list              read-only: DragonFly's list of running jails
                         ("JID hostname path IP ..." per jail, newest first);
                         empty, so not printed at all, inside a jail or with none
"""
from __future__ import annotations

import os
from typing import TextIO

from ..errors import JailError
from ..model import KNOB_DEFAULTS, KNOB_VALUES, Knobs


def _parse_name(name: str) -> tuple[str, int | None, str]:
    """(kind, jid, knob) with kind in defaults|jail|jailed|list; JailError if unknown."""
    parts = name.split(".")
    if name == "jail.jailed":
        return "jailed", None, "jailed"
    if name == "jail.list":
        return "list", None, "list"
    if len(parts) == 2 and parts[0] == "jail" and parts[1] in KNOB_DEFAULTS:
        return "defaults", None, parts[1]
    if len(parts) == 3 and parts[0] == "jail" and parts[2] in KNOB_DEFAULTS:
        if parts[1] == "defaults":
            return "defaults", None, parts[2]
        # a JID as jls prints it: ASCII digits, no sign, no leading zero
        # (str.isdigit() alone took "١" and "007"; tests/unit/test_sysctl.py)
        jid = _decimal(parts[1])
        if jid >= 0:
            return "jail", jid, parts[2]
    raise JailError(f"sysctl: unknown oid '{name}'")


def _decimal(text: str) -> int:
    """TEXT as jls prints a number (ASCII digits, no sign, no leading zero,
    at most 9 digits: int() refuses 4300 and more), or -1."""
    if 0 < len(text) <= 9 and text.isascii() and text.isdigit() and text == str(int(text)):
        return int(text)
    return -1


def _jailed() -> int:
    from ._main import jailed
    return 1 if jailed() else 0


#: what a write of 1 cannot give on Linux: one line at `jailctl sysctl` time
_NO_EFFECT: dict[str, str] = {
    "vfs_mount_nullfs": "mounts from inside a jail stay denied on Linux: a mount in the "
                        "jail's namespace needs CAP_SYS_ADMIN, which would reopen the escapes "
                        "linjail closes (jailctl(8))",
}
_NO_EFFECT["vfs_mount_tmpfs"] = _NO_EFFECT["vfs_mount_nullfs"]
#: knobs that change nothing a jail's processes see: no "applies to processes
#: started from now on" note (allow_listen_override: each jail has its own
#: network namespace, so a wildcard bind never meets the host's listeners)
_INERT = frozenset({"allow_listen_override", *_NO_EFFECT})


def jail_list() -> str:
    """kern_jail.c's sysctl_jail_list: "JID hostname path IP ..." for each
    running jail, newest first, addresses last given first, lines joined by
    newlines (no final one); "" inside a jail.  Hostnames and paths are
    escaped as jls escapes them, so no jail can forge a line."""
    if _jailed():
        return ""
    from ..confine.uts import current_hostname
    from ..display import escape
    from ..lifecycle import sweep
    import ipaddress
    root = os.geteuid() == 0
    lines = []
    for rec in sweep.jails():          # newest first, as LIST_INSERT_HEAD
        if rec.state != "running":
            continue
        host = current_hostname(rec.pid, rec.hostname) if root else rec.hostname
        words = [str(rec.jid), escape(host), escape(rec.path)]
        words += [str(ipaddress.ip_address(a)) for a in reversed(rec.ips)]
        lines.append(" ".join(words))
    return "\n".join(lines)


def _show(name: str) -> str:
    """sysctl(8)'s "name: value" line, or "" for an empty string (show_var
    prints nothing for a zero-length value)."""
    if name == "jail.list":
        text = jail_list()
        return f"{name}: {text}\n" if text else ""
    return f"{name}: {_value(name)}\n"


def _value(name: str) -> int:
    from ..lifecycle import sweep
    from ..state import knobs as knob_state
    kind, jid, knob = _parse_name(name)
    if kind == "jailed":
        return _jailed()
    if kind == "defaults":
        return int(knob_state.get_defaults().as_dict()[knob])
    rec = sweep.jail(jid) if jid is not None else None
    if rec is None or rec.state != "running":
        raise JailError(f"sysctl: unknown oid '{name}'")
    return int(rec.knobs.get(knob, KNOB_DEFAULTS[knob]))


def all_names() -> list[str]:
    from ..lifecycle import sweep
    names = [f"jail.{k}" for k in KNOB_DEFAULTS] + ["jail.jailed", "jail.list"]
    names += [f"jail.defaults.{k}" for k in KNOB_DEFAULTS]
    for rec in sorted(sweep.jails(), key=lambda r: r.jid):
        if rec.state == "running":
            names += [f"jail.{rec.jid}.{k}" for k in KNOB_DEFAULTS]
    return names


def _parse_value(name: str, knob: str, text: str) -> int:
    # exactly one of the allowed numbers: int() alone also took " 1", "+1",
    # "0_1" and non-ASCII digits (tests/unit/test_sysctl.py)
    value = _decimal(text)
    if value not in KNOB_VALUES[knob]:
        allowed = ", ".join(map(str, KNOB_VALUES[knob]))
        raise JailError(f"sysctl: {name}: invalid value '{text}' (allowed: {allowed})")
    return value


def main_sysctl(args: list[str], out: TextIO, err: TextIO) -> int:
    if args[:1] == ["--"]:       # getopt's end of options (sysctl(8) has no others here)
        args = args[1:]
    if not args:
        for name in all_names():
            out.write(_show(name))
        return 0
    reads = [a for a in args if "=" not in a]
    writes = [a.split("=", 1) for a in args if "=" in a]
    # validate everything before changing anything
    planned: list[tuple[str, str, int | None, str, int]] = []
    for name, text in writes:
        kind, jid, knob = _parse_name(name)
        if kind in ("jailed", "list"):
            raise JailError(f"sysctl: oid '{name}' is read only")
        value = _parse_value(name, knob, text)
        if kind == "jail":
            current = _value(name)      # the jail must exist
            if knob == "unprivileged_root" and value != current:
                raise JailError(f"sysctl: {name}: set when the jail is created; "
                                f"a running jail keeps it")
        planned.append((name, kind, jid, knob, value))
    for name in reads:
        if _parse_name(name)[0] != "list":
            _value(name)
    if planned and (os.geteuid() != 0 or _jailed()):
        raise JailError(f"sysctl: {planned[0][0]}: Operation not permitted")
    for name in args:
        if "=" not in name:
            out.write(_show(name))
    for name, kind, jid, knob, value in planned:
        old = _value(name)
        _write(kind, jid, knob, value)
        out.write(f"{name}: {old} -> {value}\n")
        chflags = _chflags_note(kind, jid, knob, value)
        if chflags:
            err.write(f"jailctl: sysctl: {name}: {chflags}\n")
        elif value and knob in _NO_EFFECT:
            err.write(f"jailctl: sysctl: {name}: {_NO_EFFECT[knob]}\n")
        elif kind == "jail" and old != value and knob not in _INERT:
            err.write(f"jailctl: sysctl: {name}: applies to processes started in jail {jid} "
                      f"from now on (jexec); its running processes keep the limits they "
                      f"started with\n")
    return 0


def _chflags_note(kind: str, jid: int | None, knob: str, value: int) -> str:
    """What chflags_allowed=1 and unprivileged_root=1 mean together (issue
    11): chflags need host root, so a new jail with both gets no user
    namespace; a running jail with a user namespace cannot be given them."""
    if not value or knob not in ("chflags_allowed", "unprivileged_root"):
        return ""
    from ..state import knobs as knob_state
    from ..state import registry
    if kind == "defaults":
        if knob_state.get_defaults().as_dict()[
                "unprivileged_root" if knob == "chflags_allowed" else "chflags_allowed"]:
            from ..confine.userns import CHFLAGS_WARNING
            return "new jails: " + CHFLAGS_WARNING.replace("this jail gets", "they get")
        return ""
    rec = registry.lookup(jid) if jid is not None else None
    if rec is not None and rec.uid_base:
        return (f"jail {jid} has a user namespace (unprivileged_root=1): chflags need "
                f"CAP_LINUX_IMMUTABLE in the host's and stay denied in it")
    return ""


def _write(kind: str, jid: int | None, knob: str, value: int) -> None:
    from ..state import knobs as knob_state
    from ..state import registry
    if kind == "defaults":
        with registry.Lock():
            current = knob_state.get_defaults().as_dict()
            current[knob] = value
            knob_state.set_defaults(Knobs.from_dict(current))
        return
    assert jid is not None
    with registry.Lock():
        rec = registry.read(jid)
        if rec is None:
            raise JailError(f"sysctl: unknown oid 'jail.{jid}.{knob}'")
        rec.knobs = {**KNOB_DEFAULTS, **rec.knobs, knob: value}
        registry.write(rec)
