"""Capabilities and seccomp in a real process: a forked child confines itself
(caps.drop + seccomp.install, or the filter alone with every capability still
held, to tell the filter's errno from the kernel's) and then tries calls,
reporting the results through a pipe.

Every probe is harmless even if the filter failed to stop it: paths that do
not exist, descriptors that are -1, flag combinations the kernel rejects
(CLONE_THREAD without CLONE_SIGHAND), a UTS and an IPC namespace of the
child's own for sethostname and SysV IPC, and objects the test made itself.
"""
from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import mmap
import os
import signal
import socket
import stat
import struct
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path
from typing import Callable

import pytest

from linjail.confine import caps, libseccomp, seccomp, seccomp_compile, seccomp_rules
from linjail.kernel import libc
from linjail.model import Knobs


def _have_libseccomp() -> bool:
    try:
        libseccomp.load_library()
    except OSError:
        return False
    return True


pytestmark = [
    pytest.mark.privileged,
    pytest.mark.skipif(os.geteuid() != 0, reason="loading a filter without no_new_privs "
                       "and dropping capabilities need root"),
    pytest.mark.skipif(os.uname().machine != "x86_64",
                       reason="probes use x86_64 syscall numbers and machine code"),
    pytest.mark.skipif(not _have_libseccomp(), reason="libseccomp.so.2 not installed"),
]

EPERM, ENOSYS, EPROTONOSUPPORT = errno.EPERM, errno.ENOSYS, errno.EPROTONOSUPPORT
NOEXIST = b"/nonexistent-linjail-probe/x"
AT_FDCWD = -100
CLONE_THREAD = 0x00010000
IPC_PRIVATE = 0
FS_IMMUTABLE_FL = 0x10
TIOCGWINSZ = 0x5413

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long

_NR: dict[str, int] = {}


def nr(name: str) -> int:
    if not _NR:
        lib = libseccomp.load_library()
        for n in _ALL_NAMES:
            _NR[n] = int(lib.seccomp_syscall_resolve_name(n.encode()))
        _NR.update(seccomp_compile.NEW_SYSCALLS)
    return _NR[name]


Arg = int | bytes | ctypes.Array  # type: ignore[type-arg]


def sc(name: str, *args: Arg) -> int:
    """syscall(2): the result, or -errno."""
    cargs: list[object] = []
    for a in args:
        if isinstance(a, int):
            cargs.append(ctypes.c_long(a - 2**64 if a >= 2**63 else a))
        elif isinstance(a, bytes):
            cargs.append(ctypes.c_char_p(a))
        else:
            cargs.append(a)
    ret = int(_libc.syscall(ctypes.c_long(nr(name)), *cargs))
    return -ctypes.get_errno() if ret == -1 else ret


def closing(ret: int) -> int:
    """A call that returns a descriptor: close it, keep the result."""
    if ret >= 0:
        os.close(ret)
        return 0
    return ret


# ---------------------------------------------------------------- running confined

def in_child(knobs: Knobs, mode: str, probe: str, *args: object) -> tuple[object, int]:
    """Fork; in the child: own UTS and IPC namespaces, no core dumps, then
    confine by `mode` and run the module-level function `probe`:

      "seccomp"       the filter alone, every capability still held: any
                      EPERM below is the filter's;
      "caps+seccomp"  as a jail's PID 1 or jexec does it, before the exec:
                      the effective set is still full;
      "exec"          the same, then execve(2) of a Python that runs the
                      probe: the jailed program's view (caps = bounding set);
      "unconfined"    neither: the control.

    Returns what the probe returned (through JSON) and the wait status."""
    bpf = seccomp.program(knobs)
    keep = caps.keep_set(knobs)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # pragma: no cover - the child
        payload = b"{}"
        try:
            os.close(r)
            libc.prctl(libc.PR_SET_DUMPABLE, 0)     # SIGSYS must not dump core
            libc.unshare(libc.CLONE_NEWUTS | libc.CLONE_NEWIPC)
            if mode in ("caps+seccomp", "exec"):
                caps.drop(keep)
            if mode != "unconfined":
                seccomp.install(bpf)
            if mode == "exec":
                os.set_inheritable(w, True)
                os.execv(sys.executable, [sys.executable, "-c", _EXEC_PROBE, str(w), probe,
                                          json.dumps(args)])
            payload = json.dumps({"ok": globals()[probe](*args)}).encode()
        except BaseException:
            payload = json.dumps({"error": traceback.format_exc()}).encode()
        finally:
            try:
                _write_all(w, payload)
            finally:
                os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        return None, status
    result = json.loads(data)
    assert "error" not in result, result.get("error")
    return result["ok"], status


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


