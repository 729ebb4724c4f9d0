"""rctl(8), FreeBSD's resource limits, for the jail subject (issue 12).

  rctl [-h] [-n]               every rule
  rctl [-h] [-n] filter ...    the rules matching each filter
  rctl -a rule ...             add (applied at once to a running jail, else at its start)
  rctl -r filter ...           remove every rule matching
  rctl [-h] -u filter ...      the jail's resource usage, resource=value lines
  rctl [-h] -l filter ...      the rules that apply to a process (process:PID)

As FreeBSD's: each argument is handled on its own, a failure prints one
line (`rctl: failed to add rule 'R': reason`) and the exit status is the
number of failures.
"""
from __future__ import annotations

import errno
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config.rctl import Rule
    from ..state.registry import JailRecord

from ..lifecycle import rctlrules
from ..lifecycle.rctlrules import add, jail_only, remove, resolve, rules_of

USAGE = "usage: rctl [ -h ] [-a rule | -l filter | -r filter | -u filter | filter]"


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("rctl", _rctl, argv)


def _warn(text: str) -> None:
    sys.stdout.flush()
    from ..errors import one_line
    sys.stderr.write(one_line(f"rctl: {text}") + "\n")
    sys.stderr.flush()


def _rctl(args: list[str]) -> int:
    from ..errors import JailError, UsageError
    from ..config.getopt import GetoptError, getopt
    try:
        opts, rest = getopt(args, "ahlnru")
    except GetoptError as e:
        _warn(str(e))
        raise UsageError(USAGE) from None
    flags = {o[1] for o, _ in opts}
    ops = [f for f in "alru" if f in flags]
    if len(ops) > 1:
        raise JailError("at most one of -a, -l, -r, or -u may be specified")
    op = ops[0] if ops else ""
    human = "h" in flags
    if not rest:
        if op:
            raise UsageError(USAGE)
        rest = ["::"]
    from ..config.rctl import MalformedRule, RuleError, expand, parse
    failures = 0
    for arg in rest:
        try:
            text = expand(arg)
        except MalformedRule as e:
            _warn(str(e))
            failures += 1
            continue
        what = {"a": "add rule", "r": "remove rule", "u": "show resource consumption for",
                "l": "get limits for", "": "show rules for"}[op]
        try:
            if not _privileged():
                raise RuleError(errno.EPERM)
            if op == "a":
                add(parse(text))
            elif op == "r":
                remove(parse(text))
            elif op == "u":
                _usage(parse(text), human)
            elif op == "l":
                _limits(parse(text), human)
            else:
                _show(parse(text), human)
        except RuleError as e:
            _warn(f"failed to {what} '{arg}': {e.text}")
            failures += 1
        except OSError as e:
            _warn(f"failed to {what} '{arg}': {e.strerror or e}")
            failures += 1
    return failures


def _privileged() -> bool:
    """rctl_add_rule and the others need PRIV_RCTL_*: host root only."""
    from ._main import jailed
    return os.geteuid() == 0 and not jailed()


def _print_rules(rules: list[Rule], human: bool) -> None:
    for r in reversed(rules):           # newest first, as the kernel's lists
        sys.stdout.write(r.text(human) + "\n")


def _show(flt: Rule, human: bool) -> None:
    from ..state import rctl as store
    jail_only(flt)
    flt = resolve(flt)
    _print_rules([r for r in store.load() if r.matches(flt)], human)


def _usage(flt: Rule, human: bool) -> None:
    from ..config.rctl import RuleError, humanize_number
    from ..confine import racct
    jail_only(flt)
    if flt.subject != "jail" or not flt.id:
        raise RuleError(errno.EINVAL)
    flt = resolve(flt)
    running = rctlrules.running(flt.id)
    values = racct.usage(running[0] if running else None)
    from ..config.rctl import RESOURCES
    for name in RESOURCES:
        value = values.get(name, 0)
        sys.stdout.write(f"{name}={humanize_number(value) if human else value}\n")


def _limits(flt: Rule, human: bool) -> None:
    """-l process:PID: the rules that apply to that process (those of its jail)."""
    from ..config.rctl import RuleError
    from ..state import rctl as store
    if not flt.subject:
        raise RuleError(errno.EINVAL)
    if flt.subject != "process":
        raise RuleError(errno.EOPNOTSUPP)
    if not flt.id or not (flt.id.isascii() and flt.id.isdigit()):
        raise RuleError(errno.EINVAL)
    if len(flt.id.lstrip("0")) > 10:
        return                  # no such process (int() refuses 4300 digits)
    jid = _jail_of(int(flt.id.lstrip("0") or "0"))
    if jid is None:
        return
    from ..lifecycle import sweep
    rec = sweep.jail(jid)
    if rec is None:
        return
    _print_rules(rules_of(store.load(), rec), human)


def _jail_of(pid: int) -> int | None:
    """The JID whose cgroup holds PID (its cgroup2 line), None if none."""
    from ..config.rctl import RuleError
    try:
        with open(f"/proc/{pid}/cgroup") as f:
            lines = f.read().splitlines()
    except OSError:
        raise RuleError(errno.ESRCH) from None
    from ..confine import cglayout
    for line in lines:
        if line.startswith("0::"):
            parts = line[3:].strip("/").split("/")
            for i, part in enumerate(parts[:-1]):
                if part == cglayout.SUBTREE and parts[i + 1].isdigit():
                    return int(parts[i + 1])
    return None
