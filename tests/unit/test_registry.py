"""The registry (SPEC §1, §7 "State") in a private state directory: no root needed."""
from __future__ import annotations

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
