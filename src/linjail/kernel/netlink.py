"""A small rtnetlink client: the few requests a jail start makes.

Why not pyroute2 here: importing it costs ~250 ms on these machines, while
the performance issue gives a jail's addresses 10 ms in all.  The requests a
start needs are a dozen fixed message shapes (rtnetlink(7)), so they are
encoded here with struct; pyroute2 stays the independent oracle the tests
read the kernel's state with.
"""
from __future__ import annotations

import _socket as socket   # the C module: `socket` would import enum (startup cost)
import errno as _errno
import os
import struct

TYPE_CHECKING = False
if TYPE_CHECKING:
    import ipaddress
    from typing import Iterable

NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_DUMP = 0x300
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_REPLACE = 0x100
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_APPEND = 0x800

RTM_NEWLINK, RTM_DELLINK, RTM_SETLINK = 16, 17, 19
RTM_NEWADDR, RTM_DELADDR = 20, 21
RTM_NEWROUTE, RTM_DELROUTE = 24, 25
RTM_NEWNEIGH, RTM_DELNEIGH = 28, 29
RTM_NEWRULE, RTM_DELRULE, RTM_GETRULE = 32, 33, 34

IFF_UP = 0x1
IFLA_ADDRESS, IFLA_IFNAME, IFLA_LINK = 1, 3, 5
IFLA_LINKINFO, IFLA_NET_NS_PID = 18, 19
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
VETH_INFO_PEER = 1
IFLA_MACVLAN_MODE = 1
MACVLAN_MODE_BRIDGE = 4
IFA_ADDRESS, IFA_LOCAL, IFA_FLAGS = 1, 2, 8
IFA_F_NODAD = 0x02
RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_TABLE = 1, 4, 5, 15
RT_TABLE_MAIN = 254
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST, RTN_UNREACHABLE = 1, 7
RTPROT_STATIC = 4
RTNH_F_ONLINK = 4
NDA_DST, NDA_LLADDR = 1, 2
NUD_PERMANENT = 0x80
FRA_IIFNAME, FRA_PRIORITY, FRA_TABLE = 3, 6, 15
FR_ACT_TO_TBL = 1

if TYPE_CHECKING:
    Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _attr(kind: int, payload: bytes) -> bytes:
    length = 4 + len(payload)
    return struct.pack("HH", length, kind) + payload + b"\0" * (-length % 4)


def _str(kind: int, text: str) -> bytes:
    return _attr(kind, text.encode() + b"\0")


def _u32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack("I", value))


def _family(addr: Address) -> int:
    return socket.AF_INET if addr.version == 4 else socket.AF_INET6


def mac_bytes(mac: str) -> bytes:
    return bytes(int(x, 16) for x in mac.split(":"))


