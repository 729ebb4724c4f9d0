"""Users for `-u` (the host's passwd) and `-U` (the jail's own etc/passwd).

The jail's files are parsed here, never through the host's NSS: the jail's
root is untrusted and NSS modules would run host code on its data.
"""
from __future__ import annotations

from .errors import JailError
from .model import User


#: the largest valid uid/gid: (uid_t)-1 means "leave unchanged" to the set*id
#: calls (and is the reaper's "no user"), so a passwd entry saying -1 or
#: 4294967295 would run the command as root (issue 16, item 5)
ID_MAX = 2**32 - 2


def parse_id(text: str) -> int:
    """A uid/gid field: plain ASCII decimal digits in range, or -1 (invalid).
    int() alone would take " 5", "+5", "1_000", Unicode digits and -1."""
    if not (0 < len(text) <= 10 and text.isascii() and text.isdigit()):
        return -1
    value = int(text)
    return value if value <= ID_MAX else -1


def invalid_ids(user: User) -> str | None:
    """Why USER must not be used (its uid or gid is no valid id), or None."""
    if not 0 <= user.uid <= ID_MAX:
        return "invalid user id"
    if not 0 <= user.gid <= ID_MAX or not all(0 <= g <= ID_MAX for g in user.groups):
        return "invalid group id"
    return None


def lookup_host_user(name: str) -> User | None:
    """NAME in the host's passwd and group (`-u`), or None.  Check the ids
    with invalid_ids: NSS gives whatever the file says."""
    import os
    import pwd
    try:
        pw = pwd.getpwnam(name)
    except (KeyError, ValueError):     # ValueError: NAME holds a NUL byte
        return None
    try:
        groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
    except OSError:
        groups = (pw.pw_gid,)
    return User(pw.pw_name, pw.pw_uid, pw.pw_gid, groups, pw.pw_dir, pw.pw_shell)


def host_user(name: str) -> User:
    """NAME in the host's passwd and group (`-u`), or the one-line refusal."""
    user = lookup_host_user(name)
    if user is None:
        raise JailError(f"{name}: no such user")
    why = invalid_ids(user)
    if why:
        raise JailError(f"{name}: {why}")
    return user


def parse_passwd(text: str, name: str) -> tuple[int, int, str, str] | None:
    """(uid, gid, home, shell) of NAME in passwd(5) text, or None; an id that
    is not a valid number comes back as -1 (see invalid_ids)."""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == name:
            return parse_id(fields[2]), parse_id(fields[3]), fields[5], fields[6]
    return None


def parse_groups(text: str, name: str, gid: int) -> tuple[int, ...]:
    """The primary gid plus every group(5) entry listing NAME as a member
    (entries whose gid is no valid number are skipped, as getgrent would)."""
    out = [gid]
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and name in fields[3].split(","):
            g = parse_id(fields[2])
            if g >= 0 and g not in out:
                out.append(g)
    return tuple(out)


def user_from_db(name: str, passwd: str, group: str) -> User:
    """NAME from a jail's passwd and group texts (`-U`), or the one-line
    refusal.  The texts come from confine/rootfs.py's read_user_db, which
    reads them inside the jail's root without following a link."""
    entry = parse_passwd(passwd, name)
    if entry is None:
        raise JailError(f"{name}: no such user")
    uid, gid, home, shell = entry
    user = User(name, uid, gid, parse_groups(group, name, gid), home, shell)
    why = invalid_ids(user)
    if why:
        raise JailError(f"{name}: {why}")
    return user


def login_env(user: User, term: str | None) -> dict[str, str]:
    """jail -l: only HOME, SHELL, USER, TERM (if set) and PATH (SPEC §2)."""
    path = ("/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin" if user.uid == 0
            else "/bin:/usr/bin:/usr/local/bin")
    env = {"HOME": user.home, "SHELL": user.shell or "/bin/sh", "USER": user.name,
           "PATH": path}
    if term is not None:
        env["TERM"] = term
    return env
