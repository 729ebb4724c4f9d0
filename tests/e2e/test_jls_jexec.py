"""jls(8) and jexec(8) end to end (SPEC §3, §4), and the pty relay (SPEC §2)."""
from __future__ import annotations

import fcntl
import os
import select
import struct
import subprocess
import termios
import time

import pytest

from conftest import Jails, cmd, needs_root, run, wait_until

pytestmark = needs_root
BB = "/usr/bin/busybox"
DAEMON = f"{BB} sleep 120 >/dev/null 2>&1 &"
JEXEC_USAGE = "usage: jexec [-u username | -U username] jid command ...\n"


def _row(jid: int, host: str, path: str, ips: str) -> str:
    return "%-8s%-15s %-15s %s\n" % (jid, host, path, ips)


def test_jls_exact_format_newest_first(service_root: str, jails: Jails) -> None:
    a = jails.start(service_root, "a-rather-long-hostname.example.org", "198.51.100.41,2001:db8::41",
                    "/bin/sh", "-c", DAEMON)
    b = jails.start(service_root, "b", "", "/bin/sh", "-c", DAEMON)
    out = run("jls").out
    assert out.startswith("JID\tHostname\tPath\t\tIPs\n")
    rows = out.splitlines(keepends=True)[1:]
    ours = [r for r in rows if r.split()[0] in (str(a), str(b))]
    assert ours == [_row(b, "b", service_root, "(none)"),
                    _row(a, "a-rather-long-hostname.example.org", service_root,
                         "2001:db8::41 198.51.100.41")]


def test_jls_ipv6_standard_form(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "v6", "2001:0db8:0000:0000:0000:0000:0000:0042",
                      "/bin/sh", "-c", DAEMON)
    line = [r for r in run("jls").out.splitlines() if r.startswith(f"{jid} ")][0]
    assert line.endswith(" 2001:db8::42")


def test_jls_shows_hostname_set_inside_escaped(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "before", "", "/bin/sh", "-c", DAEMON)
    r = run("jexec", str(jid), "/bin/sh", "-c", f"{BB} hostname \"$(printf 'evil\\033[2J')\"")
    assert r.rc == 0, r.err
    line = [r for r in run("jls").out.splitlines() if r.startswith(f"{jid} ")][0]
    assert line.split()[1] == "evil\\033[2J"
    assert "\033" not in run("jls").out


def test_jls_empty_prints_nothing(service_root: str, tmp_path: object) -> None:
    env = {"PATH": "/usr/bin:/bin", "LINJAIL_STATE_DIR": str(tmp_path)}
    r = run("jls", env=env)
    assert (r.rc, r.out, r.err) == (0, "", "")


def test_jls_inside_a_jail_prints_nothing(service_root: str, jails: Jails) -> None:
    """jls run inside a jail (through the host's python, bound in read-only) is silent."""
    jid = jails.start(service_root, "inner", "", "/bin/sh", "-c", DAEMON)
    from linjail.cli._main import jailed
    assert not jailed()
    r = run("jexec", str(jid), "/bin/sh", "-c", f"{BB} cat /proc/1/environ | {BB} tr '\\0' '\\n'"
            f" | {BB} grep LINJAIL_JAILED")
    assert r.out == "LINJAIL_JAILED=1\n"


@pytest.mark.parametrize("args,err", [
    ([], JEXEC_USAGE), (["1"], JEXEC_USAGE),
    (["-u", "root", "-U", "root", "1", "true"], JEXEC_USAGE),
    (["-x", "1", "true"], "jexec: illegal option -- x\n" + JEXEC_USAGE),
    (["-U"], "jexec: option requires an argument -- U\n" + JEXEC_USAGE),
    (["12abc", "/bin/true"], "jexec: cannot parse jail id: 12abc.\n"),
    (["", "/bin/true"], "jexec: cannot parse jail id: .\n"),
    (["99999999999", "/bin/true"], "jexec: invalid jail id: 99999999999: Result too large\n"),
    (["999998", "/bin/true"], "jexec: jail_attach(999998) failed: Invalid argument\n"),
    (["0", "/bin/true"], "jexec: jail_attach(0) failed: Invalid argument\n"),
    (["no_such_jail", "/bin/true"], "jexec: cannot parse jail id: no_such_jail.\n"),
])
def test_jexec_errors(args: list[str], err: str) -> None:
    r = run("jexec", *args)
    assert (r.rc, r.out, r.err) == (1, "", err)


