"""`jailctl start|stop|status` with FreeBSD's jail.conf beside rc.conf's
legacy variables: jail_conf, an empty jail_list meaning every jail of the
file, names printed, depend order, jail_reverse_stop, failures shown after
` cannot start jail "NAME": ` (FreeBSD's rc.d/jail).

Id files go to a private LINJAIL_VARRUN; every jail is removed at teardown;
addresses from 198.51.100.0/24; `interface` only on a veth the test made.
"""
from __future__ import annotations

import os
import tempfile
from typing import Iterator

import pytest

from conftest import HOST_PATH, Result, build_service_root, leftovers, needs_root, run, wait_until

pytestmark = needs_root
BB = "/usr/bin/busybox"


class Site:
    def __init__(self, base: str) -> None:
        self.base = base
        self.varrun = os.path.join(base, "run")
        os.makedirs(self.varrun)
        self.rcconf = os.path.join(base, "rc.conf")
        self.jailconf = os.path.join(base, "jail.conf")
        tag = os.getpid() % 100000
        self.names = [f"ljrc{tag}a", f"ljrc{tag}b", f"ljrc{tag}c"]

    def write(self, rcconf: str, jailconf: str) -> None:
        with open(self.rcconf, "w") as f:
            f.write(f'jail_conf="{self.jailconf}"\n' + rcconf)
        with open(self.jailconf, "w") as f:
            f.write(jailconf)

    def jailctl(self, *args: str) -> Result:
        env = {"PATH": HOST_PATH, "LANG": "C", "LINJAIL_VARRUN": self.varrun}
        return run("jailctl", args[0], "-f", self.rcconf, *args[1:], env=env, timeout=120)

    def jid(self, name: str) -> int:
        r = run("jls", "-j", name, "jid")
        return int(r.out) if r.rc == 0 else 0

    def cleanup(self) -> None:
        for name in self.names:
            jid = self.jid(name)
            if jid:
                run("jailctl", "remove", "-t", "0.2", str(jid))
                assert wait_until(lambda: not leftovers(jid))


@pytest.fixture
def site(jail_base: str) -> Iterator[Site]:
    base = tempfile.mkdtemp(prefix="rcconf-", dir=jail_base)
    s = Site(base)
    yield s
    s.cleanup()


@pytest.fixture
def rc_root(jail_base: str) -> Iterator[str]:
    """A service root with an /etc/rc that leaves a daemon and /etc/rc.shutdown."""
    root = tempfile.mkdtemp(prefix="rcroot-", dir=jail_base)
    os.rmdir(root)
    build_service_root(root)
    with open(os.path.join(root, "etc/rc"), "w") as f:
        f.write(f"#!/bin/sh\necho rc ran > /var/rc-ran\n{BB} sleep 300 >/dev/null 2>&1 &\n")
    with open(os.path.join(root, "etc/rc.shutdown"), "w") as f:
        f.write("#!/bin/sh\necho shutdown ran\n")
    yield root


def test_empty_list_starts_every_jail_in_depend_order(site: Site, rc_root: str) -> None:
    a, b, c = site.names
    site.write('jail_enable="YES"\njail_list=""\njail_reverse_stop="YES"\n', f"""
path = "{rc_root}";
exec.start = "/bin/sh /etc/rc";
exec.stop = "/bin/sh /etc/rc.shutdown";
mount.devfs;
{a} {{ depend = {b}; }}
{b} {{ }}
{c} {{ host.hostname = "c.example.org"; }}
""")
    r = site.jailctl("start")
    assert (r.rc, r.err) == (0, ""), r.out
    assert r.out.endswith(f"Starting jails: {b} {a} {c}.\n")
    for name in (a, b, c):
        jid = site.jid(name)
        with open(os.path.join(site.varrun, f"jail_{name}.id")) as f:
            assert f.read() == f"{jid}\n"
    r = site.jailctl("status")
    assert r.rc == 0
    assert r.out == "".join(f"{n}: running, jid {site.jid(n)}, addresses (none)\n"
                            for n in (b, a, c))
    r = site.jailctl("stop")
    assert (r.rc, r.out, r.err) == (0, f"Stopping jails: {c} {a} {b}.\n", "")
    assert all(site.jid(n) == 0 for n in (a, b, c))
    assert not os.listdir(site.varrun)


