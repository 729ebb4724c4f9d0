"""containerd runs tasks through an OCI runtime given by path (issue 14).

A containerd started here on its own socket, root and state directories (a temp config.toml,
tests/oci_env.py), `ctr image import` of the image the podman scenarios use (a jail root
imported by podman and saved as an OCI archive), then `ctr run --runc-binary PATH` with runc
(the reference) and linjail-oci, `ctr task exec`, `ctr task kill`.  Everything is stopped and
removed afterwards: tasks, containers, the image, containerd, its shims and directories.

Every scenario runs with both runtimes (READY); LINJAIL_OCI=/path/to/linjail-oci runs them
with another worktree's linjail-oci.
"""
from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from typing import Iterator

import pytest

import oci_env
from conftest import needs_root
from oci_env import Containerd

pytestmark = [
    needs_root,
    pytest.mark.skipif(any(shutil.which(p, path=oci_env.HOST_PATH) is None
                           for p in ("containerd", "ctr", "podman")),
                       reason="containerd or podman is not installed (make test installs them)"),
]
IMAGE = "localhost/linjail-test:1"


@pytest.fixture(scope="module")
def containerd(jail_base: str) -> Iterator[Containerd]:
    with oci_env.client_image(IMAGE, "containerd") as podman:
        archive = os.path.join(podman.base, "image.tar")
        r = podman("save", "--format", "oci-archive", "-o", archive, IMAGE)
        assert r.rc == 0, r.err
        c = Containerd()
        try:
            r = c.ctr("image", "import", archive)
            assert r.rc == 0, r.err
            podman.cleanup()        # podman is done: only containerd runs the scenarios
            yield c
        finally:
            c.cleanup()
    assert c.left == [], "still there after everything was removed"


#: each scenario runs with runc, and with linjail-oci once linjail-oci passes it on main
READY, runtime = oci_env.client_fixtures()


class Tasks:
    """ctr run with one runtime; every container it made removed afterwards."""

    def __init__(self, c: Containerd, runtime: str) -> None:
        self.c, self.runtime = c, runtime
        self.ids: list[str] = []

    def new_id(self) -> str:
        cid = f"ljt-{uuid.uuid4().hex[:10]}"
        self.ids.append(cid)
        return cid

    def run(self, *options: str, cid: str, argv: tuple[str, ...],
            timeout: float = 60) -> oci_env.Result:
        return self.c.ctr("run", *self.c.run_options(self.runtime, cid), *options, IMAGE, cid,
                          *argv, timeout=timeout)

    def status(self, cid: str) -> str:
        for line in self.c.ctr("task", "ls").out.splitlines()[1:]:
            f = line.split()
            if f and f[0] == cid:
                return f[-1]
        return ""

    def cleanup(self) -> None:
        for cid in self.ids:
            self.c.ctr("task", "kill", "-a", "-s", "SIGKILL", cid)
            for _ in range(50):
                r = self.c.ctr("task", "rm", "-f", cid)
                if r.rc == 0 or "not found" in r.err:
                    break
                time.sleep(0.1)
            self.c.ctr("container", "rm", cid)


@pytest.fixture
def tasks(containerd: Containerd, runtime: str) -> Iterator[Tasks]:
    t = Tasks(containerd, runtime)
    yield t
    t.cleanup()


@READY
def test_run_rm_exit_status_and_output(tasks: Tasks) -> None:
    cid = tasks.new_id()
    r = tasks.run("--rm", cid=cid, argv=("/bin/sh", "-c", "echo out; echo err >&2; exit 3"))
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    assert tasks.c.ctr("container", "ls", "-q").out.split() == []


