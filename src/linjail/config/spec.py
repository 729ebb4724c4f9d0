"""The one JailSpec builder: every front end's description of a jail, checked once.

  front end                          fills a SpecInput in                    FRONT
  ---------                          -------------------                    -----
  jail(8), DragonFly argv            cli/jail.py parse()                    "jail"
  jail(8), FreeBSD's legacy form     cli/jail_fbsd.py _legacy()             "jail"
  rc.conf jail_NAME_* (jailctl)      config/jails.py build_spec()           "rc"
  jail -c param=..., jail.conf(5)    lifecycle/fbsd.py to_spec()            "freebsd"
  an OCI bundle's config.json        oci/config.py to_spec()                "jail"

Nothing in a SpecInput is checked or looked up; build() does both, in
DragonFly jail(8)'s order, and returns the frozen JailSpec the lifecycle
starts:

  1. the host user (-u): the host's passwd and group, valid ids
  2. the root: realpath(3), which must name a directory
  3. the addresses
  4. a thin jail's layers (PATH.linjail-thin beside the root, thinroot.py)
  5. whether the caller may create a jail at all (only if MAY_CREATE is
     given: jail(2) refuses with EPERM before it reads the hostname)
  6. the hostname: UTF-8, at most 64 bytes (Linux's limit; DragonFly: 255)
  7. the knobs: the global defaults (jail.defaults.*), then the per-jail ones

The first fault ends it: a SpecError whose message is one line without a
program name; `field` names the SpecInput field at fault.  The front end
says it its own way (`jail: ...`, ` cannot start jail "NAME": ...`,
`jail: NAME: ...`).  Where the front ends have always worded the same fault
differently (tests pin each text), FRONT picks the words; a new front end
passes the one whose words suit it ("jail" for a command line).

jail_options() is jail(8)'s getopt("ilu:U:"), for the two front ends that
take those options (argv, and rc.conf's jail_NAME_flags).
"""
from __future__ import annotations

import os

from ..errors import JailError
from ..model import KNOB_VALUES, JailSpec, Knobs, Mount, User, parse_ip
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from ..model import IPAddress
    from .getopt import GetoptError

#: Linux's hostname limit (DragonFly: 255): SPEC §2
HOSTNAME_MAX = 64
#: whose words the messages use: DragonFly's jail(8), rc.d/jail, FreeBSD's jail(8)
FRONTS = ("jail", "rc", "freebsd")


class SpecError(JailError):
    """One fault of a SpecInput; FIELD is the input field at fault.

    `message` is the one line, without the program name (`reason` for
    rc.d/jail's ` cannot start jail "NAME": REASON`).  `stdout`: jail(8)
    prints this one on standard output, with no program name (DragonFly's
    `Invalid value X`)."""

    def __init__(self, field: str, message: str, *, stdout: bool = False) -> None:
        super().__init__(message, stdout=stdout, bare=stdout)
        self.field = field

    @property
    def reason(self) -> str:
        return self.message


class OptionError(SpecError):
    """jail(8)'s options cannot be read.  `diagnostic` is libc getopt's own
    line (`illegal option -- x`, "" when only the usage applies): the
    command line shows it above its usage text."""

    def __init__(self, message: str, diagnostic: str = "") -> None:
        super().__init__("options", message)
        self.diagnostic = diagnostic


@record()
class SpecInput(Record):
    """A jail as a front end describes it: plain values, nothing checked yet.

    Give what the front end has and leave the rest at its default; build()
    checks all of it.  For a front end reading an OCI runtime bundle
    (config.json), the fields map as follows:

      path        root.path, made absolute against the bundle directory
                  (build() resolves symbolic links with realpath(3) and
                  requires a directory; the spec keeps the real path)
      hostname    hostname ("" is allowed: the jail's hostname is then empty)
      ips         the jail's addresses in order, as text or as
                  ipaddress.IPv4Address/IPv6Address; () for a jail with
                  only a loopback interface (OCI's own network namespace)
      command     process.args (run as given: no PATH search, SPEC §2)
      host_user   a User for process.user: name, uid, gid, groups
                  (gid plus additionalGids), home, shell; its ids are checked.
                  A str is a name looked up in the HOST's passwd (jail -u).
      jail_user   a name looked up in the JAIL's etc/passwd at start (jail -U);
                  give host_user or jail_user, not both
      login       jail -l: only HOME, SHELL, USER, TERM and PATH are passed
      mounts      Mount("bind", source, destination, readonly=...) or
                  Mount("tmpfs", "tmpfs", destination, options=...): each
                  destination is a path inside the jail, resolved in its root
      devfs, procfs, sysfs  the jail's own /dev, /proc and read-only /sys
                  (default: all; an OCI config lists its own as mounts)
      join        (kind, path) of namespaces joined instead of made new:
                  "net", "ipc", "uts" (linux.namespaces[].path)
      knobs       per-jail knob values by the seed's names
                  (model.KNOB_DEFAULTS), over the global defaults
      name, jid, persist, unique_name, interface, console_log, print_jid:
                  as JailSpec documents them
    What JailSpec has no field for yet (process.env, process.cwd, rlimits)
    is added to both records by the front end that needs it.
    """
    path: str
    hostname: str = ""
    ips: tuple[str | IPAddress, ...] = ()
    command: tuple[str, ...] = ()
    name: str = ""
    login: bool = False
    host_user: str | User | None = None
    jail_user: str | None = None
    print_jid: bool = False
    knobs: tuple[tuple[str, int], ...] = ()
    devfs: bool = True
    procfs: bool = True
    sysfs: bool = True
    mounts: tuple[Mount, ...] = ()
    join: tuple[tuple[str, str], ...] = ()
    interface: str | None = None
    console_log: str | None = None
    jid: int = 0
    persist: bool = False
    unique_name: bool = False


