"""roots/elf.py: the ELF reader on host binaries and on crafted images, and the
library resolver against ld.so's rules (and against ldd as an oracle)."""
from __future__ import annotations

import os
import random
import re
import shutil
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path

import pytest

from linjail.roots.elf import (
    DF_1_NODEFLIB, DT_FLAGS_1, DT_NEEDED, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRSZ,
    DT_STRTAB, ELFCLASS32, ELFCLASS64, EM_386, EM_X86_64, ET_DYN, ET_EXEC, Abi, ElfError,
    ElfInfo, Resolver, default_dirs, expand_tokens, ld_so_conf_dirs, parse_elf, read_elf)

# The system's programs, not whatever a developer's PATH puts first (pyenv shims).
SYSTEM_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SH = shutil.which("sh", path=SYSTEM_PATH) or "/bin/sh"
LS = shutil.which("ls", path=SYSTEM_PATH) or "/usr/bin/ls"
X86_64 = os.uname().machine == "x86_64"


# --- a tiny ELF writer for crafted images ------------------------------------


def make_elf(*, needed: Sequence[str] = (), soname: str | None = None,
             rpath: str | None = None, runpath: str | None = None,
             interp: str | None = None, cls: int = ELFCLASS64,
             machine: int = EM_X86_64, e_type: int = ET_DYN, flags_1: int = 0,
             dynamic: bool = True) -> bytes:
    """A little-endian ELF image: one PT_LOAD over the whole file, PT_DYNAMIC,
    optional PT_INTERP; the string table and dynamic section follow the headers."""
    is64 = cls == ELFCLASS64
    ehsize, phsize = (64, 56) if is64 else (52, 32)
    strtab = b"\0"
    offsets: dict[str, int] = {}

    def add(s: str) -> int:
        nonlocal strtab
        if s not in offsets:
            offsets[s] = len(strtab)
            strtab += s.encode() + b"\0"
        return offsets[s]

    dyn = [(DT_NEEDED, add(n)) for n in needed]
    for tag, value in ((DT_SONAME, soname), (DT_RPATH, rpath), (DT_RUNPATH, runpath)):
        if value is not None:
            dyn.append((tag, add(value)))
    if flags_1:
        dyn.append((DT_FLAGS_1, flags_1))
    interp_b = interp.encode() + b"\0" if interp else b""
    nph = 1 + int(dynamic) + int(bool(interp))
    str_off = ehsize + nph * phsize
    interp_off = str_off + len(strtab)
    dyn_off = interp_off + len(interp_b)
    dyn += [(DT_STRTAB, str_off), (DT_STRSZ, len(strtab)), (0, 0)]
    dynfmt = "<qQ" if is64 else "<iI"
    dyn_b = b"".join(struct.pack(dynfmt, t, v) for t, v in dyn)
    total = dyn_off + len(dyn_b)

    def phdr(p_type: int, off: int, size: int) -> bytes:
        if is64:
            return struct.pack("<IIQQQQQQ", p_type, 4, off, off, off, size, size, 8)
        return struct.pack("<IIIIIIII", p_type, off, off, off, size, size, 4, 4)

    phdrs = phdr(1, 0, total)
    if dynamic:
        phdrs += phdr(2, dyn_off, len(dyn_b))
    if interp:
        phdrs += phdr(3, interp_off, len(interp_b))
    ident = b"\x7fELF" + bytes([cls, 1, 1]) + bytes(9)
    if is64:
        ehdr = ident + struct.pack("<HHIQQQIHHHHHH", e_type, machine, 1, 0, ehsize, 0, 0,
                                   ehsize, phsize, nph, 0, 0, 0)
    else:
        ehdr = ident + struct.pack("<HHIIIIIHHHHHH", e_type, machine, 1, 0, ehsize, 0, 0,
                                   ehsize, phsize, nph, 0, 0, 0)
    image = ehdr + phdrs + strtab + interp_b + dyn_b
    assert len(image) == total
    return image


