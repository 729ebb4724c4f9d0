"""linjail-oci as its callers drive it (runc's command line): create, start,
state, kill, delete, run, list, features; the state JSON and the status
transitions of the runtime spec; errors in one line that leave nothing;
the container is a jail (jls shows it); its process is PID 1; the escape
battery's probe run as the container's process.

Every test has a --root of its own (so `list` sees only its containers) and
removes what it made, also when it fails (the `oci` fixture).
"""
from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from typing import Any, Iterator

import pytest

from conftest import (HOST_PATH, build_service_root, cmd, install_probe, leftovers,
                      needs_root, wait_until)

pytestmark = needs_root
BB = "/usr/bin/busybox"
ENV = {"PATH": HOST_PATH, "LANG": "C"}


def default_config(root: str, args: list[str], **extra: Any) -> dict[str, Any]:
    """`linjail-oci spec`'s config (runtime.spec_template), for a service root:
    no terminal, a /tmp of its own, a readonly root that is not ours to change."""
    from linjail.oci.runtime import spec_template
    doc = spec_template(tuple(args))
    doc["process"]["terminal"] = False
    doc["process"]["env"] = ["PATH=/usr/bin:/bin", "TERM=xterm"]
    doc["root"] = {"path": root, "readonly": True}
    doc["hostname"] = "ocibox"
    doc["mounts"].insert(5, {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
                             "options": ["nosuid", "nodev", "mode=1777"]})
    doc.update(extra)
    return doc


class Oci:
    """A --root of the test's own; every container made is force-deleted."""

    def __init__(self, base: str, rootfs: str) -> None:
        self.base = base
        self.rootfs = rootfs
        self.root = os.path.join(base, "state")
        self.ids: list[str] = []

    def bundle(self, args: list[str], **extra: Any) -> str:
        path = tempfile.mkdtemp(prefix="bundle-", dir=self.base)
        with open(os.path.join(path, "config.json"), "w") as f:
            json.dump(default_config(self.rootfs, args, **extra), f)
        return path

    def new_id(self) -> str:
        cid = f"t-{uuid.uuid4().hex[:12]}"
        self.ids.append(cid)
        return cid

    def __call__(self, *args: str, stdout: Any = None, timeout: float = 60,
                 **kw: Any) -> subprocess.CompletedProcess[str]:
        """linjail-oci ARGS; stdout and stderr through files, not pipes: a
        container's process holds what `create` was given (as with runc), and a
        pipe would not end before it does."""
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([cmd("linjail-oci"), "--root", self.root, *args], text=True,
                               stdout=out if stdout is None else stdout, stderr=err,
                               env=ENV, timeout=timeout, **kw)
            out.seek(0)
            err.seek(0)
            return subprocess.CompletedProcess(p.args, p.returncode, out.read(), err.read())

    def state(self, cid: str) -> dict[str, Any]:
        p = self("state", cid)
        assert p.returncode == 0, p.stderr
        out: dict[str, Any] = json.loads(p.stdout)
        return out

    def status(self, cid: str) -> str:
        return str(self.state(cid)["status"])

    def cleanup(self) -> None:
        for cid in self.ids:
            if os.path.isdir(os.path.join(self.root, cid)):
                self("delete", "--force", cid)


@pytest.fixture(scope="module")
def rootfs(jail_base: str, probe_binary: str) -> Iterator[str]:
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed (make test installs it)")
    path = build_service_root(os.path.join(jail_base, "oci-root"))
    install_probe(probe_binary, path)
    install_probe(probe_binary, path, "probe-suid", 0o4755)
    os.mknod(os.path.join(path, "tmp/planted-zero"), 0o666 | stat.S_IFCHR, os.makedev(1, 5))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def oci(jail_base: str, rootfs: str) -> Iterator[Oci]:
    base = tempfile.mkdtemp(prefix="oci-", dir=jail_base)
    o = Oci(base, rootfs)
    try:
        yield o
    finally:
        o.cleanup()
        shutil.rmtree(base, ignore_errors=True)


def jls_names() -> dict[str, int]:
    p = subprocess.run([cmd("jls"), "jid", "name"], capture_output=True, text=True, env=ENV)
    return {line.split()[1]: int(line.split()[0]) for line in p.stdout.splitlines()
            if len(line.split()) == 2}


# --- the lifecycle -----------------------------------------------------------------------

def test_create_start_state_delete(oci: Oci) -> None:
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sh", "-c", f"echo pid=$$ host=$({BB} hostname) uid=$({BB} id -u)"])
    out = os.path.join(oci.base, "out")
    pidfile = os.path.join(oci.base, "pid")
    with open(out, "w") as f:
        p = oci("create", "--bundle", bundle, "--pid-file", pidfile, cid, stdout=f)
    assert (p.returncode, p.stderr) == (0, "")
    st = oci.state(cid)
    with open(pidfile) as f:
        pid_text = f.read()
    assert pid_text == str(st["pid"]) and st["pid"] > 1     # runc's: no newline
    assert set(st) == {"ociVersion", "id", "pid", "status", "bundle", "rootfs", "created",
                       "owner"}
    assert (st["id"], st["status"], st["bundle"], st["rootfs"], st["owner"]) == \
        (cid, "created", bundle, oci.rootfs, "")
    assert st["created"].endswith("Z") and len(st["created"]) == 30
    # a jail in the registry, named after the container; nothing ran yet
    assert cid in jls_names()
    time.sleep(0.2)
    assert open(out).read() == ""
    assert (oci("start", cid).returncode) == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    assert open(out).read() == "pid=1 host=ocibox uid=0\n"
    stopped = oci.state(cid)
    assert stopped["pid"] == 0 and stopped["created"] == st["created"]
    jid = jls_names().get(cid)
    assert jid is None
    p = oci("delete", cid)
    assert (p.returncode, p.stderr) == (0, "")
    p = oci("state", cid)
    assert (p.returncode, p.stdout, p.stderr) == \
        (1, "", f"linjail-oci: container {cid} does not exist\n")
    assert not os.path.exists(os.path.join(oci.root, cid))


