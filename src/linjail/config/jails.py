"""The rc.conf jail variables (SPEC §8): one table, defaults, resolution.

Each variable is declared once here (STYLE 7); the resolver, `jailctl` and
the man page rc.conf.linjail(5) follow this table.  Resolution follows
DragonFly's rc.d/jail `init_variables`: `jail_<name>_X`, else the global
`jail_X`, else the built-in default, an empty value counting as unset.
Nothing here touches the system; the JailSpec is checked by config/spec.py.
"""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Callable, Mapping

from linjail.config.rcconf import CONFIG_EXIT, is_name
from linjail.config import spec
from linjail.config.spec import JailOptions, SpecError, SpecInput, jail_options
from linjail.errors import JailError
from linjail.model import KNOB_DEFAULTS, JailSpec, Knobs, Mount

Warn = Callable[[str], None]

DEFAULT_EXEC_START = "/bin/sh /etc/rc"
DEFAULT_EXEC_STOP = "/bin/sh /etc/rc.shutdown"
DEFAULT_FLAGS = "-l -U root"
#: FreeBSD's exec.timeout: seconds exec_start and exec_stop may run
DEFAULT_EXEC_TIMEOUT = 60


@dataclass(frozen=True)
class Var:
    """One rc.conf variable: NAME is the full name, `<name>` the jail's."""
    name: str
    default: str
    kind: str          # "bool", "list", "str", "argv", "flags", "knob", "seconds", "required"
    help: str


@dataclass(frozen=True)
class DefaultKnob:
    """A `jail_default_*` variable: sets a global knob at `start`."""
    var: str           # rc.conf variable
    knob: str          # model.Knobs field (the seed's name)
    default: str
    word: str          # what `start` prints when it changes it (DragonFly's words)


#: global variables, in rc.conf(5) order
GLOBAL_VARS: tuple[Var, ...] = (
    Var("jail_enable", "NO", "bool",
        "start/stop do nothing unless jails are named on the command line or --force is given"),
    Var("jail_list", "", "list", "space-separated names of the jails to start and stop"),
    Var("jail_conf", "/etc/jail.conf", "str",
        "FreeBSD's jail.conf(5): its jails start and stop beside the legacy variables"),
    Var("jail_reverse_stop", "NO", "bool", "stop the jails in the reverse order (FreeBSD)"),
    Var("rctl_enable", "NO", "bool",
        "`start` first adds the rules of rctl_rules, as FreeBSD's rc.d/rctl (rctl(8))"),
    Var("rctl_rules", "/etc/rctl.conf", "str", "the rctl rules file: one rule per line, # comments"),
)

#: `jail_default_*`: the global knobs `start` sets (SPEC §8, DragonFly's order)
DEFAULT_KNOBS: tuple[DefaultKnob, ...] = (
    DefaultKnob("jail_default_set_hostname_allow", "set_hostname_allowed", "YES",
                "set_hostname_allow"),
    DefaultKnob("jail_default_socket_unixiproute_only", "socket_unixiproute_only", "YES",
                "unixiproute_only"),
    DefaultKnob("jail_default_sysvipc_allow", "sysvipc_allowed", "NO", "sysvipc_allow"),
    DefaultKnob("jail_default_chflags_allow", "chflags_allowed", "NO", "chflags_allow"),
    DefaultKnob("jail_default_raw_sockets_allow", "allow_raw_sockets", "NO",
                "raw_sockets_allow"),
    DefaultKnob("jail_default_allow_listen_override", "allow_listen_override", "NO",
                "allow_listen_override"),
    DefaultKnob("jail_default_vfs_mount_nullfs", "vfs_mount_nullfs", "NO", "vfs_mount_nullfs"),
    DefaultKnob("jail_default_vfs_mount_tmpfs", "vfs_mount_tmpfs", "NO", "vfs_mount_tmpfs"),
)

#: per-jail variables `jail_<name>_SUFFIX`; all but the required three also
#: read the global `jail_SUFFIX` as their default (DragonFly rc.d/jail)
JAIL_VARS: tuple[Var, ...] = (
    Var("rootdir", "", "required", "the jail's root directory"),
    Var("hostname", "", "required", "the jail's hostname"),
    Var("ip", "", "required", "the jail's addresses, comma separated (jail(8) ip-list)"),
    Var("exec_start", DEFAULT_EXEC_START, "argv", "command run in the jail at start, waited for"),
    Var("exec_stop", DEFAULT_EXEC_STOP, "argv",
        "command run in the jail at stop (default only if exec_start is left at its default)"),
    Var("exec", "", "argv", "legacy: sets exec_start and clears exec_stop"),
    Var("exec_timeout", str(DEFAULT_EXEC_TIMEOUT), "seconds",
        "seconds exec_start and exec_stop may run (0: no limit), FreeBSD's exec.timeout"),
    Var("interface", "", "str", "host interface whose link the jail's addresses appear on"),
    Var("devfs_enable", "YES", "bool", "mount the jail's minimal /dev (linjail default YES)"),
    Var("procfs_enable", "YES", "bool", "mount the jail's /proc (linjail default YES)"),
    Var("mount_enable", "NO", "bool", "mount the entries of the jail's fstab inside the jail"),
    Var("fstab", "/etc/fstab.<name>", "str", "the jail's fstab: bind mounts and tmpfs"),
    Var("flags", DEFAULT_FLAGS, "flags", "jail(8) options"),
    Var("consolelog", "/var/log/jail_<name>_console.log", "str",
        "file receiving exec_start's output (overwritten) and exec_stop's (appended)"),
)

