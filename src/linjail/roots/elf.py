"""Read the dynamic-linking facts of an ELF file and find its libraries like ld.so.

`jailctl build PATH --service PROG` must copy every shared object a program
loads, without running it (no `ldd`: ldd runs the program's own loader on it,
and a hostile or foreign binary must not run at build time).  So this module
reads, with `struct` only:

- the program interpreter (PT_INTERP, i.e. ld.so),
- DT_NEEDED, DT_SONAME, DT_RPATH, DT_RUNPATH and DT_FLAGS_1 from PT_DYNAMIC,

and `Resolver` searches for each needed library in the order ld.so(8) documents:
DT_RPATH (of the object and of its loaders, when it has no DT_RUNPATH), then
DT_RUNPATH, then the ld.so cache (emulated with /etc/ld.so.conf and its
`include`s, which is what ldconfig builds the cache from), then the system
directories.  LD_LIBRARY_PATH is ignored on purpose: the jail does not inherit
the builder's environment.  Candidates of another ELF class, byte order or
machine are skipped, as ld.so skips them ("wrong ELF class").

Layout references: the System V ABI (gABI) chapters 4 and 5, <elf.h>, and
glibc elf/dl-load.c for the search order.
"""
from __future__ import annotations

import glob
import mmap
import os
import struct
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

# e_ident (gABI ch. 4)
_MAGIC = b"\x7fELF"
ELFCLASS32, ELFCLASS64 = 1, 2
ELFDATA2LSB, ELFDATA2MSB = 1, 2
ET_EXEC, ET_DYN = 2, 3
# e_machine values that Debian ships (elf.h)
EM_386, EM_ARM, EM_X86_64, EM_AARCH64, EM_RISCV = 3, 40, 62, 183, 243
EM_PPC64, EM_S390 = 21, 22
# program header types
PT_LOAD, PT_DYNAMIC, PT_INTERP = 1, 2, 3
PN_XNUM = 0xFFFF
# dynamic tags
DT_NULL, DT_NEEDED, DT_STRTAB, DT_SONAME, DT_STRSZ = 0, 1, 5, 14, 10
DT_RPATH, DT_RUNPATH, DT_FLAGS_1 = 15, 29, 0x6FFFFFFB
DF_1_NODEFLIB = 0x800

# ld.so gives up after 40 nested ld.so.conf includes / symlinks; so do we.
_MAX_INCLUDE_DEPTH = 40


class ElfError(ValueError):
    """A file is not a usable ELF object, or a library cannot be found.

    The message is one line naming the file; roots/service.py wraps it in a
    JailError for the user.
    """


@dataclass(frozen=True)
class ElfInfo:
    """What ld.so needs to know about one object."""

    path: str
    elf_class: int          # ELFCLASS32 or ELFCLASS64
    data: int               # ELFDATA2LSB or ELFDATA2MSB
    machine: int            # e_machine
    type: int               # ET_EXEC or ET_DYN
    interp: str | None      # PT_INTERP, None for static programs and libraries
    needed: tuple[str, ...]
    soname: str | None
    rpath: tuple[str, ...]  # raw entries, $ORIGIN not expanded
    runpath: tuple[str, ...]
    nodeflib: bool          # DF_1_NODEFLIB: skip the cache and system dirs

    def same_abi(self, other: ElfInfo) -> bool:
        """ld.so loads only objects of the program's class, byte order and machine."""
        return (self.elf_class, self.data, self.machine) == (
            other.elf_class, other.data, other.machine)


@dataclass(frozen=True)
class _Layout:
    """struct formats of one ELF class and byte order."""

    ehdr: str     # e_type, e_machine, e_version, e_entry, e_phoff, e_shoff,
    #               e_flags, e_ehsize, e_phentsize, e_phnum (after e_ident)
    phdr: str     # p_type, p_offset, p_vaddr, p_filesz (in file order)
    phdr_size: int
    dyn: str      # d_tag, d_val
    shdr_info: str  # sh_info of section 0 (for PN_XNUM)
    shdr_info_off: int


def _layout(elf_class: int, data: int) -> _Layout:
    e = "<" if data == ELFDATA2LSB else ">"
    if elf_class == ELFCLASS64:
        # Elf64_Phdr: p_type p_flags p_offset p_vaddr p_paddr p_filesz ...
        return _Layout(e + "HHIQQQIHHH", e + "I4xQQ8xQ", 56, e + "qQ", e + "I", 44)
    # Elf32_Phdr: p_type p_offset p_vaddr p_paddr p_filesz ...
    return _Layout(e + "HHIIIIIHHH", e + "III4xI", 32, e + "iI", e + "I", 28)


