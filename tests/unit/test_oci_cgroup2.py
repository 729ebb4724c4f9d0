"""linjail-oci's linux.resources on cgroup2, against a fake cgroup tree in a
temporary directory (this host is hybrid: its cgroup2 has no controllers,
so the v2 writes are only exercised here)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from linjail.confine.cglayout import Layout
from linjail.oci import cgroups
from linjail.oci.config import ConfigError

FILES = ("memory.max", "memory.swap.max", "memory.low", "memory.high", "pids.max",
         "cpu.weight", "cpu.max", "cpuset.cpus", "cpuset.mems", "io.max")
V2 = frozenset({"cpuset", "cpu", "io", "memory", "pids"})


def _tree(tmp: Path, offered: frozenset[str]) -> tuple[Layout, Path]:
    """A cgroup2 root offering OFFERED, linjail/ below it and the jail's 7/."""
    root = tmp / "cg"
    jail = root / "linjail" / "7"
    jail.mkdir(parents=True)
    for name in FILES:                  # the kernel's files exist; nothing creates them
        (jail / name).write_text("")
    (root / "cgroup.controllers").write_text(" ".join(sorted(offered)) + "\n")
    for d in (root, root / "linjail"):
        (d / "cgroup.subtree_control").write_text("")
    return Layout(v2=str(root), v2_controllers=offered, v1={}, base=str(root / "linjail"),
                  top=str(root)), jail


def _enabled(jail: Path, names: set[str]) -> None:
    """What the kernel does after enable_v2: the jail lists the controllers."""
    (jail / "cgroup.controllers").write_text(" ".join(sorted(names)) + "\n")


RES: dict[str, Any] = {
    "memory": {"limit": 268435456, "swap": 536870912, "reservation": 134217728},
    "pids": {"limit": 64},
    "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0", "mems": "0"},
    "blockIO": {"throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
                "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 0}]},
    "unified": {"memory.high": "200000000", "pids.max": "32"},
}


def test_v2_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lay, jail = _tree(tmp_path, V2)
    cg = cgroups.Cgroups("/x", [], {})           # a cgroup2-only host: no v1 hierarchy
    cg.create(cgroups.plan(RES), RES, lay)
    assert cg.v2root == lay.v2
    _enabled(jail, {c for c, _, _ in cg.v2_writes})
    written: list[tuple[str, str]] = []
    monkeypatch.setattr(cgroups, "write_value",
                        lambda path, value: written.append((path, value)))
    cgroups.write_v2(str(jail), cg.v2_writes)
    assert written == [(f"{jail}/{name}", value) for name, value in [
        ("memory.max", "268435456"), ("memory.swap.max", "268435456"),
        ("memory.low", "134217728"), ("pids.max", "64"),
        ("cpu.weight", "100"), ("cpu.max", "50000 100000"),
        ("cpuset.cpus", "0"), ("cpuset.mems", "0"),
        ("io.max", "8:0 rbps=1048576"), ("io.max", "8:0 wiops=max"),
        ("memory.high", "200000000"), ("pids.max", "32")]]     # unified last: it holds


def test_v2_files(tmp_path: Path) -> None:
    """The real write path into the fake tree's files."""
    lay, jail = _tree(tmp_path, V2)
    res = {"memory": {"limit": 1 << 20}, "cpu": {"quota": 20000}}
    cg = cgroups.Cgroups("/x", [], {})
    cg.create(cgroups.plan(res), res, lay)
    _enabled(jail, {"memory", "cpu"})
    cgroups.write_v2(str(jail), cg.v2_writes)
    assert (jail / "memory.max").read_text() == "1048576"
    assert (jail / "cpu.max").read_text() == "20000 100000"
    assert (jail / "pids.max").read_text() == ""


def test_enable_v2_reused(tmp_path: Path) -> None:
    lay, jail = _tree(tmp_path, V2)
    res = {"pids": {"limit": 5}}
    cg = cgroups.Cgroups("/x", [], {})
    cg.create(cgroups.plan(res), res, lay)
    # the fake file keeps the last write of cglayout.enable_v2
    assert (Path(lay.base) / "cgroup.subtree_control").read_text() == "+pids"
    assert cg.v2_writes == [("pids", "pids.max", "5")]


def test_hybrid_v1_stays(tmp_path: Path) -> None:
    """v1 hierarchies mounted: the v1 writes, nothing for cgroup2."""
    lay, _ = _tree(tmp_path, frozenset())
    dirs = {c: str(tmp_path / "v1" / c / "box") for c in ("memory", "pids", "cpu")}
    for c, names in (("memory", ["memory.limit_in_bytes"]), ("pids", ["pids.max"]),
                     ("cpu", ["cpu.shares"])):
        (tmp_path / "v1" / c / "box").mkdir(parents=True)
        for n in names:
            (tmp_path / "v1" / c / n).write_text("0-1\n")
            (tmp_path / "v1" / c / "box" / n).write_text("")
    res = {"memory": {"limit": 1000}, "pids": {"limit": 3}, "cpu": {"shares": 512}}
    cg = cgroups.Cgroups("/box", [], dirs)
    cg.create(cgroups.plan(res), res, lay)
    assert cg.v2_writes == []
    assert (tmp_path / "v1/memory/box/memory.limit_in_bytes").read_text() == "1000"
    assert (tmp_path / "v1/pids/box/pids.max").read_text() == "3"
    assert (tmp_path / "v1/cpu/box/cpu.shares").read_text() == "512"
    assert cg.made == []                 # the directories existed


