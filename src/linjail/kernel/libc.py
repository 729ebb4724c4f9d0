"""The kernel interface of the lifecycle, and the one place that calls libc
through ctypes.

Python 3.11 has no os.unshare/os.setns, and nothing for the new mount API,
openat2 or pivot_root.  Every wrapper raises OSError(errno, text, path) so the
caller can name the operation and the object (STYLE: "every failure names the
operation and the object").

Every call the lifecycle makes into the kernel goes through this module's
functions, called as `libc.NAME(...)` (never imported by name): the
`os`-level ones are re-exported at the end (section "through os").  So
kernel/fake.py can stand in for all of it and record the order of the calls
(tests/unit/test_plan.py, without root).
"""
from __future__ import annotations

import ctypes
import fcntl as _fcntl
import os
import struct

_libc = ctypes.CDLL(None, use_errno=True)
_syscall = _libc.syscall
_syscall.restype = ctypes.c_long

# clone/unshare flags (linux/sched.h)
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount flags (linux/mount.h)
MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MNT_DETACH = 2

# open_tree / move_mount / mount_setattr
OPEN_TREE_CLONE = 1
AT_EMPTY_PATH = 0x1000
AT_RECURSIVE = 0x8000
AT_SYMLINK_NOFOLLOW = 0x100
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOVE_MOUNT_T_EMPTY_PATH = 0x40
MOUNT_ATTR_RDONLY = 0x1
MOUNT_ATTR_NOSUID = 0x2
MOUNT_ATTR_NODEV = 0x4
MOUNT_ATTR_NOEXEC = 0x8
MOUNT_ATTR_IDMAP = 0x00100000

# openat2 resolve flags (linux/openat2.h)
RESOLVE_NO_XDEV = 0x01
RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10

# prctl
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

# pty ioctls (asm-generic/ioctls.h); TIOCGPTPEER since Linux 4.13
TIOCSPTLCK = 0x40045431
TIOCGPTPEER = 0x5441

_ARCH = os.uname().machine
# syscall numbers that differ between architectures; the ones added since
# Linux 5.0 share one number everywhere
_NR = {
    "x86_64": {"pivot_root": 155, "capset": 126, "capget": 125, "kcmp": 312, "bpf": 321},
    "aarch64": {"pivot_root": 41, "capset": 91, "capget": 90, "kcmp": 272, "bpf": 280},
}[_ARCH]
NR_OPEN_TREE = 428
NR_FSOPEN = 430
NR_FSCONFIG = 431
NR_FSMOUNT = 432
NR_MOVE_MOUNT = 429
NR_FSCONFIG = 431
NR_FSPICK = 433
NR_CLOSE_RANGE = 436
NR_OPENAT2 = 437
NR_MOUNT_SETATTR = 442


def _check(ret: int, what: str, path: str | None = None) -> int:
    if ret < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", path)
    return ret


def _b(path: str | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


CLONE_PARENT = 0x00008000
CLONE_PIDFD = 0x00001000
CLONE_INTO_CGROUP = 0x200000000
NR_CLONE3 = 435
_SIGCHLD = 17


class _CloneArgs(ctypes.Structure):
    # struct clone_args (linux/sched.h), CLONE_ARGS_SIZE_VER2
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack",
        "stack_size", "tls", "set_tid", "set_tid_size", "cgroup")]


# the same libc, called with the GIL held (a CDLL call releases it): the
# child of clone3 must start holding it, as the child of os.fork does
_held = ctypes.PyDLL(None, use_errno=True)
_held.syscall.restype = ctypes.c_long


