"""`linjail-oci events`' statistics (oci/stats.py) from fake cgroup trees: the
cgroup2 side (this host is hybrid: its cgroup2 has no controllers, so v2
files are only read here) and the v1 files the real-kernel test cannot
fill (blkio tables, hugetlb, throttling).  The JSON is runc's
(types/events.go as runc 1.1.5 encodes it)."""
from __future__ import annotations

import json
import os
from pathlib import Path

from linjail.oci import stats

MAX = (1 << 64) - 1


def _files(d: Path, files: dict[str, str]) -> str:
    d.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (d / name).write_text(text)
    return str(d)


def test_cgroup2(tmp_path: Path) -> None:
    v2 = _files(tmp_path / "linjail" / "7", {
        "cpu.stat": "usage_usec 1500\nuser_usec 1000\nsystem_usec 500\nnr_periods 10\n"
                    "nr_throttled 2\nthrottled_usec 30\n",
        "memory.current": "4096000\n", "memory.max": "67108864\n",
        "memory.swap.current": "1000\n", "memory.swap.max": "max\n",
        "memory.stat": "file 8192\nanon 4000000\n",
        "pids.current": "3\n", "pids.max": "max\n",
        "io.stat": "8:0 rbytes=4096 wbytes=0 rios=1 wios=0 dbytes=0 dios=0\n",
        "hugetlb.2MB.current": "0\n", "hugetlb.2MB.events": "max 1\n",
        "hugetlb.2MB.rsvd.current": "0\n",
        "cgroup.procs": "1\n2\n3\n"})
    data = stats.stats({}, v2)
    assert data == {
        "cpu": {"usage": {"total": 1500000, "kernel": 500000, "user": 1000000},
                "throttling": {"periods": 10, "throttledPeriods": 2, "throttledTime": 30000}},
        "cpuset": {"cpu_exclusive": 0, "mem_hardwall": 0, "mem_exclusive": 0,
                   "memory_migrate": 0, "memory_spread_page": 0, "memory_spread_slab": 0,
                   "memory_pressure": 0, "sched_load_balance": 0,
                   "sched_relax_domain_level": 0},
        "memory": {"cache": 8192,
                   "usage": {"limit": 67108864, "usage": 4096000, "failcnt": 0},
                   # memory+swap, as v1 reports it; "max" stays 2^64-1
                   "swap": {"limit": MAX, "usage": 4097000, "failcnt": 0},
                   "kernel": {"limit": 0, "failcnt": 0},
                   "kernelTCP": {"limit": 0, "failcnt": 0},
                   "raw": {"anon": 4000000, "file": 8192}},
        "pids": {"current": 3},
        "blkio": {"ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                                              {"major": 8, "op": "Write"}],
                  "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1},
                                          {"major": 8, "op": "Write"}]},
        "hugetlb": {"2MB": {"failcnt": 1}},
        "intel_rdt": {}, "network_interfaces": None}
    # a swap limit: memory+swap too; no pids controller: cgroup.procs counts
    (Path(v2) / "memory.swap.max").write_text("1000000\n")
    os.unlink(os.path.join(v2, "pids.current"))
    data = stats.stats({}, v2)
    assert data["memory"]["swap"]["limit"] == 67108864 + 1000000
    assert data["pids"] == {"current": 3}
    # runc's encoding: compact, in this order
    line = json.dumps({"type": "stats", "id": "c", "data": data}, separators=(",", ":"))
    assert line.startswith('{"type":"stats","id":"c","data":{"cpu":{"usage":{"total":1500000,')


