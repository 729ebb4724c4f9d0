"""linux.seccomp of a config.json -> a BPF program stacked on the jail's own.

The config's profile (Debian's podman profile, containerd's, Docker's) is
compiled with libseccomp (confine/seccomp_compile.compile_profile) and loaded after
the jail's filter (confine/seccomp.py).  The kernel runs every filter a
process has and takes the strictest answer (seccomp(2): KILL before TRAP
before ERRNO ... before ALLOW), so a profile that allows keyctl, unshare,
every socket family or an unfiltered ioctl loosens nothing the jail
forbids; it can only forbid more.

Refused in one line: SCMP_ACT_NOTIFY and listenerPath (a seccomp agent
outside the jail), filter flags that need seccomp(2) rather than the
prctl(2) the jail's loader uses (SPEC_ALLOW, LOG, WAIT_KILLABLE_RECV),
unknown actions, operators and architectures.
"""
from __future__ import annotations

import os

from ..confine.seccomp_rules import Arg
from .config import ConfigError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_ERRNO, _TRACE = 0x00050000, 0x7FF00000
ACTIONS = {
    "SCMP_ACT_KILL": 0x00000000, "SCMP_ACT_KILL_THREAD": 0x00000000,
    "SCMP_ACT_KILL_PROCESS": 0x80000000, "SCMP_ACT_TRAP": 0x00030000,
    "SCMP_ACT_ERRNO": _ERRNO, "SCMP_ACT_TRACE": _TRACE, "SCMP_ACT_ALLOW": 0x7FFF0000,
    "SCMP_ACT_LOG": 0x7FFC0000,
}   # libseccomp seccomp.h
OPERATORS = {"SCMP_CMP_NE": 1, "SCMP_CMP_LT": 2, "SCMP_CMP_LE": 3, "SCMP_CMP_EQ": 4,
             "SCMP_CMP_GE": 5, "SCMP_CMP_GT": 6, "SCMP_CMP_MASKED_EQ": 7}
ARCHES = {
    "SCMP_ARCH_X86": 0x40000003, "SCMP_ARCH_X86_64": 0xC000003E,
    "SCMP_ARCH_X32": 0x4000003E, "SCMP_ARCH_ARM": 0x40000028,
    "SCMP_ARCH_AARCH64": 0xC00000B7, "SCMP_ARCH_MIPS": 0x00000008,
    "SCMP_ARCH_MIPS64": 0x80000008, "SCMP_ARCH_MIPS64N32": 0xA0000008,
    "SCMP_ARCH_MIPSEL": 0x40000008, "SCMP_ARCH_MIPSEL64": 0xC0000008,
    "SCMP_ARCH_MIPSEL64N32": 0xE0000008, "SCMP_ARCH_PPC": 0x00000014,
    "SCMP_ARCH_PPC64": 0x80000015, "SCMP_ARCH_PPC64LE": 0xC0000015,
    "SCMP_ARCH_S390": 0x00000016, "SCMP_ARCH_S390X": 0x80000016,
    "SCMP_ARCH_RISCV64": 0xC00000F3,
}   # linux/audit.h AUDIT_ARCH_*
#: the filter flags that mean nothing for a single-threaded process loaded by prctl
HARMLESS_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC",)
#: every flag the runtime spec names (the others are refused: `features` lists both)
KNOWN_FLAGS = ("SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG",
               "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV")
EPERM = 1


def _action(name: Any, errno_ret: Any, where: str) -> int:
    if name not in ACTIONS:
        raise ConfigError(where, f"{name}: unknown or unsupported seccomp action")
    value = ACTIONS[name]
    if value in (_ERRNO, _TRACE):
        ret = EPERM if errno_ret is None else errno_ret
        if not isinstance(ret, int) or isinstance(ret, bool) or not 0 <= ret <= 0xFFFF:
            raise ConfigError(where, f"errnoRet {ret}: not an errno")
        value |= ret
    elif errno_ret is not None:
        raise ConfigError(where, f"errnoRet is only for SCMP_ACT_ERRNO and SCMP_ACT_TRACE")
    return value


