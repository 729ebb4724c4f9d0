"""The seccomp filter, without root: the plan, the compiled program (run in a
small classic-BPF interpreter below), and the on-disk cache."""
from __future__ import annotations

import errno
import itertools
import os
import random
import stat
import struct
import subprocess
import sys
from dataclasses import dataclass, field

import pytest

from linjail.confine import libseccomp, seccomp, seccomp_compile, seccomp_rules
from linjail.model import Knobs

U32 = 0xFFFFFFFF
AUDIT_ARCH_X86_64 = 0xC000003E
AUDIT_ARCH_I386 = 0x40000003
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_KILL_PROCESS = 0x80000000
X32_SYSCALL_BIT = 0x40000000

ALL_KNOBS = [Knobs(set_hostname_allowed=h, socket_unixiproute_only=u, sysvipc_allowed=s,
                   allow_raw_sockets=r, chflags_allowed=c)
             for h, u, s, r, c in itertools.product((0, 1), repeat=5)]

x86_64_only = pytest.mark.skipif(os.uname().machine != "x86_64",
                                 reason="syscall numbers and arch tokens are x86_64's")


def _have_libseccomp() -> bool:
    try:
        libseccomp.load_library()
    except OSError:
        return False
    return True


needs_lib = pytest.mark.skipif(not _have_libseccomp(), reason="libseccomp.so.2 not installed")


# ---------------------------------------------------------------- a classic BPF interpreter

class BPFError(Exception):
    pass


Insn = tuple[int, int, int, int]


def decode(prog: bytes) -> list[Insn]:
    return list(struct.iter_unpack("<HBBI", prog))


def run_bpf(prog: bytes | list[Insn], nr: int, args: tuple[int, ...] = (),
            arch: int = AUDIT_ARCH_X86_64, ip: int = 0) -> int:
    """Run a seccomp program on one struct seccomp_data (linux/seccomp.h):
    nr u32, arch u32, instruction_pointer u64, args[6] u64 (little endian)."""
    full = tuple(args) + (0,) * (6 - len(args))
    data = struct.pack("<IIQ6Q", nr & U32, arch, ip, *[a & (2**64 - 1) for a in full])
    insns = decode(prog) if isinstance(prog, bytes) else prog
    a = x = 0
    mem = [0] * 16
    pc = 0
    while True:
        if pc >= len(insns):
            raise BPFError("fell off the end")
        code, jt, jf, k = insns[pc]
        pc += 1
        cls = code & 0x07
        if code == 0x20:                        # ld [k]
            a = struct.unpack_from("<I", data, k)[0]
        elif code == 0x00:                      # ld #k
            a = k
        elif code == 0x60:                      # ld M[k]
            a = mem[k]
        elif code == 0x61:                      # ldx M[k]
            x = mem[k]
        elif code == 0x02:                      # st M[k]
            mem[k] = a
        elif code == 0x03:                      # stx M[k]
            mem[k] = x
        elif code == 0x54:                      # and #k
            a &= k
        elif code == 0x44:                      # or #k
            a |= k
        elif code == 0x07:                      # tax
            x = a
        elif code == 0x87:                      # txa
            a = x
        elif code == 0x05:                      # ja k
            pc += k
        elif code in (0x15, 0x25, 0x35, 0x45):  # jeq/jgt/jge/jset #k
            cond = {0x15: a == k, 0x25: a > k, 0x35: a >= k, 0x45: bool(a & k)}[code]
            pc += jt if cond else jf
        elif cls == 0x06 and code == 0x06:      # ret #k
            return k
        else:
            raise BPFError(f"opcode {code:#x} not interpreted")


def errno_of(ret: int) -> int | None:
    """The errno of a SECCOMP_RET_ERRNO action, None for anything else."""
    return ret & 0xFFFF if ret & 0xFFFF0000 == 0x00050000 else None


