"""Jailed root is not host root (issue 11): a user namespace per jail.

With jail.unprivileged_root=1 (the default) a jail gets 65536 host ids of its
own (state/uidrange.py): jail uid/gid N is host uid/gid BASE+N.  Files keep
their ordinary owners on disk: the jail's root, its /dev and every fstab bind
are idmapped mounts (mount_setattr(MOUNT_ATTR_IDMAP)) that show on-disk id N
as BASE+N, so the root-owned files of a complete jail are uid 0 inside and
stay uid 0 on disk, and a file jail uid 1001 makes is 1001 on disk.  What
reaches jailed root from the host (a descriptor, a cwd) is then an object of
another user: host root's files refuse it, and the kernel's per-user counters
(ucounts) are the range's, not root's.

A start, in order (start.py calls the hooks marked *):

  launcher (host root)                 first process, as the stage        the jail's PID 1
  --------------------                 (host PID namespace)               ----------------
  record and range (uidrange)
  clone3 into the jail's cgroup ---->  descriptors sorted (start.py)
                                       *stage(): cwd := the root; raise
                                       rctl's hard rlimits; groups, gid,
                                       uid := BASE (no host capability
                                       left); unshare(USER): the
                                       namespace's owner is BASE, so the
                                       kernel charges its ucounts
                                       (inotify instances, user
                                       namespaces ...) to BASE and not to
                                       root; "U"
  *host_side(): uid_map, gid_map <---
  "0 BASE 65536" (host root writes
  them); its /proc/PID/ns/user;
  the detached trees, made as host
  root (an idmapping needs
  CAP_SYS_ADMIN over the file
  system's namespace): the root (a
  thin jail: an overlay of
  idmapped layers), /dev, the fstab
  binds; sent ------------------->    groups, gid, uid := 0 (BASE on the
                                       host): every capability of the new
                                       namespace, none of the host's;
                                       clone3(CLONE_PARENT|CLONE_NEWPID) --> the launcher's child;
                                       "P" + its PID; exit                 its PID namespace, and
  waitpid(stage)                                                           the mount, IPC, network
                                                                           and cgroup namespaces it
                                                                           unshares, are owned by
                                                                           the jail's user namespace
                                                                           (the UTS one by a child
                                                                           of it: confine/uts);
                                                                           *attaches the trees; the
                                                                           rest as with 0
The stage is single-threaded (setns and unshare of a user namespace refuse a
threaded process; the launcher's cgroup thread is not in it), and it enters
the root while it is still host root: the jails' parent directory is 0700
(SPEC §7) and the namespace's root cannot pass it by name; after
unshare(CLONE_NEWNS) the working directory is the root's copy in the jail's
mount namespace, where the tree is attached.

The jail's own mounts (/proc, /sys, devpts, the masks) are made by its PID 1
inside its namespace, so they are not locked; the host's mounts it inherited
are.  What keeps jailed root from unmounting is what keeps it with 0: no
CAP_SYS_ADMIN in the bounding set and the seccomp filter.  A user namespace
is not a licence to mount.

jexec: join() enters the user namespace first, becomes jail root (BASE),
then the joiner enters the jail's other namespaces with the capabilities it
now has there (the UTS namespace's owner is a child namespace whose owner is
BASE); -u/-U users are jail uids.

A file system that cannot be idmapped (EINVAL: NFS, FUSE, overlayfs itself
...) ends the start with one line naming it and the knob.

An OCI container whose config.json asks for a user namespace (oci/config.py,
spec.idmap) takes the same steps with the config's own mappings: the stage
becomes the host ids of jail uid/gid 0 (config.py requires 0 mapped, never
to host 0), the maps written are exactly the config's lines, and the root
and the binds are not idmapped, as with runc: the bundle's owners are the
client's business (podman chowns the image to the mapping it passes, or
maps the image's own ids), and what the container makes there is on disk
with the mapped host owners.  Only the jail's own /dev tmpfs (made by host
root, as for any jail) is idmapped, so its nodes are jail root's; a /dev
the config mounts is a tmpfs of the jail's namespace whose nodes are binds
of the host's (rootfs.fill_dev), as runc makes them in a user namespace:
a tree made earlier would come first in mountinfo, which lists mounts by
age, and the config's order is the order it must show.  jexec
joins such a jail through Python only (attach.py: no fast-path plan), which
keeps the caller's supplementary groups only when the jail maps them.
"""
from __future__ import annotations

import _signal as signal
import errno
import os
import struct

