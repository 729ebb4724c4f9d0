"""jailctl sysctl without root (SPEC §5): names, values, and what a write does,
against a private state directory (LINJAIL_STATE_DIR).

The one running jail these tests need is a record naming this very process
as the jail's PID 1, so it is live for as long as the test runs and nothing
of the host is ever reaped for it.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from linjail.cli import jailctl, jailctl_sysctl
from linjail.cli.jailctl_sysctl import _parse_name, _parse_value
from linjail.errors import JailError
from linjail.model import KNOB_DEFAULTS

KNOBS = list(KNOB_DEFAULTS)
JID = 424242


@pytest.mark.parametrize("name,parsed", [
    ("jail.set_hostname_allowed", ("defaults", None, "set_hostname_allowed")),
    ("jail.defaults.chflags_allowed", ("defaults", None, "chflags_allowed")),
    ("jail.7.enforce_statfs", ("jail", 7, "enforce_statfs")),
    ("jail.999999.allow_raw_sockets", ("jail", 999999, "allow_raw_sockets")),
    ("jail.jailed", ("jailed", None, "jailed")),
    ("jail.list", ("list", None, "list")),
    ("jail.7.vfs_mount_nullfs", ("jail", 7, "vfs_mount_nullfs")),
] + [(f"jail.{k}", ("defaults", None, k)) for k in KNOB_DEFAULTS])
def test_names(name: str, parsed: tuple[str, int | None, str]) -> None:
    assert _parse_name(name) == parsed


@pytest.mark.parametrize("name", [
    "", "jail", "jail.", "jail..chflags_allowed", "jail.nope", "jail.defaults",
    "jail.defaults.nope", "jail.defaults.jailed", "jail.7.jailed", "jail.7",
    "jail.7.chflags_allowed.x", "jail.defaults.7.chflags_allowed",
    "jail.-1.chflags_allowed", "jail.+7.chflags_allowed", "jail.07.chflags_allowed",
    "jail. 7.chflags_allowed", "jail.\u0667.chflags_allowed", "jail.7x.chflags_allowed",
    "Jail.chflags_allowed", "jail.Chflags_allowed", "jail.chflags_allowed ",
    "security.jail.chflags_allowed", "jail.jailed.x", "jail.defaults.list", "jail.7.list",
    "jail.list.x", "jail.List", "jail.vfs_mount_devfs", "jail.7.sys_set_hostname",
])
def test_unknown_names(name: str) -> None:
    with pytest.raises(JailError) as e:
        _parse_name(name)
    assert e.value.message == f"sysctl: unknown oid '{name}'"


@pytest.mark.parametrize("knob", KNOBS)
def test_values(knob: str) -> None:
    allowed = (0, 1, 2) if knob == "enforce_statfs" else (0, 1)
    for v in allowed:
        assert _parse_value(f"jail.{knob}", knob, str(v)) == v
    text = ", ".join(map(str, allowed))
    for bad in ("", " 1", "1 ", "+1", "-0", "01", "0_1", "1.0", "0x1", "yes", "true",
                "\u0661", str(len(allowed)), "-1", "99999999999999999999"):
        with pytest.raises(JailError) as e:
            _parse_value(f"jail.{knob}", knob, bad)
        assert e.value.message == (f"sysctl: jail.{knob}: invalid value '{bad}' "
                                   f"(allowed: {text})")


# -- the command, on a private state directory ---------------------------------------------

@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(jailctl_sysctl, "_jailed", lambda: 0)
    # jail.list asks the jail's UTS namespace as root; these jails are records only
    from linjail.confine import uts
    monkeypatch.setattr(uts, "current_hostname", lambda pid, fallback: fallback)
    return tmp_path


def sysctl(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    rc = jailctl.main(["sysctl", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def live_jail(jid: int = JID, hostname: str = "h", path: str = "/nonexistent",
              ips: list[str] | None = None, created: float = 0.0) -> None:
    """A record of a running jail whose PID 1 is this process."""
    from linjail.state import registry
    me = os.getpid()
    registry.write(registry.JailRecord(
        jid=jid, hostname=hostname, path=path, ips=ips or [], bootid=registry.boot_id(),
        owner_pid=me, owner_start=registry.starttime(me) or 0, pid=me,
        starttime=registry.starttime(me) or 0, state="running", knobs=dict(KNOB_DEFAULTS),
        created=created))


def test_listing(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    live_jail()
    rc, out, err = sysctl(capsys)
    assert (rc, err) == (0, "")
    lines = out.splitlines()
    n = len(KNOB_DEFAULTS)
    assert n == 10
    assert lines[:n + 2] == ([f"jail.{k}: {v}" for k, v in KNOB_DEFAULTS.items()]
                             + ["jail.jailed: 0", f"jail.list: {JID} h /nonexistent"])
    assert lines[n + 2:2 * n + 2] == [f"jail.defaults.{k}: {v}" for k, v in KNOB_DEFAULTS.items()]
    assert lines[2 * n + 2:] == [f"jail.{JID}.{k}: {v}" for k, v in KNOB_DEFAULTS.items()]


def test_listing_without_jails_has_no_jail_list(state: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    # sysctl(8) prints nothing for a zero-length string (show_var)
    rc, out, err = sysctl(capsys)
    assert (rc, err) == (0, "")
    assert "jail.list" not in out and "jail.jailed: 0\n" in out
    assert sysctl(capsys, "jail.list") == (0, "", "")


def test_jail_list_format(state: Path, capsys: pytest.CaptureFixture[str],
                          monkeypatch: pytest.MonkeyPatch) -> None:
    """kern_jail.c: "JID host path IP ...", newest first, addresses last given
    first, one line per jail, the value printed once after the name."""
    live_jail(JID, "www.example.org", "/srv/www", ["198.51.100.10", "2001:db8::1"], 100.0)
    live_jail(JID + 1, "bare", "/srv/bare", [], 200.0)
    live_jail(JID + 2, "evil\n1 forged /", "/srv/a b", ["198.51.100.11"], 300.0)
    assert sysctl(capsys, "jail.list", "jail.jailed") == (
        0, f"jail.list: {JID + 2} evil\\0121 forged / /srv/a b 198.51.100.11\n"
           f"{JID + 1} bare /srv/bare\n"
           f"{JID} www.example.org /srv/www 2001:db8::1 198.51.100.10\n"
           "jail.jailed: 0\n", "")
    # inside a jail DragonFly's handler returns nothing: nothing is printed
    monkeypatch.setattr(jailctl_sysctl, "_jailed", lambda: 1)
    assert sysctl(capsys, "jail.list") == (0, "", "")
    assert "jail.list" not in sysctl(capsys)[1]


@pytest.mark.parametrize("knob", ["vfs_mount_nullfs", "vfs_mount_tmpfs"])
def test_mount_knobs_warn_that_mounts_stay_denied(state: Path, knob: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    from linjail.state import knobs as knob_state
    from linjail.state import registry
    live_jail()
    why = ("mounts from inside a jail stay denied on Linux: a mount in the jail's namespace "
           "needs CAP_SYS_ADMIN, which would reopen the escapes linjail closes (jailctl(8))")
    for name in (f"jail.{knob}", f"jail.defaults.{knob}", f"jail.{JID}.{knob}"):
        old = "0" if name != f"jail.defaults.{knob}" else "1"
        assert sysctl(capsys, f"{name}=1") == (
            0, f"{name}: {old} -> 1\n", f"jailctl: sysctl: {name}: {why}\n")
        assert sysctl(capsys, name) == (0, f"{name}: 1\n", "")
    assert getattr(knob_state.get_defaults(), knob) == 1
    rec = registry.read(JID)
    assert rec is not None and rec.knobs[knob] == 1
    # back to 0: no warning (nothing is claimed)
    assert sysctl(capsys, f"jail.{knob}=0") == (0, f"jail.{knob}: 1 -> 0\n", "")
    assert sysctl(capsys, f"jail.{JID}.{knob}=0") == (0, f"jail.{JID}.{knob}: 1 -> 0\n", "")


def test_listen_override_is_accepted_silently(state: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """Each jail has its own network namespace: a wildcard bind never meets
    the host's listeners whatever the knob says (jailctl(8)); no note."""
    live_jail()
    assert sysctl(capsys, "jail.allow_listen_override") == (
        0, "jail.allow_listen_override: 0\n", "")
    assert sysctl(capsys, "jail.allow_listen_override=1",
                  f"jail.{JID}.allow_listen_override=1") == (
        0, f"jail.allow_listen_override: 0 -> 1\njail.{JID}.allow_listen_override: 0 -> 1\n", "")
    assert sysctl(capsys, "jail.defaults.allow_listen_override") == (
        0, "jail.defaults.allow_listen_override: 1\n", "")
    rc, out, err = sysctl(capsys, "jail.allow_listen_override=2")
    assert (rc, out, err) == (1, "", "jailctl: sysctl: jail.allow_listen_override: invalid "
                                     "value '2' (allowed: 0, 1)\n")


