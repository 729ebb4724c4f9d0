"""The Debian package (issue 15): `make deb`, lintian, and install → run →
upgrade → purge with dpkg in a scratch Debian root.

The scratch root is a copy of test_complete.py's cached debootstrap root
(bookworm minbase + nginx) with python3 added once and cached beside it
(deb-base beside the complete root, keyed by the complete root's key and the
package's Depends).  Commands run in it by chroot, inside a private mount
namespace (unshare -m) that carries /proc, /sys, /dev and the host's
/run/linjail — so jails started from the scratch root share the host's
registry (JIDs, veth names) and show in the host's jls; all those mounts go
with the namespace.  Jails here use 203.0.113.153 and send nothing.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

import linjail
from conftest import COMMAND_DIRS, Jails, Result, wait_until
from test_complete import complete_root  # noqa: F401  (the cached debootstrap root)

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="dpkg in a chroot and jails need root"),
]

REPO = Path(__file__).resolve().parents[2]
VERSION = linjail.__version__
DEPENDS = "python3 (>= 3.11), libseccomp2"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
USER_PATH = "/usr/local/bin:/usr/bin:/bin"              # Debian's PATH for ordinary users
ROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ADDR = "203.0.113.153"
# dpkg's and apt's own bookkeeping, which installing anything changes, and
# libmount's table of the umount that in_root runs
BOOKKEEPING = ("var/lib/dpkg/", "var/log/", "var/cache/debconf/", "var/cache/ldconfig/",
               "run/mount")

# the scratch root as the root of one unshare'd mount namespace, with /proc,
# /sys, /dev and the host's registry; pivot_root, not chroot: the kernel
# refuses a chrooted process a new user namespace, which jail's hostname needs
_ENTER = r"""
set -e
r=$1; shift
mount --bind "$r" "$r"
mount -t proc proc "$r/proc"
mount --rbind /sys "$r/sys"
mount --rbind /dev "$r/dev"
mount --bind /run/linjail "$r/run/linjail"
cd "$r"
pivot_root . mnt
exec chroot . sh -c 'umount -l /mnt && exec "$@"' sh "$@"
"""


def in_root(root: Path, *argv: str, user: bool = False, timeout: float = 120,
            path: str = ROOT_PATH) -> Result:
    """ARGV run in the scratch root (as nobody when USER)."""
    os.makedirs("/run/linjail", exist_ok=True)
    inner = [*NOBODY, *argv] if user else list(argv)
    env = {"PATH": path, "LANG": "C", "HOME": "/root", "DEBIAN_FRONTEND": "noninteractive"}
    p = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", _ENTER,
                        "sh", str(root), "/usr/bin/env", "-i", *(f"{k}={v}" for k, v in env.items()),
                        *inner], capture_output=True, text=True, timeout=timeout, check=False)
    return Result(p.returncode, p.stdout, p.stderr)


def base_key(complete: Path) -> str:
    return (complete.parent / "key").read_text() + "\n" + DEPENDS


@pytest.fixture(scope="module")
def deb_base(complete_root: Path) -> Path:  # noqa: F811
    """The complete root plus python3 (apt-get, once; cached)."""
    BASE = complete_root.parent / "deb-base"
    stamp = complete_root.parent / "deb-base.key"
    key = base_key(complete_root)
    if BASE.is_dir() and stamp.exists() and stamp.read_text() == key:
        return BASE
    work = Path(tempfile.mkdtemp(prefix="deb-base-", dir=complete_root.parent))
    try:
        os.rmdir(work)
        subprocess.run(["cp", "-a", str(complete_root), str(work)], check=True)
        (work / "run/linjail").mkdir(exist_ok=True)
        shutil.copyfile("/etc/resolv.conf", work / "etc/resolv.conf")
        for argv in (["apt-get", "-qq", "update"],
                     ["apt-get", "-qq", "install", "-y", "--no-install-recommends", "python3",
                      "libseccomp2"],
                     ["apt-get", "clean"]):
            r = in_root(work, *argv, timeout=600)
            if r.rc != 0:
                pytest.skip(f"cannot add python3 to the scratch root ({' '.join(argv)}): "
                            f"{r.err.strip()[-300:]}")
        shutil.rmtree(work / "var/lib/apt/lists", ignore_errors=True)
        (work / "var/lib/apt/lists/partial").mkdir(parents=True)
        if BASE.is_dir() and stamp.exists() and stamp.read_text() == key:
            return BASE                 # another session made it meanwhile
        stamp.unlink(missing_ok=True)
        if BASE.exists():               # stale: out of the way in one rename, then gone
            old = Path(f"{BASE}.old.{os.getpid()}")
            os.rename(BASE, old)
            shutil.rmtree(old, ignore_errors=True)
        os.rename(work, BASE)
        stamp.write_text(key)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BASE


@pytest.fixture(scope="module")
def deb() -> Iterator[Path]:
    out = Path(tempfile.mkdtemp(prefix="linjail-deb-"))
    os.chmod(out, 0o755)
    try:
        r = subprocess.run(["sh", str(REPO / "tools/mkdeb.sh"), str(out)], capture_output=True,
                           text=True, timeout=300, check=False)
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        path = out / f"linjail_{VERSION}_amd64.deb"
        assert r.stdout == f"{path}\n"
        yield path
    finally:
        shutil.rmtree(out, ignore_errors=True)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    """Every path of ROOT but dpkg's bookkeeping: (mode, size of files)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if rel.startswith(BOOKKEEPING):
                continue
            st = os.lstat(full)
            out[rel] = (st.st_mode, 0 if os.path.isdir(full) and not os.path.islink(full)
                        else st.st_size)
    return out


