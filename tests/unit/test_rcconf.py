"""rc.conf lexing, the SPEC §8 table and fstab parsing: no root needed."""
from __future__ import annotations

from pathlib import Path

import pytest

from linjail.config import fstab, jails, rcconf
from linjail.config.jails import FatalConfig, RcVars, StartFailure
from linjail.model import Knobs, Mount

SEED = '''\
jail_enable="YES" # Set to NO to disable starting of any jails
jail_list="www" # Space separated list of names of jails
#
jail_www_rootdir="/usr/jail/www" # jail's root directory
jail_www_hostname="www.example.org" # jail's hostname
jail_www_ip="192.168.0.10" # jail's IP address
#
'''


def parse(text: str | bytes, env: dict[str, str] | None = None) -> dict[str, str]:
    values: dict[str, str] = dict(env or {})
    rcconf.parse(text, "rc.conf", values)
    return values


def error(text: str | bytes) -> str:
    with pytest.raises(rcconf.RcConfError) as info:
        parse(text)
    assert info.value.code == 3
    return info.value.message


# -- lexer --------------------------------------------------------------------

def test_seed_example() -> None:
    assert parse(SEED) == {
        "jail_enable": "YES", "jail_list": "www", "jail_www_rootdir": "/usr/jail/www",
        "jail_www_hostname": "www.example.org", "jail_www_ip": "192.168.0.10"}


@pytest.mark.parametrize("text, value", [
    ('a="x y"', "x y"),
    ("a='x $y \\n'", "x $y \\n"),
    ("a=plain", "plain"),
    ("a=", ""),
    ('a=""', ""),
    ("a=x\\ y", "x y"),
    ('a="q\\"uote\\\\ \\$x \\z"', 'q"uote\\ $x \\z'),
    ("a=one\\\ntwo", "onetwo"),
    ('a="one\\\ntwo"', "onetwo"),
    ("a='one\ntwo'", "one\ntwo"),
    ("a=x#y", "x#y"),
    ("a=x # comment", "x"),
    ("a='x'\"y\"z", "xyz"),
    ("a=$", "$"),
    ("  \ta=indented\t ", "indented"),
    ("a=1;", "1"),
])
def test_values(text: str, value: str) -> None:
    assert parse(text)["a"] == value


def test_comments_blank_lines_several_per_line() -> None:
    text = "# header\n\n   # indented comment\nb=1 c=2; d=3\r\ne=4\n"
    assert parse(text) == {"b": "1", "c": "2", "d": "3", "e": "4"}


def test_later_wins_and_expansion_sees_earlier() -> None:
    assert parse('a=1\na=2\nb="$a ${a}x $unset."') == {"a": "2", "b": "2 2x ."}
    assert parse('jail_list="$jail_list db"', {"jail_list": "www"})["jail_list"] == "www db"


def test_backslash_newline_in_name() -> None:
    assert parse("jail_\\\nenable=YES") == {"jail_enable": "YES"}


@pytest.mark.parametrize("text, message", [
    ('a="x\nb=2\n', "rc.conf: line 1: unterminated double quote"),
    ("\n\na='x", "rc.conf: line 3: unterminated single quote"),
    ("a=1\necho hello\n", "rc.conf: line 2: not a variable assignment: echo"),
    ("a=1\n\n. /etc/other\n", "rc.conf: line 3: not a variable assignment: ."),
    ("export a=1", "rc.conf: line 1: not a variable assignment: export"),
    ("a-b=1", "rc.conf: line 1: not a variable assignment: a-b=1"),
    ("=1", "rc.conf: line 1: not a variable assignment: =1"),
    ("a=$(reboot)", "rc.conf: line 1: command substitution is not supported in rc.conf"),
    ("a=\"`reboot`\"", "rc.conf: line 1: command substitution is not supported in rc.conf"),
    ("a=`reboot`", "rc.conf: line 1: command substitution is not supported in rc.conf"),
    ("\na=x|y", "rc.conf: line 2: shell operator '|' is not supported in rc.conf"),
    ("a=x>y", "rc.conf: line 1: shell operator '>' is not supported in rc.conf"),
    ("a=${b:-c}", "rc.conf: line 1: parameter expansion ${b:-c} is not supported in rc.conf"),
    ("a=${b", "rc.conf: line 1: unterminated ${"),
    ("a=$1", "rc.conf: line 1: special parameter $1 is not supported in rc.conf"),
    (b"a=1\nb=\x00\x01\x02\n", "rc.conf: line 2: binary data (NUL byte), not an rc.conf file"),
    (b"a=1\n\nb=\xff\xfe\n", "rc.conf: line 3: not valid UTF-8 text"),
])
def test_errors_name_file_and_line(text: str | bytes, message: str) -> None:
    assert error(text) == message


