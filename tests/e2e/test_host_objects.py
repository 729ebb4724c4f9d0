"""The escape battery, administrator's side: what the host hands a jail (SPEC §7,
"Nothing of the host reaches a jail").

Each attack here worked before the rule was implemented (issue "Nothing of the
host reaches a jail"): a directory descriptor the caller leaked became the cwd
of a `-l` command through a home of /proc/self/fd/3; host files given as
stdio were rewritten and made setuid through /proc/self/fd; the host's
/dev/null was chmodded; the administrator's pty on stdout was handed in when
stdin was not a terminal; killing `jail` left its command running; closed
fds 0-2 let linjail's own descriptors reach the command.  Every test asserts
what the jail saw and that the host object is unchanged.

Safety: the host objects attacked are files of the test's own, a pty it
opened, and /dev/null, whose mode and times are restored whatever happens.
"""
from __future__ import annotations

import hashlib
import os
import pty
import random
import select
import signal
import socket
import stat
import subprocess
import time
from typing import Iterator

import pytest

from conftest import (HOST_PATH, Jails, cmd, leftovers, needs_root, run, tool_env,
                      wait_until)

pytestmark = needs_root
BB = "/usr/bin/busybox"


@pytest.fixture(scope="module", autouse=True)
def _both_root_modes(root_mode: int) -> int:
    """The whole module runs with jail.unprivileged_root=1, then =0."""
    return root_mode


