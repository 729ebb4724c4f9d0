"""The OCI runtime-tools validation suite, runc beside linjail-oci (issue 14).

The suite (opencontainers/runtime-tools' validation/ programs) is kept outside the repository
with its vendored Go dependencies: OCI_RUNTIME_TOOLS (make passes it; default
/work/shared/external/runtime-tools), built offline by the build.sh kept beside it
(../../tools/oci-validation/build.sh) into OCI_VALIDATION (default
/var/tmp/linjail-oci-validation, reused).  tools/oci_conformance.py runs it program by
program; `make oci-conformance` prints the whole table.

Asserted here: runc passes every program tools/oci_conformance.py does not list as failing on
this host, and fails those it lists (so the table stays true); linjail-oci passes every
program runc passes but those it refuses on purpose (REFUSED: host namespaces, devices, pid
and mount namespace joins), and fails those; in a program it passes, only the checks of
capabilities no jail holds may fail (REFUSED_CHECKS: CAP_MKNOD, CAP_NET_RAW). PENDING lists
what linjail-oci does not pass yet (user namespaces); those are not required.
"""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import oci_env
from conftest import REPO, needs_root

sys.path.insert(0, os.path.join(REPO, "tools"))
import oci_conformance as oc  # noqa: E402

pytestmark = needs_root
SOURCE = os.environ.get("OCI_RUNTIME_TOOLS", "/work/shared/external/runtime-tools")
SUITE = os.environ.get("OCI_VALIDATION", "/var/tmp/linjail-oci-validation")
#: the programs make test runs (all of them: see README "Conformance" for the time it takes)
PROGRAMS: tuple[str, ...] = ()


@pytest.fixture(scope="module")
def suite() -> str:
    build = os.path.join(SOURCE, "..", "..", "tools", "oci-validation", "build.sh")
    if not os.path.isdir(SOURCE) or not os.path.isfile(build):
        pytest.skip(f"the runtime-tools suite is not at {SOURCE} (OCI_RUNTIME_TOOLS=DIR), "
                    f"or no build.sh beside it")
    # build.sh reuses what is built; one build at a time (other checkouts share SUITE)
    p = subprocess.run(["flock", SUITE + ".lock", build, SUITE], capture_output=True,
                       text=True, timeout=1200, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-3000:]
    return SUITE


def _programs(suite: str) -> list[str]:
    every = sorted(f[:-2] for f in os.listdir(os.path.join(suite, "bin")) if f.endswith(".t"))
    assert len(every) >= 50, every            # 58 at runtime-tools 5e63903
    return [p for p in every if not PROGRAMS or p in PROGRAMS]


def _table(outcomes: list[oc.Outcome]) -> str:
    return "\n".join(f"{o.runtime:12} {o.program:32} {oc.cell(o)} {o.reason}"
                     for o in outcomes)


# ~2 minutes per runtime alone; programs wait for a host-wide lock while another checkout runs
# the suite (they share cgroup names), so more under load than pyproject's 300 s
@pytest.mark.timeout(1800)
def test_linjail_oci_passes_every_program_runc_passes(suite: str) -> None:
    paths = {name: oci_env.runtime_path(name) for name in oci_env.runtime_names(ready=True)}
    if paths["runc"] is None:
        pytest.skip("runc is not installed (the reference)")
    runtimes = {name: path for name, path in paths.items() if path is not None}
    assert runtimes.keys() == paths.keys(), f"not installed: {oci_env.linjail_oci()}"
    programs = _programs(suite)
    before = _scratch()
    # linjail-oci runs only what is asserted of it (the 27 less PENDING, REFUSED among them):
    # the programs failing here for host, suite or runc reasons are make oci-conformance's
    asserted = set(programs) - set(oc.EXPECTED_FAIL) - set(oc.PENDING)
    outcomes = [oc.run_program(suite, name, path, program, 120)
                for program in programs for name, path in runtimes.items()
                if name == "runc" or program in asserted]
    # every program not listed as failing here passes, with runc and with linjail-oci (a
    # racy one after up to 3 tries); the listed ones fail with runc, so the table stays true
    must_pass = set(programs) - set(oc.EXPECTED_FAIL)
    for name in runtimes:
        passed = {o.program for o in outcomes if o.runtime == name and oc.accepted(o)}
        mine = must_pass - set(oc.REFUSED) - set(oc.PENDING) if name == "linjail-oci" \
            else must_pass
        assert mine <= passed, _table([o for o in outcomes if o.runtime == name
                                       and o.program in mine - passed])
        if name == "linjail-oci":       # and what it refuses, it refuses
            assert not passed & set(oc.REFUSED), passed & set(oc.REFUSED)
    runc_passed = {o.program for o in outcomes if o.runtime == "runc" and oc.accepted(o)}
    unexpected = (runc_passed & set(oc.EXPECTED_FAIL)) - set(oc.RACY)
    assert not unexpected, _table([o for o in outcomes if o.program in unexpected])
    # every program's scratch directory (bundles, rootfs copies) is gone again (another
    # checkout's run makes and removes its own only under the same lock)
    with oc.host_lock():
        assert _scratch() - before == set()


def _scratch() -> set[str]:
    return {n for n in os.listdir("/var/tmp") if n.startswith("ocirun-")}
