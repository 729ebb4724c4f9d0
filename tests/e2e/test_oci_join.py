"""linjail-oci's namespace joins by path (linux.namespaces[].path), as pods use them:
containerd's CRI and podman pods start every container of a pod in the sandbox
("pause", "infra") container's network, IPC, UTS and (shareProcessNamespace,
`--share pid`) pid namespaces by /proc/PID/ns/TYPE.

The attacks first: the host's namespace of every type is refused in one line,
whatever names it (/proc/1, /proc/self, a host process's, a bind mount of one,
a symlink to one, and from a runtime started in namespaces of its own); a path
that is not a namespace, or one of another type, is refused too; a mount
namespace is never joined.  Then the pod: container B in container A's pid,
IPC, UTS and network namespaces, each seeing the other's processes, B's exit
ending B only, `ps`, `kill --all`, `exec`, `jls`/`jexec` still B's.
"""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
from typing import Iterator

import pytest

from conftest import HOST_PATH, cmd, leftovers, needs_root, wait_until
from test_oci_runtime import BB, ENV, Oci, jls_names, oci, rootfs  # noqa: F401 (fixtures)

pytestmark = needs_root
KINDS = {"network": "net", "ipc": "ipc", "uts": "uts", "pid": "pid"}


def joining(oci: Oci, args: list[str], paths: dict[str, str]) -> str:
    """A bundle whose linux.namespaces join PATHS (OCI type -> path)."""
    bundle = oci.bundle(args)
    conf = os.path.join(bundle, "config.json")
    with open(conf) as f:
        doc = json.load(f)
    for ns in doc["linux"]["namespaces"]:
        if ns["type"] in paths:
            ns["path"] = paths[ns["type"]]
    with open(conf, "w") as f:
        json.dump(doc, f)
    return bundle


@pytest.fixture
def host_process() -> Iterator[int]:
    """A process of the test's own in every host namespace."""
    p = subprocess.Popen(["sleep", "120"], env={"PATH": HOST_PATH})
    try:
        yield p.pid
    finally:
        p.kill()
        p.wait()


@pytest.fixture
def bound(oci: Oci) -> Iterator[list[str]]:
    """Bind mounts the test makes (nsfs files); unmounted at the end."""
    made: list[str] = []
    yield made
    for path in made:
        subprocess.run(["umount", path], check=False)


def bind(made: list[str], source: str, target: str) -> None:
    with open(target, "w"):
        pass
    subprocess.run(["mount", "--bind", source, target], check=True)
    made.append(target)


def refused(oci: Oci, paths: dict[str, str], wrapper: tuple[str, ...] = ()) -> \
        tuple[int, str]:
    """create's status and stderr for a container joining PATHS; it must leave nothing."""
    cid = oci.new_id()
    bundle = joining(oci, [BB, "true"], paths)
    if wrapper:
        with tempfile.TemporaryFile("w+") as err:
            p = subprocess.run([*wrapper, cmd("linjail-oci"), "--root", oci.root, "create",
                                "--bundle", bundle, cid], stdout=subprocess.DEVNULL,
                               stderr=err, env=ENV, timeout=60)
            err.seek(0)
            out = (p.returncode, err.read())
    else:
        r = oci("create", "--bundle", bundle, cid)
        out = (r.returncode, r.stderr)
    assert not os.path.exists(os.path.join(oci.root, cid)) and cid not in jls_names()
    return out


def host_line(path: str, ns: str) -> tuple[int, str]:
    return (1, f"linjail-oci: jail: {path}: the host's {ns} namespace: a jail never shares "
               f"it\n")


# --- the attacks ---------------------------------------------------------------------

