"""`jailctl build PATH --service PROG...`: a jail root made of host programs (SPEC §9).

The root holds the programs at their host paths, every object ld.so loads for
them (found by roots/elf.py, never by running them), the interpreters of #!
scripts, a minimal etc/, root's home and empty dev/ proc/ tmp/.  Symlinks met
on the way (merged-/usr `bin -> usr/bin`, `/bin/sh -> dash`, ld.so's
`/lib64/...` link) are reproduced as symlinks, and their targets copied too, so
every path works inside the jail exactly as on the host.

Three phases, as everywhere in linjail: validate the target, plan (read the
host only: which files, in which order), then execute with undo: a failure
removes the root and the parents this call created, so a failed build leaves
nothing behind.

Writing is done through directory descriptors opened with O_NOFOLLOW, never by
path name: a symlink inside the root (ours, or planted) is never followed when
writing, so nothing outside PATH can be touched.  The parent directories are
created 0700 (SPEC §7: jailed root is host uid 0 on this tree, so a setuid file
it plants must not be reachable by host users; FreeBSD jail(8) gives the same
advice).
"""
from __future__ import annotations

import errno
import os
import shutil
import stat
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from linjail.roots.destroy import Target, check_target
from linjail.roots.elf import ElfError, Resolver, is_elf
from linjail.errors import JailError

Log = Callable[[str], None]

#: Debian's merged-/usr links (usrmerge); reproduced when they are links on the host.
MERGED_USR = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
LD_SO_CACHE = "/etc/ld.so.cache"
# Linux follows at most 4 nested #! interpreters (BINPRM_MAX_RECURSION, fs/exec.c)
_MAX_SCRIPT_DEPTH = 4
# path_resolution(7): at most 40 symlinks while resolving one path
_MAX_SYMLINKS = 40

PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
          "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")
GROUP = "root:x:0:\nnogroup:x:65534:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n"


@dataclass(frozen=True)
class ServicePlan:
    """What to build, decided from the host before anything is written."""

    root: str                               # absolute PATH
    merged_usr: tuple[tuple[str, str], ...]  # (name, link target) at the root
    host_paths: tuple[str, ...]             # copied at the same path, in order


def build_service(path: str, programs: Sequence[str], *, files: Sequence[str] = (),
                  log: Log | None = None) -> None:
    """Make a service jail root at path from host programs and extra files.

    Raises JailError with one line naming the object on any failure, after
    removing everything this call created.
    """
    root, _ = check_target(path)
    plan = plan_service(root, programs, files)    # reads the host only: nothing made yet
    with Target(path, log) as target:             # parents 0700, root 0755; undone on error
        try:
            _execute(plan)
        except OSError as e:
            raise JailError(f"build: {e.filename or target.root}: {e.strerror}") from e


# --- validate ----------------------------------------------------------------


# --- plan --------------------------------------------------------------------


def plan_service(root: str, programs: Sequence[str], files: Sequence[str] = (),
                 resolver: Resolver | None = None) -> ServicePlan:
    """Find the programs and everything they need; reads the host only."""
    if not programs:
        raise JailError("build: no program given")
    resolver = resolver or Resolver()
    paths: list[str] = []
    for prog in programs:
        found = _find_program(prog)
        paths += [found, *_needs(found, resolver, 0)]
    for f in files:
        host = os.path.abspath(f)
        if not os.path.lexists(host):
            raise JailError(f"build: {f}: no such file")
        paths.append(host)
    merged = tuple((n, os.readlink("/" + n)) for n in MERGED_USR if os.path.islink("/" + n))
    return ServicePlan(root, merged, tuple(dict.fromkeys(paths)))


def _find_program(prog: str) -> str:
    """A name is looked up in the host PATH; a path is taken as it is."""
    found = os.path.abspath(prog) if "/" in prog else shutil.which(prog)
    if found is None or not os.path.isfile(found):
        raise JailError(f"build: {prog}: no such program")
    if not os.access(found, os.X_OK):
        raise JailError(f"build: {prog}: not executable")
    return found


