"""`jailctl start|stop|restart|status` end to end, with the real library (SPEC §8).

The rc.conf is the seed's example verbatim, apart from the root path and a
documentation-range address (SPEC §10); what a test adds goes in a second
`-f` file.  Id files go to a private LINJAIL_VARRUN.  Every jail a test
starts is removed by a finalizer (remove_jail), also when the test fails.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from typing import Iterator

import pytest

pytest.importorskip("linjail.lifecycle.start", reason="the jail library has not landed")

from conftest import (HOST_PATH, Jails, Result, build_service_root, leftovers,  # noqa: E402
                      needs_root, run)

pytestmark = needs_root
BB = "/usr/bin/busybox"
# the seed, "Creating and Controlling Jails", verbatim
SEED = """\
jail_enable="YES" # Set to NO to disable starting of any jails
jail_list="www" # Space separated list of names of jails
#
jail_www_rootdir="/usr/jail/www" # jail's root directory
jail_www_hostname="www.example.org" # jail's hostname
jail_www_ip="192.168.0.10" # jail's IP address
#
"""
ADDR = "198.51.100.160"         # 198.51.100.160-169 are this module's
RC = f"""\
echo "rc: starting httpd"
{BB} httpd -p 80 -h /var/www
echo "rc: done"
"""
RC_SHUTDOWN = """\
echo "rc.shutdown: $(export -p)"
echo stopped > /stopped
"""


@dataclass
class Site:
    base: str        # a 0700 directory holding everything of the test
    root: str        # the jail's root
    varrun: str
    conf: str        # the seed's rc.conf
    extra: str       # the test's own additions (console log, ...)

    @property
    def log(self) -> str:
        return os.path.join(self.base, "console.log")

    @property
    def idfile(self) -> str:
        return os.path.join(self.varrun, "jail_www.id")

    def jailctl(self, *args: str, files: tuple[str, ...] | None = None) -> Result:
        fs = (self.conf, self.extra) if files is None else files
        argv = [a for f in fs for a in ("-f", f)]
        env = {"PATH": HOST_PATH, "LANG": "C", "LINJAIL_VARRUN": self.varrun,
               "LINJAIL_TEST_MARKER": "must-not-reach-exec_stop"}
        return run("jailctl", args[0], *argv, *args[1:], env=env, timeout=120)

    def add(self, text: str) -> None:
        with open(self.extra, "a") as f:
            f.write(text)

    def jid(self) -> int:
        with open(self.idfile) as f:
            return int(f.readline())


def ours(base: str) -> list[int]:
    """JIDs of live jails whose root is below BASE."""
    from linjail.state import registry
    return [r.jid for r in registry.live_jails() if r.path.startswith(base + "/")]


def mounts_below(path: str) -> list[str]:
    """Mount points below PATH in the host's (this process's) mount table."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]


@pytest.fixture(params=["", 'jail_www_unprivileged_root="NO"\n'],
                ids=["unprivileged_root=1", "unprivileged_root=0"])
def site(request: pytest.FixtureRequest) -> Iterator[Site]:
    """The seed's jail, with the default (a user namespace) and with rc.conf's
    jail_www_unprivileged_root="NO" (issue 11: every test runs with both)."""
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed (make test installs it)")
    base = tempfile.mkdtemp(prefix="linjail-rc-", dir="/var/tmp")
    os.chmod(base, 0o700)
    root = os.path.join(base, "www")
    try:
        build_service_root(root)
        for name, text in (("etc/rc", RC), ("etc/rc.shutdown", RC_SHUTDOWN)):
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        varrun = os.path.join(base, "run")
        os.mkdir(varrun)
        conf = os.path.join(base, "rc.conf")
        with open(conf, "w") as f:
            f.write(SEED.replace("/usr/jail/www", root).replace("192.168.0.10", ADDR) +
                    request.param)
        extra = os.path.join(base, "rc.conf.local")
        with open(extra, "w") as f:
            f.write(f'jail_www_consolelog="{base}/console.log"\n')
        yield Site(base, root, varrun, conf, extra)
    finally:
        from linjail.lifecycle.remove import remove_jail
        for jid in ours(base):
            try:
                remove_jail(jid, 0.2)
            except Exception:
                pass
        shutil.rmtree(base, ignore_errors=True)


