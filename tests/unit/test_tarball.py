"""`jailctl build PATH --from-tar FILE` (roots/tarball.py) and `jailctl destroy`
(roots/destroy.py): hostile archives are refused before anything is made,
extraction never follows a symlink, and destroy never leaves PATH."""
from __future__ import annotations

import fcntl
import io
import os
import shutil
import stat
import struct
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from linjail.roots import destroy as destroy_mod
from linjail.cli.jailctl_build import running_roots
from linjail.roots.destroy import Target, destroy, mounts_at_or_below
from linjail.roots.tarball import _Extractor, build_from_tar, check_members
from linjail.errors import JailError

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="extracting owners and modes needs root")


def member(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", *,
           link: str = "", mode: int = 0o644, uid: int = 0, gid: int = 0,
           pax: dict[str, str] | None = None) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = mode
    info.uid, info.gid = uid, gid
    info.mtime = 1_700_000_000
    info.linkname = link
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    if pax:
        info.pax_headers = dict(pax)
    if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
        info.devmajor, info.devminor = 8, 0
    return info, data


def make_tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes]],
             mode: str = "w:gz") -> Path:
    with tarfile.open(path, mode, format=tarfile.PAX_FORMAT) as tf:
        for info, data in members:
            tf.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return path


HOSTILE = [
    member("etc/", tarfile.DIRTYPE, mode=0o755),
    member("../escape", data=b"x"),
    member("/etc/cron.d/evil", data=b"x"),
    member("ok/../../climb", data=b"x"),
    member("shadow", tarfile.LNKTYPE, link="../../etc/shadow"),
    member("passwd", tarfile.LNKTYPE, link="/etc/passwd"),
    member("evil", tarfile.SYMTYPE, link="/etc"),
    member("evil/passwd", data=b"root::0:0::/:/bin/sh\n"),
    member("later", tarfile.LNKTYPE, link="etc/notyet"),
]


def test_check_names_every_offender() -> None:
    checked = check_members(info for info, _ in HOSTILE)
    assert checked.refused == (
        "../escape (name escapes PATH)",
        "/etc/cron.d/evil (absolute name)",
        "ok/../../climb (name escapes PATH)",
        "shadow (hard link to ../../etc/shadow outside PATH)",
        "passwd (hard link to /etc/passwd outside PATH)",
        "evil/passwd (goes through the symbolic link evil)",
        "later (hard link to etc/notyet, not a file extracted before it)",
    )


def test_check_accepts_a_normal_root() -> None:
    checked = check_members(info for info, _ in [
        member("./", tarfile.DIRTYPE), member("./bin", tarfile.SYMTYPE, link="usr/bin"),
        member("./usr/bin/dash", data=b"\x7fELF", mode=0o755),
        member("./usr/bin/sh", tarfile.SYMTYPE, link="/usr/bin/dash"),
        member("./usr/bin/sh2", tarfile.LNKTYPE, link="./usr/bin/dash"),
        member("./dev/null", tarfile.CHRTYPE), member("./dev/sda", tarfile.BLKTYPE),
        member("./run/fifo", tarfile.FIFOTYPE),
    ])
    assert checked.refused == ()
    assert checked.devices == ("./dev/null", "./dev/sda")


def test_check_symlink_replaced_by_a_file_or_through_a_file() -> None:
    checked = check_members(info for info, _ in [
        member("a", tarfile.SYMTYPE, link="/"), member("a", data=b"now a file"),
        member("a/b", data=b"x"),                    # through a file
        member("d/x", data=b"x"), member("d", data=b"replaces an implicit directory"),
    ])
    assert checked.refused == ("a/b (goes through the file a)", "d (replaces a directory)")


def test_hostile_archive_is_refused_and_nothing_is_made(tmp_path: Path) -> None:
    archive = make_tar(tmp_path / "evil.tar.gz", HOSTILE)
    target = tmp_path / "jails" / "evil"
    with pytest.raises(JailError) as err:
        build_from_tar(str(target), str(archive))
    assert err.value.message == (
        f"build: {archive}: refusing unsafe entries: ../escape (name escapes PATH), "
        "/etc/cron.d/evil (absolute name), ok/../../climb (name escapes PATH), "
        "shadow (hard link to ../../etc/shadow outside PATH), "
        "passwd (hard link to /etc/passwd outside PATH) and 2 more")
    assert not (tmp_path / "jails").exists()


def test_not_a_tar_and_missing_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive" * 100)
    with pytest.raises(JailError, match=r"^build: .*junk.tar: not a tar archive"):
        build_from_tar(str(tmp_path / "j"), str(junk))
    with pytest.raises(JailError, match=r"^build: .*nothere.tar: No such file or directory$"):
        build_from_tar(str(tmp_path / "j"), str(tmp_path / "nothere.tar"))
    assert not (tmp_path / "j").exists()