def clone3(flags: int = 0, cgroup_fd: int = -1) -> int:
    """os.fork() through clone3(2): 0 in the child, the child's PID here.

    FLAGS may add CLONE_NEW* namespaces (CLONE_NEWPID: the child is PID 1 of
    a new PID namespace, this process stays where it is) and
    CLONE_INTO_CGROUP with CGROUP_FD, a cgroup2 directory: the child starts
    in that cgroup.  Writing its PID into cgroup.procs instead waits for an
    RCU grace period (cgroup_threadgroup_rwsem), 5-15 ms on an idle host.
    The interpreter is told as os.fork tells it (PyOS_BeforeFork and the
    AfterFork pair: import lock, threads, at-fork callbacks).  Like os.fork,
    only the calling thread exists in the child.
    """
    # CLONE_PARENT: the child is this process's sibling, and its parent gets
    # the exit signal this process was made with (clone3 wants 0 here)
    args = _CloneArgs(flags=flags, exit_signal=0 if flags & CLONE_PARENT else _SIGCHLD,
                      cgroup=cgroup_fd if flags & CLONE_INTO_CGROUP else 0)
    api = ctypes.pythonapi
    api.PyOS_BeforeFork()
    pid = _held.syscall(ctypes.c_long(NR_CLONE3), ctypes.byref(args),
                        ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        api.PyOS_AfterFork_Child()
        return 0
    err = ctypes.get_errno()
    api.PyOS_AfterFork_Parent()
    ctypes.set_errno(err)
    return _check(pid, "clone3")


def unshare(flags: int) -> None:
    _check(_libc.unshare(ctypes.c_int(flags)), "unshare")


def setns(fd: int, nstype: int = 0) -> None:
    _check(_libc.setns(ctypes.c_int(fd), ctypes.c_int(nstype)), "setns")


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_libc.mount(_b(source), _b(target), _b(fstype), ctypes.c_ulong(flags),
                       _b(data)), "mount", target)


def umount2(target: str, flags: int = 0) -> None:
    _check(_libc.umount2(_b(target), ctypes.c_int(flags)), "umount2", target)


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_syscall(ctypes.c_long(_NR["pivot_root"]), _b(new_root), _b(put_old)),
           "pivot_root", new_root)


def open_tree(dirfd: int, path: str, flags: int) -> int:
    return _check(_syscall(ctypes.c_long(NR_OPEN_TREE), ctypes.c_int(dirfd), _b(path),
                           ctypes.c_uint(flags)), "open_tree", path)


def move_mount(from_dirfd: int, from_path: str, to_dirfd: int, to_path: str,
               flags: int) -> None:
    _check(_syscall(ctypes.c_long(NR_MOVE_MOUNT), ctypes.c_int(from_dirfd), _b(from_path),
                    ctypes.c_int(to_dirfd), _b(to_path), ctypes.c_uint(flags)),
           "move_mount", to_path)


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


def mount_setattr(dirfd: int, path: str, flags: int, attr_set: int,
                  attr_clr: int = 0, propagation: int = 0, userns_fd: int = 0) -> None:
    """mount_setattr(2); USERNS_FD with MOUNT_ATTR_IDMAP."""
    attr = _MountAttr(attr_set, attr_clr, propagation, userns_fd)
    _check(_syscall(ctypes.c_long(NR_MOUNT_SETATTR), ctypes.c_int(dirfd), _b(path),
                    ctypes.c_uint(flags), ctypes.byref(attr),
                    ctypes.c_size_t(ctypes.sizeof(attr))), "mount_setattr", path)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64),
                ("resolve", ctypes.c_uint64)]


# fspick / fsconfig (linux/mount.h)
FSPICK_CLOEXEC = 0x1
FSPICK_EMPTY_PATH = 0x8
FSCONFIG_SET_STRING = 1
FSCONFIG_CMD_RECONFIGURE = 7


