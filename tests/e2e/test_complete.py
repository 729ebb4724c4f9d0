"""`jailctl build PATH --complete` end to end (SPEC §9, §8, §10).

One complete jail (debootstrap minbase + nginx) is built per cache key and
kept under /var/cache/linjail-tests/ (a path these tests own, 0700): a cold
run builds it through the real command (about a minute), later runs reuse it
while the build code and the /etc/rc templates are unchanged.  Then it boots
through rc.conf exactly as the seed describes (`jailctl start` runs its
/etc/rc, which brings nginx up on the jail's address), the host fetches a
page from it, `jexec` gives a root shell, and `jailctl stop` runs
/etc/rc.shutdown and leaves no process, cgroup, interface, mount or id file.

Network: only the package mirror of the host's apt (the build), and the
host <-> jail veth at 198.51.100.171/.172, checked with `ip route get` before
any packet is sent (SPEC §10).
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from linjail.cli.jailctl_build import running_roots
from linjail.roots.destroy import destroy, mounts_at_or_below, remove_tree
from linjail.errors import JailError

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="building and starting jails needs root"),
]

CACHE = Path("/var/cache/linjail-tests")
INCLUDE = "nginx"
NAME = "ljbuildwww"
HOSTNAME = "www.example.org"
ADDR = "198.51.100.171"
THIN_ADDR = "198.51.100.172"
BIN = Path(sys.executable).parent
JAILCTL, JEXEC, JLS = (str(BIN / n) for n in ("jailctl", "jexec", "jls"))
SRC = Path(__file__).resolve().parents[2] / "src" / "linjail" / "roots"


def cmd(*argv: str, env: dict[str, str] | None = None, timeout: float = 120,
        stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ, **(env or {}))
    return subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout,
                          env=full, input=stdin, check=False)


def cache_key() -> str:
    """The build code and the templates it installs: change one, rebuild."""
    h = hashlib.sha256(INCLUDE.encode())
    build = [SRC / f"{name}.py" for name in ("complete", "apt", "debootstrap", "jailify")]
    for f in sorted([*build, *(SRC / "jailrc").iterdir()]):
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def mirror_or_skip() -> None:
    if shutil.which("debootstrap", path="/usr/sbin:/usr/bin") is None:
        pytest.skip("debootstrap is not installed (make test installs it)")
    from linjail.roots.apt import choose_mirror, host_sources, host_suite, preflight
    suite = host_suite() or "bookworm"
    mirror = choose_mirror(host_sources(), suite, suite)
    if mirror is None:
        pytest.skip("no Debian mirror in the host's apt sources")
    try:
        preflight(mirror, suite, timeout=15)
    except JailError as e:
        pytest.skip(f"the package mirror is not reachable: {e.message}")


#: a cached root nobody used for this long is removed (another checkout's code)
UNUSED_DAYS = 3


@pytest.fixture(scope="session")
def complete_root() -> Path:
    """The cached complete jail; built through `jailctl build` when missing or stale.

    One per cache key (CACHE/complete-KEY/complete-nginx), so that checkouts
    with other build code, testing on the same machine at the same time, do
    not rebuild each other's; a lock makes a second session wait for the
    build of the first."""
    CACHE.mkdir(mode=0o700, exist_ok=True)
    os.chmod(CACHE, 0o700)
    key = cache_key()
    home = CACHE / f"complete-{key[:16]}"
    home.mkdir(mode=0o700, exist_ok=True)
    with open(home / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        root = _complete_root(home, key)
        os.utime(home / "key")
    _prune_unused(home)
    return root


def _prune_unused(keep: Path) -> None:
    for home in CACHE.glob("complete-*"):
        stamp = home / "key"
        if home == keep or not stamp.exists() or \
                time.time() - stamp.stat().st_mtime < UNUSED_DAYS * 86400:
            continue
        with open(home / "lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            stamp.unlink()
            remove_tree(str(home / "complete-nginx"))
        shutil.rmtree(home, ignore_errors=True)


def _complete_root(home: Path, key: str) -> Path:
    root = home / "complete-nginx"
    stamp = home / "key"
    if root.is_dir() and stamp.exists() and stamp.read_text() == key and \
            (root / "usr/sbin/nginx").exists():
        return root
    mirror_or_skip()
    stamp.unlink(missing_ok=True)
    if os.path.lexists(root):
        remove_tree(str(root))
    started = time.monotonic()
    r = cmd(JAILCTL, "build", str(root), "--complete", "--include", INCLUDE, timeout=900)
    assert r.returncode == 0, r.stderr
    # not a terminal: one progress line per phase, then the result
    lines = r.stderr.splitlines()
    assert lines[0].startswith(f"build: {root}: Debian ") and lines[0].endswith(f"with {INCLUDE}")
    assert "build: [ 10%] Downloading packages" in lines
    assert lines[-1] == f"build: {root}: complete jail ready (hostname complete-nginx)"
    assert r.stdout == ""
    print(f"complete jail built in {time.monotonic() - started:.0f} s", file=sys.stderr)
    stamp.write_text(key)
    return root


def test_the_tree_is_a_jail_not_a_machine(complete_root: Path) -> None:
    root = complete_root
    assert os.listdir(root / "dev") == []                       # no host devices
    for name, mode in (("rc", 0o755), ("rc.shutdown", 0o755), ("rc.subr", 0o644)):
        st = (root / "etc" / name).stat()
        assert (st.st_mode & 0o777, st.st_uid) == (mode, 0)
        assert (root / "etc" / name).read_bytes() == (SRC / "jailrc" / name).read_bytes()
    assert (root / "etc/hostname").read_text() == "complete-nginx\n"
    assert "127.0.1.1\tcomplete-nginx\n" in (root / "etc/hosts").read_text()
    assert not list((root / "var/cache/apt/archives").glob("*.deb"))
    assert (root / "etc/rc2.d/S01nginx").is_symlink()
    assert (root / "etc/rcS.d/S01hwclock.sh").is_symlink()       # there, never run
    assert not (root / "usr/sbin/policy-rc.d").exists()
    assert os.readlink(root / "var/run") == "/run"
    # the cache dir keeps host users away from set-id files in the tree (SPEC §7)
    assert CACHE.stat().st_mode & 0o077 == 0


def route_is_ours(addr: str, ifname: str) -> bool:
    out = cmd("ip", "route", "get", addr).stdout
    return f" dev {ifname} " in out


def route_is_free(addr: str) -> bool:
    """Nothing of any jail answers at addr (another test may be using it)."""
    return " dev ljh" not in cmd("ip", "route", "get", addr).stdout


def http_get(addr: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((addr, 80), timeout=2) as s:
                s.sendall(b"GET / HTTP/1.0\r\nHost: " + HOSTNAME.encode() + b"\r\n\r\n")
                chunks = []
                while True:
                    data = s.recv(65536)
                    if not data:
                        break
                    chunks.append(data)
                return b"".join(chunks).decode("latin-1")
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture(params=["", "NO"], ids=["unprivileged_root=1", "unprivileged_root=0"])
def rcconf(tmp_path: Path, complete_root: Path,
           request: pytest.FixtureRequest) -> Iterator[tuple[Path, dict[str, str]]]:
    """The complete jail through rc.conf, with the default and with
    jail_NAME_unprivileged_root="NO" (issue 11)."""
    if not route_is_free(ADDR):
        pytest.skip(f"{ADDR} is routed to another jail right now")
    conf = tmp_path / "rc.conf"
    conf.write_text(f'jail_enable="YES"\njail_list="{NAME}"\n'
                    f'jail_{NAME}_rootdir="{complete_root}"\n'
                    f'jail_{NAME}_hostname="{HOSTNAME}"\n'
                    f'jail_{NAME}_ip="{ADDR}"\n'
                    f'jail_{NAME}_consolelog="{tmp_path}/console.log"\n' +
                    (f'jail_{NAME}_unprivileged_root="{request.param}"\n'
                     if request.param else ""))
    env = {"LINJAIL_VARRUN": str(tmp_path)}
    yield conf, env
    from linjail.state import registry
    rec = registry.lookup_name(NAME)
    if rec is not None:        # the test failed half-way: leave nothing running
        from linjail.lifecycle.remove import remove_jail
        remove_jail(rec.jid, 0.2)


def test_boots_through_rc_conf_and_stops_clean(complete_root: Path,
                                                rcconf: tuple[Path, dict[str, str]],
                                                tmp_path: Path) -> None:
    from linjail.state import registry
    conf, env = rcconf
    r = cmd(JAILCTL, "start", "-f", str(conf), NAME, env=env)
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert f"Starting jails: {HOSTNAME}.\n" in r.stdout
    rec = registry.lookup_name(NAME)
    assert rec is not None and rec.path == str(complete_root)
    jid, ifname, cgroup = rec.jid, rec.hostif, rec.cgroup
    console = (tmp_path / "console.log").read_text()
    assert "Starting nginx: nginx." in console and "hwclock" not in console

    # the daemon /etc/rc started answers at the jail's address, from the host
    assert route_is_ours(ADDR, ifname), cmd("ip", "route", "get", ADDR).stdout
    page = http_get(ADDR)
    assert page.startswith("HTTP/1.1 200 OK\r\n") and "Server: nginx" in page
    assert "Welcome to nginx!" in page

    # jexec: a root shell in the jail (by JID and by rc.conf name)
    r = cmd(JEXEC, str(jid), "/bin/sh", stdin="id -u; hostname; cat /etc/debian_version\n")
    assert r.returncode == 0 and r.stdout.startswith(f"0\n{HOSTNAME}\n"), r.stderr
    # files keep their on-disk owners inside (issue 11: idmapped with the default)
    paths = ("etc/shadow", "var/log/btmp", "var/log/nginx")
    r = cmd(JEXEC, str(jid), "stat", "-c", "%u:%g", *(f"/{p}" for p in paths))
    st = [os.stat(complete_root / p) for p in paths]
    assert r.stdout.split() == [f"{s.st_uid}:{s.st_gid}" for s in st], r.stderr
    r = cmd(JEXEC, NAME, "sh", "-c",
            "cat /run/nginx.pid >/dev/null && cat /run/linjail-rc.started")
    assert (r.returncode, r.stdout) == (0, "nginx\n")
    row = [line for line in cmd(JLS).stdout.splitlines() if line.split()[0] == str(jid)]
    assert row == [f"{jid:<8}{HOSTNAME:<15} {str(complete_root):<15} {ADDR}"]

    # a running jail's root cannot be destroyed
    r = cmd(JAILCTL, "destroy", str(complete_root))
    assert (r.returncode, r.stderr) == (1, f"jailctl: destroy: {complete_root}: jail {jid} is "
                                           "running in it; stop it first\n")

    procs = [(int(p), registry.starttime(int(p)) or 0)
             for p in Path(cgroup, "cgroup.procs").read_text().split()]
    assert len(procs) >= 3          # the reaper, nginx's master and its worker(s)

    r = cmd(JAILCTL, "stop", "-f", str(conf), NAME, env=env)
    console = (tmp_path / "console.log").read_text()
    assert "Stopping nginx: nginx" in console                # rc.shutdown ran
    assert not (complete_root / "run/linjail-rc.started").exists()

    # nothing is left: processes, record, cgroup, interface, routes, mounts
    assert not any(registry.pid_alive(pid, start) for pid, start in procs)
    assert registry.lookup(jid) is None
    assert str(complete_root) not in cmd(JLS).stdout
    assert not os.path.exists(cgroup)
    assert not os.path.exists(f"/sys/class/net/{ifname}")
    assert not route_is_ours(ADDR, ifname)
    assert mounts_at_or_below(str(complete_root)) == []

    # rc.shutdown ran to its end (a jexec'd process keeps the jail alive)
    assert "Stopping nginx: nginx." in console
    assert (r.returncode, r.stderr) == (0, ""), r.stdout
    assert f"Stopping jails: {HOSTNAME}.\n" in r.stdout
    assert not (tmp_path / f"jail_{NAME}.id").exists()


def test_a_thin_jail_of_it_boots_its_own_nginx(complete_root: Path, tmp_path: Path) -> None:
    """Thin jails work on a complete base: its /etc/rc, its own address, its
    own writable layer (logs, pid files); the base never changes."""
    from linjail.roots.thin import build_thin
    from linjail.thinroot import layer_path, overlay_for
    from linjail.lifecycle.remove import remove_jail
    from linjail.lifecycle.start import run_jail
    from linjail.model import JailSpec, parse_ip_list
    if not route_is_free(THIN_ADDR):
        pytest.skip(f"{THIN_ADDR} is routed to another jail right now")
    thin = build_thin(str(tmp_path / "jails" / "thin"), str(complete_root))
    quiet = build_thin(str(tmp_path / "jails" / "quiet"), str(complete_root))
    base_log = complete_root / "var/log/nginx/access.log"
    base_size = base_log.stat().st_size if base_log.exists() else -1
    jids: list[int] = []
    log = os.open(tmp_path / "console", os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        spec = JailSpec(path=thin, hostname="thin.example.org", ips=parse_ip_list(THIN_ADDR),
                        command=("/bin/sh", "/etc/rc"), overlay=overlay_for(thin))
        assert run_jail(spec, stdin=null, stdout=log, stderr=log, on_jid=jids.append) == 0
        from linjail.state import registry
        rec = registry.lookup(jids[0])
        assert rec is not None and route_is_ours(THIN_ADDR, rec.hostif)
        assert "Welcome to nginx!" in http_get(THIN_ADDR)
        assert (Path(layer_path(thin)) / "upper/var/log/nginx/access.log").stat().st_size > 0
        # the jail's own rc.conf turns a service off (NAME_enable="NO")
        spec = JailSpec(path=quiet, hostname="quiet.example.org", ips=(),
                        command=("/bin/sh", "-c", 'echo nginx_enable=\\"NO\\" >> /etc/rc.conf;'
                                 " /bin/sh /etc/rc >/dev/null; cat /run/linjail-rc.started;"
                                 " test -e /run/nginx.pid || echo no-nginx"),
                        overlay=overlay_for(quiet))
        r, w = os.pipe()
        try:
            assert run_jail(spec, stdin=null, stdout=w, stderr=w, on_jid=jids.append) == 0
        finally:
            os.close(w)
        with os.fdopen(r) as f:
            assert f.read() == "no-nginx\n"
    finally:
        os.close(log)
        os.close(null)
        for jid in jids:
            try:
                remove_jail(jid, 0.2)
            except JailError:
                pass
    assert (base_log.stat().st_size if base_log.exists() else -1) == base_size
    assert (complete_root / "etc/rc.conf").read_bytes() == (SRC / "jailrc/rc.conf").read_bytes()
    for path in (thin, quiet):
        destroy(path, running_roots)
    assert os.listdir(tmp_path / "jails") == []


# --- what bad input gets: one line, status 1, nothing left ------------------------


def assert_one_line(r: subprocess.CompletedProcess[str], message: str) -> None:
    assert r.returncode == 1
    assert r.stderr == f"jailctl: {message}\n"


def test_bad_input_is_refused_before_anything_is_made(tmp_path: Path) -> None:
    target = tmp_path / "jails" / "www"
    assert_one_line(cmd(JAILCTL, "build", str(target), "--complete", "--suite", "nosuch"),
                    "build: nosuch: unknown suite (debootstrap has no script for it)")
    assert_one_line(cmd(JAILCTL, "build", str(target), "--complete", "--include", "a b"),
                    "build: --include a b: not a package name")
    assert_one_line(cmd(JAILCTL, "build", str(target), "--complete", "--mirror",
                        "file:///nonexistent/debian"),
                    "build: mirror file:///nonexistent/debian cannot be reached: "
                    "No such directory")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert_one_line(cmd(JAILCTL, "build", str(tmp_path / "full"), "--complete"),
                    f"build: {tmp_path}/full: directory exists and is not empty")
    assert_one_line(cmd(JAILCTL, "build", str(target), "--thin", str(tmp_path / "nobase")),
                    f"build: --thin {tmp_path}/nobase: No such file or directory")
    # a mirror that cannot be reached: the build runs in a network namespace of
    # its own with only a loopback, so no packet leaves the machine
    if shutil.which("debootstrap", path="/usr/sbin:/usr/bin") is not None:
        r = cmd("unshare", "--net", JAILCTL, "build", str(target), "--complete",
                "--mirror", "http://198.51.100.250/debian")
        assert_one_line(r, "build: mirror http://198.51.100.250/debian cannot be reached: "
                           "Network is unreachable")
    assert not (tmp_path / "jails").exists()
    assert os.listdir(tmp_path / "full") == ["x"]


def test_unknown_suite_on_the_mirror(tmp_path: Path) -> None:
    mirror_or_skip()
    from linjail.roots.apt import choose_mirror, host_sources, host_suite
    suite = host_suite() or "bookworm"
    mirror = choose_mirror(host_sources(), suite, suite)
    assert mirror is not None
    # debootstrap knows woody; the mirror has not carried it for twenty years
    assert_one_line(cmd(JAILCTL, "build", str(tmp_path / "j" / "w"), "--complete", "--suite",
                        "woody"),
                    f"build: woody: unknown suite on {mirror.url} "
                    "(dists/woody/Release: HTTP 404)")
    assert not (tmp_path / "j").exists()


def debootstraps_for(path: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if str(path).encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def test_a_failing_debootstrap_leaves_nothing(tmp_path: Path) -> None:
    mirror_or_skip()
    target = tmp_path / "jails" / "bad"
    r = cmd(JAILCTL, "build", str(target), "--complete", "--include",
            "no-such-package-linjail", timeout=300)
    assert r.returncode == 1
    assert r.stderr.splitlines()[-1] == ("jailctl: build: debootstrap failed: Couldn't find "
                                         "these debs: no-such-package-linjail")
    assert not (tmp_path / "jails").exists()
    assert debootstraps_for(target) == []


def test_an_interrupted_build_leaves_nothing(tmp_path: Path) -> None:
    mirror_or_skip()
    target = tmp_path / "jails" / "int"
    proc = subprocess.Popen([JAILCTL, "build", str(target), "--complete"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (target / "debootstrap").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(2)                       # well into the downloads
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130
    assert err.splitlines()[-1] == f"jailctl: build: interrupted; nothing left in {target}"
    assert not (tmp_path / "jails").exists()
    assert debootstraps_for(target) == []
    assert mounts_at_or_below(str(tmp_path)) == []
