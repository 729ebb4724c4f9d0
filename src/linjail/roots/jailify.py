"""The changes that make a Debian base system a jail rather than a machine
(`jailctl build PATH --complete`, after debootstrap):

- /etc/rc and /etc/rc.shutdown (templates in roots/jailrc/): start and stop
  the SysV services of the default runlevel, minus those that manage
  hardware, the clock or the kernel, with per-service overrides in the jail's
  own /etc/rc.conf; so rc.conf's default `exec_start="/bin/sh /etc/rc"` works;
- /etc/hostname and /etc/hosts for the jail (debootstrap copies the host's);
- no device nodes in dev/ (debootstrap makes some; the jail gets its own
  /dev, and the root is mounted nodev anyway);
- no downloaded packages or package lists (tens of MB; a jail cannot reach
  the mirror unless the administrator routes it).
"""
from __future__ import annotations

import os
from collections.abc import Callable

from linjail.errors import JailError
from linjail.fsutil import atomic_write
from linjail.roots.destroy import remove_tree

JAILRC = os.path.join(os.path.dirname(__file__), "jailrc")


HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\t{fqdn}{short}
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters
"""
#: the files installed from roots/jailrc/, with their modes
JAILRC_FILES = (("rc", 0o755), ("rc.shutdown", 0o755), ("rc.subr", 0o644))


def jailify(root: str, hostname: str) -> None:
    """The changes that make a debootstrapped tree a jail (see the module doc)."""
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        etc = _open_dir(rootfd, "etc")
        try:
            for name, mode in JAILRC_FILES:
                _write(etc, name, _template(name), mode)
            if not _exists(etc, "rc.conf"):
                _write(etc, "rc.conf", _template("rc.conf"), 0o644)
            _write(etc, "hostname", (hostname + "\n").encode(), 0o644)
            short = hostname.split(".", 1)[0]
            hosts = HOSTS.format(fqdn=hostname, short=f" {short}" if short != hostname else "")
            _write(etc, "hosts", hosts.encode(), 0o644)
        finally:
            os.close(etc)
    finally:
        os.close(rootfd)
    # after pivot_root the jail mounts its own /dev; nodes here would be
    # host devices for anyone who chroots into the tree
    dev = os.path.join(root, "dev")
    remove_tree(dev, keep_top=True)
    os.chmod(dev, 0o755)
    _remove_files(os.path.join(root, "var/cache/apt/archives"), lambda n: n.endswith(".deb"))
    _remove_files(os.path.join(root, "var/lib/apt/lists"), lambda n: n != "lock")
    _remove_files(os.path.join(root, "var/cache/apt"), lambda n: n.endswith(".bin"))


def _template(name: str) -> bytes:
    with open(os.path.join(JAILRC, name), "rb") as f:
        return f.read()


def _open_dir(dirfd: int, name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=dirfd)
    except OSError as e:
        raise JailError(f"build: {name}: {e.strerror}") from None


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _write(dirfd: int, name: str, data: bytes, mode: int) -> None:
    """Replace NAME in the directory atomically, owned by root, never through a symlink."""
    atomic_write(name, data, mode=mode, owner=(0, 0), dir_fd=dirfd)


def _remove_files(directory: str, wanted: Callable[[str], bool]) -> None:
    """Remove the regular files of DIRECTORY (not below) that WANTED picks."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        with os.scandir(dfd) as it:
            names = [e.name for e in it if e.is_file(follow_symlinks=False) and wanted(e.name)]
        for name in names:
            os.unlink(name, dir_fd=dfd)
    finally:
        os.close(dfd)
