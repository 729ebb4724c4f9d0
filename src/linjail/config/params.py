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

from ..record import Record, record


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
