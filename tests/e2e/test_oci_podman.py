"""podman runs containers through an OCI runtime given by path (issue 14).

`podman --runtime PATH` with runc (the reference) and linjail-oci, on an image made with
`podman import` from a jail root (jailctl build --service: sh, busybox, and the hog probe),
never pulled (`--pull=never`, a `localhost/` name).  podman keeps all its state in a private
directory (tests/oci_env.py); no container has a network (`--network none`): podman's default
bridge would masquerade 10.88.0.0/16 to the uplink.  The firewall (iptables-save, nft list
ruleset) is the same after the module as before it.

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
from conftest import needs_root, run
from oci_env import Podman

pytestmark = [
    needs_root,
    pytest.mark.skipif(shutil.which("podman", path=oci_env.HOST_PATH) is None,
                       reason="podman is not installed (make test installs it)"),
]


class Env:
    def __init__(self, podman: Podman, image: str) -> None:
        self.podman, self.image = podman, image


@pytest.fixture(scope="module")
def env(jail_base: str) -> Iterator[Env]:
    image = "localhost/linjail-test:1"       # the storage is this module's own
    with oci_env.client_image(image, "podman") as podman:
        yield Env(podman, image)


#: each scenario runs with runc, and with linjail-oci once linjail-oci passes it on main
READY, runtime = oci_env.client_fixtures()


class Session:
    """podman --runtime RUNTIME, and every container it names removed afterwards."""

    def __init__(self, env: Env, runtime: str) -> None:
        self.env, self.runtime = env, runtime
        self.names: list[str] = []

    def __call__(self, *args: str, timeout: float = 120) -> oci_env.Result:
        return self.env.podman("--runtime", self.runtime, *args, timeout=timeout)

    def name(self) -> str:
        n = f"ljt-{uuid.uuid4().hex[:10]}"
        self.names.append(n)
        return n

    def run_argv(self, *options: str) -> list[str]:
        return ["run", *self.env.podman.run_options(), *options]

    def cleanup(self) -> None:
        for n in self.names:
            self("rm", "-f", "-t", "0", n)


@pytest.fixture
def podman(env: Env, runtime: str) -> Iterator[Session]:
    s = Session(env, runtime)
    yield s
    s.cleanup()


def _ps(s: Session, *args: str) -> list[dict[str, object]]:
    r = s("ps", "--format", "json", *args)
    assert r.rc == 0, r.err
    got = json.loads(r.out or "[]")
    assert isinstance(got, list)
    return got


@READY
def test_run_rm_exit_status_and_output(podman: Session) -> None:
    r = podman(*podman.run_argv("--rm"), podman.env.image,
               "/bin/sh", "-c", "echo out; echo err >&2; exit 3")
    assert (r.rc, r.out, r.err) == (3, "out\n", "err\n")
    assert _ps(podman, "-a") == []


@READY
def test_interactive_terminal(podman: Session, env: Env) -> None:
    # the shell's own pty (the runtime's --console-socket), typed at through podman's
    rc, out = env.podman.pty("--runtime", podman.runtime, *podman.run_argv("-it", "--rm"),
                             env.image, "/bin/sh",
                             send=b"busybox tty; echo $((6*7))-done; exit 7\r", timeout=60)
    text = out.decode(errors="replace")
    assert rc == 7, text
    assert "/dev/pts/0" in text and "42-done" in text, text
    assert _ps(podman, "-a") == []


@READY
def test_detached_exec_logs_stop_rm(podman: Session) -> None:
    name = podman.name()
    r = podman(*podman.run_argv("-d", "--name", name), podman.env.image, "/bin/sh", "-c",
               "trap 'echo stopping; exit 0' TERM; echo started; busybox sleep 1000 & wait")
    assert r.rc == 0, r.err
    cid = r.out.strip()
    assert len(cid) == 64, r.out
    [row] = _ps(podman)
    assert row["Id"] == cid and row["Names"] == [name] and row["State"] == "running"
    r = podman("exec", name, "/bin/sh", "-c", "echo inside $(busybox hostname); exit 4")
    assert (r.rc, r.out, r.err) == (4, f"inside {cid[:12]}\n", "")
    r = podman("logs", name)
    assert (r.rc, r.out) == (0, "started\n")
    r = podman("stop", "-t", "10", name)
    assert (r.rc, r.out.strip()) == (0, name), r.err
    r = podman("inspect", "--format", "{{.State.Status}} {{.State.ExitCode}}", name)
    assert r.out == "exited 0\n"
    assert podman("logs", name).out == "started\nstopping\n"
    r = podman("rm", name)
    assert (r.rc, r.out.strip()) == (0, name), r.err
    assert _ps(podman, "-a") == []


@READY
def test_server_reached_by_a_second_exec_over_loopback(podman: Session) -> None:
    name = podman.name()
    r = podman(*podman.run_argv("-d", "--name", name), podman.env.image,
               "busybox", "sleep", "1000")
    assert r.rc == 0, r.err
    # the server: one exec, detached (at most 60 s, and stopped below by its pid)
    r = podman("exec", "-d", name, "/bin/sh", "-c", "echo $$ > /tmp/httpd.pid; exec busybox "
               "timeout 60 busybox httpd -f -p 127.0.0.1:8080 -h /www")
    assert r.rc == 0, r.err
    # the second exec, a client: retry while the server comes up
    fetch = ("i=0; while [ $i -lt 50 ]; do busybox wget -q -O - http://127.0.0.1:8080/ "
             "2>/dev/null && exit 0; busybox sleep 0.1; i=$((i+1)); done; exit 1")
    r = podman("exec", name, "/bin/sh", "-c", fetch)
    assert (r.rc, r.out) == (0, "hello from the container\n"), r.err
    # and the container has no other network than its loopback
    r = podman("exec", name, "busybox", "ls", "/sys/class/net")
    assert (r.rc, r.out) == (0, "lo\n")
    # a detached exec still running when its container is removed keeps its conmon waiting
    # for minutes: end it first
    r = podman("exec", name, "/bin/sh", "-c", "kill $(busybox cat /tmp/httpd.pid)")
    assert r.rc == 0, r.err


def _inside_limit(podman: Session, name: str, v1: str, v2: str) -> str:
    """A cgroup limit as the container reads it (v1 controller file or v2 file)."""
    r = podman("exec", name, "/bin/sh", "-c",
               f"busybox cat /sys/fs/cgroup/{v1} 2>/dev/null || busybox cat /sys/fs/cgroup/{v2}")
    assert r.rc == 0, (r.out, r.err)
    return r.out.strip()


@READY
def test_memory_and_pids_limits_hold_inside(podman: Session) -> None:
    name = podman.name()
    r = podman(*podman.run_argv("-d", "--name", name, "--memory", "32m", "--memory-swap", "32m",
                                "--pids-limit", "20"),
               podman.env.image, "busybox", "sleep", "1000")
    assert r.rc == 0, r.err
    assert _inside_limit(podman, name, "memory/memory.limit_in_bytes", "memory.max") \
        == str(32 << 20)
    assert _inside_limit(podman, name, "pids/pids.max", "pids.max") == "20"
    # and they hold: 8 MiB fit, 100 MiB get the process killed; forks stop short of 20
    r = podman("exec", name, "/hog", "mem", "8")
    assert (r.rc, r.out) == (0, "mem 8 ok\n"), r.err
    r = podman("exec", name, "/hog", "mem", "100")
    assert r.rc == 137, (r.rc, r.out, r.err)
    r = podman("exec", name, "/hog", "fork", "50")
    assert r.rc == 0 and r.out.startswith("fork ") and r.out.endswith(" EAGAIN\n"), r.out
    assert int(r.out.split()[1]) < 20


@READY
def test_podman_ps_and_jls_agree(podman: Session) -> None:
    if os.path.basename(podman.runtime) != "linjail-oci":
        pytest.skip("only linjail-oci's containers are jails")
    names = [podman.name() for _ in range(2)]
    cids = []
    for n in names:
        r = podman(*podman.run_argv("-d", "--name", n), podman.env.image,
                   "busybox", "sleep", "1000")
        assert r.rc == 0, r.err
        cids.append(r.out.strip())
    assert {str(row["Id"]) for row in _ps(podman)} == set(cids)

    def jails_of(cid: str) -> list[dict[str, object]]:
        # the jail's name is the container id (+ "~" and a hash when the id is taken)
        return [j for j in json.loads(run("jls", "--json").out)
                if j["name"] == cid or str(j["name"]).startswith(cid + "~")]
    for cid in cids:
        [jail] = jails_of(cid)
        assert jail["state"] == "running", jail
        inside = run("jexec", str(jail["name"]), "/bin/sh", "-c", "busybox hostname")
        assert (inside.rc, inside.out) == (0, cid[:12] + "\n"), inside.err
    r = podman("stop", "-t", "0", *names)
    assert r.rc == 0, r.err
    r = podman("rm", *names)
    assert r.rc == 0, r.err
    assert _ps(podman, "-a") == []
    for cid in cids:
        assert jails_of(cid) == []


@READY
def test_api_service_runs_its_default_runtime(podman: Session, env: Env) -> None:
    # Nomad's podman driver speaks to `podman system service`, which runs containers with the
    # default runtime of its containers.conf: [engine] runtime = NAME, [engine.runtimes]
    name = f"test-{os.path.basename(podman.runtime)}"
    with env.podman.api_service(name, podman.runtime) as url:
        cname = f"ljt-api-{os.getpid()}"

        def remote(*args: str) -> oci_env.Result:
            return env.podman("--remote", "--url", url, *args)
        try:
            r = remote(*podman.run_argv("-d", "--name", cname), env.image,
                       "/bin/sh", "-c", "echo via the API; busybox sleep 1000")
            assert r.rc == 0, r.err
            r = remote("inspect", "--format", "{{.OCIRuntime}}", cname)
            assert (r.rc, r.out) == (0, f"{name}\n"), r.err
            r = remote("exec", cname, "busybox", "echo", "exec too")
            assert (r.rc, r.out) == (0, "exec too\n"), r.err
            assert remote("logs", cname).out == "via the API\n"
            r = remote("rm", "-f", "-t", "0", cname)
            assert r.rc == 0, r.err
        finally:
            # the service knows NAME; a podman without its containers.conf does not
            remote("rm", "-f", "-t", "0", cname)


@READY
@pytest.mark.parametrize("options, field, why", [
    (("--network", "host"), "linux.namespaces",
     "no network namespace: the host's is never shared with a jail"),
    (("--pid", "host"), "linux.namespaces",
     "no pid namespace: the host's is never shared with a jail"),
    (("--cap-add", "SYS_ADMIN"), "process.capabilities.bounding",
     "CAP_SYS_ADMIN: no jail holds it (privileged containers are refused)"),
])
def test_what_a_jail_refuses_reaches_the_user_in_one_line(
        podman: Session, options: tuple[str, ...], field: str, why: str) -> None:
    if os.path.basename(podman.runtime) != "linjail-oci":
        pytest.skip("runc runs these")
    argv = podman.run_argv("--rm")
    if options[0] == "--network":          # instead of run_argv's --network none
        argv = [a for a in argv if a not in ("--network", "none")]
    argv += options
    r = podman(*argv, podman.env.image, "busybox", "true")
    assert r.rc == 126, (r.out, r.err)
    assert f"Error: OCI runtime error: {podman.runtime}: config.json: {field}: {why}\n" \
        in r.err, r.err
    assert _ps(podman, "-a") == []
    base = podman.env.podman.base + "/"     # and no jail of ours (others' come and go)
    assert [j for j in json.loads(run("jls", "--json").out)
            if str(j["path"]).startswith(base)] == []


@READY
def test_a_pod_shares_ipc_uts_net_and_pid_with_its_infra_container(podman: Session) -> None:
    """`podman pod create --share ipc,uts,net,pid` (no network, the test image as infra):
    each container of the pod joins the infra container's namespaces by /proc/PID/ns path,
    keeps a mount namespace of its own, and sees the pod's processes; with linjail-oci each
    is a jail of its own that `jexec` enters.  (podman 4.3's default --share, ipc,net,uts,
    is the same less pid; cgroup namespaces are each container's own.)"""
    pod, member = f"ljt-pod-{uuid.uuid4().hex[:8]}", podman.name()

    def in_pod(*options: str) -> list[str]:   # the pod's network (none), not one of its own
        argv = podman.run_argv(*options, "--pod", pod)
        i = argv.index("--network")
        return argv[:i] + argv[i + 2:]
    try:
        r = podman("pod", "create", "--name", pod, "--network", "none", "--share",
                   "ipc,uts,net,pid", "--hostname", "podbox", "--infra-image",
                   podman.env.image, "--infra-command", "/bin/busybox sleep 1000",
                   "--cgroup-parent", podman.env.podman.cgroup_parent)
        assert r.rc == 0, r.err
        r = podman(*in_pod("-d", "--name", member), podman.env.image, "busybox", "sleep", "1001")
        assert r.rc == 0, r.err
        script = ("busybox ps -o pid,args; busybox hostname; "
                  "for n in pid net ipc uts mnt; do busybox readlink /proc/self/ns/$n; done")
        r = podman(*in_pod("--rm"), podman.env.image, "/bin/sh", "-c", script)
        assert r.rc == 0, r.err
        lines = r.out.splitlines()
        procs = {ln.split(None, 1)[1]: int(ln.split()[0]) for ln in lines[1:-6]}
        assert procs["/bin/busybox sleep 1000"] == 1          # the infra's process
        assert procs["busybox sleep 1001"] > 1                 # the other member's
        assert procs[f"/bin/sh -c {script}"] > 1               # its own is not PID 1
        assert lines[-6] == "podbox"
        r = podman("exec", member, "/bin/sh", "-c", script.split("; ", 2)[2])
        assert r.rc == 0, r.err
        assert r.out.splitlines()[:4] == lines[-5:-1] and r.out.splitlines()[4] != lines[-1]
        if os.path.basename(podman.runtime) == "linjail-oci":
            cid = podman("inspect", "--format", "{{.Id}}", member).out.strip()
            [jail] = [j for j in json.loads(run("jls", "--json").out)
                      if j["name"] == cid or str(j["name"]).startswith(cid + "~")]
            inside = run("jexec", str(jail["name"]), "/bin/sh", "-c",
                         "busybox ps -o pid,args | busybox grep -c 'sleep 100[01]$'")
            assert (inside.rc, inside.out) == (0, "2\n"), inside.err
    finally:
        r = podman("pod", "rm", "-f", "-t", "0", pod)
    assert r.rc == 0, r.err
    assert _ps(podman, "-a") == []


@READY
def test_uidmap_gives_the_container_a_user_namespace(podman: Session) -> None:
    # podman makes a copy of the image's layers owned by the mapping (BASE+N
    # for N), and hands the runtime the same mappings in config.json
    from test_oci_runtime import free_base, released
    base = free_base()
    name = podman.name()
    r = podman(*podman.run_argv("--name", name, "--uidmap", f"0:{base}:65536",
                                "--gidmap", f"0:{base}:65536"), podman.env.image,
               "/bin/sh", "-c", "busybox id -u; busybox cat /proc/self/uid_map /proc/self/gid_map;"
               " busybox stat -c %u /bin/busybox; busybox touch /made && echo made")
    assert r.rc == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "0" and [line.split() for line in lines[1:3]] == \
        [["0", str(base), "65536"]] * 2 and lines[3:5] == ["0", "made"], r.out
    # (podman's removal of its shm mount can race the container's last
    # mount namespace, with runc too: "device or resource busy"; it is retried)
    for _ in range(5):
        r = podman("rm", "-f", "-t", "0", name)
        if r.rc == 0 or "resource busy" not in r.err:
            break
        time.sleep(1)
    assert r.rc == 0, r.err
    assert _ps(podman, "-a") == [] and released(base)