def put(path: Path, image: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(image)
    path.chmod(0o755)
    return str(path)


# --- host binaries -----------------------------------------------------------


def test_sh_is_a_dynamic_program() -> None:
    info = read_elf(SH)
    assert info.type in (ET_EXEC, ET_DYN)
    assert info.interp is not None and os.path.isabs(info.interp)
    assert "libc.so.6" in info.needed
    if X86_64:
        assert (info.elf_class, info.machine) == (ELFCLASS64, EM_X86_64)
        assert info.interp == "/lib64/ld-linux-x86-64.so.2"


def test_ls_closure_starts_with_ld_so_and_holds_libc() -> None:
    deps = Resolver().closure(LS)
    assert deps.paths()[0] == read_elf(LS).interp
    names = {lib.name for lib in deps.libraries}
    assert "libc.so.6" in names
    # ld.so answers to its SONAME: libc's DT_NEEDED on it is never searched
    assert not any(n.startswith("ld-linux") for n in names)
    for lib in deps.libraries:
        assert os.path.isabs(lib.path) and os.path.isfile(lib.path)


def test_ld_so_itself_needs_nothing() -> None:
    interp = read_elf(SH).interp
    assert interp is not None
    info = read_elf(interp)
    assert info.interp is None and info.needed == () and info.type == ET_DYN
    assert info.soname == os.path.basename(interp)
    assert Resolver().closure(interp).libraries == ()


def test_shared_library() -> None:
    libc = next(lib.path for lib in Resolver().closure(SH).libraries
                if lib.name == "libc.so.6")
    info = read_elf(libc)
    assert info.soname == "libc.so.6" and info.type == ET_DYN


@pytest.mark.skipif(shutil.which("ldd") is None, reason="ldd is not installed")
@pytest.mark.parametrize("prog", ["sh", "ls", "cat", "python3", "ssh", "busybox", "ip"])
def test_closure_matches_ldd(prog: str) -> None:
    """ldd (ld.so --list) is the oracle; the resolver must find the same files."""
    path = shutil.which(prog, path=SYSTEM_PATH)
    if path is None:
        pytest.skip(f"{prog} is not installed")
    out = subprocess.run(["ldd", path], capture_output=True, text=True, check=False).stdout
    if "not a dynamic executable" in out or "statically linked" in out:
        assert Resolver().closure(path).libraries == ()
        return
    want = set()
    for line in out.splitlines():
        m = re.search(r"=> (/\S+)", line) or re.match(r"\s*(/\S+) \(", line)
        if m:
            want.add(os.path.realpath(m.group(1)))
    got = {os.path.realpath(p) for p in Resolver().closure(path).paths()}
    assert got == want


def test_host_ld_so_conf_is_read() -> None:
    dirs = ld_so_conf_dirs()
    if X86_64 and os.path.exists("/etc/ld.so.conf.d/x86_64-linux-gnu.conf"):
        assert "/usr/lib/x86_64-linux-gnu" in dirs


# --- malformed images --------------------------------------------------------


@pytest.mark.parametrize("data, message", [
    (b"", "x: not an ELF file"),
    (b"#!/bin/sh\necho hi\n", "x: not an ELF file"),
    (b"\x7fELF\x03\x01\x01" + bytes(9), "x: unknown ELF class 3"),
    (b"\x7fELF\x02\x07\x01" + bytes(9), "x: unknown ELF byte order 7"),
    (b"\x7fELF\x02\x01\x02" + bytes(9), "x: unknown ELF version 2"),
    (b"\x7fELF\x02\x01\x01" + bytes(13),
     "x: truncated ELF file (ELF header at offset 16 is past the end, 20 bytes)"),
])
def test_bad_headers(data: bytes, message: str) -> None:
    with pytest.raises(ElfError) as e:
        parse_elf(data, "x")
    assert str(e.value) == message


def _patch(image: bytes, offset: int, fmt: str, *values: int) -> bytes:
    b = bytearray(image)
    struct.pack_into(fmt, b, offset, *values)
    return bytes(b)


def test_relocatable_object_is_refused() -> None:
    with pytest.raises(ElfError, match=r"^x: not an executable or shared object \(e_type 1\)$"):
        parse_elf(make_elf(e_type=1), "x")


def test_program_headers_past_the_end() -> None:
    image = _patch(make_elf(), 32, "<Q", 1 << 20)  # e_phoff
    with pytest.raises(ElfError, match=r"^x: truncated ELF file \(program header at offset"):
        parse_elf(image, "x")


def test_program_header_size_too_small() -> None:
    image = _patch(make_elf(), 54, "<H", 8)  # e_phentsize
    with pytest.raises(ElfError, match="^x: program header entry size 8 is too small$"):
        parse_elf(image, "x")


def test_dynamic_segment_outside_the_file() -> None:
    image = _patch(make_elf(needed=["libc.so.6"]), 64 + 56 + 8, "<Q", 1 << 30)  # p_offset
    with pytest.raises(ElfError, match=r"^x: PT_DYNAMIC \(offset 1073741824, .*outside"):
        parse_elf(image, "x")


def test_strtab_address_in_no_load_segment() -> None:
    good = make_elf(needed=["libc.so.6"])
    info = parse_elf(good, "x")
    assert info.needed == ("libc.so.6",)
    # Move PT_LOAD's vaddr far away: DT_STRTAB no longer maps to the file.
    image = _patch(good, 64 + 16, "<Q", 1 << 40)
    with pytest.raises(ElfError, match=r"^x: DT_STRTAB address 0x\w+ is in no PT_LOAD"):
        parse_elf(image, "x")


def test_needed_string_outside_the_table() -> None:
    image = make_elf(needed=["libc.so.6"])
    dyn_off = len(image) - 4 * 16  # NEEDED, STRTAB, STRSZ, NULL
    image = _patch(image, dyn_off + 8, "<Q", 4096)
    with pytest.raises(ElfError, match=r"^x: dynamic string offset 4096 is outside"):
        parse_elf(image, "x")


def test_every_truncation_is_a_clean_error() -> None:
    image = make_elf(needed=["libc.so.6"], soname="libx.so", runpath="$ORIGIN",
                     interp="/lib/ld.so")
    for n in range(len(image)):
        with pytest.raises(ElfError):
            parse_elf(image[:n], "x")


def test_random_corruption_never_escapes_as_another_exception() -> None:
    with open(SH, "rb") as f:
        head = f.read(1 << 16)
    rng = random.Random(7)
    for _ in range(400):
        b = bytearray(head)
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(16, 256)] = rng.randrange(256)
        try:
            parse_elf(bytes(b), "x")
        except ElfError:
            pass


