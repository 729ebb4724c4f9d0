"""Making and removing jail roots safely: the target of a build, and `jailctl destroy`.

A jail root belongs to jailed root: anything in it may be a symlink planted to
point at the host's /etc, a bind mount someone made on the host, or a file
made immutable (chflags_allowed=1).  So removal is done here, once, for the
failed builds of complete.py, thin.py and tarball.py and for `jailctl destroy`:

- the tree is walked through directory descriptors opened O_NOFOLLOW, and
  entries are removed with unlinkat() relative to them: a symlink is removed,
  never followed (the fd-based walk of shutil.rmtree, plus the two checks
  below);
- mount points at or below PATH (from /proc/self/mountinfo) are detached
  first: unmounting never deletes the mounted data, removing through a mount
  would; and the walk never descends into a directory on another device;
- immutable and append-only flags (chattr +i/+a, FS_IOC_SETFLAGS) are cleared
  on the way, as `chflags -R noschg` would be needed on DragonFly.

A build's target must be absent or an empty directory; missing parents are
created 0700 (SPEC §7: a setuid file planted by jailed root must not be
reachable by host users; FreeBSD jail(8) gives the same advice).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat
import struct
from collections.abc import Callable, Iterable
from types import TracebackType

from linjail.errors import JailError
from linjail.kernel.mountinfo import parse as mountinfo_parse, read as mountinfo_read
from linjail.thinroot import THIN_MARKER, overlay_for

Log = Callable[[str], None]

# <linux/fs.h>: the inode flags ioctls (the long-sized variants, as chattr uses)
FS_IOC_GETFLAGS = 0x80086601
FS_IOC_SETFLAGS = 0x40086602
FS_IMMUTABLE_FL = 0x00000010
FS_APPEND_FL = 0x00000020
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: no `destroy /` or `destroy /usr`: a jail root is at least two levels down
MIN_DEPTH = 2


# --- the target of a build ------------------------------------------------------


def check_target(path: str) -> tuple[str, bool]:
    """PATH must be absent or an empty directory, not a symlink.

    Returns the absolute path, with its parent resolved (so markers written
    beside it are found by the realpath `jail` uses), and whether it exists.
    """
    if not path:
        raise JailError("build: empty path")
    absolute = os.path.abspath(path)
    if absolute == "/":
        raise JailError("build: /: refusing to build over the host's root")
    parent = os.path.realpath(os.path.dirname(absolute))
    root = os.path.join(parent, os.path.basename(absolute))
    try:
        st = os.lstat(root)
    except FileNotFoundError:
        return root, False
    except OSError as e:
        raise JailError(f"build: {root}: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise JailError(f"build: {root}: is a symbolic link")
    if not stat.S_ISDIR(st.st_mode):
        raise JailError(f"build: {root}: exists and is not a directory")
    if os.listdir(root):
        raise JailError(f"build: {root}: directory exists and is not empty")
    if mounts_at_or_below(root):
        raise JailError(f"build: {root}: is a mount point or has mounts below it")
    return root, True


def reachable_by_others(directory: str) -> bool:
    """True if a host user other than root can reach DIRECTORY.

    One root-owned directory without group/other search permission on the
    way from / is enough protection (a non-root owner could chmod it).
    """
    d = os.path.realpath(directory)
    while True:
        st = os.stat(d)
        if st.st_uid == 0 and not st.st_mode & 0o011:
            return False
        if d == "/":
            return True
        d = os.path.dirname(d)


class Target:
    """The directory a build fills; on failure (or ^C) everything it made goes.

        with Target(path, log) as t:
            ... write into t.root ...

    Entering creates the missing parents (0700) and the root (0755).  Leaving
    with an exception removes the root's contents (and the root unless it
    existed before), every extra path registered with `also()`, and the
    parents it created; then the exception goes on.
    """

    def __init__(self, path: str, log: Log | None = None) -> None:
        self.root, self.existed = check_target(path)
        self.log = log
        self.parents: list[str] = []
        self.extra: list[str] = []
        self._old_mode: int | None = None

    def __enter__(self) -> "Target":
        self.parents = _make_parents(os.path.dirname(self.root))
        if self.log is not None and reachable_by_others(os.path.dirname(self.root)):
            self.log(f"build: warning: {os.path.dirname(self.root)} is reachable by other "
                     "users; keep jails under a 0700 directory")
        try:
            if self.existed:
                self._old_mode = stat.S_IMODE(os.lstat(self.root).st_mode)
            else:
                os.mkdir(self.root, 0o755)
            os.chmod(self.root, 0o755)   # not the umask's choice: jail users traverse /
        except OSError as e:
            self._remove_parents()
            raise JailError(f"build: {self.root}: {e.strerror}") from None
        return self

    def also(self, path: str) -> None:
        """Register a path beside the root (thin layer, marker) to remove on failure."""
        self.extra.append(path)

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if kind is None:
            return
        self.undo()

    def undo(self) -> None:
        for extra in reversed(self.extra):
            try:
                remove_tree(extra)
            except (OSError, JailError):
                pass
        try:
            remove_tree(self.root, keep_top=self.existed)
            if self.existed and self._old_mode is not None:
                os.chmod(self.root, self._old_mode)
        except (OSError, JailError) as e:   # the original error is the one to report
            if self.log is not None:
                self.log(f"build: warning: could not remove {self.root}: {e}")
        self._remove_parents()

    def _remove_parents(self) -> None:
        for d in reversed(self.parents):
            try:
                os.rmdir(d)
            except OSError:
                pass   # someone else put something there: not ours to remove


def _make_parents(parent: str) -> list[str]:
    """Create the missing parents with mode 0700; returns them, top first."""
    missing: list[str] = []
    d = parent
    while not os.path.lexists(d):
        missing.append(d)
        d = os.path.dirname(d)
    created: list[str] = []
    for d in reversed(missing):
        try:
            os.mkdir(d, 0o700)
            os.chmod(d, 0o700)   # mkdir's mode is masked by the umask
        except OSError as e:
            for c in reversed(created):
                try:
                    os.rmdir(c)
                except OSError:
                    pass
            raise JailError(f"build: {d}: {e.strerror}") from None
        created.append(d)
    return created


# --- mounts -------------------------------------------------------------------


def mounts_at_or_below(path: str, mountinfo: str | None = None) -> list[str]:
    """Mount points (in this mount namespace) at PATH or below it, deepest first."""
    try:
        mounts = mountinfo_read() if mountinfo is None else mountinfo_parse(mountinfo)
    except OSError:
        return []
    found = []
    for m in mounts:
        if m.point == path or m.point.startswith(path.rstrip("/") + "/"):
            found.append(m.point)
    return sorted(set(found), key=lambda p: (-p.count("/"), p))


def unmount_below(path: str, log: Log | None) -> None:
    """Detach every mount strictly below PATH (leftovers of a chroot session)."""
    from linjail.kernel import libc
    for point in mounts_at_or_below(path):
        if point == path:
            continue
        if os.path.realpath(point) != point:
            # a directory on the way was swapped for a symlink since the mount
            # was made: umount by that name could hit a mount outside PATH
            raise JailError(f"destroy: {point}: a symbolic link on the way to this mount "
                            "point; refusing to unmount it")
        try:
            libc.umount2(point, libc.MNT_DETACH | _UMOUNT_NOFOLLOW)
        except OSError as e:
            if e.errno != errno.EINVAL:   # EINVAL: already gone with its parent
                raise JailError(f"destroy: umount {point}: {os.strerror(e.errno or 0)}") \
                    from None
        if log is not None:
            log(f"destroy: unmounted {point}")


_UMOUNT_NOFOLLOW = 8   # <sys/mount.h> UMOUNT_NOFOLLOW: a planted symlink is not followed


# --- removal ----------------------------------------------------------------------


def remove_tree(path: str, *, keep_top: bool = False) -> None:
    """Remove PATH (a directory or any other file) without following symlinks.

    Refuses to cross into another file system: a mount below PATH must have
    been detached first (unmount_below).  keep_top empties a directory only.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    parent = os.path.dirname(path) or "/"
    name = os.path.basename(path)
    pfd = os.open(parent, _DIR_FLAGS)
    try:
        if not stat.S_ISDIR(st.st_mode):
            _unlink(pfd, name, False)
            return
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        except OSError as e:
            raise JailError(f"{path}: {e.strerror}") from None
        try:
            _clear_flags(fd)
            _empty(fd, path, os.fstat(fd).st_dev)
        finally:
            os.close(fd)
        if not keep_top:
            _unlink(pfd, name, True)
    finally:
        os.close(pfd)


