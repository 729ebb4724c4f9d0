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
    """Remove what no record names any more (a launcher killed with -9 while
    writing a record leaves its tmp file and maybe host-side objects):
    unreadable files in the records directory whose writer is gone, policy
    rules of jail veths that have no live record, and empty jail cgroups."""
    if os.geteuid() != 0:
        return
    with registry.Lock():
        live = {r.jid for r in registry.all_records() if r.live()}
        for name in strays:
            writer = name.rsplit(".", 2)[-2] if name.endswith(".tmp") else ""
            if writer.isdigit() and registry.starttime(int(writer)) is not None:
                continue          # still being written
            try:
                os.unlink(os.path.join(registry.state_dir(), "jails", name))
            except OSError:
                pass
        _sweep_rules(live)
        _sweep_cgroups(live)


def _sweep_rules(live: set[int]) -> None:
    from ..confine import net
    from ..kernel.netlink import Netlink
    try:
        with Netlink() as nl:
            for family, iifname, table, priority in nl.rules():
                jid = iifname[3:]
                if (table, priority) == (net.JAIL_TABLE, net.RULE_PRIORITY) and \
                        iifname.startswith("ljh") and jid.isdigit() and int(jid) not in live:
                    nl.delete_rule(family, iifname, table, priority)
    except OSError:
        pass


def _sweep_cgroups(live: set[int]) -> None:
    from ..confine import cgroup
    try:
        top = os.path.dirname(cgroup.jail_cgroup(0))
        names = os.listdir(top)
    except OSError:
        return
    for name in names:
        if name.isdigit() and int(name) not in live:
            path = os.path.join(top, name)
            if not cgroup.pids(path):
                try:
                    os.rmdir(path)
                except OSError:
                    pass


def release(rec: registry.JailRecord) -> None:
    """Undo the host side of a jail whose processes are gone (idempotent)."""
    if rec.hostif:
        from ..confine import net
        ips = tuple(ipaddress.ip_address(a) for a in rec.ips)
        try:
            net.teardown_host(net.HostNet(rec.jid, rec.hostif, ips))
        except OSError:
            pass
    if rec.cgroup:
        from ..confine import cgroup
        try:
            cgroup.remove(rec.cgroup)
        except OSError:
            pass
    registry.delete(rec.jid)
