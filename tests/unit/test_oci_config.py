"""linjail-oci without root: config.json -> Container -> JailSpec, the
refusals (one line naming the field), seccomp profiles, signals, the CLI's
option parsing and tables."""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest

from linjail.errors import JailError, UsageError
from linjail.model import Knobs, Mount
from linjail.oci import config, runtime, seccomp, store

CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_NET_RAW", "CAP_MKNOD"]

BASE: dict[str, Any] = {
    "ociVersion": "1.0.2",
    "root": {"path": "rootfs", "readonly": True},
    "hostname": "box",
    "process": {
        "args": ["sh", "-c", "true"], "env": ["PATH=/bin:/usr/bin", "TERM=xterm"], "cwd": "/",
        "user": {"uid": 1000, "gid": 1000, "additionalGids": [5, 6], "umask": 18},
        "capabilities": {k: list(CAPS) for k in ("bounding", "effective", "permitted",
                                           "inheritable", "ambient")},
        "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048}],
        "noNewPrivileges": True, "oomScoreAdj": 100,
    },
    "mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue"},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        {"destination": "/data", "type": "bind", "source": "/srv/data",
         "options": ["rbind", "ro", "noexec"]},
    ],
    "linux": {
        "namespaces": [{"type": t} for t in ("pid", "network", "ipc", "uts", "mount")],
        "maskedPaths": ["/proc/kcore"], "readonlyPaths": ["/proc/sys"],
        "sysctl": {"net.ipv4.ip_forward": "0", "kernel.shmmax": "65536"},
        "cgroupsPath": "/default/box",
    },
    "annotations": {"org.example": "yes"},
}


@pytest.fixture
def bundle(tmp_path: Path) -> str:
    (tmp_path / "rootfs").mkdir()
    return str(tmp_path)


def parse(bundle: str, change: Any = None, knobs: Knobs | None = None) -> config.Container:
    doc = copy.deepcopy(BASE)
    if change is not None:
        change(doc)
    return config.parse(doc, bundle, knobs)


def refused(bundle: str, change: Any) -> str:
    with pytest.raises(JailError) as info:
        parse(bundle, change)
    return info.value.message


def test_a_full_config(bundle: str) -> None:
    c = parse(bundle)
    assert c.root == os.path.join(os.path.realpath(bundle), "rootfs") and c.readonly
    assert c.hostname == "box" and c.annotations == {"org.example": "yes"}
    p = c.process
    assert p is not None
    assert (p.args, p.cwd, p.uid, p.gid, p.groups, p.umask) == \
        (("sh", "-c", "true"), "/", 1000, 1000, (5, 6), 0o22)
    assert p.rlimits == ((7, 1024, 2048),) and p.no_new_privileges and p.oom_score_adj == 100
    # intersected with the jail's bounding set: NET_RAW and MKNOD are not in it
    assert p.caps is not None
    assert p.caps.bounding == frozenset({0, 5, 10}) == p.caps.ambient
    assert [m.kind for m in c.mounts] == ["proc", "dev", "devpts", "tmpfs", "mqueue",
                                          "sysfs", "cgroup", "bind"]
    assert c.mounts[2].options == "ptmxmode=0666,mode=0620,gid=5"
    assert c.mounts[3] == Mount("tmpfs", "shm", "/dev/shm", False, "mode=1777,size=65536k",
                                ("noexec", "create"))
    assert c.mounts[7] == Mount("bind", "/srv/data", "/data", True, "", ("noexec", "create"))
    assert c.sysctl == (("net.ipv4.ip_forward", "0"), ("kernel.shmmax", "65536"))
    assert c.join == () and c.cgroups_path == "/default/box"


def test_raw_sockets_knob_lets_net_raw_in(bundle: str) -> None:
    c = parse(bundle, knobs=Knobs(allow_raw_sockets=1))
    assert c.process is not None and c.process.caps is not None
    assert 13 in c.process.caps.bounding and 27 not in c.process.caps.bounding