def _empty(dfd: int, shown: str, dev: int) -> None:
    """Remove everything in the directory open at DFD (same device only)."""
    with os.scandir(dfd) as it:
        entries = [(e.name, e.is_dir(follow_symlinks=False)) for e in it]
    for name, is_dir in entries:
        where = os.path.join(shown, name)
        if is_dir:
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dfd)
            except OSError as e:
                if e.errno in (errno.ELOOP, errno.ENOTDIR):   # swapped for a link: unlink it
                    _unlink(dfd, name, False)
                    continue
                raise JailError(f"{where}: {e.strerror}") from None
            try:
                if os.fstat(fd).st_dev != dev:
                    raise JailError(f"{where}: is on another file system (a mount point?); "
                                    "refusing to remove it")
                _clear_flags(fd)
                _empty(fd, where, dev)
            finally:
                os.close(fd)
        _unlink(dfd, name, is_dir)


def _unlink(dfd: int, name: str, is_dir: bool) -> None:
    try:
        os.unlink(name, dir_fd=dfd) if not is_dir else os.rmdir(name, dir_fd=dfd)
    except FileNotFoundError:
        return
    except PermissionError:
        # an immutable or append-only entry (or directory): clear and retry
        _clear_flags(dfd)
        if not is_dir:
            try:
                fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                             dir_fd=dfd)
            except OSError:
                fd = -1
            if fd >= 0:
                try:
                    _clear_flags(fd)
                finally:
                    os.close(fd)
        os.unlink(name, dir_fd=dfd) if not is_dir else os.rmdir(name, dir_fd=dfd)


