"""debootstrap(8) run for `jailctl build PATH --complete`, with its progress.

debootstrap runs in its own mount and PID namespaces (unshare(1)
--mount --pid --kill-child): the /proc and /sys it mounts into the target
never appear on the host, and whatever it started dies with it, also when it
is interrupted.  Progress comes from its debian-installer protocol on fd 3
(P:/I:/W:/E: lines, see /usr/share/debootstrap/functions); its full log is
kept in memory and shown with LINJAIL_DEBUG.
"""
from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from linjail.errors import JailError
from linjail.roots.apt import SYSTEM_PATH, Mirror

STOP_GRACE = 10.0


# --- what debootstrap is asked for -------------------------------------------------


@dataclass(frozen=True)
class CompletePlan:
    root: str
    suite: str
    mirror: Mirror
    include: tuple[str, ...]
    hostname: str
    proxy_env: dict[str, str] = field(default_factory=dict)


# --- progress display -----------------------------------------------------------

#: debootstrap's phases and where each sits on the overall bar (start %, span %)
PHASES: dict[str, tuple[float, float]] = {
    "DOWNREL": (0, 1), "DOWNRELSIG": (1, 1), "DOWNPKGS": (2, 5), "DOWNMAINPKGS": (2, 5),
    "SIZEDEBS": (7, 3), "DOWNDEBS": (10, 40), "EXTRACTPKGS": (50, 10),
    "INSTCORE": (60, 4), "UNPACKREQ": (64, 8), "CONFREQ": (72, 8),
    "UNPACKBASE": (80, 8), "CONFBASE": (88, 12),
}


class Progress:
    """One rewritten line on a terminal; one line per phase otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.percent = 0.0
        self.phase = ""
        self.detail = ""
        self._shown_phase = ""
        self._line = ""
        self._drawn = 0.0
        self._dirty = False

    def update(self, percent: float | None = None, phase: str | None = None,
               detail: str | None = None) -> None:
        if percent is not None:
            self.percent = max(self.percent, min(100.0, percent))
        if phase is not None and phase != self.phase:
            self.phase, self.detail = phase, ""
        if detail is not None:
            self.detail = detail
        self._draw()

    def _draw(self) -> None:
        head = f"build: [{self.percent:3.0f}%] {self.phase}"
        if not self.phase:
            return
        if self.tty:
            line = f"{head}: {self.detail}" if self.detail else head
            width = shutil.get_terminal_size((80, 24)).columns - 1
            line = line[:width]
            now = time.monotonic()
            # wget reports every few KB: redraw at most ten times a second
            if line == self._line or (now - self._drawn < 0.1 and
                                      self.phase == self._shown_phase):
                return
            self._line, self._drawn, self._shown_phase = line, now, self.phase
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self._dirty = True
        elif self.phase != self._shown_phase:
            self._shown_phase = self.phase
            self.stream.write(head + "\n")
            self.stream.flush()

    def message(self, line: str) -> None:
        self.clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        if self.tty:
            self._draw()

    def clear(self) -> None:
        if self.tty and self._dirty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._dirty = False
            self._line = ""


def _format(fmt: str, args: Sequence[str]) -> str:
    """debootstrap's printf formats: %s and %% only."""
    it = iter(args)
    return re.sub(r"%[s%]", lambda m: "%" if m.group() == "%%" else next(it, ""), fmt)