def _needs(program: str, resolver: Resolver, depth: int) -> list[str]:
    """Host files that running program needs: ld.so and libraries, or interpreters."""
    if is_elf(program):
        try:
            deps = resolver.closure(program)
        except ElfError as e:
            raise JailError(f"build: {e}") from e
        needs = list(deps.paths())
        # A library found only through /etc/ld.so.conf (not in a system dir)
        # is found by ld.so in the jail through the cache alone.
        if any(lib.via == "ld.so.conf" for lib in deps.libraries) and \
                os.path.isfile(LD_SO_CACHE):
            needs.append(LD_SO_CACHE)
        return needs
    interpreters = _shebang(program)
    if interpreters is None:
        raise JailError(f"build: {program}: neither an ELF program nor a #! script")
    if depth >= _MAX_SCRIPT_DEPTH:
        raise JailError(f"build: {program}: too many levels of #! interpreters")
    needs = []
    for interp in interpreters:
        needs += [interp, *_needs(interp, resolver, depth + 1)]
    return needs


def _shebang(script: str) -> list[str] | None:
    """The programs a #! line runs: the interpreter, and for `env` its command.

    Linux reads the first 256 bytes (BINPRM_BUF_SIZE) and passes everything
    after the interpreter as one argument; `#!/usr/bin/env [-S] prog` runs prog
    from PATH, so prog is copied too.
    """
    try:
        with open(script, "rb") as f:
            head = f.read(256)
    except OSError as e:
        raise JailError(f"build: {script}: {e.strerror}") from e
    if not head.startswith(b"#!"):
        return None
    words = os.fsdecode(head[2:].split(b"\n", 1)[0]).split()
    if not words:
        raise JailError(f"build: {script}: empty #! line")
    interp = words[0]
    if not os.path.isabs(interp):
        raise JailError(f"build: {script}: #! interpreter {interp} is not an absolute path")
    if not os.path.isfile(interp):
        raise JailError(f"build: {script}: #! interpreter {interp}: no such program")
    if os.path.basename(interp) != "env":
        return [interp]
    command = next((w for w in words[1:] if not w.startswith("-") and "=" not in w), None)
    if command is None:
        return [interp]
    found = _find_in_path(command)
    if found is None:
        raise JailError(f"build: {script}: #! command {command}: no such program")
    return [interp, found]


def _find_in_path(command: str) -> str | None:
    return command if os.path.isabs(command) else shutil.which(command)


# --- execute -----------------------------------------------------------------


def _execute(plan: ServicePlan) -> None:
    tree = _Tree(plan.root)
    try:
        for name, mode in (("dev", 0o755), ("proc", 0o755), ("tmp", 0o1777),
                           ("root", 0o700), ("etc", 0o755)):
            tree.mkdir([name], mode, 0, 0)
        for name, target in plan.merged_usr:
            tree.symlink([name], target)
        for host in plan.host_paths:
            _reproduce(tree, host)
        # Written last and only if absent: an extra file (--files /etc/hosts)
        # wins over the defaults.
        for name, text in (("passwd", PASSWD), ("group", GROUP), ("hosts", HOSTS),
                           ("resolv.conf", _host_resolv_conf())):
            tree.write_new(["etc", name], text.encode(), 0o644)
    finally:
        tree.close()


