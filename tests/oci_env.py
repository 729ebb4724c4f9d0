"""podman and containerd in private state, for the OCI client tests and the bench (issue 14).

Nothing of the host's podman or containerd is read or written: a Podman or Containerd here
keeps its storage, run directory, locks, events, network configuration and sockets under a
0700 directory of its own, puts its containers under a cgroup parent of its own, and
cleanup() removes all of that, containers and images first.  No container gets a network:
podman's default network is a bridge on 10.88.0.0/16 masqueraded to the uplink, so every
podman container here runs `--network none` (containerd's ctr makes a new network namespace
with loopback only unless told otherwise).

The runtimes compared: runc (Debian's, the reference) and linjail-oci.  linjail-oci is the
checkout's .venv/sbin/linjail-oci, or LINJAIL_OCI=PATH (e.g. another worktree's).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Iterator

HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
BIN = os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "sbin")
HERE = os.path.dirname(os.path.abspath(__file__))
HOG_SOURCE = os.path.join(HERE, "probe", "hog.c")
#: podman and conmon need more than the hard nofile limit of these hosts (20000) allows them
#: to hand on by default; the same limits a test containers.conf gives every container
ULIMITS = ("nofile=1024:1024", "nproc=1024:1024")


@dataclass
class Result:
    rc: int
    out: str
    err: str


def linjail_oci() -> str:
    return os.environ.get("LINJAIL_OCI") or os.path.join(BIN, "linjail-oci")


def runc() -> str | None:
    return shutil.which("runc", path=HOST_PATH)


def runtime_path(name: str) -> str | None:
    """The path of runtime NAME ("runc" or "linjail-oci"), None if it is not installed."""
    path = runc() if name == "runc" else linjail_oci()
    return path if path and os.access(path, os.X_OK) else None


def _run(argv: list[str], env: dict[str, str], input: str | None = None,
         timeout: float = 120, cwd: str | None = None) -> Result:
    p = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout,
                       env=env, cwd=cwd,
                       stdin=None if input is not None else subprocess.DEVNULL)
    return Result(p.returncode, p.stdout, p.stderr)


def firewall() -> str:
    """iptables-save and `nft list ruleset`, counters taken out: what must be the same after."""
    env = {"PATH": HOST_PATH, "LANG": "C"}
    text = ""
    for argv in (["iptables-save"], ["ip6tables-save"], ["nft", "list", "ruleset"]):
        if shutil.which(argv[0], path=HOST_PATH) is None:
            continue
        r = _run(argv, env, timeout=30)
        text += f"== {argv[0]} rc={r.rc}\n" + "".join(
            ln + "\n" for ln in r.out.splitlines() if not ln.startswith("#"))
    text = re.sub(r"\[\d+:\d+\]", "", text)
    # linjail's own table comes and goes with the jails other tests (and other checkouts)
    # start meanwhile: not the clients'
    text = re.sub(r"(?ms)^table inet linjail \{\n.*?^\}\n", "", text)
    return re.sub(r"counter packets \d+ bytes \d+", "counter", text)


def build_image_root(path: str) -> str:
    """A service jail root (jailctl build --service: sh, busybox) with tests/probe/hog.c built
    statically as /hog and a page at /www/index.html: the image every client runs."""
    env = {"PATH": HOST_PATH, "LANG": "C"}
    r = _run([os.path.join(BIN, "jailctl"), "build", path, "--service", "/bin/sh",
              "/usr/bin/busybox"], env)
    if r.rc != 0:
        raise RuntimeError(f"jailctl build: {r.err.strip()}")
    cc = shutil.which("musl-gcc", path=HOST_PATH) or "gcc"
    r = _run([cc, "-static", "-O2", "-Wall", "-Werror", "-o", os.path.join(path, "hog"),
              HOG_SOURCE], env)
    if r.rc != 0:
        raise RuntimeError(f"{cc} hog.c: {r.err.strip()}")
    os.makedirs(os.path.join(path, "www"), exist_ok=True)
    with open(os.path.join(path, "www", "index.html"), "w") as f:
        f.write("hello from the container\n")
    return path


def private_dir(prefix: str) -> str:
    base = tempfile.mkdtemp(prefix=prefix, dir="/var/tmp")
    os.chmod(base, 0o700)
    return base


def _unmount_under(base: str) -> None:
    with open("/proc/self/mountinfo") as f:
        points = [ln.split()[4] for ln in f]
    for m in sorted({p for p in points if p == base or p.startswith(base + "/")},
                    key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=30)


def delete_leftovers(base: str, roots: tuple[str | None, ...] = (None,)) -> list[str]:
    """Containers that runc or linjail-oci still hold for bundles under BASE (a client that
    failed half-way, or whose runtime it no longer finds): `delete --force` each; their ids.
    ROOTS: the runtimes' --root values to look in (None: their default)."""
    gone = []
    env = {"PATH": HOST_PATH, "LANG": "C"}
    for name in ("runc", "linjail-oci"):
        runtime = runtime_path(name)
        if runtime is None:
            continue
        for root in roots:
            if root is not None and not os.path.isdir(root):
                continue
            flags = ["--root", root] if root else []
            r = _run([runtime, *flags, "list", "--format", "json"], env, timeout=60)
            try:
                listed = json.loads(r.out or "null") or []
            except json.JSONDecodeError:
                continue
            for c in listed:
                if str(c.get("bundle", "")).startswith(base + "/"):
                    _run([runtime, *flags, "delete", "--force", str(c["id"])], env, timeout=60)
                    gone.append(str(c["id"]))
    return gone


