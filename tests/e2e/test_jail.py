"""jail(8) end to end: exact output, exit status, and what the jail sees (SPEC §1, §2, §7)."""
from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import (Jails, cmd, leftovers, needs_root, route_is_ours, run, wait_until)

pytestmark = needs_root
USAGE = "Usage: jail [-i] [-l -u username | -U username] path hostname ip-list command ...\n"
BB = "/usr/bin/busybox"


@pytest.mark.parametrize("args,diagnostic", [
    ([], ""), (["-x", "/", "h", "", "/bin/true"], "jail: illegal option -- x\n"),
    (["-u"], "jail: option requires an argument -- u\n"), (["/", "h", ""], ""),
    (["-u", "root", "-U", "root", "/", "h", "", "/bin/true"], ""),
    (["-l", "/", "h", "", "/bin/true"], ""),
])
def test_usage_errors(args: list[str], diagnostic: str) -> None:
    """DragonFly's libc getopt names the bad option on its own line first (SPEC §2)."""
    r = run("jail", *args)
    assert (r.rc, r.out, r.err) == (1, "", diagnostic + USAGE)


@pytest.mark.parametrize("bad", ["bogus", "1.2.3", "1.2.3.4/32", "01.2.3.4", "::1%lo",
                                 "1.2.3.4 ", "2001:db8::1::2"])
def test_invalid_address_on_stdout(service_root: str, bad: str) -> None:
    r = run("jail", service_root, "h", f"198.51.100.1,{bad}", "/bin/true")
    assert (r.rc, r.out, r.err) == (1, f"Invalid value {bad}\n", "")


def test_realpath_error() -> None:
    r = run("jail", "/nonexistent", "h", "", "/bin/true")
    assert (r.rc, r.out, r.err) == (
        1, "", "jail: realpath: /nonexistent: No such file or directory\n")


def test_execv_does_not_search_path(service_root: str) -> None:
    r = run("jail", service_root, "h", "", "sh")
    assert (r.rc, r.out, r.err) == (1, "", "jail: execv: sh: No such file or directory\n")


def test_hostname_limit(service_root: str) -> None:
    r = run("jail", service_root, "h" * 65, "", "/bin/true")
    assert (r.rc, r.out, r.err) == (1, "", "jail: jail: File name too long\n")
    r = run("jail", service_root, "h" * 64, "", BB, "hostname")
    assert (r.rc, r.out, r.err) == (0, "h" * 64 + "\n", "")


def test_unknown_host_user(service_root: str) -> None:
    r = run("jail", "-u", "no-such-user", service_root, "h", "", "/bin/true")
    assert (r.rc, r.out, r.err) == (1, "", "jail: no-such-user: no such user\n")


def test_not_root_is_refused(service_root: str) -> None:
    """A host user other than root: the DragonFly text, exit 1 (in-process, as nobody)."""
    import getopt  # noqa: F401  (the host's stdlib is out of nobody's reach)
    import sys
    from linjail.cli import _main, jail as jail_cli  # noqa: F401
    from linjail import model  # noqa: F401
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 99
        try:
            os.close(r)
            sys.stderr = open(w, "w")
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = jail_cli.main(["/", "h", "", "/bin/true"])
            sys.stderr.flush()
        finally:
            os._exit(code)
    os.close(w)
    err = os.read(r, 4096).decode()
    os.close(r)
    _, st = os.waitpid(pid, 0)
    assert (os.waitstatus_to_exitcode(st), err) == (1, "jail: jail: Operation not permitted\n")


def test_command_status_and_signal(service_root: str) -> None:
    assert run("jail", service_root, "h", "", "/bin/sh", "-c", "exit 7").rc == 7
    assert run("jail", service_root, "h", "", "/bin/sh", "-c", "kill -TERM $$").rc == 143


def test_dash_i_prints_jid_first(service_root: str) -> None:
    r = run("jail", "-i", service_root, "h", "", "/bin/sh", "-c", "echo out")
    lines = r.out.splitlines()
    assert r.rc == 0 and len(lines) == 2 and lines[0].isdigit() and lines[1] == "out"


def test_cwd_is_root_and_dotdot_stays(service_root: str) -> None:
    r = run("jail", service_root, "h", "", "/bin/sh", "-c",
            f"{BB} pwd; cd /../../..; {BB} pwd; {BB} ls /")
    assert r.rc == 0, r.err
    assert r.out.splitlines()[:2] == ["/", "/"]
    assert sorted(r.out.splitlines()[2:]) == sorted(os.listdir(service_root))


