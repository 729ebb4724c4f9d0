"""`jailctl build PATH --from-tar FILE`: a jail root from a tarball (SPEC §9).

A tarball is input from anywhere (a download, a `docker export`, a colleague):
the classic attacks are names that climb out (`../../etc/cron.d/x`), absolute
names, hard links to host files (`ln /etc/shadow` inside the tree makes it
readable and writable by jailed root), and a symlink followed by a member
written "through" it (`evil -> /etc`, then `evil/passwd`): CVE-2007-4559 and
the tarfile extraction filters of PEP 706.  We do not rely on those filters:

1. check: every member is read (headers only) before anything is created.
   Absolute names, names with `..`, hard links whose target is outside the
   archive (absolute, `..`, or not a file extracted before them), and members
   whose parent is a symlink or a file of the archive are all collected and
   refused in one line naming them; PATH is not even created.
2. extract: member by member through directory descriptors opened
   O_NOFOLLOW|O_DIRECTORY from the root down, and openat/mkdirat/symlinkat/
   linkat relative to them (never a path name), files created O_EXCL|O_NOFOLLOW.
   So even a member that slipped past the check cannot follow a symlink.
   Symlinks are kept as they are: an absolute target resolves inside the jail,
   where `jail` mounts the root.
3. Device nodes are never created (the jail gets its own /dev, and the root
   is mounted nodev); they are named in one warning.  FIFOs are created.

Owners are the archive's numeric uid/gid (the jail's own users), modes keep
set-id bits (su and ping need them; the jail lives under a 0700 directory),
and `security.capability` and `user.*` extended attributes from PAX headers are
restored; `trusted.*` never (overlayfs trusts trusted.overlay.* on a base).
"""
from __future__ import annotations

import errno
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from linjail.roots.destroy import Target
from linjail.errors import JailError

Log = Callable[[str], None]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_XATTR_PREFIX = "SCHILY.xattr."
_XATTRS_KEPT = ("user.", "security.capability")
#: how many offenders one error or warning line names
SHOWN = 5


@dataclass(frozen=True)
class Checked:
    """The verdict on an archive: what is refused, what will be skipped."""

    refused: tuple[str, ...]     # "NAME (why)" for each unsafe member
    devices: tuple[str, ...]     # device nodes, not created
    unknown: tuple[str, ...]     # members of types we do not extract


def split_name(name: str) -> tuple[str, ...] | str:
    """A member name as path components, or the reason it is refused."""
    if "\0" in name:      # a PAX path may carry one; no file name can
        return "NUL in the name"
    if name.startswith("/"):
        return "absolute name"
    parts = tuple(p for p in name.split("/") if p not in ("", "."))
    if ".." in parts:
        return "name escapes PATH"
    return parts


def check_members(members: Iterable[tarfile.TarInfo]) -> Checked:
    """Simulate the extraction on names only; nothing is touched."""
    refused: list[str] = []
    devices: list[str] = []
    unknown: list[str] = []
    kinds: dict[tuple[str, ...], str] = {}   # what each path is after the members so far
    for m in members:
        parts = split_name(m.name)
        if isinstance(parts, str):
            refused.append(f"{m.name} ({parts})")
            continue
        if not parts:
            if not m.isdir():
                refused.append(f"{m.name} (names PATH itself)")
            continue
        why = _through(parts, kinds) or _bad_numbers(m)
        if why is not None:
            refused.append(f"{m.name} ({why})")
            continue
        if m.ischr() or m.isblk():
            devices.append(m.name)
            continue
        if m.islnk():
            target = split_name(m.linkname)
            if isinstance(target, str) or not target:
                refused.append(f"{m.name} (hard link to {m.linkname} outside PATH)")
                continue
            why = _through(target, kinds)
            if why is not None or kinds.get(target) not in ("file", "link"):
                refused.append(f"{m.name} (hard link to {m.linkname}, "
                               f"{why or 'not a file extracted before it'})")
                continue
            kind = "file"
        elif m.isdir():
            kind = "dir"
        elif m.issym():
            kind = "link"
        elif m.isreg() or m.isfifo():
            kind = "file"
        else:
            unknown.append(m.name)
            continue
        if kinds.get(parts) == "dir" and kind != "dir":
            refused.append(f"{m.name} (replaces a directory)")
            continue
        kinds[parts] = kind
        for i in range(1, len(parts)):   # implicit parents become directories
            kinds.setdefault(parts[:i], "dir")
    return Checked(tuple(refused), tuple(devices), tuple(unknown))


#: the largest valid uid/gid (users.ID_MAX: -1 would mean "leave unchanged")
_ID_MAX = 2**32 - 2