class Netlink:
    """One NETLINK_ROUTE socket, bound to the network namespace of its creator."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Netlink":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(self, kind: int, flags: int, body: bytes, what: str) -> None:
        """Send one request and wait for its acknowledgement."""
        self.seq += 1
        header = struct.pack("IHHII", 16 + len(body), kind,
                             NLM_F_REQUEST | NLM_F_ACK | flags, self.seq, 0)
        self.sock.send(header + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("IHHII", data, offset)
                if mtype == NLMSG_ERROR and seq == self.seq:
                    (err,) = struct.unpack_from("i", data, offset + 16)
                    if err:
                        raise OSError(-err, f"{what}: {os.strerror(-err)}")
                    return
                offset += (length + 3) & ~3

    # links -------------------------------------------------------------
    def add_veth(self, name: str, mac: str, peer_name: str, peer_mac: str,
                 peer_pid: int) -> None:
        """ip link add NAME address MAC up type veth peer PEER address PMAC netns PID"""
        peer = (struct.pack("BxHiII", 0, 0, 0, 0, 0) + _str(IFLA_IFNAME, peer_name)
                + _attr(IFLA_ADDRESS, mac_bytes(peer_mac)) + _u32(IFLA_NET_NS_PID, peer_pid))
        info = _str(IFLA_INFO_KIND, "veth") + _attr(IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer))
        body = (struct.pack("BxHiII", 0, 0, 0, IFF_UP, IFF_UP) + _str(IFLA_IFNAME, name)
                + _attr(IFLA_ADDRESS, mac_bytes(mac)) + _attr(IFLA_LINKINFO, info))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body,
                     f"create veth {name}")

    def add_macvlan(self, name: str, parent_index: int, mac: str, pid: int) -> None:
        """ip link add link PARENT NAME address MAC type macvlan mode bridge netns PID"""
        info = (_str(IFLA_INFO_KIND, "macvlan")
                + _attr(IFLA_INFO_DATA, _u32(IFLA_MACVLAN_MODE, MACVLAN_MODE_BRIDGE)))
        body = (struct.pack("BxHiII", 0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name)
                + _u32(IFLA_LINK, parent_index) + _attr(IFLA_ADDRESS, mac_bytes(mac))
                + _u32(IFLA_NET_NS_PID, pid) + _attr(IFLA_LINKINFO, info))
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body,
                     f"create macvlan on interface {parent_index}")

    def set_up(self, index: int) -> None:
        body = struct.pack("BxHiII", 0, 0, index, IFF_UP, IFF_UP)
        self.request(RTM_NEWLINK, 0, body, f"set link {index} up")

    def delete_link(self, name: str) -> None:
        body = struct.pack("BxHiII", 0, 0, 0, 0, 0) + _str(IFLA_IFNAME, name)
        self.request(RTM_DELLINK, 0, body, f"delete link {name}")

    # addresses, neighbours, routes, rules --------------------------------
    def add_address(self, index: int, addr: Address) -> None:
        """ip addr add ADDR/32 (or /128 nodad) dev INDEX"""
        packed = addr.packed
        plen = 32 if addr.version == 4 else 128
        flags = 0 if addr.version == 4 else IFA_F_NODAD
        body = (struct.pack("BBBBI", _family(addr), plen, flags, RT_SCOPE_UNIVERSE, index)
                + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed)
                + _u32(IFA_FLAGS, flags))
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body, f"add address {addr}")

    def delete_address(self, index: int, addr: Address) -> None:
        """ip addr del ADDR/32 (or /128) dev INDEX (jail -m: an address leaves)"""
        packed = addr.packed
        plen = 32 if addr.version == 4 else 128
        body = (struct.pack("BBBBI", _family(addr), plen, 0, RT_SCOPE_UNIVERSE, index)
                + _attr(IFA_LOCAL, packed) + _attr(IFA_ADDRESS, packed))
        self.request(RTM_DELADDR, 0, body, f"delete address {addr}")

    def delete_neighbour(self, index: int, addr: Address) -> None:
        """ip neigh del ADDR dev INDEX"""
        body = (struct.pack("BxxxiHBB", _family(addr), index, 0, 0, 0)
                + _attr(NDA_DST, addr.packed))
        self.request(RTM_DELNEIGH, 0, body, f"delete neighbour {addr}")

    def add_neighbour(self, index: int, addr: Address, mac: str) -> None:
        """ip neigh replace ADDR lladdr MAC dev INDEX nud permanent"""
        body = (struct.pack("BxxxiHBB", _family(addr), index, NUD_PERMANENT, 0, 0)
                + _attr(NDA_DST, addr.packed) + _attr(NDA_LLADDR, mac_bytes(mac)))
        self.request(RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, body,
                     f"add neighbour {addr}")

    def _route(self, kind: int, flags: int, family: int, dst: Address | None,
               *, index: int = 0, gateway: Address | None = None,
               table: int = RT_TABLE_MAIN, rtype: int = RTN_UNICAST,
               onlink: bool = False, what: str) -> None:
        plen = 0 if dst is None else (32 if dst.version == 4 else 128)
        scope = RT_SCOPE_LINK if (dst is not None and gateway is None and
                                  rtype == RTN_UNICAST and family == socket.AF_INET) \
            else RT_SCOPE_UNIVERSE
        body = struct.pack("BBBBBBBBI", family, plen, 0, 0, min(table, 255), RTPROT_STATIC,
                           scope, rtype, RTNH_F_ONLINK if onlink else 0)
        if dst is not None:
            body += _attr(RTA_DST, dst.packed)
        if gateway is not None:
            body += _attr(RTA_GATEWAY, gateway.packed)
        if index:
            body += _u32(RTA_OIF, index)
        body += _u32(RTA_TABLE, table)
        self.request(kind, flags, body, what)

    def add_host_route(self, index: int, dst: Address, table: int = RT_TABLE_MAIN) -> None:
        """ip route replace DST/32 dev INDEX table TABLE"""
        self._route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, _family(dst), dst,
                    index=index, table=table, what=f"add route to {dst}")

    def delete_host_route(self, index: int, dst: Address, table: int) -> None:
        """ip route del DST dev INDEX table TABLE: another device's route to DST stays"""
        self._route(RTM_DELROUTE, 0, _family(dst), dst, index=index, table=table,
                    what=f"delete route to {dst}")

    def add_default_route(self, index: int, gateway: Address) -> None:
        """ip route add default via GATEWAY dev INDEX onlink"""
        self._route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, _family(gateway), None,
                    index=index, gateway=gateway, onlink=gateway.version == 4,
                    what=f"add default route via {gateway}")

    def add_unreachable_default(self, family: int, table: int) -> None:
        """ip route replace unreachable default table TABLE"""
        self._route(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, family, None,
                    table=table, rtype=RTN_UNREACHABLE,
                    what=f"add unreachable default to table {table}")

    def _rule(self, kind: int, flags: int, family: int, iifname: str, table: int,
              priority: int, what: str) -> None:
        body = (struct.pack("BBBBBBBBI", family, 0, 0, 0, min(table, 255), 0, 0,
                            FR_ACT_TO_TBL, 0)
                + _str(FRA_IIFNAME, iifname) + _u32(FRA_PRIORITY, priority)
                + _u32(FRA_TABLE, table))
        self.request(kind, flags, body, what)

    def rules(self) -> list[tuple[int, str, int, int]]:
        """ip rule show, both families: (family, iifname, table, priority)."""
        out = []
        for family in (socket.AF_INET, socket.AF_INET6):
            self.seq += 1
            body = struct.pack("BBBBBBBBI", family, 0, 0, 0, 0, 0, 0, 0, 0)
            self.sock.send(struct.pack("IHHII", 16 + len(body), RTM_GETRULE,
                                       NLM_F_REQUEST | NLM_F_DUMP, self.seq, 0) + body)
            done = False
            while not done:
                data = self.sock.recv(65536)
                offset = 0
                while offset + 16 <= len(data):
                    length, mtype, _, seq, _ = struct.unpack_from("IHHII", data, offset)
                    if mtype in (NLMSG_DONE, NLMSG_ERROR):
                        done = True
                    elif mtype == RTM_NEWRULE and seq == self.seq:
                        out.append(_parse_rule(data[offset + 16:offset + length]))
                    offset += (length + 3) & ~3
        return out

    def add_rule(self, family: int, iifname: str, table: int, priority: int) -> None:
        """ip rule add iif IIFNAME lookup TABLE priority PRIORITY"""
        self._rule(RTM_NEWRULE, NLM_F_CREATE | NLM_F_EXCL, family, iifname, table, priority,
                   f"add rule for {iifname}")

    def delete_rule(self, family: int, iifname: str, table: int, priority: int) -> None:
        self._rule(RTM_DELRULE, 0, family, iifname, table, priority,
                   f"delete rule for {iifname}")


