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

A jail's packets carry only its own source addresses: one nftables table on
the host for every jail veth, and a filter on the egress of a macvlan jail's
interface in its own namespace (see the sections below).
"""
from __future__ import annotations

import _socket as socket   # the C module: `socket` would import enum (startup cost)
import errno
import ipaddress
import os

from ..kernel import libc
from ..kernel.netlink import RT_TABLE_MAIN, Netlink, families, ignore_missing
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
    libc.write_file(path, value.encode())


def prepare_jail_namespace() -> None:
    """In the jail's new network namespace, before its interface exists:
    interfaces created later copy `default`, so IPv6 comes up with no DAD,
    no router advertisements and no autoconfigured addresses."""
    for key, value in (("accept_dad", "0"), ("accept_ra", "0"), ("autoconf", "0"),
                       ("dad_transmits", "0"), ("use_tempaddr", "0"),
                       ("addr_gen_mode", "0")):    # link-local from the MAC (EUI-64)
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
        net = HostNet(jid, name, ips)
        try:
            ensure_source_filter()
            nl.add_veth(name, host_mac, JAIL_IF, jail_mac, pid)
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
    _sysctl(v4 + "rp_filter", "1")        # strict reverse path; the nftables check too
    _sysctl(v4 + "forwarding", "1")       # jail -> jail (table 4242 stops the rest)
    _sysctl(v4 + "accept_redirects", "0")
    _sysctl(v4 + "send_redirects", "0")
    v6 = f"/proc/sys/net/ipv6/conf/{name}/"
    if os.path.exists(v6):
        _sysctl(v6 + "accept_ra", "0")
        if os.path.exists(v6 + "force_forwarding"):
            _sysctl(v6 + "force_forwarding", "1")


def teardown_host(net: HostNet) -> None:
    """Remove the host side; every step tolerates an object already gone.

    Routes are deleted by address *and* device: another jail's route to the
    same address (which linjail refuses to make: registry.claim_addresses) stays.
    """
    if not net.ifname:
        return
    with Netlink() as nl:
        try:
            index = socket.if_nametoindex(net.ifname)
        except OSError:
            index = 0          # the veth is gone, and its routes with it
        for addr in net.ips if index else ():
            for table in (JAIL_TABLE, RT_TABLE_MAIN):
                try:
                    nl.delete_host_route(index, addr, table)
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
    release_source_filter(net.jid)


# --- source addresses -------------------------------------------------------------------
#
# A jail's packets must carry its own addresses as source.  IPv4 has rp_filter
# on the host-side veth; IPv6 has no reverse-path check of its own, and the
# policy rule cannot help: the `local` table (priority 0) delivers a packet
# for the host before rule 4242, whatever its source.  So one nftables table
# of linjail's own does it for every jail veth at once, for both families:
#
#   table inet linjail {
#       chain prerouting {
#           type filter hook prerouting priority -300; policy accept;
#           iifname "ljh*" fib saddr . iif oif missing drop
#       }
#   }
#
# `fib saddr . iif oif` is the interface the host routes the packet's source
# to, looked up as if leaving through the arrival interface: for a jail's own
# address that is its veth (its host route), for another jail's address, the
# host's own addresses or anything else there is no such route, and the packet
# is dropped before conntrack (-200) sees it.  IPv6 link-local sources pass
# (fe80::/64 is on every veth): neighbour discovery keeps working.
#
# It costs nothing per jail: the first start creates the table, later starts
# only ask for it (one netlink round trip); the release of the last jail with
# a veth deletes it (registry.Lock: no other jail veth, no other record that
# names one), so a host without such jails has no table of ours.  The
# table's user data is its version: a table that differs is replaced whole,
# in one transaction.

FILTER_TABLE = "linjail"
FILTER_CHAIN = "prerouting"
FILTER_PRIORITY = -300
FILTER_MARK = b"linjail: jail veths carry their own source addresses; v1"


def ensure_source_filter() -> None:
    """Make the table unless it is there (several starts may race: one wins)."""
    from ..kernel import netlink as k
    try:
        with k.Nftables() as nft:
            mark = nft.table_userdata(k.NFPROTO_INET, FILTER_TABLE)
            if mark == FILTER_MARK:
                return
            requests = []
            if mark is not None:     # an older or foreign table of that name
                requests.append((k.NFT_MSG_DELTABLE, 0, k.NFPROTO_INET,
                                 k.nft_table(FILTER_TABLE)))
            rule = (k.expr_meta(k.NFT_META_IIFNAME), k.expr_cmp_eq(b"ljh"),
                    k.expr_fib(k.NFTA_FIB_F_SADDR | k.NFTA_FIB_F_IIF | k.NFTA_FIB_F_PRESENT,
                               k.NFT_FIB_RESULT_OIF),
                    k.expr_cmp_eq(bytes(4)), k.expr_verdict(k.NF_DROP))
            new = k.NLM_F_CREATE | k.NLM_F_EXCL
            requests += [
                (k.NFT_MSG_NEWTABLE, new, k.NFPROTO_INET, k.nft_table(FILTER_TABLE, FILTER_MARK)),
                (k.NFT_MSG_NEWCHAIN, new, k.NFPROTO_INET,
                 k.nft_base_chain(FILTER_TABLE, FILTER_CHAIN, k.NF_INET_PRE_ROUTING,
                                  FILTER_PRIORITY)),
                (k.NFT_MSG_NEWRULE, k.NLM_F_CREATE, k.NFPROTO_INET,
                 k.nft_rule(FILTER_TABLE, FILTER_CHAIN, *rule))]
            try:
                nft.commit(requests, "")
            except OSError as err:
                if err.errno != errno.EEXIST:      # EEXIST: a concurrent start made it
                    raise
    except OSError as err:
        raise OSError(err.errno, "cannot filter jail source addresses (nf_tables): "
                      + os.strerror(err.errno or 0)) from None


def release_source_filter(jid: int) -> None:
    """Delete the table when jail JID's veth was the last: no other jail veth
    on the host, and no other record of a veth jail in the registry (under
    its lock, so no start slips in between: a start writes its record, which
    names its veth, before it asks for the table).  Jails without addresses
    or on a host's link do not keep it."""
    from ..state import registry
    from ..kernel import netlink as k
    with registry.Lock():
        try:
            if any(n.startswith("ljh") and n != host_ifname(jid)
                   for n in os.listdir("/sys/class/net")):
                return       # also a jail of another registry (LINJAIL_STATE_DIR)
        except OSError:
            return
        if any(rec.hostif and rec.jid != jid for rec in registry.all_records()):
            return           # a start between its record and its veth, or a dead one
        try:
            with k.Nftables() as nft:
                nft.commit([(k.NFT_MSG_DELTABLE, 0, k.NFPROTO_INET,
                             k.nft_table(FILTER_TABLE))], "")
        except OSError as err:
            if not ignore_missing(err):
                raise