def test_transitions_refused(oci: Oci) -> None:
    def refused(*args: str, why: str) -> None:
        p = oci(*args)
        assert (p.returncode, p.stdout, p.stderr) == (1, "", f"linjail-oci: {why}\n"), args
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sleep", "60"])
    assert oci("create", "--bundle", bundle, cid).returncode == 0
    refused("create", "--bundle", bundle, cid, why=f"container with id {cid} already exists")
    # the runtime spec: delete of a container that is not stopped is an error
    refused("delete", cid, why=f"cannot delete container {cid} that is not stopped: created")
    assert oci("start", cid).returncode == 0
    assert oci.status(cid) == "running"
    refused("start", cid, why=f"cannot start a container that is running: {cid}")
    refused("delete", cid, why=f"cannot delete container {cid} that is not stopped: running")
    assert oci.status(cid) == "running"
    # PID 1 without a handler for TERM: the kernel does not deliver it
    assert oci("kill", cid).returncode == 0
    time.sleep(0.3)
    assert oci.status(cid) == "running"
    assert oci("kill", cid, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    refused("kill", cid, "KILL", why=f"container {cid} is stopped: cannot send it a signal")
    refused("start", cid, why=f"cannot start a container that is stopped: {cid}")
    assert oci("delete", cid).returncode == 0


def test_delete_force_and_kill_all(oci: Oci) -> None:
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sh", "-c", f"{BB} sleep 60 & {BB} sleep 60"])
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    st = oci.state(cid)
    jid = jls_names()[cid]
    assert oci("kill", "--all", cid, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    assert oci("delete", cid).returncode == 0
    assert leftovers(jid) == []
    # --force: a running container is killed first
    cid2 = oci.new_id()
    assert oci("run", "--detach", "--bundle", bundle, cid2).returncode == 0
    jid2 = jls_names()[cid2]
    p = oci("delete", "--force", cid2)
    assert (p.returncode, p.stderr) == (0, "")
    assert leftovers(jid2) == [] and cid2 not in jls_names()
    from linjail.state.registry import starttime
    assert st["pid"] > 0 and starttime(st["pid"]) is None      # gone, or a zombie


def test_run_exit_status_and_signal(oci: Oci) -> None:
    p = oci("run", "--bundle", oci.bundle([BB, "sh", "-c", "echo out; exit 7"]),
            oci.new_id())
    assert (p.returncode, p.stdout, p.stderr) == (7, "out\n", "")
    # killed by a signal: 128+N, as a shell reports it; the container is gone.
    # (PID 1 of a container ignores a signal it has no handler for, even its
    # own `kill -USR1 $$`: the kernel's rule for a namespace's init)
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sh", "-c", f"kill -USR1 $$; {BB} sleep 60"])
    with tempfile.TemporaryFile() as out:
        runner = subprocess.Popen([cmd("linjail-oci"), "--root", oci.root, "run", "--bundle",
                                   bundle, cid], stdout=out, stderr=out, env=ENV)
        try:
            assert wait_until(lambda: os.path.exists(os.path.join(oci.root, cid)) and
                              oci.status(cid) == "running")
            assert oci("kill", cid, "KILL").returncode == 0
            assert runner.wait(timeout=30) == 128 + 9
        finally:
            if runner.poll() is None:
                runner.kill()
                runner.wait()
    assert oci("state", cid).returncode == 1
    p = oci("list", "-q")
    assert (p.returncode, p.stdout) == (0, "")


def test_list_and_features(oci: Oci) -> None:
    a, b = sorted([oci.new_id(), oci.new_id()])
    bundle = oci.bundle([BB, "sleep", "60"])
    assert oci("create", "--bundle", bundle, a).returncode == 0
    assert oci("run", "-d", "--bundle", bundle, b).returncode == 0
    p = oci("list")
    lines = p.stdout.splitlines()
    assert lines[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert [line.split()[0::2][:2] for line in lines[1:]] == [[a, "created"], [b, "running"]]
    listed = json.loads(oci("list", "--format", "json").stdout)
    # runc's list: the state, with the owner of the container's directory (state says "")
    assert [s["id"] for s in listed] == [a, b] and listed[1] == {**oci.state(b), "owner": "root"}
    assert [line.split()[-1] for line in lines[1:]] == ["root", "root"]
    assert oci("list", "-q").stdout == f"{a}\n{b}\n"
    # the container is a jail: jexec finds it by the container's id
    p = subprocess.run([cmd("jexec"), b, BB, "hostname"], capture_output=True, text=True,
                       env=ENV, timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, "ocibox\n", "")
    f = json.loads(oci("features").stdout)
    assert f["ociVersionMin"] == "1.0.0" and "CAP_SYS_ADMIN" not in f["linux"]["capabilities"]
    # user namespaces with the config's mappings; no idmapped mounts (mounts[].uidMappings)
    assert f["linux"]["namespaces"] == ["cgroup", "ipc", "mount", "network", "pid", "user",
                                        "uts"]
    assert f["linux"]["mountExtensions"] == {"idmap": {"enabled": False}}


def test_errors_are_one_line_and_leave_nothing(oci: Oci) -> None:
    log = os.path.join(oci.base, "log.json")
    bundle = oci.bundle([BB, "true"])
    with open(os.path.join(bundle, "config.json")) as f:
        doc = json.load(f)
    doc["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)
    cid = oci.new_id()
    p = oci("--log", log, "--log-format", "json", "create", "--bundle", bundle, cid)
    msg = ("config.json: process.capabilities.bounding: CAP_SYS_ADMIN: no jail holds it "
           "(privileged containers are refused)")
    assert (p.returncode, p.stderr) == (1, f"linjail-oci: {msg}\n")
    with open(log) as f:
        entry = json.loads(f.read())
    assert (entry["level"], entry["msg"]) == ("error", msg) and entry["time"].endswith("Z")
    assert not os.path.exists(os.path.join(oci.root, cid))
    # a program that does not exist: refused by create, as runc does
    p = oci("create", "--bundle", oci.bundle(["/no/such/program"]), cid)
    assert (p.returncode, p.stderr) == \
        (1, "linjail-oci: exec: /no/such/program: No such file or directory\n")
    p = oci("create", "--bundle", oci.bundle(["nosuch"]), cid)
    assert p.stderr == 'linjail-oci: exec: "nosuch": executable file not found in $PATH\n'
    p = oci("create", "--bundle", oci.bundle([BB, "true"]), "a/b")
    assert (p.returncode, p.stderr) == (1, "linjail-oci: invalid container id: a/b\n")
    p = oci("create", "--bundle", oci.base + "/nope", cid)
    assert p.stderr == f"linjail-oci: bundle {oci.base}/nope: No such file or directory\n"
    p = oci("--systemd-cgroup", "create", "--bundle", bundle, cid)
    assert p.stderr == "linjail-oci: --systemd-cgroup: systemd is not PID 1 on this host\n"
    p = oci("frobnicate")
    assert p.returncode == 1 and p.stderr.startswith("linjail-oci: no such command: "
                                                     "frobnicate\nusage: linjail-oci ")
    assert not set(oci.ids) & set(jls_names()) and os.listdir(oci.root) == []


def test_console_socket(oci: Oci) -> None:
    """process.terminal: the master of a pty of the jail's own devpts goes to
    the console socket (SCM_RIGHTS), as conmon and containerd-shim expect."""
    path = os.path.join(oci.base, "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sh", "-c", f"{BB} tty; {BB} stty size; echo done"])
    with open(os.path.join(bundle, "config.json")) as f:
        doc = json.load(f)
    doc["process"].update(terminal=True, consoleSize={"height": 30, "width": 100})
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)
    p = oci("create", "--bundle", bundle, "--console-socket", path, cid)
    assert (p.returncode, p.stderr) == (0, "")
    conn, _ = server.accept()
    _, fds, _, _ = socket.recv_fds(conn, 64, 1)
    conn.close()
    server.close()
    assert len(fds) == 1
    master = fds[0]
    try:
        assert oci("start", cid).returncode == 0
        out = b""
        while b"done" not in out:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            out += chunk
    finally:
        os.close(master)
    assert out.replace(b"\r", b"").decode().split("\n")[:3] == ["/dev/pts/0", "30 100",
                                                               "done"]
    p = oci("create", "--bundle", bundle, oci.new_id())
    assert p.stderr == "linjail-oci: process.terminal is true: --console-socket is required\n"


@pytest.mark.parametrize("pod,userns", [(False, False), (True, False), (False, True)],
                         ids=["own", "pod-member", "userns"])
def test_the_escape_battery_as_the_container_process(oci: Oci, pod: bool,
                                                     userns: bool) -> None:
    """The probe of tests/e2e/test_escape.py as process.args: every attack
    that does not need the jail's reaper or its addresses gives the result
    it gives in a jail.  POD: the container joins another container's pid,
    network, IPC and UTS namespaces (a pod's member: tests/e2e/test_oci_join.py),
    with the same results.  USERNS: a user namespace with the config's
    mappings, the results of jail.unprivileged_root=1."""
    from test_escape import ALLOWED, ATTACKS, _expected, _label, _parse
    skip = {"pid1-fds", "kill-reaper", "ptrace-reaper", "pid1-exe-write", "chroot-escape",
            "host-file", "abstract-unix", "bind-foreign", "bind"}
    victim = subprocess.Popen(["sleep", "600"])
    sandbox = oci.new_id()
    if pod:
        assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "600"]), sandbox
                   ).returncode == 0
        spid = oci.state(sandbox)["pid"]
    try:
        chosen = [(a.format(hostpid=victim.pid), e) for a, e in ATTACKS + ALLOWED
                  if _label(a) not in skip]
        cid = oci.new_id()
        base = free_base()
        bundle = (userns_bundle(oci, [], base) if userns else oci.bundle([]))
        with open(os.path.join(bundle, "config.json")) as f:
            doc = json.load(f)
        doc["process"] = default_config(oci.rootfs, ["/probe", "multi",
                                                     *(a for a, _ in chosen)])["process"]
        doc["process"]["noNewPrivileges"] = False
        del doc["process"]["capabilities"]      # the jail's own set
        # a writable root with a device node planted in its /tmp (root is nodev)
        doc["root"]["readonly"] = False
        doc["mounts"] = [m for m in doc["mounts"] if m["destination"] != "/tmp"]
        if pod:
            ns_of = {"pid": "pid", "network": "net", "ipc": "ipc", "uts": "uts"}
            for ns in doc["linux"]["namespaces"]:
                if ns["type"] in ns_of:
                    ns["path"] = f"/proc/{spid}/ns/{ns_of[ns['type']]}"
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(doc, f)
        p = oci("run", "--bundle", bundle, cid, timeout=120)
    finally:
        victim.kill()
        victim.wait()
    assert p.returncode == 0, p.stderr
    got = _parse(p.stdout)
    # without a user namespace in the config a container has none (oci/runtime.py
    # oci_knobs): the results of unprivileged_root=0; with one, those of 1
    wrong = {_label(a): (got.get(_label(a)), _expected(e, "first", int(userns)))
             for a, e in chosen if got.get(_label(a)) != _expected(e, "first", int(userns))}
    assert wrong == {}
    if userns:
        assert released(base)


