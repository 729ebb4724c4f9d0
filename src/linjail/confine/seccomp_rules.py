"""The seccomp filter of a jail as a plan: a deny list over a default of
ALLOW, computed from the knobs in pure Python (no library).  seccomp.py
turns it into the program a jail loads; seccomp_compile.py compiles it.

- Integer arguments the kernel reads as `int`/`unsigned int` are compared on
  their low 32 bits only (SCMP_CMP_MASKED_EQ with 0xFFFFFFFF): a plain 64-bit
  EQ is bypassed by setting the high bits (CVE-2019-10063, TIOCSTI in
  flatpak).  "Not one of these values" cannot be said with one libseccomp
  comparison (one comparison per argument per rule), so it is spelled as the
  prefix blocks that cover the complement of the allowed set (`_not_in32`).
"""
from __future__ import annotations

import errno

from linjail.model import Knobs
from linjail.record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

#: bump whenever rules() changes what it returns for some knobs
FILTER_VERSION = 2

# struct scmp_arg_cmp operators (seccomp.h, v2.5)
SCMP_CMP_NE = 1
SCMP_CMP_EQ = 4
SCMP_CMP_MASKED_EQ = 7

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