@pytest.mark.parametrize("shares,weight", [(0, 0), (2, 1), (1024, 100), (262144, 10000),
                                           (512, 59), (4096, 303)])
def test_cpu_weight(shares: int, weight: int) -> None:
    assert cgroups.cpu_weight(shares) == weight


@pytest.mark.parametrize("res,message", [
    ({"unified": {"memory.max": "1"}},
     "config.json: linux.resources.unified: needs cgroup2 controllers (this host has cgroup "
     "v1 ones)"),
])
def test_unified_refused_on_v1(tmp_path: Path, res: dict[str, Any], message: str) -> None:
    lay, _ = _tree(tmp_path, frozenset())
    cg = cgroups.Cgroups("/x", [], {"memory": str(tmp_path / "m")})
    with pytest.raises(ConfigError) as e:
        cg.create(cgroups.plan(res), res, lay)
    assert str(e.value) == message
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize("res,message", [
    ({"unified": {"../memory.max": "1"}},
     "linux.resources.unified.../memory.max: not a cgroup2 file name"),
    ({"unified": {"..": "1"}}, "linux.resources.unified...: not a cgroup2 file name"),
    ({"unified": {"memory": "1"}}, "linux.resources.unified.memory: not a cgroup2 file name"),
    ({"unified": {"memory.max": 1}}, "linux.resources.unified.memory.max: not a string"),
    ({"unified": {"hugetlb.2MB.max": "1"}}, "linux.resources.unified.hugetlb.2MB.max: the "
     "hugetlb controller is not enabled in this host's cgroup2"),
    ({"unified": {"rdma.max": "mlx4_0 hca_handle=2"}},
     "linux.resources.unified.rdma.max: the rdma controller is not enabled in this host's "
     "cgroup2"),
    ({"memory": {"swap": 100}}, "linux.resources.memory.swap: needs memory.limit on cgroup2 "
     "(swap is memory+swap)"),
    ({"memory": {"limit": 200, "swap": 100}},
     "linux.resources.memory.swap: 100: below memory.limit (200)"),
    ({"memory": {"swappiness": 10}},
     "linux.resources.memory.swappiness: has no cgroup2 equivalent"),
    ({"devices": [{"allow": True, "type": "x"}]}, "linux.resources.devices[0]: type must be "
     "a, b or c and access of r, w, m"),
])
def test_v2_refusals(tmp_path: Path, res: dict[str, Any], message: str) -> None:
    lay, _ = _tree(tmp_path, V2 - {"hugetlb"})
    cg = cgroups.Cgroups("/x", [], {})
    with pytest.raises(ConfigError) as e:
        cg.create(cgroups.plan(res), res, lay)
    assert str(e.value) == f"config.json: {message}"


def test_devices_v2(tmp_path: Path) -> None:
    """No devices hierarchy: no file is written for the rules, they become
    the eBPF program join() attaches (tests/e2e/test_devices.py); without
    cgroup2 either, they cannot hold: one line."""
    lay, _ = _tree(tmp_path, V2)
    res = {"devices": [{"allow": False, "access": "rwm"},
                       {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rwm"}]}
    cg = cgroups.Cgroups("/x", [], {})
    cg.create(cgroups.plan(res), res, lay)
    assert cg.v2_writes == []
    assert cg.device_rules == cgroups.device_rules(cgroups.plan(res))
    assert cg.device_rules[2] == (True, "c 1:3 rwm")
    with pytest.raises(ConfigError) as e:
        cgroups.Cgroups("/x", [], {}).create(cgroups.plan(res), res, lay.replace(v2=""))
    assert str(e.value) == "config.json: linux.resources.devices: needs cgroup2 (its " \
        "device programs) or a v1 devices hierarchy: this host has neither"


def test_not_enabled_in_the_jail(tmp_path: Path) -> None:
    lay, jail = _tree(tmp_path, V2)
    (jail / "cgroup.controllers").write_text("pids\n")
    from linjail.errors import JailError
    with pytest.raises(JailError) as e:
        cgroups.write_v2(str(jail), [("memory", "memory.max", "1")])
    assert str(e.value) == f"{jail}/memory.max: the memory controller is not enabled in " \
        "this cgroup"
    assert (jail / "memory.max").read_text() == ""


def test_update_v2(tmp_path: Path) -> None:
    lay, jail = _tree(tmp_path, V2)
    (jail / "cgroup.controllers").write_text("memory pids\n")
    res = {"pids": {"limit": 0}, "memory": {"limit": -1, "swap": -1}}
    cgroups.Cgroups("/x", [], {}).update(cgroups.plan(res), res, str(jail), lay)
    assert (jail / "pids.max").read_text() == "max"
    assert (jail / "memory.max").read_text() == "max"
    assert (jail / "memory.swap.max").read_text() == "max"
