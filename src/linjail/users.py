"""Users for `-u` (the host's passwd) and `-U` (the jail's own etc/passwd).

The jail's files are parsed here, never through the host's NSS: the jail's
root is untrusted and NSS modules would run host code on its data.
"""
from __future__ import annotations

from .errors import JailError
from .model import User


def lookup_host_user(name: str) -> User | None:
    """NAME in the host's passwd and group (`-u`), or None."""
    import os
    import pwd
    try:
        pw = pwd.getpwnam(name)
    except KeyError:
        return None
    groups = tuple(os.getgrouplist(pw.pw_name, pw.pw_gid))
    return User(pw.pw_name, pw.pw_uid, pw.pw_gid, groups, pw.pw_dir, pw.pw_shell)


def host_user(name: str, prog: str = "jail") -> User:
    user = lookup_host_user(name)
    if user is None:
        raise JailError(f"{prog}: {name}: no such user")
    return user


def parse_passwd(text: str, name: str) -> tuple[int, int, str, str] | None:
    """(uid, gid, home, shell) of NAME in passwd(5) text, or None."""
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 7 and fields[0] == name:
            try:
                return int(fields[2]), int(fields[3]), fields[5], fields[6]
            except ValueError:
                return None
    return None


def parse_groups(text: str, name: str, gid: int) -> tuple[int, ...]:
    """The primary gid plus every group(5) entry listing NAME as a member."""
    out = [gid]
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) >= 4 and name in fields[3].split(","):
            try:
                g = int(fields[2])
            except ValueError:
                continue
            if g not in out:
                out.append(g)
    return tuple(out)


def _read(path: str) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return ""


def jail_user(name: str, prog: str = "jail") -> User:
    """Look NAME up in /etc/passwd and /etc/group; call after entering the jail."""
    entry = parse_passwd(_read("/etc/passwd"), name)
    if entry is None:
        raise JailError(f"{prog}: {name}: no such user")
    uid, gid, home, shell = entry
    groups = parse_groups(_read("/etc/group"), name, gid)
    return User(name, uid, gid, groups, home, shell)


def login_env(user: User, term: str | None) -> dict[str, str]:
    """jail -l: only HOME, SHELL, USER, TERM (if set) and PATH (SPEC §2)."""
    path = ("/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin" if user.uid == 0
            else "/bin:/usr/bin:/usr/local/bin")
    env = {"HOME": user.home, "SHELL": user.shell or "/bin/sh", "USER": user.name,
           "PATH": path}
    if term is not None:
        env["TERM"] = term
    return env
