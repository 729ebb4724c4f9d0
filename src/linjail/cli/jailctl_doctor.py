"""`jailctl doctor`: what this host offers linjail and what it lacks, one screen.

The first thing to run when something does not work.  One line per
facility: `OK`, `missing` (with what the lack costs) or `unknown` (a check
only root can make), the facility, what was found.  Exit status 1 when
something that `jail` itself needs is missing, else 0.

Nothing on the host changes: namespaces are created by a forked child that
then exits; the idmapped-mount probe maps a detached clone of `/` that is
never attached (it goes with its descriptor); nftables and seccomp are only
asked.  Kernel options come from /proc/config.gz where the kernel has one.
"""
from __future__ import annotations

import os
import shutil
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, TextIO

OK, MISSING, UNKNOWN = "OK", "missing", "unknown"
NAMESPACES = (("mnt", 0x00020000), ("pid", 0x20000000), ("uts", 0x04000000),
              ("ipc", 0x08000000), ("net", 0x40000000), ("cgroup", 0x02000000))
#: what rctl's resources need (v2 name; the v1 hierarchy of the same job)
CONTROLLERS = (("memory", "memory"), ("pids", "pids"), ("cpu", "cpu"), ("io", "blkio"))
MIN_KERNEL = (5, 14)
USAGE = "usage: jailctl doctor"

Result = tuple[str, str]        # (status, what was found or what is lacking)


def main_doctor(args: list[str], out: TextIO, err: TextIO) -> int:
    from ..errors import UsageError
    if args:
        raise UsageError(USAGE)
    from .. import __version__
    out.write(f"linjail {__version__} doctor: what this host offers jails\n")
    missing_required = False
    for name, check, required in CHECKS:
        try:
            status, detail = check()
        except OSError as e:     # a probe that could not even ask
            status, detail = MISSING, f"{e.strerror or e}"
        out.write(f"{status:<8} {name:<19} {detail}".rstrip() + "\n")
        missing_required |= required and status == MISSING
    return 1 if missing_required else 0


# -- helpers -------------------------------------------------------------------------------

_CONFIG: dict[str, str] | None = None


def kernel_config(path: str = "/proc/config.gz") -> dict[str, str]:
    """CONFIG_X -> y|m from the running kernel's config, {} when it has none."""
    global _CONFIG
    if _CONFIG is None:
        import gzip
        _CONFIG = {}
        try:
            with gzip.open(path, "rt") as f:
                for line in f:
                    key, sep, value = line.strip().partition("=")
                    if sep and key.startswith("CONFIG_"):
                        _CONFIG[key] = value
        except OSError:
            pass
    return _CONFIG


def built(option: str, module: str, filesystem: str = "") -> bool | None:
    """Whether the kernel has OPTION (built in or as MODULE); None: cannot tell."""
    if filesystem:
        try:
            with open("/proc/filesystems") as f:
                if any(line.split()[-1] == filesystem for line in f if line.strip()):
                    return True
        except OSError:
            pass
    if os.path.isdir(f"/sys/module/{module}"):
        return True
    config = kernel_config()
    if config:
        return config.get(option) in ("y", "m")
    release = os.uname().release
    try:
        with open(f"/lib/modules/{release}/modules.dep") as f:
            return any(f"/{module}.ko" in line.split(":")[0] for line in f)
    except OSError:
        return None


def in_child(probe: Callable[[], str]) -> str:
    """PROBE() in a forked child that exits afterwards (namespaces die with it);
    its answer, or "!" and the error, comes back through a pipe."""
    r, w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:            # pragma: no cover (the child)
        try:
            os.close(r)
            try:
                answer = probe()
            except OSError as e:
                answer = "!" + (e.strerror or str(e))
            os.write(w, answer.encode())
        finally:
            os._exit(0)
    os.close(w)
    chunks = []
    while chunk := os.read(r, 4096):
        chunks.append(chunk)
    os.close(r)
    os.waitpid(pid, 0)
    return b"".join(chunks).decode()


def _root() -> bool:
    return os.geteuid() == 0


# -- the checks ----------------------------------------------------------------------------

def check_kernel() -> Result:
    u = os.uname()
    try:
        version = tuple(int(x) for x in u.release.split("-")[0].split(".")[:2])
    except ValueError:
        return UNKNOWN, f"Linux {u.release} {u.machine}"
    if version < MIN_KERNEL or u.machine != "x86_64":
        return MISSING, (f"Linux {u.release} {u.machine}: linjail needs x86-64 Linux >= "
                         f"{MIN_KERNEL[0]}.{MIN_KERNEL[1]}")
    return OK, f"Linux {u.release} {u.machine}"


