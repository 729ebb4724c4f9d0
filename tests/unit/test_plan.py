"""The lifecycle as data (issue 10), without root: the jail side's steps run
against kernel/fake.py, which records every kernel call in order, and a
failure injected at any step undoes exactly the steps before it."""
from __future__ import annotations

import errno
import os
import stat

import pytest

from linjail.confine import rootfs
from linjail.errors import render
from linjail.kernel import libc
from linjail.kernel.fake import FakeKernel
from linjail.lifecycle import plan, start
from linjail.lifecycle.confinement import Confinement
from linjail.lifecycle.plan import Step
from linjail.model import JailSpec, Mount
from linjail.state import registry

# a valid one-instruction program: "return ALLOW" (seccomp.valid_program)
ALLOW = bytes([0x06, 0, 0, 0, 0, 0, 0xFF, 0x7F])
KEEP = frozenset({0, 1, 5})


def first_process(**changes: object) -> start.FirstProcess:
    spec = JailSpec(path="/usr/jail/www", hostname="www", ips=(), command=("/bin/true",))
    spec = spec.replace(**changes)
    return start.FirstProcess(spec, 7, b"\x7fELF reaper", (0, 1, 2), None, (),
                              (100, 101, 102, 103), Confinement(KEEP, ALLOW))


@pytest.fixture(autouse=True)
def no_trace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINJAIL_DEBUG", raising=False)
    plan.trace_to(-1)


def run_jail_side(ctx: start.FirstProcess, k: FakeKernel) -> None:
    k.reads.append(b"n")          # the launcher's go-on after the host side is made
    plan.run(start.JAIL_STEPS, ctx, "first process")


def test_the_jail_side_in_order() -> None:
    ctx = first_process(mounts=(Mount("bind", "/srv/data", "/data", readonly=True),))
    with FakeKernel() as k:
        run_jail_side(ctx, k)
    calls = k.calls
    names = k.names()
    # the namespaces first, then the mounts: propagation off the host's
    # tree (slave, recursive) before anything is mounted
    unshare = k.find("unshare", libc.CLONE_NEWNS | libc.CLONE_NEWIPC | libc.CLONE_NEWNET)
    propagation = k.find("mount", None, "/", None, libc.MS_REC | libc.MS_SLAVE)
    assert unshare < k.find("sethostname", b"www") < propagation
    # the root: a recursive clone of the jail's tree, nodev, moved onto itself
    clone = k.find("open_tree")
    assert propagation < clone
    assert calls[clone + 1].name == "mount_setattr"
    assert calls[clone + 1].args[3] == libc.MOUNT_ATTR_NODEV
    assert calls[clone + 2].name == "move_mount"
    # /dev, /proc, /sys, then the fstab bind, each in the order of the plan
    dev = k.find("mount", "tmpfs")
    devpts = k.find("mount", "devpts")
    proc = k.find("mount", "proc")
    sysfs = k.find("mount", "sysfs")
    assert clone < dev < devpts < proc < sysfs
    assert names[dev:devpts].count("mknod") == 6
    # the masks: read-only binds of /proc's paths and the masked files, an
    # empty read-only tmpfs over each masked directory, after their file system
    ro = [i for i, c in enumerate(calls) if c.name == "mount_setattr" and
          c.args[3] & libc.MOUNT_ATTR_RDONLY]
    assert len(ro) == len(rootfs.PROC_READONLY) + len(rootfs.PROC_MASKED_FILES) + 1
    assert all(proc < i for i in ro)
    masks = [i for i, c in enumerate(calls) if c.name == "mount" and c.args[0] == "tmpfs"
             and c.args[3] & libc.MS_RDONLY]
    assert len(masks) == len(rootfs.PROC_MASKED_DIRS) + len(rootfs.SYS_MASKED_DIRS)
    assert proc < masks[0] and sysfs < masks[-1]
    fstab = ro[-1]                  # /srv/data -> /data, ro,nosuid,nodev
    assert calls[fstab].args[3] == (libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOSUID |
                                    libc.MOUNT_ATTR_RDONLY)
    assert sysfs < fstab
    # after the launcher's "n": the cgroup namespace, lo, then pivot_root
    cgroup = k.find("unshare", libc.CLONE_NEWCGROUP)
    pivot = k.find("pivot_root", ".", ".")
    assert fstab < k.find("read") < cgroup < k.find("netlink.set_up", 1) < pivot
    assert calls[pivot - 1] == calls[k.find("fchdir")]
    assert calls[pivot + 1].name == "umount2" and calls[pivot + 1].args == (".", libc.MNT_DETACH)
    # the confinement last: bounding set, inheritable set, seccomp, exec
    drops = [i for i, c in enumerate(calls) if c.name == "prctl" and
             c.args[0] == libc.PR_CAPBSET_DROP]
    assert sorted(calls[i].args[1] for i in drops) == \
        [c for c in range(len(drops) + len(KEEP)) if c not in KEEP]
    assert pivot < drops[0]
    capset = k.find("capset")
    seccomp = k.find("seccomp_set_mode_filter", ALLOW)
    assert drops[-1] < capset < seccomp
    assert names[seccomp + 1:] == ["prctl", "execve"]
    assert calls[seccomp + 1].args[:2] == (libc.PR_SET_PDEATHSIG, 0)
    assert calls[-1].args[1][:2] == ["linjail-reaper", "3"]


