"""A jail's fstab (`jail_<name>_fstab`, SPEC §8): bind mounts and tmpfs.

fstab(5) fields: ``source target type options [freq [passno]]``; ``\\040``
style octal escapes, each one byte (``\\000`` is refused: no system call
takes a path holding it); ``#`` comments; ``noauto`` entries skipped
(`mount -a`).
Types: ``null``/``nullfs`` (DragonFly's bind mount), ``bind``, ``none`` with
``bind``/``rbind`` among the options, and ``tmpfs``.

Targets may be written as DragonFly writes them, as host paths below the jail
root (``/usr/jail/www/data``), or as paths inside the jail (``/data``); either
way they become paths inside the jail and are resolved inside the root when
mounted (in the jail's own mount namespace, never on the host's view).
Parsing never mounts (STYLE: parse, validate, plan, execute).
"""
from __future__ import annotations

import os
import posixpath
import re
import stat
from dataclasses import dataclass

from linjail.model import Mount

_BIND_TYPES = frozenset({"null", "nullfs", "bind", "none"})
#: options that decide the kind or the read-only bit rather than being passed on
_CONSUMED = frozenset({"bind", "ro", "rw", "defaults", "auto"})
_OCTAL = re.compile(r"\\([0-7]{3})")


class FstabError(Exception):
    """A malformed fstab: the message names the file and the line."""


@dataclass(frozen=True)
class FstabEntry:
    source: str
    target: str        # as written
    fstype: str
    options: tuple[str, ...]
    line: int


def _unescape(field: str, where: str) -> str:
    """`\\ooo` is the byte ooo (vis(3)); paths are bytes, kept as os.fsdecode has them."""
    if "\\" not in field:
        return field
    out = bytearray()
    at = 0
    for m in _OCTAL.finditer(field):
        value = int(m.group(1), 8)
        if value > 0o377:
            raise FstabError(f"{where}: {field}: {m.group(0)} is not a byte")
        if value == 0:
            raise FstabError(f"{where}: {field}: a path cannot hold a NUL byte")
        out += field[at:m.start()].encode() + bytes((value,))
        at = m.end()
    out += field[at:].encode()
    return os.fsdecode(bytes(out))


def parse(text: str, filename: str) -> list[FstabEntry]:
    out: list[FstabEntry] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        where = f"{filename}: line {number}"
        if len(fields) < 4 or len(fields) > 6:
            raise FstabError(f"{where}: expected 4 to 6 fields, found {len(fields)}")
        source, target, fstype = (_unescape(f, where) for f in fields[:3])
        options = tuple(o for o in fields[3].split(",") if o)
        for extra in fields[4:]:
            if not extra.isdigit():
                raise FstabError(f"{where}: bad dump/pass field {extra!r}")
        if "noauto" in options:
            continue
        if not target.startswith("/"):
            raise FstabError(f"{where}: mount point {target} is not an absolute path")
        is_bind = fstype in ("null", "nullfs", "bind") or (
            fstype in _BIND_TYPES and ("bind" in options or "rbind" in options))
        if fstype != "tmpfs" and not is_bind:
            raise FstabError(f"{where}: unsupported file system type {fstype} "
                             "(bind mounts and tmpfs only)")
        if is_bind and not source.startswith("/"):
            raise FstabError(f"{where}: bind source {source} is not an absolute path")
        out.append(FstabEntry(source, target, fstype, options, number))
    return out


def read(path: str) -> list[FstabEntry]:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise FstabError(f"{path}: {e.strerror}") from None
    nul = data.find(b"\0")
    if nul >= 0:
        raise FstabError(f"{path}: line {_line_of(data, nul)}: binary data (NUL byte)")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise FstabError(f"{path}: line {_line_of(data, e.start)}: "
                         "not valid UTF-8 text") from None
    return parse(text, path)


def _line_of(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


def inside(target: str, roots: tuple[str, ...]) -> str:
    """The target as a normalised absolute path inside the jail.

    A host path below one of `roots` (the rootdir as written, its realpath)
    loses that prefix.  `..` is resolved lexically: symlinks are refused
    anyway (see symlink_in_path), so this is what an in-root lookup yields.
    """
    for root in roots:
        root = root.rstrip("/")
        if root and (target == root or target.startswith(root + "/")):
            target = target[len(root):] or "/"
            break
    return posixpath.normpath("/" + target.lstrip("/")).replace("//", "/")


def to_mounts(entries: list[FstabEntry], roots: tuple[str, ...]) -> tuple[Mount, ...]:
    mounts: list[Mount] = []
    for e in entries:
        kind = "tmpfs" if e.fstype == "tmpfs" else "bind"
        readonly = False
        for o in e.options:
            if o in ("ro", "rw"):
                readonly = o == "ro"
        passed = ",".join(o for o in e.options if o not in _CONSUMED)
        mounts.append(Mount(kind=kind, source="tmpfs" if kind == "tmpfs" else e.source,
                            target=inside(e.target, roots), readonly=readonly,
                            options=passed))
    return tuple(mounts)


def symlink_in_path(root: str, target: str) -> str | None:
    """The first component of `target` (inside `root`) that is a symlink.

    A pre-flight check for rc.d/jail's warning; the mount itself resolves the
    target inside the root by descriptor and refuses symlinks again, so a
    jailed root racing this check gains nothing.  Components that do not exist
    end the walk (the mount will then fail and name the path).
    """
    path = root.rstrip("/")
    for part in target.strip("/").split("/"):
        if not part:
            continue
        path = f"{path}/{part}"
        try:
            st = os.lstat(path)
        except OSError:
            return None
        if stat.S_ISLNK(st.st_mode):
            return "/" + path[len(root.rstrip("/")):].lstrip("/")
    return None
