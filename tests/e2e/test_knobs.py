"""The knobs, end to end (SPEC §5): each knob's effect in a real jail, in both
positions, alone and together; global defaults (`jailctl sysctl jail.KNOB=V`)
and per-jail values (`jail.JID.KNOB=V`, for processes started afterwards);
what a process inside learns from /proc/1/environ; and what bad names and
values get.

The attacker is tests/probe/probe.c.  Global defaults are host state, which
other test runs on this host share: the tests that change them run in a
registry of their own (conftest.knob_state), whose defaults start as the seed's.
"""
from __future__ import annotations

import os
import shutil
import subprocess
from typing import Iterator

import pytest

from conftest import (Jails, build_service_root, cmd, install_probe, knob_state, needs_root,
                      route_is_ours, run, tool_env)

pytestmark = needs_root
BB = "/usr/bin/busybox"
KNOBS = ("set_hostname_allowed", "socket_unixiproute_only", "sysvipc_allowed",
         "enforce_statfs", "allow_raw_sockets", "chflags_allowed",
         # DragonFly's later knobs: stored and shown, no effect on Linux (jailctl(8))
         "allow_listen_override", "vfs_mount_nullfs", "vfs_mount_tmpfs",
         # linjail's own (issue 11): a user namespace per jail
         "unprivileged_root")
SEED = dict(zip(KNOBS, (1, 1, 0, 2, 0, 0, 0, 0, 0, 1)))
SHORT = {"hostname": "set_hostname_allowed", "families": "socket_unixiproute_only",
         "sysvipc": "sysvipc_allowed", "statfs": "enforce_statfs",
         "raw": "allow_raw_sockets", "chflags": "chflags_allowed"}


def _config(**short: int) -> dict[str, int]:
    return {**SEED, **{SHORT[k]: v for k, v in short.items()}}


# every knob alone in its other position(s), and together
CONFIGS: dict[str, dict[str, int]] = {
    "seed": _config(),
    "hostname=0": _config(hostname=0),
    "families=0": _config(families=0),
    "sysvipc=1": _config(sysvipc=1),
    "statfs=0": _config(statfs=0),
    "statfs=1": _config(statfs=1),
    "raw=1": _config(raw=1),
    "chflags=1": _config(chflags=1),
    "hostname=1+chflags=1": _config(hostname=1, chflags=1),
    "families=0+raw=1": _config(families=0, raw=1),
    "all-flipped": _config(hostname=0, families=0, sysvipc=1, statfs=0, raw=1, chflags=1),
    "all-open": _config(hostname=1, families=0, sysvipc=1, statfs=1, raw=1, chflags=1),
    "all-closed": _config(hostname=0, families=1, sysvipc=0, statfs=2, raw=0, chflags=0),
}

CHFLAGS_ATTACKS = ("chflags", "chflags-xattr", "file-setattr")


def knob_attacks(addr: str) -> list[str]:
    return ["sethostname knob-set.example.org", "unix-socket", "inet-socket", "inet6-socket",
            "netlink-route", "netlink-generic", "netlink-audit", "packet-socket",
            "inet-sock-packet", "alg-socket", "raw-socket", "raw6-socket", "icmp-socket",
            "bset-net-raw", "sysvipc", *CHFLAGS_ATTACKS, "bset-immutable", "statfs",
            "environ", f"ping {addr}", f"ping-dgram {addr}"]


def _state_env() -> str:
    """The caller's registry (knob_state) as PID 1's environment has it."""
    state = os.environ.get("LINJAIL_STATE_DIR")
    return f"LINJAIL_STATE_DIR={state} " if state else ""


def settled(k: dict[str, int]) -> dict[str, int]:
    """The knobs a new jail gets: chflags need host root (issue 11)."""
    return {**k, "unprivileged_root": 0} if k["chflags_allowed"] else k


