"""Errors as data, rendered once (issue 10, item 4), without root.

The mechanism raises (operation, object, errno) without a program name;
only the command line's one handler (cli/_main.py, errors.render) says
`prog: ...`, with a hint where the errno alone leaves the user stuck.  The
first process of a jail hands its error to the launcher over a pipe, fields
and all.
"""
from __future__ import annotations

import errno
import io
import os
from contextlib import redirect_stderr, redirect_stdout
from typing import Callable

import pytest

from linjail.cli import _main
from linjail.confine import rootfs
from linjail.errors import (JailError, OpError, UsageError, described, hint, os_error,
                            render)
from linjail.kernel.fake import FakeKernel
from linjail.lifecycle import plan, start
from linjail.lifecycle.confinement import Confinement
from linjail.model import JailSpec, Mount

MOUNT_LIMIT = "the kernel's limit of mounts is reached (sysctl fs.mount-max), not the disk's"
FILE_LIMIT = "this process has as many files open as its limit allows (ulimit -n)"


def test_an_operation_error_names_its_object() -> None:
    err = OpError("openat2", "/srv/www/dev", errno.ENOENT)
    assert (err.op, err.obj, err.errno) == ("openat2", "/srv/www/dev", errno.ENOENT)
    assert err.message == "/srv/www/dev: No such file or directory"
    assert OpError("jail", None, errno.EADDRINUSE).message == "jail: Address already in use"
    assert OpError("openat2", "/r/dev", errno.ELOOP, detail="is a symbolic link, refusing "
                   "to mount /dev there").message == \
        "/r/dev: is a symbolic link, refusing to mount /dev there"
    assert OpError("mount", "/r/dev", errno.EPERM, shown="as tests pin it").message == \
        "as tests pin it"


def test_an_os_error_keeps_its_wording_with_the_path_behind_the_descriptor() -> None:
    """kernel/libc.py puts the call before strerror; a mount through
    /proc/self/fd/N is shown by the path it stands for."""
    libc_err = OSError(errno.ENOSPC, "mount: No space left on device", "/proc/self/fd/9")
    err = os_error(libc_err, "/srv/www/dev")
    assert (err.op, err.obj, err.errno) == ("mount", "/srv/www/dev", errno.ENOSPC)
    assert err.message == "mount: No space left on device (/srv/www/dev)"
    assert os_error(libc_err).obj == "/proc/self/fd/9"
    plain = os_error(OSError(errno.EEXIST, os.strerror(errno.EEXIST), "null"))
    assert (plain.op, plain.message) == ("", "File exists (null)")
    call = os_error(OSError(errno.EINVAL, "fsconfig(size=1): Invalid argument"))
    assert (call.op, call.obj, call.message) == ("fsconfig", None,
                                                 "fsconfig(size=1): Invalid argument")


@pytest.mark.parametrize("err, line", [
    (JailError("realpath: /x: No such file or directory"),
     "jail: realpath: /x: No such file or directory"),
    (JailError("Invalid value bogus", stdout=True, bare=True), "Invalid value bogus"),
    (UsageError("usage: jail ...", "jail: illegal option -- \x1b"),
     "jail: illegal option -- \\033\nusage: jail ..."),
    (OSError(errno.ENOENT, "No such file or directory", "/etc/rc.conf"),
     "jail: /etc/rc.conf: No such file or directory"),
    (OSError(errno.ENODEV, "interface eth9: no such interface"),
     "jail: interface eth9: no such interface"),
    (OpError("jail", None, errno.EADDRINUSE), "jail: jail: Address already in use"),
    (ValueError("x\ny"), "jail: internal error: ValueError: x\\012y "
                         "(set LINJAIL_DEBUG=1 for details)"),
])
def test_render_is_one_line_with_the_program_name(err: BaseException, line: str) -> None:
    assert render("jail", err) == line


@pytest.mark.parametrize("err, why", [
    # ENOSPC from a mount is the mount limit (bubblewrap's lesson), not a full disk
    (os_error(OSError(errno.ENOSPC, "mount: No space left on device"), "/r/dev"),
     MOUNT_LIMIT),
    (OpError("move_mount", "/r/proc/kcore", errno.ENOSPC), MOUNT_LIMIT),
    (OSError(errno.EMFILE, "Too many open files"), FILE_LIMIT),
    (OpError("open", "/usr/lib/linjail/linjail-reaper", errno.EMFILE), FILE_LIMIT),
    (OSError(errno.ENFILE, "Too many open files in system"),
     "the system has as many files open as it allows (sysctl fs.file-max)"),
    (OpError("mount", "/r/proc", errno.EPERM), "mounting needs root with CAP_SYS_ADMIN in "
                                               "the host's own namespaces (not in a container)"),
    (OpError("openat2", "/r/etc/passwd", errno.EACCES),
     "root was refused this path: a root-squashed NFS or a FUSE file system, or a security "
     "module (AppArmor, SELinux), denies it"),
    # what tests pin stays as it is: a full stdout, jail(2)'s EPERM for a user
    (OpError("write", "stdout", errno.ENOSPC), ""),
    (JailError("jail: Operation not permitted"), ""),
    (OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}", "/var/run/jail_www.id"), ""),
])
def test_hints(err: BaseException, why: str) -> None:
    assert hint(err) == why
    assert isinstance(err, (JailError, OSError))
    text = err.message if isinstance(err, JailError) else \
        f"{err.filename + ': ' if err.filename else ''}{err.strerror}"
    assert described(err) == (f"{text}; {why}" if why else text)


