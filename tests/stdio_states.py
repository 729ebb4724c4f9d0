"""Running a command with fd 0, 1 or 2 in a hostile state (issue 16).

States: "closed" (the descriptor does not exist), "full" (/dev/full),
"epipe" (a pipe whose reader is gone), "dir" (a directory), "nonblock" (a
non-blocking pipe that is full when the command starts and drains later),
"null" (/dev/null) and "pipe" (an ordinary captured pipe).  Used by
tests/e2e/test_stdio.py and the fuzzer (tests/fuzz).
"""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

STATES = ("pipe", "null", "closed", "full", "epipe", "dir", "nonblock")


@dataclass
class Outcome:
    rc: int | None          # None: it hung (killed after the timeout)
    out: bytes
    err: bytes
    seconds: float


class _Drain(threading.Thread):
    """Reads a pipe to its end (after DELAY seconds)."""

    def __init__(self, fd: int, delay: float = 0.0) -> None:
        super().__init__(daemon=True)
        self.fd, self.delay, self.data = fd, delay, bytearray()

    def run(self) -> None:
        time.sleep(self.delay)
        os.set_blocking(self.fd, True)
        while True:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.data += chunk
        os.close(self.fd)


def _full_nonblocking_pipe() -> tuple[int, int, bytes]:
    """A pipe whose write end is O_NONBLOCK and already full; returns (r, w, filler)."""
    r, w = os.pipe2(os.O_CLOEXEC)
    os.set_blocking(w, False)
    filled = bytearray()
    while True:
        try:
            n = os.write(w, b"." * 4096)
        except BlockingIOError:
            break
        filled += b"." * n
    return r, w, bytes(filled)


def run_with(argv: list[str], states: tuple[str, str, str] = ("null", "pipe", "pipe"), *,
             env: dict[str, str] | None = None, timeout: float = 30,
             sigint_after: float | None = None, sigint_group: bool = False,
             stdin_data: bytes = b"", cwd: str | None = None) -> Outcome:
    """Run ARGV with fds 0, 1, 2 in STATES; capture what "pipe"/"nonblock" get.

    SIGINT_AFTER: send SIGINT that many seconds after the start, to the
    command, or with SIGINT_GROUP to its whole process group, as a terminal's
    Ctrl-C does (the command then runs in a session of its own)."""
    keep: list[int] = []          # our ends/files, closed at the end
    child_fds: list[int] = []
    closed: list[int] = []
    drains: dict[int, _Drain] = {}
    fillers: dict[int, bytes] = {}
    for fd, state in enumerate(states):
        if state == "pipe" and fd == 0:
            r, w = os.pipe2(os.O_CLOEXEC)
            child_fds.append(r)
            keep.append(w)
        elif state == "pipe":
            r, w = os.pipe2(os.O_CLOEXEC)
            child_fds.append(w)
            drains[fd] = _Drain(r)
        elif state == "null":
            child_fds.append(os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC))
        elif state == "closed":
            child_fds.append(os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC))
            closed.append(fd)
        elif state == "full":
            child_fds.append(os.open("/dev/full", os.O_RDWR | os.O_CLOEXEC))
        elif state == "epipe":
            r, w = os.pipe2(os.O_CLOEXEC)
            os.close(r)
            child_fds.append(r if fd == 0 else w)
            if fd == 0:     # for stdin: a pipe whose writer is gone (EOF)
                os.close(w)
                r2, w2 = os.pipe2(os.O_CLOEXEC)
                os.close(w2)
                child_fds[-1] = r2
        elif state == "dir":
            child_fds.append(os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC))
        elif state == "nonblock":
            r, w, filler = _full_nonblocking_pipe()
            if fd == 0:
                os.close(w)
                child_fds.append(os.open("/dev/null", os.O_RDONLY | os.O_CLOEXEC))
                os.close(r)
            else:
                child_fds.append(w)
                drains[fd] = _Drain(r, delay=0.3)
                fillers[fd] = filler
        else:
            raise ValueError(state)

    def preexec() -> None:
        for fd in closed:
            os.close(fd)

    start = time.monotonic()
    p = subprocess.Popen(argv, stdin=child_fds[0], stdout=child_fds[1], stderr=child_fds[2],
                         env=env, cwd=cwd, preexec_fn=preexec if closed else None,
                         start_new_session=sigint_group)
    for fd in child_fds:
        os.close(fd)
    for d in drains.values():
        d.start()
    if keep:
        try:
            os.write(keep[0], stdin_data)
        except OSError:
            pass
        os.close(keep[0])
    if sigint_after is not None:
        time.sleep(sigint_after)
        try:
            if sigint_group:
                os.killpg(p.pid, signal.SIGINT)
            else:
                p.send_signal(signal.SIGINT)
        except ProcessLookupError:
            pass
    try:
        rc: int | None = p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        rc = None
    seconds = time.monotonic() - start
    for d in drains.values():
        d.join(timeout=10)
    out = bytes(drains[1].data) if 1 in drains else b""
    err = bytes(drains[2].data) if 2 in drains else b""
    if 1 in fillers:
        out = out[len(fillers[1]):]
    if 2 in fillers:
        err = err[len(fillers[2]):]
    return Outcome(rc, out, err, seconds)


def nonblocking(fd: int) -> bool:
    return bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_NONBLOCK)