def expected(k: dict[str, int], started_with: dict[str, int] | None = None,
             chflags: bool = True) -> dict[str, str]:
    """SPEC §5 for knobs K; LINJAIL_KNOBS shows what the jail started with."""
    h, u, s, r, c = (k[n] for n in ("set_hostname_allowed", "socket_unixiproute_only",
                                    "sysvipc_allowed", "allow_raw_sockets", "chflags_allowed"))
    nope = "EPROTONOSUPPORT"
    raw = "OK" if r else "EPERM"
    packet = nope if u else raw
    knobs_text = ",".join(f"{n}={v}" for n, v in settled(started_with or k).items())
    want = {
        "sethostname": "OK" if h else "EPERM",
        "unix-socket": "OK", "inet-socket": "OK", "inet6-socket": "OK", "netlink-route": "OK",
        "netlink-generic": nope if u else "OK",
        "netlink-audit": nope if u else "OK",
        "packet-socket": packet,
        "inet-sock-packet": packet,           # (PF_INET, SOCK_PACKET) is a packet socket
        # AF_ALG and AF_VSOCK stay denied with the knob at 0 too (Docker's default)
        "alg-socket": nope,
        "raw-socket": raw, "raw6-socket": raw, "icmp-socket": raw,
        "ping": raw, "ping-dgram": raw,
        "bset-net-raw": "kept" if r else "dropped",
        "sysvipc": "OK" if s else "ENOSYS",
        "bset-immutable": "kept" if c else "dropped",
        # enforce_statfs: 0, 1 and 2 all show only the jail's own mounts (README)
        "statfs": "jail-only",
        "environ": f"{_state_env()}LINJAIL_JAILED=1 LINJAIL_KNOBS={knobs_text}",
    }
    if chflags:
        want.update({a: "OK" if c else "EPERM" for a in CHFLAGS_ATTACKS})
    return want


def parse(out: str) -> dict[str, str]:
    results = {}
    for line in out.splitlines():
        if not line.startswith("#") and ": " in line:
            label, _, rest = line.partition(": ")
            results[label] = rest
    return results


