#!/usr/bin/env python3
"""The OCI runtime-tools validation suite, program by program, for several runtimes (issue 14).

    oci_conformance.py --suite OUT [--runtime LABEL=PATH ...] [--programs a,b] [--json FILE]

OUT is the directory the suite was built in (`build.sh OUT`, README next to it): OUT/bin/*.t,
run from OUT/src.  Each program gets, for each runtime in turn, a private TMPDIR (its bundles)
and RUNTIME=PATH; its TAP output is counted.  A program *passes* when it prints a plan of at
least one test, no `not ok`, no error block and exits 0: the suite's programs that cannot set
up their container print `1..0` and an error, which run.sh (next to build.sh) would count as
"without failure".  Prints a table, runtimes side by side, with the expected result on this
host (EXPECTED_FAIL: programs runc fails here, and why), then one TOTAL line per runtime.
Exit 0 unless the runner itself could not run (exit 2); the verdict is the caller's.
"""
from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from typing import Iterator

#: Programs Debian's runc 1.1.5 fails on these hosts (Debian 12, kernel 6.x, hybrid cgroups: v1
#: controllers, no systemd, no AppArmor, no SELinux), read from its output: (who, why).  who is
#: "host" (a facility this host lacks: fails for every runtime here), "suite" (the suite's own
#: bug: fails for every runtime) or "runc" (runc's behaviour: another runtime may pass).
EXPECTED_FAIL: dict[str, tuple[str, str]] = {
    "delete": ("runc", "runc deletes a `created` container without an error; the suite "
                       "wants delete of a container not stopped refused"),
    "delete_resources": ("suite", "compares two *int64 pointers, never the pids limit values"),
    "hooks": ("suite", "expects 'post-start1' where its own hooks write 'post-start1 called'"),
    "hooks_stdin": ("runc", "runc hands the prestart hook status `creating` and poststart "
                            "`created`; the suite expects `created` and `running`"),
    "killsig": ("suite", "racy: signals the container as soon as it is `running`, which can be "
                         "before its shell has set the trap (runc failed 3 tries in a row)"),
    "linux_cgroups_blkio": ("host", "no blkio.leaf_weight: CFQ left the kernel in 5.0, "
                                    "only BFQ's weights are here"),
    "linux_cgroups_devices": ("runc", "compares the config's device rules with devices.list "
                                      "by position; runc's default rules come first there"),
    "linux_cgroups_hugetlb": ("host", "no hugetlb controller is mounted on this host"),
    "linux_cgroups_memory": ("host", "memory.kmem.limit_in_bytes accepts a write and keeps "
                                     "no limit on 6.x kernels (kernel memory limits are gone)"),
    "linux_cgroups_network": ("host", "no net_cls/net_prio controller is mounted on this host"),
    "linux_cgroups_pids": ("suite", "compares two *int64 pointers, never the pids limit values"),
    "linux_cgroups_relative_blkio": ("host", "as linux_cgroups_blkio"),
    "linux_cgroups_relative_devices": ("runc", "as linux_cgroups_devices"),
    "linux_cgroups_relative_hugetlb": ("host", "as linux_cgroups_hugetlb"),
    "linux_cgroups_relative_memory": ("host", "as linux_cgroups_memory"),
    "linux_cgroups_relative_network": ("host", "as linux_cgroups_network"),
    "linux_cgroups_relative_pids": ("suite", "as linux_cgroups_pids"),
    "linux_mount_label": ("host", "an SELinux mount label: this host runs no SELinux"),
    "linux_process_apparmor_profile": ("host", "an AppArmor profile: this host runs no "
                                               "AppArmor"),
    "linux_rootfs_propagation": ("runc", "rootfsPropagation shared/slave: runc's rbind of the "
                                         "bundle fails (EINVAL) where / is a private mount"),
    "linux_seccomp": ("runc", "the suite's filter fails getcwd; runc 1.1.5 calls getcwd after "
                              "loading the filter (its working-directory check)"),
    "misc_props": ("suite", "runs /runtimetest in a bundle it never copied it into"),
    "pidfile": ("suite", "kills the container once its process (`true`) has usually exited: "
                         "an error, as the spec says (it passes when the kill comes first)"),
    "poststart": ("runc", "runc 1.1 runs the poststart hooks at create, before start"),
    "poststart_fail": ("runc", "runc fails create when a poststart hook fails; the spec says "
                               "warn and go on"),
    "poststop_fail": ("runc", "runc fails delete when a poststop hook fails; the spec says "
                              "warn and go on"),
    "prestart": ("runc", "runc runs the prestart hooks at create; the suite wants them "
                         "after start is called"),
    "process_capabilities": ("host", "asks for every capability; this host's sessions have "
                                     "no CAP_SYS_RESOURCE in their bounding set"),
    "process_capabilities_fail": ("runc", "runc accepts the unknown capability CAP_TEST "
                                          "with a warning; the spec wants an error"),
    "process_rlimits": ("runc", "RLIMIT_AS of 1 GiB applies to runc's own Go init, whose "
                                "seccomp setup then fails with ENOMEM"),
    "start": ("runc", "runc refuses `create` of a config without `process`; the suite "
                      "expects the error from `start`"),
}

