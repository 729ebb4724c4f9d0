"""Thin jails (roots/thin.py): many jails on one read-only base through
overlayfs, assembled inside each jail's mount namespace at start.

The base is a service jail (roots/service.py: no network needed).  The jails
are started through the library as `jail` does, with JailSpec.overlay =
overlay_for(PATH): the lead wires that call into `jail` and rc.conf starts.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from linjail.cli.jailctl_build import running_roots
from linjail.roots.destroy import destroy, mounts_at_or_below
from linjail.roots.thin import build_thin
from linjail.thinroot import layer_path, marker_path, overlay_for
from linjail.errors import JailError
from linjail.model import JailSpec, Knobs

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="thin jails need root"),
]
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PROGRAMS = ["sh", "cat", "ls", "rm", "sleep", "mkdir"]


@dataclass
class Jails:
    parent: Path
    base: Path
    jids: list[int]
    unprivileged_root: int = 1      # issue 11: an overlay of idmapped layers, or not


@pytest.fixture
def jails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, root_mode: int) -> Iterator[Jails]:
    from linjail.roots.service import build_service
    monkeypatch.setenv("PATH", SYSTEM_PATH)
    parent = tmp_path / "jails"
    base = parent / "base"
    build_service(str(base), PROGRAMS)
    (base / "etc" / "motd").write_text("from the base\n")
    made = Jails(parent, base, [], root_mode)
    yield made
    from linjail.lifecycle.remove import remove_jail
    for jid in made.jids:
        try:
            remove_jail(jid, 0.2)
        except JailError:
            pass   # already gone
    for point in mounts_at_or_below(str(parent)):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(parent, ignore_errors=True)


def run(j: Jails, path: Path, script: str) -> tuple[int, str]:
    """Run script in the thin jail at path, as `jail PATH thin.test "" /bin/sh -c`."""
    from linjail.lifecycle.start import run_jail
    spec = JailSpec(path=os.path.realpath(path), hostname="thin.test", ips=(),
                    command=("/bin/sh", "-c", script), overlay=overlay_for(str(path)),
                    knobs=Knobs(unprivileged_root=j.unprivileged_root))
    r, w = os.pipe()
    null = os.open(os.devnull, os.O_RDONLY)
    try:
        status = run_jail(spec, stdin=null, stdout=w, stderr=w, on_jid=j.jids.append)
    finally:
        os.close(w)
        os.close(null)
    with os.fdopen(r) as f:
        return status, f.read()


def test_two_thin_jails_share_the_base_and_nothing_else(jails: Jails) -> None:
    a = Path(build_thin(str(jails.parent / "a"), str(jails.base)))
    b = Path(build_thin(str(jails.parent / "b"), str(jails.base)))
    assert overlay_for(str(a)) == (str(jails.base), str(a) + ".layer")
    # the thin jail's root is an empty directory on the host: nothing is mounted
    assert os.listdir(a) == [] and mounts_at_or_below(str(jails.parent)) == []

    status, out = run(jails, a, "cat /etc/motd; echo a > /root/mine; echo changed > /etc/motd;"
                                " rm /etc/group; mkdir /srv; echo a > /srv/new; ls /root")
    assert (status, out) == (0, "from the base\nmine\n")
    status, out = run(jails, b, "cat /etc/motd; ls /root; ls /etc; test -e /srv || echo no-srv")
    assert status == 0
    assert out.startswith("from the base\n") and out.endswith("no-srv\n")
    assert "mine" not in out and "group" in out.split()
    # a's changes live on in its own layer, at its next start
    status, out = run(jails, a, "cat /etc/motd /root/mine /srv/new; ls /etc")
    assert status == 0 and out.startswith("changed\na\na\n") and "group" not in out.split()
    # the base never changed; a's upper layer holds a's writes (and a whiteout)
    assert (jails.base / "etc" / "motd").read_text() == "from the base\n"
    assert (jails.base / "etc" / "group").exists()
    assert not (jails.base / "root" / "mine").exists() and not (jails.base / "srv").exists()
    upper = Path(layer_path(str(a))) / "upper"
    assert (upper / "root" / "mine").read_text() == "a\n"
    # ordinary owners on disk with either setting (issue 11): jailed root's is 0
    assert ((upper / "root" / "mine").stat().st_uid, (upper / "srv").stat().st_uid) == (0, 0)
    assert stat.S_ISCHR((upper / "etc" / "group").lstat().st_mode)   # overlayfs whiteout
    assert not (Path(layer_path(str(b))) / "upper" / "root" / "mine").exists()
    assert mounts_at_or_below(str(jails.parent)) == []


def test_many_thin_jails_live_at_once_with_nothing_on_the_host(jails: Jails) -> None:
    from linjail.state import registry
    roots = [Path(build_thin(str(jails.parent / f"t{i}"), str(jails.base))) for i in range(3)]
    for i, root in enumerate(roots):
        # the command leaves a process behind: the jail lives on (the /etc/rc case)
        status, out = run(jails, root, f"echo {i} > /root/id; "
                                       "sleep 30 >/dev/null 2>&1 & echo started")
        assert (status, out) == (0, "started\n")
    live = {rec.jid: rec for rec in registry.live_jails()}
    assert all(jid in live for jid in jails.jids)
    assert [live[jid].path for jid in jails.jids] == [str(r) for r in roots]
    # while they run: no overlay (or anything) mounted in the host's namespace
    assert mounts_at_or_below(str(jails.parent)) == []
    for i, root in enumerate(roots):
        assert (Path(layer_path(str(root))) / "upper/root/id").read_text() == f"{i}\n"
    # destroy refuses running thin jails, and their base, naming the JID
    with pytest.raises(JailError) as err:
        destroy(str(roots[0]), running_roots)
    assert err.value.message == (f"destroy: {roots[0]}: jail {jails.jids[0]} is running in "
                                 "it; stop it first")
    with pytest.raises(JailError) as err:
        destroy(str(jails.base), running_roots)
    assert err.value.message == (f"destroy: {jails.base}: jail {jails.jids[0]} ({roots[0]}) "
                                 "is a thin jail on it; stop it first")
    from linjail.lifecycle.remove import remove_jail
    for jid in jails.jids:
        remove_jail(jid, 0.2)
    jails.jids.clear()
    for root in roots:
        destroy(str(root), running_roots)
        assert not root.exists() and not os.path.lexists(layer_path(str(root)))
        assert not os.path.lexists(marker_path(str(root)))
    assert (jails.base / "etc" / "motd").exists()


def test_bad_bases_and_targets_leave_nothing(jails: Jails) -> None:
    p = jails.parent
    thin = build_thin(str(p / "thin"), str(jails.base))
    (p / "noetc").mkdir()
    (p / "full").mkdir()
    (p / "full" / "x").write_text("x")
    (p / "busy.layer").mkdir()
    cases = [
        (p / "t", p / "missing", f"build: --thin {p}/missing: No such file or directory"),
        (p / "t", Path(thin), f"build: --thin {thin}: is itself a thin jail; use a complete "
                              "or service jail as the base"),
        (p / "t", p / "noetc", f"build: --thin {p}/noetc: not a jail root (no etc/ directory)"),
        (p / "t", Path("/"), "build: --thin /: the host's root cannot be a base"),
        (p / "full", jails.base, f"build: {p}/full: directory exists and is not empty"),
        (p / "busy", jails.base, f"build: {p}/busy.layer: exists (left by another jail?); "
                                 "remove it or choose another path"),
        (jails.base / "srv" / "in", jails.base,
         f"build: {jails.base}/srv/in: a thin jail cannot be inside its base {jails.base} "
         "or contain it"),
        (p / "a,b", jails.base, f"build: {p}/a,b: overlayfs cannot take a path with ','"),
    ]
    before = sorted(os.listdir(p))
    for path, base, message in cases:
        with pytest.raises(JailError) as err:
            build_thin(str(path), str(base))
        assert err.value.message == message
    assert sorted(os.listdir(p)) == before
    assert not (jails.base / "srv").exists()


def test_overlay_for_refuses_unsafe_or_broken_descriptions(jails: Jails) -> None:
    root = Path(build_thin(str(jails.parent / "d"), str(jails.base)))
    marker = Path(marker_path(str(root)))
    good = marker.read_text()
    assert overlay_for(str(jails.base)) is None          # not a thin jail
    assert json.loads(good) == {"base": str(jails.base), "top": str(root) + ".layer"}

    def refused(text: str | None, mode: int = 0o644, uid: int = 0) -> str:
        if text is not None:
            marker.unlink()
            marker.write_text(text)
        os.chmod(marker, mode)
        os.chown(marker, uid, 0)
        with pytest.raises(JailError) as err:
            overlay_for(str(root))
        return err.value.message

    m = str(marker)
    assert refused(None, 0o666) == f"{m}: must be owned by root and writable by root only"
    assert refused(None, 0o644, 1000) == f"{m}: must be owned by root and writable by root only"
    assert refused("{not json").startswith(f"{m}: not a thin-jail description")
    assert refused('{"base": 1, "top": "x"}').startswith(f"{m}: not a thin-jail description")
    assert refused(json.dumps({"base": str(jails.base), "top": "/elsewhere"})) == \
        f"{m}: top /elsewhere is not {root}.layer"
    assert refused(json.dumps({"base": "relative", "top": str(root) + ".layer"})) == \
        f"{m}: base 'relative' is not an absolute, normalized path"
    assert refused(json.dumps({"base": "/a:b", "top": str(root) + ".layer"})) == \
        f"{m}: base /a:b: overlayfs cannot take a path with ':'"
    assert refused(json.dumps({"base": "/nonexistent", "top": str(root) + ".layer"})) == \
        f"{m}: base /nonexistent: missing, not a directory, or a symbolic link"
    marker.unlink()
    os.symlink("/etc/passwd", marker)
    assert refused(None) == f"{m}: is a symbolic link; refusing it"
    marker.unlink()
    marker.write_text(good)
    os.chmod(marker, 0o644)
    shutil.rmtree(Path(layer_path(str(root))) / "work")
    with pytest.raises(JailError, match=r": .*\.layer/work: missing or not a directory$"):
        overlay_for(str(root))
