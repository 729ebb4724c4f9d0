"""Closed, full, broken or non-blocking stdio, and Ctrl-C at start-up
(issue 16, items 1, 3 and 11).

The rule: the command's work done, or one line on stderr and a non-zero
status; never a traceback, "Exception ignored", exit 120 or output lost
with status 0.  A pipe whose reader is gone ends the command as SIGPIPE ends
a C tool (no message); Ctrl-C a few ms after start ends it with 130.
"""
from __future__ import annotations

import os
import random
import signal
from pathlib import Path

import pytest

from conftest import Jails, cmd, leftovers, needs_root, run
from stdio_states import run_with

pytestmark = needs_root
BB = "/usr/bin/busybox"
DAEMON = f"{BB} sleep 600 </dev/null >/dev/null 2>&1 &"
#: another run of this suite at the same moment has the address
BUSY = (1, b"jail: jail: Address already in use\n")
BAD = ("Traceback", "internal error", "Exception ignored", "Fatal Python error")


def _env(tmp_path: Path | None = None) -> dict[str, str]:
    env = {"PATH": "/usr/bin:/bin", "LANG": "C"}
    if tmp_path is not None:
        env["LINJAIL_STATE_DIR"] = str(tmp_path / "state")
    return env


def _route_left(addr: str, hostname: str) -> bool:
    """A route to ADDR through a veth that no live jail of another run of
    these tests (same addresses, other hostnames do not count) holds."""
    from linjail.state import registry
    for line in run("ip", "route").out.splitlines():
        words = line.split()
        if words[:1] == [addr] and "dev" in words:
            dev = words[words.index("dev") + 1]
            rec = registry.read(int(dev[3:])) if dev[3:].isdigit() else None
            if rec is None or rec.hostname == hostname:
                return True
    return False


def _clean(err: bytes) -> None:
    for word in BAD:
        assert word.encode() not in err, err


@pytest.mark.parametrize("prog,args", [("jailctl", ["sysctl"]), ("jls", [])])
def test_stdout_on_dev_full(prog: str, args: list[str], service_root: str,
                            jails: Jails) -> None:
    jails.start(service_root, "full", "", "/bin/sh", "-c", DAEMON)   # jls has a row
    o = run_with([cmd(prog), *args], ("null", "full", "pipe"), env=_env())
    assert (o.rc, o.err) == (1, f"{prog}: stdout: No space left on device\n".encode())


@pytest.mark.parametrize("prog,args", [("jailctl", ["sysctl"]), ("jls", [])])
def test_stdout_closed(prog: str, args: list[str], service_root: str, jails: Jails) -> None:
    jails.start(service_root, "closed", "", "/bin/sh", "-c", DAEMON)
    o = run_with([cmd(prog), *args], ("null", "closed", "pipe"), env=_env())
    assert (o.rc, o.err) == (1, f"{prog}: stdout: Bad file descriptor\n".encode())


def test_stdout_full_and_stderr_closed_is_still_a_failure() -> None:
    o = run_with([cmd("jailctl"), "sysctl"], ("null", "full", "closed"), env=_env())
    assert o.rc == 1


def test_stdout_with_its_reader_gone_ends_as_sigpipe() -> None:
    o = run_with([cmd("jailctl"), "sysctl"], ("null", "epipe", "pipe"), env=_env())
    assert (o.rc, o.err) == (-signal.SIGPIPE, b"")


def test_a_non_blocking_stdout_gets_everything(tmp_path: Path) -> None:
    # a private registry: its knobs do not change under us
    want = run_with([cmd("jailctl"), "sysctl"], env=_env(tmp_path))
    assert want.rc == 0 and want.out.startswith(b"jail.set_hostname_allowed: ")
    o = run_with([cmd("jailctl"), "sysctl"], ("null", "nonblock", "pipe"), env=_env(tmp_path))
    assert (o.rc, o.err) == (0, b"")
    assert o.out == want.out


def test_jailctl_status_on_a_non_blocking_stdout(tmp_path: Path) -> None:
    conf = tmp_path / "rc.conf"
    conf.write_text('jail_list="' + " ".join(f"j{i}" for i in range(400)) + '"\n')
    env = {**_env(), "LINJAIL_VARRUN": str(tmp_path)}
    want = run_with([cmd("jailctl"), "status", "-f", str(conf)], env=env)
    assert want.out.count(b"\n") == 400, want
    o = run_with([cmd("jailctl"), "status", "-f", str(conf)], ("null", "nonblock", "pipe"),
                 env=env)
    assert (o.rc, o.err, o.out) == (want.rc, want.err, want.out)