def test_read_elf_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ElfError, match=f"^{tmp_path}/nope: No such file or directory$"):
        read_elf(str(tmp_path / "nope"))
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(ElfError, match=f"^{tmp_path}/empty: not an ELF file$"):
        read_elf(str(tmp_path / "empty"))
    assert issubclass(ElfError, ValueError)


def test_crafted_image_round_trip() -> None:
    info = parse_elf(make_elf(needed=["a.so", "b.so"], soname="c.so", rpath="/r1:/r2",
                              interp="/lib/ld.so", flags_1=DF_1_NODEFLIB), "x")
    assert info.needed == ("a.so", "b.so") and info.soname == "c.so"
    assert info.rpath == ("/r1", "/r2") and info.runpath == ()
    assert info.interp == "/lib/ld.so" and info.nodeflib
    # glibc: with DT_RUNPATH present, DT_RPATH is ignored
    both = parse_elf(make_elf(rpath="/r", runpath="/u"), "x")
    assert (both.rpath, both.runpath) == ((), ("/u",))
    small = parse_elf(make_elf(cls=ELFCLASS32, machine=EM_386, needed=["libc.so.6"]), "x")
    assert (small.elf_class, small.machine, small.needed) == (ELFCLASS32, EM_386, ("libc.so.6",))
    static = parse_elf(make_elf(dynamic=False, e_type=ET_EXEC), "x")
    assert static.needed == () and static.interp is None


