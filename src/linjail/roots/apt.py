"""Where a complete jail's packages come from: the host's own apt sources
(both formats, sources.list(5)), the Debian mirror chosen from them, the
proxy apt uses, and one question to that mirror before debootstrap runs.
"""
from __future__ import annotations

import os
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from linjail.errors import JailError

SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
APT_ETC = "/etc/apt"
#: URI schemes debootstrap can fetch from (wget, or a local directory)
SCHEMES = ("http://", "https://", "ftp://", "file:/")
#: apt reads sources.list.d files with these names only (sources.list(5))
_PART_RE = re.compile(r"^[A-Za-z0-9_.-]+\.(list|sources)$")
PREFLIGHT_TIMEOUT = 30.0


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


# --- the proxy, and the mirror asked once -------------------------------------------


def apt_proxy_env() -> dict[str, str]:
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