from ..errors import JailError, OpError
from ..kernel import libc
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable
    from ..model import JailSpec, Knobs
    from .rctlplan import Plan

    IdMap = tuple[tuple[tuple[int, int, int], ...], tuple[tuple[int, int, int], ...]]

#: jail ids 0..SIZE-1 are host ids BASE..BASE+SIZE-1
SIZE = 65536


def wanted(knobs: Knobs) -> bool:
    """Whether a jail with these knobs gets a user namespace: chflags needs
    CAP_LINUX_IMMUTABLE in the host's namespace (SPEC §7), so
    chflags_allowed=1 makes it 0 (settle() says so)."""
    return bool(knobs.unprivileged_root) and not knobs.chflags_allowed


def settle(knobs: Knobs) -> tuple[Knobs, str]:
    """KNOBS as a new jail gets them, and the warning when chflags_allowed=1
    turned unprivileged_root off ("" otherwise)."""
    if knobs.unprivileged_root and knobs.chflags_allowed:
        return knobs.replace(unprivileged_root=0), CHFLAGS_WARNING
    return knobs, ""


CHFLAGS_WARNING = ("chflags_allowed=1 needs CAP_LINUX_IMMUTABLE in the host's user namespace: "
                   "this jail gets unprivileged_root=0 (jailed root is host root)")


@record()
class Trees(Record):
    """The detached mounts the host side made for a jail (descriptors)."""
    root: int
    dev: int = -1               # -1: no /dev tree
    binds: tuple[int, ...] = ()  # one per bind of spec.mounts, in order

    def fds(self) -> list[int]:
        return [fd for fd in (self.root, self.dev, *self.binds) if fd >= 0]

    def close(self) -> None:
        for fd in self.fds():
            try:
                os.close(fd)
            except OSError:
                pass

    def bind_for(self, index: int) -> int | None:
        """The tree of the INDEX-th bind of spec.mounts."""
        return self.binds[index] if index < len(self.binds) else None


# --- the first process, while it is the stage --------------------------------------------

def stage(base: int, path: str, report: int, plan: Plan | None, gid: int = 0) -> Trees:
    """Make the jail's user namespace and become the jail's PID 1 in it.

    Runs in the first process (host root, single-threaded).  Returns in the
    jail's PID 1, with the trees the launcher made; the stage itself exits.
    GID: the host gid of jail gid 0 when it is not BASE (an OCI config)."""
    try:
        root = libc.open(path, os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise OpError("open", path, err.errno or 0) from None
    libc.fchdir(root)
    libc.close(root)
    if plan is not None:
        raise_hard_limits(plan)
    groups = [g for g in os.getgroups() if g < SIZE]
    os.setgroups([])
    gid = gid or base
    os.setresgid(gid, gid, gid)
    os.setresuid(base, base, base)
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)  # a change of uid cleared it
    libc.unshare(libc.CLONE_NEWUSER)
    libc.write(report, b"U")
    from ..kernel import unixsock
    data, fds = unixsock.recv(report, 64, 2 + 253)
    trees = _trees_from(data, fds)
    become_root(groups)
    sync_r, sync_w = os.pipe2(os.O_CLOEXEC)
    pid = libc.clone3(libc.CLONE_PARENT | libc.CLONE_NEWPID)
    if pid == 0:
        libc.close(sync_w)
        libc.read(sync_r, 1)     # EOF once the stage has reported this PID
        libc.close(sync_r)
        libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)   # the launcher is the parent
        return trees
    libc.write(report, b"P" + struct.pack("i", pid))
    os._exit(0)


def become_root(groups: list[int]) -> None:
    """Jail root (host BASE) in the user namespace just entered, with every
    capability of it.  GROUPS: the supplementary groups, jail ids (none
    when the namespace does not map them all: an OCI config's mappings)."""
    try:
        os.setgroups(groups)
    except OSError as err:
        if err.errno != errno.EINVAL:
            raise
        os.setgroups([])
    os.setresgid(0, 0, 0)
    os.setresuid(0, 0, 0)


def raise_hard_limits(plan: Plan) -> None:
    """rctl's rlimits may exceed the hard limits the jail starts with, and
    only host root may raise one (CAP_SYS_RESOURCE in the host's namespace):
    raise them now, the jail's side sets soft = hard = amount later."""
    import resource
    inf = resource.RLIM_INFINITY
    from .rctlplan import RLIMITS
    for name, amount in plan.rlimits.items():
        soft, hard = resource.getrlimit(RLIMITS[name])
        if hard != inf and (amount == inf or amount > hard):
            resource.setrlimit(RLIMITS[name], (soft, amount))


