"""A deny list (seccomp_rules.py) or another program's profile (an OCI
config's) compiled to classic BPF by libseccomp, for the native
architecture only: every other one (i386 via `int 0x80`, x32 via syscall
numbers with bit 30 set) kills the process.  The kernel has IA32 emulation,
and a deny list that only knew x86_64 numbers would be bypassed by the
32-bit table (redpwn/jail#11).  DragonFly itself is x86_64 only, so 32-bit
programs are not a jail feature."""
from __future__ import annotations

import ctypes
import errno
import os

from linjail.confine.libseccomp import ScmpArgCmp, lib_check, load_library

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from linjail.confine.seccomp_rules import Arg, Rule

# libseccomp actions and attributes (seccomp.h, v2.5)
SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_ACT_KILL_PROCESS = 0x80000000
_SCMP_ACT_ERRNO = 0x00050000
SCMP_FLTATR_ACT_BADARCH = 2

#: syscalls newer than libseccomp 2.5.4's table; numbers shared by all
#: architectures since 5.1 (arch/*/syscall*.tbl, "common")
NEW_SYSCALLS = {"open_tree_attr": 467, "file_setattr": 469}


def compile_rules(plan: Iterable[Rule]) -> bytes:
    """Compile a deny list to BPF for the native architecture (default
    ALLOW; foreign architectures kill the process)."""
    lib = load_library()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError(errno.ENOMEM, "seccomp_init: failed")
    try:
        lib_check(lib.seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS),
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
    lib = load_library()
    lib.seccomp_arch_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    ctx = lib.seccomp_init(default)
    if not ctx:
        raise OSError(errno.EINVAL, f"seccomp_init({default:#x}): refused")
    try:
        for arch in arches:
            rc = lib.seccomp_arch_add(ctx, arch)
            if rc < 0 and -rc != errno.EEXIST:
                lib_check(rc, f"seccomp_arch_add({arch:#x})")
        for action, name, args in rules:
            if action == default:
                continue
            nr = _syscall_number(lib, name)
            if nr is None:
                continue
            cmps = (ScmpArgCmp * max(1, len(args)))(
                *[ScmpArgCmp(a.index, a.op, a.datum_a, a.datum_b) for a in args])
            lib_check(lib.seccomp_rule_add_array(ctx, action, nr, len(args), cmps),
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
    cmps = (ScmpArgCmp * max(1, len(rule.args)))(
        *[ScmpArgCmp(a.index, a.op, a.datum_a, a.datum_b) for a in rule.args])
    action = _SCMP_ACT_ERRNO | (rule.errno & 0xFFFF)
    lib_check(lib.seccomp_rule_add_array(ctx, action, nr, len(rule.args), cmps),
               f"seccomp_rule_add({rule.syscall})")


def _export(lib: ctypes.CDLL, ctx: int) -> bytes:
    fd = os.memfd_create("linjail-seccomp", os.MFD_CLOEXEC)
    try:
        lib_check(lib.seccomp_export_bpf(ctx, fd), "seccomp_export_bpf")
        size = os.fstat(fd).st_size
        return os.pread(fd, size, 0)
    finally:
        os.close(fd)