@dataclass
class Filter:
    knobs: Knobs
    prog: bytes
    nr: dict[str, int] = field(default_factory=dict)
    insns: list[Insn] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.insns = decode(self.prog)

    def __call__(self, name: str, *args: int, arch: int = AUDIT_ARCH_X86_64) -> int | str:
        ret = run_bpf(self.insns, self.nr[name], args, arch)
        if ret == SECCOMP_RET_ALLOW:
            return "allow"
        if ret == SECCOMP_RET_KILL_PROCESS:
            return "kill"
        e = errno_of(ret)
        assert e is not None, hex(ret)
        return e


_NAMES = ["getpid", "read", "write", "mount", "umount2", "pivot_root", "fsopen", "fsconfig",
          "fsmount", "fspick", "move_mount", "open_tree", "mount_setattr", "unshare", "setns",
          "clone", "clone3", "keyctl", "add_key", "request_key", "bpf", "perf_event_open",
          "kexec_load", "kexec_file_load", "reboot", "init_module", "finit_module",
          "delete_module", "open_by_handle_at", "name_to_handle_at", "userfaultfd",
          "io_uring_setup", "io_uring_enter", "io_uring_register", "acct", "swapon", "swapoff",
          "syslog", "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "iopl",
          "ioperm", "quotactl", "quotactl_fd", "lookup_dcookie", "nfsservctl", "uselib", "ustat", "sysfs",
          "_sysctl", "create_module", "get_kernel_syms", "query_module", "personality",
          "mknod", "mknodat", "ioctl", "socket", "socketpair", "msgget", "msgsnd", "msgrcv",
          "msgctl", "semget", "semop", "semtimedop", "semctl", "shmget", "shmat", "shmdt",
          "shmctl", "sethostname", "setdomainname", "ptrace", "process_vm_readv",
          "process_vm_writev", "chown", "setuid", "fork", "chroot"]

_compiled: dict[Knobs, Filter] = {}


def compiled(knobs: Knobs) -> Filter:
    if knobs not in _compiled:
        lib = libseccomp.load_library()
        nr = {n: int(lib.seccomp_syscall_resolve_name(n.encode())) for n in _NAMES}
        nr.update(seccomp_compile.NEW_SYSCALLS)
        _compiled[knobs] = Filter(knobs, seccomp_compile.compile_rules(seccomp_rules.rules(knobs)), nr)
    return _compiled[knobs]


@pytest.fixture
def default() -> Filter:
    return compiled(Knobs())


# ---------------------------------------------------------------- the complement helper

@pytest.mark.parametrize("allowed", [
    (0,), (0xFFFFFFFF,), (1, 2, 10, 16), seccomp_rules.PERSONALITY_ALLOWED, (5, 6, 7, 8, 0x80000000)])
def test_not_in32_covers_exactly_the_complement(allowed: tuple[int, ...]) -> None:
    blocks = seccomp_rules._not_in32(allowed)
    assert len(blocks) <= 32 * len(allowed)

    def denied(v: int) -> bool:
        return any(v & m == val for m, val in blocks)

    for a in allowed:
        assert not denied(a), hex(a)
    rnd = random.Random(7)
    samples = set(range(0, 70000)) | {U32 - i for i in range(300)}
    samples |= {a ^ (1 << b) for a in allowed for b in range(32)}
    samples |= {a + d & U32 for a in allowed for d in (-1, 1)}
    samples |= {rnd.getrandbits(32) for _ in range(20000)}
    for v in samples:
        assert denied(v) == (v not in allowed), hex(v)


def test_masked_and_eq32() -> None:
    assert seccomp_rules.eq32(1, 0x5412) == seccomp_rules.Arg(1, seccomp_rules.SCMP_CMP_MASKED_EQ, U32, 0x5412)


# ---------------------------------------------------------------- the plan

