"""`jailctl build PATH --service PROG...` (roots/service.py): build real roots from
host programs and prove them with chroot; check the failure paths leave nothing."""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from linjail.roots.elf import read_elf
from linjail.roots.service import MERGED_USR, PASSWD, _Tree, build_service
from linjail.errors import JailError

# The system's programs, not whatever a developer's PATH puts first (pyenv shims).
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
JAIL_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C"}
CHROOT = shutil.which("chroot", path=SYSTEM_PATH) or "chroot"

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="building a jail root needs root"),
    pytest.mark.skipif(not os.path.isabs(CHROOT), reason="chroot(8) is not installed"),
]


@pytest.fixture(autouse=True)
def system_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", SYSTEM_PATH)


@pytest.fixture
def jails(tmp_path: Path) -> Iterator[Path]:
    """A parent that does not exist yet (build must create it 0700); removed after."""
    parent = tmp_path / "jails"
    yield parent
    shutil.rmtree(parent, ignore_errors=True)


def programs() -> list[str]:
    progs = ["sh", "ls", "cat"]
    if shutil.which("busybox") is not None:
        progs.append("busybox")
    return progs


def chroot(root: Path, script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CHROOT, str(root), "/bin/sh", "-c", script], env=JAIL_ENV,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.fixture
def built(jails: Path) -> tuple[Path, list[str]]:
    root = jails / "svc"
    messages: list[str] = []
    build_service(str(root), programs(), log=messages.append)
    return root, messages


