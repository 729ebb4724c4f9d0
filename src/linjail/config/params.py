"""FreeBSD's jail parameters on linjail: one table (STYLE 7).

Each parameter is declared once here; `jail -c/-m`, jail.conf(5), `jls` and
the man pages follow it.  Three kinds of names besides the table:
  - refused: the parameter exists on FreeBSD and cannot hold here at all
    (securelevel, vnet): one line saying why;
  - forced off: FreeBSD permissions linjail never grants (allow.mount ...):
    false is accepted (it is what happens), true is refused;
  - anything else is FreeBSD's `unknown parameter: NAME` (allow.mount.zfs,
    zfs.dataset: parameters of kernel modules Linux does not have).
"""
from __future__ import annotations

from ..errors import JailError
from ..model import Mount
from ..record import Record, record
from .spec import SpecError, check_hostname

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..model import IPAddress


@record()
class ParamDef(Record):
    name: str
    kind: str           # bool int str list jailsys cmd
    kernel: bool        # a jail parameter (jls shows it) rather than a pseudo-parameter
    help: str
    knob: str = ""      # the seed's knob it is (model.Knobs field)
    reverse: bool = False   # true means knob 0 (allow.socket_af)
    readonly: bool = False  # jls shows it, jail -c/-m refuse it
    default: str = ""   # what jls shows when unset


def _p(name: str, kind: str, kernel: bool, help: str, **kw: object) -> ParamDef:
    return ParamDef(name, kind, kernel, help, **kw)  # type: ignore[arg-type]


#: the jail parameters (kernel: True) and pseudo-parameters, jail(8)'s order
PARAMS: tuple[ParamDef, ...] = (
    _p("jid", "int", True, "the jail identifier (assigned when not given)"),
    _p("name", "str", True, "the jail's name (default: its jid); unique among running jails"),
    _p("path", "str", True, "the directory which is to be the jail's root"),
    _p("ip4.addr", "list", True, "IPv4 addresses of the jail"),
    _p("ip4", "jailsys", True, "new (with ip4.addr) or disable; inherit is refused",
       default="new"),
    _p("ip6.addr", "list", True, "IPv6 addresses of the jail"),
    _p("ip6", "jailsys", True, "new (with ip6.addr) or disable; inherit is refused",
       default="new"),
    _p("host.hostname", "str", True, "the jail's hostname"),
    _p("enforce_statfs", "int", True, "0, 1 or 2 (jail.enforce_statfs; all act as 1)",
       knob="enforce_statfs"),
    _p("persist", "bool", True, "the jail exists without any process", default="false"),
    _p("children.max", "int", True, "child jails allowed: 0 only (no nested jails)",
       default="0"),
    _p("children.cur", "int", True, "child jails: always 0", readonly=True, default="0"),
    _p("devfs_ruleset", "int", True, "0 or 4: linjail's /dev is always devfsrules_jail",
       default="0"),
    _p("dying", "bool", True, "always false: a removed jail is gone", readonly=True,
       default="false"),
    _p("cpuset.id", "int", True, "the id of the jail's cgroup", readonly=True),
    _p("parent", "int", True, "always 0 (top-level jail)", readonly=True, default="0"),
    _p("allow.set_hostname", "bool", True, "jail.set_hostname_allowed",
       knob="set_hostname_allowed"),
    _p("allow.sysvipc", "bool", True, "jail.sysvipc_allowed", knob="sysvipc_allowed"),
    _p("allow.raw_sockets", "bool", True, "jail.allow_raw_sockets", knob="allow_raw_sockets"),
    _p("allow.chflags", "bool", True, "jail.chflags_allowed", knob="chflags_allowed"),
    _p("allow.socket_af", "bool", True, "not jail.socket_unixiproute_only",
       knob="socket_unixiproute_only", reverse=True),
    _p("allow.reserved_ports", "bool", True, "true only: jailed root binds ports < 1024",
       default="true"),
    # linjail's own (issue 11): no FreeBSD counterpart
    _p("unprivileged_root", "bool", True,
       "jailed root is a uid of the jail's own range (jail.unprivileged_root)",
       knob="unprivileged_root"),
    _p("unprivileged_root.uid", "int", True,
       "the host uid (and gid) of jail uid 0, 0 without a user namespace", readonly=True),
    _p("sysvmsg", "jailsys", True, "new or disable (jail.sysvipc_allowed)",
       knob="sysvipc_allowed"),
    _p("sysvsem", "jailsys", True, "new or disable (jail.sysvipc_allowed)",
       knob="sysvipc_allowed"),
    _p("sysvshm", "jailsys", True, "new or disable (jail.sysvipc_allowed)",
       knob="sysvipc_allowed"),
    # pseudo-parameters: jail(8)'s own
    _p("exec.prepare", "cmd", False, "host commands before anything else"),
    _p("exec.prestart", "cmd", False, "host commands before the jail is created"),
    _p("exec.created", "cmd", False, "host commands right after the jail is created"),
    _p("exec.start", "cmd", False, "commands in the jail when it is created"),
    _p("command", "cmd", False, "the command to run in the jail (command line: argv)"),
    _p("exec.poststart", "cmd", False, "host commands after exec.start"),
    _p("exec.prestop", "cmd", False, "host commands before the jail is removed"),
    _p("exec.stop", "cmd", False, "commands in the jail before it is removed"),
    _p("exec.poststop", "cmd", False, "host commands after the jail is removed"),
    _p("exec.release", "cmd", False, "host commands after everything else"),
    _p("exec.clean", "bool", False, "commands get a clean environment"),
    _p("exec.jail_user", "str", False, "user commands in the jail run as"),
    _p("exec.system_jail_user", "bool", False, "look exec.jail_user up on the host"),
    _p("exec.system_user", "str", False, "user host commands run as"),
    _p("exec.timeout", "int", False, "seconds a command may take"),
    _p("exec.consolelog", "str", False, "file receiving the output of commands in the jail"),
    _p("stop.timeout", "int", False, "seconds between SIGTERM and removal (default 10)"),
    _p("interface", "str", False, "host interface whose link the addresses appear on"),
    _p("ip_hostname", "bool", False, "add the addresses host.hostname resolves to"),
    _p("mount", "list", False, "an fstab(5) line mounted in the jail"),
    _p("mount.fstab", "list", False, "an fstab(5) file mounted in the jail"),
    _p("mount.devfs", "bool", False, "mount the jail's minimal /dev"),
    _p("mount.fdescfs", "bool", False, "/dev/fd (part of linjail's /dev)"),
    _p("mount.procfs", "bool", False, "mount the jail's /proc"),
    _p("allow.dying", "bool", False, "no effect: linjail has no dying jails"),
    _p("depend", "list", False, "jails this jail needs running first"),
)