def _parse_rule(msg: bytes) -> tuple[int, str, int, int]:
    family, _, _, _, table, _, _, _, _ = struct.unpack_from("BBBBBBBBI", msg)
    iifname, priority = "", 0
    offset = 12
    while offset + 4 <= len(msg):
        length, kind = struct.unpack_from("HH", msg, offset)
        if length < 4:
            break
        payload = msg[offset + 4:offset + length]
        if kind == FRA_IIFNAME:
            iifname = payload.split(b"\0", 1)[0].decode("ascii", "replace")
        elif kind == FRA_PRIORITY:
            (priority,) = struct.unpack_from("I", payload)
        elif kind == FRA_TABLE:
            (table,) = struct.unpack_from("I", payload)
        offset += (length + 3) & ~3
    return family, iifname, table, priority


def ignore_missing(err: OSError) -> bool:
    """True for the errors a teardown step may meet when its object is gone."""
    return err.errno in (_errno.ENOENT, _errno.ENODEV, _errno.ESRCH, _errno.EADDRNOTAVAIL)


def families(addrs: Iterable[Address]) -> set[int]:
    return {_family(a) for a in addrs}


# --- nf_tables (NETLINK_NETFILTER) ------------------------------------------------------
#
# The source-address filter of jail veths is one nftables table, made by a
# single transaction (a batch); its expressions are the ones `nft` compiles
# for `iifname "ljh*" fib saddr . iif oif missing drop`
# (`nft --debug=netlink` shows them).  linux/netfilter/nf_tables.h:
# nf_tables attributes are big-endian, nests carry NLA_F_NESTED.

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
NFNL_MSG_BATCH_BEGIN, NFNL_MSG_BATCH_END = 16, 17
NFT_MSG_NEWTABLE, NFT_MSG_GETTABLE, NFT_MSG_DELTABLE = 0, 1, 2
NFT_MSG_NEWCHAIN, NFT_MSG_NEWRULE = 3, 6
NFPROTO_INET, NFPROTO_NETDEV = 1, 5
NLA_F_NESTED = 0x8000
NFTA_TABLE_NAME, NFTA_TABLE_USERDATA = 1, 6
NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME, NFTA_CHAIN_HOOK, NFTA_CHAIN_POLICY, NFTA_CHAIN_TYPE = \
    1, 3, 4, 5, 7