def test_defaults_write_and_alias(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # chflags need host root: new jails get no user namespace (issue 11)
    assert sysctl(capsys, "jail.chflags_allowed=1", "jail.enforce_statfs=0") == (
        0, "jail.chflags_allowed: 0 -> 1\njail.enforce_statfs: 2 -> 0\n",
        "jailctl: sysctl: jail.chflags_allowed: new jails: chflags_allowed=1 needs "
        "CAP_LINUX_IMMUTABLE in the host's user namespace: they get unprivileged_root=0 "
        "(jailed root is host root)\n")
    # with unprivileged_root=0 already, nothing to say
    assert sysctl(capsys, "jail.unprivileged_root=0", "jail.chflags_allowed=0",
                  "jail.chflags_allowed=1") == (
        0, "jail.unprivileged_root: 1 -> 0\njail.chflags_allowed: 1 -> 0\n"
           "jail.chflags_allowed: 0 -> 1\n", "")
    assert sysctl(capsys, "jail.unprivileged_root=1")[2] == (
        "jailctl: sysctl: jail.unprivileged_root: new jails: chflags_allowed=1 needs "
        "CAP_LINUX_IMMUTABLE in the host's user namespace: they get unprivileged_root=0 "
        "(jailed root is host root)\n")
    assert sysctl(capsys, "jail.defaults.chflags_allowed", "jail.enforce_statfs") == (
        0, "jail.defaults.chflags_allowed: 1\njail.enforce_statfs: 0\n", "")
    assert sysctl(capsys, "jail.defaults.chflags_allowed=0") == (
        0, "jail.defaults.chflags_allowed: 1 -> 0\n", "")


def test_per_jail_write_says_what_it_reaches(state: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from linjail.state import registry
    live_jail()
    rc, out, err = sysctl(capsys, f"jail.{JID}.sysvipc_allowed=1",
                          f"jail.{JID}.chflags_allowed=0")
    assert (rc, out) == (0, f"jail.{JID}.sysvipc_allowed: 0 -> 1\n"
                            f"jail.{JID}.chflags_allowed: 0 -> 0\n")
    # the note for each change (none for a value that stays)
    assert err == (f"jailctl: sysctl: jail.{JID}.sysvipc_allowed: applies to processes "
                   f"started in jail {JID} from now on (jexec); its running processes keep "
                   f"the limits they started with\n")
    rec = registry.read(JID)
    assert rec is not None and rec.knobs == {**KNOB_DEFAULTS, "sysvipc_allowed": 1}
    # the defaults are not touched
    assert sysctl(capsys, "jail.sysvipc_allowed") == (0, "jail.sysvipc_allowed: 0\n", "")


@pytest.mark.parametrize("args,err", [
    (["jail.424243.chflags_allowed=1"], "jailctl: sysctl: unknown oid "
                                        "'jail.424243.chflags_allowed'\n"),
    (["jail.424243.chflags_allowed"], "jailctl: sysctl: unknown oid "
                                      "'jail.424243.chflags_allowed'\n"),
    (["jail.chflags_allowed=1", "jail.nope=1"], "jailctl: sysctl: unknown oid 'jail.nope'\n"),
    (["jail.chflags_allowed=1", "jail.nope"], "jailctl: sysctl: unknown oid 'jail.nope'\n"),
    ([f"jail.{JID}.chflags_allowed=1", "jail.enforce_statfs=7"],
     "jailctl: sysctl: jail.enforce_statfs: invalid value '7' (allowed: 0, 1, 2)\n"),
    (["jail.jailed=1"], "jailctl: sysctl: oid 'jail.jailed' is read only\n"),
    (["jail.list=x"], "jailctl: sysctl: oid 'jail.list' is read only\n"),
    (["jail.chflags_allowed=1", "jail.list="], "jailctl: sysctl: oid 'jail.list' is read only\n"),
    (["jail.list.x"], "jailctl: sysctl: unknown oid 'jail.list.x'\n"),
])
def test_nothing_changes_on_a_bad_argument(state: Path, capsys: pytest.CaptureFixture[str],
                                           args: list[str], err: str) -> None:
    from linjail.state import registry
    live_jail()
    before = os.listdir(state), registry.read(JID)
    assert sysctl(capsys, *args) == (1, "", err)
    assert (os.listdir(state), registry.read(JID)) == before
    assert sysctl(capsys, "jail.chflags_allowed")[1] == "jail.chflags_allowed: 0\n"


def test_only_host_root_writes(state: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    live_jail()
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    for name in ("jail.chflags_allowed", f"jail.{JID}.chflags_allowed"):
        assert sysctl(capsys, f"{name}=1") == (
            1, "", f"jailctl: sysctl: {name}: Operation not permitted\n")
        assert sysctl(capsys, name) == (0, f"{name}: 0\n", "")     # reading is for all
    # root inside a jail is not host root
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(jailctl_sysctl, "_jailed", lambda: 1)
    assert sysctl(capsys, "jail.jailed") == (0, "jail.jailed: 1\n", "")
    assert sysctl(capsys, "jail.chflags_allowed=1") == (
        1, "", "jailctl: sysctl: jail.chflags_allowed: Operation not permitted\n")
    assert sysctl(capsys, "jail.chflags_allowed") == (0, "jail.chflags_allowed: 0\n", "")
