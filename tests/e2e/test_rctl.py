"""rctl(8) end to end: limits felt from inside a jail (issue 12).

The host is never at risk even if a limit failed: every hog (tests/probe/
hog.c) carries its own hard bound — at most 400 processes, 512 MiB, 30 s —
and every command a timeout.  On these hybrid hosts memory, pids and cpu
live in v1 hierarchies: this is the real test of the v1 layout.  Every test
removes its rules (the `rules` fixture) and its jails (`jails`).
"""
from __future__ import annotations

import os
import shutil
import time
from typing import Iterator

import pytest

pytest.importorskip("linjail.cli.rctl", reason="rctl has not landed")

from conftest import (HOST_PATH, Jails, build_service_root, cmd, needs_root, run,  # noqa: E402
                      wait_until)

pytestmark = needs_root
HOG_SOURCE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                          "probe", "hog.c")


@pytest.fixture(scope="module")
def root(jail_base: str) -> str:
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed")
    path = build_service_root(os.path.join(jail_base, "rctl"))
    r = run(shutil.which("musl-gcc", path=HOST_PATH) or "gcc", "-static", "-O2", "-Wall",
            "-Werror", "-o", os.path.join(path, "hog"), HOG_SOURCE, timeout=120)
    if r.rc != 0:
        pytest.skip(f"cannot build hog.c statically: {r.err.strip()}")
    return path


class Rules:
    def __init__(self) -> None:
        self.filters: list[str] = []

    def add(self, *rules: str) -> None:
        for rule in rules:
            self.filters.append(":".join(rule.split(":")[:2]))
        r = run("rctl", "-a", *rules)
        assert (r.rc, r.err) == (0, ""), r

    def cleanup(self) -> None:
        for flt in set(self.filters):
            run("rctl", "-r", flt)


@pytest.fixture
def rules() -> Iterator[Rules]:
    r = Rules()
    yield r
    r.cleanup()


def _idle_jail(jails: Jails, root: str, host: str = "rctl.test") -> int:
    return jails.start(root, host, "", "/bin/sh", "-c",
                       "busybox sleep 120 </dev/null >/dev/null 2>&1 &")


def hog(jid: int, *args: str, timeout: float = 60) -> tuple[int, str]:
    r = run("jexec", str(jid), "/hog", *args, timeout=timeout)
    return r.rc, r.out.strip()


def test_list_add_remove_on_a_running_jail(jails: Jails, root: str, rules: Rules) -> None:
    jid = _idle_jail(jails, root)
    rules.add(f"jail:{jid}:maxproc:deny=30", f"jail:{jid}:memoryuse:deny=256m")
    r = run("rctl", f"jail:{jid}")
    assert (r.rc, r.out, r.err) == (0, f"jail:{jid}:memoryuse:deny=268435456\n"
                                       f"jail:{jid}:maxproc:deny=30\n", "")
    r = run("rctl", "-h", f"jail:{jid}:memoryuse")
    assert r.out == f"jail:{jid}:memoryuse:deny=256M\n"
    # the limits are in the jail's v1 cgroups here (hybrid host)
    from linjail.confine import cglayout
    lay = cglayout.discover()
    kind, mnt = lay.where("pids")
    if kind == "v1":
        with open(os.path.join(mnt, "linjail", str(jid), "pids.max")) as f:
            assert f.read().strip() == "30"
    r = run("rctl", "-r", f"jail:{jid}:maxproc")
    assert (r.rc, r.err) == (0, "")
    if kind == "v1":
        with open(os.path.join(mnt, "linjail", str(jid), "pids.max")) as f:
            assert f.read().strip() == "max"
    r = run("rctl", "-l", f"process:{jails_pid(jid)}")
    assert r.out == f"jail:{jid}:memoryuse:deny=268435456\n"


def jails_pid(jid: int) -> int:
    from linjail.state import registry
    rec = registry.lookup(jid)
    assert rec is not None
    return rec.pid


def test_fork_loop_stops_at_maxproc(jails: Jails, root: str, rules: Rules) -> None:
    jid = _idle_jail(jails, root)
    other = _idle_jail(jails, root, "other.test")
    rules.add(f"jail:{jid}:maxproc:deny=20")
    code, out = hog(jid, "fork", "200")
    # the jail had 2 processes (reaper, sleep) + jexec's joiner and command
    assert code == 0
    what, count, err = out.split()
    assert (what, err) == ("fork", "EAGAIN")
    assert 10 <= int(count) <= 16
    # the other jail and the host keep forking
    assert hog(other, "fork", "50") == (0, "fork 50 ok")
    r = run("/bin/sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do /bin/true & done; wait; echo ok")
    assert r.out == "ok\n"


