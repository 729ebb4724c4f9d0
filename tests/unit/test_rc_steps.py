"""jailctl start/stop/restart/status over a recording fake backend (no root).

The fake stands for linjail.lifecycle.start/attach/remove and the registry:
it records every call and keeps a table of "live" jails, so the order of the
steps, the undo of a failed start and every message are checked exactly.
"""
from __future__ import annotations

import io
import os
import signal
import subprocess
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import pytest

from linjail.cli import _main
from linjail.cli.jailctl_rc import main_rc, split_action
from linjail.errors import JailError
from linjail.lifecycle import rc
from linjail.model import JailSpec, Knobs

REPO = Path(__file__).resolve().parents[2]


@dataclass
class FakeRecord:
    jid: int
    pid: int
    starttime: int
    ips: tuple[str, ...]
    name: str
    path: str = ""
    #: processes besides PID 1: False once exec_start has left none (PID 1 is
    #: still there for a moment, so the record is still live)
    procs: bool = True


@dataclass
class FakeBackend:
    calls: list[tuple[object, ...]] = field(default_factory=list)
    jails: dict[int, FakeRecord] = field(default_factory=dict)
    specs: list[JailSpec] = field(default_factory=list)
    knobs: Knobs = field(default_factory=Knobs)
    next_jid: int = 1
    #: by jail name: exit status of exec_start, whether it leaves daemons,
    #: a JailError to raise before / after the jail exists
    status: dict[str, int] = field(default_factory=dict)
    no_daemons: set[str] = field(default_factory=set)
    fail_before: dict[str, str] = field(default_factory=dict)
    fail_after: dict[str, str] = field(default_factory=dict)
    os_error: dict[str, OSError] = field(default_factory=dict)
    output: dict[str, bytes] = field(default_factory=dict)
    #: exec_start / exec_stop that never return (until a signal interrupts them)
    hang: set[str] = field(default_factory=set)
    hang_stop: bool = False
    interrupt: set[str] = field(default_factory=set)
    id_seen: list[str] = field(default_factory=list)
    idfile_probe: Callable[[str], str] | None = None

    def run_jail(self, spec: JailSpec, *, stdin: int, stdout: int, stderr: int,
                 on_jid: Callable[[int], None] | None = None) -> int:
        self.calls.append(("run_jail", spec.name))
        self.specs.append(spec)
        if spec.name in self.fail_before:
            raise JailError(self.fail_before[spec.name])
        if spec.name in self.os_error:
            raise self.os_error[spec.name]
        jid = self.next_jid
        self.next_jid += 1
        self.jails[jid] = FakeRecord(jid, 1000 + jid, 5000 + jid,
                                     tuple(str(a) for a in spec.ips), spec.name, spec.path)
        assert on_jid is not None
        on_jid(jid)
        if self.idfile_probe is not None:
            self.id_seen.append(self.idfile_probe(spec.name))
        if spec.name in self.fail_after:
            del self.jails[jid]            # run_jail undoes what it did
            raise JailError(self.fail_after[spec.name])
        if spec.name in self.interrupt:
            raise KeyboardInterrupt
        os.write(stdout, self.output.get(spec.name, f"{spec.hostname}: starting\n".encode()))
        os.write(stderr, b"some warning\n")
        if spec.name in self.hang:
            time.sleep(30)
            raise AssertionError("exec_start was not interrupted")
        if spec.name in self.no_daemons:
            self.jails[jid].procs = False
        return self.status.get(spec.name, 0)

    def exec_in_jail(self, jid: int, argv: Sequence[str], *, env: dict[str, str],
                     stdin: int, stdout: int, stderr: int) -> int:
        self.calls.append(("exec_in_jail", jid, tuple(argv), dict(env)))
        os.write(stdout, b"shutting down\n")
        if self.hang_stop:
            time.sleep(30)
            raise AssertionError("exec_stop was not interrupted")
        return 0

    def remove_jail(self, jid: int, grace: float = 1.0) -> None:
        self.calls.append(("remove_jail", jid, grace))
        if jid not in self.jails:
            raise JailError(f"no jail {jid}")
        del self.jails[jid]

    def lookup(self, jid: int) -> FakeRecord | None:
        return self.jails.get(jid)

    def has_processes(self, jid: int) -> bool:
        return jid in self.jails and self.jails[jid].procs

    def jail_paths(self) -> list[str]:
        return [r.path for r in self.jails.values()]

    def get_defaults(self) -> Knobs:
        return self.knobs

    def set_defaults(self, knobs: Knobs) -> None:
        self.calls.append(("set_defaults", knobs))
        self.knobs = knobs

    def names(self, call: str) -> list[object]:
        return [c[1] for c in self.calls if c[0] == call]


@dataclass
class Env:
    tmp: Path
    varrun: Path
    backend: FakeBackend
    conf: Path

    def root(self, name: str) -> Path:
        path = self.tmp / "jails" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def write(self, text: str) -> Path:
        self.conf.write_text(text)
        return self.conf

    def run(self, action: str, *args: str, conf: bool = True) -> tuple[int, str, str]:
        """`jailctl ACTION ARGS` in-process, through jailctl's one error
        handler (cli/_main.py), with this fake backend."""
        out, err = io.StringIO(), io.StringIO()
        argv = (["-f", str(self.conf)] if conf else []) + list(args)
        with redirect_stdout(out), redirect_stderr(err):
            code = _main.run("jailctl", lambda argv: main_rc(action, argv, out, err,
                                                               backend=self.backend), argv)
        return code, out.getvalue(), err.getvalue()

    def idfile(self, name: str) -> Path:
        return self.varrun / f"jail_{name}.id"

    def log(self, name: str) -> Path:
        return self.tmp / f"{name}.log"

    def jail(self, name: str, host: str, ip: str = "198.51.100.10", **extra: str) -> str:
        """The seed's variables for NAME (with a console log in tmp) plus EXTRA."""
        lines = [f'jail_{name}_rootdir="{self.root(name)}" # jail\'s root directory',
                 f'jail_{name}_hostname="{host}" # jail\'s hostname',
                 f'jail_{name}_ip="{ip}" # jail\'s IP address',
                 f'jail_{name}_consolelog="{self.log(name)}"']
        lines += [f'jail_{name}_{k}="{v}"' for k, v in extra.items()]
        return "\n".join(lines) + "\n"


