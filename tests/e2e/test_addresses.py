"""No two jails share an address (issue 9, finding 6).

A second jail asking for an address a running jail holds is refused with
jail(2)'s EADDRINUSE, `jail: jail: Address already in use`, exit 1, and
nothing is made for it (no record, JID, veth, cgroup, rule, route, claim).
Before, its host route silently replaced the first jail's, and the first
jail's teardown then deleted the second's: routes are deleted by address and
device now.  The rc service reports it in its own words.

Addresses: 203.0.113.70-79 and 2001:db8:70::/64 (this module's), routed to
linjail veths only; the one packet sent goes to a jail address after
`ip route get` shows its veth (SPEC §10).
"""
from __future__ import annotations

import os
import subprocess
import tempfile

import pytest

from conftest import (HOST_PATH, Jails, cmd, leftovers, needs_root, route_is_ours, run,
                      wait_until)

pytestmark = needs_root
BB = "/usr/bin/busybox"
KEEP = f"{BB} sleep 600 >/dev/null 2>&1 &"
IN_USE = "jail: jail: Address already in use\n"


def next_jid() -> int:
    """The registry's JID counter (SPEC §1): what the next allocation starts from."""
    from linjail.state import registry
    try:
        with open(os.path.join(registry.state_dir(), "jid")) as f:
            return int(f.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 1


def host_state() -> dict[str, set[str]]:
    """What the host holds for jails: records, claims, veths, cgroups, rules;
    and the JID counter."""
    from linjail.confine import cgroup
    from linjail.state import registry

    def ls(path: str) -> set[str]:
        try:
            return set(os.listdir(path))
        except FileNotFoundError:
            return set()
    rules = run("ip", "rule").out + run("ip", "-6", "rule").out
    return {
        "next": {str(next_jid())},
        "records": ls(os.path.join(registry.state_dir(), "jails")),
        "claims": ls(os.path.join(registry.state_dir(), "addrs")),
        "veths": {n for n in ls("/sys/class/net") if n.startswith("ljh")},
        "cgroups": {n for n in ls(os.path.dirname(cgroup.jail_cgroup(0))) if n.isdigit()},
        "rules": {w for w in rules.split() if w.startswith("ljh")},
    }


def assert_nothing_new(before: dict[str, set[str]], refused_hostname: str) -> None:
    """Nothing appeared for the refused jail, which never had a JID.  Other
    sessions may start jails meanwhile, in this registry (their JIDs come
    from its counter and they have records of other hostnames) or in a
    private one (LINJAIL_STATE_DIR: JIDs this counter did not give out)."""
    from linjail.state import registry
    after = host_state()
    assert not [r for r in registry.all_records() if r.hostname == refused_hostname]
    given = range(int(min(before["next"])), int(min(after["next"])))
    others = {str(r.jid) for r in registry.all_records() if r.hostname != refused_hostname}
    for kind, names in after.items():
        if kind == "next":
            continue
        for name in names - before[kind]:
            if kind == "claims":
                holder = os.readlink(os.path.join(registry.state_dir(), "addrs", name))
                assert holder in others, (kind, name)
                continue
            jid = name[3:] if name.startswith("ljh") else name
            if int(jid) in given:         # this registry gave it out: to whom?
                assert jid in others, (kind, name)


def test_second_jail_with_a_running_jails_address(service_root: str, jails: Jails) -> None:
    first = jails.start(service_root, "addr-first", "203.0.113.70,2001:db8:70::70",
                        "/bin/sh", "-c", KEEP)
    before = host_state()
    for ips in ("203.0.113.70", "2001:db8:70::70", "203.0.113.71,2001:db8:70::70",
                "2001:DB8:70:0:0::70",          # the same IPv6 address, spelled otherwise
                "203.0.113.71,203.0.113.70"):
        r = run("jail", "-i", service_root, "addr-second", ips, "/bin/sh", "-c", ":")
        assert (r.rc, r.out, r.err) == (1, "", IN_USE), ips
        assert_nothing_new(before, "addr-second")
    # the first jail is untouched: its routes and its address
    for addr in ("203.0.113.70", "2001:db8:70::70"):
        assert route_is_ours(addr)
        assert f" dev ljh{first} " in run("ip", "route", "get", addr).out
    # 203.0.113.71 was claimed for a moment by a refused jail: it is free
    r = run("jail", service_root, "addr-third", "203.0.113.71", "/bin/sh", "-c", ":")
    assert (r.rc, r.out, r.err) == (0, "", "")


def test_address_free_again_once_the_jail_is_gone(service_root: str, jails: Jails) -> None:
    first = jails.start(service_root, "addr-a", "203.0.113.72", "/bin/sh", "-c", KEEP)
    assert run("jailctl", "remove", str(first)).rc == 0
    second = jails.start(service_root, "addr-b", "203.0.113.72", "/bin/sh", "-c", KEEP)
    assert f" dev ljh{second} " in run("ip", "route", "get", "203.0.113.72").out


def test_teardown_deletes_only_its_own_routes(service_root: str, jails: Jails) -> None:
    """A jail that ended by itself is released by the next command that looks;
    by then a new jail may hold its address (the claim of a dead jail is
    taken over).  The release must not delete the new jail's routes."""
    addrs = ("203.0.113.73", "2001:db8:70::73")
    r = run("jail", "-i", service_root, "addr-gone", ",".join(addrs), "/bin/sh", "-c", ":")
    assert r.rc == 0, r.err
    gone = int(r.out.split()[0])
    jails.track(gone)
    from linjail.state import registry
    rec = registry.read(gone)          # not looked at through lookup(): not reaped yet
    assert rec is not None
    assert wait_until(lambda: not rec.live(), timeout=5)    # PID 1 ends after the command
    second = jails.start(service_root, "addr-new", ",".join(addrs), "/bin/sh", "-c", KEEP)
    assert run("jls").rc == 0                          # releases the ended jail
    assert wait_until(lambda: leftovers(gone) == [], timeout=5), leftovers(gone)
    for addr in addrs:
        for table in ("main", "4242"):
            r = run("ip", "-6" if ":" in addr else "-4", "route", "show", "table", table, addr)
            assert f"dev ljh{second} " in r.out, (table, addr, r.out)
    for addr in addrs:                                 # and it answers there
        assert route_is_ours(addr)
        r = run(BB, "ping", "-c", "1", "-W", "2", addr)
        assert r.rc == 0, r.out + r.err


def test_rc_service_reports_the_address_in_use(service_root: str, jails: Jails) -> None:
    jails.start(service_root, "addr-holder", "203.0.113.74", "/bin/sh", "-c", KEEP)
    with tempfile.TemporaryDirectory(prefix="linjail-addr-", dir="/var/tmp") as base:
        varrun = os.path.join(base, "run")
        os.mkdir(varrun)
        conf = os.path.join(base, "rc.conf")
        with open(conf, "w") as f:
            f.write(f'jail_enable="YES"\njail_list="www"\njail_www_rootdir="{service_root}"\n'
                    'jail_www_hostname="inuse.example.org"\njail_www_ip="203.0.113.74"\n'
                    'jail_www_exec_start="/bin/sh -c :"\n'
                    f'jail_www_consolelog="{base}/console.log"\n')
        before = host_state()
        p = subprocess.run([cmd("jailctl"), "start", "-f", conf], capture_output=True,
                           text=True, timeout=120,
                           env={"PATH": HOST_PATH, "LANG": "C", "LINJAIL_VARRUN": varrun})
        assert (p.returncode, p.stdout, p.stderr) == (
            1, "Default global settings for jails:.\nStarting jails: cannot start jail "
               "\"www\": jail: Address already in use\n.\n", "")
        assert os.listdir(varrun) == []
        assert_nothing_new(before, "inuse.example.org")