BY_NAME: dict[str, ParamDef] = {p.name: p for p in PARAMS}

#: FreeBSD parameters that cannot hold on Linux at all
REFUSED: dict[str, str] = {
    "securelevel": "Linux has no securelevel; not supported",
    "vnet": "not supported: a jail's network is linjail's own veth (see jail(8))",
    "vnet.interface": "not supported: a jail's network is linjail's own veth (see jail(8))",
    "exec.fib": "Linux has no FIBs; not supported",
}

#: FreeBSD permissions linjail never grants: false holds, true is refused
FORCED_OFF: frozenset[str] = frozenset({
    "allow.mount", "allow.mlock", "allow.quotas", "allow.read_msgbuf", "allow.vmm",
    "allow.nfsd", "allow.settime", "allow.adjtime", "allow.routing", "allow.setaudit",
    # DragonFly's jail.vfs_mount_nullfs/tmpfs are accepted by jailctl sysctl, but
    # mounts from inside a jail stay denied either way (jailctl(8))
    "allow.mount.nullfs", "allow.mount.tmpfs",
})


def base_name(name: str) -> str:
    """The table's spelling of NAME: "nopersist" -> "persist",
    "allow.noraw_sockets" -> "allow.raw_sockets" (config.c equalopts)."""
    if name in BY_NAME or name in REFUSED or name in FORCED_OFF:
        return name
    head, dot, last = name.rpartition(".")
    if last.startswith("no"):
        plain = f"{head}{dot}{last[2:]}"
        if plain in BY_NAME or plain in FORCED_OFF or plain in REFUSED:
            return plain
    return name


def known_name(name: str) -> bool:
    """A name FreeBSD's jail(8) and linjail both know as a parameter."""
    base = base_name(name)
    return base in BY_NAME or base in REFUSED or base in FORCED_OFF


