"""Jailed root is not host root (issue 11): the user namespace of a jail, seen
from the host and from inside.

What the escape battery checks in both settings (tests/e2e/test_escape.py,
test_host_objects.py: jail.unprivileged_root=1 and =0) is not repeated here;
this module checks the mechanism: the range each jail gets, what `jls`
shows, the per-jail settings (rc.conf, jail.conf's parameter), chflags'
interplay as `jailctl start` reports it, and the one line a file system that
cannot be idmapped gives, with nothing left behind.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Iterator

import pytest

from conftest import (HOST_PATH, Jails, cmd, knob_state, leftovers, needs_root, run,
                      tool_env)

pytestmark = needs_root
BB = "/usr/bin/busybox"
FIRST, LAST, SIZE = 524288, 1879048191, 65536


def _record(jid: int) -> dict[str, object]:
    rows = [r for r in json.loads(run("jls", "--json").out) if r["jid"] == jid]
    assert len(rows) == 1, rows
    return rows[0]


def _host_ids(pid: int) -> tuple[int, int]:
    """The real uid and gid of host process PID (/proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        fields = {line.split(":")[0]: line.split()[1:] for line in f}
    return int(fields["Uid"][0]), int(fields["Gid"][0])


def _subids() -> list[tuple[int, int]]:
    out = []
    for path in ("/etc/subuid", "/etc/subgid"):
        try:
            with open(path) as f:
                for line in f:
                    parts = line.strip().split(":")
                    if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
                        out.append((int(parts[1]), int(parts[2])))
        except FileNotFoundError:
            pass
    return out


def test_each_jail_gets_a_range_of_its_own(service_root: str, jails: Jails) -> None:
    """65536 ids per running jail, a multiple of 65536 in systemd's container
    range, none shared, none of the host's; jls --json and the jls parameters
    show it; the jail's processes are those host ids; inside it is uid 0."""
    daemon = f"{BB} sleep 120 >/dev/null 2>&1 &"
    jids = [jails.start(service_root, f"range{i}.example.org", "", "/bin/sh", "-c", daemon)
            for i in range(3)]
    bases = []
    for jid in jids:
        rec = _record(jid)
        base = rec["uid_base"]
        assert isinstance(base, int) and rec["uid_count"] == SIZE
        assert FIRST <= base and base + SIZE - 1 <= LAST and base % SIZE == 0
        assert rec["knobs"]["unprivileged_root"] == 1          # type: ignore[index]
        assert run("jls", "-j", str(jid), "unprivileged_root", "unprivileged_root.uid").out \
            == f"true {base}\n"
        assert _host_ids(int(rec["pid"])) == (base, base)      # type: ignore[arg-type]
        r = run("jexec", str(jid), BB, "sh", "-c", f"{BB} id -u; {BB} cat /proc/self/uid_map")
        assert r.out.split() == ["0", "0", str(base), str(SIZE)], r.err
        for first, count in _subids():
            assert base + SIZE <= first or first + count <= base
        bases.append(base)
    assert len(set(bases)) == 3


def test_a_range_is_released_with_its_jail(service_root: str, jails: Jails) -> None:
    from linjail.state import registry
    jid = jails.start(service_root, "release.example.org", "", "/bin/sh", "-c",
                      f"{BB} sleep 120 >/dev/null 2>&1 &")
    base = _record(jid)["uid_base"]
    claim = os.path.join(registry.state_dir(), "uids", str(base))
    assert os.readlink(claim) == str(jid)
    assert run("jailctl", "remove", "-t", "0.2", str(jid)).rc == 0
    run("jls")
    assert not os.path.lexists(claim)


def test_unprivileged_root_0_per_jail(service_root: str, jails: Jails) -> None:
    """FreeBSD's form takes the knob as a parameter: false gives a jail
    without a user namespace (its root is the host's root)."""
    name = f"uid0-{os.getpid()}"
    r = run("jail", "-c", f"path={service_root}", f"name={name}", "persist",
            "host.hostname=uid0.example.org", "mount.procfs", "unprivileged_root=false")
    assert r.rc == 0, r.err
    jid = jails.track(int(run("jls", "-j", name, "jid").out))
    assert run("jls", "-j", name, "unprivileged_root", "unprivileged_root.uid").out == \
        "false 0\n"
    assert _record(jid)["uid_base"] == 0
    r = run("jexec", str(jid), BB, "cat", "/proc/self/uid_map")
    assert r.out.split() == ["0", "0", "4294967295"]
    # set when the jail is made: jail -m cannot change it
    r = run("jail", "-m", f"name={name}", "unprivileged_root=true")
    assert (r.rc, r.err) == (1, "jail: unprivileged_root cannot be changed after creation\n")


@pytest.fixture
def overlay_root(jail_base: str, service_root: str) -> Iterator[str]:
    """A jail root on an overlayfs of the host's (made and removed here): a
    file system that cannot be idmapped."""
    base = tempfile.mkdtemp(prefix="ovl-", dir=jail_base)
    lower, upper, work, merged = (os.path.join(base, d) for d in ("lower", "upper", "work",
                                                                  "root"))
    for d in (upper, work, merged):
        os.mkdir(d)
    shutil.copytree(service_root, lower, symlinks=True)
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                    f"lowerdir={lower},upperdir={upper},workdir={work}", merged], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", "-l", merged], check=False)
        shutil.rmtree(base, ignore_errors=True)


