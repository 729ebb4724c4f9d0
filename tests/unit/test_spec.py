"""The one spec builder (config/spec.py) and every front end that feeds it (no root).

Each fault is given to each front end as its users write it: jail(8)'s argv
(the line on stderr or stdout, exit 1), rc.conf (rc.d/jail's reason after
` cannot start jail "NAME": `), and FreeBSD's parameters (jail -c,
jail.conf: the text after `jail: NAME: `).  Each gives one line, in its own
words where the front ends always worded it differently.
"""
from __future__ import annotations

import contextlib
import getopt as py_getopt
import io
import ipaddress
import os
from pathlib import Path
from typing import Callable

import pytest

from linjail.cli import jail as jail_cli, jail_dfly
from linjail.config import jails, params, spec
from linjail.config.spec import SpecError, SpecInput
from linjail.errors import JailError
from linjail.lifecycle import fbsd
from linjail.model import KNOB_DEFAULTS, Knobs, Mount, User

LONG = "h" * 65
BAD_UTF8 = os.fsdecode(b"h\xff")


@pytest.fixture(autouse=True)
def _no_host_state(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The global knobs come from a state directory of the test's own, and
    jail(8) may create jails (the faults all come before that)."""
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(jail_dfly, "_may_create", lambda: True)


def jail8(*args: str) -> tuple[int, str, str]:
    """`jail ARGS` in-process: status, stdout, stderr (as text, lone
    surrogates included: what came in as bytes goes out as the same bytes)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = jail_cli.main(list(args))
    return code, out.getvalue(), err.getvalue()


def rc_reason(root: str, hostname: str = "h", ip: str = "198.51.100.1",
              flags: str = "-l -U root") -> str:
    """What `jailctl start` says after ` cannot start jail "www": `: the plan
    step's two calls (lifecycle/rc.py _step_plan)."""
    values = {"jail_www_rootdir": root, "jail_www_hostname": hostname, "jail_www_ip": ip,
              "jail_www_flags": flags}
    cfg = jails.resolve(jails.RcVars(values), "www", print)
    with pytest.raises(jails.StartFailure) as info:
        jails.build_spec(cfg, root=jails.real_root(cfg.rootdir), knobs=Knobs(), mounts=())
    return info.value.reason


def freebsd(*pairs: tuple[str, list[str]], label: str = "") -> str:
    """What FreeBSD's jail(8) says after `jail: ` (jail -c, or jail.conf's LABEL)."""
    with pytest.raises(JailError) as info:
        fbsd.to_spec(params.build(list(pairs), label))
    return info.value.message


def test_root_faults_on_every_front(tmp_path: Path) -> None:
    gone, file = f"{tmp_path}/gone", tmp_path / "file"
    file.write_text("")
    assert jail8(gone, "h", "", "/bin/true") == (
        1, "", f"jail: realpath: {gone}: No such file or directory\n")
    assert rc_reason(gone) == f"realpath: {gone}: No such file or directory"
    assert freebsd(("path", [gone])) == f"path {gone}: No such file or directory"
    # not a directory: DragonFly's jail(8) names the resolved path it chdirs to
    (tmp_path / "link").symlink_to(file)
    link = f"{tmp_path}/link"
    assert jail8(link, "h", "", "/bin/true") == (
        1, "", f"jail: chdir: {file}: Not a directory\n")
    assert rc_reason(link) == f"realpath: {link}: Not a directory"
    assert freebsd(("path", [link])) == f"path {link}: Not a directory"
    # no root at all (rc.conf refuses an empty rootdir before: "No root directory")
    assert jail8("", "h", "", "/bin/true") == (
        1, "", "jail: realpath: : No such file or directory\n")
    assert freebsd(("host.hostname", ["h"])) == "path: not set (a jail needs its root directory)"
    assert freebsd(("path", ["rel"]), label="www") == "path rel: not an absolute pathname"


def test_hostname_length_on_every_front(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert jail8(root, LONG, "", "/bin/true") == (
        1, "", "jail: jail: File name too long\n")
    assert jail8("-n", "www", root, LONG, "", "/bin/true") == (
        1, "", "jail: jail: File name too long\n")           # FreeBSD's legacy form
    assert rc_reason(root, hostname=LONG) == "jail: File name too long"
    assert freebsd(("path", [root]), ("host.hostname", [LONG])) == \
        "host.hostname: File name too long"
    assert freebsd(("path", [root]), ("host.hostname", [LONG]), label="www") == \
        "www: host.hostname: File name too long"
    # 64 bytes is the limit, counted in bytes: 32 two-byte characters fit
    for name in ("h" * 64, "\u00e9" * 32):
        assert spec.build(SpecInput(root, name), defaults=Knobs()).hostname == name
    with pytest.raises(SpecError) as info:
        spec.build(SpecInput(root, "\u00e9" * 33), defaults=Knobs())
    assert (info.value.field, info.value.message) == ("hostname", "jail: File name too long")


def test_hostname_that_is_not_utf8(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 arrive from argv as lone surrogates; FreeBSD's
    form raised UnicodeEncodeError (an internal error) before the one check."""
    root = str(tmp_path)
    line = f"{BAD_UTF8}: hostname is not valid UTF-8"
    assert jail8(root, BAD_UTF8, "", "/bin/true") == (1, "", f"jail: {line}\n")
    assert freebsd(("path", [root]), ("host.hostname", [BAD_UTF8])) == line


def test_address_faults(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert jail8(root, "h", "198.51.100.1,,bogus", "/bin/true") == (
        1, "Invalid value bogus\n", "")
    assert rc_reason(root, ip="198.51.100.1,bogus") == "Invalid value bogus"
    # FreeBSD's parameters name the parameter; the builder takes the parsed address
    assert freebsd(("path", [root]), ("ip4.addr", ["bogus"])) == \
        "ip4.addr: not an IPv4 address: bogus"
    built = spec.build(SpecInput(root, ips=(ipaddress.ip_address("2001:db8::1"),
                                            "198.51.100.1")), defaults=Knobs())
    assert [str(a) for a in built.ips] == ["2001:db8::1", "198.51.100.1"]
    assert spec.split_ip_list(",198.51.100.1,,2001:db8::1,") == ("198.51.100.1", "2001:db8::1")


def test_host_user_faults(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert jail8("-u", "no-such-user-here", root, "h", "", "/bin/true") == (
        1, "", "jail: no-such-user-here: no such user\n")
    assert rc_reason(root, flags="-u no-such-user-here") == "no-such-user-here: no such user"
    # the user comes first, as in DragonFly's jail(8): before the root
    assert jail8("-u", "no-such-user-here", f"{root}/gone", "h", "", "x") == (
        1, "", "jail: no-such-user-here: no such user\n")


def test_a_given_user_is_checked_not_looked_up(tmp_path: Path) -> None:
    """An OCI process.user arrives as numbers: a User, its ids checked."""
    ok = User("app", 1000, 1000, (1000, 27), "/home/app", "/bin/sh")
    assert spec.build(SpecInput(str(tmp_path), host_user=ok), defaults=Knobs()).host_user == ok
    for bad, why in ((ok.replace(uid=2**32 - 1), "invalid user id"),
                     (ok.replace(groups=(-1,)), "invalid group id")):
        with pytest.raises(SpecError) as info:
            spec.build(SpecInput(str(tmp_path), host_user=bad), defaults=Knobs())
        assert (info.value.field, info.value.message) == ("host_user", f"app: {why}")
    with pytest.raises(SpecError) as info:
        spec.build(SpecInput(str(tmp_path), host_user=ok, jail_user="root"))
    assert info.value.message == "-u and -U cannot be used together"


def test_knobs_start_from_the_defaults(tmp_path: Path) -> None:
    base = Knobs(sysvipc_allowed=1)
    given = SpecInput(str(tmp_path), knobs=(("enforce_statfs", 1), ("chflags_allowed", 1)))
    assert spec.build(given, defaults=base).knobs == Knobs(
        sysvipc_allowed=1, enforce_statfs=1, chflags_allowed=1)
    assert spec.build(SpecInput(str(tmp_path))).knobs == Knobs(**KNOB_DEFAULTS)
    for knob, value, text in (("enforce_statfs", 3, "enforce_statfs: 3: must be 0 or 1 or 2"),
                              ("no_such", 1, "no_such: 1: no such knob")):
        with pytest.raises(SpecError) as info:
            spec.build(SpecInput(str(tmp_path), knobs=((knob, value),)), defaults=base)
        assert (info.value.field, info.value.message) == ("knobs", text)


def test_may_create_comes_before_the_hostname(tmp_path: Path) -> None:
    """jail(2) refuses with EPERM before it reads the hostname (DragonFly)."""
    with pytest.raises(SpecError) as info:
        spec.build(SpecInput(str(tmp_path), LONG), may_create=lambda: False)
    assert info.value.message == "jail: Operation not permitted"
    with pytest.raises(SpecError) as info:
        spec.build(SpecInput(f"{tmp_path}/gone", LONG), may_create=lambda: False)
    assert info.value.field == "path"


def test_everything_given_reaches_the_spec(tmp_path: Path) -> None:
    (tmp_path / "root").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "root")
    mounts = (Mount("tmpfs", "tmpfs", "/tmp"),)
    given = SpecInput(path=f"{tmp_path}/link", hostname="www", ips=("198.51.100.7",),
                      command=("/bin/sh",), name="www", login=True, jail_user="root",
                      print_jid=True, devfs=False, procfs=False, mounts=mounts,
                      interface="eth9", console_log="/tmp/c", jid=7, persist=True,
                      unique_name=True)
    built = spec.build(given, defaults=Knobs())
    assert built.path == f"{tmp_path}/root" and built.overlay is None
    assert (built.hostname, [str(a) for a in built.ips], built.command) == (
        "www", ["198.51.100.7"], ("/bin/sh",))
    assert (built.name, built.login, built.jail_user, built.host_user, built.print_jid) == (
        "www", True, "root", None, True)
    assert (built.devfs, built.procfs, built.mounts, built.interface, built.console_log) == (
        False, False, mounts, "eth9", "/tmp/c")
    assert (built.jid, built.persist, built.unique_name) == (7, True, True)


# -- jail(8)'s options: one parser, each front end's words ---------------------------------

def test_options_of_the_command_line() -> None:
    opts = spec.jail_options(["-il", "-Ua", "-U", "b", "/", "h", "", "x", "-u"])
    assert (opts.print_jid, opts.login, opts.host_user, opts.jail_user) == (
        True, True, None, "b")
    assert opts.operands == ("/", "h", "", "x", "-u")
    for words, diagnostic in ((["-x", "/", "h", "", "x"], "illegal option -- x"),
                              (["-u"], "option requires an argument -- u"),
                              (["-u", "a", "-U", "b", "/", "h", "", "x"], ""),
                              (["-l", "/", "h", "", "x"], ""),
                              (["/", "h", ""], "")):
        with pytest.raises(spec.OptionError) as info:
            spec.jail_options(words)
        assert info.value.diagnostic == diagnostic


@pytest.mark.parametrize("flags", ["-x", "-u", "-l -y", "--long", "--long=1", "-l--", "-:",
                                   "-l -Ux -u"])
def test_rc_flags_say_what_python_getopt_said(flags: str) -> None:
    """rc.conf's jail_NAME_flags were read with Python's getopt module: the
    one parser words its faults the same way."""
    with pytest.raises(py_getopt.GetoptError) as theirs:
        py_getopt.getopt(flags.split(), "ilu:U:")
    with pytest.raises(jails.StartFailure) as ours:
        jails.parse_flags(flags, "jail_www_flags")
    assert ours.value.reason == f"jail_www_flags: {theirs.value}"


@pytest.mark.parametrize("flags, reason", [
    ("-l", "-l needs -u or -U"),
    ("-u a -U b", "-u and -U cannot be used together"),
    ("-l -U root extra", "unexpected argument 'extra'"),
    ("-l -U 'a b", "No closing quotation"),
])
def test_rc_flags_faults(flags: str, reason: str) -> None:
    with pytest.raises(jails.StartFailure) as info:
        jails.parse_flags(flags, "jail_www_flags")
    assert info.value.reason == f"jail_www_flags: {reason}"


def test_rc_flags_default() -> None:
    opts = jails.parse_flags(jails.DEFAULT_FLAGS, "jail_www_flags")
    assert (opts.login, opts.host_user, opts.jail_user, opts.operands) == (
        True, None, "root", ())


FRONT_ENDS: dict[str, Callable[..., object]] = {"jail": jail8, "rc": rc_reason,
                                                "freebsd": freebsd}


def test_every_front_end_feeds_the_one_builder(monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """No front end makes a JailSpec of its own: each goes through spec.build."""
    seen: list[str] = []
    real = spec.build

    def spy(given: SpecInput, front: str = "jail", **kw: object) -> object:
        seen.append(front)
        raise SpecError("path", "stop here")
    monkeypatch.setattr(spec, "build", spy)
    root = str(tmp_path)
    jail8(root, "h", "", "/bin/true")
    jail8("-n", "www", root, "h", "", "/bin/true")
    assert rc_reason(root) == "stop here"
    assert freebsd(("path", [root])) == "stop here"
    assert seen == ["jail", "jail", "rc", "freebsd"] and real is not spy
    assert sorted(FRONT_ENDS) == sorted(spec.FRONTS)