def reconfigure(mount_root_fd: int, options: list[tuple[str, str]]) -> None:
    """Remount the file system mounted at MOUNT_ROOT_FD with OPTIONS
    (`mount -o remount,K=V,...` without a path): fspick(2), fsconfig(2)."""
    fs = _check(_syscall(ctypes.c_long(NR_FSPICK), ctypes.c_int(mount_root_fd), b"",
                         ctypes.c_uint(FSPICK_CLOEXEC | FSPICK_EMPTY_PATH)), "fspick")
    try:
        for key, value in options:
            _check(_syscall(ctypes.c_long(NR_FSCONFIG), ctypes.c_int(fs),
                            ctypes.c_uint(FSCONFIG_SET_STRING), key.encode(), value.encode(),
                            ctypes.c_int(0)), f"fsconfig({key}={value})")
        _check(_syscall(ctypes.c_long(NR_FSCONFIG), ctypes.c_int(fs),
                        ctypes.c_uint(FSCONFIG_CMD_RECONFIGURE), None, None, ctypes.c_int(0)),
               "fsconfig(FSCONFIG_CMD_RECONFIGURE)")
    finally:
        os.close(fs)


def openat2(dirfd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    """openat2(2); always O_CLOEXEC."""
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    return _check(_syscall(ctypes.c_long(NR_OPENAT2), ctypes.c_int(dirfd), _b(path),
                           ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how))),
                  "openat2", path)


FSOPEN_CLOEXEC = 1
FSCONFIG_CMD_CREATE = 6
FSMOUNT_CLOEXEC = 1
KCMP_FILE = 0


FSCONFIG_SET_FLAG = 0
FSCONFIG_SET_FD = 5


def fsmount_new(fstype: str, attrs: int,
                options: tuple[tuple[str, str | int | None], ...] = ()) -> int:
    """A new, detached mount of FSTYPE (fsopen, fsconfig CREATE, fsmount): its
    descriptor is the only way to it; it is attached nowhere.  OPTIONS are
    fsconfig(2) keys with a string, a descriptor (int: FSCONFIG_SET_FD, e.g.
    overlayfs's lowerdir+) or None (a flag)."""
    fs = _check(_syscall(ctypes.c_long(NR_FSOPEN), _b(fstype), ctypes.c_uint(FSOPEN_CLOEXEC)),
                "fsopen", fstype)
    try:
        for key, value in options:
            if value is None:
                cmd, text, aux = FSCONFIG_SET_FLAG, None, 0
            elif isinstance(value, int):
                cmd, text, aux = FSCONFIG_SET_FD, None, value
            else:
                cmd, text, aux = FSCONFIG_SET_STRING, value.encode(), 0
            _check(_syscall(ctypes.c_long(NR_FSCONFIG), ctypes.c_int(fs), ctypes.c_uint(cmd),
                            key.encode(), text, ctypes.c_int(aux)), f"fsconfig({key})", fstype)
        _check(_syscall(ctypes.c_long(NR_FSCONFIG), ctypes.c_int(fs),
                        ctypes.c_uint(FSCONFIG_CMD_CREATE), None, None, ctypes.c_int(0)),
               "fsconfig", fstype)
        return _check(_syscall(ctypes.c_long(NR_FSMOUNT), ctypes.c_int(fs),
                               ctypes.c_uint(FSMOUNT_CLOEXEC), ctypes.c_uint(attrs)),
                      "fsmount", fstype)
    finally:
        os.close(fs)


def same_file(fd1: int, fd2: int) -> bool:
    """kcmp(KCMP_FILE): do two descriptors share one open file description?"""
    pid = os.getpid()
    ret = _syscall(ctypes.c_long(_NR["kcmp"]), ctypes.c_int(pid), ctypes.c_int(pid),
                   ctypes.c_int(KCMP_FILE), ctypes.c_ulong(fd1), ctypes.c_ulong(fd2))
    if ret < 0:
        # kcmp unavailable: the same inode at the same offset is the same open file
        a, b = os.fstat(fd1), os.fstat(fd2)
        try:
            return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino) and \
                os.lseek(fd1, 0, os.SEEK_CUR) == os.lseek(fd2, 0, os.SEEK_CUR)
        except OSError:
            return bool((a.st_dev, a.st_ino) == (b.st_dev, b.st_ino))
    return bool(ret == 0)