def _clear_flags(fd: int) -> None:
    """Drop immutable/append-only (chattr -ia); silently nothing where unsupported."""
    try:
        buf = fcntl.ioctl(fd, FS_IOC_GETFLAGS, struct.pack("l", 0))
        (flags,) = struct.unpack("l", buf)
        if flags & (FS_IMMUTABLE_FL | FS_APPEND_FL):
            fcntl.ioctl(fd, FS_IOC_SETFLAGS,
                        struct.pack("l", flags & ~(FS_IMMUTABLE_FL | FS_APPEND_FL)))
    except OSError:
        pass


# --- jailctl destroy --------------------------------------------------------------


#: the live jails, as (JID, root) pairs: the caller reads them from the registry
#: (state/), asked only once the path itself has passed its checks
Running = Callable[[], Iterable[tuple[int, str]]]


def jails_using(root: str, running: Iterable[tuple[int, str]]) -> list[tuple[int, str]]:
    """The jails of RUNNING whose root is ROOT or below it, or that stack on
    it (thin).

    Returns (jid, why) pairs, lowest JID first.
    """
    inside = root.rstrip("/") + "/"
    out = []
    for jid, path in running:
        where = os.path.realpath(path)
        if where == root or where.startswith(inside):
            out.append((jid, "is running in it"))
            continue
        try:
            overlay = overlay_for(where)
        except JailError:
            continue
        if overlay is not None and any(p == root or p.startswith(inside) for p in overlay):
            out.append((jid, f"({where}) is a thin jail on it"))
    return sorted(out)


def destroy(path: str, running: Running, log: Log | None = None) -> None:
    """`jailctl destroy PATH`: remove a jail root that no jail of RUNNING uses.

    A thin jail goes with its writable layer and its marker; its base stays.
    """
    if not path:
        raise JailError("destroy: empty path")
    absolute = os.path.abspath(path)
    try:
        st = os.lstat(absolute)
    except OSError as e:
        raise JailError(f"destroy: {absolute}: {e.strerror}") from None
    if stat.S_ISLNK(st.st_mode):
        raise JailError(f"destroy: {absolute}: is a symbolic link; give the jail's real path")
    if not stat.S_ISDIR(st.st_mode):
        raise JailError(f"destroy: {absolute}: Not a directory")
    root = os.path.realpath(absolute)
    if root.count("/") < MIN_DEPTH or root == "/":
        raise JailError(f"destroy: {root}: refusing to remove a top-level directory")
    for jid, why in jails_using(root, running()):
        raise JailError(f"destroy: {root}: jail {jid} {why}; stop it first")
    overlay = overlay_for(root)
    if overlay is None and not _looks_like_a_root(root):
        raise JailError(f"destroy: {root}: does not look like a jail root (no etc/); "
                        "not removing it")
    if root in mounts_at_or_below(root):
        raise JailError(f"destroy: {root}: is a mount point; unmount it first")
    unmount_below(root, log)
    remove_tree(root)
    if overlay is not None:
        _, top = overlay
        unmount_below(top, log)
        remove_tree(top)
        remove_tree(root + THIN_MARKER)


def _looks_like_a_root(root: str) -> bool:
    try:
        if not os.listdir(root):
            return True
    except OSError as e:
        raise JailError(f"destroy: {root}: {e.strerror}") from None
    try:
        return stat.S_ISDIR(os.lstat(os.path.join(root, "etc")).st_mode)
    except OSError:
        return False
