"""The lifecycle as data: ordered tables of Step(name, do, undo).

A table is a tuple of Step, run in order by run(): each step whose `when`
holds is done; if one raises, the undos of the steps done so far run in
reverse order (a failing undo does not stop the others) and the error goes
on.  unwind() walks a whole table backwards, every undo: the teardown of
what another process made, from its stored record (lifecycle/start.py's
release).  Each undo must work from what the context holds, and may run
twice without failing.

The tables are lifecycle/start.py's HOST_STEPS (the launcher, on the host)
and JAIL_STEPS (the jail's first process).  With `jail -v` or
LINJAIL_DEBUG=1 each step says what it does as it runs, one line on stderr
(FreeBSD's -v: "a message on every operation").

(The models: FreeBSD jail(8)'s startcommands[], bubblewrap's list of setup
operations, mkosi's file system operations.)
"""
from __future__ import annotations

import os

from ..errors import as_bytes
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Generic, Iterable, Sequence, TypeVar
    C = TypeVar("C")
else:
    C = None

    class Generic:   # no `import typing` on the start path: Step[Ctx] is for mypy only
        def __class_getitem__(cls, item: object) -> type:
            return cls


@record()
class Step(Record, Generic[C]):
    """One step of a table: DO(ctx) makes something, UNDO(ctx) removes it.

    WHEN(ctx): the step applies to this jail at all (a jail without
    addresses has no veth); SHOW(ctx): what `-v` prints after the name
    (None: the step prints its own lines).  CLAIM: what this step made is
    the claim the later steps' objects are named after (a jail's JID): in
    unwind() its undo is skipped when an undo walked before it failed, so
    the next look finds the claim and retries.  LOCAL: its undo releases only what the
    process that did the step holds (descriptors, a child, a thread), so
    unwind() — another process, from a record — has nothing to do there."""
    name: str
    do: Callable[[C], None]
    undo: Callable[[C], None] | None = None
    when: Callable[[C], bool] | None = None
    show: Callable[[C], str | None] | None = None
    claim: bool = False
    local: bool = False


#: where the step lines go (a descriptor); -1: nowhere
_TRACE_FD = -1


def trace_to(fd: int) -> None:
    """Print the steps as they run on FD (`jail -v`); -1 stops it."""
    global _TRACE_FD
    _TRACE_FD = fd


def tracing() -> int:
    """The descriptor step lines go to, or -1: `jail -v`, or LINJAIL_DEBUG=1
    (then stderr)."""
    if _TRACE_FD < 0 and os.environ.get("LINJAIL_DEBUG"):
        return 2
    return _TRACE_FD


def trace(who: str, text: str) -> None:
    """One step line, `jail: WHO: TEXT`, if steps are traced."""
    fd = tracing()
    if fd < 0:
        return
    from ..kernel import libc    # (loaded by the start path already; jls needs no ctypes)
    try:
        libc.write(fd, as_bytes(f"jail: {who}: {text}\n"))
    except OSError:
        pass        # a closed or full stderr does not stop the jail


def applies(step: Step[C], ctx: C) -> bool:
    return step.when is None or step.when(ctx)


def run(table: Sequence[Step[C]], ctx: C, who: str) -> None:
    """Do each step of TABLE that applies, in order; on a failure undo the
    done before it in reverse, then raise.  WHO names the side in the
    step lines ("launcher", "first process")."""
    done: list[Step[C]] = []
    try:
        for step in table:
            if not applies(step, ctx):
                continue
            if tracing() >= 0:
                line = describe(step, ctx)
                if line is not None:
                    trace(who, line)
            step.do(ctx)
            done.append(step)   # a step that fails undoes its own part itself
    except BaseException:
        undo_all(reversed(done), ctx, who, keep_claims=False)
        raise


def describe(step: Step[C], ctx: C) -> str | None:
    """The step's line for `-v`: its name and what SHOW says."""
    if step.show is None:
        return step.name
    detail = step.show(ctx)
    if detail is None:
        return None
    return f"{step.name}: {detail}" if detail else step.name


def undo_all(steps: Iterable[Step[C]], ctx: C, who: str, keep_claims: bool = True) -> bool:
    """Run the undo of each of STEPS (in the order given); True if none failed.
    A failure does not stop the others (but a claim's, with KEEP_CLAIMS:
    Step.claim): what stays is released by the next command that looks."""
    clean = True
    for step in steps:
        if step.undo is None or (keep_claims and step.claim and not clean):
            continue
        trace(who, f"undo {step.name}")
        try:
            step.undo(ctx)
        except Exception:
            clean = False
    return clean


def unwind(table: Sequence[Step[C]], ctx: C, who: str) -> bool:
    """TABLE walked backwards by another process than the one that ran it:
    every undo but the local ones (whether or not its step applied: an
    undo finds nothing to remove then), a claim's only if every undo
    before it succeeded; True if every undo succeeded."""
    return undo_all((s for s in reversed(table) if not s.local), ctx, who)
