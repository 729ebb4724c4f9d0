"""Opening a file the host writes for a jail, such as rc.conf's console log (SPEC §7).

Host root opens the file, and jailed root may own part of the path: with
`jail_www_consolelog="/usr/jail/www/var/log/console.log"` it can replace
`var/log` with a symlink to `/etc` between two starts, and an open() that
follows it creates or truncates a host file (O_NOFOLLOW covers the last
component only).  So the path is taken in two parts:

- the components the host controls (down to the first directory of a jail's
  tree) resolve as the kernel resolves them, symlinks included: `/var/run`
  is a symlink to `/run` on Debian, and an administrator's symlink is theirs;
- from the jail's tree on, openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)
  from that tree's root: a symlink anywhere (last component included) or a
  `..` that climbs out fails, and the message names the symlink, as
  FreeBSD's jail(8) does for exec.consolelog (usr.sbin/jail/command.c,
  check_path: "... is a symbolic link").

A path outside every jail tree is opened from its resolved directory with
O_NOFOLLOW.  Every open is O_NONBLOCK (a FIFO must not hang the host's
tools), and what is opened must be a regular file; a character device is
accepted outside every jail tree only (`/dev/null`, `/dev/console`: the
administrator's choice; jailed root cannot make device nodes).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
from dataclasses import dataclass

from ..errors import JailError
from ..kernel import libc

#: symlinks followed in the host's part before giving up (Linux's MAXSYMLINKS)
_MAX_LINKS = 40


class HostFileError(JailError):
    """One line naming the file (or the symlink on its way) and what is wrong."""


@dataclass
class HostFile:
    """An open file, the directory it was found in, and whether we made it."""
    fd: int
    dirfd: int
    name: str
    path: str
    created: bool

    def remove_if_empty(self) -> None:
        """Unlink the file if we created it and it is still empty and still ours.

        Through the directory descriptor: the name may sit in a jail's tree,
        where the path could lead elsewhere by now.
        """
        if not self.created:
            return
        st = os.fstat(self.fd)
        if st.st_size != 0:
            return
        try:
            there = os.stat(self.name, dir_fd=self.dirfd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if (there.st_dev, there.st_ino) == (st.st_dev, st.st_ino):
            os.unlink(self.name, dir_fd=self.dirfd)

    def close(self) -> None:
        for fd in (self.fd, self.dirfd):
            if fd >= 0:
                os.close(fd)
        self.fd = self.dirfd = -1


def _inside(path: str, trees: tuple[str, ...]) -> str | None:
    for tree in trees:
        if path == tree or path.startswith(tree.rstrip("/") + "/"):
            return tree
    return None


def _parts(path: str) -> list[str]:
    return [p for p in path.split("/") if p and p != "."]


def _first_symlink(tree: str, rel: tuple[str, ...]) -> str | None:
    """For the message only: the first component below TREE that is a symlink."""
    path = tree.rstrip("/")
    for part in rel:
        path = f"{path}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return path
        except OSError:
            return None
    return None


def _fail(path: str, err: int) -> HostFileError:
    return HostFileError(f"{path}: {os.strerror(err)}")


@dataclass(frozen=True)
class _Where:
    """How a name is opened: from a host directory, or below a jail tree."""
    path: str                      # as the administrator wrote it (absolute)
    tree: str | None = None        # the jail tree, if inside one
    parts: tuple[str, ...] = ()    # the components below it (for the message)

    def open(self, dirfd: int, name: str, flags: int, mode: int = 0) -> int:
        if self.tree is None:
            return os.open(name, flags | os.O_NOFOLLOW, mode, dir_fd=dirfd)
        return libc.openat2(dirfd, name, flags, libc.RESOLVE_BENEATH
                            | libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS, mode)

    def explain(self, e: OSError) -> HostFileError:
        err = e.errno or errno.EIO
        if err == errno.ELOOP and self.tree is not None:
            link = _first_symlink(self.tree, self.parts)
            if link is not None:
                return HostFileError(f"{link} is a symbolic link")
        if err == errno.EXDEV and self.tree is not None:
            return HostFileError(f"{self.path}: leads out of the jail's tree {self.tree}")
        if err == errno.ENXIO:          # a FIFO without a reader, a socket
            return HostFileError(f"{self.path}: not a regular file")
        return _fail(self.path, err)


def _resolve_dir(path: str, trees: tuple[str, ...]) -> tuple[str, list[str], str]:
    """(host directory reached, components left below it, the last name).

    Walks PATH's directories from `/` as the kernel would, symlinks included,
    but stops on entering a jail tree: the rest is the jail's to control.
    """
    parts = _parts(path)
    if not parts or path.endswith("/") or parts[-1] == "..":
        raise _fail(path, errno.EISDIR)
    name = parts.pop()
    cur = "/"
    links = 0
    while parts and _inside(cur, trees) is None:
        part = parts.pop(0)
        if part == "..":
            cur = os.path.dirname(cur)
            continue
        nxt = os.path.join(cur, part)
        try:
            st = os.lstat(nxt)
        except OSError as e:
            raise _fail(path, e.errno or errno.EIO) from None
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_LINKS:
                raise _fail(path, errno.ELOOP)
            target = os.readlink(nxt)
            if target.startswith("/"):
                cur = "/"
            parts[:0] = _parts(target)
            continue
        if not stat.S_ISDIR(st.st_mode):
            raise _fail(path, errno.ENOTDIR)
        cur = nxt
    return cur, parts, name


def open_host_file(path: str, trees: tuple[str, ...], *, append: bool = False,
                   read: bool = False, mode: int = 0o600) -> HostFile:
    """Open PATH for writing, creating it if needed; TREES: the jail trees' realpaths.

    `append` opens with O_APPEND, `read` adds read access (to show what a
    command wrote); nothing is truncated here.
    """
    if not path.startswith("/"):
        path = os.path.join(os.getcwd(), path)   # not abspath: `..` is the walk's to take
    top, rest, name = _resolve_dir(path, trees)
    tree = _inside(top, trees)
    if tree is None:
        where = _Where(path)
        dirfd = _open_dir(top, where)
    else:
        rel = (_parts(os.path.relpath(top, tree)) if top != tree else []) + rest
        where = _Where(path, tree, tuple(rel + [name]))
        treefd = _open_dir(tree, where)
        try:
            dirfd = where.open(treefd, "/".join(rel) or ".",
                               os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise where.explain(e) from None
        finally:
            os.close(treefd)
    access = (os.O_RDWR if read else os.O_WRONLY) | (os.O_APPEND if append else 0)
    try:
        fd, created = _open_or_create(dirfd, name, access | os.O_NONBLOCK | os.O_CLOEXEC,
                                      mode, where)
        try:
            st = os.fstat(fd)
            if not (stat.S_ISREG(st.st_mode) or (tree is None and stat.S_ISCHR(st.st_mode))):
                raise HostFileError(f"{path}: not a regular file")
            # blocking again: a regular file ignores the flag, a device must not see it
            fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
        except BaseException:
            os.close(fd)
            raise
    except BaseException:
        os.close(dirfd)
        raise
    return HostFile(fd, dirfd, name, path, created)


def _open_dir(path: str, where: _Where) -> int:
    try:
        return os.open(path, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as e:
        raise where.explain(e) from None


def _open_or_create(dirfd: int, name: str, flags: int, mode: int,
                    where: _Where) -> tuple[int, bool]:
    """(fd, created): O_EXCL when it is missing, so `created` is true only if we made it."""
    for _ in range(3):
        try:
            return where.open(dirfd, name, flags), False
        except FileNotFoundError:
            pass
        except OSError as e:
            raise where.explain(e) from None
        try:
            return where.open(dirfd, name, flags | os.O_CREAT | os.O_EXCL, mode), True
        except FileExistsError:
            continue                   # made meanwhile: open it as it is
        except OSError as e:
            raise where.explain(e) from None
    raise _fail(where.path, errno.EEXIST)
