"""rctl(8) without root: rule syntax, storage, the command's output and
messages (FreeBSD's), the plan of limits, and the cgroup v2 layout on a
fake tree (the real v1 layout is tested in tests/e2e/test_rctl.py)."""
from __future__ import annotations

import io
import os
import sys

import pytest

from linjail.config import rctl as rules
from linjail.confine import cglayout, limits


@pytest.fixture(autouse=True)
def state_dir(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    return str(tmp_path)


# --- numbers ------------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0", 0), ("512", 512), ("1k", 1024), ("1K", 1024), ("512M", 512 << 20),
    ("2g", 2 << 30), ("1t", 1 << 40), ("3b", 3), ("1p", 1 << 50), ("1e", 1 << 60)])
def test_expand_number(text: str, value: int) -> None:
    assert rules.expand_number(text) == value


@pytest.mark.parametrize("text", ["", "k", "12q", "1kb", "1.5g", "8e"])
def test_expand_number_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        rules.expand_number(text)


@pytest.mark.parametrize("value,text", [
    (0, "0"), (100, "100"), (9999, "9999"), (99999, "98K"), (1024, "1024"), (100000, "98K"),
    (512 << 20, "512M"), (1536 << 20, "1536M"), (1 << 30, "1024M"), (10 << 30, "10G"), (10 << 40, "10T"),
    (268435456, "256M"), (2 ** 20 * 9.5, "9728K"), (15 << 40, "15T"), (1 << 60, "1024P"), (9500, "9500"), (10239, "10K"), (10752, "11K")])
def test_humanize_number_as_rctl_h(value: int, text: str) -> None:
    # humanize_number(buf, 6, n, "", HN_AUTOSCALE, HN_DECIMAL | HN_NOSPACE)
    assert rules.humanize_number(int(value)) == text


# --- rules --------------------------------------------------------------------------

def test_expand_aliases_and_amounts() -> None:
    assert rules.expand("j:www:memoryuse:deny=512M") == "jail:www:memoryuse:deny=536870912"
    assert rules.expand("jail:www:openfiles:deny=1k/process") == \
        "jail:www:openfiles:deny=1024/process"
    assert rules.expand("jail:www") == "jail:www:"
    assert rules.expand("::") == "::"


def test_expand_messages() -> None:
    with pytest.raises(rules.MalformedRule, match="^malformed rule 'jail': missing subject$"):
        rules.expand("jail")
    with pytest.raises(rules.MalformedRule,
                       match="^malformed rule 'jail:w:maxproc:deny=1x': invalid numeric "
                             "value '1x'$"):
        rules.expand("jail:w:maxproc:deny=1x")


def test_parse_and_print() -> None:
    r = rules.check_rule(rules.parse("JAIL:www:MemoryUse:Deny=5"))
    assert r == rules.Rule("jail", "www", "memoryuse", "deny", 5, "jail")
    assert r.text() == "jail:www:memoryuse:deny=5"
    assert r.replace(per="process").text() == "jail:www:memoryuse:deny=5/process"
    assert rules.Rule("jail", "www", "memoryuse", "deny", 512 << 20, "jail").text(True) == \
        "jail:www:memoryuse:deny=512M"


@pytest.mark.parametrize("text,err", [
    ("foo:www:maxproc:deny=1", "Invalid argument"),
    ("jail:www:foo:deny=1", "Invalid argument"),
    ("jail:www:maxproc:frob=1", "Invalid argument"),
    ("jail:www:maxproc:deny=1/frob", "Invalid argument"),
    ("jail:www:maxproc:deny", "Invalid argument"),          # not fully specified
    ("jail::maxproc:deny=1", "Invalid argument"),
    ("jail:www:wallclock:deny=1", "Operation not supported"),   # not deniable
    ("jail:www:cputime:deny=1", "Operation not supported"),
    ("jail:www:readbps:deny=1", "Operation not supported"),
    ("jail:www:maxproc:throttle=1", "Operation not supported"),  # not decaying
    ("jail:www:pcpu:throttle=1", "Operation not supported"),
    ("jail:www:nshm:deny=1/process", "Operation not supported"),  # sloppy
])
def test_refused_as_freebsd(text: str, err: str) -> None:
    with pytest.raises(rules.RuleError) as info:
        rules.check_rule(rules.parse(rules.expand(text)))
    assert info.value.text == err