def test_the_root_works_in_chroot(built: tuple[Path, list[str]]) -> None:
    root, messages = built
    assert messages == []  # the parent is 0700 and under pytest's 0700 dir
    top = {"dev", "etc", "proc", "root", "tmp", "usr"}
    top |= {n for n in MERGED_USR if os.path.islink("/" + n)}
    r = chroot(root, "ls /; cat /etc/passwd")
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "".join(n + "\n" for n in sorted(top)) + PASSWD
    assert PASSWD == ("root:x:0:0:root:/root:/bin/sh\n"
                      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n")


def test_busybox_runs(built: tuple[Path, list[str]]) -> None:
    if shutil.which("busybox") is None:
        pytest.skip("busybox is not installed (make test installs it)")
    root, _ = built
    r = chroot(root, "busybox echo hello from busybox")
    assert (r.returncode, r.stdout, r.stderr) == (0, "hello from busybox\n", "")


def test_merged_usr_links_and_program_links(built: tuple[Path, list[str]]) -> None:
    root, _ = built
    for name in MERGED_USR:
        host = "/" + name
        if os.path.islink(host):
            assert os.readlink(root / name) == os.readlink(host)
        else:
            assert not (root / name).is_symlink()
    sh = shutil.which("sh")
    assert sh is not None
    if os.path.islink(sh):  # Debian: /usr/bin/sh -> dash, reproduced with its target
        assert os.readlink(root / sh.lstrip("/")) == os.readlink(sh)
        target = os.path.realpath(sh)
        assert (root / target.lstrip("/")).is_file()


def test_ld_so_is_present(built: tuple[Path, list[str]]) -> None:
    root, _ = built
    ls = shutil.which("ls")
    assert ls is not None
    interp = read_elf(ls).interp
    assert interp is not None
    # The interpreter path is a chain of links on Debian (lib64 -> usr/lib64,
    # ld-linux-x86-64.so.2 -> /lib/...): check it resolves inside the root...
    assert chroot(root, f"test -f {interp}").returncode == 0
    # ...to a real copy of the host's file, mode and all.
    real = root / os.path.realpath(interp).lstrip("/")
    st, host = real.lstat(), os.stat(interp)
    assert stat.S_ISREG(st.st_mode)
    assert (st.st_size, st.st_mode, st.st_uid) == (host.st_size, host.st_mode, host.st_uid)


def test_modes_and_etc(built: tuple[Path, list[str]]) -> None:
    root, _ = built
    mode = {p: stat.S_IMODE(os.lstat(root / p).st_mode) for p in
            ("", "tmp", "dev", "proc", "root", "etc", "etc/passwd", "etc/hosts")}
    assert mode == {"": 0o755, "tmp": 0o1777, "dev": 0o755, "proc": 0o755, "root": 0o700,
                    "etc": 0o755, "etc/passwd": 0o644, "etc/hosts": 0o644}
    assert stat.S_IMODE(os.stat(root.parent).st_mode) == 0o700
    assert os.listdir(root / "dev") == os.listdir(root / "proc") == []
    assert os.listdir(root / "tmp") == os.listdir(root / "root") == []
    assert (root / "etc/group").read_text() == "root:x:0:\nnogroup:x:65534:\n"
    assert (root / "etc/hosts").read_text() == (
        "127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n")
    try:
        host_resolv = Path("/etc/resolv.conf").read_text()
    except OSError:
        host_resolv = ""
    assert (root / "etc/resolv.conf").read_text() == host_resolv


def test_script_brings_its_interpreter_and_extra_files(jails: Path, tmp_path: Path) -> None:
    conf = tmp_path / "app.conf"
    conf.write_text("greeting = hello\n")
    script = tmp_path / "hello"
    script.write_text(f"#!/usr/bin/env sh\ncat {conf}\n")
    script.chmod(0o755)
    root = jails / "script"
    build_service(str(root), [str(script), "cat"], files=[str(conf)])
    # env and sh came along with the script; script and extra file keep their paths.
    assert (root / "usr/bin/env").is_file()
    r = subprocess.run([CHROOT, str(root), str(script)], env=JAIL_ENV,
                       capture_output=True, text=True, timeout=30, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (0, "greeting = hello\n", "")


def test_warns_when_the_parent_is_reachable() -> None:
    parent = Path(tempfile.mkdtemp(prefix="linjail-build-test-", dir="/tmp"))
    try:
        parent.chmod(0o755)  # /, /tmp and this: any host user can walk in
        messages: list[str] = []
        build_service(str(parent / "root"), ["cat"], log=messages.append)
        assert messages == [f"build: warning: {parent} is reachable by other users; "
                            "keep jails under a 0700 directory"]
    finally:
        shutil.rmtree(parent)


def test_non_empty_path_is_refused_and_untouched(jails: Path) -> None:
    root = jails / "full"
    root.mkdir(parents=True)
    (root / "precious").write_text("keep me\n")
    with pytest.raises(JailError) as e:
        build_service(str(root), ["sh"])
    assert (e.value.message, e.value.code) == (
        f"build: {root}: directory exists and is not empty", 1)
    assert os.listdir(root) == ["precious"]


def test_unknown_program_leaves_nothing(jails: Path) -> None:
    root = jails / "a" / "b" / "root"
    with pytest.raises(JailError) as e:
        build_service(str(root), ["sh", "no-such-program-xyz"])
    assert e.value.message == "build: no-such-program-xyz: no such program"
    assert not jails.exists()


def test_failure_midway_removes_root_and_created_parents(jails: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    root = jails / "a" / "b" / "root"
    with pytest.raises(JailError) as e:
        build_service(str(root), ["sh"], files=[str(fifo)])
    assert e.value.message == f"build: {fifo}: not a regular file"
    assert not jails.exists()


def test_failure_in_an_existing_empty_path_empties_it_again(jails: Path, tmp_path: Path) -> None:
    root = jails / "empty"
    root.mkdir(parents=True, mode=0o711)
    before = stat.S_IMODE(root.stat().st_mode)
    with pytest.raises(JailError, match=r"is a directory$"):
        build_service(str(root), ["sh"], files=[str(tmp_path)])
    assert os.listdir(root) == [] and stat.S_IMODE(root.stat().st_mode) == before


def test_no_write_through_a_symlink_inside_the_root(jails: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = jails / "planted"
    root.mkdir(parents=True)
    os.symlink(str(outside), root / "usr")
    tree = _Tree(str(root))
    try:
        with pytest.raises(JailError) as e:
            tree.mkdir(["usr", "bin"], 0o755, 0, 0)
    finally:
        tree.close()
    assert e.value.message == (f"build: {root}/usr: is a symbolic link or not a directory; "
                               "refusing to write through it")
    assert os.listdir(outside) == []