def test_cgroups_path_and_resources(oci: Oci) -> None:
    """linux.cgroupsPath names the container's cgroup in every v1 hierarchy
    (where its caller reads statistics) and linux.resources are written
    there; the limits hold inside; delete removes every directory it made."""
    pids_root = "/sys/fs/cgroup/pids"
    if not os.path.isfile(os.path.join(pids_root, "cgroup.procs")):
        pytest.skip("no v1 pids hierarchy on this host")
    cid = oci.new_id()
    top = f"linjail-oci-test-{cid}"
    bundle = oci.bundle([BB, "sh", "-c", f"{BB} sleep 60 & {BB} sleep 60 & {BB} sleep 60"],
                        )
    with open(os.path.join(bundle, "config.json")) as f:
        doc = json.load(f)
    doc["linux"]["cgroupsPath"] = f"/{top}/box"
    doc["linux"]["resources"] = {"pids": {"limit": 3}, "memory": {"limit": 64 << 20}}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    with open(os.path.join(pids_root, top, "box", "pids.max")) as f:
        assert f.read() == "3\n"
    with open("/sys/fs/cgroup/memory/" + top + "/box/memory.limit_in_bytes") as f:
        assert f.read() == f"{64 << 20}\n"
    with open(f"/proc/{pid}/cgroup") as f:
        assert f"pids:/{top}/box\n" in f.read()
    # the fourth process of the container is refused (sh and two sleeps run)
    assert wait_until(lambda: len(open(os.path.join(pids_root, top, "box",
                                                    "cgroup.procs")).read().split()) == 3)
    p = subprocess.run([cmd("jexec"), cid, BB, "true"], capture_output=True, text=True,
                       env=ENV, timeout=30)
    assert p.returncode != 0
    assert oci("delete", "--force", cid).returncode == 0
    assert not any(os.path.exists(f"/sys/fs/cgroup/{h}/{top}")
                   for h in os.listdir("/sys/fs/cgroup"))


