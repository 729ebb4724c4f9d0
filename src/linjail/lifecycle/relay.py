"""Running a jail's (or a jexec's) command for a user at a terminal.

When any of standard input, output or error is a terminal, the command gets
a private pty in its place whose master stays here: the caller's terminal is
put in raw mode (when it is standard input) and relayed, the window size
follows SIGWINCH, and when the command ends the master is closed, so no
process left in the jail keeps a handle on the caller's terminal (TIOCSTI
and later keystrokes: SPEC §2, §7).  Signals sent to the launcher are passed
to the command (through the jail's PID 1).
"""
from __future__ import annotations

import _signal as signal   # the C module: `signal` would import enum (startup cost)
import errno
import fcntl
import os
import sys

from ..errors import OpError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

    from ..model import JailSpec

FORWARDED = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
             signal.SIGUSR1, signal.SIGUSR2, signal.SIGCONT)


class Pty:
    def __init__(self) -> None:
        self.master, self.slave = os.openpty()
        os.set_blocking(self.master, True)
        self.copy_winsize()

    def adopt(self, master: int) -> None:
        os.close(self.master)
        self.master = master
        os.set_blocking(self.master, True)
        self.copy_winsize()

    def copy_winsize(self) -> None:
        import termios     # here: `jail` and `jexec` without a terminal need none of it
        try:
            size = fcntl.ioctl(_tty_fd(), termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(self.master, termios.TIOCSWINSZ, size)
        except OSError:
            pass

    def stdio(self, fds: tuple[int | None, int | None, int | None] = (0, 1, 2)
              ) -> tuple[int | None, int | None, int | None]:
        a, b, c = (self.slave if fd is not None and os.isatty(fd) else fd for fd in fds)
        return a, b, c


def _tty_fd() -> int:
    """The caller's terminal: the first of fds 0-2 that is one."""
    for fd in (0, 1, 2):
        if os.isatty(fd):
            return fd
    return 0


def maybe_pty() -> Pty | None:
    """A pty for the command when any of fds 0-2 is a terminal."""
    from .stdio import CLOSED
    return Pty() if any(fd not in CLOSED and os.isatty(fd) for fd in (0, 1, 2)) else None


def forward_signals(target: Callable[[int], None], pty: Pty | None) -> None:
    def handler(sig: int, _frame: object) -> None:
        target(sig)
    for sig in FORWARDED:
        signal.signal(sig, handler)
    if pty is not None:
        signal.signal(signal.SIGWINCH, lambda *_: pty.copy_winsize())
    else:
        signal.signal(signal.SIGWINCH, handler)


def relay(pty: Pty, done_fd: int) -> None:
    """Copy the caller's terminal to the pty and back until done_fd is readable.

    Only the caller's fds that are terminals take part: standard input is
    read (in raw mode) when it is one; the pty's output goes to standard
    output if it is a terminal, else to standard error.
    """
    import select
    import termios
    out = 1 if os.isatty(1) else 2
    tty_in = os.isatty(0)
    saved = None
    if tty_in:
        try:
            saved = termios.tcgetattr(0)
        except termios.error:
            saved = None
    if saved is not None:
        import tty
        tty.setraw(0, termios.TCSANOW)
    stdin_open, master_open = tty_in, True
    try:
        while True:
            rlist = [done_fd] + ([pty.master] if master_open else []) + \
                ([0] if stdin_open else [])
            ready, _, _ = select.select(rlist, [], [])
            if pty.master in ready and not _pump(pty.master, out):
                master_open = False     # no slave left open: EIO until one is reopened
            if 0 in ready:
                data = os.read(0, 4096)
                if data:
                    _write_all(pty.master, data)
                else:
                    stdin_open = False
            if done_fd in ready:
                break
        # what the command wrote just before it ended (bounded: a daemon left
        # behind may keep writing; it loses the terminal when we close it)
        import time
        deadline = time.monotonic() + 0.5
        while master_open and time.monotonic() < deadline and \
                select.select([pty.master], [], [], 0.05)[0] and _pump(pty.master, out):
            pass
    finally:
        if saved is not None:
            termios.tcsetattr(0, termios.TCSADRAIN, saved)
        os.close(pty.master)


def _pump(src: int, dst: int) -> bool:
    try:
        data = os.read(src, 65536)
    except OSError as err:
        if err.errno == errno.EIO:    # no slave left open
            return False
        raise
    if not data:
        return False
    _write_all(dst, data)
    return True


def _write_all(fd: int, data: bytes) -> None:
    while data:
        n = os.write(fd, data)
        data = data[n:]


def run_interactive(spec: JailSpec, pass_fds: tuple[int, ...] = ()) -> int:
    """`jail`: create the jail, print the JID for -i, run and relay the command."""
    from . import start
    from .stdio import CLOSED
    pty = maybe_pty()
    a, b, c = (None if fd in CLOSED else fd for fd in (0, 1, 2))
    stdio = pty.stdio((a, b, c)) if pty else (a, b, c)

    def to_jail(sig: int) -> None:
        try:
            os.kill(started.pid, sig)
        except ProcessLookupError:
            pass
    with start.SigintDeferred() as intr:
        started = start.start(spec, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2],
                              pty_slave=pty.slave if pty else None, pass_fds=pass_fds)
        try:
            if pty is not None:
                os.close(pty.slave)
                if started.pty_master is not None:      # the jail's own pty replaces ours
                    pty.adopt(started.pty_master)
            if spec.print_jid:
                sys.stdout.write(f"{started.jid}\n")
                sys.stdout.flush()
                failed = getattr(sys.stdout, "error", 0)
                if failed:   # the caller cannot learn the JID: the command does not run
                    raise OpError("write", "stdout", failed)
            forward_signals(to_jail, pty)
            intr.check()
        except BaseException:    # a failed -i, or Ctrl-C: the command never ran
            start.abandon(started)
            raise
        start.go(started)     # a Ctrl-C from here on reaches the command
    if pty is not None:
        relay(pty, started.status_fd)
    return start.finish(started)
