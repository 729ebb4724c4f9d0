"""Releasing what a dead jail left on the host (SPEC §7 "State").

A jail ends when its PID 1 exits; the kernel then drops its namespaces (and
with them its mounts and its veth).  What remains on the host — the cgroup
directory, the policy rules, the record — is removed by the next command
that looks, under the registry lock.  Only root can; others just skip it.
"""
from __future__ import annotations

import ipaddress
import os

from . import registry


def reap_dead(records: list[registry.JailRecord]) -> None:
    if os.geteuid() != 0:
        return
    with registry.Lock():
        for rec in records:
            again = registry.read(rec.jid)
            if again is None or again.live():
                continue
            release(again)


def sweep_orphans(strays: list[str]) -> None:
    """Remove files in the records directory that are not records (a writer
    killed between its tmp file and the rename), once their writer is gone.

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
    """Remove the jail cgroups that no record names, that hold no process and
    are older than CLAIM_GRACE: what a launcher killed between claiming its
    JID (cgroup.claim) and writing its record leaves (issue 9: 40 `kill -9`
    during start-up leave nothing).  Only root's default registry does it;
    an empty cgroup cannot be another registry's running jail (rmdir refuses
    a populated one), and the grace covers another launcher's claim window."""
    if os.geteuid() != 0 or registry.state_dir() != registry.DEFAULT_STATE_DIR:
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


def owns_host_side(rec: registry.JailRecord) -> bool:
    """True if REC still holds the host-wide claim on its JID (its cgroup,
    made by cgroup.claim), so the cgroup, veth and rules named after that
    JID are its own.  A record of another registry with the same JID, or
    one whose claim was released and taken again, owns nothing.  Records
    written before claims existed carry no inode: they are believed only in
    the default registry, where no other jail can have their JID."""
    from ..confine import cgroup
    if rec.cgroup and rec.cgroup != cgroup.jail_cgroup(rec.jid):
        return False
    if rec.hostif and rec.hostif != f"ljh{rec.jid}":
        return False
    if rec.cgroup_ino == 0:
        return registry.state_dir() == registry.DEFAULT_STATE_DIR
    return cgroup.claimed(rec.jid, rec.cgroup_ino)


def release(rec: registry.JailRecord) -> None:
    """Undo the host side of a jail whose processes are gone (idempotent).

    The cgroup goes last: while it exists, no other jail can take the JID,
    so the veth and rules named after it are this jail's.  If anything of
    it cannot be removed the record stays, and the next command retries.
    """
    if owns_host_side(rec):
        try:
            if rec.hostif:
                from ..confine import net
                ips = tuple(ipaddress.ip_address(a) for a in rec.ips)
                net.teardown_host(net.HostNet(rec.jid, rec.hostif, ips))
            from ..confine import cglayout
            cglayout.release(rec.jid)     # v1 cgroups an rctl rule made it join
            if rec.cgroup:
                from ..confine import cgroup
                cgroup.remove(rec.cgroup)
        except (OSError, ValueError):
            return
    registry.delete(rec.jid)
