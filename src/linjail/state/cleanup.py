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