def test_to_spec(bundle: str) -> None:
    c = parse(bundle)
    spec = config.to_spec(c, "box-name", Knobs())
    assert (spec.path, spec.hostname, spec.ips, spec.name, spec.unique_name) == \
        (c.root, "box", (), "box-name", True)
    assert not (spec.devfs or spec.procfs or spec.sysfs) and spec.mounts == c.mounts
    # no /dev in the config: the jail's own; no hostname: the jail's name
    c2 = parse(bundle, lambda d: (d.pop("hostname"), d["mounts"].pop(1)))
    spec2 = config.to_spec(c2, "x" * 70, Knobs())
    assert spec2.devfs and spec2.hostname == "x" * 64


def test_namespace_joins(bundle: str) -> None:
    def net(d: dict[str, Any]) -> None:
        d["linux"]["namespaces"][1]["path"] = "/run/netns/cni-1"
    assert parse(bundle, net).join == (("net", "/run/netns/cni-1"),)

    def pod(d: dict[str, Any]) -> None:     # a pod's sandbox: its pid, net, ipc, uts
        for i, ns in enumerate(("pid", "net", "ipc", "uts")):
            d["linux"]["namespaces"][i]["path"] = f"/proc/42/ns/{ns}"
    assert parse(bundle, pod).join == tuple((ns, f"/proc/42/ns/{ns}")
                                            for ns in ("pid", "net", "ipc", "uts"))


@pytest.mark.parametrize("change,message", [
    (lambda d: d.update(ociVersion="2.0.0"), "config.json: ociVersion: 2.0.0: this runtime "
     "reads 1.x"),
    (lambda d: d["linux"]["namespaces"].pop(1), "config.json: linux.namespaces: no network "
     "namespace: the host's is never shared with a jail"),
    (lambda d: d["linux"]["namespaces"].append({"type": "user"}),
     "config.json: linux.uidMappings: missing: a user namespace needs its mappings"),
    (lambda d: d["linux"]["namespaces"][4].update(path="/proc/1/ns/mnt"),
     "config.json: linux.namespaces[4]: mount /proc/1/ns/mnt: joining a mount namespace is "
     "refused (the jail's root, mounts and hooks would be set up in a tree that namespace's "
     "other processes own)"),
    (lambda d: d["linux"]["namespaces"].append({"type": "cgroup", "path": "/proc/9/ns/cgroup"}),
     "config.json: linux.namespaces[5]: cgroup /proc/9/ns/cgroup: joining a cgroup namespace "
     "is not supported (a jail makes its own)"),
    (lambda d: d["linux"]["namespaces"][0].update(path="proc/1/ns/pid"),
     "config.json: linux.namespaces[0]: pid proc/1/ns/pid: not an absolute path"),
    (lambda d: d["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN"),
     "config.json: process.capabilities.bounding: CAP_SYS_ADMIN: no jail holds it "
     "(privileged containers are refused)"),
    (lambda d: d["process"]["capabilities"]["effective"].append("CAP_BOGUS"),
     "config.json: process.capabilities.effective: CAP_BOGUS: unknown capability"),
    (lambda d: d["process"]["rlimits"].append({"type": "RLIMIT_X", "soft": 1, "hard": 1}),
     "config.json: process.rlimits[1]: RLIMIT_X: unknown rlimit type"),
    (lambda d: d["process"]["rlimits"][0].update(soft=4096),
     "config.json: process.rlimits[0]: RLIMIT_NOFILE: soft limit above the hard limit"),
    (lambda d: d["process"].update(cwd="tmp"),
     "config.json: process.cwd: tmp: not an absolute path"),
    (lambda d: d["process"].update(args=[]), "config.json: process.args: missing"),
    (lambda d: d["process"].update(apparmorProfile="docker-default"),
     "config.json: process.apparmorProfile: AppArmor is not used by linjail"),
    (lambda d: d["linux"].update(devices=[{"path": "/dev/sda", "type": "b", "major": 8,
                                           "minor": 0}]),
     "config.json: linux.devices[0]: /dev/sda: devices beyond the jail's /dev (null zero full "
     "random urandom tty ptmx) are refused"),
    (lambda d: d["linux"]["sysctl"].update({"kernel.panic": "1"}),
     "config.json: linux.sysctl.kernel.panic: not of a namespace the container owns: it "
     "would change the host"),
    (lambda d: d["mounts"].append({"destination": "/x", "type": "ext4", "source": "/dev/sda"}),
     "config.json: mounts[8]: /x: type ext4: not supported in a jail (bind, tmpfs, proc, "
     "sysfs, devpts, mqueue, cgroup)"),
    (lambda d: d["mounts"][7]["options"].append("suid"),
     "config.json: mounts[7]: /data: option suid: a jail's mounts are always nosuid and nodev"),
    (lambda d: d["mounts"][3]["options"].append("huge_pages=1"),
     "config.json: mounts[3]: /dev/shm: option huge_pages=1: unknown for tmpfs"),
    (lambda d: d["mounts"].append({"destination": "/../etc", "type": "tmpfs"}),
     "config.json: mounts[8].destination: /../etc: '..' is refused"),
    (lambda d: d["linux"].update(uidMappings=[{"containerID": 0, "hostID": 1000,
                                               "size": 1}]),
     "config.json: linux.uidMappings: given without a user namespace in linux.namespaces"),
    (lambda d: d.update(hooks={"prestart": [{"path": "hook"}]}),
     "config.json: hooks.prestart[0].path: hook: not an absolute path"),
    (lambda d: d.update(hostname="h" * 65), "config.json: hostname: longer than 64 bytes"),
    (lambda d: d["process"].update(terminal="yes"), "config.json: process.terminal: not a "
     "boolean"),
])
def test_refused_in_one_line(bundle: str, change: Any, message: str) -> None:
    got = refused(bundle, change)
    assert got == message and "\n" not in got


