"""Thin jails: many jails sharing one read-only base through overlayfs (SPEC §9).

`jailctl build PATH --thin BASE` makes three things, all on the host's file
system and none of them a mount:

    PATH                  an empty directory: the jail's root as `jail`, `jls`
                          and rc.conf name it (the overlay's mount point)
    PATH.layer/upper      the jail's own writable layer (overlayfs upperdir)
    PATH.layer/work       overlayfs's workdir (same file system as upper)
    PATH.linjail-thin     {"base": "/abs/BASE", "top": "/abs/PATH.layer"}

At each start the jail's first process mounts
`overlay lowerdir=BASE,upperdir=TOP/upper,workdir=TOP/work` onto PATH inside
the jail's own mount namespace (confine/rootfs.py attach_root, fed by
JailSpec.overlay = overlay_for(PATH)), so nothing is mounted on the host and
nothing needs redoing after a reboot.  Writes land in the jail's upper layer
only: never in BASE, never in another thin jail.  Changing BASE while thin
jails run on it is allowed by overlayfs but its effects on them are
unspecified (Documentation/filesystems/overlayfs.rst, "Changes to underlying
filesystems"): stop them first.

The description file is read with O_NOFOLLOW and must be a root-owned regular
file nobody else may write: it decides what root mounts.
"""
from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable

from linjail.errors import JailError
from linjail.fsutil import atomic_write
from linjail.roots.destroy import Target
from linjail.thinroot import (UNSAFE, check_base_path, is_real_dir, layer_path, marker_path,
                              overlay_for)

Log = Callable[[str], None]


# --- jailctl build PATH --thin BASE ---------------------------------------------


def build_thin(path: str, base: str, log: Log | None = None) -> str:
    """Make the thin jail PATH on BASE; returns its root (realpath).

    Raises JailError with one line; a failure leaves nothing behind.
    """
    try:
        lower = os.path.realpath(base, strict=True)
    except OSError as e:
        raise JailError(f"build: --thin {base}: {e.strerror}") from None
    if not os.path.isdir(lower):
        raise JailError(f"build: --thin {base}: Not a directory")
    _check_base(lower, base)
    target = Target(path, log)
    root = target.root
    if root == lower or root.startswith(lower.rstrip("/") + "/") or \
            lower.startswith(root + "/"):
        raise JailError(f"build: {root}: a thin jail cannot be inside its base {lower} "
                        "or contain it")
    for c in UNSAFE:
        if c in root:
            raise JailError(f"build: {root}: overlayfs cannot take a path with {c!r}")
    layer, marker = layer_path(root), marker_path(root)
    for extra in (layer, marker):
        if os.path.lexists(extra):
            raise JailError(f"build: {extra}: exists (left by another jail?); "
                            "remove it or choose another path")
    with target:
        target.also(layer)
        target.also(marker)
        try:
            _make_layer(lower, layer, root)
        except OSError as e:
            raise JailError(f"build: {e.filename or root}: {e.strerror}") from None
    return root


def _make_layer(lower: str, layer: str, root: str) -> None:
    base_st = os.stat(lower)
    os.mkdir(layer, 0o700)
    os.chmod(layer, 0o700)
    upper = os.path.join(layer, "upper")
    os.mkdir(upper, 0o700)
    # the overlay's root takes the upper root's owner and mode (overlayfs.rst)
    os.chown(upper, base_st.st_uid, base_st.st_gid)
    os.chmod(upper, stat.S_IMODE(base_st.st_mode))
    os.mkdir(os.path.join(layer, "work"), 0o700)
    try_overlay(lower, layer, root)
    _write_marker(marker_path(root), {"base": lower, "top": layer})


def _check_base(lower: str, given: str) -> None:
    if lower == "/":
        raise JailError(f"build: --thin {given}: the host's root cannot be a base")
    if overlay_for(lower) is not None:
        raise JailError(f"build: --thin {given}: is itself a thin jail; use a complete "
                        "or service jail as the base")
    if not is_real_dir(os.path.join(lower, "etc")):
        raise JailError(f"build: --thin {given}: not a jail root (no etc/ directory)")
    check_base_path(lower, "build: --thin")


def try_overlay(lower: str, top: str, root: str) -> None:
    """Mount the overlay once in a throw-away mount namespace, to fail at build
    time (no overlayfs, an upper file system without xattrs) rather than at
    the first start.  Nothing is mounted in the host's namespace."""
    from linjail.kernel import libc
    opts = f"lowerdir={lower},upperdir={top}/upper,workdir={top}/work"
    pid = os.fork()
    if pid == 0:   # pragma: no cover - runs in the child
        code = 0
        try:
            libc.unshare(libc.CLONE_NEWNS)
            libc.mount(None, "/", None, libc.MS_REC | libc.MS_PRIVATE)
            libc.mount("overlay", root, "overlay", libc.MS_NODEV, opts)
        except OSError as e:
            code = e.errno or 1
        except BaseException:
            code = 255
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        reason = os.strerror(code) if 0 < code < 255 else f"status {code}"
        raise JailError(f"build: overlayfs lowerdir={lower} upperdir={top}/upper: {reason}")


def _write_marker(marker: str, desc: dict[str, str]) -> None:
    """Durable and atomic: a start sees the whole description or none."""
    atomic_write(marker, (json.dumps(desc, indent=1) + "\n").encode(), mode=0o644, durable=True)
