"""The one top-level handler every command goes through (STYLE habits 5, 6).

A JailError becomes its one line and its exit status; anything else becomes
one line too, unless LINJAIL_DEBUG is set, which shows the traceback.
"""
from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

from ..errors import JailError


def run(prog: str, body: Callable[[list[str]], int], argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--version"]:      # every command; alone, so never a BSD option
        from .. import __version__
        sys.stdout.write(f"{prog} (linjail) {__version__}\n")
        return 0
    try:
        return body(args)
    except JailError as err:
        if os.environ.get("LINJAIL_DEBUG"):
            raise
        stream = sys.stdout if err.stdout else sys.stderr
        text = err.message if err.bare or err.message.startswith(f"{prog}: ") \
            else f"{prog}: {err.message}"
        stream.write(text + "\n")
        stream.flush()
        return err.code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 1
    except Exception as err:   # a bug or an unforeseen OS state: one line, no traceback
        if os.environ.get("LINJAIL_DEBUG"):
            raise
        sys.stderr.write(f"{prog}: internal error: {type(err).__name__}: {err} "
                         f"(set LINJAIL_DEBUG=1 for details)\n")
        return 1


def finish(code: int) -> None:
    """Flush and leave without interpreter shutdown (the launchers' exit).

    Shutdown costs ~17 ms on these machines and linjail registers no atexit
    handler; a flush that fails (closed pipe) does not change the status.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code if isinstance(code, int) else 1)


def jailed() -> bool:
    """True inside a jail: its PID 1 is a linjail reaper (SPEC §5 jail.jailed)."""
    try:
        with open("/proc/1/environ", "rb") as f:
            return b"\0LINJAIL_JAILED=1\0" in b"\0" + f.read()
    except OSError:
        return False