def test_the_host_namespaces_are_refused_whatever_names_them(
        oci: Oci, host_process: int, bound: list[str]) -> None:
    # PID 1's may not be this runtime's to open (a host whose PID 1 holds
    # capabilities root lacks, as in some containers): then the kernel's answer
    try:
        os.stat("/proc/1/ns/net")
        pid1_readable = True
    except PermissionError:
        pid1_readable = False
    for kind, ns in KINDS.items():
        for path in (f"/proc/self/ns/{ns}", f"/proc/{host_process}/ns/{ns}",
                     f"/proc/thread-self/ns/{ns}"):
            assert refused(oci, {kind: path}) == host_line(path, ns), path
        path = f"/proc/1/ns/{ns}"
        assert refused(oci, {kind: path}) == (
            host_line(path, ns) if pid1_readable else
            (1, f"linjail-oci: jail: {path}: Permission denied\n"))
        # a bind mount of the host's (an nsfs file like the ones podman and CNI
        # keep in /run/netns), and a symlink to one
        nsfile = os.path.join(oci.base, f"host-{ns}")
        bind(bound, f"/proc/{host_process}/ns/{ns}", nsfile)
        assert refused(oci, {kind: nsfile}) == host_line(nsfile, ns)
        link = os.path.join(oci.base, f"link-{ns}")
        os.symlink(nsfile, link)
        assert refused(oci, {kind: link}) == host_line(link, ns)
    # a mount namespace is never joined, the host's or another
    p = oci("create", "--bundle", joining(oci, [BB, "true"], {"mount": "/proc/1/ns/mnt"}),
            oci.new_id())
    assert (p.returncode, p.stderr) == (
        1, "linjail-oci: config.json: linux.namespaces[4]: mount /proc/1/ns/mnt: joining a "
        "mount namespace is refused (the jail's root, mounts and hooks would be set up in a "
        "tree that namespace's other processes own)\n")
    assert os.listdir(oci.root) == []


def test_a_runtime_in_namespaces_of_its_own_still_refuses_the_hosts(
        oci: Oci, host_process: int, bound: list[str]) -> None:
    """`ip netns exec`, a runtime inside a container: the namespace it is in
    is not the host's, and a bind mount of the host's looks like any other
    nsfs file.  (Before the initial namespaces were recognised by their
    fixed inode, this gave the container the host's network.)"""
    for kind, ns, flag in (("network", "net", "--net"), ("ipc", "ipc", "--ipc"),
                           ("uts", "uts", "--uts")):
        nsfile = os.path.join(oci.base, f"host-{ns}")
        bind(bound, f"/proc/{host_process}/ns/{ns}", nsfile)
        assert refused(oci, {kind: nsfile}, ("unshare", flag)) == host_line(nsfile, ns)


def test_not_a_namespace_or_not_of_its_type(oci: Oci) -> None:
    plain = os.path.join(oci.base, "plain")
    with open(plain, "w") as f:
        f.write("net\n")
    for kind, ns in KINDS.items():
        assert refused(oci, {kind: plain}) == \
            (1, f"linjail-oci: jail: {plain}: not a {ns} namespace (Inappropriate ioctl for "
                f"device)\n")
        missing = os.path.join(oci.base, "no-such-ns")
        assert refused(oci, {kind: missing}) == \
            (1, f"linjail-oci: jail: {missing}: No such file or directory\n")
    # another container's namespaces, each named as another type
    sandbox = oci.new_id()
    assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "60"]), sandbox
               ).returncode == 0
    pid = oci.state(sandbox)["pid"]
    for kind, ns in KINDS.items():
        other = "ipc" if ns != "ipc" else "uts"
        path = f"/proc/{pid}/ns/{other}"
        assert refused(oci, {kind: path}) == \
            (1, f"linjail-oci: jail: {path}: not a {ns} namespace\n")
    assert oci("delete", "--force", sandbox).returncode == 0
    assert os.listdir(oci.root) == []


# --- the pod -------------------------------------------------------------------------

def ns_of(pid: int, ns: str) -> str:
    return os.readlink(f"/proc/{pid}/ns/{ns}")


def inside(oci: Oci, cid: str, script: str) -> str:
    p = oci("exec", cid, BB, "sh", "-c", script)
    assert (p.returncode, p.stderr) == (0, ""), p
    return p.stdout


def processes(oci: Oci, cid: str) -> dict[int, str]:
    """PID (in the container's pid namespace) -> command line, as `ps` inside shows them."""
    out = inside(oci, cid, f"{BB} ps -o pid,args")
    return {int(line.split(None, 1)[0]): line.split(None, 1)[1]
            for line in out.splitlines()[1:]}


