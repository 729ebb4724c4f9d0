"""The registry of jails: JIDs, records, liveness (SPEC §1, §7 "State").

Layout under the state directory (LINJAIL_STATE_DIR, default /run/linjail):
  lock          flock(2) taken for JID allocation and for cleanup
  jid           "BOOTID NEXT": the counter, reset when the boot id changes
  jails/N       one record per jail, "key<TAB>value" lines, written atomically
  addrs/ADDR    a symlink to the JID of the live jail that holds address ADDR

`/run` is not a tmpfs on these machines, so a record carries the boot id, and
the PIDs it names carry their start time (field 22 of /proc/PID/stat): a
record is live only if its process is the very one that wrote it.

The registry is data: reading it changes nothing.  What a dead jail left is
released by the sweep the commands call where they read it (lifecycle/sweep.py).
"""
from __future__ import annotations

import fcntl
import os

from ..errors import JailError
from ..fsutil import atomic_write
from ..record import Record, record
from . import uidrange

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterator

JID_MAX = 999999


DEFAULT_STATE_DIR = "/run/linjail"


def state_dir() -> str:
    # empty counts as unset: "" would put the registry in the cwd
    return os.environ.get("LINJAIL_STATE_DIR") or DEFAULT_STATE_DIR


def _jails_dir() -> str:
    return os.path.join(state_dir(), "jails")


_BOOT_ID: str | None = None


def boot_id() -> str:
    global _BOOT_ID
    if _BOOT_ID is None:
        with open("/proc/sys/kernel/random/boot_id") as f:
            _BOOT_ID = f.read().strip()
    return _BOOT_ID


def starttime(pid: int) -> int | None:
    """Start time of PID in clock ticks since boot, or None if it is gone/zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    # the command name may contain spaces and parentheses: split after the last ')'
    fields = data[data.rindex(b")") + 2:].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


def pid_alive(pid: int, start: int) -> bool:
    return pid > 0 and starttime(pid) == start


@record(frozen=False)
class JailRecord(Record):
    jid: int
    hostname: str
    path: str
    ips: list[str]                 # in the order given to jail
    bootid: str
    owner_pid: int                 # the `jail` (or jailctl) process creating it
    owner_start: int
    pid: int = 0                   # host PID of the jail's PID 1, once running
    starttime: int = 0
    state: str = "starting"        # "starting" | "running"
    name: str = ""                 # rc.conf name
    cgroup: str = ""               # cgroup v2 directory
    cgroup_ino: int = 0            # its inode: the claim on the JID (cgroup.claim)
    hostif: str = ""               # host-side interface (veth) name
    created: float = 0.0
    knobs: dict[str, int] = {}
    persist: int = 0               # FreeBSD's persist (the reaper stays without processes)
    devfs_ruleset: int = 0         # FreeBSD's devfs_ruleset, as given (0 or 4)
    # what jexec's fast path (reaper/jexec_fast.c) executes, made by Python
    # from `knobs` (attach.remember_exec_plan); valid while exec_knobs is
    # knobs_text(knobs): the capabilities kept and the cached seccomp program
    exec_knobs: str = ""
    exec_caps: int = 0
    exec_seccomp: str = ""
    exec_v1: str = ""              # ":"-separated
    #: v1 cgroup directories every process of the jail belongs to besides
    #: its cgroup2 one, ":"-separated (an OCI container's linux.cgroupsPath):
    #: jexec joins them too (and takes Python's way, not the fast path)
    v1dirs: str = ""
    #: jail uid/gid N is host BASE+N (state/uidrange.py); 0: no user namespace
    uid_base: int = 0
    #: an OCI config's own mappings, "JAILID:HOSTID:COUNT" comma-separated
    #: (uid_base is then the host uid of jail uid 0); "": 0:uid_base:65536
    uid_map: str = ""
    gid_map: str = ""

    def id_maps(self) -> tuple[list[tuple[int, int, int]], list[tuple[int, int, int]]]:
        """(uid, gid) mappings of the jail's user namespace: (jail id, host id, count)."""
        if not self.uid_base:
            return [], []
        if not self.uid_map:
            return [(0, self.uid_base, uidrange.SIZE)], [(0, self.uid_base, uidrange.SIZE)]
        return parse_map(self.uid_map), parse_map(self.gid_map)

    def live(self) -> bool:
        if self.bootid != boot_id():
            return False
        if self.state == "running":
            return pid_alive(self.pid, self.starttime)
        return pid_alive(self.owner_pid, self.owner_start)

    def encode(self) -> bytes:
        """One "key<TAB>value" line per field (no json: it imports re)."""
        lines = []
        for key, value in self.as_dict().items():
            if key == "ips":
                text = ",".join(value)
            elif key == "knobs":
                text = knobs_text(value)
            elif isinstance(value, (int, float)):
                text = repr(value)
            else:
                text = value.encode("unicode_escape").decode("ascii")
            lines.append(f"{key}\t{text}\n")
        return "".join(lines).encode("ascii")

    @classmethod
    def decode(cls, data: bytes) -> "JailRecord":
        values: dict[str, Any] = {}
        for line in data.decode("ascii").splitlines():
            key, _, text = line.partition("\t")
            if key == "ips":
                values[key] = text.split(",") if text else []
            elif key == "knobs":
                values[key] = {k: int(v) for k, _, v in
                               (item.partition("=") for item in text.split(",") if item)}
            elif key in _INTS:
                values[key] = int(text)
            elif key == "created":
                values[key] = float(text)
            elif key in cls._fields:
                values[key] = text.encode("ascii").decode("unicode_escape")
        return cls(**values)