def test_memory_hog_is_killed_inside_the_jail(jails: Jails, root: str, rules: Rules) -> None:
    jid = _idle_jail(jails, root)
    rules.add(f"jail:{jid}:memoryuse:deny=64m")
    code, out = hog(jid, "mem", "300")
    assert code == 128 + 9, (code, out)          # the OOM killer, inside the jail's cgroup
    assert out == ""
    # the jail itself lives on; the kernel counted the kill
    assert run("jexec", str(jid), "/bin/sh", "-c", ":").rc == 0
    from linjail.confine import racct
    from linjail.state import registry
    rec = registry.lookup(jid)
    assert rec is not None and racct.oom_kills(rec) >= 1
    # jls --json shows the jail's memory, CPU time and processes
    import json
    mine = [j for j in json.loads(run("jls", "--json").out) if j["jid"] == jid]
    assert len(mine) == 1 and mine[0]["processes"] == 2 and mine[0]["memory"] > 0
    assert isinstance(mine[0]["cputime"], float)
    # what is not in the jail is untouched: the host allocates 100 MiB
    r = run("/bin/sh", "-c", "head -c 100000000 /dev/zero | wc -c")
    assert r.out.strip() == "100000000"


def test_pcpu_holds_a_busy_loop_near_the_limit(jails: Jails, root: str, rules: Rules) -> None:
    """pcpu:deny=20 is a CFS quota of 20 ms per 100 ms period: over 3 s a busy
    loop gets 0.6 s of CPU.  Tolerance: 12-28 % (the quota is exact; the
    measure includes jexec's own start-up and a shared, loaded host)."""
    jid = _idle_jail(jails, root)
    rules.add(f"jail:{jid}:pcpu:deny=20")
    from linjail.confine import racct
    from linjail.state import registry
    rec = registry.lookup(jid)
    assert rec is not None
    before, t0 = racct.cpu_usec(rec), time.monotonic()
    assert hog(jid, "busy", "3") == (0, "busy done")
    used = (racct.cpu_usec(rec) - before) / 1e6 / (time.monotonic() - t0) * 100
    assert 12 <= used <= 28, used


def test_openfiles_pseudoterminals_and_shm(jails: Jails, root: str, rules: Rules) -> None:
    jid = _idle_jail(jails, root)
    assert run("jailctl", "sysctl", f"jail.{jid}.sysvipc_allowed=1").rc == 0
    rules.add(f"jail:{jid}:openfiles:deny=20", f"jail:{jid}:pseudoterminals:deny=2",
              f"jail:{jid}:nshm:deny=3")
    assert hog(jid, "files", "100") == (0, "files 17 EMFILE")     # 0, 1, 2 are open
    assert hog(jid, "ptys", "10") == (0, "ptys 2 ENOSPC")
    assert hog(jid, "shm", "10") == (0, "shm 3 ENOSPC")
    # lifted: back to what a new jail gets
    rules.cleanup()
    assert hog(jid, "files", "100") == (0, "files 100 ok")
    assert hog(jid, "ptys", "10") == (0, "ptys 10 ok")


def test_wallclock_stops_the_jail(jails: Jails, root: str, rules: Rules) -> None:
    jid = _idle_jail(jails, root)
    t0 = time.monotonic()
    rules.add(f"jail:{jid}:wallclock:sigkill=2")
    from linjail.state import registry
    assert wait_until(lambda: registry.lookup(jid) is None, timeout=15)
    assert 1.0 <= time.monotonic() - t0 <= 10