#: programs runc passes and linjail-oci fails on purpose: what they ask would undo a jail
#: (issue 14: host namespaces, --privileged and devices beyond the jail's /dev are refused)
REFUSED: dict[str, str] = {
    "linux_devices": "creates devices the config lists (/dev/test1 ...): devices beyond the "
                     "jail's /dev are refused",
    "linux_ns_itype": "a config without any namespace: the container would share every host "
                      "namespace, which linjail-oci refuses",
    "linux_ns_path": "joins a mount namespace by path: the jail's root, mounts and hooks "
                     "would be set up in a tree that namespace's other processes own (the "
                     "network, IPC, UTS and pid joins pass)",
}

#: programs runc passes that linjail-oci does not pass yet, and why: make test does not require
#: them (it requires every other one); remove a line when linjail-oci passes the program
PENDING: dict[str, str] = {}

#: single checks linjail-oci fails on purpose in programs that otherwise pass: capabilities no
#: jail holds (README "linjail-oci": Docker's set without CAP_MKNOD; CAP_NET_RAW only with
#: jail.defaults.allow_raw_sockets=1), which the suite's default config asks for
REFUSED_CHECKS = re.compile(r"not ok \d+ - expected \w+ capability CAP_(MKNOD|NET_RAW) set$")

#: programs whose own timing decides now and then, whatever the runtime: a failing one is
#: run up to 3 times; listed in EXPECTED_FAIL too, they may pass or fail
RACY: dict[str, str] = {
    "killsig": "sends the signal as soon as the container is `running`, which can be before "
               "its shell has set the trap",
    "pidfile": "kills the container as soon as it is `running`, mostly after `true` ended",
}

#: programs that share fixed host-wide names (the cgroup /cgrouptest, testdir/cgrouptest):
#: two runs of them at once (another checkout's make test) would read each other's limits
LOCK_FILE = "/var/tmp/linjail-oci-conformance.lock"


@dataclass
class Outcome:
    runtime: str
    program: str
    passed: bool = False
    ok: int = 0
    not_ok: int = 0
    plan: int | None = None
    rc: int | None = None
    seconds: float = 0.0
    tries: int = 1
    refused: int = 0                   # not-ok lines matching REFUSED_CHECKS
    passed_but_refused: bool = False   # only such lines failed
    reason: str = ""
    output: str = field(default="", repr=False)