def build(given: SpecInput, front: str = "jail", *, defaults: Knobs | None = None,
          may_create: Callable[[], bool] | None = None) -> JailSpec:
    """GIVEN checked, in the order the module docstring lists, into a JailSpec.

    FRONT picks the words of the messages (FRONTS); DEFAULTS are the global
    knobs the per-jail ones start from (None: the host's jail.defaults.*);
    MAY_CREATE, if given, says whether the caller may create a jail at all.
    Raises SpecError, one line, on the first fault."""
    host_user = check_user(given.host_user) if given.host_user is not None else None
    if host_user is not None and given.jail_user is not None:
        raise SpecError("host_user", "-u and -U cannot be used together")
    path = real_root(given.path, front)
    ips = addresses(given.ips)
    overlay = thin_layers(path)
    if may_create is not None and not may_create():
        raise SpecError("may_create", "jail: Operation not permitted")
    check_hostname(given.hostname, front)
    return JailSpec(path=path, hostname=given.hostname, ips=ips, command=given.command,
                    name=given.name, login=given.login, host_user=host_user,
                    jail_user=given.jail_user, print_jid=given.print_jid,
                    knobs=knobs(given.knobs, defaults), devfs=given.devfs,
                    procfs=given.procfs, sysfs=given.sysfs, mounts=given.mounts,
                    join=given.join, interface=given.interface,
                    overlay=overlay, console_log=given.console_log, jid=given.jid,
                    persist=given.persist, unique_name=given.unique_name)


# -- the checks, in build()'s order; each usable alone -------------------------------------

def check_user(user: str | User) -> User:
    """A host user: a name looked up in the host's passwd and group (jail -u),
    or a User given whole (an OCI process.user); either way its ids must be
    valid (users.invalid_ids)."""
    from ..users import host_user, invalid_ids
    try:
        found = host_user(user) if isinstance(user, str) else user
    except JailError as err:
        raise SpecError("host_user", err.message) from None
    why = invalid_ids(found)        # (host_user() has checked a name's already)
    if why:
        raise SpecError("host_user", f"{found.name}: {why}")
    return found


def real_root(path: str, front: str = "jail") -> str:
    """The root's realpath(3), which must be a directory."""
    if not path:
        if front == "freebsd":
            raise SpecError("path", "path: not set (a jail needs its root directory)")
        # realpath(3) of "" is ENOENT; Python's would be the cwd
        raise SpecError("path", _not_found(path, os.strerror(2), front))
    try:
        resolved = os.path.realpath(path, strict=True)
    except OSError as err:
        raise SpecError("path", _not_found(path, os.strerror(err.errno or 2), front)) \
            from None
    if not os.path.isdir(resolved):
        text = os.strerror(20)
        if front == "jail":     # DragonFly's jail(8) chdirs to the resolved path
            raise SpecError("path", f"chdir: {resolved}: {text}")
        raise SpecError("path", _not_found(path, text, front))
    return resolved


def _not_found(path: str, text: str, front: str) -> str:
    return f"path {path}: {text}" if front == "freebsd" else f"realpath: {path}: {text}"


def split_ip_list(text: str) -> tuple[str, ...]:
    """DragonFly's ip-list: comma separated, empty elements skipped."""
    return tuple(elem for elem in text.split(",") if elem)