# --- search rules ------------------------------------------------------------


def test_expand_tokens() -> None:
    abi = Abi("x86_64-linux-gnu", "x86_64")
    assert expand_tokens("$ORIGIN/../lib", "/opt/app/bin", abi) == "/opt/app/bin/../lib"
    assert expand_tokens("${ORIGIN}/x", "/o", abi) == "/o/x"
    assert expand_tokens("/usr/$LIB/$PLATFORM", "/o", abi) == \
        "/usr/lib/x86_64-linux-gnu/x86_64"
    assert expand_tokens("/a/$UNKNOWN", "/o", abi) is None


def test_default_dirs_follow_debian_multiarch() -> None:
    info = parse_elf(make_elf(), "x")
    assert default_dirs(info)[:4] == ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu",
                                      "/lib", "/usr/lib")


def test_ld_so_conf_syntax(tmp_path: Path) -> None:
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "ld.so.conf").write_text(
        "# comment\n/first\ninclude conf.d/*.conf\nhwcap 0 nosegneg\n"
        "/typed=libc6   # trailing comment\ninclude " + str(tmp_path / "ld.so.conf") + "\n")
    (tmp_path / "conf.d" / "b.conf").write_text("/from-b/\n")
    (tmp_path / "conf.d" / "a.conf").write_text("/from-a\n/first\n")
    (tmp_path / "conf.d" / "skipped.txt").write_text("/nope\n")
    assert ld_so_conf_dirs(str(tmp_path / "ld.so.conf")) == (
        "/first", "/from-a", "/from-b", "/typed")
    assert ld_so_conf_dirs(str(tmp_path / "missing")) == ()


def _resolver(*system: Path) -> Resolver:
    return Resolver(conf_dirs=[], system_dirs=[str(d) for d in system])


def test_runpath_with_origin(tmp_path: Path) -> None:
    prog = put(tmp_path / "app/bin/prog", make_elf(needed=["libfoo.so.1"],
                                                   runpath="$ORIGIN/../lib"))
    lib = put(tmp_path / "app/lib/libfoo.so.1", make_elf(soname="libfoo.so.1"))
    deps = _resolver().closure(prog)
    assert [(d.name, d.path, d.via) for d in deps.libraries] == [
        ("libfoo.so.1", str(tmp_path / "app/bin/../lib/libfoo.so.1"), "runpath")]
    assert os.path.samefile(deps.libraries[0].path, lib)


def test_runpath_is_not_inherited_but_rpath_is(tmp_path: Path) -> None:
    lib_dir = tmp_path / "lib"
    put(lib_dir / "libbar.so", make_elf(soname="libbar.so"))
    put(lib_dir / "libfoo.so", make_elf(needed=["libbar.so"]))
    with_rpath = put(tmp_path / "p1", make_elf(needed=["libfoo.so"], rpath=str(lib_dir)))
    deps = _resolver().closure(with_rpath)
    assert [(d.name, d.via, d.needed_by) for d in deps.libraries] == [
        ("libfoo.so", "rpath", with_rpath), ("libbar.so", "rpath", str(lib_dir / "libfoo.so"))]
    with_runpath = put(tmp_path / "p2", make_elf(needed=["libfoo.so"], runpath=str(lib_dir)))
    with pytest.raises(ElfError) as e:
        _resolver().closure(with_runpath)
    assert str(e.value) == f"libbar.so: library not found (needed by {lib_dir}/libfoo.so)"


def test_a_library_with_runpath_stops_the_rpath_chain(tmp_path: Path) -> None:
    put(tmp_path / "a/libbar.so", make_elf())
    put(tmp_path / "a/libfoo.so", make_elf(needed=["libbar.so"], runpath="/nonexistent"))
    prog = put(tmp_path / "p", make_elf(needed=["libfoo.so"], rpath=str(tmp_path / "a")))
    with pytest.raises(ElfError, match="^libbar.so: library not found"):
        _resolver().closure(prog)