def test_named_jail_with_its_dependency_and_legacy_beside(site: Site, rc_root: str,
                                                         service_root: str) -> None:
    a, b, legacy = site.names
    site.write(f'''jail_enable="NO"
jail_{legacy}_rootdir="{service_root}"
jail_{legacy}_hostname="legacy.example.org"
jail_{legacy}_ip="198.51.100.87"
jail_{legacy}_exec_start="/bin/sh -c '{BB} sleep 300 >/dev/null 2>&1 &'"
''', f"""
path = "{rc_root}";
exec.start = "/bin/sh /etc/rc";
mount.devfs;
{a} {{ depend = {b}; }}
{b} {{ }}
""")
    r = site.jailctl("start", a, legacy)
    assert (r.rc, r.err) == (0, ""), r.out
    assert r.out.endswith(f"Starting jails: {a} legacy.example.org.\n")
    assert site.jid(b) != 0                       # started as a's dependency
    r = site.jailctl("stop", a, legacy)
    assert r.rc == 0 and r.out.endswith(f"Stopping jails: {a} legacy.example.org.\n")
    r = site.jailctl("stop", a)
    assert r.out.endswith(f"Stopping jails: cannot stop jail {a}. No jail id in "
                          f"{site.varrun}\n.\n")


def test_a_failing_jail_shows_what_jail_said(site: Site, rc_root: str) -> None:
    a, b, _ = site.names
    site.write('jail_enable="YES"\n', f"""
path = "{rc_root}";
{a} {{ exec.start = "{BB} false"; }}
{b} {{ exec.start = "/bin/sh /etc/rc"; mount.devfs; }}
""")
    r = site.jailctl("start")
    assert r.rc == 1
    assert r.out.endswith(f'Starting jails: cannot start jail "{a}": \n'
                          f"{a}: created\njail: {a}: {BB} false: failed\n{a}: removed\n"
                          f" {b}.\n")
    assert site.jid(a) == 0 and site.jid(b) != 0


def test_unparsable_jail_conf_stops_the_command(site: Site) -> None:
    site.write('jail_enable="YES"\n', "x {\n path = /\n}\n")
    r = site.jailctl("start")
    assert r.rc == 1
    assert r.err == f'jailctl: {site.jailconf} line 3: }}: syntax error (expected ";")\n'


@pytest.fixture
def veth() -> Iterator[str]:
    name = f"ljr{os.getpid() % 100000}"
    r = run("ip", "link", "add", name, "type", "veth", "peer", "name", name + "p")
    if r.rc != 0:
        pytest.skip(f"cannot create a veth: {r.err.strip()}")
    run("ip", "link", "set", name, "up")
    yield name
    run("ip", "link", "del", name)


def test_bastille_style_with_jailctl(site: Site, rc_root: str, veth: str,
                                     tmp_path: object) -> None:
    name = site.names[0]
    fstab = os.path.join(site.base, "fstab")
    data = os.path.join(site.base, "data")
    os.makedirs(data)
    os.makedirs(os.path.join(rc_root, "data"), exist_ok=True)
    with open(fstab, "w") as f:
        f.write(f"{data} {rc_root}/data nullfs ro 0 0\n")
    site.write('jail_enable="YES"\n', f"""{name} {{
  devfs_ruleset = 4;
  enforce_statfs = 2;
  exec.clean;
  exec.consolelog = {site.base}/console.log;
  exec.start = '/bin/sh /etc/rc';
  exec.stop = '/bin/sh /etc/rc.shutdown';
  host.hostname = {name};
  mount.devfs;
  mount.fstab = {fstab};
  path = {rc_root};
  interface = {veth};
  ip4.addr = 198.51.100.86;
}}
""")
    r = site.jailctl("start", name)
    assert (r.rc, r.err) == (0, ""), r.out
    assert r.out.endswith(f"Starting jails: {name}.\n")
    jid = site.jid(name)
    with open(os.path.join(rc_root, "var/rc-ran")) as f:
        assert f.read() == "rc ran\n"
    assert "198.51.100.86/32" in run("jexec", name, BB, "ip", "-o", "addr").out
    r = site.jailctl("status", name)
    assert r.out == f"{name}: running, jid {jid}, addresses 198.51.100.86\n"
    r = site.jailctl("stop", name)
    assert (r.rc, r.out) == (0, f"Stopping jails: {name}.\n")
    with open(os.path.join(site.base, "console.log")) as f:
        assert f.read().endswith("shutdown ran\n")
    assert site.jid(name) == 0 and not leftovers(jid)
