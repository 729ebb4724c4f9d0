"""A registry releases only what its own records name (issue 16, item 12).

A private LINJAIL_STATE_DIR (tests, scripts) once deleted the policy rule of
every running jail of the real registry when `jls` found one stray file in
it: the sweep released every rule whose JID its own registry did not know.
Host objects (cgroup `linjail/N`, veth `ljhN`, rule `iif ljhN`) are claimed
by one jail through its cgroup directory, and only that jail's record may
release them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import Jails, leftovers, run

BB = "/usr/bin/busybox"
DAEMON = f"{BB} sleep 600 </dev/null >/dev/null 2>&1 &"


def _rules(jid: int) -> int:
    out = run("ip", "rule").out + run("ip", "-6", "rule").out
    return out.count(f"iif ljh{jid} lookup 4242")


def _private(tmp_path: Path) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "LINJAIL_STATE_DIR": str(tmp_path / "state")}


def test_a_stray_file_in_a_private_registry_leaves_real_jails_alone(
        service_root: str, jails: Jails, tmp_path: Path) -> None:
    jid = jails.start(service_root, "iso", "198.51.100.161", "/bin/sh", "-c", DAEMON)
    assert _rules(jid) == 2
    env = _private(tmp_path)
    os.makedirs(tmp_path / "state" / "jails")
    (tmp_path / "state" / "jails" / "stray").write_text("junk\n")
    r = run("jls", env=env)
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not (tmp_path / "state" / "jails" / "stray").exists()
    assert _rules(jid) == 2, "the real jail lost its policy rule"
    assert run("ip", "route", "get", "192.0.2.1", "from", "198.51.100.161",
               "iif", f"ljh{jid}").rc != 0


def test_a_dead_record_of_the_same_jid_elsewhere_leaves_the_real_jail_alone(
        service_root: str, jails: Jails, tmp_path: Path) -> None:
    """A private registry's dead record that happens to carry the JID of a
    real jail names that jail's cgroup and veth: releasing it must not kill
    the real jail or remove its rule."""
    from linjail.confine import cgroup
    from linjail.state import registry
    jid = jails.start(service_root, "iso2", "198.51.100.162", "/bin/sh", "-c", DAEMON)
    dead = registry.JailRecord(
        jid=jid, hostname="ghost", path="/", ips=["198.51.100.162"],
        bootid=registry.boot_id(), owner_pid=1, owner_start=1, pid=1, starttime=1,
        state="running", cgroup=cgroup.jail_cgroup(jid), hostif=f"ljh{jid}",
        created=time.time())
    os.makedirs(tmp_path / "state" / "jails")
    (tmp_path / "state" / "jails" / str(jid)).write_bytes(dead.encode())
    r = run("jls", env=_private(tmp_path))
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert not (tmp_path / "state" / "jails" / str(jid)).exists()
    assert _rules(jid) == 2, "the real jail lost its policy rule"
    assert os.path.exists(f"/sys/class/net/ljh{jid}")
    r = run("jexec", str(jid), BB, "true")
    assert (r.rc, r.err) == (0, "")


def test_a_killed_writer_is_released_through_its_own_record() -> None:
    """A launcher killed (-9) after it made the veth and the rule leaves a
    "starting" record: it names the cgroup and the veth, so the next jls
    releases both, and the rules, through that record."""
    import subprocess
    from linjail.confine import cgroup
    from linjail.state import registry
    jid = 999997
    assert leftovers(jid) == []
    dead = subprocess.Popen(["/bin/true"])
    dead.wait()
    cg = cgroup.jail_cgroup(jid)
    os.makedirs(cg)
    try:
        for fam in ("-4", "-6"):
            r = run("ip", fam, "rule", "add", "iif", f"ljh{jid}", "lookup", "4242",
                    "priority", "4242")
            assert r.rc == 0, r.err
        registry.write(registry.JailRecord(
            jid=jid, hostname="killed", path="/", ips=["198.51.100.163"],
            bootid=registry.boot_id(), owner_pid=dead.pid, owner_start=1,
            cgroup=cg, cgroup_ino=os.stat(cg).st_ino, hostif=f"ljh{jid}",
            created=time.time()))
        r = run("jls")
        assert r.rc == 0 and r.err == ""
        assert leftovers(jid) == []
    finally:
        registry.delete(jid)
        for fam in ("-4", "-6"):
            run("ip", fam, "rule", "del", "iif", f"ljh{jid}", "lookup", "4242",
                "priority", "4242")
        if os.path.isdir(cg):
            os.rmdir(cg)
