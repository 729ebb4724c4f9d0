"""`jailctl build PATH --complete`: a Debian base system made into a jail (SPEC §9).

The seed's `make installworld DESTDIR=$D; make distribution` becomes
debootstrap(8) from the package mirror the host's apt already uses, then the
changes that make a base system a jail rather than a machine:

- /etc/rc and /etc/rc.shutdown (templates in roots/jailrc/): start and stop
  the SysV services of the default runlevel, minus those that manage
  hardware, the clock or the kernel, with per-service overrides in the jail's
  own /etc/rc.conf; so rc.conf's default `exec_start="/bin/sh /etc/rc"` works;
- /etc/hostname and /etc/hosts for the jail (debootstrap copies the host's);
- no device nodes in dev/ (debootstrap makes some; the jail gets its own
  /dev, and the root is mounted nodev anyway);
- no downloaded packages or package lists (tens of MB; a jail cannot reach
  the mirror unless the administrator routes it).

debootstrap runs in its own mount and PID namespaces (unshare(1)
--mount --pid --kill-child): the /proc and /sys it mounts into the target
never appear on the host, and whatever it started dies with it, also when it
is interrupted.  Progress comes from its debian-installer protocol on fd 3
(P:/I:/W:/E: lines, see /usr/share/debootstrap/functions); its full log is
kept in memory and shown with LINJAIL_DEBUG.
"""
from __future__ import annotations

import os
import re
import selectors
import shutil
import signal
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from linjail.errors import JailError
from linjail.fsutil import atomic_write
from linjail.roots.destroy import Target, check_target, remove_tree

Log = Callable[[str], None]

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
APT_ETC = "/etc/apt"
DEBOOTSTRAP_SCRIPTS = "/usr/share/debootstrap/scripts"
JAILRC = os.path.join(os.path.dirname(__file__), "jailrc")
#: URI schemes debootstrap can fetch from (wget, or a local directory)
SCHEMES = ("http://", "https://", "ftp://", "file:/")
_PKG_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?$")
_SUITE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$")
#: apt reads sources.list.d files with these names only (sources.list(5))
_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+\.(list|sources)$")
PREFLIGHT_TIMEOUT = 30.0
STOP_GRACE = 10.0


# --- the host's apt sources -------------------------------------------------------


@dataclass(frozen=True)
class AptSource:
    """One source entry, from either format (sources.list(5))."""

    types: tuple[str, ...]
    uris: tuple[str, ...]
    suites: tuple[str, ...]
    components: tuple[str, ...]
    signed_by: str | None = None
    enabled: bool = True
    origin: str = ""


def parse_deb822(text: str, origin: str = "") -> list[AptSource]:
    """A .sources file: stanzas of `Field: value` separated by blank lines."""
    out: list[AptSource] = []
    for stanza in _stanzas(text):
        fields = {k.lower(): v for k, v in stanza.items()}
        enabled = fields.get("enabled", "yes").strip().lower() not in ("no", "false", "0")
        signed = fields.get("signed-by", "").strip()
        out.append(AptSource(
            types=tuple(fields.get("types", "").split()),
            uris=tuple(fields.get("uris", "").split()),
            suites=tuple(fields.get("suites", "").split()),
            components=tuple(fields.get("components", "").split()),
            signed_by=signed or None, enabled=enabled, origin=origin))
    return out


def _stanzas(text: str) -> Iterable[dict[str, str]]:
    stanza: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if stanza:
                yield stanza
            stanza, key = {}, ""
            continue
        if line[0] in " \t":
            if key:   # a continuation line (" ." is an empty line in the value)
                cont = line.strip()
                stanza[key] += "\n" + ("" if cont == "." else cont)
            continue
        name, sep, value = line.partition(":")
        if sep:
            key = name.strip()
            stanza[key] = value.strip()
    if stanza:
        yield stanza


