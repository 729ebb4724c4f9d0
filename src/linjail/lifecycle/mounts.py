"""A jail's mounts as operation objects: each says in one line what it does
(`jail -v`) and does it in the jail's first process, with
confine/rootfs.py's functions as the mechanism.

mounts(spec) is the list for a jail, in order: its root, /dev, /proc, /sys,
then its fstab (rc.conf, jail.conf's mount.*, thin-jail layers).
"""
from __future__ import annotations

from ..confine import rootfs
from ..confine.rootfs import Root
from ..model import JailSpec, Mount
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from ..confine.userns import Trees


class MountOp(Record):
    """One mount of a jail; the root's is RootMount, which makes the Root."""
    #: the directory of the jail's tree it goes on, if it goes only where
    #: there is one (a root without /proc gets no procfs)
    where = ""

    def describe(self) -> str:
        raise NotImplementedError

    def applies(self, root: Root) -> bool:
        """False: the jail's tree has no place for it; a symbolic link there
        is an error (JailError)."""
        return not self.where or root.exists_dir(self.where)

    def execute(self, root: Root) -> None:
        raise NotImplementedError


@record()
class RootMount(Record):
    """The jail's tree bound onto itself, nodev (an overlay for a thin jail)."""
    path: str
    overlay: tuple[str, str] | None = None
    tree: int = -1      # made and idmapped by the launcher (confine/userns.py)

    def describe(self) -> str:
        how = "nodev" + (",idmapped" if self.tree >= 0 else "")
        if self.overlay is not None:
            lower, top = self.overlay
            return f"overlay {lower} + {top}/upper -> / ({how})"
        return f"bind {self.path} -> / ({how})"

    def execute(self) -> Root:
        if self.tree >= 0:
            return rootfs.attach_tree(self.path, self.tree)
        return rootfs.attach_root(self.path, self.overlay)


@record()
class DevMount(MountOp):
    """The jail's own /dev: six nodes, a private devpts, shm."""
    devpts_extra: str = ""
    tree: int = -1      # the tmpfs, made and idmapped by the launcher
    where = "dev"

    def describe(self) -> str:
        return ("tmpfs -> /dev (nosuid,noexec: null zero full random urandom tty; "
                f"devpts /dev/pts newinstance{self.devpts_extra}; tmpfs /dev/shm)")

    def execute(self, root: Root) -> None:
        rootfs.mount_dev(root, self.devpts_extra, tree=self.tree if self.tree >= 0 else None)


@record()
class ProcMount(MountOp):
    """procfs of the jail's PID namespace, the OCI read-only and masked paths."""
    where = "proc"

    def describe(self) -> str:
        return (f"proc -> /proc (nosuid,nodev,noexec; {len(rootfs.PROC_READONLY)} paths "
                f"read-only, {len(rootfs.PROC_MASKED_FILES) + len(rootfs.PROC_MASKED_DIRS)} "
                "masked)")

    def execute(self, root: Root) -> None:
        rootfs.mount_proc(root)


@record()
class SysMount(MountOp):
    """sysfs, read-only, the OCI runtimes' masks."""
    where = "sys"

    def describe(self) -> str:
        return f"sysfs -> /sys (ro,nosuid,nodev,noexec; masked {' '.join(rootfs.SYS_MASKED_DIRS)})"

    def execute(self, root: Root) -> None:
        rootfs.mount_sys(root)


@record()
class ExtraMount(MountOp):
    """An fstab line: a host path bound in, or a tmpfs."""
    mount: Mount
    tree: int = -1      # the bind, made and idmapped by the launcher

    def describe(self) -> str:
        m = self.mount
        flags = ("ro," if m.readonly else "") + "nosuid,nodev" + \
            (",idmapped" if self.tree >= 0 else "")
        if m.kind not in ("tmpfs", "bind"):     # an OCI config's kernel file systems
            return f"{m.kind} -> {m.target}{' (' + m.options + ')' if m.options else ''}"
        if m.kind == "tmpfs":
            return f"tmpfs -> {m.target} ({flags}{',' + m.options if m.options else ''})"
        return f"bind {m.source} -> {m.target} ({flags})"

    def execute(self, root: Root) -> None:
        rootfs.mount_extra(root, self.mount, self.tree if self.tree >= 0 else None)


def mounts(spec: JailSpec, devpts_extra: str = "", late: bool = False,
           trees: Trees | None = None) -> list[MountOp]:
    """The mounts of a jail after its root, in order.  LATE: those that wait
    for the jail's cgroup namespace (a cgroup file system shows the namespace
    it is mounted in): the first "cgroup" mount and every one after it.
    TREES: what the launcher made for a jail with a user namespace (what is
    not attached is closed with the rest before the reaper runs)."""
    first_late = next((i for i, m in enumerate(spec.mounts) if m.kind == "cgroup"),
                      len(spec.mounts))
    binds = iter(trees.binds if trees is not None else ())
    extra = [ExtraMount(m, next(binds, -1) if m.kind == "bind" else -1) for m in spec.mounts]
    if late:
        return list(extra[first_late:])
    ops: list[MountOp] = []
    if spec.devfs:
        ops.append(DevMount(devpts_extra, trees.dev if trees is not None else -1))
    if spec.procfs:
        ops.append(ProcMount())
    if spec.sysfs:
        ops.append(SysMount())
    ops.extend(extra[:first_late])
    return ops