def _trees_from(data: bytes, fds: list[int]) -> Trees:
    if len(data) < 5 or data[:1] != b"T":
        for fd in fds:
            os.close(fd)
        raise OSError(errno.EPROTO, "the launcher sent no trees")
    has_dev, nbinds = struct.unpack("BB", data[1:3])
    it = iter(fds)
    root = next(it)
    dev = next(it) if has_dev else -1
    return Trees(root, dev, tuple(next(it) for _ in range(nbinds)))


# --- the launcher ------------------------------------------------------------------------

def host_side(stage_pid: int, report: int, spec: JailSpec, base: int,
              failed: Callable[[bytes], BaseException]) -> int:
    """The launcher's part: the maps, the trees; the PID of the jail's PID 1.

    FAILED(first bytes) is the error to raise when the first process says
    something else than expected (its own error report)."""
    msg = os.read(report, 1)
    if msg != b"U":
        raise failed(msg)
    write_maps(stage_pid, base, spec.idmap)
    ns = os.open(f"/proc/{stage_pid}/ns/user", os.O_RDONLY | os.O_CLOEXEC)
    try:
        trees = make_trees(spec, ns, base)
    finally:
        os.close(ns)
    try:
        from ..kernel import unixsock
        unixsock.send(report, b"T" + struct.pack("BBxx", trees.dev >= 0, len(trees.binds)),
                      trees.fds())
    except BrokenPipeError:
        pass                 # the first process is gone: its report says why
    finally:
        trees.close()
    msg = _read_exactly(report, 5)
    if msg[:1] != b"P" or len(msg) != 5:
        raise failed(msg)
    while True:
        try:
            os.waitpid(stage_pid, 0)
            break
        except InterruptedError:
            continue
    return int(struct.unpack("i", msg[1:])[0])