def _jail(root: str, script: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([cmd("jail"), root, "h", "", "/bin/sh", "-c", script],
                          timeout=60, env=tool_env("/usr/bin:/bin"),
                          **kw)  # type: ignore[call-overload, no-any-return]


@pytest.fixture
def host_file(tmp_path: object) -> Iterator[str]:
    path = os.path.join(str(tmp_path), "host-file")
    with open(path, "w") as f:
        f.write("host data\n")
    os.chmod(path, 0o644)
    yield path


# -- 1. a host directory as cwd through the jail's own passwd -------------------

def _home(root: str, home: str) -> None:
    p = os.path.join(root, "etc/passwd")
    with open(p) as f:
        lines = f.read().splitlines()
    lines = [":".join(l.split(":")[:5] + [home] + l.split(":")[6:]) if l.startswith("root:")
             else l for l in lines]
    with open(p, "w") as f:
        f.write("\n".join(lines) + "\n")


def test_home_through_a_leaked_directory_is_no_home(private_root: str) -> None:
    """root's home /proc/self/fd/3 while the caller leaks /var/run as fd 3
    (`flock /var/run jail -l -U root ...`): before, the command's cwd was the
    host's /var/run."""
    _home(private_root, "/proc/self/fd/3")
    leak = os.open("/var/run", os.O_RDONLY | os.O_DIRECTORY)
    try:
        p = subprocess.run(
            [cmd("jail"), "-l", "-U", "root", private_root, "h", "", "/bin/sh", "-c",
             "pwd; ls ../../../etc/shadow"], capture_output=True, text=True, timeout=60,
            close_fds=False, preexec_fn=lambda: os.dup2(leak, 3))
    finally:
        os.close(leak)
    assert (p.returncode, p.stdout, p.stderr) == (1, "", "jail: no home directory\n")


@pytest.mark.parametrize("home", ["/../../../../etc", "/proc/1/cwd"])
def test_home_outside_the_root_is_no_home(private_root: str, home: str) -> None:
    _home(private_root, home)
    r = run("jail", "-l", "-U", "root", private_root, "h", "", "/bin/sh", "-c", "pwd")
    if home.startswith("/.."):        # .. stops at the jail's root: that is /etc in it
        assert (r.rc, r.out, r.err) == (0, "/etc\n", "")
    else:
        assert (r.rc, r.out, r.err) == (1, "", "jail: no home directory\n")


def test_home_is_entered(private_root: str) -> None:
    os.makedirs(os.path.join(private_root, "home/www"), exist_ok=True)
    os.symlink("/home/www", os.path.join(private_root, "wwwhome"))
    _home(private_root, "/wwwhome")           # a symlink inside the root is followed in it
    r = run("jail", "-l", "-U", "root", private_root, "h", "", "/bin/sh", "-c", "pwd")
    assert (r.rc, r.out, r.err) == (0, "/home/www\n", "")


# -- 2. host files as stdio -------------------------------------------------------

SETUID_ATTACK = (f"{BB} readlink /proc/$$/fd/0; {BB} readlink /proc/$$/fd/1; "
                 f"{BB} chmod 4755 /proc/self/fd/0 /proc/self/fd/1 2>/dev/null; "
                 f"{BB} chown 0:0 /proc/self/fd/1 2>/dev/null; "
                 f"echo jail-data; {BB} cat")


def test_host_files_as_stdio_are_relayed(service_root: str, host_file: str,
                                         tmp_path: object) -> None:
    out_path = os.path.join(str(tmp_path), "out")
    with open(out_path, "w") as f:
        os.chmod(out_path, 0o600)
    with open(host_file, "rb") as stdin, open(out_path, "ab") as stdout:
        p = _jail(service_root, SETUID_ATTACK, stdin=stdin, stdout=stdout,
                  stderr=subprocess.PIPE)
    assert (p.returncode, p.stderr) == (0, b"")
    lines = open(out_path).read().splitlines()
    assert lines[0].startswith("pipe:[") and lines[1].startswith("pipe:[")
    assert lines[2:] == ["jail-data", "host data"]
    assert stat.S_IMODE(os.stat(out_path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(host_file).st_mode) == 0o644
    assert open(host_file).read() == "host data\n"


def test_jexec_stdin_file_is_not_rewritten(service_root: str, jails: Jails,
                                           host_file: str) -> None:
    jid = jails.start(service_root, "h", "", "/bin/sh", "-c",
                      f"{BB} sleep 60 </dev/null >/dev/null 2>&1 &")
    with open(host_file, "rb") as stdin:
        p = subprocess.run([cmd("jexec"), str(jid), "/bin/sh", "-c",
                            f"{BB} cat; {BB} chmod 4777 /proc/self/fd/0; "
                            f"echo evil > /proc/self/fd/0; echo done"],
                           stdin=stdin, capture_output=True, timeout=60)
    assert (p.returncode, p.stdout) == (0, b"host data\ndone\n")
    assert stat.S_IMODE(os.stat(host_file).st_mode) == 0o644
    assert open(host_file).read() == "host data\n"


@pytest.fixture
def dev_null_guard() -> Iterator[None]:
    """/dev/null is attacked: whatever happens, its mode and times come back."""
    before = os.stat("/dev/null")
    try:
        yield
    finally:
        after = os.stat("/dev/null")
        if stat.S_IMODE(after.st_mode) != stat.S_IMODE(before.st_mode):
            os.chmod("/dev/null", stat.S_IMODE(before.st_mode))
        os.utime("/dev/null", ns=(before.st_atime_ns, before.st_mtime_ns))


def test_host_dev_null_is_not_handed_over(service_root: str, dev_null_guard: None) -> None:
    before = os.stat("/dev/null")
    p = subprocess.run([cmd("jail"), service_root, "h", "", "/bin/sh", "-c",
                        f"{BB} chmod 600 /proc/self/fd/0 /proc/self/fd/1 && "
                        f"{BB} touch -d '2001-01-01' /proc/self/fd/1 && "
                        f"s=$({BB} stat -L -c '%a %t,%T' /proc/$$/fd/1); echo \"$s\" >&2; "
                        f"echo gone; {BB} head -c 5 /dev/zero | {BB} wc -c >&2"],
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, timeout=60)
    # the jail's own null device took the chmod: mode 600, still 1,3
    assert (p.returncode, p.stderr) == (0, b"600 1,3\n5\n")
    after = os.stat("/dev/null")
    assert stat.S_IMODE(after.st_mode) == stat.S_IMODE(before.st_mode)
    assert after.st_mtime_ns == before.st_mtime_ns


# -- 3. the administrator's terminal --------------------------------------------------

@pytest.mark.parametrize("ttys", [(0,), (1,), (2,), (0, 1), (0, 2), (1, 2), (0, 1, 2), ()])
def test_stdio_terminal_combinations(service_root: str, tmp_path: object,
                                     ttys: tuple[int, ...]) -> None:
    """Every mix of terminal and non-terminal fds 0-2: the command sees a
    terminal exactly where the caller had one — the jail's own pty, never the
    caller's (its mode is unchanged after a chmod through /proc/self/fd) —
    output arrives, and the caller's terminal is usable afterwards."""
    master, slave = pty.openpty()
    slave_path = os.ttyname(slave)
    mode_before = stat.S_IMODE(os.stat(slave_path).st_mode)
    report_r, report_w = os.pipe()
    files = {n: open(os.path.join(str(tmp_path), f"fd{n}"), "w+b") for n in range(3)}
    files[0].write(b"file input\n")
    files[0].flush()
    files[0].seek(0)
    script = ("r=; for n in 0 1 2; do if [ -t $n ]; then r=\"$r $n:tty\"; "
              f"{BB} chmod 666 /proc/$$/fd/$n; else r=\"$r $n:not\"; fi; done; echo $r >&3; "
              "echo to-out; echo to-err >&2")
    std = [slave if n in ttys else files[n] for n in range(3)]
    try:
        p = subprocess.Popen([cmd("jail"), service_root, "h", "", "/bin/sh", "-c", script],
                             stdin=std[0], stdout=std[1], stderr=std[2], close_fds=False,
                             preexec_fn=lambda: os.dup2(report_w, 3),
                             env=tool_env("/usr/bin:/bin"), start_new_session=True)
        os.close(report_w)
        got = b""
        deadline = time.monotonic() + 30
        seen = b""
        while time.monotonic() < deadline:
            ready, _, _ = select.select([report_r, master], [], [], 0.2)
            if master in ready:
                try:
                    seen += os.read(master, 4096)
                except OSError:
                    pass
            if report_r in ready:
                chunk = os.read(report_r, 4096)
                if not chunk:
                    break
                got += chunk
        assert p.wait(timeout=30) == 0
        assert got.decode().split() == [f"{n}:{'tty' if n in ttys else 'not'}" for n in range(3)]
        for n, word in ((1, b"to-out"), (2, b"to-err")):
            if n in ttys:
                assert word in seen
            else:
                files[n].seek(0)
                assert files[n].read() == word + b"\n"
        assert stat.S_IMODE(os.stat(slave_path).st_mode) == mode_before
    finally:
        os.close(master)
        os.close(slave)
        os.close(report_r)
        for f in files.values():
            f.close()


def test_daemon_left_behind_loses_the_terminal(service_root: str, jails: Jails) -> None:
    """`jail ... </dev/null` on a terminal: a daemon left in the jail keeps fd 1
    but cannot reach the caller's pty once `jail` has returned."""
    master, slave = pty.openpty()
    try:
        p = subprocess.run([cmd("jail"), "-i", service_root, "h", "", "/bin/sh", "-c",
                            f"({BB} sleep 1; echo late-write) & echo started"],
                           stdin=subprocess.DEVNULL, stdout=slave, stderr=slave, timeout=60,
                           env=tool_env("/usr/bin:/bin"))
        assert p.returncode == 0
        out = b""
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if select.select([master], [], [], 0.2)[0]:
                out += os.read(master, 4096)
        assert b"started" in out and b"late-write" not in out
        jails.track(int(out.split()[0]))
    finally:
        os.close(master)
        os.close(slave)


# -- descriptors above 2 -------------------------------------------------------------

def test_only_pipes_and_stream_sockets_pass_above_2(service_root: str, host_file: str) -> None:
    pipe_r, pipe_w = os.pipe()
    a, b = socket.socketpair()
    dgram_a, dgram_b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    f = os.open(host_file, os.O_RDONLY)
    d = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    fds = {"pipe": pipe_r, "stream": a.fileno(), "dgram": dgram_a.fileno(), "file": f, "dir": d}
    at = dict(zip(fds, range(3, 8)))          # the numbers the caller gives them

    def place() -> None:
        for name, fd in fds.items():
            os.dup2(fd, at[name])
    try:
        script = "; ".join(f"if [ -e /proc/$$/fd/{at[n]} ]; then echo {n}:open; "
                           f"else echo {n}:closed; fi" for n in fds)
        os.write(pipe_w, b"through the pipe\n")
        os.close(pipe_w)
        b.sendall(b"through the socket\n")
        p = subprocess.run([cmd("jail"), service_root, "h", "", "/bin/sh", "-c",
                            f"{script}; {BB} cat <&3; {BB} head -n 1 <&4"],
                           capture_output=True, timeout=60, close_fds=False, preexec_fn=place)
        assert (p.returncode, p.stderr) == (0, b"")
        assert p.stdout.decode().splitlines() == [
            "pipe:open", "stream:open", "dgram:closed", "file:closed", "dir:closed",
            "through the pipe", "through the socket"]
    finally:
        for fd in (pipe_r, f, d):
            os.close(fd)
        for s in (a, b, dgram_a, dgram_b):
            s.close()


# -- the relay: exact, large, EOF, status, signals ------------------------------------

def test_relay_binary_safe_large_and_exit_status(service_root: str, tmp_path: object) -> None:
    data = bytes(range(256)) * 4096 + os.urandom(8 << 20)      # 9 MiB, every byte value
    src = os.path.join(str(tmp_path), "in")
    dst = os.path.join(str(tmp_path), "out")
    with open(src, "wb") as f:
        f.write(data)
    with open(src, "rb") as stdin, open(dst, "wb") as stdout:
        p = _jail(service_root, f"{BB} cat; exit 42", stdin=stdin, stdout=stdout)
    assert p.returncode == 42
    with open(dst, "rb") as f:
        assert hashlib.sha256(f.read()).digest() == hashlib.sha256(data).digest()


def test_relay_same_file_keeps_order(service_root: str, tmp_path: object) -> None:
    """`> f 2>&1`: fds 1 and 2 share one open file, so they share one pipe."""
    dst = os.path.join(str(tmp_path), "out")
    with open(dst, "wb") as out:
        p = _jail(service_root, "for i in 1 2 3 4 5; do echo out$i; echo err$i >&2; done",
                  stdin=subprocess.DEVNULL, stdout=out, stderr=out)
    assert p.returncode == 0
    assert open(dst).read().split() == [w for i in range(1, 6) for w in (f"out{i}", f"err{i}")]


def test_relay_signal_and_appended_output(service_root: str, tmp_path: object) -> None:
    dst = os.path.join(str(tmp_path), "out")
    with open(dst, "wb") as out:
        out.write(b"before\n")
    with open(dst, "ab") as out:
        p = subprocess.Popen([cmd("jail"), service_root, "h", "", "/bin/sh", "-c",
                              f"echo ready; exec {BB} sleep 30"], stdout=out,
                             stdin=subprocess.DEVNULL)
        assert wait_until(lambda: open(dst).read() == "before\nready\n", timeout=20)
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=20) == 128 + signal.SIGTERM


def test_relay_eof_on_input(service_root: str, tmp_path: object) -> None:
    src = os.path.join(str(tmp_path), "in")
    with open(src, "wb") as f:
        f.write(b"a\nb\n")
    with open(src, "rb") as stdin:
        p = _jail(service_root, f"{BB} wc -l; {BB} cat; echo after-eof", stdin=stdin,
                  capture_output=True)
    assert (p.returncode, p.stdout) == (0, b"2\nafter-eof\n")


# -- 8. killing jail kills its command --------------------------------------------------

def _counter() -> int:
    from linjail.state import registry
    try:
        with open(os.path.join(registry.state_dir(), "jid")) as f:
            return int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return 1


def _ours(root: str) -> list[int]:
    from linjail.state import registry
    return [r.jid for r in registry.live_jails() if r.path == root]


def test_kill_9_of_jail_kills_its_command(private_root: str) -> None:
    p = subprocess.Popen([cmd("jail"), "-i", private_root, "h", "", BB, "sleep", "60"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout is not None
    jid = int(p.stdout.readline())
    try:
        assert _ours(private_root) == [jid]
        p.kill()
        p.wait(timeout=10)
        assert wait_until(lambda: _ours(private_root) == [], timeout=10)
        run("jls")
        assert wait_until(lambda: leftovers(jid) == [], timeout=10), leftovers(jid)
    finally:
        p.stdout.close()
        if _ours(private_root):
            run("jailctl", "remove", "-t", "0.2", str(jid))


def test_kill_9_of_jail_leaves_daemons_alive(private_root: str, jails: Jails) -> None:
    """As on DragonFly: only the command dies; what it already started lives on."""
    p = subprocess.Popen([cmd("jail"), "-i", private_root, "h", "", "/bin/sh", "-c",
                          f"{BB} sleep 60 </dev/null >/dev/null 2>&1 & exec {BB} sleep 60"],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert p.stdout is not None
    jid = jails.track(int(p.stdout.readline()))
    p.stdout.close()
    count = (f"for p in /proc/[0-9]*; do {BB} tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; "
             f"done | {BB} grep -c '^{BB} sleep 60 $'")
    assert wait_until(lambda: run("jexec", str(jid), "/bin/sh", "-c", count).out == "2\n")
    p.kill()
    p.wait(timeout=10)
    assert wait_until(lambda: run("jexec", str(jid), "/bin/sh", "-c", count).out == "1\n"), \
        run("jexec", str(jid), "/bin/sh", "-c", count)


def test_kill_9_during_start_up_leaves_nothing(private_root: str) -> None:
    rnd = random.Random(7)
    first = _counter()
    for _ in range(40):
        p = subprocess.Popen([cmd("jail"), private_root, "h", "198.51.100.177", BB, "sleep",
                              "30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0, 0.08))
        p.kill()
        p.wait(timeout=10)
    last = _counter()
    try:
        assert wait_until(lambda: (run("jls"), _ours(private_root))[1] == [], timeout=15)
        from linjail.state import registry
        for jid in range(first, last):
            rec = registry.read(jid)
            if rec is not None and rec.path != private_root:
                continue                  # another session's jail
            # a JID claimed (its cgroup made) by a launcher killed before its
            # record was written is released CLAIM_GRACE later, by the host's
            # default registry (a private one, the module's, cannot know whose
            # an empty claim is): its jls looks
            assert wait_until(lambda: (run("jls", env={"PATH": HOST_PATH, "LANG": "C"}),
                                       run("jls"), leftovers(jid))[2] == [],
                              timeout=20, step=0.5), (jid, leftovers(jid))
    finally:
        for jid in _ours(private_root):
            run("jailctl", "remove", "-t", "0.2", str(jid))


# -- closed descriptors (issue 16, items 2, 9, 14) --------------------------------------

FD_REPORT = f"""\
r=
for n in 0 1 2 3 4 5 6 7 8 9; do
  if [ -e /proc/$$/fd/$n ]; then r="$r $n:$({BB} readlink /proc/$$/fd/$n)"; fi
done
echo "$r" > /report
"""


@pytest.mark.parametrize("closed", [(0,), (2,), (0, 2), (0, 1, 2), (1,)])
def test_closed_stdio_stays_closed_and_nothing_of_ours_lands_there(
        private_root: str, closed: tuple[int, ...], tmp_path: object) -> None:
    """`jail ... <&- 2>&-` hung (the report socket was the jail's fd 2) and the
    reaper's memfd could reach the command: now a closed fd stays closed and
    the command holds nothing of linjail's."""
    with open(os.path.join(private_root, "fds.sh"), "w") as f:
        f.write(FD_REPORT)
    out = os.path.join(str(tmp_path), "out")
    redirs = " ".join(f"{n}>&-" for n in closed)
    with open(out, "wb") as stdout:
        r = subprocess.run(["/bin/sh", "-c", f"exec {cmd('jail')} {private_root} h '' "
                            f"/bin/sh /fds.sh {redirs}"], stdin=subprocess.DEVNULL,
                           stdout=stdout, stderr=subprocess.PIPE, timeout=20)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(private_root, "report")) as f:
        items = f.read().split()
    assert [int(i.split(":")[0]) for i in items] == [n for n in (0, 1, 2) if n not in closed]
    assert not any("memfd" in i or "socket" in i for i in items), items


def test_relay_holds_nothing_of_the_caller(private_root: str, tmp_path: object) -> None:
    """The console log's relay must not hold jailctl's own descriptors:
    `out=$(jailctl start)` waited until /etc/rc's daemons ended (found by the
    rctl rc.conf test: jailctl start took the 60 s of exec_timeout)."""
    base = str(tmp_path)
    name = f"relay{os.getpid()}"
    conf = os.path.join(base, "rc.conf")
    with open(conf, "w") as f:
        f.write(f'jail_{name}_rootdir="{private_root}"\njail_{name}_hostname="{name}.test"\n'
                f'jail_{name}_ip="198.51.100.171"\njail_{name}_exec_start="/bin/sh -c \'{BB} sleep 30 &\'"\n'
                f'jail_{name}_exec_stop=""\njail_{name}_consolelog="{base}/console.log"\n')
    env = tool_env("/usr/bin:/bin", LINJAIL_VARRUN=base)
    t = time.monotonic()
    try:
        r = run("jailctl", "start", "-f", conf, name, env=env, timeout=25)
        took = time.monotonic() - t
        assert (r.rc, r.err) == (0, ""), r
        assert took < 10, took
        assert len(_ours(private_root)) == 1
    finally:
        run("jailctl", "stop", "-f", conf, name, env=env, timeout=60)
        for jid in _ours(private_root):
            run("jailctl", "remove", "-t", "0.2", str(jid))


def _ignore_libc_signals() -> None:
    """What some callers leave behind: libc's own signals 32 and 33 ignored
    (libc's sigaction refuses them; the raw system call does not)."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)

    class KSigaction(ctypes.Structure):
        _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                    ("restorer", ctypes.c_void_p), ("mask", ctypes.c_ulong)]
    act = KSigaction(1, 0, 0, 0)          # SIG_IGN
    for sig in (32, 33):
        libc.syscall(13, sig, ctypes.byref(act), None, 8)


def test_command_gets_default_signals_whatever_the_caller_ignored(
        service_root: str, jails: Jails) -> None:
    """Found by CI: started from a shell that ignored signal 32, the jail's
    command had it ignored too (the reaper's libc cannot reset it)."""
    clean = "SigIgn:\t0000000000000000\n"
    show = f"{BB} grep -E '^SigIgn:' /proc/self/status"
    p = subprocess.run([cmd("jail"), service_root, "h", "", "/bin/sh", "-c", show],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=_ignore_libc_signals)
    assert (p.returncode, p.stdout, p.stderr) == (0, clean, "")
    jid = jails.start(service_root, "h", "", "/bin/sh", "-c",
                      f"{BB} sleep 60 </dev/null >/dev/null 2>&1 &")
    p = subprocess.run([cmd("jexec"), str(jid), "/bin/sh", "-c", show],
                       capture_output=True, text=True, timeout=60,
                       preexec_fn=_ignore_libc_signals)
    assert (p.returncode, p.stdout, p.stderr) == (0, clean, "")
