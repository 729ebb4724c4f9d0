"""The registry (SPEC §1, §7 "State") in a private state directory: no root needed."""
from __future__ import annotations

import errno
import os
import time

import pytest

from linjail.state import registry


@pytest.fixture(autouse=True)
def state_dir(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    return str(tmp_path)


def _rec(jid: int, **kw: object) -> registry.JailRecord:
    base = dict(jid=jid, hostname="h", path="/", ips=[], bootid=registry.boot_id(),
                owner_pid=os.getpid(), owner_start=registry.starttime(os.getpid()) or 0,
                created=time.time())
    base.update(kw)
    return registry.JailRecord(**base)  # type: ignore[arg-type]


def test_jids_start_at_one_and_go_up() -> None:
    jids = [registry.allocate(_rec).jid for _ in range(3)]
    assert jids == [1, 2, 3]
    registry.delete(2)
    assert registry.allocate(_rec).jid == 4      # never reused before the wrap


def test_counter_resets_with_a_new_boot(state_dir: str) -> None:
    registry.allocate(_rec)
    with open(os.path.join(state_dir, "jid"), "w") as f:
        f.write("another-boot 77\n")
    assert registry.allocate(_rec).jid == 2      # 1 still has a record: skipped


def test_wrap_skips_live_jids(state_dir: str) -> None:
    registry.allocate(_rec)                      # jid 1 exists
    with open(os.path.join(state_dir, "jid"), "w") as f:
        f.write(f"{registry.boot_id()} {registry.JID_MAX}\n")
    assert registry.allocate(_rec).jid == registry.JID_MAX
    assert registry.allocate(_rec).jid == 2


def test_liveness_needs_boot_pid_and_start_time() -> None:
    me = registry.starttime(os.getpid())
    assert me is not None
    assert _rec(1).live()
    assert not _rec(1, bootid="0" * 32).live()
    assert not _rec(1, owner_start=me + 1).live()
    running = _rec(1, state="running", pid=os.getpid(), starttime=me)
    assert running.live()
    assert not _rec(1, state="running", pid=os.getpid(), starttime=me - 1).live()


def test_dead_records_are_not_listed() -> None:
    registry.write(_rec(5, state="running", pid=os.getpid(),
                        starttime=registry.starttime(os.getpid())))
    registry.write(_rec(6, state="running", pid=2**22 + 1, starttime=1))
    assert [r.jid for r in registry.live_jails()] == [5]


def test_records_are_written_atomically(state_dir: str) -> None:
    registry.write(_rec(9))
    names = os.listdir(os.path.join(state_dir, "jails"))
    assert names == ["9"]
    assert registry.read(9) == _rec(9, created=registry.read(9).created)  # type: ignore[union-attr]


def test_record_round_trip_with_hostile_hostname() -> None:
    rec = _rec(4, hostname="a\tb\nc\\d\x1b[2J é", ips=["198.51.100.1", "2001:db8::1"],
               knobs={"set_hostname_allowed": 0})
    registry.write(rec)
    assert registry.read(4) == rec


def test_garbage_record_is_ignored(state_dir: str) -> None:
    os.makedirs(os.path.join(state_dir, "jails"), exist_ok=True)
    with open(os.path.join(state_dir, "jails", "3"), "w") as f:
        f.write("jid\tnot-a-number\n")
    assert registry.read(3) is None
    assert list(registry.all_records()) == []


def test_a_jid_claimed_elsewhere_is_skipped() -> None:
    """Another registry's jail holds JID 1's host objects: this one takes 2."""
    claims = {1: None, 2: 77}
    rec = registry.allocate(_rec, claim=claims.__getitem__)
    assert (rec.jid, rec.cgroup_ino) == (2, 77)
    assert registry.read(2) == rec


def test_a_failed_write_gives_the_claim_back(state_dir: str) -> None:
    given_back = []

    def bad(jid: int) -> registry.JailRecord:
        raise OSError(28, "No space left on device")
    with pytest.raises(OSError):
        registry.allocate(bad, claim=lambda jid: 5, unclaim=given_back.append)
    assert given_back == [1] and registry.read(1) is None


# -- addresses: no two jails share one ----------------------------------------------

def _with(ips: list[str], **kw: object) -> "object":
    return lambda jid: _rec(jid, ips=ips, **kw)


def _claims(state_dir: str) -> dict[str, str]:
    d = os.path.join(state_dir, "addrs")
    return {n: os.readlink(os.path.join(d, n)) for n in os.listdir(d)} \
        if os.path.isdir(d) else {}


def test_a_live_jails_address_is_refused(state_dir: str) -> None:
    from linjail.errors import JailError, render
    first = registry.allocate(_with(["198.51.100.5", "2001:db8::5"]))
    assert _claims(state_dir) == {"198.51.100.5": "1", "2001:db8::5": "1"}
    with pytest.raises(JailError) as info:
        registry.allocate(_with(["198.51.100.6", "2001:db8::5"]))
    assert (render("jail", info.value), info.value.code) == (
        "jail: jail: Address already in use", 1)
    assert (info.value.op, info.value.obj, info.value.errno) == ("jail", None, errno.EADDRINUSE)
    # nothing of the refused jail: no record, no JID used, no claim
    assert sorted(os.listdir(os.path.join(state_dir, "jails"))) == ["1"]
    assert _claims(state_dir) == {"198.51.100.5": "1", "2001:db8::5": "1"}
    assert registry.allocate(_with(["198.51.100.6"])).jid == 2
    registry.delete(first.jid)
    assert _claims(state_dir) == {"198.51.100.6": "2"}


def test_a_dead_jails_claim_is_taken_over(state_dir: str) -> None:
    registry.allocate(_with(["198.51.100.5"], owner_start=1))      # not live
    assert registry.allocate(_with(["198.51.100.5"])).jid == 2
    assert _claims(state_dir) == {"198.51.100.5": "2"}
    registry.delete(1)                   # the dead one's release keeps the new claim
    assert _claims(state_dir) == {"198.51.100.5": "2"}


def test_a_claim_without_its_record_is_stale(state_dir: str) -> None:
    os.makedirs(os.path.join(state_dir, "addrs"))
    os.symlink("9", os.path.join(state_dir, "addrs", "198.51.100.5"))
    assert registry.allocate(_with(["198.51.100.5"])).jid == 1
    assert _claims(state_dir) == {"198.51.100.5": "1"}


def test_an_address_listed_twice_in_one_jail() -> None:
    rec = registry.allocate(_with(["198.51.100.5", "198.51.100.5"]))
    registry.delete(rec.jid)
    assert registry.allocate(_with(["198.51.100.5"])).jid == 2


def test_lock_is_reentrant(state_dir: str) -> None:
    with registry.Lock():
        with registry.Lock():
            pass
        assert registry.Lock._depth == 1
    assert registry.Lock._depth == 0 and registry.Lock._fd == -1


def test_a_refused_address_gives_the_jid_claim_back() -> None:
    from linjail.errors import JailError
    registry.allocate(_with(["198.51.100.5"]))
    given_back: list[int] = []
    with pytest.raises(JailError):
        registry.allocate(_with(["198.51.100.5"]), claim=lambda jid: 5,
                          unclaim=given_back.append)
    assert given_back == [2] and registry.read(2) is None


def test_claims_without_a_record_are_dropped_under_the_lock(state_dir: str) -> None:
    """What a launcher killed between its claims and its record leaves: the
    sweep (sweep_claims) finds claims naming no record and drops them, and
    keeps those whose record appeared since it looked."""
    from linjail.state import uidrange
    live = registry.allocate(_with(["198.51.100.5"]), uid_range=True)
    far, farther = (str(uidrange.base_of(uidrange.SLOTS - n)) for n in (1, 2))
    for sub, name, jid in (("addrs", "198.51.100.9", "9"), ("uids", far, "9"),
                           ("uids", farther, "10")):
        os.makedirs(os.path.join(state_dir, sub), exist_ok=True)
        os.symlink(jid, os.path.join(state_dir, sub, name))
    named = {live.jid}
    found = sorted(registry.dead_claims(named))
    assert found == sorted(os.path.join(state_dir, sub, name) for sub, name in (
        ("addrs", "198.51.100.9"), ("uids", far), ("uids", farther)))
    registry.write(_rec(10))             # JID 10's record appears before the drop
    registry.drop_dead_claims(found)
    assert _claims(state_dir) == {"198.51.100.5": "1"}
    assert sorted(os.listdir(os.path.join(state_dir, "uids"))) == sorted(
        [str(live.uid_base), farther])


def test_delete_releases_with_the_callers_record(state_dir: str) -> None:
    """A launcher that cannot read its record back (at its descriptor limit)
    still releases the claims its own copy names."""
    rec = registry.allocate(_with(["198.51.100.5"]), uid_range=True)
    os.unlink(os.path.join(state_dir, "jails", str(rec.jid)))
    registry.delete(rec.jid, rec)
    assert _claims(state_dir) == {}
    assert os.listdir(os.path.join(state_dir, "uids")) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="the sweep is root's")
def test_the_sweep_removes_dead_writers_tmp_files(state_dir: str) -> None:
    """A writer killed between its tmp file and the rename leaves NAME.PID.tmp,
    in the records directory or beside the JID counter: the next look removes
    those whose writer is gone, and keeps a live writer's."""
    from linjail.lifecycle import sweep
    registry.allocate(_rec)
    dead = 2 ** 22 + 1                   # above pid_max's default: no such process
    left = [os.path.join(state_dir, f"jid.{dead}.tmp"),
            os.path.join(state_dir, "jails", f"7.{dead}.tmp")]
    busy = os.path.join(state_dir, f"knobs.{os.getpid()}.tmp")
    for path in left + [busy]:
        with open(path, "w") as f:
            f.write("half")
    assert [r.jid for r in sweep.jails()] == [1]
    assert [os.path.exists(p) for p in left + [busy]] == [False, False, True]