def test_a_pod_container_joins_the_sandboxs_pid_ipc_uts_and_network(oci: Oci) -> None:
    sandbox, member = oci.new_id(), oci.new_id()
    assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "600"]), sandbox
               ).returncode == 0
    spid = oci.state(sandbox)["pid"]
    bundle = joining(oci, [BB, "sh", "-c", f"{BB} sleep 700 & exec {BB} sleep 701"],
                     {kind: f"/proc/{spid}/ns/{ns}" for kind, ns in KINDS.items()})
    p = oci("run", "-d", "--bundle", bundle, member)
    assert (p.returncode, p.stderr) == (0, "")
    mpid = oci.state(member)["pid"]
    # the kernel's view: the same four namespaces, a mount namespace of its own
    for ns in ("pid", "net", "ipc", "uts"):
        assert ns_of(mpid, ns) == ns_of(spid, ns), ns
    assert ns_of(mpid, "mnt") != ns_of(spid, "mnt")
    # from inside: each sees the other's processes; the sandbox's is PID 1, the
    # member's process is not
    seen_by_member = processes(oci, member)
    assert seen_by_member[1] == f"{BB} sleep 600"
    assert {f"{BB} sleep 700", f"{BB} sleep 701"} < set(seen_by_member.values())
    theirs = processes(oci, sandbox)
    assert {f"{BB} sleep 700", f"{BB} sleep 701"} < set(theirs.values())
    with open(f"/proc/{mpid}/status") as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    assert nspid[0] == str(mpid) and nspid[1] != "1"
    # what each sees of its own namespaces from inside, and the one hostname
    script = " ".join(f"$({BB} readlink /proc/self/ns/{ns})" for ns in
                      ("pid", "net", "ipc", "uts", "mnt"))
    mine, its = inside(oci, member, f"echo {script}").split(), \
        inside(oci, sandbox, f"echo {script}").split()
    assert mine[:4] == its[:4] and mine[4] != its[4]
    assert inside(oci, member, f"{BB} hostname") == "ocibox\n"
    # jls lists both jails; jexec enters the member's, in the shared pid namespace
    names = jls_names()
    assert sandbox in names and member in names
    p = subprocess.run([cmd("jexec"), member, BB, "sh", "-c", f"{BB} ps -o pid,args"],
                       capture_output=True, text=True, env=ENV)
    assert p.returncode == 0 and f"1 {BB} sleep 600" in p.stdout.replace("  ", " "), p
    # ps lists the member's own processes only (host PIDs), not the sandbox's
    listed = json.loads(oci("ps", "--format", "json", member).stdout)
    assert mpid in listed and spid not in listed and len(listed) == 2
    # kill --all ends the member's processes, not the sandbox's
    mjid = names[member]
    assert oci("kill", "--all", member, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(member) == "stopped")
    assert oci.status(sandbox) == "running"
    assert oci("delete", member).returncode == 0 and leftovers(mjid) == []
    # (the orphaned `sleep 700` went to the namespace's PID 1, the sandbox's
    # sleep, which does not reap it: pods have pause for that; a zombie is no process)
    left = set(processes(oci, sandbox).values())
    assert f"{BB} sleep 700" not in left and f"{BB} sleep 701" not in left