_Buffer = bytes | mmap.mmap


def _unpack(fmt: str, buf: _Buffer, offset: int, what: str, path: str) -> tuple[int, ...]:
    size = struct.calcsize(fmt)
    if offset < 0 or offset + size > len(buf):
        raise ElfError(f"{path}: truncated ELF file ({what} at offset {offset} "
                       f"is past the end, {len(buf)} bytes)")
    return struct.unpack_from(fmt, buf, offset)


def parse_elf(buf: _Buffer, path: str = "<bytes>") -> ElfInfo:
    """Decode an ELF image held in memory; raise ElfError if it is malformed."""
    if len(buf) < 16 or buf[:4] != _MAGIC:
        raise ElfError(f"{path}: not an ELF file")
    elf_class, data, version = buf[4], buf[5], buf[6]
    if elf_class not in (ELFCLASS32, ELFCLASS64):
        raise ElfError(f"{path}: unknown ELF class {elf_class}")
    if data not in (ELFDATA2LSB, ELFDATA2MSB):
        raise ElfError(f"{path}: unknown ELF byte order {data}")
    if version != 1:
        raise ElfError(f"{path}: unknown ELF version {version}")
    lay = _layout(elf_class, data)
    (e_type, machine, _ver, _entry, phoff, shoff, _flags, _ehsize, phentsize,
     phnum) = _unpack(lay.ehdr, buf, 16, "ELF header", path)
    if e_type not in (ET_EXEC, ET_DYN):
        raise ElfError(f"{path}: not an executable or shared object (e_type {e_type})")
    if phnum == PN_XNUM:
        # gABI: the real count is in sh_info of section header 0.
        (phnum,) = _unpack(lay.shdr_info, buf, shoff + lay.shdr_info_off,
                           "section header 0", path)
    if phnum and phentsize < lay.phdr_size:
        raise ElfError(f"{path}: program header entry size {phentsize} is too small")
    phdrs = [_unpack(lay.phdr, buf, phoff + i * phentsize, "program header", path)
             for i in range(phnum)]
    interp = _read_interp(buf, phdrs, path)
    dynamic = _read_dynamic(buf, phdrs, lay, path)
    return _decode_dynamic(buf, phdrs, dynamic, path, ElfInfo(
        path=path, elf_class=elf_class, data=data, machine=machine, type=e_type,
        interp=interp, needed=(), soname=None, rpath=(), runpath=(), nodeflib=False))


def _segment(buf: _Buffer, offset: int, size: int, what: str, path: str) -> bytes:
    if offset < 0 or size < 0 or offset + size > len(buf):
        raise ElfError(f"{path}: {what} (offset {offset}, {size} bytes) lies outside "
                       f"the file ({len(buf)} bytes)")
    return bytes(buf[offset:offset + size])


def _read_interp(buf: _Buffer, phdrs: Sequence[tuple[int, ...]], path: str) -> str | None:
    for p_type, p_offset, _vaddr, p_filesz in phdrs:
        if p_type == PT_INTERP:
            raw = _segment(buf, p_offset, p_filesz, "PT_INTERP", path)
            name = raw.split(b"\0", 1)[0]
            if not name:
                raise ElfError(f"{path}: empty PT_INTERP")
            return os.fsdecode(name)
    return None


def _read_dynamic(buf: _Buffer, phdrs: Sequence[tuple[int, ...]], lay: _Layout,
                  path: str) -> list[tuple[int, int]]:
    """The (tag, value) pairs of PT_DYNAMIC up to DT_NULL; [] for static files."""
    for p_type, p_offset, _vaddr, p_filesz in phdrs:
        if p_type != PT_DYNAMIC:
            continue
        raw = _segment(buf, p_offset, p_filesz, "PT_DYNAMIC", path)
        step = struct.calcsize(lay.dyn)
        entries = []
        for off in range(0, len(raw) - step + 1, step):
            tag, val = struct.unpack_from(lay.dyn, raw, off)
            if tag == DT_NULL:
                break
            entries.append((tag, val))
        return entries
    return []


def _vaddr_to_offset(phdrs: Sequence[tuple[int, ...]], vaddr: int, path: str) -> int:
    """DT_STRTAB is a run-time address; find it in the file through PT_LOAD."""
    for p_type, p_offset, p_vaddr, p_filesz in phdrs:
        if p_type == PT_LOAD and p_vaddr <= vaddr < p_vaddr + p_filesz:
            return vaddr - p_vaddr + p_offset
    raise ElfError(f"{path}: DT_STRTAB address {vaddr:#x} is in no PT_LOAD segment")