def _bad_numbers(m: tarfile.TarInfo) -> str | None:
    """Why M's owner or time cannot be set (a negative uid was OverflowError,
    and -1 would have left the file root's), or None."""
    for what, value in (("uid", m.uid), ("gid", m.gid)):
        if not 0 <= value <= _ID_MAX:
            return f"{what} {value} out of range"
    try:
        seconds = int(m.mtime)       # a PAX header may say nan or inf
    except (ValueError, OverflowError):
        seconds = 2**63
    if not -2**62 <= seconds < 2**62 // 10**9:
        return f"mtime {m.mtime} out of range"
    return None


def _through(parts: tuple[str, ...], kinds: dict[tuple[str, ...], str]) -> str | None:
    """Why writing PARTS would go through something that is not a directory."""
    for i in range(1, len(parts)):
        kind = kinds.get(parts[:i])
        if kind == "link":
            return f"goes through the symbolic link {'/'.join(parts[:i])}"
        if kind == "file":
            return f"goes through the file {'/'.join(parts[:i])}"
    return None


def _listing(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    more = len(items) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "")


# --- build ----------------------------------------------------------------------


def build_from_tar(path: str, archive: str, log: Log | None = None) -> str:
    """Make the jail root PATH from the tar file ARCHIVE; returns the root.

    Raises JailError with one line; a failure leaves nothing behind.
    """
    damaged: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, OSError,
                                            *_decompression_errors())
    unopened: tuple[type[Exception], ...] = (tarfile.TarError, EOFError,
                                             *_decompression_errors())
    try:
        tf = tarfile.open(archive, "r:*")
    except FileNotFoundError:
        raise JailError(f"build: {archive}: No such file or directory") from None
    except IsADirectoryError:
        raise JailError(f"build: {archive}: Is a directory") from None
    except OSError as e:
        raise JailError(f"build: {archive}: {e.strerror}") from None
    except unopened:
        # tarfile's own text is one line per method it tried (and a stream cut
        # in its first block is EOFError): name the likely one
        kind = _compression(archive)
        raise JailError(f"build: {archive}: " + (f"damaged {kind} data" if kind else
                                                 "not a tar archive")) from None
    with tf:
        try:
            members = tf.getmembers()
            # read to the end: gzip checks its CRC only there, and getmembers
            # stops at the archive's end-of-archive blocks
            while tf.fileobj is not None and tf.fileobj.read(1 << 20):
                pass
        except damaged as e:
            raise JailError(f"build: {archive}: damaged tar archive ({_one_line(e)})") \
                from None
        checked = check_members(members)
        if checked.refused:
            raise JailError(f"build: {archive}: refusing unsafe entries: "
                            f"{_listing(checked.refused)}")
        with Target(path, log) as target:
            _Extractor(target.root, tf, archive).run(members)
    if log is not None and checked.devices:
        log(f"build: warning: {len(checked.devices)} device node(s) not created (the "
            f"jail gets its own /dev): {_listing(checked.devices)}")
    if log is not None and checked.unknown:
        log(f"build: warning: members of unsupported types skipped: "
            f"{_listing(checked.unknown)}")
    return target.root


def _decompression_errors() -> tuple[type[Exception], ...]:
    """What a damaged compressed stream raises besides TarError, EOFError and
    OSError (bzip2's): lzma and zlib have exception classes of their own."""
    import lzma
    import zlib
    return (lzma.LZMAError, zlib.error)


def _one_line(e: BaseException) -> str:
    text = " ".join(str(e).split())
    return text or type(e).__name__


_MAGIC = ((b"\x1f\x8b", "gzip"), (b"BZh", "bzip2"), (b"\xfd7zXZ\x00", "xz"),
          (b"\x28\xb5\x2f\xfd", "zstd"))


def _compression(archive: str) -> str | None:
    """The compression ARCHIVE's first bytes announce, if any."""
    try:
        with open(archive, "rb") as f:
            head = f.read(6)
    except OSError:
        return None
    return next((kind for magic, kind in _MAGIC if head.startswith(magic)), None)


