"""The order of the host's network steps and their undo, with a recording fake
of the netlink layer (STYLE: one narrow syscall layer with a recording fake)."""
from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

from linjail.confine import net
from linjail.kernel import netlink


class FakeNetlink:
    calls: list[tuple[Any, ...]] = []
    fail_on: str | None = None

    def __init__(self) -> None:
        pass

    def __enter__(self) -> "FakeNetlink":
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any) -> None:
            FakeNetlink.calls.append((name, *args))
            if name == FakeNetlink.fail_on:
                raise OSError(17, f"{name}: File exists")
        return call


@pytest.fixture(autouse=True)
def fake(monkeypatch: pytest.MonkeyPatch) -> None:
    FakeNetlink.calls = []
    FakeNetlink.fail_on = None
    monkeypatch.setattr(net, "Netlink", FakeNetlink)
    monkeypatch.setattr(net.socket, "if_nametoindex", lambda name: 42)
    monkeypatch.setattr(net, "_host_sysctls", lambda name: FakeNetlink.calls.append(
        ("sysctls", name)))
    monkeypatch.setattr(net, "ensure_source_filter", lambda: FakeNetlink.calls.append(
        ("ensure_source_filter",)))
    monkeypatch.setattr(net, "release_source_filter", lambda jid: FakeNetlink.calls.append(
        ("release_source_filter", jid)))


IPS = (ipaddress.ip_address("198.51.100.5"), ipaddress.ip_address("2001:db8::5"))


def test_host_steps_in_order() -> None:
    net.setup_host(7, 1234, IPS)
    names = [c[0] for c in FakeNetlink.calls]
    assert names == ["ensure_source_filter", "add_veth", "sysctls",
                     "add_unreachable_default", "add_rule",
                     "add_unreachable_default", "add_rule",
                     "add_neighbour", "add_host_route", "add_host_route",
                     "add_neighbour", "add_host_route", "add_host_route"]
    assert FakeNetlink.calls[1] == ("add_veth", "ljh7", "02:6c:68:00:00:07", "eth0",
                                    "02:6c:6a:00:00:07", 1234)
    assert ("add_rule", socket.AF_INET, "ljh7", net.JAIL_TABLE, net.RULE_PRIORITY) \
        in FakeNetlink.calls
    assert ("add_host_route", 42, IPS[0], net.JAIL_TABLE) in FakeNetlink.calls


def test_failure_undoes_what_was_done() -> None:
    FakeNetlink.fail_on = "add_neighbour"
    with pytest.raises(OSError):
        net.setup_host(8, 1234, IPS)
    undo = [c[0] for c in FakeNetlink.calls[FakeNetlink.calls.index(
        ("add_neighbour", 42, IPS[0], "02:6c:6a:00:00:08")) + 1:]]
    # routes by address and device (42), in both tables
    assert FakeNetlink.calls[-8:] == [
        ("delete_host_route", 42, IPS[0], net.JAIL_TABLE),
        ("delete_host_route", 42, IPS[0], netlink.RT_TABLE_MAIN),
        ("delete_host_route", 42, IPS[1], net.JAIL_TABLE),
        ("delete_host_route", 42, IPS[1], netlink.RT_TABLE_MAIN),
        ("delete_rule", socket.AF_INET, "ljh8", net.JAIL_TABLE, net.RULE_PRIORITY),
        ("delete_rule", socket.AF_INET6, "ljh8", net.JAIL_TABLE, net.RULE_PRIORITY),
        ("delete_link", "ljh8"),
        ("release_source_filter", 8)]
    assert len(undo) == 8


def test_teardown_of_a_vanished_veth_deletes_no_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its routes went with it; without the device a delete would hit another
    jail's route to the same address."""
    def gone(name: str) -> int:
        raise OSError(19, "No such device")
    monkeypatch.setattr(net.socket, "if_nametoindex", gone)
    net.teardown_host(net.HostNet(9, "ljh9", IPS))
    assert [c[0] for c in FakeNetlink.calls] == ["delete_rule", "delete_rule", "delete_link",
                                                 "release_source_filter"]


