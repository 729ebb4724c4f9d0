"""config.json (the OCI runtime spec's config.md) -> a Container -> a JailSpec.

Parsing only: nothing here touches the kernel.  Every field the runtime spec
defines for Linux is either honoured, or refused with one line naming it
(`config.json: linux.devices[0]: /dev/sda: ...`); nothing is dropped
silently.  The one deliberate narrowing is the capability sets: each is
intersected with the jail's bounding set (caps.keep_set of the knobs), and a
capability no jail ever holds (caps.NEVER, CAP_SYS_ADMIN first) is refused,
so `--privileged` and `--cap-add SYS_ADMIN` fail in one line.

What a jail always is, whatever the config says (the README's "linjail-oci"
lists it): its own mount namespace, its own pid, network, IPC and UTS
namespaces or joined ones (a pod's, never the host's: an absent entry would
share the host's, refused; the path's is checked when it is joined), its own
cgroup namespace, /dev the jail's own, the jail's seccomp filter under any
the config adds.  A `user` namespace is made new with exactly the config's
uidMappings and gidMappings (never host id 0; joining one is refused); the
jail's other namespaces are then owned by it (confine/userns.py).
"""
from __future__ import annotations

from . import jsonio as json
import os

from ..errors import JailError
from ..model import Mount
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from ..model import JailSpec, Knobs

#: the runtime spec versions this runtime reads (config.md "ociVersion")
OCI_VERSION = "1.2.0"
HOSTNAME_MAX = 64

RLIMITS = {
    "RLIMIT_AS": 9, "RLIMIT_CORE": 4, "RLIMIT_CPU": 0, "RLIMIT_DATA": 2,
    "RLIMIT_FSIZE": 1, "RLIMIT_LOCKS": 10, "RLIMIT_MEMLOCK": 8, "RLIMIT_MSGQUEUE": 12,
    "RLIMIT_NICE": 13, "RLIMIT_NOFILE": 7, "RLIMIT_NPROC": 6, "RLIMIT_RSS": 5,
    "RLIMIT_RTPRIO": 14, "RLIMIT_RTTIME": 15, "RLIMIT_SIGPENDING": 11, "RLIMIT_STACK": 3,
}   # asm-generic/resource.h
NAMESPACES = ("pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time")
#: the namespaces a jail makes for itself; an absent entry would be the host's
REQUIRED_NAMESPACES = ("pid", "network", "mount", "ipc", "uts")
#: OCI namespace name -> JailSpec.join kind, for those a container may join (a pod's
#: sandbox's: never the host's, lifecycle/start._open_namespace)
JOINABLE = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}
#: why a mount namespace is never joined (README "linjail-oci")
MOUNT_JOIN = ("the jail's root, mounts and hooks would be set up in a tree that "
              "namespace's other processes own")
#: mount options that are the VFS's, not the file system's (mount(8))
FLAG_OPTIONS = frozenset({
    "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "bind", "rbind",
    "private", "rprivate", "slave", "rslave", "shared", "rshared", "unbindable",
    "runbindable", "atime", "noatime", "relatime", "norelatime", "strictatime",
    "nostrictatime", "diratime", "nodiratime", "sync", "async", "dirsync", "mand",
    "nomand", "lazytime", "nolazytime", "iversion", "noiversion", "defaults",
    "newinstance", "tmpcopyup", "z", "Z",
})
#: flags a jail's mount cannot honour (set-id files and devices of the host)
REFUSED_OPTIONS = frozenset({"suid", "dev"})
TMPFS_OPTIONS = ("size", "mode", "nr_inodes", "nr_blocks", "uid", "gid", "huge", "mpol")
PROPAGATIONS = ("private", "rprivate", "slave", "rslave", "shared", "rshared",
                "unbindable", "runbindable")
#: the devices every jail has in its /dev (rootfs._DEV_NODES, and ptmx)
JAIL_DEVICES = {"/dev/null": (1, 3), "/dev/zero": (1, 5), "/dev/full": (1, 7),
                "/dev/random": (1, 8), "/dev/urandom": (1, 9), "/dev/tty": (5, 0),
                "/dev/ptmx": (5, 2)}
#: sysctls of namespaces a container owns (runc's validator: the same list)
SYSCTL_IPC = ("kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
              "kernel.shmall", "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced")
HOOK_NAMES = ("prestart", "createRuntime", "createContainer", "startContainer",
              "poststart", "poststop")


