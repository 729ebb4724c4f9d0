"""The one atomic write (fsutil.py) and the one mountinfo reader
(kernel/mountinfo.py), without root."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from linjail.confine import cglayout
from linjail.fsutil import atomic_write
from linjail.kernel import mountinfo
from linjail.roots.destroy import mounts_at_or_below

LINES = (
    "22 1 0:21 / /proc rw,nosuid - proc proc rw\n"
    "30 22 0:26 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw,nsdelegate\n"
    "31 22 0:27 / /sys/fs/cgroup/cpu\\040and\\040acct rw - cgroup cgroup rw,cpu,cpuacct\n"
    "40 1 0:40 / /srv/jail\\040one/dev rw shared:5 - tmpfs tmpfs rw\n"
    "41 1 0:41 / /srv/back\\134slash\\011tab rw - tmpfs tmpfs rw\n"
    "short line\n"
)


def test_mountinfo_fields_and_octal_escapes() -> None:
    mounts = mountinfo.parse(LINES)
    assert [(m.point, m.fstype, m.super_options) for m in mounts] == [
        ("/proc", "proc", "rw"),
        ("/sys/fs/cgroup/unified", "cgroup2", "rw,nsdelegate"),
        ("/sys/fs/cgroup/cpu and acct", "cgroup", "rw,cpu,cpuacct"),
        ("/srv/jail one/dev", "tmpfs", "rw"),
        ("/srv/back\\slash\ttab", "tmpfs", "rw"),
    ]
    assert mountinfo.unescape("a\\040b\\9999\\") == "a b\\9999\\"


def test_both_readers_see_unescaped_paths() -> None:
    assert cglayout.parse_mountinfo(LINES) == (
        "/sys/fs/cgroup/unified", {"cpu": "/sys/fs/cgroup/cpu and acct",
                                   "cpuacct": "/sys/fs/cgroup/cpu and acct"})
    assert mounts_at_or_below("/srv/jail one", LINES) == ["/srv/jail one/dev"]


def test_the_host_mountinfo_has_a_root() -> None:
    assert any(m.point == "/" for m in mountinfo.read())


def test_atomic_write_replaces_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"old")
    atomic_write(str(path), b"new" * 100000, mode=0o640)
    assert path.read_bytes() == b"new" * 100000
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert os.listdir(tmp_path) == ["f"]


def test_atomic_write_never_writes_through_a_planted_tmp(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    tmp = tmp_path / f"f.{os.getpid()}.tmp"
    tmp.symlink_to(victim)             # a leftover name, or a planted one
    atomic_write(str(tmp_path / "f"), b"data", durable=True)
    assert victim.read_bytes() == b"keep"
    assert (tmp_path / "f").read_bytes() == b"data"
    assert sorted(os.listdir(tmp_path)) == ["f", "victim"]


def test_atomic_write_relative_to_a_directory(tmp_path: Path) -> None:
    dfd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        atomic_write("g", b"x", mode=0o600, dir_fd=dfd, durable=True)
    finally:
        os.close(dfd)
    assert (tmp_path / "g").read_bytes() == b"x"


def test_atomic_write_failure_leaves_no_tmp(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "inside").write_bytes(b"")
    with pytest.raises(OSError):
        atomic_write(str(tmp_path / "d"), b"x")     # a non-empty directory at PATH
    assert os.listdir(tmp_path) == ["d"]
