"""The fuzzer's machinery: cases, the oracle, and the leak check (issue 16).

A case is one command line with its environment, files, stdio states and
maybe a Ctrl-C; it is generated from a seeded Random by an entry point of
the table in fuzz_entries.py.  The oracle is the project's rule (README,
"Errors and hostile input"): the command's work done, or one line on stderr
naming the object and the reason with a non-zero status; never a traceback,
"internal error", "Exception ignored", "Fatal Python error", a hang or
exit 120.  After each batch nothing of the fuzzer's may be left: records,
cgroups, veths, rules, mounts, id files (test_fuzz.py Fuzz.leaks).

What a C tool does is no failure: dying of SIGPIPE when a pipe's reader is
gone, of SIGINT (or exiting 130) on Ctrl-C, saying nothing when its stderr
cannot take a line.  A usage text, or rctl's one line per failed argument
(its status is their number), may take several lines.
"""
from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from typing import Callable

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if TESTS not in sys.path:
    sys.path.insert(0, TESTS)

from stdio_states import Outcome, run_with  # noqa: E402

CASEDIR = b"@CASEDIR@"
BAD_WORDS = ("Traceback", "internal error", "Exception ignored", "Fatal Python error")
#: lines a command may add before its one line: rc.subr's warnings, sysctl's note
WARNING = re.compile(rb"^(\$\S+ is not set properly - see rc\.conf\(5\)\.|"
                     rb"jailctl: sysctl: .*: applies to processes started in jail .*|"
                     rb"\S+: warning: .*|jailctl: WARNING: .*)$")
GETOPT = re.compile(rb"^\S+: (illegal option|option requires an argument) -- .+$")
#: a usage text is the one message that may take several lines
USAGE = re.compile(rb"^(\S+: )?[Uu]sage: ")


@dataclass
class Case:
    """One run of one command: everything needed to repeat it."""
    entry: str                          # the entry point that made it
    argv: list[bytes]                   # argv[0] is a command name (jail, jls, ...)
    env: dict[bytes, bytes] = field(default_factory=dict)   # on top of the base env
    files: dict[str, bytes] = field(default_factory=dict)   # relative to the case dir
    modes: dict[str, int] = field(default_factory=dict)     # chmod after writing
    stdio: tuple[str, str, str] = ("null", "pipe", "pipe")
    sigint: float | None = None         # seconds after the start
    sigint_group: bool = False          # to the process group, as a terminal
    status: int = 0                     # the status of the work done (a jail's command)
    timeout: float = 30
    #: what must not exist after a failure (a build's target; relative paths)
    absent_on_failure: list[str] = field(default_factory=list)
    cleanup: list[list[bytes]] = field(default_factory=list)  # argv run afterwards
    starts_jails: bool = False          # may create a jail (the leak check looks)
    note: str = ""

    def describe(self) -> str:
        words = [a.decode("utf-8", "backslashreplace") for a in self.argv]
        shown = " ".join(w if len(w) < 80 else w[:60] + f"...({len(w)} chars)" for w in words)
        extra = [f"stdio={','.join(self.stdio)}"] if self.stdio != ("null", "pipe", "pipe") \
            else []
        if self.sigint is not None:
            extra.append(f"sigint@{self.sigint * 1000:.0f}ms"
                         f"{'(group)' if self.sigint_group else ''}")
        if self.env:
            extra.append("env=" + ",".join(f"{k.decode()}={v[:40]!r}"
                                           for k, v in self.env.items()))
        if self.files:
            extra.append("files=" + ",".join(self.files))
        return f"[{self.entry}] {shown} {' '.join(extra)} {self.note}".strip()


def judge(case: Case, o: Outcome,
          multi_line: Callable[[Case, Outcome], bool] | None = None) -> list[str]:
    """What is wrong with outcome O of CASE ([] when the rule holds)."""
    problems: list[str] = []
    if o.rc is None:
        return [f"hang: still running after {case.timeout:.0f} s"]
    for word in BAD_WORDS:
        if word.encode() in o.err or word.encode() in o.out:
            problems.append(f"{word!r} in the output")
    if o.rc == 120:
        problems.append("exit 120 (CPython's failed flush at exit)")
    if problems:
        return problems
    out_ok = case.stdio[1] in ("pipe", "nonblock")
    err_ok = case.stdio[2] in ("pipe", "nonblock")
    if o.rc < 0:
        sig = -o.rc
        if sig == 13 and "epipe" in case.stdio[1:] and \
                all(WARNING.match(ln) for ln in o.err.splitlines()):
            return []          # SIGPIPE: the reader is gone, as a C tool
        if sig == 2 and case.sigint is not None:
            return []
        return [f"killed by signal {sig}"]
    if case.sigint is not None and o.rc == 130 and not o.err:
        return []              # Ctrl-C: quiet (or what was said before it: below)
    if o.rc == case.status and o.rc != 0 and not o.err:
        return []              # the work was done: the jail's command said so
    lines = [ln for ln in o.err.splitlines() if not WARNING.match(ln)]
    if o.rc == 0:
        return []
    if not err_ok:
        return []              # stderr closed or full: nothing can be said
    if lines and GETOPT.match(lines[0]):
        if len(lines) > 1 and USAGE.match(lines[1]):
            return []
    if lines and USAGE.match(lines[0]):
        return []
    if multi_line is not None and multi_line(case, o):
        return []
    if case.argv[0] == b"rctl" and len(lines) == o.rc:
        return []              # rctl(8): one line per argument that failed, status = count
    if len(lines) == 1:
        return []
    if not lines:
        if out_ok and o.out.strip():
            return []          # the message went to stdout (Invalid value, rc's lines)
        if case.stdio[1] in ("full", "closed", "epipe", "dir"):
            return []          # ... which could not take it
        return [f"status {o.rc} with nothing said"]
    return [f"status {o.rc} with {len(lines)} lines on stderr"]


def execute(case: Case, bindir: str, workdir: str, base_env: dict[bytes, bytes]) -> Outcome:
    """Write the case's files under WORKDIR and run it there (@CASEDIR@ in a
    file or an argument is WORKDIR)."""
    here = workdir.encode()
    for rel, data in case.files.items():
        path = os.path.join(workdir, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data.replace(CASEDIR, here))
        if rel in case.modes:
            os.chmod(path, case.modes[rel])
    argv0 = os.path.join(bindir, case.argv[0].decode()).encode()
    env = {**base_env, **case.env}
    argv = [argv0, *(a.replace(CASEDIR, here) for a in case.argv[1:])]
    return run_with(argv, case.stdio, env=env,  # type: ignore[arg-type]
                    timeout=case.timeout, sigint_after=case.sigint,
                    sigint_group=case.sigint_group, cwd=workdir)