def test_rules_are_deterministic_and_knob_dependent() -> None:
    plans = {k: seccomp_rules.rules(k) for k in ALL_KNOBS}
    assert seccomp_rules.rules(Knobs()) == seccomp_rules.rules(Knobs())
    assert len(set(plans.values())) == len(ALL_KNOBS)
    # enforce_statfs has no seccomp part
    assert seccomp_rules.rules(Knobs(enforce_statfs=0)) == seccomp_rules.rules(Knobs(enforce_statfs=2))


#: FILTER_VERSION -> digest of rules() over every knob combination
RULES_DIGEST = {1: "8053626aa90e5bc42478345147131e59f0b6b5b77c87d450678bec99e987409b",
                2: "c26e934c88906afff90f77cefe3faa0efb8dd84a3cdf9eba7ac34dd9c6e48a2f"}


def test_filter_version_follows_the_rules() -> None:
    """Cached programs are keyed by FILTER_VERSION, not by the rules: a
    change to rules() without a new version would load stale filters."""
    import hashlib
    digest = hashlib.sha256(repr([seccomp_rules.rules(k) for k in ALL_KNOBS]).encode()).hexdigest()
    assert RULES_DIGEST.get(seccomp_rules.FILTER_VERSION) == digest, (
        "rules() changed: bump seccomp_rules.FILTER_VERSION and record the new digest "
        f"{digest} in RULES_DIGEST")


def test_every_rule_denies_with_an_errno_we_promised() -> None:
    for knobs in ALL_KNOBS:
        for rule in seccomp_rules.rules(knobs):
            assert rule.errno in (errno.EPERM, errno.ENOSYS, errno.EPROTONOSUPPORT), rule
            # one comparison per argument per rule (libseccomp's limit)
            assert len({a.index for a in rule.args}) == len(rule.args), rule
            for a in rule.args:
                if a.op == seccomp_rules.SCMP_CMP_MASKED_EQ:
                    assert a.datum_b & ~a.datum_a == 0, rule


def test_names_never_allowed() -> None:
    names = {r.syscall for r in seccomp_rules.rules(Knobs()) if not r.args}
    for n in ("ptrace", "process_vm_readv", "process_vm_writev", "name_to_handle_at",
              "chroot", "setuid", "chown"):
        assert n not in names


# ---------------------------------------------------------------- the compiled program

@needs_lib
@x86_64_only
def test_program_kills_foreign_architectures(default: Filter) -> None:
    assert run_bpf(default.prog, 20, arch=AUDIT_ARCH_I386) == SECCOMP_RET_KILL_PROCESS
    # x32 numbers arrive with the x86_64 token and bit 30 set
    assert run_bpf(default.prog, X32_SYSCALL_BIT | 39) == SECCOMP_RET_KILL_PROCESS
    assert run_bpf(default.prog, X32_SYSCALL_BIT | 165) == SECCOMP_RET_KILL_PROCESS
    assert default("getpid") == "allow"


@needs_lib
@x86_64_only
@pytest.mark.parametrize("name", list(seccomp_rules._MOUNT) + ["unshare", "setns"]
                         + list(seccomp_rules._KERNEL) + list(seccomp_rules._OBSOLETE))
def test_unconditional_denials(default: Filter, name: str) -> None:
    nr = seccomp_compile.NEW_SYSCALLS.get(name) or default.nr.get(name, -1)
    if nr < 0:
        pytest.skip(f"{name} does not exist on x86_64")
    assert run_bpf(default.prog, nr, (0, 0, 0)) == 0x00050000 | errno.EPERM


@needs_lib
@x86_64_only
def test_allowed_calls(default: Filter) -> None:
    for name in ("name_to_handle_at", "ptrace", "process_vm_readv", "process_vm_writev",
                 "read", "write", "chown", "setuid", "chroot", "fork"):
        assert default(name, 0, 0, 0) == "allow", name


