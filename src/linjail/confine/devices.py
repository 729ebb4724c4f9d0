"""Device rules on cgroup2: an eBPF program made from v1's device rules.

cgroup v1 has a devices controller (devices.allow, devices.deny); cgroup2
has none: a program of type BPF_PROG_TYPE_CGROUP_DEVICE attached to a
cgroup2 directory (attach type BPF_CGROUP_DEVICE) decides every open(2) of
a device node and every mknod(2) of one by a process in that cgroup or
below.  The kernel runs the programs before v1's check; where both exist
(a hybrid host) both must allow.

  emulate(rules)    the rules, v1 lines ("a", "c 1:3 rwm", "b 8:* r") with
                    allow or deny, replayed as v1 does (security/
                    device_cgroup.c): "a" resets to allow or deny all; in a
                    deny-all cgroup an allow adds an exception and a deny
                    takes access away from the exception of exactly that
                    type and numbers (no wildcard split), the other way
                    round in an allow-all one.  -> (allow_all, exceptions)
  program(...)      its bytecode, checking what v1's check does: deny-all:
                    allowed if ONE exception grants every access asked;
                    allow-all: allowed if NO exception names any of them.
                    So rules mean the same on v1, hybrid and cgroup2 hosts.
  confine(dir, rules)  load it and attach it to the cgroup2 directory DIR

The program is attached with BPF_F_ALLOW_MULTI: the programs of a cgroup
and of its ancestors all run and a device is allowed only if each allows
it, so nothing attached further down can loosen it.  On Linux 6.x
attaching and detaching need no capability, only a descriptor of the
cgroup2 directory (any reader opens one) and one of the program; and an
exclusive attachment (flags 0) is detached by anyone who passes no
program at all (tests/e2e/test_devices.py shows both).  A multi
attachment is detached only by naming its program: loading one takes
CAP_BPF or CAP_SYS_ADMIN, getting a descriptor from a program's id
CAP_SYS_ADMIN, both in the initial user namespace, which no jail holds
(linjail's seccomp filter also refuses bpf(2) in a jail).  The cgroup
holds the program: closing the descriptors after attaching loses
nothing, and removing the cgroup releases it.  No helper function is
called, so no GPL-only one: the program's license is not checked.
"""
from __future__ import annotations

import ctypes
import os
import struct

from ..errors import JailError
from ..kernel import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Sequence

#: struct bpf_cgroup_dev_ctx's numbers (linux/bpf.h: BPF_DEVCG_*), v1's too
TYPES = {"b": 1, "c": 2}
ACCESS = {"m": 1, "r": 2, "w": 4}
ALL_ACCESS = 7
WILDCARD = -1
#: a device number the kernel takes (v1 parses u32; ~0 is its wildcard)
MAX_NUMBER = 0xFFFFFFFE

Rule = tuple[bool, str]                     # (allow, v1 line)
Exception_ = tuple[int, int, int, int]      # (type, major, minor, access); -1: any

#: the devices every jail has: the nodes of its /dev (confine/rootfs.py
#: _DEV_NODES: null zero full random urandom tty), its devpts' ptmx and ptys
JAIL_DEVICE_RULES = ("c 1:3 rwm", "c 1:5 rwm", "c 1:7 rwm", "c 1:8 rwm", "c 1:9 rwm",
                     "c 5:0 rwm", "c 5:2 rwm", "c 136:* rwm")
#: every jail's policy (lifecycle/start.py): those and nothing else
JAIL_RULES: tuple[Rule, ...] = ((False, "a"), *((True, r) for r in JAIL_DEVICE_RULES))


def parse(line: str) -> Exception_ | None:
    """A v1 rule line -> (type, major, minor, access); None for "a"."""
    if line == "a" or line.startswith("a "):
        return None
    try:
        kind, numbers, access = line.split(" ")
        major, minor = (WILDCARD if n == "*" else int(n, 10) if n.isdigit() else -2
                        for n in numbers.split(":"))
        bits = sum(ACCESS[a] for a in set(access))
        if not (-1 <= major <= MAX_NUMBER and -1 <= minor <= MAX_NUMBER and bits):
            raise ValueError(line)
        return TYPES[kind], major, minor, bits
    except (ValueError, KeyError):
        raise JailError(f"{line}: not a device rule") from None