def negated(name: str) -> bool:
    """Written with the "no" prefix (nopersist, allow.noset_hostname)."""
    return base_name(name) != name


# -- parameters -> a jail description ---------------------------------------------

#: jail(8)'s exec.* commands, in the order a start or a stop runs them
HOOKS = ("exec.prepare", "exec.prestart", "exec.created", "exec.start", "command",
         "exec.poststart", "exec.prestop", "exec.stop", "exec.poststop", "exec.release")
JID_MAX = 999999
DEFAULT_STOP_TIMEOUT = 10   # jail(8): stop.timeout


@record()
class FbJail(Record):
    """One jail as FreeBSD's parameters describe it, validated.

    Unset values keep their defaults; `given` lists the parameters (table
    names) that were set, which is what `jail -m` changes."""
    label: str                          # the jail.conf name, "" on the command line
    given: frozenset[str]
    jid: int = 0
    name: str = ""
    path: str = ""
    hostname: str = ""
    ips: tuple[IPAddress, ...] = ()
    ip4_disabled: bool = False
    ip6_disabled: bool = False
    persist: bool = False
    knobs: tuple[tuple[str, int], ...] = ()      # per-jail knob values (seed names)
    devfs: bool = False
    procfs: bool = False
    devfs_ruleset: int = 0
    mounts: tuple[Mount, ...] = ()
    interface: str = ""
    hooks: tuple[tuple[str, tuple[str, ...]], ...] = ()
    clean: bool = False
    jail_user: str = ""
    system_jail_user: bool = False
    system_user: str = ""
    exec_timeout: int = 0
    consolelog: str = ""
    stop_timeout: int = DEFAULT_STOP_TIMEOUT
    depend: tuple[str, ...] = ()
    pairs: tuple[tuple[str, tuple[str, ...]], ...] = ()   # as given, for -J and -v
    command_argv: bool = False          # `command` is one argv (the command line's)

    def commands(self, hook: str) -> tuple[str, ...]:
        for name, values in self.hooks:
            if name == hook:
                return values
        return ()


class ParamError(JailError):
    pass


def _bool(name: str, values: list[str], label: str) -> bool:
    """config.c bool_param and check_intparams: the "no" prefix flips it."""
    value = True
    if values:
        last = values[-1]
        if last.lower() == "true":
            value = True
        elif last.lower() == "false":
            value = False
        else:
            number = _strtol(last)
            if number is None:
                raise _error(label, f'{name}: unknown boolean value "{last}"')
            value = number != 0
    return value != negated(name)


def _strtol(text: str) -> int | None:
    t = text.strip()
    sign = 1
    if t[:1] in "+-" and t[:1]:
        sign, t = (-1 if t[0] == "-" else 1), t[1:]
    if not t or not (t.isascii() and t.isdigit()) or len(t.lstrip("0")) > 19:
        return None      # beyond any long (int() refuses 4300 digits and more)
    return sign * int(t.lstrip("0") or "0")


def _int(name: str, values: list[str], label: str) -> int:
    last = values[-1] if values else ""
    number = _strtol(last)
    if number is None:
        raise _error(label, f'{name}: non-integer value "{last}"')
    return number


def _error(label: str, message: str) -> ParamError:
    return ParamError(f"{label}: {message}" if label else message)


def _address(name: str, text: str, label: str) -> tuple[str, IPAddress]:
    """ip4.addr / ip6.addr element: [interface|]address[/mask] [ifconfig params]."""
    from ..model import parse_ip
    iface, bar, rest = text.partition("|")
    if not bar:
        iface, rest = "", text
    addr = rest.split(" ", 1)[0].split("/", 1)[0]
    family = "IPv4" if name == "ip4.addr" else "IPv6"
    try:
        ip = parse_ip(addr)
    except ValueError:
        ip = None
    if ip is None or (ip.version == 4) != (family == "IPv4"):
        raise _error(label, f"{name}: not an {family} address: {addr}")
    return iface, ip


