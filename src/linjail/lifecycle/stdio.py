"""What the host hands a jail as descriptors (SPEC §7: nothing of the host reaches a jail).

Every descriptor the caller gave `jail`/`jexec` is sorted by what it can
reach, before anything runs in the jail:

  kind     what it is                                   what the jail gets
  -------  -------------------------------------------  ----------------------------------
  pipe     an anonymous pipe (pipefs)                   the pipe itself: it names no file
  stream   a unix/inet stream or seqpacket socket,      the socket itself: it reaches only
           connected or listening                       the peer the caller chose
  null     the host's /dev/null                         a null device of its own
  tty      a terminal                                   a pty of its own, relayed (relay.py)
  dir      a directory                                  refused: openat() would escape
  closed   not open                                     not open either
  file     a regular file, a device, a named FIFO, a    a pipe; a relay process on the host
           datagram/netlink/packet socket, an           side reads or writes the object
           unconnected socket

Host objects are never handed over because jailed root may fchmod/fchown
them or reopen them through /proc/self/fd (a host file made setuid root, the
host's /dev/null made 0600, the administrator's pty read by a daemon left
behind).  Above 2 only pipes and stream sockets are passed, at their
numbers (DragonFly passes every descriptor: the README says so); every other
descriptor is closed before the jail's side resolves any path.
"""
from __future__ import annotations

import os
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable

#: fds 0-2 that were closed when the command started (occupied by /dev/null
#: since, so nothing linjail opens lands on them); set by occupy_closed()
CLOSED: frozenset[int] = frozenset()

_SOL_SOCKET = 1
_SO_TYPE = 3
_SO_ACCEPTCONN = 30
_SO_DOMAIN = 39
_PASSABLE_FAMILIES = (1, 2, 10)          # AF_UNIX, AF_INET, AF_INET6
_PASSABLE_TYPES = (1, 5)                 # SOCK_STREAM, SOCK_SEQPACKET


def occupy_closed() -> frozenset[int]:
    """Open /dev/null on whichever of fds 0-2 is closed; remember which were.

    Call first thing: a report socket or a memfd that lands on a closed fd 0-2
    would be handed to the jail's command as its stdio (and hang `jail`).
    """
    global CLOSED
    closed = set()
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            closed.add(fd)
    for fd in sorted(closed):
        got = os.open(os.devnull, os.O_RDWR)
        if got != fd:         # a lower one was free after all: keep the order
            os.dup2(got, fd, inheritable=False)
            os.close(got)
        else:
            os.set_inheritable(fd, False)
    CLOSED = frozenset(closed)
    return CLOSED


def inherited() -> list[int]:
    """The descriptors above 2 open now (call before linjail opens any)."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return []
    fds = []
    for name in names:
        fd = int(name)
        if fd > 2:
            try:
                os.fstat(fd)          # the listing's own descriptor is gone by now
            except OSError:
                continue
            fds.append(fd)
    return sorted(fds)


def classify(fd: int) -> str:
    """The kind of descriptor FD (see the table above)."""
    if fd in CLOSED:
        return "closed"
    try:
        st = os.fstat(fd)
    except OSError:
        return "closed"
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISFIFO(mode):
        try:
            link = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return "file"
        return "pipe" if link.startswith("pipe:") else "file"
    if stat.S_ISSOCK(mode):
        return "stream" if _passable_socket(fd) else "file"
    if stat.S_ISCHR(mode):
        if st.st_rdev == os.makedev(1, 3):
            return "null"
        if os.isatty(fd):
            return "tty"
    return "file"


def _passable_socket(fd: int) -> bool:
    import _socket
    try:
        sock = _socket.socket(fileno=os.dup(fd))
    except OSError:
        return False
    try:
        family = sock.getsockopt(_SOL_SOCKET, _SO_DOMAIN)
        kind = sock.getsockopt(_SOL_SOCKET, _SO_TYPE)
        if family not in _PASSABLE_FAMILIES or kind not in _PASSABLE_TYPES:
            return False
        if sock.getsockopt(_SOL_SOCKET, _SO_ACCEPTCONN):
            return True
        try:
            sock.getpeername()
        except OSError:
            return False
        return True
    except OSError:
        return False
    finally:
        sock.close()


def passable(fds: Iterable[int]) -> tuple[int, ...]:
    """The descriptors above 2 that may cross into a jail: pipes and stream sockets."""
    return tuple(fd for fd in fds if fd > 2 and classify(fd) in ("pipe", "stream"))


class Prepared:
    """The jail's fds 0-2 (host-side descriptors to hand over; None: closed),
    the relays to drain when the command ends, and the descriptors that are
    ours to close once the jail's side holds them."""

    def __init__(self) -> None:
        self.fds: list[int | None] = [None, None, None]
        self.relays: list[int] = []          # control sockets of output relays
        self.own: list[int] = []

    def handed_over(self) -> None:
        """The jail's side has its copies: close ours (a pipe's EOF depends on it)."""
        for fd in self.own:
            try:
                os.close(fd)
            except OSError:
                pass
        self.own.clear()

    def drain(self) -> None:
        """Wait until every output relay has written what the command wrote."""
        for ctl in self.relays:
            try:
                os.write(ctl, b"s")
                while True:
                    try:
                        os.read(ctl, 1)      # b"d", or b"" if the relay ended
                        break
                    except InterruptedError:
                        continue
            except OSError:
                pass
            os.close(ctl)
        self.relays.clear()

    def close(self) -> None:
        self.handed_over()
        for ctl in self.relays:
            os.close(ctl)
        self.relays.clear()


