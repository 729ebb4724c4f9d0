"""The id files of `jailctl start|stop|status` (SPEC §8), and the lock that
lets one of them run at a time.

/var/run/jail_NAME.id holds the JID and a newline, as on DragonFly (scripts
run `jexec $(cat /var/run/jail_www.id) ...`).  /var/run is not a tmpfs on
these machines (SPEC §7), so an id file is believed only while the registry
record of its JID is live (that record carries the boot id and the PID and
start time of the jail's PID 1) and names this jail; any other id file is
stale and removed by whichever command looks at it (rc.RcService.running).
LINJAIL_VARRUN moves the directory (tests).
"""
from __future__ import annotations

import errno
import fcntl
import os
import stat

from linjail.errors import JailError
from linjail.fsutil import atomic_write
from linjail.state.registry import JID_MAX

VARRUN_ENV = "LINJAIL_VARRUN"


def varrun() -> str:
    return os.environ.get(VARRUN_ENV, "/var/run")


def id_path(name: str, directory: str | None = None) -> str:
    return os.path.join(directory if directory is not None else varrun(), f"jail_{name}.id")


def parse_id(data: bytes) -> int | None:
    """The JID of an id file (`echo JID > file`), or None if it holds anything else."""
    text = data[:-1] if data.endswith(b"\n") else data
    if not text or len(text) > len(str(JID_MAX)) or not text.isdigit():
        return None
    jid = int(text)
    return jid if 1 <= jid <= JID_MAX else None


def write_id(path: str, jid: int) -> None:
    """tmp + rename: never half a file (no fsync: after a crash of the machine
    the registry record it names is stale anyway)."""
    atomic_write(path, f"{jid}\n".encode())


def unlink_quiet(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def read_id(path: str) -> tuple[bool, int | None]:
    """(exists, JID); a file that is not an id file exists with JID None.

    O_NONBLOCK: a FIFO planted there must not hang start, stop or status.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return False, None
    except OSError as e:
        if os.path.islink(path):
            return True, None                # a symlink is never ours: stale
        if e.errno == errno.ENXIO:           # a socket
            raise JailError(f"{path}: not a regular file") from None
        raise JailError(f"{path}: {e.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise JailError(f"{path}: not a regular file")
        data = os.read(fd, 64)
    finally:
        os.close(fd)
    return True, parse_id(data)


class DirLock:
    """flock(2) on the id-file directory: one start/stop at a time, as at boot."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.fd = -1

    def __enter__(self) -> "DirLock":
        try:
            self.fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as e:
            raise JailError(f"{self.directory}: {e.strerror}") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)
