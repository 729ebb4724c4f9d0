"""What the benchmark reads from the machine: wall time, memory, addresses.

Nothing here starts a jail or a container; tools.py does, and registers what
it started with a Cleanup so that everything is removed, also on failure.
"""
from __future__ import annotations

import ipaddress
import json
import os
import statistics
import subprocess
import tempfile
import time
from dataclasses import dataclass
from typing import Sequence


class ToolFailed(RuntimeError):
    """A timed command exited non-zero: the number would be meaningless."""

    def __init__(self, argv: Sequence[str], code: int, stderr: bytes) -> None:
        text = stderr.decode("utf-8", "replace").strip().splitlines()
        tail = text[-1] if text else ""
        super().__init__(f"{argv[0]}: exit {code}: {tail}")
        self.argv = list(argv)
        self.code = code
        self.stderr = stderr


def timed(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Run ARGV to its end with no terminal; its wall time in ms.

    stdout goes to /dev/null, stderr to a file kept for the failure message:
    never a pipe, which a daemon the command leaves behind (`runc run -d`,
    `jail -i … 'sleep &'`) would hold open, so reading it would never end.
    The fork/exec of subprocess costs every tool the same ~1 ms.
    """
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=err, env=env)
        ms = (time.perf_counter() - t0) * 1000.0
        if proc.returncode != 0:
            err.seek(0)
            raise ToolFailed(argv, proc.returncode, err.read())
    return ms


def median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def pair_ratio(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Median of a[i]/b[i]: runs were interleaved, so pair i shared the machine's mood."""
    ratios = [x / y for x, y in zip(a, b) if y > 0]
    return statistics.median(ratios) if ratios else None


# --- memory ---------------------------------------------------------------------------

def mem_available_kib() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1])
    raise OSError("no MemAvailable in /proc/meminfo")


# where the memory of an idle jail goes: kernel objects (namespaces, veth,
# cgroup, mounts) show in Slab/Percpu/KernelStack/PageTables, user pages in
# AnonPages/Shmem/Mapped
MEMINFO_KEYS = ("MemAvailable", "MemFree", "AnonPages", "Shmem", "Mapped", "Slab",
                "SUnreclaim", "KernelStack", "PageTables", "Percpu")


# memory the kernel cannot reclaim: a steadier per-jail figure than MemAvailable,
# which page cache churn by anything else on the host moves by tens of MiB
UNRECLAIMABLE = ("AnonPages", "Shmem", "SUnreclaim", "KernelStack", "PageTables", "Percpu")


def meminfo_kib() -> dict[str, int]:
    out = {}
    with open("/proc/meminfo") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in MEMINFO_KEYS:
                out[key] = int(rest.split()[0])
    return out


def settled_meminfo_kib(samples: int = 5, pause: float = 0.2) -> dict[str, int]:
    """/proc/meminfo after a short settle, each field the median of a few
    reads (other sessions on the machine move it by a few MiB either way)."""
    time.sleep(0.5)
    reads = []
    for _ in range(samples):
        reads.append(meminfo_kib())
        time.sleep(pause)
    return {k: int(statistics.median(r[k] for r in reads)) for k in reads[0]}


def pss_kib(pid: int) -> int:
    """Proportional set size (smaps_rollup, Linux 4.14): shared pages split
    between their users, so summing it over processes does not double count."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def comm(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return ""


def cgroup_pids(cgroup_dir: str) -> list[int]:
    try:
        with open(os.path.join(cgroup_dir, "cgroup.procs")) as f:
            return [int(x) for x in f.read().split()]
    except FileNotFoundError:
        return []


def descendants(pid: int) -> list[int]:
    """PID and every process below it (children files, Linux 3.5)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(x) for x in f.read().split())
            except OSError:
                pass
    return out


@dataclass
class Pss:
    kept_kib: int      # what the sandbox tool keeps alive (reaper, monitors)
    daemon_kib: int    # the payload (`sleep`) itself
    kept_procs: int


def split_pss(pids: Sequence[int], daemon_comm: str = "sleep") -> Pss:
    kept = daemon = nkept = 0
    for pid in pids:
        value = pss_kib(pid)
        if comm(pid) == daemon_comm:
            daemon += value
        else:
            kept += value
            nkept += 1
    return Pss(kept, daemon, nkept)


# --- addresses ------------------------------------------------------------------------

V4_NET = ipaddress.ip_network("198.51.100.0/24")     # SPEC §10: documentation ranges only
V6_NET = ipaddress.ip_network("2001:db8:b3c::/64")   # a /64 of 2001:db8::/32 for the bench


def used_addresses(jails: list[dict[str, object]]) -> set[str]:
    """Addresses that a route, an interface or a jail already uses: another
    session's tests may be running jails in the same ranges on this host."""
    used: set[str] = set()
    for rec in jails:
        ips = rec.get("ips")
        if isinstance(ips, list):
            used.update(str(ipaddress.ip_address(str(a))) for a in ips)
    for fam in ("-4", "-6"):
        for args in (["route", "show", "table", "all"], ["addr", "show"]):
            try:
                out = subprocess.run(["ip", "-j", fam, *args], capture_output=True,
                                     check=True).stdout
                rows = json.loads(out or b"[]")
            except (OSError, subprocess.CalledProcessError, ValueError):
                continue
            for row in rows:
                dst = row.get("dst")
                if dst:
                    used.add(dst.split("/")[0])
                for info in row.get("addr_info", []):
                    used.add(info.get("local", ""))
    return used


class AddressPool:
    """Free IPv4 addresses from the top of 198.51.100.0/24 down (tests tend to
    use the low ones), then IPv6 ones from the bench's own /64."""

    def __init__(self, used: set[str]) -> None:
        hosts = list(V4_NET.hosts())
        self._v4 = [str(a) for a in reversed(hosts) if str(a) not in used]
        self._v6_next = 1
        self._used = used

    def v4(self) -> str | None:
        return self._v4.pop(0) if self._v4 else None

    def v6(self) -> str:
        while True:
            addr = str(V6_NET[self._v6_next])
            self._v6_next += 1
            if addr not in self._used:
                return addr

    def one(self) -> str:
        """One address for a density jail: IPv4 while there are free ones."""
        return self.v4() or self.v6()
