"""The host ids of jails with a user namespace (issue 11): 65536 per jail.

Jail uid/gid N is host uid/gid BASE+N.  BASE is a multiple of 65536 in the
range systemd documents for container ids (UIDS-GIDS.md: 524288 to
1879048191, 0x00080000-0x6FFFFFFF), so a jail's ids never meet the host's
users (below 60000 on Debian), systemd's dynamic users (61184-65519) or
anything of the 16-bit world.  A range is never given when any id of it
appears in the host's /etc/passwd, /etc/group, /etc/subuid or /etc/subgid,
nor while another jail of this registry holds it.

Claims: STATE/uids/BASE, a symlink to the JID that holds it, made under the
registry lock when the JID is allocated (registry.allocate) and removed with
the record (registry.delete); a claim whose jail is no longer live is taken
over, as address claims are.  Each JID first tries its own slot
((JID - 1) mod the number of slots), so jails of registries that do not see
each other (a private LINJAIL_STATE_DIR) still get different ranges while
their JIDs, which are host-wide (the cgroup claim), differ by less than the
number of slots (28664).
"""
from __future__ import annotations

import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable

FIRST = 524288            # 0x00080000
LAST = 1879048191         # 0x6FFFFFFF
SIZE = 65536
SLOTS = (LAST + 1 - FIRST) // SIZE
#: files whose ids a range must not contain (id in field 3, or subid start:count)
HOST_ID_FILES = ("/etc/passwd", "/etc/group")
SUBID_FILES = ("/etc/subuid", "/etc/subgid")


def base_of(slot: int) -> int:
    return FIRST + slot * SIZE


def taken_by_host() -> set[int]:
    """The slots that hold an id of the host's users, groups or subordinate ids."""
    slots: set[int] = set()

    def mark(first: int, count: int) -> None:
        lo, hi = max(first, FIRST), min(first + count - 1, LAST)
        for slot in range((lo - FIRST) // SIZE, (hi - FIRST) // SIZE + 1) if lo <= hi else ():
            slots.add(slot)
    for path in HOST_ID_FILES:
        for fields in _lines(path):
            if len(fields) > 2 and fields[2].isdigit():
                mark(int(fields[2]), 1)
    for path in SUBID_FILES:
        for fields in _lines(path):
            if len(fields) > 2 and fields[1].isdigit() and fields[2].isdigit():
                mark(int(fields[1]), int(fields[2]))
    return slots


def _lines(path: str) -> list[list[str]]:
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []       # (any other error stops the claim: a range must not be guessed)
    return [line.split(":") for line in text.splitlines() if line and line[0] != "#"]


def holder(path: str) -> int | None:
    """The JID a claim symlink names (ranges here, addresses in the registry)."""
    try:
        text = os.readlink(path)
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def claim(jid: int, claims: str, holds: Callable[[int, int], bool]) -> int:
    """A free range for jail JID (caller: the registry lock): its BASE,
    claimed in the directory CLAIMS.  HOLDS(other_jid, base) says whether
    another jail is live and still holds BASE.  OSError(EUSERS) when every
    range is in use."""
    host = taken_by_host()
    start = (jid - 1) % SLOTS
    for i in range(SLOTS):
        slot = (start + i) % SLOTS
        if slot in host:
            continue
        path = os.path.join(claims, str(base_of(slot)))
        while True:
            try:
                os.symlink(str(jid), path)
                return base_of(slot)
            except FileNotFoundError:
                os.makedirs(claims, mode=0o755, exist_ok=True)
            except FileExistsError:
                other = holder(path)
                if other is not None and other != jid and holds(other, base_of(slot)):
                    break                                     # in use: the next slot
                try:
                    os.unlink(path)                           # stale: taken over
                except FileNotFoundError:
                    pass
    raise OSError(87, "no free range of 65536 host ids for a jail (jail.unprivileged_root)")


def release(jid: int, base: int, claims: str) -> None:
    """Drop JID's claim on BASE in CLAIMS (if it still names it)."""
    if not base:
        return
    path = os.path.join(claims, str(base))
    if holder(path) == jid:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