def test_sees_only_its_own_processes(service_root: str) -> None:
    r = run("jail", service_root, "h", "", "/bin/sh", "-c",
            f"{BB} ls /proc | {BB} grep -E '^[0-9]+$' | {BB} sort -n | {BB} head -1; "
            f"{BB} kill -0 {os.getpid()} 2>/dev/null && echo reached || echo unreachable; "
            f"{BB} cat /proc/1/cmdline | {BB} tr '\\0' ' '")
    lines = r.out.splitlines()
    assert lines[0] == "1"
    # kill -0 of a host PID: either it names no process in here, or an unrelated jail one
    assert lines[1] == "unreachable" or os.getpid() < 10
    assert lines[2].startswith("linjail-reaper ")


def test_user_from_jail_passwd(private_root: str) -> None:
    with open(os.path.join(private_root, "etc/passwd"), "a") as f:
        f.write("juser:x:1234:4321:Jail user:/home/juser:/bin/sh\n")
    with open(os.path.join(private_root, "etc/group"), "a") as f:
        f.write("jgroup:x:4321:\nextra:x:777:juser\n")
    os.makedirs(os.path.join(private_root, "home/juser"))
    r = run("jail", "-U", "juser", private_root, "h", "", BB, "id")
    assert r.rc == 0 and r.out.startswith("uid=1234(juser) gid=4321(jgroup) groups=")
    assert set(r.out.split("groups=")[1].split()[0].split(",")) == {"4321(jgroup)",
                                                                     "777(extra)"}
    r = run("jail", "-u", "juser", private_root, "h", "", BB, "id")
    assert (r.rc, r.err) == (1, "jail: juser: no such user\n")
    r = run("jail", "-U", "nobody-here", private_root, "h", "", BB, "id")
    assert (r.rc, r.err) == (1, "jail: nobody-here: no such user\n")


def test_login_environment(private_root: str) -> None:
    r = run("jail", "-l", "-U", "root", private_root, "h", "", BB, "env",
            env={"PATH": "/usr/bin:/bin", "TERM": "vt100", "SECRET": "x"})
    assert r.rc == 0, r.err
    assert sorted(r.out.splitlines()) == [
        "HOME=/root", "PATH=/sbin:/bin:/usr/sbin:/usr/bin:/usr/local/sbin:/usr/local/bin",
        "SHELL=/bin/sh", "TERM=vt100", "USER=root"]
    r = run("jail", "-l", "-U", "root", private_root, "h", "", BB, "pwd")
    assert r.out == "/root\n"
    os.rmdir(os.path.join(private_root, "root"))
    r = run("jail", "-l", "-U", "root", private_root, "h", "", BB, "pwd")
    assert (r.rc, r.out, r.err) == (1, "", "jail: no home directory\n")


def test_environment_kept_without_login(service_root: str) -> None:
    r = run("jail", service_root, "h", "", BB, "env",
            env={"PATH": "/usr/bin:/bin", "KEEP": "yes"})
    assert sorted(r.out.splitlines()) == ["KEEP=yes", "PATH=/usr/bin:/bin"]


def test_lifetime_follows_the_last_process(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "life.example.org", "", "/bin/sh", "-c",
                      f"{BB} sleep 2 >/dev/null 2>&1 &")
    assert f"\n{jid} " in "\n" + run("jls").out
    assert wait_until(lambda: f"\n{jid} " not in "\n" + run("jls").out, timeout=15)
    assert leftovers(jid) == []


def test_hostname_and_private_mounts(service_root: str) -> None:
    r = run("jail", service_root, "www.example.org", "", "/bin/sh", "-c",
            f"{BB} hostname; {BB} cat /proc/self/mountinfo | {BB} cut -d' ' -f5")
    lines = r.out.splitlines()
    assert lines[0] == "www.example.org"
    assert lines[1] == "/"
    assert {"/dev", "/dev/pts", "/dev/shm", "/proc"} <= set(lines[1:])
    host_mounts = open("/proc/self/mountinfo").read()
    assert service_root + "/proc " not in host_mounts and service_root + "/dev " not in host_mounts


def test_root_is_nodev(private_root: str) -> None:
    os.mknod(os.path.join(private_root, "tmp/planted-null"), 0o666 | 0o020000,
             os.makedev(1, 3))
    r = run("jail", private_root, "h", "", "/bin/sh", "-c",
            f"echo x > /tmp/planted-null && echo opened || echo refused")
    assert r.out == "refused\n"