@needs_lib
@x86_64_only
def test_clone(default: Filter) -> None:
    sigchld = 17
    assert default("clone", 0x01200000 | sigchld) == "allow"        # glibc fork()
    assert default("clone", 0x003D0F00) == "allow"                  # pthread_create
    for flag in seccomp_rules.CLONE_NEW_FLAGS:
        assert default("clone", flag | sigchld) == errno.EPERM
        assert default("clone", flag | 1 << 40) == errno.EPERM
    assert default("clone", 0x7E020000) == errno.EPERM
    assert default("clone", 1 << 32 | sigchld) == "allow"
    assert default("clone3", 0, 88) == errno.ENOSYS


@needs_lib
@x86_64_only
def test_personality(default: Filter) -> None:
    for ok in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF, 1 << 32 | 8, 2**64 - 1):
        assert default("personality", ok) == "allow", hex(ok)
    for bad in (1, 7, 9, 0x0040000, 0x0400000, 0x20009, 0x20000 | 0x0040000, 0xFFFFFFFE,
                0x7FFFFFFF, 0x80000000, 1 << 32 | 0x0040000):
        assert default("personality", bad) == errno.EPERM, hex(bad)


@needs_lib
@x86_64_only
def test_mknod(default: Filter) -> None:
    for name, i in (("mknod", 1), ("mknodat", 2)):
        def call(mode: int) -> int | str:
            args = [0, 0, 0]
            args[i] = mode
            return default(name, *args)
        assert call(stat.S_IFCHR | 0o600) == errno.EPERM
        assert call(stat.S_IFBLK | 0o600) == errno.EPERM
        assert call(1 << 40 | stat.S_IFCHR) == errno.EPERM
        for ok in (stat.S_IFIFO | 0o600, stat.S_IFSOCK | 0o600, stat.S_IFREG | 0o600, 0o600):
            assert call(ok) == "allow", oct(ok)


@needs_lib
@x86_64_only
def test_terminal_ioctls_with_high_bits(default: Filter) -> None:
    for cmd in (seccomp_rules.TIOCSTI, seccomp_rules.TIOCLINUX):
        assert default("ioctl", 0, cmd) == errno.EPERM
        assert default("ioctl", 0, 1 << 32 | cmd) == errno.EPERM       # CVE-2019-10063
        assert default("ioctl", 0, 0xFFFFFFFF00000000 | cmd) == errno.EPERM
    assert default("ioctl", 0, 0x5413) == "allow"                        # TIOCGWINSZ