def emulate(rules: Sequence[Rule], allow_all: bool = True) -> tuple[bool, list[Exception_]]:
    """What v1's devices.list holds after RULES were written, in order, to
    a cgroup that allowed all (ALLOW_ALL) without exceptions."""
    exceptions: list[Exception_] = []
    for allow, line in rules:
        ex = parse(line)
        if ex is None:
            allow_all, exceptions = allow, []
        elif allow != allow_all:                   # an exception to the default
            for i, (t, ma, mi, acc) in enumerate(exceptions):
                if (t, ma, mi) == ex[:3]:
                    exceptions[i] = (t, ma, mi, acc | ex[3])
                    break
            else:
                exceptions.append(ex)
        else:                                      # takes access from its exception
            exceptions = [(t, ma, mi, acc & ~ex[3] if (t, ma, mi) == ex[:3] else acc)
                          for t, ma, mi, acc in exceptions
                          if (t, ma, mi) != ex[:3] or acc & ~ex[3]]
    return allow_all, exceptions


def allowed(allow_all: bool, exceptions: Sequence[Exception_], kind: int, major: int,
            minor: int, access: int) -> bool:
    """v1's check (devcgroup_legacy_check_permission), for the tests."""
    def names(ex: Exception_) -> bool:
        return ex[0] == kind and ex[1] in (WILDCARD, major) and ex[2] in (WILDCARD, minor)
    if allow_all:
        return not any(names(ex) and access & ex[3] for ex in exceptions)
    return any(names(ex) and not access & ~ex[3] for ex in exceptions)


# --- the bytecode ---------------------------------------------------------------------------
# struct bpf_insn: u8 code, u8 dst_reg:4 src_reg:4, s16 off, s32 imm (little endian)

def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    if imm > 0x7FFFFFFF:
        imm -= 1 << 32
    return struct.pack("<BBhi", code, dst | src << 4, off, imm)


LDX_W = 0x61            # BPF_LDX | BPF_MEM | BPF_W:  dst = *(u32 *)(src + off)
MOV32_IMM = 0xB4        # BPF_ALU | BPF_MOV | BPF_K
MOV32_REG = 0xBC        # BPF_ALU | BPF_MOV | BPF_X
RSH32_IMM = 0x74        # BPF_ALU | BPF_RSH | BPF_K
AND32_IMM = 0x54        # BPF_ALU | BPF_AND | BPF_K
JNE32_IMM = 0x56        # BPF_JMP32 | BPF_JNE | BPF_K:  if dst != imm: pc += off
JSET32_IMM = 0x46       # BPF_JMP32 | BPF_JSET | BPF_K: if dst & imm: pc += off
JA = 0x05               # BPF_JMP | BPF_JA
EXIT = 0x95             # BPF_JMP | BPF_EXIT: return r0

#: r1 is the context; r2 type, r3 access, r4 major, r5 minor
PROLOGUE = (_insn(LDX_W, 2, 1, 0) + _insn(MOV32_REG, 3, 2) + _insn(RSH32_IMM, 3, imm=16) +
            _insn(AND32_IMM, 2, imm=0xFFFF) + _insn(LDX_W, 4, 1, 4) + _insn(LDX_W, 5, 1, 8))


def _verdict(allow: bool) -> bytes:
    return _insn(MOV32_IMM, 0, imm=int(allow)) + _insn(EXIT)


def program(allow_all: bool, exceptions: Sequence[Exception_]) -> bytes:
    """The bytecode of v1's check over EXCEPTIONS (see allowed())."""
    out = [PROLOGUE]
    for kind, major, minor, access in exceptions:
        tests: list[tuple[int, int, int]] = [(JNE32_IMM, 2, kind)]
        if major != WILDCARD:
            tests.append((JNE32_IMM, 4, major))
        if minor != WILDCARD:
            tests.append((JNE32_IMM, 5, minor))
        if allow_all:
            tail = [_insn(JSET32_IMM, 3, off=1, imm=access), _insn(JA, off=2)]
        else:
            tail = [_insn(JSET32_IMM, 3, off=2, imm=ALL_ACCESS & ~access)] \
                if access != ALL_ACCESS else []
        after = len(tests) + len(tail) + 2          # insns of this block
        block = [_insn(code, reg, off=after - i - 1, imm=imm)
                 for i, (code, reg, imm) in enumerate(tests)]
        out += block + tail + [_verdict(not allow_all)]
    out.append(_verdict(allow_all))
    return b"".join(out)


