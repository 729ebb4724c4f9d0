"""Shared fixtures: the real commands, a service jail root, and cleanup.

Every jail a test starts is registered with the `jails` fixture, which
removes it afterwards, also when the test fails; the session ends by
checking that nothing of ours is left (records, cgroups, veths, rules).
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Iterator

import pytest

BIN = os.path.join(os.path.dirname(os.path.dirname(sys.executable)), "sbin")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# tools/commands: the one list of linjail's commands (make dev puts each in BIN)
with open(os.path.join(REPO, "tools", "commands")) as _f:
    #: command name -> the directory it is installed in (sbin or bin)
    COMMAND_DIRS = dict(line.split()[:2] for line in _f
                        if line.strip() and not line.startswith("#"))
COMMANDS = tuple(COMMAND_DIRS)
HOST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


#: `LINJAIL_NO_FAST_PATH=1 make test`: every jexec the tests run gets it (and
#: what they start with subprocess inherits it), so jexec's launcher runs
#: Python for every call: the suite on both paths
NO_FAST_PATH = "LINJAIL_NO_FAST_PATH" if os.environ.get("LINJAIL_NO_FAST_PATH") else ""


def cmd(name: str) -> str:
    return os.path.join(BIN, name)


@dataclass
class Result:
    rc: int
    out: str
    err: str


def tool_env(path: str = HOST_PATH, **extra: str) -> dict[str, str]:
    """The environment the tests run linjail's commands with: PATH, LANG=C,
    and the registry of the test's knob state (knob_state), if any."""
    env = {"PATH": path, "LANG": "C", **extra}
    if os.environ.get("LINJAIL_STATE_DIR"):
        env["LINJAIL_STATE_DIR"] = os.environ["LINJAIL_STATE_DIR"]
    return env


@contextlib.contextmanager
def knob_state(**knobs: int) -> Iterator[dict[str, str]]:
    """A registry of its own (LINJAIL_STATE_DIR, in this process's
    environment and in tool_env()) whose global knob defaults are KNOBS:
    the jails started meanwhile get them, and nobody else's change.  The
    caller removes its jails before it ends (jails of this registry are
    invisible to the default one, except through their host-wide JIDs)."""
    from linjail.state import registry
    old = os.environ.get("LINJAIL_STATE_DIR")
    state = tempfile.mkdtemp(prefix="linjail-state-", dir="/var/tmp")
    os.chmod(state, 0o755)
    with open(os.path.join(state, "knobs"), "w") as f:
        f.write("".join(f"{k}={v}\n" for k, v in knobs.items()))
    # JIDs far from other registries' (private ones start at 1): a JID is
    # claimed host-wide, but a rule a dead jail of theirs left would be in the way
    with open(os.path.join(state, "jid"), "w") as f:
        f.write(f"{registry.boot_id()} {600000 + os.getpid() % 300000}\n")
    os.environ["LINJAIL_STATE_DIR"] = state
    try:
        yield {"LINJAIL_STATE_DIR": state}
    finally:
        # jails that ended by themselves keep their host side (rules) until
        # a command of their registry looks: look, before it is gone
        registry.live_jails()
        if old is None:
            del os.environ["LINJAIL_STATE_DIR"]
        else:
            os.environ["LINJAIL_STATE_DIR"] = old
        shutil.rmtree(state, ignore_errors=True)


#: the two values of jail.unprivileged_root the escape battery runs with
ROOT_MODES = (1, 0)
ROOT_MODE_IDS = ("unprivileged_root=1", "unprivileged_root=0")


@pytest.fixture(scope="module", params=ROOT_MODES, ids=ROOT_MODE_IDS)
def root_mode(request: pytest.FixtureRequest) -> Iterator[int]:
    """A module that uses this runs with jail.unprivileged_root=1, then =0
    (issue 11).  1 is the default: the host's registry, as every other test
    (its address claims are the ones other test runs see); 0 a registry of
    its own (knob_state): the host's global knobs stay as they are."""
    if request.param == 1:
        yield 1
        return
    with knob_state(unprivileged_root=request.param):
        yield request.param


def run(*argv: str, input: str | None = None, timeout: float = 60,
        env: dict[str, str] | None = None, **kw: object) -> Result:
    argv0 = cmd(argv[0]) if argv[0] in COMMANDS else argv[0]
    env = tool_env() if env is None else env
    if NO_FAST_PATH and argv[0] == "jexec":
        env = {**env, NO_FAST_PATH: "1"}
    p = subprocess.run([argv0, *argv[1:]], input=input, capture_output=True, text=True,
                       timeout=timeout, env=env, **kw)  # type: ignore[call-overload]
    return Result(p.returncode, p.stdout, p.stderr)