@needs_lib
@x86_64_only
@pytest.mark.parametrize("knobs", ALL_KNOBS, ids=lambda k: "".join(map(str, k.as_dict().values())))
def test_knobs(knobs: Knobs) -> None:
    f = compiled(knobs)
    eperm, enosys, enoproto = errno.EPERM, errno.ENOSYS, errno.EPROTONOSUPPORT
    # sethostname
    for n in ("sethostname", "setdomainname"):
        assert f(n, 0, 0) == ("allow" if knobs.set_hostname_allowed else eperm)
    # SysV IPC
    for n in seccomp_rules._SYSVIPC:
        assert f(n, 0, 0, 0) == ("allow" if knobs.sysvipc_allowed else enosys)
    # chflags
    for cmd in (seccomp_rules.FS_IOC_SETFLAGS, seccomp_rules.FS_IOC32_SETFLAGS, seccomp_rules.FS_IOC_FSSETXATTR):
        want = "allow" if knobs.chflags_allowed else eperm
        assert f("ioctl", 3, cmd) == want
        assert f("ioctl", 3, 1 << 32 | cmd) == want
    assert f("file_setattr", 0) == ("allow" if knobs.chflags_allowed else eperm)
    # families
    for call in ("socket", "socketpair"):
        for af in (1, 2, 10):
            assert f(call, af, 1, 0) == "allow"
            assert f(call, 1 << 32 | af, 1, 0) == "allow"    # the kernel reads an int
        assert f(call, 16, 3, 0) == "allow"                 # NETLINK_ROUTE
        for af in (38, 40):
            assert f(call, af, 5, 0) == enoproto
        for af in (0, 3, 4, 5, 9, 11, 15, 17, 42, 45, 46, 255, U32, 1 << 32 | 17):
            packet = call == "socket" and af & U32 == 17     # AF_PACKET
            assert f(call, af, 2, 0) == (enoproto if knobs.socket_unixiproute_only
                                         else eperm if packet and not knobs.allow_raw_sockets
                                         else "allow"), af
        for proto in (9, 15, 16, 1 << 31, U32):
            assert f(call, 16, 3, proto) == (enoproto if knobs.socket_unixiproute_only
                                             else "allow")
        assert f(call, 16, 3, 1 << 32) == "allow"           # low 32 bits: NETLINK_ROUTE
    # raw sockets
    raw = "allow" if knobs.allow_raw_sockets else eperm
    nonblock_cloexec = 0o4000 | 0o2000000
    for af in (2, 10):
        assert f("socket", af, 3, 0) == raw
        assert f("socket", af, 3 | nonblock_cloexec, 1) == raw
        assert f("socket", af, 1 << 32 | 3, 255) == raw
        assert f("socket", af, 1, 6) == "allow"             # TCP
        assert f("socket", af, 2, 17) == "allow"            # UDP
        assert f("socket", af, 2, 0) == "allow"
    assert f("socket", 2, 2, 1) == raw                      # ICMP datagram (ping)
    assert f("socket", 2, 2 | nonblock_cloexec, 1) == raw
    assert f("socket", 10, 2, 58) == raw                    # ICMPv6 datagram
    assert f("socket", 10, 2, 1) == "allow"
    # (PF_INET, SOCK_PACKET) is a packet socket: a family the knob forbids
    assert f("socket", 2, 10, 0) == (enoproto if knobs.socket_unixiproute_only else raw)
    assert f("socket", 2, 10 | nonblock_cloexec, 0x300) == (
        enoproto if knobs.socket_unixiproute_only else raw)
    assert f("socket", 17, 3, 0x300) == (enoproto if knobs.socket_unixiproute_only else raw)
    assert f("socketpair", 2, 3, 0) == "allow"              # the kernel says EOPNOTSUPP
    # unchanged by knobs
    assert f("getpid") == "allow"
    assert f("mount", 0) == eperm


def _witness(rule: seccomp_rules.Rule) -> tuple[int, ...]:
    args = [0] * 6
    for a in rule.args:
        assert a.op == seccomp_rules.SCMP_CMP_MASKED_EQ
        args[a.index] = a.datum_b
    return tuple(args)


def _reference(plan: tuple[seccomp_rules.Rule, ...], args: tuple[int, ...]) -> int | str:
    """What the plan's rules for one syscall say, evaluated directly: the
    errno of the matching rules."""
    hits = {r.errno for r in plan
            if all(args[a.index] & a.datum_a == a.datum_b for a in r.args)}
    assert len(hits) <= 1, (args, hits)     # no call matches rules that disagree
    return hits.pop() if hits else "allow"


#: the socket knobs interact, the others do not: every pair of socket knobs,
#: with the other three all off and all on
AGREEMENT_KNOBS = [Knobs(set_hostname_allowed=o, socket_unixiproute_only=u, sysvipc_allowed=o,
                         allow_raw_sockets=r, chflags_allowed=o)
                   for u, r, o in itertools.product((0, 1), repeat=3)]


@needs_lib
@x86_64_only
@pytest.mark.parametrize("knobs", AGREEMENT_KNOBS,
                         ids=lambda k: "".join(map(str, k.as_dict().values())))