def test_jexec_runs_inside_with_path_search(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x.example.org", "198.51.100.43", "/bin/sh", "-c", DAEMON)
    r = run("jexec", str(jid), "busybox", "sh", "-c",
            f"{BB} hostname; {BB} pwd; echo $$; {BB} ls /proc | {BB} grep -cE '^[0-9]+$'; exit 5",
            env={"PATH": "/usr/bin:/bin"})
    lines = r.out.splitlines()
    assert r.rc == 5
    assert lines[:2] == ["x.example.org", "/"]
    assert int(lines[2]) > 1            # a PID of the jail's namespace
    assert int(lines[3]) <= 5           # reaper, sleep, sh, ls, grep at most


def test_jexec_execvp_failure(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c", DAEMON)
    r = run("jexec", str(jid), "no-such-command")
    assert (r.rc, r.out, r.err) == (1, "", "jexec: execvp(no-such-command) failed: "
                                            "No such file or directory\n")


def test_jexec_same_confinement_and_no_leaks(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c", DAEMON)
    probe = (f"{BB} grep -E '^(CapBnd|CapEff|Seccomp):' /proc/self/status; "
             f"{BB} ls /proc/self/fd | {BB} sort -n | {BB} tr '\\n' ' '")
    first = run("jail", service_root, "y", "", "/bin/sh", "-c", probe)
    joined = run("jexec", str(jid), "/bin/sh", "-c", probe)
    assert first.out.splitlines()[:3] == joined.out.splitlines()[:3]
    assert "Seccomp:\t2" in joined.out
    assert joined.out.splitlines()[3].split() == ["0", "1", "2", "3"]   # 3 is ls's own dir


def test_jexec_command_in_the_jails_cgroup(service_root: str, jails: Jails) -> None:
    """The joiner is cloned into the jail's cgroup (clone3): its command is
    at the root of the jail's cgroup namespace, like the jail's own processes."""
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c", DAEMON)
    probe = f"{BB} grep '^0::' /proc/self/cgroup"
    r = run("jexec", str(jid), "/bin/sh", "-c", probe)
    assert (r.rc, r.out, r.err) == (0, "0::/\n", "")
    assert run("jail", service_root, "y", "", "/bin/sh", "-c", probe).out == "0::/\n"


def test_jexec_directory_stdin_refused(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c", DAEMON)
    fd = os.open("/", os.O_RDONLY)
    try:
        p = subprocess.run([cmd("jexec"), str(jid), "/bin/true"], stdin=fd,
                           capture_output=True, text=True)
    finally:
        os.close(fd)
    assert (p.returncode, p.stderr) == (
        1, "jexec: standard input is a directory: refusing to pass it into a jail\n")


def test_jexec_by_user(private_root: str, jails: Jails) -> None:
    with open(os.path.join(private_root, "etc/passwd"), "a") as f:
        f.write("www:x:80:80:www:/var/www:/bin/sh\n")
    with open(os.path.join(private_root, "etc/group"), "a") as f:
        f.write("www:x:80:\n")
    jid = jails.start(private_root, "x", "", "/bin/sh", "-c", DAEMON)
    r = run("jexec", "-U", "www", str(jid), BB, "id", "-u")
    assert (r.rc, r.out) == (0, "80\n")
    r = run("jexec", "-U", "ghost", str(jid), BB, "id", "-u")
    assert (r.rc, r.err) == (1, "jexec: ghost: no such user\n")


def test_remove_kills_everything(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x", "198.51.100.44", "/bin/sh", "-c",
                      f"for i in 1 2 3 4 5; do {DAEMON} done")
    r = run("jailctl", "remove", str(jid))
    assert (r.rc, r.out, r.err) == (0, "", "")
    assert f"\n{jid} " not in "\n" + run("jls").out
    from conftest import leftovers
    assert leftovers(jid) == []
    r = run("jailctl", "remove", str(jid))
    assert (r.rc, r.err) == (1, f"jailctl: remove: {jid}: no such jail\n")


# --- the terminal ----------------------------------------------------------------------

def _spawn_on_pty(argv: list[str], rows: int = 33, cols: int = 77) -> tuple[int, subprocess.Popen]:
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                         preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
                         env={"PATH": "/usr/bin:/bin", "TERM": "dumb", "PS1": "$ "})
    os.close(slave)
    return master, p


def _read_until(fd: int, marker: bytes, timeout: float = 10) -> bytes:
    buf = b""
    deadline = time.monotonic() + timeout
    while marker not in buf and time.monotonic() < deadline:
        if select.select([fd], [], [], 0.1)[0]:
            try:
                buf += os.read(fd, 4096)
            except OSError:
                break
    return buf


def test_interactive_shell_on_private_pty(service_root: str) -> None:
    master, p = _spawn_on_pty([cmd("jail"), service_root, "tty.example.org", "", "/bin/sh", "-i"])
    try:
        os.write(master, f"{BB} stty size; {BB} tty; echo MARK$((40+2))\n".encode())
        out = _read_until(master, b"MARK42")
        assert b"33 77" in out
        assert b"/dev/pts/0" in out        # a pty of the jail's own devpts
        # Ctrl-C reaches the foreground job in the jail, the shell survives
        os.write(master, f"{BB} sleep 30\n".encode())
        time.sleep(0.5)
        os.write(master, b"\x03")
        time.sleep(0.2)
        os.write(master, b"echo after=$?\n")
        out = _read_until(master, b"after=130")
        assert b"after=130" in out
        os.write(master, b"exit 4\n")
        assert p.wait(timeout=10) == 4
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(master)


def test_jexec_on_private_pty(service_root: str, jails: Jails) -> None:
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c", DAEMON)
    master, p = _spawn_on_pty([cmd("jexec"), str(jid), "/bin/sh", "-c",
                               f"{BB} tty; {BB} stty size; echo END"], rows=21, cols=99)
    try:
        out = _read_until(master, b"END")
        assert b"/dev/pts/" in out and b"21 99" in out, out
        assert p.wait(timeout=10) == 0
    finally:
        os.close(master)


def test_daemon_left_behind_loses_the_terminal(service_root: str, jails: Jails) -> None:
    """After the command ends, nothing in the jail can write to the caller's terminal."""
    master, p = _spawn_on_pty([cmd("jail"), "-i", service_root, "t", "", "/bin/sh", "-c",
                               f"({BB} sleep 1; echo LATE; {BB} sleep 60) & echo first"])
    try:
        out = _read_until(master, b"first")
        assert b"first" in out
        assert p.wait(timeout=10) == 0
        jails.track(int(out.split()[0]))
        later = _read_until(master, b"LATE", timeout=2.5)
        assert b"LATE" not in later
    finally:
        os.close(master)


def test_jexec_process_keeps_the_jail_alive(service_root: str, jails: Jails) -> None:
    """The jail lives while any process lives in it, also one joined with jexec."""
    jid = jails.start(service_root, "x", "", "/bin/sh", "-c",
                      f"{BB} sleep 1 >/dev/null 2>&1 &")
    r = run("jexec", str(jid), "/bin/sh", "-c", f"{BB} sleep 2.5; echo survived")
    assert (r.rc, r.out) == (0, "survived\n")
    assert wait_until(lambda: f"\n{jid} " not in "\n" + run("jls").out, timeout=5)