def check_namespaces() -> Result:
    def probe() -> str:
        from ..kernel import libc
        if not _root():         # a user namespace gives the right to make the others
            libc.unshare(libc.CLONE_NEWUSER)
        lines = []
        for name, flag in NAMESPACES:
            try:
                libc.unshare(flag)
                lines.append(f"{name}\t")
            except OSError as e:
                lines.append(f"{name}\t{e.strerror}")
        return "\n".join(lines)
    answer = in_child(probe)
    if answer.startswith("!"):
        return (MISSING if _root() else UNKNOWN), f"cannot make a user namespace: {answer[1:]}"
    made, lacking = [], []
    for line in answer.splitlines():
        name, _, error = line.partition("\t")
        (lacking.append(f"{name} ({error})") if error else made.append(name))
    if lacking:
        return MISSING, "cannot make " + ", ".join(lacking)
    return OK, " ".join(made)


def check_userns() -> Result:
    try:
        with open("/proc/sys/user/max_user_namespaces") as f:
            limit = f.read().strip()
    except OSError:
        limit = "?"

    def probe() -> str:
        from ..kernel import libc
        libc.unshare(libc.CLONE_NEWUSER)
        return "made"
    answer = in_child(probe)
    if answer.startswith("!"):
        return MISSING, (f"{answer[1:]} (max_user_namespaces {limit}): the jail's hostname "
                         "needs one")
    return OK, f"max {limit} (one owns each jail's UTS namespace)"


def check_cgroup2() -> Result:
    from ..confine import cglayout
    layout = cglayout.discover()
    if not layout.v2:
        return MISSING, "no cgroup2 mounted: a jail needs its own cgroup v2"
    return OK, f"{layout.v2} ({'hybrid: v1 beside it' if layout.v1 else 'unified'})"


def check_controllers() -> Result:
    from ..confine import cglayout
    layout = cglayout.discover()
    v2: list[str] = []
    v1: list[str] = []
    lack: list[str] = []
    for name, v1_name in CONTROLLERS:
        if name in layout.v2_controllers:
            v2.append(name)
        elif v1_name in layout.v1:
            v1.append(v1_name)
        else:
            lack.append(name)
    have = "; ".join(f"{k}: {' '.join(n)}" for k, n in (("v2", v2), ("v1", v1)) if n)
    if lack:
        return MISSING, f"{' '.join(lack)} (rctl refuses rules on them); {have or 'none'}"
    return OK, have


