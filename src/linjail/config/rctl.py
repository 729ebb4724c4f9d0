"""FreeBSD's rctl(8) rules: parsing, printing, matching (no root, no kernel).

A rule is `subject:subject-id:resource:action=amount/per`; a filter is the
same text with any part left empty or cut short (`jail:www`, `::`).  The
facts below come from FreeBSD's usr.bin/rctl/rctl.c, sys/kern/kern_rctl.c
and kern_racct.c:

- rctl(8) expands the amount with expand_number(3) (suffixes b k m g t p e,
  any case, powers of 1024) before the kernel sees the rule; the kernel
  reads the five parts with strsep(":"), strsep(":"), strsep(":"),
  strsep("=/"), strsep("/"), names compared without case.
- Subject aliases (u, g, p, l, c, class, j) are rctl(8)'s; `per` defaults to
  the subject; a rule is printed as `subject:id:resource:action=amount`,
  with `/per` only when per differs from the subject.
- deny is refused (EOPNOTSUPP) for a resource that is not deniable, except
  memoryuse and pcpu; throttle only for the decaying resources, and never
  for pcpu; `/process` never for the "sloppy" resources.
- A deny rule replaces the deny rules that differ only by amount; another
  rule replaces only its exact duplicate.

Only the `jail` subject exists on linjail (SPEC §7, issue 12); the others
are recognised so that they can be refused in one clear line.
"""
from __future__ import annotations

import errno

from ..record import Record, record

SUBJECTS = ("process", "user", "loginclass", "jail")
#: rctl(8)'s abbreviations (expand_rule)
SUBJECT_ALIASES = {"u": "user", "g": "group", "p": "process", "l": "loginclass",
                   "c": "loginclass", "class": "loginclass", "j": "jail"}

# kern_racct.c racct_types[] flags
DENIABLE, DECAYING, SLOPPY, MILLIONS = 1, 2, 4, 8

#: every resource in FreeBSD's order (RACCT_CPU ... RACCT_WRITEIOPS): `rctl -u`
#: prints them in this order
RESOURCES: dict[str, int] = {
    "cputime": MILLIONS,
    "datasize": DENIABLE,
    "stacksize": DENIABLE,
    "coredumpsize": DENIABLE,
    "memoryuse": 0,
    "memorylocked": DENIABLE,
    "maxproc": DENIABLE,
    "openfiles": DENIABLE,
    "vmemoryuse": DENIABLE,
    "pseudoterminals": DENIABLE | SLOPPY,
    "swapuse": DENIABLE | SLOPPY,
    "nthr": DENIABLE,
    "msgqqueued": DENIABLE | SLOPPY,
    "msgqsize": DENIABLE | SLOPPY,
    "nmsgq": DENIABLE | SLOPPY,
    "nsem": DENIABLE | SLOPPY,
    "nsemop": DENIABLE,
    "nshm": DENIABLE | SLOPPY,
    "shmsize": DENIABLE | SLOPPY,
    "wallclock": MILLIONS,
    "pcpu": DECAYING | DENIABLE | MILLIONS,
    "readbps": DECAYING,
    "writebps": DECAYING,
    "readiops": DECAYING,
    "writeiops": DECAYING,
}

#: sys/rctl.h: the signal actions, named as kern_rctl.c names them
SIGNALS: dict[str, int] = {
    "sighup": 1, "sigint": 2, "sigquit": 3, "sigill": 4, "sigtrap": 5, "sigabrt": 6,
    "sigemt": 0, "sigfpe": 8, "sigkill": 9, "sigbus": 7, "sigsegv": 11, "sigsys": 31,
    "sigpipe": 13, "sigalrm": 14, "sigterm": 15, "sigurg": 23, "sigstop": 19,
    "sigtstp": 20, "sigchld": 17, "sigttin": 21, "sigttou": 22, "sigio": 29,
    "sigxcpu": 24, "sigxfsz": 25, "sigvtalrm": 26, "sigprof": 27, "sigwinch": 28,
    "siginfo": 0, "sigusr1": 10, "sigusr2": 12, "sigthr": 0,
}   # values are Linux signal numbers; 0: a BSD signal Linux does not have
ACTIONS = (*SIGNALS, "deny", "log", "devctl", "throttle")


