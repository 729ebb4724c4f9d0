"""`jail -m ip4.addr=... ip6.addr=...`: a running jail's addresses change.

Each address the jail gains gets what a start gives it (confine/net.py): on
the host a static neighbour entry and a host route to the jail's veth, in
the main table and in table 4242 (what jails may reach); in the jail the
address on eth0 and, for a family it had none of, the default route back to
the host.  Each address it loses loses all of that.  A jail started without
any address has no veth yet: the first address creates it, as a start would.
A jail on an `interface` (macvlan) changes the addresses on its eth0 and its
egress filter (the sources it may send from) in one nf_tables transaction.
Nothing else of the jail is touched; its sockets on a removed address fail
as they would on FreeBSD.
"""
from __future__ import annotations

import _socket as socket     # the C module: `socket` would import enum
import ipaddress
import os

from ..kernel import libc
from ..kernel.netlink import RT_TABLE_MAIN, Netlink, ignore_missing
from ..state import registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from ..kernel.netlink import Address


def _in_jail_net(pid: int, work: Callable[[], None]) -> None:
    """Run WORK inside the network namespace of PID, then come back."""
    own = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(target, libc.CLONE_NEWNET)
        try:
            work()
        finally:
            libc.setns(own, libc.CLONE_NEWNET)
    finally:
        os.close(target)
        os.close(own)


def _quiet(action: Callable[[], None]) -> None:
    try:
        action()
    except OSError as err:
        if not ignore_missing(err):
            raise


def change(rec: registry.JailRecord, new: list[str]) -> None:
    """Give jail REC exactly the addresses NEW (in that order)."""
    from ..confine import net
    old = [ipaddress.ip_address(a) for a in rec.ips]
    want = [ipaddress.ip_address(a) for a in new]
    add = [a for a in want if a not in old]
    drop = [a for a in old if a not in want]
    if not registry.pid_alive(rec.pid, rec.starttime):
        from ..errors import JailError
        raise JailError(f'"{rec.name or rec.jid}" not found')
    has_eth0 = [False]

    def probe() -> None:
        try:
            socket.if_nametoindex(net.JAIL_IF)
            has_eth0[0] = True
        except OSError:
            pass
    _in_jail_net(rec.pid, probe)
    claimed = _claim(rec.jid, new)       # no two jails share an address
    try:
        hostif = rec.hostif
        if add and not has_eth0[0]:
            # a jail without any address so far: its veth, as a start makes it
            hostnet = net.setup_host(rec.jid, rec.pid, tuple(add), None)
            hostif = hostnet.ifname
            try:
                _in_jail_net(rec.pid, lambda: net.setup_jail(rec.jid, tuple(add), None))
            except BaseException:
                net.teardown_host(hostnet)
                raise
        else:
            if hostif:
                _host_side(rec.jid, hostif, add, drop)
            families_before: set[int] = {int(a.version) for a in old}
            _in_jail_net(rec.pid, lambda: _jail_side(rec.jid, add, drop, families_before,
                                                     bool(hostif), want))
    except BaseException:
        _unclaim(rec.jid, claimed)
        raise
    _record(rec.jid, new, hostif, [str(a) for a in drop])


def _host_side(jid: int, hostif: str, add: list[Address], drop: list[Address]) -> None:
    from ..confine import net
    _, jail_mac = net.macs(jid)
    index = socket.if_nametoindex(hostif)
    with Netlink() as nl:
        for addr in drop:
            _quiet(lambda: nl.delete_host_route(index, addr, RT_TABLE_MAIN))
            _quiet(lambda: nl.delete_host_route(index, addr, net.JAIL_TABLE))
            _quiet(lambda: nl.delete_neighbour(index, addr))
        for addr in add:
            nl.add_neighbour(index, addr, jail_mac)
            nl.add_host_route(index, addr)
            nl.add_host_route(index, addr, net.JAIL_TABLE)


def _jail_side(jid: int, add: list[Address], drop: list[Address], families: set[int],
               veth: bool, want: list[Address]) -> None:
    from ..confine import net
    host_mac, jail_mac = net.macs(jid)
    index = socket.if_nametoindex(net.JAIL_IF)
    with Netlink() as nl:
        for addr in drop:
            _quiet(lambda: nl.delete_address(index, addr))
        for addr in add:
            nl.add_address(index, addr)
            if veth and addr.version not in families:
                gateway = net.GW4 if addr.version == 4 else net.GW6
                nl.add_neighbour(index, gateway, host_mac)
                nl.add_default_route(index, gateway)
                families.add(addr.version)
    if not veth:
        # on a host's link: its egress filter names its addresses (net.py)
        net.confine_link_sources(tuple(want), jail_mac, replace=True)


def _claim(jid: int, ips: list[str]) -> list[str]:
    """Claim the addresses IPS adds for jail JID (registry.claim_addresses:
    EADDRINUSE if a live jail has one); the ones newly claimed."""
    with registry.Lock():
        rec = registry.read(jid)
        if rec is None:
            return []
        new = [a for a in ips if a not in rec.ips]
        rec.ips = new
        registry.claim_addresses(rec)
        return new


def _unclaim(jid: int, ips: list[str]) -> None:
    with registry.Lock():
        rec = registry.read(jid)
        if rec is not None:
            registry.release_addresses(rec.replace(ips=ips))


def _record(jid: int, ips: list[str], hostif: str, dropped: list[str]) -> None:
    with registry.Lock():
        rec = registry.read(jid)
        if rec is not None:
            registry.release_addresses(rec.replace(ips=dropped))
            rec.ips = list(ips)
            rec.hostif = hostif
            registry.write(rec)
