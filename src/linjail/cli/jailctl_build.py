"""`jailctl build PATH --complete|--thin|--from-tar` and `jailctl destroy PATH` (SPEC §9).

`jailctl build PATH --service ...` goes to roots/service.py (cli/jailctl.py
dispatches it); every other build comes here.  Parsing only builds a
BuildArgs; the build modules do the work.  A build is interruptible: ^C,
SIGTERM and SIGHUP stop it, and it removes what it made before exiting 130.

    jailctl build PATH --complete [--suite SUITE] [--include PKG,...]
                                  [--mirror URL] [--hostname NAME]
    jailctl build PATH --thin BASE
    jailctl build PATH --from-tar FILE
    jailctl destroy PATH
"""
from __future__ import annotations

import getopt
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

from ..errors import JailError, UsageError
from .jailctl_usage import USAGE

_LONG = ["complete", "suite=", "include=", "mirror=", "hostname=", "thin=", "from-tar="]
_COMPLETE_ONLY = ("--suite", "--include", "--mirror", "--hostname")


@dataclass(frozen=True)
class BuildArgs:
    path: str
    kind: str                      # "complete" | "thin" | "tar"
    suite: str | None = None
    include: tuple[str, ...] = ()
    mirror: str | None = None
    hostname: str | None = None
    source: str = ""               # BASE for --thin, FILE for --from-tar


def _usage() -> UsageError:
    return UsageError(USAGE)


def parse_build(args: list[str]) -> BuildArgs:
    try:
        opts, rest = getopt.gnu_getopt(args, "", _LONG)
    except getopt.GetoptError:
        raise _usage() from None
    if len(rest) != 1:
        raise _usage()
    seen = [opt for opt, _ in opts]
    kinds = [o for o in seen if o in ("--complete", "--thin", "--from-tar")]
    if len(kinds) != 1 or len(set(seen)) != len(seen):
        raise _usage()
    values = dict(opts)
    if kinds[0] != "--complete" and any(o in values for o in _COMPLETE_ONLY):
        raise _usage()
    include: tuple[str, ...] = ()
    if "--include" in values:
        include = tuple(p.strip() for p in values["--include"].split(",") if p.strip())
    kind = {"--complete": "complete", "--thin": "thin", "--from-tar": "tar"}[kinds[0]]
    return BuildArgs(path=rest[0], kind=kind, suite=values.get("--suite"), include=include,
                     mirror=values.get("--mirror"), hostname=values.get("--hostname"),
                     source=values.get(kinds[0], ""))


def main_build(args: list[str], out: TextIO, err: TextIO) -> int:
    parsed = parse_build(args)
    if os.geteuid() != 0:
        raise JailError("build: Operation not permitted")
    log = _logger(err)
    with _interruptible():
        try:
            # only the chosen builder's module is imported (start-up time)
            if parsed.kind == "complete":
                from ..roots.complete import build_complete
                build_complete(parsed.path, suite=parsed.suite, include=parsed.include,
                               mirror=parsed.mirror, hostname=parsed.hostname, stream=err)
            elif parsed.kind == "thin":
                from ..roots.thin import build_thin
                build_thin(parsed.path, parsed.source, log)
            else:
                from ..roots.tarball import build_from_tar
                build_from_tar(parsed.path, parsed.source, log)
        except KeyboardInterrupt:
            raise JailError(f"build: interrupted; nothing left in "
                            f"{os.path.abspath(parsed.path)}", 130) from None
    return 0


def main_destroy(args: list[str], out: TextIO, err: TextIO) -> int:
    try:
        _, args = getopt.gnu_getopt(args, "")     # `--` before a path with a dash
    except getopt.GetoptError:
        raise _usage() from None
    if len(args) != 1:
        raise _usage()
    if os.geteuid() != 0:
        raise JailError("destroy: Operation not permitted")
    from ..roots.destroy import destroy
    with _interruptible():
        try:
            destroy(args[0], running_roots, _logger(err))
        except OSError as e:
            raise JailError(f"destroy: {e.filename or args[0]}: {e.strerror}") from None
        except KeyboardInterrupt:
            raise JailError(f"destroy: interrupted; {args[0]} is partly removed; "
                            "run it again", 130) from None
    return 0


def running_roots() -> list[tuple[int, str]]:
    """The live jails as roots/destroy.py asks for them: (JID, root); what
    ended jails left is released on the way (the sweep)."""
    from ..lifecycle import sweep      # only destroy reads it (start-up time)
    return [(rec.jid, rec.path) for rec in sweep.jails()]


def _logger(err: TextIO) -> Callable[[str], None]:
    def log(line: str) -> None:
        err.write(line + "\n")
        err.flush()
    return log


@contextmanager
def _interruptible() -> Iterator[None]:
    """SIGTERM and SIGHUP interrupt like ^C; after the first, further ones are
    ignored so that the cleanup runs to its end."""
    names = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {sig: signal.getsignal(sig) for sig in names}

    def interrupt(signum: int, frame: FrameType | None) -> None:
        for sig in names:
            signal.signal(sig, signal.SIG_IGN)
        raise KeyboardInterrupt

    for sig in names:
        if old[sig] != signal.SIG_IGN:   # nohup'ed stays nohup'ed
            signal.signal(sig, interrupt)
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