def test_macvlan_jail_has_no_filter_on_the_host() -> None:
    net.setup_host(5, 1234, IPS, "eth9")
    assert [c[0] for c in FakeNetlink.calls] == ["add_macvlan"]


def test_jail_side_loopback_only_without_addresses() -> None:
    net.setup_jail(3, ())
    assert FakeNetlink.calls == [("set_up", 1)]


def test_jail_side_gateways_per_family() -> None:
    net.setup_jail(3, IPS[:1])
    names = [c[0] for c in FakeNetlink.calls]
    assert names == ["set_up", "add_address", "set_up", "add_neighbour", "add_default_route"]
    assert FakeNetlink.calls[-1] == ("add_default_route", 42, net.GW4)


def test_macs_are_locally_administered_and_unique() -> None:
    h, j = net.macs(999999)
    assert h == "02:6c:68:0f:42:3f" and j == "02:6c:6a:0f:42:3f"
    assert int(h.split(":")[0], 16) & 2


def test_netlink_messages_are_well_formed() -> None:
    """The encoded veth request parses back with the kernel's layout."""
    sent: list[bytes] = []

    class Sock:
        def send(self, data: bytes) -> None:
            sent.append(data)

        def recv(self, n: int) -> bytes:
            import struct
            seq = struct.unpack_from("I", sent[-1], 8)[0]
            return struct.pack("IHHII", 36, netlink.NLMSG_ERROR, 0, seq, 0) + \
                struct.pack("i", 0) + sent[-1][:16]

    nl = netlink.Netlink.__new__(netlink.Netlink)
    nl.sock = Sock()  # type: ignore[assignment]
    nl.seq = 0
    nl.add_address(3, ipaddress.ip_address("2001:db8::5"))
    import struct
    length, kind, flags, seq, _ = struct.unpack_from("IHHII", sent[0])
    assert (length, kind, seq) == (len(sent[0]), netlink.RTM_NEWADDR, 1)
    family, plen, ifa_flags, scope, index = struct.unpack_from("BBBBI", sent[0], 16)
    assert (family, plen, ifa_flags, index) == (socket.AF_INET6, 128, netlink.IFA_F_NODAD, 3)


def test_netlink_error_names_the_operation() -> None:
    class Sock:
        def send(self, data: bytes) -> None:
            self.last = data

        def recv(self, n: int) -> bytes:
            import struct
            return struct.pack("IHHII", 36, netlink.NLMSG_ERROR, 0, 1, 0) + \
                struct.pack("i", -17) + self.last[:16]

    nl = netlink.Netlink.__new__(netlink.Netlink)
    nl.sock = Sock()  # type: ignore[assignment]
    nl.seq = 0
    with pytest.raises(OSError) as info:
        nl.delete_link("ljh3")
    assert str(info.value.strerror) == "delete link ljh3: File exists"


def test_macvlan_jail_side_filters_before_the_link_comes_up(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(net, "confine_link_sources", lambda ips, mac: FakeNetlink.calls.append(
        ("confine_link_sources", ips, mac)))
    net.setup_jail(3, IPS, "eth9")
    assert FakeNetlink.calls == [
        ("set_up", 1), ("add_address", 42, IPS[0]), ("add_address", 42, IPS[1]),
        ("confine_link_sources", IPS, "02:6c:6a:00:00:03"), ("set_up", 42)]


def test_link_local_is_the_macs_eui64() -> None:
    assert net.link_local("02:6c:6a:0f:42:3f") == ipaddress.ip_address("fe80::6c:6aff:fe0f:423f")


def test_link_sources_accepted() -> None:
    rules = net.link_source_rules(IPS, "02:6c:6a:00:00:03")
    v4, v6 = IPS[0].packed, IPS[1].packed
    assert rules == [(0x0800, 26, v4), (0x0806, 28, v4), (0x86DD, 22, v6),
                     (0x86DD, 22, net.link_local("02:6c:6a:00:00:03").packed),
                     (0x86DD, 22, bytes(16))]