#: per-jail knob overrides `jail_<name>_<knob>`: the seed's names, plus the
#: rc.conf words of DEFAULT_KNOBS as aliases
KNOB_ALIASES: dict[str, str] = {
    **{k: k for k in KNOB_DEFAULTS},
    **{d.var[len("jail_default_"):]: d.knob for d in DEFAULT_KNOBS},
}

_YES = frozenset({"yes", "true", "on", "1"})
_NO = frozenset({"no", "false", "off", "0"})


class FatalConfig(JailError):
    """rc.subr's `err 3`: stops the whole command (`jailctl: ERROR: jail: ...`)."""

    def __init__(self, message: str) -> None:
        super().__init__(f"ERROR: jail: {message}", CONFIG_EXIT)


class StartFailure(Exception):
    """One jail cannot start; `reason` follows ` cannot start jail "NAME": `."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def not_set_properly(var: str) -> str:
    """rc.subr checkyesno's warning text (without the `jailctl: WARNING: `)."""
    return f"${var} is not set properly - see rc.conf(5)."


def checkyesno(value: str, var: str, warn: Warn) -> bool:
    """rc.subr checkyesno: yes/true/on/1, no/false/off/0, any case; else warn, NO."""
    low = value.lower()
    if low in _YES:
        return True
    if low not in _NO:
        warn(not_set_properly(var))
    return False


class RcVars:
    """The variables read from the rc.conf files, with typed accessors."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self.values = dict(values)

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def jail_enable(self, warn: Warn) -> bool:
        return checkyesno(self.values.get("jail_enable", "NO"), "jail_enable", warn)

    def jail_list(self) -> list[str]:
        return self.get("jail_list").split()

    def default_knobs(self, current: Knobs, warn: Warn) -> tuple[Knobs, list[str]]:
        """The global knobs `start` wants, and the words it prints for changes."""
        values = current.as_dict()
        changed: list[str] = []
        for d in DEFAULT_KNOBS:
            want = int(checkyesno(self.values.get(d.var, d.default), d.var, warn))
            if values[d.knob] != want:
                values[d.knob] = want
                changed.append(f"{d.word}={'YES' if want else 'NO'}")
        return Knobs.from_dict(values), changed

    def per_jail(self, name: str, suffix: str) -> tuple[str, str]:
        """(value, variable it came from): jail_<name>_X, else jail_X; "" if neither."""
        own = f"jail_{name}_{suffix}"
        if self.get(own):
            return self.get(own), own
        common = f"jail_{suffix}"
        return self.get(common), common


@dataclass(frozen=True)
class JailConfig:
    """One jail as rc.conf describes it, resolved but not yet validated."""
    name: str
    rootdir: str
    hostname: str
    ip: str
    exec_start: str
    exec_stop: str             # "" means no stop command
    interface: str
    devfs: bool
    procfs: bool
    mount_enable: bool
    fstab: str
    flags: str
    consolelog: str
    knobs: tuple[tuple[str, int], ...]   # per-jail overrides, seed names
    exec_timeout: int = DEFAULT_EXEC_TIMEOUT   # seconds; 0: no limit

    def var(self, suffix: str) -> str:
        return f"jail_{self.name}_{suffix}"


def valid_name(name: str) -> bool:
    """A jail name must be usable in a variable name (and so in a file name)."""
    return is_name(f"jail_{name}")


def resolve(rc: RcVars, name: str, warn: Warn) -> JailConfig:
    """DragonFly's init_variables: raises FatalConfig for a missing required one."""
    if not valid_name(name):
        raise FatalConfig(f"Invalid jail name {name!r}")

    def own(suffix: str) -> str:
        return rc.get(f"jail_{name}_{suffix}")

    # required, checked in rc.d/jail's order
    for suffix, what in (("rootdir", "root directory"), ("hostname", "hostname"),
                         ("ip", "IP address")):
        if not own(suffix):
            raise FatalConfig(f"No {what} has been defined for {name}")

    legacy = own("exec")
    exec_start, _ = rc.per_jail(name, "exec_start")
    exec_stop, _ = rc.per_jail(name, "exec_stop")
    if legacy:
        exec_start, exec_stop = legacy, ""
    elif not exec_start:
        exec_start = DEFAULT_EXEC_START
        exec_stop = exec_stop or DEFAULT_EXEC_STOP

    def flag(suffix: str, default: str) -> bool:
        value, var = rc.per_jail(name, suffix)
        return checkyesno(value, var, warn) if value else checkyesno(default, suffix, warn)

    def text(suffix: str, default: str) -> str:
        value, _ = rc.per_jail(name, suffix)
        return value or default

    return JailConfig(
        name=name,
        rootdir=own("rootdir"),
        hostname=own("hostname"),
        ip=own("ip"),
        exec_start=exec_start,
        exec_stop=exec_stop,
        interface=text("interface", ""),
        devfs=flag("devfs_enable", "YES"),
        procfs=flag("procfs_enable", "YES"),
        mount_enable=flag("mount_enable", "NO"),
        fstab=text("fstab", f"/etc/fstab.{name}"),
        flags=text("flags", DEFAULT_FLAGS),
        consolelog=text("consolelog", f"/var/log/jail_{name}_console.log"),
        knobs=_knob_overrides(rc, name, warn),
        exec_timeout=_exec_timeout(rc, name, warn),
    )