def test_symlinked_dev_is_refused(private_root: str, tmp_path: object) -> None:
    os.rmdir(os.path.join(private_root, "dev"))
    os.symlink("/etc", os.path.join(private_root, "dev"))
    before = sorted(os.listdir("/etc"))
    r = run("jail", private_root, "h", "198.51.100.99", "/bin/true")
    assert r.rc == 1
    assert r.err == (f"jail: {private_root}/dev: is a symbolic link, refusing to mount "
                     f"/dev there\n")
    assert sorted(os.listdir("/etc")) == before
    run("jls")


def test_failed_start_leaves_nothing(private_root: str) -> None:
    run("jls")
    before_links = run("ip", "-o", "link").out.count("ljh")
    r = run("jail", "-i", "-U", "ghost", private_root, "h", "198.51.100.98,2001:db8::98",
            "/bin/true")
    assert (r.rc, r.out, r.err) == (1, "", "jail: ghost: no such user\n")
    from linjail.state import registry
    assert all(rec.hostname != "h" or rec.path != private_root
               for rec in registry.all_records())
    assert run("ip", "-o", "link").out.count("ljh") == before_links
    assert "198.51.100.98" not in run("ip", "route").out


def test_directory_on_stdin_is_refused(service_root: str) -> None:
    fd = os.open("/", os.O_RDONLY)
    try:
        p = subprocess.run([cmd("jail"), service_root, "h", "", "/bin/true"], stdin=fd,
                           capture_output=True, text=True)
    finally:
        os.close(fd)
    assert (p.returncode, p.stderr) == (
        1, "jail: standard input is a directory: refusing to pass it into a jail\n")