class RuleError(Exception):
    """A rule the kernel would refuse: `errno` gives FreeBSD's strerror, or
    `text` replaces it with a linjail reason."""

    def __init__(self, err: int, text: str = "") -> None:
        super().__init__(text or _strerror(err))
        self.errno = err
        self.text = text or _strerror(err)


class MalformedRule(Exception):
    """What rctl(8) itself refuses before the kernel sees the rule."""


def _strerror(err: int) -> str:
    import os
    return os.strerror(err)


@record()
class Rule(Record):
    """A rule or a filter; "" / None where a filter leaves a part open."""
    subject: str = ""
    id: str = ""
    resource: str = ""
    action: str = ""
    amount: int | None = None
    per: str = ""

    def text(self, human: bool = False) -> str:
        """kern_rctl.c rctl_rule_to_sbuf: per only when it differs; HUMAN:
        the amount as `rctl -h` shows it (humanize_amount)."""
        amount = "" if self.amount is None else \
            humanize_number(self.amount) if human else str(self.amount)
        out = f"{self.subject}:{self.id}:{self.resource}:{self.action}={amount}"
        if self.per and self.per != self.subject:
            out += f"/{self.per}"
        return out

    def matches(self, flt: "Rule") -> bool:
        """kern_rctl.c rctl_rule_matches: every part the filter sets must agree."""
        return ((not flt.subject or flt.subject == self.subject)
                and (not flt.id or flt.id == self.id)
                and (not flt.resource or flt.resource == self.resource)
                and (not flt.action or flt.action == self.action)
                and (flt.amount is None or flt.amount == self.amount)
                and (not flt.per or flt.per == self.per))

    def fully_specified(self) -> bool:
        return bool(self.subject and self.id and self.resource and self.action
                    and self.amount is not None and self.per)


def expand_number(text: str) -> int:
    """libutil expand_number(3): a decimal number, then b k m g t p e (any case)."""
    digits = text
    i = 0
    if digits[:1] in ("+", "-"):
        i = 1
    while i < len(digits) and digits[i].isdigit() and digits[i].isascii():
        i += 1
    if i == 0 or not digits[:i].lstrip("+-"):
        raise ValueError(text)
    if len(digits[:i].lstrip("+-").lstrip("0")) > 19:
        raise ValueError(text)     # >= 2**63; int() refuses 4300 digits and more
    number = int(digits[:i])
    rest = digits[i:]
    if not rest:
        return number
    if len(rest) != 1 or rest.lower() not in "bkmgtpe":
        raise ValueError(text)
    number <<= 10 * "bkmgtpe".index(rest.lower())
    if number >= 1 << 63:
        raise ValueError(text)
    return number


