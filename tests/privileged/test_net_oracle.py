"""What the kernel holds for a jail's addresses, read with pyroute2 (an
independent netlink implementation) rather than with our own encoder."""
from __future__ import annotations

import socket

import pytest

from conftest import Jails, leftovers, needs_root, run, wait_until

pytestmark = needs_root
BB = "/usr/bin/busybox"


def test_host_side_as_pyroute2_sees_it(service_root: str, jails: Jails) -> None:
    pyroute2 = pytest.importorskip("pyroute2")
    a4, a6 = "198.51.100.62", "2001:db8::62"
    jid = jails.start(service_root, "oracle", f"{a4},{a6}", "/bin/sh", "-c",
                      f"{BB} sleep 60 >/dev/null 2>&1 &")
    jail_mac = "02:6c:6a:" + ":".join(f"{b:02x}" for b in jid.to_bytes(3, "big"))
    with pyroute2.IPRoute() as ip:
        (index,) = ip.link_lookup(ifname=f"ljh{jid}")
        table = {(r.get("dst"), r.get("oif"), r["type"])
                 for fam in (socket.AF_INET, socket.AF_INET6)
                 for r in ip.get_routes(family=fam, table=4242)}
        assert (a4, index, 1) in table and (a6, index, 1) in table
        assert (None, None, 7) in table                  # RTN_UNREACHABLE default
        main = [r for r in ip.get_routes(family=socket.AF_INET, dst=a4)
                if r.get("table") == 254]
        assert [r.get("oif") for r in main] == [index]
        rules = {(r.get("iifname"), r.get("priority"), r.get("table"))
                 for fam in (socket.AF_INET, socket.AF_INET6)
                 for r in ip.get_rules(family=fam)}
        assert (f"ljh{jid}", 4242, 4242) in rules
        neigh = {(n.get("dst"), n.get("lladdr"), n["state"])
                 for n in ip.get_neighbours(ifindex=index)}
        assert {(a4, jail_mac, 0x80), (a6, jail_mac, 0x80)} <= neigh    # NUD_PERMANENT
    run("jailctl", "remove", str(jid))
    assert wait_until(lambda: leftovers(jid) == [] or run("jls").rc != 0, timeout=5)
    assert leftovers(jid) == []