def test_usage_moves_with_the_load(jails: Jails, root: str) -> None:
    jid = _idle_jail(jails, root)

    def usage() -> dict[str, int]:
        r = run("rctl", "-u", f"jail:{jid}")
        assert (r.rc, r.err) == (0, "")
        return {k: int(v) for k, v in (line.split("=") for line in r.out.splitlines())}
    idle = usage()
    assert list(idle) == ["cputime", "datasize", "stacksize", "coredumpsize", "memoryuse",
                          "memorylocked", "maxproc", "openfiles", "vmemoryuse",
                          "pseudoterminals", "swapuse", "nthr", "msgqqueued", "msgqsize",
                          "nmsgq", "nsem", "nsemop", "nshm", "shmsize", "wallclock", "pcpu",
                          "readbps", "writebps", "readiops", "writeiops"]
    assert idle["maxproc"] == 2
    import subprocess
    p = subprocess.Popen([cmd("jexec"), str(jid), "/hog", "mem", "100", "5"],
                         stdout=subprocess.PIPE, text=True, env={"PATH": HOST_PATH})
    try:
        assert p.stdout is not None
        assert p.stdout.readline().strip() == "mem 100 ok"
        busy = usage()
        assert busy["maxproc"] == 4       # jexec's joiner waits in the jail's cgroup
        assert busy["memoryuse"] >= idle["memoryuse"] + (90 << 20)
        assert busy["datasize"] >= idle["datasize"] + (90 << 20)
    finally:
        p.kill()
        p.wait()
    r = run("rctl", "-hu", f"jail:{jid}")
    assert "maxproc=" in r.out and r.rc == 0
    # a jail that does not run: FreeBSD prints zeros
    r = run("rctl", "-u", "jail:no_such_jail")
    assert r.out == "".join(f"{k}=0\n" for k in idle)


def test_rules_wait_for_the_jail_and_apply_at_start(root: str, tmp_path: object,
                                                    rules: Rules) -> None:
    """rc.conf: rctl_enable + rctl_rules; `jailctl start` loads the file and
    the jail starts limited."""
    base = str(tmp_path)
    name = f"rt{os.getpid()}"
    conf = os.path.join(base, "rc.conf")
    rctl_conf = os.path.join(base, "rctl.conf")
    with open(rctl_conf, "w") as f:
        f.write(f"# limits of {name}\njail:{name}:openfiles:deny=20\n"
                f"jail:{name}:maxproc:deny=25 # processes\n\n"
                f"jail:{name}:pseudoterminals:deny=1\n")
    with open(conf, "w") as f:
        f.write(f'jail_enable="YES"\njail_list="{name}"\n'
                f'jail_{name}_rootdir="{root}"\njail_{name}_hostname="{name}.test"\n'
                f'jail_{name}_ip="198.51.100.236"\njail_{name}_exec_start="/bin/sh -c \'busybox sleep 60 &\'"\n'
                f'jail_{name}_exec_stop=""\n'
                f'jail_{name}_consolelog="{base}/console.log"\n'
                f'rctl_enable="YES"\nrctl_rules="{rctl_conf}"\n')
    rules.filters.append(f"jail:{name}")
    env = {"PATH": HOST_PATH, "LANG": "C", "LINJAIL_VARRUN": base}
    r = run("jailctl", "start", "-f", conf, env=env, timeout=120)
    try:
        assert r.rc == 0, r
        with open(os.path.join(base, f"jail_{name}.id")) as f:
            jid = int(f.readline())
        assert run("rctl", f"jail:{name}").out == (f"jail:{name}:pseudoterminals:deny=1\n"
                                                  f"jail:{name}:maxproc:deny=25\n"
                                                  f"jail:{name}:openfiles:deny=20\n")
        assert hog(jid, "files", "100") == (0, "files 17 EMFILE")
        assert hog(jid, "ptys", "5") == (0, "ptys 1 ENOSPC")
        # the jail's own processes got the rlimit at start, not just jexec's
        with open(f"/proc/{jails_pid(jid)}/limits") as f:
            assert [line.split()[3:5] for line in f if line.startswith("Max open files")] \
                == [["20", "20"]]
        code, out = hog(jid, "fork", "100")
        assert out.split()[0::2] == ["fork", "EAGAIN"]
    finally:
        run("jailctl", "stop", "-f", conf, env=env, timeout=120)


def test_a_missing_controller_is_one_line(tmp_path: object) -> None:
    """A rule for a resource whose controller the host lacks names it."""
    from linjail.confine import cglayout
    lay = cglayout.discover()
    for ctrl in ("memory", "pids", "cpu", "io"):
        try:
            lay.where(ctrl)
        except cglayout.MissingController as e:
            res = {"memory": "memoryuse", "pids": "maxproc", "cpu": "pcpu",
                   "io": "readbps"}[ctrl]
            act = "throttle" if ctrl == "io" else "deny"
            r = run("rctl", "-a", f"jail:x:{res}:{act}=1")
            assert r.err == f"rctl: failed to add rule 'jail:x:{res}:{act}=1': {e.strerror}\n"
            return
    pytest.skip("every controller rctl uses is present on this host")