@pytest.mark.parametrize("path", ["fast", "python"])
def test_jexec_counts_in_the_containers_cgroups(oci: Oci, path: str) -> None:
    """Escape attempt (the administrator's side): a process entered with
    `jexec` must count in the container's v1 cgroups (linux.cgroupsPath, where
    its memory and pids limits are), on jexec's C path as on Python's.  It did
    not on the C path: the process ran in the host's cgroups, outside every
    limit.  Every process in the jail's own cgroup2 directory is in the
    container's v1 pids cgroup."""
    from linjail.state import registry
    pids_root = "/sys/fs/cgroup/pids"
    if not os.path.isfile(os.path.join(pids_root, "cgroup.procs")):
        pytest.skip("no v1 pids hierarchy on this host")
    cid = oci.new_id()
    top = f"linjail-oci-test-{cid}"
    bundle = oci.bundle([BB, "sleep", "60"])
    _config(bundle, cgroupsPath=f"/{top}/box", resources={"pids": {"limit": 10}})
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    rec = next(r for r in registry.live_jails() if r.name == cid)
    assert f"{pids_root}/{top}/box" in rec.v1dirs.split(":")
    env = {**ENV, **({"LINJAIL_NO_FAST_PATH": "1"} if path == "python" else {})}
    # by JID: a name is never the C path's
    p = subprocess.Popen([cmd("jexec"), str(rec.jid), BB, "sleep", "30"], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        def procs(d: str) -> set[str]:
            with open(os.path.join(d, "cgroup.procs")) as f:
                return set(f.read().split())
        # the container's sleep and jexec's (and its joiner while it lives)
        assert wait_until(lambda: len(procs(rec.cgroup)) >= 2)
        assert wait_until(lambda: procs(rec.cgroup) <= procs(f"{pids_root}/{top}/box")), (
            procs(rec.cgroup), procs(f"{pids_root}/{top}/box"))
    finally:
        p.kill()
        p.wait()
    assert oci("delete", "--force", cid).returncode == 0


def test_exec_pause_resume_ps_update(oci: Oci) -> None:
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sleep", "60"])
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    # exec: the container's namespaces, the config's process object with the
    # options on top, the process's own status
    p = oci("exec", "-e", "FOO=bar", "--cwd", "/tmp", cid, BB, "sh", "-c",
            f"echo $FOO $({BB} hostname) $PWD; {BB} grep -E '^(NoNewPrivs|Seccomp):' "
            "/proc/self/status; exit 3")
    assert (p.returncode, p.stdout, p.stderr) == \
        (3, "bar ocibox /tmp\nNoNewPrivs:\t1\nSeccomp:\t2\n", "")
    p = oci("exec", "--user", "1000:1000", "--additional-gids", "5", "--additional-gids", "6",
            cid, BB, "sh", "-c", f"{BB} grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    assert p.stdout.split("\n")[:3] == ["Uid:\t1000\t1000\t1000\t1000",
                                        "Gid:\t1000\t1000\t1000\t1000", "Groups:\t5 6 "]
    # detached: it lives on, its host PID in the pid file, under the container
    pidfile = os.path.join(oci.base, "exec.pid")
    assert oci("exec", "-d", "--pid-file", pidfile, cid, BB, "sleep", "30").returncode == 0
    with open(pidfile) as f:
        pid = int(f.read())
    listed = json.loads(oci("ps", "--format", "json", cid).stdout)
    assert pid in listed and oci.state(cid)["pid"] in listed and len(listed) == 2
    table = oci("ps", cid).stdout.splitlines()
    assert "PID" in table[0].split() and len(table) == 3
    # a process given whole (exec --process)
    proc = os.path.join(oci.base, "process.json")
    with open(proc, "w") as f:
        json.dump({"args": [BB, "sh", "-c", "echo $A"], "env": ["A=from-process"],
                   "cwd": "/"}, f)
    assert oci("exec", "--process", proc, cid).stdout == "from-process\n"
    # pause freezes every process, resume thaws them
    assert oci("pause", cid).returncode == 0
    assert oci.status(cid) == "paused"
    p = oci("pause", cid)
    assert p.stderr == f"linjail-oci: container {cid} is paused, not running\n"
    p = oci("exec", cid, BB, "true")
    assert p.stderr == f"linjail-oci: cannot exec in a container that is paused: {cid}\n"
    with open(f"/proc/{pid}/stat") as f:
        assert f.read().rsplit(")", 1)[1].split()[0] in ("D", "S")
    assert oci("resume", cid).returncode == 0 and oci.status(cid) == "running"
    # update: new limits in the container's cgroups
    assert oci("update", "--pids-limit", "40", "--memory", "96M", cid).returncode == 0
    st = oci.state(cid)
    with open(f"/proc/{st['pid']}/cgroup") as f:
        where = dict(line.strip().split(":", 2)[1:] for line in f)
    with open(f"/sys/fs/cgroup/pids{where['pids']}/pids.max") as f:
        assert f.read() == "40\n"
    with open(f"/sys/fs/cgroup/memory{where['memory']}/memory.limit_in_bytes") as f:
        assert f.read() == f"{96 << 20}\n"
    p = oci("update", "--memory", "lots", cid)
    assert p.stderr == "linjail-oci: --memory lots: not a size\n"
    assert oci("delete", "-f", cid).returncode == 0


def test_hooks_with_the_state_on_stdin(oci: Oci) -> None:
    """Each hook gets the state on stdin where and when config.md says; a
    failing createRuntime hook fails create and leaves nothing."""
    log = os.path.join(oci.base, "hooks.log")
    sh = "/bin/sh"

    def hook(kind: str) -> dict[str, Any]:
        return {"path": sh, "args": ["sh", "-c", f"read s; echo {kind} \"$s\" >> {log}"]}
    cid = oci.new_id()
    bundle = oci.bundle([BB, "true"], hooks={
        k: [hook(k)] for k in ("prestart", "createRuntime", "poststart", "poststop")})
    assert oci("create", "--bundle", bundle, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    assert oci("start", cid).returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    assert oci("delete", cid).returncode == 0
    with open(log) as f:
        got = [(line.split(" ", 1)[0], json.loads(line.split(" ", 1)[1])) for line in f]
    assert [(k, s["status"], s["pid"], s["id"]) for k, s in got] == [
        ("prestart", "created", pid, cid), ("createRuntime", "creating", pid, cid),
        ("poststart", "running", pid, cid), ("poststop", "stopped", 0, cid)]
    bad = oci.bundle([BB, "true"], hooks={"createRuntime": [
        {"path": sh, "args": ["sh", "-c", "exit 4"]}]})
    cid2 = oci.new_id()
    p = oci("create", "--bundle", bad, cid2)
    assert (p.returncode, p.stderr) == \
        (1, "linjail-oci: hooks.createRuntime[0] /bin/sh: exit status 4\n")
    assert cid2 not in jls_names() and not os.path.exists(os.path.join(oci.root, cid2))


def test_spec_writes_a_config_linjail_takes(oci: Oci) -> None:
    bundle = tempfile.mkdtemp(prefix="spec-", dir=oci.base)
    p = oci("spec", "--bundle", bundle)
    assert (p.returncode, p.stderr) == (0, "")
    p = oci("spec", "--bundle", bundle)
    assert p.stderr == f"linjail-oci: {bundle}/config.json exists: remove it first\n"
    with open(os.path.join(bundle, "config.json")) as f:
        doc = json.load(f)
    doc["root"]["path"] = oci.rootfs
    doc["process"].update(terminal=False, args=[BB, "cat", "/proc/self/status"])
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)
    p = oci("run", "--bundle", bundle, oci.new_id())
    assert p.returncode == 0 and "NoNewPrivs:\t1" in p.stdout, p.stderr


# --- the rest of runc's command line -------------------------------------------------------

def test_delete_of_an_unknown_id(oci: Oci) -> None:
    """runc's delete: an id without state is an error in one line, but with
    --force it is success; either way a directory left in ROOT by a create
    that died before writing its state is removed."""
    p = oci("delete", "nosuch")
    assert (p.returncode, p.stdout, p.stderr) == \
        (1, "", "linjail-oci: container nosuch does not exist\n")
    p = oci("delete", "--force", "nosuch")
    assert (p.returncode, p.stdout, p.stderr) == (0, "", "")
    for args in (("delete", "--force", "left"), ("delete", "-f", "left"), ("delete", "left")):
        os.makedirs(os.path.join(oci.root, "left", "sub"))
        with open(os.path.join(oci.root, "left", "exec.fifo"), "w"):
            pass
        p = oci(*args)
        assert (p.returncode, p.stdout, p.stderr) == (
            (1, "", "linjail-oci: container left does not exist\n") if args[1] == "left"
            else (0, "", "")), args
        assert os.listdir(oci.root) == [], args
    p = oci("delete", "-f", "a/b")
    assert (p.returncode, p.stderr) == (1, "linjail-oci: invalid container id: a/b\n")


def test_log_has_every_error(oci: Oci) -> None:
    """--log: every error line, usage errors included, as runc's logrus
    writes it (containerd reads the last JSON line's msg); stderr keeps
    its line."""
    import re
    log = os.path.join(oci.base, "log.json")
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)"
    cases = [
        (("frobnicate",), "no such command: frobnicate"),
        (("--bogus", "list"), "unknown option --bogus"),
        (("kill",), "kill: a container id is required"),
        (("list", "--bogus"), "unknown option --bogus for list"),
        (("state", "nosuch"), "container nosuch does not exist"),
        (("help", "nosuch"), "no such command: nosuch"),
    ]
    for args, msg in cases:
        p = oci("--log", log, "--log-format", "json", *args)
        assert p.returncode == 1 and p.stderr.startswith(f"linjail-oci: {msg}\n"), args
    with open(log) as f:
        lines = f.read().splitlines()
    assert len(lines) == len(cases)
    for line, (args, msg) in zip(lines, cases):
        got = json.loads(line)
        assert list(got) == ["level", "msg", "time"], line
        assert (got["level"], got["msg"]) == ("error", msg), args
        assert re.fullmatch(stamp, got["time"]), line
        assert line == json.dumps(got, separators=(",", ":")), line
    # text (the default), also for a format it does not know, as runc writes it
    text = os.path.join(oci.base, "log.txt")
    p = oci(f"--log={text}", "delete", "nosuch")
    assert p.stderr == "linjail-oci: container nosuch does not exist\n"
    p = oci("--log", text, "--log-format", "xml", "list")
    assert p.stderr == "linjail-oci: --log-format xml: not text or json\n"
    with open(text) as f:
        got = f.read()
    assert re.fullmatch(f'time="{stamp}" level=error msg="container nosuch does not exist"\n'
                        f'time="{stamp}" level=error msg="--log-format xml: not text or '
                        'json"\n', got), got
    # no error, no line; --debug adds one per command
    p = oci("--log", text, "--debug", "list")
    assert (p.returncode, p.stdout, p.stderr) == \
        (0, "ID          PID         STATUS      BUNDLE      CREATED     OWNER\n", "")
    with open(text) as f:
        assert f.read().splitlines()[2].endswith(' level=debug msg="list "')


