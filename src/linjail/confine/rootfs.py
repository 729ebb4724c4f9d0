"""The jail's file system view (SPEC §7 "Filesystem", "/dev", "/proc").

Runs in the jail's first process, in its new mount namespace, before
pivot_root.  The jail's tree belongs to jailed root, so no path inside it is
ever resolved by the host's view: each target is opened with openat2 relative
to the jail root (RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS) and mounted through
its descriptor (/proc/self/fd/N or move_mount), the lesson of LXC
CVE-2015-1335 and runc CVE-2021-30465.  A failure is an OpError naming the
path as the user knows it, never the descriptor it went through.
"""
from __future__ import annotations

import errno
import os
import stat

from ..errors import OpError, os_error
from ..kernel import libc
from ..model import Mount, User
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterator

_RESOLVE = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_NO_MAGICLINKS
_DEV_NODES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
              ("urandom", 1, 9), ("tty", 5, 0))
_DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
              ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"),
              ("ptmx", "pts/ptmx"))
# OCI readonlyPaths, and the masked paths of runc/Docker + nspawn (linux-hardening §2.2)
PROC_READONLY = ("bus", "fs", "irq", "sys", "sysrq-trigger")
PROC_MASKED_FILES = ("kcore", "keys", "key-users", "timer_list", "timer_stats",
                     "sched_debug", "latency_stats", "kallsyms", "kmsg", "kpagecount",
                     "kpageflags", "kpagecgroup", "config.gz", "vmallocinfo", "mem",
                     "kmem", "pagetypeinfo", "buddyinfo", "modules",
                     "interrupts")    # Docker, GHSA-6fw5-f8r9-fgfm
PROC_MASKED_DIRS = ("acpi", "scsi", "asound", "driver", "tty/driver")
# the OCI runtimes' /sys masks (runc spec, Docker): firmware tables (ACPI,
# memmap) and RAPL energy counters (GHSA-jq35-85cj-fj4p); SPEC §6 denies
# reading "the other paths the OCI runtimes mask" (found by the escape tests)
SYS_MASKED_DIRS = ("firmware", "devices/virtual/powercap")


def fdpath(fd: int) -> str:
    return f"/proc/self/fd/{fd}"


def _mount(source: str | None, target: int, shown: str, fstype: str, flags: int,
           data: str | None = None) -> None:
    """mount(2) onto the directory TARGET (a descriptor, reached through
    /proc/self/fd/N); a failure names SHOWN, its path in the jail's tree."""
    try:
        libc.mount(source, fdpath(target), fstype, flags, data)
    except OSError as err:
        raise os_error(err, shown) from None


@record(frozen=False)
class Root(Record):
    """The jail's root, attached in this mount namespace; fd is its top."""
    path: str
    fd: int

    def open(self, rel: str, flags: int = os.O_PATH, *, what: str = "") -> int:
        """Open REL inside the root; a symlink anywhere on the way is refused."""
        try:
            # no O_NOFOLLOW: with it, O_PATH would open a trailing symlink itself
            # instead of failing; RESOLVE_NO_SYMLINKS makes any symlink ELOOP
            return libc.openat2(self.fd, rel, flags, _RESOLVE)
        except OSError as err:
            shown = os.path.join(self.path, rel.lstrip("/"))
            if err.errno == errno.ELOOP:
                raise OpError("openat2", shown, errno.ELOOP, detail="is a symbolic link, "
                              f"refusing to {what or 'use it'}") from None
            raise OpError("openat2", shown, err.errno or 0) from None

    def make(self, rel: str, directory: bool = True) -> None:
        """Create REL inside the root if it is missing (an OCI mount
        destination), each missing component in turn through the
        descriptor of its parent: a symlink anywhere on the way is refused
        as in open().  DIRECTORY False makes the last component an empty file
        (the target of a file bind)."""
        parts = [p for p in rel.split("/") if p and p != "."]
        if ".." in parts:
            raise OpError("mkdir", os.path.join(self.path, rel.lstrip('/')), errno.EINVAL,
                          detail="'..' in a mount destination")
        for i in range(len(parts)):
            sub = "/".join(parts[:i + 1])
            try:
                libc.close(libc.openat2(self.fd, sub, os.O_PATH, _RESOLVE))
                continue
            except OSError as err:
                if err.errno != errno.ENOENT:
                    self.open(sub)        # raises the one-line error
            parent = self.open("/".join(parts[:i]) or ".", os.O_PATH | os.O_DIRECTORY)
            try:
                if directory or i < len(parts) - 1:
                    libc.mkdir(parts[i], 0o755, dir_fd=parent)
                else:
                    libc.close(libc.open(parts[i], os.O_WRONLY | os.O_CREAT | os.O_EXCL |
                                     os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=parent))
            except FileExistsError:
                pass
            except OSError as err:
                raise OpError("mkdir", os.path.join(self.path, sub), err.errno or 0) from None
            finally:
                libc.close(parent)

    def exists_dir(self, rel: str) -> bool:
        """True if REL is a real directory in the root (a symlink is an error)."""
        try:
            fd = libc.openat2(self.fd, rel, os.O_PATH, _RESOLVE)
        except OSError as err:
            if err.errno == errno.ENOENT:
                return False
            if err.errno == errno.ELOOP:
                raise OpError("openat2", os.path.join(self.path, rel), errno.ELOOP,
                              detail=f"is a symbolic link, refusing to mount /{rel} there") \
                    from None
            raise
        try:
            st = libc.fstat(fd)
        finally:
            libc.close(fd)
        if not stat.S_ISDIR(st.st_mode):
            raise OpError("openat2", os.path.join(self.path, rel), errno.ENOTDIR)
        return True