@pytest.fixture(scope="module")
def scratch(deb_base: Path, deb: Path) -> Iterator[tuple[Path, dict[str, tuple[int, int]]]]:
    """A copy of the base with the .deb in it (not installed) and its snapshot."""
    top = Path(tempfile.mkdtemp(prefix="linjail-scratch-", dir="/var/tmp"))
    root = top / "root"
    try:
        subprocess.run(["cp", "-a", str(deb_base), str(root)], check=True)
        os.chmod(root, 0o755)                           # other users may enter it
        (root / "srv/jails").mkdir(mode=0o700, parents=True)     # jail roots: root only
        shutil.copyfile(deb, root / "tmp" / deb.name)
        yield root, snapshot(root)
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_deb_contents(deb: Path) -> None:
    info = subprocess.run(["dpkg-deb", "-f", str(deb)], capture_output=True, text=True,
                          check=True).stdout
    assert f"Package: linjail\nVersion: {VERSION}\nArchitecture: amd64\n" in info
    assert f"\nDepends: {DEPENDS}\n" in info
    listing = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    files = {line.split()[-1].lstrip(".") for line in listing}
    owners = {line.split()[1] for line in listing}
    assert owners == {"root/root"}
    for path in ("/usr/sbin/jail", "/usr/sbin/jexec", "/usr/sbin/jailctl", "/usr/bin/jls",
                 "/usr/lib/linjail/linjail/reaper/linjail-reaper", "/etc/init.d/jail",
                 "/lib/systemd/system/jail.service", "/usr/share/man/man8/jail.8.gz",
                 "/usr/share/man/man5/rc.conf.linjail.5.gz", "/usr/share/doc/linjail/copyright",
                 "/usr/share/doc/linjail/changelog.gz", "/usr/share/bash-completion/completions/jls",
                 "/usr/share/bash-completion/completions/jailctl",
                 "/usr/share/zsh/vendor-completions/_linjail"):
        assert path in files, path
    assert not [f for f in files if f.endswith(".pyc") or "__pycache__" in f]
    conffiles = subprocess.run(["dpkg-deb", "-I", str(deb), "conffiles"], capture_output=True,
                               text=True, check=True).stdout
    assert conffiles.splitlines() == sorted(f for f in files if f.startswith("/etc/")
                                            and not f.endswith("/"))
    # no maintainer script starts or stops the service (an upgrade must not stop jails)
    for script in ("postinst", "prerm", "postrm"):
        text = subprocess.run(["dpkg-deb", "-I", str(deb), script], capture_output=True,
                              text=True, check=True).stdout
        code = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
        for word in ("invoke-rc.d", "deb-systemd-invoke", "systemctl stop", "systemctl start",
                     "jailctl", "init.d/jail stop", "kill"):
            assert not [line for line in code if word in line], (script, word)


def test_lintian_is_clean(deb: Path) -> None:
    if shutil.which("lintian", path=ROOT_PATH) is None:
        pytest.skip("lintian is not installed (make test installs it)")
    # lintian leaves a /tmp/mldbm-elf-XXXXXXXX file behind on every run: its
    # temporary files go to a directory of the test's own
    with tempfile.TemporaryDirectory(prefix="linjail-lintian-") as tmp:
        r = subprocess.run(["lintian", "--pedantic", "--fail-on", "error,warning,info,pedantic",
                            str(deb)], capture_output=True, text=True, timeout=300,
                           check=False, env={**os.environ, "TMPDIR": tmp})
    assert (r.returncode, r.stdout) == (0, ""), r.stdout
    # each override says why (packaging/deb/lintian-overrides)
    lines = (REPO / "packaging/deb/lintian-overrides").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith("linjail: "):
            assert lines[i - 1].startswith("#"), line


