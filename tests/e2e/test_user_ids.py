"""A user asked for is that user or a refusal, never root (issue 16, item 5).

`jail -U neg` with `neg:x:-1:-1::/:/bin/sh` in the jail's etc/passwd ran the
command as uid 0: (uid_t)-1 means "unchanged" to the set*id calls and was
the reaper's "no user".  Every id that is negative, 4294967295, not plain
decimal digits or out of range is refused in one line, for `jail -U`,
`jexec -U`, rc.conf's jail_NAME_flags, and `-u` (the host's passwd).
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import pytest

from conftest import HOST_PATH, Jails, build_service_root, needs_root, run

pytestmark = needs_root
BB = "/usr/bin/busybox"
PROBE = f"{BB} id -u; {BB} id -g"

# name -> (uid field, gid field, the refusal)
BAD = {
    "neg": ("-1", "-1", "invalid user id"),
    "max": ("4294967295", "0", "invalid user id"),
    "over": ("4294967296", "0", "invalid user id"),
    "big": ("99999999999", "0", "invalid user id"),
    "huge": ("9" * 5000, "0", "invalid user id"),
    "word": ("abc", "0", "invalid user id"),
    "empty": ("", "0", "invalid user id"),
    "plus": ("+5", "5", "invalid user id"),
    "space": (" 5", "5", "invalid user id"),
    "under": ("1_000", "0", "invalid user id"),
    "arabic": ("\u0665", "0", "invalid user id"),
    "gneg": ("1000", "-1", "invalid group id"),
    "gmax": ("1000", "4294967295", "invalid group id"),
    "gword": ("1000", "x", "invalid group id"),
}


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    base = tempfile.mkdtemp(prefix="linjail-ids-", dir="/var/tmp")
    os.chmod(base, 0o700)
    path = os.path.join(base, "r")
    try:
        build_service_root(path)
        with open(os.path.join(path, "etc/passwd"), "a") as f:
            for name, (uid, gid, _) in BAD.items():
                f.write(f"{name}:x:{uid}:{gid}::/:/bin/sh\n")
            f.write("good:x:1234:1235::/:/bin/sh\n")
        with open(os.path.join(path, "etc/group"), "a") as f:
            # a supplementary group with a bad gid is skipped, not used
            f.write("badgroup:x:-1:good\n")
        yield path
    finally:
        import shutil
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.parametrize("name", sorted(BAD))
def test_jail_refuses_a_bad_id(root: str, name: str) -> None:
    r = run("jail", "-U", name, root, "h", "", "/bin/sh", "-c", PROBE)
    assert (r.rc, r.out, r.err) == (1, "", f"jail: {name}: {BAD[name][2]}\n")


def test_jail_runs_a_good_user_as_that_user(root: str) -> None:
    r = run("jail", "-U", "good", root, "h", "", "/bin/sh", "-c",
            PROBE + f"; {BB} id -G")
    assert (r.rc, r.out, r.err) == (0, "1234\n1235\n1235\n", "")


def test_jexec_refuses_a_bad_id(root: str, jails: Jails) -> None:
    jid = jails.start(root, "ids", "", "/bin/sh", "-c",
                      f"{BB} sleep 600 </dev/null >/dev/null 2>&1 &")
    for name, (_, _, why) in BAD.items():
        r = run("jexec", "-U", name, str(jid), "/bin/sh", "-c", PROBE)
        assert (r.rc, r.out, r.err) == (1, "", f"jexec: {name}: {why}\n"), name
    r = run("jexec", "-U", "good", str(jid), "/bin/sh", "-c", PROBE)
    assert (r.rc, r.out, r.err) == (0, "1234\n1235\n", "")


def test_rc_conf_flags_refuse_a_bad_id(root: str, tmp_path: Path) -> None:
    conf = tmp_path / "rc.conf"
    conf.write_text(f'jail_list="neg"\njail_neg_rootdir="{root}"\n'
                    'jail_neg_hostname="neg.example.org"\njail_neg_ip="198.51.100.171"\n'
                    'jail_neg_flags="-U neg"\n'
                    f'jail_neg_exec_start="/bin/sh -c \'{PROBE}\'"\n'
                    f'jail_neg_consolelog="{tmp_path}/console.log"\n')
    varrun = tmp_path / "run"
    varrun.mkdir()
    env = {"PATH": HOST_PATH, "LANG": "C", "LINJAIL_VARRUN": str(varrun)}
    r = run("jailctl", "start", "-f", str(conf), "neg", env=env)
    assert (r.rc, r.out, r.err) == (1, "Default global settings for jails:.\nStarting jails:"
                                    " cannot start jail \"neg\": neg: invalid user id\n.\n", "")
    log = tmp_path / "console.log"
    assert not log.exists() or "0\n" not in log.read_text()
    assert os.listdir(varrun) == []


def test_the_host_passwd_is_checked_too(monkeypatch: pytest.MonkeyPatch,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """`-u`: NSS hands back whatever /etc/passwd says (glibc reads -1 as
    4294967295); such a user is refused, not run as root — by the one spec
    builder, for jail(8) and for rc.conf's jail_NAME_flags alike."""
    import pwd
    from linjail.cli import jail as jail_cli
    from linjail.config.jails import RcVars, StartFailure, build_spec, resolve
    from linjail.model import Knobs
    fake = pwd.struct_passwd(("neg", "x", 4294967295, 0, "", "/", "/bin/sh"))
    monkeypatch.setattr(pwd, "getpwnam", lambda name: fake)
    monkeypatch.setattr(os, "getgrouplist", lambda name, gid: [gid])
    assert jail_cli.main(["-u", "neg", "/", "h", "", "/bin/true"]) == 1
    assert capsys.readouterr().err == "jail: neg: invalid user id\n"
    cfg = resolve(RcVars({"jail_neg_rootdir": "/", "jail_neg_hostname": "h",
                          "jail_neg_ip": "198.51.100.171", "jail_neg_flags": "-u neg"}),
                  "neg", print)
    with pytest.raises(StartFailure) as err2:
        build_spec(cfg, root="/", knobs=Knobs(), mounts=())
    assert str(err2.value) == "neg: invalid user id"