def _config(bundle: str, **linux: Any) -> None:
    with open(os.path.join(bundle, "config.json")) as f:
        doc = json.load(f)
    doc["linux"].update(linux)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(doc, f)


def test_events_stats(oci: Oci) -> None:
    """events --stats: one line of runc's JSON (types/events.go) from the
    container's cgroups, and exit; the numbers are the container's own."""
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sh", "-c", f"{BB} sleep 60 & exec {BB} sleep 60"])
    _config(bundle, resources={"memory": {"limit": 96 << 20}, "pids": {"limit": 40}})
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    assert wait_until(lambda: len(json.loads(oci("ps", "-f", "json", cid).stdout)) == 2)
    p = oci("events", "--stats", cid)
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout.count("\n") == 1 and p.stdout.endswith("}\n")
    event = json.loads(p.stdout)
    assert list(event) == ["type", "id", "data"] and event["type"] == "stats"
    assert event["id"] == cid
    data = event["data"]
    assert list(data) == ["cpu", "cpuset", "memory", "pids", "blkio", "hugetlb", "intel_rdt",
                          "network_interfaces"]
    assert data["pids"] == {"current": 2, "limit": 40}
    mem = data["memory"]
    assert list(mem)[-5:] == ["usage", "swap", "kernel", "kernelTCP", "raw"]
    assert mem["usage"]["limit"] == 96 << 20 and mem["usage"]["failcnt"] == 0
    assert 16 << 10 <= mem["usage"]["usage"] <= 64 << 20, mem["usage"]
    assert mem["usage"]["usage"] <= mem["usage"]["max"] <= 96 << 20
    assert mem["raw"]["hierarchical_memory_limit"] == 96 << 20
    usage = data["cpu"]["usage"]
    assert 0 < usage["total"] < 60 * 10**9 and len(usage["percpu"]) == os.cpu_count()
    assert sum(usage["percpu"]) == usage["total"]
    assert set(data["cpu"]) == {"usage", "throttling"}
    assert data["cpuset"]["cpus"] == list(range(os.cpu_count() or 1))
    assert (data["intel_rdt"], data["network_interfaces"]) == ({}, None)
    # what a stopped container gives, and a bad interval
    p = oci("events", "--interval", "0s", cid)
    assert p.stderr == "linjail-oci: duration interval must be greater than 0\n"
    p = oci("events", "--interval", "soon", cid)
    assert p.stderr == "linjail-oci: --interval soon: not a duration (5s, 1m30s, 500ms)\n"
    assert oci("kill", cid, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    p = oci("events", "--stats", cid)
    assert (p.returncode, p.stdout, p.stderr) == \
        (1, "", f"linjail-oci: container with id {cid} is not running\n")
    assert oci("delete", cid).returncode == 0
    p = oci("events", cid)
    assert p.stderr == f"linjail-oci: container {cid} does not exist\n"


def test_events_stream_and_oom(oci: Oci) -> None:
    """events --interval: a stats line per interval and an "oom" line when
    the container's memory cgroup kills (a 64 MiB buffer under a 24 MiB
    limit); the stream ends by itself when the container stops, or by the
    test (its PID)."""
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sleep", "60"])
    _config(bundle, resources={"memory": {"limit": 24 << 20, "swap": 24 << 20}})
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    out = tempfile.TemporaryFile("w+")
    events = subprocess.Popen([cmd("linjail-oci"), "--root", oci.root, "events", "--interval",
                               "300ms", cid], stdout=out, stderr=subprocess.STDOUT, env=ENV)

    def lines() -> list[dict[str, Any]]:
        out.seek(0)
        return [json.loads(line) for line in out.read().splitlines()]
    try:
        assert wait_until(lambda: len(lines()) >= 2)
        assert [e["type"] for e in lines()[:2]] == ["stats", "stats"]
        p = oci("exec", cid, BB, "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1")
        assert p.returncode == 128 + 9, p.stderr
        assert wait_until(lambda: {"type": "oom", "id": cid} in lines())
        # the container stops: the stream ends, status 0
        assert oci("kill", cid, "KILL").returncode == 0
        assert events.wait(timeout=10) == 0
        assert all(e["type"] in ("stats", "oom") and e["id"] == cid for e in lines())
        # a stream the caller ends (SIGTERM to its PID)
        cid2 = oci.new_id()
        assert oci("run", "-d", "--bundle", bundle, cid2).returncode == 0
        with tempfile.TemporaryFile("w+") as out2:
            second = subprocess.Popen([cmd("linjail-oci"), "--root", oci.root, "events",
                                       "--interval", "100ms", cid2], stdout=out2, env=ENV)
            try:
                assert wait_until(lambda: os.fstat(out2.fileno()).st_size > 0)
                os.kill(second.pid, 15)
                assert second.wait(timeout=10) == -15
            finally:
                if second.poll() is None:
                    second.kill()
                    second.wait()
            out2.seek(0)
            first = json.loads(out2.read().splitlines()[0])
            assert (first["type"], first["id"]) == ("stats", cid2)
        assert oci.status(cid2) == "running"
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
        out.close()


def test_checkpoint_and_restore_are_refused(oci: Oci) -> None:
    """CRIU 3.17 (Debian 12) cannot run on this kernel: `criu check` fails in
    its vDSO detection, and runc's own checkpoint fails the same way.  The
    commands say so in one line, leave the container as it was and make
    nothing."""
    cid = oci.new_id()
    assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "60"]), cid).returncode == 0
    images = os.path.join(oci.base, "images")
    criu = shutil.which("criu", path=HOST_PATH)
    check = subprocess.run([criu, "check"], capture_output=True, text=True) if criu else None
    for command, extra in (("checkpoint", ["--leave-running", "--tcp-established"]),
                           ("restore", ["--tcp-established", "-d", "--bundle", oci.base])):
        p = oci(command, "--image-path", images, *extra, cid)
        assert (p.returncode, p.stdout) == (1, ""), command
        if criu is None:
            assert p.stderr == f"linjail-oci: {command}: criu: not found (CRIU is not " \
                               "installed)\n"
        elif check is not None and "Unexpected rt vDSO area bounds" in check.stderr:
            assert p.stderr == (f"linjail-oci: {command}: CRIU cannot run on this host: vdso: "
                                "Unexpected rt vDSO area bounds (criu check)\n")
        else:
            assert p.stderr.startswith(f"linjail-oci: {command}: ") and \
                p.stderr.count("\n") == 1, p.stderr
    p = oci("--criu", "/no/criu", "checkpoint", cid)
    assert p.stderr == "linjail-oci: checkpoint: /no/criu: not found (CRIU is not installed)\n"
    p = oci("checkpoint", "nosuch")
    assert p.stderr == "linjail-oci: container nosuch does not exist\n"
    assert not os.path.exists(images) and oci.status(cid) == "running"
    assert sorted(os.listdir(oci.root)) == [cid]
    assert oci("delete", "-f", cid).returncode == 0