def test_install_run_upgrade_in_a_scratch_root(
        scratch: tuple[Path, dict[str, tuple[int, int]]], jails: Jails) -> None:
    root, _ = scratch
    deb = f"/tmp/linjail_{VERSION}_amd64.deb"
    r = in_root(root, "dpkg", "-i", deb)
    assert r.rc == 0, r.out + r.err
    assert (root / "usr/lib/linjail/linjail/cli/__pycache__").is_dir()   # postinst compiled
    assert os.path.islink(root / "etc/rc2.d/S01jail")                    # enabled at boot
    assert (root / "etc/systemd/system/multi-user.target.wants/jail.service").is_symlink()

    assert COMMAND_DIRS["jls"] == "bin"
    for name, where in COMMAND_DIRS.items():
        r = in_root(root, f"/usr/{where}/{name}", "--version")
        assert (r.rc, r.out, r.err) == (0, f"{name} (linjail) {VERSION}\n", "")
    # an ordinary user's PATH has jls; jail and jexec answer as DragonFly's
    r = in_root(root, "jls", "--version", user=True, path=USER_PATH)
    assert (r.rc, r.out, r.err) == (0, f"jls (linjail) {VERSION}\n", "")
    r = in_root(root, "/usr/sbin/jail", "/", "h", "", "/bin/true", user=True)
    assert (r.rc, r.out, r.err) == (1, "", "jail: jail: Operation not permitted\n")

    # a real jail, from the package's own commands and reaper
    r = in_root(root, "jailctl", "build", "/srv/jails/www", "--service", "/bin/sh", "/bin/sleep",
                "/bin/hostname")
    assert r.rc == 0, r.err
    r = in_root(root, "jail", "-i", "/srv/jails/www", "deb.example.org", ADDR,
                "/bin/sh", "-c", "/bin/sleep 300 >/dev/null 2>&1 &")
    assert r.rc == 0 and r.err == "", r.err
    jid = jails.track(int(r.out.splitlines()[0]))
    row = "%-8s%-15s %-15s %s" % (jid, "deb.example.org", "/srv/jails/www", ADDR)
    assert row in in_root(root, "jls").out.splitlines()
    r = in_root(root, "jls", user=True, path=USER_PATH)
    assert r.rc == 0 and row in r.out.splitlines(), r.err
    r = in_root(root, "/usr/sbin/jexec", str(jid), "hostname", user=True)
    assert (r.rc, r.err) == (1, f"jexec: jail_attach({jid}) failed: Operation not permitted\n")
    r = in_root(root, "jexec", str(jid), "hostname")
    assert (r.rc, r.out, r.err) == (0, "deb.example.org\n", "")

    # upgrading (the same package again: prerm upgrade, postinst configure)
    # leaves the running jail alone
    from linjail.state import registry
    rec = registry.lookup(jid)
    assert rec is not None
    r = in_root(root, "dpkg", "-i", deb)
    assert r.rc == 0, r.out + r.err
    assert registry.pid_alive(rec.pid, rec.starttime)
    assert row in in_root(root, "jls").out.splitlines()
    r = in_root(root, "jailctl", "remove", str(jid))
    assert (r.rc, r.err) == (0, "")
    assert wait_until(lambda: registry.lookup(jid) is None)


def test_purge_leaves_nothing(scratch: tuple[Path, dict[str, tuple[int, int]]]) -> None:
    root, before = scratch
    deb = f"/tmp/linjail_{VERSION}_amd64.deb"
    if not (root / "usr/sbin/jail").exists():
        r = in_root(root, "dpkg", "-i", deb)
        assert r.rc == 0, r.out + r.err
    shutil.rmtree(root / "srv/jails")           # the jail root built above is not the package's
    (root / "srv/jails").mkdir(mode=0o700)
    r = in_root(root, "dpkg", "--purge", "linjail")
    assert r.rc == 0, r.out + r.err
    r = in_root(root, "dpkg-query", "-W", "linjail")
    assert r.rc == 1 and "no packages found matching linjail" in r.err
    after = snapshot(root)
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    assert (added, removed, changed) == ([], [], [])