def attach_tree(path: str, tree: int) -> Root:
    """Attach TREE, the jail's root made on the host side (confine/userns.py),
    onto the working directory: the root PATH, which the first process
    entered while it could still reach it."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_SLAVE)
    here = libc.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        attach(tree, here)
    finally:
        libc.close(here)
    return Root(path, tree)


def attach_root(path: str, overlay: tuple[str, str] | None = None) -> Root:
    """Bind the root recursively onto itself, nodev, in this namespace."""
    libc.mount(None, "/", None, libc.MS_REC | libc.MS_SLAVE)
    try:
        fd = libc.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise OpError("open", path, err.errno or 0) from None
    if overlay is not None:
        lower, top = overlay
        opts = f"lowerdir={lower},upperdir={top}/upper,workdir={top}/work"
        _mount("overlay", fd, path, "overlay", libc.MS_NODEV, opts)
        libc.close(fd)
        fd = libc.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        return Root(path, fd)
    try:
        tree = libc.open_tree(fd, "", libc.OPEN_TREE_CLONE | libc.AT_RECURSIVE |
                              libc.AT_EMPTY_PATH | os.O_CLOEXEC)
        libc.mount_setattr(tree, "", libc.AT_EMPTY_PATH | libc.AT_RECURSIVE,
                           libc.MOUNT_ATTR_NODEV)
        libc.move_mount(tree, "", fd, "", libc.MOVE_MOUNT_F_EMPTY_PATH |
                        libc.MOVE_MOUNT_T_EMPTY_PATH)
    except OSError as err:
        raise os_error(err, path) from None
    libc.close(fd)
    return Root(path, tree)


#: devpts options an OCI config may set (the rest is linjail's: newinstance)
DEVPTS_OPTIONS = ("ptmxmode", "mode", "gid", "uid", "max")


def mount_dev(root: Root, devpts_extra: str = "", rel: str = "dev",
              submounts: bool = True, source: str = "tmpfs", tree: int | None = None) -> None:
    """The jail's /dev: a small tmpfs, six nodes, a private devpts, shm.

    DEVPTS_EXTRA: more devpts options (rctl's pseudoterminals: `,max=N`).
    SUBMOUNTS False (an OCI config, which lists devpts and shm as mounts of
    their own): only the tmpfs, its nodes and links, and the empty
    directories pts, shm and mqueue.  TREE: that tmpfs already made and
    filled (dev_tmpfs: a jail with a user namespace), to attach."""
    fd = root.open(rel, what="mount /dev there")
    shown = os.path.join(root.path, rel)
    try:
        if tree is None:
            _mount(source, fd, shown, "tmpfs", libc.MS_NOSUID | libc.MS_NOEXEC, DEV_OPTIONS)
        else:
            attach(tree, fd)
    finally:
        libc.close(fd)
    dev = root.open(rel, os.O_PATH | os.O_DIRECTORY)
    try:
        if tree is None:
            fill_dev(dev, submounts)
        if not submounts:
            return
        pts = libc.openat2(dev, "pts", os.O_PATH | os.O_DIRECTORY, _RESOLVE)
        _mount("devpts", pts, f"{shown}/pts", "devpts", libc.MS_NOSUID | libc.MS_NOEXEC,
               "newinstance,ptmxmode=0666,mode=0620" + devpts_extra)
        libc.close(pts)
        shm = libc.openat2(dev, "shm", os.O_PATH | os.O_DIRECTORY, _RESOLVE)
        _mount("tmpfs", shm, f"{shown}/shm", "tmpfs",
               libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "mode=1777,size=64m")
        libc.close(shm)
    finally:
        libc.close(dev)


_DEV_TMPFS: tuple[tuple[str, str | int | None], ...] = (
    ("mode", "755"), ("size", "64k"), ("nr_inodes", "64"))
DEV_OPTIONS = ",".join(f"{key}={value}" for key, value in _DEV_TMPFS)


def dev_tmpfs() -> int:
    """The jail's /dev tmpfs, filled, detached: its mount descriptor."""
    tree = libc.fsmount_new("tmpfs", libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC,
                            _DEV_TMPFS)
    try:
        fill_dev(tree)
    except BaseException:
        libc.close(tree)
        raise
    return tree


def fill_dev(dev: int, submounts: bool = True) -> None:
    """The nodes, links and mount points of a fresh /dev tmpfs at DEV (and
    mqueue's without SUBMOUNTS: mount_dev)."""
    for name, major, minor in _DEV_NODES:
        try:
            libc.mknod(name, 0o666 | stat.S_IFCHR, os.makedev(major, minor), dir_fd=dev)
        except PermissionError:
            # in a user namespace (an OCI config's, confine/userns.py) a node
            # is the host's, bound onto an empty file, as runc does there
            _bind_host_node(dev, name, os.makedev(major, minor))
            continue
        # 0666 whatever the caller's umask (mknod applies it): every user
        # of the jail writes /dev/null
        libc.chmod(name, 0o666, dir_fd=dev)   # our fresh tmpfs: no symlink there
    for name, target in _DEV_LINKS:
        libc.symlink(target, name, dir_fd=dev)
    for sub in ("pts", "shm") if submounts else ("pts", "shm", "mqueue"):
        libc.mkdir(sub, 0o755, dir_fd=dev)


def _bind_host_node(dev: int, name: str, rdev: int) -> None:
    """The host's /dev/NAME (that character device, checked) bound onto a
    new empty file NAME of the tmpfs DEV."""
    path = f"/dev/{name}"
    src = libc.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        st = os.fstat(src)
        if not stat.S_ISCHR(st.st_mode) or st.st_rdev != rdev:
            raise OpError("bind", path, errno.ENODEV, detail="not the device it names")
        libc.close(libc.openat2(dev, name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC,
                                _RESOLVE, 0o666))
        target = libc.openat2(dev, name, os.O_PATH | os.O_CLOEXEC, _RESOLVE)
        try:
            bind_onto(src, target, libc.MOUNT_ATTR_NOSUID | libc.MOUNT_ATTR_NOEXEC,
                      recursive=False, shown=path)
        finally:
            libc.close(target)
    finally:
        libc.close(src)


def attach(tree: int, target: int) -> None:
    """Attach the detached mount TREE onto the directory TARGET (descriptors)."""
    libc.move_mount(tree, "", target, "", libc.MOVE_MOUNT_F_EMPTY_PATH |
                    libc.MOVE_MOUNT_T_EMPTY_PATH)


def open_pty(root: Root) -> tuple[int, int]:
    """A pty pair of the jail's devpts instance: (master, slave).

    TIOCGPTPEER (Linux 4.13) opens the slave from the master, so no path in
    the jail's /dev/pts is looked up by name.
    """
    master = root.open("dev/pts/ptmx", os.O_RDWR | os.O_NOCTTY)
    libc.ioctl(master, libc.TIOCSPTLCK, b"\0\0\0\0")
    slave = libc.ioctl(master, libc.TIOCGPTPEER, os.O_RDWR | os.O_NOCTTY | os.O_CLOEXEC)
    return master, slave


def mount_proc(root: Root, rel: str = "proc") -> None:
    """procfs of the jail's PID namespace, with the OCI read-only and masked paths."""
    fd = root.open(rel, what="mount /proc there")
    shown = os.path.join(root.path, rel)
    _mount("proc", fd, shown, "proc", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC)
    libc.close(fd)
    proc = root.open(rel, os.O_PATH | os.O_DIRECTORY)
    try:
        for rel in PROC_READONLY:
            for sub in _existing(proc, rel):
                bind_onto(sub, sub, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID |
                          libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC, shown=f"{shown}/{rel}")
        # Read-only binds: the mask is the host's /dev/null inode, and through
        # a writable bind jailed root (CAP_CHOWN, CAP_FOWNER) could chmod,
        # chown or touch the host's /dev/null as /proc/keys (found by the
        # escape tests).  Reads stay empty; the node still opens.
        null = libc.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
        try:
            for rel in PROC_MASKED_FILES:
                for sub in _existing(proc, rel):
                    bind_onto(null, sub, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID |
                              libc.MOUNT_ATTR_NOEXEC, shown=f"{shown}/{rel}")
        finally:
            libc.close(null)
        _mask_dirs(proc, shown, PROC_MASKED_DIRS)
    finally:
        libc.close(proc)


def _mask_dirs(dirfd: int, shown: str, names: tuple[str, ...]) -> None:
    """Cover each existing directory with an empty read-only tmpfs (SHOWN:
    the path of DIRFD, for messages)."""
    for rel in names:
        for sub in _existing(dirfd, rel):
            _mount("tmpfs", sub, f"{shown}/{rel}", "tmpfs", libc.MS_RDONLY |
                   libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC, "size=0,nr_inodes=1")


def bind_onto(src: int, target: int, attrs: int, recursive: bool = True, *,
              shown: str | None = None) -> None:
    """Bind the tree at SRC onto TARGET (both descriptors) with mount attributes;
    RECURSIVE False binds the one mount at SRC, without the mounts below it.
    A failure names SHOWN, the target's path in the jail's tree."""
    rec = libc.AT_RECURSIVE if recursive else 0
    try:
        tree = libc.open_tree(src, "", libc.OPEN_TREE_CLONE | rec |
                              libc.AT_EMPTY_PATH | os.O_CLOEXEC)
        try:
            libc.mount_setattr(tree, "", libc.AT_EMPTY_PATH | libc.AT_RECURSIVE, attrs)
            libc.move_mount(tree, "", target, "", libc.MOVE_MOUNT_F_EMPTY_PATH |
                            libc.MOVE_MOUNT_T_EMPTY_PATH)
        finally:
            libc.close(tree)
    except OSError as err:
        raise os_error(err, shown) from None


def _existing(dirfd: int, rel: str) -> Iterator[int]:
    try:
        fd = libc.openat2(dirfd, rel, os.O_PATH, _RESOLVE)
    except OSError:
        return
    try:
        yield fd
    finally:
        libc.close(fd)


def mount_sys(root: Root, rel: str = "sys") -> None:
    fd = root.open(rel, what="mount /sys there")
    shown = os.path.join(root.path, rel)
    try:
        _mount("sysfs", fd, shown, "sysfs", libc.MS_RDONLY | libc.MS_NOSUID |
               libc.MS_NODEV | libc.MS_NOEXEC)
    finally:
        libc.close(fd)
    sysfs = root.open(rel, os.O_PATH | os.O_DIRECTORY)
    try:
        _mask_dirs(sysfs, shown, SYS_MASKED_DIRS)
    finally:
        libc.close(sysfs)


def mount_extra(root: Root, m: Mount, tree: int | None = None) -> None:
    """An fstab mount: a host path bound in, or a tmpfs; target resolved in root.
    The kernel file systems of an OCI config go to their own functions.
    TREE: the bind already made (confine/userns.py: idmapped), to attach."""
    if "create" in m.attrs:       # an OCI destination: made when missing
        directory = m.kind != "bind" or os.path.isdir(m.source)
        root.make(m.target, directory)
    if m.kind in ("proc", "sysfs", "dev", "devpts", "mqueue", "cgroup"):
        _mount_kernel_fs(root, m)
        return
    target = root.open(m.target, what=f"mount {m.source or m.kind} there")
    shown = os.path.join(root.path, m.target.lstrip("/"))
    try:
        flags = libc.MS_NOSUID | libc.MS_NODEV
        if m.kind == "tmpfs":
            _mount(m.source or "tmpfs", target, shown, "tmpfs",
                   flags | (libc.MS_RDONLY if m.readonly else 0) |
                   (libc.MS_NOEXEC if "noexec" in m.attrs else 0), m.options or None)
            return
        if tree is not None:
            attach(tree, target)
            return
        try:
            src = libc.open(m.source, os.O_PATH | os.O_CLOEXEC)
        except OSError as err:
            raise OpError("open", m.source, err.errno or 0) from None
        try:
            bind_onto(src, target, bind_attributes(m), recursive="bind" not in m.attrs,
                      shown=shown)
        finally:
            libc.close(src)
    finally:
        libc.close(target)


def _mount_kernel_fs(root: Root, m: Mount) -> None:
    """The kernel file systems of an OCI config, each as linjail makes it
    for a jail: /proc with its masks, /sys read-only, the jail's own /dev,
    a devpts instance of its own, the IPC namespace's mqueue, and the jail's
    cgroups (its cgroup namespace's view) read-only."""
    rel = m.target.lstrip("/") or "."
    if m.kind == "proc":
        mount_proc(root, rel)
    elif m.kind == "sysfs":
        mount_sys(root, rel)
    elif m.kind == "dev":
        mount_dev(root, rel=rel, submounts=False, source=m.source or "tmpfs")
    elif m.kind == "cgroup":
        mount_cgroups(root, rel, frozenset(filter(None, m.options.split(","))))
    else:
        flags = libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
        fstype, data = m.kind, None
        if m.kind == "devpts":
            flags &= ~libc.MS_NODEV
            # the caller checked the options against DEVPTS_OPTIONS
            data = "newinstance,ptmxmode=0666,mode=0620" + \
                "".join(f",{o}" for o in m.options.split(",") if o)
        if m.readonly:
            flags |= libc.MS_RDONLY
        target = root.open(m.target, what=f"mount {m.kind} there")
        try:
            _mount(m.source or m.kind, target, os.path.join(root.path, rel), fstype, flags,
                   data)
        finally:
            libc.close(target)


def mount_cgroups(root: Root, rel: str, joined: frozenset[str]) -> None:
    """The jail's cgroups at REL, read-only, as its cgroup namespace shows
    them (its own cgroup is each hierarchy's root there).

    With JOINED, the v1 controllers the jail's processes were moved into
    before its cgroup namespace was made (an OCI container's cgroupsPath),
    as runc lays them out: a tmpfs with one directory per v1 hierarchy of
    those controllers, each mounted anew, and cgroup2 at `unified`, so that
    programs reading their limits (memory.limit_in_bytes, pids.max) find
    them.  No other hierarchy: its namespace root would be the host's.
    Without JOINED: the jail's cgroup2 itself.  After unshare(CGROUP)."""
    from ..kernel import mountinfo
    ro = libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
    hierarchies = [(os.path.basename(m.point), ",".join(ctrls)) for m in mountinfo.read()
                   if m.fstype == "cgroup"
                   for ctrls in [[o for o in m.super_options.split(",") if o not in ("rw", "ro")]]
                   if ctrls and set(ctrls) <= joined]
    target = root.open(rel, what="mount cgroup there")
    shown = os.path.join(root.path, rel)
    try:
        if not hierarchies:
            _mount("cgroup2", target, shown, "cgroup2", ro)
            return
        _mount("tmpfs", target, shown, "tmpfs", ro & ~libc.MS_RDONLY, "mode=755")
        top = root.open(rel, os.O_PATH | os.O_DIRECTORY)
        try:
            for name, opts in hierarchies + [("unified", "")]:
                libc.mkdir(name, 0o555, dir_fd=top)
                sub = libc.openat2(top, name, os.O_PATH | os.O_DIRECTORY, _RESOLVE)
                try:
                    if opts:
                        _mount("cgroup", sub, f"{shown}/{name}", "cgroup", ro, opts)
                    else:
                        _mount("cgroup2", sub, f"{shown}/{name}", "cgroup2", ro)
                finally:
                    libc.close(sub)
            libc.mount_setattr(top, "", libc.AT_EMPTY_PATH, libc.MOUNT_ATTR_RDONLY)
        finally:
            libc.close(top)
    finally:
        libc.close(target)


def mask(root: Root, rel: str) -> None:
    """OCI maskedPaths: a file becomes an empty read-only /dev/null, a
    directory an empty read-only tmpfs; a path the root lacks is left alone."""
    shown = os.path.join(root.path, rel.lstrip("/"))
    for sub in _existing(root.fd, rel):
        if stat.S_ISDIR(os.fstat(sub).st_mode):
            _mount("tmpfs", sub, shown, "tmpfs", libc.MS_RDONLY | libc.MS_NOSUID |
                   libc.MS_NODEV | libc.MS_NOEXEC, "size=0,nr_inodes=1")
            continue
        null = libc.open("/dev/null", os.O_PATH | os.O_CLOEXEC)
        try:
            bind_onto(null, sub, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID |
                      libc.MOUNT_ATTR_NOEXEC, shown=shown)
        finally:
            libc.close(null)


def make_readonly(root: Root, rel: str) -> None:
    """OCI readonlyPaths: REL (and every mount below it) bound read-only onto
    itself; a path the root lacks is left alone."""
    for sub in _existing(root.fd, rel):
        bind_onto(sub, sub, libc.MOUNT_ATTR_RDONLY | libc.MOUNT_ATTR_NOSUID |
                  libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOEXEC,
                  shown=os.path.join(root.path, rel.lstrip("/")))


def readonly_root(root: Root) -> None:
    """OCI root.readonly: the root mount itself read-only (not the mounts
    below it: /dev, /proc, tmpfs volumes keep their own flags)."""
    try:
        libc.mount_setattr(root.fd, "", libc.AT_EMPTY_PATH, libc.MOUNT_ATTR_RDONLY)
    except OSError as err:
        raise os_error(err, root.path) from None


def bind_attributes(m: Mount) -> int:
    """The mount attributes of an fstab bind (an OCI one may add noexec)."""
    return libc.MOUNT_ATTR_NODEV | libc.MOUNT_ATTR_NOSUID | \
        (libc.MOUNT_ATTR_RDONLY if m.readonly else 0) | \
        (libc.MOUNT_ATTR_NOEXEC if "noexec" in m.attrs else 0)


def enter(root: Root) -> None:
    """pivot_root into the jail and detach the host's tree (bubblewrap's sequence)."""
    libc.fchdir(root.fd)
    libc.pivot_root(".", ".")
    libc.umount2(".", libc.MNT_DETACH)
    libc.chdir("/")
    libc.close(root.fd)


def read_user_db(rel: str, shown_root: str) -> str:
    """The text of the jail's REL (etc/passwd, etc/group), for `-U`.

    Called after pivot_root (jail) or after joining the jail's mount
    namespace (jexec's joiner, a host process with every capability), so "/"
    is the jail's root and the file belongs to jailed root.  No symlink is
    followed, not even one inside the root (etc/passwd -> /proc/self/fd/0
    would read the caller's input), and only a regular file is read (a fifo
    planted there blocked jail and jexec for ever; found by the escape tests).
    A missing file reads as empty: the user is then "no such user", as before.
    """
    shown = os.path.join(shown_root, rel)
    try:
        fd = libc.openat2(-100, "/" + rel, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY, _RESOLVE)
    except OSError as err:
        if err.errno == errno.ENOENT:
            return ""
        if err.errno == errno.ELOOP:
            raise OpError("openat2", shown, errno.ELOOP,
                          detail="is a symbolic link, refusing to read it") from None
        raise OpError("openat2", shown, err.errno or 0) from None
    try:
        if not stat.S_ISREG(libc.fstat(fd).st_mode):
            raise OpError("read", shown, errno.EINVAL,
                          detail="not a regular file, refusing to read it")
        return libc.read(fd, 1 << 20).decode("utf-8", "replace")
    finally:
        libc.close(fd)


def jail_user(name: str, shown_root: str) -> User:
    """NAME in the jail's etc/passwd and etc/group, read through read_user_db."""
    from ..users import user_from_db
    return user_from_db(name, read_user_db("etc/passwd", shown_root),
                        read_user_db("etc/group", shown_root))