def test_runc_command_line_details(oci: Oci) -> None:
    """What runc's callers may pass: ps options after --, update's JSON on
    stdin and runc's --cpu-share, exec's --apparmor/--process-label/--cgroup
    (refused unless empty), run --no-subreaper, help and h, kill's names."""
    cid = oci.new_id()
    bundle = oci.bundle([BB, "sleep", "60"])
    assert oci("run", "-d", "--no-subreaper", "--bundle", bundle, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    p = oci("list", "--format", "json")         # Go's encoding: no spaces
    assert p.stdout == json.dumps([{**oci.state(cid), "owner": "root"}],
                                  separators=(",", ":")) + "\n"
    p = oci("ps", cid, "--", "-o", "pid,comm")
    assert (p.returncode, p.stderr) == (0, "")
    assert [line.split() for line in p.stdout.splitlines()] == \
        [["PID", "COMMAND"], [str(pid), "busybox"]]
    p = oci("update", "-r", "-", cid, input='{"pids": {"limit": 33}}')
    assert (p.returncode, p.stderr) == (0, "")
    with open(f"/proc/{pid}/cgroup") as f:
        where = dict(line.strip().split(":", 2)[1:] for line in f)
    with open(f"/sys/fs/cgroup/pids{where['pids']}/pids.max") as f:
        assert f.read() == "33\n"
    assert oci("update", "--cpu-share", "512", cid).returncode == 0
    with open(f"/sys/fs/cgroup/cpu{where['cpu']}/cpu.shares") as f:
        assert f.read() == "512\n"
    p = oci("update", "--l3-cache-schema", "L3:0=f", cid)
    assert p.stderr == "linjail-oci: update --l3-cache-schema: Intel RDT is not supported\n"
    p = oci("update", "-r", "-", cid, input="[1]")
    assert p.stderr == "linjail-oci: --resources -: not a JSON object\n"
    for args, why in (
            (("--apparmor", "unconfined"), "process.apparmorProfile: AppArmor"),
            (("--process-label", "system_u:system_r:container_t:s0"),
             "process.selinuxLabel: SELinux")):
        p = oci("exec", *args, cid, BB, "true")
        assert (p.returncode, p.stderr) == \
            (1, f"linjail-oci: exec: {why} is not used by linjail\n"), args
    p = oci("exec", "--apparmor", "", "--process-label", "", cid, BB, "echo", "ok")
    assert (p.returncode, p.stdout, p.stderr) == (0, "ok\n", "")
    p = oci("exec", "--cgroup", "sub", cid, BB, "true")
    assert p.stderr == \
        "linjail-oci: exec --cgroup: a container has no sub-cgroups to run a process in\n"
    for args in (("help", "kill"), ("h", "kill"), ("kill", "--help")):
        p = oci(*args)
        assert (p.returncode, p.stderr) == (0, "") and p.stdout.startswith(
            "usage: linjail-oci [global options] kill [options] ID [SIGNAL]\n"), args
    for sig in ("SIGCONT", "cont", "18"):
        assert oci("kill", cid, sig).returncode == 0, sig
    p = oci("kill", cid, "SIGNOPE")
    assert p.stderr == "linjail-oci: unknown signal 'SIGNOPE'\n"
    assert oci("delete", "-f", cid).returncode == 0


# --- user namespaces (linux.uidMappings, gidMappings) -------------------------------------

def free_base() -> int:
    """A range of 65536 host ids no jail claims now: a slot of state/uidrange.py
    picked at random among the free ones (another checkout's test run may
    be picking too)."""
    import random
    from linjail.state import registry, uidrange
    claims = os.path.join(registry.state_dir(), "uids")
    names = os.listdir(claims) if os.path.isdir(claims) else []
    held = [(int(n), uidrange.SIZE) for n in names if n.isdigit()]
    held += [(int(n.split("-")[0]), int(n.split("-")[1]) - int(n.split("-")[0]) + 1)
             for n in names if "-" in n]
    host = uidrange.taken_by_host()
    free = [uidrange.base_of(slot) for slot in range(uidrange.SLOTS) if slot not in host and
            not any(h < uidrange.base_of(slot) + uidrange.SIZE and uidrange.base_of(slot) < h + n
                    for h, n in held)]
    return random.choice(free)


def claims_of(lo: int, hi: int) -> list[str]:
    """The claims in STATE/uids that touch host ids LO..HI."""
    from linjail.state import registry
    claims = os.path.join(registry.state_dir(), "uids")
    out = []
    for n in os.listdir(claims) if os.path.isdir(claims) else []:
        first, _, last = n.partition("-")
        if first.isdigit() and int(first) <= hi and lo <= int(last or int(first) + 65535):
            out.append(n)
    return out


def released(base: int) -> bool:
    """Whether the claims on BASE..BASE+65535 are gone, within a few seconds:
    they go with the jail's record, which a teardown keeps while its cgroup
    still empties (a loaded machine), and the next look (jls) releases."""
    def gone() -> bool:
        jls_names()         # a look: the sweep releases a record whose cgroup emptied
        return claims_of(base, base + 65535) == []
    return wait_until(gone, 10, 0.2)


def userns_bundle(oci: Oci, args: list[str], base: int, **extra: Any) -> str:
    """A bundle whose container has a user namespace: jail ids 0-65535 are
    host ids BASE..BASE+65535."""
    path = oci.bundle(args, **extra)
    with open(os.path.join(path, "config.json")) as f:
        doc = json.load(f)
    doc["linux"]["namespaces"].append({"type": "user"})
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base, "size": 65536}]
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(doc, f)
    # the mount points: the root is host root's and not idmapped, so jailed
    # root could not make them (podman chowns an image to its mapping)
    for m in doc["mounts"]:
        where = os.path.join(oci.rootfs, m["destination"].lstrip("/"))
        if m["type"] == "bind" and not os.path.isdir(m["source"]):
            open(where, "a").close()
        elif not where.startswith(os.path.join(oci.rootfs, "dev/")):
            os.makedirs(where, exist_ok=True)
    return path