def _raises(err: BaseException) -> Callable[[list[str]], int]:
    def body(args: list[str]) -> int:
        raise err
    return body


@pytest.mark.parametrize("prog", ["jail", "jexec", "jls", "jailctl", "rctl"])
def test_one_handler_for_every_command(prog: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each command's errors end the same way: its line, its status."""
    monkeypatch.setattr("sys.unraisablehook", __import__("sys").unraisablehook)
    cases: list[tuple[BaseException, int, str, str]] = [
        (OpError("mount", "/r/dev", errno.ENOSPC, shown="mount: No space left on device "
                 "(/r/dev)"), 1, "", f"{prog}: mount: No space left on device (/r/dev); "
                                     f"{MOUNT_LIMIT}\n"),
        (OSError(errno.EMFILE, "Too many open files"), 1, "",
         f"{prog}: Too many open files; {FILE_LIMIT}\n"),
        (JailError("ERROR: jail: x", 3), 3, "", f"{prog}: ERROR: jail: x\n"),
        (JailError("Invalid value y", stdout=True, bare=True), 1, "Invalid value y\n", ""),
    ]
    for err, code, out, text in cases:
        o, e = io.StringIO(), io.StringIO()
        with redirect_stdout(o), redirect_stderr(e):
            assert _main.run(prog, _raises(err), []) == code
        assert (o.getvalue(), e.getvalue()) == (out, text)


# -- the first process's error crosses the report pipe -------------------------------------

def _through_the_pipe(err: JailError, monkeypatch: pytest.MonkeyPatch) -> JailError:
    r, w = os.pipe()
    monkeypatch.setattr(start, "_REPORT_FD", w)
    try:
        start._report_failure(err)
        os.close(w)
        data = os.read(r, 65536)
    finally:
        os.close(r)
    return start._report_error(data)


@pytest.mark.parametrize("err", [
    OpError("openat2", "/r/dev", errno.ELOOP, detail="is a symbolic link, refusing to mount "
                                                     "/dev there"),
    os_error(OSError(errno.ENOSPC, "mount: No space left on device"), "/r/dev"),
    OpError("jail", None, errno.EADDRINUSE),
    JailError("juser: no such user"),
    JailError("internal error: KeyError: 'x'"),
])
def test_the_report_pipe_carries_the_fields(err: JailError,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LINJAIL_DEBUG", raising=False)
    got = _through_the_pipe(err, monkeypatch)
    assert (type(got), got.op, got.obj, got.errno, got.message) == (
        type(err), err.op, err.obj, err.errno, err.message)
    assert render("jail", got) == render("jail", err)


def test_a_first_process_that_dies_silently() -> None:
    assert render("jail", start._report_error(b"")) == \
        "jail: jail: the jail's first process died during setup"


def test_a_failed_mount_names_the_path_not_the_descriptor(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The jail side against the recording fake: /dev's tmpfs fails with
    ENOSPC; the launcher's line names ROOT/dev and says what ENOSPC means."""
    monkeypatch.delenv("LINJAIL_DEBUG", raising=False)
    plan.trace_to(-1)
    spec = JailSpec(path="/usr/jail/www", hostname="www", ips=(), command=("/bin/true",),
                    mounts=(Mount("tmpfs", "tmpfs", "/tmp"),))
    ctx = start.FirstProcess(spec, 7, b"\x7fELF", (0, 1, 2), None, (), (100, 101, 102, 103),
                             Confinement(frozenset(), b""))
    for nth, where in ((2, "/usr/jail/www/dev"), (3, "/usr/jail/www/dev/pts"),
                       (6, "/usr/jail/www/proc/acpi")):
        with FakeKernel() as k:
            k.fail("mount", nth=nth, err=errno.ENOSPC)
            k.reads.append(b"n")
            with pytest.raises(JailError) as info:
                plan.run(start.JAIL_STEPS, ctx, "first process")
        failed = [c for c in k.calls if c.name == "mount"][nth - 1]
        assert failed.args[1].startswith("/proc/self/fd/")    # what the kernel was given
        got = _through_the_pipe(info.value, monkeypatch)
        assert (got.op, got.obj, got.errno) == ("mount", where, errno.ENOSPC)
        assert render("jail", got) == (f"jail: mount: No space left on device (injected) "
                                       f"({where}); {MOUNT_LIMIT}")
    with FakeKernel() as k:          # a bind: open_tree, mount_setattr, move_mount
        k.fail("move_mount", nth=2, err=errno.EPERM)
        with pytest.raises(JailError) as info:
            plan.run(start.JAIL_STEPS, ctx, "first process")
    assert info.value.obj == f"/usr/jail/www/proc/{rootfs.PROC_READONLY[0]}"
    with FakeKernel() as k:          # the root's own bind names the root
        k.fail("open_tree", err=errno.ENOMEM)
        with pytest.raises(JailError) as info:
            plan.run(start.JAIL_STEPS, ctx, "first process")
    assert render("jail", info.value) == \
        "jail: open_tree: Cannot allocate memory (injected) (/usr/jail/www)"