def _decode_dynamic(buf: _Buffer, phdrs: Sequence[tuple[int, ...]],
                    dynamic: list[tuple[int, int]], path: str, base: ElfInfo) -> ElfInfo:
    if not dynamic:
        return base
    tags = {tag: val for tag, val in reversed(dynamic)}  # first occurrence wins
    if DT_STRTAB not in tags or DT_STRSZ not in tags:
        raise ElfError(f"{path}: PT_DYNAMIC has no DT_STRTAB/DT_STRSZ")
    strtab = _segment(buf, _vaddr_to_offset(phdrs, tags[DT_STRTAB], path),
                      tags[DT_STRSZ], "dynamic string table", path)

    def string(offset: int) -> str:
        end = strtab.find(b"\0", offset)
        if offset >= len(strtab) or end < 0:
            raise ElfError(f"{path}: dynamic string offset {offset} is outside "
                           f"the string table ({len(strtab)} bytes)")
        return os.fsdecode(strtab[offset:end])

    def path_list(tag: int) -> tuple[str, ...]:
        # ld.so splits on ':' and drops empty entries (glibc fillin_rpath).
        return tuple(e for e in string(tags[tag]).split(":") if e) if tag in tags else ()

    runpath = path_list(DT_RUNPATH)
    return ElfInfo(
        path=base.path, elf_class=base.elf_class, data=base.data,
        machine=base.machine, type=base.type, interp=base.interp,
        needed=tuple(string(v) for t, v in dynamic if t == DT_NEEDED),
        soname=string(tags[DT_SONAME]) if DT_SONAME in tags else None,
        # glibc get-dynamic-info.h: "If both RUNPATH and RPATH are given, the
        # latter is ignored."
        rpath=() if runpath else path_list(DT_RPATH),
        runpath=runpath,
        nodeflib=bool(tags.get(DT_FLAGS_1, 0) & DF_1_NODEFLIB))