def test_error_line_counts_continuations() -> None:
    assert error("a=x\\\ny\nb='") == "rc.conf: line 3: unterminated single quote"


def test_read_files_order_and_missing(tmp_path: Path) -> None:
    one = tmp_path / "one"
    two = tmp_path / "two"
    one.write_text("a=1\nb=1\n")
    two.write_text('b=2\nc="$a$b"\n')
    missing = str(tmp_path / "missing")
    got = rcconf.read_files([str(one), missing, str(two)], missing_ok=True, base={"z": "0"})
    assert got == {"z": "0", "a": "1", "b": "2", "c": "12"}
    with pytest.raises(rcconf.RcConfError) as info:
        rcconf.read_files([missing], missing_ok=False)
    assert info.value.message == f"{missing}: No such file or directory"
    with pytest.raises(rcconf.RcConfError) as info:
        rcconf.read_files([str(tmp_path)], missing_ok=False)
    assert info.value.message == f"{tmp_path}: Is a directory"


def test_config_files_choice() -> None:
    assert rcconf.config_files(["a", "b"], {"LINJAIL_RC_CONF": "x"}) == (("a", "b"), False)
    assert rcconf.config_files([], {"LINJAIL_RC_CONF": "x::y"}) == (("x", "y"), False)
    assert rcconf.config_files([], {}) == (
        ("/etc/rc.conf", "/etc/rc.conf.local", "/etc/rc.conf.d/jail"), True)


# -- the SPEC §8 table ------------------------------------------------------------

class Warnings(list[str]):
    def __call__(self, message: str) -> None:
        self.append(message)


def rcvars(text: str) -> RcVars:
    from linjail.cli.jailctl_rc import builtin_defaults
    values = builtin_defaults()
    rcconf.parse(text, "rc.conf", values)
    return RcVars(values)


def test_defaults_of_the_table() -> None:
    warn = Warnings()
    rc = rcvars(SEED)
    cfg = jails.resolve(rc, "www", warn)
    assert cfg == jails.JailConfig(
        name="www", rootdir="/usr/jail/www", hostname="www.example.org", ip="192.168.0.10",
        exec_start="/bin/sh /etc/rc", exec_stop="/bin/sh /etc/rc.shutdown", interface="",
        devfs=True, procfs=True, mount_enable=False, fstab="/etc/fstab.www",
        flags="-l -U root", consolelog="/var/log/jail_www_console.log", knobs=())
    assert rc.jail_enable(warn) and rc.jail_list() == ["www"]
    assert warn == []
    assert rcvars("").jail_enable(warn) is False and rcvars("").jail_list() == []


@pytest.mark.parametrize("extra, start, stop", [
    ('jail_www_exec_start="/bin/srv -d"', "/bin/srv -d", ""),
    ('jail_www_exec_start="/bin/srv"\njail_www_exec_stop="/bin/halt"', "/bin/srv", "/bin/halt"),
    ('jail_www_exec_stop="/bin/halt"', "/bin/sh /etc/rc", "/bin/halt"),
    ('jail_www_exec="/bin/legacy"', "/bin/legacy", ""),
    ('jail_www_exec="/bin/legacy"\njail_www_exec_stop="/bin/halt"', "/bin/legacy", ""),
    ('jail_exec_start="/bin/common"', "/bin/common", ""),
    ('jail_exec_stop="/bin/commonstop"', "/bin/sh /etc/rc", "/bin/commonstop"),
])
def test_exec_start_and_stop(extra: str, start: str, stop: str) -> None:
    cfg = jails.resolve(rcvars(SEED + extra), "www", Warnings())
    assert (cfg.exec_start, cfg.exec_stop) == (start, stop)


def test_per_jail_then_global_then_builtin() -> None:
    text = SEED + ('jail_devfs_enable="NO"\njail_www_procfs_enable="no"\n'
                   'jail_mount_enable="yes"\njail_fstab="/etc/fstab.all"\n'
                   'jail_www_fstab=""\njail_flags="-u nobody"\njail_www_flags="-U www"\n'
                   'jail_interface="eth9"\njail_consolelog="/tmp/all.log"\n')
    cfg = jails.resolve(rcvars(text), "www", Warnings())
    assert (cfg.devfs, cfg.procfs, cfg.mount_enable) == (False, False, True)
    assert (cfg.fstab, cfg.flags, cfg.interface, cfg.consolelog) == (
        "/etc/fstab.all", "-U www", "eth9", "/tmp/all.log")


