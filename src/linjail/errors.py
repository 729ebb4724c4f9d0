"""Errors that reach the user as one line.

Every failure that a user can cause is a JailError: it carries the text to
print without the program name, the stream and the exit status.  The
mechanism raises OpError, which also names what failed: the operation, the
object it acted on and the errno.  Only the command line renders them:
render() is the `prog: ...` line, with a hint where an errno alone leaves
the user stuck (STYLE 4); cli/_main.py is the one handler of every command,
and a traceback is shown only when LINJAIL_DEBUG is set.
"""
from __future__ import annotations

import errno as E
import os


class JailError(Exception):
    """A failure with the message the user sees and the exit status."""
    #: what failed, on what, and why (OpError sets them; a refusal has none)
    op = ""
    obj: str | None = None
    errno = 0

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


class OpError(JailError):
    """(operation, object, errno): a step of the mechanism that failed.

    OP is the system call or step (`mount`, `openat2`, `jail` for jail(2)
    itself), OBJ what it acted on as the user knows it (a path, never the
    /proc/self/fd/N it was reached through; None: nothing), ERRNO why.  The
    message is `OBJ: strerror`, or `OP: strerror` without an object; DETAIL
    replaces strerror where it says more (`is a symbolic link, refusing to
    mount /dev there`), and SHOWN the whole message, for a wording that
    tests pin."""

    def __init__(self, op: str, obj: str | None, errno: int, *, detail: str = "",
                 shown: str | None = None) -> None:
        text = detail or os.strerror(errno)
        super().__init__(shown if shown is not None else
                         f"{op if obj is None else obj}: {text}")
        self.op = op
        self.obj = obj
        self.errno = errno


def os_error(err: OSError, obj: str | None = None) -> OpError:
    """An OSError as an OpError, worded `strerror (object)`.  kernel/libc.py
    puts the system call before strerror (`mount: No space left on device`):
    that is the operation.  OBJ replaces the file name the OSError carries
    (the path behind a /proc/self/fd/N)."""
    code = err.errno or 0
    text = err.strerror or os.strerror(code)
    head, sep, _ = text.partition(": ")
    op = head.partition("(")[0] if sep else ""     # fsconfig(key=value): fsconfig
    if not op.isidentifier():
        op = ""
    shown_obj = obj if obj is not None else (os.fsdecode(err.filename)
                                             if err.filename else None)
    return OpError(op, shown_obj, code,
                   shown=f"{text} ({shown_obj})" if shown_obj else text)


#: the operations that make or change mounts: their ENOSPC is the mount limit
_MOUNT_OPS = frozenset({"mount", "open_tree", "move_mount", "mount_setattr", "fsopen",
                        "fsmount", "fsconfig"})


def hint(err: BaseException) -> str:
    """What the user can do about ERR, where its errno alone misleads or
    leaves them stuck; "" for everything else."""
    code = getattr(err, "errno", 0) or 0
    op = getattr(err, "op", "")
    if code == E.ENOSPC and op in _MOUNT_OPS:
        # bubblewrap's lesson: the disk is not full, the mount table is
        return "the kernel's limit of mounts is reached (sysctl fs.mount-max), not the disk's"
    if code == E.EMFILE:
        return "this process has as many files open as its limit allows (ulimit -n)"
    if code == E.ENFILE:
        return "the system has as many files open as it allows (sysctl fs.file-max)"
    if code in (E.EACCES, E.EPERM) and op in _MOUNT_OPS:
        return ("mounting needs root with CAP_SYS_ADMIN in the host's own namespaces "
                "(not in a container)")
    if code == E.EACCES and (getattr(err, "obj", None) or "").startswith("/"):
        return ("root was refused this path: a root-squashed NFS or a FUSE file system, "
                "or a security module (AppArmor, SELinux), denies it")
    return ""


def described(err: JailError | OSError) -> str:
    """ERR's message and its hint, without a program name (also rc.d/jail's
    reason after ` cannot start jail "NAME": `).  An OSError says
    `file: strerror`."""
    if isinstance(err, JailError):
        text = err.message
    else:
        where = f"{os.fsdecode(err.filename)}: " if err.filename else ""
        text = where + (err.strerror or str(err))
    why = hint(err)
    return f"{text}; {why}" if why else text


def render(prog: str, err: BaseException) -> str:
    """ERR as the one line PROG prints, without the newline: `prog: message`
    with its hint; a usage text keeps its lines.  Anything but a JailError
    or an OSError is a bug: `prog: internal error: ...`."""
    if isinstance(err, UsageError):
        return "\n".join(one_line(line) for line in err.message.split("\n"))
    if isinstance(err, JailError) and err.bare:
        return one_line(err.message)
    if isinstance(err, (JailError, OSError)):
        return one_line(f"{prog}: {described(err)}")
    return one_line(f"{prog}: internal error: {type(err).__name__}: {err} "
                    f"(set LINJAIL_DEBUG=1 for details)")


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
