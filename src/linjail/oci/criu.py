"""`linjail-oci checkpoint` and `restore`: refused in one line that says why.

CRIU 3.17 (Debian 12's `criu`) cannot start on the kernels linjail runs on
here: `criu check` fails in its vDSO detection ("vdso: Unexpected rt vDSO
area bounds") before it looks at any process, and runc 1.1.5's own
checkpoint fails the same way.  The line carries the first error of
`criu check` (of the binary --criu names); where CRIU works, it says that
linjail-oci does not checkpoint.  Nothing is made either way.
"""
from __future__ import annotations

import subprocess

from ..errors import JailError
from . import store


def refuse(root: str, cid: str, command: str, criu: str) -> int:
    if command == "checkpoint":
        st = store.read(root, cid)
        now = store.status(root, st)
        if now not in ("running", "paused"):
            raise JailError(f"container {cid} is {now}: only a running container can be "
                            "checkpointed")
    try:
        p = subprocess.run([criu, "check"], capture_output=True, text=True, timeout=30,
                           check=False, cwd="/")
    except FileNotFoundError:
        raise JailError(f"{command}: {criu}: not found (CRIU is not installed)") from None
    except (OSError, subprocess.TimeoutExpired) as err:
        raise JailError(f"{command}: {criu} check: {err}") from None
    errors = [line.split(": ", 1)[1] if ": " in line else line
              for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error ")]
    if p.returncode != 0:
        why = errors[0] if errors else (p.stderr.strip().splitlines() or ["failed"])[-1]
        raise JailError(f"{command}: CRIU cannot run on this host: {why} ({criu} check)")
    raise JailError(f"{command}: not supported by linjail-oci (a jail's mounts, "
                    "namespaces and seccomp filter are not restored by CRIU here)")
