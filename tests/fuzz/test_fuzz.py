"""The fuzzer (issue 16): hostile input at every way in, judged by the rule.

    make fuzz CASES=3000 SEED=409     # more cases, another seed
    LINJAIL_FUZZ_CASES=N LINJAIL_FUZZ_SEED=S pytest tests/fuzz

`make test` runs LINJAIL_FUZZ_CASES (default 400) cases of seed 16.  Each
case is one test (its id is the case number; the failure shows how to repeat
it); every BATCH cases, the last of them also checks that nothing of the
fuzzer's is left on the host.  Everything runs against a private registry
and id-file directory (fuzz_entries.py says what the generators may touch).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

import pytest

from conftest import BIN, HOST_PATH, build_service_root, is_root, run
from fuzz_engine import judge
from fuzz_entries import PASSWD_EXTRA, Context, generate

CASES = int(os.environ.get("LINJAIL_FUZZ_CASES", "400"))
SEED = os.environ.get("LINJAIL_FUZZ_SEED", "16")
#: LINJAIL_FUZZ_ONLY=jail,tarball: draw from those entry points only
ONLY = [n for n in os.environ.get("LINJAIL_FUZZ_ONLY", "").split(",") if n]
BATCH = 25
BB = "/usr/bin/busybox"

pytestmark = pytest.mark.skipif(not is_root(), reason="needs root (jails)")


class Fuzz:
    """The session's fuzzing ground: a 0700 directory in /var/tmp holding the
    service root, the private registry, the private id-file directory and one
    directory per case; a running jail for jexec to aim at."""

    def __init__(self) -> None:
        self.base = tempfile.mkdtemp(prefix="linjail-fuzz-", dir="/var/tmp")
        try:
            self._prepare()
        except BaseException:
            self.close()
            raise

    def _prepare(self) -> None:
        os.chmod(self.base, 0o700)
        self.root = build_service_root(os.path.join(self.base, "root"))
        with open(os.path.join(self.root, "etc/passwd"), "ab") as f:
            f.write(PASSWD_EXTRA)
        self.state = os.path.join(self.base, "state")
        self.varrun = os.path.join(self.base, "varrun")
        os.mkdir(self.varrun)
        self.env = {b"PATH": HOST_PATH.encode(), b"LANG": b"C",
                    b"LINJAIL_STATE_DIR": self.state.encode(),
                    b"LINJAIL_VARRUN": self.varrun.encode()}
        self.seen: dict[int, int] = {}      # JID -> cgroup inode of the fuzzer's jails
        self.batch: list[str] = []          # the current batch's cases, described
        self.live_jid = 0
        self.ensure_target()

    def str_env(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.env.items()}

    def ensure_target(self) -> None:
        with self.registry() as registry:
            rec = registry.lookup(self.live_jid) if self.live_jid else None
        if rec is not None:
            return
        r = run("jail", "-i", self.root, "fz-target", "", "/bin/sh", "-c",
                f"{BB} sleep 100000 </dev/null >/dev/null 2>&1 &", env=self.str_env())
        assert r.rc == 0, r
        self.live_jid = int(r.out.split()[0])

    @contextmanager
    def registry(self) -> Iterator[object]:
        """linjail.state.registry, looking at the private registry."""
        from linjail.state import registry
        old = os.environ.get("LINJAIL_STATE_DIR")
        os.environ["LINJAIL_STATE_DIR"] = self.state
        try:
            yield registry
        finally:
            if old is None:
                del os.environ["LINJAIL_STATE_DIR"]
            else:
                os.environ["LINJAIL_STATE_DIR"] = old

    def note_records(self) -> None:
        with self.registry() as registry:
            for rec in registry.all_records():   # type: ignore[attr-defined]
                if rec.cgroup_ino:
                    self.seen[rec.jid] = rec.cgroup_ino

    def leaks(self) -> list[str]:
        """What the fuzzer left: jails, records, cgroups, veths, rules, mounts,
        id files."""
        from linjail.confine import cgroup
        from linjail.lifecycle import sweep
        found: list[str] = []
        deadline = time.monotonic() + 8     # a jail of `sleep 3 &` ends by itself
        while True:
            with self.registry() as registry:
                # what the next command would see: the sweep releases what ended
                live = [r for r in sweep.jails() if r.jid != self.live_jid]
                records = [r for r in registry.all_records()  # type: ignore[attr-defined]
                           if r.jid != self.live_jid]
            if not live or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        found += [f"jail {r.jid} ({r.hostname}) still running" for r in live]
        found += [f"record {r.jid} ({r.hostname}, {r.state})" for r in records
                  if r not in live]
        rules = run("ip", "rule").out + run("ip", "-6", "rule").out
        for jid, ino in sorted(self.seen.items()):
            if jid == self.live_jid or any(r.jid == jid for r in records):
                continue
            path = cgroup.jail_cgroup(jid)
            try:
                if os.stat(path).st_ino == ino:
                    found.append(f"cgroup {path}")
                continue          # another jail's claim on the JID now
            except FileNotFoundError:
                pass
            if os.path.exists(f"/sys/class/net/ljh{jid}"):
                found.append(f"veth ljh{jid}")
            if f"iif ljh{jid} " in rules:
                found.append(f"rule iif ljh{jid}")
        with open("/proc/self/mountinfo") as f:
            found += [f"mount {line.split()[4]}" for line in f
                      if self.base in line.split()[4]]
        found += [f"id file {name}" for name in os.listdir(self.varrun)]
        for name in os.listdir(self.varrun):
            os.unlink(os.path.join(self.varrun, name))
        self.seen = {j: i for j, i in self.seen.items() if f"cgroup {cgroup.jail_cgroup(j)}"
                     in found}
        return found

    def close(self) -> None:
        from linjail.lifecycle import sweep
        self.state = getattr(self, "state", os.path.join(self.base, "state"))
        self.env = getattr(self, "env", {b"PATH": HOST_PATH.encode(),
                                         b"LINJAIL_STATE_DIR": self.state.encode()})
        with self.registry():
            jids = [r.jid for r in sweep.jails()]      # (releases what ended)
        for jid in jids:
            run("jailctl", "remove", "-t", "0.2", str(jid), env=self.str_env())
        shutil.rmtree(self.base, ignore_errors=True)


@pytest.fixture(scope="module")
def fuzz() -> Iterator[Fuzz]:
    if shutil.which("busybox", path=HOST_PATH) is None:
        pytest.skip("busybox is not installed (make install installs it)")
    f = Fuzz()
    yield f
    f.close()


def _repeat(index: int) -> str:
    only = f"LINJAIL_FUZZ_ONLY={','.join(ONLY)} " if ONLY else ""
    return (f"repeat: {only}LINJAIL_FUZZ_SEED={SEED} LINJAIL_FUZZ_CASES={CASES} "
            f".venv/bin/python -m pytest -p no:cacheprovider 'tests/fuzz/test_fuzz.py::"
            f"test_case[{index}]'")


@pytest.mark.parametrize("index", range(CASES))
def test_case(fuzz: Fuzz, index: int) -> None:
    if index % BATCH == 0:
        fuzz.ensure_target()
        fuzz.batch = []
    ctx = Context(root=fuzz.root.encode(), live_jid=fuzz.live_jid, seed=SEED)
    case = generate(SEED, index, ctx, ONLY)
    workdir = os.path.join(fuzz.base, "cases", str(index))
    os.makedirs(workdir)
    from fuzz_engine import execute
    try:
        outcome = execute(case, BIN, workdir, fuzz.env)
        problems = judge(case, outcome)
        if outcome.rc not in (0, case.status, None):
            problems += [f"{rel} left behind by a failed build" for rel in case.absent_on_failure
                         if os.path.lexists(os.path.join(workdir, rel))]
        fuzz.note_records()
        for argv in case.cleanup:
            from stdio_states import run_with
            argv0 = os.path.join(BIN, argv[0].decode()).encode()
            run_with([argv0, *argv[1:]], env={**fuzz.env}, cwd=workdir,  # type: ignore
                     timeout=60)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    fuzz.batch.append(f"{index}: {case.describe()}")
    leaked: list[str] = []
    if index % BATCH == BATCH - 1 or index == CASES - 1:
        leaked = fuzz.leaks()
    report = (f"{case.describe()}\n  -> status {outcome.rc}, stdout {outcome.out[:300]!r}, "
              f"stderr {outcome.err[:600]!r}\n  {_repeat(index)}")
    if os.environ.get("LINJAIL_FUZZ_SHOW"):
        print(f"\n{index}: {report}")
    if leaked:
        problems.append("the batch left: " + ", ".join(leaked) + "\n  batch:\n    " +
                        "\n    ".join(fuzz.batch))
    if problems:
        pytest.fail("; ".join(problems) + "\n" + report, pytrace=False)