def addresses(given: tuple[str | IPAddress, ...]) -> tuple[IPAddress, ...]:
    """The addresses in order; text is parsed strictly (model.parse_ip)."""
    out: list[IPAddress] = []
    for elem in given:
        if not isinstance(elem, str):
            out.append(elem)
            continue
        try:
            out.append(parse_ip(elem))
        except ValueError:
            # DragonFly's jail(8) prints this on stdout, without its name
            raise SpecError("ips", f"Invalid value {elem}", stdout=True) from None
    return tuple(out)


def thin_layers(root: str) -> tuple[str, str] | None:
    """JailSpec.overlay of a thin jail (thinroot.py), None for any other root.
    The lexists() first: the thin module is not imported for a plain root."""
    if not os.path.lexists(root + ".linjail-thin"):
        return None
    from ..thinroot import overlay_for
    try:
        return overlay_for(root)
    except JailError as err:
        raise SpecError("path", err.message) from None


def check_hostname(hostname: str, front: str = "jail") -> None:
    """Text (jls, rc.conf and the record hold it as such), at most HOSTNAME_MAX bytes."""
    try:
        # argv bytes that are not UTF-8 arrive as lone surrogates, which do not encode
        size = len(hostname.encode())
    except UnicodeEncodeError:
        raise SpecError("hostname", f"{hostname}: hostname is not valid UTF-8") from None
    if size > HOSTNAME_MAX:
        # DragonFly's jail(2) says ENAMETOOLONG; FreeBSD's jail(8) names the parameter
        what = "host.hostname" if front == "freebsd" else "jail"
        raise SpecError("hostname", f"{what}: {os.strerror(36)}")


def knobs(overrides: tuple[tuple[str, int], ...], defaults: Knobs | None = None) -> Knobs:
    """DEFAULTS (None: the host's jail.defaults.*) with the per-jail OVERRIDES."""
    if defaults is None:
        from ..state.knobs import get_defaults
        defaults = get_defaults()
    if not overrides:
        return defaults
    values = defaults.as_dict()
    for name, value in overrides:
        if value not in KNOB_VALUES.get(name, ()):
            allowed = " or ".join(map(str, KNOB_VALUES.get(name, ())))
            raise SpecError("knobs", f"{name}: {value}: "
                            + (f"must be {allowed}" if allowed else "no such knob"))
        values[name] = value
    return Knobs.from_dict(values)


# -- jail(8)'s options, for the command line and rc.conf's jail_NAME_flags -----------------

@record()
class JailOptions(Record):
    """getopt("ilu:U:") read: -i, -l, -u USER, -U USER (the last one given
    counts), and the operands after them."""
    print_jid: bool
    login: bool
    host_user: str | None
    jail_user: str | None
    operands: tuple[str, ...]


def jail_options(words: list[str], front: str = "jail", where: str = "") -> JailOptions:
    """jail(8)'s options.  The command line ("jail") needs the four operands
    path hostname ip-list command; rc.conf's flags ("rc", WHERE the variable)
    take none, and its messages are Python getopt's, as they always were."""
    from .getopt import GetoptError, getopt
    try:
        opts, rest = getopt(words, "ilu:U:")
    except GetoptError as err:
        if front == "jail":
            raise OptionError(str(err), str(err)) from None
        raise OptionError(f"{where}: {_python_getopt_text(err)}") from None
    got: dict[str, str] = {}
    flags = set()
    for opt, val in opts:
        flags.add(opt)
        if opt in ("-u", "-U"):
            got[opt] = val
    host_user, jail_user = got.get("-u"), got.get("-U")
    login = "-l" in flags
    if front == "jail":
        if (host_user is not None and jail_user is not None) or len(rest) < 4 or \
                (login and host_user is None and jail_user is None):
            raise OptionError("usage")
    else:
        if rest:
            raise OptionError(f"{where}: unexpected argument {rest[0]!r}")
        if host_user is not None and jail_user is not None:
            raise OptionError(f"{where}: -u and -U cannot be used together")
        if login and host_user is None and jail_user is None:
            raise OptionError(f"{where}: -l needs -u or -U")
    return JailOptions(print_jid="-i" in flags, login=login, host_user=host_user,
                       jail_user=jail_user, operands=tuple(rest))


def _python_getopt_text(err: GetoptError) -> str:
    """What Python's getopt module said for the same fault (rc.conf's flags
    were read with it): `option -x not recognized`, `option -u requires argument`."""
    if err.missing:
        return f"option -{err.letter} requires argument"
    if err.word.startswith("--"):
        return f"option --{err.word[2:].partition('=')[0]} not recognized"
    return f"option -{err.letter} not recognized"
