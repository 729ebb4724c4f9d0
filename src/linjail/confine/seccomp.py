"""The seccomp filter of a jail, as the program it loads:

  seccomp_rules.rules(knobs)   the plan: a tuple of `Rule`, pure Python;
  program(knobs)               the compiled classic BPF, from the on-disk
                               cache or compiled once (seccomp_compile.py,
                               through libseccomp.py) and cached;
  install(bpf)                 loads it into the calling thread with prctl(2);
                               it never loads libseccomp, so a start with a
                               warm cache never does.

The filter is loaded without no_new_privs (setuid programs in the jail keep
working); that needs CAP_SYS_ADMIN in the effective set, so the caller loads
it before execve(2), while still privileged.  The filter covers the calling
thread only (no TSYNC): the caller must be single-threaded, as a process
about to exec is.
"""
from __future__ import annotations

import os
import stat
import struct

from linjail.confine.libseccomp import library_identity
from linjail.confine.seccomp_rules import FILTER_VERSION, rules
from linjail.fsutil import atomic_write
from linjail.kernel import libc
from linjail.model import Knobs

STATE_DIR_ENV = "LINJAIL_STATE_DIR"
DEFAULT_STATE_DIR = "/run/linjail"

BPF_INSN_SIZE = 8        # struct sock_filter (linux/filter.h)
BPF_MAXINSNS = 4096      # linux/bpf_common.h
_BPF_JMP, _BPF_JA, _BPF_RET = 0x05, 0x00, 0x06


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
    bpf = _memo.get(path) or read_cache(path)
    if bpf is None:
        # compiling loads libseccomp: only a cold cache pays for it (start-up time)
        from linjail.confine.seccomp_compile import compile_rules
        bpf = compile_rules(rules(knobs))
        write_cache(path, bpf)
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


def read_cache(path: str) -> bytes | None:
    """The cached program, or None when absent or not trustworthy (not a
    regular file of ours, writable by others, or not a whole program)."""
    data = read_private(path, BPF_MAXINSNS * BPF_INSN_SIZE)
    return data if data is not None and valid_program(data) else None


def read_private(path: str, limit: int) -> bytes | None:
    """A file of the cache, or None unless it is a regular file of ours that
    nobody else may write, of at most LIMIT bytes."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (not stat.S_ISREG(st.st_mode) or st.st_uid != os.geteuid()
                or st.st_mode & 0o077 or st.st_size > limit):
            return None
        data: bytes = os.read(fd, st.st_size + 1)
        return data
    except OSError:
        return None
    finally:
        os.close(fd)


def write_cache(path: str, bpf: bytes) -> None:
    """Durable and atomic, mode 0600.  The cache is only a speed-up: when
    the state directory cannot be written, the next start compiles again.
    (linjail-oci keeps the programs of OCI profiles here too.)"""
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