def assert_nothing_left(site: Site, jids: tuple[int, ...] = ()) -> None:
    assert ours(site.base) == []
    assert os.listdir(site.varrun) == []
    assert mounts_below(site.base) == []
    for jid in jids:
        assert leftovers(jid) == []


def route_to_linjail(addr: str) -> bool:
    """SPEC §10: a packet to ADDR must leave through an interface linjail made."""
    r = run("ip", "route", "get", addr)
    words = r.out.split()
    return r.rc == 0 and "dev" in words and words[words.index("dev") + 1].startswith("lj")


# -- the seed's jail ------------------------------------------------------------------

def test_start_serve_status_skip_stop(site: Site) -> None:
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")
    jid = site.jid()
    with open(site.idfile, "rb") as f:
        assert f.read() == f"{jid}\n".encode()        # DragonFly's: the JID alone
    assert ours(site.base) == [jid]
    # what DragonFly's scripts do with it
    jexec = os.path.join(os.path.dirname(sys.executable), "..", "sbin", "jexec")
    r = run("sh", "-c", f"{jexec} $(cat {site.idfile}) {BB} hostname")
    assert (r.rc, r.out, r.err) == (0, "www.example.org\n", "")
    with open(site.log) as f:
        assert f.read() == "rc: starting httpd\nrc: done\n"
    # /etc/rc has exited; its server lives on and the host reaches it at the address
    if not route_to_linjail(ADDR):
        pytest.skip(f"{ADDR} is not routed to a linjail interface: not sending")
    with urllib.request.urlopen(f"http://{ADDR}/", timeout=5) as resp:
        assert resp.read() == b"hello from the jail\n"

    r = site.jailctl("status")
    assert (r.rc, r.out, r.err) == (0, f"www: running, jid {jid}, addresses {ADDR}\n", "")
    r = site.jailctl("start")
    assert (r.rc, r.err) == (0, "")
    assert r.out == ("Default global settings for jails:.\nStarting jails: [www.example.org "
                     f"already running ({site.idfile} exists)].\n")
    assert ours(site.base) == [jid]

    r = site.jailctl("stop")
    assert (r.rc, r.out, r.err) == (0, "Stopping jails: www.example.org.\n", "")
    with open(os.path.join(site.root, "stopped")) as f:
        assert f.read() == "stopped\n"
    with open(site.log) as f:       # appended, run with an empty environment
        assert f.read() == ("rc: starting httpd\nrc: done\n"
                            "rc.shutdown: export PWD='/'\n")
    assert_nothing_left(site, (jid,))
    assert f" {ADDR} " not in run("ip", "route").out
    r = site.jailctl("stop")
    assert (r.rc, r.out, r.err) == (
        0, f"Stopping jails: cannot stop jail www. No jail id in {site.varrun}\n.\n", "")
    r = site.jailctl("status")
    assert (r.rc, r.out, r.err) == (3, "www: stopped\n", "")


def test_restart_and_console_log_overwritten(site: Site) -> None:
    assert site.jailctl("start").rc == 0
    first = site.jid()
    r = site.jailctl("restart")
    assert (r.rc, r.out, r.err) == (
        0, "Stopping jails: www.example.org.\nDefault global settings for jails:.\n"
           "Starting jails: www.example.org.\n", "")
    assert site.jid() != first and ours(site.base) == [site.jid()]
    with open(site.log) as f:
        assert f.read() == "rc: starting httpd\nrc: done\n"
    assert site.jailctl("stop").rc == 0
    assert_nothing_left(site, (first,))


def test_stop_kills_what_ignores_sigterm_after_one_second(site: Site) -> None:
    site.add(f"jail_www_exec_start=\"/bin/sh -c 'trap \\\"\\\" TERM; {BB} sleep 300 "
             ">/dev/null 2>&1 &'\"\n")
    assert site.jailctl("start").rc == 0
    jid = site.jid()
    import time
    began = time.monotonic()
    r = site.jailctl("stop")
    took = time.monotonic() - began
    assert (r.rc, r.out, r.err) == (0, "Stopping jails: www.example.org.\n", "")
    assert 1.0 <= took < 10, took
    assert_nothing_left(site, (jid,))