def _exec_timeout(rc: RcVars, name: str, warn: Warn) -> int:
    """A whole number of seconds, as FreeBSD's exec.timeout; else warn and use 60."""
    value, var = rc.per_jail(name, "exec_timeout")
    if not value:
        return DEFAULT_EXEC_TIMEOUT
    if value.isascii() and value.isdigit() and len(value) <= 9:
        return int(value)
    warn(not_set_properly(var))
    return DEFAULT_EXEC_TIMEOUT


def _knob_overrides(rc: RcVars, name: str, warn: Warn) -> tuple[tuple[str, int], ...]:
    out: dict[str, int] = {}
    for alias, knob in KNOB_ALIASES.items():
        var = f"jail_{name}_{alias}"
        value = rc.get(var)
        if not value:
            continue
        if knob == "enforce_statfs":
            if value in ("0", "1", "2"):
                out[knob] = int(value)
            else:
                warn(not_set_properly(var))
        else:
            out[knob] = int(checkyesno(value, var, warn))
    return tuple(sorted(out.items()))


# -- validation into a JailSpec (per-jail failures, never fatal) -------------

def split_command(value: str, var: str) -> tuple[str, ...]:
    """exec_start/exec_stop are word-split as rc.d's `eval` would."""
    try:
        argv = tuple(shlex.split(value))
    except ValueError as e:
        raise StartFailure(f"{var}: {e}") from None
    if not argv:
        raise StartFailure(f"{var}: empty command")
    return argv


def parse_flags(value: str, var: str) -> JailOptions:
    """jail(8)'s options, word-split as rc.d's `eval` would (`-i` is implied
    and ignored): config/spec.py's jail_options, with rc.conf's messages."""
    try:
        words = shlex.split(value)
    except ValueError as e:
        raise StartFailure(f"{var}: {e}") from None
    try:
        return jail_options(words, "rc", var)
    except SpecError as e:
        raise StartFailure(e.message) from None


def real_root(rootdir: str) -> str:
    """jail(8)'s realpath of the root, with rc.d/jail's message."""
    try:
        return spec.real_root(rootdir, "rc")
    except SpecError as e:
        raise StartFailure(e.message) from None


def build_spec(cfg: JailConfig, *, root: str, knobs: Knobs,
               mounts: tuple[Mount, ...]) -> JailSpec:
    """The JailSpec `jail FLAGS -i ROOTDIR HOSTNAME IP EXEC_START` would make,
    by the one spec builder (config/spec.py); KNOBS are the global defaults."""
    flags = parse_flags(cfg.flags, cfg.var("flags"))
    command = split_command(cfg.exec_start, cfg.var("exec_start"))
    given = SpecInput(path=root, hostname=cfg.hostname, ips=spec.split_ip_list(cfg.ip),
                      command=command, name=cfg.name, login=flags.login,
                      host_user=flags.host_user, jail_user=flags.jail_user, knobs=cfg.knobs,
                      devfs=cfg.devfs, procfs=cfg.procfs, mounts=mounts,
                      interface=cfg.interface or None, console_log=cfg.consolelog)
    try:
        return spec.build(given, "rc", defaults=knobs)
    except SpecError as e:
        raise StartFailure(e.message) from None