NFTA_HOOK_HOOKNUM, NFTA_HOOK_PRIORITY, NFTA_HOOK_DEV = 1, 2, 3
NFTA_RULE_TABLE, NFTA_RULE_CHAIN, NFTA_RULE_EXPRESSIONS = 1, 2, 4
NFTA_LIST_ELEM = 1
NFTA_EXPR_NAME, NFTA_EXPR_DATA = 1, 2
NFTA_DATA_VALUE, NFTA_DATA_VERDICT = 1, 2
NFTA_VERDICT_CODE = 1
NFT_REG_VERDICT, NFT_REG_1 = 0, 1
NFT_META_PROTOCOL, NFT_META_IIFNAME = 1, 6
NFT_CMP_EQ = 0
NFT_PAYLOAD_LL_HEADER, NFT_PAYLOAD_NETWORK_HEADER = 0, 1
NFTA_FIB_F_SADDR, NFTA_FIB_F_IIF, NFTA_FIB_F_PRESENT = 1, 8, 32
NFT_FIB_RESULT_OIF = 1
NF_DROP, NF_ACCEPT = 0, 1
NF_INET_PRE_ROUTING = 0
NF_NETDEV_EGRESS = 1


def _nest(kind: int, payload: bytes) -> bytes:
    return _attr(kind | NLA_F_NESTED, payload)


def _be32(kind: int, value: int) -> bytes:
    return _attr(kind, struct.pack(">i" if value < 0 else ">I", value))


def _expr(name: str, *attrs: bytes) -> bytes:
    return _nest(NFTA_LIST_ELEM, _str(NFTA_EXPR_NAME, name)
                 + _nest(NFTA_EXPR_DATA, b"".join(attrs)))


def expr_meta(key: int, dreg: int = NFT_REG_1) -> bytes:
    """[ meta load KEY => reg DREG ]"""
    return _expr("meta", _be32(2, key), _be32(1, dreg))           # KEY, DREG


def expr_cmp_eq(data: bytes, sreg: int = NFT_REG_1) -> bytes:
    """[ cmp eq reg SREG DATA ]: compares len(DATA) bytes (a prefix for names)"""
    return _expr("cmp", _be32(1, sreg), _be32(2, NFT_CMP_EQ),      # SREG, OP
                 _nest(3, _attr(NFTA_DATA_VALUE, data)))           # DATA


def expr_payload(base: int, offset: int, length: int, dreg: int = NFT_REG_1) -> bytes:
    """[ payload load LENGTHb @ BASE header + OFFSET => reg DREG ]"""
    return _expr("payload", _be32(1, dreg), _be32(2, base),
                 _be32(3, offset), _be32(4, length))               # DREG BASE OFFSET LEN


def expr_fib(flags: int, result: int, dreg: int = NFT_REG_1) -> bytes:
    """[ fib FLAGS RESULT => reg DREG ]"""
    return _expr("fib", _be32(1, dreg), _be32(2, result), _be32(3, flags))