def parse_one_line(text: str, origin: str = "") -> list[AptSource]:
    """A .list file: `deb [opt=val ...] URI SUITE [COMPONENT...]` lines."""
    out: list[AptSource] = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        kind, _, rest = line.partition(" ")
        options: dict[str, str] = {}
        rest = rest.strip()
        if rest.startswith("["):
            inside, close, rest = rest[1:].partition("]")
            if not close:
                continue
            for opt in inside.split():
                name, _, value = opt.partition("=")
                options[name.lower()] = value
        words = rest.split()
        if len(words) < 2:
            continue
        out.append(AptSource(types=(kind,), uris=(words[0],), suites=(words[1],),
                             components=tuple(words[2:]),
                             signed_by=options.get("signed-by") or None, origin=origin))
    return out


def host_sources(etc: str = APT_ETC) -> list[AptSource]:
    """Every entry apt reads: sources.list, then sources.list.d/ in name order."""
    files = [os.path.join(etc, "sources.list")]
    try:
        parts = sorted(n for n in os.listdir(os.path.join(etc, "sources.list.d"))
                       if _PART_RE.match(n))
    except OSError:
        parts = []
    files += [os.path.join(etc, "sources.list.d", n) for n in parts]
    out: list[AptSource] = []
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
        except OSError:
            continue
        parse = parse_deb822 if path.endswith(".sources") else parse_one_line
        out += parse(text, path)
    return out


@dataclass(frozen=True)
class Mirror:
    url: str
    keyring: str | None
    origin: str     # the apt file it came from, or "--mirror"


def choose_mirror(sources: Sequence[AptSource], suite: str, host_suite: str) -> Mirror | None:
    """The host's Debian archive: a `deb` entry with `main` that carries SUITE,
    else the host's own suite (its URI serves other suites too), else any
    plain-suite entry with `main`.  Security, updates and flat repositories
    (suites with `-` or `/`) are never the base."""
    usable = [s for s in sources if s.enabled and "deb" in s.types and "main" in s.components]

    def pick(match: Callable[[str], bool]) -> Mirror | None:
        for s in usable:
            if any(match(x) for x in s.suites):
                for uri in s.uris:
                    if uri.startswith(SCHEMES):
                        return Mirror(uri.rstrip("/"), _keyring_file(s.signed_by), s.origin)
        return None

    return (pick(lambda x: x == suite) or pick(lambda x: x == host_suite) or
            pick(lambda x: "-" not in x and "/" not in x))


def _keyring_file(signed_by: str | None) -> str | None:
    """Signed-By may name key files or embed a key block; debootstrap takes a file."""
    if not signed_by or "\n" in signed_by:
        return None
    for name in re.split(r"[,\s]+", signed_by):
        if name.startswith("/") and os.path.isfile(name):
            return name
    return None


def host_suite(os_release: str = "/etc/os-release") -> str | None:
    try:
        with open(os_release, encoding="utf-8") as f:
            for line in f:
                key, _, value = line.strip().partition("=")
                if key == "VERSION_CODENAME":
                    return value.strip().strip("\"'") or None
    except OSError:
        pass
    return None


# --- validation and preflight -------------------------------------------------------


@dataclass(frozen=True)
class CompletePlan:
    root: str
    suite: str
    mirror: Mirror
    include: tuple[str, ...]
    hostname: str
    proxy_env: dict[str, str] = field(default_factory=dict)


