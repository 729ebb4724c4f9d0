"""Capabilities of jailed root, without root: the keep set and the order of
the drop, against a fake of the syscall layer."""
from __future__ import annotations

import errno
import itertools

import pytest

from linjail.confine import caps
from linjail.kernel import libc
from linjail.model import Knobs

ALL_KNOBS = [Knobs(set_hostname_allowed=h, socket_unixiproute_only=u, sysvipc_allowed=s,
                   allow_raw_sockets=r, chflags_allowed=c, enforce_statfs=e)
             for h, u, s, r, c, e in itertools.product((0, 1), (0, 1), (0, 1), (0, 1), (0, 1),
                                                       (0, 1, 2))]


def test_numbers_match_linux_capability_h() -> None:
    assert len(caps.CAP) == 41
    assert sorted(caps.CAP.values()) == list(range(41))
    for name, num in (("CHOWN", 0), ("SETPCAP", 8), ("LINUX_IMMUTABLE", 9), ("NET_RAW", 13),
                      ("SYS_ADMIN", 21), ("MKNOD", 27), ("AUDIT_WRITE", 29), ("SETFCAP", 31),
                      ("SYSLOG", 34), ("BPF", 39), ("CHECKPOINT_RESTORE", 40)):
        assert caps.CAP[name] == num
    assert caps.NAMES[21] == "SYS_ADMIN"


@pytest.mark.parametrize("knobs", ALL_KNOBS)
def test_keep_set(knobs: Knobs) -> None:
    keep = caps.keep_set(knobs)
    names = {caps.NAMES[c] for c in keep}
    assert names >= caps.BASE
    assert not names & caps.NEVER
    assert ("NET_RAW" in names) == bool(knobs.allow_raw_sockets)
    assert ("LINUX_IMMUTABLE" in names) == bool(knobs.chflags_allowed)
    assert names - caps.BASE <= {"NET_RAW", "LINUX_IMMUTABLE"}


def test_default_keep_set_is_docker_minus_mknod_and_net_raw() -> None:
    docker = {"CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "MKNOD", "NET_RAW", "SETGID",
              "SETUID", "SETFCAP", "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL",
              "AUDIT_WRITE"}
    keep = {caps.NAMES[c] for c in caps.keep_set(Knobs())}
    assert keep == docker - {"MKNOD", "NET_RAW"}
    assert len(keep) == 12


def test_never_kept() -> None:
    for name in ("SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_TIME", "SYS_BOOT",
                 "DAC_READ_SEARCH", "SYSLOG", "NET_ADMIN", "BPF", "PERFMON", "MAC_ADMIN",
                 "MAC_OVERRIDE", "MKNOD"):
        assert all(caps.CAP[name] not in caps.keep_set(k) for k in ALL_KNOBS), name


def test_mask() -> None:
    assert caps.mask(frozenset()) == 0
    assert caps.mask(frozenset({0, 21, 40})) == 1 | 1 << 21 | 1 << 40
    # Docker's default CapBnd, 00000000a80425fb, without MKNOD and NET_RAW
    assert f"{caps.mask(caps.keep_set(Knobs())):016x}" == "00000000a00405fb"


class FakeLibc:
    """Records the calls drop() makes, in order."""

    def __init__(self, effective: int = 2**41 - 1, fail_on: int | None = None) -> None:
        self.calls: list[tuple[object, ...]] = []
        self.sets = (effective, effective, 2**41 - 1)
        self.fail_on = fail_on

    def prctl(self, option: int, arg2: int = 0, *rest: int) -> int:
        self.calls.append(("prctl", option, arg2))
        if option == libc.PR_CAPBSET_DROP and arg2 == self.fail_on:
            raise OSError(errno.EPERM, "prctl: Operation not permitted")
        if option == caps.PR_CAPBSET_READ and arg2 > 40:
            raise OSError(errno.EINVAL, "prctl: Invalid argument")
        return 1

    def capget(self) -> tuple[int, int, int]:
        self.calls.append(("capget",))
        return self.sets

    def capset(self, e: int, p: int, i: int) -> None:
        self.calls.append(("capset", e, p, i))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeLibc:
    f = FakeLibc()
    for name in ("prctl", "capget", "capset"):
        monkeypatch.setattr(libc, name, getattr(f, name))
    monkeypatch.setattr(caps, "_last_cap", 40)
    return f


def test_drop_order_and_sets(fake: FakeLibc) -> None:
    keep = caps.keep_set(Knobs())
    caps.drop(keep)
    dropped = [c[2] for c in fake.calls if c[:2] == ("prctl", libc.PR_CAPBSET_DROP)]
    assert dropped == [c for c in range(41) if c not in keep]
    # bounding first, then ambient, then inheritable cleared with e/p untouched
    n = len(dropped)
    assert fake.calls[n] == ("prctl", libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    assert fake.calls[n + 1:] == [("capget",), ("capset", 2**41 - 1, 2**41 - 1, 0)]


def test_drop_names_the_capability(fake: FakeLibc) -> None:
    fake.fail_on = caps.CAP["SYS_ADMIN"]
    with pytest.raises(OSError, match=r"PR_CAPBSET_DROP, CAP_SYS_ADMIN") as info:
        caps.drop(caps.keep_set(Knobs()))
    assert info.value.errno == errno.EPERM


def test_last_cap_without_proc(fake: FakeLibc, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(caps, "_last_cap", None)
    monkeypatch.setattr(caps, "CAP_LAST_CAP_PATH", "/nonexistent/cap_last_cap")
    assert caps.last_cap() == 40
    assert caps.last_cap() == 40      # remembered


def test_last_cap_from_proc(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "cap_last_cap"
    path.write_text("40\n")
    monkeypatch.setattr(caps, "_last_cap", None)
    monkeypatch.setattr(caps, "CAP_LAST_CAP_PATH", str(path))
    assert caps.last_cap() == 40