def humanize_number(num: int) -> str:
    """libutil humanize_number(3) with a 6-byte buffer, HN_AUTOSCALE,
    HN_DECIMAL | HN_NOSPACE, no suffix: what `rctl -h` prints."""
    prefixes = ("", "K", "M", "G", "T", "P", "E")
    divisor, deccut = 1024, 973
    sign = -1 if num < 0 else 1
    quotient = -num if num < 0 else num
    baselen = 1 + (2 if sign < 0 else 1)      # the (empty) prefix, sign, digit
    maxval = 10 ** (6 - baselen)
    remainder = 0
    i = 0
    while (quotient >= maxval or (quotient == maxval - 1 and
                                  (remainder >= deccut or remainder >= divisor // 2))) \
            and i < 6:
        remainder = quotient % divisor
        quotient //= divisor
        i += 1
    if ((quotient == 9 and remainder < deccut) or quotient < 9) and i > 0:
        s1 = quotient + (remainder * 10 + divisor // 2) // divisor // 10
        s2 = ((remainder * 10 + divisor // 2) // divisor) % 10
        return f"{sign * s1}.{s2}{prefixes[i]}"
    return f"{sign * (quotient + (remainder + divisor // 2) // divisor)}{prefixes[i]}"


def _strsep(text: str | None, delims: str) -> tuple[str | None, str | None]:
    """strsep(3): the token before the first delimiter, and the rest (None
    when no delimiter was found)."""
    if text is None:
        return None, None
    for i, ch in enumerate(text):
        if ch in delims:
            return text[:i], text[i + 1:]
    return text, None


def expand(text: str) -> str:
    """rctl(8) expand_rule: subject aliases, then the amount expanded.

    Raises MalformedRule with rctl(8)'s own words.
    """
    subject, rest = _strsep(text, ":")
    textid, rest = _strsep(rest, ":")
    if textid is None:
        raise MalformedRule(f"malformed rule '{text}': missing subject")
    assert subject is not None
    subject = SUBJECT_ALIASES.get(subject.lower(), subject)
    resolved = f"{subject}:{textid}:{rest or ''}"
    subj, r = _strsep(resolved, ":")
    sid, r = _strsep(r, ":")
    resource, r = _strsep(r, ":")
    action, r = _strsep(r, "=/")
    amount, per = _strsep(r, "/")
    if not amount:
        return resolved
    try:
        num = expand_number(amount)
    except ValueError:
        raise MalformedRule(f"malformed rule '{text}': invalid numeric value "
                            f"'{amount}'") from None
    out = f"{subj}:{sid}:{resource}:{action}={num}"
    return out if per is None else f"{out}/{per}"


def _lookup(word: str, table: tuple[str, ...] | dict[str, int]) -> str:
    low = word.lower()
    if low in table:
        return low
    raise RuleError(errno.EINVAL)


def parse(text: str) -> Rule:
    """kern_rctl.c rctl_string_to_rule, on an already expanded rule or filter."""
    subject, rest = _strsep(text, ":")
    sid, rest = _strsep(rest, ":")
    resource, rest = _strsep(rest, ":")
    action, rest = _strsep(rest, "=/")
    amount, per = _strsep(rest, "/")
    rule_subject = _lookup(subject, SUBJECTS) if subject else ""
    if sid and not rule_subject:
        raise RuleError(errno.EINVAL)
    value: int | None = None
    if amount:
        if not (amount.isdigit() and amount.isascii()):
            raise RuleError(errno.EINVAL)
        if len(amount.lstrip("0")) > 19:     # int() refuses 4300 digits and more
            raise RuleError(errno.ERANGE)
        value = int(amount)
        if value >= 1 << 63:
            raise RuleError(errno.ERANGE)
    return Rule(subject=rule_subject, id=sid or "",
                resource=_lookup(resource, RESOURCES) if resource else "",
                action=_lookup(action, ACTIONS) if action else "",
                amount=value, per=_lookup(per, SUBJECTS) if per else "")


def check_rule(rule: Rule) -> Rule:
    """sys_rctl_add_rule and rctl_rule_add: `per` defaults to the subject;
    the rule must be complete and make sense.  Returns the rule with per."""
    if not rule.per and rule.subject:
        rule = rule.replace(per=rule.subject)
    if not rule.fully_specified():
        raise RuleError(errno.EINVAL)
    flags = RESOURCES[rule.resource]
    if rule.action == "deny" and not flags & DENIABLE and rule.resource != "memoryuse":
        raise RuleError(errno.EOPNOTSUPP)
    if rule.action == "throttle" and (not flags & DECAYING or rule.resource == "pcpu"):
        raise RuleError(errno.EOPNOTSUPP)
    if rule.per == "process" and flags & SLOPPY:
        raise RuleError(errno.EOPNOTSUPP)
    return rule


def replaces(old: Rule, new: Rule) -> bool:
    """rctl_rule_add: a deny rule drops the deny rules that differ only by
    amount; any other rule drops its exact duplicate."""
    if new.action == "deny":
        return old.matches(new.replace(amount=None))
    return old == new