@pytest.mark.parametrize("missing, message", [
    ("rootdir", "ERROR: jail: No root directory has been defined for www"),
    ("hostname", "ERROR: jail: No hostname has been defined for www"),
    ("ip", "ERROR: jail: No IP address has been defined for www"),
])
def test_required(missing: str, message: str) -> None:
    text = "\n".join(line for line in SEED.splitlines() if f"_www_{missing}=" not in line)
    with pytest.raises(FatalConfig) as info:
        jails.resolve(rcvars(text), "www", Warnings())
    assert (info.value.message, info.value.code) == (message, 3)
    with pytest.raises(FatalConfig):     # empty counts as missing (rc.d: [ -z ... ])
        jails.resolve(rcvars(SEED + f'jail_www_{missing}=""'), "www", Warnings())


def test_invalid_name() -> None:
    with pytest.raises(FatalConfig) as info:
        jails.resolve(rcvars(SEED), "../etc", Warnings())
    assert info.value.message == "ERROR: jail: Invalid jail name '../etc'"


@pytest.mark.parametrize("value, result", [
    ("YES", True), ("yes", True), ("True", True), ("on", True), ("1", True),
    ("NO", False), ("no", False), ("FALSE", False), ("Off", False), ("0", False),
])
def test_checkyesno(value: str, result: bool) -> None:
    warn = Warnings()
    assert jails.checkyesno(value, "jail_enable", warn) is result
    assert warn == []


def test_checkyesno_other_values_warn_and_count_as_no() -> None:
    warn = Warnings()
    rc = rcvars('jail_enable="maybe"\n' + SEED.replace('jail_enable="YES"', "")
                + 'jail_www_devfs_enable="sometimes"\njail_enable="maybe"')
    assert rc.jail_enable(warn) is False
    assert jails.resolve(rc, "www", warn).devfs is False
    assert warn == ["$jail_enable is not set properly - see rc.conf(5).",
                    "$jail_www_devfs_enable is not set properly - see rc.conf(5)."]


def test_default_knobs_only_changes_are_reported() -> None:
    warn = Warnings()
    current = Knobs()
    want, changed = rcvars("").default_knobs(current, warn)
    assert (want, changed) == (current, [])
    want, changed = rcvars("").default_knobs(
        Knobs(set_hostname_allowed=0, socket_unixiproute_only=0, enforce_statfs=1), warn)
    assert changed == ["set_hostname_allow=YES", "unixiproute_only=YES"]
    assert want == Knobs(enforce_statfs=1)
    text = ('jail_default_set_hostname_allow="NO"\njail_default_socket_unixiproute_only=no\n'
            'jail_default_sysvipc_allow=YES\njail_default_chflags_allow=yes\n'
            'jail_default_raw_sockets_allow=on\n')
    want, changed = rcvars(text).default_knobs(current, warn)
    assert changed == ["set_hostname_allow=NO", "unixiproute_only=NO", "sysvipc_allow=YES",
                       "chflags_allow=YES", "raw_sockets_allow=YES"]
    assert want == Knobs(0, 0, 1, 2, 1, 1)
    want, changed = rcvars("jail_default_sysvipc_allow=perhaps").default_knobs(
        Knobs(sysvipc_allowed=1), warn)
    assert changed == ["sysvipc_allow=NO"]
    assert warn == ["$jail_default_sysvipc_allow is not set properly - see rc.conf(5)."]


def test_per_jail_knobs() -> None:
    warn = Warnings()
    text = SEED + ('jail_www_set_hostname_allowed="NO"\njail_www_sysvipc_allow=YES\n'
                   'jail_www_enforce_statfs=1\njail_www_allow_raw_sockets=bogus\n'
                   'jail_www_chflags_allowed=7\njail_db_chflags_allowed=YES\n')
    cfg = jails.resolve(rcvars(text), "www", warn)
    assert dict(cfg.knobs) == {"set_hostname_allowed": 0, "sysvipc_allowed": 1,
                               "enforce_statfs": 1, "allow_raw_sockets": 0,
                               "chflags_allowed": 0}
    assert len(warn) == 2
    spec = jails.build_spec(cfg, root="/", knobs=Knobs(), mounts=())
    assert spec.knobs == Knobs(0, 1, 1, 1, 0, 0)
    warn.clear()
    bad = jails.resolve(rcvars(SEED + "jail_www_enforce_statfs=9"), "www", warn)
    assert bad.knobs == () and warn == [
        "$jail_www_enforce_statfs is not set properly - see rc.conf(5)."]