def kill_strays(base: str, grace: float = 10.0, having: bytes = b"") -> list[str]:
    """Processes whose command line names BASE (and has the argument HAVING, if given): a
    conmon still waiting for an exec session, a shim.  Given GRACE seconds to end on their
    own, then killed by PID; what they were."""
    def ours() -> dict[int, str]:
        found = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if any(a == base.encode() or a.startswith(base.encode() + b"/") for a in argv) \
                    and (not having or having in argv):
                found[int(pid)] = b" ".join(argv).decode(errors="replace")[:200]
        return found
    deadline = time.monotonic() + grace
    while (left := ours()) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
    return sorted(left.values())


def remove_cgroup(rel: str, wait: float = 5.0) -> list[str]:
    """rmdir /sys/fs/cgroup/*/REL (and the v2 tree), deepest first; REL is ours alone.  A
    process still leaving (a conmon, a container's last process) gets WAIT seconds; what could
    not be removed is returned."""
    deadline = time.monotonic() + wait
    while True:
        left = []
        for top in ["/sys/fs/cgroup"] + [os.path.join("/sys/fs/cgroup", d)
                                         for d in os.listdir("/sys/fs/cgroup")]:
            path = os.path.join(top, rel.lstrip("/"))
            if not os.path.isdir(path):
                continue
            for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    left.append(dirpath)
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.2)