def setup_jail(jid: int, ips: tuple[Address, ...], interface: str | None = None) -> None:
    """Inside the jail's network namespace: loopback, addresses, default routes;
    on a host's link (macvlan), the filter of its source addresses."""
    host_mac, jail_mac = macs(jid)
    with Netlink() as nl:
        nl.set_up(1)   # lo is always index 1 in a new namespace
        if not ips and not interface:
            return
        index = socket.if_nametoindex(JAIL_IF)
        for addr in ips:
            nl.add_address(index, addr)
        if interface:
            confine_link_sources(ips, jail_mac)     # before the link comes up
            nl.set_up(index)
            return   # on the host's link: no gateway of ours
        nl.set_up(index)
        fams = families(ips)
        if socket.AF_INET in fams:
            nl.add_neighbour(index, GW4, host_mac)
            nl.add_default_route(index, GW4)
        if socket.AF_INET6 in fams:
            nl.add_neighbour(index, GW6, host_mac)
            nl.add_default_route(index, GW6)


# --- a jail on a host's link (rc.conf `interface`) --------------------------------------
#
# A macvlan jail's frames leave through the parent's link (and reach the other
# macvlans on it) without passing the host's IP stack: the host's table above
# never sees them.  So the jail's own namespace gets a filter on its interface's
# egress hook, made by the first process while it still holds CAP_NET_ADMIN
# (jailed root has none: it cannot change it):
#
#   table netdev linjail {
#       chain egress {
#           type filter hook egress device "eth0" priority 0; policy drop;
#           @ll,96,16 0x0800 @ll,208,32 ADDR accept   (IPv4 source, each address)
#           @ll,96,16 0x0806 @ll,224,32 ADDR accept   (ARP sender, each address)
#           @ll,96,16 0x86dd @ll,176,128 ADDR accept  (IPv6 source: each address,
#       }                                              its own link-local, ::)
#   }
#
# Everything else is dropped: other sources, other EtherTypes (VLAN tags
# included).  Offsets are taken from the Ethernet header, not from where the
# kernel thinks the network header is, so a frame built on a packet socket
# (allow_raw_sockets with socket_unixiproute_only=0; packet sockets reach the
# egress hook too, also with PACKET_QDISC_BYPASS) is judged by its bytes.

