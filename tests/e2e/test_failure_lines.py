"""What a failure looks like from the real commands (issue 10): the object
that failed by its path, never the /proc/self/fd/N it was reached through,
and a hint where the errno alone leaves the user stuck (errors.hint).
The DragonFly form's and rc.conf's lines are in test_jail.py and test_rc.py."""
from __future__ import annotations

import os
import resource
import subprocess

from conftest import cmd, needs_root, run

pytestmark = needs_root


def _ours(path: str) -> list[int]:
    from linjail.state import registry
    return [r.jid for r in registry.all_records() if r.path == path]


def _dead_claims() -> set[str]:
    """Address and id-range claims naming a JID without a record."""
    from linjail.state import registry
    return set(registry.dead_claims({r.jid for r in registry.all_records()}))


def test_freebsd_form_names_the_mount_point(private_root: str) -> None:
    os.mkdir(os.path.join(private_root, "data"))
    r = run("jail", "-c", f"path={private_root}",
            f"mount=tmpfs {private_root}/data tmpfs size=bogus 0 0", "command=/bin/true")
    assert (r.rc, r.out, r.err) == (
        1, "", f"jail: mount: Invalid argument ({private_root}/data)\n")
    assert _ours(private_root) == []


def test_out_of_descriptors_says_which_limit(private_root: str) -> None:
    """RLIMIT_NOFILE of 8: the launcher cannot make its pipes.  The line says
    it is this process's limit (it was `internal error: OSError: [Errno 24]`)."""
    def low_limit() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (8, 8))
    before = _dead_claims()
    p = subprocess.run([cmd("jail"), private_root, "h", "", "/bin/true"],
                       capture_output=True, text=True, timeout=60, preexec_fn=low_limit,
                       env={"PATH": "/usr/bin:/bin", "LANG": "C"})
    assert (p.returncode, p.stdout, p.stderr) == (
        1, "", "jail: Too many open files; this process has as many files open as its limit "
               "allows (ulimit -n)\n")
    assert _ours(private_root) == []
    # its id range released too, though the record could not be read back then
    assert _dead_claims() - before == set()
