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

USAGE = "usage: rctl [ -h ] [-a rule | -l filter | -r filter | -u filter | filter]"


def main(argv: list[str] | None = None) -> int:
    from ._main import run
    return run("rctl", _rctl, argv)


def _warn(text: str) -> None:
    sys.stdout.flush()
    sys.stderr.write(f"rctl: {text}\n")
    sys.stderr.flush()


def _rctl(args: list[str]) -> int:
    from ..errors import JailError, UsageError
    from .getopt import GetoptError, getopt
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
                _add(parse(text))
            elif op == "r":
                _remove(parse(text))
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


def _jail_only(flt: Rule) -> None:
    from ..config.rctl import RuleError
    if flt.subject and flt.subject != "jail":
        raise RuleError(0, "only the jail subject is supported on linjail")


def _resolve(rule: Rule) -> Rule:
    """A JID names the running jail: rules are kept under its name if it has
    one (FreeBSD's subject id is the jail's name), else under the JID."""
    if rule.id.isdigit():
        from ..state import registry
        rec = registry.lookup(int(rule.id))
        if rec is not None and rec.state == "running":
            return rule.replace(id=rec.name or str(rec.jid))
    return rule


def _running(jail_id: str) -> list[JailRecord]:
    from ..state import registry
    return [r for r in registry.live_jails() if r.state == "running"
            and (r.name == jail_id or str(r.jid) == jail_id)]


def _rules_of(rules: list[Rule], rec: JailRecord) -> list[Rule]:
    ids = {str(rec.jid), rec.name} - {""}
    return [r for r in rules if r.subject == "jail" and r.id in ids]


def _add(rule: Rule) -> None:
    from ..config.rctl import check_rule, replaces
    from ..confine import limits
    from ..state import rctl as store
    rule = check_rule(rule)
    limits.check_linux(rule)
    limits.check_host(rule)
    rule = _resolve(rule)
    with store.Lock():
        old = store.load()
        new = [r for r in old if not replaces(r, rule)] + [rule]
        done: list[JailRecord] = []
        try:
            for rec in _running(rule.id):
                limits.update_running(rec, _rules_of(new, rec))
                done.append(rec)
        except BaseException:
            for rec in done + _running(rule.id)[len(done):len(done) + 1]:
                try:
                    limits.update_running(rec, _rules_of(old, rec))
                except OSError:
                    pass
            raise
        store.save(new)
    for rec in done:
        if limits.plan(_rules_of(new, rec)).watch:
            from ..lifecycle import rctlwatch
            rctlwatch.ensure(rec)


def _remove(flt: Rule) -> None:
    from ..config.rctl import RuleError
    from ..confine import limits
    from ..state import rctl as store
    _jail_only(flt)
    flt = _resolve(flt)
    with store.Lock():
        old = store.load()
        keep = [r for r in old if not r.matches(flt)]
        if len(keep) == len(old):
            raise RuleError(errno.ESRCH)
        store.save(keep)
        gone = {r.id for r in old if r.matches(flt)}
        for jail_id in sorted(gone):
            for rec in _running(jail_id):
                limits.update_running(rec, _rules_of(keep, rec))


def _print_rules(rules: list[Rule], human: bool) -> None:
    for r in reversed(rules):           # newest first, as the kernel's lists
        sys.stdout.write(r.text(human) + "\n")


def _show(flt: Rule, human: bool) -> None:
    from ..state import rctl as store
    _jail_only(flt)
    flt = _resolve(flt)
    _print_rules([r for r in store.load() if r.matches(flt)], human)


def _usage(flt: Rule, human: bool) -> None:
    from ..config.rctl import RuleError, humanize_number
    from ..confine import racct
    _jail_only(flt)
    if flt.subject != "jail" or not flt.id:
        raise RuleError(errno.EINVAL)
    flt = _resolve(flt)
    running = _running(flt.id)
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
    if not flt.id or not flt.id.isdigit():
        raise RuleError(errno.EINVAL)
    jid = _jail_of(int(flt.id))
    if jid is None:
        return
    from ..state import registry
    rec = registry.lookup(jid)
    if rec is None:
        return
    _print_rules(_rules_of(store.load(), rec), human)


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