def plan_complete(path: str, suite: str | None, include: Sequence[str], mirror: str | None,
                  hostname: str | None) -> CompletePlan:
    """Check everything that can be checked before PATH is touched."""
    if shutil.which("debootstrap", path=SYSTEM_PATH) is None:
        raise JailError("build: debootstrap is not installed "
                        "(apt-get install debootstrap)")
    if shutil.which("unshare", path=SYSTEM_PATH) is None:
        raise JailError("build: unshare(1) is not installed (util-linux)")
    mine = host_suite()
    if suite is None:
        if mine is None:
            raise JailError("build: cannot tell the host's suite from /etc/os-release; "
                            "give --suite")
        suite = mine
    if not _SUITE_RE.match(suite) or not os.path.exists(os.path.join(DEBOOTSTRAP_SCRIPTS,
                                                                      suite)):
        raise JailError(f"build: {suite}: unknown suite (debootstrap has no script for it)")
    for pkg in include:
        if not _PKG_RE.match(pkg):
            raise JailError(f"build: --include {pkg}: not a package name")
    if mirror is not None:
        if not mirror.startswith(SCHEMES):
            raise JailError(f"build: --mirror {mirror}: not an http, https, ftp or file URL")
        chosen = Mirror(mirror.rstrip("/"), None, "--mirror")
    else:
        found = choose_mirror(host_sources(), suite, mine or suite)
        if found is None:
            raise JailError(f"build: no Debian mirror with `main` in the host's apt sources "
                            f"({APT_ETC}/sources.list, {APT_ETC}/sources.list.d/); "
                            "give one with --mirror URL")
        chosen = found
    root, _ = check_target(path)
    name = hostname if hostname is not None else _hostname_from(root)
    if not re.match(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$", name) or \
            len(name.encode()) > 64:
        raise JailError(f"build: --hostname {name}: not a host name")
    return CompletePlan(root, suite, chosen, tuple(include), name, _apt_proxy_env())


def _hostname_from(root: str) -> str:
    name = re.sub(r"[^A-Za-z0-9.-]", "-", os.path.basename(root)).strip(".-")
    return name[:64] or "jail"


def _apt_proxy_env() -> dict[str, str]:
    """The proxy apt uses (Acquire::http::Proxy), for debootstrap's wget."""
    env = {k: v for k, v in os.environ.items()
           if k.lower() in ("http_proxy", "https_proxy", "ftp_proxy", "no_proxy")}
    if "http_proxy" in env or shutil.which("apt-config", path=SYSTEM_PATH) is None:
        return env
    import subprocess
    for scheme in ("http", "https"):
        try:
            r = subprocess.run(["apt-config", "shell", "P", f"Acquire::{scheme}::Proxy"],
                               capture_output=True, text=True, timeout=10, check=False,
                               env={"PATH": SYSTEM_PATH, "LC_ALL": "C"})
        except (OSError, subprocess.SubprocessError):
            continue
        m = re.match(r"^P='([^']*)'", r.stdout.strip())
        if m and m.group(1) and m.group(1).upper() != "DIRECT":
            env[f"{scheme}_proxy"] = m.group(1)
    return env


def preflight(mirror: Mirror, suite: str, timeout: float = PREFLIGHT_TIMEOUT,
              proxies: dict[str, str] | None = None) -> None:
    """Ask the mirror for dists/SUITE/Release: one clear line for the two
    common mistakes (a mirror that cannot be reached, a suite it does not have)
    before minutes of debootstrap.  PROXIES: scheme_proxy -> URL, as for wget."""
    release = f"dists/{suite}/Release"
    if mirror.url.startswith("file:"):
        top = re.sub(r"^file:(//)?", "", mirror.url) or "/"
        if not os.path.isdir(top):
            raise JailError(f"build: mirror {mirror.url} cannot be reached: "
                            "No such directory")
        if not os.path.isfile(os.path.join(top, release)):
            raise JailError(f"build: {suite}: unknown suite on {mirror.url} (no {release})")
        return
    handler = urllib.request.ProxyHandler(
        {k[:-len("_proxy")].lower(): v for k, v in (proxies or {}).items()
         if k.lower().endswith("_proxy") and k.lower() != "no_proxy"})
    opener = urllib.request.build_opener(handler)
    request = urllib.request.Request(f"{mirror.url}/{release}",
                                     headers={"User-Agent": "linjail-build"})
    try:
        with opener.open(request, timeout=timeout) as answer:
            answer.read(1)
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise JailError(f"build: {suite}: unknown suite on {mirror.url} "
                            f"({release}: HTTP 404)") from None
        raise JailError(f"build: mirror {mirror.url}: {release}: "
                        f"HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        reason = e.reason.strerror if isinstance(e.reason, OSError) and \
            e.reason.strerror else str(e.reason)
        raise JailError(f"build: mirror {mirror.url} cannot be reached: {reason}") from None
    except (OSError, TimeoutError) as e:
        raise JailError(f"build: mirror {mirror.url} cannot be reached: "
                        f"{getattr(e, 'strerror', None) or e or 'timed out'}") from None


# --- progress display -----------------------------------------------------------

#: debootstrap's phases and where each sits on the overall bar (start %, span %)
PHASES: dict[str, tuple[float, float]] = {
    "DOWNREL": (0, 1), "DOWNRELSIG": (1, 1), "DOWNPKGS": (2, 5), "DOWNMAINPKGS": (2, 5),
    "SIZEDEBS": (7, 3), "DOWNDEBS": (10, 40), "EXTRACTPKGS": (50, 10),
    "INSTCORE": (60, 4), "UNPACKREQ": (64, 8), "CONFREQ": (72, 8),
    "UNPACKBASE": (80, 8), "CONFBASE": (88, 12),
}


class Progress:
    """One rewritten line on a terminal; one line per phase otherwise."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        try:
            self.tty = stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.percent = 0.0
        self.phase = ""
        self.detail = ""
        self._shown_phase = ""
        self._line = ""
        self._drawn = 0.0
        self._dirty = False

    def update(self, percent: float | None = None, phase: str | None = None,
               detail: str | None = None) -> None:
        if percent is not None:
            self.percent = max(self.percent, min(100.0, percent))
        if phase is not None and phase != self.phase:
            self.phase, self.detail = phase, ""
        if detail is not None:
            self.detail = detail
        self._draw()

    def _draw(self) -> None:
        head = f"build: [{self.percent:3.0f}%] {self.phase}"
        if not self.phase:
            return
        if self.tty:
            line = f"{head}: {self.detail}" if self.detail else head
            width = shutil.get_terminal_size((80, 24)).columns - 1
            line = line[:width]
            now = time.monotonic()
            # wget reports every few KB: redraw at most ten times a second
            if line == self._line or (now - self._drawn < 0.1 and
                                      self.phase == self._shown_phase):
                return
            self._line, self._drawn, self._shown_phase = line, now, self.phase
            self.stream.write("\r\033[K" + line)
            self.stream.flush()
            self._dirty = True
        elif self.phase != self._shown_phase:
            self._shown_phase = self.phase
            self.stream.write(head + "\n")
            self.stream.flush()

    def message(self, line: str) -> None:
        self.clear()
        self.stream.write(line + "\n")
        self.stream.flush()
        if self.tty:
            self._draw()

    def clear(self) -> None:
        if self.tty and self._dirty:
            self.stream.write("\r\033[K")
            self.stream.flush()
            self._dirty = False
            self._line = ""


def _format(fmt: str, args: Sequence[str]) -> str:
    """debootstrap's printf formats: %s and %% only."""
    it = iter(args)
    return re.sub(r"%[s%]", lambda m: "%" if m.group() == "%%" else next(it, ""), fmt)


class Protocol:
    """Parses debootstrap's debian-installer protocol (fd 3) into events.

    A message is a head line (`P: NOW END [PHASE]`, `I: NAME`, `W: NAME`,
    `E: NAME`), argument lines (`PA:`...) and a printf format (`PF:`...).
    wget's running percentage comes as bare `P: NOW END` lines of the
    current phase.
    """

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.phase = ""                   # the P: phase name, e.g. DOWNDEBS
        self.numbers: tuple[int, int] = (0, 0)
        self.args: list[str] = []
        self.error: str | None = None
        self.warnings: list[str] = []

    def feed(self, line: str) -> None:
        tag, _, rest = line.partition(": ")
        if tag == "P":
            self.args = []
            words = rest.split()
            try:
                self.numbers = (int(words[0]), int(words[1]))
            except (IndexError, ValueError):
                return
            if len(words) > 2:
                self.phase = words[2]
            else:
                self._percent(None)
        elif tag in ("I", "W", "E"):
            self.args = []
        elif tag in ("PA", "IA", "WA", "EA"):
            self.args.append(rest)
        elif tag == "PF":
            self._percent(_format(rest, self.args))
        elif tag == "IF":
            self.progress.update(detail=_format(rest, self.args))
        elif tag == "WF":
            text = _format(rest, self.args)
            self.warnings.append(text)
            self.progress.message(f"build: debootstrap: warning: {text}")
        elif tag == "EF":
            self.error = _format(rest, self.args)

    def _percent(self, title: str | None) -> None:
        start, span = PHASES.get(self.phase, (self.progress.percent, 0))
        now, end = self.numbers
        frac = now / end if end > 0 else 0.0
        self.progress.update(start + span * min(1.0, max(0.0, frac)), title)


# --- running debootstrap ---------------------------------------------------------


def debootstrap_argv(plan: CompletePlan) -> list[str]:
    argv = [shutil.which("unshare", path=SYSTEM_PATH) or "unshare",
            "--mount", "--propagation", "private", "--pid", "--fork", "--kill-child",
            "--mount-proc", "--",
            shutil.which("debootstrap", path=SYSTEM_PATH) or "debootstrap",
            "--debian-installer", "--variant=minbase", "--components=main"]
    if plan.include:
        argv.append("--include=" + ",".join(plan.include))
    if plan.mirror.keyring:
        argv.append("--keyring=" + plan.mirror.keyring)
    return argv + [plan.suite, plan.root, plan.mirror.url]


def run_debootstrap(plan: CompletePlan, progress: Progress) -> None:
    """Run debootstrap to the end; JailError with its own reason if it fails.

    An exception here (^C, SIGTERM) stops it first: SIGTERM to its process
    group (its traps unmount), SIGKILL after STOP_GRACE; its PID namespace
    takes every stray process with it.
    """
    log_r, log_w = os.pipe2(os.O_CLOEXEC)
    prog_r, prog_w = os.pipe2(os.O_CLOEXEC)
    env = {"PATH": SYSTEM_PATH, "LC_ALL": "C", "HOME": "/root",
           "DEBIAN_FRONTEND": "noninteractive", **plan.proxy_env}
    argv = debootstrap_argv(plan)
    try:
        pid = os.posix_spawn(argv[0], argv, env, setsid=True, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_DUP2, log_w, 1), (os.POSIX_SPAWN_DUP2, log_w, 2),
            (os.POSIX_SPAWN_DUP2, prog_w, 3)])
    except OSError as e:
        for fd in (log_r, log_w, prog_r, prog_w):
            os.close(fd)
        raise JailError(f"build: {argv[0]}: {e.strerror}") from None
    os.close(log_w)
    os.close(prog_w)
    proto = Protocol(progress)
    tail: deque[str] = deque(maxlen=60)
    try:
        _pump({log_r: tail.append, prog_r: proto.feed})
        _, status = os.waitpid(pid, 0)
    except BaseException:
        _stop(pid)
        raise
    finally:
        os.close(log_r)
        os.close(prog_r)
    code = os.waitstatus_to_exitcode(status)
    if code == 0 and proto.error is None:
        return
    progress.clear()
    if os.environ.get("LINJAIL_DEBUG"):
        progress.stream.write("".join(line + "\n" for line in tail))
    last = next((t for t in reversed(tail) if t.strip()), f"exit status {code}")
    reason = proto.error or (proto.warnings[-1] if proto.warnings else last)
    raise JailError(f"build: debootstrap failed: {reason.strip()}")