class ConfigError(JailError):
    """A config.json that cannot become a jail; the message names the field."""

    def __init__(self, where: str, text: str) -> None:
        super().__init__(f"config.json: {where}: {text}" if where else f"config.json: {text}")


@record()
class Hook(Record):
    path: str
    args: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    timeout: int | None = None


@record()
class Caps(Record):
    """The five capability sets, as numbers (already within the jail's bounding set)."""
    bounding: frozenset[int] = frozenset()
    effective: frozenset[int] = frozenset()
    inheritable: frozenset[int] = frozenset()
    permitted: frozenset[int] = frozenset()
    ambient: frozenset[int] = frozenset()


@record()
class Process(Record):
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    uid: int = 0
    gid: int = 0
    groups: tuple[int, ...] = ()
    umask: int | None = None
    terminal: bool = False
    console_size: tuple[int, int] | None = None     # (height, width)
    caps: Caps | None = None                        # None: the jail's own set
    rlimits: tuple[tuple[int, int, int], ...] = ()  # (resource, soft, hard)
    no_new_privileges: bool = False
    oom_score_adj: int | None = None


@record()
class Container(Record):
    """A validated config.json."""
    bundle: str
    root: str                          # realpath of root.path
    readonly: bool
    hostname: str
    domainname: str
    process: Process | None
    mounts: tuple[Mount, ...]
    join: tuple[tuple[str, str], ...]  # (JailSpec.join kind, path)
    own_cgroupns: bool                 # linux.namespaces lists cgroup (it always is own)
    sysctl: tuple[tuple[str, str], ...]
    masked: tuple[str, ...]
    readonly_paths: tuple[str, ...]
    propagation: str
    cgroups_path: str
    resources: dict[str, Any]
    seccomp: dict[str, Any] | None
    hooks: dict[str, tuple[Hook, ...]]
    annotations: dict[str, str]
    oci_version: str
    #: linux.uidMappings, gidMappings of a user namespace: (container id,
    #: host id, size) lines; None: no user namespace
    idmap: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None = None


# --- reading ---------------------------------------------------------------------------

def load(bundle: str, knobs: Knobs | None = None) -> tuple[Container, dict[str, Any]]:
    """BUNDLE/config.json, parsed and validated (capabilities against the
    jail's bounding set under KNOBS); also the raw document."""
    path = os.path.join(bundle, "config.json")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as err:
        raise JailError(f"{path}: {os.strerror(err.errno or 0)}") from None
    try:
        doc = json.loads(data)
    except ValueError as err:
        raise ConfigError("", f"not valid JSON ({err})") from None
    if not isinstance(doc, dict):
        raise ConfigError("", "not a JSON object")
    return parse(doc, bundle, knobs), doc


def _get(obj: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str,
         default: Any = None) -> Any:
    value = obj.get(key, default)
    if value is None:
        return default
    if kind is int and isinstance(value, bool):
        raise ConfigError(f"{where}{key}", "not an integer")
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        names = {"str": "a string", "int": "an integer", "bool": "a boolean", "list": "a list",
                 "dict": "an object"}.get(names, names)
        raise ConfigError(f"{where}{key}", f"not {names}")
    return value


def _strings(obj: dict[str, Any], key: str, where: str) -> tuple[str, ...]:
    items = _get(obj, key, list, where, [])
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise ConfigError(f"{where}{key}[{i}]", "not a string")
    return tuple(items)


