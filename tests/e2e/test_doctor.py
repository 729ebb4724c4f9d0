"""`jailctl doctor` (issue 15): one screen, one line per facility, what this
host offers and lacks; exit 1 only when something `jail` needs is missing."""
from __future__ import annotations

import os
import re
from pathlib import Path

import linjail
from conftest import needs_root, run
from linjail.cli.jailctl_doctor import CHECKS
from linjail.lifecycle.start import REAPER

HEADER = f"linjail {linjail.__version__} doctor: what this host offers jails"


def lines_of(out: str) -> dict[str, tuple[str, str]]:
    """facility -> (status, detail), read by the columns every line keeps."""
    head, *rest = out.splitlines()
    assert head == HEADER
    parsed = {}
    for line in rest:
        status, name, detail = line[:8].rstrip(), line[9:28].rstrip(), line[29:]
        assert status in ("OK", "missing", "unknown"), line
        assert line[8] == " " and line[28] == " " and name and detail, line
        parsed[name] = (status, detail)
    return parsed


@needs_root
def test_one_screen_and_what_this_host_has() -> None:
    r = run("jailctl", "doctor")
    assert (r.rc, r.err) == (0, "")
    found = lines_of(r.out)
    assert list(found) == [name for name, _, _ in CHECKS]
    assert len(r.out.splitlines()) <= 24
    # the suite's own jails need these, so on a machine that runs it they are there
    assert found["namespaces"] == ("OK", "mnt pid uts ipc net cgroup")
    for name in ("kernel", "user namespaces", "cgroup v2", "seccomp", "openat2", "veth",
                 "nftables", "python", "state"):
        assert found[name][0] == "OK", (name, found[name])
    assert found["reaper"] == ("OK", REAPER)
    assert found["cgroup v2"][1].startswith(("/sys/fs/cgroup ", "/sys/fs/cgroup/unified "))
    assert re.fullmatch(r"filter mode, libseccomp \d+\.\d+\.\d+", found["seccomp"][1])
    assert found["idmapped mounts"][0] in ("OK", "missing")      # root can tell


def test_usage() -> None:
    r = run("jailctl", "doctor", "now")
    assert (r.rc, r.out, r.err) == (1, "", "usage: jailctl doctor\n")


@needs_root
def test_what_is_missing_is_said_and_only_jails_needs_fail(tmp_path: Path) -> None:
    # no musl-gcc on PATH: said, but jails run without it
    env = {"PATH": str(tmp_path), "LANG": "C"}
    r = run("jailctl", "doctor", env=env)
    assert r.rc == 0
    assert lines_of(r.out)["musl-gcc"] == ("missing", "to build from source (Debian: musl-tools)")
    # a state directory other users could write: jail must not run like that
    state = tmp_path / "state"
    state.mkdir()
    os.chmod(state, 0o777)
    r = run("jailctl", "doctor", env={**env, "LINJAIL_STATE_DIR": str(state)})
    assert r.rc == 1
    assert lines_of(r.out)["state"] == ("missing", f"{state}: mode 0777, owner 0 "
                                                   "(only root may write)")