def test_a_user_namespace_with_the_configs_mappings(oci: Oci) -> None:
    """Jailed root is host uid BASE: what the container makes is BASE+N's on
    disk, a host root file bound in stays host root's (unreadable), the
    maps are exactly the config's."""
    base = free_base()
    data = tempfile.mkdtemp(prefix="data-", dir=oci.base)
    os.chown(data, base, base)
    secret = os.path.join(oci.base, "secret")
    with open(secret, "w") as f:
        f.write("host root only\n")
    os.chmod(secret, 0o600)
    cid = oci.new_id()
    script = (f"{BB} id -u; {BB} id -g; {BB} cat /proc/self/uid_map /proc/self/gid_map; "
              f"{BB} touch /data/root-made; {BB} touch /data/user-made; "
              f"{BB} chown 1001:1002 /data/user-made; {BB} stat -c '%u:%g' /data/user-made; "
              f"{BB} cat /secret; echo cat=$?; {BB} stat -c '%u' /secret")
    mounts = default_config(oci.rootfs, [])["mounts"] + [
        {"destination": "/data", "type": "bind", "source": data, "options": ["rbind", "rw"]},
        {"destination": "/secret", "type": "bind", "source": secret, "options": ["bind"]}]
    bundle = userns_bundle(oci, [BB, "sh", "-c", script], base, mounts=mounts)
    p = oci("run", "--bundle", bundle, cid)
    lines = p.stdout.splitlines()
    assert (p.returncode, lines[:2], p.stderr) == \
        (0, ["0", "0"], "cat: can't open '/secret': Permission denied\n")
    assert [line.split() for line in lines[2:4]] == [["0", str(base), "65536"]] * 2
    # 65534: the overflow id, what an unmapped owner (host root) shows as
    assert lines[4:] == ["1001:1002", "cat=1", "65534"]
    st = os.stat(os.path.join(data, "root-made"))
    assert (st.st_uid, st.st_gid) == (base, base)
    st = os.stat(os.path.join(data, "user-made"))
    assert (st.st_uid, st.st_gid) == (base + 1001, base + 1002)
    assert released(base) and cid not in jls_names()