class Protocol:
    """Parses debootstrap's debian-installer protocol (fd 3) into events.

    A message is a head line (`P: NOW END [PHASE]`, `I: NAME`, `W: NAME`,
    `E: NAME`), argument lines (`PA:`...) and a printf format (`PF:`...).
    wget's running percentage comes as bare `P: NOW END` lines of the
    current phase.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.phase = ""                   # the P: phase name, e.g. DOWNDEBS
        self.numbers: tuple[int, int] = (0, 0)
        self.args: list[str] = []
        self.error: str | None = None
        self.warnings: list[str] = []

    def feed(self, line: str) -> None:
        tag, _, rest = line.partition(": ")
        if tag == "P":
            self.args = []
            words = rest.split()
            try:
                self.numbers = (int(words[0]), int(words[1]))
            except (IndexError, ValueError):
                return
            if len(words) > 2:
                self.phase = words[2]
            else:
                self._percent(None)
        elif tag in ("I", "W", "E"):
            self.args = []
        elif tag in ("PA", "IA", "WA", "EA"):
            self.args.append(rest)
        elif tag == "PF":
            self._percent(_format(rest, self.args))
        elif tag == "IF":
            self.progress.update(detail=_format(rest, self.args))
        elif tag == "WF":
            text = _format(rest, self.args)
            self.warnings.append(text)
            self.progress.message(f"build: debootstrap: warning: {text}")
        elif tag == "EF":
            self.error = _format(rest, self.args)

    def _percent(self, title: str | None) -> None:
        start, span = PHASES.get(self.phase, (self.progress.percent, 0))
        now, end = self.numbers
        frac = now / end if end > 0 else 0.0
        self.progress.update(start + span * min(1.0, max(0.0, frac)), title)


# --- running debootstrap ---------------------------------------------------------


def debootstrap_argv(plan: CompletePlan) -> list[str]:
    argv = [shutil.which("unshare", path=SYSTEM_PATH) or "unshare",
            "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "--mount-proc", "--",
            shutil.which("debootstrap", path=SYSTEM_PATH) or "debootstrap",
            "--debian-installer", "--variant=minbase", "--components=main"]
    if plan.include:
        argv.append("--include=" + ",".join(plan.include))
    if plan.mirror.keyring:
        argv.append("--keyring=" + plan.mirror.keyring)
    return argv + [plan.suite, plan.root, plan.mirror.url]


def run_debootstrap(plan: CompletePlan, progress: Progress) -> None:
    """Run debootstrap to the end; JailError with its own reason if it fails.

    An exception here (^C, SIGTERM) stops it first: SIGTERM to its process
    group (its traps unmount), SIGKILL after STOP_GRACE; its PID namespace
    takes every stray process with it.
    """
    log_r, log_w = os.pipe2(os.O_CLOEXEC)
    prog_r, prog_w = os.pipe2(os.O_CLOEXEC)
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": "/root",
           "DEBIAN_FRONTEND": "noninteractive", **plan.proxy_env}
    argv = debootstrap_argv(plan)
    try:
        pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_w, 1), (os.POSIX_SPAWN_DUP2, log_w, 2),
            (os.POSIX_SPAWN_DUP2, prog_w, 3)])
    except OSError as e:
        for fd in (log_r, log_w, prog_r, prog_w):
            os.close(fd)
        raise JailError(f"build: {argv[0]}: {e.strerror}") from None
    os.close(log_w)
    os.close(prog_w)
    proto = Protocol(progress)
    tail: deque[str] = deque(maxlen=60)
    try:
        _pump({log_r: tail.append, prog_r: proto.feed})
        _, status = os.waitpid(pid, 0)
    except BaseException:
        _stop(pid)
        raise
    finally:
        os.close(log_r)
        os.close(prog_r)
    code = os.waitstatus_to_exitcode(status)
    if code == 0 and proto.error is None:
        return
    progress.clear()
    if os.environ.get("LINJAIL_DEBUG"):
        progress.stream.write("".join(line + "\n" for line in tail))
    last = next((t for t in reversed(tail) if t.strip()), f"exit status {code}")
    reason = proto.error or (proto.warnings[-1] if proto.warnings else last)
    raise JailError(f"build: debootstrap failed: {reason.strip()}")


def _pump(handlers: dict[int, Callable[[str], None]]) -> None:
    """Read lines from each descriptor until all reach end of file."""
    sel = selectors.DefaultSelector()
    partial = dict.fromkeys(handlers, b"")
    for fd in handlers:
        sel.register(fd, selectors.EVENT_READ)
    try:
        while partial.keys() - set(_closed(sel, handlers)):
            for key, _ in sel.select():
                fd = key.fd
                data = os.read(fd, 65536)
                if not data:
                    sel.unregister(fd)
                    if partial[fd]:
                        handlers[fd](partial[fd].decode("utf-8", "replace"))
                    partial[fd] = b""
                    continue
                *lines, partial[fd] = (partial[fd] + data).split(b"\n")
                for line in lines:
                    handlers[fd](line.decode("utf-8", "replace"))
    finally:
        sel.close()


def _closed(sel: selectors.BaseSelector, handlers: dict[int, Callable[[str], None]]
            ) -> list[int]:
    registered = sel.get_map()
    return [fd for fd in handlers if fd not in registered]


def _stop(pid: int) -> None:
    """Stop debootstrap's whole process group: TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 60.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                # the group may outlive its leader a moment; KILL what is left
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.05)
