"""A recording stand-in for the kernel interface (kernel/libc.py), for tests.

    with FakeKernel() as k:
        plan.run(start.JAIL_STEPS, ctx, "first process")
    k.names()      # ["prctl", "prctl", "unshare", ..., "execve"]

While installed, every function of kernel/libc.py and kernel/netlink.py's
Netlink and Nftables (also where confine/net.py holds it) are replaced:
nothing reaches the kernel, so the order of a start's mounts, pivot_root and
confinement can be checked without root.  Each call is recorded as a Call and answered as a kernel
would answer a success: a new descriptor (from 1000 up, never one of the
test's own) for what opens one, a directory for fstat, the bytes given to
`reads` for read.  fail(NAME, nth) makes the NTH call of NAME raise OSError
(an injected failure).
"""
from __future__ import annotations

import errno as _errno
import os
import stat

from . import libc, netlink
from ..record import Record, record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Self


@record()
class Call(Record):
    name: str
    args: tuple[Any, ...]

    def __str__(self) -> str:
        return f"{self.name}({', '.join(map(repr, self.args))})"


#: the calls that return a new descriptor
_OPENERS = frozenset({"open", "openat2", "open_tree", "memfd_create", "fsmount_new"})


class FakeKernel:
    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.reads: list[bytes] = []        # what read() returns, in order (then b"")
        self._failures: dict[str, tuple[int, int]] = {}   # name -> (nth, errno)
        self._counts: dict[str, int] = {}
        self._next_fd = 1000
        self._saved: list[tuple[object, str, object]] = []

    # -- what tests use ---------------------------------------------------------------

    def fail(self, name: str, nth: int = 1, err: int = _errno.EPERM) -> None:
        """The NTH call of NAME raises OSError(ERR)."""
        self._failures[name] = (nth, err)

    def names(self) -> list[str]:
        return [c.name for c in self.calls]

    def find(self, name: str, *args: Any) -> int:
        """The index of the first call of NAME whose arguments begin with ARGS."""
        for i, c in enumerate(self.calls):
            if c.name == name and c.args[:len(args)] == args:
                return i
        raise AssertionError(f"no call {name}{args}: {self.names()}")

    # -- installing -------------------------------------------------------------------

    def __enter__(self) -> Self:
        for name, value in list(vars(libc).items()):
            if name.startswith("_") or isinstance(value, type) or not callable(value) or \
                    type(value).__name__ == "module":
                continue
            self._patch(libc, name, self._recorder(name))
        from ..confine import net      # it holds Netlink by name
        for owner in (netlink, net):
            self._patch(owner, "Netlink", self._socket("netlink"))
        self._patch(netlink, "Nftables", self._socket("nftables"))
        return self

    def __exit__(self, *exc: object) -> None:
        for owner, name, value in reversed(self._saved):
            setattr(owner, name, value)
        self._saved.clear()

    def _patch(self, owner: object, name: str, value: object) -> None:
        self._saved.append((owner, name, getattr(owner, name)))
        setattr(owner, name, value)

    # -- answering --------------------------------------------------------------------

    def record(self, name: str, args: tuple[Any, ...]) -> None:
        self.calls.append(Call(name, args))
        count = self._counts[name] = self._counts.get(name, 0) + 1
        nth, err = self._failures.get(name, (0, 0))
        if count == nth:
            raise OSError(err, f"{name}: {os.strerror(err)} (injected)")

    def _recorder(self, name: str) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.record(name, args + tuple(kwargs.values()))
            return self._answer(name, args)
        return call

    def _fd(self) -> int:
        self._next_fd += 1
        return self._next_fd

    def _answer(self, name: str, args: tuple[Any, ...]) -> Any:
        import fcntl
        if name in _OPENERS:
            return self._fd()
        if name == "fcntl":
            return self._fd() if args[1] in (fcntl.F_DUPFD, fcntl.F_DUPFD_CLOEXEC) else 0
        if name == "ioctl":
            return self._fd() if args[1] == libc.TIOCGPTPEER else args[2]
        if name == "fstat":
            return os.stat_result((stat.S_IFDIR | 0o755, 1, 1, 2, 0, 0, 4096, 0, 0, 0))
        if name == "read":
            return self.reads.pop(0) if self.reads else b""
        if name == "write":
            return len(args[1])
        if name == "dup2":
            return args[1]
        if name == "capget":
            full = (1 << 41) - 1
            return full, full, 0
        if name in ("prctl", "fork"):
            return 0 if name == "prctl" else 4242
        if name == "same_file":
            return False
        return None

    def _socket(self, kind: str) -> Callable[..., Any]:
        fake = self

        class Socket:
            """netlink.Netlink / Nftables: each method call is one Call."""

            def __init__(self, *args: Any) -> None:
                fake.record(f"{kind}.open", args)

            def __enter__(self) -> Socket:
                return self

            def __exit__(self, *exc: object) -> None:
                pass

            def __getattr__(self, method: str) -> Callable[..., Any]:
                def call(*args: Any, **kwargs: Any) -> Any:
                    fake.record(f"{kind}.{method}", args + tuple(kwargs.values()))
                    return None
                return call
        return Socket
