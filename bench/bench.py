#!/usr/bin/env python3
"""linjail benchmark (issue 5): linjail beside bubblewrap, runc and systemd-nspawn.

Run as root: `make bench` (installs the peers from Debian packages), or
`.venv/bin/python bench/bench.py [--quick] [--n 50,100,200] [--runs K] [--out DIR]`.
Peers that are not installed are skipped with a note, so the run works with
linjail alone.  Prints one Markdown table and the targets, writes the raw
numbers to OUT/bench.json, the table to OUT/table.md and, if matplotlib is
importable, OUT/bench.png.  See bench/README.md for what is measured and how.
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# tests/oci_env.py: podman in a private state directory, as the OCI client tests run it
sys.path.insert(1, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "tests"))

import measure  # noqa: E402
import oci_env  # noqa: E402
import report  # noqa: E402
import tools  # noqa: E402
from measure import ToolFailed, timed  # noqa: E402

#: the tests in the order they run (--only picks some)
TESTS = ("start", "jexec", "oci", "density", "stop", "relay")
STOP_PROCS = 100
# the rc.conf way: /etc/rc starts a daemon and returns (the exact command)
DAEMON = "sleep 100000 &"
HUNDRED = ("i=0; while [ $i -lt %d ]; do sleep 100000 & i=$((i+1)); done" % STOP_PROCS)


def log(msg: str) -> None:
    sys.stderr.write(f"bench: {msg}\n")
    sys.stderr.flush()


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="bench.py", description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true",
                   help="few runs and small N (default N=5, runs=3): a smoke run")
    p.add_argument("--n", default=None,
                   help="comma-separated jail counts for the density test "
                        "(default 50,100,200; 5 with --quick)")
    p.add_argument("--runs", type=int, default=None,
                   help="timed runs per tool and test (default 30; 3 with --quick)")
    p.add_argument("--out", default=os.path.join(tools.REPO, "bench", "results"),
                   help="where bench.json, table.md and bench.png go (default bench/results/)")
    p.add_argument("--root", default=None,
                   help="use this jail root instead of building one (must hold sh, true, sleep)")
    p.add_argument("--readme", action="store_true",
                   help="also put the table into bench/README.md")
    p.add_argument("--only", default=None,
                   help="comma-separated tests to run, of " + ", ".join(TESTS) +
                        " (default all); the table has their rows only")
    args = p.parse_args(argv)
    args.only = set(TESTS) if args.only is None else \
        {t.strip() for t in args.only.split(",") if t.strip()}
    if not args.only or args.only - set(TESTS):
        p.error(f"--only: a comma-separated list of {', '.join(TESTS)}")
    args.runs = args.runs or (3 if args.quick else 30)
    if args.runs < 1:
        p.error("--runs must be at least 1")
    text = args.n or ("5" if args.quick else "50,100,200")
    try:
        args.n = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        p.error(f"--n {text}: not a list of numbers")
    if not args.n or args.n[0] < 1:
        p.error("--n needs positive numbers")
    return args


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.jail = tools.linjail_bin("jail")
        self.jls = tools.linjail_bin("jls")
        self.rctl = tools.linjail_bin("rctl")
        self.jexec = tools.linjail_bin("jexec")
        self.jailctl = tools.linjail_bin("jailctl")
        self.peers = tools.Peers.find()
        self.cleanup = tools.Cleanup(self.jailctl, self.jls)
        self.work = tools.workdir()
        self.root = ""
        self.notes: list[str] = []
        self.data: dict[str, Any] = {}
        self.pool: measure.AddressPool | None = None
        self.runc_state = os.path.join(self.work, "runc-state")
        self.runc_serial = 0
        self.oci_state = os.path.join(self.work, "linjail-oci-state")
        self.uid0_env: dict[str, str] = {}

    # --- set-up ---------------------------------------------------------------------

    def setup(self) -> None:
        if self.args.root:
            self.root = os.path.realpath(self.args.root)
            how = "given with --root"
        else:
            self.root, how = tools.make_root(self.jailctl, self.work)
            self.cleanup.root_path = self.root
        log(f"root {self.root} ({how})")
        if self.peers.runc:
            os.makedirs(self.runc_state, mode=0o700, exist_ok=True)
            tools.runc_bundle(self.peers.runc, os.path.join(self.work, "runc-true"),
                              self.root, ["/bin/true"])
            tools.runc_bundle(self.peers.runc, os.path.join(self.work, "runc-sleep"),
                              self.root, ["/bin/sleep", "100000"])
        self.pool = measure.AddressPool(measure.used_addresses(tools.jls_json(self.jls)))
        # jail.unprivileged_root=0 for the rows that compare it: a registry of
        # the bench's own whose default is 0 (the host's knobs stay as they are)
        state = os.path.join(self.work, "state-unprivileged-root-0")
        os.makedirs(state, mode=0o755)
        with open(os.path.join(state, "knobs"), "w") as f:
            f.write("unprivileged_root=0\n")
        self.uid0_env = {**os.environ, "LINJAIL_STATE_DIR": state}
        self.data["meta"] = self.meta(how)

    def meta(self, how: str) -> dict[str, Any]:
        cpu = ""
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
        with open("/proc/meminfo") as f:
            memtotal = int(f.readline().split()[1])
        versions = {"python": platform.python_version()}
        for key, argv in (("bwrap", [self.peers.bwrap, "--version"]),
                          ("runc", [self.peers.runc, "--version"]),
                          ("podman", [self.peers.podman, "--version"]),
                          ("systemd-nspawn", [self.peers.nspawn, "--version"]),
                          ("nsenter", [self.peers.nsenter, "--version"])):
            if argv[0]:
                versions[key] = tools.version(argv)   # type: ignore[arg-type]
        return {
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "host": platform.node(), "kernel": platform.release(), "cpu": cpu,
            "cpus": os.cpu_count(), "mem_total_mib": round(memtotal / 1024),
            "loadavg_start": os.getloadavg()[0], "root": how, "runs": self.args.runs,
            "n": self.args.n, "quick": self.args.quick, "versions": versions,
            "other_jails_at_start": len(tools.jls_json(self.jls)),
            "missing_peers": dict(self.peers.missing),
            "commands": {"jail": self.jail, "jls": self.jls, "jexec": self.jexec,
                         "jailctl": self.jailctl},
        }

    # --- the commands that are timed ------------------------------------------------

    def runc_run(self) -> float:
        assert self.peers.runc
        self.runc_serial += 1
        cid = f"lb{os.getpid()}x{self.runc_serial}"
        entry = (self.runc_state, cid)
        self.cleanup.runc.append(entry)
        try:
            return timed([self.peers.runc, "--root", self.runc_state, "run", "--bundle",
                          os.path.join(self.work, "runc-true"), cid])
        finally:
            self.cleanup.runc.remove(entry)   # runc run deletes it when /bin/true ends

    def linjail_oci_run(self, oci: str) -> float:
        """`linjail-oci run` of the bundle runc runs (runc_run), with a state root of its own."""
        self.runc_serial += 1
        cid = f"lb{os.getpid()}o{self.runc_serial}"
        entry = (oci, self.oci_state, cid)
        self.cleanup.oci.append(entry)
        try:
            return timed([oci, "--root", self.oci_state, "run", "--bundle",
                          os.path.join(self.work, "runc-true"), cid])
        finally:
            self.cleanup.oci.remove(entry)

    def jail_rctl(self) -> float:
        """A start with three rctl rules (memory, pids: a v1 migration on hybrid
        hosts; openfiles: an rlimit), named by the jail's name (`jail -n`), so
        no other jail of the host is touched; adding and removing them is not
        timed."""
        name = f"bench-rctl-{os.getpid()}"
        subprocess.run([self.rctl, "-a", *[f"jail:{name}:{r}" for r in
                        ("memoryuse:deny=512m", "maxproc:deny=200", "openfiles:deny=1024")]],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            return timed([self.jail, "-n", name, self.root, "bench-rctl", "", "/bin/true"])
        finally:
            subprocess.run([self.rctl, "-r", f"jail:{name}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def start_commands(self, addrs: str) -> dict[str, Callable[[], float]]:
        cmds: dict[str, Callable[[], float]] = {
            "python": lambda: timed([sys.executable, "-I", "-S", "-c", "pass"]),
            "jail": lambda: timed([self.jail, self.root, "bench-start", "", "/bin/true"]),
            "jail_addr": lambda: timed([self.jail, self.root, "bench-addr", addrs,
                                        "/bin/true"]),
            "jail_rctl": self.jail_rctl,
            "jail_uid0": lambda: timed([self.jail, self.root, "bench-start0", "", "/bin/true"],
                                       env=self.uid0_env),
        }
        if self.peers.bwrap:
            bwrap = self.peers.bwrap
            cmds["bwrap"] = lambda: timed([bwrap, "--unshare-all", "--bind", self.root, "/",
                                           "--dev", "/dev", "--proc", "/proc", "/bin/true"])
        if self.peers.runc:
            cmds["runc"] = self.runc_run
        if self.peers.nspawn:
            nspawn = self.peers.nspawn
            cmds["nspawn"] = lambda: timed([nspawn, "--register=no", "--keep-unit", "-q",
                                            "-D", self.root, "/bin/true"])
        return cmds

    def interleaved(self, cmds: dict[str, Callable[[], float]],
                    peer_attr: dict[str, tuple[str, str]]) -> dict[str, list[float]]:
        """One untimed run of each (a peer failing there is dropped with its
        reason), then K rounds A B C …, the order rotated each round."""
        for name in list(cmds):
            try:
                cmds[name]()
            except ToolFailed as err:
                if name not in peer_attr:
                    raise
                attr, prog = peer_attr[name]
                self.peers.disable(attr, prog, f"failed here: {err}")
                self.notes.append(f"{prog} skipped: {err}")
                log(f"{prog} skipped: {err}")
                del cmds[name]
        names = list(cmds)
        times: dict[str, list[float]] = {n: [] for n in names}
        for k in range(self.args.runs):
            shift = k % len(names)
            for name in names[shift:] + names[:shift]:
                times[name].append(cmds[name]())
        return times

    # --- the tests ------------------------------------------------------------------

    def test_start(self) -> None:
        assert self.pool is not None
        addrs = f"{self.pool.v4() or self.pool.v6()},{self.pool.v6()}"
        log(f"start latency, {self.args.runs} interleaved rounds (addresses {addrs})")
        times = self.interleaved(self.start_commands(addrs), {
            "bwrap": ("bwrap", "bwrap"), "runc": ("runc", "runc"),
            "nspawn": ("nspawn", "systemd-nspawn")})
        self.data["start"] = {"ms": times, "addresses": addrs}

    def test_jexec(self) -> None:
        log(f"jexec latency, {self.args.runs} interleaved rounds")
        jid, _ = tools.start_daemon_jail(self.jail, self.root, "bench-exec", "", DAEMON,
                                        self.cleanup, self.work)
        pid = next(int(str(r["pid"])) for r in tools.jls_json(self.jls) if r.get("jid") == jid)
        jid0, _ = tools.start_daemon_jail(self.jail, self.root, "bench-exec0", "", DAEMON,
                                         self.cleanup, self.work, env=self.uid0_env)
        cmds: dict[str, Callable[[], float]] = {
            "python": lambda: timed([sys.executable, "-I", "-S", "-c", "pass"]),
            "jexec": lambda: timed([self.jexec, str(jid), "/bin/true"]),
            "jexec_uid0": lambda: timed([self.jexec, str(jid0), "/bin/true"],
                                        env=self.uid0_env),
        }
        if self.peers.nsenter:
            nsenter = self.peers.nsenter
            cmds["nsenter"] = lambda: timed([nsenter, "-a", "-t", str(pid), "/bin/true"])
        cid = ""
        if self.peers.runc:
            cid = f"lb{os.getpid()}exec"
            self.cleanup.runc.append((self.runc_state, cid))
            try:
                timed([self.peers.runc, "--root", self.runc_state, "run", "-d", "--bundle",
                       os.path.join(self.work, "runc-sleep"), cid])
                runc = self.peers.runc
                cmds["runc_exec"] = lambda: timed([runc, "--root", self.runc_state, "exec",
                                                   cid, "/bin/true"])
            except ToolFailed as err:
                self.notes.append(f"runc exec skipped: {err}")
        try:
            times = self.interleaved(cmds, {"nsenter": ("nsenter", "nsenter"),
                                            "runc_exec": ("runc", "runc")})
        finally:
            self.cleanup.remove_jail(jid)
            self.cleanup.remove_jail(jid0, env=self.uid0_env)
            if cid:
                subprocess.run([self.peers.runc or "runc", "--root", self.runc_state,
                                      "delete", "-f", cid], capture_output=True)
                self.cleanup.runc.remove((self.runc_state, cid))
        self.data["jexec"] = {"ms": times}

    def test_oci(self) -> None:
        """linjail-oci (issue 14) beside runc: `run` of /bin/true from the same bundle, and
        `podman run --rm` of the bench root (imported as an image) with each runtime."""
        oci, runc, podman_bin = self.peers.linjail_oci, self.peers.runc, self.peers.podman
        cmds: dict[str, Callable[[], float]] = {}
        # a row whose first run fails is dropped with the reason (a note), the others stay
        peer_attr = {"runc": ("runc", "runc"), "linjail_oci": ("linjail_oci", "linjail-oci"),
                     "podman_runc": ("podman", "podman"),
                     "podman_linjail_oci": ("podman_linjail_oci",
                                            "podman --runtime linjail-oci")}
        if runc:
            cmds["runc"] = self.runc_run
            if oci:
                os.makedirs(self.oci_state, mode=0o700, exist_ok=True)
                cmds["linjail_oci"] = lambda: self.linjail_oci_run(oci)
        podman = None
        if podman_bin and runc:
            podman = oci_env.Podman()
            image = "localhost/linjail-bench:1"
            try:
                podman.import_root(self.root, image)
            except RuntimeError as err:
                self.notes.append(f"podman rows skipped: {err}")
            else:
                pm = podman

                def podman_run(runtime: str) -> float:
                    return timed(["podman", "--runtime", runtime, "run", "--rm",
                                  *pm.run_options(), image, "/bin/true"], env=pm.env)
                cmds["podman_runc"] = lambda: podman_run(runc)
                if oci:
                    cmds["podman_linjail_oci"] = lambda: podman_run(oci)
        log(f"OCI runtimes: {', '.join(cmds) or 'none'}, {self.args.runs} interleaved rounds")
        try:
            times = self.interleaved(cmds, peer_attr) if cmds else {}
        finally:
            if podman:
                podman.cleanup()
        self.data["oci"] = {"ms": times}

    def density_levels(self, start_one: Callable[[int], float],
                       kept: Callable[[], measure.Pss], count: Callable[[], int],
                       with_jls: bool) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Start sandboxes one after another up to each N; at each N measure.
        Returns the rows and the raw numbers (each start, the baseline)."""
        base = measure.settled_meminfo_kib()
        levels: list[dict[str, Any]] = []
        each: list[float] = []
        for n in self.args.n:
            while len(each) < n:
                each.append(start_one(len(each)))
            total_ms = sum(each)
            mem = measure.settled_meminfo_kib()
            drop = {k: base[k] - mem[k] if k.startswith("Mem") else mem[k] - base[k]
                    for k in base}
            pss = kept()
            row: dict[str, Any] = {
                "n": n, "start_total_s": total_ms / 1000.0,
                "mem_drop_mib": drop["MemAvailable"] / 1024.0,
                "mem_per_jail_mib": drop["MemAvailable"] / 1024.0 / n,
                "meminfo_delta_kib_per_jail": {k: round(v / n, 1) for k, v in drop.items()},
                "unreclaimable_mib_per_jail":
                    sum(drop[k] for k in measure.UNRECLAIMABLE) / 1024.0 / n,
                "pss_kept_kib_per_jail": pss.kept_kib / n,
                "pss_daemon_kib_per_jail": pss.daemon_kib / n,
                "kept_procs_per_jail": pss.kept_procs / n,
                "alive": count(),
            }
            if with_jls:
                jls_ms = [timed([self.jls]) for _ in range(max(3, min(self.args.runs, 10)))]
                row["jls_ms"] = jls_ms
                row["jls_rows"] = len(tools.jls_json(self.jls))
            levels.append(row)
            log(f"  N={n}: {row['mem_per_jail_mib']:.2f} MiB/jail (MemAvailable), "
                f"PSS kept {row['pss_kept_kib_per_jail']:.0f} KiB/jail, "
                f"started in {row['start_total_s']:.1f} s")
        return levels, {"start_ms": each, "meminfo_base_kib": base}

    def mem_back(self, raw: dict[str, Any], n: int) -> None:
        """After removing all N: how much MemAvailable came back, per sandbox
        (a second estimate, with the opposite drift of the first)."""
        mem = measure.settled_meminfo_kib()
        base = raw["meminfo_base_kib"]
        raw["mem_back_mib_per_jail"] = None if not n else \
            (mem["MemAvailable"] - (base["MemAvailable"] - raw["top_drop_kib"])) / 1024.0 / n

    def test_density(self) -> None:
        assert self.pool is not None
        log(f"density: linjail, N = {self.args.n}")
        mine: list[int] = []
        addrs: list[str] = []

        def start_jail(i: int) -> float:
            assert self.pool is not None
            for _attempt in range(3):
                addr = self.pool.one()
                try:
                    jid, ms = tools.start_daemon_jail(self.jail, self.root, f"bench-d{i}", addr,
                                                      DAEMON, self.cleanup, self.work)
                except ToolFailed as err:
                    # another session may have taken the address since we looked
                    if "exists" not in str(err).lower():
                        raise
                    continue
                mine.append(jid)
                addrs.append(addr)
                return ms
            raise RuntimeError("no free address after 3 tries")

        def kept() -> measure.Pss:
            pids = []
            for jid in mine:
                pids.extend(measure.cgroup_pids(self.cleanup.jails[jid]))
            return measure.split_pss(pids)

        def alive() -> int:
            return sum(1 for jid in mine
                       if len(measure.cgroup_pids(self.cleanup.jails[jid])) >= 2)

        jls0 = [timed([self.jls]) for _ in range(5)]
        try:
            levels, raw = self.density_levels(start_jail, kept, alive, with_jls=True)
        finally:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=2) as ex:
                list(ex.map(lambda j: self.cleanup.remove_jail(j), list(mine)))
            remove_s = time.perf_counter() - t0
        raw["top_drop_kib"] = levels[-1]["mem_drop_mib"] * 1024
        self.mem_back(raw, levels[-1]["n"])
        v6 = sum(1 for a in addrs if ":" in a)
        self.data["density"] = {"linjail": levels, "linjail_raw": raw, "jls_ms_before": jls0,
                                "remove_all_s": remove_s, "ipv6_only_jails": v6,
                                "command": f"jail -i ROOT NAME ADDR /bin/sh -c '{DAEMON}'"}
        if self.peers.bwrap:
            rows, braw = self.bwrap_density()
            self.data["density"]["bwrap"] = rows
            self.data["density"]["bwrap_raw"] = braw

    def bwrap_density(self) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        log(f"density: bubblewrap anchor, N = {self.args.n}")
        assert self.peers.bwrap
        procs: list[subprocess.Popen[bytes]] = []

        def start(i: int) -> float:
            t0 = time.perf_counter()
            proc = subprocess.Popen(
                [self.peers.bwrap or "bwrap", "--unshare-all", "--die-with-parent",
                 "--bind", self.root, "/", "--dev", "/dev", "--proc", "/proc",
                 "/bin/sleep", "100000"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL)
            self.cleanup.procs.append(proc)
            procs.append(proc)
            # started = its sleep runs
            deadline = time.monotonic() + 10
            while not any(measure.comm(p) == "sleep" for p in measure.descendants(proc.pid)):
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"bwrap sandbox {i} did not start its sleep")
                time.sleep(0.0005)
            return (time.perf_counter() - t0) * 1000.0

        def kept() -> measure.Pss:
            pids = []
            for proc in procs:
                pids.extend(measure.descendants(proc.pid))
            return measure.split_pss(pids)

        try:
            rows, raw = self.density_levels(start, kept,
                                            lambda: sum(1 for p in procs if p.poll() is None),
                                            with_jls=False)
        finally:
            for proc in procs:
                self.cleanup.kill_proc(proc)
        raw["top_drop_kib"] = rows[-1]["mem_drop_mib"] * 1024
        self.mem_back(raw, rows[-1]["n"])
        return rows, raw

    def test_stop(self) -> None:
        runs = max(1, min(self.args.runs, 5))
        log(f"stop: jailctl remove of a jail holding {STOP_PROCS} processes, {runs} runs")
        ms, procs = [], []
        for _ in range(runs):
            jid, _ = tools.start_daemon_jail(self.jail, self.root, "bench-stop", "", HUNDRED,
                                            self.cleanup, self.work)
            n = tools.wait_pids(self.cleanup.jails[jid], STOP_PROCS + 1)
            procs.append(n)
            ms.append(self.cleanup.remove_jail(jid))
        self.data["stop"] = {"ms": ms, "processes": procs}

    def test_relay(self) -> None:
        """Throughput of the host-side relay (a jail's stdout on a FIFO: a host
        object, so it goes through `linjail-reaper relay`) against the same
        command writing straight into a pipe (pipes are passed as they are)."""
        size = (256 if self.args.quick else 1024) << 20
        runs = max(1, min(self.args.runs, 5))
        log(f"relay: {size >> 20} MiB out of a jail, relayed and through a pipe, {runs} runs")
        argv = [self.jail, self.root, "bench-relay", "", "/usr/bin/head", "-c", str(size),
                "/dev/zero"]
        fifo = os.path.join(self.work, "relay.fifo")
        os.mkfifo(fifo, 0o600)
        null = os.open(os.devnull, os.O_WRONLY)
        out: dict[str, list[float]] = {"relay": [], "pipe": []}
        try:
            for _ in range(runs):
                for kind in out:
                    if kind == "relay":
                        r = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
                        w = os.open(fifo, os.O_WRONLY)
                        os.set_blocking(r, True)
                    else:
                        r, w = os.pipe()
                    t = time.monotonic()
                    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=w)
                    os.close(w)
                    moved = 0
                    while True:
                        n = os.splice(r, null, 1 << 20)
                        if n == 0:
                            break
                        moved += n
                    proc.wait()
                    took = time.monotonic() - t
                    os.close(r)
                    if proc.returncode != 0 or moved != size:
                        raise ToolFailed(f"relay: status {proc.returncode}, {moved} of {size} "
                                         "bytes")
                    out[kind].append(size / took / 1e9)
        finally:
            os.close(null)
            os.unlink(fifo)
        self.data["relay"] = {"gb_per_s": out, "bytes": size}

    # --- all ------------------------------------------------------------------------

    def run(self) -> int:
        tools.install_signal_handlers()
        os.makedirs(self.args.out, exist_ok=True)
        try:
            self.setup()
            for name in TESTS:
                if name in self.args.only:
                    getattr(self, f"test_{name}")()
        except ToolFailed as err:
            log(f"failed: {err}")
            return 1
        finally:
            self.cleanup.run()
            if self.cleanup.problems:
                self.notes.append(f"{self.work} kept: cleanup had problems")
            else:
                note = tools.remove_tree(self.work)
                if note:
                    self.notes.append(note)
            self.notes.extend(self.cleanup.problems)
            for problem in self.cleanup.problems:
                log(f"cleanup: {problem}")
        self.data["meta"]["loadavg_end"] = os.getloadavg()[0]
        self.data["meta"]["missing_peers"] = dict(self.peers.missing)
        self.data["summary"] = report.summarize(self.data)
        self.data["targets"] = report.targets(self.data)
        chart = os.path.join(self.args.out, "bench.png")
        note = report.chart(self.data, chart)
        if note:
            self.notes.append(note)
        self.data["notes"] = self.notes
        md = report.markdown(self.data)
        with open(os.path.join(self.args.out, "bench.json"), "w") as f:
            json.dump(self.data, f, indent=1)
        with open(os.path.join(self.args.out, "table.md"), "w") as f:
            f.write(md)
        if self.args.readme:
            report.update_readme(os.path.join(tools.REPO, "bench", "README.md"), md)
        sys.stdout.write(md)
        log(f"raw numbers in {os.path.join(self.args.out, 'bench.json')}")
        return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if os.geteuid() != 0:
        sys.stderr.write("bench: must run as root (jails, runc and nspawn need it)\n")
        return 1
    # the tools run as an administrator runs them: no PYTHONPATH (matplotlib
    # may come from one, for this process only) and no PYTHONDONTWRITEBYTECODE,
    # which would make every `jail` compile the modules whose .pyc is stale
    dropped = sorted(k for k in os.environ if k.startswith("PYTHON"))
    for key in dropped:
        del os.environ[key]
    if dropped:
        log(f"dropped from the tools' environment: {', '.join(dropped)}")
    try:
        return Bench(args).run()
    except KeyboardInterrupt as why:
        log(f"interrupted ({why or 'SIGINT'}); everything started was removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