# run by the exec'd interpreter: import this file and call one probe
_EXEC_PROBE = f"""
import json, os, sys, traceback
sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
fd, name, args = int(sys.argv[1]), sys.argv[2], json.loads(sys.argv[3])
try:
    import test_confine
    out = json.dumps({{"ok": getattr(test_confine, name)(*args)}})
except BaseException:
    out = json.dumps({{"error": traceback.format_exc()}})
view = memoryview(out.encode())
while view:
    view = view[os.write(fd, view):]
"""


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setattr(seccomp, "_memo", {})


MODES = ["seccomp", "caps+seccomp", "exec"]
KNOB_SETS = {
    "defaults": Knobs(),
    "all-off": Knobs(set_hostname_allowed=0, socket_unixiproute_only=0, sysvipc_allowed=0,
                     allow_raw_sockets=0, chflags_allowed=0),
    "all-on": Knobs(set_hostname_allowed=1, socket_unixiproute_only=1, sysvipc_allowed=1,
                    allow_raw_sockets=1, chflags_allowed=1),
    "families-raw": Knobs(socket_unixiproute_only=0, allow_raw_sockets=1, sysvipc_allowed=1),
}


# ---------------------------------------------------------------- the probes

def _clone_probes() -> list[tuple[str, str, tuple[Arg, ...]]]:
    out: list[tuple[str, str, tuple[Arg, ...]]] = []
    for flag in seccomp_rules.CLONE_NEW_FLAGS:
        # CLONE_THREAD without CLONE_SIGHAND: EINVAL if the filter let it by
        out.append((f"clone {flag:#x}", "clone", (flag | CLONE_THREAD, 0, 0, 0, 0)))
    out.append(("clone NEWNET high bits", "clone",
                (1 << 32 | 0x40000000 | CLONE_THREAD, 0, 0, 0, 0)))
    return out