def test_exec_start_timeout_fails_the_start(site: Site) -> None:
    """Issue 9, 7: an exec_start that never returns is stopped at jail_exec_timeout."""
    import time
    cmd = f"/bin/sh -c 'echo starting; {BB} sleep 300'"
    site.add(f'jail_www_exec_start="{cmd}"\njail_www_exec_timeout="1"\n')
    began = time.monotonic()
    r = site.jailctl("start")
    took = time.monotonic() - began
    assert (r.rc, r.out, r.err) == (
        1, "Default global settings for jails:.\nStarting jails: cannot start jail "
           f"\"www\": {cmd}: timed out\nstarting\n.\n", "")
    assert 1.0 <= took < 10, took
    assert_nothing_left(site)


def test_exec_stop_timeout_goes_on_with_the_stop(site: Site) -> None:
    """An exec_stop that never returns (and ignores SIGTERM) no longer hangs stop."""
    import time
    site.add(f"jail_www_exec_stop=\"/bin/sh -c 'trap \\\"\\\" TERM; echo stopping; "
             f"{BB} sleep 300'\"\njail_exec_timeout=\"1\"\n")
    assert site.jailctl("start").rc == 0
    jid = site.jid()
    began = time.monotonic()
    r = site.jailctl("stop")
    took = time.monotonic() - began
    assert (r.rc, r.out) == (0, "Stopping jails: www.example.org.\n")
    assert r.err.startswith("jailctl: WARNING: www: /bin/sh -c ") and \
        r.err.endswith(": timed out\n") and r.err.count("\n") == 1, r.err
    assert 2.0 <= took < 10, took          # 1 s limit, 1 s grace after SIGTERM
    with open(site.log) as f:
        assert f.read().endswith("stopping\n")
    assert_nothing_left(site, (jid,))


def test_id_file_naming_another_jail_or_none_is_stale(site: Site, jails: Jails) -> None:
    """After a reboot the JID in an id file is nobody's, or another jail's."""
    other = jails.start(site.root, "other.example.org", "", "/bin/sh", "-c",
                        f"{BB} sleep 60 >/dev/null 2>&1 &")
    for content in (f"{other}\n", "999999\n", "garbage\n"):
        with open(site.idfile, "w") as f:
            f.write(content)
        r = site.jailctl("status")
        assert (r.rc, r.out, r.err) == (3, "www: stopped\n", "")
        assert not os.path.exists(site.idfile)
        with open(site.idfile, "w") as f:
            f.write(content)
        r = site.jailctl("start")
        assert (r.rc, r.out, r.err) == (
            0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")
        assert site.jid() != other
        assert site.jailctl("stop").rc == 0
    assert ours(site.base) == [other]           # never touched


def test_fifo_as_id_file_is_refused_not_waited_on(site: Site) -> None:
    os.mkfifo(site.idfile)
    for action, out in (("start", "Default global settings for jails:.\nStarting jails:\n"),
                        ("status", ""), ("stop", "Stopping jails:\n")):
        r = site.jailctl(action)
        assert (r.rc, r.out, r.err) == (1, out, f"jailctl: {site.idfile}: not a regular file\n")
    os.unlink(site.idfile)
    assert_nothing_left(site)


def test_fstab_bind_mounts_inside_only(site: Site) -> None:
    data, shared = os.path.join(site.base, "data"), os.path.join(site.base, "shared")
    for d in (data, shared):
        os.mkdir(d)
    with open(os.path.join(data, "file"), "w") as f:
        f.write("from the host\n")
    for d in ("data", "shared", "scratch"):
        os.mkdir(os.path.join(site.root, d))
    fstab = os.path.join(site.base, "fstab.www")
    with open(fstab, "w") as f:
        f.write(f"# the jail's fstab\n{data} {site.root}/data nullfs ro 0 0\n"
                f"{shared} /shared none bind,rw 0 0\ntmpfs /scratch tmpfs size=1m 0 0\n")
    site.add(f'jail_www_mount_enable="YES"\njail_www_fstab="{fstab}"\n')
    r = site.jailctl("start")
    assert (r.rc, r.err) == (0, "")
    jid = site.jid()
    assert mounts_below(site.base) == []          # nothing on the host's view
    r = run("jexec", str(jid), "/bin/sh", "-c",
            f"{BB} cat /data/file; echo x > /data/new || echo refused; "
            f"echo y > /shared/new; {BB} grep -E ' /(data|shared|scratch) ' /proc/mounts "
            f"| {BB} cut -d' ' -f2,3")
    lines = r.out.splitlines()
    assert lines[:2] == ["from the host", "refused"], (r.out, r.err)
    assert [line.split()[0] for line in lines[2:]] == ["/data", "/shared", "/scratch"]
    assert lines[4] == "/scratch tmpfs"
    with open(os.path.join(shared, "new")) as f:
        assert f.read() == "y\n"
    assert not os.path.exists(os.path.join(data, "new"))
    assert site.jailctl("stop").rc == 0
    assert_nothing_left(site, (jid,))
    assert os.listdir(os.path.join(site.root, "data")) == []


def test_fstab_symlink_target_mounts_nothing(site: Site) -> None:
    data = os.path.join(site.base, "data")
    os.mkdir(data)
    os.mkdir(os.path.join(site.root, "data"))
    with open(os.path.join(data, "file"), "w") as f:
        f.write("from the host\n")
    os.symlink("/etc", os.path.join(site.root, "evil"))
    fstab = os.path.join(site.base, "fstab.www")
    with open(fstab, "w") as f:
        f.write(f"{data} /data nullfs ro 0 0\n{data} /evil/x nullfs ro 0 0\n")
    site.add(f'jail_www_mount_enable="YES"\njail_www_fstab="{fstab}"\n')
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n",
        f"jailctl: WARNING: /evil/x has symlink as parent - not mounting from {fstab}\n")
    r = run("jexec", str(site.jid()), BB, "ls", "/data")
    assert (r.rc, r.out) == (0, "")
    assert site.jailctl("stop").rc == 0
    assert_nothing_left(site)


