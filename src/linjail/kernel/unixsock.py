"""AF_UNIX socket pairs and descriptor passing, on the C module `_socket`.

`import socket` costs ~13 ms here (it builds IntEnums, which imports enum);
a jail start needs only a socketpair and SCM_RIGHTS (unix(7)).
"""
from __future__ import annotations

import _socket
import struct

AF_UNIX = _socket.AF_UNIX
SOCK_STREAM = _socket.SOCK_STREAM
SOCK_CLOEXEC = _socket.SOCK_CLOEXEC


def pair() -> tuple[int, int]:
    """Two connected AF_UNIX stream sockets, close-on-exec, as plain descriptors."""
    a, b = _socket.socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC)
    return a.detach(), b.detach()


def send(fd: int, data: bytes, fds: list[int] | tuple[int, ...] = ()) -> None:
    sock = _socket.socket(fileno=_dup(fd))
    try:
        anc = [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS,
                struct.pack(f"{len(fds)}i", *fds))] if fds else []
        sock.sendmsg([data], anc)
    finally:
        sock.close()


def recv(fd: int, size: int, maxfds: int = 1) -> tuple[bytes, list[int]]:
    """One message and the descriptors it carried (close-on-exec)."""
    sock = _socket.socket(fileno=_dup(fd))
    try:
        space = _socket.CMSG_SPACE(maxfds * 4)
        data, anc, _, _ = sock.recvmsg(size, space, _socket.MSG_CMSG_CLOEXEC)
    finally:
        sock.close()
    fds: list[int] = []
    for level, kind, payload in anc:
        if level == _socket.SOL_SOCKET and kind == _socket.SCM_RIGHTS:
            count = len(payload) // 4
            fds.extend(struct.unpack(f"{count}i", payload[:count * 4]))
    return data, fds


def _dup(fd: int) -> int:
    import os
    return os.dup(fd)
