"""A jail's addresses (SPEC §7 "Network").

Topology: one veth pair per jail with addresses.  The jail side, `eth0`,
carries every address of the ip-list (/32, /128 nodad); the host side
`ljhJID` has no address: the host routes each jail address to it, with a
static neighbour entry, and the jail's default routes point at the host side
through static neighbours too (169.254.1.1 and fe80::1), so nothing waits for
ARP/NDP or DAD.

Nothing a jail sends is forwarded beyond the host: a policy rule sends every
packet that arrives from a jail's veth to table 4242, which holds only the
routes to jail addresses and an `unreachable default`.  Packets for the host's
own addresses are delivered by the `local` table (priority 0) before that.
IPv4 forwarding is enabled on the jail's host-side veth only, so jails reach
each other; IPv6 uses the per-interface force_forwarding (Linux 6.17) where
the kernel has it.  An rc.conf `interface` puts the jail on that link with a
macvlan instead (no veth, no host routes).
"""
from __future__ import annotations

import _socket as socket   # the C module: `socket` would import enum (startup cost)
import ipaddress
import os

from ..kernel.netlink import Netlink, families, ignore_missing
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..kernel.netlink import Address

JAIL_TABLE = 4242
RULE_PRIORITY = 4242
JAIL_IF = "eth0"
GW4 = ipaddress.IPv4Address("169.254.1.1")
GW6 = ipaddress.IPv6Address("fe80::1")


def host_ifname(jid: int) -> str:
    return f"ljh{jid}"


def macs(jid: int) -> tuple[str, str]:
    """(host side, jail side): locally administered, derived from the JID."""
    tail = ":".join(f"{b:02x}" for b in jid.to_bytes(3, "big"))
    return f"02:6c:68:{tail}", f"02:6c:6a:{tail}"


def _sysctl(path: str, value: str) -> None:
    with open(path, "w") as f:
        f.write(value)


def prepare_jail_namespace() -> None:
    """In the jail's new network namespace, before its interface exists:
    interfaces created later copy `default`, so IPv6 comes up with no DAD,
    no router advertisements and no autoconfigured addresses."""
    for key, value in (("accept_dad", "0"), ("accept_ra", "0"), ("autoconf", "0"),
                       ("dad_transmits", "0"), ("use_tempaddr", "0")):
        for conf in ("all", "default"):
            try:
                _sysctl(f"/proc/sys/net/ipv6/conf/{conf}/{key}", value)
            except FileNotFoundError:
                pass   # kernel without IPv6


@record()
class HostNet(Record):
    jid: int
    ifname: str          # host-side veth, "" for macvlan
    ips: tuple[Address, ...]


def setup_host(jid: int, pid: int, ips: tuple[Address, ...],
               interface: str | None = None) -> HostNet:
    """Create the jail's interface in the namespace of PID and the host's routes.

    On failure, what was done is undone before the error propagates.
    """
    host_mac, jail_mac = macs(jid)
    with Netlink() as nl:
        if interface:
            try:
                parent = socket.if_nametoindex(interface)
            except OSError:
                raise OSError(19, f"interface {interface}: no such interface") from None
            nl.add_macvlan(JAIL_IF, parent, jail_mac, pid)
            return HostNet(jid, "", ips)
        name = host_ifname(jid)
        nl.add_veth(name, host_mac, JAIL_IF, jail_mac, pid)
        net = HostNet(jid, name, ips)
        try:
            index = socket.if_nametoindex(name)
            _host_sysctls(name)
            for fam in (socket.AF_INET, socket.AF_INET6):
                nl.add_unreachable_default(fam, JAIL_TABLE)
                nl.add_rule(fam, name, JAIL_TABLE, RULE_PRIORITY)
            for addr in ips:
                nl.add_neighbour(index, addr, jail_mac)
                nl.add_host_route(index, addr)
                nl.add_host_route(index, addr, JAIL_TABLE)
        except BaseException:
            teardown_host(net)
            raise
        return net


def _host_sysctls(name: str) -> None:
    v4 = f"/proc/sys/net/ipv4/conf/{name}/"
    _sysctl(v4 + "rp_filter", "1")        # a jail cannot spoof other sources
    _sysctl(v4 + "forwarding", "1")       # jail -> jail (table 4242 stops the rest)
    _sysctl(v4 + "accept_redirects", "0")
    _sysctl(v4 + "send_redirects", "0")
    v6 = f"/proc/sys/net/ipv6/conf/{name}/"
    if os.path.exists(v6):
        _sysctl(v6 + "accept_ra", "0")
        if os.path.exists(v6 + "force_forwarding"):
            _sysctl(v6 + "force_forwarding", "1")


def teardown_host(net: HostNet) -> None:
    """Remove the host side; every step tolerates an object already gone."""
    if not net.ifname:
        return
    with Netlink() as nl:
        for addr in net.ips:
            try:
                nl.delete_host_route(addr, JAIL_TABLE)
            except OSError as err:
                if not ignore_missing(err):
                    raise
        for fam in (socket.AF_INET, socket.AF_INET6):
            try:
                nl.delete_rule(fam, net.ifname, JAIL_TABLE, RULE_PRIORITY)
            except OSError as err:
                if not ignore_missing(err):
                    raise
        try:
            nl.delete_link(net.ifname)
        except OSError as err:
            if not ignore_missing(err):
                raise


def setup_jail(jid: int, ips: tuple[Address, ...], interface: str | None = None) -> None:
    """Inside the jail's network namespace: loopback, addresses, default routes."""
    host_mac, _ = macs(jid)
    with Netlink() as nl:
        nl.set_up(1)   # lo is always index 1 in a new namespace
        if not ips and not interface:
            return
        index = socket.if_nametoindex(JAIL_IF)
        for addr in ips:
            nl.add_address(index, addr)
        nl.set_up(index)
        if interface:
            return   # on the host's link: no gateway of ours
        fams = families(ips)
        if socket.AF_INET in fams:
            nl.add_neighbour(index, GW4, host_mac)
            nl.add_default_route(index, GW4)
        if socket.AF_INET6 in fams:
            nl.add_neighbour(index, GW6, host_mac)
            nl.add_default_route(index, GW6)