def test_build_spec(tmp_path: Path) -> None:
    text = SEED.replace("192.168.0.10", "198.51.100.7,2001:db8::7") + (
        'jail_www_exec_start="/bin/sh -c \'echo hi\'"\njail_www_interface=eth0\n'
        'jail_www_flags="-i -U daemon"\njail_www_consolelog=/tmp/c.log\n')
    cfg = jails.resolve(rcvars(text), "www", Warnings())
    mounts = (Mount("tmpfs", "tmpfs", "/tmp"),)
    (tmp_path / "www").mkdir()
    spec = jails.build_spec(cfg, root=f"{tmp_path}/www", knobs=Knobs(sysvipc_allowed=1),
                            mounts=mounts)
    assert spec.path == f"{tmp_path}/www" and spec.hostname == "www.example.org"
    assert [str(a) for a in spec.ips] == ["198.51.100.7", "2001:db8::7"]
    assert spec.command == ("/bin/sh", "-c", "echo hi")
    assert (spec.name, spec.login, spec.jail_user, spec.host_user) == ("www", False, "daemon",
                                                                       None)
    assert (spec.interface, spec.console_log, spec.mounts) == ("eth0", "/tmp/c.log", mounts)
    assert spec.knobs == Knobs(sysvipc_allowed=1) and spec.print_jid is False
    assert (spec.devfs, spec.procfs) == (True, True)


def test_build_spec_host_user() -> None:
    cfg = jails.resolve(rcvars(SEED + 'jail_www_flags="-l -u root"'), "www", Warnings())
    spec = jails.build_spec(cfg, root="/", knobs=Knobs(), mounts=())
    assert spec.host_user is not None and spec.host_user.uid == 0 and spec.login
    assert spec.jail_user is None


@pytest.mark.parametrize("extra, reason", [
    ('jail_www_ip="198.51.100.1,10.0.0"', "Invalid value 10.0.0"),
    ('jail_www_ip="198.51.100.1/24"', "Invalid value 198.51.100.1/24"),
    ('jail_www_flags="-x"', "jail_www_flags: option -x not recognized"),
    ('jail_www_flags="-u"', "jail_www_flags: option -u requires argument"),
    ('jail_www_flags="-u root -U root"', "jail_www_flags: -u and -U cannot be used together"),
    ('jail_www_flags="-l"', "jail_www_flags: -l needs -u or -U"),
    ('jail_www_flags="-l -U root extra"', "jail_www_flags: unexpected argument 'extra'"),
    ('jail_www_flags="-u no-such-user-here"', "no-such-user-here: no such user"),
    ("jail_www_exec_start=\"/bin/sh -c 'x\"", "jail_www_exec_start: No closing quotation"),
])
def test_build_spec_failures(extra: str, reason: str) -> None:
    cfg = jails.resolve(rcvars(SEED + extra), "www", Warnings())
    with pytest.raises(StartFailure) as info:
        jails.build_spec(cfg, root="/", knobs=Knobs(), mounts=())
    assert info.value.reason == reason


def test_real_root(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path)
    assert jails.real_root(str(tmp_path / "link")) == str(tmp_path)
    with pytest.raises(StartFailure) as info:
        jails.real_root(str(tmp_path / "nope"))
    assert info.value.reason == f"realpath: {tmp_path}/nope: No such file or directory"
    (tmp_path / "file").write_text("")
    with pytest.raises(StartFailure) as info:
        jails.real_root(str(tmp_path / "file"))
    assert info.value.reason == f"realpath: {tmp_path}/file: Not a directory"


# -- fstab ---------------------------------------------------------------------

def test_fstab_parse_and_mounts() -> None:
    text = ("# jail www\n\n"
            "/srv/data  /usr/jail/www/data  nullfs  ro  0 0\n"
            "/srv/logs  /var/log/app  none  bind,rw,nosuid  0  0\n"
            "/srv/x\\040y  /mnt/a\\040b  bind  defaults\n"
            "tmpfs  /usr/jail/www/tmp  tmpfs  rw,size=16m,mode=1777  0 0\n"
            "/srv/skip  /skip  null  ro,noauto  0 0\n"
            "/srv/up /real/www/../up null ro\n")
    entries = fstab.parse(text, "/etc/fstab.www")
    assert [e.line for e in entries] == [3, 4, 5, 6, 8]
    mounts = fstab.to_mounts(entries, ("/usr/jail/www", "/real/www"))
    assert mounts == (
        Mount("bind", "/srv/data", "/data", True, ""),
        Mount("bind", "/srv/logs", "/var/log/app", False, "nosuid"),
        Mount("bind", "/srv/x y", "/mnt/a b", False, ""),
        Mount("tmpfs", "tmpfs", "/tmp", False, "size=16m,mode=1777"),
        Mount("bind", "/srv/up", "/up", True, ""),
    )


