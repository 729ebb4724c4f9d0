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

An OCI container's config.json names its own mappings (oci/config.py): the
host ids they use are claimed as they are, STATE/uids/FIRST-LAST (a symlink
to the JID, under the same lock), after checking that no live jail holds
any of them (a slot or another container's range); an automatic range
skips every slot such a claim overlaps.  Host id 0 is never given to a
jail (config.py refuses it).
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


def claim(jid: int, claims: str, holds: Callable[[int, int, int], bool]) -> int:
    """A free range for jail JID (caller: the registry lock): its BASE,
    claimed in the directory CLAIMS.  HOLDS(other_jid, first, count) says
    whether another jail is live and still holds those ids.
    OSError(EUSERS) when every range is in use."""
    host = taken_by_host()
    for first, count, other in _range_claims(claims):
        if other is not None and other != jid and holds(other, first, count):
            lo, hi = max(first, FIRST), min(first + count - 1, LAST)
            host.update(range((lo - FIRST) // SIZE, (hi - FIRST) // SIZE + 1)
                        if lo <= hi else ())
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
                if other is not None and other != jid and holds(other, base_of(slot), SIZE):
                    break                                     # in use: the next slot
                try:
                    os.unlink(path)                           # stale: taken over
                except FileNotFoundError:
                    pass
    raise OSError(87, "no free range of 65536 host ids for a jail (jail.unprivileged_root)")


def release(jid: int, base: int, claims: str, ranges: bool = False) -> None:
    """Drop JID's claim on BASE in CLAIMS (if it still names it); RANGES:
    its claims of a config's own host ids instead (claim_ranges)."""
    if not base:
        return
    names = [f"{first}-{first + count - 1}" for first, count, other in _range_claims(claims)
             if other == jid] if ranges else [str(base)]
    for name in names:
        path = os.path.join(claims, name)
        if holder(path) == jid:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def _range_claims(claims: str) -> list[tuple[int, int, int | None]]:
    """The claims of a config's own host ids in CLAIMS: (first, count, holder)."""
    try:
        names = os.listdir(claims)
    except OSError:
        return []
    out = []
    for name in names:
        lo, dash, hi = name.partition("-")
        if dash and lo.isdigit() and hi.isdigit() and int(lo) <= int(hi):
            out.append((int(lo), int(hi) - int(lo) + 1,
                        holder(os.path.join(claims, name))))
    return out


def merged(ranges: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """RANGES (first, count) as the fewest disjoint ranges, in order."""
    out: list[tuple[int, int]] = []
    for first, count in sorted(r for r in ranges if r[1] > 0):
        if out and first <= out[-1][0] + out[-1][1]:
            last = max(out[-1][0] + out[-1][1], first + count)
            out[-1] = (out[-1][0], last - out[-1][0])
        else:
            out.append((first, count))
    return out


def claim_ranges(jid: int, ranges: list[tuple[int, int]], claims: str,
                 holds: Callable[[int, int, int], bool]) -> None:
    """Claim the host ids RANGES (first, count) of an OCI config for jail
    JID (caller: the registry lock).  OSError(EUSERS) naming the first id
    another live jail holds, nothing claimed then."""
    wanted = merged(ranges)
    held: list[tuple[int, int, int]] = []
    for first, count, other in _range_claims(claims):
        if other is not None and other != jid:
            held.append((first, count, other))
    try:
        names = os.listdir(claims)
    except OSError:
        names = []
    for name in names:
        if name.isdigit():
            other = holder(os.path.join(claims, name))
            if other is not None and other != jid:
                held.append((int(name), SIZE, other))
    for first, count, other in held:
        for lo, n in wanted:
            if lo < first + count and first < lo + n and holds(other, first, count):
                at = max(lo, first)
                raise OSError(87, f"host id {at} belongs to jail {other}: two jails never "
                              f"share host ids")
    made: list[str] = []
    try:
        for lo, n in wanted:
            path = os.path.join(claims, f"{lo}-{lo + n - 1}")
            while True:
                try:
                    os.symlink(str(jid), path)
                    made.append(path)
                    break
                except FileNotFoundError:
                    os.makedirs(claims, mode=0o755, exist_ok=True)
                except FileExistsError:
                    os.unlink(path)                  # stale (checked above): taken over
    except BaseException:
        for path in made:
            os.unlink(path)
        raise