def test_devfs_and_procfs_off() -> None:
    ctx = first_process(devfs=False, procfs=False)
    with FakeKernel() as k:
        run_jail_side(ctx, k)
    mounted = [c.args[0] for c in k.calls if c.name == "mount"]
    assert mounted == [None, "sysfs", "tmpfs", "tmpfs"]   # propagation, /sys and its masks


def test_no_step_runs_after_a_failing_one() -> None:
    with FakeKernel() as k:
        k.fail("pivot_root", err=errno.EINVAL)
        with pytest.raises(OSError) as info:
            run_jail_side(first_process(), k)
    assert info.value.errno == errno.EINVAL
    assert k.names()[-1] == "pivot_root"
    assert "capset" not in k.names() and "execve" not in k.names()


def test_a_symlink_in_place_of_proc_stops_before_any_mount_on_it() -> None:
    with FakeKernel() as k:
        k.fail("openat2", err=errno.ELOOP)   # the first look at proc (devfs off)
        with pytest.raises(Exception) as info:
            run_jail_side(first_process(devfs=False), k)
    assert render("jail", info.value) == \
        "jail: /usr/jail/www/proc: is a symbolic link, refusing to mount /proc there"
    assert [c.args[0] for c in k.calls if c.name == "mount"] == [None]
    assert "pivot_root" not in k.names()


def test_the_fake_answers_like_a_kernel() -> None:
    with FakeKernel() as k:
        fd = libc.openat2(-100, "etc", os.O_PATH, 0)
        assert fd >= 1000 and stat.S_ISDIR(libc.fstat(fd).st_mode)
        libc.close(fd)
    assert [str(c) for c in k.calls] == [f"openat2(-100, 'etc', {os.O_PATH}, 0)",
                                         "fstat(1001)", "close(1001)"]
    assert libc.openat2 is not k._recorder   # removed again


# --- failure at step N: the undos of steps N-1..1, in reverse ---------------------------

def stand_ins(table: tuple[Step[object], ...], log: list[str],
              fail: int) -> tuple[Step[object], ...]:
    """TABLE with each do/undo replaced by one that logs; step FAIL raises."""
    def do(i: int, name: str) -> object:
        def run(ctx: object) -> None:
            log.append(f"do {name}")
            if i == fail:
                raise OSError(errno.EIO, "injected")
        return run

    def undo(name: str) -> object:
        return lambda ctx: log.append(f"undo {name}")
    return tuple(Step(s.name, do(i, s.name), undo(s.name) if s.undo else None)  # type: ignore
                 for i, s in enumerate(table))


@pytest.mark.parametrize("table", [start.HOST_STEPS, start.JAIL_STEPS],
                         ids=["host side", "jail side"])
def test_a_failure_at_step_n_undoes_the_steps_before_it(table: tuple[Step[object], ...]) \
        -> None:
    for n in range(len(table)):
        log: list[str] = []
        with pytest.raises(OSError):
            plan.run(stand_ins(table, log, n), None, "test")
        done = [s.name for s in table[:n]]
        undone = [s.name for s in reversed(table[:n]) if s.undo is not None]
        assert log == [f"do {d}" for d in done] + [f"do {table[n].name}"] + \
            [f"undo {u}" for u in undone], n


def test_an_undo_that_fails_does_not_stop_the_others() -> None:
    log: list[str] = []

    def bad(ctx: object) -> None:
        log.append("undo b")
        raise OSError(errno.EBUSY, "busy")
    table: tuple[Step[None], ...] = (
        Step("a", lambda c: log.append("do a"), lambda c: log.append("undo a")),
        Step("b", lambda c: log.append("do b"), bad),
        Step("c", lambda c: log.append("do c"), lambda c: log.append("undo c")))
    assert plan.unwind(table, None, "test") is False
    assert log == ["undo c", "undo b", "undo a"]


def test_steps_say_what_they_do() -> None:
    plan.trace_to(2)
    try:
        with FakeKernel() as k:
            run_jail_side(first_process(), k)
    finally:
        plan.trace_to(-1)
    # the first process keeps a copy of the launcher's stderr (above 2), and
    # moves it above the reaper's descriptors with the others
    lines = [c.args[1].decode() for c in k.calls if c.name == "write" and c.args[0] != 100
             and c.args[1].startswith(b"jail: ")]
    assert lines[:2] == ["jail: first process: close descriptors\n",
                         "jail: first process: die with the launcher\n"]
    assert "jail: first process: mount: bind /usr/jail/www -> / (nodev)\n" in lines
    assert "jail: first process: hostname: www\n" in lines
    assert lines[-3:] == ["jail: first process: capabilities\n",
                          "jail: first process: seccomp\n",
                          "jail: first process: exec: linjail-reaper -- /bin/true\n"]
    targets = {c.args[0] for c in k.calls if c.name == "write" and c.args[1] in
               (lines[0].encode(), lines[1].encode(), lines[-1].encode())}
    assert targets == {2, 1001, 7}