def test_wrong_class_and_non_elf_candidates_are_skipped(tmp_path: Path) -> None:
    put(tmp_path / "d1/libfoo.so", make_elf(cls=ELFCLASS32, machine=EM_386))
    put(tmp_path / "d2/libfoo.so", b"/* GNU ld script */ GROUP ( libfoo.so.1 )\n")
    want = put(tmp_path / "d3/libfoo.so", make_elf())
    prog = put(tmp_path / "p", make_elf(needed=["libfoo.so"]))
    deps = _resolver(tmp_path / "d1", tmp_path / "d2", tmp_path / "d3").closure(prog)
    assert [d.path for d in deps.libraries] == [want]


def test_conf_dirs_come_before_system_dirs(tmp_path: Path) -> None:
    put(tmp_path / "sys/libfoo.so", make_elf())
    conf = put(tmp_path / "conf/libfoo.so", make_elf())
    prog = put(tmp_path / "p", make_elf(needed=["libfoo.so"]))
    r = Resolver(conf_dirs=[str(tmp_path / "conf")], system_dirs=[str(tmp_path / "sys")])
    assert [(d.path, d.via) for d in r.closure(prog).libraries] == [(conf, "ld.so.conf")]


def test_nodeflib_skips_conf_and_system_dirs(tmp_path: Path) -> None:
    put(tmp_path / "sys/libfoo.so", make_elf())
    prog = put(tmp_path / "p", make_elf(needed=["libfoo.so"], flags_1=DF_1_NODEFLIB))
    with pytest.raises(ElfError, match=f"^libfoo.so: library not found \\(needed by {prog}\\)$"):
        _resolver(tmp_path / "sys").closure(prog)


def test_each_library_once_by_name_and_soname(tmp_path: Path) -> None:
    d = tmp_path / "lib"
    foo = put(d / "libfoo.so.1", make_elf(soname="libfoo.so.1"))
    put(d / "libbar.so", make_elf(needed=["libfoo.so.1", "libbaz.so"]))
    put(d / "libbaz.so", make_elf(needed=["libbar.so"]))  # a cycle
    # Loaded by path first: libbar's "libfoo.so.1" then matches its SONAME and
    # is not searched again (glibc _dl_map_object compares l_soname).
    prog = put(tmp_path / "p", make_elf(needed=[foo, "libbar.so"]))
    deps = _resolver(d).closure(prog)
    assert [x.name for x in deps.libraries] == [foo, "libbar.so", "libbaz.so"]


def test_two_names_for_one_library_are_both_kept(tmp_path: Path) -> None:
    """ld.so loads the file once, but searches by both names: the jail needs both paths."""
    d = tmp_path / "lib"
    put(d / "libfoo.so.1", make_elf())
    os.symlink("libfoo.so.1", d / "libfoo.so")
    prog = put(tmp_path / "p", make_elf(needed=["libfoo.so.1", "libfoo.so"]))
    assert [x.path for x in _resolver(d).closure(prog).libraries] == [
        str(d / "libfoo.so.1"), str(d / "libfoo.so")]


def test_name_with_a_slash_is_a_path(tmp_path: Path) -> None:
    lib = put(tmp_path / "x/libfoo.so", make_elf())
    prog = put(tmp_path / "p", make_elf(needed=[lib]))
    assert [(d.path, d.via) for d in _resolver().closure(prog).libraries] == [(lib, "path")]


def test_missing_interpreter_is_named(tmp_path: Path) -> None:
    prog = put(tmp_path / "p", make_elf(interp="/nonexistent/ld.so", e_type=ET_EXEC))
    with pytest.raises(ElfError) as e:
        _resolver().closure(prog)
    assert str(e.value) == (f"/nonexistent/ld.so: program interpreter not found or not "
                            f"ELF (needed by {prog})")


def test_same_abi() -> None:
    a = parse_elf(make_elf(), "a")
    b = parse_elf(make_elf(cls=ELFCLASS32, machine=EM_386), "b")
    assert a.same_abi(a) and not a.same_abi(b)
    assert isinstance(a, ElfInfo)