def test_compiled_program_agrees_with_the_plan(knobs: Knobs) -> None:
    """libseccomp's output against the plan, on every rule's witness and on
    mutations of it (high bits, flipped bits, random words)."""
    f = compiled(knobs)
    plan = seccomp_rules.rules(knobs)
    by_name: dict[str, tuple[seccomp_rules.Rule, ...]] = {}
    for rule in plan:
        by_name[rule.syscall] = by_name.get(rule.syscall, ()) + (rule,)
    rnd = random.Random(sum(knobs.as_dict().values()))
    for name, group in by_name.items():
        if f.nr.get(name, -1) < 0:
            continue
        cases: set[tuple[int, ...]] = set()
        for rule in group:
            base = _witness(rule)
            cases.add(base)
            for i in {a.index for a in rule.args} | {rnd.randrange(6)}:
                for bit in (0, 1, 3, 13, 17, 31, 32, 63):
                    mutated = list(base)
                    mutated[i] ^= 1 << bit
                    cases.add(tuple(mutated))
                mutated = list(base)
                mutated[i] = rnd.getrandbits(64)
                cases.add(tuple(mutated))
        for args in cases:
            assert f(name, *args) == _reference(group, args), (name, [hex(a) for a in args])


@needs_lib
def test_program_is_well_formed() -> None:
    for knobs in (Knobs(), Knobs(socket_unixiproute_only=0, allow_raw_sockets=1)):
        bpf = seccomp_compile.compile_rules(seccomp_rules.rules(knobs))
        assert seccomp.valid_program(bpf)
        assert len(bpf) // 8 < 1024


# ---------------------------------------------------------------- the cache

@pytest.fixture
def state(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(tmp_path))
    monkeypatch.setattr(seccomp, "_memo", {})
    return tmp_path