def prepare(stdio: tuple[int | None, int | None, int | None], relay_binary: str,
            keep: Iterable[int] = ()) -> Prepared:
    """Turn the caller's fds 0-2 into what the jail may hold.

    KEEP: descriptors handed over as they are whatever their kind (the pty
    slave the launcher made for the jail: a fresh pty, not the caller's).
    Raises OSError for a directory (the caller words the refusal).
    """
    from ..kernel import libc   # ctypes: not before jail(8) knows it runs as root
    keep = set(keep)
    out = Prepared()
    try:
        null: int | None = None
        groups: list[tuple[int, list[int]]] = []      # output file -> jail fds sharing it
        for target, fd in enumerate(stdio):
            if fd is None:
                continue
            kind = "pass" if fd in keep else classify(fd)
            if kind in ("pass", "pipe", "stream"):
                out.fds[target] = fd
            elif kind == "closed":
                pass
            elif kind == "dir":
                raise IsADirectoryError(fd)
            elif kind == "null" or (kind == "tty" and target == 0):
                # (a terminal on stdin with no pty asked for: a relay would
                # go on reading the caller's keystrokes; it reads nothing)
                if null is None:
                    null = private_null()
                    out.own.append(null)
                out.fds[target] = null
            elif target == 0:
                r, w = os.pipe2(os.O_CLOEXEC)
                out.own.append(r)
                _spawn(relay_binary, "i", fd, w)
                os.close(w)
                out.fds[0] = r
            else:
                for host_fd, targets in groups:
                    if libc.same_file(host_fd, fd):
                        targets.append(target)
                        break
                else:
                    groups.append((fd, [target]))
        for host_fd, targets in groups:
            r, w = os.pipe2(os.O_CLOEXEC)
            _grow(w)
            out.own.append(w)
            import _socket
            ours, theirs = _socket.socketpair(_socket.AF_UNIX, _socket.SOCK_STREAM)
            try:
                _spawn(relay_binary, "o", r, host_fd, theirs.fileno())
            finally:
                os.close(r)
                theirs.close()
            out.relays.append(ours.detach())
            for target in targets:
                out.fds[target] = w
    except BaseException:
        out.close()
        raise
    return out


def _grow(pipe_fd: int) -> None:
    """A 1 MiB pipe: fewer wake-ups for the relay (large transfers)."""
    import fcntl
    try:
        fcntl.fcntl(pipe_fd, 1031, 1 << 20)     # F_SETPIPE_SZ
    except OSError:
        pass


def _spawn(binary: str, mode: str, src: int, dst: int, ctl: int | None = None) -> None:
    """Start a relay (linjail-reaper relay) in a session of its own."""
    # park above 10 first: the dup2s to 3, 4, 5 must not overwrite a source
    parked = [_dup_high(fd) for fd in [src, dst] + ([ctl] if ctl is not None else [])]
    try:
        actions: list[tuple[int, ...] | tuple[int, int, str, int, int]] = [
            (os.POSIX_SPAWN_DUP2, fd, 3 + i) for i, fd in enumerate(parked)]
        # nothing of the caller's: a relay that kept the caller's stdout open
        # would keep `out=$(jailctl start)` waiting for the jail's daemons
        actions += [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDWR, 0),
                    (os.POSIX_SPAWN_DUP2, 0, 1), (os.POSIX_SPAWN_DUP2, 0, 2)]
        argv = [binary, "relay", mode, "3", "4"] + (["5"] if ctl is not None else [])
        os.posix_spawn(binary, argv, {}, file_actions=actions, setsid=True)
    finally:
        for fd in parked:
            os.close(fd)


def _dup_high(fd: int) -> int:
    import fcntl
    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)


def private_null() -> int:
    """/dev/null on a tmpfs attached nowhere: a null device of the jail's own.

    Jailed root may chmod or chown it through /proc/self/fd: it changes
    that private inode, not the host's /dev/null.
    """
    from ..kernel import libc
    mnt = libc.fsmount_new("tmpfs", libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC)
    try:
        os.mknod("null", 0o666 | stat.S_IFCHR, os.makedev(1, 3), dir_fd=mnt)
        os.chmod("null", 0o666, dir_fd=mnt)
        return os.open("null", os.O_RDWR | os.O_CLOEXEC | os.O_NOFOLLOW, dir_fd=mnt)
    finally:
        os.close(mnt)


def close_all_but(keep: Iterable[int]) -> None:
    """Close every descriptor of this process that is not in KEEP."""
    from ..kernel import libc
    first = 0
    for fd in sorted(set(keep)):
        if fd > first:
            libc.close_range(first, fd - 1)
        first = fd + 1
    libc.close_range(first)


def place(mapping: dict[int, int | None], cloexec: Iterable[int] = ()) -> None:
    """Make each fd T of MAPPING a copy of MAPPING[T] (None: closed) and close
    every other descriptor.  Targets in CLOEXEC close at the next execve."""
    from ..kernel import libc
    targets = list(mapping)
    top = max(targets + [s for s in mapping.values() if s is not None]) + 1
    import fcntl
    parked = {t: libc.fcntl(s, fcntl.F_DUPFD_CLOEXEC, top) for t, s in mapping.items()
              if s is not None}
    close_all_but(parked.values())
    no_exec = set(cloexec)
    for target, fd in parked.items():
        libc.dup2(fd, target, inheritable=target not in no_exec)
    libc.close_range(top)