def test_accepted_as_freebsd() -> None:
    for text in ("jail:www:memoryuse:deny=1", "jail:www:pcpu:deny=20",
                 "jail:www:readbps:throttle=1m", "jail:www:wallclock:sigkill=60",
                 "jail:www:cputime:log=10", "jail:www:openfiles:deny=10/process"):
        rules.check_rule(rules.parse(rules.expand(text)))


def test_matches_and_replaces() -> None:
    a = rules.Rule("jail", "www", "memoryuse", "deny", 5, "jail")
    assert a.matches(rules.parse("jail:www"))
    assert a.matches(rules.parse("::"))
    assert a.matches(rules.parse("jail::memoryuse"))
    assert not a.matches(rules.parse("jail:db"))
    assert not a.matches(rules.parse("jail:www:memoryuse:deny=6"))
    assert rules.replaces(a, a.replace(amount=7))        # deny: the amount is replaced
    log = a.replace(action="log")
    assert not rules.replaces(log, log.replace(amount=7))  # others: only a duplicate
    assert rules.replaces(log, log)


@pytest.mark.parametrize("text,reason", [
    ("process:1:openfiles:deny=5", "only the jail subject is supported on linjail"),
    ("user:0:maxproc:deny=5", "only the jail subject is supported on linjail"),
    ("loginclass:x:maxproc:deny=5", "only the jail subject is supported on linjail"),
    ("jail:www:maxproc:deny=5/user", "per-user accounting is not supported; use /jail or "
                                     "/process"),
    ("jail:www:maxproc:deny=5/process", "maxproc/process is not supported; /process applies "
                                        "to datasize, stacksize, coredumpsize, memorylocked, "
                                        "openfiles, vmemoryuse"),
    ("jail:www:maxproc:devctl=5", "devctl has no counterpart on Linux (no devd); use log"),
    ("jail:www:maxproc:siginfo=5", "SIGINFO does not exist on Linux"),
    ("jail:www:msgqqueued:deny=5", "msgqqueued has no limit on Linux (msgqsize and nmsgq do)"),
])
def test_linux_refusals(text: str, reason: str) -> None:
    with pytest.raises(rules.RuleError) as info:
        limits.check_linux(rules.check_rule(rules.parse(rules.expand(text))))
    assert info.value.text == reason


# --- the plan -----------------------------------------------------------------------

def _rules(*texts: str) -> list[rules.Rule]:
    return [rules.check_rule(rules.parse(rules.expand(t))) for t in texts]


def test_plan() -> None:
    p = limits.plan(_rules("jail:w:memoryuse:deny=1g", "jail:w:memoryuse:log=100m",
                           "jail:w:maxproc:deny=100", "jail:w:nthr:deny=50",
                           "jail:w:pcpu:deny=20", "jail:w:openfiles:deny=64",
                           "jail:w:openfiles:deny=32/process", "jail:w:nshm:deny=2",
                           "jail:w:pseudoterminals:deny=3", "jail:w:writebps:throttle=1m"))
    assert (p.memory, p.pids, p.cpu, p.pty_max) == (1 << 30, 50, 20, 3)
    assert p.rlimits == {"openfiles": 32}
    assert p.ipc == {"nshm": 2}
    assert p.io == {"writebps": 1 << 20}
    assert p.watch                                   # the log rule
    assert p.controllers() == {"memory", "pids", "cpu", "io"}
    assert p.devpts_options() == ",max=3"
    assert not limits.plan(_rules("jail:w:maxproc:deny=1")).watch
    assert limits.plan(_rules("jail:w:wallclock:sigkill=1")).watch


# --- the store and the command ------------------------------------------------------

