"""The tools under test, the shared root, and the cleanup of all they start.

Every jail, container and sandbox started here is recorded in a Cleanup
first thing after it exists; Cleanup.run() removes them all (linjail jails
with `jailctl remove`, runc containers with `runc delete -f`, bubblewrap
sandboxes by the PID we started), also on an exception or a signal.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Sequence

from measure import ToolFailed, cgroup_pids

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def linjail_bin(name: str) -> str:
    """The checkout's command, as the tests run it: the launcher in .venv/sbin
    (make dev), else the console script in .venv/bin, else PATH."""
    venv = os.path.dirname(os.path.dirname(sys.executable))
    for here in (os.path.join(venv, "sbin", name), os.path.join(venv, "bin", name)):
        if os.access(here, os.X_OK):
            return here
    found = shutil.which(name, path=os.environ.get("PATH", "") + ":/usr/local/sbin")
    if found is None:
        raise SystemExit(f"bench: {name}: not found (run `make dev`)")
    return found


@dataclass
class Peers:
    """The other tools, or None with the reason each is missing."""
    bwrap: str | None = None
    runc: str | None = None
    nspawn: str | None = None
    nsenter: str | None = None
    podman: str | None = None
    #: the checkout's OCI runtime (issue 14), or LINJAIL_OCI=PATH (another worktree's)
    linjail_oci: str | None = None
    missing: dict[str, str] = field(default_factory=dict)

    @classmethod
    def find(cls) -> "Peers":
        peers = cls()
        for attr, prog, pkg in (("bwrap", "bwrap", "bubblewrap"), ("runc", "runc", "runc"),
                                ("nspawn", "systemd-nspawn", "systemd-container"),
                                ("nsenter", "nsenter", "util-linux"),
                                ("podman", "podman", "podman")):
            path = shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin")
            if path is None:
                peers.missing[prog] = f"not installed (Debian package {pkg}; `make bench`)"
            setattr(peers, attr, path)
        venv = os.path.dirname(os.path.dirname(sys.executable))
        oci = os.environ.get("LINJAIL_OCI") or os.path.join(venv, "sbin", "linjail-oci")
        if os.access(oci, os.X_OK):
            peers.linjail_oci = oci
        else:
            peers.missing["linjail-oci"] = f"{oci}: not there (`make dev`)"
        return peers

    def disable(self, attr: str, prog: str, why: str) -> None:
        setattr(self, attr, None)
        self.missing[prog] = why


def version(argv: Sequence[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, timeout=10)
        text = (out.stdout or out.stderr).decode("utf-8", "replace").strip()
        return text.splitlines()[0] if text else ""
    except (OSError, subprocess.TimeoutExpired):
        return ""


# --- cleanup --------------------------------------------------------------------------

class Cleanup:
    """Everything started, to be removed in reverse kind order at the end."""

    def __init__(self, jailctl: str, jls: str) -> None:
        self.jailctl = jailctl
        self.jls = jls
        self.jails: dict[int, str] = {}               # JID -> its cgroup ("" unknown)
        self.runc: list[tuple[str, str]] = []        # (runc state root, container id)
        self.oci: list[tuple[str, str, str]] = []    # (runtime, its state root, container id)
        self.procs: list[subprocess.Popen[bytes]] = []
        self.root_path: str | None = None             # jails on it are ours alone
        self.problems: list[str] = []

    def add_jail(self, jid: int) -> None:
        try:
            self.jails[jid] = jail_cgroup(jid)
        except Exception:     # still ours to remove; only the check after is lost
            self.jails[jid] = ""

    def remove_jail(self, jid: int, grace: float = 1.0,
                    env: dict[str, str] | None = None) -> float:
        """`jailctl remove` (ENV: of another registry); its wall time in ms.
        Then check that the jail's cgroup is empty: if jailctl missed it, its
        processes (ours) are killed by PID and the miss is reported."""
        if env is not None and jid not in self.jails:
            self.add_jail(jid)
        t0 = time.perf_counter()
        proc = subprocess.run([self.jailctl, "remove", "-t", str(grace), str(jid)],
                              stdin=subprocess.DEVNULL, capture_output=True,
                              start_new_session=True, env=env)
        ms = (time.perf_counter() - t0) * 1000.0
        if proc.returncode != 0 and b"no such jail" not in proc.stderr:
            raise ToolFailed(["jailctl", "remove", str(jid)], proc.returncode, proc.stderr)
        cg = self.jails.pop(jid, "")
        if cg and wait_pids_below(cg, 1, timeout=2.0):
            left = cgroup_pids(cg)
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.problems.append(f"jailctl remove {jid} left {len(left)} processes in {cg} "
                                 f"({proc.stderr.decode(errors='replace').strip()}): killed")
        return ms

    def kill_proc(self, proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)    # by PID: a process we started
            except ProcessLookupError:
                pass
        proc.wait()
        if proc in self.procs:
            self.procs.remove(proc)

    def run(self) -> None:
        """Remove everything; never raises.  Signals are ignored meanwhile and
        the removal commands run in their own session, so a second ^C or a
        `timeout` signalling our process group cannot cut a removal in half
        (a `runc delete -f` cut short leaves a frozen container behind)."""
        old = {sig: signal.signal(sig, signal.SIG_IGN)
               for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        try:
            for step in (self._procs, self._runc, self._oci, self._jails, self._strays):
                try:
                    step()
                except Exception as err:      # go on: the next step owns other things
                    self.problems.append(f"cleanup {step.__name__}: {err!r}")
        finally:
            for sig, handler in old.items():
                signal.signal(sig, handler)

    def _procs(self) -> None:
        for proc in list(self.procs):
            self.kill_proc(proc)

    def _runc(self) -> None:
        for state, cid in list(self.runc):
            self._delete("runc", state, cid)
            self.runc.remove((state, cid))

    def _oci(self) -> None:
        for runtime, state, cid in list(self.oci):
            self._delete(runtime, state, cid)
            self.oci.remove((runtime, state, cid))

    def _delete(self, runtime: str, state: str, cid: str) -> None:
        """`RUNTIME delete -f`, then kill and delete again, until `state` knows it no more."""
        for argv in (["delete", "-f", cid], ["kill", cid, "KILL"], ["delete", "-f", cid]):
            subprocess.run([runtime, "--root", state, *argv], stdin=subprocess.DEVNULL,
                           capture_output=True, start_new_session=True)
            gone = subprocess.run([runtime, "--root", state, "state", cid],
                                  stdin=subprocess.DEVNULL, capture_output=True,
                                  start_new_session=True).returncode != 0
            if gone:
                return
        self.problems.append(f"{os.path.basename(runtime)} container {cid} (state {state}) "
                             "not removed")

    def _jails(self) -> None:
        for jid in list(self.jails):
            try:
                self.remove_jail(jid, grace=0.2)
            except (OSError, ToolFailed) as err:
                self.problems.append(f"jail {jid}: {err}")

    def _strays(self) -> None:
        """A jail whose JID we never learnt (stopped between its start and the
        -i output) still runs on our private root: find it there."""
        if not self.root_path:
            return
        for rec in our_jails(self.jls, self.root_path):
            jid = int(str(rec["jid"]))
            self.add_jail(jid)
            try:
                self.remove_jail(jid, grace=0.2)
            except (OSError, ToolFailed) as err:
                self.problems.append(f"jail {jid}: {err}")


def our_jails(jls: str, root: str) -> list[dict[str, object]]:
    return [r for r in jls_json(jls) if r.get("path") == root]


def jls_json(jls: str) -> list[dict[str, object]]:
    out = subprocess.run([jls, "--json"], capture_output=True, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        return []
    try:
        data = json.loads(out.stdout or b"[]")
    except ValueError:
        return []
    return data if isinstance(data, list) else []


def install_signal_handlers() -> None:
    """TERM/HUP end the run through the same finally as ^C, so cleanup runs."""
    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)


# --- linjail --------------------------------------------------------------------------

def jail_cgroup(jid: int) -> str:
    """The jail's cgroup, from its registry record (SPEC §7 "State"), read
    with linjail's own registry module so that a change of the record format
    does not break the bench."""
    try:
        from linjail.state import registry
    except ImportError:     # run by another interpreter than the project's venv
        sys.path.append(os.path.join(REPO, "src"))
        from linjail.state import registry
    rec = registry.read(jid)
    if rec is None or not rec.cgroup:
        raise KeyError(f"jail {jid}: no registry record with a cgroup")
    return str(rec.cgroup)


def start_daemon_jail(jail: str, root: str, name: str, ips: str, script: str,
                      cleanup: Cleanup, workdir: str,
                      env: dict[str, str] | None = None) -> tuple[int, float]:
    """`jail -i ROOT NAME IPS /bin/sh -c SCRIPT` as rc.conf's /etc/rc does: the
    command starts daemons and returns, the jail lives on.  (JID, wall ms).

    stdout and stderr are files, not pipes: the daemon inherits them and would
    hold a pipe open forever."""
    out_path = os.path.join(workdir, "jail-i.out")
    err_path = os.path.join(workdir, "jail-i.err")
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.run([jail, "-i", root, name, ips, "/bin/sh", "-c", script],
                              stdin=subprocess.DEVNULL, stdout=out, stderr=err, env=env)
        ms = (time.perf_counter() - t0) * 1000.0
    with open(out_path, "rb") as f:
        first = f.readline().strip()
    if first.isdigit() and env is None:     # (another registry: the caller removes it)
        cleanup.add_jail(int(first))
    if proc.returncode != 0 or not first.isdigit():
        with open(err_path, "rb") as f:
            raise ToolFailed(["jail", "-i", root, name, ips], proc.returncode, f.read())
    return int(first), ms


def wait_pids(cgroup_dir: str, count: int, timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while True:
        n = len(cgroup_pids(cgroup_dir))
        if n >= count or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


def wait_pids_below(cgroup_dir: str, count: int, timeout: float) -> int:
    """Wait until fewer than COUNT processes remain; how many are left."""
    deadline = time.monotonic() + timeout
    while True:
        n = len(cgroup_pids(cgroup_dir))
        if n < count or time.monotonic() > deadline:
            return n
        time.sleep(0.01)


# --- the shared root ------------------------------------------------------------------

def make_root(jailctl: str, parent: str) -> tuple[str, str]:
    """A service root with sh, true and sleep under PARENT (mode 0700, as
    jail(8) advises); (path, how it was made)."""
    root = os.path.join(parent, "root")
    proc = subprocess.run([jailctl, "build", root, "--service", "/bin/sh", "/bin/true",
                           "/bin/sleep", "/usr/bin/head"], stdin=subprocess.DEVNULL,
                          capture_output=True)
    if proc.returncode == 0:
        how = "jailctl build --service /bin/sh /bin/true /bin/sleep /usr/bin/head"
    else:
        shutil.rmtree(root, ignore_errors=True)
        busybox_root(root)
        how = ("busybox root (jailctl build failed: "
               f"{proc.stderr.decode(errors='replace').strip()[:120]})")
    # runc and nspawn create these mount points on first use; creating them
    # now gives every run of every tool the same tree
    for d in ("sys", "run", "var"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    return root, how


def busybox_root(root: str) -> None:
    """/bin/busybox is dynamic on Debian: copy it with the libraries ldd names."""
    bb = shutil.which("busybox") or "/bin/busybox"
    for d in ("bin", "dev", "proc", "etc", "tmp", "root"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    shutil.copy2(os.path.realpath(bb), os.path.join(root, "bin", "busybox"))
    for applet in ("sh", "true", "sleep"):
        os.symlink("busybox", os.path.join(root, "bin", applet))
    ldd = subprocess.run(["ldd", bb], capture_output=True, text=True).stdout
    for line in ldd.splitlines():
        parts = line.split()
        lib = next((p for p in parts if p.startswith("/")), None)
        if lib:
            dest = os.path.join(root, lib.lstrip("/"))
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            shutil.copy2(os.path.realpath(lib), dest)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\n")


def mounted_below(path: str) -> list[str]:
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            target = line.split()[4]
            if target == path or target.startswith(path.rstrip("/") + "/"):
                out.append(target)
    return out


def remove_tree(path: str) -> str | None:
    """rmtree, unless something is still mounted there (then say so)."""
    left = mounted_below(path)
    if left:
        return f"left {path} in place: still mounted: {', '.join(left[:3])}"
    shutil.rmtree(path, ignore_errors=True)
    return None


def workdir() -> str:
    return tempfile.mkdtemp(prefix="linjail-bench-", dir="/var/tmp")   # mode 0700


# --- runc -----------------------------------------------------------------------------

def runc_bundle(runc: str, bundle: str, root: str, args: list[str]) -> None:
    """`runc spec`, then: no terminal, our root read-only, ARGS, and the same
    namespaces as a jail (pid net ipc uts mount, plus cgroup)."""
    os.makedirs(bundle, exist_ok=True)
    subprocess.run([runc, "spec", "--bundle", bundle], check=True, capture_output=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args
    cfg["root"] = {"path": root, "readonly": True}
    spaces = cfg["linux"].setdefault("namespaces", [])
    have = {ns["type"] for ns in spaces}
    for kind in ("pid", "network", "ipc", "uts", "mount", "cgroup"):
        if kind not in have:
            spaces.append({"type": kind})
    with open(path, "w") as f:
        json.dump(cfg, f, indent=1)
