"""The one top-level handler every command goes through (STYLE habits 5, 6).

The mechanism raises errors without a program name; here, and only here, a
JailError or an OSError becomes its `prog: ...` line (errors.render, with
the errno's hint) and its exit status.  Anything else becomes one line too
(`internal error`), unless LINJAIL_DEBUG is set, which shows the traceback.

Standard output and error are ours (`Output`), not CPython's: a closed
descriptor (CPython leaves sys.stdout None), /dev/full, a pipe whose reader
is gone or a non-blocking pipe must end like a C tool — the work done, then
`jls: stdout: No space left on device` and status 1 — never an
AttributeError, "Exception ignored", exit 120 or output lost with status 0
(issue 16, item 1).  Ctrl-C during start-up: the launcher starts the
interpreter with SIGINT blocked, and run() unblocks it inside its handler,
so an early Ctrl-C ends the command quietly with 130 (item 3).
"""
from __future__ import annotations

import _signal as signal   # the C module: `signal` would import enum (startup cost)
import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

from ..errors import JailError, as_bytes, render


class Output:
    """A text stream on FD that never raises: like C stdio, it remembers its
    first error (`error`, an errno) for the end of the command.

    Text is encoded as the file system encoding with surrogateescape, so a
    path or argument that is not UTF-8 comes out as the bytes it came in as.
    A descriptor that was closed when the command started stays unused
    (linjail may open files that take its number later).  EAGAIN (a
    non-blocking pipe that is full) waits until the pipe drains.
    """

    def __init__(self, fd: int, name: str, line_buffered: bool) -> None:
        self.fd = fd
        self.name = name
        self.line_buffered = line_buffered
        self.buf = bytearray()
        self.error = 0
        self.written = False
        try:
            os.fstat(fd)
            self.missing = False
        except OSError:
            self.missing = True
        self.encoding = sys.getfilesystemencoding()
        self.errors = "surrogateescape"

    def write(self, text: str) -> int:
        try:
            self.buf += text.encode(self.encoding, self.errors)
        except UnicodeError:      # a lone surrogate no byte decoded to
            self.buf += as_bytes(text)
        if len(self.buf) >= 65536 or (self.line_buffered and "\n" in text):
            self.flush()
        return len(text)

    def writelines(self, lines: list[str]) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if not self.buf:
            return
        data = memoryview(bytes(self.buf))
        self.buf.clear()
        if self.error:
            return
        if self.missing:
            self.error = errno.EBADF
            return
        self.written = True
        while data:
            try:
                data = data[os.write(self.fd, data):]
            except InterruptedError:
                continue
            except BlockingIOError:
                import select
                poller = select.poll()
                poller.register(self.fd, select.POLLOUT)
                poller.poll()
            except OSError as err:
                self.error = err.errno or errno.EIO
                return

    def fileno(self) -> int:
        if self.missing:
            raise OSError(errno.EBADF, os.strerror(errno.EBADF))
        return self.fd

    def isatty(self) -> bool:
        return not self.missing and os.isatty(self.fd)

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return False


def _install_streams() -> None:
    """Ours in place of the interpreter's own streams (a caller that passed
    others, as tests do in-process, keeps them)."""
    if sys.stdout is None or sys.stdout is sys.__stdout__:
        sys.stdout = Output(1, "stdout", line_buffered=False)
    if sys.stderr is None or sys.stderr is sys.__stderr__:
        sys.stderr = Output(2, "stderr", line_buffered=True)


_UNRAISED: list[BaseException] = []


def _unraisable(info: object) -> None:
    """sys.unraisablehook: a Ctrl-C that lands in a callback (importlib's
    module-lock weakref, a __del__) cannot propagate, and CPython printed
    "Exception ignored in: ... KeyboardInterrupt"; it is kept for the end
    (status 130).  Anything else stays silent unless LINJAIL_DEBUG is set."""
    exc = getattr(info, "exc_value", None)
    if isinstance(exc, KeyboardInterrupt):
        _UNRAISED.append(exc)
    elif os.environ.get("LINJAIL_DEBUG"):
        sys.__unraisablehook__(info)  # type: ignore[arg-type]


def run(prog: str, body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    _install_streams()
    sys.unraisablehook = _unraisable
    code = 1
    try:
        # the launcher blocked SIGINT around the interpreter's start-up (a
        # KeyboardInterrupt there is a "Fatal Python error"); from here on it
        # is a KeyboardInterrupt, handled below, and a pending one fires now
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
        if args == ["--version"]:      # every command; alone, so never a BSD option
            from .. import __version__
            sys.stdout.write(f"{prog} (linjail) {__version__}\n")
            code = 0
        else:
            code = body(args)
        sys.stdout.flush()
    except KeyboardInterrupt:
        code = 130
    except Exception as e:
        # a JailError raised while handling a Ctrl-C is the command's own
        # word about it ("build: interrupted; ..."): said, not swallowed
        if not isinstance(e, JailError) and _interrupted(e):
            code = 130        # Ctrl-C inside an import: Python wraps it (RuntimeError)
            return _settle(prog, code)
        if os.environ.get("LINJAIL_DEBUG"):
            raise
        # the one handler of every command: a JailError or an OSError is its
        # line (errors.render), anything else a bug, said in one line too
        sys.stdout.flush()
        stream = sys.stdout if isinstance(e, JailError) and e.stdout else sys.stderr
        stream.write(render(prog, e) + "\n")
        stream.flush()
        code = e.code if isinstance(e, JailError) else 1
    return _settle(prog, code)


def _interrupted(e: BaseException) -> bool:
    """True if a KeyboardInterrupt is behind E (an import that it interrupted
    fails with "RuntimeError: Error calling __set_name__ ...")."""
    seen = 0
    cause: BaseException | None = e
    while cause is not None and seen < 20:
        if isinstance(cause, KeyboardInterrupt):
            return True
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return False


def _settle(prog: str, code: int) -> int:
    """The status once stdout is flushed: a write that failed is a failure
    (C: ferror(stdout) at exit), said in one line unless one was said."""
    out, err = sys.stdout, sys.stderr
    if _UNRAISED and code == 0:
        code = 130            # a Ctrl-C that a callback swallowed
    try:
        out.flush()
        failed = getattr(out, "error", 0)
        if failed == errno.EPIPE and code == 0:
            # the reader is gone: end as SIGPIPE ends a C tool, without a word
            err.flush()
            signal.signal(signal.SIGPIPE, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGPIPE)
        if failed and (code == 0 or not getattr(err, "written", True)):
            err.write(f"{prog}: stdout: {os.strerror(failed)}\n")
            code = code or 1
        err.flush()
    except KeyboardInterrupt:
        code = 130
    return code


def finish(main: Callable[[], int] | int) -> None:
    """Run a command's main() and leave without interpreter shutdown (the
    launchers' exit): shutdown costs ~17 ms on these machines and linjail
    registers no atexit handler.  run() has reported a failed flush; what is
    left is a Ctrl-C that arrived after run()'s own handler (status 130).
    A launcher built before main was passed uncalled gives the status."""
    try:
        code = main() if callable(main) else main
    except KeyboardInterrupt:
        code = 130
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        if stream is None:          # started with that descriptor closed
            continue
        try:
            if stream is not None:
                stream.flush()
        except BaseException:
            pass
    os._exit(code if isinstance(code, int) else 1)


def jailed() -> bool:
    """True inside a jail: its PID 1 is a linjail reaper (SPEC §5 jail.jailed)."""
    try:
        with open("/proc/1/environ", "rb") as f:
            return b"\0LINJAIL_JAILED=1\0" in b"\0" + f.read()
    except OSError:
        return False
