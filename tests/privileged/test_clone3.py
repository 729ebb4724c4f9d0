"""libc.clone3: a child created in its cgroup and PID namespace, from Python."""
from __future__ import annotations

import errno
import os
import threading
from typing import Iterator

import pytest

from linjail.confine import cgroup
from linjail.kernel import libc

pytestmark = [pytest.mark.privileged,
              pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and PID namespaces")]


@pytest.fixture
def fresh_cgroup() -> Iterator[str]:
    path = os.path.join(cgroup.cgroup2_root(), f"linjail-test-clone3-{os.getpid()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        cgroup.remove(path)


def _child_reports(pid: int, r: int) -> str:
    _, status = os.waitpid(pid, 0)
    text = os.read(r, 4096).decode()
    os.close(r)
    assert os.waitstatus_to_exitcode(status) == 0, text
    return text


def test_child_starts_in_cgroup_and_pid_namespace(fresh_cgroup: str) -> None:
    # a thread running here must not matter to the child (os.fork's rules)
    stop = threading.Event()
    busy = threading.Thread(target=lambda: stop.wait(5))
    busy.start()
    fd = os.open(fresh_cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    r, w = os.pipe()
    try:
        pid = libc.clone3(libc.CLONE_NEWPID | libc.CLONE_INTO_CGROUP, fd)
        if pid == 0:
            try:
                import json      # the interpreter works: imports, threads
                t = threading.Thread(target=lambda: None)
                t.start()
                t.join()
                with open("/proc/self/cgroup") as f:
                    line = [x for x in f.read().splitlines() if x.startswith("0::")][0]
                os.write(w, json.dumps([os.getpid(), line]).encode())
            finally:
                os._exit(0)
    finally:
        os.close(fd)
        os.close(w)
        stop.set()
        busy.join()
    assert _child_reports(pid, r) == \
        f'[1, "0::{fresh_cgroup[len(cgroup.cgroup2_root()):]}"]'
    assert cgroup.pids(fresh_cgroup) == []


def test_plain_clone3_is_a_fork() -> None:
    r, w = os.pipe()
    pid = libc.clone3()
    if pid == 0:
        os.write(w, f"{os.getppid()}".encode())
        os._exit(0)
    os.close(w)
    assert _child_reports(pid, r) == str(os.getpid())


def test_bad_cgroup_descriptor_is_one_oserror() -> None:
    fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY)
    os.close(fd)
    with pytest.raises(OSError) as err:
        libc.clone3(libc.CLONE_INTO_CGROUP, fd)
    assert (err.value.errno, err.value.strerror) == (errno.EBADF,
                                                    "clone3: Bad file descriptor")