def _run(monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str, str]:
    from linjail.cli import rctl
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(rctl, "_privileged", lambda: True)
    from linjail.lifecycle import rctlrules
    monkeypatch.setattr(rctlrules, "running", lambda jail_id: [])
    monkeypatch.setattr(limits, "check_host", lambda rule: None)
    code = rctl.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_add_list_remove(monkeypatch: pytest.MonkeyPatch, state_dir: str) -> None:
    assert _run(monkeypatch) == (0, "", "")
    assert _run(monkeypatch, "-a", "jail:www:memoryuse:deny=512M", "j:www:maxproc:deny=100",
                "jail:db:openfiles:deny=1k/process") == (0, "", "")
    assert _run(monkeypatch) == (0, "jail:db:openfiles:deny=1024/process\n"
                                    "jail:www:maxproc:deny=100\n"
                                    "jail:www:memoryuse:deny=536870912\n", "")
    assert _run(monkeypatch, "-h", "jail:www") == (0, "jail:www:maxproc:deny=100\n"
                                                     "jail:www:memoryuse:deny=512M\n", "")
    # a deny rule differing only by amount replaces the old one
    assert _run(monkeypatch, "-a", "jail:www:memoryuse:deny=256m")[0] == 0
    assert _run(monkeypatch, "jail:www:memoryuse")[1] == "jail:www:memoryuse:deny=268435456\n"
    with open(os.path.join(state_dir, "rctl", "rules")) as f:
        assert f.read() == ("jail:www:maxproc:deny=100\njail:db:openfiles:deny=1024/process\n"
                            "jail:www:memoryuse:deny=268435456\n")
    assert _run(monkeypatch, "-r", "jail:www") == (0, "", "")
    assert _run(monkeypatch, "-r", "jail:www") == (
        1, "", "rctl: failed to remove rule 'jail:www': No such process\n")
    assert _run(monkeypatch) == (0, "jail:db:openfiles:deny=1024/process\n", "")


def test_cli_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(monkeypatch, "-a", "jail:www:foo:deny=1", "jail",
                          "user:root:maxproc:deny=1", "jail:www:maxproc:deny=1")
    assert (code, out) == (3, "")
    assert err == ("rctl: failed to add rule 'jail:www:foo:deny=1': Invalid argument\n"
                   "rctl: malformed rule 'jail': missing subject\n"
                   "rctl: failed to add rule 'user:root:maxproc:deny=1': only the jail "
                   "subject is supported on linjail\n")
    usage = "usage: rctl [ -h ] [-a rule | -l filter | -r filter | -u filter | filter]\n"
    assert _run(monkeypatch, "-a") == (1, "", usage)
    assert _run(monkeypatch, "-x") == (1, "", "rctl: illegal option -- x\n" + usage)
    assert _run(monkeypatch, "-a", "-r", "x") == (
        1, "", "rctl: at most one of -a, -l, -r, or -u may be specified\n")
    assert _run(monkeypatch, "-u", "jail:") == (
        1, "", "rctl: failed to show resource consumption for 'jail:': Invalid argument\n")
    assert _run(monkeypatch, "-l", "jail:www") == (
        1, "", "rctl: failed to get limits for 'jail:www': Operation not supported\n")
    assert _run(monkeypatch, "-l", ":") == (
        1, "", "rctl: failed to get limits for ':': Invalid argument\n")


def test_cli_usage_of_a_stopped_jail_is_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = _run(monkeypatch, "-u", "jail:www")
    assert (code, err) == (0, "")
    assert out == "".join(f"{name}=0\n" for name in rules.RESOURCES)


def test_unprivileged(monkeypatch: pytest.MonkeyPatch) -> None:
    from linjail.cli import rctl
    err = io.StringIO()
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(rctl, "_privileged", lambda: False)
    assert rctl.main(["-a", "jail:www:maxproc:deny=1"]) == 1
    assert err.getvalue() == ("rctl: failed to add rule 'jail:www:maxproc:deny=1': "
                              "Operation not permitted\n")