# --- the one teardown: HOST_STEPS backwards, from a record alone --------------------------

def dead_record(**changes: object) -> registry.JailRecord:
    rec = registry.JailRecord(jid=7, hostname="www", path="/usr/jail/www",
                              ips=["198.51.100.7"], bootid="gone", owner_pid=1,
                              owner_start=0, state="running", pid=1234, starttime=1,
                              cgroup="/sys/fs/cgroup/unified/linjail/7", hostif="ljh7")
    return rec.replace(**changes)


@pytest.fixture
def host_objects(monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> list[str]:
    """What the teardown removes, recorded instead of removed."""
    from linjail.confine import cglayout, cgroup, net
    log: list[str] = []
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(start, "owns_host_side", lambda rec: True)
    monkeypatch.setattr(net, "teardown_host", lambda hn: log.append(
        f"veth {hn.ifname} {' '.join(map(str, hn.ips))}"))
    monkeypatch.setattr(cglayout, "release", lambda jid: log.append(f"v1 {jid}"))
    monkeypatch.setattr(cgroup, "remove", lambda path: log.append(f"cgroup {path}"))
    real_delete = registry.delete
    monkeypatch.setattr(registry, "delete", lambda jid, *known: (log.append(f"record {jid}"),
                                                                 real_delete(jid, *known)))
    return log


def test_release_walks_the_host_side_backwards_from_the_record(
        host_objects: list[str]) -> None:
    rec = dead_record()
    registry.write(rec)
    assert start.release(rec) is True
    assert host_objects == ["veth ljh7 198.51.100.7", "v1 7",
                            "cgroup /sys/fs/cgroup/unified/linjail/7", "record 7"]
    assert registry.read(7) is None
    # again (another command got there first): nothing fails
    host_objects.clear()
    assert start.release(rec) is True
    assert host_objects[-1] == "record 7"


def test_a_record_that_lost_its_claim_releases_only_itself(
        host_objects: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(start, "owns_host_side", lambda rec: False)
    assert start.release(dead_record()) is True
    assert host_objects == ["record 7"]


def test_what_cannot_be_removed_keeps_the_claim_and_the_record(
        host_objects: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from linjail.confine import net

    def busy(hn: object) -> None:
        raise OSError(errno.EBUSY, "delete link ljh7: Device or resource busy")
    monkeypatch.setattr(net, "teardown_host", busy)
    rec = dead_record()
    registry.write(rec)
    assert start.release(rec) is False
    assert host_objects == ["v1 7"]          # the cgroup and the record stay: retried later
    assert registry.read(7) == rec


def test_a_jail_without_addresses_has_no_veth_to_remove(host_objects: list[str]) -> None:
    start.release(dead_record(ips=[], hostif=""))
    assert host_objects == ["v1 7", "cgroup /sys/fs/cgroup/unified/linjail/7", "record 7"]


def test_a_failed_start_drops_its_record_even_when_its_cgroup_stays(
        host_objects: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """As before the tables: the start's own record goes; the empty claim
    left is sweep_claims' (a record's teardown keeps both instead)."""
    from linjail.confine import cgroup

    def busy(path: str) -> None:
        raise OSError(errno.EBUSY, "Device or resource busy", path)
    monkeypatch.setattr(cgroup, "remove", busy)
    rec = dead_record()
    registry.write(rec)
    ctx = start.Launcher(JailSpec(path=rec.path, hostname="www", ips=(), command=("x",)))
    ctx.rec = rec
    with pytest.raises(OSError):
        start._free_jid(ctx)
    assert registry.read(7) is None
    registry.write(rec)
    assert start.release(rec) is False
    assert registry.read(7) == rec


def test_claims_wait_for_a_clean_walk_only_in_unwind() -> None:
    log: list[str] = []

    def bad(ctx: object) -> None:
        raise OSError(errno.EBUSY, "busy")
    table: tuple[Step[None], ...] = (
        Step("claim", lambda c: None, lambda c: log.append("undo claim"), claim=True),
        Step("thing", lambda c: None, bad),
        Step("fails", lambda c: (_ for _ in ()).throw(OSError(errno.EIO, "injected"))))
    with pytest.raises(OSError):
        plan.run(table, None, "test")
    assert log == ["undo claim"]         # a failed start undoes everything it did
    log.clear()
    assert plan.unwind(table, None, "test") is False
    assert log == []                     # the teardown keeps the claim for the next look
