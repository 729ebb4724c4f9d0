"""confine/devices.py against the kernel: the eBPF device program on a
scratch cgroup2 directory, a process born into it (CLONE_INTO_CGROUP) while
its v1 devices cgroup is the root one, which allows everything: what it may
open and mknod is the program's doing alone.  And the replay of the rules
(emulate) against v1's own devices.list.  Every scratch cgroup is removed,
every descriptor closed, also on failure."""
from __future__ import annotations

import errno
import os
import stat
import tempfile
from typing import Callable, Iterator

import pytest

from conftest import needs_root
from linjail.confine import devices
from linjail.confine.cgroup import cgroup2_root
from linjail.kernel import libc

pytestmark = needs_root
JAIL = [(False, "a"), (True, "c 1:5 rwm"), (True, "c 1:9 rw"), (True, "c 136:* rwm")]


@pytest.fixture
def scratch() -> Iterator[str]:
    """A cgroup2 directory of the test's own below the root (and its
    children), removed afterwards."""
    path = os.path.join(cgroup2_root(), f"linjail-test-devices-{os.getpid()}")
    os.mkdir(path)
    try:
        yield path
    finally:
        for sub in sorted((e.path for e in os.scandir(path) if e.is_dir()), reverse=True):
            os.rmdir(sub)
        os.rmdir(path)


def in_cgroup(cgroup: str, action: Callable[[], str]) -> str:
    """ACTION's answer in a child born in CGROUP (an OSError: "errno N")."""
    r, w = os.pipe()
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        pid = libc.clone3(libc.CLONE_INTO_CGROUP, fd)
    finally:
        os.close(fd)
    if pid == 0:
        try:
            os.close(r)
            try:
                out = action()
            except OSError as err:
                out = f"errno {err.errno}"
            os.write(w, out.encode())
        finally:
            os._exit(0)
    os.close(w)
    try:
        return os.read(r, 4096).decode()
    finally:
        os.close(r)
        os.waitpid(pid, 0)


def opens(path: str, flags: int = os.O_RDWR) -> Callable[[], str]:
    def action() -> str:
        os.close(os.open(path, flags | os.O_CLOEXEC))
        return "opened"
    return action


def mknods(directory: str, major: int, minor: int) -> Callable[[], str]:
    def action() -> str:
        node = os.path.join(directory, f"n{major}-{minor}")
        os.mknod(node, 0o600 | stat.S_IFCHR, os.makedev(major, minor))
        os.unlink(node)
        return "made"
    return action