def check_idmap() -> Result:
    """A detached clone of / mapped through a fresh user namespace (never attached)."""
    if not _root():
        return UNKNOWN, "root checks this"
    from ..kernel import libc
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    done_r, done_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:            # pragma: no cover (the child: owns the user namespace)
        try:
            os.close(ready_r)
            os.close(done_w)
            libc.unshare(libc.CLONE_NEWUSER)
            os.write(ready_w, b"1")
            os.read(done_r, 1)
        finally:
            os._exit(0)
    os.close(ready_w)
    os.close(done_r)
    fs = _fstype("/")
    try:
        if os.read(ready_r, 1) != b"1":
            return MISSING, "cannot make a user namespace to map through"
        for name in ("uid_map", "gid_map"):
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write("0 100000 65536\n")
        ns = os.open(f"/proc/{pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
        try:
            tree = libc.open_tree(-100, "/", libc.OPEN_TREE_CLONE | os.O_CLOEXEC)
            try:
                libc.mount_setattr(tree, "", libc.AT_EMPTY_PATH, libc.MOUNT_ATTR_IDMAP,
                                   userns_fd=ns)
            finally:
                os.close(tree)
        finally:
            os.close(ns)
    except OSError as e:
        return MISSING, f"on / ({fs}): {e.strerror} (a jail root with shifted ids)"
    finally:
        os.close(ready_r)
        os.close(done_w)
        os.waitpid(pid, 0)
    return OK, f"on / ({fs})"


def _fstype(path: str) -> str:
    best, kind = "", "?"
    try:
        with open("/proc/self/mounts") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and path.startswith(fields[1]) and \
                        len(fields[1]) >= len(best):
                    best, kind = fields[1], fields[2]
    except OSError:
        pass
    return kind


def check_seccomp() -> Result:
    try:
        with open("/proc/sys/kernel/seccomp/actions_avail") as f:
            actions = f.read().split()
    except OSError:
        return MISSING, "no seccomp filter mode in this kernel"
    if "errno" not in actions or "kill_process" not in actions:
        return MISSING, f"the kernel lacks seccomp actions errno/kill_process ({actions})"
    from ..confine import libseccomp
    path = libseccomp.library_path()
    if path is None:
        return MISSING, "libseccomp.so.2 not found (Debian: libseccomp2)"
    return OK, f"filter mode, libseccomp {libseccomp.libseccomp_version()}"


def check_openat2() -> Result:
    from ..kernel import libc
    try:
        fd = libc.openat2(-100, "/", os.O_PATH, libc.RESOLVE_IN_ROOT)
    except OSError as e:
        return MISSING, f"{e.strerror} (it resolves every path in a jail root)"
    os.close(fd)
    return OK, "RESOLVE_IN_ROOT (every path in a jail root)"


def _kernel_feature(option: str, module: str, what: str, filesystem: str = "") -> Result:
    found = built(option, module, filesystem)
    if found is None:
        return UNKNOWN, f"no kernel config to read ({what})"
    if not found:
        return MISSING, f"{option} is off: {what}"
    return OK, what


def check_overlay() -> Result:
    return _kernel_feature("CONFIG_OVERLAY_FS", "overlay", "thin jails", "overlay")


def check_veth() -> Result:
    return _kernel_feature("CONFIG_VETH", "veth", "the link to a jail with addresses")


def check_macvlan() -> Result:
    return _kernel_feature("CONFIG_MACVLAN", "macvlan", "rc.conf jail_NAME_interface")


def check_nftables() -> Result:
    if not _root():
        return _kernel_feature("CONFIG_NF_TABLES", "nf_tables", "jails' source addresses")
    from ..confine import net
    from ..kernel import netlink
    try:
        with netlink.Nftables() as nft:
            table = nft.table_userdata(netlink.NFPROTO_INET, net.FILTER_TABLE)
    except OSError as e:
        return MISSING, f"{e.strerror}: a jail's source addresses cannot be enforced"
    state = "loaded" if table is not None else "loaded at the first jail start"
    return OK, f"inet {net.FILTER_TABLE} table {state}"


def check_python() -> Result:
    v = sys.version_info
    text = f"{v.major}.{v.minor}.{v.micro} {sys.executable}"
    return (OK if v >= (3, 11) else MISSING), text


def check_reaper() -> Result:
    from ..lifecycle.start import REAPER
    try:
        with open(REAPER, "rb") as f:
            head = f.read(64)
    except OSError as e:
        return MISSING, f"{REAPER}: {e.strerror} (make dev or reinstall builds it)"
    if head[:4] != b"\x7fELF":
        return MISSING, f"{REAPER}: not an ELF program"
    return OK, REAPER


def check_musl() -> Result:
    path = shutil.which("musl-gcc")
    if path is None:
        return MISSING, "to build from source (Debian: musl-tools)"
    return OK, f"{path} (builds the reaper, launchers)"


def check_debootstrap() -> Result:
    path = shutil.which("debootstrap", path="/usr/sbin:/usr/bin:/sbin:/bin")
    if path is None:
        return MISSING, "jailctl build --complete needs it (Debian: debootstrap)"
    return OK, f"{path} (jailctl build --complete)"


def check_state() -> Result:
    import stat
    from ..state import registry
    top = registry.state_dir()
    try:
        st = os.stat(top)
    except FileNotFoundError:
        return OK, f"{top} (made by the first jail)"
    except OSError as e:
        return MISSING, f"{top}: {e.strerror}"
    mode = stat.S_IMODE(st.st_mode)
    if st.st_uid != 0 or mode & 0o022:
        return MISSING, f"{top}: mode {mode:04o}, owner {st.st_uid} (only root may write)"
    return OK, f"{top} (mode {mode:04o}: jls for every user)"


#: (facility, check, whether `jail` needs it)
CHECKS: tuple[tuple[str, Callable[[], Result], bool], ...] = (
    ("kernel", check_kernel, True),
    ("namespaces", check_namespaces, True),
    ("user namespaces", check_userns, True),
    ("cgroup v2", check_cgroup2, True),
    ("cgroup controllers", check_controllers, False),
    ("idmapped mounts", check_idmap, False),
    ("seccomp", check_seccomp, True),
    ("openat2", check_openat2, True),
    ("overlayfs", check_overlay, False),
    ("veth", check_veth, True),
    ("macvlan", check_macvlan, False),
    ("nftables", check_nftables, True),
    ("python", check_python, True),
    ("reaper", check_reaper, True),
    ("musl-gcc", check_musl, False),
    ("debootstrap", check_debootstrap, False),
    ("state", check_state, True),
)