class _Extractor:
    """Writes members inside the root through O_NOFOLLOW directory descriptors."""

    def __init__(self, root: str, tf: tarfile.TarFile, archive: str) -> None:
        self.root = root
        self.tf = tf
        self.archive = archive
        self.dirs: dict[tuple[str, ...], tarfile.TarInfo] = {}
        self.damaged: tuple[type[Exception], ...] = (tarfile.TarError, EOFError, ValueError,
                                                     *_decompression_errors())

    def run(self, members: Sequence[tarfile.TarInfo]) -> None:
        self.top = os.open(self.root, _DIR_FLAGS)
        try:
            for m in members:
                parts = split_name(m.name)
                assert not isinstance(parts, str)   # check_members refused those
                if not parts or m.ischr() or m.isblk():
                    continue
                try:
                    self._member(m, parts)
                except OSError as e:
                    raise self._fail(parts, e) from None
                except self.damaged as e:
                    raise JailError(f"build: {self.archive}: {m.name}: {_one_line(e)}") \
                        from None
            # directories last, deepest first: their modes may forbid writing
            # into them, and writing into them changes their times (tarfile does this too)
            for parts in sorted(self.dirs, key=len, reverse=True):
                try:
                    self._dir_metadata(parts, self.dirs[parts])
                except OSError as e:
                    raise self._fail(parts, e) from None
            for name in ("dev", "proc"):   # where `jail` mounts /dev and /proc
                try:
                    os.mkdir(name, 0o755, dir_fd=self.top)
                except FileExistsError:
                    pass
        finally:
            os.close(self.top)

    def _fail(self, parts: Sequence[str], e: OSError) -> JailError:
        where = os.path.join(self.root, *parts)
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            return JailError(f"build: {where}: a symbolic link or file on the way; "
                             "refusing to write through it")
        return JailError(f"build: {where}: {e.strerror}")

    def _parent(self, parts: Sequence[str], create: bool = True) -> int:
        """The directory holding PARTS, opened without following any symlink."""
        fd = os.dup(self.top)
        for part in parts[:-1]:
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    os.close(fd)
                    raise
                try:
                    os.mkdir(part, 0o755, dir_fd=fd)   # an implicit parent
                    nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError:
                    os.close(fd)
                    raise
            except OSError:
                os.close(fd)
                raise
            os.close(fd)
            fd = nfd
        return fd

    def _member(self, m: tarfile.TarInfo, parts: tuple[str, ...]) -> None:
        parent = self._parent(parts)
        name = parts[-1]
        try:
            if m.isdir():
                self._mkdir(parent, name)
                self.dirs[parts] = m
            elif m.issym():
                self._clear(parent, name)
                os.symlink(m.linkname, name, dir_fd=parent)
                os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
                os.utime(name, (m.mtime, m.mtime), dir_fd=parent, follow_symlinks=False)
            elif m.islnk():
                target = split_name(m.linkname)
                assert not isinstance(target, str)
                src = self._parent(target, create=False)
                try:
                    self._clear(parent, name)
                    os.link(target[-1], name, src_dir_fd=src, dst_dir_fd=parent,
                            follow_symlinks=False)
                finally:
                    os.close(src)
            elif m.isfifo():
                self._clear(parent, name)
                os.mkfifo(name, 0o600, dir_fd=parent)
                os.chown(name, m.uid, m.gid, dir_fd=parent, follow_symlinks=False)
                os.chmod(name, m.mode & 0o7777, dir_fd=parent)
            elif m.isreg():
                self._file(parent, name, m)
        finally:
            os.close(parent)

    def _clear(self, parent: int, name: str) -> None:
        """A later member replaces an earlier non-directory of the same name."""
        try:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            raise OSError(errno.EISDIR, "a member replaces a directory")
        os.unlink(name, dir_fd=parent)

    def _mkdir(self, parent: int, name: str) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=parent)
        except FileExistsError:
            st = os.stat(name, dir_fd=parent, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                os.unlink(name, dir_fd=parent)
                os.mkdir(name, 0o700, dir_fd=parent)

    def _file(self, parent: int, name: str, m: tarfile.TarInfo) -> None:
        self._clear(parent, name)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                     os.O_CLOEXEC, 0o600, dir_fd=parent)
        try:
            src = self.tf.extractfile(m)
            if src is not None:
                with src:
                    while True:
                        chunk = src.read(1 << 20)
                        if not chunk:
                            break
                        view = memoryview(chunk)
                        while view:
                            view = view[os.write(fd, view):]
            _set_metadata(fd, m)
        finally:
            os.close(fd)

    def _dir_metadata(self, parts: tuple[str, ...], m: tarfile.TarInfo) -> None:
        parent = self._parent(parts, create=False)
        try:
            fd = os.open(parts[-1], _DIR_FLAGS, dir_fd=parent)
        finally:
            os.close(parent)
        try:
            _set_metadata(fd, m)
        finally:
            os.close(fd)


def _set_metadata(fd: int, m: tarfile.TarInfo) -> None:
    # chown clears set-id bits and security.capability: it goes first
    os.fchown(fd, m.uid, m.gid)
    os.fchmod(fd, m.mode & 0o7777)
    _set_xattrs(fd, m)
    os.utime(fd, (m.mtime, m.mtime))


def _set_xattrs(fd: int, m: tarfile.TarInfo) -> None:
    for key, value in m.pax_headers.items():
        if not key.startswith(_XATTR_PREFIX):
            continue
        attr = key[len(_XATTR_PREFIX):]
        if not attr.startswith(_XATTRS_KEPT):
            continue
        try:
            os.setxattr(fd, attr, value.encode("utf-8", "surrogateescape"))
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.EINVAL, errno.EPERM):
                raise
