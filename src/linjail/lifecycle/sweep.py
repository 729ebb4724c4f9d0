"""The sweep: releasing what dead jails left (SPEC §7 "State").

A jail ends when its PID 1 exits; the kernel then drops its namespaces (and
with them its mounts and its veth).  What remains on the host — the cgroup
directory, the policy rules, the record — is released by the next command
that looks, under the registry lock, through the one teardown
(start.release: the host-side steps walked backwards from the record).
Only root can; others just skip it.

The registry itself is data: the commands (jls, jexec, jail, jailctl,
rctl) read it through the functions here, which sweep what they read:
jails() where they list jails, jail(JID) and jail_named(NAME) where they
look one up.
"""
from __future__ import annotations

import os

from ..state import registry


def jails() -> list[registry.JailRecord]:
    """The live jails, newest first; what the dead ones left is released, as
    are stray files and unnamed claims (one read of the records for both)."""
    strays: list[str] = []
    live, dead = registry.scan(strays)
    named = {rec.jid for rec in live + dead}
    sweep_claims(named)
    strays += [os.path.join("..", name) for name in _state_tmp_files()]
    if dead or strays:
        # a jail that ended, or a writer killed between its tmp file and the
        # rename: release what is no longer anybody's
        reap_dead(dead)
        sweep_orphans(strays)
    return live


def jail(jid: int) -> registry.JailRecord | None:
    """Jail JID's record if it is live; released if it is dead."""
    rec = registry.read(jid)
    if rec is None:
        return None
    if not rec.live():
        reap_dead([rec])
        return None
    return rec


def jail_named(name: str) -> registry.JailRecord | None:
    for rec in jails():
        if rec.name == name:
            return rec
    return None


def reap_dead(records: list[registry.JailRecord]) -> None:
    if os.geteuid() != 0:
        return
    # (here: the start path's modules are loaded only when a jail is released)
    from .start import release
    with registry.Lock():
        for rec in records:
            again = registry.read(rec.jid)
            if again is None or again.live():
                continue
            release(again)


def _state_tmp_files() -> list[str]:
    """The tmp files in the state directory itself (the JID counter's, the
    global knobs'): a writer's between its write and its rename."""
    try:
        return [n for n in os.listdir(registry.state_dir()) if n.endswith(".tmp")]
    except OSError:
        return []


def sweep_orphans(strays: list[str]) -> None:
    """Remove files in the records directory that are not records, and tmp
    files in the state directory ("../NAME"), left by a writer killed
    between its tmp file and the rename, once their writer is gone.

    Nothing else: host objects are released only through the record that
    names them (a jail's record names its cgroup and veth before they
    exist), never because this registry does not know them — another
    registry (a private LINJAIL_STATE_DIR) may own them (issue 16, item 12).
    """
    if os.geteuid() != 0:
        return
    with registry.Lock():
        for name in strays:
            writer = name.rsplit(".", 2)[-2] if name.endswith(".tmp") else ""
            if writer.isdigit() and registry.starttime(int(writer)) is not None:
                continue          # still being written
            try:
                os.unlink(os.path.join(registry.state_dir(), "jails", name))
            except OSError:
                pass


#: a claim (a jail cgroup) no record names is left alone this long: the
#: launcher that made it writes the record milliseconds later
CLAIM_GRACE = 10.0


def sweep_claims(named: set[int]) -> None:
    """Remove what a launcher killed between its claims and its record
    leaves (issue 9: 40 `kill -9` during start-up leave nothing):
    - address and id-range claims naming a JID that has no record (root, in
      any registry; checked again under the lock, which a claim and its
      record are made under together);
    - in root's default registry only, the jail cgroups that no record
      names, that hold no process and are older than CLAIM_GRACE (JIDs are
      claimed by cgroup, before the record: an empty cgroup cannot be
      another registry's running jail, as rmdir refuses a populated one, and
      the grace covers another launcher's claim window)."""
    if os.geteuid() != 0:
        return
    dead = registry.dead_claims(named)
    if dead:
        registry.drop_dead_claims(dead)
    if registry.state_dir() != registry.DEFAULT_STATE_DIR:
        return
    import time
    from ..confine import cgroup
    base = os.path.dirname(cgroup.jail_cgroup(0))
    try:
        names = os.listdir(base)
    except OSError:
        return
    now = time.time()
    for name in names:
        if not name.isdigit() or int(name) in named:
            continue
        path = os.path.join(base, name)
        try:
            if now - os.stat(path).st_ctime < CLAIM_GRACE or cgroup.pids(path):
                continue
            os.rmdir(path)
        except OSError:
            pass