ALWAYS_EPERM: list[tuple[str, str, tuple[Arg, ...]]] = [
    ("mount", "mount", (b"none", NOEXIST, b"tmpfs", 0, 0)),
    ("umount2", "umount2", (NOEXIST, 0)),
    ("pivot_root", "pivot_root", (NOEXIST, NOEXIST)),
    ("fsopen", "fsopen", (b"linjail-nofs", 0)),
    ("fsconfig", "fsconfig", (-1, 0, 0, 0, 0)),
    ("fsmount", "fsmount", (-1, 0, 0)),
    ("fspick", "fspick", (-1, NOEXIST, 0)),
    ("move_mount", "move_mount", (-1, NOEXIST, -1, NOEXIST, 0)),
    ("open_tree", "open_tree", (-1, NOEXIST, 0)),
    ("open_tree_attr", "open_tree_attr", (-1, NOEXIST, 0, 0, 0)),
    ("mount_setattr", "mount_setattr", (-1, NOEXIST, 0, 0, 0)),
    ("unshare", "unshare", (libc.CLONE_NEWUTS,)),
    ("setns", "setns", (-1, 0)),
    *_clone_probes(),
    ("keyctl", "keyctl", (0x7FFF, 0, 0, 0, 0)),
    ("add_key", "add_key", (0, 0, 0, 0, 0)),
    ("request_key", "request_key", (0, 0, 0, 0)),
    ("bpf", "bpf", (0x7FFF, 0, 0)),
    ("perf_event_open", "perf_event_open", (0, 0, -1, -1, 0)),
    # invalid flags and segment counts: EINVAL (or ENOSYS) unfiltered, never an unload
    ("kexec_load", "kexec_load", (0, 1000, 0, 0x8000)),
    ("kexec_file_load", "kexec_file_load", (-1, -1, 0, 0, 0x8000)),
    ("reboot", "reboot", (0, 0, 0, 0)),                 # wrong magic
    ("init_module", "init_module", (0, 0, 0)),
    ("finit_module", "finit_module", (-1, b"", 0)),
    ("delete_module", "delete_module", (b"linjail_no_such_module", 0)),
    ("open_by_handle_at", "open_by_handle_at", (-1, 0, 0)),
    ("userfaultfd", "userfaultfd", (0xFFFF,)),
    ("io_uring_setup", "io_uring_setup", (0, 0)),
    ("io_uring_enter", "io_uring_enter", (-1, 0, 0, 0, 0, 0)),
    ("io_uring_register", "io_uring_register", (-1, 0, 0, 0)),
    ("acct", "acct", (NOEXIST,)),
    ("swapon", "swapon", (NOEXIST, 0)),
    ("swapoff", "swapoff", (NOEXIST,)),
    ("syslog", "syslog", (10, 0, 0)),                   # SYSLOG_ACTION_SIZE_BUFFER
    ("settimeofday", "settimeofday", (0, 0)),           # a no-op if let by
    ("clock_settime", "clock_settime", (0x7FFF, 0)),    # no such clock
    ("clock_adjtime", "clock_adjtime", (0x7FFF, 0)),
    ("adjtimex", "adjtimex", (0,)),
    ("iopl", "iopl", (4,)),
    ("ioperm", "ioperm", (0x10000, 1, 1)),
    ("quotactl", "quotactl", (0, 0, 0, 0)),
    ("quotactl_fd", "quotactl_fd", (-1, 0, 0, 0)),
    ("lookup_dcookie", "lookup_dcookie", (0, 0, 0)),
    ("nfsservctl", "nfsservctl", (0, 0, 0)),
    ("uselib", "uselib", (NOEXIST,)),
    ("ustat", "ustat", (0, 0)),
    ("sysfs", "sysfs", (0x7FFF, 0, 0)),
    ("_sysctl", "_sysctl", (0,)),
    ("create_module", "create_module", (0, 0)),
    ("get_kernel_syms", "get_kernel_syms", (0,)),
    ("query_module", "query_module", (0, 0, 0, 0, 0)),
    ("personality ADDR_NO_RANDOMIZE", "personality", (0x0040000,)),
    ("personality READ_IMPLIES_EXEC", "personality", (0x0400000,)),
    ("personality high bits", "personality", (1 << 32 | 0x0040000,)),
    ("personality 0x20009", "personality", (0x20009,)),
    ("mknod chr", "mknod", (NOEXIST, stat.S_IFCHR | 0o600, os.makedev(1, 3))),
    ("mknod blk", "mknod", (NOEXIST, stat.S_IFBLK | 0o600, os.makedev(7, 0))),
    ("mknod chr high bits", "mknod", (NOEXIST, 1 << 40 | stat.S_IFCHR | 0o600, 0)),
    ("mknodat chr", "mknodat", (AT_FDCWD, NOEXIST, stat.S_IFCHR | 0o600, os.makedev(1, 3))),
    ("mknodat blk", "mknodat", (AT_FDCWD, NOEXIST, stat.S_IFBLK | 0o600, os.makedev(7, 0))),
]

_ALL_NAMES = sorted({p[1] for p in ALWAYS_EPERM} | {
    "clone3", "ioctl", "socket", "socketpair", "sethostname", "setdomainname", "getpid",
    "name_to_handle_at", "msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop",
    "semtimedop", "semctl", "shmget", "shmat", "shmdt", "shmctl", "file_setattr"})


def probe_denied() -> dict[str, int]:
    out = {label: sc(name, *args) for label, name, args in ALWAYS_EPERM}
    out["clone3"] = sc("clone3", 0, 0)
    master, slave = os.openpty()
    c = ctypes.create_string_buffer(b"x")
    for label, cmd in (("TIOCSTI", seccomp_rules.TIOCSTI), ("TIOCLINUX", seccomp_rules.TIOCLINUX)):
        out[label] = sc("ioctl", slave, cmd, c)
        out[label + " high bits"] = sc("ioctl", slave, 1 << 32 | cmd, c)
        out[label + " all high bits"] = sc("ioctl", slave, 0xFFFFFFFF00000000 | cmd, c)
        out[label + " master"] = sc("ioctl", master, 1 << 32 | cmd, c)
    return out


