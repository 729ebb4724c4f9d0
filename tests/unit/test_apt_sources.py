"""roots/apt.py and roots/debootstrap.py without root or network: the host's apt sources (both
formats, sources.list(5)), the choice of the mirror, and debootstrap's
progress protocol."""
from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from linjail.roots.apt import (AptSource, choose_mirror, host_sources, host_suite, parse_deb822,
                               parse_one_line)
from linjail.roots.debootstrap import Progress, Protocol, _format

DEBIAN_SOURCES = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://deb.debian.org/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


def test_deb822_stanzas_comments_and_lists() -> None:
    got = parse_deb822(DEBIAN_SOURCES, "debian.sources")
    assert got == [
        AptSource(("deb",), ("http://deb.debian.org/debian",), ("bookworm", "bookworm-updates"),
                  ("main",), "/usr/share/keyrings/debian-archive-keyring.gpg", True,
                  "debian.sources"),
        AptSource(("deb",), ("http://deb.debian.org/debian-security",), ("bookworm-security",),
                  ("main",), "/usr/share/keyrings/debian-archive-keyring.gpg", True,
                  "debian.sources"),
    ]


def test_deb822_case_enabled_continuations_and_embedded_key() -> None:
    text = ("types: deb deb-src\nURIs: http://a.example/debian\n  http://b.example/debian\n"
            "Suites: trixie\nComponents: main contrib\nEnabled: no\n"
            "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n abc\n"
            " -----END PGP PUBLIC KEY BLOCK-----\n")
    (src,) = parse_deb822(text)
    assert src.types == ("deb", "deb-src")
    assert src.uris == ("http://a.example/debian", "http://b.example/debian")
    assert src.enabled is False
    assert src.signed_by is not None and "BEGIN PGP" in src.signed_by


def test_one_line_format_with_options_and_comments() -> None:
    text = ("# a comment\n\n"
            "deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://m.example/debian "
            "bookworm main contrib  # trailing\n"
            "deb-src http://m.example/debian bookworm main\n"
            "deb [ trusted=yes ] file:///srv/mirror bookworm main\n"
            "deb http://broken.example/\n")
    got = parse_one_line(text, "x.list")
    assert [(s.types, s.uris, s.suites, s.components, s.signed_by) for s in got] == [
        (("deb",), ("http://m.example/debian",), ("bookworm",), ("main", "contrib"),
         "/usr/share/keyrings/k.gpg"),
        (("deb-src",), ("http://m.example/debian",), ("bookworm",), ("main",), None),
        (("deb",), ("file:///srv/mirror",), ("bookworm",), ("main",), None),
    ]


def test_the_debian_archive_is_chosen_not_security_or_third_party() -> None:
    sources = parse_one_line("deb https://deb.nodesource.com/node_20.x nodistro main\n"
                             "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n")
    sources += parse_deb822(DEBIAN_SOURCES, "debian.sources")
    mirror = choose_mirror(sources, "bookworm", "bookworm")
    assert mirror is not None
    assert mirror.url == "http://deb.debian.org/debian"
    assert mirror.origin == "debian.sources"
    assert mirror.keyring == ("/usr/share/keyrings/debian-archive-keyring.gpg"
                              if os.path.isfile("/usr/share/keyrings/debian-archive-keyring.gpg")
                              else None)


def test_another_suite_comes_from_the_hosts_archive() -> None:
    mirror = choose_mirror(parse_deb822(DEBIAN_SOURCES), "trixie", "bookworm")
    assert mirror is not None and mirror.url == "http://deb.debian.org/debian"


def test_an_entry_carrying_the_suite_wins() -> None:
    sources = parse_deb822(DEBIAN_SOURCES) + parse_one_line(
        "deb http://other.example/debian/ trixie main\n")
    mirror = choose_mirror(sources, "trixie", "bookworm")
    assert mirror is not None and mirror.url == "http://other.example/debian"