@pytest.fixture
def jails(tmp_path: Path) -> Iterator[Path]:
    parent = tmp_path / "jails"
    yield parent
    for point in mounts_at_or_below(str(parent)):
        subprocess.run(["umount", "-l", point], check=False)
    shutil.rmtree(parent, ignore_errors=True)


@root_only
def test_extraction_keeps_what_a_root_needs(tmp_path: Path, jails: Path) -> None:
    cap = "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
    archive = make_tar(tmp_path / "root.tar.xz", [
        member("./", tarfile.DIRTYPE, mode=0o755),
        member("./usr/bin/tool", data=b"#!/bin/sh\necho hi\n", mode=0o4755, uid=0, gid=0),
        member("./usr/bin/ping", data=b"ping", mode=0o755,
               pax={"SCHILY.xattr.security.capability": cap,
                    "SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
        member("./usr/bin/tool2", tarfile.LNKTYPE, link="./usr/bin/tool"),
        member("./bin", tarfile.SYMTYPE, link="usr/bin"),
        member("./etc/alt", tarfile.SYMTYPE, link="/usr/bin/tool"),
        member("./srv/ro", tarfile.DIRTYPE, mode=0o555, uid=33, gid=33),
        member("./srv/ro/inside", data=b"made before its directory went read-only"),
        member("./run/fifo", tarfile.FIFOTYPE, mode=0o620),
        member("./dev/sda", tarfile.BLKTYPE), member("./dev/mem", tarfile.CHRTYPE),
        member("./home/u/file", data=b"owned", uid=1000, gid=1000, mode=0o600),
    ], mode="w:xz")
    messages: list[str] = []
    root = Path(build_from_tar(str(jails / "tar"), str(archive), messages.append))
    assert root == jails / "tar"
    assert messages == ["build: warning: 2 device node(s) not created (the jail gets its "
                        "own /dev): ./dev/sda, ./dev/mem"]
    assert stat.S_IMODE((jails).stat().st_mode) == 0o700       # parents: 0700
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    tool = root / "usr/bin/tool"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755        # set-id bits kept
    assert tool.stat().st_ino == (root / "usr/bin/tool2").stat().st_ino
    assert os.readlink(root / "etc/alt") == "/usr/bin/tool"   # absolute: kept as is
    assert os.readlink(root / "bin") == "usr/bin"
    assert os.getxattr(root / "usr/bin/ping", "security.capability") == \
        cap.encode("latin-1")
    with pytest.raises(OSError):
        os.getxattr(root / "usr/bin/ping", "trusted.overlay.redirect")
    ro = (root / "srv/ro").stat()
    assert (stat.S_IMODE(ro.st_mode), ro.st_uid, ro.st_gid) == (0o555, 33, 33)
    assert int(ro.st_mtime) == 1_700_000_000
    assert (root / "srv/ro/inside").read_bytes() == b"made before its directory went read-only"
    assert stat.S_ISFIFO((root / "run/fifo").lstat().st_mode)
    assert sorted(os.listdir(root / "dev")) == []             # no device nodes
    assert (root / "proc").is_dir()                            # made for `jail`
    home = (root / "home/u/file").stat()
    assert (home.st_uid, home.st_gid, stat.S_IMODE(home.st_mode)) == (1000, 1000, 0o600)


@root_only
def test_extraction_never_follows_a_symlink(tmp_path: Path, jails: Path) -> None:
    """Defence in depth: even if the check missed it, the writer refuses."""
    outside = tmp_path / "outside"
    outside.mkdir()
    archive = make_tar(tmp_path / "a.tar", [member("evil/passwd", data=b"pwned")], "w")
    with Target(str(jails / "r")) as t:
        os.symlink(str(outside), os.path.join(t.root, "evil"))
        with tarfile.open(archive) as tf, pytest.raises(JailError) as err:
            _Extractor(t.root, tf, str(archive)).run(tf.getmembers())
    assert err.value.message == (f"build: {t.root}/evil/passwd: a symbolic link or file on "
                                 "the way; refusing to write through it")
    assert os.listdir(outside) == []


@root_only
def test_non_empty_target_is_refused(tmp_path: Path, jails: Path) -> None:
    archive = make_tar(tmp_path / "a.tar", [member("etc/hostname", data=b"x\n")], "w")
    (jails / "full").mkdir(parents=True)
    (jails / "full" / "keep").write_text("mine")
    with pytest.raises(JailError, match=r"^build: .*/full: directory exists and is not empty$"):
        build_from_tar(str(jails / "full"), str(archive))
    assert os.listdir(jails / "full") == ["keep"]
    os.symlink("full", jails / "link")
    with pytest.raises(JailError, match=r"^build: .*/link: is a symbolic link$"):
        build_from_tar(str(jails / "link"), str(archive))


@root_only
def test_failure_midway_removes_the_tree(tmp_path: Path, jails: Path) -> None:
    """A member the kernel refuses (a name component over 255 bytes) after
    others were written: the half-built tree and the parents go."""
    long_name = "etc/" + "x" * 300
    archive = make_tar(tmp_path / "mid.tar", [member("etc/a", data=b"a" * 100_000),
                                              member(long_name, data=b"b")], "w")
    with pytest.raises(JailError) as err:
        build_from_tar(str(jails / "mid"), str(archive))
    assert err.value.message == f"build: {jails}/mid/{long_name}: File name too long"
    assert not jails.exists()
    # a damaged archive is caught while reading its headers, before anything is made
    data = archive.read_bytes()
    cut = tmp_path / "cut.tar"
    cut.write_bytes(data[:512 + 50_000])
    with pytest.raises(JailError, match=r"^build: .*cut.tar: damaged tar archive \("):
        build_from_tar(str(jails / "cut"), str(cut))
    assert not jails.exists()


# --- jailctl destroy ------------------------------------------------------------


def _chattr_immutable(path: Path) -> bool:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        flags = struct.unpack("l", fcntl.ioctl(fd, destroy_mod.FS_IOC_GETFLAGS,
                                               struct.pack("l", 0)))[0]
        fcntl.ioctl(fd, destroy_mod.FS_IOC_SETFLAGS,
                    struct.pack("l", flags | destroy_mod.FS_IMMUTABLE_FL))
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


@root_only
def test_destroy_unmounts_and_never_follows_symlinks(tmp_path: Path, jails: Path) -> None:
    archive = make_tar(tmp_path / "r.tar", [member("etc/hostname", data=b"r\n"),
                                            member("mnt/", tarfile.DIRTYPE, mode=0o755)], "w")
    root = Path(build_from_tar(str(jails / "r"), str(archive)))
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data").write_text("keep me")
    os.symlink(str(precious), root / "etc" / "link-out")           # planted by jailed root
    os.symlink(str(precious / "data"), root / "data-link")
    # chattr +i (chflags_allowed=1 lets jailed root do it): destroy clears it
    immutable = _chattr_immutable(root / "etc" / "hostname")
    # a bind mount left below the root (an old chroot session, a hand-made fstab)
    subprocess.run(["mount", "--bind", str(precious), str(root / "mnt")], check=True)
    messages: list[str] = []
    try:
        destroy(str(root), running_roots, messages.append)
    finally:
        if mounts_at_or_below(str(root)):
            subprocess.run(["umount", "-l", str(root / "mnt")], check=False)
    assert not root.exists()
    assert messages == [f"destroy: unmounted {root}/mnt"]
    assert (precious / "data").read_text() == "keep me"
    if not immutable:
        pytest.skip("this file system has no immutable flag; the rest was checked")


@root_only
def test_destroy_refuses(tmp_path: Path, jails: Path) -> None:
    jails.mkdir()
    notjail = jails / "notjail"
    (notjail / "stuff").mkdir(parents=True)
    cases = {
        "/": "destroy: /: refusing to remove a top-level directory",
        "/usr": "destroy: /usr: refusing to remove a top-level directory",
        str(notjail): f"destroy: {notjail}: does not look like a jail root (no etc/); "
                      "not removing it",
        str(jails / "missing"): f"destroy: {jails}/missing: No such file or directory",
    }
    os.symlink(str(notjail), jails / "link")
    cases[str(jails / "link")] = (f"destroy: {jails}/link: is a symbolic link; give the "
                                  "jail's real path")
    (jails / "file").write_text("x")
    cases[str(jails / "file")] = f"destroy: {jails}/file: Not a directory"
    for path, message in cases.items():
        with pytest.raises(JailError) as err:
            destroy(path, running_roots)
        assert err.value.message == message
    assert (notjail / "stuff").is_dir()
    mp = jails / "mp"
    (mp / "etc").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mp)], check=True)
    try:
        os.mkdir(mp / "etc")
        with pytest.raises(JailError, match=r"is a mount point; unmount it first$"):
            destroy(str(mp), running_roots)
        assert (mp / "etc").is_dir()
    finally:
        subprocess.run(["umount", str(mp)], check=True)


@root_only
def test_cli_lines_and_status(tmp_path: Path, jails: Path, capsys: pytest.CaptureFixture[str]
                              ) -> None:
    from linjail.cli.jailctl import main
    archive = make_tar(tmp_path / "evil.tar", HOSTILE[:2], "w")
    assert main(["build", str(jails / "x"), "--from-tar", str(archive)]) == 1
    out, err = capsys.readouterr()
    assert (out, err) == ("", f"jailctl: build: {archive}: refusing unsafe entries: "
                              "../escape (name escapes PATH)\n")
    good = make_tar(tmp_path / "good.tar", [member("etc/hostname", data=b"g\n")], "w")
    assert main(["build", str(jails / "g"), "--from-tar", str(good)]) == 0
    assert main(["destroy", str(jails / "g")]) == 0
    assert not (jails / "g").exists()
    assert capsys.readouterr() == ("", "")
    assert main(["build", str(jails / "g"), "--from-tar"]) == 1      # usage
    assert main(["destroy"]) == 1
    out, err = capsys.readouterr()
    assert err.startswith("usage: jailctl build PATH --service")