# --- the cgroup layouts -------------------------------------------------------------

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_hybrid_mountinfo() -> None:
    v2, v1 = cglayout.parse_mountinfo(HYBRID)
    assert v2 == "/sys/fs/cgroup/unified"
    assert v1 == {"cpu": "/sys/fs/cgroup/cpu", "cpuacct": "/sys/fs/cgroup/cpuacct",
                  "memory": "/sys/fs/cgroup/memory", "blkio": "/sys/fs/cgroup/blkio",
                  "pids": "/sys/fs/cgroup/pids"}
    lay = cglayout.Layout(v2=v2, v1=v1, base=v2 + "/linjail", top=v2)
    assert lay.where("memory") == ("v1", "/sys/fs/cgroup/memory")
    assert lay.where("io") == ("v1", "/sys/fs/cgroup/blkio")
    co = cglayout.parse_mountinfo("40 31 0:37 / /c rw - cgroup cgroup rw,cpu,cpuacct\n")[1]
    assert co == {"cpu": "/c", "cpuacct": "/c"}


def test_missing_controller_is_named() -> None:
    lay = cglayout.Layout(v2="/x", v1={"memory": "/m"}, base="/x/linjail", top="/x")
    with pytest.raises(cglayout.MissingController) as info:
        lay.where("pids")
    assert str(info.value.strerror) == "the pids cgroup controller is not available on this host"


def _fake_v2(root: str, offered: str, delegated_unit: bool = False) -> None:
    """A cgroup2 tree as the kernel shows it: cgroup.controllers of a child
    lists what its parent enabled in cgroup.subtree_control."""
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "cgroup.controllers"), "w") as f:
        f.write(offered + "\n")
    for name in ("cgroup.subtree_control", "cgroup.procs"):
        open(os.path.join(root, name), "w").close()