class _KSigaction(ctypes.Structure):
    _fields_ = [("handler", ctypes.c_void_p), ("flags", ctypes.c_ulong),
                ("restorer", ctypes.c_void_p), ("mask", ctypes.c_ulong)]


def default_signals() -> None:
    """Every signal's disposition back to SIG_DFL, by the raw rt_sigaction:
    libc refuses its own (32, 33), which a caller may have set to SIG_IGN and
    execve would keep for the command."""
    nr = {"x86_64": 13, "aarch64": 134}[_ARCH]
    act = _KSigaction(0, 0, 0, 0)
    for sig in range(1, 65):
        if sig not in (9, 19):
            _syscall(ctypes.c_long(nr), ctypes.c_int(sig), ctypes.byref(act), None,
                     ctypes.c_size_t(8))


def close_range(first: int, last: int = 0xFFFFFFFF, flags: int = 0) -> None:
    _check(_syscall(ctypes.c_long(NR_CLOSE_RANGE), ctypes.c_uint(first),
                    ctypes.c_uint(last), ctypes.c_uint(flags)), "close_range")


_NR_FSID = {"x86_64": (122, 123), "aarch64": (151, 152)}[_ARCH]


def setfsid(uid: int, gid: int) -> None:
    """setfsgid(GID), setfsuid(UID) of this thread only (the raw calls: the
    other threads keep theirs).  A change from 0 clears the file-system
    capabilities from the effective set, and a change back to 0 restores
    them (capabilities(7)); these calls report no error."""
    _syscall(ctypes.c_long(_NR_FSID[1]), ctypes.c_uint(gid))
    _syscall(ctypes.c_long(_NR_FSID[0]), ctypes.c_uint(uid))


def sethostname(name: bytes) -> None:
    _check(_libc.sethostname(name, ctypes.c_size_t(len(name))), "sethostname")


def setdomainname(name: bytes) -> None:
    _check(_libc.setdomainname(name, ctypes.c_size_t(len(name))), "setdomainname")


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2),
                              ctypes.c_ulong(arg3), ctypes.c_ulong(arg4),
                              ctypes.c_ulong(arg5)), "prctl")


_LINUX_CAPABILITY_VERSION_3 = 0x20080522


def capset(effective: int, permitted: int, inheritable: int) -> None:
    """Set the three capability sets of this thread (64-bit masks)."""
    header = struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0)
    data = struct.pack("IIIIII",
                       effective & 0xFFFFFFFF, permitted & 0xFFFFFFFF, inheritable & 0xFFFFFFFF,
                       effective >> 32, permitted >> 32, inheritable >> 32)
    hbuf = ctypes.create_string_buffer(header, len(header))
    dbuf = ctypes.create_string_buffer(data, len(data))
    _check(_syscall(ctypes.c_long(_NR["capset"]), hbuf, dbuf), "capset")


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of this thread."""
    hbuf = ctypes.create_string_buffer(struct.pack("Ii", _LINUX_CAPABILITY_VERSION_3, 0), 8)
    dbuf = ctypes.create_string_buffer(24)
    _check(_syscall(ctypes.c_long(_NR["capget"]), hbuf, dbuf), "capget")
    e0, p0, i0, e1, p1, i1 = struct.unpack("IIIIII", dbuf.raw)
    return e0 | e1 << 32, p0 | p1 << 32, i0 | i1 << 32


def enter_owned_uts() -> None:
    """Join a new UTS namespace owned by a new, empty user namespace.

    sethostname(2) needs CAP_SYS_ADMIN over the UTS namespace's owner.  The
    jail's processes stay in the initial user namespace (chflags needs that:
    SPEC §5), but a process of the parent namespace whose euid owns a child
    user namespace has every capability in it (user_namespaces(7)).  So
    jailed root may set the jail's hostname — and nothing else gains: the
    only object that user namespace owns is this UTS namespace.  Whether it
    may is the knob set_hostname_allowed, enforced by the seccomp filter.
    (One operation of this interface: a helper process makes the namespaces.)
    """
    import _signal
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    helper = os.fork()
    if helper == 0:
        try:
            # setns through a pidfd asks ptrace_may_access: in a jail's user
            # namespace (no CAP_SYS_PTRACE there) the helper must be dumpable;
            # it lives before any process of the jail does
            prctl(PR_SET_DUMPABLE, 1)
            unshare(CLONE_NEWUSER | CLONE_NEWUTS)
            os.write(ready_w, b"x")
            while True:
                _signal.pause()
        finally:
            os._exit(1)
    os.close(ready_w)
    try:
        if os.read(ready_r, 1) != b"x":
            raise OSError(1, "unshare(CLONE_NEWUSER|CLONE_NEWUTS): the helper failed")
        pidfd = os.pidfd_open(helper)
        try:
            setns(pidfd, CLONE_NEWUTS)
        finally:
            os.close(pidfd)
    finally:
        os.close(ready_r)
        os.kill(helper, _signal.SIGKILL)
        os.waitpid(helper, 0)


# seccomp (seccomp(2), prctl(2) PR_SET_SECCOMP)
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    # struct sock_fprog (linux/filter.h): an unsigned short count, then a
    # pointer to that many 8-byte struct sock_filter
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def seccomp_set_mode_filter(bpf: bytes) -> None:
    """Load a classic-BPF seccomp program into this thread.

    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog): without no_new_privs
    this needs CAP_SYS_ADMIN in the effective set (seccomp(2)).
    """
    buf = ctypes.create_string_buffer(bpf, len(bpf))
    prog = _SockFprog(len(bpf) // 8, ctypes.cast(buf, ctypes.c_void_p))
    _check(_libc.prctl(ctypes.c_int(PR_SET_SECCOMP), ctypes.c_ulong(SECCOMP_MODE_FILTER),
                       ctypes.c_void_p(ctypes.addressof(prog)), ctypes.c_ulong(0),
                       ctypes.c_ulong(0)), "prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)")


# bpf(2): what a cgroup2 device program needs (linux/bpf.h; confine/devices.py)
BPF_PROG_LOAD = 5
BPF_PROG_ATTACH = 8
BPF_PROG_DETACH = 9
BPF_PROG_QUERY = 16
BPF_PROG_TYPE_CGROUP_DEVICE = 15
BPF_CGROUP_DEVICE = 6                   # the attach type
BPF_F_ALLOW_OVERRIDE = 1
BPF_F_ALLOW_MULTI = 2


def bpf(cmd: int, attr: ctypes.Array[ctypes.c_char], what: str) -> int:
    """bpf(CMD, ATTR, sizeof ATTR): ATTR is the union bpf_attr's member for
    CMD, packed by the caller (the kernel may write into it: BPF_PROG_QUERY)."""
    return _check(_syscall(ctypes.c_long(_NR["bpf"]), ctypes.c_int(cmd), attr,
                           ctypes.c_uint(len(attr))), what)


# --- through os -------------------------------------------------------------------------
#
# The calls the lifecycle makes with the os module, here so that the fake sees
# them too.  Plain aliases: no cost.

open = os.open
close = os.close
read = os.read
write = os.write
fstat = os.fstat
fchdir = os.fchdir
chdir = os.chdir
dup2 = os.dup2
fork = os.fork
execve = os.execve
memfd_create = os.memfd_create
mknod = os.mknod        # with dir_fd: relative to a descriptor, as the others
chmod = os.chmod
symlink = os.symlink
mkdir = os.mkdir
fcntl = _fcntl.fcntl
ioctl = _fcntl.ioctl


def write_file(path: str, data: bytes) -> None:
    """Write DATA to the kernel file PATH (/proc/sys, cgroupfs) in one write(2)."""
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