def _object(obj: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value: dict[str, Any] = _get(obj, key, dict, where, {})
    return value


def parse(doc: dict[str, Any], bundle: str, knobs: Knobs | None = None) -> Container:
    version = _get(doc, "ociVersion", str, "", "")
    if not version:
        raise ConfigError("ociVersion", "missing")
    if not version.startswith("1."):
        raise ConfigError("ociVersion", f"{version}: this runtime reads 1.x")
    root = _object(doc, "root", "")
    rpath = _get(root, "path", str, "root.", "")
    if not rpath:
        raise ConfigError("root.path", "missing")
    full = os.path.join(bundle, rpath)
    try:
        real = os.path.realpath(full, strict=True)
    except OSError as err:
        raise ConfigError("root.path", f"{full}: {os.strerror(err.errno or 2)}") from None
    if not os.path.isdir(real):
        raise ConfigError("root.path", f"{full}: Not a directory")
    hostname = _get(doc, "hostname", str, "", "")
    if len(hostname.encode()) > HOSTNAME_MAX:
        raise ConfigError("hostname", "longer than 64 bytes")
    domainname = _get(doc, "domainname", str, "", "")
    if len(domainname.encode()) > HOSTNAME_MAX:
        raise ConfigError("domainname", "longer than 64 bytes")
    linux = _object(doc, "linux", "")
    _refuse_unsupported(doc, linux)
    proc = doc.get("process")
    process = None
    if proc is not None:
        if not isinstance(proc, dict):
            raise ConfigError("process", "not an object")
        process = process_of(proc, knobs)
    join, own_cgroupns, userns = _namespaces(linux)
    idmap = _idmap(linux, userns, process)
    annotations = _object(doc, "annotations", "")
    for key, value in annotations.items():
        if not isinstance(value, str):
            raise ConfigError(f"annotations.{key}", "not a string")
    propagation = _get(linux, "rootfsPropagation", str, "linux.", "")
    if propagation and propagation not in PROPAGATIONS:
        raise ConfigError("linux.rootfsPropagation", f"{propagation}: not one of "
                          + ", ".join(PROPAGATIONS))
    seccomp = linux.get("seccomp")
    if seccomp is not None and not isinstance(seccomp, dict):
        raise ConfigError("linux.seccomp", "not an object")
    return Container(
        bundle=bundle, root=real, readonly=bool(_get(root, "readonly", bool, "root.", False)),
        hostname=hostname, domainname=domainname, process=process,
        mounts=_mounts(doc, bundle), join=join, own_cgroupns=own_cgroupns, idmap=idmap,
        sysctl=_sysctl(linux, join), masked=_paths(linux, "maskedPaths"),
        readonly_paths=_paths(linux, "readonlyPaths"), propagation=propagation,
        cgroups_path=_get(linux, "cgroupsPath", str, "linux.", ""),
        resources=_resources(linux), seccomp=seccomp, hooks=_hooks(doc),
        annotations=dict(annotations), oci_version=version)


def _refuse_unsupported(doc: dict[str, Any], linux: dict[str, Any]) -> None:
    """What no jail can be: one line each (the README's list)."""
    proc = doc.get("process") if isinstance(doc.get("process"), dict) else {}
    assert isinstance(proc, dict)
    for where, obj, key, why in (
            ("process.", proc, "apparmorProfile", "AppArmor is not used by linjail"),
            ("process.", proc, "selinuxLabel", "SELinux is not used by linjail"),
            ("linux.", linux, "mountLabel", "SELinux is not used by linjail"),
            ("linux.", linux, "intelRdt", "Intel RDT is not supported"),
            ("linux.", linux, "timeOffsets", "time namespaces are not supported"),
            ("process.", proc, "scheduler", "scheduling policies are not supported"),
            ("process.", proc, "ioPriority", "I/O priorities are not supported"),
            ("process.", proc, "execCPUAffinity", "CPU affinity is not supported")):
        if obj.get(key) not in (None, "", [], {}):
            raise ConfigError(f"{where}{key}", why)
    personality = linux.get("personality")
    if personality not in (None, {}) and (not isinstance(personality, dict) or
                                          personality.get("domain") != "LINUX" or
                                          personality.get("flags")):
        raise ConfigError("linux.personality", "only the LINUX domain without flags")
    devices = linux.get("devices") or []
    if not isinstance(devices, list):
        raise ConfigError("linux.devices", "not a list")
    for i, dev in enumerate(devices):
        where = f"linux.devices[{i}]"
        if not isinstance(dev, dict):
            raise ConfigError(where, "not an object")
        path = dev.get("path", "")
        want = (dev.get("major"), dev.get("minor"))
        if dev.get("type") != "c" or JAIL_DEVICES.get(path) != want:
            raise ConfigError(where, f"{path}: devices beyond the jail's /dev (null zero "
                              f"full random urandom tty ptmx) are refused")


def process_of(proc: dict[str, Any], knobs: Knobs | None) -> Process:
    """A process object (config.json's, or `exec --process`'s), validated."""
    args = _strings(proc, "args", "process.")
    if not args:
        raise ConfigError("process.args", "missing")
    env = _strings(proc, "env", "process.")
    for i, item in enumerate(env):
        if "=" not in item:
            raise ConfigError(f"process.env[{i}]", f"{item}: not NAME=VALUE")
    cwd = _get(proc, "cwd", str, "process.", "/")
    if not cwd.startswith("/"):
        raise ConfigError("process.cwd", f"{cwd}: not an absolute path")
    user = _object(proc, "user", "process.")
    uid = _get(user, "uid", int, "process.user.", 0)
    gid = _get(user, "gid", int, "process.user.", 0)
    groups = _get(user, "additionalGids", list, "process.user.", [])
    for i, g in enumerate([uid, gid, *groups]):
        if not isinstance(g, int) or isinstance(g, bool) or not 0 <= g < 0xFFFFFFFF:
            raise ConfigError("process.user", f"{g}: not a valid id")
    umask = _get(user, "umask", int, "process.user.", None)
    if umask is not None and not 0 <= umask <= 0o777:
        raise ConfigError("process.user.umask", f"{umask}: not a umask")
    size = _object(proc, "consoleSize", "process.")
    console = (int(size.get("height", 0)), int(size.get("width", 0))) if size else None
    oom = _get(proc, "oomScoreAdj", int, "process.", None)
    if oom is not None and not -1000 <= oom <= 1000:
        raise ConfigError("process.oomScoreAdj", f"{oom}: not in -1000..1000")
    return Process(
        args=args, env=env, cwd=cwd, uid=uid, gid=gid, groups=tuple(groups), umask=umask,
        terminal=bool(_get(proc, "terminal", bool, "process.", False)), console_size=console,
        caps=_caps(proc, knobs), rlimits=_rlimits(proc),
        no_new_privileges=bool(_get(proc, "noNewPrivileges", bool, "process.", False)),
        oom_score_adj=oom)


def _caps(proc: dict[str, Any], knobs: Knobs | None) -> Caps | None:
    from ..confine import caps
    from ..model import Knobs
    given = proc.get("capabilities")
    if given is None:
        return None
    if not isinstance(given, dict):
        raise ConfigError("process.capabilities", "not an object")
    keep = caps.keep_set(knobs or Knobs())
    sets: dict[str, frozenset[int]] = {}
    for kind in ("bounding", "effective", "inheritable", "permitted", "ambient"):
        nums = set()
        for name in _strings(given, kind, "process.capabilities."):
            short = name[4:] if name.startswith("CAP_") else ""
            if short not in caps.CAP:
                raise ConfigError(f"process.capabilities.{kind}", f"{name}: unknown capability")
            if short in caps.NEVER and short != "MKNOD":
                raise ConfigError(f"process.capabilities.{kind}",
                                  f"{name}: no jail holds it (privileged containers are "
                                  f"refused)")
            if caps.CAP[short] in keep:
                nums.add(caps.CAP[short])
        sets[kind] = frozenset(nums)
    return Caps(**sets)


def _rlimits(proc: dict[str, Any]) -> tuple[tuple[int, int, int], ...]:
    out = []
    seen = set()
    for i, item in enumerate(_get(proc, "rlimits", list, "process.", [])):
        where = f"process.rlimits[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(where, "not an object")
        kind = item.get("type")
        if kind not in RLIMITS:
            raise ConfigError(where, f"{kind}: unknown rlimit type")
        if kind in seen:
            raise ConfigError(where, f"{kind}: given twice")
        seen.add(kind)
        soft, hard = item.get("soft"), item.get("hard")
        for value in (soft, hard):
            if not isinstance(value, int) or isinstance(value, bool) or not \
                    0 <= value <= 0xFFFFFFFFFFFFFFFF:
                raise ConfigError(where, f"{kind}: soft and hard must be integers")
        assert isinstance(soft, int) and isinstance(hard, int)
        if soft > hard:
            raise ConfigError(where, f"{kind}: soft limit above the hard limit")
        out.append((RLIMITS[kind], soft, hard))
    return tuple(out)


def _namespaces(linux: dict[str, Any]) -> tuple[tuple[tuple[str, str], ...], bool, bool]:
    """(the joins, whether a cgroup namespace is listed, whether a new user
    namespace is)."""
    seen: dict[str, str] = {}
    for i, ns in enumerate(_get(linux, "namespaces", list, "linux.", [])):
        where = f"linux.namespaces[{i}]"
        if not isinstance(ns, dict):
            raise ConfigError(where, "not an object")
        kind, path = ns.get("type"), ns.get("path") or ""
        if kind not in NAMESPACES:
            raise ConfigError(where, f"{kind}: unknown namespace type")
        if kind in seen:
            raise ConfigError(where, f"{kind}: listed twice")
        if not isinstance(path, str):
            raise ConfigError(where, "path: not a string")
        if kind == "user" and path:
            raise ConfigError(where, f"user {path}: joining a user namespace is refused (its "
                              f"mappings are another's: host ids no jail claims, maybe 0)")
        if kind == "time":
            raise ConfigError(where, "time namespaces are not supported")
        if path and kind == "mount":
            raise ConfigError(where, f"mount {path}: joining a mount namespace is refused "
                              f"({MOUNT_JOIN})")
        if path and kind not in JOINABLE:
            raise ConfigError(where, f"{kind} {path}: joining a {kind} namespace is not "
                              f"supported (a jail makes its own)")
        if path and not path.startswith("/"):
            raise ConfigError(where, f"{kind} {path}: not an absolute path")
        seen[kind] = path
    for kind in REQUIRED_NAMESPACES:
        if kind not in seen:
            raise ConfigError("linux.namespaces", f"no {kind} namespace: the host's is "
                              f"never shared with a jail")
    if "user" in seen:
        for i, ns in enumerate(linux["namespaces"]):
            if ns.get("path") and ns.get("type") != "user":
                raise ConfigError(f"linux.namespaces[{i}]", f"{ns['type']} {ns['path']}: "
                                  f"joined with a user namespace of the container's own is "
                                  f"not supported (the namespace is not that user "
                                  f"namespace's: jailed root could not set it up)")
    join = tuple((JOINABLE[k], p) for k, p in seen.items() if p)
    return join, "cgroup" in seen, "user" in seen


#: the lines a uid_map or gid_map takes (user_namespaces(7), Linux 4.15 and later)
MAP_LINES = 340
ID_MAX = 0xFFFFFFFF          # (uid_t)-1 is no id


def _idmap(linux: dict[str, Any], userns: bool, process: Process | None) -> \
        tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None:
    """linux.uidMappings and gidMappings, for a new user namespace: exactly
    these lines are its maps (the owners of the bundle's files are the
    client's business, as with runc).  Host id 0 is never mapped: jailed
    root is not host root."""
    given = [linux.get(k) not in (None, []) for k in ("uidMappings", "gidMappings")]
    if not userns:
        for key, present in zip(("uidMappings", "gidMappings"), given):
            if present:
                raise ConfigError(f"linux.{key}", "given without a user namespace in "
                                  "linux.namespaces")
        return None
    for key, present in zip(("uidMappings", "gidMappings"), given):
        if not present:
            raise ConfigError(f"linux.{key}", "missing: a user namespace needs its mappings")
    maps = (_mapping(linux, "uidMappings", "uid"), _mapping(linux, "gidMappings", "gid"))
    if process is not None:
        check_mapped(process, maps)
    return maps


def check_mapped(process: Process, maps: tuple[tuple[tuple[int, int, int], ...], ...] |
                 tuple[list[tuple[int, int, int]], ...]) -> None:
    """PROCESS's uid, gid and additional gids are ids the (uid, gid) MAPS
    map (a process of a container with a user namespace: create, exec)."""
    wanted = [("process.user.uid", process.uid, 0), ("process.user.gid", process.gid, 1)]
    wanted += [(f"process.user.additionalGids[{i}]", g, 1)
               for i, g in enumerate(process.groups)]
    for where, value, which in wanted:
        if not any(c <= value < c + n for c, _, n in maps[which]):
            raise ConfigError(where, f"{value}: not mapped by linux."
                              f"{('uidMappings', 'gidMappings')[which]}")


def _mapping(linux: dict[str, Any], key: str, kind: str) -> tuple[tuple[int, int, int], ...]:
    items = _get(linux, key, list, "linux.", [])
    if len(items) > MAP_LINES:
        raise ConfigError(f"linux.{key}", f"{len(items)} lines: the kernel takes at most "
                          f"{MAP_LINES}")
    out: list[tuple[int, int, int]] = []
    for i, item in enumerate(items):
        where = f"linux.{key}[{i}]"
        if not isinstance(item, dict):
            raise ConfigError(where, "not an object")
        line = []
        for field in ("containerID", "hostID", "size"):
            value = item.get(field)
            if not isinstance(value, int) or isinstance(value, bool) or \
                    not 0 <= value < ID_MAX:
                raise ConfigError(f"{where}.{field}", "missing" if value is None else
                                  f"{value!r}: not an id (an integer 0..{ID_MAX - 1})")
            line.append(value)
        inner, host, size = line
        if size == 0:
            raise ConfigError(f"{where}.size", "0: a mapping maps at least one id")
        for name, first in (("containerID", inner), ("hostID", host)):
            if first + size > ID_MAX:
                raise ConfigError(where, f"{name} {first} + size {size}: beyond the last "
                                  f"{kind} ({ID_MAX - 1})")
        if host == 0:
            raise ConfigError(where, f"maps host {kind} 0: jailed root is never host root")
        for j, (c, h, n) in enumerate(out):
            if inner < c + n and c < inner + size:
                raise ConfigError(where, f"container {kind}s {inner}-{inner + size - 1} "
                                  f"overlap linux.{key}[{j}]")
            if host < h + n and h < host + size:
                raise ConfigError(where, f"host {kind}s {host}-{host + size - 1} overlap "
                                  f"linux.{key}[{j}]")
        out.append((inner, host, size))
    if not any(c == 0 for c, _, _ in out):
        raise ConfigError(f"linux.{key}", f"container {kind} 0 is not mapped (the jail's "
                          f"root: jexec enters as it)")
    return tuple(out)


def _mounts(doc: dict[str, Any], bundle: str) -> tuple[Mount, ...]:
    out = []
    for i, m in enumerate(_get(doc, "mounts", list, "", [])):
        where = f"mounts[{i}]"
        if not isinstance(m, dict):
            raise ConfigError(where, "not an object")
        out.append(_mount(m, where, bundle))
    return tuple(out)


def _mount(m: dict[str, Any], where: str, bundle: str) -> Mount:
    dest = _get(m, "destination", str, f"{where}.", "")
    if not dest:
        raise ConfigError(f"{where}.destination", "missing")
    if ".." in dest.split("/"):
        raise ConfigError(f"{where}.destination", f"{dest}: '..' is refused")
    dest = "/" + os.path.normpath(dest).lstrip("/")
    if m.get("uidMappings") or m.get("gidMappings"):
        raise ConfigError(where, "idmapped mounts are not supported")
    kind = _get(m, "type", str, f"{where}.", "")
    source = _get(m, "source", str, f"{where}.", "")
    options = _strings(m, "options", f"{where}.")
    flags = {o for o in options if o in FLAG_OPTIONS}
    data = [o for o in options if o not in FLAG_OPTIONS]
    refused = flags & REFUSED_OPTIONS
    if refused:
        raise ConfigError(where, f"{dest}: option {sorted(refused)[0]}: a jail's mounts are "
                          f"always nosuid and nodev")
    readonly = "ro" in flags
    attrs = tuple(a for a in ("noexec",) if a in flags) + ("create",)
    if "bind" in flags or "rbind" in flags or kind == "bind":
        # a bind takes no file system options (mount(2) ignores the data of
        # MS_BIND): runc passes them on, to the same effect
        if not source:
            raise ConfigError(f"{where}.source", "missing")
        src = source if source.startswith("/") else os.path.join(bundle, source)
        if "rbind" not in flags and "bind" in flags:
            attrs += ("bind",)
        return Mount("bind", src, dest, readonly, "", attrs)
    if kind in ("proc", "sysfs", "mqueue") or (kind == "tmpfs" and dest == "/dev"):
        if data and kind != "tmpfs":
            raise ConfigError(where, f"{dest}: option {data[0]}: unknown for {kind}")
        _check_data(data, TMPFS_OPTIONS, where, dest, kind)
        if kind == "proc" and dest != "/proc":
            raise ConfigError(where, f"{dest}: proc is mounted at /proc only")
        if kind == "sysfs" and dest != "/sys":
            raise ConfigError(where, f"{dest}: sysfs is mounted at /sys only")
        return Mount("dev" if kind == "tmpfs" else kind,
                     source if kind == "tmpfs" else "", dest, readonly, "", attrs)
    if kind == "devpts":
        from ..confine.rootfs import DEVPTS_OPTIONS
        _check_data(data, DEVPTS_OPTIONS, where, dest, kind)
        return Mount("devpts", "", dest, readonly, ",".join(data), attrs)
    if kind in ("cgroup", "cgroup2"):
        if data:
            raise ConfigError(where, f"{dest}: option {data[0]}: a jail's cgroup mount is "
                              f"its own cgroup2, read-only")
        return Mount("cgroup", "", dest, True, "", attrs)
    if kind == "tmpfs":
        _check_data(data, TMPFS_OPTIONS, where, dest, kind)
        return Mount("tmpfs", source or "tmpfs", dest, readonly, ",".join(data), attrs)
    raise ConfigError(where, f"{dest}: type {kind or '(none)'}: not supported in a jail "
                      f"(bind, tmpfs, proc, sysfs, devpts, mqueue, cgroup)")


def _check_data(data: list[str], known: tuple[str, ...], where: str, dest: str,
                kind: str) -> None:
    for opt in data:
        if opt.split("=", 1)[0] not in known:
            raise ConfigError(where, f"{dest}: option {opt}: unknown for {kind}")


def _sysctl(linux: dict[str, Any], join: tuple[tuple[str, str], ...]) -> \
        tuple[tuple[str, str], ...]:
    out = []
    for key, value in _object(linux, "sysctl", "linux.").items():
        if not isinstance(value, str):
            raise ConfigError(f"linux.sysctl.{key}", "not a string")
        if "/" in key or ".." in key or not key:
            raise ConfigError(f"linux.sysctl.{key}", "not a sysctl name")
        if not (key in SYSCTL_IPC or key.startswith("fs.mqueue.") or key.startswith("net.")):
            raise ConfigError(f"linux.sysctl.{key}", "not of a namespace the container "
                              "owns: it would change the host")
        out.append((key, value))
    return tuple(out)


def _paths(linux: dict[str, Any], key: str) -> tuple[str, ...]:
    out = _strings(linux, key, "linux.")
    for i, path in enumerate(out):
        if not path.startswith("/") or ".." in path.split("/"):
            raise ConfigError(f"linux.{key}[{i}]", f"{path}: not an absolute path")
    return out


def _resources(linux: dict[str, Any]) -> dict[str, Any]:
    res = _object(linux, "resources", "linux.")
    return dict(res)


def parse_hooks(doc: dict[str, Any]) -> dict[str, tuple[Hook, ...]]:
    """config.json's hooks (a stored copy's too, for poststart and poststop)."""
    return _hooks(doc)


def _hooks(doc: dict[str, Any]) -> dict[str, tuple[Hook, ...]]:
    hooks = _object(doc, "hooks", "")
    out: dict[str, tuple[Hook, ...]] = {}
    for name, items in hooks.items():
        if name not in HOOK_NAMES:
            raise ConfigError(f"hooks.{name}", "unknown hook")
        if not isinstance(items, list):
            raise ConfigError(f"hooks.{name}", "not a list")
        parsed = []
        for i, h in enumerate(items):
            where = f"hooks.{name}[{i}]"
            if not isinstance(h, dict):
                raise ConfigError(where, "not an object")
            path = _get(h, "path", str, f"{where}.", "")
            if not path.startswith("/"):
                raise ConfigError(f"{where}.path", f"{path}: not an absolute path")
            timeout = _get(h, "timeout", int, f"{where}.", None)
            if timeout is not None and timeout <= 0:
                raise ConfigError(f"{where}.timeout", "must be positive")
            parsed.append(Hook(path, _strings(h, "args", f"{where}."),
                               _strings(h, "env", f"{where}."), timeout))
        out[name] = tuple(parsed)
    return out


# --- the jail ----------------------------------------------------------------------------

def to_spec(c: Container, name: str, knobs: Knobs) -> JailSpec:
    """The jail a container is, through the one spec builder (config/spec.py).

    No address: the jail's network is its own namespace with a loopback, or
    the namespace the config names (podman's, CNI's).  /dev, /proc and /sys
    come from the config's mounts, in the config's order; a config without
    a /dev mount gets the jail's own /dev.  The container's process, user
    and environment are oci/init.py's, not the spec's: it replaces the
    reaper."""
    from ..config.spec import SpecInput, build
    has_dev = any(m.target == "/dev" for m in c.mounts)
    if c.idmap is not None:
        knobs = knobs.replace(unprivileged_root=1)
    spec = build(SpecInput(path=c.root, hostname=c.hostname or name[:HOSTNAME_MAX],
                           command=c.process.args if c.process else (), name=name,
                           devfs=not has_dev, procfs=False, sysfs=False, mounts=c.mounts,
                           join=c.join, unique_name=True),
                 "jail", defaults=knobs)
    return spec if c.idmap is None else spec.replace(idmap=c.idmap)