def parse_map(text: str) -> list[tuple[int, int, int]]:
    """A record's uid_map/gid_map text as (jail id, host id, count) lines."""
    out = []
    for item in filter(None, text.split(",")):
        inner, host, count = (int(x) for x in item.split(":"))
        out.append((inner, host, count))
    return out


def map_text(lines: tuple[tuple[int, int, int], ...]) -> str:
    return ",".join(f"{a}:{b}:{c}" for a, b, c in lines)


_INTS = frozenset({"jid", "owner_pid", "owner_start", "pid", "starttime", "cgroup_ino",
                   "persist", "devfs_ruleset", "exec_caps",
                   "uid_base"})


def knobs_text(knobs: dict[str, int]) -> str:
    """The knobs as a record line holds them: `name=value,...`."""
    return ",".join(f"{k}={v}" for k, v in knobs.items())


def ensure_dirs() -> None:
    """STATE and STATE/jails, mode 0755 whatever the umask: every user may read
    the records (`jls` is for everybody, as on DragonFly), only root writes."""
    top = state_dir()
    parent = os.path.dirname(top.rstrip("/"))
    path = parent
    try:
        if parent and not os.path.isdir(parent):
            os.makedirs(parent, mode=0o755, exist_ok=True)
        for path in (top, _jails_dir()):
            try:
                os.mkdir(path, 0o755)
            except FileExistsError:
                if not os.path.isdir(path):   # LINJAIL_STATE_DIR naming a file
                    raise NotADirectoryError(20, os.strerror(20)) from None
                continue
            os.chmod(path, 0o755)
    except OSError as e:
        # makedirs' EEXIST: a file where a directory must be
        raise JailError(f"{path}: {os.strerror(20) if e.errno == 17 else e.strerror}") \
            from None