# -- what bad input gets ------------------------------------------------------------------

@pytest.mark.parametrize("var, what", [("rootdir", "root directory"),
                                       ("hostname", "hostname"), ("ip", "IP address")])
def test_missing_required_variable(site: Site, var: str, what: str) -> None:
    with open(site.conf) as f:
        text = f.read()
    with open(site.conf, "w") as f:
        f.write("".join(line for line in text.splitlines(True)
                        if not line.startswith(f"jail_www_{var}=")))
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        3, "Default global settings for jails:.\nStarting jails:\n",
        f"jailctl: ERROR: jail: No {what} has been defined for www\n")
    assert_nothing_left(site)


def test_missing_variable_stops_the_jails_after_it(site: Site) -> None:
    site.add('jail_list="www db"\njail_db_rootdir="/nonexistent"\n')
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        3, "Default global settings for jails:.\nStarting jails: www.example.org\n",
        "jailctl: ERROR: jail: No hostname has been defined for db\n")
    assert site.jailctl("stop", "www").rc == 0
    assert_nothing_left(site)


def failing(site: Site, extra: str, reason: str) -> None:
    site.add(extra)
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        1, "Default global settings for jails:.\nStarting jails: cannot start jail "
           f"\"www\": {reason}\n.\n", "")
    assert_nothing_left(site)


def test_missing_root(site: Site) -> None:
    failing(site, f'jail_www_rootdir="{site.base}/nonexistent"\n',
            f"realpath: {site.base}/nonexistent: No such file or directory")


def test_bad_address(site: Site) -> None:
    failing(site, 'jail_www_ip="198.51.100.161,198.51.100.1x"\n',
            "Invalid value 198.51.100.1x")


def test_exec_start_failing_is_undone(site: Site) -> None:
    # DragonFly's rc.d/jail: the reason line ends after the colon, then the output
    failing(site, f"jail_www_exec_start=\"/bin/sh -c '{BB} sleep 60 >/dev/null 2>&1 & "
                  "echo failing; echo to stderr >&2; exit 3'\"\n",
            "\nfailing\nto stderr")
    with open(site.log) as f:
        assert f.read() == "failing\nto stderr\n"


def test_exec_start_missing_program(site: Site) -> None:
    site.add('jail_www_exec_start="/nonexistent/rc"\n')
    r = site.jailctl("start")
    assert (r.rc, r.err) == (1, "")
    assert r.out.splitlines()[1:] == ['Starting jails: cannot start jail "www": ',
                                      "jail: execv: /nonexistent/rc: No such file or directory",
                                      "."]
    assert_nothing_left(site)