# --- user namespaces ---------------------------------------------------------------------

def _userns(uids: Any, gids: Any = None, path: str = "") -> Any:
    def change(d: dict[str, Any]) -> None:
        d["linux"]["namespaces"].append({"type": "user", **({"path": path} if path else {})})
        d["linux"]["uidMappings"] = uids
        d["linux"]["gidMappings"] = uids if gids is None else gids
    return change


def _line(c: int, h: int, n: int) -> dict[str, int]:
    return {"containerID": c, "hostID": h, "size": n}


def test_user_namespace_mappings(bundle: str) -> None:
    c = parse(bundle, _userns([_line(0, 100000, 65536)],
                              [_line(0, 200000, 1), _line(1, 300000, 65535)]))
    assert c.idmap == (((0, 100000, 65536),), ((0, 200000, 1), (1, 300000, 65535)))
    spec = config.to_spec(c, "box", Knobs(unprivileged_root=0))
    # the jail's user namespace maps exactly these (confine/userns.py); the knob says so
    assert spec.idmap == c.idmap and spec.knobs.unprivileged_root == 1
    plain = parse(bundle, lambda d: None)
    assert plain.idmap is None
    assert config.to_spec(plain, "box", Knobs(unprivileged_root=0)).idmap is None
    # the kernel's limit on lines is the config's
    many = [_line(i, 100000 + i, 1) for i in range(1, 340)] + [_line(0, 500000, 65536)]
    many[-1] = _line(1000, 500000, 64536)
    many[0] = _line(0, 100001, 1)
    assert len(parse(bundle, _userns(many)).idmap[0]) == 340   # type: ignore[index]


