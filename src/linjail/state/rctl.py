"""The rctl rules in force: FreeBSD keeps them in the kernel, we keep them here.

STATE/rctl/rules holds one rule per line in the form `rctl` prints (amounts
expanded), oldest first; it is replaced atomically under STATE/rctl/lock.
Like FreeBSD's, the rules live until the next boot (rc.conf's rctl_rules
loads them again at `jailctl start`); unlike the jail records they carry no
boot id: a rule names a jail, not a process.  After a reboot the state
directory may still hold them (/run is not a tmpfs here): `jailctl start`
reloads /etc/rctl.conf on top, as rc.d/rctl does.
"""
from __future__ import annotations

import fcntl
import os

from ..fsutil import atomic_write
from . import registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..config.rctl import Rule


def _dir() -> str:
    return os.path.join(registry.state_dir(), "rctl")


def rules_path() -> str:
    return os.path.join(_dir(), "rules")


class Lock:
    """flock on STATE/rctl/lock: one writer of the rules at a time (not the
    registry lock: applying a rule looks jails up, which takes that one)."""

    def __enter__(self) -> "Lock":
        os.makedirs(_dir(), mode=0o755, exist_ok=True)
        self.fd = os.open(os.path.join(_dir(), "lock"),
                          os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def exists() -> bool:
    """Whether any rule is stored: the start and jexec paths ask this before
    they import anything of rctl (the file is removed with its last rule)."""
    return os.path.exists(rules_path())


def load() -> list[Rule]:
    """Every stored rule, oldest first; a line that no longer parses is skipped."""
    from ..config.rctl import parse
    try:
        with open(rules_path(), "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return []
    out = []
    for line in data.decode("utf-8", "replace").splitlines():
        try:
            rule = parse(line)
        except Exception:
            continue
        out.append(rule if rule.per else rule.replace(per=rule.subject))
    return out


def save(rules: list[Rule]) -> None:
    os.makedirs(_dir(), mode=0o755, exist_ok=True)
    if not rules:
        try:
            os.unlink(rules_path())
        except FileNotFoundError:
            pass
        return
    atomic_write(rules_path(), "".join(r.text() + "\n" for r in rules).encode())


def for_jail(name: str, jid: int) -> list[Rule]:
    """The rules whose subject id is the jail's name or its JID (oldest first).

    The start path calls this for every jail: one open() of a file that
    usually does not exist.
    """
    if not exists():
        return []
    ids = {str(jid)}
    if name:
        ids.add(name)
    return [r for r in load() if r.subject == "jail" and r.id in ids]
