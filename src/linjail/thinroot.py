"""A thin jail's description, PATH.linjail-thin: where the read-only base and
the jail's own writable layer of the thin jail rooted at PATH are
(roots/thin.py writes it; every front end reads it into JailSpec.overlay).

    PATH.layer/upper      the jail's own writable layer (overlayfs upperdir)
    PATH.layer/work       overlayfs's workdir (same file system as upper)
    PATH.linjail-thin     {"base": "/abs/BASE", "top": "/abs/PATH.layer"}

The description is read with O_NOFOLLOW and must be a root-owned regular
file nobody else may write: it decides what root mounts.
"""
from __future__ import annotations

import json
import os
import stat

from linjail.errors import JailError

THIN_MARKER = ".linjail-thin"   # PATH + this: the thin-jail description
THIN_LAYER = ".layer"           # PATH + this: the thin jail's writable layer
#: characters that overlayfs's option parser treats specially (lowerdir=a:b, o1,o2, \\)
UNSAFE = (",", ":", "\\", "\n", "\0")
MAX_MARKER = 64 * 1024


def marker_path(path: str) -> str:
    """Where the description of the thin jail rooted at PATH lives."""
    return path.rstrip("/") + THIN_MARKER


def layer_path(path: str) -> str:
    return path.rstrip("/") + THIN_LAYER


def overlay_for(path: str) -> tuple[str, str] | None:
    """JailSpec.overlay for the jail root PATH (its realpath): (lowerdir, top).

    None when PATH is not a thin jail (no PATH.linjail-thin beside it).
    Raises JailError, one line naming the file, if the description is unsafe,
    malformed, or names a base or layer that is gone.
    """
    marker = marker_path(path)
    try:
        fd = os.open(marker, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as e:
        if os.path.islink(marker):
            raise JailError(f"{marker}: is a symbolic link; refusing it") from None
        raise JailError(f"{marker}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise JailError(f"{marker}: not a regular file")
        if st.st_uid != 0 or st.st_mode & 0o022:
            raise JailError(f"{marker}: must be owned by root and writable by root only")
        data = os.read(fd, MAX_MARKER + 1)
    finally:
        os.close(fd)
    try:
        desc = json.loads(data)
        base, top = desc["base"], desc["top"]
        if not isinstance(base, str) or not isinstance(top, str):
            raise TypeError
    except RecursionError:    # "[[[[..." 64 KiB deep: json's recursion limit
        raise JailError(f"{marker}: not a thin-jail description (nested too deeply)") \
            from None
    except (ValueError, KeyError, TypeError):
        raise JailError(f"{marker}: not a thin-jail description "
                        '({"base": "/abs/BASE", "top": "/abs/PATH.layer"})') from None
    if top != layer_path(path):
        raise JailError(f"{marker}: top {top} is not {layer_path(path)}")
    check_base_path(base, marker)
    for sub in ("upper", "work"):
        d = os.path.join(top, sub)
        if not is_real_dir(d):
            raise JailError(f"{marker}: {d}: missing or not a directory")
    return base, top


def check_base_path(base: str, what: str) -> None:
    if not os.path.isabs(base) or os.path.normpath(base) != base or base == "/":
        raise JailError(f"{what}: base {base!r} is not an absolute, normalized path")
    bad = [c for c in UNSAFE if c in base]
    if bad:
        raise JailError(f"{what}: base {base}: overlayfs cannot take a path with {bad[0]!r}")
    if not is_real_dir(base):
        raise JailError(f"{what}: base {base}: missing, not a directory, or a symbolic link")


def is_real_dir(path: str) -> bool:
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except (OSError, ValueError):   # ValueError: a NUL, or a surrogate no path can hold
        return False