def expr_verdict(code: int) -> bytes:
    """[ immediate reg 0 CODE ]"""
    return _expr("immediate", _be32(1, NFT_REG_VERDICT),
                 _nest(2, _nest(NFTA_DATA_VERDICT, _be32(NFTA_VERDICT_CODE, code))))


class Nftables:
    """One NETLINK_NETFILTER socket: a table's marker, and transactions."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC,
                                  NETLINK_NETFILTER)
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> "Nftables":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _message(self, kind: int, flags: int, family: int, attrs: bytes,
                 res_id: int = 0) -> bytes:
        self.seq += 1
        body = struct.pack(">BBH", family, 0, res_id) + attrs
        return struct.pack("IHHII", 16 + len(body), kind, NLM_F_REQUEST | flags,
                           self.seq, 0) + body

    def _answers(self, last: int, what: str) -> list[bytes]:
        """The replies up to the acknowledgement of request LAST; the first error raises."""
        replies: list[bytes] = []
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + 16 <= len(data):
                length, mtype, _, seq, _ = struct.unpack_from("IHHII", data, offset)
                if mtype == NLMSG_ERROR:
                    (err,) = struct.unpack_from("i", data, offset + 16)
                    if err:
                        raise OSError(-err, f"{what}: {os.strerror(-err)}")
                    if seq == last:
                        return replies
                elif seq == last:
                    replies.append(data[offset + 16:offset + length])
                offset += (length + 3) & ~3

    def table_userdata(self, family: int, name: str) -> bytes | None:
        """The user data of table NAME (b"" if it has none), None if there is no such table."""
        kind = NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETTABLE
        self.sock.send(self._message(kind, NLM_F_ACK, family, _str(NFTA_TABLE_NAME, name)))
        try:
            replies = self._answers(self.seq, f"nf_tables: get table {name}")
        except OSError as err:
            if err.errno == _errno.ENOENT:
                return None
            raise
        for msg in replies:
            offset = 4                       # after struct nfgenmsg
            while offset + 4 <= len(msg):
                length, attr = struct.unpack_from("HH", msg, offset)
                if length < 4:
                    break
                if attr & 0x3fff == NFTA_TABLE_USERDATA:
                    return msg[offset + 4:offset + length]
                offset += (length + 3) & ~3
        return b""

    def commit(self, requests: list[tuple[int, int, int, bytes]], what: str) -> None:
        """One transaction: (NFT_MSG_*, NLM_F_* flags, family, attributes) each; all or nothing."""
        res = NFNL_SUBSYS_NFTABLES
        batch = [self._message(NFNL_MSG_BATCH_BEGIN, 0, 0, b"", res)]
        for kind, flags, family, attrs in requests:
            batch.append(self._message(res << 8 | kind, NLM_F_ACK | flags, family, attrs))
        last = self.seq
        batch.append(self._message(NFNL_MSG_BATCH_END, 0, 0, b"", res))
        self.sock.send(b"".join(batch))
        self._answers(last, what)


def nft_table(name: str, userdata: bytes = b"") -> bytes:
    return _str(NFTA_TABLE_NAME, name) + (_attr(NFTA_TABLE_USERDATA, userdata)
                                          if userdata else b"")


def nft_base_chain(table: str, name: str, hook: int, priority: int, *,
                   device: str | None = None, policy: int = NF_ACCEPT) -> bytes:
    """A base chain of type filter on HOOK (and DEVICE, for the netdev family)."""
    hook_attrs = _be32(NFTA_HOOK_HOOKNUM, hook) + _be32(NFTA_HOOK_PRIORITY, priority)
    if device is not None:
        hook_attrs += _str(NFTA_HOOK_DEV, device)
    return (_str(NFTA_CHAIN_TABLE, table) + _str(NFTA_CHAIN_NAME, name)
            + _nest(NFTA_CHAIN_HOOK, hook_attrs) + _be32(NFTA_CHAIN_POLICY, policy)
            + _str(NFTA_CHAIN_TYPE, "filter"))


def nft_rule(table: str, chain: str, *exprs: bytes) -> bytes:
    return (_str(NFTA_RULE_TABLE, table) + _str(NFTA_RULE_CHAIN, chain)
            + _nest(NFTA_RULE_EXPRESSIONS, b"".join(exprs)))