def _pump(handlers: dict[int, Callable[[str], None]]) -> None:
    """Read lines from each descriptor until all reach end of file."""
    sel = selectors.DefaultSelector()
    partial = dict.fromkeys(handlers, b"")
    for fd in handlers:
        sel.register(fd, selectors.EVENT_READ)
    try:
        while partial.keys() - set(_closed(sel, handlers)):
            for key, _ in sel.select():
                fd = key.fd
                data = os.read(fd, 65536)
                if not data:
                    sel.unregister(fd)
                    if partial[fd]:
                        handlers[fd](partial[fd].decode("utf-8", "replace"))
                    partial[fd] = b""
                    continue
                *lines, partial[fd] = (partial[fd] + data).split(b"\n")
                for line in lines:
                    handlers[fd](line.decode("utf-8", "replace"))
    finally:
        sel.close()


def _closed(sel: selectors.BaseSelector, handlers: dict[int, Callable[[str], None]]
            ) -> list[int]:
    registered = sel.get_map()
    return [fd for fd in handlers if fd not in registered]


def _stop(pid: int) -> None:
    """Stop debootstrap's whole process group: TERM, then KILL."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE), (signal.SIGKILL, 60.0)):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                return
            if done:
                # the group may outlive its leader a moment; KILL what is left
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                return
            time.sleep(0.05)


# --- making the base system a jail ----------------------------------------------

HOSTS = """127.0.0.1\tlocalhost
127.0.1.1\t{fqdn}{short}
::1\t\tlocalhost ip6-localhost ip6-loopback
ff02::1\t\tip6-allnodes
ff02::2\t\tip6-allrouters
"""
#: the files installed from roots/jailrc/, with their modes
JAILRC_FILES = (("rc", 0o755), ("rc.shutdown", 0o755), ("rc.subr", 0o644))


def jailify(root: str, hostname: str) -> None:
    """The changes that make a debootstrapped tree a jail (see the module doc)."""
    rootfd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        etc = _open_dir(rootfd, "etc")
        try:
            for name, mode in JAILRC_FILES:
                _write(etc, name, _template(name), mode)
            if not _exists(etc, "rc.conf"):
                _write(etc, "rc.conf", _template("rc.conf"), 0o644)
            _write(etc, "hostname", (hostname + "\n").encode(), 0o644)
            short = hostname.split(".", 1)[0]
            hosts = HOSTS.format(fqdn=hostname, short=f" {short}" if short != hostname else "")
            _write(etc, "hosts", hosts.encode(), 0o644)
        finally:
            os.close(etc)
    finally:
        os.close(rootfd)
    # after pivot_root the jail mounts its own /dev; nodes here would be
    # host devices for anyone who chroots into the tree
    dev = os.path.join(root, "dev")
    remove_tree(dev, keep_top=True)
    os.chmod(dev, 0o755)
    _remove_files(os.path.join(root, "var/cache/apt/archives"), lambda n: n.endswith(".deb"))
    _remove_files(os.path.join(root, "var/lib/apt/lists"), lambda n: n != "lock")
    _remove_files(os.path.join(root, "var/cache/apt"), lambda n: n.endswith(".bin"))


def _template(name: str) -> bytes:
    with open(os.path.join(JAILRC, name), "rb") as f:
        return f.read()


def _open_dir(dirfd: int, name: str) -> int:
    try:
        return os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                       dir_fd=dirfd)
    except OSError as e:
        raise JailError(f"build: {name}: {e.strerror}") from None


def _exists(dirfd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=dirfd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _write(dirfd: int, name: str, data: bytes, mode: int) -> None:
    """Replace NAME in the directory atomically, owned by root, never through a symlink."""
    atomic_write(name, data, mode=mode, owner=(0, 0), dir_fd=dirfd)


def _remove_files(directory: str, wanted: Callable[[str], bool]) -> None:
    """Remove the regular files of DIRECTORY (not below) that WANTED picks."""
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        with os.scandir(dfd) as it:
            names = [e.name for e in it if e.is_file(follow_symlinks=False) and wanted(e.name)]
        for name in names:
            os.unlink(name, dir_fd=dfd)
    finally:
        os.close(dfd)


# --- the whole build ---------------------------------------------------------------


def build_complete(path: str, *, suite: str | None = None, include: Sequence[str] = (),
                   mirror: str | None = None, hostname: str | None = None,
                   stream: TextIO | None = None) -> CompletePlan:
    """`jailctl build PATH --complete`; progress and warnings go to STREAM.

    Raises JailError with one line; a failure or an interruption (the caller
    turns SIGTERM/SIGHUP into KeyboardInterrupt) leaves no PATH behind.
    """
    plan = plan_complete(path, suite, include, mirror, hostname)
    preflight(plan.mirror, plan.suite, proxies=plan.proxy_env)
    progress = Progress(stream if stream is not None else _null_stream())
    progress.message(f"build: {plan.root}: Debian {plan.suite} from {plan.mirror.url}" +
                     (f" with {','.join(plan.include)}" if plan.include else ""))
    try:
        with Target(plan.root, progress.message):
            run_debootstrap(plan, progress)
            progress.update(100.0, "Making it a jail", "")
            try:
                jailify(plan.root, plan.hostname)
            except OSError as e:
                raise JailError(f"build: {e.filename or plan.root}: {e.strerror}") from None
    finally:
        progress.clear()
    progress.message(f"build: {plan.root}: complete jail ready (hostname {plan.hostname})")
    return plan


def _null_stream() -> TextIO:
    import io
    return io.StringIO()