def is_elf(path: str) -> bool:
    """True if the file starts with the ELF magic (a cheap test, no parsing)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == _MAGIC
    except OSError:
        return False


def read_elf(path: str) -> ElfInfo:
    """Parse the ELF file at path; ElfError names the file on any failure."""
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size < 16:
                raise ElfError(f"{path}: not an ELF file")
            # mmap: libraries can be hundreds of MB and we read a few KB of them.
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
                return parse_elf(buf, path)
    except OSError as e:
        raise ElfError(f"{path}: {e.strerror}") from e


# --- where ld.so looks -------------------------------------------------------


@dataclass(frozen=True)
class Abi:
    """Per-architecture names that ld.so builds its paths from (Debian multiarch)."""

    triplet: str    # the multiarch directory under /lib and /usr/lib
    platform: str   # what $PLATFORM expands to

    @property
    def lib(self) -> str:
        # $LIB is the system library dir without its leading '/' on Debian:
        # measured with LD_DEBUG=libs, "$LIB" -> "lib/x86_64-linux-gnu".
        return f"lib/{self.triplet}" if self.triplet else "lib"


_ABIS: dict[tuple[int, int, int], Abi] = {
    (ELFCLASS64, ELFDATA2LSB, EM_X86_64): Abi("x86_64-linux-gnu", "x86_64"),
    (ELFCLASS32, ELFDATA2LSB, EM_X86_64): Abi("x86_64-linux-gnux32", "x86_64"),
    (ELFCLASS32, ELFDATA2LSB, EM_386): Abi("i386-linux-gnu", "i686"),
    (ELFCLASS64, ELFDATA2LSB, EM_AARCH64): Abi("aarch64-linux-gnu", "aarch64"),
    (ELFCLASS32, ELFDATA2LSB, EM_ARM): Abi("arm-linux-gnueabihf", "v7l"),
    (ELFCLASS64, ELFDATA2LSB, EM_RISCV): Abi("riscv64-linux-gnu", "riscv64"),
    (ELFCLASS64, ELFDATA2LSB, EM_PPC64): Abi("powerpc64le-linux-gnu", "ppc64le"),
    (ELFCLASS64, ELFDATA2MSB, EM_S390): Abi("s390x-linux-gnu", "s390x"),
}


def abi_of(info: ElfInfo) -> Abi:
    return _ABIS.get((info.elf_class, info.data, info.machine), Abi("", os.uname().machine))


def default_dirs(info: ElfInfo) -> tuple[str, ...]:
    """ld.so's built-in "system search path" for this object's ABI.

    Debian's loader lists /lib/TRIPLET, /usr/lib/TRIPLET, /lib, /usr/lib
    (`ld.so --help`); /lib64 and /usr/lib64 (other distributions' 64-bit
    system dirs) come last as a harmless fallback.
    """
    triplet = abi_of(info).triplet
    dirs = [f"/lib/{triplet}", f"/usr/lib/{triplet}"] if triplet else []
    dirs += ["/lib", "/usr/lib"]
    if info.elf_class == ELFCLASS64:
        dirs += ["/lib64", "/usr/lib64"]
    return tuple(dirs)


def ld_so_conf_dirs(conf: str = "/etc/ld.so.conf") -> tuple[str, ...]:
    """The directories ldconfig would put in the cache, in file order.

    Syntax per ldconfig(8) and glibc elf/ldconfig.c parse_conf: '#' starts a
    comment; `include PATTERN...` reads the files matching each glob (relative
    patterns are relative to the including file's directory); `hwcap` lines are
    obsolete and ignored; any other line is one directory, optionally with a
    `=TYPE` suffix.  A missing or unreadable file contributes nothing, as for
    ldconfig.
    """
    dirs: list[str] = []
    _parse_conf(conf, dirs, set(), 0)
    return tuple(dict.fromkeys(dirs))


def _parse_conf(conf: str, dirs: list[str], seen: set[str], depth: int) -> None:
    real = os.path.realpath(conf)
    if real in seen or depth > _MAX_INCLUDE_DEPTH:
        return  # an include loop: ldconfig would recurse forever; stop instead
    seen.add(real)
    try:
        with open(conf, encoding="utf-8", errors="surrogateescape") as f:
            lines = f.read().splitlines()
    except OSError:
        return
    for line in lines:
        line = line.split("#", 1)[0].strip()
        words = line.split()
        if not words:
            continue
        if words[0] == "include":
            for pattern in words[1:]:
                if not os.path.isabs(pattern):
                    pattern = os.path.join(os.path.dirname(conf), pattern)
                for path in sorted(glob.glob(pattern)):
                    _parse_conf(path, dirs, seen, depth + 1)
        elif words[0] != "hwcap":
            dirs.append(line.split("=", 1)[0].rstrip().rstrip("/") or "/")


def expand_tokens(entry: str, origin: str, abi: Abi) -> str | None:
    """Expand $ORIGIN, $LIB and $PLATFORM (ld.so(8) "Dynamic string tokens").

    Returns None for an entry with an unknown token: ld.so drops such entries.
    """
    out: list[str] = []
    values = {"ORIGIN": origin, "LIB": abi.lib, "PLATFORM": abi.platform}
    i = 0
    while i < len(entry):
        if entry[i] != "$":
            out.append(entry[i])
            i += 1
            continue
        if entry.startswith("{", i + 1):
            end = entry.find("}", i + 2)
            name = entry[i + 2:end] if end > 0 else ""
            i = end + 1 if end > 0 else len(entry)
        else:
            j = i + 1
            while j < len(entry) and (entry[j].isalnum() or entry[j] == "_"):
                j += 1
            name, i = entry[i + 1:j], j
        if name not in values:
            return None
        out.append(values[name])
    return "".join(out)


# --- resolution --------------------------------------------------------------


@dataclass(frozen=True)
class Library:
    """One shared object that ld.so would load."""

    name: str        # the DT_NEEDED entry
    path: str        # where it was found (not realpath'd: symlinks matter to us)
    needed_by: str   # the object whose DT_NEEDED named it first
    via: str         # "path", "rpath", "runpath", "ld.so.conf" or "default"


@dataclass(frozen=True)
class Dependencies:
    """Everything the program at `path` loads: its interpreter and libraries."""

    path: str
    interp: str | None
    libraries: tuple[Library, ...]

    def paths(self) -> tuple[str, ...]:
        """The files to copy: the interpreter first, then libraries in load order."""
        return ((self.interp,) if self.interp else ()) + tuple(
            lib.path for lib in self.libraries)


class Resolver:
    """Finds libraries like ld.so on this host, and the transitive closure.

    conf_dirs and system_dirs may be injected (tests); by default they are
    read from /etc/ld.so.conf and computed per ABI.
    """

    def __init__(self, conf_dirs: Sequence[str] | None = None,
                 system_dirs: Sequence[str] | None = None) -> None:
        self._conf_dirs = tuple(conf_dirs) if conf_dirs is not None else None
        self._system_dirs = tuple(system_dirs) if system_dirs is not None else None
        self._cache: dict[str, ElfInfo | None] = {}

    def conf_dirs(self) -> tuple[str, ...]:
        if self._conf_dirs is None:
            self._conf_dirs = ld_so_conf_dirs()
        return self._conf_dirs

    def _info(self, path: str) -> ElfInfo | None:
        """Parsed ELF at path, or None if it is missing or not ELF (skipped by ld.so)."""
        if path not in self._cache:
            try:
                self._cache[path] = read_elf(path) if os.path.isfile(path) else None
            except ElfError:
                self._cache[path] = None
        return self._cache[path]

    def find(self, name: str, requester: ElfInfo, loaders: Sequence[ElfInfo],
             program: ElfInfo) -> Library:
        """Locate DT_NEEDED `name` of `requester`; loaders is its chain up to program."""
        if "/" in name:  # ld.so(8): a name with a slash is used as a path
            info = self._info(name)
            if info is None or not info.same_abi(program):
                raise ElfError(f"{name}: cannot open shared object (needed by "
                               f"{requester.path})")
            return Library(name, name, requester.path, "path")
        for via, directory in self._search_path(requester, loaders, program):
            candidate = os.path.join(directory, name)
            info = self._info(candidate)
            if info is not None and info.same_abi(program):
                return Library(name, candidate, requester.path, via)
        raise ElfError(f"{name}: library not found (needed by {requester.path})")

    def _search_path(self, requester: ElfInfo, loaders: Sequence[ElfInfo],
                     program: ElfInfo) -> Iterable[tuple[str, str]]:
        abi = abi_of(program)
        if not requester.runpath:
            # glibc dl-load.c: the RPATH of the requester, then of its loaders
            # up to the program; an object with RUNPATH has no RPATH.
            chain = [requester, *loaders]
            if program not in chain:
                chain.append(program)
            for obj in chain:
                yield from (("rpath", d) for d in _expand_all(obj.rpath, obj, program, abi))
        yield from (("runpath", d)
                    for d in _expand_all(requester.runpath, requester, program, abi))
        if requester.nodeflib:
            return
        system = self._system_dirs if self._system_dirs is not None else default_dirs(program)
        # A conf dir that is also a system dir is labelled "default": only
        # libraries found through the other conf dirs need an ld.so.cache in
        # the jail (roots/service.py copies the host's then).
        yield from (("default" if d in system else "ld.so.conf", d)
                    for d in self.conf_dirs())
        yield from (("default", d) for d in system)

    def closure(self, path: str) -> Dependencies:
        """All objects ld.so loads for the program at path, breadth first.

        Like ld.so, a name already loaded (by DT_NEEDED name or by SONAME) is
        not searched for again.
        """
        program = read_elf(path)
        interp = program.interp
        names: set[str] = set()
        if interp is not None:
            ld_so = self._info(interp)
            if ld_so is None:
                raise ElfError(f"{interp}: program interpreter not found or not ELF "
                               f"(needed by {path})")
            # ld.so is loaded first and answers to its SONAME: libc's
            # DT_NEEDED "ld-linux-x86-64.so.2" is never searched for.
            names.update(n for n in (ld_so.soname, interp) if n)
        loaded: dict[str, Library] = {}
        queue: deque[tuple[ElfInfo, tuple[ElfInfo, ...]]] = deque([(program, ())])
        while queue:
            obj, loaders = queue.popleft()
            for name in obj.needed:
                if name in names:
                    continue
                lib = self.find(name, obj, loaders, program)
                info = self._info(lib.path)
                assert info is not None  # find() only returns parsed objects
                names.add(name)
                if info.soname:
                    names.add(info.soname)
                if lib.path in loaded:
                    continue  # the same path under two DT_NEEDED names
                loaded[lib.path] = lib
                queue.append((info, (obj, *loaders)))
        return Dependencies(path, interp, tuple(loaded.values()))


def _expand_all(entries: Sequence[str], obj: ElfInfo, program: ElfInfo,
                abi: Abi) -> list[str]:
    origin = _origin(obj, program)
    out = []
    for entry in entries:
        expanded = expand_tokens(entry, origin, abi)
        if expanded is not None:
            out.append(expanded.rstrip("/") or "/")
    return out


def _origin(obj: ElfInfo, program: ElfInfo) -> str:
    # ld.so takes the program's $ORIGIN from /proc/self/exe (symlinks resolved)
    # and a library's from the path it was opened by (dl-object.c).
    if obj is program:
        return os.path.dirname(os.path.realpath(obj.path))
    return os.path.dirname(os.path.abspath(obj.path))

