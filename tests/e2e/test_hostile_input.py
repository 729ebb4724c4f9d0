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

from conftest import Jails, cmd, needs_root

pytestmark = needs_root
BB = b"/usr/bin/busybox"
BAD = b"\xff\xfe"          # not UTF-8
ENV = {b"PATH": b"/usr/bin:/bin", b"LANG": b"C"}


def run_b(*argv: bytes, env: dict[bytes, bytes] | None = None,
          cwd: str | None = None) -> tuple[int, bytes, bytes]:
    """A command with bytes arguments (argv on Linux is bytes)."""
    name = argv[0].decode()
    argv0 = cmd(name).encode() if name in ("jail", "jls", "jexec", "jailctl") else argv[0]
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