def test_a_root_that_cannot_be_idmapped(overlay_root: str) -> None:
    """One line naming the root, its file system and the knob; no jail, no
    record, no cgroup, no mount left."""
    r = run("jail", "-i", overlay_root, "ovl.example.org", "198.51.100.188", BB, "true")
    assert (r.rc, r.out, r.err) == (
        1, "", f"jail: {overlay_root}: its file system (overlay) cannot be idmapped: "
               f"set jail.unprivileged_root=0 for this jail\n")
    from linjail.state import registry
    assert [rec.jid for rec in registry.all_records() if rec.path == overlay_root] == []
    assert [r for r in json.loads(run("jls", "--json").out) if r["path"] == overlay_root] == []
    with open("/proc/self/mountinfo") as f:
        assert [line for line in f if f" {overlay_root}/" in line] == []
    # with 0 the same root starts (no idmapping)
    with knob_state(unprivileged_root=0):
        r = run("jail", overlay_root, "ovl.example.org", "", BB, "id", "-u")
    assert (r.rc, r.out) == (0, "0\n"), r.err


RC_CONF = """\
jail_enable="YES"
jail_list="{name}"
jail_{name}_rootdir="{root}"
jail_{name}_hostname="{name}.example.org"
jail_{name}_ip="{addr}"
jail_{name}_exec_start="/bin/sh -c '{bb} sleep 120 >/dev/null 2>&1 &'"
"""


@pytest.mark.parametrize("addr,extra,uid_base,warning", [
    ("203.0.113.120", "", True, ""),
    ("203.0.113.121", 'jail_{name}_unprivileged_root="NO"\n', False, ""),
    ("203.0.113.122", 'jail_default_chflags_allow="YES"\n', False,
     "jailctl: WARNING: {name}: chflags_allowed=1 needs CAP_LINUX_IMMUTABLE in the host's "
     "user namespace: this jail gets unprivileged_root=0 (jailed root is host root)\n"),
], ids=["default", "per-jail-NO", "chflags"])
def test_rc_conf(service_root: str, addr: str, extra: str, uid_base: bool,
                 warning: str) -> None:
    """rc.conf: the default, jail_NAME_unprivileged_root="NO", and
    jail_default_chflags_allow="YES" (DragonFly's), which takes the user
    namespace away with one warning line."""
    name = f"ujrc{os.getpid() % 10000}"
    with knob_state() as env, tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        conf = os.path.join(tmp, "rc.conf")
        with open(conf, "w") as f:
            f.write(RC_CONF.format(name=name, root=service_root, bb=BB, addr=addr) +
                    extra.format(name=name))
        varrun = os.path.join(tmp, "run")
        os.mkdir(varrun)
        e = tool_env(HOST_PATH, LINJAIL_VARRUN=varrun, **env)
        r = run("jailctl", "start", "-f", conf, name, env=e, timeout=120)
        try:
            assert r.rc == 0, r.err
            assert warning.format(name=name) in r.err
            with open(os.path.join(varrun, f"jail_{name}.id")) as f:
                jid = int(f.read())
            rec = _record(jid)
            assert bool(rec["uid_base"]) == uid_base
            r = run("jexec", str(jid), BB, "cat", "/proc/self/uid_map")
            assert (r.out.split()[1] != "0") == uid_base
        finally:
            run("jailctl", "stop", "-f", conf, name, env=e, timeout=120)
            run("jls")
        assert leftovers(jid) == []


@pytest.mark.parametrize("unprivileged", ["true", "false"])
def test_an_fstab_bind_keeps_its_owners(private_root: str, jail_base: str, jails: Jails,
                                        unprivileged: str) -> None:
    """A host directory bound in by the jail's fstab (FreeBSD's mount
    parameter): an idmapped bind with the default, so its owners are the same
    inside as on disk, and what jailed root makes there is uid 0 on disk."""
    src = tempfile.mkdtemp(prefix="bind-", dir=jail_base)
    try:
        os.chown(src, 1001, 1001)
        os.mkdir(os.path.join(private_root, "mnt"))
        name = f"bind-{unprivileged}-{os.getpid()}"
        r = run("jail", "-c", f"path={private_root}", f"name={name}", "persist",
                "host.hostname=bind.example.org", "mount.procfs",
                f"mount={src} {private_root}/mnt nullfs rw 0 0",
                f"unprivileged_root={unprivileged}")
        assert r.rc == 0, r.err
        jid = jails.track(int(run("jls", "-j", name, "jid").out))
        r = run("jexec", str(jid), BB, "sh", "-c",
                f"{BB} stat -c %u:%g /mnt && {BB} touch /mnt/made && {BB} stat -c %u /mnt/made")
        assert (r.rc, r.out) == (0, "1001:1001\n0\n"), r.err
        st = os.stat(os.path.join(src, "made"))
        assert (st.st_uid, st.st_gid) == (0, 0)
    finally:
        shutil.rmtree(src, ignore_errors=True)