@pytest.mark.parametrize("knob_set", ["defaults", "all-off", "all-on"])
@pytest.mark.parametrize("mode", MODES)
def test_always_denied(mode: str, knob_set: str) -> None:
    got, status = in_child(KNOB_SETS[knob_set], mode, "probe_denied")
    assert status == 0
    assert isinstance(got, dict)
    want = {label: -EPERM for label, _, _ in ALWAYS_EPERM}
    want["clone3"] = -ENOSYS
    for label in ("TIOCSTI", "TIOCLINUX"):
        for suffix in ("", " high bits", " all high bits", " master"):
            want[label + suffix] = -EPERM
    assert {k: got[k] for k in want} == want


def probe_allowed(tmp: str) -> dict[str, object]:
    out: dict[str, object] = {"getpid": sc("getpid") > 0}
    # fork, and setuid in the forked child (CAP_SETUID is kept)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            code = 0 if (os.getuid(), os.geteuid()) == (65534, 65534) else 2
        finally:
            os._exit(code)
    out["fork+setuid"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    # chown a file of ours (CAP_CHOWN), fifos and sockets by mknod
    f = os.path.join(tmp, "owned")
    open(f, "w").close()
    os.chown(f, 1234, 1234)
    out["chown"] = os.stat(f).st_uid == 1234
    out["mknod fifo"] = sc("mknod", os.path.join(tmp, "fifo").encode(), stat.S_IFIFO | 0o600, 0)
    out["mknodat fifo"] = sc("mknodat", AT_FDCWD, os.path.join(tmp, "fifo2").encode(),
                             stat.S_IFIFO | 0o600, 0)
    out["mknod socket"] = sc("mknod", os.path.join(tmp, "sock").encode(),
                             stat.S_IFSOCK | 0o600, 0)
    out["mknod regular"] = sc("mknod", os.path.join(tmp, "reg").encode(), stat.S_IFREG | 0o600, 0)
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.sendall(b"ping")
    out["socketpair unix"] = b.recv(4) == b"ping"
    for fam, typ in ((socket.AF_INET, socket.SOCK_STREAM), (socket.AF_INET6, socket.SOCK_DGRAM)):
        with socket.socket(fam, typ) as s:
            s.bind(("127.0.0.1" if fam == socket.AF_INET else "::1", 0))
            out[f"socket {fam.name} {typ.name}"] = s.getsockname()[1] > 0
    out["netlink route"] = closing(sc("socket", 16, 3, 0))
    out["netlink route high bits"] = closing(sc("socket", 16, 3, 1 << 32))
    out["personality query"] = sc("personality", 0xFFFFFFFF)
    out["personality UNAME26"] = sc("personality", 8) >= 0 and sc("personality", 0) == 8
    # name_to_handle_at is allowed: with handle_bytes 0 the kernel says EOVERFLOW
    handle = ctypes.create_string_buffer(128)
    mount_id = ctypes.c_int()
    out["name_to_handle_at"] = sc("name_to_handle_at", AT_FDCWD, f.encode(), handle,
                                  ctypes.byref(mount_id), 0)  # type: ignore[arg-type]
    master, slave = os.openpty()
    winsz = ctypes.create_string_buffer(8)
    out["TIOCGWINSZ"] = sc("ioctl", slave, TIOCGWINSZ, winsz)
    return out


def test_probes_tell_the_filter_apart() -> None:
    """The control: unfiltered, with every capability, no probe gets the
    filter's errno, so each one above is the filter's doing (and the
    probes are harmless: every call fails or acts on the child alone)."""
    got, status = in_child(Knobs(), "unconfined", "probe_denied")
    assert status == 0
    assert isinstance(got, dict)
    assert got["clone3"] != -ENOSYS
    assert [label for label, value in got.items() if value == -EPERM] == []
    # the kernel reads a 32-bit ioctl number: high bits do not change it
    assert got["TIOCSTI high bits"] == got["TIOCSTI"]


@pytest.mark.parametrize("knob_set", ["defaults", "all-off", "all-on"])
@pytest.mark.parametrize("mode", MODES)
def test_allowed(mode: str, knob_set: str, tmp_path: Path) -> None:
    got, status = in_child(KNOB_SETS[knob_set], mode, "probe_allowed", str(tmp_path))
    assert status == 0
    assert got == {
        "getpid": True, "fork+setuid": 0, "chown": True,
        "mknod fifo": 0, "mknodat fifo": 0, "mknod socket": 0, "mknod regular": 0,
        "socketpair unix": True, "socket AF_INET SOCK_STREAM": True,
        "socket AF_INET6 SOCK_DGRAM": True, "netlink route": 0, "netlink route high bits": 0,
        "personality query": 0, "personality UNAME26": True,
        "name_to_handle_at": -errno.EOVERFLOW, "TIOCGWINSZ": 0,
    }
    assert stat.S_ISFIFO(os.stat(tmp_path / "fifo").st_mode)


# ---------------------------------------------------------------- the knobs

def probe_knobs(tmp: str, raw: bool, unix: bool) -> dict[str, int]:
    out: dict[str, int] = {}
    out["sethostname"] = sc("sethostname", b"linjail-probe", 13)
    out["setdomainname"] = sc("setdomainname", b"linjail-probe", 13)
    # SysV IPC, in the child's own IPC namespace
    out["msgget"] = sc("msgget", IPC_PRIVATE, 0o600)
    out["semget"] = sc("semget", IPC_PRIVATE, 1, 0o600)
    out["shmget"] = sc("shmget", IPC_PRIVATE, 4096, 0o600)
    for name, args in (("msgsnd", (-1, 0, 0, 0)), ("msgrcv", (-1, 0, 0, 0, 0)),
                       ("msgctl", (-1, 0, 0)), ("semop", (-1, 0, 0)),
                       ("semtimedop", (-1, 0, 0, 0)), ("semctl", (-1, 0, 0, 0)),
                       ("shmat", (-1, 0, 0)), ("shmdt", (0,)), ("shmctl", (-1, 0, 0))):
        out[name] = sc(name, *args)
    # chflags on a file of ours
    f = os.path.join(tmp, "flags")
    open(f, "w").close()
    fd = os.open(f, os.O_RDONLY)
    zero = ctypes.c_long(0)
    fsx = ctypes.create_string_buffer(28)
    out["FS_IOC_SETFLAGS"] = sc("ioctl", fd, seccomp_rules.FS_IOC_SETFLAGS, ctypes.byref(zero))  # type: ignore[arg-type]
    out["FS_IOC_SETFLAGS high bits"] = sc("ioctl", fd, 1 << 32 | seccomp_rules.FS_IOC_SETFLAGS,
                                          ctypes.byref(zero))  # type: ignore[arg-type]
    out["FS_IOC32_SETFLAGS"] = sc("ioctl", fd, seccomp_rules.FS_IOC32_SETFLAGS, ctypes.byref(zero))  # type: ignore[arg-type]
    out["FS_IOC_FSSETXATTR"] = sc("ioctl", fd, seccomp_rules.FS_IOC_FSSETXATTR, fsx)
    out["file_setattr"] = sc("file_setattr", AT_FDCWD, f.encode(), 0, 0, 0)
    immutable = ctypes.c_long(FS_IMMUTABLE_FL)
    out["chattr +i"] = sc("ioctl", fd, seccomp_rules.FS_IOC_SETFLAGS, ctypes.byref(immutable))  # type: ignore[arg-type]
    out["chattr -i"] = sc("ioctl", fd, seccomp_rules.FS_IOC_SETFLAGS, ctypes.byref(zero))  # type: ignore[arg-type]
    os.close(fd)
    # families
    out["AF_PACKET"] = closing(sc("socket", 17, 3, 0x300))
    out["AF_PACKET high bits"] = closing(sc("socket", 1 << 32 | 17, 3, 0x300))
    out["socketpair AF_PACKET"] = closing(sc("socketpair", 17, 3, 0, 0))
    out["AF_ALG"] = closing(sc("socket", 38, 5, 0))
    out["AF_VSOCK"] = closing(sc("socket", 40, 1, 0))
    out["NETLINK_AUDIT"] = closing(sc("socket", 16, 3, 9))
    out["NETLINK_KOBJECT_UEVENT"] = closing(sc("socket", 16, 2, 15))
    # raw sockets
    nb_cloexec = socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC
    out["AF_INET SOCK_RAW"] = closing(sc("socket", 2, 3, 1))
    out["AF_INET SOCK_RAW nonblock"] = closing(sc("socket", 2, 3 | nb_cloexec, 1))
    out["AF_INET6 SOCK_RAW"] = closing(sc("socket", 10, 3, 58))
    out["AF_INET ping"] = closing(sc("socket", 2, 2 | nb_cloexec, 1))
    out["AF_INET6 ping"] = closing(sc("socket", 10, 2, 58))
    # where the filter lets it by, the kernel would only log "uses obsolete
    # (PF_INET,SOCK_PACKET)": tried where the filter answers
    if not raw or unix:
        out["AF_INET SOCK_PACKET"] = closing(sc("socket", 2, 10, 0x300))
    return out


def expected_knobs(k: Knobs, mode: str) -> dict[str, object]:
    """Exact errno where the filter answers; a predicate where the kernel does."""
    capped = mode == "exec"          # before the exec the effective set is still full
    ok = ("ok", lambda r: r >= 0)

    def not_(*errs: int) -> tuple[str, Callable[[int], bool]]:
        return (f"not {errs}", lambda r: -r not in errs)

    want: dict[str, object] = {}
    for n in ("sethostname", "setdomainname"):
        # allowed by the filter; without CAP_SYS_ADMIN the kernel refuses
        want[n] = -EPERM if not k.set_hostname_allowed or capped else 0
    for n in ("msgget", "semget", "shmget"):
        want[n] = ok if k.sysvipc_allowed else -ENOSYS
    for n in ("msgsnd", "msgrcv", "msgctl", "semop", "semtimedop", "semctl", "shmat", "shmdt",
              "shmctl"):
        want[n] = not_(ENOSYS, EPERM) if k.sysvipc_allowed else -ENOSYS
    for n in ("FS_IOC_SETFLAGS", "FS_IOC_SETFLAGS high bits", "FS_IOC32_SETFLAGS",
              "FS_IOC_FSSETXATTR", "file_setattr"):
        want[n] = not_(EPERM) if k.chflags_allowed else -EPERM
    # CAP_LINUX_IMMUTABLE is kept with the knob: jailed root may set +i
    want["chattr +i"] = want["chattr -i"] = 0 if k.chflags_allowed else -EPERM
    nope = -EPROTONOSUPPORT
    raw = -EPERM if not k.allow_raw_sockets else ok
    unix = bool(k.socket_unixiproute_only)
    want["AF_PACKET"] = nope if unix else raw
    want["AF_PACKET high bits"] = nope if unix else raw
    # not filtered without the family knob: the kernel answers (EPERM or EOPNOTSUPP)
    want["socketpair AF_PACKET"] = nope if unix else not_(EPROTONOSUPPORT)
    want["AF_ALG"] = nope
    want["AF_VSOCK"] = nope
    want["NETLINK_AUDIT"] = nope if unix else ok
    want["NETLINK_KOBJECT_UEVENT"] = nope if unix else ok
    for n in ("AF_INET SOCK_RAW", "AF_INET SOCK_RAW nonblock", "AF_INET6 SOCK_RAW"):
        want[n] = raw
    for n in ("AF_INET ping", "AF_INET6 ping"):
        # net.ipv4.ping_group_range decides once the filter lets it by
        want[n] = -EPERM if not k.allow_raw_sockets else not_(EPERM)
    if unix:      # a packet socket in disguise: a family the knob forbids
        want["AF_INET SOCK_PACKET"] = nope
    elif not k.allow_raw_sockets:
        want["AF_INET SOCK_PACKET"] = -EPERM
    return want


@pytest.mark.parametrize("knob_set", list(KNOB_SETS))
@pytest.mark.parametrize("mode", MODES)
def test_knobs(mode: str, knob_set: str, tmp_path: Path) -> None:
    knobs = KNOB_SETS[knob_set]
    try:
        got, status = in_child(knobs, mode, "probe_knobs", str(tmp_path),
                               bool(knobs.allow_raw_sockets),
                               bool(knobs.socket_unixiproute_only))
    finally:
        _clear_immutable(tmp_path / "flags")
    assert status == 0
    assert isinstance(got, dict)
    want = expected_knobs(knobs, mode)
    assert set(got) == set(want)
    wrong = {}
    for label, expect in want.items():
        value = got[label]
        if isinstance(expect, tuple):
            if not expect[1](value):
                wrong[label] = (value, expect[0])
        elif value != expect:
            wrong[label] = (value, expect)
    assert not wrong


def _clear_immutable(path: Path) -> None:
    if path.exists():
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.ioctl(fd, seccomp_rules.FS_IOC_SETFLAGS, struct.pack("l", 0))
        except OSError:
            pass
        finally:
            os.close(fd)


# ---------------------------------------------------------------- the process itself

def _status(text: str) -> dict[str, str]:
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def read_status() -> str:
    with open("/proc/self/status") as f:
        return f.read()


@pytest.mark.parametrize("mode", ["caps+seccomp", "exec"])
def test_sets_after_drop(mode: str) -> None:
    knobs = Knobs(allow_raw_sockets=1, chflags_allowed=1)
    got, status = in_child(knobs, mode, "read_status")
    assert status == 0
    st = _status(str(got))
    keep = caps.mask(caps.keep_set(knobs))
    assert int(st["CapBnd"], 16) == keep
    assert int(st["CapInh"], 16) == 0
    assert int(st["CapAmb"], 16) == 0
    if mode == "exec":                                   # root's sets = the bounding set
        assert int(st["CapEff"], 16) == int(st["CapPrm"], 16) == keep
    else:                                                # still privileged until exec
        assert int(st["CapEff"], 16) & keep == keep
    assert st["NoNewPrivs"] == "0"                        # setuid programs keep working
    assert st["Seccomp"] == "2"


def test_exec_after_confinement_from_a_warm_cache(tmp_path: Path) -> None:
    """What jexec does: a fresh process with a warm cache confines itself
    without loading libseccomp, then execs; root's sets become the bounding set."""
    knobs = Knobs()
    seccomp.program(knobs)                                # warm the cache
    script = textwrap.dedent("""
        import os, sys
        from linjail.confine import caps, seccomp
        from linjail.kernel import libc
        from linjail.model import Knobs
        libc.unshare(libc.CLONE_NEWUTS)
        bpf = seccomp.program(Knobs())
        caps.drop(caps.keep_set(Knobs()))
        seccomp.install(bpf)
        print("libseccomp loaded:", "libseccomp" in open("/proc/self/maps").read(), flush=True)
        os.execv("/bin/cat", ["cat", "/proc/self/status"])
    """)
    p = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=60, env={**os.environ, "LINJAIL_STATE_DIR": str(tmp_path / "state")})
    assert p.returncode == 0, p.stderr
    first, rest = p.stdout.split("\n", 1)
    assert first == "libseccomp loaded: False"
    st = _status(rest)
    keep = caps.mask(caps.keep_set(knobs))
    for field in ("CapPrm", "CapEff", "CapBnd"):
        assert int(st[field], 16) == keep, field
    assert int(st["CapInh"], 16) == 0
    assert int(st["CapAmb"], 16) == 0
    assert st["NoNewPrivs"] == "0"
    assert st["Seccomp"] == "2"
    assert st["Seccomp_filters"] == "1"


# i386 getpid through int 0x80: mov eax, 20; int 0x80; ret
_INT80_GETPID = bytes.fromhex("b814000000cd80c3")


def _int80_getpid() -> int:
    m = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
    m.write(_INT80_GETPID)
    addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
    return int(ctypes.CFUNCTYPE(ctypes.c_int)(addr)())


def _x32_getpid() -> int:
    return int(_libc.syscall(ctypes.c_long(0x40000000 | 39)))


def _unconfined(body: Callable[[], object]) -> object:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:                                   # pragma: no cover - the child
        try:
            os.close(r)
            os.write(w, json.dumps(body()).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    return json.loads(data)


def test_foreign_architectures_are_killed() -> None:
    # the control: without the filter the 32-bit table answers
    assert _unconfined(lambda: _int80_getpid() == os.getpid()) is True
    # i386 through int 0x80, and an x32 number (bit 30) through syscall
    for probe in ("_int80_getpid", "_x32_getpid"):
        got, status = in_child(Knobs(), "caps+seccomp", probe)
        assert got is None
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGSYS
