"""The seccomp filter of a jail: a deny list over a default of ALLOW.

Three steps, kept apart (STYLE habit 1):

  rules(knobs)   the plan: a tuple of `Rule`, pure Python, no library;
  program(knobs) the compiled classic BPF, from the on-disk cache or compiled
                 once through libseccomp (bound here with ctypes) and cached;
  install(bpf)   loads it into the calling thread with prctl(2); it never
                 loads libseccomp, so a start with a warm cache never does.

Design notes
- Only the native architecture is in the filter; every other one (i386 via
  `int 0x80`, x32 via syscall numbers with bit 30 set) kills the process.
  The kernel has IA32 emulation, and a deny list that only knew x86_64
  numbers would be bypassed by the 32-bit table (redpwn/jail#11).
  DragonFly itself is x86_64 only, so 32-bit programs are not a jail feature.
- Integer arguments the kernel reads as `int`/`unsigned int` are compared on
  their low 32 bits only (SCMP_CMP_MASKED_EQ with 0xFFFFFFFF): a plain 64-bit
  EQ is bypassed by setting the high bits (CVE-2019-10063, TIOCSTI in
  flatpak).  "Not one of these values" cannot be said with one libseccomp
  comparison (one comparison per argument per rule), so it is spelled as the
  prefix blocks that cover the complement of the allowed set (`_not_in32`).
- The filter is loaded without no_new_privs (setuid programs in the jail keep
  working); that needs CAP_SYS_ADMIN in the effective set, so the caller loads
  it before execve(2), while still privileged.  The filter covers the calling
  thread only (no TSYNC): the caller must be single-threaded, as a process
  about to exec is.
"""
from __future__ import annotations

import ctypes
import errno
import os
import stat
import struct
import sys

from linjail.fsutil import atomic_write
from linjail.kernel import libc
from linjail.model import Knobs
from linjail.record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: bump whenever rules() changes what it returns for some knobs
FILTER_VERSION = 2

STATE_DIR_ENV = "LINJAIL_STATE_DIR"
DEFAULT_STATE_DIR = "/run/linjail"

BPF_INSN_SIZE = 8        # struct sock_filter (linux/filter.h)
BPF_MAXINSNS = 4096      # linux/bpf_common.h
_BPF_JMP, _BPF_JA, _BPF_RET = 0x05, 0x00, 0x06

# libseccomp ABI (seccomp.h, v2.5)
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
_SCMP_ACT_ERRNO = 0x00050000
SCMP_CMP_NE = 1
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_ACT_BADARCH = 2

U32 = 0xFFFFFFFF

# argument values
AF_UNIX, AF_INET, AF_INET6, AF_NETLINK, AF_PACKET = 1, 2, 10, 16, 17
AF_ALG, AF_VSOCK = 38, 40
NETLINK_ROUTE = 0
SOCK_TYPE_MASK = 0xF                       # linux/net.h
SOCK_DGRAM, SOCK_RAW, SOCK_PACKET = 2, 3, 10
IPPROTO_ICMP, IPPROTO_ICMPV6 = 1, 58
S_IFMT, S_IFCHR, S_IFBLK = 0o170000, 0o020000, 0o060000
TIOCSTI, TIOCLINUX = 0x5412, 0x541C
FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR = 0x40086602, 0x40046602, 0x401C5820
#: CLONE_NEWNS|NEWCGROUP|NEWUTS|NEWIPC|NEWUSER|NEWPID|NEWNET: Docker's 0x7E020000
CLONE_NEW_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000,
                   0x10000000, 0x20000000, 0x40000000)
#: personality(2) values Docker's profile allows: PER_LINUX, UNAME26,
#: PER_LINUX32, PER_LINUX32|UNAME26, and the query 0xffffffff
PERSONALITY_ALLOWED = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

#: syscalls newer than libseccomp 2.5.4's table; numbers shared by all
#: architectures since 5.1 (arch/*/syscall*.tbl, "common")
NEW_SYSCALLS = {"open_tree_attr": 467, "file_setattr": 469}


# ---------------------------------------------------------------- the plan

@record()
class Arg(Record):
    """One scmp_arg_cmp: (args[index] & datum_a) == datum_b for MASKED_EQ,
    args[index] <op> datum_a otherwise."""
    index: int
    op: int
    datum_a: int
    datum_b: int = 0


@record()
class Rule(Record):
    """Return -errno from `syscall` when every comparison in `args` holds."""
    syscall: str
    errno: int
    args: tuple[Arg, ...] = ()


def masked(index: int, mask: int, value: int) -> Arg:
    return Arg(index, SCMP_CMP_MASKED_EQ, mask, value)


def eq32(index: int, value: int) -> Arg:
    """The low 32 bits of the argument equal `value` (CVE-2019-10063)."""
    return masked(index, U32, value)


def _not_in32(allowed: Iterable[int]) -> list[tuple[int, int]]:
    """(mask, value) pairs whose union is every 32-bit number not in
    `allowed`: the sibling prefix blocks along the binary trie of the allowed
    values, at most 32 per allowed value.  x matches a pair when
    x & mask == value."""
    out: list[tuple[int, int]] = []

    def walk(prefix: int, bit: int, values: list[int]) -> None:
        if bit < 0:
            return                          # a leaf: an allowed value
        top = U32 ^ ((1 << bit) - 1)        # this bit and all above it
        for b in (0, 1):
            node = prefix | (b << bit)
            under = [v for v in values if (v >> bit) & 1 == b]
            if under:
                walk(node, bit - 1, under)
            else:
                out.append((top, node))

    walk(0, 31, sorted({v & U32 for v in allowed}))
    return out


def _deny(names: Iterable[str], err: int) -> list[Rule]:
    return [Rule(name, err) for name in names]


def _unless_in(syscall: str, index: int, allowed: Iterable[int], err: int,
               also: tuple[Arg, ...] = ()) -> list[Rule]:
    """Deny `syscall` when the 32-bit argument `index` is not in `allowed`."""
    return [Rule(syscall, err, also + (masked(index, m, v),))
            for m, v in _not_in32(allowed)]


_MOUNT = ("mount", "umount2", "pivot_root", "fsopen", "fsconfig", "fsmount", "fspick",
          "move_mount", "open_tree", "open_tree_attr", "mount_setattr")
_KERNEL = ("keyctl", "add_key", "request_key", "bpf", "perf_event_open",
           "kexec_load", "kexec_file_load", "reboot",
           "init_module", "finit_module", "delete_module",
           "open_by_handle_at",           # CVE-2014-3519 "shocker"
           "userfaultfd",                 # widens kernel race windows
           # io_uring ops bypass the filter on the plain syscalls (SPEC §6)
           "io_uring_setup", "io_uring_enter", "io_uring_register",
           "acct", "swapon", "swapoff", "syslog",
           "settimeofday", "clock_settime", "clock_adjtime", "adjtimex",
           "iopl", "ioperm", "quotactl", "quotactl_fd", "lookup_dcookie", "nfsservctl")
_OBSOLETE = ("uselib", "ustat", "sysfs", "_sysctl", "create_module", "get_kernel_syms",
             "query_module", "vm86", "vm86old")
_SYSVIPC = ("msgget", "msgsnd", "msgrcv", "msgctl", "semget", "semop", "semtimedop",
            "semctl", "shmget", "shmat", "shmdt", "shmctl")


def rules(knobs: Knobs) -> tuple[Rule, ...]:
    """The deny list for these knobs (SPEC §5, §6; linux-hardening.md §2.5)."""
    out: list[Rule] = []
    out += _deny(_MOUNT + ("unshare", "setns") + _KERNEL + _OBSOLETE, errno.EPERM)
    # clone(2) flags are arg0 on x86_64 and aarch64; the kernel reads only the
    # low 32 bits (kernel_clone_args), and each flag is its own rule
    out += [Rule("clone", errno.EPERM, (masked(0, flag, flag),)) for flag in CLONE_NEW_FLAGS]
    # clone3 passes its flags in memory, out of the filter's reach: ENOSYS
    # makes glibc fall back to clone (as Docker does)
    out.append(Rule("clone3", errno.ENOSYS))
    out += _unless_in("personality", 0, PERSONALITY_ALLOWED, errno.EPERM)
    # device nodes; fifos, sockets and regular files stay allowed
    for name, index in (("mknod", 1), ("mknodat", 2)):
        out += [Rule(name, errno.EPERM, (masked(index, S_IFMT, kind),))
                for kind in (S_IFCHR, S_IFBLK)]
    # pushing input into a terminal (CVE-2017-5226 bubblewrap, CVE-2019-10063)
    out += [Rule("ioctl", errno.EPERM, (eq32(1, cmd),)) for cmd in (TIOCSTI, TIOCLINUX)]
    out += _socket_rules(knobs)
    if not knobs.sysvipc_allowed:
        out += _deny(_SYSVIPC, errno.ENOSYS)
    if not knobs.set_hostname_allowed:
        out += _deny(("sethostname", "setdomainname"), errno.EPERM)
    if not knobs.chflags_allowed:
        # defence in depth: CAP_LINUX_IMMUTABLE is dropped already
        out += [Rule("ioctl", errno.EPERM, (eq32(1, cmd),))
                for cmd in (FS_IOC_SETFLAGS, FS_IOC32_SETFLAGS, FS_IOC_FSSETXATTR)]
        out.append(Rule("file_setattr", errno.EPERM))    # Linux 6.17
    return tuple(out)


def _socket_rules(knobs: Knobs) -> list[Rule]:
    out: list[Rule] = []
    nope = errno.EPROTONOSUPPORT
    for call in ("socket", "socketpair"):
        if knobs.socket_unixiproute_only:
            out += _unless_in(call, 0, (AF_UNIX, AF_INET, AF_INET6, AF_NETLINK), nope)
            out += _unless_in(call, 2, (NETLINK_ROUTE,), nope, also=(eq32(0, AF_NETLINK),))
            # (AF_INET, SOCK_PACKET) is a packet socket (net/socket.c turns it
            # into PF_PACKET): with allow_raw_sockets=1 it got through as
            # AF_INET (found by tests/e2e/test_knobs.py)
            out.append(Rule(call, nope, (eq32(0, AF_INET),
                                         masked(1, SOCK_TYPE_MASK, SOCK_PACKET))))
        else:
            out += [Rule(call, nope, (eq32(0, af),)) for af in (AF_ALG, AF_VSOCK)]
    if not knobs.allow_raw_sockets:
        out += _raw_socket_rules(knobs)
    return out


def _raw_socket_rules(knobs: Knobs) -> list[Rule]:
    def sock(af: int, type_: int, proto: int | None = None) -> Rule:
        args: tuple[Arg, ...] = (eq32(0, af), masked(1, SOCK_TYPE_MASK, type_))
        if proto is not None:
            args += (eq32(2, proto),)
        return Rule("socket", errno.EPERM, args)

    out = [sock(AF_INET, SOCK_RAW), sock(AF_INET6, SOCK_RAW),
           sock(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), sock(AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)]
    if not knobs.socket_unixiproute_only:
        # otherwise AF_PACKET and (AF_INET, SOCK_PACKET) already fail with
        # EPROTONOSUPPORT; two rules matching one call would leave the errno
        # to libseccomp's order.  (PF_INET, SOCK_PACKET) is still turned into
        # PF_PACKET (net/socket.c)
        out.append(sock(AF_INET, SOCK_PACKET))
        out.append(Rule("socket", errno.EPERM, (eq32(0, AF_PACKET),)))
    return out


# ---------------------------------------------------------------- the cache

def state_dir() -> str:
    return os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR   # "" counts as unset


#: the knobs the filter (and its cache name) depends on: the seed's six;
#: DragonFly's later knobs (allow_listen_override, vfs_mount_*) change nothing
#: here, so they do not multiply the cached programs
FILTER_KNOBS: tuple[str, ...] = ("set_hostname_allowed", "socket_unixiproute_only",
                                 "sysvipc_allowed", "enforce_statfs", "allow_raw_sockets",
                                 "chflags_allowed")


def cache_path(knobs: Knobs) -> str:
    return os.path.join(state_dir(), "seccomp", f"{cache_key(knobs)}.bpf")


def cache_key(knobs: Knobs) -> str:
    """What decides the program, spelled out: FILTER_VERSION, the machine,
    the libseccomp build (identified without loading it) and the knob values
    in the seed's order.  (No hash: hashlib costs ~5 ms on the start path.)"""
    values = knobs.as_dict()
    knob_text = "".join(str(values[k]) for k in FILTER_KNOBS)
    text = f"v{FILTER_VERSION}-{os.uname().machine}-{library_identity()}-{knob_text}"
    return text.replace("/", "_").replace(":", "-")


_memo: dict[str, bytes] = {}


def program(knobs: Knobs) -> bytes:
    """The filter for these knobs as sock_filter bytes, ready for install()."""
    path = cache_path(knobs)
    bpf = _memo.get(path) or _read_cache(path)
    if bpf is None:
        bpf = compile_rules(rules(knobs))
        _write_cache(path, bpf)
    _memo[path] = bpf
    return bpf


def valid_program(bpf: bytes) -> bool:
    """Whole instructions, within the kernel's limit, every jump landing
    inside the program, the last one a return: what a truncated file gets
    wrong (libseccomp's first jump goes to the bad-arch action at the end).
    The kernel checks the same at load time (bpf_check_classic)."""
    n, rest = divmod(len(bpf), BPF_INSN_SIZE)
    if rest or not 0 < n <= BPF_MAXINSNS or bpf[-8] & 0x07 != _BPF_RET:
        return False
    codes = bpf[0::BPF_INSN_SIZE]        # the low byte of each 16-bit opcode
    # BPF_JMP|BPF_JA carries a 32-bit offset in k
    pc = codes.find(_BPF_JMP | _BPF_JA)
    while pc != -1:
        if pc + 1 + struct.unpack_from("<I", bpf, pc * BPF_INSN_SIZE + 4)[0] >= n:
            return False
        pc = codes.find(_BPF_JMP | _BPF_JA, pc + 1)
    # conditional offsets are 8 bits: only the last 256 can jump past the end
    for pc in range(max(0, n - 256), n):
        if codes[pc] & 0x07 == _BPF_JMP and codes[pc] & 0xF0 != _BPF_JA:
            off = pc * BPF_INSN_SIZE
            if pc + 1 + max(bpf[off + 2], bpf[off + 3]) >= n:
                return False
    return True


def _read_cache(path: str) -> bytes | None:
    """The cached program, or None when absent or not trustworthy (not a
    regular file of ours, writable by others, or not a whole program)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o077 or st.st_size > BPF_MAXINSNS * BPF_INSN_SIZE):
            return None
        data = os.read(fd, st.st_size + 1)
    except OSError:
        return None
    finally:
        os.close(fd)
    return data if valid_program(data) else None


def _write_cache(path: str, bpf: bytes) -> None:
    """Durable and atomic, mode 0600.  The cache is only a speed-up: when
    the state directory cannot be written, the next start compiles again."""
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        atomic_write(path, bpf, mode=0o600, durable=True)
    except OSError:
        pass


# ---------------------------------------------------------------- loading

def install(bpf: bytes) -> None:
    """Load `bpf` into the calling thread: prctl(PR_SET_SECCOMP,
    SECCOMP_MODE_FILTER).  Needs CAP_SYS_ADMIN (no no_new_privs)."""
    if not valid_program(bpf):
        raise ValueError(f"seccomp program of {len(bpf)} bytes is not a whole BPF program")
    libc.seccomp_set_mode_filter(bpf)


# ---------------------------------------------------------------- libseccomp

_LIB_NAME = "libseccomp.so.2"


def _library_dirs() -> list[str]:
    multiarch = getattr(sys.implementation, "_multiarch", "")
    dirs = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
    return dirs + ["/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib"]


def library_path() -> str | None:
    for directory in _library_dirs():
        path = os.path.join(directory, _LIB_NAME)
        if os.path.exists(path):
            return path
    return None


def library_identity() -> str:
    """Which libseccomp would compile the filter, by its file (the soname
    symlink's target, size and mtime), so that an upgrade invalidates the
    cache without the hot path loading the library."""
    path = library_path()
    if path is None:
        return "libseccomp:none"
    st = os.stat(path)
    return f"{os.path.basename(os.path.realpath(path))}:{st.st_size}:{st.st_mtime_ns}"


class _ScmpArgCmp(ctypes.Structure):
    # struct scmp_arg_cmp (seccomp.h)
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _ScmpVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def _load_library() -> ctypes.CDLL:
    path = library_path() or _LIB_NAME
    try:
        lib = ctypes.CDLL(path, use_errno=True)
    except OSError as e:
        raise OSError(errno.ENOENT, f"load {path}: {e} (install libseccomp2)", path) from None
    vp = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = vp
    lib.seccomp_release.argtypes = [vp]
    lib.seccomp_release.restype = None
    lib.seccomp_attr_set.argtypes = [vp, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [vp, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(_ScmpArgCmp)]
    lib.seccomp_export_bpf.argtypes = [vp, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(_ScmpVersion)
    return lib


def libseccomp_version() -> str:
    v = _load_library().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def _lib_check(rc: int, what: str) -> None:
    # libseccomp returns -errno (seccomp_rule_add(3))
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")


def compile_rules(plan: Iterable[Rule]) -> bytes:
    """Compile a deny list to BPF for the native architecture (default
    ALLOW; foreign architectures kill the process)."""
    lib = _load_library()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init: failed")
    try:
        _lib_check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
                   "seccomp_attr_set(SCMP_FLTATR_ACT_BADARCH)")
        for rule in plan:
            _add_rule(lib, ctx, rule)
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def compile_profile(default: int, rules: Iterable[tuple[int, str, tuple[Arg, ...]]],
                    arches: Iterable[int] = ()) -> bytes:
    """Compile another program's profile (an OCI config's linux.seccomp):
    DEFAULT and each rule's action are libseccomp action values, ARCHES
    audit architecture tokens besides the native one.  A syscall this
    libseccomp does not know is skipped (runc does the same); a rule whose
    action is the default adds nothing.  Raises OSError naming the rule that
    libseccomp refused."""
    lib = _load_library()
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError(errno.EINVAL, f"seccomp_init({default:#x}): refused")
    try:
        for arch in arches:
            rc = lib.seccomp_arch_add(ctx, arch)
            if rc < 0 and -rc != errno.EEXIST:
                _lib_check(rc, f"seccomp_arch_add({arch:#x})")
        for action, name, args in rules:
            if action == default:
                continue
            nr = _syscall_number(lib, name)
            if nr is None:
                continue
            cmps = (_ScmpArgCmp * max(1, len(args)))(
                *[_ScmpArgCmp(a.index, a.op, a.datum_a, a.datum_b) for a in args])
            _lib_check(lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps),
                       f"seccomp_rule_add({name})")
        return _export(lib, ctx)
    finally:
        lib.seccomp_release(ctx)


def _syscall_number(lib: ctypes.CDLL, name: str) -> int | None:
    """The native number, or None when this architecture lacks the call
    (libseccomp answers with a negative pseudo number, e.g. vm86 on x86_64)."""
    if name in NEW_SYSCALLS:
        return NEW_SYSCALLS[name]
    nr = int(lib.seccomp_syscall_resolve_name(name.encode()))
    return nr if nr >= 0 else None


def _add_rule(lib: ctypes.CDLL, ctx: int, rule: Rule) -> None:
    nr = _syscall_number(lib, rule.syscall)
    if nr is None:
        return
    cmps = (_ScmpArgCmp * max(1, len(rule.args)))(
        *[_ScmpArgCmp(a.index, a.op, a.datum_a, a.datum_b) for a in rule.args])
    action = _SCMP_ACT_ERRNO | (rule.errno & 0xFFFF)
    _lib_check(lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), cmps),
               f"seccomp_rule_add({rule.syscall})")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("linjail-seccomp", os.MFD_CLOEXEC)
    try:
        _lib_check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