def _read_exactly(fd: int, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            break
        data += chunk
    return data


def write_maps(pid: int, base: int, idmap: IdMap | None = None) -> None:
    """uid_map and gid_map of PID's new user namespace: 0 -> BASE, SIZE ids,
    or IDMAP's lines (an OCI config's).  Host root writes them
    (CAP_SETUID/CAP_SETGID over the parent namespace), so setgroups stays
    allowed: jailed root may change its groups."""
    default = ((0, base, SIZE),)
    for name, lines in zip(("uid_map", "gid_map"), idmap or (default, default)):
        fd = os.open(f"/proc/{pid}/{name}", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, "".join(f"{a} {b} {c}\n" for a, b, c in lines).encode())
        finally:
            os.close(fd)


def make_trees(spec: JailSpec, ns: int, base: int) -> Trees:
    """Every tree a jail of SPEC attaches, idmapped through the user namespace
    NS (an OCI config's mappings: only its /dev, see above)."""
    made: list[int] = []
    idmap = spec.idmap is None
    try:
        if spec.overlay is not None:
            made.append(overlay_tree(spec.path, spec.overlay, ns, base))
        else:
            made.append(idmapped(spec.path, ns, libc.MOUNT_ATTR_NODEV, recursive=True,
                                 idmap=idmap))
        dev = -1
        if spec.devfs:
            from .rootfs import dev_tmpfs
            dev = dev_tmpfs()
            made.append(dev)
            _idmap(dev, ns, 0, False, "the jail's /dev", lambda: "tmpfs")
        from .rootfs import bind_attributes
        for m in spec.mounts:
            if m.kind == "bind":
                made.append(idmapped(m.source, ns, bind_attributes(m), recursive=True,
                                     idmap=idmap))
    except BaseException:
        for fd in made:
            os.close(fd)
        raise
    return Trees(made[0], dev, tuple(made[2 if dev >= 0 else 1:]))


def idmapped(path: str, ns: int, attrs: int, recursive: bool, idmap: bool = True) -> int:
    """A detached copy of the mount at PATH with ATTRS, idmapped through NS
    (not idmapped without IDMAP: an OCI config's root and binds)."""
    try:
        src = os.open(path, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError as err:
        raise OpError("open", path, err.errno or 0) from None
    try:
        tree = libc.open_tree(src, "", libc.OPEN_TREE_CLONE | libc.AT_EMPTY_PATH |
                              (libc.AT_RECURSIVE if recursive else 0) | os.O_CLOEXEC)
        try:
            if idmap:
                _idmap(tree, ns, attrs, recursive, path, lambda: fs_type(src))
            elif attrs:
                libc.mount_setattr(tree, "", libc.AT_EMPTY_PATH |
                                   (libc.AT_RECURSIVE if recursive else 0), attrs)
        except BaseException:
            os.close(tree)
            raise
    finally:
        os.close(src)
    return tree


def _idmap(tree: int, ns: int, attrs: int, recursive: bool, what: str,
           fstype: Callable[[], str]) -> None:
    try:
        libc.mount_setattr(tree, "", libc.AT_EMPTY_PATH |
                           (libc.AT_RECURSIVE if recursive else 0),
                           attrs | libc.MOUNT_ATTR_IDMAP, userns_fd=ns)
    except OSError as err:
        if err.errno in (errno.EINVAL, errno.EPERM, errno.EOPNOTSUPP):
            raise not_idmappable(what, fstype()) from None
        raise


def not_idmappable(what: str, fstype: str) -> JailError:
    kind = f" ({fstype})" if fstype else ""
    return JailError(f"{what}: its file system{kind} cannot be idmapped: "
                     f"set jail.unprivileged_root=0 for this jail")


def fs_type(fd: int) -> str:
    """The file system type of the mount FD is on ("" if unknown): that
    mount's line of mountinfo (a mount of this namespace, not a copy)."""
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            mnt_id = next(line.split()[1] for line in f if line.startswith("mnt_id:"))
        with open("/proc/self/mountinfo") as f:
            for line in f:
                fields = line.split()
                if fields[0] == mnt_id and "-" in fields:
                    return fields[fields.index("-") + 1]
    except (OSError, StopIteration, IndexError):
        pass
    return ""


def overlay_tree(path: str, overlay: tuple[str, str], ns: int, base: int) -> int:
    """A thin jail's overlay (roots/thin.py), made of idmapped layers.

    The overlay itself cannot be idmapped (EINVAL), and overlayfs works in
    its upper layer with the credentials of whoever made it: host root's
    uid 0, which the layers' idmapping does not map (EOVERFLOW).  So host
    root makes it with its file-system ids set to BASE (this thread only;
    capabilities kept): uid BASE is on-disk 0 through the idmapped upper
    layer, the overlay's own xattrs stay trusted.overlay.* (as with 0), and
    its files show as BASE+N: jail uid N."""
    lower, top = overlay
    layers: list[int] = []
    try:
        layers.append(idmapped(lower, ns, 0, recursive=False))
        layers.append(idmapped(top, ns, 0, recursive=False))
        for sub in ("upper", "work"):
            layers.append(libc.openat2(layers[1], sub, os.O_PATH | os.O_DIRECTORY,
                                       libc.RESOLVE_NO_SYMLINKS | libc.RESOLVE_BENEATH))
        effective, permitted, inheritable = libc.capget()
        libc.setfsid(base, base)
        try:
            libc.capset(permitted, permitted, inheritable)
            return libc.fsmount_new("overlay", libc.MOUNT_ATTR_NODEV, (
                ("lowerdir+", layers[0]), ("upperdir", layers[2]), ("workdir", layers[3])))
        except OSError as err:
            raise OpError("fsmount", path, err.errno or 0,
                          detail=f"overlay of idmapped layers: {os.strerror(err.errno or 0)}") \
                from None
        finally:
            libc.setfsid(0, 0)
            libc.capset(effective, permitted, inheritable)
    finally:
        for fd in layers:
            os.close(fd)


def own_stdio(fds: list[int | None], base: int, gid: int = 0) -> None:
    """The jail's own null device (lifecycle/stdio.py private_null: a node
    on a tmpfs attached nowhere, made by host root) becomes jailed root's,
    as it is with 0: jailed root may chmod or chown it."""
    try:
        host = os.stat("/dev/null")
    except OSError:
        return
    for fd in set(fds):
        if fd is None:
            continue
        st = os.fstat(fd)
        if st.st_rdev == host.st_rdev and (st.st_dev, st.st_ino) != (host.st_dev, host.st_ino) \
                and st.st_uid == 0:
            os.fchown(fd, base, gid or base)


# --- jexec ------------------------------------------------------------------------------

def gid_base(idmap: IdMap | None) -> int:
    """The host gid of jail gid 0 under an OCI config's IDMAP (0: BASE's)."""
    return next((host for inner, host, _ in idmap[1] if inner == 0), 0) if idmap else 0


def join(nsfd: int) -> None:
    """The joiner enters the jail's user namespace and becomes jail root;
    the jail's other namespaces come next (attach.py)."""
    groups = [g for g in os.getgroups() if g < SIZE]
    libc.setns(nsfd, libc.CLONE_NEWUSER)
    become_root(groups)
    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGKILL)   # a change of uid cleared it