@pytest.mark.parametrize("line, message", [
    ("/a /b", "F: line 1: expected 4 to 6 fields, found 2"),
    ("/a /b nullfs ro 0 0 0", "F: line 1: expected 4 to 6 fields, found 7"),
    ("/a /b nullfs ro x", "F: line 1: bad dump/pass field 'x'"),
    ("/a b nullfs ro", "F: line 1: mount point b is not an absolute path"),
    ("/dev/sda1 /b ext4 rw", "F: line 1: unsupported file system type ext4 "
     "(bind mounts and tmpfs only)"),
    ("proc /b none rw", "F: line 1: unsupported file system type none "
     "(bind mounts and tmpfs only)"),
    ("a /b nullfs ro", "F: line 1: bind source a is not an absolute path"),
])
def test_fstab_errors(line: str, message: str) -> None:
    with pytest.raises(fstab.FstabError) as info:
        fstab.parse(line, "F")
    assert str(info.value) == message


def test_fstab_read_binary(tmp_path: Path) -> None:
    f = tmp_path / "fstab"
    f.write_bytes(b"# ok\n\x00\x01")
    with pytest.raises(fstab.FstabError) as info:
        fstab.read(str(f))
    assert str(info.value) == f"{f}: line 2: binary data (NUL byte)"


def test_symlink_in_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "a" / "b").mkdir(parents=True)
    (root / "evil").symlink_to("/etc")
    (root / "a" / "link").symlink_to("b")
    assert fstab.symlink_in_path(str(root), "/a/b") is None
    assert fstab.symlink_in_path(str(root), "/a/b/missing/deeper") is None
    assert fstab.symlink_in_path(str(root), "/evil") == "/evil"
    assert fstab.symlink_in_path(str(root), "/evil/x") == "/evil"
    assert fstab.symlink_in_path(str(root), "/a/link/c") == "/a/link"


def test_man_page_lists_every_variable() -> None:
    page = (Path(__file__).resolve().parents[2] / "man" / "rc.conf.linjail.5").read_text()
    for var in jails.GLOBAL_VARS:
        assert f".It Va {var.name} " in page
    for knob in jails.DEFAULT_KNOBS:
        assert f".It Va {knob.var} Pq Dq {knob.default}" in page
    for var in jails.JAIL_VARS:
        assert f"_{var.name}" in page, var.name
    for alias in jails.KNOB_ALIASES:
        assert f"_{alias}" in page, alias


def test_man_page_renders_the_messages_whole() -> None:
    """mdoc takes a word `No` on a macro line for its macro and drops it."""
    import shutil
    import subprocess
    if shutil.which("groff") is None:
        pytest.skip("groff is not installed (man -l needs it)")
    page = Path(__file__).resolve().parents[2] / "man" / "rc.conf.linjail.5"
    r = subprocess.run(["groff", "-mandoc", "-Tascii", "-P-cbou", str(page)],
                       capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    text = " ".join(r.stdout.split())
    assert r.returncode == 0, r.stderr
    assert "jailctl: ERROR: jail: No hostname has been defined for NAME" in text
    assert '(likewise "No root directory", "No IP address")' in text


@pytest.mark.parametrize("extra, seconds, warned", [
    ("", 60, False),
    ('jail_exec_timeout="5"', 5, False),
    ('jail_exec_timeout="5"\njail_www_exec_timeout="0"', 0, False),
    ('jail_www_exec_timeout="1.5"', 60, True),
    ('jail_www_exec_timeout="-1"', 60, True),
    ('jail_www_exec_timeout="\u0663"', 60, True),
    ('jail_www_exec_timeout="' + "9" * 5000 + '"', 60, True),
])
def test_exec_timeout(extra: str, seconds: int, warned: bool) -> None:
    warn = Warnings()
    cfg = jails.resolve(rcvars(SEED + extra + "\n"), "www", warn)
    assert cfg.exec_timeout == seconds
    var = "jail_www_exec_timeout"
    assert warn == ([f"${var} is not set properly - see rc.conf(5)."] if warned else [])