def test_the_member_ends_with_its_process_and_with_the_sandbox(oci: Oci,
                                                               bound: list[str]) -> None:
    sandbox, member = oci.new_id(), oci.new_id()
    assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "600"]), sandbox
               ).returncode == 0
    spid = oci.state(sandbox)["pid"]
    paths = {"pid": f"/proc/{spid}/ns/pid"}
    # its process exits: the member is stopped (what it left running in its
    # cgroup goes with delete), the sandbox runs on
    p = oci("run", "--bundle", joining(oci, [BB, "sh", "-c", "echo $$; exit 3"], paths),
            member)
    assert (p.returncode, p.stderr) == (3, "") and p.stdout != "1\n"
    assert oci.status(sandbox) == "running"
    member2 = oci.new_id()
    assert oci("run", "-d", "--bundle", joining(oci, [BB, "sleep", "600"], paths), member2
               ).returncode == 0
    assert oci("exec", "-d", member2, BB, "sleep", "602").returncode == 0
    pid2 = oci.state(member2)["pid"]
    jid2 = jls_names()[member2]
    os.kill(pid2, 9)
    assert wait_until(lambda: oci.status(member2) == "stopped")
    assert oci("delete", member2).returncode == 0 and leftovers(jid2) == []
    assert f"{BB} sleep 602" not in processes(oci, sandbox).values()   # went with delete
    # a member's hostname and domainname are set in the UTS namespace it joins (the
    # runtime spec's rule, runc's behaviour): the pod's
    renamer = joining(oci, [BB, "true"], {"uts": f"/proc/{spid}/ns/uts"})
    with open(os.path.join(renamer, "config.json")) as f:
        doc = json.load(f)
    doc.update(hostname="renamed", domainname="example.org")
    with open(os.path.join(renamer, "config.json"), "w") as f:
        json.dump(doc, f)
    assert oci("run", "--bundle", renamer, oci.new_id()).returncode == 0
    assert inside(oci, sandbox, f"{BB} hostname; {BB} cat /proc/sys/kernel/domainname") == \
        "renamed\nexample.org\n"
    # the sandbox's PID 1 ends: the kernel ends its pid namespace, the member with it
    kept = os.path.join(oci.base, "sandbox-pid")
    bind(bound, paths["pid"], kept)
    member3 = oci.new_id()
    assert oci("run", "-d", "--bundle", joining(oci, [BB, "sleep", "600"], paths), member3
               ).returncode == 0
    assert oci("kill", sandbox, "KILL").returncode == 0
    assert wait_until(lambda: oci.status(member3) == "stopped" and
                      oci.status(sandbox) == "stopped")
    assert oci("delete", sandbox).returncode == 0 and oci("delete", member3).returncode == 0
    # a pid namespace whose PID 1 is gone takes no new process
    p = oci("create", "--bundle", joining(oci, [BB, "true"], {"pid": kept}), oci.new_id())
    assert (p.returncode, p.stderr) == (1, f"linjail-oci: jail: {kept}: cannot start a "
                                           f"process in this pid namespace (Cannot allocate "
                                           f"memory)\n")
    assert os.listdir(oci.root) == []


def test_the_sandbox_cannot_reach_into_a_member_being_made(oci: Oci) -> None:
    """A member's process is in the sandbox's pid namespace before it is
    confined: while created (set up, waiting for start) it is not dumpable,
    so the sandbox's root can neither follow /proc/PID/root to the tree it
    came from nor take its descriptors (exec.fifo, the launcher's pipes)."""
    sandbox, member = oci.new_id(), oci.new_id()
    assert oci("run", "-d", "--bundle", oci.bundle([BB, "sleep", "600"]), sandbox
               ).returncode == 0
    spid = oci.state(sandbox)["pid"]
    p = oci("create", "--bundle", joining(oci, [BB, "sleep", "600"],
                                         {"pid": f"/proc/{spid}/ns/pid"}), member)
    assert (p.returncode, p.stderr) == (0, "")
    with open(f"/proc/{oci.state(member)['pid']}/status") as f:
        inner = [ln.split()[2] for ln in f if ln.startswith("NSpid:")][0]
    p = oci("exec", sandbox, BB, "sh", "-c", f"{BB} ls /proc/{inner}/root/; "
            f"{BB} ls -l /proc/{inner}/fd/; {BB} cat /proc/{inner}/environ")
    assert p.returncode == 1 and p.stdout.count(" -> ") == 0
    assert f"ls: /proc/{inner}/root/: Permission denied\n" in p.stderr
    assert f"cat: can't open '/proc/{inner}/environ': Permission denied\n" in p.stderr
    assert oci("delete", "--force", member).returncode == 0
    assert oci("delete", "--force", sandbox).returncode == 0
