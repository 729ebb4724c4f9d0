"""state/hostfile.py: files the host writes for a jail (issue 9, 5; issue 16, 13)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from linjail.state.hostfile import HostFileError, open_host_file


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    (tmp_path / "jail/var/log").mkdir(parents=True)
    (tmp_path / "host").mkdir()
    return tmp_path


def opened(path: str | Path, trees: tuple[str, ...], **kw: bool) -> str:
    try:
        f = open_host_file(str(path), trees, **kw)
    except HostFileError as e:
        return e.message
    os.write(f.fd, b"x")
    f.close()
    return "ok"


def test_inside_and_outside(tree: Path) -> None:
    trees = (str(tree / "jail"),)
    assert opened(tree / "jail/var/log/c.log", trees) == "ok"
    assert opened(tree / "host/c.log", trees) == "ok"
    (tree / "link").symlink_to(tree / "jail")          # the host's own symlink: followed
    assert opened(tree / "link/var/log/d.log", trees) == "ok"
    assert (tree / "jail/var/log/d.log").read_bytes() == b"x"


def test_dot_dot_out_of_the_tree(tree: Path) -> None:
    trees = (str(tree / "jail"),)
    path = f"{tree}/jail/var/log/../../../host/x.log"
    assert opened(path, trees) == f"{path}: leads out of the jail's tree {tree}/jail"
    assert opened(f"{tree}/host/../host/y.log", trees) == "ok"
    assert not (tree / "host/x.log").exists()


def test_relative_path(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tree)
    (tree / "jail/var/tmp").symlink_to(tree / "host")
    trees = (str(tree / "jail"),)
    assert opened("jail/var/tmp/x.log", trees) == f"{tree}/jail/var/tmp is a symbolic link"
    assert opened("host/x.log", trees) == "ok"


def test_created_and_removed_only_if_empty_and_ours(tree: Path) -> None:
    trees = (str(tree / "jail"),)
    path = tree / "jail/var/log/c.log"
    f = open_host_file(str(path), trees)
    assert f.created
    path.rename(tree / "jail/var/log/moved")
    path.write_text("someone else's")
    f.remove_if_empty()                  # not the file we made any more: kept
    assert path.read_text() == "someone else's"
    f.close()
    path.unlink()
    f = open_host_file(str(path), trees)
    f.remove_if_empty()
    assert not path.exists()
    f.close()
    path.write_text("")
    f = open_host_file(str(path), trees)
    assert not f.created
    f.remove_if_empty()                  # it was there before: kept
    assert path.exists()
    f.close()


@pytest.mark.parametrize("path, why", [
    ("/", "/: Is a directory"), ("{t}/host/", "{t}/host/: Is a directory"),
    ("{t}/host/..", "{t}/host/..: Is a directory"),
    ("{t}/nope/x", "{t}/nope/x: No such file or directory"),
    ("{t}/host/f/x", "{t}/host/f/x: Not a directory"),
])
def test_bad_paths(tree: Path, path: str, why: str) -> None:
    (tree / "host/f").write_text("")
    assert opened(path.format(t=tree), ()) == why.format(t=tree)
