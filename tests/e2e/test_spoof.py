"""A jail's packets carry its own source addresses only (SPEC §7; issue 9).

Jail A (the attacker) binds with IP_FREEBIND / IPV6_FREEBIND, which needs no
privilege, to an address that is not its own and sends one UDP datagram
"spoof"; then the same send from its real address, "real".  The receiver —
jail B, or the host at an address this module puts on a veth pair of its own
— must have got "real" and nothing else: the datagrams take the same path,
one after the other, so "spoof" would have arrived first.  The sources forged
are another jail's address (jail C), the host's own address, and the
receiver's own address.  Host to jail and jail to jail keep working.

A jail on a host's link (rc.conf `interface`, a macvlan) is checked in its
own namespace, on its interface's egress: forged sources from datagram
sockets (IPv6 link-local destinations are on-link) and from packet sockets
(whole frames, IPv4 and IPv6) never reach the link.

Safety (SPEC §10): jails hold 203.0.113.60-69 and 2001:db8:60::/64 only;
every destination is a jail address routed to a linjail veth or the host's
own address on the test's veth (`ip route get` says `local`), checked before
the first send.  The macvlan jail's link is a veth pair of this module: its
frames reach the pair's other end, on the host, and nothing else.
Nothing goes anywhere else.
"""
from __future__ import annotations

import os
import socket
import subprocess
from dataclasses import dataclass
from typing import Iterator

import pytest

from conftest import (build_service_root, cmd, install_probe, needs_root,
                      route_is_ours, run)

pytestmark = needs_root
BB = "/usr/bin/busybox"
A = {4: "203.0.113.61", 6: "2001:db8:60::61"}      # the attacker
B = {4: "203.0.113.62", 6: "2001:db8:60::62"}      # a jail that receives
C = {4: "203.0.113.63", 6: "2001:db8:60::63"}      # a jail whose address is forged
H = {4: "203.0.113.69", 6: "2001:db8:60::69"}      # the host's own, on the test's veth
KEEP = f"{BB} sleep 600 >/dev/null 2>&1 &"


@dataclass
class Net:
    a: int
    b: int
    c: int
    probe: str


@pytest.fixture(scope="module")
def net(jail_base: str, probe_binary: str) -> Iterator[Net]:
    root = build_service_root(os.path.join(jail_base, "spoof"))
    probe = install_probe(probe_binary, root)
    veth = f"ljs{os.getpid() % 100000}"
    jids: list[int] = []
    try:
        r = run("ip", "link", "add", veth, "type", "veth", "peer", "name", f"{veth}p")
        assert r.rc == 0, r.err
        for dev in (veth, f"{veth}p"):
            assert run("ip", "link", "set", dev, "up").rc == 0
        assert run("ip", "addr", "add", f"{H[4]}/32", "dev", veth).rc == 0
        assert run("ip", "addr", "add", f"{H[6]}/128", "dev", veth, "nodad").rc == 0
        for name, addrs in (("a", A), ("b", B), ("c", C)):
            r = run("jail", "-i", root, f"spoof-{name}", f"{addrs[4]},{addrs[6]}",
                    "/bin/sh", "-c", KEEP)
            assert r.rc == 0, r.err
            jids.append(int(r.out.split()[0]))
        # raw sockets for the attacker: IPv4 refuses a foreign source on a
        # datagram socket even with IP_FREEBIND, a hand-made header is the way
        r = run("jailctl", "sysctl", f"jail.{jids[0]}.allow_raw_sockets=1")
        assert r.rc == 0, r.err
        for addrs in (B, C):
            for fam in (4, 6):
                assert route_is_ours(addrs[fam]), f"{addrs[fam]} is not on a linjail veth"
        for fam in (4, 6):
            r = run("ip", "route", "get", H[fam])
            assert r.out.startswith(f"local {H[fam]} "), r.out
        yield Net(*jids, probe)
    finally:
        for jid in jids:
            run("jailctl", "remove", "-t", "0.2", str(jid))
        run("ip", "link", "del", veth)


def other_veth_jails() -> list[str]:
    from linjail.state import registry
    return ([n for n in os.listdir("/sys/class/net") if n.startswith("ljh")]
            + [str(r.jid) for r in registry.all_records() if r.hostif])