@READY
def test_detached_task_exec_and_kill(tasks: Tasks) -> None:
    cid = tasks.new_id()
    r = tasks.run("-d", cid=cid, argv=(
        "/bin/sh", "-c", "trap 'exit 0' TERM; busybox sleep 1000 & wait"))
    assert r.rc == 0, r.err
    assert tasks.status(cid) == "RUNNING"
    r = tasks.c.ctr("task", "exec", "--exec-id", "probe", "--fifo-dir",
                    f"{tasks.c.base}/fifo", cid, "/bin/sh", "-c",
                    "echo inside; busybox ls /sys/class/net; exit 5")
    assert (r.rc, r.out, r.err) == (5, "inside\nlo\n", "")
    # a server started by one exec, reached over loopback by another
    r = tasks.c.ctr("task", "exec", "-d", "--exec-id", "server", "--fifo-dir",
                    f"{tasks.c.base}/fifo", cid,
                    "busybox", "httpd", "-f", "-p", "127.0.0.1:8080", "-h", "/www")
    assert r.rc == 0, r.err
    fetch = ("i=0; while [ $i -lt 50 ]; do busybox wget -q -O - http://127.0.0.1:8080/ "
             "2>/dev/null && exit 0; busybox sleep 0.1; i=$((i+1)); done; exit 1")
    r = tasks.c.ctr("task", "exec", "--exec-id", "client", "--fifo-dir",
                    f"{tasks.c.base}/fifo", cid, "/bin/sh", "-c", fetch)
    assert (r.rc, r.out) == (0, "hello from the container\n"), r.err
    # SIGTERM to the task's process: its trap ends it with status 0
    r = tasks.c.ctr("task", "kill", "-s", "SIGTERM", cid)
    assert r.rc == 0, r.err
    deadline = time.monotonic() + 10
    while tasks.status(cid) != "STOPPED" and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tasks.status(cid) == "STOPPED"
    r = tasks.c.ctr("task", "rm", cid)
    assert r.rc == 0, r.err
    assert tasks.status(cid) == ""
    r = tasks.c.ctr("container", "rm", cid)
    assert r.rc == 0, r.err
    assert tasks.c.shims() == []


@READY
def test_task_metrics(tasks: Tasks) -> None:
    """ctr task metrics: the shim reads the container's cgroups where linux.cgroupsPath put
    them (ctr run --cgroup), so the numbers are the task's own."""
    cid = tasks.new_id()
    r = tasks.run("-d", "--memory-limit", str(96 << 20), cid=cid,
                  argv=("/bin/sh", "-c", "busybox sleep 1000 & exec busybox sleep 1000"))
    assert r.rc == 0, r.err
    deadline = time.monotonic() + 10
    while True:
        r = tasks.c.ctr("task", "metrics", "--format", "json", cid)
        assert r.rc == 0, r.err
        data = json.loads(r.out)          # containerd's cgroups v1 Metrics
        if data.get("pids", {}).get("current") == 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert data["pids"]["current"] == 2, data
    assert data["memory"]["usage"]["limit"] == 96 << 20
    assert 16 << 10 <= data["memory"]["usage"]["usage"] <= 64 << 20, data["memory"]
    assert data["cpu"]["usage"]["total"] > 0
    r = tasks.c.ctr("task", "kill", "-s", "SIGKILL", cid)
    assert r.rc == 0, r.err


@READY
def test_a_pods_member_joins_its_sandbox_by_namespace_path(tasks: Tasks) -> None:
    """What containerd's CRI plugin asks of the runtime for a pod, without a kubelet: a
    sandbox task, then a member task in its pid (shareProcessNamespace), network, IPC and
    UTS namespaces by /proc/PID/ns path (`ctr run --with-ns`); the member sees the
    sandbox's process as PID 1, its own is not, its mount namespace is its own."""
    sandbox, member = tasks.new_id(), tasks.new_id()
    r = tasks.run("-d", cid=sandbox, argv=("busybox", "sleep", "1000"))
    assert r.rc == 0, r.err
    [spid] = [int(line.split()[1]) for line in tasks.c.ctr("task", "ls").out.splitlines()[1:]
              if line.split()[0] == sandbox]
    joins = [a for kind, ns in (("pid", "pid"), ("network", "net"), ("ipc", "ipc"),
                                ("uts", "uts"))
             for a in ("--with-ns", f"{kind}:/proc/{spid}/ns/{ns}")]
    script = ("busybox ps -o pid,args; "
              "for n in pid net ipc uts mnt; do busybox readlink /proc/self/ns/$n; done")
    r = tasks.run("--rm", *joins, cid=member, argv=("/bin/sh", "-c", script))
    assert (r.rc, r.err) == (0, ""), r.err
    lines = r.out.splitlines()
    procs = {ln.split(None, 1)[1]: int(ln.split()[0]) for ln in lines[1:-5]}
    assert procs["busybox sleep 1000"] == 1 and procs[f"/bin/sh -c {script}"] > 1, procs
    sandbox_ns = [os.readlink(f"/proc/{spid}/ns/{ns}") for ns in ("pid", "net", "ipc", "uts",
                                                                   "mnt")]
    assert lines[-5:-1] == sandbox_ns[:4] and lines[-1] != sandbox_ns[4]
    assert tasks.status(sandbox) == "RUNNING"