@pytest.mark.parametrize("change,message", [
    (_userns([_line(0, 0, 65536)]),
     "config.json: linux.uidMappings[0]: maps host uid 0: jailed root is never host root"),
    (_userns([_line(0, 100000, 65536)], [_line(0, 0, 1)]),
     "config.json: linux.gidMappings[0]: maps host gid 0: jailed root is never host root"),
    (_userns([_line(0, 100000, 0)]),
     "config.json: linux.uidMappings[0].size: 0: a mapping maps at least one id"),
    (_userns([_line(0, 100000, 65536), _line(1000, 300000, 10)]),
     "config.json: linux.uidMappings[1]: container uids 1000-1009 overlap "
     "linux.uidMappings[0]"),
    (_userns([_line(0, 100000, 65536), _line(70000, 165535, 10)]),
     "config.json: linux.uidMappings[1]: host uids 165535-165544 overlap "
     "linux.uidMappings[0]"),
    (_userns([_line(0, 100000, 65536)] + [_line(70000 + i, 200000 + i, 1)
                                          for i in range(340)]),
     "config.json: linux.uidMappings: 341 lines: the kernel takes at most 340"),
    (_userns([{"containerID": "0", "hostID": 100000, "size": 65536}]),
     "config.json: linux.uidMappings[0].containerID: '0': not an id (an integer "
     "0..4294967294)"),
    (_userns([{"containerID": 0, "hostID": 1.5, "size": 65536}]),
     "config.json: linux.uidMappings[0].hostID: 1.5: not an id (an integer 0..4294967294)"),
    (_userns([{"containerID": 0, "hostID": 100000, "size": True}]),
     "config.json: linux.uidMappings[0].size: True: not an id (an integer 0..4294967294)"),
    (_userns([{"containerID": 0, "hostID": 100000}]),
     "config.json: linux.uidMappings[0].size: missing"),
    (_userns([_line(0, -5, 65536)]),
     "config.json: linux.uidMappings[0].hostID: -5: not an id (an integer 0..4294967294)"),
    (_userns([_line(0, 4294967000, 65536)]),
     "config.json: linux.uidMappings[0]: hostID 4294967000 + size 65536: beyond the last "
     "uid (4294967294)"),
    (_userns(["0 100000 65536"]), "config.json: linux.uidMappings[0]: not an object"),
    (_userns({"containerID": 0}), "config.json: linux.uidMappings: not a list"),
    (_userns([_line(1, 100000, 65535)]),
     "config.json: linux.uidMappings: container uid 0 is not mapped (the jail's root: jexec "
     "enters as it)"),
    (_userns([_line(0, 100000, 1000)]),
     "config.json: process.user.uid: 1000: not mapped by linux.uidMappings"),
    (_userns([_line(0, 100000, 65536)], [_line(0, 100000, 1), _line(1000, 101000, 1)]),
     "config.json: process.user.additionalGids[0]: 5: not mapped by linux.gidMappings"),
    (_userns([_line(0, 100000, 65536)], []),
     "config.json: linux.gidMappings: missing: a user namespace needs its mappings"),
    (lambda d: d["linux"].update(gidMappings=[_line(0, 100000, 1)]),
     "config.json: linux.gidMappings: given without a user namespace in linux.namespaces"),
    (lambda d: (_userns([_line(0, 100000, 65536)])(d),
                d["linux"]["namespaces"][1].update(path="/run/netns/cni-1")),
     "config.json: linux.namespaces[1]: network /run/netns/cni-1: joined with a user namespace "
     "of the container's own is not supported (the namespace is not that user namespace's: "
     "jailed root could not set it up)"),
    (_userns([_line(0, 100000, 65536)], path="/proc/1/ns/user"),
     "config.json: linux.namespaces[5]: user /proc/1/ns/user: joining a user namespace is "
     "refused (its mappings are another's: host ids no jail claims, maybe 0)"),
])
def test_user_namespace_refused(bundle: str, change: Any, message: str) -> None:
    got = refused(bundle, change)
    assert got == message and "\n" not in got


def test_missing_root_and_bad_json(bundle: str, tmp_path: Path) -> None:
    assert refused(bundle, lambda d: d["root"].update(path="nope")).startswith(
        "config.json: root.path: ") and "No such file or directory" in \
        refused(bundle, lambda d: d["root"].update(path="nope"))
    (tmp_path / "config.json").write_text("{")
    with pytest.raises(JailError) as info:
        config.load(str(tmp_path))
    assert info.value.message.startswith("config.json: not valid JSON (")
    with pytest.raises(JailError) as info:
        config.load(str(tmp_path / "rootfs"))
    assert info.value.message == \
        f"{tmp_path}/rootfs/config.json: No such file or directory"


def test_bind_data_options_and_relative_sources(bundle: str) -> None:
    def rel(d: dict[str, Any]) -> None:
        d["mounts"][7].update(source="vol", options=["bind", "mode=755"])
    m = parse(bundle, rel).mounts[7]
    # data options mean nothing to a bind (the kernel ignores them): accepted
    assert m == Mount("bind", os.path.join(bundle, "vol"), "/data", False, "",
                      ("create", "bind"))


# --- seccomp --------------------------------------------------------------------------------

PROFILE: dict[str, Any] = {
    "defaultAction": "SCMP_ACT_ERRNO",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [
        {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW"},
        {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]},
        {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
         "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_NE"},
                  {"index": 0, "value": 2, "op": "SCMP_CMP_NE"}]},
        {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38},
    ],
}