def test_the_table_lives_as_long_as_jails_with_veths(jail_base: str) -> None:
    """Made by the first jail with a veth, deleted with the last; jails
    without addresses neither make nor keep it.  (Runs before this module's
    jails exist; other sessions' jails may hold the table: then skipped.)"""
    run("jls")                                   # releases what has ended
    if other_veth_jails():
        pytest.skip(f"jails of other sessions hold the table: {other_veth_jails()}")
    # a table may be there all the same: left by a release that saw another
    # session's jail, or by an older linjail
    present = run("nft", "list", "table", "inet", "linjail").rc == 0
    root = build_service_root(os.path.join(jail_base, "spoof-table"))
    jids = []
    try:
        r = run("jail", "-i", root, "plain", "", "/bin/sh", "-c", KEEP)
        assert r.rc == 0, r.err
        jids.append(int(r.out.split()[0]))
        assert (run("nft", "list", "table", "inet", "linjail").rc == 0) == present
        r = run("jail", "-i", root, "veth", A[4], "/bin/sh", "-c", KEEP)
        assert r.rc == 0, r.err
        jids.append(int(r.out.split()[0]))
        assert run("nft", "list", "table", "inet", "linjail").rc == 0
        assert run("jailctl", "remove", str(jids.pop())).rc == 0
        if other_veth_jails():
            pytest.skip("a jail of another session started meanwhile")
        assert run("nft", "list", "table", "inet", "linjail").rc == 1
    finally:
        for jid in jids:
            run("jailctl", "remove", "-t", "0.2", str(jid))