class Lock:
    """The registry lock (flock on STATE/lock).

    Re-entrant within a process: a release under the lock may call code that
    takes it again (net.release_source_filter), and a second flock on a new
    descriptor of the same file would wait for ourselves.
    """
    _depth = 0
    _fd = -1

    def __enter__(self) -> "Lock":
        if Lock._depth == 0:
            ensure_dirs()
            fd = os.open(os.path.join(state_dir(), "lock"),
                         os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            Lock._fd = fd
        Lock._depth += 1
        return self

    def __exit__(self, *exc: object) -> None:
        Lock._depth -= 1
        if Lock._depth == 0:
            os.close(Lock._fd)
            Lock._fd = -1


def _record_path(jid: int) -> str:
    return os.path.join(_jails_dir(), str(jid))


def write(rec: JailRecord) -> None:
    ensure_dirs()
    atomic_write(_record_path(rec.jid), rec.encode())


def delete(jid: int, known: JailRecord | None = None) -> None:
    """Remove jail JID's record, its address claims and its id range's.
    KNOWN is the caller's copy of the record, used when the file cannot be
    read (a launcher at its descriptor limit undoing its start)."""
    rec = read(jid) or (known if known is not None and known.jid == jid else None)
    if rec is not None:
        release_addresses(rec)
        if rec.uid_base:
            uidrange.release(jid, rec.uid_base, _uids_dir(), ranges=bool(rec.uid_map))
    try:
        os.unlink(_record_path(jid))
    except FileNotFoundError:
        pass


# --- addresses ---------------------------------------------------------------------
#
# No two jails share an address: each would need the one host route to it, and
# the second's would silently replace the first's.  FreeBSD lets two jails
# share an address only when each has exactly that one; linjail never does.
# A running jail's addresses are claimed in STATE/addrs/ADDR, a symlink to its
# JID, made under the registry lock when the JID is allocated: a claim costs a
# symlink(2) per address, not a read of every record.  A claim whose record is
# no longer live (or no longer lists the address) is stale and taken over.

def _addrs_dir() -> str:
    return os.path.join(state_dir(), "addrs")


def claim_addresses(rec: JailRecord) -> None:
    """Claim REC's addresses for it (caller: the lock); EADDRINUSE if a live
    jail holds one of them, and then nothing is claimed."""
    made: list[str] = []
    try:
        for addr in rec.ips:
            path = os.path.join(_addrs_dir(), addr)
            while True:
                try:
                    os.symlink(str(rec.jid), path)
                    made.append(path)
                    break
                except FileNotFoundError:
                    os.makedirs(_addrs_dir(), mode=0o755, exist_ok=True)
                except FileExistsError:
                    holder = _holder(path)
                    if holder == rec.jid:
                        break                  # listed twice
                    if holder is not None:
                        other = read(holder)
                        if other is not None and addr in other.ips and other.live():
                            # jail(2)'s EADDRINUSE, as jail(8) reports it
                            import errno
                            from ..errors import OpError
                            raise OpError("jail", None, errno.EADDRINUSE)
                    try:
                        os.unlink(path)        # stale: taken over
                    except FileNotFoundError:
                        pass
    except BaseException:
        for path in made:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass
        raise


_holder = uidrange.holder


def _uids_dir() -> str:
    return os.path.join(state_dir(), "uids")


def _holds_range(jid: int, first: int, count: int) -> bool:
    """Whether jail JID is live and its record still holds host ids
    FIRST..FIRST+COUNT-1 (its range, or an OCI config's mappings)."""
    other = read(jid)
    if other is None or not other.uid_base:
        return False
    uids, gids = other.id_maps()
    held = [(host, n) for _, host, n in uids + gids]
    return any(h < first + count and first < h + n for h, n in held) and other.live()


def release_addresses(rec: JailRecord) -> None:
    """Drop REC's claims (those that still name it)."""
    for addr in rec.ips:
        path = os.path.join(_addrs_dir(), addr)
        if _holder(path) == rec.jid:
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass


def read(jid: int) -> JailRecord | None:
    try:
        with open(_record_path(jid), "rb") as f:
            return JailRecord.decode(f.read())
    except (OSError, ValueError, TypeError):
        return None


def all_records(strays: list[str] | None = None) -> Iterator[JailRecord]:
    """Every readable record; names that are not records go to STRAYS."""
    try:
        names = os.listdir(_jails_dir())
    except FileNotFoundError:
        return
    except OSError as e:      # LINJAIL_STATE_DIR naming a file, or unreadable
        raise JailError(f"{_jails_dir()}: {e.strerror}") from None
    for name in names:
        rec = read(int(name)) if name.isdigit() else None
        if rec is not None:
            yield rec
        elif strays is not None:
            strays.append(name)


def allocate(make: Callable[[int], JailRecord],
             claim: Callable[[int], int | None] | None = None,
             unclaim: Callable[[int], None] | None = None,
             want: int = 0, name: str = "",
             release_dead: Callable[[JailRecord], object] | None = None,
             uid_range: bool = False,
             idmap: tuple[tuple[tuple[int, int, int], ...],
                          tuple[tuple[int, int, int], ...]] | None = None) -> JailRecord:
    """Allocate the next JID under the lock and write make(jid) as its record.

    JIDs start at 1 after boot and only go up; after 999999 they wrap to 1,
    skipping JIDs that still have a record (SPEC §1).  CLAIM(jid) takes the
    host-wide claim on a JID (the jail's cgroup, see cgroup.claim) and
    returns its token, or None when another jail holds it, from this or any
    other registry: that JID is skipped too.

    WANT (FreeBSD's jid parameter) asks for that JID and no other; NAME
    must not be the name of a live jail (FreeBSD: names are unique among
    running jails).  Either conflict raises JailError('"X" already exists').
    A dead jail's record in WANT's way is given to RELEASE_DEAD first.
    UID_RANGE: the jail gets a range of host ids of its own (uid_base).
    IDMAP: (uid, gid) mappings of an OCI config instead, whose host ids are
    claimed as given (uidrange.claim_ranges).
    """
    with Lock():
        if want or name:
            _check_free(want, name, release_dead)
        counter = os.path.join(state_dir(), "jid")
        nxt = 1
        try:
            with open(counter) as f:
                boot, value = f.read().split()
            if boot == boot_id():
                nxt = int(value)
        except (OSError, ValueError):
            pass
        token = 0
        if want:
            nxt = want
        for _ in range(JID_MAX):
            if nxt > JID_MAX:
                nxt = 1
            if not os.path.exists(_record_path(nxt)):
                if claim is None:
                    break
                got = claim(nxt)
                if got is not None:
                    token = got
                    break
            if want:
                raise _exists(str(want))
            nxt += 1
        else:
            raise OSError(11, "no free jail id")
        try:
            rec = make(nxt)
            if claim is not None:
                rec.cgroup_ino = token
            claim_addresses(rec)
            try:
                if idmap is not None:
                    uidrange.claim_ranges(nxt, [(h, n) for _, h, n in idmap[0] + idmap[1]],
                                          _uids_dir(), _holds_range)
                    rec.uid_base = next(h for j, h, _ in idmap[0] if j == 0)
                    rec.uid_map, rec.gid_map = map_text(idmap[0]), map_text(idmap[1])
                elif uid_range:
                    rec.uid_base = uidrange.claim(nxt, _uids_dir(), _holds_range)
                write(rec)
            except BaseException:
                release_addresses(rec)
                if rec.uid_base:
                    uidrange.release(nxt, rec.uid_base, _uids_dir(), ranges=bool(rec.uid_map))
                raise
            if not want:
                atomic_write(counter, f"{boot_id()} {nxt + 1}\n".encode())
        except BaseException:
            delete(nxt)
            if unclaim is not None:
                unclaim(nxt)
            raise
        return rec


def _exists(what: str) -> Exception:
    from ..errors import JailError
    return JailError(f'"{what}" already exists')


def _check_free(want: int, name: str,
                release_dead: Callable[[JailRecord], object] | None) -> None:
    """Under the lock: JID WANT and NAME belong to no live jail.  A dead
    record in the way is released first (its jail is gone)."""
    for rec in all_records():
        if not rec.live():
            if rec.jid == want and release_dead is not None:
                release_dead(rec)
            continue
        if want and rec.jid == want:
            raise _exists(str(want))
        if name and (rec.name or str(rec.jid)) == name:
            raise _exists(name)


def dead_claims(named: set[int]) -> list[str]:
    """The address and id-range claims naming a JID that has no record in NAMED
    (every record's JID, live or dead): left by a launcher killed between
    its claim and its record's removal.  Removed under the lock by
    drop_dead_claims; a claim is made under the lock together with its
    record, so one found without a record there is nobody's."""
    found = []
    for where in (_addrs_dir(), _uids_dir()):
        try:
            names = os.listdir(where)
        except FileNotFoundError:
            continue
        for name in names:
            holder = _holder(os.path.join(where, name))
            if holder is not None and holder not in named:
                found.append(os.path.join(where, name))
    return found


def drop_dead_claims(paths: list[str]) -> None:
    """Remove the claims dead_claims found, those still dead under the lock."""
    with Lock():
        for path in paths:
            holder = _holder(path)
            if holder is not None and not os.path.exists(_record_path(holder)):
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass


def scan(strays: list[str] | None = None) -> tuple[list[JailRecord], list[JailRecord]]:
    """(live jails newest first, dead records): every record read once;
    names that are not records go to STRAYS."""
    live: list[JailRecord] = []
    dead: list[JailRecord] = []
    for rec in all_records(strays):
        (live if rec.live() else dead).append(rec)
    live.sort(key=lambda r: (r.created, r.jid), reverse=True)
    return live, dead


def live_jails() -> list[JailRecord]:
    """Every live jail, newest first."""
    return scan()[0]


def lookup(jid: int) -> JailRecord | None:
    """Jail JID's record if it is live."""
    rec = read(jid)
    return rec if rec is not None and rec.live() else None


def refresh_hostname(rec: JailRecord, hostname: str) -> None:
    """Record the hostname root's `jls` found in the jail's UTS namespace.

    Jailed root may change the hostname; users other than root cannot enter
    the jail's namespace to read it, so their `jls` shows this copy: the
    hostname at start or as root's `jls` last saw it.
    """
    with Lock():
        again = read(rec.jid)
        if again is None or (again.pid, again.starttime) != (rec.pid, rec.starttime) or \
                again.hostname == hostname:
            return
        again.hostname = hostname
        write(again)


def set_exec_plan(rec: JailRecord, caps: int, seccomp: str, v1: tuple[str, ...]) -> None:
    """What a jexec into REC executes for its knobs as they are now
    (confinement.ExecPlan); nothing when a path holds the separator."""
    if any(":" in path for path in v1):
        return
    rec.exec_knobs = knobs_text(rec.knobs)
    rec.exec_caps, rec.exec_seccomp, rec.exec_v1 = caps, seccomp, ":".join(v1)


def remember_exec_plan(rec: JailRecord, caps: int, seccomp: str, v1: tuple[str, ...]) -> None:
    """set_exec_plan in the stored record of REC's jail, unless the jail
    changed meanwhile."""
    with Lock():
        again = read(rec.jid)
        if again is None or (again.pid, again.starttime) != (rec.pid, rec.starttime) or \
                again.knobs != rec.knobs:
            return
        set_exec_plan(again, caps, seccomp, v1)
        write(again)


def lookup_name(name: str) -> JailRecord | None:
    for rec in live_jails():
        if rec.name == name:
            return rec
    return None