@pytest.mark.parametrize("state,why", [("full", "No space left on device"),
                                       ("closed", "Bad file descriptor"),
                                       ("epipe", "Broken pipe")])
def test_jail_i_that_cannot_print_the_jid_leaves_nothing(service_root: str, state: str,
                                                         why: str, tmp_path: Path) -> None:
    """The caller of `jail -i` cannot learn the JID: the command never runs
    and the jail is undone."""
    from linjail.state import registry
    marker = tmp_path / "ran"
    before = {r.jid for r in registry.all_records()}
    o = run_with([cmd("jail"), "-i", service_root, "noprint", "198.51.100.172", "/bin/sh",
                  "-c", f"echo x > {marker}"], ("null", state, "pipe"), env=_env())
    assert (o.rc, o.err) in ((1, f"jail: stdout: {why}\n".encode()), BUSY)
    new = [r for r in registry.all_records() if r.jid not in before and r.hostname == "noprint"]
    assert new == []
    assert not marker.exists()
    assert not _route_left("198.51.100.172", "noprint")
    for jid in range(max(before | {0}) + 1, max(before | {0}) + 20):
        assert leftovers(jid) == [] or jid in {r.jid for r in registry.all_records()}


@pytest.mark.parametrize("prog,args", [("jls", []), ("jailctl", ["sysctl"]),
                                       ("jailctl", ["status"]), ("jexec", ["1", "true"])])
def test_ctrl_c_during_start_up_is_quiet(prog: str, args: list[str], tmp_path: Path) -> None:
    rnd = random.Random(16)
    for _ in range(12):
        o = run_with([cmd(prog), *args], env=_env(tmp_path), sigint_after=rnd.uniform(0, 0.05))
        _clean(o.err)
        assert o.rc in (0, 1, 130), o
        if o.rc == 130:     # nothing said, or what was said before the Ctrl-C
            assert o.err.count(b"\n") <= 1 and o.err.endswith(b"\n") or o.err == b""


def test_ctrl_c_during_jail_start_leaves_nothing(service_root: str) -> None:
    """Ctrl-C at any moment of `jail`'s start: 130 and nothing half-made, or
    the command ran (its status)."""
    from linjail.lifecycle import sweep
    from linjail.state import registry
    rnd = random.Random(3)
    before = {r.jid for r in registry.all_records()}
    for _ in range(15):
        o = run_with([cmd("jail"), service_root, "intr", "198.51.100.173", "/bin/sh", "-c",
                      "exit 7"], env=_env(), sigint_after=rnd.uniform(0, 0.12))
        _clean(o.err)
        assert (o.rc, o.err) in ((130, b""), (7, b""), BUSY), o
    ours = [r for r in sweep.jails() if r.jid not in before and r.hostname == "intr"]
    assert ours == []
    assert [r for r in registry.all_records() if r.jid not in before and r.hostname == "intr"] \
        == []
    assert not _route_left("198.51.100.173", "intr")
    for name in os.listdir("/sys/class/net"):
        if name.startswith("ljh") and name[3:].isdigit() and int(name[3:]) not in before:
            rec = registry.read(int(name[3:]))
            assert rec is not None and rec.hostname != "intr", name


def test_ctrl_c_at_a_terminal_during_jexec_is_quiet(service_root: str, jails: Jails) -> None:
    """A terminal's Ctrl-C reaches jexec's helper process too (its process
    group): it was "jexec: internal error: KeyboardInterrupt"."""
    jid = jails.start(service_root, "tty", "", "/bin/sh", "-c", DAEMON)
    rnd = random.Random(5)
    for _ in range(20):
        o = run_with([cmd("jexec"), str(jid), "/bin/sh", "-c", "exit 7"], env=_env(),
                     sigint_after=rnd.uniform(0, 0.08), sigint_group=True)
        _clean(o.err)
        assert (o.rc, o.err) in ((130, b""), (7, b"")), o


