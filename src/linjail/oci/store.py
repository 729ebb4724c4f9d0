"""The containers of one --root (runc's state directory): files, status, locks.

  ROOT/ID/state.json   what `state` needs, written atomically (fsutil.atomic_write)
  ROOT/ID/config.json  the config the container was created from (exec reads it)
  ROOT/ID/exec.fifo    present from `create` until `start`: the container's
                       process waits on it (opened O_RDWR, so its read blocks
                       until `start` writes a byte)
  ROOT/ID/lock         flock(2): one operation on a container at a time

The status is never stored as such; it is read off the processes (runtime
spec, runtime.md "State"): "creating" while the `create` that made the
directory lives and no container process exists, "created" while the
process (PID plus start time: a reused PID is not the container's) lives
and exec.fifo is there, "paused" when its freezer says frozen, "running"
after that, "stopped" once the process is gone or a zombie.
"""
from __future__ import annotations

import fcntl
from . import jsonio as json
import os

from ..errors import JailError
from ..fsutil import atomic_write
from ..record import Record, record
from ..state import registry

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_ROOT = "/run/linjail-oci"
#: runc's rule for container ids (libcontainer/factory_linux.go idRegex
#: [\w+-.]+): ASCII letters, digits and _ + - .
_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.")
ID_MAX = 1024


@record(frozen=False)
class State(Record):
    id: str
    bundle: str
    rootfs: str
    created: str                   # RFC 3339, UTC, nanoseconds (runc's "created")
    annotations: dict[str, str]
    owner: str = ""
    pid: int = 0                   # host PID of the container's process (PID 1 inside)
    starttime: int = 0             # its start time: the PID is believed only with it
    creator: int = 0               # the `create` making it (status "creating")
    creator_start: int = 0
    jid: int = 0                   # the jail it is
    jail: str = ""                 # the jail's name (the id, made unique host-wide)
    v2cgroup: str = ""             # the jail's cgroup2 directory
    cgroups_path: str = ""         # linux.cgroupsPath (or linjail-oci's own)
    cgroup_dirs: dict[str, str] = {}    # v1 controller -> the container's directory
    cgroups_made: list[str] = []   # the directories create made (delete removes them)


def check_id(cid: str) -> None:
    if not cid:
        raise JailError("container id cannot be empty")
    if cid in (".", "..") or len(cid) > ID_MAX or not set(cid) <= _ID_CHARS:
        raise JailError(f"invalid container id: {cid}")


def container_dir(root: str, cid: str) -> str:
    return os.path.join(root, cid)


def make_dir(root: str, cid: str) -> str:
    """The container's directory, made now: the claim on ID in ROOT."""
    check_id(cid)
    try:
        os.makedirs(root, mode=0o700, exist_ok=True)
    except OSError as err:
        raise JailError(f"{root}: {os.strerror(err.errno or 0)}") from None
    path = container_dir(root, cid)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        raise JailError(f"container with id {cid} already exists") from None
    except OSError as err:
        raise JailError(f"{path}: {os.strerror(err.errno or 0)}") from None
    return path


def write(root: str, st: State) -> None:
    data = json.dumps(st.as_dict(), sort_keys=True).encode()
    atomic_write(os.path.join(container_dir(root, st.id), "state.json"), data, mode=0o600)


def read(root: str, cid: str) -> State:
    """The state file of CID; JailError `container does not exist` if none."""
    check_id(cid)
    path = os.path.join(container_dir(root, cid), "state.json")
    try:
        with open(path, "rb") as f:
            data: dict[str, Any] = json.loads(f.read())
        fields = {k: v for k, v in data.items() if k in State._fields}
        return State(**fields)
    except FileNotFoundError:
        raise JailError(f"container {cid} does not exist") from None
    except (OSError, ValueError, TypeError) as err:
        raise JailError(f"{path}: unreadable state ({err})") from None


def ids(root: str) -> list[str]:
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return []
    except OSError as err:
        raise JailError(f"{root}: {os.strerror(err.errno or 0)}") from None
    return [n for n in names if os.path.isfile(os.path.join(root, n, "state.json"))]


def fifo_path(root: str, cid: str) -> str:
    return os.path.join(container_dir(root, cid), "exec.fifo")


def status(root: str, st: State) -> str:
    if st.pid == 0:
        return "creating" if registry.pid_alive(st.creator, st.creator_start) else "stopped"
    if not registry.pid_alive(st.pid, st.starttime):
        return "stopped"
    if os.path.exists(fifo_path(root, st.id)):
        return "created"
    if frozen(st.v2cgroup):
        return "paused"
    return "running"


def frozen(v2cgroup: str) -> bool:
    """Whether the container's cgroup2 directory V2CGROUP is frozen (pause:
    its cgroup.freeze).  Here, not in cgroups.py: `state` and `kill` of a
    running container would import that and config.py for it (~1.5 ms)."""
    if not v2cgroup:
        return False
    try:
        with open(os.path.join(v2cgroup, "cgroup.freeze"), "rb") as f:
            return f.read().strip() == b"1"
    except OSError:
        return False


def view(root: str, st: State) -> dict[str, Any]:
    """The state JSON (runtime.md "State"), with runc's extra fields."""
    now = status(root, st)
    out: dict[str, Any] = {
        "ociVersion": "1.2.0", "id": st.id, "pid": st.pid if now != "stopped" else 0,
        "status": now, "bundle": st.bundle, "rootfs": st.rootfs, "created": st.created,
        "owner": st.owner}
    if st.annotations:
        out["annotations"] = st.annotations
    return out


class Lock:
    """flock on ROOT/ID/lock; raises `does not exist` if the container is gone
    once the lock is held (a delete that finished meanwhile)."""

    def __init__(self, root: str, cid: str) -> None:
        self.root, self.cid = root, cid
        self.fd = -1

    def __enter__(self) -> "Lock":
        check_id(self.cid)
        path = container_dir(self.root, self.cid)
        try:
            self.fd = os.open(os.path.join(path, "lock"),
                              os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
        except FileNotFoundError:
            raise JailError(f"container {self.cid} does not exist") from None
        except OSError as err:
            raise JailError(f"{path}: {os.strerror(err.errno or 0)}") from None
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(path, "state.json")):
            os.close(self.fd)
            raise JailError(f"container {self.cid} does not exist")
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)


def remove(root: str, cid: str) -> None:
    """The container's directory and everything in it."""
    path = container_dir(root, cid)
    try:
        names = os.listdir(path)
    except FileNotFoundError:
        return
    # state.json first: a reader that finds the directory without it reads
    # "does not exist", never half a container
    for name in ["state.json"] + [n for n in names if n != "state.json"]:
        try:
            os.unlink(os.path.join(path, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(path)
    except FileNotFoundError:
        pass