def test_seccomp_plan() -> None:
    default, rules, arches = seccomp.plan(PROFILE)
    assert default == 0x00050001 and arches == [0xC000003E, 0x40000003]
    names = [(name, action, len(args)) for action, name, args in rules]
    assert names == [("read", 0x7FFF0000, 0), ("write", 0x7FFF0000, 0),
                     ("personality", 0x7FFF0000, 1),
                     ("clone", 0x7FFF0000, 1), ("clone", 0x7FFF0000, 1),
                     ("mkdir", 0x00050026, 0)]


@pytest.mark.parametrize("change,message", [
    (lambda p: p.update(defaultAction="SCMP_ACT_NOTIFY"),
     "config.json: linux.seccomp.defaultAction: SCMP_ACT_NOTIFY: unknown or unsupported "
     "seccomp action"),
    (lambda p: p.update(listenerPath="/run/agent.sock"),
     "config.json: linux.seccomp.listenerPath: seccomp agents are not supported"),
    (lambda p: p.update(flags=["SECCOMP_FILTER_FLAG_SPEC_ALLOW"]),
     "config.json: linux.seccomp.flags: SECCOMP_FILTER_FLAG_SPEC_ALLOW: not supported"),
    (lambda p: p["syscalls"][1]["args"][0].update(op="SCMP_CMP_LIKE"),
     "config.json: linux.seccomp.syscalls[1].args[0]: SCMP_CMP_LIKE: unknown operator"),
    (lambda p: p["architectures"].append("SCMP_ARCH_VAX"),
     "config.json: linux.seccomp.architectures[2]: SCMP_ARCH_VAX: unknown"),
])
def test_seccomp_refused(change: Any, message: str) -> None:
    profile = copy.deepcopy(PROFILE)
    change(profile)
    with pytest.raises(JailError) as info:
        seccomp.plan(profile)
    assert info.value.message == message


def test_seccomp_compiles() -> None:
    from linjail.confine.libseccomp import library_path
    from linjail.confine.seccomp import valid_program
    if library_path() is None:
        pytest.skip("libseccomp is not installed")
    bpf = seccomp.compile_config(PROFILE)
    assert valid_program(bpf)


# --- the rest -------------------------------------------------------------------------------

@pytest.mark.parametrize("text,num", [("KILL", 9), ("SIGTERM", 15), ("term", 15), ("9", 9),
                                      ("RTMIN", 34), ("RTMIN+3", 37), ("SIGRTMAX-1", 63),
                                      ("SIGRTMAX", 64)])
def test_signals(text: str, num: int) -> None:
    assert runtime.parse_signal(text) == num


@pytest.mark.parametrize("text", ["", "0", "65", "SIGFOO", "RTMIN-1", "RTMAX+1"])
def test_bad_signals(text: str) -> None:
    with pytest.raises(JailError) as info:
        runtime.parse_signal(text)
    assert info.value.message == f"unknown signal {text!r}"


@pytest.mark.parametrize("cid", ["", ".", "..", "a/b", "a b", "x" * 1025, "é"])
def test_bad_ids(cid: str) -> None:
    with pytest.raises(JailError):
        store.check_id(cid)


def test_ids() -> None:
    for cid in ("abc", "a.b-c_d+e", "0" * 64):
        store.check_id(cid)


def test_cli_options() -> None:
    from linjail.cli.linjail_oci import OPTIONS, parse_options
    got, rest = parse_options(["--bundle", "/b", "--pid-file=/p", "-preserve-fds", "2", "id"],
                              OPTIONS["create"], "create")
    assert got == {"bundle": "/b", "pid-file": "/p", "preserve-fds": "2"} and rest == ["id"]
    got, rest = parse_options(["-d", "--keep=false", "--", "-id"], OPTIONS["run"], "run")
    assert got == {"detach": True, "keep": False} and rest == ["-id"]
    with pytest.raises(UsageError) as info:
        parse_options(["--bogus", "id"], OPTIONS["create"], "create")
    assert info.value.message == ("linjail-oci: unknown option --bogus for create\n"
                                  "usage: linjail-oci [global options] create [options] ID")
    with pytest.raises(UsageError) as info:
        parse_options(["--bundle"], OPTIONS["create"], "create")
    assert info.value.message.startswith("linjail-oci: option --bundle needs a value\n")


def test_list_table() -> None:
    from linjail.cli.linjail_oci import table
    assert table([["ID", "PID", "STATUS"], ["a-long-container-id", "1", "running"]]) == (
        "ID                    PID         STATUS\n"
        "a-long-container-id   1           running\n")