def attached(cgroup: str, rules: list[devices.Rule], flags: int = libc.BPF_F_ALLOW_MULTI,
             keep: bool = False) -> int:
    """Attach RULES' program to CGROUP; its descriptor if KEEP (else closed)."""
    prog = devices.load(devices.program(*devices.emulate(rules)))
    fd = os.open(cgroup, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        devices.attach(fd, prog, flags)
    finally:
        os.close(fd)
    if keep:
        return prog
    os.close(prog)
    return -1


def test_cgroup2_program_alone(scratch: str) -> None:
    """Only the program decides: the child's v1 devices cgroup is the root one."""
    assert in_cgroup(scratch, opens("/dev/null")) == "opened"      # nothing attached yet
    devices.confine(scratch, JAIL)
    fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
    try:
        flags, ids = devices.query(fd)
    finally:
        os.close(fd)
    assert flags == libc.BPF_F_ALLOW_MULTI and len(ids) == 1

    def v1_devices() -> str:
        with open("/proc/self/cgroup") as f:
            lines = [line.strip() for line in f if ":devices:" in line]
        return ",".join(lines) or "no v1 devices hierarchy"
    assert in_cgroup(scratch, v1_devices) in ("no v1 devices hierarchy",
                                              f"{v1_devices().split(':')[0]}:devices:/")
    eperm = f"errno {errno.EPERM}"
    assert in_cgroup(scratch, opens("/dev/null")) == eperm
    assert in_cgroup(scratch, opens("/dev/null", os.O_RDONLY)) == eperm
    assert in_cgroup(scratch, opens("/dev/zero")) == "opened"
    assert in_cgroup(scratch, opens("/dev/urandom", os.O_RDONLY)) == "opened"
    with tempfile.TemporaryDirectory() as tmp:
        assert in_cgroup(scratch, mknods(tmp, 1, 5)) == "made"
        assert in_cgroup(scratch, mknods(tmp, 1, 9)) == eperm          # rw only
        assert in_cgroup(scratch, mknods(tmp, 1, 3)) == eperm
        assert os.listdir(tmp) == []
    # a host-made node of a device the rules do not name: refused whatever its mount
    assert in_cgroup(scratch, opens("/dev/kmsg", os.O_RDONLY)) == eperm
    assert opens("/dev/kmsg", os.O_RDONLY)() == "opened"              # (outside: it opens)


def test_below_cannot_loosen(scratch: str) -> None:
    """A program attached further down, even one allowing all, adds to the
    jail's: every program of the path must allow."""
    devices.confine(scratch, JAIL)
    sub = os.path.join(scratch, "sub")
    os.mkdir(sub)
    attached(sub, [(True, "a")])
    assert in_cgroup(sub, opens("/dev/null")) == f"errno {errno.EPERM}"
    assert in_cgroup(sub, opens("/dev/zero")) == "opened"


def test_only_the_programs_holder_detaches(scratch: str) -> None:
    """Why multi: an exclusive program is detached by anyone (no capability,
    no program descriptor); a multi one only by naming its program, which no
    jail can load or look up."""
    import ctypes
    import struct

    def detach_unnamed(path: str) -> Callable[[], str]:
        def action() -> str:
            os.setgid(65534)
            os.setuid(65534)          # no capability left
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
            attr = ctypes.create_string_buffer(12)
            struct.pack_into("<III", attr, 0, fd, 0, libc.BPF_CGROUP_DEVICE)
            libc.bpf(libc.BPF_PROG_DETACH, attr, "detach")
            return "detached"
        return action

    def load_one() -> str:
        os.setgid(65534)
        os.setuid(65534)
        os.close(devices.load(devices.program(True, [])))
        return "loaded"
    exclusive = os.path.join(scratch, "exclusive")
    os.mkdir(exclusive)
    attached(exclusive, JAIL, flags=0)
    assert in_cgroup(scratch, detach_unnamed(exclusive)) == "detached"
    assert in_cgroup(exclusive, opens("/dev/null")) == "opened"     # the hole

    prog = attached(scratch, JAIL, keep=True)
    try:
        assert in_cgroup(scratch, detach_unnamed(scratch)) == f"errno {errno.EINVAL}"
        assert in_cgroup(scratch, load_one) == f"errno {errno.EPERM}"
        assert in_cgroup(scratch, opens("/dev/null")) == f"errno {errno.EPERM}"
        fd = os.open(scratch, os.O_RDONLY | os.O_DIRECTORY)
        try:
            devices.detach(fd, prog)               # the holder of the program can
            assert devices.query(fd) == (0, [])
        finally:
            os.close(fd)
    finally:
        os.close(prog)
    assert in_cgroup(scratch, opens("/dev/null")) == "opened"


def test_bad_cgroup_is_one_line(tmp_path: str) -> None:
    from linjail.errors import JailError
    with pytest.raises(JailError) as e:
        devices.confine(str(tmp_path), JAIL)
    assert str(e.value) == (f"{tmp_path}: the device rules' eBPF program: "
                            "bpf(BPF_PROG_ATTACH): Bad file descriptor")


V1_CASES = [
    [(False, "a"), (True, "c 1:3 rwm"), (True, "c 136:* rwm"), (False, "c 1:3 w")],
    [(False, "a"), (True, "c 1:3 rwm"), (False, "c *:* rwm"), (True, "b 8:* r")],
    [(False, "a"), (True, "c 1:3 r"), (True, "c 1:3 w"), (True, "b *:* m"),
     (False, "b *:* m"), (True, "c 5:2 rw")],
    [(True, "c 1:3 r"), (False, "a"), (True, "c 10:200 rwm")],
]


@pytest.mark.parametrize("rules", V1_CASES)
def test_emulate_is_v1(rules: list[devices.Rule]) -> None:
    """The replay agrees with the kernel's v1 controller (devices.list)."""
    from linjail.oci.cgroups import _v1_mounts
    mount = _v1_mounts().get("devices")
    if mount is None:
        pytest.skip("no v1 devices hierarchy on this host")
    path = os.path.join(mount, f"linjail-test-devices-{os.getpid()}")
    os.mkdir(path)
    try:
        for allow, line in rules:
            with open(os.path.join(path, "devices.allow" if allow else "devices.deny"),
                      "w") as f:
                f.write(line)
        with open(os.path.join(path, "devices.list")) as f:
            listed = f.read().splitlines()
    finally:
        os.rmdir(path)
    allow_all, exceptions = devices.emulate(rules)
    names = {v: k for k, v in devices.TYPES.items()}
    assert not allow_all
    assert listed == [f"{names[t]} {'*' if ma < 0 else ma}:{'*' if mi < 0 else mi} "
                      + "".join(a for a in "rwm" if acc & devices.ACCESS[a])
                      for t, ma, mi, acc in exceptions]


# --- linjail-oci: a container's linux.resources.devices ----------------------------------

import subprocess  # noqa: E402

from conftest import cmd, wait_until  # noqa: E402
from test_oci_runtime import BB, ENV, Oci, jls_names, oci, rootfs  # noqa: E402,F401

DENY_ALL = {"allow": False, "access": "rwm"}
#: c 60:0: a major of the range for local use, no driver on this host (/proc/devices)
NODE = os.makedev(60, 0)


def _devices_bundle(oci: Oci, args: list[str], rules: list[dict[str, object]]) -> str:
    import json
    path = oci.bundle(args)
    with open(os.path.join(path, "config.json")) as f:
        doc = json.load(f)
    doc["linux"].setdefault("resources", {})["devices"] = rules
    with open(os.path.join(path, "config.json"), "w") as f:
        json.dump(doc, f)
    return path


def _programs_of(cid: str) -> tuple[int, list[int]]:
    """The device programs on the container's jail's own cgroup2 directory."""
    from linjail.confine.cgroup import jail_cgroup
    fd = os.open(jail_cgroup(jls_names()[cid]), os.O_RDONLY | os.O_DIRECTORY)
    try:
        return devices.query(fd)
    finally:
        os.close(fd)


# (`true`, not `:`: a failed redirection of a special builtin ends the shell)
OPENS = ("exec 2>&1; for d in null zero full random urandom ptmx; do "
         "if true < /dev/$d; then echo $d; fi; done; "
         "echo x > /dev/null && echo wrote-null")


def test_container_denied_null(oci: Oci) -> None:
    """c 1:3 rw denied: /dev/null does not open (EPERM) in the container,
    /dev/zero and the jail's other devices do; the program is on the jail's
    cgroup2 directory, beside every jail's own, before the process runs anything."""
    cid = oci.new_id()
    bundle = _devices_bundle(oci, [BB, "sh", "-c", OPENS], [
        DENY_ALL, {"allow": False, "type": "c", "major": 1, "minor": 3, "access": "rw"}])
    out = os.path.join(oci.base, "out")
    with open(out, "w") as f:
        p = oci("create", "--bundle", bundle, cid, stdout=f)
    assert (p.returncode, p.stderr) == (0, ""), open(out).read()
    flags, ids = _programs_of(cid)      # every jail's own (lifecycle/start.py) and the config's
    assert flags == libc.BPF_F_ALLOW_MULTI and len(ids) == 2
    assert oci("start", cid).returncode == 0
    assert wait_until(lambda: oci.status(cid) == "stopped")
    assert open(out).read() == ("sh: can't open /dev/null: Operation not permitted\n"
                                "zero\nfull\nrandom\nurandom\nptmx\n"
                                "sh: can't create /dev/null: Operation not permitted\n")


def test_container_default_rules(oci: Oci) -> None:
    """podman's rules (deny all): the jail's own devices open; `run` ends."""
    p = oci("run", "--bundle", _devices_bundle(oci, [BB, "sh", "-c", OPENS], [DENY_ALL]),
            oci.new_id())
    assert (p.returncode, p.stdout, p.stderr) == (
        0, "null\nzero\nfull\nrandom\nurandom\nptmx\nwrote-null\n", "")


def test_container_host_node_refused(oci: Oci) -> None:
    """A descriptor of a host-made device node that reached the container
    (an O_PATH one, over a stream socket handed in with --preserve-fds: the
    admin's mistake) is reopened through /proc/self/fd on the node's own
    mount, which allows devices (nodev is no help there): the program
    refuses it (EPERM).  The node is the test's own, in a directory of the
    test (the probe also chmods and chowns what it is handed), of a device
    no driver has (NODE): opened by anyone else it fails with ENXIO, after
    the device checks."""
    import socket
    path = os.path.join(oci.base, "host-node")
    os.mknod(path, 0o666 | stat.S_IFCHR, NODE)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    node = os.open(path, os.O_PATH | os.O_CLOEXEC)
    try:
        with pytest.raises(OSError) as e:
            os.open(f"/proc/self/fd/{node}", os.O_RDONLY)
        assert e.value.errno == errno.ENXIO
        bundle = _devices_bundle(oci, ["/probe", "fd-leak", "3"], [DENY_ALL])
        fd = theirs.fileno()
        with tempfile.TemporaryFile("w+") as out:
            # the socket at fd 3 of linjail-oci, as --preserve-fds 1 wants it
            runner = subprocess.Popen([cmd("linjail-oci"), "--root", oci.root, "run",
                                       "--preserve-fds", "1", "--bundle", bundle,
                                       oci.new_id()],
                                      stdout=out, stderr=out, env=ENV, pass_fds=(3, fd),
                                      preexec_fn=lambda: os.dup2(fd, 3))
            theirs.close()
            socket.send_fds(ours, [b"x"], [node])
            try:
                assert runner.wait(timeout=60) == 0
            finally:
                if runner.poll() is None:
                    runner.kill()
                    runner.wait()
            out.seek(0)
            said = out.read()
    finally:
        os.close(node)
        ours.close()
        theirs.close()
        os.unlink(path)
    # fchmod and fchown depend on who the container's root is; the reopen does not
    words = said.split()
    assert words[0] == "fd-leak:" and "reopen=EPERM" in words and "write=EBADF" in words, said