def sysctl(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([cmd("jailctl"), "sysctl", *args], capture_output=True, text=True,
                          timeout=60, env=tool_env("/usr/bin:/bin"))


def read_defaults() -> dict[str, int]:
    p = sysctl(*(f"jail.{k}" for k in KNOBS))
    assert p.returncode == 0, p.stderr
    return {line.split(": ")[0][len("jail."):]: int(line.split(": ")[1])
            for line in p.stdout.splitlines()}


def set_defaults(values: dict[str, int]) -> None:
    p = sysctl(*(f"jail.{k}={v}" for k, v in values.items()))
    assert p.returncode == 0, p.stderr


@pytest.fixture(scope="module")
def defaults() -> Iterator[dict[str, int]]:
    """Global defaults of the module's own (a registry of its own): the
    seed's at first, checked, and the host's stay as they are."""
    with knob_state():
        saved = read_defaults()
        assert saved == SEED
        yield saved


@pytest.fixture(scope="module")
def knob_root(jail_base: str, probe_binary: str) -> Iterator[str]:
    root = os.path.join(jail_base, "knobs")
    build_service_root(root)
    install_probe(probe_binary, root)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def chflags_support(knob_root: str, probe_binary: str) -> str | None:
    """Why immutable flags cannot be tested on the jail root's file system,
    or None: the probe tries them on the host, as host root, on a file there."""
    test_file = os.path.join(knob_root, "tmp/.chflags-support")
    reasons = []
    for attack in CHFLAGS_ATTACKS:
        p = subprocess.run([probe_binary, attack, test_file], capture_output=True, text=True)
        if p.stdout != f"{attack}: OK\n":
            reasons.append(p.stdout.strip())
    return "; ".join(reasons) or None


def run_probe_jail(root: str, addr: str, attacks: list[str], jails: Jails,
                   *jail_args: str) -> dict[str, str]:
    """A jail whose first process runs ATTACKS; pings only after the route check."""
    p = subprocess.Popen([cmd("jail"), "-i", *jail_args, root, "knobs.example.org", addr,
                          "/probe", "multi", *[a for a in attacks if not a.startswith("ping")],
                          "wait /tmp/.go-ping", *[a for a in attacks if a.startswith("ping")]],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env=tool_env("/usr/bin:/bin"))
    assert p.stdout is not None
    try:
        jails.track(int(p.stdout.readline()))
        go = os.path.join(root, "tmp/.go-ping")
        with open(go, "w") as f:
            f.write("go\n" if route_is_ours(addr) else "skip\n")
        # not communicate(): it reads the pipes' descriptors, and lines the
        # readline above took into p.stdout's buffer would be lost
        assert p.stderr is not None
        out, err = p.stdout.read(), p.stderr.read()
        p.wait(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if os.path.exists(os.path.join(root, "tmp/.go-ping")):
            os.unlink(os.path.join(root, "tmp/.go-ping"))
    assert p.returncode == 0, (out, err)
    return parse(out)


def compare(got: dict[str, str], want: dict[str, str]) -> None:
    if got.get("ping") == "skipped":
        pytest.skip("the jail's address is not routed to its veth: no ping (SPEC §10)")
    assert {k: got.get(k) for k in want} == want


@pytest.mark.parametrize("name", list(CONFIGS))
def test_new_jail_copies_the_defaults(name: str, defaults: dict[str, int], knob_root: str,
                                      chflags_support: str | None, jails: Jails) -> None:
    config = CONFIGS[name]
    set_defaults(config)
    addr = f"203.0.113.{10 + list(CONFIGS).index(name)}"
    got = run_probe_jail(knob_root, addr, knob_attacks(addr), jails)
    compare(got, expected(config, chflags=chflags_support is None))


def test_chattr_immutable_on_this_file_system(defaults: dict[str, int], knob_root: str,
                                              chflags_support: str | None, jails: Jails) -> None:
    """chattr +i/+a (FS_IOC_SETFLAGS), the xflags ioctl and file_setattr(2) on a
    file inside the jail root work for jailed root with chflags_allowed=1."""
    if chflags_support is not None:
        pytest.skip(f"the jail root's file system cannot hold immutable flags: "
                    f"{chflags_support}")
    set_defaults(_config(chflags=1))
    got = run_probe_jail(knob_root, "203.0.113.30", list(CHFLAGS_ATTACKS), jails)
    assert got == {a: "OK" for a in CHFLAGS_ATTACKS}
    set_defaults(_config(chflags=0))
    got = run_probe_jail(knob_root, "203.0.113.31", list(CHFLAGS_ATTACKS), jails)
    assert got == {a: "EPERM" for a in CHFLAGS_ATTACKS}


def _jls_hostname(jid: int) -> str:
    rows = [line for line in run("jls").out.splitlines() if line.split()[:1] == [str(jid)]]
    assert len(rows) == 1
    return rows[0].split()[1]


@pytest.mark.parametrize("chflags", [0, 1])
def test_jls_shows_the_hostname_set_inside(chflags: int, defaults: dict[str, int],
                                           knob_root: str, chflags_support: str | None,
                                           jails: Jails) -> None:
    """set_hostname_allowed=1 (with chflags_allowed too): jailed root names the
    jail and jls shows it; per jail set to 0, the next sethostname fails."""
    set_defaults(_config(hostname=1, chflags=chflags))
    jid = jails.start(knob_root, "before.example.org", "", "/probe", "multi", "daemon")
    attacks = ["sethostname set-inside.example.org"]
    if chflags_support is None:
        attacks.append("chflags")
    p = subprocess.run([cmd("jexec"), str(jid), "/probe", "multi", *attacks],
                       capture_output=True, text=True, timeout=60)
    want = "sethostname: OK\n" + ("" if chflags_support else
                                  f"chflags: {'OK' if chflags else 'EPERM'}\n")
    assert (p.returncode, p.stdout) == (0, want), p.stderr
    assert _jls_hostname(jid) == "set-inside.example.org"
    assert sysctl(f"jail.{jid}.set_hostname_allowed=0").returncode == 0
    p = subprocess.run([cmd("jexec"), str(jid), "/probe", "sethostname", "again.example.org"],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout == "sethostname: EPERM\n"
    assert _jls_hostname(jid) == "set-inside.example.org"


def test_per_jail_knobs_reach_jexec(defaults: dict[str, int], knob_root: str,
                                    chflags_support: str | None, jails: Jails) -> None:
    """jail.JID.KNOB=V changes that one jail for processes started afterwards,
    in both directions, and says so; the defaults and other jails keep theirs.
    (Jails without a user namespace: chflags_allowed=1 works in no other.)"""
    seed = {**SEED, "unprivileged_root": 0}
    set_defaults(seed)
    jid = jails.start(knob_root, "per-jail.example.org", "203.0.113.40", "/probe", "multi",
                      "daemon")
    other = jails.start(knob_root, "other.example.org", "", "/probe", "multi", "daemon")
    if not route_is_ours("203.0.113.40"):
        pytest.skip("the jail's address is not routed to its veth: no ping (SPEC §10)")
    attacks = knob_attacks("203.0.113.40")
    flipped = {**CONFIGS["all-flipped"], "unprivileged_root": 0}
    for config in (flipped, seed):
        before = read_defaults()
        current = {k: int(sysctl(f"jail.{jid}.{k}").stdout.split(": ")[1]) for k in KNOBS}
        p = sysctl(*(f"jail.{jid}.{k}={v}" for k, v in config.items()))
        assert p.returncode == 0
        assert p.stdout == "".join(f"jail.{jid}.{k}: {current[k]} -> {v}\n"
                                   for k, v in config.items())
        assert p.stderr == "".join(
            f"jailctl: sysctl: jail.{jid}.{k}: applies to processes started in jail {jid} "
            f"from now on (jexec); its running processes keep the limits they started "
            f"with\n" for k, v in config.items() if current[k] != v)
        assert read_defaults() == before
        r = subprocess.run([cmd("jexec"), str(jid), "/probe", "multi", *attacks],
                           capture_output=True, text=True, timeout=60)
        # PID 1's environment keeps the values the jail started with
        compare(parse(r.stdout), expected(config, started_with=seed,
                                          chflags=chflags_support is None))
        # the other jail is not touched
        r = subprocess.run([cmd("jexec"), str(other), "/probe", "multi",
                            *[a for a in attacks if not a.startswith("ping")]],
                           capture_output=True, text=True, timeout=60)
        want = expected(seed, chflags=chflags_support is None)
        del want["ping"], want["ping-dgram"]
        assert {k: parse(r.stdout).get(k) for k in want} == want


def test_chflags_and_a_user_namespace(defaults: dict[str, int], knob_root: str,
                                      chflags_support: str | None, jails: Jails) -> None:
    """Issue 11: chflags need CAP_LINUX_IMMUTABLE in the host's user namespace.
    A jail created with chflags allowed gets unprivileged_root=0, and jail and
    jailctl sysctl say so in one line; a running jail with a user namespace
    cannot be given them, and keeps the one it was made with."""
    set_defaults(SEED)
    p = sysctl("jail.chflags_allowed=1")
    warning = ("chflags_allowed=1 needs CAP_LINUX_IMMUTABLE in the host's user namespace: "
               "{} unprivileged_root=0 (jailed root is host root)")
    assert (p.returncode, p.stdout, p.stderr) == (
        0, "jail.chflags_allowed: 0 -> 1\n",
        "jailctl: sysctl: jail.chflags_allowed: new jails: " + warning.format("they get") + "\n")
    r = run("jail", knob_root, "chflags.example.org", "", "/probe", "multi", "environ",
            *CHFLAGS_ATTACKS)
    assert r.err == "jail: warning: " + warning.format("this jail gets") + "\n"
    knobs_text = ",".join(f"{k}={v}" for k, v in settled({**SEED, "chflags_allowed": 1}).items())
    want = {"environ": f"{_state_env()}LINJAIL_JAILED=1 LINJAIL_KNOBS={knobs_text}"}
    if chflags_support is None:
        want.update({a: "OK" for a in CHFLAGS_ATTACKS})
    assert {k: parse(r.out).get(k) for k in want} == want
    # a jail with a user namespace: chflags cannot be given to it afterwards
    set_defaults(SEED)
    jid = jails.start(knob_root, "userns.example.org", "", "/probe", "multi", "daemon")
    p = sysctl(f"jail.{jid}.chflags_allowed=1")
    assert (p.returncode, p.stdout, p.stderr) == (
        0, f"jail.{jid}.chflags_allowed: 0 -> 1\n",
        f"jailctl: sysctl: jail.{jid}.chflags_allowed: jail {jid} has a user namespace "
        f"(unprivileged_root=1): chflags need CAP_LINUX_IMMUTABLE in the host's and stay "
        f"denied in it\n")
    if chflags_support is None:
        r = run("jexec", str(jid), "/probe", "multi", *CHFLAGS_ATTACKS)
        assert r.out == "".join(f"{a}: EPERM\n" for a in CHFLAGS_ATTACKS)
    p = sysctl(f"jail.{jid}.unprivileged_root=0")
    assert (p.returncode, p.stdout, p.stderr) == (
        1, "", f"jailctl: sysctl: jail.{jid}.unprivileged_root: set when the jail is created; "
               f"a running jail keeps it\n")
    assert sysctl(f"jail.{jid}.unprivileged_root").stdout == \
        f"jail.{jid}.unprivileged_root: 1\n"


def test_jailed_inside_and_on_the_host(defaults: dict[str, int], knob_root: str) -> None:
    assert sysctl("jail.jailed").stdout == "jail.jailed: 0\n"
    r = run("jail", knob_root, "jailed.example.org", "", "/probe", "environ")
    knobs_text = ",".join(f"{k}={v}" for k, v in settled(read_defaults()).items())
    assert r.out == f"environ: {_state_env()}LINJAIL_JAILED=1 LINJAIL_KNOBS={knobs_text}\n"
    # the command itself does not inherit them (README)
    r = run("jail", knob_root, "jailed.example.org", "", BB, "env")
    assert "LINJAIL_" not in r.out


# -- bad names and values -----------------------------------------------------------------

UNKNOWN = "jailctl: sysctl: unknown oid '{}'\n"
INVALID = "jailctl: sysctl: {}: invalid value '{}' (allowed: {})\n"


def test_jail_list_shows_a_running_jail(service_root: str, jails: Jails) -> None:
    """DragonFly's jail.list: "JID hostname path" (no addresses here), the
    first line after "jail.list: " (other jails of this host may be listed)."""
    jid = jails.start(service_root, "list.example.org", "", "/bin/sh", "-c",
                      f"{BB} sleep 120 >/dev/null 2>&1 &")
    p = sysctl("jail.list")
    assert (p.returncode, p.stderr) == (0, "")
    assert p.stdout.startswith("jail.list: ") and p.stdout.endswith("\n")
    lines = p.stdout[len("jail.list: "):].splitlines()
    assert f"{jid} list.example.org {service_root}" in lines
    p = sysctl("jail.list=x")
    assert (p.returncode, p.stdout, p.stderr) == (
        1, "", "jailctl: sysctl: oid 'jail.list' is read only\n")
    run("jailctl", "remove", str(jid))
    jails.jids.remove(jid)
    p = sysctl("jail.list")
    assert f"{jid} list.example.org {service_root}" not in p.stdout


@pytest.mark.parametrize("args,err", [
    (["jail.foo"], UNKNOWN.format("jail.foo")),
    (["jail.foo=1"], UNKNOWN.format("jail.foo")),
    (["jail.defaults.nope=1"], UNKNOWN.format("jail.defaults.nope")),
    (["security.jail.chflags_allowed=1"], UNKNOWN.format("security.jail.chflags_allowed")),
    (["jail.999998.chflags_allowed=1"], UNKNOWN.format("jail.999998.chflags_allowed")),
    (["jail.x.chflags_allowed=1"], UNKNOWN.format("jail.x.chflags_allowed")),
    (["jail.chflags_allowed=2"], INVALID.format("jail.chflags_allowed", "2", "0, 1")),
    (["jail.enforce_statfs=3"], INVALID.format("jail.enforce_statfs", "3", "0, 1, 2")),
    (["jail.chflags_allowed=yes"], INVALID.format("jail.chflags_allowed", "yes", "0, 1")),
    (["jail.chflags_allowed= 1"], INVALID.format("jail.chflags_allowed", " 1", "0, 1")),
    (["jail.chflags_allowed=+1"], INVALID.format("jail.chflags_allowed", "+1", "0, 1")),
    (["jail.chflags_allowed="], INVALID.format("jail.chflags_allowed", "", "0, 1")),
    (["jail.jailed=0"], "jailctl: sysctl: oid 'jail.jailed' is read only\n"),
    # nothing is written when any argument is bad
    (["jail.chflags_allowed=1", "jail.nope=1"], UNKNOWN.format("jail.nope")),
    (["jail.sysvipc_allowed=1", "jail.chflags_allowed=9"],
     INVALID.format("jail.chflags_allowed", "9", "0, 1")),
])
def test_bad_names_and_values(args: list[str], err: str, defaults: dict[str, int]) -> None:
    before = read_defaults()
    p = sysctl(*args)
    assert (p.returncode, p.stdout, p.stderr) == (1, "", err)
    assert read_defaults() == before