def test_features_match_the_tables() -> None:
    from linjail.oci import features
    f = features.features()
    assert f["ociVersionMax"] == config.OCI_VERSION
    assert "CAP_SYS_ADMIN" not in f["linux"]["capabilities"]
    assert "CAP_CHOWN" in f["linux"]["capabilities"]
    assert "suid" not in f["mountOptions"] and "nosuid" in f["mountOptions"]
    # device rules: an eBPF program on cgroup2, the v1 controller's files where mounted
    assert f["annotations"]["org.linjail.cgroup.devices"] == "ebpf,v1"
    # what the config reader takes, no more: seccomp's tables, v1 and cgroup2
    from linjail.oci import seccomp
    sc = f["linux"]["seccomp"]
    assert sc["enabled"] is True and "SCMP_ACT_ERRNO" in sc["actions"]
    assert "SCMP_ACT_NOTIFY" not in sc["actions"]       # a seccomp agent: refused
    assert set(sc["operators"]) == set(seccomp.OPERATORS) and "SCMP_ARCH_X86_64" in sc["archs"]
    assert sc["supportedFlags"] == ["SECCOMP_FILTER_FLAG_TSYNC"]
    assert set(sc["supportedFlags"]) <= set(sc["knownFlags"])
    for flag in set(sc["knownFlags"]) - set(sc["supportedFlags"]):
        with pytest.raises(config.ConfigError):
            seccomp.plan({"defaultAction": "SCMP_ACT_ALLOW", "flags": [flag]})
    assert f["linux"]["cgroup"]["v1"] is True and f["linux"]["cgroup"]["v2"] is True
    json.dumps(f)