def test_exec_start_leaving_no_process_leaves_no_id_file(site: Site) -> None:
    """Issue 16, 15: the jail ends with exec_start; no id file may name it."""
    site.add('jail_www_exec_start="/bin/sh -c \'echo started\'"\n')
    for _ in range(10):
        r = site.jailctl("start")
        assert (r.rc, r.out, r.err) == (
            0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")
        assert not os.path.exists(site.idfile)
        r = site.jailctl("status")
        assert (r.rc, r.out, r.err) == (3, "www: stopped\n", "")
    with open(site.log) as f:
        assert f.read() == "started\n"
    assert_nothing_left(site)


def test_console_log_in_the_jail_redirected_by_jailed_root(site: Site) -> None:
    """Issue 9, 5: jailed root makes var/log a symlink to a host directory."""
    host_dir = os.path.join(site.base, "host-dir")
    os.mkdir(host_dir)
    log = os.path.join(site.root, "var/log/console.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    site.add(f'jail_www_consolelog="{log}"\n')
    assert site.jailctl("start").rc == 0
    jid = site.jid()
    r = run("jexec", str(jid), "/bin/sh", "-c",
            f"{BB} mv /var/log /var/log.old && {BB} ln -s {host_dir} /var/log")
    assert r.rc == 0, r.err
    r = site.jailctl("stop")
    assert (r.rc, r.out, r.err) == (0, "Stopping jails: www.example.org.\n",
                                    f"jailctl: WARNING: {site.root}/var/log is a symbolic link\n")
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        1, "Default global settings for jails:.\nStarting jails: cannot start jail \"www\": "
           f"{site.root}/var/log is a symbolic link\n.\n", "")
    assert os.listdir(host_dir) == []
    assert_nothing_left(site, (jid,))


def test_console_log_fifo_planted_by_jailed_root(site: Site) -> None:
    log = os.path.join(site.root, "var/log/console.log")
    os.makedirs(os.path.dirname(log), exist_ok=True)
    os.mkfifo(log)
    failing(site, f'jail_www_consolelog="{log}"\n', f"{log}: not a regular file")


def test_mount_failing_is_undone(site: Site) -> None:
    fstab = os.path.join(site.base, "fstab.www")
    with open(fstab, "w") as f:
        f.write(f"{site.base} /nodir nullfs ro 0 0\n")
    failing(site, f'jail_www_mount_enable="YES"\njail_www_fstab="{fstab}"\n',
            f"{site.root}/nodir: No such file or directory")


def test_a_failed_mount_names_its_path(site: Site) -> None:
    """mount(2) is given /proc/self/fd/N (the target opened inside the root);
    the reason names the path it stands for (issue 10)."""
    os.mkdir(os.path.join(site.root, "data"))
    fstab = os.path.join(site.base, "fstab.www")
    with open(fstab, "w") as f:
        f.write("tmpfs /data tmpfs size=bogus 0 0\n")
    failing(site, f'jail_www_mount_enable="YES"\njail_www_fstab="{fstab}"\n',
            f"mount: Invalid argument ({site.root}/data)")


def test_missing_fstab_is_fatal(site: Site) -> None:
    site.add(f'jail_www_mount_enable="YES"\njail_www_fstab="{site.base}/nope"\n')
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (
        3, "Default global settings for jails:.\nStarting jails:\n",
        f"jailctl: ERROR: jail: {site.base}/nope does not exist\n")
    assert_nothing_left(site)


def test_one_failure_does_not_stop_the_others(site: Site) -> None:
    site.add('jail_list="bad www"\njail_bad_rootdir="/nonexistent/bad"\n'
             'jail_bad_hostname="bad.example.org"\njail_bad_ip="198.51.100.162"\n')
    r = site.jailctl("start")
    assert (r.rc, r.err) == (1, "")
    assert r.out == ("Default global settings for jails:.\nStarting jails: cannot start jail "
                     "\"bad\": realpath: /nonexistent/bad: No such file or directory\n"
                     " www.example.org.\n")
    assert len(ours(site.base)) == 1
    r = site.jailctl("stop")
    assert r.out == ("Stopping jails: cannot stop jail bad. No jail id in "
                     f"{site.varrun}\n www.example.org.\n")
    assert_nothing_left(site)


def test_fstab_with_nul_fails_that_jail_and_the_next_starts(site: Site) -> None:
    fstab = os.path.join(site.base, "fstab.bad")
    with open(fstab, "w") as f:
        f.write("tmpfs /tmp/\\000 tmpfs rw 0 0\n")
    site.add('jail_list="bad www"\njail_bad_rootdir="$jail_www_rootdir"\n'
             'jail_bad_hostname="bad.example.org"\njail_bad_ip="198.51.100.162"\n'
             f'jail_bad_mount_enable="YES"\njail_bad_fstab="{fstab}"\n'
             f'jail_bad_consolelog="{site.base}/bad.log"\n')
    r = site.jailctl("start")
    assert (r.rc, r.err) == (1, "")
    assert r.out.splitlines()[1:] == [
        f'Starting jails: cannot start jail "bad": {fstab}: line 1: /tmp/\\000: a path '
        'cannot hold a NUL byte', " www.example.org."]
    assert len(ours(site.base)) == 1
    assert site.jailctl("stop", "www").rc == 0
    assert_nothing_left(site)


@pytest.mark.parametrize("text, line, what", [
    ('jail_www_flags="-l -U root\n', 2, "unterminated double quote"),
    ("\n\necho $(reboot)\n", 4, "not a variable assignment: echo"),
])
def test_malformed_rc_conf(site: Site, text: str, line: int, what: str) -> None:
    site.add(text)
    r = site.jailctl("start")
    assert (r.rc, r.out, r.err) == (3, "", f"jailctl: {site.extra}: line {line}: {what}\n")
    assert_nothing_left(site)


def test_binary_rc_conf(site: Site) -> None:
    r = site.jailctl("start", files=(site.conf, "/bin/true"))
    assert (r.rc, r.out, r.err) == (
        3, "", "jailctl: /bin/true: line 1: binary data (NUL byte), not an rc.conf file\n")
    assert_nothing_left(site)


def test_boolean_neither_yes_nor_no(site: Site) -> None:
    site.add('jail_www_procfs_enable="maybe"\n')
    r = site.jailctl("start")
    assert (r.rc, r.err) == (
        0, "jailctl: WARNING: $jail_www_procfs_enable is not set properly - see rc.conf(5).\n")
    r = run("jexec", str(site.jid()), BB, "ls", "/proc")
    assert (r.rc, r.out) == (0, "")               # treated as NO: the root's own proc/
    assert site.jailctl("stop").rc == 0
    assert_nothing_left(site)


# -- interface -----------------------------------------------------------------------------

def test_interface_puts_the_address_on_that_link(site: Site) -> None:
    # a link of the test's own: a veth pair (no dummy module on these kernels)
    dummy = f"ljrc{os.getpid() % 100000}"
    r = run("ip", "link", "add", dummy, "type", "veth", "peer", "name", f"{dummy}p")
    if r.rc != 0:
        pytest.skip(f"cannot create a veth pair: {r.err.strip()}")
    try:
        run("ip", "link", "set", dummy, "up")
        site.add(f'jail_www_interface="{dummy}"\njail_www_ip="198.51.100.163"\n')
        r = site.jailctl("start")
        assert (r.rc, r.err) == (0, ""), r.out
        from linjail.state import registry
        rec = registry.lookup(site.jid())
        assert rec is not None
        # seen from the host's tools in the jail's network namespace
        r = run("nsenter", "-t", str(rec.pid), "-n", "ip", "-o", "-d", "link", "show",
                "type", "macvlan")
        assert f"@if{socket.if_nametoindex(dummy)}:" in r.out, (r.out, r.err)
        r = run("jexec", str(site.jid()), BB, "ip", "-o", "addr")
        assert "198.51.100.163/32" in r.out, r.out
        assert site.jailctl("stop").rc == 0
        assert_nothing_left(site)
        assert run("ip", "-o", "link", "show", "type", "macvlan").out.count(
            f"@{dummy}") == 0
    finally:
        run("ip", "link", "del", dummy)


def test_init_script_drives_jailctl(site: Site) -> None:
    script = os.path.join(os.path.dirname(__file__), "..", "..", "etc", "init.d", "jail")
    shim = os.path.join(site.base, "jailctl")
    jailctl = os.path.join(os.path.dirname(sys.executable), "jailctl")
    with open(shim, "w") as f:
        f.write(f'#!/bin/sh\nexec {jailctl} "$@" -f {site.conf} -f {site.extra}\n')
    os.chmod(shim, 0o755)
    env = {"PATH": HOST_PATH, "JAILCTL": shim, "LINJAIL_VARRUN": site.varrun}
    p = subprocess.run(["sh", script, "start", "www"], env=env, capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n")
    p = subprocess.run(["sh", script, "status"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and p.stdout.startswith("www: running, jid ")
    p = subprocess.run(["sh", script, "stop"], env=env, capture_output=True, text=True)
    assert (p.returncode, p.stdout) == (0, "Stopping jails: www.example.org.\n")
    assert_nothing_left(site)