ETH_P_IP, ETH_P_ARP, ETH_P_IPV6 = 0x0800, 0x0806, 0x86DD


def link_local(mac: str) -> ipaddress.IPv6Address:
    """The EUI-64 link-local address of MAC (addr_gen_mode 0)."""
    from ..kernel.netlink import mac_bytes
    b = bytearray(mac_bytes(mac))
    b[0] ^= 0x02
    return ipaddress.IPv6Address(b"\xfe\x80" + bytes(6) + bytes(b[:3]) + b"\xff\xfe"
                                 + bytes(b[3:]))


def link_source_rules(ips: tuple[Address, ...], mac: str) -> list[tuple[int, int, bytes]]:
    """(EtherType, offset of the source in the frame, address) per accepted source."""
    out = []
    for addr in ips:
        if addr.version == 4:
            out.append((ETH_P_IP, 14 + 12, addr.packed))
            out.append((ETH_P_ARP, 14 + 14, addr.packed))
    for addr6 in [a for a in ips if a.version == 6] + [link_local(mac),
                                                       ipaddress.IPv6Address("::")]:
        out.append((ETH_P_IPV6, 14 + 8, addr6.packed))
    return out


def confine_link_sources(ips: tuple[Address, ...], mac: str, replace: bool = False) -> None:
    """In the jail's namespace: the egress filter of its interface (REPLACE:
    the old one goes in the same transaction, for `jail -m ip4.addr=`)."""
    from ..kernel import netlink as k
    table, chain = FILTER_TABLE, "egress"
    requests = [(k.NFT_MSG_DELTABLE, 0, k.NFPROTO_NETDEV, k.nft_table(table))] if replace \
        else []
    requests += [
        (k.NFT_MSG_NEWTABLE, k.NLM_F_CREATE, k.NFPROTO_NETDEV, k.nft_table(table)),
        (k.NFT_MSG_NEWCHAIN, k.NLM_F_CREATE, k.NFPROTO_NETDEV,
         k.nft_base_chain(table, chain, k.NF_NETDEV_EGRESS, 0, device=JAIL_IF,
                          policy=k.NF_DROP))]
    for ethertype, offset, packed in link_source_rules(ips, mac):
        rule = (k.expr_payload(k.NFT_PAYLOAD_LL_HEADER, 12, 2),
                k.expr_cmp_eq(ethertype.to_bytes(2, "big")),
                k.expr_payload(k.NFT_PAYLOAD_LL_HEADER, offset, len(packed)),
                k.expr_cmp_eq(packed), k.expr_verdict(k.NF_ACCEPT))
        requests.append((k.NFT_MSG_NEWRULE, k.NLM_F_CREATE | k.NLM_F_APPEND,
                         k.NFPROTO_NETDEV, k.nft_rule(table, chain, *rule)))
    try:
        with k.Nftables() as nft:
            nft.commit(requests, "")
    except OSError as err:
        raise OSError(err.errno, "cannot filter jail source addresses (nf_tables): "
                      + os.strerror(err.errno or 0)) from None