def is_root() -> bool:
    return os.geteuid() == 0


needs_root = pytest.mark.skipif(not is_root(), reason="needs root (namespaces, mounts)")


@pytest.fixture(scope="session")
def jail_base() -> Iterator[str]:
    """A 0700 directory for the session's jail roots."""
    if not is_root():
        pytest.skip("needs root")
    base = tempfile.mkdtemp(prefix="linjail-test-", dir="/var/tmp")
    os.chmod(base, 0o700)
    yield base
    shutil.rmtree(base, ignore_errors=True)


def build_service_root(path: str, *programs: str) -> str:
    r = run("jailctl", "build", path, "--service", "/bin/sh", "/usr/bin/busybox", *programs)
    assert r.rc == 0, r.err
    os.makedirs(os.path.join(path, "var/www"), exist_ok=True)
    with open(os.path.join(path, "var/www/index.html"), "w") as f:
        f.write("hello from the jail\n")
    return path


@pytest.fixture(scope="session")
def service_root(jail_base: str) -> str:
    """A service jail built from host programs (sh, busybox); shared, read mostly."""
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed (make test installs it)")
    return build_service_root(os.path.join(jail_base, "svc"))


@pytest.fixture
def private_root(jail_base: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """A service root of the test's own, for tests that change it."""
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed (make test installs it)")
    path = tempfile.mkdtemp(prefix="root-", dir=jail_base)
    os.rmdir(path)
    build_service_root(path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


class Jails:
    """Starts jails and removes every one of them at teardown."""

    def __init__(self) -> None:
        self.jids: list[int] = []

    def start(self, *args: str, timeout: float = 60) -> int:
        r = run("jail", "-i", *args, timeout=timeout)
        assert r.rc == 0, (r.rc, r.out, r.err)
        jid = int(r.out.splitlines()[0])
        self.jids.append(jid)
        return jid

    def track(self, jid: int) -> int:
        self.jids.append(jid)
        return jid

    def cleanup(self) -> None:
        for jid in self.jids:
            run("jailctl", "remove", "-t", "0.2", str(jid))
        self.jids.clear()


@pytest.fixture
def jails() -> Iterator[Jails]:
    if not is_root():
        pytest.skip("needs root")
    j = Jails()
    yield j
    j.cleanup()


def wait_until(pred: "object", timeout: float = 10.0, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


def route_is_ours(addr: str) -> bool:
    """SPEC §10: before sending to ADDR, its route must be a linjail veth."""
    r = run("ip", "route", "get", addr)
    return r.rc == 0 and " dev ljh" in r.out


def leftovers(jid: int) -> list[str]:
    """What the host still holds for jail JID (should be nothing once it is gone)."""
    from linjail.confine import cgroup
    from linjail.state import registry
    found = []
    if os.path.exists(registry._record_path(jid)):
        found.append("record")
    if os.path.exists(cgroup.jail_cgroup(jid)):
        found.append("cgroup")
    if os.path.exists(f"/sys/class/net/ljh{jid}"):
        found.append("veth")
    rules = run("ip", "rule").out + run("ip", "-6", "rule").out
    if f"iif ljh{jid} " in rules:
        found.append("rule")
    return found


PROBE_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe", "probe.c")


@pytest.fixture(scope="session")
def probe_binary(jail_base: str) -> str:
    """tests/probe/probe.c built statically (a jail has no libc of its own):
    the attacker of the escape battery and the knob tests."""
    if os.uname().machine != "x86_64":
        pytest.skip("the probe uses x86_64 syscall numbers and int 0x80")
    out = os.path.join(jail_base, "probe")
    errors = []
    for cc in ("musl-gcc", "gcc"):
        if shutil.which(cc, path=HOST_PATH) is None:
            continue
        r = run(cc, "-static", "-O2", "-Wall", "-Werror", "-o", out, PROBE_SOURCE,
                timeout=120)
        if r.rc == 0:
            return out
        errors.append(f"{cc}: {r.err.strip()}")
    pytest.skip("cannot build tests/probe/probe.c statically (make test installs "
                f"musl-tools): {'; '.join(errors) or 'no compiler'}")


def install_probe(probe: str, root: str, name: str = "probe", mode: int = 0o755) -> str:
    """Copy the probe into a jail root as /NAME (root-owned, MODE); its jail path."""
    dest = os.path.join(root, name)
    shutil.copyfile(probe, dest)
    os.chown(dest, 0, 0)
    os.chmod(dest, mode)
    return "/" + name