class Podman:
    """podman with its own storage, run root, locks, events and cgroup parent."""

    def __init__(self) -> None:
        self.base = private_dir("linjail-podman-")
        #: what was still there after cleanup (processes naming our directory, killed;
        #: cgroups that could not be removed)
        self.left: list[str] = []
        tag = os.path.basename(self.base)
        self.cgroup_parent = f"/{tag}"
        b = self.base
        with open(os.path.join(b, "containers.conf"), "w") as f:
            # static_dir stays at GRAPHROOT/libpod: conmon's exit command (podman container
            # cleanup) gets --root but not static_dir, and would look for another database
            f.write(f"""[containers]
default_ulimits = [{", ".join(f'"{u}"' for u in ULIMITS)}]
netns = "none"
log_driver = "k8s-file"
[network]
network_backend = "cni"
network_config_dir = "{b}/net"
[engine]
cgroup_manager = "cgroupfs"
events_logger = "file"
events_logfile_path = "{b}/events.log"
tmp_dir = "{b}/tmp"
volume_path = "{b}/volumes"
lock_type = "file"
num_locks = 128
runtime_supports_json = ["runc", "linjail-oci"]
""")
        with open(os.path.join(b, "storage.conf"), "w") as f:
            f.write(f'[storage]\ndriver = "overlay"\ngraphroot = "{b}/graph"\n'
                    f'runroot = "{b}/run"\n')
        with open(os.path.join(b, "registries.conf"), "w") as f:
            f.write("unqualified-search-registries = []\n")
        self.env = {"PATH": HOST_PATH, "LANG": "C", "HOME": b,
                    "CONTAINERS_CONF": f"{b}/containers.conf",
                    "CONTAINERS_STORAGE_CONF": f"{b}/storage.conf",
                    "CONTAINERS_REGISTRIES_CONF": f"{b}/registries.conf"}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 120) -> Result:
        # in our directory: conmon writes a file `oom` into its working directory when the
        # container's memory limit killed something
        return _run(["podman", *args], self.env, input=input, timeout=timeout,
                    cwd=self.base)

    @contextlib.contextmanager
    def api_service(self, name: str, runtime: str) -> Iterator[str]:
        """`podman system service` on a socket of ours, its containers.conf making NAME
        (RUNTIME) the default runtime, as the podman of a Nomad client is set up; yields the
        --url for `podman --remote`.  The service is stopped afterwards (by its PID)."""
        conf = os.path.join(self.base, f"containers-{name}.conf")
        with open(os.path.join(self.base, "containers.conf")) as f:
            text = f.read()
        # [engine] is the last table of ours: its keys, then the runtimes table
        with open(conf, "w") as f:
            f.write(text + f'runtime = "{name}"\nruntime_supports_json = ["{name}"]\n'
                    f'[engine.runtimes]\n{name} = ["{runtime}"]\n')
        sock = os.path.join(self.base, f"api-{name}.sock")
        url = f"unix://{sock}"
        env = self.env | {"CONTAINERS_CONF": conf}
        p = subprocess.Popen(["podman", "system", "service", "--time=0", url], env=env,
                             cwd=self.base, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while self("--remote", "--url", url, "version").rc != 0:
                if p.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"podman system service did not answer on {sock}")
                time.sleep(0.2)
            yield url
        finally:
            p.terminate()
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            # podman 4.3's service leaves the conmon of every exec session it ran waiting
            # after the exec ended (with runc as with linjail-oci): ours, by our path
            kill_strays(self.base, grace=1.0, having=b"--exec")

    def run_options(self) -> list[str]:
        """What every `podman run` here says: no pull, no network, our cgroup parent."""
        return ["--pull=never", "--network", "none", "--cgroup-parent", self.cgroup_parent]

    def import_root(self, root: str, name: str) -> None:
        tar = os.path.join(self.base, "rootfs.tar")
        subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True, timeout=120)
        r = self("import", "-q", tar, name)
        os.unlink(tar)
        if r.rc != 0:
            raise RuntimeError(f"podman import: {r.err.strip()}")

    def pty(self, *args: str, send: bytes, timeout: float = 60) -> tuple[int | None, bytes]:
        """Run podman ARGS on a new pseudo-terminal, type SEND, read until it exits: the
        exit status (None if it had to be killed) and everything the terminal showed."""
        import pty as ptymod
        master, slave = ptymod.openpty()
        p = subprocess.Popen(["podman", *args], stdin=slave, stdout=slave, stderr=slave,
                             env=self.env | {"TERM": "xterm"}, start_new_session=True,
                             cwd=self.base)
        os.close(slave)
        out = bytearray()
        deadline = time.monotonic() + timeout
        try:
            # typed ahead: the terminal keeps it until podman reads it and hands it on
            os.write(master, send)
            while time.monotonic() < deadline:
                ready, _, _ = select.select([master], [], [], 0.1)
                if not ready:
                    if p.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(master, 4096)
                except OSError:                # EIO: the last holder of the slave is gone
                    break
                if not chunk:
                    break
                out += chunk
            try:
                rc: int | None = p.wait(timeout=max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                rc = None
        finally:
            os.close(master)
        return rc, bytes(out)

    def cleanup(self) -> None:
        """Every container and image of this podman, then its directories and cgroups (once:
        a second call finds nothing to do)."""
        if not os.path.isdir(self.base):
            return
        try:
            self("rm", "-a", "-f", "-t", "0", timeout=180)
            self("rmi", "-a", "-f", timeout=180)
        finally:
            delete_leftovers(self.base)
            self.left = kill_strays(self.base)
            _unmount_under(self.base)
            shutil.rmtree(self.base, ignore_errors=True)
            self.left += remove_cgroup(self.cgroup_parent)


def _containerd_running() -> bool:
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip().startswith("containerd"):
                    return True
        except OSError:
            continue
    return False


class Containerd:
    """containerd on its own socket, root and state directories (a temp config.toml)."""

    NAMESPACE = "linjail-test"

    def __init__(self) -> None:
        self.base = private_dir("linjail-containerd-")
        #: what was still there after cleanup (processes killed, cgroups not removable)
        self.left: list[str] = []
        b = self.base
        self.sock = f"{b}/containerd.sock"
        self.cgroup_parent = f"/{os.path.basename(b)}"
        # the shims' sockets go to /run/containerd/s whatever the config says (containerd 1.6
        # pkg/shim); remember whether we made that directory
        self.made_run = not os.path.exists("/run/containerd")
        with open(f"{b}/config.toml", "w") as f:
            f.write(f"""version = 2
root = "{b}/root"
state = "{b}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp",
  "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "{b}/opt"
""")
        self.log = open(f"{b}/containerd.log", "w")
        self.proc = subprocess.Popen(["containerd", "--config", f"{b}/config.toml"],
                                     cwd=b, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT,
                                     env={"PATH": HOST_PATH, "LANG": "C"})
        deadline = time.monotonic() + 30
        while self.ctr("version").rc != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.cleanup()
                raise RuntimeError("containerd did not start: " + self.log_tail())
            time.sleep(0.1)

    def log_tail(self, n: int = 20) -> str:
        with open(f"{self.base}/containerd.log") as f:
            return "".join(f.readlines()[-n:])

    def ctr(self, *args: str, timeout: float = 120) -> Result:
        return _run(["ctr", "--address", self.sock, "--namespace", self.NAMESPACE, *args],
                    {"PATH": HOST_PATH, "LANG": "C"}, timeout=timeout, cwd=self.base)

    def run_options(self, runtime: str, name: str) -> list[str]:
        """--runc-binary RUNTIME, and the runtime's state, the IO fifos and the cgroup ours."""
        return ["--runc-binary", runtime, "--runc-root", f"{self.base}/runc",
                "--fifo-dir", f"{self.base}/fifo", "--cgroup", f"{self.cgroup_parent}/{name}"]

    def shims(self) -> list[int]:
        """The pids of the shims serving this containerd (their -address names our socket)."""
        found = []
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            if b"containerd-shim" in argv[0] and self.sock.encode() in argv:
                found.append(int(pid))
        return found

    def cleanup(self) -> None:
        """Tasks killed and deleted, containers and images removed, containerd stopped, its
        shims gone, its directories, mounts and cgroups removed."""
        try:
            if self.proc.poll() is None:
                for line in self.ctr("task", "ls", "-q").out.split():
                    self.ctr("task", "kill", "-a", "-s", "SIGKILL", line)
                    for _ in range(50):
                        if self.ctr("task", "rm", "-f", line).rc == 0:
                            break
                        time.sleep(0.1)
                for line in self.ctr("container", "ls", "-q").out.split():
                    self.ctr("container", "rm", line)
                for line in self.ctr("image", "ls", "-q").out.split():
                    self.ctr("image", "rm", line)
                self.proc.terminate()
            self.proc.wait(timeout=30)
        finally:
            delete_leftovers(self.base, tuple(os.path.join(self.base, "runc", ns)
                                              for ns in (self.NAMESPACE,)))
            self.left += kill_strays(self.base, grace=5.0)    # shims serving our socket
            self.log.close()
            _unmount_under(self.base)
            shutil.rmtree(self.base, ignore_errors=True)
            self.left += remove_cgroup(self.cgroup_parent)
            # made by us, or by another test run of ours that overlapped: gone when empty
            # and no containerd is left to use it
            if self.made_run or not _containerd_running():
                for d in ("/run/containerd/s", "/run/containerd/fifo", "/run/containerd/runc",
                          "/run/containerd"):
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass


@contextlib.contextmanager
def client_image(image: str, client: str) -> Iterator[Podman]:
    """What the podman and containerd modules start from, with their cleanup guarantees: a
    private Podman holding IMAGE, imported from a jail root (build_image_root; the root is
    removed once imported).  On the way out, also after a failure, podman is cleaned up; then
    the firewall must be what it was before (CLIENT names who changed it) and nothing of
    podman's may be left (processes naming its directory, cgroups)."""
    before = firewall()
    podman = Podman()
    try:
        root = build_image_root(os.path.join(podman.base, "root"))
        podman.import_root(root, image)
        shutil.rmtree(root)
        yield podman
    finally:
        podman.cleanup()
    assert firewall() == before, f"{client} changed the firewall"
    assert podman.left == [], "still there after everything was removed"


def client_fixtures(ready: bool = True) -> tuple[Any, Any]:
    """The parametrization both client modules mark their scenarios with (runc, and
    linjail-oci once it passes them on main: READY; a new scenario it does not pass yet uses
    ready=False, which LINJAIL_OCI=PATH widens) and their `runtime` fixture (the runtime's
    path; skipped if not installed).  pytest is imported here, not at the top: bench/bench.py
    imports this module without it."""
    import pytest

    @pytest.fixture
    def runtime(request: pytest.FixtureRequest) -> str:
        path = runtime_path(request.param)
        if path is None:
            pytest.skip(f"{request.param} is not installed")
        return path
    return (pytest.mark.parametrize("runtime", runtime_names(ready=ready), indirect=True),
            runtime)


def runtime_names(ready: bool) -> list[str]:
    """The runtimes a podman or containerd scenario runs with: runc, and linjail-oci where it
    passes that scenario on main (READY), or anywhere with LINJAIL_OCI=PATH (a worktree's)."""
    return ["runc"] + (["linjail-oci"] if ready or os.environ.get("LINJAIL_OCI") else [])