def test_disabled_src_and_unusable_entries_give_no_mirror() -> None:
    sources = [
        AptSource(("deb",), ("http://a.example/debian",), ("bookworm",), ("main",),
                  enabled=False),
        AptSource(("deb-src",), ("http://b.example/debian",), ("bookworm",), ("main",)),
        AptSource(("deb",), ("http://c.example/debian",), ("bookworm",), ("contrib",)),
        AptSource(("deb",), ("cdrom:[Debian]/",), ("bookworm",), ("main",)),
        AptSource(("deb",), ("http://d.example/debian-security",), ("bookworm-security",),
                  ("main",)),
    ]
    assert choose_mirror(sources, "bookworm", "bookworm") is None


def test_host_sources_reads_the_files_apt_reads(tmp_path: Path) -> None:
    (tmp_path / "sources.list").write_text("deb http://classic.example/debian bookworm main\n")
    parts = tmp_path / "sources.list.d"
    parts.mkdir()
    (parts / "debian.sources").write_text(DEBIAN_SOURCES)
    (parts / "b.list").write_text("deb http://b.example/debian bookworm main\n")
    (parts / "x.list.disabled-by-farm").write_text("deb http://no.example/ bookworm main\n")
    (parts / "bad name.list").write_text("deb http://no2.example/ bookworm main\n")
    got = host_sources(str(tmp_path))
    uris = [s.uris[0] for s in got]
    # sources.list first, then the parts in name order; other names are ignored
    assert uris == ["http://classic.example/debian", "http://b.example/debian",
                    "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"]
    mirror = choose_mirror(got, "bookworm", "bookworm")
    assert mirror is not None and mirror.url == "http://classic.example/debian"


def test_host_sources_without_apt(tmp_path: Path) -> None:
    assert host_sources(str(tmp_path / "none")) == []


def test_host_suite(tmp_path: Path) -> None:
    f = tmp_path / "os-release"
    f.write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    assert host_suite(str(f)) == "bookworm"
    f.write_text('NAME="x"\n')
    assert host_suite(str(f)) is None
    assert host_suite(str(tmp_path / "missing")) is None


# --- debootstrap's progress protocol (--debian-installer, fd 3) -----------------


def test_format() -> None:
    assert _format("Retrieving %s %s", ["libc6", "2.36"]) == "Retrieving libc6 2.36"
    assert _format("100%% of %s", ["x"]) == "100% of x"
    assert _format("%s and %s", ["only"]) == "only and "


def feed(lines: str) -> tuple[Protocol, str]:
    out = io.StringIO()
    proto = Protocol(Progress(out))
    for line in lines.splitlines():
        proto.feed(line)
    return proto, out.getvalue()


def test_protocol_phases_percentages_and_errors() -> None:
    proto, shown = feed(
        "P: 0 100 DOWNREL\nPF: Downloading Release file\n"
        "I: RETRIEVING\nIA: InRelease\nIA: \nIF: Retrieving %s %s\n"
        "P: 0 1000 DOWNDEBS\nPF: Downloading packages\n"
        "P: 500 1000\n"            # wget's running percentage: no phase name
        "P: 250 1000\n"            # it restarts per file: the bar never goes back
        "W: COULDNTDL\nWA: foo\nWF: Couldn't download package %s\n"
        "E: NOTFOUND\nEA: http://m.example/dists/x/Release\n"
        "EF: Failed getting release file %s\n")
    assert proto.progress.percent == pytest.approx(30.0)   # DOWNDEBS: 10 + 40 * 0.5
    assert proto.warnings == ["Couldn't download package foo"]
    assert proto.error == "Failed getting release file http://m.example/dists/x/Release"
    # not a terminal: one line per phase, warnings as they come
    assert shown == ("build: [  0%] Downloading Release file\n"
                     "build: [ 10%] Downloading packages\n"
                     "build: debootstrap: warning: Couldn't download package foo\n")


def test_protocol_ignores_garbage() -> None:
    proto, shown = feed("P: x y\nnonsense\n\nPF: Something\n")
    assert proto.error is None and proto.warnings == []