def plan(profile: dict[str, Any]) -> tuple[int, list[tuple[int, str, tuple[Arg, ...]]],
                                           list[int]]:
    """(default action, rules, architectures) of an OCI seccomp profile."""
    where = "linux.seccomp"
    if profile.get("listenerPath") or profile.get("listenerMetadata"):
        raise ConfigError(f"{where}.listenerPath", "seccomp agents are not supported")
    for flag in profile.get("flags") or []:
        if flag not in HARMLESS_FLAGS:
            raise ConfigError(f"{where}.flags", f"{flag}: not supported")
    default = _action(profile.get("defaultAction"), profile.get("defaultErrnoRet"),
                      f"{where}.defaultAction")
    arches = []
    for i, arch in enumerate(profile.get("architectures") or []):
        if arch not in ARCHES:
            raise ConfigError(f"{where}.architectures[{i}]", f"{arch}: unknown")
        arches.append(ARCHES[arch])
    rules: list[tuple[int, str, tuple[Arg, ...]]] = []
    for i, call in enumerate(profile.get("syscalls") or []):
        at = f"{where}.syscalls[{i}]"
        if not isinstance(call, dict):
            raise ConfigError(at, "not an object")
        names = call.get("names") or []
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{at}.names", "not a list of names")
        action = _action(call.get("action"), call.get("errnoRet"), f"{at}.action")
        args = tuple(_arg(a, f"{at}.args[{j}]") for j, a in enumerate(call.get("args") or []))
        # libseccomp ANDs a rule's comparisons but takes one per argument:
        # several on the same argument are separate rules (runc does this)
        indexes = [a.index for a in args]
        groups = [(a,) for a in args] if len(set(indexes)) < len(indexes) else [args]
        for name in names:
            for group in groups:
                rules.append((action, name, group))
    return default, rules, arches


def _arg(a: Any, where: str) -> Arg:
    if not isinstance(a, dict):
        raise ConfigError(where, "not an object")
    index, op = a.get("index"), a.get("op")
    if not isinstance(index, int) or not 0 <= index <= 5:
        raise ConfigError(where, f"index {index}: not 0-5")
    if op not in OPERATORS:
        raise ConfigError(where, f"{op}: unknown operator")
    value, two = a.get("value", 0), a.get("valueTwo", 0)
    for v in (value, two):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < 1 << 64:
            raise ConfigError(where, "value and valueTwo must be 64-bit unsigned integers")
    return Arg(index, OPERATORS[op], value, two)


def compile_config(profile: dict[str, Any]) -> bytes:
    """The profile as a BPF program for seccomp.install().

    Compiled programs are cached beside the jail's own (STATE/seccomp,
    root's, 0600): oci-<machine>-<libseccomp>-<crc32>.bpf with the profile's
    canonical text beside it in .json, which must be the very same text for
    the program to be taken (a checksum alone could collide); libseccomp is
    loaded only when it is not (~15-20 ms for Docker's profile here)."""
    from ..confine import seccomp as jail_seccomp
    from ..confine.libseccomp import library_identity
    from . import jsonio
    text = jsonio.dumps(profile, sort_keys=True).encode()
    import zlib
    key = f"oci-{os.uname().machine}-{library_identity()}-{zlib.crc32(text):08x}"
    base = os.path.join(jail_seccomp.state_dir(), "seccomp",
                        key.replace("/", "_").replace(":", "-"))
    if jail_seccomp.read_private(base + ".json", 1 << 20) == text:
        bpf = jail_seccomp.read_cache(base + ".bpf")
        if bpf is not None:
            return bpf
    default, rules, arches = plan(profile)
    from ..confine.seccomp_compile import compile_profile
    try:
        bpf = compile_profile(default, rules, arches)
    except OSError as err:
        raise ConfigError("linux.seccomp", str(err.strerror or err)) from None
    jail_seccomp.write_cache(base + ".json", text)
    jail_seccomp.write_cache(base + ".bpf", bpf)
    return bpf
