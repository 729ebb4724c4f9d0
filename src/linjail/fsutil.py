"""Replacing a file atomically: one way for every file linjail writes whole
(registry records, id files, knobs, rctl rules, the seccomp cache, a thin
jail's description, the /etc files of a complete jail).

A reader sees the old file or the new one, never half of it: the data go to
a temporary file beside PATH, which rename(2) then puts in its place.  The
temporary file is PATH.PID.tmp (state/cleanup.py tells a dead writer's
leftover by that PID); it is created O_EXCL|O_NOFOLLOW, so nothing planted
under that name (a symlink, a hard link, in a directory jailed root
controls) is ever written through: a leftover of a dead process that had
this PID is unlinked (the name, never what it points to) and made anew.
"""
from __future__ import annotations

import os

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def atomic_write(path: str, data: bytes, *, mode: int = 0o644, durable: bool = False,
                 owner: tuple[int, int] | None = None, dir_fd: int | None = None) -> None:
    """Replace PATH by a file holding DATA, with MODE (not narrowed by the umask).

    durable: fsync the file and then its directory, for files that must
    survive a power loss (a crash of a process needs only the rename).
    owner: (uid, gid) to give the file before it appears.
    dir_fd: PATH is relative to this directory descriptor (a tree that
    jailed root controls is reached through descriptors, never by name).
    Raises OSError; no temporary file is left behind.
    """
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        fd = os.open(tmp, _CREATE, 0o600, dir_fd=dir_fd)
    except FileExistsError:
        os.unlink(tmp, dir_fd=dir_fd)       # a dead writer's, which had our PID
        fd = os.open(tmp, _CREATE, 0o600, dir_fd=dir_fd)
    try:
        try:
            if owner is not None:
                os.fchown(fd, *owner)
            os.fchmod(fd, mode)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(tmp, dir_fd=dir_fd)    # a full disk, a directory at PATH ...
        except OSError:
            pass
        raise
    if durable:
        directory = os.path.dirname(path) or "."
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
