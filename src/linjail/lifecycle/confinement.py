"""The confinement every process of a jail gets before it execs: the jail's
PID 1 (the reaper) and every `jexec`.

prepare() runs on the host side (it may read or write the seccomp cache under
the state directory); apply() runs in the process about to exec, possibly
after pivot_root.  Order matters in apply(): the bounding set is cut, then
the seccomp filter is loaded while CAP_SYS_ADMIN is still in the effective
set (no no_new_privs, so setuid programs inside the jail keep working); at
execve root's capabilities become the bounding set.
"""
from __future__ import annotations

import os

from ..model import Knobs
from ..record import Record, record


@record()
class Confinement(Record):
    keep: frozenset[int]
    bpf: bytes


def prepare(knobs: Knobs) -> Confinement:
    from ..confine import caps, seccomp
    caps.last_cap()     # read /proc now: apply() may run in a jail without it
    return Confinement(caps.keep_set(knobs), seccomp.program(knobs))


@record()
class ExecPlan(Record):
    """What jexec's fast path (reaper/jexec_fast.c) executes for a jail."""
    #: the mask of the capabilities kept
    caps: int
    #: the file of the cached seccomp program (loaded under the cache's rules)
    seccomp: str
    #: the jail's v1 cgroups, where a jexec joins those that exist while an
    #: rctl rule exists (limits.attach): the fast path leaves that to Python
    v1: tuple[str, ...]


def exec_plan(knobs: Knobs, c: Confinement, jid: int) -> ExecPlan | None:
    """What a process in C applies for KNOBS to be confined as C says.
    None when the program has no file (a state directory that cannot be
    written): then Python does every jexec."""
    from ..confine import caps, cglayout, seccomp
    path = seccomp.cache_path(knobs)
    if not os.path.isfile(path):
        return None
    return ExecPlan(caps.mask(c.keep), path, tuple(cglayout.v1_paths(jid)))


def apply(c: Confinement) -> None:
    from ..confine import caps, seccomp
    caps.drop(c.keep)
    seccomp.install(c.bpf)