def parse_tap(out: str) -> tuple[int, list[str], int | None, str]:
    """ok count, the not-ok lines, the plan (None without one), the program's own error.

    A YAML block after a test line is that test's diagnostics (an expected error included);
    one with an "error" right after the header, before any test, is the program's own verdict:
    the lifecycle programs (hooks, prestart, ...) print no test line, only `1..0`, and such a
    block when the runtime got it wrong.  Some programs print two TAP streams."""
    ok = 0
    not_ok: list[str] = []
    plans: list[int] = []
    error = ""
    after_test = in_block = block_attached = False
    for line in out.splitlines():
        if line.startswith("TAP version"):
            after_test = False
        elif line.startswith("ok "):
            ok += 1
            after_test = True
        elif line.startswith("not ok "):
            not_ok.append(line)
            after_test = True
        elif m := re.match(r"1\.\.(\d+)$", line):
            plans.append(int(m.group(1)))
        elif line == "  ---":
            in_block, block_attached = True, after_test
        elif line == "  ...":
            in_block = False
        elif in_block and not block_attached and not error and (
                m := re.match(r'\s*"error": "(.*)"', line)):
            error = m.group(1).split("\\n")[0]
    return ok, not_ok, sum(plans) if plans else None, error


def inner_refused(out: str) -> set[str]:
    """The not-ok lines whose only failures are REFUSED_CHECKS inside the container: many
    programs run the suite's runtimetest inside and fail one outer check ("check hostname",
    "check masked paths") when its output has any `not ok`; they print that output as the
    "stdout" of a YAML block just before the check's line."""
    found: set[str] = set()
    lines = out.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("not ok ") or i < 2 or lines[i - 1] != "  ...":
            continue
        start = max((j for j in range(i - 1) if lines[j] == "  ---"), default=-1)
        try:
            block = json.loads("\n".join(lines[start + 1:i - 1]))
        except json.JSONDecodeError:
            continue
        inner = [ln for ln in str(block.get("stdout", "")).splitlines()
                 if ln.startswith("not ok ")] if isinstance(block, dict) else []
        if inner and all(REFUSED_CHECKS.match(ln) for ln in inner):
            found.add(line)
    return found


def judge(o: Outcome) -> None:
    o.ok, not_ok, o.plan, error = parse_tap(o.output)
    o.not_ok = len(not_ok)
    inside = inner_refused(o.output)
    o.refused = sum(1 for line in not_ok if REFUSED_CHECKS.match(line) or line in inside)
    # a program that prints no TAP at all gives its verdict by its exit status alone
    # (process_rlimits_fail: exit 0 when the runtime refused RLIMIT_TEST)
    tap = "TAP version" in o.output
    sound = o.rc == 0 and not error and (o.plan is not None or not tap)
    o.passed = sound and not not_ok
    o.passed_but_refused = sound and not o.passed and o.refused == len(not_ok)
    if o.passed:
        return
    if o.rc is None:
        o.reason = "timed out"
    elif not_ok or error:
        real = [ln for ln in not_ok if not REFUSED_CHECKS.match(ln) and ln not in inside]
        o.reason = real[0] if real else error or not_ok[0]
    elif o.plan is None and tap:
        o.reason = "no TAP plan"
    else:
        tail = [ln for ln in o.output.splitlines() if ln.strip()]
        o.reason = tail[-1] if tail else f"exit status {o.rc}, no output"
    o.reason = o.reason[:200]


def accepted(o: Outcome) -> bool:
    """Passed; for linjail-oci, also passed but for the checks it fails on purpose."""
    return o.passed or (o.runtime == "linjail-oci" and o.passed_but_refused)


def containers(runtime: str) -> list[dict[str, object]]:
    p = subprocess.run([runtime, "list", "--format", "json"], capture_output=True, text=True,
                       timeout=60)
    try:
        got = json.loads(p.stdout or "null")
    except json.JSONDecodeError:
        return []
    return [c for c in got or [] if isinstance(c, dict)]


