"""Hostile arguments, files and values end in one line (issue 16, items 4, 6, 10, 11).

Each test here is a finding of the fuzzer (tests/fuzz) or of the issue's
own run, kept as a plain regression test with the exact line.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import COMMANDS, Jails, cmd, needs_root

pytestmark = needs_root
BB = b"/usr/bin/busybox"
BAD = b"\xff\xfe"          # not UTF-8
ENV = {b"PATH": b"/usr/bin:/bin", b"LANG": b"C"}


def run_b(*argv: bytes, env: dict[bytes, bytes] | None = None,
          cwd: str | None = None) -> tuple[int, bytes, bytes]:
    """A command with bytes arguments (argv on Linux is bytes)."""
    name = argv[0].decode()
    argv0 = cmd(name).encode() if name in COMMANDS else argv[0]
    p = subprocess.run([argv0, *argv[1:]], capture_output=True, env=env or ENV, timeout=60,
                       cwd=cwd, stdin=subprocess.DEVNULL)
    return p.returncode, p.stdout, p.stderr


def test_an_empty_path_is_realpath_s_error(tmp_path: Path) -> None:
    """realpath(3) of "" is ENOENT; Python's realpath gave the cwd."""
    assert run_b(b"jail", b"", b"h", b"", b"/bin/sh", b"-c", b"echo ran",
                 cwd=str(tmp_path)) == (1, b"", b"jail: realpath: : No such file or directory\n")


@pytest.fixture(scope="module")
def odd_root(jail_base: str, service_root: str) -> bytes:
    """A copy of the service root at a path that is not UTF-8."""
    path = os.path.join(jail_base.encode(), b"root-" + BAD)
    if not os.path.exists(path):
        shutil.copytree(service_root.encode(), path, symlinks=True)
    return path


def test_bytes_pass_through_jail(odd_root: bytes) -> None:
    r = run_b(b"jail", odd_root, b"h", b"", b"/bin/sh", b"-c",
              b"printf '%s|%s' \"$0\" \"$1\"", b"a" + BAD, b"b" + BAD)
    assert r == (0, b"a" + BAD + b"|b" + BAD, b"")
    r = run_b(b"jail", odd_root, b"h", b"", b"/bin/sh" + BAD)
    assert r == (1, b"", b"jail: execv: /bin/sh" + BAD + b": No such file or directory\n")
    r = run_b(b"jail", b"-U", b"u" + BAD, odd_root, b"h", b"", b"/bin/sh")
    assert r == (1, b"", b"jail: u" + BAD + b": no such user\n")
    r = run_b(b"jail", odd_root, b"h", b"1.2.3.4" + BAD, b"/bin/sh")
    assert r == (1, b"Invalid value 1.2.3.4" + BAD + b"\n", b"")


def test_a_hostname_must_be_text(odd_root: bytes) -> None:
    r = run_b(b"jail", odd_root, b"h" + BAD, b"", b"/bin/sh", b"-c", b"echo ran")
    assert r == (1, b"", b"jail: h" + BAD + b": hostname is not valid UTF-8\n")


def test_bytes_pass_through_jexec_and_jls(odd_root: bytes, jails: Jails) -> None:
    r = run_b(b"jail", b"-i", odd_root, b"odd", b"", b"/bin/sh", b"-c",
              BB + b" sleep 600 </dev/null >/dev/null 2>&1 &")
    assert r[0] == 0, r
    jid = jails.track(int(r[1]))
    r = run_b(b"jexec", str(jid).encode(), b"/bin/sh", b"-c", b"printf '%s' \"$0\"",
              b"a" + BAD)
    assert r == (0, b"a" + BAD, b"")
    r = run_b(b"jexec", str(jid).encode(), b"no-such" + BAD)
    assert r == (1, b"", b"jexec: execvp(no-such" + BAD + b") failed: No such file or "
                 b"directory\n")
    r = run_b(b"jexec", b"-U", b"u" + BAD, str(jid).encode(), b"/bin/sh")
    assert r == (1, b"", b"jexec: u" + BAD + b": no such user\n")
    rows = [line for line in run_b(b"jls")[1].splitlines() if line.startswith(b"%d " % jid)]
    assert len(rows) == 1 and odd_root in rows[0]


# --- hostile files and values (item 4) ------------------------------------------------