def build(pairs: list[tuple[str, list[str]]], label: str = "", *,
          command_argv: bool = False, host_hostname: str | None = None) -> FbJail:
    """Validate PAIRS (parameter as written, values) into an FbJail.

    LABEL names the jail in messages (jail.conf's name); COMMAND_ARGV: the
    `command` values are one argv (the command line's command=...), not
    command lines.  Mount tables are read here; nothing is changed."""
    given: set[str] = set()
    out: dict[str, object] = {"label": label, "command_argv": command_argv}
    knobs: dict[str, int] = {}
    hooks: dict[str, tuple[str, ...]] = {}
    ips: list[IPAddress] = []
    interfaces: set[str] = set()
    fstabs: list[str] = []
    mount_lines: list[str] = []
    jailsys: dict[str, str] = {}
    seen_addr = {"ip4.addr": False, "ip6.addr": False}
    for written, values in pairs:
        name = base_name(written)
        if name in REFUSED:
            raise _error(label, f"{name}: {REFUSED[name]}")
        if name in FORCED_OFF:
            if _bool(written, values, label):
                raise _error(label, f"{name}: linjail never grants this permission "
                                    f"(jailed root cannot do that here)")
            continue
        pdef = BY_NAME.get(name)
        if pdef is None:
            raise _error(label, f"unknown parameter: {written}")
        if pdef.readonly:
            raise _error(label, f"{name}: read-only parameter")
        if pdef.kind != "bool" and negated(written):
            raise _error(label, f"unknown parameter: {written}")
        given.add(name)
        kind = pdef.kind
        if kind == "bool":
            value = _bool(written, values, label)
            if pdef.knob:
                knobs[pdef.knob] = int(value != pdef.reverse)
            elif name == "persist":
                out["persist"] = value
            elif name == "allow.reserved_ports":
                if not value:
                    raise _error(label, "allow.reserved_ports: cannot be false: jailed root "
                                        "always binds ports below 1024 (jail(8))")
            elif name == "mount.devfs":
                out["devfs"] = value
            elif name == "mount.procfs":
                out["procfs"] = value
            elif name == "exec.clean":
                out["clean"] = value
            elif name == "exec.system_jail_user":
                out["system_jail_user"] = value
            elif name == "ip_hostname":
                out["ip_hostname"] = value
            continue
        if kind == "int":
            if not values:
                raise _error(label, f'{name}: non-integer value ""')
            number = _int(name, values, label)
            if name == "jid":
                if not 0 < number <= JID_MAX:
                    raise _error(label, f"jid: {number}: out of range (1 to {JID_MAX})")
                out["jid"] = number
            elif name == "enforce_statfs":
                if number not in (0, 1, 2):
                    raise _error(label, f"enforce_statfs: {number}: must be 0, 1 or 2")
                knobs["enforce_statfs"] = number
            elif name == "children.max":
                if number != 0:
                    raise _error(label, "children.max: 0 only: a jail cannot create "
                                        "jails on linjail")
            elif name == "devfs_ruleset":
                if number not in (0, 4):
                    raise _error(label, f"devfs_ruleset: {number}: linjail's /dev is "
                                        f"always devfsrules_jail (ruleset 4)")
                out["devfs_ruleset"] = number
            elif name == "exec.timeout":
                out["exec_timeout"] = number
            elif name == "stop.timeout":
                out["stop_timeout"] = number
            continue
        if kind == "jailsys":
            word = values[-1] if values else ""
            if word not in ("new", "disable", "inherit"):
                raise _error(label, f'{name}: unknown value "{word}"')
            if word == "inherit":
                why = ("each jail has its own SysV IPC namespace" if name.startswith("sysv")
                       else "a jail never uses the host's own addresses")
                raise _error(label, f"{name}: inherit cannot hold here: {why} (use new "
                                    f"or disable)")
            jailsys[name] = word
            continue
        if kind == "cmd":
            if name == "command" and command_argv:
                hooks[name] = tuple(values)
            else:
                hooks[name] = tuple(v for v in values if v)
            continue
        if kind == "list":
            if name in seen_addr:
                seen_addr[name] = True
                for text in values:
                    if not text:
                        continue        # ip6.addr= : none (libjail imports no element)
                    iface, ip = _address(name, text, label)
                    if iface:
                        interfaces.add(iface)
                    ips.append(ip)
            elif name == "mount.fstab":
                fstabs.extend(v for v in values if v)
            elif name == "mount":
                mount_lines.extend(v for v in values if v)
            elif name == "depend":
                out["depend"] = tuple(values)
            continue
        # kind == "str": the last value counts (config.c string_param)
        text = values[-1] if values else ""
        if name == "name":
            if "." in text:
                raise _error(label, f"name: {text}: a name with a '.' names a child jail; "
                                    f"linjail has no nested jails")
            if text.isdigit() and text != str(out.get("jid", "")):
                raise _error(label, f"name: {text}: a jail's name cannot be a number "
                                    f"other than its jid")
            out["name"] = text
        elif name == "path":
            out["path"] = text
        elif name == "host.hostname":
            try:
                check_hostname(text, "freebsd")
            except SpecError as err:
                raise _error(label, err.message) from None
            out["hostname"] = text
        elif name == "interface":
            interfaces.add(text)
        elif name == "exec.jail_user":
            out["jail_user"] = text
        elif name == "exec.system_user":
            out["system_user"] = text
        elif name == "exec.consolelog":
            if text and not text.startswith("/"):
                raise _error(label, f"exec.consolelog: {text}: not an absolute pathname")
            out["consolelog"] = text

    # sysvmsg/sysvsem/sysvshm are one knob here
    if jailsys:
        sysv = {jailsys[k] for k in ("sysvmsg", "sysvsem", "sysvshm") if k in jailsys}
        if len(sysv) > 1:
            raise _error(label, "sysvmsg, sysvsem and sysvshm: one setting for all three "
                                "on linjail (new or disable)")
        if sysv:
            knobs["sysvipc_allowed"] = int(sysv.pop() == "new")
        for fam, key in (("ip4", "ip4_disabled"), ("ip6", "ip6_disabled")):
            if jailsys.get(fam) == "disable":
                if seen_addr[f"{fam}.addr"] and any(
                        ip.version == (4 if fam == "ip4" else 6) for ip in ips):
                    raise _error(label, f"{fam}.addr: {fam} is disabled")
                out[key] = True
    if len(interfaces) > 1:
        raise _error(label, "interface: one interface per jail on linjail "
                            f"({', '.join(sorted(interfaces))})")
    if interfaces:
        out["interface"] = interfaces.pop()
    if out.get("ip_hostname"):
        ips.extend(_resolve_hostname(str(out.get("hostname") or host_hostname or ""), label))
    seen: list[IPAddress] = []
    for ip in ips:
        if ip not in seen:
            seen.append(ip)
    out.pop("ip_hostname", None)
    path = str(out.get("path", ""))
    out["mounts"] = _mounts(fstabs, mount_lines, path, label)
    return FbJail(given=frozenset(given), ips=tuple(seen), knobs=tuple(sorted(knobs.items())),
                  hooks=tuple(hooks.items()),
                  pairs=tuple((n, tuple(v)) for n, v in pairs), **out)  # type: ignore[arg-type]