def _forbid_compile(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def boom(plan: object) -> bytes:
        raise AssertionError("compiled although the cache was warm")
    monkeypatch.setattr(seccomp_compile, "compile_rules", boom)


@needs_lib
def test_program_writes_then_reads_the_cache(state, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    bpf = seccomp.program(Knobs())
    path = seccomp.cache_path(Knobs())
    assert os.path.dirname(path) == str(state / "seccomp")
    assert path.endswith(".bpf")
    st = os.stat(path)
    assert stat.S_IMODE(st.st_mode) == 0o600
    assert stat.S_IMODE(os.stat(state / "seccomp").st_mode) == 0o700
    assert open(path, "rb").read() == bpf
    assert os.listdir(state / "seccomp") == [os.path.basename(path)]   # no tmp left
    monkeypatch.setattr(seccomp, "_memo", {})
    _forbid_compile(monkeypatch)
    assert seccomp.program(Knobs()) == bpf


@needs_lib
def test_one_file_per_knob_combination(state) -> None:  # type: ignore[no-untyped-def]
    for knobs in ALL_KNOBS[:6]:
        seccomp.program(knobs)
    assert len(os.listdir(state / "seccomp")) == 6


@needs_lib
@pytest.mark.parametrize("damage", ["odd", "aligned-no-ret", "truncated-at-a-ret", "empty", "mode", "symlink", "huge"])
def test_bad_cache_files_are_recompiled(state, monkeypatch, damage: str) -> None:  # type: ignore[no-untyped-def]
    good = seccomp.program(Knobs())
    path = seccomp.cache_path(Knobs())
    monkeypatch.setattr(seccomp, "_memo", {})
    if damage == "odd":
        open(path, "wb").write(good[:-3])
    elif damage == "aligned-no-ret":
        open(path, "wb").write(good[:16])
    elif damage == "truncated-at-a-ret":
        codes = [c for c, _, _, _ in struct.iter_unpack("<HBBI", good)]
        first_ret = codes.index(0x06)
        assert first_ret + 1 < len(codes)
        open(path, "wb").write(good[:8 * (first_ret + 1)])
    elif damage == "empty":
        open(path, "wb").close()
    elif damage == "mode":
        os.chmod(path, 0o666)
    elif damage == "symlink":
        os.rename(path, path + ".real")
        os.symlink(path + ".real", path)
    elif damage == "huge":
        open(path, "wb").write(good * 200)
    calls: list[int] = []
    real = seccomp_compile.compile_rules

    def counting(plan: tuple[seccomp_rules.Rule, ...]) -> bytes:
        calls.append(1)
        return real(plan)
    monkeypatch.setattr(seccomp_compile, "compile_rules", counting)
    assert seccomp.program(Knobs()) == good
    assert calls == [1]
    assert open(path, "rb").read() == good
    assert not os.path.islink(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_cache_key_inputs(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    base = seccomp.cache_key(Knobs())
    assert seccomp.cache_key(Knobs()) == base
    assert seccomp.cache_key(Knobs(sysvipc_allowed=1)) != base
    monkeypatch.setattr(seccomp, "FILTER_VERSION", seccomp_rules.FILTER_VERSION + 1)
    assert seccomp.cache_key(Knobs()) != base
    monkeypatch.undo()
    monkeypatch.setattr(seccomp, "library_identity", lambda: "libseccomp.so.2.9.9:1:1")
    assert seccomp.cache_key(Knobs()) != base


def test_library_identity_does_not_load_the_library() -> None:
    code = ("from linjail.confine import seccomp; seccomp.library_identity(); "
            "print('libseccomp' in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@needs_lib
def test_warm_cache_never_loads_libseccomp(state) -> None:  # type: ignore[no-untyped-def]
    seccomp.program(Knobs())
    code = ("from linjail.confine import seccomp; from linjail.model import Knobs; "
            "seccomp.program(Knobs()); "
            "print('libseccomp' in open('/proc/self/maps').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "LINJAIL_STATE_DIR": str(state)})
    assert out.stdout.strip() == "False"


@needs_lib
def test_unwritable_state_dir_still_gives_a_program(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    blocker = tmp_path / "file"
    blocker.write_text("")
    monkeypatch.setenv("LINJAIL_STATE_DIR", str(blocker))
    monkeypatch.setattr(seccomp, "_memo", {})
    assert seccomp.valid_program(seccomp.program(Knobs()))


def test_default_state_dir(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("LINJAIL_STATE_DIR", raising=False)
    assert seccomp.cache_path(Knobs()).startswith("/run/linjail/seccomp/")


def test_valid_program() -> None:
    ret_allow = struct.pack("<HBBI", 0x06, 0, 0, SECCOMP_RET_ALLOW)
    ld = struct.pack("<HBBI", 0x20, 0, 0, 0)
    assert seccomp.valid_program(ld + ret_allow)
    assert not seccomp.valid_program(b"")
    assert not seccomp.valid_program(ret_allow + ld)
    assert not seccomp.valid_program(ret_allow + b"\0")
    assert not seccomp.valid_program(ret_allow * 4097)


def test_install_rejects_a_broken_program_before_the_kernel(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from linjail.kernel import libc
    monkeypatch.setattr(libc, "seccomp_set_mode_filter",
                        lambda bpf: pytest.fail("reached the kernel"))
    with pytest.raises(ValueError, match="not a whole BPF program"):
        seccomp.install(b"\0" * 7)


def _reachable(insns: list[Insn]) -> set[int]:
    seen: set[int] = set()
    todo = [0]
    while todo:
        pc = todo.pop()
        if pc in seen or pc >= len(insns):
            continue
        seen.add(pc)
        code, jt, jf, k = insns[pc]
        if code & 0x07 == 0x06:
            continue
        if code & 0x07 == 0x05:
            todo += [pc + 1 + k] if code & 0xF0 == 0 else [pc + 1 + jt, pc + 1 + jf]
        else:
            todo.append(pc + 1)
    return seen


@needs_lib
@pytest.mark.parametrize("knobs", [Knobs(), Knobs(socket_unixiproute_only=0, allow_raw_sockets=1)])
def test_truncated_programs_are_refused(knobs: Knobs) -> None:
    """Every cut at an instruction boundary is refused, unless what it cut
    off is unreachable (libseccomp leaves a dead return at the end)."""
    bpf = seccomp_compile.compile_rules(seccomp_rules.rules(knobs))
    live = _reachable(decode(bpf))
    n = len(bpf) // 8
    for cut in range(1, n):
        if seccomp.valid_program(bpf[:8 * cut]):
            assert max(live) < cut, cut