def _marker_root(tmp: Path, text: str) -> str:
    """A directory with a thin-jail description beside it holding TEXT."""
    base = tmp / "thin"
    base.mkdir(mode=0o700)
    root = base / "r"
    root.mkdir()
    marker = base / "r.linjail-thin"
    marker.write_text(text)
    os.chmod(marker, 0o644)
    return str(root)


@pytest.mark.parametrize("text,why", [
    ("[" * 60000, b"not a thin-jail description (nested too deeply)"),
    ('{"base": "/var/tmp/a\\u0000b", "top": "TOP"}',
     b"base /var/tmp/a\\000b: overlayfs cannot take a path with '\\x00'"),
    # a lone surrogate no byte decodes to: shown escaped (it broke the stderr
    # stream itself: fuzzer, seed 5)
    ('{"base": "/var/\\ud800", "top": "TOP"}',
     b"base /var/\\ud800: missing, not a directory, or a symbolic link"),
])
def test_a_hostile_thin_marker_is_one_line(tmp_path: Path, text: str, why: bytes) -> None:
    root = _marker_root(tmp_path, text.replace("TOP", str(tmp_path / "thin/r.layer")))
    r = run_b(b"jail", root.encode(), b"h", b"", b"/bin/sh")
    assert r == (1, b"", f"jail: {root}.linjail-thin: ".encode() + why + b"\n")


def test_a_5000_digit_knob_value_is_one_line() -> None:
    big = b"1" * 5000
    r = run_b(b"jailctl", b"sysctl", b"jail.set_hostname_allowed=" + big)
    assert r == (1, b"", b"jailctl: sysctl: jail.set_hostname_allowed: invalid value '" + big +
                 b"' (allowed: 0, 1)\n")
    r = run_b(b"jailctl", b"sysctl", b"jail." + big + b".set_hostname_allowed")
    assert r == (1, b"", b"jailctl: sysctl: unknown oid 'jail." + big +
                 b".set_hostname_allowed'\n")


def test_a_5000_digit_jid_is_result_too_large() -> None:
    """strtol(3) answers ERANGE (SPEC §4); int() refused more than 4300 digits."""
    big = b"9" * 5000
    assert run_b(b"jexec", big, b"/bin/true") == (
        1, b"", b"jexec: invalid jail id: " + big + b": Result too large\n")
    assert run_b(b"jexec", b"--", b"-" + big, b"/bin/true") == (
        1, b"", b"jexec: invalid jail id: -" + big + b": Result too large\n")
    assert run_b(b"jailctl", b"remove", big) == (
        1, b"", b"jailctl: remove: invalid jail id: " + big + b": Result too large\n")
    # leading zeros do not make a number large
    assert run_b(b"jexec", b"0" * 5000 + b"999998", b"/bin/true") == (
        1, b"", b"jexec: jail_attach(999998) failed: Invalid argument\n")


# --- the environment (item 11) ----------------------------------------------------------

def test_a_state_dir_that_is_a_file_is_one_line(tmp_path: Path, service_root: str) -> None:
    f = tmp_path / "state"
    f.write_text("not a directory\n")
    env = {**ENV, b"LINJAIL_STATE_DIR": str(f).encode()}
    jails = f"{f}/jails".encode()
    assert run_b(b"jls", env=env) == (1, b"", b"jls: " + jails + b": Not a directory\n")
    assert run_b(b"jailctl", b"sysctl", env=env) == (
        1, b"", b"jailctl: " + jails + b": Not a directory\n")
    assert run_b(b"jailctl", b"sysctl", b"jail.sysvipc_allowed=1", env=env) == (
        1, b"", f"jailctl: {f}: Not a directory\n".encode())
    assert run_b(b"jail", service_root.encode(), b"h", b"", b"/bin/sh", b"-c", b"echo ran",
                 env=env) == (1, b"", f"jail: {f}: Not a directory\n".encode())
    below = {**ENV, b"LINJAIL_STATE_DIR": f"{f}/below".encode()}
    assert run_b(b"jailctl", b"sysctl", b"jail.sysvipc_allowed=1", env=below) == (
        1, b"", f"jailctl: {f}: Not a directory\n".encode())
    assert f.read_text() == "not a directory\n"


