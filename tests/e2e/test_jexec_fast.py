"""jexec's fast path (src/linjail/reaper/jexec_fast.c): `jexec JID command`
runs in the launcher, in C, from the plan Python wrote into the jail's
record; every case here runs on both paths (LINJAIL_NO_FAST_PATH=1 is the
Python one) and must give the same bytes, status and confinement.  The
whole suite also runs on the Python path with LINJAIL_NO_FAST_PATH=1 set for
pytest (conftest.py passes it on)."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import IO, Iterator

import pytest

from conftest import BIN, HOST_PATH, cmd, needs_root, run

pytestmark = needs_root
BB = "/usr/bin/busybox"
DAEMON = f"{BB} sleep 120 >/dev/null 2>&1 &"
FAST, PYTHON = "fast", "python"
#: a registry of this module's own (made by the `state` fixture): rctl rules
#: or knobs that other runs of the suite set in the default one must not
#: decide which path is taken
STATE = ""


class Started:
    """Jails started in STATE, removed at teardown."""

    def __init__(self) -> None:
        self.jids: list[int] = []

    def start(self, *args: str) -> int:
        r = run("jail", "-i", *args, env=_env(FAST))
        assert r.rc == 0, r
        self.jids.append(int(r.out.split()[0]))
        return self.jids[-1]


@pytest.fixture
def jails() -> Iterator[Started]:
    started = Started()
    yield started
    for jid in started.jids:
        run("jailctl", "remove", "-t", "0.2", str(jid), env=_env(FAST))


@pytest.fixture(scope="module", autouse=True)
def state() -> Iterator[None]:
    global STATE
    STATE = tempfile.mkdtemp(prefix="linjail-fast-state-", dir="/run")
    yield
    shutil.rmtree(STATE, ignore_errors=True)


@pytest.fixture
def jid(service_root: str, jails: Started) -> int:
    return jails.start(service_root, "fast.example.org", "", "/bin/sh", "-c", DAEMON)


def _env(path: str, extra: dict[str, str | None] | None = None) -> dict[str, str]:
    given = {"PATH": HOST_PATH, "LANG": "C", "LINJAIL_STATE_DIR": STATE, **(extra or {})}
    env = {k: v for k, v in given.items() if v is not None}
    if path == PYTHON:
        env["LINJAIL_NO_FAST_PATH"] = "1"
    else:
        env.pop("LINJAIL_NO_FAST_PATH", None)
    return env


def _jexec(path: str, *argv: str, env: dict[str, str | None] | None = None,
           stdin: int | IO[bytes] | None = subprocess.DEVNULL,
           stdout: int | IO[bytes] = subprocess.PIPE,
           stderr: int | IO[bytes] = subprocess.PIPE) -> tuple[int, str, str]:
    p = subprocess.run([cmd("jexec"), *argv], env=_env(path, env), stdin=stdin,
                       stdout=stdout, stderr=stderr, timeout=60)
    return (p.returncode, (p.stdout or b"").decode(), (p.stderr or b"").decode())


def _exe_of_jexec(argv: list[str], env: dict[str, str], **kw: object) -> str:
    """What the jexec process is (its /proc/PID/exe) while its command runs."""
    p = subprocess.Popen([cmd("jexec"), *argv], env=env, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         **kw)  # type: ignore[call-overload]
    try:
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        return os.readlink(f"/proc/{p.pid}/exe")
    finally:
        p.send_signal(signal.SIGTERM)      # passed on to the command
        p.communicate(timeout=30)


WAIT = ["/bin/sh", "-c", f"echo ready; exec {BB} sleep 30"]
LAUNCHER = os.path.realpath(os.path.join(BIN, "jexec"))


def test_fast_path_taken(jid: int) -> None:
    assert _exe_of_jexec([str(jid), *WAIT], _env(FAST)) == LAUNCHER
    python = _exe_of_jexec([str(jid), *WAIT], _env(PYTHON))
    assert python != LAUNCHER and "python" in os.path.basename(python)


@pytest.mark.parametrize("why", ["option", "name", "fd3", "debug", "rctl"])
def test_fast_path_not_taken(jid: int, why: str, service_root: str, jails: Started) -> None:
    argv, env, kw = [str(jid), *WAIT], _env(FAST), {}
    if why == "option":
        argv = ["-n", *argv]           # any option: FreeBSD's unused -n here
    elif why == "name":
        jails.start("-c", "name=fastnamed", f"path={service_root}", "persist")
        argv = ["fastnamed", *WAIT]
    elif why == "fd3":
        r, w = os.pipe()
        kw = {"pass_fds": (r,)}
    elif why == "debug":
        env["LINJAIL_DEBUG"] = "1"
    elif why == "rctl":      # a rule naming the jail: its rlimits and v1 cgroups
        r = run("rctl", "-a", f"jail:{jid}:maxproc:deny=1000", env=env)
        assert (r.rc, r.err) == (0, "")
    exe = _exe_of_jexec(argv, env, **kw)
    if why == "rctl":
        assert run("rctl", "-r", f"jail:{jid}", env=env).rc == 0
        assert _exe_of_jexec(argv, env) == LAUNCHER
    if why == "fd3":
        os.close(r)
        os.close(w)
    assert exe != LAUNCHER


def test_rctl_rules_of_other_jails(service_root: str, jails: Started) -> None:
    """A rule for another jail changes nothing for this one: fast path; a
    jail that has v1 cgroups (it started under a rule) is joined to them by
    Python as long as any rule exists."""
    env = _env(FAST)
    other = "fastother"
    r = run("rctl", "-a", f"jail:{other}:maxproc:deny=1000", env=env)
    assert (r.rc, r.err) == (0, "")
    try:
        plain = jails.start(service_root, "plain", "", "/bin/sh", "-c", DAEMON)
        assert _exe_of_jexec([str(plain), *WAIT], env) == LAUNCHER
        r = run("rctl", "-a", "jail:fastruled:maxproc:deny=1000", env=env)
        assert (r.rc, r.err) == (0, "")
        ruled = jails.start("-n", "fastruled", service_root, "ruled", "", "/bin/sh", "-c",
                            DAEMON)
        assert _exe_of_jexec([str(ruled), *WAIT], env) != LAUNCHER
        assert run("rctl", "-r", "jail:fastruled", env=env).rc == 0
        # no rule names it, but its v1 cgroups are there while a rule exists
        assert _exe_of_jexec([str(ruled), *WAIT], env) != LAUNCHER
        assert _exe_of_jexec([str(plain), *WAIT], env) == LAUNCHER
        for path in (FAST, PYTHON):
            got = _jexec(path, str(ruled), "/bin/sh", "-c", "echo $$")
            assert got[0] == 0 and got[2] == "", got
    finally:
        run("rctl", "-r", f"jail:{other}", env=env)
        run("rctl", "-r", "jail:fastruled", env=env)


def _record(jid: int) -> str:
    with open(os.path.join(STATE, "jails", str(jid))) as f:
        return f.read()


def test_plan_written_at_start_and_remade_for_new_knobs(jid: int) -> None:
    rec = dict(line.split("\t", 1) for line in _record(jid).splitlines())
    assert rec["exec_knobs"] == rec["knobs"]
    assert int(rec["exec_caps"]) == _mask(rec["knobs"])
    assert os.path.isfile(rec["exec_seccomp"])
    probe = ["/bin/sh", "-c", f"{BB} grep -E '^CapBnd' /proc/self/status"]
    assert _jexec(FAST, str(jid), *probe)[1] == f"CapBnd:\t{_mask(rec['knobs']):016x}\n"
    r = run("jailctl", "sysctl", f"jail.{jid}.allow_raw_sockets=1", env=_env(FAST))
    assert r.rc == 0, r.err
    # the plan is for the old knobs: not taken; Python runs it and remakes it
    stale = dict(line.split("\t", 1) for line in _record(jid).splitlines())
    assert stale["exec_knobs"] != stale["knobs"]
    assert _exe_of_jexec([str(jid), *WAIT], _env(FAST)) != LAUNCHER
    fresh = dict(line.split("\t", 1) for line in _record(jid).splitlines())
    assert fresh["exec_knobs"] == fresh["knobs"]
    assert int(fresh["exec_caps"]) == _mask(fresh["knobs"]) == \
        _mask(rec["knobs"]) | 1 << 13             # CAP_NET_RAW
    assert _exe_of_jexec([str(jid), *WAIT], _env(FAST)) == LAUNCHER
    for path in (FAST, PYTHON):
        assert _jexec(path, str(jid), *probe)[1] == f"CapBnd:\t{_mask(fresh['knobs']):016x}\n"


def _mask(knobs_text: str) -> int:
    from linjail.confine import caps
    from linjail.model import Knobs
    knobs = Knobs.from_dict({k: int(v) for k, _, v in
                             (item.partition("=") for item in knobs_text.split(","))})
    return caps.mask(caps.keep_set(knobs))


CASES = {
    "status and both streams": (
        ["/bin/sh", "-c", "echo out; echo err >&2; exit 7"], None, (7, "out\n", "err\n")),
    "killed by a signal": (["/bin/sh", "-c", "kill -9 $$"], None, (137, "", "")),
    "no such command": (["no-such-command"], None, (
        1, "", "jexec: execvp(no-such-command) failed: No such file or directory\n")),
    "not executable": (["/etc/passwd"], None, (
        1, "", "jexec: execvp(/etc/passwd) failed: Permission denied\n")),
    "a directory": (["/etc"], None, (1, "", "jexec: execvp(/etc) failed: Permission denied\n")),
    # the first error other than ENOENT wins (os.execvpe)
    "PATH search keeps EACCES": (["passwd"], {"PATH": "/etc:/nonexistent"}, (
        1, "", "jexec: execvp(passwd) failed: Permission denied\n")),
    "PATH search": (["busybox", "echo", "found"], {"PATH": "/nonexistent:/usr/bin"},
                    (0, "found\n", "")),
    "no PATH: os.defpath": (["sh", "-c", "echo $0"], {"PATH": None}, (0, "sh\n", "")),
    "empty PATH: the cwd": (["sh"], {"PATH": ""}, (
        1, "", "jexec: execvp(sh) failed: No such file or directory\n")),
    "cwd, parent, hostname, cgroup": (
        ["/bin/sh", "-c", f"{BB} pwd; echo $PPID; {BB} hostname; {BB} grep '^0::' /proc/self/cgroup"],
        None, (0, "/\n0\nfast.example.org\n0::/\n", "")),
    "confinement and descriptors": (
        ["/bin/sh", "-c", f"{BB} grep -E '^(Cap|Seccomp|NoNewPrivs)' /proc/self/status; "
                          f"{BB} ls /proc/self/fd | {BB} tr '\\n' ' '"], None, None),
    "environment": (["/bin/sh", "-c", f"{BB} env | {BB} grep -v '^LINJAIL_NO_FAST_PATH='"],
                    {"ONE": "1", "TWO": "a b\tc", "EMPTY": ""}, None),
    "stdin is a null device of its own": (
        ["/bin/sh", "-c", f"{BB} stat -L -c '%t:%T %a' /proc/self/fd/0; "
                          f"{BB} readlink /proc/self/fd/0; {BB} cat"], None,
        (0, "1:3 666\n/null\n", "")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_on_both_paths(jid: int, case: str) -> None:
    argv, env, want = CASES[case]
    fast = _jexec(FAST, str(jid), *argv, env=env)
    python = _jexec(PYTHON, str(jid), *argv, env=env)
    assert fast == python
    if want is not None:
        assert fast == want
    else:
        assert fast[0] == 0 and fast[1] and not fast[2]


@pytest.fixture
def tmp_file() -> Iterator[str]:
    fd, path = tempfile.mkstemp(prefix="linjail-fast-", dir="/var/tmp")
    os.close(fd)
    yield path
    os.unlink(path)


def test_files_relayed_on_both_paths(jid: int, tmp_file: str) -> None:
    """A file on stdin, and stdout and stderr sharing one file: relays."""
    script = f"{BB} cat; echo a; echo b >&2; echo c; {BB} ls -l /proc/self/fd/0 /proc/self/fd/1"
    got = {}
    for path in (FAST, PYTHON):
        with open(tmp_file, "w") as f:
            f.write("input\n")
        with open(tmp_file, "rb") as src, open(tmp_file + ".out", "wb") as out:
            rc = _jexec(path, str(jid), "/bin/sh", "-c", script, stdin=src, stdout=out,
                        stderr=out)[0]
        with open(tmp_file + ".out") as f:
            # `ls -l` lines: the descriptor and what it is (no inode numbers)
            got[path] = (rc, [line if " -> " not in line else
                              line.split()[-3] + " " + line.split()[-1].split("[")[0]
                              for line in f.read().splitlines()])
        os.unlink(tmp_file + ".out")
    assert got[FAST] == got[PYTHON]
    rc, lines = got[FAST]
    assert rc == 0 and lines[:4] == ["input", "a", "b", "c"]
    assert lines[4:] == ["/proc/self/fd/0 pipe:", "/proc/self/fd/1 pipe:"]


def test_signals_passed_on_both_paths(jid: int) -> None:
    script = f"trap 'echo got TERM; exit 3' TERM; echo ready; while :; do {BB} sleep 0.1; done"
    for path in (FAST, PYTHON):
        p = subprocess.Popen([cmd("jexec"), str(jid), "/bin/sh", "-c", script],
                             env=_env(path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        assert p.stdout is not None
        assert p.stdout.readline() == b"ready\n"
        time.sleep(0.5)     # Python's jexec passes signals on once it knows the PID
        p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=30)
        assert (p.returncode, out, err) == (3, b"got TERM\n", b""), path


def _blocked(pid: int) -> int:
    """The signals process PID blocks (its SigBlk mask)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("SigBlk:"):
                    return int(line.split()[1], 16)
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0