def _resolve_hostname(hostname: str, label: str) -> list[IPAddress]:
    """ip_hostname / -h: every address host.hostname resolves to."""
    import socket
    from ..model import parse_ip
    if not hostname:
        return []
    try:
        infos = socket.getaddrinfo(hostname, None, type=socket.SOCK_STREAM)
    except socket.gaierror as err:
        raise _error(label, f"host.hostname {hostname}: {err.strerror}") from None
    out: list[IPAddress] = []
    for info in infos:
        out.append(parse_ip(str(info[4][0]).split("%", 1)[0]))
    return out


def _mounts(fstabs: list[str], lines: list[str], path: str, label: str) -> tuple[Mount, ...]:
    """mount.fstab files and mount lines, as config/fstab.py reads them
    (bind mounts and tmpfs, targets inside the jail)."""
    if not fstabs and not lines:
        return ()
    import os
    from . import fstab
    roots = (path, os.path.realpath(path)) if path else ()
    entries: list[fstab.FstabEntry] = []
    for f in fstabs:
        try:
            entries.extend(fstab.read(f))
        except fstab.FstabError as err:
            text = str(err)
            raise _error(label, f"mount.fstab: {text}") from None
    for line in lines:
        if len(line.split()) < 3:
            raise _error(label, f"mount: {line}: missing information")
        if len(line.split()) == 3:
            line += " rw"
        try:
            entries.extend(fstab.parse(line, "mount"))
        except fstab.FstabError as err:
            raise _error(label, str(err)) from None
    return fstab.to_mounts(entries, roots)