def enabled(names: str) -> str:
    return (f'jail_enable="YES" # Set to NO to disable starting of any jails\n'
            f'jail_list="{names}" # Space separated list of names of jails\n')


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Env:
    varrun = tmp_path / "run"
    varrun.mkdir()
    monkeypatch.setenv("LINJAIL_VARRUN", str(varrun))
    monkeypatch.delenv("LINJAIL_RC_CONF", raising=False)
    return Env(tmp_path, varrun, FakeBackend(), tmp_path / "rc.conf")


# -- start ----------------------------------------------------------------------

def test_start_seed_jail(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    assert env.run("start") == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")
    spec, = env.backend.specs
    assert spec.path == str(env.root("www")) and spec.hostname == "www.example.org"
    assert spec.command == ("/bin/sh", "/etc/rc") and spec.login and spec.jail_user == "root"
    assert (spec.devfs, spec.procfs, spec.mounts, spec.interface) == (True, True, (), None)
    assert [str(a) for a in spec.ips] == ["198.51.100.10"]
    assert env.idfile("www").read_bytes() == b"1\n"        # DragonFly's: the JID alone
    assert env.log("www").read_text() == "www.example.org: starting\nsome warning\n"
    assert [c[0] for c in env.backend.calls] == ["run_jail"]


def test_id_file_written_as_soon_as_the_jail_exists(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.backend.idfile_probe = lambda name: env.idfile(name).read_text().split("\n")[0]
    assert env.run("start")[0] == 0
    assert env.backend.id_seen == ["1"]


def test_console_log_overwritten_at_start(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.log("www").write_text("old run\n" * 100)
    env.run("start")
    assert env.log("www").read_text() == "www.example.org: starting\nsome warning\n"


def test_already_running_skip(env: Env) -> None:
    env.write(enabled("www db") + env.jail("www", "www.example.org")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    assert env.run("start")[1].endswith("Starting jails: www.example.org db.example.org.\n")
    code, out, err = env.run("start")
    idf = env.varrun / "jail_www.id"
    idf2 = env.varrun / "jail_db.id"
    assert (code, err) == (0, "")
    assert out == ("Default global settings for jails:.\nStarting jails:"
                   f" [www.example.org already running ({idf} exists)]"
                   f" [db.example.org already running ({idf2} exists)].\n")
    assert env.backend.names("run_jail") == ["www", "db"]


@pytest.mark.parametrize("content", [
    "1\n",              # JID 1 is live but another jail's (after a reboot, or a wrap)
    "1",
    "7\n",              # no live record: a previous boot, or a jail that has ended
    "2\n",              # the JID the new jail will get: not live yet
    "1\nboot_id=0f0e0d0c-aaaa-bbbb-cccc-000000000001\npid=1001\nstarttime=5001\n",
    "0\n", "-1\n", " 1\n", "1\n\n", "1" * 5000 + "\n", "\u0663\n",
    "garbage\x00\xff",
    "",
])
def test_stale_id_file_is_removed_and_the_jail_started(env: Env, content: str) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    # a live jail 1 exists, but it is not www
    env.backend.jails[1] = FakeRecord(1, 1001, 5001, (), "other")
    env.backend.next_jid = 2
    env.idfile("www").write_bytes(content.encode())
    code, out, _ = env.run("start")
    assert (code, out.splitlines()[1]) == (0, "Starting jails: www.example.org.")
    assert env.idfile("www").read_bytes() == b"2\n"


def test_id_file_of_a_live_jail_of_that_name(env: Env) -> None:
    """Believed whatever else: a hand-written `echo 5 > jail_www.id` of a running www."""
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.backend.jails[5] = FakeRecord(5, 1005, 5005, ("198.51.100.10",), "www")
    env.idfile("www").write_text("5")
    assert env.run("status") == (0, "www: running, jid 5, addresses 198.51.100.10\n", "")
    assert env.run("start")[1].endswith(
        f"Starting jails: [www.example.org already running ({env.idfile('www')} exists)].\n")
    assert env.run("stop") == (0, "Stopping jails: www.example.org.\n", "")
    assert env.backend.names("remove_jail") == [5] and os.listdir(env.varrun) == []


def test_stale_id_file_symlink(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    target = env.tmp / "precious"
    target.write_text("keep")
    env.idfile("www").symlink_to(target)
    assert env.run("start")[0] == 0
    assert target.read_text() == "keep" and not env.idfile("www").is_symlink()


def test_knobs_set_and_printed(env: Env) -> None:
    env.backend.knobs = Knobs(set_hostname_allowed=0, socket_unixiproute_only=0,
                              sysvipc_allowed=0, enforce_statfs=1)
    env.write(enabled("www") + env.jail("www", "www.example.org") +
              'jail_default_sysvipc_allow="YES"\njail_www_sysvipc_allowed="NO"\n'
              'jail_www_chflags_allowed=YES\n')
    code, out, err = env.run("start")
    assert out.splitlines()[0] == ("Default global settings for jails: set_hostname_allow=YES "
                                   "unixiproute_only=YES sysvipc_allow=YES.")
    assert env.backend.calls[0] == ("set_defaults", Knobs(1, 1, 1, 1, 0, 0))
    # chflags need host root: no user namespace for www, and one line says so (issue 11)
    assert env.backend.specs[0].knobs == Knobs(1, 1, 0, 1, 0, 1, unprivileged_root=0)
    assert err == ("jailctl: WARNING: www: chflags_allowed=1 needs CAP_LINUX_IMMUTABLE in the "
                   "host's user namespace: this jail gets unprivileged_root=0 (jailed root is "
                   "host root)\n")


def test_jail_enable_no(env: Env) -> None:
    env.write(env.jail("www", "www.example.org") + 'jail_list="www"\n')
    assert env.run("start") == (0, "", "")
    assert env.run("stop") == (0, "", "")
    assert env.backend.calls == []
    assert env.run("start", "www")[0] == 0
    assert env.run("stop", "www")[1] == "Stopping jails: www.example.org.\n"
    assert env.run("start", "--force")[1].endswith("Starting jails: www.example.org.\n")
    assert env.run("onestop")[1] == "Stopping jails: www.example.org.\n"
    env.write(env.jail("www", "www.example.org") + 'jail_list="www"\njail_enable=maybe\n')
    assert env.run("start") == (
        0, "", "jailctl: WARNING: $jail_enable is not set properly - see rc.conf(5).\n")


def test_names_replace_jail_list(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    assert env.run("start", "db")[1].endswith("Starting jails: db.example.org.\n")
    assert env.backend.names("run_jail") == ["db"]


def test_missing_variable_stops_everything_after_it(env: Env) -> None:
    conf = (enabled("one two three") + env.jail("one", "one.example.org", "198.51.100.1")
            + env.jail("two", "two.example.org", "198.51.100.2")
            + env.jail("three", "three.example.org", "198.51.100.3"))
    env.write("\n".join(line for line in conf.splitlines()
                        if not line.startswith("jail_two_hostname")))
    assert env.run("start") == (
        3, "Default global settings for jails:.\nStarting jails: one.example.org\n",
        "jailctl: ERROR: jail: No hostname has been defined for two\n")
    assert env.backend.names("run_jail") == ["one"]
    assert sorted(os.listdir(env.varrun)) == ["jail_one.id"]


@pytest.mark.parametrize("drop, what", [("rootdir", "root directory"),
                                        ("ip", "IP address")])
def test_missing_rootdir_or_ip(env: Env, drop: str, what: str) -> None:
    conf = enabled("www") + env.jail("www", "www.example.org")
    env.write("\n".join(line for line in conf.splitlines()
                        if not line.startswith(f"jail_www_{drop}")))
    code, out, err = env.run("start")
    assert (code, err) == (3, f"jailctl: ERROR: jail: No {what} has been defined for www\n")
    assert env.backend.calls == [] and os.listdir(env.varrun) == []


def test_failed_start_is_undone_and_others_start(env: Env) -> None:
    env.write(enabled("bad www") + env.jail("bad", "bad.example.org", "198.51.100.9")
              + env.jail("www", "www.example.org"))
    env.backend.status["bad"] = 3
    code, out, err = env.run("start")
    assert code == 1 and err == ""
    # DragonFly's rc.d/jail: the line ends after the colon, exec_start's output follows
    assert out == ("Default global settings for jails:.\nStarting jails: cannot start jail "
                   "\"bad\": \nbad.example.org: starting\nsome warning\n www.example.org.\n")
    assert ("remove_jail", 1, 1.0) in env.backend.calls
    assert 1 not in env.backend.jails and 2 in env.backend.jails
    assert sorted(os.listdir(env.varrun)) == ["jail_www.id"]
    assert "starting" in env.log("bad").read_text()       # kept for the administrator


def test_a_jail_released_between_the_looks_is_undone_silently(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """exec_start failed and the jail's PID 1 ends: the undo's lookup still
    sees it live, its remove finds it released already (no such jail).  That
    is the undo done, not a warning."""
    env.write(enabled("bad") + env.jail("bad", "bad.example.org"))
    env.backend.status["bad"] = 3
    real = env.backend.remove_jail

    def gone_first(jid: int, grace: float = 1.0) -> None:
        env.backend.jails.pop(jid, None)          # released by the sweep meanwhile
        real(jid, grace)
    monkeypatch.setattr(env.backend, "remove_jail", gone_first)
    code, out, err = env.run("start")
    assert (code, err) == (1, "")
    assert out.splitlines()[1] == 'Starting jails: cannot start jail "bad": '
    assert env.backend.jails == {}


@pytest.mark.parametrize("extra, reason", [
    ({"ip": "198.51.100.300"}, "Invalid value 198.51.100.300"),
    ({"flags": "-l"}, "jail_www_flags: -l needs -u or -U"),
    ({"exec_start": "'"}, "jail_www_exec_start: No closing quotation"),
])
def test_bad_values_fail_before_anything(env: Env, extra: dict[str, str],
                                         reason: str) -> None:
    conf = enabled("www") + env.jail("www", "www.example.org")
    for key, value in extra.items():
        conf += f"jail_www_{key}=\"{value}\"\n" if key != "exec_start" else \
            f"jail_www_{key}=\"{value}\"\n"
    env.write(conf)
    code, out, _ = env.run("start")
    assert code == 1
    assert out.splitlines()[1] == f"Starting jails: cannot start jail \"www\": {reason}"
    assert env.backend.calls == [] and os.listdir(env.varrun) == []
    assert not env.log("www").exists()


def test_missing_root(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.root("www").rmdir()
    code, out, _ = env.run("start")
    assert code == 1 and out.splitlines()[1] == (
        f"Starting jails: cannot start jail \"www\": realpath: {env.root('www')}: "
        "No such file or directory")
    assert env.backend.calls == [] and not env.log("www").exists()


@pytest.mark.parametrize("when, message, reason", [
    ("fail_before", "mount(\"/data\"): Operation not permitted",
     "mount(\"/data\"): Operation not permitted"),
    ("fail_after", "/srv/x: No such file or directory", "/srv/x: No such file or directory"),
    ("fail_before", "jail: File name too long", "jail: File name too long"),
    ("os_error", OSError(19, "interface eth9: no such interface"),
     "interface eth9: no such interface"),
    ("os_error", OSError(2, "No such file or directory", "/sys/x"),
     "/sys/x: No such file or directory"),
    # an errno the user can act on gets its hint (errors.hint)
    ("os_error", OSError(24, "Too many open files"), "Too many open files; this process "
     "has as many files open as its limit allows (ulimit -n)"),
])
def test_creation_failure_is_undone(env: Env, when: str, message: object, reason: str) -> None:
    env.write(enabled("www db") + env.jail("www", "www.example.org")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    getattr(env.backend, when)["www"] = message
    code, out, _ = env.run("start")
    assert code == 1 and out.splitlines()[1] == (
        f"Starting jails: cannot start jail \"www\": {reason}")
    assert out.splitlines()[2] == " db.example.org."
    assert os.listdir(env.varrun) == ["jail_db.id"]
    assert [r.name for r in env.backend.jails.values()] == ["db"]
    assert not env.log("www").exists()          # created by us and empty: removed
    assert env.backend.names("remove_jail") == []


def test_id_file_failure_is_undone(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))

    def full(path: str, jid: int) -> None:
        raise OSError(28, os.strerror(28), path)
    monkeypatch.setattr(rc, "write_id", full)
    code, out, _ = env.run("start")
    assert code == 1
    assert out.splitlines()[1] == (f'Starting jails: cannot start jail "www": '
                                   f'{env.idfile("www")}: No space left on device')
    assert env.backend.jails == {} and env.backend.names("remove_jail") == [1]
    assert os.listdir(env.varrun) == []


def test_id_path_not_a_file(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.idfile("www").mkdir()
    assert env.run("start") == (
        1, "Default global settings for jails:.\nStarting jails:\n",
        f"jailctl: {env.idfile('www')}: not a regular file\n")
    assert env.backend.calls == []


class Hung(Exception):
    pass


@contextmanager
def no_hang(seconds: int = 5) -> Iterator[None]:
    """Fail, not hang, when the body blocks (a FIFO opened for reading, say)."""
    def expired(signum: int, frame: object) -> None:
        raise Hung(f"still blocked after {seconds} s")
    old = signal.signal(signal.SIGALRM, expired)
    outer = signal.getitimer(signal.ITIMER_REAL)       # pytest-timeout's, if any
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        if outer[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *outer)


@pytest.mark.parametrize("action, out", [
    ("start", "Default global settings for jails:.\nStarting jails:\n"),
    ("stop", "Stopping jails:\n"),
    ("status", ""),
])
def test_id_file_fifo_is_refused_not_waited_on(env: Env, action: str, out: str) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    os.mkfifo(env.idfile("www"))
    with no_hang():
        assert env.run(action) == (1, out, f"jailctl: {env.idfile('www')}: not a regular file\n")
    assert env.backend.calls == []


def test_id_file_socket_is_refused(env: Env) -> None:
    import socket
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(env.idfile("www")))
        assert env.run("status") == (1, "", f"jailctl: {env.idfile('www')}: not a regular "
                                            "file\n")


def test_exec_start_output_reaches_the_terminal_escaped(env: Env) -> None:
    """A jail's output must not drive the administrator's terminal (as jls's hostnames)."""
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.backend.status["www"] = 1
    env.backend.output["www"] = b"\x1b]2;owned\x07\tok\r\n\xff\xc2\x9b\n"
    code, out, _ = env.run("start")
    assert code == 1
    assert out.splitlines(True)[1:] == [
        'Starting jails: cannot start jail "www": \n', "\\033]2;owned\\007\tok\\015\n",
        "\\xff\\233\n", "some warning\n", ".\n"]
    assert env.log("www").read_bytes().startswith(b"\x1b]2;owned")     # the log keeps it all


def test_console_log_symlink_in_the_jail_tree(env: Env) -> None:
    """Jailed root replaced var/log with a symlink to a host directory (issue 9, 5)."""
    root = env.root("www")
    host_dir = env.tmp / "host-etc"
    host_dir.mkdir()
    (root / "var").mkdir()
    (root / "var" / "log").symlink_to(host_dir)
    log = root / "var/log/console.log"
    env.write(enabled("www db") + env.jail("www", "www.example.org") +
              f'jail_www_consolelog="{log}"\n' + env.jail("db", "db.example.org", "198.51.100.11"))
    assert env.run("start") == (
        1, "Default global settings for jails:.\nStarting jails: cannot start jail \"www\": "
           f"{root}/var/log is a symbolic link\n db.example.org.\n", "")
    assert list(host_dir.iterdir()) == []
    assert env.backend.names("run_jail") == ["db"]


@pytest.mark.parametrize("last", ["link", "fifo", "dir", "socket"])
def test_console_log_itself_planted(env: Env, last: str) -> None:
    import socket
    root = env.root("www")
    (root / "var/log").mkdir(parents=True)
    log = root / "var/log/console.log"
    victim = env.tmp / "shadow"
    victim.write_text("secret\n")
    sock = socket.socket(socket.AF_UNIX)
    if last == "link":
        log.symlink_to(victim)
    elif last == "fifo":
        os.mkfifo(log)
    elif last == "dir":
        log.mkdir()
    else:
        sock.bind(str(log))
    env.write(enabled("www") + env.jail("www", "www.example.org") +
              f'jail_www_consolelog="{log}"\n')
    why = {"link": f"{log} is a symbolic link", "dir": f"{log}: Is a directory"}.get(
        last, f"{log}: not a regular file")
    with no_hang():
        assert env.run("start") == (
            1, "Default global settings for jails:.\nStarting jails: cannot start jail "
               f"\"www\": {why}\n.\n", "")
    sock.close()
    assert victim.read_text() == "secret\n" and env.backend.calls == []


def test_console_log_through_a_host_symlink(env: Env) -> None:
    """Host-controlled prefixes resolve normally (/var/run -> /run on Debian)."""
    real = env.tmp / "real-logs"
    real.mkdir()
    (env.tmp / "logs").symlink_to(real)
    env.write(enabled("www") + env.jail("www", "www.example.org") +
              f'jail_www_consolelog="{env.tmp}/logs/www.log"\n')
    assert env.run("start")[0] == 0
    assert (real / "www.log").read_text() == "www.example.org: starting\nsome warning\n"


def test_console_log_fifo_outside_the_jail_is_refused(env: Env) -> None:
    os.mkfifo(env.log("www"))
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    with no_hang():
        assert env.run("start")[1].splitlines()[1] == (
            f'Starting jails: cannot start jail "www": {env.log("www")}: not a regular file')


def test_console_log_dev_null(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org", consolelog="/dev/null"))
    assert env.run("start") == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")
    assert env.run("stop") == (0, "Stopping jails: www.example.org.\n", "")


def test_exec_stop_log_symlink_planted_while_running(env: Env) -> None:
    root = env.root("www")
    (root / "var/log").mkdir(parents=True)
    log = root / "var/log/console.log"
    env.write(enabled("www") + env.jail("www", "www.example.org") +
              f'jail_www_consolelog="{log}"\n')
    assert env.run("start")[0] == 0
    host_dir = env.tmp / "host-etc"
    host_dir.mkdir()
    (root / "var/log").rename(root / "var/log.old")
    (root / "var/log").symlink_to(host_dir)
    assert env.run("stop") == (0, "Stopping jails: www.example.org.\n",
                               f"jailctl: WARNING: {root}/var/log is a symbolic link\n")
    assert list(host_dir.iterdir()) == []
    assert ("exec_in_jail", 1, ("/bin/sh", "/etc/rc.shutdown"), {}) in env.backend.calls


def test_exec_start_timeout_is_a_failed_start(env: Env) -> None:
    """Issue 9, 7: exec.timeout; the jail is removed, the next one starts."""
    env.write(enabled("www db") + env.jail("www", "www.example.org", exec_timeout="1")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    env.backend.hang.add("www")
    began = time.monotonic()
    with no_hang(10):
        before = signal.getsignal(signal.SIGALRM)
        code, out, err = env.run("start")
        assert signal.getsignal(signal.SIGALRM) == before      # put back as it was
    assert 1 <= time.monotonic() - began < 5
    assert (code, err) == (1, "")
    assert out == ("Default global settings for jails:.\nStarting jails: cannot start jail "
                   "\"www\": /bin/sh /etc/rc: timed out\nwww.example.org: starting\n"
                   "some warning\n db.example.org.\n")
    assert env.backend.names("remove_jail") == [1]
    assert [r.name for r in env.backend.jails.values()] == ["db"]
    assert os.listdir(env.varrun) == ["jail_db.id"]


def test_exec_stop_timeout_goes_on_with_the_stop(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org") + 'jail_exec_timeout="1"\n')
    assert env.run("start")[0] == 0
    env.backend.hang_stop = True
    began = time.monotonic()
    with no_hang(10):
        code, out, err = env.run("stop")
    assert 1 <= time.monotonic() - began < 5
    assert (code, out, err) == (0, "Stopping jails: www.example.org.\n",
                                "jailctl: WARNING: www: /bin/sh /etc/rc.shutdown: timed out\n")
    assert env.backend.calls[-1] == ("remove_jail", 1, 1.0)
    assert env.backend.jails == {} and os.listdir(env.varrun) == []


def test_exec_timeout_zero_is_no_limit(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    armed: list[float] = []
    monkeypatch.setattr(rc.signal, "setitimer", lambda which, t: armed.append(t))
    env.write(enabled("www") + env.jail("www", "www.example.org", exec_timeout="0"))
    assert env.run("start")[0] == 0 and env.run("stop")[0] == 0
    assert armed == []
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    assert env.run("start")[0] == 0 and env.run("stop")[0] == 0
    assert armed == [60.0, 0.0, 60.0, 0.0]      # the default, FreeBSD's exec.timeout


def test_interrupted_start_is_undone(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.backend.interrupt.add("www")
    code, _, err = env.run("start")          # jailctl's handler: Ctrl-C ends it with 130
    assert (code, err) == (130, "")
    assert env.backend.jails == {} and os.listdir(env.varrun) == []


def test_exec_start_leaving_nothing(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org", exec_start="/bin/true"))
    env.backend.no_daemons.add("www")
    assert env.run("start")[1].endswith("Starting jails: www.example.org.\n")
    assert os.listdir(env.varrun) == []
    assert env.run("status")[1] == "www: stopped\n"


def test_start_step_table() -> None:
    assert [s.name for s in rc.START_STEPS] == ["plan", "console log", "create", "record"]


# -- fstab ------------------------------------------------------------------------

def test_fstab_mounts(env: Env) -> None:
    root = env.root("www")
    (root / "data").mkdir()
    fst = env.tmp / "fstab.www"
    fst.write_text(f"/srv/data {root}/data nullfs ro 0 0\ntmpfs /tmp tmpfs size=1m 0 0\n")
    env.write(enabled("www") + env.jail("www", "www.example.org", mount_enable="YES",
                                        fstab=str(fst)))
    assert env.run("start")[0] == 0
    mounts = env.backend.specs[0].mounts
    assert [(m.kind, m.source, m.target, m.readonly, m.options) for m in mounts] == [
        ("bind", "/srv/data", "/data", True, ""), ("tmpfs", "tmpfs", "/tmp", False, "size=1m")]


def test_fstab_symlink_target_mounts_nothing(env: Env) -> None:
    root = env.root("www")
    (root / "data").mkdir()
    (root / "etc").symlink_to("/etc")
    fst = env.tmp / "fstab.www"
    fst.write_text(f"/srv/data {root}/data nullfs ro 0 0\n/srv/x /etc/x nullfs rw 0 0\n")
    env.write(enabled("www") + env.jail("www", "www.example.org", mount_enable="YES",
                                        fstab=str(fst)))
    code, out, err = env.run("start")
    assert (code, err) == (0, f"jailctl: WARNING: /etc/x has symlink as parent - not "
                              f"mounting from {fst}\n")
    assert out.endswith("Starting jails: www.example.org.\n")
    assert env.backend.specs[0].mounts == ()


def test_fstab_missing_is_fatal(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org", mount_enable="YES",
                                        fstab="/nonexistent/fstab.www"))
    assert env.run("start") == (
        3, "Default global settings for jails:.\nStarting jails:\n",
        "jailctl: ERROR: jail: /nonexistent/fstab.www does not exist\n")
    assert env.backend.calls == []


def test_fstab_malformed_fails_that_jail(env: Env) -> None:
    fst = env.tmp / "fstab.www"
    fst.write_text("/a /b ext4 rw\n")
    env.write(enabled("www") + env.jail("www", "www.example.org", mount_enable="YES",
                                        fstab=str(fst)))
    code, out, _ = env.run("start")
    assert code == 1 and out.splitlines()[1] == (
        f"Starting jails: cannot start jail \"www\": {fst}: line 1: unsupported file "
        "system type ext4 (bind mounts and tmpfs only)")


# -- stop, restart, status -----------------------------------------------------------

def test_stop(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.run("start")
    assert env.run("stop") == (0, "Stopping jails: www.example.org.\n", "")
    assert env.backend.calls[1:] == [
        ("exec_in_jail", 1, ("/bin/sh", "/etc/rc.shutdown"), {}), ("remove_jail", 1, 1.0)]
    assert os.listdir(env.varrun) == []
    assert env.log("www").read_text() == ("www.example.org: starting\nsome warning\n"
                                          "shutting down\n")


def test_stop_custom_exec_start_has_no_exec_stop(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org", exec_start="/bin/srv"))
    env.run("start")
    env.run("stop")
    assert [c[0] for c in env.backend.calls] == ["run_jail", "remove_jail"]


def test_stop_not_running(env: Env) -> None:
    env.write(enabled("www db") + env.jail("www", "www.example.org")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    env.run("start", "db")
    assert env.run("stop") == (
        0, f"Stopping jails: cannot stop jail www. No jail id in {env.varrun}\n"
           " db.example.org.\n", "")


def test_stop_stale_id_file(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.idfile("www").write_text("3\n")
    assert env.run("stop")[1] == (
        f"Stopping jails: cannot stop jail www. No jail id in {env.varrun}\n.\n")
    assert os.listdir(env.varrun) == [] and env.backend.calls == []


def test_stop_missing_variable(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.run("start")
    env.write(enabled("www") + f'jail_www_rootdir="{env.root("www")}"\n')
    assert env.run("stop") == (
        3, "Stopping jails:\n", "jailctl: ERROR: jail: No hostname has been defined for www\n")


def test_restart(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    env.run("start")
    assert env.run("restart") == (
        0, "Stopping jails: www.example.org.\nDefault global settings for jails:.\n"
           "Starting jails: www.example.org.\n", "")
    assert env.idfile("www").read_bytes() == b"2\n"
    code, out, _ = env.run("restart", "www")
    assert code == 0 and env.idfile("www").read_bytes() == b"3\n"


def test_status(env: Env) -> None:
    env.write(enabled("www db") + env.jail("www", "www.example.org", "198.51.100.10,2001:db8::a")
              + env.jail("db", "db.example.org", "198.51.100.11"))
    env.run("start", "www")
    assert env.run("status") == (
        3, "www: running, jid 1, addresses 198.51.100.10 2001:db8::a\ndb: stopped\n", "")
    assert env.run("status", "www") == (0, "www: running, jid 1, addresses 198.51.100.10 "
                                           "2001:db8::a\n", "")


# -- the command line ---------------------------------------------------------------

def test_malformed_rc_conf_starts_nothing(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org") + 'jail_www_flags="-l\n')
    lines = len(env.conf.read_text().splitlines())
    assert env.run("start") == (
        3, "", f"jailctl: {env.conf}: line {lines}: unterminated double quote\n")
    assert env.backend.calls == []


def test_binary_rc_conf(env: Env) -> None:
    env.conf.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00")
    assert env.run("status") == (
        3, "", f"jailctl: {env.conf}: line 1: binary data (NUL byte), not an rc.conf file\n")


def test_several_files_later_wins(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    local = env.tmp / "rc.conf.local"
    local.write_text('jail_www_hostname="later.example.org"\n')
    out, err = io.StringIO(), io.StringIO()
    code = main_rc("start", ["-f", str(env.conf), "www", "-f", str(local)], out, err,
                   backend=env.backend)
    assert (code, out.getvalue().splitlines()[1]) == (0, "Starting jails: later.example.org.")


def test_rc_conf_from_environment(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    monkeypatch.setenv("LINJAIL_RC_CONF", str(env.conf))
    assert env.run("start", conf=False)[1].endswith("www.example.org.\n")


def test_missing_f_file(env: Env) -> None:
    assert env.run("start") == (3, "", f"jailctl: {env.conf}: No such file or directory\n")


@pytest.mark.parametrize("action, argv", [("jump", []), ("start", ["-x"]), ("stop", ["-f"])])
def test_usage(env: Env, action: str, argv: list[str]) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main_rc(action, argv, out, err, backend=env.backend) == 1
    assert err.getvalue() == ("usage: jailctl start|stop|restart|status [--force] [-f file] "
                              "... [name ...]\n")


def test_invalid_name_on_command_line(env: Env) -> None:
    env.write(enabled("www") + env.jail("www", "www.example.org"))
    assert env.run("stop", "../../etc/passwd") == (
        3, "Stopping jails:\n", "jailctl: ERROR: jail: Invalid jail name '../../etc/passwd'\n")


def test_split_action() -> None:
    assert split_action("start") == ("start", False)
    assert split_action("onestart") == ("start", True)
    assert split_action("forcestop") == ("stop", True)
    assert split_action("status") == ("status", False)
    assert split_action("faststart") == ("start", False)
    assert split_action("quietrestart") == ("restart", False)
    assert split_action("onejump") is None
    assert split_action("oneforcestart") is None


@pytest.fixture
def cli(env: Env, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> Callable[..., tuple[int, str, str]]:
    """`jailctl ARGS...` in-process, its rc service driven by the fake backend."""
    from linjail.cli import jailctl, jailctl_rc

    def with_fake(action: str, argv: list[str], out: object, err: object,
                  backend: object = None) -> int:
        return main_rc(action, argv, out, err, backend=env.backend)  # type: ignore[arg-type]
    monkeypatch.setattr(jailctl_rc, "main_rc", with_fake)

    def run(*args: str) -> tuple[int, str, str]:
        code = jailctl.main(list(args))
        out, err = capsys.readouterr()
        return code, out, err
    return run


@pytest.mark.parametrize("verb", ["start", "stop", "restart", "status"])
@pytest.mark.parametrize("prefix", ["", "one", "force", "fast", "quiet"])
def test_rc_subr_prefixes_on_every_verb(env: Env, cli: Callable[..., tuple[int, str, str]],
                                        prefix: str, verb: str) -> None:
    # jail_enable is NO: one* and force* run all the same (rc.subr sets the rcvar to YES)
    env.write(env.jail("www", "www.example.org") + 'jail_list="www"\n')
    if verb in ("stop", "status"):
        env.run("start", "www")
    code, out, err = cli(prefix + verb, "-f", str(env.conf))
    runs = prefix in ("one", "force")
    want = {"start": "Default global settings for jails:.\nStarting jails: www.example.org.\n",
            "stop": "Stopping jails: www.example.org.\n",
            "restart": "Stopping jails: cannot stop jail www. No jail id in "
                       f"{env.varrun}\n.\nDefault global settings for jails:.\n"
                       "Starting jails: www.example.org.\n",
            "status": "www: running, jid 1, addresses 198.51.100.10\n"}[verb]
    if verb == "status":       # status is not switched off by jail_enable
        assert (code, out, err) == (0, want, "")
    else:
        assert (code, out, err) == ((0, want, "") if runs else (0, "", ""))


@pytest.mark.parametrize("argv", [
    ["start", "-f{conf}"],
    ["start", "www", "-f", "{conf}"],
    ["start", "-f", "{conf}", "--", "www"],
    ["start", "--file={conf}", "--", "www"],
    ["onestart", "--force", "-f{conf}", "www", "--"],
])
def test_getopt_command_lines(env: Env, cli: Callable[..., tuple[int, str, str]],
                              argv: list[str]) -> None:
    env.write(env.jail("www", "www.example.org") + 'jail_list="www"\njail_enable=YES\n')
    code, out, err = cli(*[a.format(conf=env.conf) for a in argv])
    assert (code, out, err) == (
        0, "Default global settings for jails:.\nStarting jails: www.example.org.\n", "")


def test_operand_after_double_dash_is_a_name(env: Env,
                                             cli: Callable[..., tuple[int, str, str]]) -> None:
    env.write(env.jail("www", "www.example.org"))
    assert cli("status", "-f", str(env.conf), "--", "-f") == (
        3, "", "jailctl: ERROR: jail: Invalid jail name '-f'\n")


@pytest.mark.parametrize("argv", [["remove", "7", "-t", "2.5"], ["remove", "-t2.5", "--", "7"],
                                  ["remove", "--", "7", "-t", "2.5"]])
def test_remove_command_lines(monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    from linjail.cli import jailctl
    from linjail.lifecycle import remove
    calls: list[tuple[int, float]] = []
    monkeypatch.setattr(remove, "remove_jail", lambda jid, grace: calls.append((jid, grace)))
    monkeypatch.setattr(jailctl.os, "geteuid", lambda: 0)
    if argv[1] == "--" and argv[3:]:
        # after `--` everything is an operand: two JIDs are a usage error
        assert jailctl.main(argv) == 1 and calls == []
        assert capsys.readouterr().err.startswith("usage: jailctl build")
        return
    assert jailctl.main(argv) == 0
    assert calls == [(7, 2.5)] and capsys.readouterr() == ("", "")


@pytest.mark.parametrize("value", ["inf", "nan", "1e400", "1_0", "-1", "", ".", "1.2.3", "٣"])
def test_remove_grace_must_be_seconds(capsys: pytest.CaptureFixture[str], value: str) -> None:
    from linjail.cli import jailctl
    assert jailctl.main(["remove", "-t", value, "7"]) == 1
    assert capsys.readouterr() == ("", f"jailctl: remove: -t {value}: not a number of "
                                       "seconds\n")


# -- boot integration -----------------------------------------------------------------

def test_init_script_calls_jailctl(tmp_path: Path) -> None:
    fake = tmp_path / "jailctl"
    fake.write_text('#!/bin/sh\necho "jailctl $*"\nexit 7\n')
    fake.chmod(0o755)
    script = str(REPO / "etc" / "init.d" / "jail")
    env = {"PATH": "/usr/bin:/bin", "JAILCTL": str(fake)}
    for args, want in ((["start"], "jailctl start\n"), (["stop", "www"], "jailctl stop www\n"),
                       (["restart", "a", "b"], "jailctl restart a b\n"),
                       (["status"], "jailctl status\n"),
                       (["force-reload"], "jailctl restart\n")):
        r = subprocess.run(["sh", script, *args], env=env, capture_output=True, text=True)
        assert (r.returncode, r.stdout) == (7, want)
    r = subprocess.run(["sh", script, "bogus"], env=env, capture_output=True, text=True)
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr == "Usage: /etc/init.d/jail {start|stop|restart|status} [name ...]\n"


def test_systemd_unit() -> None:
    unit = (REPO / "etc" / "systemd" / "jail.service").read_text()
    assert "ExecStart=/usr/local/sbin/jailctl start\n" in unit
    assert "ExecStop=/usr/local/sbin/jailctl stop\n" in unit
    assert "Type=oneshot" in unit and "RemainAfterExit=yes" in unit


def test_sysctl_and_destroy_take_double_dash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    from linjail.cli import jailctl, jailctl_sysctl
    monkeypatch.setattr(jailctl_sysctl, "_jailed", lambda: 0)
    assert jailctl.main(["sysctl", "--", "jail.jailed"]) == 0
    assert capsys.readouterr() == ("jail.jailed: 0\n", "")
    monkeypatch.setattr(jailctl.os, "geteuid", lambda: 0)
    gone = tmp_path / "-gone"
    assert jailctl.main(["destroy", "--", str(gone)]) == 1
    assert capsys.readouterr() == ("", f"jailctl: destroy: {gone}: No such file or directory\n")


# -- fstab that names impossible paths (issue 16: one line, that jail fails) --------------

@pytest.mark.parametrize("line, reason", [
    ("tmpfs /tmp/\\000 tmpfs rw 0 0", "line 2: /tmp/\\000: a path cannot hold a NUL byte"),
    ("/srv/\\000x /data nullfs ro 0 0", "line 2: /srv/\\000x: a path cannot hold a NUL byte"),
    ("tmpfs /tmp/\\777 tmpfs rw 0 0", "line 2: /tmp/\\777: \\777 is not a byte"),
])
def test_fstab_nul_fails_that_jail_only(env: Env, line: str, reason: str) -> None:
    fst = env.tmp / "fstab.www"
    fst.write_text("# www\n" + line + "\n")
    env.write(enabled("www db") + env.jail("www", "www.example.org", mount_enable="YES",
                                           fstab=str(fst))
              + env.jail("db", "db.example.org", "198.51.100.11"))
    assert env.run("start") == (
        1, "Default global settings for jails:.\nStarting jails: cannot start jail \"www\": "
           f"{fst}: {reason}\n db.example.org.\n", "")
    assert env.backend.names("run_jail") == ["db"]
    assert sorted(os.listdir(env.varrun)) == ["jail_db.id"]


def test_fstab_escapes_are_bytes(env: Env) -> None:
    """`\\ooo` is one byte (fstab(5), vis(3)): \\303\\251 is UTF-8 é, \\377 stays 0xff."""
    fst = env.tmp / "fstab.www"
    fst.write_text("/srv/caf\\303\\251 /data nullfs ro 0 0\n/srv/\\377 /raw nullfs ro 0 0\n")
    env.write(enabled("www") + env.jail("www", "www.example.org", mount_enable="YES",
                                        fstab=str(fst)))
    assert env.run("start")[0] == 0
    assert [os.fsencode(m.source) for m in env.backend.specs[0].mounts] == [
        "/srv/café".encode(), b"/srv/\xff"]
