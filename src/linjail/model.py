"""What a jail is, independent of how it is made: frozen, typed specs."""
from __future__ import annotations

from .record import Record, record

#: the seed's knobs, in the seed's order, with the seed's defaults
KNOB_DEFAULTS: dict[str, int] = {
    "set_hostname_allowed": 1,
    "socket_unixiproute_only": 1,
    "sysvipc_allowed": 0,
    "enforce_statfs": 2,
    "allow_raw_sockets": 0,
    "chflags_allowed": 0,
    # DragonFly's later knobs (kern_jail.c); accepted, with Linux's behaviour
    # documented in jailctl(8): no effect on confinement (see jailctl_sysctl)
    "allow_listen_override": 0,
    "vfs_mount_nullfs": 0,
    "vfs_mount_tmpfs": 0,
    # linjail's own (issue 11): jailed root is an unprivileged host uid of
    # the jail's own range, through a user namespace (confine/userns.py)
    "unprivileged_root": 1,
}
#: allowed values of each knob
KNOB_VALUES: dict[str, tuple[int, ...]] = {
    name: ((0, 1, 2) if name == "enforce_statfs" else (0, 1)) for name in KNOB_DEFAULTS
}


@record()
class Knobs(Record):
    set_hostname_allowed: int = 1
    socket_unixiproute_only: int = 1
    sysvipc_allowed: int = 0
    enforce_statfs: int = 2
    allow_raw_sockets: int = 0
    chflags_allowed: int = 0
    allow_listen_override: int = 0
    vfs_mount_nullfs: int = 0
    vfs_mount_tmpfs: int = 0
    unprivileged_root: int = 1

    @classmethod
    def from_dict(cls, values: dict[str, int]) -> "Knobs":
        return cls(**{k: int(v) for k, v in values.items() if k in KNOB_DEFAULTS})


TYPE_CHECKING = False   # mypy reads this as typing.TYPE_CHECKING; no `import typing`
if TYPE_CHECKING:       # ipaddress itself is imported when an ip-list is parsed
    import ipaddress
    from .config.rctl import Rule
    IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@record()
class User(Record):
    """A resolved user: who the command runs as."""
    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]
    home: str
    shell: str


@record()
class Mount(Record):
    """An extra mount inside the jail (rc.conf fstab, thin-jail layers).

    kind is "bind" or "tmpfs" (rc.conf's fstab), or one of the kernel file
    systems an OCI config lists: "proc", "sysfs", "dev" (the jail's own /dev
    without its submounts), "devpts", "mqueue", "cgroup" (the jail's cgroup2
    namespace view, read-only).  source is a host path for binds, the
    file system's source name otherwise ("" for the kind); target is a path
    inside the jail, always resolved inside the jail root.
    """
    kind: str
    source: str
    target: str
    readonly: bool = False
    options: str = ""               # the file system's own options (mount(2)'s data)
    #: mount flags beyond readonly: "noexec", "bind" (this mount only, not
    #: the mounts below the source: a bind rather than an rbind), "create"
    #: (make a missing target, as an OCI runtime does)
    attrs: tuple[str, ...] = ()


@record()
class JailSpec(Record):
    """Everything `jail` needs to create a jail, validated."""
    path: str                       # realpath of the root
    hostname: str
    ips: tuple[IPAddress, ...]      # in the order given
    command: tuple[str, ...]
    name: str = ""                  # rc.conf name, if any
    login: bool = False             # -l
    host_user: User | None = None   # -u, resolved on the host
    jail_user: str | None = None    # -U, resolved inside the jail
    print_jid: bool = False         # -i
    knobs: Knobs = Knobs()
    devfs: bool = True
    procfs: bool = True
    sysfs: bool = True              # /sys read-only when the root has sys/
    mounts: tuple[Mount, ...] = ()
    interface: str | None = None    # rc.conf jail_NAME_interface
    overlay: tuple[str, str] | None = None  # thin jail: (lower, upper-and-work dir)
    console_log: str | None = None  # rc.conf: command output goes here
    #: the rctl rules of this jail, found at its start (confine/limits.py)
    limits: tuple[Rule, ...] = ()
    jid: int = 0                    # FreeBSD's jid parameter: this JID or fail (0: any)
    persist: bool = False           # FreeBSD's persist: the jail stays without processes
    unique_name: bool = False       # FreeBSD's name (jail -c name=, -n): no live jail has it
    #: namespaces joined by path instead of made new: ("net" | "ipc" | "uts", path)
    #: (an OCI config's linux.namespaces[].path; podman passes the netns it made)
    join: tuple[tuple[str, str], ...] = ()
    #: v1 cgroup directories the jail's processes belong to besides its own
    #: (an OCI config's linux.cgroupsPath): in the record from its first
    #: write, so no `jexec` ever misses them
    v1dirs: tuple[str, ...] = ()
    #: an OCI config's linux.uidMappings and gidMappings, (jail id, host id,
    #: count) each: the jail's user namespace maps exactly these, its root
    #: and binds are not idmapped (confine/userns.py); None: the knob's way
    idmap: tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]] | None = None


def parse_ip_list(text: str) -> tuple[IPAddress, ...]:
    """DragonFly's ip-list: comma separated, empty elements skipped.

    Raises ValueError(element) on the first bad element.
    """
    out: list[IPAddress] = []
    for elem in text.split(","):
        if elem == "":
            continue
        out.append(parse_ip(elem))
    return tuple(out)


def parse_ip(elem: str) -> IPAddress:
    import ipaddress
    if ":" in elem:
        try:
            if "%" in elem or "/" in elem:
                raise ValueError
            return ipaddress.IPv6Address(elem)
        except ValueError:
            raise ValueError(elem) from None
    parts = elem.split(".")
    # strict dotted quad: four decimal fields, no leading '+', no spaces
    if len(parts) != 4 or not all(p.isdigit() and p.isascii() and 0 < len(p) <= 3
                                  for p in parts):
        raise ValueError(elem)
    try:
        return ipaddress.IPv4Address(elem)
    except ValueError:
        raise ValueError(elem) from None