def test_cgroup1(tmp_path: Path) -> None:
    acct = _files(tmp_path / "cpuacct" / "c", {
        "cpuacct.usage": "3000\n", "cpuacct.usage_percpu": "1000 2000 \n",
        "cpuacct.usage_all": "cpu user system\n0 600 400\n1 1500 500\n",
        "cpuacct.stat": f"user {os.sysconf('SC_CLK_TCK')}\nsystem 0\n"})
    cpu = _files(tmp_path / "cpu" / "c", {"cpu.stat": "nr_periods 0\nnr_throttled 0\n"
                                                      "throttled_time 0\n"})
    cpuset = _files(tmp_path / "cpuset" / "c", {
        "cpuset.cpus": "0-2,5\n", "cpuset.mems": "0\n", "cpuset.sched_load_balance": "1\n",
        "cpuset.sched_relax_domain_level": "-1\n"})
    mem = _files(tmp_path / "memory" / "c", {
        "memory.stat": "cache 0\nrss 8192\n", "memory.usage_in_bytes": "8192\n",
        "memory.max_usage_in_bytes": "16384\n", "memory.failcnt": "2\n",
        "memory.limit_in_bytes": "9223372036854771712\n"})
    pids = _files(tmp_path / "pids" / "c", {"pids.current": "1\n", "pids.max": "40\n"})
    blkio = _files(tmp_path / "blkio" / "c", {
        "blkio.throttle.io_service_bytes_recursive":
            "8:0 Read 4096\n8:0 Write 0\n8:0 Total 4096\nTotal 4096\n",
        "blkio.throttle.io_serviced_recursive": "8:0 Read 1\nTotal 1\n"})
    huge = _files(tmp_path / "hugetlb" / "c", {
        "hugetlb.2MB.usage_in_bytes": "2097152\n", "hugetlb.2MB.max_usage_in_bytes": "2097152\n",
        "hugetlb.2MB.failcnt": "0\n", "hugetlb.2MB.limit_in_bytes": "max\n"})
    dirs = {"cpuacct": acct, "cpu": cpu, "cpuset": cpuset, "memory": mem, "pids": pids,
            "blkio": blkio, "hugetlb": huge}
    data = stats.stats(dirs, str(tmp_path / "no-such-v2"))
    assert data["cpu"] == {"usage": {"total": 3000, "percpu": [1000, 2000],
                                     "percpu_kernel": [400, 500], "percpu_user": [600, 1500],
                                     "kernel": 0, "user": 1000000000},
                           "throttling": {}}
    assert data["cpuset"]["cpus"] == [0, 1, 2, 5] and data["cpuset"]["mems"] == [0]
    assert (data["cpuset"]["sched_load_balance"],
            data["cpuset"]["sched_relax_domain_level"]) == (1, -1)
    assert list(data["cpuset"])[:3] == ["cpus", "cpu_exclusive", "mems"]
    # no memsw/kmem files (no swap accounting): zero entries, as runc's
    assert data["memory"] == {
        "usage": {"limit": 9223372036854771712, "usage": 8192, "max": 16384, "failcnt": 2},
        "swap": {"limit": 0, "failcnt": 0}, "kernel": {"limit": 0, "failcnt": 0},
        "kernelTCP": {"limit": 0, "failcnt": 0}, "raw": {"cache": 0, "rss": 8192}}
    assert data["pids"] == {"current": 1, "limit": 40}
    assert data["blkio"] == {
        "ioServiceBytesRecursive": [{"major": 8, "op": "Read", "value": 4096},
                                    {"major": 8, "op": "Write"},
                                    {"major": 8, "op": "Total", "value": 4096}],
        "ioServicedRecursive": [{"major": 8, "op": "Read", "value": 1}]}
    assert data["hugetlb"] == {"2MB": {"usage": 2097152, "max": 2097152, "failcnt": 0}}


def test_oom_watch_cgroup2(tmp_path: Path) -> None:
    """memory.events: an "oom" when oom_kill grew since the last look."""
    v2 = _files(tmp_path / "j", {"memory.events": "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"})
    watch = stats.OomWatch({}, v2)
    try:
        assert watch.kind == "v2" and watch.count == 1
        assert not watch.fired()
        (tmp_path / "j" / "memory.events").write_text("max 4\noom 2\noom_kill 2\n")
        assert watch.fired() and not watch.fired()
    finally:
        watch.close()
    assert stats.OomWatch({}, str(tmp_path / "none")).fd == -1
