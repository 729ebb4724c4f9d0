"""Capabilities of jailed root: which survive, and dropping the rest.

Jailed root is uid 0 of the initial user namespace, so every capability it
keeps is a host capability, bounded only by the namespaces it lives in.  The
bar is Docker's default 14 minus CAP_MKNOD (device nodes; the jail's /dev is
ours, the root is nodev) and, unless `allow_raw_sockets`, CAP_NET_RAW; plus
CAP_LINUX_IMMUTABLE only for `chflags_allowed` (that check uses the initial
namespace, see SPEC §7 "Privilege").

`drop` only touches the bounding, ambient and inheritable sets: the caller
(the jail's PID 1, or `jexec`) still needs its effective caps for the last
steps before execve(2).  For a root execve without file capabilities the new
permitted and effective sets are then exactly the bounding set
(capabilities(7), "Transformation of capabilities during execve()").
"""
from __future__ import annotations

from linjail.kernel import libc
from linjail.model import Knobs

#: capability numbers (linux/capability.h)
CAP: dict[str, int] = {
    "CHOWN": 0, "DAC_OVERRIDE": 1, "DAC_READ_SEARCH": 2, "FOWNER": 3,
    "FSETID": 4, "KILL": 5, "SETGID": 6, "SETUID": 7, "SETPCAP": 8,
    "LINUX_IMMUTABLE": 9, "NET_BIND_SERVICE": 10, "NET_BROADCAST": 11,
    "NET_ADMIN": 12, "NET_RAW": 13, "IPC_LOCK": 14, "IPC_OWNER": 15,
    "SYS_MODULE": 16, "SYS_RAWIO": 17, "SYS_CHROOT": 18, "SYS_PTRACE": 19,
    "SYS_PACCT": 20, "SYS_ADMIN": 21, "SYS_BOOT": 22, "SYS_NICE": 23,
    "SYS_RESOURCE": 24, "SYS_TIME": 25, "SYS_TTY_CONFIG": 26, "MKNOD": 27,
    "LEASE": 28, "AUDIT_WRITE": 29, "AUDIT_CONTROL": 30, "SETFCAP": 31,
    "MAC_OVERRIDE": 32, "MAC_ADMIN": 33, "SYSLOG": 34, "WAKE_ALARM": 35,
    "BLOCK_SUSPEND": 36, "AUDIT_READ": 37, "PERFMON": 38, "BPF": 39,
    "CHECKPOINT_RESTORE": 40,
}
NAMES: dict[int, str] = {num: name for name, num in CAP.items()}

#: Docker's default set without MKNOD and NET_RAW (linux-hardening.md §2.4)
BASE: frozenset[str] = frozenset({
    "CHOWN", "DAC_OVERRIDE", "FSETID", "FOWNER", "SETGID", "SETUID", "SETFCAP",
    "SETPCAP", "NET_BIND_SERVICE", "SYS_CHROOT", "KILL", "AUDIT_WRITE",
})
#: never kept, whatever the knobs say: each one reaches past the namespaces
NEVER: frozenset[str] = frozenset({
    "SYS_ADMIN", "SYS_PTRACE", "SYS_MODULE", "SYS_RAWIO", "SYS_TIME", "SYS_BOOT",
    "DAC_READ_SEARCH", "SYSLOG", "NET_ADMIN", "BPF", "PERFMON", "MAC_ADMIN",
    "MAC_OVERRIDE", "MKNOD",
})

CAP_LAST_CAP_PATH = "/proc/sys/kernel/cap_last_cap"
PR_CAPBSET_READ = 23


def keep_set(knobs: Knobs) -> frozenset[int]:
    """The capabilities jailed root keeps under these knobs."""
    names = set(BASE)
    if knobs.allow_raw_sockets:
        names.add("NET_RAW")        # ping, traceroute (SPEC §5)
    if knobs.chflags_allowed:
        names.add("LINUX_IMMUTABLE")  # chattr +i/+a (SPEC §5, §7)
    assert not names & NEVER, names & NEVER
    return frozenset(CAP[name] for name in names)


def mask(caps: frozenset[int]) -> int:
    """The 64-bit mask of a set of capability numbers (as in /proc/PID/status)."""
    out = 0
    for cap in caps:
        out |= 1 << cap
    return out


_last_cap: int | None = None


def last_cap() -> int:
    """The highest capability this kernel knows (capabilities(7)).

    Read from /proc/sys/kernel/cap_last_cap; `drop` may run after pivot_root
    into a jail without /proc, so fall back to asking the kernel: prctl(2)
    PR_CAPBSET_READ fails with EINVAL past the last capability.
    """
    global _last_cap
    if _last_cap is None:
        try:
            with open(CAP_LAST_CAP_PATH, encoding="ascii") as f:
                _last_cap = int(f.read())
        except (OSError, ValueError):
            _last_cap = _probe_last_cap()
    return _last_cap


def _probe_last_cap() -> int:
    cap = 0
    while cap < 63:
        try:
            libc.prctl(PR_CAPBSET_READ, cap + 1)
        except OSError:
            break
        cap += 1
    return cap


def drop(keep: frozenset[int]) -> None:
    """Drop every capability not in `keep` from the bounding set; clear the
    ambient and inheritable sets.  Effective and permitted are left alone.

    Needs CAP_SETPCAP in the effective set.  Dropping a capability that is
    already out of the bounding set succeeds (prctl(2) PR_CAPBSET_DROP).
    """
    for cap in range(last_cap() + 1):
        if cap not in keep:
            _bset_drop(cap)
    # ambient caps would survive execve; clear them (PR_CAP_AMBIENT, prctl(2))
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    # a non-empty inheritable set was CVE-2022-24769 (Moby), CVE-2022-27649
    # (Podman), CVE-2022-27650 (crun)
    effective, permitted, _ = libc.capget()
    libc.capset(effective, permitted, 0)


def _bset_drop(cap: int) -> None:
    try:
        libc.prctl(libc.PR_CAPBSET_DROP, cap)
    except OSError as e:
        name = NAMES.get(cap, str(cap))
        raise OSError(e.errno, f"prctl(PR_CAPBSET_DROP, CAP_{name}): {e.strerror}") from None