def clean(runtime: str, tmp: str) -> None:
    """Remove what a failing program left: its containers (those whose bundle is in TMP,
    never another run's), then the mounts and files in TMP."""
    for c in containers(runtime):
        bundle = str(c.get("bundle", ""))
        if bundle == tmp or bundle.startswith(tmp + "/"):
            subprocess.run([runtime, "delete", "--force", str(c.get("id"))],
                           capture_output=True, timeout=60)
    with open("/proc/self/mountinfo") as f:
        mounts = [ln.split()[4] for ln in f]
    for m in sorted((m for m in mounts if m == tmp or m.startswith(tmp + "/")),
                    key=len, reverse=True):
        subprocess.run(["umount", "-l", m], capture_output=True, timeout=60)
    # a container's last process may still be writing there for a moment after `delete`
    for _ in range(40):
        shutil.rmtree(tmp, ignore_errors=True)
        if not os.path.lexists(tmp):
            return
        time.sleep(0.25)
    print(f"oci_conformance.py: {tmp}: could not be removed", file=sys.stderr)


@contextlib.contextmanager
def host_lock() -> Iterator[None]:
    with open(LOCK_FILE, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def run_one(suite: str, label: str, runtime: str, program: str, timeout: float) -> Outcome:
    o = Outcome(label, program)
    t0 = time.monotonic()
    with host_lock():       # a program's scratch directory exists only under the lock
        tmp = tempfile.mkdtemp(prefix="ocirun-", dir="/var/tmp")
        os.chmod(tmp, 0o755)    # the linux_uid_mappings bundle is mounted by a mapped root
        env = {**os.environ, "RUNTIME": runtime, "TMPDIR": tmp}
        try:
            p = subprocess.run([os.path.join(suite, "bin", program + ".t")],
                               cwd=os.path.join(suite, "src"), env=env,
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=timeout)
            o.rc, o.output = p.returncode, p.stdout.decode(errors="replace")
        except subprocess.TimeoutExpired as e:
            o.output = (e.stdout or b"").decode(errors="replace")
        finally:
            o.seconds = time.monotonic() - t0
            clean(runtime, tmp)
    judge(o)
    return o


def run_program(suite: str, label: str, runtime: str, program: str,
                timeout: float) -> Outcome:
    """run_one, up to 3 times for a RACY program until it passes (the seconds are summed)."""
    o = run_one(suite, label, runtime, program, timeout)
    while not accepted(o) and program in RACY and o.tries < 3:
        again = run_one(suite, label, runtime, program, timeout)
        again.tries, again.seconds = o.tries + 1, o.seconds + again.seconds
        o = again
    return o


def cell(o: Outcome) -> str:
    verdict = "pass" if o.passed else "pass*" if accepted(o) else "FAIL"
    return (f"{verdict:5} {o.ok:>3}/{o.not_ok:<2}"
            + (f" ({o.tries})" if o.tries > 1 else ""))


def compare(outcomes: list[Outcome], ref: str, other: str) -> tuple[list[str], list[str]]:
    """The programs REF passes and OTHER does not, and those OTHER passes and REF does not."""
    passed = {(o.runtime, o.program) for o in outcomes if accepted(o)}
    programs = sorted({o.program for o in outcomes})
    return ([p for p in programs if (ref, p) in passed and (other, p) not in passed],
            [p for p in programs if (other, p) in passed and (ref, p) not in passed])


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="oci_conformance.py", description=__doc__.split("\n")[0])
    ap.add_argument("--suite", required=True, help="the directory build.sh built into")
    ap.add_argument("--runtime", action="append", default=[], metavar="LABEL=PATH",
                    help="a runtime to run the programs with (repeat; default runc)")
    ap.add_argument("--programs", default="",
                    help="comma-separated program names (default: every program)")
    ap.add_argument("--timeout", type=float, default=120, help="seconds per program")
    ap.add_argument("--json", default="", help="also write every outcome to this file")
    ap.add_argument("--logs", default="", help="keep each program's output in this directory")
    a = ap.parse_args(argv)
    runtimes: list[tuple[str, str]] = []
    for spec in a.runtime or ["runc=runc"]:
        label, sep, path = spec.partition("=")
        if not sep or not label or not path:
            ap.error(f"--runtime {spec}: not LABEL=PATH")
        found = shutil.which(path)
        if found is None:
            print(f"oci_conformance.py: {path}: no such runtime", file=sys.stderr)
            return 2
        runtimes.append((label, found))
    bindir = os.path.join(a.suite, "bin")
    if not os.path.isdir(bindir) or not os.path.isdir(os.path.join(a.suite, "src")):
        print(f"oci_conformance.py: {a.suite}: not a built suite (run build.sh first)",
              file=sys.stderr)
        return 2
    every = sorted(f[:-2] for f in os.listdir(bindir) if f.endswith(".t"))
    wanted = [p for p in a.programs.split(",") if p]
    unknown = sorted(set(wanted) - set(every))
    if unknown:
        print(f"oci_conformance.py: no such program: {', '.join(unknown)}", file=sys.stderr)
        return 2
    programs = wanted or every
    if a.logs:
        os.makedirs(a.logs, exist_ok=True)
    width = max(len(p) for p in programs) + 2
    print("pass/FAIL ok/not-ok per program (tries when a racy program was run again); last "
          "column: what runc does here,\nand why it fails: host = this host lacks it, suite = "
          "the suite's own bug, runc = runc's behaviour;\nand what linjail-oci refuses on "
          "purpose.  pass*: only checks of capabilities no jail holds failed (CAP_MKNOD, "
          "CAP_NET_RAW)")
    print(f"{'program':<{width}}" + "".join(f"{label:<18}" for label, _ in runtimes)
          + "runc on this host")
    outcomes: list[Outcome] = []
    for program in programs:
        row = [run_program(a.suite, label, path, program, a.timeout)
               for label, path in runtimes]
        outcomes += row
        if a.logs:
            for o in row:
                with open(os.path.join(a.logs, f"{program}.{o.runtime}.log"), "w") as f:
                    f.write(o.output)
        who, why = EXPECTED_FAIL.get(program, ("", ""))
        note = f"; linjail-oci refuses it: {REFUSED[program]}" if program in REFUSED else \
            f"; linjail-oci: not yet ({PENDING[program]})" if program in PENDING else ""
        print(f"{program:<{width}}" + "".join(f"{cell(o):<18}" for o in row)
              + (f"fails ({who}): {why}" if why else "passes") + note, flush=True)
    for label, path in runtimes:
        mine = [o for o in outcomes if o.runtime == label]
        star = sum(1 for o in mine if accepted(o) and not o.passed)
        print(f"TOTAL {label} ({path}): {sum(o.passed for o in mine)}/{len(mine)} programs "
              f"pass" + (f" (+{star} pass*)" if star else "")
              + f", {sum(o.ok for o in mine)} ok, {sum(o.not_ok for o in mine)} not ok, "
              f"{sum(o.seconds for o in mine):.0f} s")
    ref = runtimes[0][0]
    for label, _ in runtimes[1:]:
        missing, extra = compare(outcomes, ref, label)
        both = sum(1 for o in outcomes if o.runtime == ref and o.passed)
        refused = [p for p in missing if p in REFUSED]
        missing = [p for p in missing if p not in REFUSED]
        print(f"{label} passes {both - len(missing) - len(refused)} of the {both} programs "
              f"{ref} passes"
              + (f" (refuses on purpose: {', '.join(refused)})" if refused else "")
              + (f" (not: {', '.join(missing)})" if missing else "")
              + (f", and {len(extra)} {ref} fails ({', '.join(extra)})" if extra else ""))
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"runtimes": dict(runtimes), "refused": REFUSED, "pending": PENDING,
                       "expected_fail": {k: list(v) for k, v in EXPECTED_FAIL.items()},
                       "outcomes": [asdict(o) | {"output": o.output[-4000:]}
                                    for o in outcomes]}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