def _host_resolv_conf() -> str:
    try:
        with open("/etc/resolv.conf", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except OSError:
        return ""


def _reproduce(tree: _Tree, host_path: str) -> None:
    """Copy host_path to the same path in the tree, reproducing each symlink met.

    The path is resolved component by component like the kernel does
    (path_resolution(7)); each symlink is created in the tree with the same
    target and resolution continues at its target, so the copy works whether
    the jail reaches the file by the link or by the real path.
    """
    pending = deque(host_path.split("/"))
    physical: list[str] = []   # the resolved directory so far, symlink-free
    links = 0
    while pending:
        part = pending.popleft()
        if part in ("", "."):
            continue
        if part == "..":
            physical = physical[:-1]
            continue
        here = [*physical, part]
        host = "/" + "/".join(here)
        st = _lstat(host)
        last = not any(p not in ("", ".") for p in pending)
        if stat.S_ISLNK(st.st_mode):
            links += 1
            if links > _MAX_SYMLINKS:
                raise JailError(f"build: {host_path}: too many levels of symbolic links")
            target = os.readlink(host)
            tree.symlink(here, target)
            physical = [] if target.startswith("/") else physical
            pending.extendleft(reversed(target.split("/")))
        elif stat.S_ISDIR(st.st_mode):
            if last:
                raise JailError(f"build: {host_path}: is a directory")
            tree.mkdir(here, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid)
            physical = here
        elif last and stat.S_ISREG(st.st_mode):
            tree.copy_file(here, host, st)
        elif last:
            raise JailError(f"build: {host}: not a regular file")
        else:
            raise JailError(f"build: {host}: not a directory")


def _lstat(host: str) -> os.stat_result:
    try:
        return os.lstat(host)
    except OSError as e:
        raise JailError(f"build: {host}: {e.strerror}") from e


class _Tree:
    """Writes inside the root through O_NOFOLLOW directory descriptors only."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        self._done: set[tuple[str, ...]] = set()  # files copied, by tree path

    def close(self) -> None:
        os.close(self._fd)

    def _name(self, parts: Sequence[str]) -> str:
        return os.path.join(self.root, *parts)

    def _fail(self, parts: Sequence[str], e: OSError) -> JailError:
        if e.errno in (errno.ELOOP, errno.ENOTDIR):
            # O_NOFOLLOW|O_DIRECTORY on a symlink: we never write through one.
            return JailError(f"build: {self._name(parts)}: is a symbolic link or not a "
                             "directory; refusing to write through it")
        return JailError(f"build: {self._name(parts)}: {e.strerror}")

    def _open_dir(self, parts: Sequence[str]) -> int:
        fd = os.dup(self._fd)
        for i, part in enumerate(parts):
            try:
                nfd = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW |
                              os.O_CLOEXEC, dir_fd=fd)
            except OSError as e:
                raise self._fail(parts[:i + 1], e) from e
            finally:
                os.close(fd)
            fd = nfd
        return fd

    def mkdir(self, parts: Sequence[str], mode: int, uid: int, gid: int) -> None:
        """Create the directory unless it exists (as a real directory)."""
        parent = self._open_dir(parts[:-1])
        try:
            os.mkdir(parts[-1], 0o700, dir_fd=parent)
            made = True
        except FileExistsError:
            made = False
        except OSError as e:
            raise self._fail(parts, e) from e
        finally:
            os.close(parent)
        fd = self._open_dir(parts)  # also refuses an existing symlink
        try:
            if made:
                os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)  # after chown, which clears set-id bits
        finally:
            os.close(fd)

    def symlink(self, parts: Sequence[str], target: str) -> None:
        """Create the link unless the same link is there already."""
        parent = self._open_dir(parts[:-1])
        try:
            os.symlink(target, parts[-1], dir_fd=parent)
        except FileExistsError:
            if _readlink(parts[-1], parent) != target:
                raise JailError(f"build: {self._name(parts)}: exists and is not a "
                                f"link to {target}") from None
        except OSError as e:
            raise self._fail(parts, e) from e
        finally:
            os.close(parent)

    def copy_file(self, parts: Sequence[str], host: str, st: os.stat_result) -> None:
        """Copy contents, owner, mode, xattrs (file capabilities) and times."""
        if tuple(parts) in self._done:
            return
        try:
            src = os.open(host, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as e:
            raise JailError(f"build: {host}: {e.strerror}") from e
        try:
            dst = self._create(parts, 0o600)
            with os.fdopen(src, "rb", closefd=False) as fin, os.fdopen(dst, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                _copy_metadata(src, dst, st)
        except OSError as e:
            raise JailError(f"build: {self._name(parts)}: {e.strerror}") from e
        finally:
            os.close(src)
        self._done.add(tuple(parts))

    def write_new(self, parts: Sequence[str], data: bytes, mode: int) -> None:
        """Write a root-owned file unless something is there already."""
        try:
            fd = self._create(parts, mode)
        except FileExistsError:
            return
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(fd, mode)

    def _create(self, parts: Sequence[str], mode: int) -> int:
        parent = self._open_dir(parts[:-1])
        try:
            return os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                           os.O_NOFOLLOW | os.O_CLOEXEC, mode, dir_fd=parent)
        except FileExistsError:
            raise
        except OSError as e:
            raise self._fail(parts, e) from e
        finally:
            os.close(parent)


def _readlink(name: str, dir_fd: int) -> str | None:
    try:
        return os.readlink(name, dir_fd=dir_fd)
    except OSError:
        return None


def _copy_metadata(src: int, dst: int, st: os.stat_result) -> None:
    """What shutil.copy2 keeps, plus the owner (we are root).

    The owner matters: a setgid-group binary copied as root:root would become
    setgid root.  Order: chown clears set-id bits and security.capability, so
    chmod and the xattrs come after it.
    """
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    for name in _listxattr(src):
        try:
            os.setxattr(dst, name, os.getxattr(src, name))
        except OSError as e:
            if e.errno not in (errno.ENOTSUP, errno.ENODATA, errno.EINVAL, errno.EPERM):
                raise
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _listxattr(fd: int) -> list[str]:
    try:
        return os.listxattr(fd)
    except OSError as e:
        if e.errno in (errno.ENOTSUP, errno.ENODATA, errno.EINVAL):
            return []
        raise