def test_signals_reach_the_command(service_root: str) -> None:
    p = subprocess.Popen([cmd("jail"), service_root, "h", "", "/bin/sh", "-c",
                          f"trap 'echo got TERM; exit 3' TERM; echo ready; "
                          f"while :; do {BB} sleep 0.1; done"],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    assert p.stdout.readline() == "ready\n"
    p.send_signal(signal.SIGTERM)
    out, _ = p.communicate(timeout=10)
    assert (p.returncode, out) == (3, "got TERM\n")


def test_killed_launcher_leaves_nothing(service_root: str) -> None:
    """kill -9 of `jail` at random moments: the next jls cleans up whatever is left."""
    jids = []
    for delay in (0.0, 0.02, 0.05, 0.08, 0.12, 0.2, 0.3):
        p = subprocess.Popen([cmd("jail"), "-i", service_root, "k", "198.51.100.97",
                              "/bin/true"], stdout=subprocess.PIPE, text=True)
        time.sleep(delay)
        p.kill()
        out = p.communicate()[0]
        if out.strip().isdigit():
            jids.append(int(out.split()[0]))
    time.sleep(0.5)
    run("jls")
    from linjail.state import registry
    assert [r for r in registry.all_records() if r.hostname == "k"] == []
    for jid in jids:
        assert leftovers(jid) == []
    assert "198.51.100.97" not in run("ip", "route").out


def test_concurrent_starts_get_distinct_jids(service_root: str, jails: Jails) -> None:
    procs = [subprocess.Popen([cmd("jail"), "-i", service_root, f"c{i}.example.org", "",
                               "/bin/sh", "-c", f"{BB} sleep 60 >/dev/null 2>&1 &"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(50)]
    jids = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        jids.append(jails.track(int(out)))
    assert len(set(jids)) == 50
    listed = {int(line.split()[0]) for line in run("jls").out.splitlines()[1:]}
    assert set(jids) <= listed


def test_addresses_reachable_and_not_forwarded(service_root: str, jails: Jails) -> None:
    a4, a6, b4 = "198.51.100.21", "2001:db8::21", "198.51.100.22"
    ja = jails.start(service_root, "a.example.org", f"{a4},{a6}", "/bin/sh", "-c",
                     f"{BB} httpd -p 80 -h /var/www")
    jb = jails.start(service_root, "b.example.org", f"{b4},2001:db8::22", "/bin/sh", "-c",
                     f"{BB} sleep 60 >/dev/null 2>&1 &")
    assert route_is_ours(a4) and route_is_ours(a6) and route_is_ours(b4)
    import urllib.request
    for url in (f"http://{a4}/", f"http://[{a6}]/"):
        with urllib.request.urlopen(url, timeout=5) as resp:
            assert resp.read() == b"hello from the jail\n"
    # jail to jail, at the other jail's address
    r = run("jexec", str(jb), "/bin/sh", "-c",
            f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | {BB} nc -w 5 {a4} 80")
    assert r.rc == 0 and r.out.endswith("\n\nhello from the jail\n"), (r.out, r.err)
    if os.path.exists("/proc/sys/net/ipv6/conf/all/force_forwarding"):   # Linux 6.17
        r = run("jexec", str(jb), "/bin/sh", "-c",
                f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | {BB} nc -w 5 {a6} 80")
        assert r.rc == 0 and r.out.endswith("\n\nhello from the jail\n"), (r.out, r.err)
    # the jail's own addresses and loopback, nothing else
    r = run("jexec", str(ja), BB, "ip", "-o", "addr")
    addrs = sorted(line.split()[3] for line in r.out.splitlines())
    assert [a for a in addrs if not a.startswith("fe80:")] == sorted(
        ["127.0.0.1/8", "::1/128", f"{a4}/32", f"{a6}/128"])
    # nothing forwarded beyond the host: the kernel has no route for it
    for outside, src in (("192.0.2.1", a4), ("203.0.113.254", a4), ("2001:4860::1", a6)):
        r = run("ip", "route", "get", outside, "from", src, "iif", f"ljh{ja}")
        assert r.rc != 0 and "No route to host" in r.err, (outside, r.out, r.err)
    # ... and a jail that tries gets nowhere (the route check above guards this send)
    r = run("jexec", str(ja), BB, "nc", "-w", "2", "203.0.113.254", "80")
    assert r.rc != 0 and "No route to host" in r.err, r.err
    # the jail cannot change its addresses
    r = run("jexec", str(ja), BB, "ip", "addr", "add", "198.51.100.200/32", "dev", "eth0")
    assert r.rc != 0
    r = run("jexec", str(ja), BB, "ip", "-o", "addr")
    assert "198.51.100.200" not in r.out


def test_no_address_means_loopback_only(service_root: str) -> None:
    r = run("jail", service_root, "h", "", BB, "ip", "-o", "link")
    assert [line.split()[1] for line in r.out.splitlines()] == ["lo:"]


def test_many_addresses(service_root: str, jails: Jails) -> None:
    ips = [f"198.51.100.{i}" for i in range(120, 130)] + [f"2001:db8::1:{i}" for i in range(5)]
    jid = jails.start(service_root, "many", ",".join(ips), "/bin/sh", "-c",
                      f"{BB} sleep 60 >/dev/null 2>&1 &")
    r = run("jexec", str(jid), BB, "ip", "-o", "addr", "show", "dev", "eth0")
    got = {line.split()[3].split("/")[0] for line in r.out.splitlines()}
    assert set(ips) <= got
    line = [ln for ln in run("jls").out.splitlines() if ln.startswith(f"{jid} ")][0]
    assert line.split()[3:] == list(reversed(ips))


def test_stray_files_of_a_killed_writer_are_swept() -> None:
    """A launcher killed between its tmp file and the rename leaves a stray
    file: the next jls removes it (host objects are released only through
    records: tests/e2e/test_state_isolation.py)."""
    from linjail.state import registry
    stray = os.path.join(registry.state_dir(), "jails", "999998.4194303.tmp")
    with open(stray, "w") as f:
        f.write("jid\t999998\n")
    try:
        r = run("jls")
        assert r.rc == 0 and r.err == ""
        assert not os.path.exists(stray)
    finally:
        if os.path.exists(stray):
            os.unlink(stray)


@needs_root
def test_dev_nodes_are_0666_whatever_the_umask(service_root: str) -> None:
    """A umask of 077 must not make /dev/null unwritable for the jail's other users
    (found: `jexec -U nobody` got `cannot create /dev/null: Permission denied`)."""
    names = ("null", "zero", "full", "random", "urandom", "tty")
    r = run("jail", "-U", "nobody", service_root, "h", "",
            "/bin/sh", "-c", f"{BB} stat -c '%n %a' " + " ".join(f"/dev/{n}" for n in names) +
            "; echo x > /dev/null && echo written", umask=0o077)
    assert (r.rc, r.err) == (0, "")
    assert r.out == "".join(f"/dev/{n} 666\n" for n in names) + "written\n"
