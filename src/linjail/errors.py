"""Errors that reach the user as one line.

Every failure that a user can cause is a JailError: it carries the exact text to
print (without the program name), the stream and the exit status.  One handler
per command (cli/_main.py) prints it; a traceback is shown only when
LINJAIL_DEBUG is set in the environment.
"""
from __future__ import annotations

import os


class JailError(Exception):
    """A failure with the message the user sees and the exit status."""

    def __init__(self, message: str, code: int = 1, *, stdout: bool = False,
                 bare: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        #: print on stdout instead of stderr (jail's "Invalid value" goes there)
        self.stdout = stdout
        #: print the message as is, without the "prog: " prefix
        self.bare = bare


class UsageError(JailError):
    """Bad command line: the usage text, exit 1."""

    def __init__(self, usage: str, diagnostic: str = "") -> None:
        # libc's getopt prints its own line first: `jail: illegal option -- x`
        super().__init__(f"{diagnostic}\n{usage}" if diagnostic else usage, 1, bare=True)


def strerror(errno_: int) -> str:
    import os
    return os.strerror(errno_)


def as_bytes(text: str) -> bytes:
    """TEXT as the bytes it came from: argv and paths are bytes on Linux, and
    Python decodes what is not UTF-8 to lone surrogates (PEP 383); a strict
    encode() of them raised UnicodeEncodeError (issue 16, item 10)."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        # a surrogate no byte decoded to (JSON's "\\ud800"): shown escaped
        return b"".join(_char_bytes(ch) for ch in text)


def _char_bytes(ch: str) -> bytes:
    try:
        return ch.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return ch.encode("ascii", "backslashreplace")


def one_line(text: str) -> str:
    """TEXT with its control characters shown as octal escapes (\\012): a
    value quoted in a message (an argument, a file's line) must not break it
    into two lines, nor send escape sequences to a terminal."""
    if text.isprintable():
        return text
    return "".join(f"\\{ord(ch):03o}" if (ord(ch) < 0x20 and ch != "\t") or
                   0x7F <= ord(ch) < 0xA0 else ch for ch in text)


def write_fd(fd: int, text: str) -> None:
    """Write TEXT to FD whole, for a process without sys.stderr (a forked
    helper): EINTR is retried, a full non-blocking pipe waited for; any other
    error drops the message (there is nowhere left to say it)."""
    view = memoryview(as_bytes(text))
    while view:
        try:
            view = view[os.write(fd, view):]
        except InterruptedError:
            continue
        except BlockingIOError:
            import select
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            poller.poll()
        except OSError:
            return