def test_ctrl_c_at_a_terminal_during_jail_start_leaves_nothing(service_root: str) -> None:
    from linjail.lifecycle import sweep
    from linjail.state import registry
    rnd = random.Random(9)
    before = {r.jid for r in registry.all_records()}
    for _ in range(15):
        o = run_with([cmd("jail"), service_root, "tintr", "198.51.100.174", "/bin/sh", "-c",
                      "exit 7"], env=_env(), sigint_after=rnd.uniform(0, 0.12),
                     sigint_group=True)
        _clean(o.err)
        assert (o.rc, o.err) in ((130, b""), (7, b""), BUSY), o
    assert [r for r in sweep.jails() if r.jid not in before and r.hostname == "tintr"] \
        == []     # (this also releases jails that ended, as jls does)
    assert [r for r in registry.all_records() if r.jid not in before and r.hostname == "tintr"] \
        == []
    assert not _route_left("198.51.100.174", "tintr")


SIGNALS = f"{BB} grep -E '^Sig(Blk|Ign):' /proc/self/status"


def test_commands_get_default_signal_state(service_root: str, jails: Jails) -> None:
    """Nothing blocked, nothing ignored: Python ignores SIGPIPE and SIGXFSZ,
    the launcher blocks SIGINT while it starts, jexec's helper ignores
    SIGINT/SIGQUIT; none of that may reach the command."""
    clean = "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n"
    r = run("jail", service_root, "sig", "", "/bin/sh", "-c", SIGNALS)
    assert (r.rc, r.out, r.err) == (0, clean, "")
    jid = jails.start(service_root, "sig2", "", "/bin/sh", "-c", DAEMON)
    r = run("jexec", str(jid), "/bin/sh", "-c", SIGNALS)
    assert (r.rc, r.out, r.err) == (0, clean, "")


def test_messages_of_helpers_wait_for_a_non_blocking_stderr(service_root: str,
                                                            jails: Jails) -> None:
    """jexec's helper and the jail's PID 1 write their one line straight to
    fd 2: a full non-blocking pipe there lost it (fuzzer, seed 409: status 1
    with nothing said)."""
    jid = jails.start(service_root, "nb", "", "/bin/sh", "-c", DAEMON)
    o = run_with([cmd("jexec"), "-U", "fz-nosuch", str(jid), "/bin/sh"],
                 ("null", "pipe", "nonblock"), env=_env())
    assert (o.rc, o.err) == (1, b"jexec: fz-nosuch: no such user\n")
    o = run_with([cmd("jexec"), str(jid), "/nonexistent"], ("null", "pipe", "nonblock"),
                 env=_env())
    assert (o.rc, o.err) == (1, b"jexec: execvp(/nonexistent) failed: No such file or "
                             b"directory\n")
    o = run_with([cmd("jail"), service_root, "nb", "", "/nonexistent"],
                 ("null", "pipe", "nonblock"), env=_env())
    assert (o.rc, o.err) == (1, b"jail: execv: /nonexistent: No such file or directory\n")


@pytest.mark.parametrize("fd", [0, 1, 2])
def test_jexec_with_a_closed_descriptor_runs_the_command_without_it(
        fd: int, service_root: str, jails: Jails) -> None:
    """A closed stdio descriptor is one the command does not have (as with a
    C jexec); it was 'jexec: [Errno 9] Bad file descriptor', and a descriptor
    linjail opened could land on the number and reach the jail."""
    jid = jails.start(service_root, "cl", "", "/bin/sh", "-c", DAEMON)
    states = ["null", "pipe", "pipe"]
    states[fd] = "closed"
    o = run_with([cmd("jexec"), str(jid), "/bin/sh", "-c",
                  "for n in 0 1 2; do [ -e /proc/$$/fd/$n ] && r=\"$r $n\"; done; "
                  f"echo $r > /tmp/fds-{fd}; exit 3"], (states[0], states[1], states[2]), env=_env())
    assert (o.rc, o.out, o.err) == (3, b"", b"")
    r = run("jexec", str(jid), "/bin/sh", "-c", f"{BB} cat /tmp/fds-{fd}")
    assert r.out.split() == [str(n) for n in (0, 1, 2) if n != fd], r.out


def test_the_launcher_s_own_line_waits_for_a_non_blocking_stderr() -> None:
    """The C launcher refuses a directory on stdin in one line; fprintf lost
    it on a full non-blocking stderr (fuzzer, seed 77: status 1, nothing
    said)."""
    o = run_with([cmd("jls")], ("dir", "pipe", "nonblock"), env=_env())
    assert (o.rc, o.err) == (1, b"jls: standard input is a directory: refusing to pass it "
                             b"into a jail\n")