def test_an_empty_state_dir_is_the_default(tmp_path: Path, service_root: str) -> None:
    """LINJAIL_STATE_DIR="" put the registry in the current directory."""
    env = {**ENV, b"LINJAIL_STATE_DIR": b""}
    r = run_b(b"jail", service_root.encode(), b"h", b"", b"/bin/sh", b"-c", b"echo ran",
              env=env, cwd=str(tmp_path))
    assert r == (0, b"ran\n", b"")
    assert os.listdir(tmp_path) == []


# --- tarballs (items 4, 8 and 16) --------------------------------------------------------

def _tar(path: Path, *, compress: str = "", **info: object) -> Path:
    import io
    import tarfile
    with tarfile.open(path, "w:" + compress, format=tarfile.PAX_FORMAT) as t:
        d = tarfile.TarInfo("etc")
        d.type = tarfile.DIRTYPE
        d.mode = 0o755
        t.addfile(d)
        data = os.urandom(300000)
        m = tarfile.TarInfo("etc/data")
        m.size = len(data)
        for key, value in info.items():
            setattr(m, key, value)
        t.addfile(m, io.BytesIO(data))
    return path


def _damage(src: Path, dst: Path, how: str) -> Path:
    data = bytearray(src.read_bytes())
    if how == "cut":
        data = data[:len(data) // 2]
    else:
        for i in range(len(data) // 2, len(data) // 2 + 64):
            data[i] ^= 0x5A
    dst.write_bytes(bytes(data))
    return dst


def _short(src: Path, dst: Path) -> Path:
    dst.write_bytes(src.read_bytes()[:40])
    return dst


@pytest.fixture
def tars(tmp_path: Path) -> Path:
    d = tmp_path / "tars"
    d.mkdir(mode=0o700)
    return d


def _cases(d: Path) -> list[tuple[Path, str]]:
    gz = _tar(d / "good.tgz", compress="gz")
    xz = _tar(d / "good.txz", compress="xz")
    bz = _tar(d / "good.tbz", compress="bz2")
    plain = _tar(d / "good.tar")
    head = f"jailctl: build: {d}/"
    return [
        (_damage(gz, d / "cut.tgz", "cut"), head + "cut.tgz: damaged tar archive (Compressed "
         "file ended before the end-of-stream marker was reached)"),
        (_damage(gz, d / "flip.tgz", "flip"), head + "flip.tgz: damaged tar archive (CRC check "
         "failed"),
        (_damage(xz, d / "cut.txz", "cut"), head + "cut.txz: damaged tar archive (Compressed "
         "file ended before the end-of-stream marker was reached)"),
        (_damage(xz, d / "flip.txz", "flip"), head + "flip.txz: damaged tar archive ("),
        (_damage(bz, d / "flip.tbz", "flip"), head + "flip.tbz: damaged "),
        (_damage(plain, d / "cut.tar", "cut"), head + "cut.tar: damaged tar archive (unexpected "
         "end of data)"),
        (d / "junk.xz", head + "junk.xz: damaged xz data"),
        # cut inside gzip's first block: tarfile.open raised EOFError (fuzzer, seed 409)
        (_short(gz, d / "short.tgz"), head + "short.tgz: damaged gzip data"),
        (d / "junk", head + "junk: not a tar archive"),
        (_tar(d / "neg.tar", uid=-2), head + "neg.tar: refusing unsafe entries: etc/data (uid "
         "-2 out of range)"),
        (_tar(d / "max.tar", gid=4294967295), head + "max.tar: refusing unsafe entries: "
         "etc/data (gid 4294967295 out of range)"),
        (_tar(d / "when.tar", mtime=10**30), head + "when.tar: refusing unsafe entries: "
         "etc/data (mtime 1e+30 out of range)"),
    ]


def test_damaged_or_hostile_tarballs_are_one_line_and_leave_nothing(tars: Path) -> None:
    (tars / "junk.xz").write_bytes(b"\xfd7zXZ\x00" + os.urandom(2000))
    (tars / "junk").write_bytes(os.urandom(2000))
    for archive, want in _cases(tars):
        target = tars / "new" / "root"
        r = run_b(b"jailctl", b"build", str(target).encode(), b"--from-tar",
                  str(archive).encode())
        assert r[0] == 1 and r[1] == b"", (archive, r)
        assert r[2].startswith(want.encode()) and r[2].count(b"\n") == 1, (archive, r)
        assert not (tars / "new").exists(), archive
        # an empty directory that was there stays, empty
        target.mkdir(parents=True)
        r = run_b(b"jailctl", b"build", str(target).encode(), b"--from-tar",
                  str(archive).encode())
        assert r[0] == 1 and r[2].startswith(want.encode()), (archive, r)
        assert os.listdir(target) == [], archive
        shutil.rmtree(tars / "new")


def test_a_newline_in_a_quoted_value_stays_one_line() -> None:
    """A value quoted in a message is shown with its control characters
    escaped (fuzzer, seed 409: `jexec $'\\n' ...` printed two lines)."""
    assert run_b(b"jexec", b"\n", b"/bin/true") == (
        1, b"", b"jexec: cannot parse jail id: \\012.\n")
    assert run_b(b"jexec", b"\x1b[2J", b"/bin/true") == (
        1, b"", b"jexec: cannot parse jail id: \\033[2J.\n")
    r = run_b(b"rctl", b"-n", b"\n:cputime")
    assert r[0] == 1 and r[2].count(b"\n") == 1 and b"\\012" in r[2], r


def test_rctl_numbers_of_5000_digits_are_one_line(tmp_path: Path) -> None:
    """int() refuses 4300 digits and more (fuzzer, seed 396: `rctl -u
    jail:000...1` was an internal error)."""
    env = {**ENV, b"LINJAIL_STATE_DIR": str(tmp_path).encode()}
    for args in ([b"-u", b"jail:" + b"0" * 5000 + b"1"],
                 [b"-a", b"jail:fz:memoryuse:deny=" + b"9" * 5000],
                 [b"-a", b"jail:fz:memoryuse:deny=" + b"9" * 5000 + b"k"],
                 [b"-l", b"process:" + b"9" * 5000]):
        r = run_b(b"rctl", *args, env=env)
        assert b"internal error" not in r[2] and r[2].count(b"\n") <= 1, (args, r)


def test_jail_conf_numbers_of_5000_digits_are_one_line(tmp_path: Path,
                                                       service_root: str) -> None:
    """jail.conf's numbers and numeric names went through int() unbounded
    (fuzzer, jail.conf entry: `jid = 999...;` was an internal error)."""
    env = {**ENV, b"LINJAIL_STATE_DIR": str(tmp_path / "state").encode()}
    big = b"9" * 5000
    conf = tmp_path / "jail.conf"
    conf.write_bytes(b'fz { path = "' + service_root.encode() + b'"; jid = ' + big +
                     b"; }\n" + b"0" * 5000 + b'1 { path = "/nonexistent"; }\n')
    for args in ([b"-c", b"fz"], [b"-c", b"0" * 5000 + b"1"], [b"-r", b"0" * 5000 + b"1"],
                 [b"-r", big]):
        r = run_b(b"jail", b"-f", str(conf).encode(), *args, env=env)
        assert r[0] != 0 and b"internal error" not in r[2] and r[2].count(b"\n") <= 1, \
            (args, r)


def test_a_build_whose_warning_cannot_be_written_is_done_or_undone(tars: Path) -> None:
    """Item 8: with stderr closed, the warning about device nodes (written
    after the extraction) raised AttributeError: status 1 'internal error',
    and the extracted target stayed.  Now a warning that cannot be written
    does not fail the build: status 0 and the root is there, or (stderr
    closed) nothing is said and the root is there — never both a failure
    and a target."""
    import io
    import sys
    import tarfile
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from stdio_states import run_with
    archive = tars / "dev.tar"
    with tarfile.open(archive, "w") as t:
        node = tarfile.TarInfo("dev/null")
        node.type = tarfile.CHRTYPE
        node.devmajor, node.devminor = 1, 3
        t.addfile(node)
        f = tarfile.TarInfo("etc/motd")
        f.size = 3
        t.addfile(f, io.BytesIO(b"hi\n"))
    for state in ("closed", "full", "epipe"):
        target = tars / f"root-{state}"
        o = run_with([cmd("jailctl"), "build", str(target), "--from-tar", str(archive)],
                     ("null", "pipe", state), env={"PATH": "/usr/bin:/bin"})
        assert o.rc == 0, (state, o)
        assert (target / "etc/motd").read_bytes() == b"hi\n"
        shutil.rmtree(target)