class Receiver:
    """Datagrams to ADDR:PORT, in jail JID (the probe) or on the host (jid 0)."""

    def __init__(self, net: Net, jid: int, addr: str, port: int, scope: int = 0) -> None:
        self.proc: subprocess.Popen[str] | None = None
        self.sock: socket.socket | None = None
        if jid:
            self.proc = subprocess.Popen(
                [cmd("jexec"), str(jid), net.probe, "udp-recv", addr, str(port), "3000",
                 "real"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                env={"PATH": "/usr/bin:/bin"})
            assert self.proc.stdout is not None
            line = self.proc.stdout.readline()
            assert line == "# bound\n", (line, self.proc.stderr.read()
                                         if self.proc.stderr else "")
        else:
            fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
            self.sock = socket.socket(fam, socket.SOCK_DGRAM)
            self.sock.bind((addr, port, 0, scope) if scope else (addr, port))
            self.sock.settimeout(3)

    def got(self) -> list[str]:
        """What arrived, "SOURCE TEXT" each, up to "real" or 3 s of silence."""
        if self.proc is not None:
            out, err = self.proc.communicate(timeout=30)
            lines = out.splitlines()
            assert lines and lines[-1] == "udp-recv: done", (out, err)
            return [line[len("udp-recv: "):] for line in lines[:-1]]
        assert self.sock is not None
        seen = []
        try:
            while True:
                data, peer = self.sock.recvfrom(512)
                seen.append(f"{peer[0]} {data.decode()}")
                if data == b"real":
                    break
        except socket.timeout:
            pass
        finally:
            self.sock.close()
        return seen


def send(net: Net, how: str, *args: object, jid: int = 0) -> str:
    """Jail A (or JID) sends: the probe's verdict on the send (OK or errno)."""
    r = run("jexec", str(jid or net.a), net.probe, how, *map(str, args))
    assert r.rc == 0 and r.err == "" and r.out.startswith(f"{how}: "), r
    return r.out[len(how) + 2:].strip()


# (what is forged, the forged source, the receiver) per family
CASES = [
    ("another jail's address, to a jail", C, B),
    ("another jail's address, to the host", C, H),
    ("the receiver's address, to the host", H, H),
    ("the host's address, to a jail", H, B),
    ("the receiver's address, to a jail", B, B),
]


@pytest.mark.parametrize("how", ["udp-send", "udp-raw"], ids=["freebind", "raw"])
@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("what,forged,to", CASES, ids=[c[0] for c in CASES])
def test_forged_source_is_dropped(net: Net, how: str, fam: int, what: str,
                                  forged: dict[int, str], to: dict[int, str]) -> None:
    port = 7000 + 10 * CASES.index((what, forged, to)) + fam + (5 if how == "udp-raw" else 0)
    rx = Receiver(net, net.b if to is B else 0, to[fam], port)
    # IPv4 datagram sockets refuse a source that is not local, IP_FREEBIND or
    # not; IPv6 sends it: the host must drop it
    refused = "ENETUNREACH" if (how, fam) == ("udp-send", 4) else "OK"
    assert send(net, how, forged[fam], to[fam], port, "spoof") == refused
    assert send(net, how, A[fam], to[fam], port, "real") == "OK"
    assert rx.got() == [f"{A[fam]} real"]


@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
def test_host_to_jail(net: Net, fam: int) -> None:
    rx = Receiver(net, net.b, B[fam], 7100 + fam)
    s = socket.socket(socket.AF_INET6 if fam == 6 else socket.AF_INET, socket.SOCK_DGRAM)
    with s:
        s.bind((H[fam], 0))
        s.sendto(b"real", (B[fam], 7100 + fam))
    assert rx.got() == [f"{H[fam]} real"]


def test_the_filter_as_nft_lists_it(net: Net) -> None:
    r = run("nft", "list", "table", "inet", "linjail")
    assert r.rc == 0, r.err
    assert ('\tchain prerouting {\n'
            '\t\ttype filter hook prerouting priority raw; policy accept;\n'
            '\t\tiifname "ljh*" fib saddr . iif oif missing drop\n'
            '\t}\n') in r.out, r.out


@pytest.mark.parametrize("what,forged,to", CASES[:2], ids=[c[0] for c in CASES[:2]])
def test_ipv4_is_dropped_without_rp_filter(net: Net, what: str, forged: dict[int, str],
                                           to: dict[int, str]) -> None:
    """The nftables check covers IPv4 too, not only rp_filter: switched off on
    the attacker's own veth (linjail's interface, not a host-wide setting)."""
    with open("/proc/sys/net/ipv4/conf/all/rp_filter") as f:
        if f.read().strip() != "0":
            pytest.skip("net.ipv4.conf.all.rp_filter is set: it would still filter")
    knob = f"/proc/sys/net/ipv4/conf/ljh{net.a}/rp_filter"
    with open(knob, "w") as f:
        f.write("0")
    try:
        port = 7200 + 10 * CASES.index((what, forged, to))
        rx = Receiver(net, net.b if to is B else 0, to[4], port)
        assert send(net, "udp-raw", forged[4], to[4], port, "spoof") == "OK"
        assert send(net, "udp-raw", A[4], to[4], port, "real") == "OK"
        assert rx.got() == [f"{A[4]} real"]
    finally:
        with open(knob, "w") as f:
            f.write("1")


# -- a jail on a host's link (macvlan) -----------------------------------------------------

M = {4: "203.0.113.65", 6: "2001:db8:60::65"}      # the macvlan jail
PEER = {4: "203.0.113.79", 6: "fe80::6:79"}         # the link's other end, on the host
FOREIGN = {4: "203.0.113.99", 6: "2001:db8:60::99"}  # on no jail


@dataclass
class Link:
    jid: int
    peer: str
    peer_mac: str


@pytest.fixture(scope="module")
def link(net: Net, jail_base: str) -> Iterator[Link]:
    """Jail M, started by jailctl with `interface` a veth of this module's,
    whose other end holds PEER's addresses."""
    root = os.path.join(jail_base, "spoof")           # net's root: it has the probe
    parent = f"ljm{os.getpid() % 100000}"
    peer = f"{parent}p"
    base = os.path.join(jail_base, "spoof-link")
    os.makedirs(os.path.join(base, "run"), exist_ok=True)
    conf = os.path.join(base, "rc.conf")
    env = {"PATH": "/usr/bin:/bin", "LANG": "C", "LINJAIL_VARRUN": os.path.join(base, "run")}
    with open(conf, "w") as f:
        f.write(f'jail_enable="YES"\njail_list="m"\njail_m_rootdir="{root}"\njail_m_hostname="m.example.org"\n'
                f'jail_m_ip="{M[4]},{M[6]}"\njail_m_interface="{parent}"\n'
                f'jail_m_consolelog="{base}/console.log"\n')
    with open(os.path.join(root, "etc", "rc"), "w") as f:
        f.write(KEEP + "\n")                      # exec_start: /bin/sh /etc/rc
    started = False
    try:
        r = run("ip", "link", "add", parent, "type", "veth", "peer", "name", peer)
        assert r.rc == 0, r.err
        for dev in (parent, peer):
            assert run("ip", "link", "set", dev, "up").rc == 0
        assert run("ip", "addr", "add", f"{PEER[4]}/32", "dev", peer).rc == 0
        assert run("ip", "addr", "add", f"{PEER[6]}/64", "dev", peer, "nodad").rc == 0
        r = run("jailctl", "start", "-f", conf, env=env)
        started = True
        assert (r.rc, r.err) == (0, ""), r.out
        with open(os.path.join(base, "run", "jail_m.id")) as f:
            jid = int(f.read())
        for knob in ("allow_raw_sockets=1", "socket_unixiproute_only=0"):
            assert run("jailctl", "sysctl", f"jail.{jid}.{knob}").rc == 0
        with open(f"/sys/class/net/{peer}/address") as f:
            mac = f.read().strip()
        yield Link(jid, peer, mac)
    finally:
        if started:
            run("jailctl", "stop", "-f", conf, env=env)
        run("ip", "link", "del", parent)


LINK_CASES = [("another jail's address", A), ("an address of no jail", FOREIGN),
              ("the receiver's address", {4: PEER[4], 6: f"{PEER[6]}%eth0"})]


@pytest.mark.parametrize("what,forged", LINK_CASES, ids=[c[0] for c in LINK_CASES])
def test_macvlan_jail_datagram_with_a_forged_source(net: Net, link: Link, what: str,
                                                    forged: dict[int, str]) -> None:
    """IPV6_FREEBIND to the link's other end (link-local: on-link, no route needed)."""
    port = 7300 + LINK_CASES.index((what, forged))
    rx = Receiver(net, 0, PEER[6], port, socket.if_nametoindex(link.peer))
    dst = f"{PEER[6]}%eth0"
    assert send(net, "udp-send", forged[6], dst, port, "spoof", jid=link.jid) == "OK"
    assert send(net, "udp-send", M[6], dst, port, "real", jid=link.jid) == "OK"
    assert rx.got() == [f"{M[6]} real"]


@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("what,forged", LINK_CASES, ids=[c[0] for c in LINK_CASES])
def test_macvlan_jail_frame_with_a_forged_source(net: Net, link: Link, fam: int, what: str,
                                                 forged: dict[int, str]) -> None:
    """Whole frames from a packet socket: no route, no source check of the kernel's."""
    port = 7400 + 10 * LINK_CASES.index((what, forged)) + fam
    rx = Receiver(net, 0, PEER[fam], port, socket.if_nametoindex(link.peer) if fam == 6 else 0)
    # the egress hook's drop is the sender's ENOBUFS (net_xmit_errno(NET_XMIT_DROP))
    for src, text, result in ((forged[fam], "spoof", "ENOBUFS"), (M[fam], "real", "OK")):
        assert send(net, "frame-send", "eth0", link.peer_mac, src, PEER[fam], port, text,
                    jid=link.jid) == result
    assert rx.got() == [f"{M[fam]} real"]


def test_macvlan_filter_as_nft_lists_it(link: Link) -> None:
    from linjail.confine import net as jailnet
    from linjail.state import registry
    rec = registry.lookup(link.jid)
    assert rec is not None
    r = run("nsenter", "-t", str(rec.pid), "-n", "nft", "list", "table", "netdev", "linjail")
    assert r.rc == 0, r.err
    ll = jailnet.link_local(jailnet.macs(link.jid)[1]).packed.hex()
    v4 = "0x" + socket.inet_aton(M[4]).hex()
    v6 = "0x" + socket.inet_pton(socket.AF_INET6, M[6]).hex()
    assert r.out == (
        "table netdev linjail {\n"
        "\tchain egress {\n"
        '\t\ttype filter hook egress device "eth0" priority filter; policy drop;\n'
        f"\t\t@ll,96,16 0x800 @ll,208,32 {v4} accept\n"
        f"\t\t@ll,96,16 0x806 @ll,224,32 {v4} accept\n"
        f"\t\t@ll,96,16 0x86dd @ll,176,128 {v6} accept\n"
        f"\t\t@ll,96,16 0x86dd @ll,176,128 0x{ll} accept\n"
        "\t\t@ll,96,16 0x86dd @ll,176,128 0x0 accept\n"
        "\t}\n"
        "}\n")
    # the jail's link-local address is the one the filter lets through
    r = run("jexec", str(link.jid), BB, "ip", "-6", "-o", "addr", "show", "scope", "link")
    assert str(jailnet.link_local(jailnet.macs(link.jid)[1])) + "/64" in r.out, r.out