def test_a_user_namespace_container_with_exec_jexec_jls(oci: Oci) -> None:
    """exec, jexec, jls, ps, kill and delete of a container with mappings;
    its host ids are claimed while it lives (another container asking for
    one of them is refused in one line, nothing made) and released by delete."""
    base = free_base()
    cid = oci.new_id()
    bundle = userns_bundle(oci, [BB, "sleep", "60"], base)
    assert oci("run", "-d", "--bundle", bundle, cid).returncode == 0
    pid = oci.state(cid)["pid"]
    # its PID, mount, net, IPC, UTS and cgroup namespaces are the user namespace's
    from linjail.kernel import libc  # noqa: F401  (nsfs ioctls below)
    import fcntl
    own = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY)
    try:
        for kind in ("pid", "mnt", "net", "ipc", "cgroup"):
            fd = os.open(f"/proc/{pid}/ns/{kind}", os.O_RDONLY)
            try:
                owner = fcntl.ioctl(fd, 0xb701)      # NS_GET_USERNS
            finally:
                os.close(fd)
            try:
                assert os.fstat(owner).st_ino == os.fstat(own).st_ino, kind
            finally:
                os.close(owner)
    finally:
        os.close(own)
    with open(f"/proc/{pid}/status") as f:
        uids = next(line for line in f if line.startswith("Uid:")).split()[1:]
    assert uids == [str(base)] * 4
    jid = jls_names()[cid]
    row = next(r for r in json.loads(subprocess.run(
        [cmd("jls"), "--json"], capture_output=True, text=True, env=ENV).stdout)
        if r["jid"] == jid)
    assert (row["uid_base"], row["uid_count"], row["uid_map"], row["gid_map"],
            row["knobs"]["unprivileged_root"]) == \
        (base, 65536, [[0, base, 65536]], [[0, base, 65536]], 1)
    assert claims_of(base, base + 65535) == [f"{base}-{base + 65535}"]
    want = f"0\n{base}\n"
    p = oci("exec", cid, BB, "sh", "-c", f"{BB} id -u; {BB} awk '{{print $2}}' /proc/self/uid_map")
    assert (p.returncode, p.stdout, p.stderr) == (0, want, "")
    p = subprocess.run([cmd("jexec"), cid, BB, "sh", "-c",
                        f"{BB} id -u; {BB} awk '{{print $2}}' /proc/self/uid_map"],
                       capture_output=True, text=True, env=ENV, timeout=30)
    assert (p.returncode, p.stdout, p.stderr) == (0, want, "")
    p = oci("exec", "--user", "1000:1000", cid, BB, "sh", "-c",
            f"{BB} grep -E '^(Uid|Gid):' /proc/self/status")
    assert p.stdout == "Uid:\t1000\t1000\t1000\t1000\nGid:\t1000\t1000\t1000\t1000\n", p.stderr
    p = oci("exec", "--user", "70000", cid, BB, "true")
    assert (p.returncode, p.stdout, p.stderr) == \
        (1, "", "linjail-oci: config.json: process.user.uid: 70000: not mapped by "
         "linux.uidMappings\n")
    assert json.loads(oci("ps", "--format", "json", cid).stdout) == [pid]
    # another container may not have any of these host ids
    other = oci.new_id()
    bundle2 = oci.bundle([BB, "true"])
    with open(os.path.join(bundle2, "config.json")) as f:
        doc = json.load(f)
    doc["linux"]["namespaces"].append({"type": "user"})
    doc["linux"]["uidMappings"] = [{"containerID": 0, "hostID": base + 65535, "size": 1}]
    doc["linux"]["gidMappings"] = [{"containerID": 0, "hostID": base - 1, "size": 1}]
    with open(os.path.join(bundle2, "config.json"), "w") as f:
        json.dump(doc, f)
    p = oci("run", "--bundle", bundle2, other)
    assert (p.returncode, p.stdout, p.stderr) == \
        (1, "", f"linjail-oci: host id {base + 65535} belongs to jail {jid}: two jails never "
         "share host ids\n")
    assert other not in jls_names() and not os.path.exists(os.path.join(oci.root, other))
    assert claims_of(base - 1, base - 1) == []
    assert oci("kill", cid, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped", 10)
    assert oci("delete", cid).returncode == 0
    assert released(base) and leftovers(jid) == []