# --- the kernel -----------------------------------------------------------------------------

LOG_SIZE = 1 << 16


def load(code: bytes, name: bytes = b"linjail_devices") -> int:
    """BPF_PROG_LOAD: the program's descriptor (close-on-exec)."""
    insns = ctypes.create_string_buffer(code, len(code))
    license = ctypes.create_string_buffer(b"Apache-2.0")

    def attempt(log: ctypes.Array[ctypes.c_char] | None) -> int:
        # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
        # log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
        attr = ctypes.create_string_buffer(64)
        struct.pack_into("<IIQQIIQII16s", attr, 0, libc.BPF_PROG_TYPE_CGROUP_DEVICE,
                         len(code) // 8, ctypes.addressof(insns), ctypes.addressof(license),
                         1 if log else 0, len(log) if log else 0,
                         ctypes.addressof(log) if log else 0, 0, 0, name[:15])
        return libc.bpf(libc.BPF_PROG_LOAD, attr, "bpf(BPF_PROG_LOAD)")
    try:
        return attempt(None)
    except OSError as err:
        if err.errno not in (13, 22):               # EACCES, EINVAL: the verifier's
            raise
        log = ctypes.create_string_buffer(LOG_SIZE)
        try:
            os.close(attempt(log))
        except OSError:
            pass
        lines = [line for line in log.value.decode(errors="replace").splitlines() if line]
        raise OSError(err.errno, f"{err.strerror}: {lines[-1] if lines else 'no log'}") \
            from None


def attach(cgroup_fd: int, prog_fd: int, flags: int = libc.BPF_F_ALLOW_MULTI) -> None:
    attr = ctypes.create_string_buffer(20)
    struct.pack_into("<IIIII", attr, 0, cgroup_fd, prog_fd, libc.BPF_CGROUP_DEVICE, flags, 0)
    libc.bpf(libc.BPF_PROG_ATTACH, attr, "bpf(BPF_PROG_ATTACH)")


def detach(cgroup_fd: int, prog_fd: int) -> None:
    attr = ctypes.create_string_buffer(12)
    struct.pack_into("<III", attr, 0, cgroup_fd, prog_fd, libc.BPF_CGROUP_DEVICE)
    libc.bpf(libc.BPF_PROG_DETACH, attr, "bpf(BPF_PROG_DETACH)")


def query(cgroup_fd: int) -> tuple[int, list[int]]:
    """(attach flags, program ids) of the device programs attached to the cgroup itself."""
    ids = (ctypes.c_uint32 * 64)()
    attr = ctypes.create_string_buffer(40)
    # target_fd, attach_type, query_flags, attach_flags, prog_ids, prog_cnt
    struct.pack_into("<IIIIQI", attr, 0, cgroup_fd, libc.BPF_CGROUP_DEVICE, 0, 0,
                     ctypes.addressof(ids), len(ids))
    libc.bpf(libc.BPF_PROG_QUERY, attr, "bpf(BPF_PROG_QUERY)")
    flags, = struct.unpack_from("<I", attr, 12)
    count, = struct.unpack_from("<I", attr, 24)
    return flags, list(ids[:count])


def confine(cgroup: str, rules: Sequence[Rule]) -> None:
    """Attach the program of RULES to the cgroup2 directory CGROUP; a
    failure is one line naming the directory."""
    code = program(*emulate(rules))
    try:
        prog = load(code)
        try:
            fd = libc.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                attach(fd, prog)
            finally:
                libc.close(fd)
        finally:
            libc.close(prog)
    except OSError as err:
        raise JailError(f"{cgroup}: the device rules' eBPF program: {err.strerror}") \
            from None