def _children(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return bool(f.read().split())
    except OSError:
        return False


def _early_term(jid: int, path: str) -> tuple[int, bytes, bytes] | None:
    """Start jexec and send SIGTERM while it still blocks it (it blocks it from
    its first instruction until the command's PID is known: a few ms on the C
    path); None if that window passed unseen (jexec had a child first)."""
    term = 1 << (signal.SIGTERM - 1)
    p = subprocess.Popen([cmd("jexec"), str(jid), "/bin/sh", "-c", f"{BB} sleep 8"],
                         env=_env(path), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 5
        while p.poll() is None and time.monotonic() < deadline:
            if _blocked(p.pid) & term:
                p.send_signal(signal.SIGTERM)
                out, err = p.communicate(timeout=30)
                return p.returncode, out, err
            if _children(p.pid):
                break
            time.sleep(0.0002)
        # missed: ended as any jexec is (killing it could leave its command
        # running for a moment, holding the pipes)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
        return None
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()


@pytest.mark.parametrize("path", [FAST, PYTHON])
def test_a_signal_before_the_command_exists_reaches_it(jid: int, path: str) -> None:
    """A SIGTERM that comes while jexec is still entering the jail waits and is
    then passed on (jexec stands for its command, as on DragonFly where jexec
    is the command): the command ends by it (status 143), jexec is not killed
    by it with the command killed behind it (status -15).  Sent while jexec
    has it blocked; a try whose window passed unseen is made again."""
    got = None
    for _ in range(20):
        got = _early_term(jid, path)
        if got is not None:
            break
    assert got is not None, "jexec never blocked SIGTERM"
    assert got == (128 + signal.SIGTERM, b"", b"")