def test_man_page_documents_every_option() -> None:
    """man/linjail-oci.8 renders and names every command and option of the
    CLI's table (cli/linjail_oci.py)."""
    import shutil
    import subprocess
    from linjail.cli import linjail_oci
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (man -l needs it)")
    page = Path(__file__).resolve().parents[2] / "man" / "linjail-oci.8"
    r = subprocess.run(["groff", "-mandoc", "-Tascii", "-P-cbou", "-ww", str(page)],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert (r.returncode, r.stderr) == (0, "")
    text = " ".join(r.stdout.split())
    for command, table in linjail_oci.OPTIONS.items():
        assert command in text, command
        for option in table:
            assert f"--{option}" in text, option
    for option in linjail_oci.GLOBAL:
        if option not in ("help", "version"):
            assert f"--{option}" in text, option


# --- linux.resources ------------------------------------------------------------------------

def test_resources_plan() -> None:
    from linjail.oci import cgroups
    writes = cgroups.plan({
        "memory": {"limit": 1 << 26, "swap": 1 << 27, "reservation": 1 << 25,
                   "swappiness": 10, "disableOOMKiller": True},
        "pids": {"limit": 100},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
        "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1000}]},
        "devices": [{"allow": False, "access": "rwm"},
                    {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "r"}],
    })
    assert writes[:5] == [("memory", "memory.memsw.limit_in_bytes", "-1"),
                          ("memory", "memory.limit_in_bytes", str(1 << 26)),
                          ("memory", "memory.memsw.limit_in_bytes", str(1 << 27)),
                          ("memory", "memory.soft_limit_in_bytes", str(1 << 25)),
                          ("memory", "memory.swappiness", "10")]
    assert ("memory", "memory.oom_control", "1") in writes
    assert ("pids", "pids.max", "100") in writes
    assert ("cpu", "cpu.cfs_quota_us", "50000") in writes
    assert ("cpuset", "cpuset.cpus", "0") in writes
    assert ("blkio", "blkio.throttle.read_bps_device", "8:0 1000") in writes
    devices = [w[1:] for w in writes if w[0] == "devices"]
    assert devices[:3] == [("devices.deny", "a"), ("devices.deny", "a"),
                           ("devices.allow", "c 1:3 r")]
    assert devices[3:] == [("devices.allow", rule) for rule in cgroups.JAIL_DEVICE_RULES]
    assert devices[-1] == ("devices.allow", "c 136:* rwm")
    assert cgroups.plan({"pids": {"limit": 0}}) == [("pids", "pids.max", "max")]


def test_device_rules_take_jail_devices_away() -> None:
    """A rule denying one of the jail's devices after the last "a" rule
    holds; the mknod of the jail's own nodes stays allowed (linjail makes
    them after joining); the jail's rules stay last (the conformance suite
    reads devices.list by position)."""
    from linjail.confine import devices
    from linjail.oci import cgroups
    deny_all = {"allow": False, "access": "rwm"}
    null = {"allow": False, "type": "c", "major": 1, "minor": 3}
    writes = cgroups.plan({"devices": [deny_all, dict(null, access="rw")]})
    jail = [("devices.allow", rule) for rule in cgroups.JAIL_DEVICE_RULES]
    assert [w[1:] for w in writes] == [("devices.deny", "a"), ("devices.deny", "a"),
                                       ("devices.deny", "c 1:3 rw"),
                                       ("devices.allow", "c 1:3 m"), *jail[1:]]
    c = devices.TYPES["c"]
    for rules, null_bits in (
            ([deny_all, null], [True, False, False]),
            # taken away before a reset: back; re-allowed by the config: its own rule
            ([null, deny_all], [True, True, True]),
            ([deny_all, null, dict(null, allow=True, access="r")], [True, True, False]),
            ([deny_all, {"allow": False, "type": "c", "access": "w"}], [True, True, False])):
        state = devices.emulate(cgroups.device_rules(cgroups.plan({"devices": rules})))
        assert [devices.allowed(*state, c, 1, 3, a) for a in (1, 2, 4)] == null_bits, rules
        assert devices.allowed(*state, c, 136, 9, 2)
        assert not devices.allowed(*state, devices.TYPES["b"], 8, 0, 2)


@pytest.mark.parametrize("res,message", [
    ({"memory": {"kernel": 1}}, "config.json: linux.resources.memory.kernel: kernel memory "
     "limits are no longer enforced by Linux (they count in memory.limit)"),
    ({"hugepageLimits": [{"pageSize": "2MB", "limit": 1}]},
     "config.json: linux.resources.hugepageLimits: not supported by linjail-oci"),
    ({"memory": {"swappiness": 101}}, "config.json: linux.resources.memory.swappiness: "
     "101: above 100"),
    ({"pids": {"limit": "10"}}, "config.json: linux.resources.pids.limit: not an integer"),
    ({"devices": [{"allow": True, "type": "x"}]}, "config.json: linux.resources.devices[0]: "
     "type must be a, b or c and access of r, w, m"),
    ({"devices": [{"allow": True, "type": "c", "major": 1 << 32, "access": "r"}]},
     "config.json: linux.resources.devices[0]: 4294967296: not a device number"),
    ({"devices": [{"allow": False, "type": "c", "major": 136, "minor": 2, "access": "r"}]},
     "config.json: linux.resources.devices[0]: c 136:2 r: a part of the jail's devices "
     "c 136:* cannot be denied"),
])
def test_resources_refused(res: dict[str, Any], message: str) -> None:
    from linjail.oci import cgroups
    with pytest.raises(JailError) as info:
        cgroups.plan(res)
    assert info.value.message == message


@pytest.mark.parametrize("path", ["/", "", "/a/../b", "../x"])
def test_bad_cgroups_paths(path: str) -> None:
    from linjail.oci import cgroups
    with pytest.raises(JailError):
        cgroups.check_path(path)


def test_seccomp_programs_are_cached_by_their_text(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A profile compiled once is read back (libseccomp not loaded); the
    cache is believed only when the stored text is the profile's own."""
    from linjail.confine import libseccomp, seccomp_compile
    if libseccomp.library_path() is None:
        pytest.skip("libseccomp is not installed")
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    first = seccomp.compile_config(PROFILE)
    calls: list[int] = []
    real = seccomp_compile.compile_profile

    def counting(*args: Any) -> bytes:
        calls.append(1)
        return real(*args)
    monkeypatch.setattr(seccomp_compile, "compile_profile", counting)
    assert seccomp.compile_config(PROFILE) == first and calls == []
    [text] = (tmp_path / "seccomp").glob("oci-*.json")
    assert oct(text.stat().st_mode & 0o777) == "0o600"
    text.write_bytes(text.read_bytes().replace(b"mkdir", b"rmdir"))   # same name, other text
    assert seccomp.compile_config(PROFILE) == first and calls == [1]
