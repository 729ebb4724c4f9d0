"""state/uidrange.py without root: an OCI config's own host ids claimed as
given (FIRST-LAST), never shared with a live jail, skipped by automatic
ranges, released whole."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from linjail.state import uidrange

SIZE = uidrange.SIZE


def test_claim_ranges_then_release(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(uidrange, "taken_by_host", lambda: set())
    claims = str(tmp_path / "uids")
    live = {7}

    def holds(jid: int, first: int, count: int) -> bool:
        return jid in live
    # uid and gid ranges as one set of host ids: merged, each claimed once
    uidrange.claim_ranges(7, [(1000, 2000), (1000, 3000), (5000, 1)], claims, holds)
    assert sorted(os.listdir(claims)) == ["1000-3999", "5000-5000"]
    assert os.readlink(os.path.join(claims, "1000-3999")) == "7"
    # a live holder's ids are refused, nothing claimed
    with pytest.raises(OSError) as info:
        uidrange.claim_ranges(8, [(9000, 10), (3999, 5)], claims, holds)
    assert info.value.errno == errno.EUSERS and info.value.strerror == \
        "host id 3999 belongs to jail 7: two jails never share host ids"
    assert sorted(os.listdir(claims)) == ["1000-3999", "5000-5000"]
    # an automatic range skips a slot a live range claim overlaps
    uidrange.claim_ranges(7, [(uidrange.FIRST + 5, 1)], claims, holds)
    assert uidrange.claim(1, claims, holds) == uidrange.FIRST + SIZE
    # and a range claim may not take ids of a slot a live jail holds
    live.add(1)
    with pytest.raises(OSError) as info:
        uidrange.claim_ranges(9, [(uidrange.FIRST + SIZE + 10, 1)], claims, holds)
    assert info.value.strerror == (f"host id {uidrange.FIRST + SIZE + 10} belongs to jail 1: "
                                   "two jails never share host ids")
    # a dead holder's claim is taken over
    live.discard(7)
    uidrange.claim_ranges(9, [(1000, 10)], claims, holds)
    assert os.readlink(os.path.join(claims, "1000-1009")) == "9"
    # release drops every range claim still naming the jail, nothing else
    uidrange.release(7, 1000, claims, ranges=True)
    assert sorted(os.listdir(claims)) == ["1000-1009", str(uidrange.FIRST + SIZE)]
    uidrange.release(9, 1000, claims, ranges=True)
    uidrange.release(1, uidrange.FIRST + SIZE, claims)
    assert os.listdir(claims) == []


def test_merged() -> None:
    assert uidrange.merged([(10, 5), (0, 10), (20, 1), (30, 0)]) == [(0, 15), (20, 1)]
