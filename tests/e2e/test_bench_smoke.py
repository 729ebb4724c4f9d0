"""bench/bench.py must keep working (issue 5): a quick run with N = 5.

No timing is asserted here: only that every section of the JSON is there and
the table is printed.  `make test` does not install the bench's peers
(bubblewrap, runc, systemd-nspawn), so this runs with linjail alone and
checks a peer's numbers only where the peer is installed.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="the bench starts jails: needs root"),
]

BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench.py"
SECTIONS = ("meta", "start", "jexec", "oci", "density", "stop", "summary", "targets", "notes")


def test_quick_bench_writes_every_section(tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, str(BENCH), "--quick", "--n", "5", "--runs", "2",
                        "--out", str(tmp_path)], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    data = json.loads((tmp_path / "bench.json").read_text())
    for section in SECTIONS:
        assert section in data, section
    start = data["start"]["ms"]
    assert {"jail", "jail_addr", "python"} <= set(start)
    assert all(len(v) == 2 for v in start.values())
    assert {"jexec", "python"} <= set(data["jexec"]["ms"])
    [row] = data["density"]["linjail"]
    assert row["n"] == 5 and row["alive"] == 5 and row["kept_procs_per_jail"] == 1
    assert len(data["stop"]["ms"]) == 2 and min(data["stop"]["processes"]) == 101
    assert len(data["targets"]) == 13       # with rctl's, the relay's and linjail-oci's
    relay = data["relay"]["gb_per_s"]
    assert len(relay["relay"]) == len(relay["pipe"]) == 2 and min(relay["relay"]) > 0
    # peers: their numbers where they are installed, a note where not
    peers = {"bwrap": "bwrap", "runc": "runc", "nspawn": "systemd-nspawn"}
    for key, prog in peers.items():
        if shutil.which(prog, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
            assert key in start or prog in data["meta"]["missing_peers"], prog
        else:
            assert prog in data["meta"]["missing_peers"]
    # podman run --rm with runc where both are installed (linjail-oci beside it once it is)
    if all(shutil.which(p, path=os.environ.get("PATH", "") + ":/usr/sbin") for p in
           ("podman", "runc")):
        assert len(data["oci"]["ms"]["podman_runc"]) == 2, data["oci"]
    # the table, on stdout and in table.md; the chart or the note saying why not
    assert "| Test | linjail | peers | linjail ÷ peer |" in p.stdout
    assert "| Target | Measured | Result |" in p.stdout
    assert (tmp_path / "table.md").read_text() == p.stdout
    assert (tmp_path / "bench.png").exists() or \
        "no chart: matplotlib is not installed" in data["notes"]
    # nothing of the bench is left behind
    jls = subprocess.run([str(Path(sys.executable).parent / "jls"), "--json"],
                         capture_output=True, text=True)
    assert "linjail-bench-" not in jls.stdout
