"""Adding and removing rctl rules: the store, and the running jails they name.

Used by rctl(8) and by `jailctl start` when rc.conf sets rctl_enable (the
counterpart of FreeBSD's /etc/rc.d/rctl, which feeds each line of
rctl_rules to `rctl -a`).
"""
from __future__ import annotations

import errno

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from ..config.rctl import Rule
    from ..state.registry import JailRecord


def load_file(path: str, err: Callable[[str], None]) -> int:
    """rc.d/rctl: `while read var comments`: the first word of each line that
    is not empty or a comment is a rule for `rctl -a`; a missing file adds
    nothing.  Returns the number of rules refused (each told through ERR
    as rctl(8) says it)."""
    from ..config.rctl import MalformedRule, RuleError, expand, parse
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return 0
    except OSError as e:
        err(f"{path}: {e.strerror}")
        return 1
    failures = 0
    for line in lines:
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        try:
            add(parse(expand(words[0])))
        except MalformedRule as e:
            err(str(e))
            failures += 1
        except (RuleError, OSError) as e:
            text = e.text if isinstance(e, RuleError) else (e.strerror or str(e))
            err(f"failed to add rule '{words[0]}': {text}")
            failures += 1
    return failures


def jail_only(flt: Rule) -> None:
    from ..config.rctl import RuleError
    if flt.subject and flt.subject != "jail":
        raise RuleError(0, "only the jail subject is supported on linjail")


def resolve(rule: Rule) -> Rule:
    """A JID names the running jail: rules are kept under its name if it has
    one (FreeBSD's subject id is the jail's name), else under the JID."""
    if rule.id.isascii() and rule.id.isdigit() and len(rule.id.lstrip("0")) <= 10:
        from . import sweep
        rec = sweep.jail(int(rule.id.lstrip("0") or "0"))
        if rec is not None and rec.state == "running":
            return rule.replace(id=rec.name or str(rec.jid))
    return rule


def running(jail_id: str) -> list[JailRecord]:
    from . import sweep
    return [r for r in sweep.jails() if r.state == "running"
            and (r.name == jail_id or str(r.jid) == jail_id)]


def rules_of(rules: list[Rule], rec: JailRecord) -> list[Rule]:
    ids = {str(rec.jid), rec.name} - {""}
    return [r for r in rules if r.subject == "jail" and r.id in ids]


def add(rule: Rule) -> None:
    from ..config.rctl import check_rule, replaces
    from ..confine import limits
    from ..state import rctl as store
    rule = check_rule(rule)
    limits.check_linux(rule)
    limits.check_host(rule)
    rule = resolve(rule)
    with store.Lock():
        old = store.load()
        new = [r for r in old if not replaces(r, rule)] + [rule]
        done: list[JailRecord] = []
        try:
            for rec in running(rule.id):
                limits.update_running(rec, rules_of(new, rec))
                done.append(rec)
        except BaseException:
            for rec in done + running(rule.id)[len(done):len(done) + 1]:
                try:
                    limits.update_running(rec, rules_of(old, rec))
                except OSError:
                    pass
            raise
        store.save(new)
    for rec in done:
        if limits.plan(rules_of(new, rec)).watch:
            from ..confine import rctlwatch
            rctlwatch.ensure(rec)


def remove(flt: Rule) -> None:
    from ..config.rctl import RuleError
    from ..confine import limits
    from ..state import rctl as store
    jail_only(flt)
    flt = resolve(flt)
    with store.Lock():
        old = store.load()
        keep = [r for r in old if not r.matches(flt)]
        if len(keep) == len(old):
            raise RuleError(errno.ESRCH)
        store.save(keep)
        gone = {r.id for r in old if r.matches(flt)}
        for jail_id in sorted(gone):
            for rec in running(jail_id):
                limits.update_running(rec, rules_of(keep, rec))
