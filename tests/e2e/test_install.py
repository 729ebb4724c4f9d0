"""Installed like a system tool (issue 15): `--version`, `make install` under a
prefix run by the distribution's python3, `make uninstall`, the wheel, and the
commands as a user other than root.

The installed copies live in temporary directories every user can read
(the checkout, under /work, may not be); other users are `nobody` through
setpriv(1).  Jails started here use 203.0.113.150-152 and send nothing.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator

import pytest

import linjail
from conftest import COMMAND_DIRS, Jails, Result, needs_root, run

REPO = Path(__file__).resolve().parents[2]
VERSION = linjail.__version__
SYSTEM_PYTHON = "/usr/bin/python3"
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--")
BB = "/usr/bin/busybox"
DAEMON = f"{BB} sleep 120 >/dev/null 2>&1 &"


def commands() -> list[tuple[str, str]]:
    """tools/commands: (name, sbin|bin), the one list of the commands."""
    return list(COMMAND_DIRS.items())


def as_nobody(*argv: str) -> Result:
    return run(*NOBODY, *argv)


def make(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "-s", "-C", str(REPO), *args], capture_output=True,
                          text=True, timeout=timeout, check=False)


def readable_tmpdir(prefix: str) -> str:
    path = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    os.chmod(path, 0o755)
    return path


def test_version_on_every_command() -> None:
    names = [name for name, _ in commands()]
    assert names[:4] == ["jail", "jls", "jexec", "jailctl"]
    for name in names:
        r = run(name, "--version")
        assert (r.rc, r.out, r.err) == (0, f"{name} (linjail) {VERSION}\n", ""), name
    # only alone: anything more is DragonFly's command line, where -- is no option
    r = run("jail", "--version", "x")
    assert r.rc == 1 and r.out == ""
    assert r.err.startswith("jail: illegal option -- -\nUsage: jail ")


def test_one_version() -> None:
    """pyproject.toml takes the version from the package (setup.py too)."""
    text = (REPO / "pyproject.toml").read_text()
    assert 'version = { attr = "linjail.__version__" }' in text
    assert '\nversion = "' not in text


# -- make install PREFIX=... / make uninstall ----------------------------------------------

@pytest.fixture(scope="module")
def prefix() -> Iterator[Path]:
    """`make install` into a fresh prefix (SYSCONFDIR too: nothing in /etc)."""
    if os.geteuid() != 0:
        pytest.skip("needs root")
    if not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"{SYSTEM_PYTHON} is missing: the installed commands run on it")
    top = Path(readable_tmpdir("linjail-prefix-"))
    try:
        r = make("install", f"PREFIX={top}/usr", f"SYSCONFDIR={top}/etc")
        assert (r.returncode, r.stderr) == (0, ""), r.stdout
        yield top
    finally:
        make("uninstall", f"PREFIX={top}/usr")
        shutil.rmtree(top, ignore_errors=True)


def test_install_layout(prefix: Path) -> None:
    usr = prefix / "usr"
    lib = usr / "lib" / "linjail"
    for name, where in commands():
        launcher = usr / where / name
        assert launcher.stat().st_mode & 0o777 == 0o755
        body = launcher.read_bytes()
        # the distribution's interpreter and the installed package, not the checkout
        assert f"{SYSTEM_PYTHON}\0".encode() in body
        assert f"sys.path.insert(0, '{lib}')".encode() in body
        assert str(REPO).encode() not in body
    assert (lib / "linjail" / "reaper" / "linjail-reaper").read_bytes() == \
        (REPO / "src/linjail/reaper/linjail-reaper").read_bytes()
    assert (lib / "linjail/roots/jailrc/rc").is_file()
    assert (lib / "linjail/cli/__pycache__").is_dir()      # compiled by /usr/bin/python3
    for page in ("jail.8", "jls.8", "jexec.8", "jailctl.8", "rc.conf.linjail.5"):
        assert (usr / "share/man" / f"man{page[-1]}" / page).is_file()
    for name, _ in commands():
        assert (usr / "share/bash-completion/completions" / name).read_bytes() == \
            (REPO / "etc/completion/linjail.bash").read_bytes()
    assert (usr / "share/zsh/site-functions/_linjail").is_file()
    init = (prefix / "etc/init.d/jail").read_text()
    assert f"JAILCTL=${{JAILCTL:-{usr}/sbin/jailctl}}\n" in init
    unit = (prefix / "etc/systemd/system/jail.service").read_text()
    assert f"ExecStart={usr}/sbin/jailctl start\n" in unit
    # the manifest names every file there is, and nothing else
    manifest = (lib / "installed-files").read_text().splitlines()
    files = {line[2:] for line in manifest if line.startswith("f ")}
    on_disk = {str(p) for p in prefix.rglob("*") if not p.is_dir()}
    assert files == on_disk


def test_installed_commands_for_every_user(prefix: Path) -> None:
    """What DragonFly shows a user who is not root, from the installed copy."""
    usr = prefix / "usr"
    for name, where in commands():
        r = as_nobody(str(usr / where / name), "--version")
        assert (r.rc, r.out, r.err) == (0, f"{name} (linjail) {VERSION}\n", ""), name
    r = as_nobody(str(usr / "sbin/jail"), "/", "h", "", "/bin/true")
    assert (r.rc, r.out, r.err) == (1, "", "jail: jail: Operation not permitted\n")
    r = as_nobody(str(usr / "sbin/jexec"), "1", "/bin/true")
    assert (r.rc, r.out, r.err) == (1, "", "jexec: jail_attach(1) failed: Operation not permitted\n")
    r = as_nobody(str(usr / "bin/jls"))
    assert r.rc == 0 and r.err == ""
    # doctor: what another user can see, and the one check only root can make
    r = as_nobody(str(usr / "sbin/jailctl"), "doctor")
    assert (r.rc, r.err) == (0, ""), r.out
    assert "\nunknown  idmapped mounts     root checks this\n" in r.out
    assert "\nOK       namespaces          mnt pid uts ipc net cgroup\n" in r.out
    assert f"\nOK       python              3.11." in r.out and " /usr/bin/python3\n" in r.out


@needs_root
def test_installed_copy_runs_jails_and_every_user_lists_them(
        prefix: Path, service_root: str, jails: Jails) -> None:
    usr = prefix / "usr"
    r = run(str(usr / "sbin/jail"), "-i", service_root, "inst.example.org", "203.0.113.150",
            "/bin/sh", "-c", DAEMON)
    assert r.rc == 0, r.err
    jid = jails.track(int(r.out.splitlines()[0]))
    row = "%-8s%-15s %-15s %s" % (jid, "inst.example.org", service_root, "203.0.113.150")

    def my_row(out: str) -> list[str]:
        return [line for line in out.splitlines() if line.split()[:1] == [str(jid)]]

    r = as_nobody(str(usr / "bin/jls"))
    assert r.rc == 0 and r.out.startswith("JID\tHostname\tPath\t\tIPs\n"), r.err
    assert my_row(r.out) == [row]
    r = as_nobody(str(usr / "sbin/jexec"), str(jid), "/bin/true")
    assert (r.rc, r.err) == (1, f"jexec: jail_attach({jid}) failed: Operation not permitted\n")

    # jailed root renames the jail; only root can look into its UTS namespace,
    # and its jls keeps the record current for everybody else
    r = run(str(usr / "sbin/jexec"), str(jid), BB, "hostname", "renamed.example.org")
    assert r.rc == 0, r.err
    assert my_row(as_nobody(str(usr / "bin/jls")).out) == [row]
    renamed = row.replace("inst.example.org", "renamed.example.org")
    assert my_row(run(str(usr / "bin/jls")).out) == [renamed]
    assert my_row(as_nobody(str(usr / "bin/jls")).out) == [renamed]

    # nothing in the state directory is writable by other users; records readable
    state = Path("/run/linjail")
    for path in [state, *state.rglob("*")]:
        try:
            st = path.lstat()
        except FileNotFoundError:       # another jail ended meanwhile
            continue
        assert st.st_uid == 0, path
        if not stat.S_ISLNK(st.st_mode):        # a symlink's own mode means nothing
            assert not st.st_mode & (stat.S_IWGRP | stat.S_IWOTH), path
    record = state / "jails" / str(jid)
    assert record.stat().st_mode & 0o777 == 0o644
    assert (state / "jails").stat().st_mode & 0o777 == 0o755


@needs_root
def test_jexec_by_name_for_every_user(prefix: Path, service_root: str, tmp_path: Path) -> None:
    """A name is the jail's JID for every user (FreeBSD's jail_getid), then EPERM."""
    from linjail.state import registry
    usr = prefix / "usr"
    conf = tmp_path / "rc.conf"
    conf.write_text(f'jail_instnamed_rootdir="{service_root}"\n'
                    'jail_instnamed_hostname="named.example.org"\n'
                    'jail_instnamed_ip="203.0.113.152"\n'
                    f'jail_instnamed_consolelog="{tmp_path}/console.log"\n'
                    f'jail_instnamed_exec_start="/bin/sh -c \'{DAEMON}\'"\n')
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C", "LINJAIL_VARRUN": str(tmp_path)}
    jailctl = str(usr / "sbin/jailctl")
    r = run(jailctl, "onestart", "-f", str(conf), "instnamed", env=env)
    try:
        assert r.rc == 0, r.out + r.err
        rec = registry.lookup_name("instnamed")
        assert rec is not None
        r = as_nobody(str(usr / "sbin/jexec"), "instnamed", "/bin/true")
        assert (r.rc, r.out, r.err) == (
            1, "", f"jexec: jail_attach({rec.jid}) failed: Operation not permitted\n")
        r = as_nobody(str(usr / "sbin/jexec"), "nosuchjail", "/bin/true")
        assert (r.rc, r.out, r.err) == (1, "", "jexec: cannot parse jail id: nosuchjail.\n")
    finally:
        r = run(jailctl, "onestop", "-f", str(conf), "instnamed", env=env)
        assert (r.rc, r.out) == (0, "Stopping jails: named.example.org.\n"), r.err


def test_uninstall_removes_exactly_what_was_installed() -> None:
    if os.geteuid() != 0 or not os.access(SYSTEM_PYTHON, os.X_OK):
        pytest.skip(f"needs root and {SYSTEM_PYTHON}")
    top = Path(readable_tmpdir("linjail-prefix-"))
    try:
        (top / "usr/share/man/man8").mkdir(parents=True)
        (top / "usr/share/man/man8/other.8").write_text("not ours\n")
        r = make("install", f"PREFIX={top}/usr", f"SYSCONFDIR={top}/etc")
        assert r.returncode == 0, r.stderr
        # byte code a later interpreter writes beside ours goes too
        stray = top / "usr/lib/linjail/linjail/cli/__pycache__/jls.cpython-399.pyc"
        stray.write_bytes(b"")
        r = make("uninstall", f"PREFIX={top}/usr")
        assert (r.returncode, r.stderr) == (0, "")
        left = sorted(str(p.relative_to(top)) for p in top.rglob("*"))
        assert left == ["usr", "usr/share", "usr/share/man", "usr/share/man/man8",
                        "usr/share/man/man8/other.8"]
        r = make("uninstall", f"PREFIX={top}/usr")
        assert r.returncode != 0
        assert f"uninstall: {top}/usr/lib/linjail/installed-files: No such file or directory" \
            in r.stderr
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_install_refuses_a_python_it_cannot_use(tmp_path: Path) -> None:
    r = make("install", f"PREFIX={tmp_path}/usr", f"SYSCONFDIR={tmp_path}/etc", "PYTHON=python3")
    assert r.returncode != 0
    assert "install: PYTHON=python3: an absolute path is needed (it is compiled in)\n" in r.stderr
    r = make("install", f"PREFIX={tmp_path}/usr", f"SYSCONFDIR={tmp_path}/etc",
             "PYTHON=/bin/false")
    assert r.returncode != 0 and "install: /bin/false: not a Python 3.11 or newer" in r.stderr
    assert list(tmp_path.iterdir()) == []


# -- the wheel ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def wheel() -> Iterator[Path]:
    out = Path(readable_tmpdir("linjail-wheel-"))
    try:
        r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps",
                            "-w", str(out), str(REPO)], capture_output=True, text=True,
                           timeout=300, check=False)
        assert r.returncode == 0, r.stderr
        yield next(out.glob("*.whl"))
    finally:
        shutil.rmtree(out, ignore_errors=True)


def test_wheel_is_for_this_platform_and_carries_the_reaper(wheel: Path) -> None:
    assert wheel.name == f"linjail-{VERSION}-py3-none-linux_x86_64.whl"
    with zipfile.ZipFile(wheel) as z:
        reaper = z.getinfo("linjail/reaper/linjail-reaper")
        assert (reaper.external_attr >> 16) & 0o777 == 0o755
        assert z.read(reaper)[:4] == b"\x7fELF"
        scripts = z.read(f"linjail-{VERSION}.dist-info/entry_points.txt").decode()
    for name, _ in commands():
        # a - in a command's name is _ in its module's (tools/commands)
        assert f"{name} = linjail.cli.{name.replace('-', '_')}:main" in scripts


@needs_root
def test_wheel_in_a_venv_runs_jails(wheel: Path, service_root: str, jails: Jails) -> None:
    venv = Path(readable_tmpdir("linjail-venv-"))
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        r = subprocess.run([str(venv / "bin/pip"), "install", "-q", "--no-index", str(wheel)],
                           capture_output=True, text=True, timeout=120, check=False)
        assert r.returncode == 0, r.stderr
        for name, _ in commands():
            r = run(str(venv / "bin" / name), "--version")
            assert (r.rc, r.out) == (0, f"{name} (linjail) {VERSION}\n"), r.err
        r = run(str(venv / "bin/jail"), "-i", service_root, "wheel.example.org", "203.0.113.151",
                "/bin/sh", "-c", DAEMON)
        assert r.rc == 0, r.err
        jid = jails.track(int(r.out.splitlines()[0]))
        r = run(str(venv / "bin/jexec"), str(jid), BB, "hostname")
        assert (r.rc, r.out) == (0, "wheel.example.org\n"), r.err
        row = "%-8s%-15s %-15s %s" % (jid, "wheel.example.org", service_root, "203.0.113.151")
        assert row in run(str(venv / "bin/jls")).out.splitlines()
    finally:
        shutil.rmtree(venv, ignore_errors=True)


def test_pip_install_dot_gives_the_commands(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    r = subprocess.run([str(venv / "bin/pip"), "install", "-q", str(REPO)], capture_output=True,
                       text=True, timeout=300, check=False)
    assert r.returncode == 0, r.stderr
    for name, _ in commands():
        r = run(str(venv / "bin" / name), "--version")
        assert (r.rc, r.out) == (0, f"{name} (linjail) {VERSION}\n"), r.err
    site = next(venv.glob("lib/python3*/site-packages"))
    assert (site / "linjail/reaper/linjail-reaper").stat().st_mode & 0o111


def test_wheel_without_a_compiler_is_a_clear_build_error(tmp_path: Path) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    env = dict(os.environ, PATH=str(empty))
    env.pop("CC", None)
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w",
                        str(tmp_path / "out"), str(REPO)], capture_output=True, text=True,
                       timeout=300, env=env, check=False)
    assert r.returncode != 0
    assert ("error: linjail: building linjail-reaper (the jail's PID 1, static C) needs a C "
            "compiler: none of musl-gcc, gcc, cc is on PATH; on Debian: apt-get install "
            "musl-tools (or gcc libc6-dev)") in r.stdout + r.stderr
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
