"""libseccomp, bound with ctypes: found and identified without loading it
(the cache key of a jail's program names the library that compiled it),
loaded only when a program has to be compiled (seccomp_compile.py) or its
version is asked (jailctl doctor)."""
from __future__ import annotations

import ctypes
import errno
import os
import sys

_LIB_NAME = "libseccomp.so.2"


def _library_dirs() -> list[str]:
    multiarch = getattr(sys.implementation, "_multiarch", "")
    dirs = [f"/usr/lib/{multiarch}", f"/lib/{multiarch}"] if multiarch else []
    return dirs + ["/usr/lib64", "/lib64", "/usr/lib", "/lib", "/usr/local/lib"]


def library_path() -> str | None:
    for directory in _library_dirs():
        path = os.path.join(directory, _LIB_NAME)
        if os.path.exists(path):
            return path
    return None


def library_identity() -> str:
    """Which libseccomp would compile the filter, by its file (the soname
    symlink's target, size and mtime), so that an upgrade invalidates the
    cache without the hot path loading the library."""
    path = library_path()
    if path is None:
        return "libseccomp:none"
    st = os.stat(path)
    return f"{os.path.basename(os.path.realpath(path))}:{st.st_size}:{st.st_mtime_ns}"


class ScmpArgCmp(ctypes.Structure):
    # struct scmp_arg_cmp (seccomp.h)
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class _ScmpVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint), ("minor", ctypes.c_uint), ("micro", ctypes.c_uint)]


def load_library() -> ctypes.CDLL:
    path = library_path() or _LIB_NAME
    try:
        lib = ctypes.CDLL(path, use_errno=True)
    except OSError as e:
        raise OSError(errno.ENOENT, f"load {path}: {e} (install libseccomp2)", path) from None
    vp = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = vp
    lib.seccomp_release.argtypes = [vp]
    lib.seccomp_release.restype = None
    lib.seccomp_attr_set.argtypes = [vp, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [vp, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint,
                                           ctypes.POINTER(ScmpArgCmp)]
    lib.seccomp_export_bpf.argtypes = [vp, ctypes.c_int]
    lib.seccomp_version.restype = ctypes.POINTER(_ScmpVersion)
    return lib


def libseccomp_version() -> str:
    v = load_library().seccomp_version().contents
    return f"{v.major}.{v.minor}.{v.micro}"


def lib_check(rc: int, what: str) -> None:
    # libseccomp returns -errno (seccomp_rule_add(3))
    if rc < 0:
        raise OSError(-rc, f"{what}: {os.strerror(-rc)}")