class FakeKernel:
    """Writes to cgroup.subtree_control propagate to the children's
    cgroup.controllers, as in the kernel; mkdir creates the interface files."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.writes: list[tuple[str, str]] = []
        real_makedirs = os.makedirs

        def makedirs(path: str, mode: int = 0o777, exist_ok: bool = False) -> None:
            parts = []
            p = path
            while not os.path.exists(p):
                parts.append(p)
                p = os.path.dirname(p)
            real_makedirs(path, mode, exist_ok)
            for d in reversed(parts):
                parent = os.path.dirname(d)
                with open(os.path.join(parent, "cgroup.subtree_control")) as f:
                    enabled = f.read()
                _fake_v2(d, enabled.strip())

        def write(path: str, text: str) -> None:
            self.writes.append((path, text))
            if path.endswith("cgroup.subtree_control"):
                d = os.path.dirname(path)
                with open(path) as f:
                    cur = set(f.read().split())
                cur.add(text.lstrip("+"))
                with open(path, "w") as f:
                    f.write(" ".join(sorted(cur)))
                for child in os.listdir(d):
                    cc = os.path.join(d, child, "cgroup.controllers")
                    if os.path.exists(cc):
                        with open(cc, "w") as f:
                            f.write(" ".join(sorted(cur)))
            else:
                with open(path, "w") as f:
                    f.write(text)

        monkeypatch.setattr(cglayout.os, "makedirs", makedirs)
        monkeypatch.setattr(cglayout, "_write", write)
        monkeypatch.setattr(limits, "_write", write)


def test_v2_only_enables_controllers_down_to_the_jail(tmp_path: object,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.join(str(tmp_path), "cg")
    _fake_v2(root, "cpuset cpu io memory pids")
    kernel = FakeKernel(monkeypatch)
    mi = os.path.join(str(tmp_path), "mountinfo")
    with open(mi, "w") as f:
        f.write(f"41 31 0:38 / {root} rw,relatime - cgroup2 cgroup2 rw\n")
    lay = cglayout.discover(mi, systemd=False)
    assert (lay.base, lay.top, lay.v1) == (root + "/linjail", root, {})
    assert lay.v2_controllers == {"cpuset", "cpu", "io", "memory", "pids"}
    jail = os.path.join(lay.base, "7")
    os.makedirs(jail)
    host = limits.HostLimits(limits.plan(_rules("jail:w:memoryuse:deny=1g",
                                                "jail:w:maxproc:deny=100",
                                                "jail:w:pcpu:deny=20")),
                             7, jail, "/", lay)
    host.prepare()
    assert [w for w in kernel.writes if w[0].endswith("subtree_control")] == [
        (root + "/cgroup.subtree_control", "+cpu"),
        (root + "/linjail/cgroup.subtree_control", "+cpu"),
        (root + "/cgroup.subtree_control", "+memory"),
        (root + "/linjail/cgroup.subtree_control", "+memory"),
        (root + "/cgroup.subtree_control", "+pids"),
        (root + "/linjail/cgroup.subtree_control", "+pids")]
    assert (jail + "/memory.max", str(1 << 30)) in kernel.writes
    assert (jail + "/pids.max", "100") in kernel.writes
    assert (jail + "/cpu.max", "20000 100000") in kernel.writes
    host.join(1234)      # nothing to join in v1
    assert not [w for w in kernel.writes if w[0].endswith("cgroup.procs")]


def test_v2_controller_not_offered(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.join(str(tmp_path), "cg")
    _fake_v2(root, "cpu memory")
    FakeKernel(monkeypatch)
    lay = cglayout.Layout(v2=root, v2_controllers=frozenset({"cpu", "memory"}),
                          base=root + "/linjail", top=root)
    with pytest.raises(cglayout.MissingController, match="pids"):
        limits.HostLimits(limits.plan(_rules("jail:w:maxproc:deny=1")), 1,
                          root + "/linjail/1", "/", lay).prepare()


def test_systemd_delegated_unit(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    root = os.path.join(str(tmp_path), "cg")
    _fake_v2(root, "cpu io memory pids")
    kernel = FakeKernel(monkeypatch)
    with open(root + "/cgroup.subtree_control", "w") as f:
        f.write("cpu io memory pids")
    os.makedirs(root + "/system.slice")
    _fake_v2(root + "/system.slice", "cpu io memory pids")
    with open(root + "/system.slice/cgroup.subtree_control", "w") as f:
        f.write("memory pids")
    unit = root + "/system.slice/jail.service"
    _fake_v2(unit, "memory pids")
    with open(unit + "/cgroup.procs", "w") as f:
        f.write("4242\n")                  # jailctl start, run by systemd
    monkeypatch.setattr(cglayout, "_delegated", lambda path: path == unit)
    assert cglayout.v2_base(root, systemd=True) == (unit + "/linjail", unit)
    assert cglayout.v2_base(root, systemd=False) == (root + "/linjail", root)

    real = kernel.writes.append
    busy = {"first": True}

    def enable(path: str, text: str) -> None:
        # the kernel refuses controllers for the children of a cgroup with
        # processes of its own ("no internal processes")
        if path == unit + "/cgroup.subtree_control" and busy["first"]:
            busy["first"] = False
            raise OSError(16, "Device or resource busy")
        orig(path, text)
    orig = cglayout._write
    monkeypatch.setattr(cglayout, "_write", enable)
    lay = cglayout.Layout(v2=root, v2_controllers=frozenset({"cpu", "io", "memory", "pids"}),
                          base=unit + "/linjail", top=unit)
    cglayout.enable_v2(lay, "memory")
    assert (unit + "/supervisor/cgroup.procs", "4242") in kernel.writes
    with open(unit + "/linjail/cgroup.subtree_control") as f:
        assert f.read() == "memory"
    # never above the delegated unit: system.slice did not give it cpu
    with pytest.raises(cglayout.MissingController, match="cpu"):
        cglayout.enable_v2(lay, "cpu")
    assert not [w for w in kernel.writes if w[0] == root + "/system.slice/"
                "cgroup.subtree_control"]
    del real
